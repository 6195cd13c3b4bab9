//! Connection starvation: idle floods, slowloris and the open-file limit (issue 13, defect 5).
//!
//! A network sender may open as many TCP connections as it likes and then send nothing, or
//! trickle bytes. Vigil bounds connections per listener and per address (sized from its
//! open-file limit), times out idle and slow peers, and keeps the rest of its slots for other
//! senders, health checks, login and the UI. The servers here run under
//! `prlimit --nofile=1024:1024`, the common default, where 1,100 idle connections used to take
//! the whole HTTP API down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::common::{
    add_user, create_token, curl_with, ledger_events, login_from, serve_args, wait_until,
};

/// A `vigil serve` started under `prlimit --nofile=1024:1024`, with HTTP and syslog TCP on ports
/// the OS picks.
struct Limited {
    child: Child,
    http: SocketAddr,
    syslog_tcp: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl Limited {
    fn start(data: &Path, extra: &[&str]) -> Option<Limited> {
        if !crate::common::require_tool("prlimit") {
            return None;
        }
        let args = serve_args(
            data,
            &[
                ("--http", "127.0.0.1:0"),
                ("--syslog-udp", "off"),
                ("--syslog-tcp", "127.0.0.1:0"),
                ("--syslog-tls", "off"),
            ],
            extra,
        );
        let mut child = Command::new("prlimit")
            .arg("--nofile=1024:1024")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_vigil"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start vigil serve under prlimit");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let (mut http, mut syslog_tcp) = (None, None);
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            let addr = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            };
            http = http.or(addr("vigil: listening http://"));
            syslog_tcp = syslog_tcp.or(addr("vigil: listening syslog tcp://"));
            if line.contains("vigil: ready") {
                break;
            }
        }
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let http =
            http.unwrap_or_else(|| panic!("vigil serve did not start:\n{}", log.lock().unwrap()));
        Some(Limited {
            child,
            http,
            syslog_tcp,
            log,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    fn metric(&self, token: &str, name: &str) -> f64 {
        let a = curl_with(
            &["--interface", "127.0.0.9"],
            "GET",
            &format!("{}/metrics", self.url()),
            &[format!("Authorization: Bearer {token}")],
            None,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("server log:\n{}", self.log.lock().unwrap());
        }
    }
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// Opens `n` connections from `from` and keeps them open, idle.
fn idle_flood(from: &str, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).filter_map(|_| connect_from(from, to).ok()).collect()
}

/// Whether the server closed `stream` within `limit` (it keeps writing `pad` every half second,
/// as a slowloris does, and reads in between).
fn closed_within(stream: &mut TcpStream, pad: &[u8], limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if !pad.is_empty() && stream.write_all(pad).is_err() {
            return true;
        }
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // An answer (a 400 for a body that did not arrive) before the close.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn an_idle_syslog_flood_from_one_address_does_not_lock_out_other_senders() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "viewer", "watch");
    let Some(server) = Limited::start(dir.path(), &[]) else {
        return;
    };
    let syslog = server.syslog_tcp.unwrap();
    let flood = idle_flood("127.0.0.1", syslog, 1100);
    assert!(
        flood.len() >= 1024,
        "the flood opened {} connections",
        flood.len()
    );

    // Another sender, while the flood holds everything it was given.
    let mut sender = connect_from("127.0.0.2", syslog).expect("connect from 127.0.0.2");
    for i in 0..100 {
        writeln!(
            sender,
            "<13>Oct 11 22:14:15 host app: starved-sender line {i}"
        )
        .unwrap();
    }
    drop(sender);
    let stored = || {
        ledger_events(dir.path())
            .iter()
            .filter(|e| {
                e.get_str("message")
                    .is_some_and(|m| m.contains("starved-sender line"))
            })
            .count()
    };
    assert!(
        wait_until(30, || stored() == 100),
        "{} of 100 lines from 127.0.0.2 stored while 127.0.0.1 held {} idle connections",
        stored(),
        flood.len()
    );
    assert!(
        server.metric(
            &token,
            "vigil_connections_refused_total{listener=\"syslog-tcp\"}"
        ) > 0.0,
        "refusals are counted"
    );
    drop(flood);
}

#[test]
fn health_login_and_the_ui_answer_while_one_address_holds_its_maximum() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ops", "analyst", "correct horse battery");
    let token = create_token(dir.path(), "viewer", "watch");
    let Some(server) = Limited::start(dir.path(), &[]) else {
        return;
    };
    // 1,100 idle HTTP connections: more than the server's whole open-file limit.
    let mut flood = idle_flood("127.0.0.1", server.http, 1100);
    assert!(
        flood.len() >= 1024,
        "the flood opened {} connections",
        flood.len()
    );
    // A connection over the limit is told why before it is closed.
    let last = flood.last_mut().unwrap();
    last.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut refused = String::new();
    let _ = last.read_to_string(&mut refused);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    assert!(refused.contains("too many open connections"), "{refused:?}");

    let from = ["--interface", "127.0.0.3", "--max-time", "10"];
    let health = curl_with(
        &from,
        "GET",
        &format!("{}/healthz", server.url()),
        &[],
        None,
    );
    assert_eq!(health.status, 200, "{health:?}");
    // Not logged in: the UI sends the browser to its login page.
    let ui = curl_with(&from, "GET", &format!("{}/ui/", server.url()), &[], None);
    assert_eq!(ui.header("location"), Some("/login"), "{ui:?}");
    let page = curl_with(&from, "GET", &format!("{}/login", server.url()), &[], None);
    assert_eq!(page.status, 200, "{page:?}");
    let session = login_from("127.0.0.3", &server.url(), "ops", "correct horse battery")
        .expect("login from 127.0.0.3");
    let ui = curl_with(
        &from,
        "GET",
        &format!("{}/ui/", server.url()),
        &session.headers(),
        None,
    );
    assert_eq!(ui.status, 200, "{ui:?}");
    assert!(
        server.metric(&token, "vigil_connections_refused_total{listener=\"http\"}") > 0.0,
        "refusals are counted"
    );
    // The flooding address itself still gets its share (it is limited, not banned).
    drop(flood);
    assert!(wait_until(10, || {
        let a = curl_with(
            &["--max-time", "5"],
            "GET",
            &format!("{}/healthz", server.url()),
            &[],
            None,
        );
        a.status == 200
    }));
}

