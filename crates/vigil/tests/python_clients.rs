//! Applications in Python, the seeds' own example: the repository's `vigil_logging` package
//! (installed with pip from its path) across restarts of Vigil and of the application, and the
//! standard library's own `HTTPHandler` and `SysLogHandler` with structured messages — all
//! real Python programs against a real `vigil serve`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use vigil_event::{Event, Value};

fn client_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python")
}

/// `pip install` of `clients/python` into a directory of its own (no network: the package has
/// no dependencies and is built with the setuptools already installed).
fn install_client(into: &Path) -> bool {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
        ])
        .args(["--disable-pip-version-check", "--target"])
        .arg(into)
        .arg(client_source())
        .output()
        .expect("run pip");
    if !out.status.success() {
        panic!(
            "pip could not install clients/python:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    into.join("vigil_logging").join("vocabulary.json").is_file()
}

/// The application: logs `per_phase` security events in each phase it is given, waiting for
/// the file `go-<phase>` in `control` before each, and for `flush-<phase>` before flushing; its
/// last line is the handler's stats.
const APP: &str = r#"
import logging, os, sys, time
from vigil_logging import VigilHandler, login_fail, authz_fail, admin_change
url, token, spool, control, per_phase = sys.argv[1:6]
phases = sys.argv[6].split(",")
handler = VigilHandler(url, token, service="shop", spool_dir=spool, batch_size=25,
                       flush_interval=0.1, backoff_base=0.05, backoff_max=0.5,
                       timeout=3, close_timeout=float(sys.argv[7]))
log = logging.getLogger("shop.security")
log.addHandler(handler)
log.setLevel(logging.INFO)
def wait(name):
    while not os.path.exists(os.path.join(control, name)):
        time.sleep(0.02)
for phase in phases:
    wait("go-" + phase)
    for i in range(int(per_phase)):
        marker = "py-%s-%d" % (phase, i)
        if i % 3 == 0:
            log.warning("login failed %s", marker, extra=login_fail("alice", source_ip="203.0.113.5"))
        elif i % 3 == 1:
            log.error("denied %s", marker, extra=authz_fail("bob", "/admin/users"))
        else:
            log.warning("changed %s", marker, extra=admin_change("carol", "dave", "role=admin"))
    with open(os.path.join(control, "logged-" + phase), "w"):
        pass
handler.close()
print(handler.stats, flush=True)
"#;

fn start_app(
    lib: &Path,
    url: &str,
    token: &str,
    spool: &Path,
    control: &Path,
    phases: &str,
    close_timeout: &str,
) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(APP)
        .args([url, token])
        .arg(spool)
        .arg(control)
        .args(["40", phases, close_timeout])
        .env("PYTHONPATH", lib)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python application")
}

fn touch(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), b"").unwrap();
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the Python application failed:\n{text}"
    );
    text
}

/// The events whose message carries `py-<phase>-<i>`, by marker.
fn by_marker(data: &Path) -> BTreeMap<String, Vec<Event>> {
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in ledger_events(data) {
        if let Some(m) = e
            .get_str("message")
            .and_then(|m| m.split(' ').find(|w| w.starts_with("py-")))
        {
            out.entry(m.to_owned()).or_default().push(e);
        }
    }
    out
}

