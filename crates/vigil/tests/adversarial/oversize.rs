//! Issue 13, defect 6: one large line used to stall `vigil agent` forever. A ~530 KB line is
//! stored twice (`message` and `event.original`), over the server's 1 MiB event limit; the
//! server answered 503 + Retry-After and the agent retried it forever, shipping nothing after
//! it. Now the event is stored cut and tagged `truncated`, and what follows arrives.

use std::fs;
use std::process::{Child, Stdio};

use crate::common::{Server, create_token, ledger_events, vigil, wait_until};

/// The agent, killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent_config(dir: &std::path::Path, url: &str, token: &str) -> std::path::PathBuf {
    let config = dir.join("agent.toml");
    fs::write(
        &config,
        format!(
            "server = \"{url}\"\ntoken = \"{token}\"\nstate_dir = \"{}\"\npoll_interval_ms = 50\n\
             [[file]]\npath = \"{}\"\nformat = \"raw\"\nsource = \"oversize\"\n",
            dir.join("state").display(),
            dir.join("app.log").display()
        ),
    )
    .unwrap();
    config
}

fn start_agent(config: &std::path::Path, stderr: Stdio) -> Agent {
    Agent(
        vigil()
            .args(["agent", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

/// A single line the server refuses with a 4xx (here 413: over a small body limit) can never
/// be stored: the agent logs it, counts it and goes on with the lines after it, instead of
/// retrying it forever.
#[test]
fn agent_treats_a_4xx_as_final_for_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "agent");
    let server = Server::start(&data, &["--max-body-bytes", "100000"]);
    let log = dir.path().join("app.log");
    fs::write(&log, format!("big {}\n", "y".repeat(200_000))).unwrap();
    let config = agent_config(dir.path(), &server.url, &token);
    let stderr_path = dir.path().join("agent.err");
    let _agent = start_agent(
        &config,
        Stdio::from(fs::File::create(&stderr_path).unwrap()),
    );
    assert!(
        wait_until(30, || fs::read_to_string(&stderr_path)
            .is_ok_and(|t| t.contains("413"))),
        "the agent sent the big batch"
    );
    // Lines written after the refused batch arrive.
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 0..10 {
        std::io::Write::write_all(&mut file, format!("later {i}\n").as_bytes()).unwrap();
    }
    let count = || {
        ledger_events(&data)
            .iter()
            .filter(|e| {
                e.get_str("message")
                    .is_some_and(|m| m.starts_with("later "))
            })
            .count()
    };
    assert!(
        wait_until(30, || count() == 10),
        "lines after a refused batch arrive: {} of 10; agent said:\n{}",
        count(),
        fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    let said = fs::read_to_string(&stderr_path).unwrap();
    assert!(said.contains("skipping it (1 batches refused"), "{said}");
    server.stop();
}

#[test]
fn agent_ships_lines_after_a_line_over_the_event_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "agent");
    let server = Server::start(&data, &[]);
    let log = dir.path().join("app.log");
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!("before {i}\n"));
    }
    text.push_str(&format!("huge {}\n", "x".repeat(530_000)));
    for i in 0..50 {
        text.push_str(&format!("after {i}\n"));
    }
    fs::write(&log, text).unwrap();
    let config = agent_config(dir.path(), &server.url, &token);
    let _agent = start_agent(&config, Stdio::null());
    let count = |prefix: &str| {
        ledger_events(&data)
            .iter()
            .filter(|e| e.get_str("message").is_some_and(|m| m.starts_with(prefix)))
            .count()
    };
    assert!(
        wait_until(60, || count("after ") == 50),
        "the lines after the large one arrive: {} of 50 (before: {})",
        count("after "),
        count("before ")
    );
    assert_eq!(count("before "), 20);
    let huge: Vec<_> = ledger_events(&data)
        .into_iter()
        .filter(|e| e.get_str("message").is_some_and(|m| m.starts_with("huge ")))
        .collect();
    assert_eq!(huge.len(), 1, "the large line is stored once");
    assert!(
        huge[0]
            .get("tags")
            .is_some_and(|t| t.to_string().contains("truncated")),
        "stored cut and tagged truncated: {:?}",
        huge[0].get("tags")
    );
    server.stop();
}

/// A request body that misses the body deadline (a slow link, or an attacker on the path
/// slowing it) is answered 408 Request Timeout, which a sender retries, not 400 — which the
/// agent took as "this batch can never be stored" and dropped.
#[test]
fn a_body_over_its_deadline_gets_408() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "slow");
    let server = Server::start(&data, &["--body-timeout", "2s"]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/ingest HTTP/1.1\r\nHost: vigil\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\nslow line\n"
    )
    .unwrap();
    // The rest of the body never comes; the answer comes when the deadline passes.
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a body over its deadline is answered 408: {answer}"
    );
    server.stop();
}

/// With `--max-body-bytes` below the agent's batch size every batch got 413 and the agent
/// dropped all of them. Now it sends a refused batch again in halves, and every line arrives,
/// each once.
#[test]
fn agent_delivers_every_line_under_a_small_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "agent");
    let server = Server::start(&data, &["--max-body-bytes", "100000"]);
    let log = dir.path().join("app.log");
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!("line {i:05} {}\n", "z".repeat(90)));
    }
    fs::write(&log, text).unwrap();
    let config = agent_config(dir.path(), &server.url, &token);
    let stderr_path = dir.path().join("agent.err");
    let _agent = start_agent(
        &config,
        Stdio::from(fs::File::create(&stderr_path).unwrap()),
    );
    let stored = || {
        let mut seen: Vec<String> = ledger_events(&data)
            .iter()
            .filter_map(|e| e.get_str("message").map(str::to_owned))
            .filter(|m| m.starts_with("line "))
            .collect();
        seen.sort();
        seen
    };
    assert!(
        wait_until(120, || stored().len() >= 3000),
        "every line arrives: {} of 3000; agent said:\n{}",
        stored().len(),
        fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    let seen = stored();
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 3000, "each line once");
    assert_eq!(seen.len(), 3000, "each line once");
    server.stop();
}
