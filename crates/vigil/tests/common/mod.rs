//! Helpers shared by the end-to-end tests of the web UI and its security: a real `vigil serve`
//! on a port it picks, accounts and tokens made with the real CLI, and curl as the client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_event::Event;

/// The `vigil` binary under test.
pub fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// A running `vigil serve` (HTTP only) whose standard error is collected.
pub struct Server {
    child: Child,
    /// Its data directory.
    pub data: PathBuf,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server on `data` with extra flags; waits until it is ready.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::try_start(data, extra)
            .unwrap_or_else(|log| panic!("vigil serve did not start:\n{log}"))
    }

    /// [`Server::start`], or what the server said when it exited before it was ready (a fixed
    /// port not free yet, say). By default HTTP is on a port the OS picks and syslog is off;
    /// `extra` may set `--http` and the syslog listeners itself.
    pub fn try_start(data: &Path, extra: &[&str]) -> Result<Server, String> {
        Server::try_start_env(data, extra, &[])
    }

    /// [`Server::try_start`] with extra environment variables for the server.
    pub fn try_start_env(
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let args = serve_args(
            data,
            &[
                ("--http", "127.0.0.1:0"),
                ("--syslog-udp", "off"),
                ("--syslog-tcp", "off"),
                ("--syslog-tls", "off"),
            ],
            extra,
        );
        let mut child = vigil()
            .args(&args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start vigil serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            for scheme in ["http", "https"] {
                if let Some(rest) = line.strip_prefix(&format!("vigil: listening {scheme}://")) {
                    url = rest
                        .split_whitespace()
                        .next()
                        .map(|a| format!("{scheme}://{a}"));
                }
            }
            if line.contains("vigil: ready") {
                break;
            }
        }
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Some(url) = url else {
            let _ = child.kill();
            let _ = child.wait();
            let log = log.lock().unwrap().clone();
            return Err(log);
        };
        Ok(Server {
            child,
            data: data.to_owned(),
            url,
            log,
        })
    }

    /// The server's process id (to freeze it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's exit status if it has exited by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the server (SIGTERM, then waits up to 20 s) and returns its log; panics unless it
    /// stopped cleanly (exit 0).
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log();
        assert!(
            status.is_some_and(|s| s.success()),
            "vigil serve did not stop cleanly ({status:?}):\n{log}"
        );
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve --data-dir DATA`, each of `defaults` unless `extra` sets that flag itself (clap
/// refuses a flag given twice), then `extra`.
pub fn serve_args(data: &Path, defaults: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["serve".to_owned(), "--data-dir".to_owned()];
    args.push(data.display().to_string());
    for (flag, value) in defaults {
        if !extra.contains(flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Whether `name` is on PATH; when it is not, the test is skipped with a message, or fails
/// under `VIGIL_REQUIRE_TOOLS=1` (CI).
pub fn require_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing_tool(name);
    }
    found
}

/// Whether python3 can import `module`; when it cannot, the test is skipped with a message, or
/// fails under `VIGIL_REQUIRE_TOOLS=1` (CI).
pub fn require_python_module(module: &str) -> bool {
    if !require_tool("python3") {
        return false;
    }
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing_tool(&format!("python3 module {module}"));
    }
    found
}

/// Reports a missing tool: a skip, or a failure under `VIGIL_REQUIRE_TOOLS=1` (CI).
pub fn missing_tool(name: &str) {
    skip(&format!("{name} not installed"));
}

/// Skips the calling test loudly — or, under `VIGIL_REQUIRE_TOOLS=1` (CI), fails it — because
/// `why` (something outside Rust it needs) is not there. The line goes straight to standard
/// error, past libtest's capture (which takes only the `print!`/`eprint!` macros), so a plain
/// `cargo test` shows every skip.
pub fn skip(why: &str) {
    assert!(
        std::env::var("VIGIL_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{why} (VIGIL_REQUIRE_TOOLS=1: required)"
    );
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    say(&format!("SKIP {test}: {why}"));
}

/// Writes a line on standard error past libtest's output capture.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs a command and returns its standard output; panics with its standard error on failure.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates a token with the real CLI.
pub fn create_token(data: &Path, role: &str, name: &str) -> String {
    let mut cmd = vigil();
    if role == "bouncer" {
        cmd.args(["bouncer", "add", "--data-dir"])
            .arg(data)
            .arg(name);
    } else {
        cmd.args(["token", "create", "--data-dir"])
            .arg(data)
            .args(["--role", role, "--name", name]);
    }
    run_ok(&mut cmd).trim().to_owned()
}

/// Adds an account with the real CLI (password on standard input).
pub fn add_user(data: &Path, name: &str, role: &str, password: &str) {
    let mut child = vigil()
        .args(["user", "add", "--data-dir"])
        .arg(data)
        .args(["--role", role, "--password-stdin", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "vigil user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTP answer as curl saw it.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Response headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Answer {
    /// The first header of this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Makes one request with curl: `method url`, extra headers, optional body.
pub fn curl(method: &str, url: &str, headers: &[String], body: Option<&str>) -> Answer {
    curl_with(&[], method, url, headers, body)
}

/// [`curl`] with extra curl options first (`--interface 127.0.0.2` for another source address).
pub fn curl_with(
    options: &[&str],
    method: &str,
    url: &str,
    headers: &[String],
    body: Option<&str>,
) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(options);
    cmd.args([
        "-sk",
        "-D",
        "-",
        "-o",
        "-",
        "-X",
        method,
        "--max-time",
        "60",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    cmd.arg(url);
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer from {method} {url}: {text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A logged-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    /// `vigil_session=…`.
    pub cookie: String,
    /// The CSRF token.
    pub csrf: String,
}

impl Session {
    /// Headers for a request in this session (the CSRF token included).
    pub fn headers(&self) -> Vec<String> {
        vec![
            format!("Cookie: {}", self.cookie),
            format!("X-CSRF-Token: {}", self.csrf),
        ]
    }
}

/// Logs in; the answer when it fails.
pub fn login(url: &str, user: &str, password: &str) -> Result<Session, Answer> {
    login_from("127.0.0.1", url, user, password)
}

/// [`login`] from another loopback source address (`127.0.0.2`, …).
pub fn login_from(source: &str, url: &str, user: &str, password: &str) -> Result<Session, Answer> {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let a = curl_with(
        &["--interface", source],
        "POST",
        &format!("{url}/api/v1/login"),
        &["Content-Type: application/json".into()],
        Some(&body),
    );
    if a.status != 200 {
        return Err(a);
    }
    let cookie = a
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let csrf = a.json()["csrf"].as_str().unwrap().to_owned();
    Ok(Session { cookie, csrf })
}

/// Every event in a data directory's ledger (read without a lock).
pub fn ledger_events(data: &Path) -> Vec<Event> {
    let Ok(mut reader) = vigil_ledger::LedgerReader::open(data) else {
        return Vec::new();
    };
    let end = reader.end_seq();
    let mut out = Vec::new();
    reader
        .for_each_raw(reader.first_seq()..end, |_, raw| {
            out.push(Event::from_canonical(raw).unwrap());
            Ok(())
        })
        .unwrap();
    out
}

/// Waits up to `secs` for `check` to hold.
pub fn wait_until(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// Audit events (`event.dataset: vigil.audit`) with this action.
pub fn audit_events(data: &Path, action: &str) -> Vec<Event> {
    ledger_events(data)
        .into_iter()
        .filter(|e| {
            e.get_str("event.dataset") == Some("vigil.audit")
                && e.get_str("event.action") == Some(action)
        })
        .collect()
}

/// Waits (up to `secs`) until `GET /api/v1/alerts` lists an alert of the rule titled `title`
/// whose group has `field` = `value`.
pub fn wait_for_alert(
    url: &str,
    token: &str,
    title: &str,
    (field, value): (&str, &str),
    secs: u64,
) -> bool {
    let auth = format!("Authorization: Bearer {token}");
    wait_until(secs, || {
        let a = curl(
            "GET",
            &format!("{url}/api/v1/alerts"),
            std::slice::from_ref(&auth),
            None,
        );
        a.json()["alerts"].as_array().is_some_and(|alerts| {
            alerts
                .iter()
                .any(|al| al["rule"]["title"] == title && al["group"][field] == value)
        })
    })
}

/// `POST /api/v1/ingest` of an NDJSON body too large for a command line (curl reads it from a
/// temporary file; no `Expect: 100-continue` round trip).
pub fn ingest_ndjson(url: &str, token: &str, body: &str) -> Answer {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(body.as_bytes()).unwrap();
    curl(
        "POST",
        &format!("{url}/api/v1/ingest"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/x-ndjson".to_owned(),
            "Expect:".to_owned(),
        ],
        Some(&format!("@{}", file.path().display())),
    )
}

/// A Sigma rule on every failed SSH login (`event.action: ssh_login`, outcome failure), for
/// tests that need alerts (and, with `--ban-rule "SSH failed login"`, bans).
pub const SSH_FAILED_LOGIN_RULE: &str = r#"title: SSH failed login
id: 5d0c2a8e-1b7f-4c44-9f0e-00000000d001
status: test
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: high
"#;

/// A loopback port nothing listens on right now, below the kernel's ephemeral range so no
/// outgoing connection takes it before the test binds it: for a listener a test starts later,
/// or a notifier or sink that must fail to connect.
pub fn unused_port() -> u16 {
    vigil_cluster::testing::free_port()
}

/// `tests/browser`: the playwright-core scripts of the browser tests.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why a browser test cannot run here, if it cannot: node, `npm ci` in `tests/browser`
/// (playwright-core) and Chromium (`$CHROMIUM`, default `/usr/bin/chromium`) are needed.
pub fn browser_missing() -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some(format!(
            "playwright-core is not installed: run `npm ci` in {}",
            browser_dir().display()
        ));
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    (!Path::new(&chromium).exists())
        .then(|| format!("{chromium} is missing: apt-get install chromium"))
}
pub mod cluster;
pub mod respond;