#[test]
fn python_handler_delivers_each_event_once_across_restarts_of_vigil_and_the_app() {
    if !require_tool("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    assert!(
        install_client(&lib),
        "pip installed the package with its vocabulary"
    );
    let (data, spool, control) = (
        dir.path().join("data"),
        dir.path().join("spool"),
        dir.path().join("control"),
    );
    std::fs::create_dir_all(&control).unwrap();
    let port = unused_port();
    let http = format!("127.0.0.1:{port}");
    let server = Server::start(&data, &["--http", &http]);
    let token = create_token(&data, "ingest", "shop");
    let url = server.url.clone();

    // Phase a: Vigil up. Phase b: Vigil killed (-9) while the application logs; the
    // application then exits with Vigil still down, its batches in the spool.
    let app = start_app(&lib, &url, &token, &spool, &control, "a,b", "1");
    touch(&control, "go-a");
    assert!(
        wait_until(30, || by_marker(&data).len() == 40),
        "phase a delivered"
    );
    drop(server); // SIGKILL
    touch(&control, "go-b");
    let stats = finish(app);
    let spooled = std::fs::read_dir(&spool).unwrap().count();
    assert!(spooled > 0, "phase b waits in the spool: {stats}");

    // Vigil back on the same port; a new process of the application on the same spool sends
    // phase b from it, then logs phase c.
    let server = Server::start(&data, &["--http", &http]);
    let app = start_app(&lib, &url, &token, &spool, &control, "c", "30");
    touch(&control, "go-c");
    let stats = finish(app);
    let events = by_marker(&server.data);
    for phase in ["a", "b", "c"] {
        for i in 0..40 {
            let marker = format!("py-{phase}-{i}");
            let n = events.get(&marker).map_or(0, Vec::len);
            assert_eq!(n, 1, "{marker} stored {n} times ({stats})");
        }
    }
    assert_eq!(
        std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "ndjson"))
            .count(),
        0,
        "the spool is empty once delivered"
    );
    // The vocabulary helpers' fields, as Vigil classified them.
    let login = &events["py-a-0"][0];
    assert_eq!(login.get_str("event.action"), Some("authn_login_fail"));
    assert_eq!(login.get_str("event.category"), Some("authentication"));
    assert_eq!(login.get_str("event.outcome"), Some("failure"));
    assert_eq!(login.get_str("user.name"), Some("alice"));
    assert_eq!(
        login.get("source.ip"),
        Some(&Value::Ip("203.0.113.5".parse().unwrap()))
    );
    assert_eq!(login.get_str("service.name"), Some("shop"));
    assert_eq!(login.get_str("log.logger"), Some("shop.security"));
    let denied = &events["py-a-1"][0];
    assert_eq!(denied.get_str("event.action"), Some("authz_fail"));
    assert_eq!(denied.get_str("url.path"), Some("/admin/users"));
    let changed = &events["py-a-2"][0];
    assert_eq!(changed.get_str("user.target.name"), Some("dave"));
    assert!(
        events.values().flatten().all(|e| !e.has_tag("parse_error")),
        "no parse errors"
    );
    server.stop();
}

/// The standard library's `HTTPHandler` (form-encoded records, Basic credentials with the
/// token as password) and `SysLogHandler` with its defaults (UDP; NUL-terminated over TCP)
/// carrying `key=value` and JSON messages.
const STDLIB: &str = r#"
import json, logging, logging.handlers, socket, sys
host, http_port, token, udp_port, tcp_port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
web = logging.getLogger("stdlib.http")
web.setLevel(logging.INFO)
web.addHandler(logging.handlers.HTTPHandler("%s:%s" % (host, http_port), "/api/v1/ingest",
                                            method="POST", credentials=("python", token)))
web.warning("login failed for %s from %s (%d tries)", "erin", "198.51.100.23", 4,
            extra={"user": "erin", "action": "authn_login_fail", "marker": "form-1"})
try:
    1 / 0
except ZeroDivisionError:
    web.exception("crash in %r", "checkout", extra={"marker": "form-2"})
for proto, port, kind in (("udp", udp_port, socket.SOCK_DGRAM), ("tcp", tcp_port, socket.SOCK_STREAM)):
    handler = logging.handlers.SysLogHandler(address=(host, port), socktype=kind)
    log = logging.getLogger("stdlib.syslog." + proto)
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    log.warning("login failed user=frank src=192.0.2.77 action=authn_login_fail marker=kv-%s" % proto)
    log.warning(json.dumps({"event": "authz_fail:grace,/admin", "source_ip": "192.0.2.78", "marker": "json-" + proto}))
    log.warning("plain words and nothing else marker-plain-%s" % proto)
    handler.close()