#[test]
fn slowloris_headers_and_idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "viewer", "watch");
    // Default timeouts: a request head within 20 s.
    let Some(server) = Limited::start(dir.path(), &[]) else {
        return;
    };
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = connect_from("127.0.0.1", server.http).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: vigil\r\n")
                .unwrap();
            s
        })
        .collect();
    // A keep-alive connection that made one request and then idles.
    let mut idle = connect_from("127.0.0.1", server.http).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = idle.read(&mut answer).unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );

    let started = Instant::now();
    for (i, s) in slow.iter_mut().enumerate() {
        let left = Duration::from_secs(35).saturating_sub(started.elapsed());
        assert!(
            closed_within(s, b"X-Pad: 1\r\n", left),
            "slowloris connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    let left = Duration::from_secs(35).saturating_sub(started.elapsed());
    assert!(
        closed_within(&mut idle, b"", left),
        "the idle keep-alive connection is still open"
    );
    assert!(
        server.metric(&token, "vigil_connection_timeouts_total{listener=\"http\"}") >= 50.0,
        "timeouts are counted"
    );
}

#[test]
fn a_trickled_body_and_an_idle_syslog_connection_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "ingest", "slow");
    let Some(server) = Limited::start(
        dir.path(),
        &["--body-timeout", "3s", "--syslog-idle-timeout", "3s"],
    ) else {
        return;
    };
    let mut slow = connect_from("127.0.0.1", server.http).unwrap();
    write!(
        slow,
        "POST /api/v1/ingest HTTP/1.1\r\nHost: vigil\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{{"
    )
    .unwrap();
    assert!(
        closed_within(&mut slow, b" ", Duration::from_secs(15)),
        "a body trickled a byte every half second is still being read after 15 s"
    );

    let mut quiet = connect_from("127.0.0.1", server.syslog_tcp.unwrap()).unwrap();
    quiet
        .write_all(b"<13>Oct 11 22:14:15 host app: before the silence\n")
        .unwrap();
    assert!(
        closed_within(&mut quiet, b"", Duration::from_secs(15)),
        "an idle syslog connection is still open after 15 s"
    );
    assert!(wait_until(10, || {
        ledger_events(dir.path()).iter().any(|e| {
            e.get_str("message")
                .is_some_and(|m| m.contains("before the silence"))
        })
    }));
}

/// The idle timeout restarts with every byte, so a byte now and then kept an unfinished line
/// (and a connection slot) forever. A line still unfinished `--syslog-frame-timeout` after its
/// first byte is stored as far as it came, tagged `truncated`, and the connection closed.
#[test]
fn a_syslog_line_trickled_past_the_frame_timeout_is_stored_cut_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = Limited::start(dir.path(), &["--syslog-frame-timeout", "3s"]) else {
        return;
    };
    let mut slow = connect_from("127.0.0.1", server.syslog_tcp.unwrap()).unwrap();
    slow.write_all(
        b"<13>Oct 11 22:14:15 host app: first line\n<13>Oct 11 22:14:15 host app: trickled ",
    )
    .unwrap();
    // A byte every half second: never idle, never finished.
    assert!(
        closed_within(&mut slow, b"x", Duration::from_secs(30)),
        "a line trickled a byte every half second is still being read after 30 s"
    );
    let trickled = || {
        ledger_events(dir.path()).into_iter().find(|e| {
            e.get_str("message")
                .is_some_and(|m| m.contains("trickled x"))
        })
    };
    assert!(
        wait_until(10, || trickled().is_some()),
        "what was sent is stored"
    );
    let event = trickled().unwrap();
    assert!(
        event
            .get("tags")
            .is_some_and(|t| t.to_string().contains("truncated")),
        "tagged truncated: {:?}",
        event.get("tags")
    );
    assert!(ledger_events(dir.path()).iter().any(|e| {
        e.get_str("message")
            .is_some_and(|m| m.contains("first line"))
            && e.get("tags")
                .is_none_or(|t| !t.to_string().contains("truncated"))
    }));
}

#[test]
fn a_sender_that_keeps_writing_cannot_hold_up_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut server) = Limited::start(dir.path(), &[]) else {
        return;
    };
    let mut stream = connect_from("127.0.0.1", server.syslog_tcp.unwrap()).unwrap();
    let writer = std::thread::spawn(move || {
        // Long lines: the bound is in bytes, and a debug build stores few events a second.
        let mut line = b"<13>Oct 11 22:14:15 host app: never stops ".to_vec();
        line.extend(std::iter::repeat_n(b'x', 4000));
        line.push(b'\n');
        let lines = line.repeat(64);
        while stream.write_all(&lines).is_ok() {}
    });
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    // Bounded: the drain of a stopping connection ends after 16 MiB.
    let stopped = wait_until(60, || matches!(server.child.try_wait(), Ok(Some(_))));
    assert!(stopped, "vigil serve still running 60 s after SIGTERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .contains("still sending after the stop"),
        "the cut is logged"
    );
    writer.join().unwrap();
}
