//! End-to-end `vigil agent`: a real `vigil serve` and the real agent binary. Lines are written
//! to files that are rotated (rename + create, then copytruncate) while writing goes on, and the
//! agent is killed with SIGKILL mid-stream and restarted; every line must be in the ledger
//! exactly once.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil_event::Event;

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// A running `vigil serve` with HTTP only, on a port it picks itself.
struct Server {
    child: Child,
    data: PathBuf,
    http: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = create_token(&data, "ingest", "agent");
        let mut child = vigil()
            .args(["serve", "--data-dir"])
            .arg(&data)
            .args(["--http", "127.0.0.1:0", "--syslog-udp", "off"])
            .args(["--syslog-tcp", "off", "--syslog-tls", "off"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut http = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("vigil: listening http://") {
                http = rest.split_whitespace().next().map(str::to_owned);
            }
            if line.contains("vigil: ready") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            data,
            http: http.expect("http address"),
            token,
            _dir: dir,
        }
    }

    fn all_events(&self) -> Vec<Event> {
        let Ok(mut reader) = vigil_ledger::LedgerReader::open(&self.data) else {
            return Vec::new();
        };
        let end = reader.end_seq();
        let mut out = Vec::new();
        reader
            .for_each_raw(0..end, |_, raw| {
                out.push(Event::from_canonical(raw).unwrap());
                Ok(())
            })
            .unwrap();
        out
    }

