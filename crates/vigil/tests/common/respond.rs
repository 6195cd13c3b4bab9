//! Real receivers of Vigil's responses, for end-to-end tests: a webhook listener (Python's
//! http.server), an SMTP server (aiosmtpd) and Debian's crowdsec-custom-bouncer. Each runs as a
//! child process killed when its guard drops, and records what it received in a file. The one
//! set every test uses (`ingest_e2e`, `drill`, `report_schedule`, …).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real HTTP listener that appends each POST body (one line) to a file: the guard, its URL
/// and the file.
pub fn webhook_listener(dir: &Path) -> (KillOnDrop, String, PathBuf) {
    let out = dir.join("webhook.ndjson");
    let script = r#"
import http.server, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(out, 'ab') as f:
            f.write(body.replace(b'\n', b' ') + b'\n')
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, &out.display().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (
        KillOnDrop(child),
        format!("http://127.0.0.1:{}/hook", line.trim()),
        out,
    )
}

/// One message the SMTP server received: its envelope recipients and its content (headers
/// and body, as sent).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    /// `RCPT TO` addresses of the envelope.
    pub rcpt_to: Vec<String>,
    /// The message itself (RFC 5322 text; bytes that are not UTF-8 replaced).
    pub content: String,
}

/// A real SMTP server (aiosmtpd) recording every message it accepts, with its envelope
/// recipients, as one JSON line in a file. Killed when dropped.
pub struct SmtpServer {
    _child: KillOnDrop,
    /// The loopback port it listens on.
    pub port: u16,
    file: PathBuf,
}

impl SmtpServer {
    /// Starts one on a free loopback port, recording into `DIR/mail.ndjson`.
    pub fn start(dir: &Path) -> SmtpServer {
        let file = dir.join("mail.ndjson");
        let script = r#"
import json, socket, sys, time
from aiosmtpd.controller import Controller
out = sys.argv[1]
class H:
    async def handle_DATA(self, server, session, envelope):
        line = json.dumps({"rcpt_to": envelope.rcpt_tos,
                           "content": envelope.content.decode("utf-8", "replace")})
        with open(out, 'a') as f:
            f.write(line + "\n")
        return '250 OK'
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
c = Controller(H(), hostname='127.0.0.1', port=port)
c.start()
print(port, flush=True)
while True: time.sleep(3600)
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, &file.display().to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("aiosmtpd port");
        SmtpServer {
            _child: KillOnDrop(child),
            port,
            file,
        }
    }

    /// Every message received so far, in order (a line still being written is not one yet).
    pub fn messages(&self) -> Vec<Mail> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The messages once there are at least `n`, or whatever came within `secs`.
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Mail> {
        let mut mails = Vec::new();
        super::wait_until(secs, || {
            mails = self.messages();
            mails.len() >= n
        });
        mails
    }
}

/// Debian's crowdsec-custom-bouncer polling `api` (host:port) with `key` every second, running
/// a script that appends its arguments to a file: the guard and the file (`None`, with SKIP
/// said, when the bouncer is not installed).
pub fn custom_bouncer(dir: &Path, api: &str, key: &str) -> Option<(KillOnDrop, PathBuf)> {
    let bin = Path::new("/usr/bin/crowdsec-custom-bouncer");
    if !bin.exists() {
        super::skip("crowdsec-custom-bouncer not installed");
        return None;
    }
    let calls = dir.join("bouncer-calls.txt");
    let script = dir.join("ban.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
    )
    .unwrap();
    Command::new("chmod")
        .args(["+x", &script.display().to_string()])
        .status()
        .unwrap();
    let config = dir.join("bouncer.yaml");
    std::fs::write(
        &config,
        format!(
            "bin_path: {}\nfeed_via_stdin: false\ntotal_retries: 0\nscenarios_containing: []\nscenarios_not_containing: []\norigins: []\npiddir: {}/\nupdate_frequency: 1s\ncache_retention_duration: 1s\ndaemonize: false\nlog_mode: stdout\nlog_level: info\napi_url: http://{api}/\napi_key: {key}\nprometheus:\n  enabled: false\n  listen_addr: 127.0.0.1\n  listen_port: 0\n",
            script.display(),
            dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("bouncer.log")).unwrap();
    let child = Command::new(bin)
        .args(["-c", &config.display().to_string()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Some((KillOnDrop(child), calls))
}
