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

/// A batch the server refuses with a 4xx (here 413: over a small body limit) can never be
/// stored: the agent logs it, counts it and goes on with the lines after it, instead of
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