"#;

#[test]
fn stdlib_http_and_syslog_handlers_are_read_usefully() {
    if !require_tool("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (udp, tcp) = (unused_port(), unused_port());
    let server = Server::start(
        &data,
        &[
            "--syslog-udp",
            &format!("127.0.0.1:{udp}"),
            "--syslog-tcp",
            &format!("127.0.0.1:{tcp}"),
        ],
    );
    let token = create_token(&data, "ingest", "stdlib");
    let http_port = server.url.rsplit(':').next().unwrap().to_owned();
    run_ok(Command::new("python3").args([
        "-c",
        STDLIB,
        "127.0.0.1",
        &http_port,
        &token,
        &udp.to_string(),
        &tcp.to_string(),
    ]));
    let find = |data: &Path, marker: &str| -> Vec<Event> {
        ledger_events(data)
            .into_iter()
            .filter(|e| {
                e.get_str("marker") == Some(marker)
                    || e.get_str("message").is_some_and(|m| m.contains(marker))
            })
            .collect()
    };
    assert!(
        wait_until(20, || [
            "form-1",
            "form-2",
            "kv-udp",
            "kv-tcp",
            "json-udp",
            "json-tcp",
            "marker-plain-udp",
            "marker-plain-tcp"
        ]
        .iter()
        .all(|m| find(&data, m).len() == 1)),
        "every record arrives once:\n{}",
        server.log()
    );

    let form = &find(&data, "form-1")[0];
    assert_eq!(
        form.get_str("message"),
        Some("login failed for erin from 198.51.100.23 (4 tries)")
    );
    assert_eq!(form.get_str("log.logger"), Some("stdlib.http"));
    assert_eq!(form.get_str("log.level"), Some("warning"));
    assert_eq!(form.get_str("user.name"), Some("erin"));
    assert_eq!(form.get_str("event.category"), Some("authentication"));
    assert_eq!(form.get_str("event.outcome"), Some("failure"));
    assert!(matches!(form.get("process.pid"), Some(Value::Int(_))));
    assert!(!form.has_tag("parse_error"), "{form:?}");
    let crash = &find(&data, "form-2")[0];
    assert_eq!(crash.get_str("message"), Some("crash in 'checkout'"));
    assert_eq!(
        crash.get_str("error.type"),
        Some("ZeroDivisionError"),
        "{crash:?}"
    );
    assert!(
        crash
            .get_str("error.message")
            .is_some_and(|t| t.contains("division by zero")),
        "{crash:?}"
    );

    for proto in ["udp", "tcp"] {
        let kv = &find(&data, &format!("kv-{proto}"))[0];
        assert_eq!(kv.get_str("user.name"), Some("frank"), "{kv:?}");
        assert_eq!(
            kv.get("source.ip"),
            Some(&Value::Ip("192.0.2.77".parse().unwrap()))
        );
        assert_eq!(kv.get_str("event.category"), Some("authentication"));
        let json = &find(&data, &format!("json-{proto}"))[0];
        assert_eq!(json.get_str("event.action"), Some("authz_fail"), "{json:?}");
        assert_eq!(json.get_str("user.name"), Some("grace"));
        assert_eq!(
            json.get("source.ip"),
            Some(&Value::Ip("192.0.2.78".parse().unwrap()))
        );
        let plain = &find(&data, &format!("marker-plain-{proto}"))[0];
        assert!(!plain.contains("user.name") && !plain.has_tag("parse_error"));
    }
    server.stop();
}

/// The package's own unit tests (vocabulary helpers, the refused-batch split, the spool's
/// format), run with the standard library's unittest.
#[test]
fn python_client_unit_tests() {
    if !require_tool("python3") {
        return;
    }
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(client_source().join("tests"))
        .env("PYTHONPATH", client_source().join("src"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Ran ") && !text.contains("Ran 0 tests"),
        "{text}"
    );
}