    /// How many times each numbered `marker` line is stored.
    fn counts(&self, marker: &str) -> BTreeMap<u64, usize> {
        let mut seen = BTreeMap::new();
        for e in self.all_events() {
            let text = e
                .get_str("event.original")
                .or(e.get_str("message"))
                .unwrap_or("");
            if let Some(i) = text.find(marker) {
                let id: String = text[i + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                *seen.entry(id.parse().unwrap()).or_insert(0) += 1;
            }
        }
        seen
    }

    /// Waits (up to 30 s) until `n` distinct lines arrived, then a little longer for strays.
    fn wait_for(&self, marker: &str, n: usize) -> BTreeMap<u64, usize> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.counts(marker).len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(700));
        self.counts(marker)
    }

    /// Writes an agent config following `files` into `dir`.
    fn agent_config(&self, dir: &Path, files: &[&Path]) -> PathBuf {
        let mut text = format!(
            "server = \"http://{}\"\ntoken = \"{}\"\nstate_dir = \"{}\"\npoll_interval_ms = 50\n",
            self.http,
            self.token,
            dir.join("state").display()
        );
        for f in files {
            text.push_str(&format!(
                "[[file]]\npath = \"{}\"\nformat = \"raw\"\nsource = \"e2e\"\n",
                f.display()
            ));
        }
        let path = dir.join("agent.toml");
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent process; killed with SIGKILL when dropped.
struct Agent(Child);

impl Agent {
    fn start(config: &Path) -> Agent {
        Agent(
            vigil()
                .args(["agent", "--config"])
                .arg(config)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn kill_9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn create_token(data: &Path, role: &str, name: &str) -> String {
    let o = vigil()
        .args(["token", "create", "--data-dir"])
        .arg(data)
        .args(["--role", role, "--name", name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn write_line(f: &mut File, marker: &str, i: u64) {
    // Written in two pieces now and then so the agent sees partial lines.
    let line = format!("{marker}{i:06} some text after the number\n");
    if i.is_multiple_of(7) {
        let (a, b) = line.split_at(10);
        f.write_all(a.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        f.write_all(b.as_bytes()).unwrap();
    } else {
        f.write_all(line.as_bytes()).unwrap();
    }
}

fn assert_exactly_once(seen: &BTreeMap<u64, usize>, n: u64) {
    let missing: Vec<u64> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    let dups: Vec<(&u64, &usize)> = seen.iter().filter(|&(_, &c)| c != 1).collect();
    assert!(missing.is_empty(), "missing lines: {missing:?}");
    assert!(dups.is_empty(), "duplicated lines: {dups:?}");
    assert_eq!(seen.len() as u64, n, "unexpected line numbers");
}

#[test]
fn rotation_rename_create_and_copytruncate_lose_and_duplicate_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let other = dir.path().join("later.log"); // created only after the agent starts
    let config = server.agent_config(dir.path(), &[&log, &other]);
    let marker = "agentrot-";
    let mut f = append(&log);
    for i in 0..300 {
        write_line(&mut f, marker, i);
    }
    let _agent = Agent::start(&config);
    let mut i = 300;
    let mut write = |f: &mut File, until: u64| {
        while i < until {
            write_line(f, marker, i);
            i += 1;
            if i.is_multiple_of(10) {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
    };
    write(&mut f, 1000);
    // logrotate's create mode: rename, create anew, the writer moves on after a few more lines
    // to the old handle.
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    write(&mut f, 1050);
    let mut f = append(&log);
    write(&mut f, 2000);
    // A second file that appears late.
    let mut g = append(&other);
    for j in 0..100 {
        write_line(&mut g, "agentlate-", j);
    }
    // copytruncate: copy, then truncate in place. Lines written between the agent's last read
    // and the truncation are lost for every reader (documented), so the writer pauses until
    // the agent caught up, as logrotate users arrange with `delaycompress`/quiet periods.
    let seen = server.wait_for(marker, 2000);
    assert_eq!(seen.len(), 2000);
    fs::copy(&log, dir.path().join("app.log.2")).unwrap();
    f.set_len(0).unwrap();
    write(&mut f, 3000);
    // And a second rename + create while writing continues.
    fs::rename(&log, dir.path().join("app.log.3")).unwrap();
    let mut f = append(&log);
    write(&mut f, 3500);
    let seen = server.wait_for(marker, 3500);
    assert_exactly_once(&seen, 3500);
    let seen = server.wait_for("agentlate-", 100);
    assert_exactly_once(&seen, 100);
}

/// Duplicated line numbers grouped into runs of consecutive numbers.
fn duplicate_runs(seen: &BTreeMap<u64, usize>) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (&i, &c) in seen {
        assert!(c <= 2, "line {i} stored {c} times");
        if c == 2 {
            match runs.last_mut() {
                Some(last) if last.1 + 1 == i => last.1 = i,
                _ => runs.push((i, i)),
            }
        }
    }
    runs
}

/// SIGKILL while lines are written and batches are in flight: no line lost, none duplicated. A
/// batch the server made durable whose 200 the agent never saw is re-sent after the restart with
/// the same `Idempotency-Key`, and the server does not store it again.
#[test]
fn kill_9_mid_stream_and_restart_lose_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let config = server.agent_config(dir.path(), &[&log]);
    let marker = "agentkill-";
    let n = 4000;
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut f = append(&log);
            for i in 0..n {
                write_line(&mut f, marker, i);
                if i.is_multiple_of(5) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let kills = 3;
    let mut agent = Agent::start(&config);
    for round in 0..kills {
        std::thread::sleep(Duration::from_millis(400 + 170 * round));
        agent.kill_9();
        std::thread::sleep(Duration::from_millis(150));
        agent = Agent::start(&config);
    }
    writer.join().unwrap();
    let seen = server.wait_for(marker, n as usize);
    let missing: Vec<u64> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(missing.is_empty(), "missing lines: {missing:?}");
    assert_eq!(seen.len() as u64, n, "unexpected line numbers");
    let runs = duplicate_runs(&seen);
    assert!(
        runs.is_empty(),
        "duplicated after {kills} kills mid-send: {runs:?}"
    );

    // Idle now (everything acknowledged): a kill -9 and restart re-sends nothing.
    let before = server.all_events().len();
    agent.kill_9();
    let _agent = Agent::start(&config);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        server.all_events().len(),
        before,
        "lines re-sent after an idle restart"
    );
    // And new lines still flow after the restart, exactly once.
    let mut f = append(&log);
    for i in n..n + 100 {
        write_line(&mut f, marker, i);
    }
    let seen = server.wait_for(marker, (n + 100) as usize);
    let tail: BTreeMap<u64, usize> = seen.into_iter().filter(|&(i, _)| i >= n).collect();
    assert_eq!(tail.len(), 100);
    assert!(tail.values().all(|&c| c == 1), "duplicates: {tail:?}");
}

/// A bad configuration stops the agent at once with exit 2 and a message naming the problem.
#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "server = \"http://127.0.0.1:9\"\nstate_dir = \"{}\"\n",
        dir.path().join("state").display()
    );
    let file = "[[file]]\npath = \"/x\"\n";
    let cases = [
        (format!("{head}token = \"t\"\nbogus = 1\n{file}"), "bogus"),
        (format!("{head}{file}"), "token"),
        (
            format!("{head}token = \"t\"\n{file}format = \"nope\"\n"),
            "nope",
        ),
        (format!("{head}token = \"t\"\n"), "[[file]]"),
    ];
    for (text, want) in cases {
        let config = dir.path().join("agent.toml");
        fs::write(&config, &text).unwrap();
        let o = vigil()
            .args(["agent", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(want), "{text}: want {want:?} in {err}");
    }
}
