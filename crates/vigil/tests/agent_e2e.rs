//! End-to-end `vigil agent`: a real `vigil serve` and the real agent binary. Lines are written
//! to files that are rotated (rename + create, then copytruncate) while writing goes on, and the
//! agent is killed with SIGKILL mid-stream and restarted; every line must be in the ledger
//! exactly once.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_token, missing_tool, require_tool, vigil, wait_until};
use vigil_event::Event;

/// A running `vigil serve` with HTTP only, on a port it picks itself, and an ingest token.
struct Server {
    server: common::Server,
    /// `127.0.0.1:PORT`.
    http: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = create_token(&data, "ingest", "agent");
        let server = common::Server::start(&data, &[]);
        let http = server.url.strip_prefix("http://").unwrap().to_owned();
        Server {
            server,
            http,
            token,
            _dir: dir,
        }
    }

    fn all_events(&self) -> Vec<Event> {
        common::ledger_events(&self.server.data)
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

    /// Starts the agent with its stderr collected into the returned buffer.
    fn start_logged(config: &Path) -> (Agent, std::sync::Arc<std::sync::Mutex<String>>) {
        let mut child = vigil()
            .args(["agent", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        (Agent(child), log)
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
        (
            format!("{head}token = \"t\"\n[[journald]]\nunit = \"ssh.service\"\n"),
            "unit",
        ),
        (
            format!("{head}token = \"t\"\n[[journald]]\ndirectory = \"/d\"\nfile = \"/f\"\n"),
            "not both",
        ),
        (
            format!("{head}token = \"t\"\n[[journald]]\n[[journald]]\n"),
            "listed twice",
        ),
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

// ---- journald -------------------------------------------------------------------------------

/// Pids of the live `journalctl` processes whose command line mentions `path`.
fn journalctl_processes(path: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // A zombie has an empty command line; it is dead already.
        if args.first().is_some_and(|a| a.ends_with("journalctl"))
            && args.iter().any(|a| a.contains(path))
        {
            out.push(pid);
        }
    }
    out
}

/// `systemd-journal-remote` (Debian package systemd-journal-remote), which writes real journal
/// files from journal export format, and `journalctl`, which the agent runs.
fn journal_tools() -> Option<PathBuf> {
    if !require_tool("journalctl") {
        return None;
    }
    let remote = ["/lib/systemd", "/usr/lib/systemd"]
        .iter()
        .map(|d| Path::new(d).join("systemd-journal-remote"))
        .find(|p| p.exists());
    if remote.is_none() {
        missing_tool("systemd-journal-remote");
    }
    remote
}

/// Microseconds since the epoch, an hour ago: entry `i` is stamped `BASE + i ms`.
fn journal_base_us() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now.as_secs() - 3600) * 1_000_000
}

/// Test entry `i`: every third an sshd failed login from 203.0.113.x, every tenth a two-line
/// message with a byte that is not UTF-8 (journald prints it as a byte array), the rest an
/// application line. Each names `jt-NNNNNN`.
fn journal_entry(base_us: u64, i: u64) -> Vec<u8> {
    let mut fields: Vec<(&str, Vec<u8>)> = vec![
        (
            "__REALTIME_TIMESTAMP",
            (base_us + i * 1000).to_string().into(),
        ),
        (
            "__MONOTONIC_TIMESTAMP",
            (1_000_000 + i * 1000).to_string().into(),
        ),
        ("_BOOT_ID", b"0123456789abcdef0123456789abcdef".to_vec()),
        ("_HOSTNAME", b"jhost".to_vec()),
    ];
    if i.is_multiple_of(3) {
        fields.extend([
            ("SYSLOG_IDENTIFIER", b"sshd".to_vec()),
            ("_PID", (1000 + i).to_string().into()),
            ("PRIORITY", b"6".to_vec()),
            ("SYSLOG_FACILITY", b"10".to_vec()),
            (
                "MESSAGE",
                format!(
                    "Failed password for invalid user jt-{i:06} from 203.0.113.{} port {} ssh2",
                    i % 254 + 1,
                    40000 + i
                )
                .into(),
            ),
        ]);
    } else if i % 10 == 1 {
        let mut message = format!("jt-{i:06} first line\nsecond line ").into_bytes();
        message.push(0xff);
        fields.extend([
            ("_COMM", b"multi".to_vec()),
            ("PRIORITY", b"3".to_vec()),
            ("MESSAGE", message),
        ]);
    } else {
        fields.extend([
            ("SYSLOG_IDENTIFIER", b"demo".to_vec()),
            ("_PID", b"77".to_vec()),
            ("MESSAGE", format!("jt-{i:06} application message").into()),
        ]);
    }
    // Journal export format: `FIELD=value\n`, or for data that is not plain text
    // `FIELD\n` + little-endian u64 length + bytes + `\n`; a blank line ends the entry.
    let mut out = Vec::new();
    for (name, value) in fields {
        if value.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(&value);
        } else {
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(&value);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Appends entries `range` to the journal file `journal` with a real systemd-journal-remote.
fn append_journal(remote: &Path, journal: &Path, base_us: u64, range: std::ops::Range<u64>) {
    let mut child = Command::new(remote)
        .arg(format!("--output={}", journal.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in range {
        stdin.write_all(&journal_entry(base_us, i)).unwrap();
    }
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A TOML snippet from docs/sending.md, by its `<!-- snippet: NAME -->` marker.
fn doc_snippet(name: &str) -> String {
    let docs = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sending.md"
    ))
    .unwrap();
    let marker = format!("<!-- snippet: {name} -->");
    let rest = docs
        .split(&marker)
        .nth(1)
        .unwrap_or_else(|| panic!("{marker} in docs/sending.md"));
    let rest = rest
        .trim_start()
        .strip_prefix("```toml\n")
        .unwrap_or_else(|| panic!("a ```toml block after {marker}"));
    rest.split("```").next().unwrap().to_owned()
}

/// The doc's agent configuration `name` pointed at this test's server and state directory,
/// with `edit` applied to its table.
fn doc_agent_config(
    server: &Server,
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut toml::Table),
) -> PathBuf {
    let mut table: toml::Table = doc_snippet(name).parse().unwrap();
    assert!(table.contains_key("server") && table.contains_key("state_dir"));
    table.insert("server".into(), format!("http://{}", server.http).into());
    table.remove("token_file");
    table.insert("token".into(), server.token.clone().into());
    let state = dir.join("state").display().to_string();
    table.insert("state_dir".into(), state.into());
    table.insert("poll_interval_ms".into(), 50.into());
    edit(&mut table);
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    path
}

/// Points every `[[journald]]` of `table` at the journal file `journal`.
fn use_journal_file(table: &mut toml::Table, journal: &Path) {
    let entries = table["journald"]
        .as_array_mut()
        .expect("[[journald]] entries");
    for entry in entries {
        let entry = entry.as_table_mut().unwrap();
        entry.insert("file".into(), journal.display().to_string().into());
    }
}

/// docs/sending.md's journald configuration, run against a real journal file written by
/// systemd-journal-remote while the agent follows it; the agent is SIGKILLed mid-stream three
/// times and restarted. Every entry arrives exactly once, sshd's become authentication
/// failures with `source.ip`, and byte-array messages arrive whole.
#[test]
fn journald_entries_arrive_exactly_once_across_kill_9() {
    let Some(remote) = journal_tools() else {
        return;
    };
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("remote.journal");
    let base = journal_base_us();
    let n = 1500;
    append_journal(&remote, &journal, base, 0..300);
    let config = doc_agent_config(&server, dir.path(), "agent-journald", |t| {
        use_journal_file(t, &journal)
    });
    let writer = {
        let (remote, journal) = (remote.clone(), journal.clone());
        std::thread::spawn(move || {
            for start in (300..n).step_by(30) {
                append_journal(&remote, &journal, base, start..start + 30);
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    let mut agent = Agent::start(&config);
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(500 + 230 * round));
        agent.kill_9();
        std::thread::sleep(Duration::from_millis(100));
        agent = Agent::start(&config);
    }
    writer.join().unwrap();
    let seen = server.wait_for("jt-", n as usize);
    assert_exactly_once(&seen, n);
    // With the journal quiet, journalctl has nothing to write, so it cannot learn of a dead
    // reader from a failed write: it must still end with the agent (journalctl --follow
    // watches its standard output for a hang-up; systemd 252 here), or every kill -9 of an
    // agent would leave one behind.
    let path = journal.display().to_string();
    assert!(
        !journalctl_processes(&path).is_empty(),
        "the agent runs journalctl"
    );
    agent.kill_9();
    assert!(
        wait_until(5, || journalctl_processes(&path).is_empty()),
        "journalctl outlived the agent: {:?}",
        journalctl_processes(&path)
    );

    let events = server.all_events();
    let mut sshd = 0;
    let mut multi = 0;
    for e in &events {
        let text = e.get_str("message").unwrap_or("");
        let Some(at) = text.find("jt-") else { continue };
        let i: u64 = text[at + 3..at + 9].parse().unwrap();
        assert_eq!(e.get_str("vigil.source"), Some("journald"), "{e:?}");
        assert_eq!(e.get_str("host.name"), Some("jhost"), "{e:?}");
        let want_time = vigil_event::Timestamp::from_nanos(((base + i * 1000) * 1000) as i64);
        assert_eq!(e.timestamp(), want_time, "entry {i}: {e:?}");
        if i.is_multiple_of(3) {
            sshd += 1;
            assert_eq!(e.get_str("process.name"), Some("sshd"), "{e:?}");
            assert_eq!(
                e.get("process.pid").unwrap().to_string(),
                (1000 + i).to_string()
            );
            assert!(
                e.get("event.category")
                    .unwrap()
                    .to_string()
                    .contains("authentication")
            );
            assert_eq!(e.get_str("event.outcome"), Some("failure"), "{e:?}");
            assert_eq!(e.get_str("user.name"), Some(format!("jt-{i:06}").as_str()));
            let ip = format!("203.0.113.{}", i % 254 + 1);
            assert_eq!(e.get("source.ip").unwrap().to_string(), ip);
            assert_eq!(
                e.get("source.port").unwrap().to_string(),
                (40000 + i).to_string()
            );
            assert_eq!(e.get_str("log.syslog.facility.name"), Some("authpriv"));
        } else if i % 10 == 1 {
            multi += 1;
            assert_eq!(e.get_str("process.name"), Some("multi"), "{e:?}");
            assert_eq!(e.get_str("log.level"), Some("err"), "{e:?}");
            assert_eq!(
                text,
                format!("jt-{i:06} first line#012second line \u{fffd}"),
                "{e:?}"
            );
        } else {
            assert_eq!(e.get_str("process.name"), Some("demo"), "{e:?}");
        }
    }
    assert_eq!(sshd, n.div_ceil(3));
    assert_eq!(multi, (0..n).filter(|i| i % 3 != 0 && i % 10 == 1).count());

    // Idle (everything acknowledged): a kill -9 and restart re-sends nothing, and new entries
    // still flow exactly once.
    let before = events.len();
    agent.kill_9();
    let mut agent = Agent::start(&config);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        server.all_events().len(),
        before,
        "entries re-sent after an idle restart"
    );
    append_journal(&remote, &journal, base, n..n + 50);
    let seen = server.wait_for("jt-", (n + 50) as usize);
    assert_exactly_once(&seen, n + 50);
    // The journalctl of a SIGKILLed agent lives on until it next writes to the closed pipe:
    // one more entry ends those of this test.
    agent.kill_9();
    append_journal(&remote, &journal, base, n + 50..n + 51);
}

/// A `journalctl` that exits (here killed after half a second, again and again) is restarted
/// from the acknowledged cursor: nothing lost, nothing twice. One that cannot start is logged
/// and retried while the other source keeps flowing.
#[test]
fn journalctl_that_exits_or_cannot_start_is_restarted() {
    let Some(remote) = journal_tools() else {
        return;
    };
    if !require_tool("timeout") {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("remote.journal");
    let base = journal_base_us();
    let wrapper = dir.path().join("journalctl-dies");
    fs::write(
        &wrapper,
        "#!/bin/sh\nexec timeout -s KILL 0.5 journalctl \"$@\"\n",
    )
    .unwrap();
    let mut perms = fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&wrapper, perms).unwrap();
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "server = \"http://{}\"\ntoken = \"{}\"\nstate_dir = \"{}\"\npoll_interval_ms = 50\n\
             [[journald]]\njournalctl = \"{}\"\nfile = \"{}\"\nsource = \"dies\"\n\
             [[journald]]\njournalctl = \"{}\"\nsource = \"missing\"\n",
            server.http,
            server.token,
            dir.path().join("state").display(),
            wrapper.display(),
            journal.display(),
            dir.path().join("no-such-journalctl").display(),
        ),
    )
    .unwrap();
    append_journal(&remote, &journal, base, 0..100);
    let (mut agent, log) = Agent::start_logged(&config);
    for start in (100..600).step_by(20) {
        append_journal(&remote, &journal, base, start..start + 20);
        std::thread::sleep(Duration::from_millis(60));
    }
    let seen = server.wait_for("jt-", 600);
    assert_exactly_once(&seen, 600);
    assert!(agent.0.try_wait().unwrap().is_none(), "the agent exited");
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("journald dies: journalctl exited (signal: 9"),
        "{log}"
    );
    assert!(
        log.contains("journald missing: cannot start") && log.contains("no-such-journalctl"),
        "{log}"
    );
    agent.kill_9();
}

/// The agent configurations in docs/sending.md are valid (`vigil agent --check`).
#[test]
fn docs_agent_snippets_are_valid_configs() {
    let server = Server::start();
    for name in ["agent-journald", "agent-files"] {
        let dir = tempfile::tempdir().unwrap();
        let config = doc_agent_config(&server, dir.path(), name, |_| {});
        let o = vigil()
            .args(["agent", "--check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(": ok ("), "{name}: {out}");
        assert!(!dir.path().join("state").exists(), "--check wrote state");
    }
    // And --check refuses what the agent would refuse.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        "server = \"http://x\"\ntoken = \"t\"\nstate_dir = \"/s\"\n",
    )
    .unwrap();
    let o = vigil()
        .args(["agent", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
