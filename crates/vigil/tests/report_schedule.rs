//! Scheduled compliance reports (issue 17): a `[[report]]` sent through an email `[[notify]]`
//! arrives at a real SMTP server (python aiosmtpd) with the signed HTML page attached; the page
//! verifies with the ledger's key (`vigil report verify`), its numbers are the imported
//! scenario's, the mail's digest is the page's, and the run is in the audit trail.

mod common;

use std::path::Path;
use std::process::Command;

use common::respond::SmtpServer;
use common::{Server, audit_events, require_python_module, require_tool, run_ok, vigil};
use serde_json::{Value, json};

/// The message in the file `mail`, taken apart by Python's `email` package: subject,
/// plain-text body, and the attachment (file name, content).
fn parse_message(mail: &Path) -> Value {
    let script = r#"
import email, json, sys
raw = open(sys.argv[1], 'rb').read()
m = email.message_from_bytes(raw)
out = {"subject": str(email.header.make_header(email.header.decode_header(m["Subject"]))), "body": None, "attachments": []}
for part in m.walk():
    if part.get_content_maintype() == "multipart":
        continue
    data = part.get_payload(decode=True).decode("utf-8")
    if part.get_filename():
        out["attachments"].append({"name": part.get_filename(), "type": part.get_content_type(), "content": data})
    elif part.get_content_type() == "text/plain":
        out["body"] = data
print(json.dumps(out))
"#;
    let out = run_ok(Command::new("python3").args(["-c", script]).arg(mail));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_scheduled_report_arrives_by_email_signed_with_the_scenarios_numbers() {
    if !require_tool("python3") || !require_python_module("aiosmtpd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The scenario: in the last half hour, web1 logged 20 logins, every 4th a failure.
    let now = chrono_free_now();
    let mut lines = String::new();
    for i in 0..20i64 {
        let outcome = if i % 4 == 0 { "failure" } else { "success" };
        lines.push_str(&format!(
            "{}\n",
            json!({"@timestamp": rfc3339(now - (30 - i) * 60), "host.name": "web1",
                   "event.category": ["authentication"], "event.outcome": outcome,
                   "user.name": "alice", "source.ip": "198.51.100.7", "message": "login"})
        ));
    }
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines).unwrap();
    run_ok(
        vigil()
            .args(["import", "--quiet", "--format", "json", "--data-dir"])
            .arg(&data)
            .arg(&file),
    );
    let smtp = SmtpServer::start(dir.path());
    let port = smtp.port;
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify]]\nname = \"auditors\"\ntype = \"email\"\nserver = \"127.0.0.1:{port}\"\nstarttls = false\nfrom = \"vigil@example.org\"\nto = [\"audit@example.org\"]\nalerts = false\n\n[[report]]\nname = \"hourly-pci\"\nframework = \"pci-dss\"\nperiod = \"1h\"\nevery = \"1h\"\nnotify = [\"auditors\"]\n"
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = Server::start(&data, &["--config", &config_arg]);
    let mails = smtp.wait_for(1, 90);
    assert!(!mails.is_empty(), "no report mail\n{}", server.log());
    let mail = dir.path().join("first.eml");
    std::fs::write(&mail, &mails[0].content).unwrap();
    let message = parse_message(&mail);
    let subject = message["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[Vigil report] PCI DSS 4.0.1 — "),
        "{subject}"
    );
    let body = message["body"].as_str().unwrap();
    assert!(body.contains("schedule hourly-pci"), "{body}");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{message:#}");
    assert_eq!(attachments[0]["name"], "vigil-pci-dss-4.0.1-report.html");
    assert_eq!(attachments[0]["type"], "text/html");
    let page = dir.path().join("attached.html");
    std::fs::write(&page, attachments[0]["content"].as_str().unwrap()).unwrap();

    // The page checks with the ledger's key, and its digest is the one the mail states.
    let key = run_ok(vigil().args(["key", "--data-dir"]).arg(&data));
    let out = vigil()
        .args(["report", "verify"])
        .arg(&page)
        .args(["--key", key.trim()])
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{checked}");
    let digest = body
        .lines()
        .find_map(|l| l.strip_prefix("SHA-256: "))
        .expect("the digest in the mail")
        .to_owned();
    assert!(checked.contains(&digest), "{checked}");

    // Its numbers are the scenario's: 5 failures from web1 (sent by the import), for an hour.
    let html = std::fs::read_to_string(&page).unwrap();
    let start = html.find("<pre id=\"vigil-report-json\" hidden>").unwrap();
    let json_text = &html[start..];
    let json_text = &json_text[json_text.find('>').unwrap() + 1..json_text.find("</pre>").unwrap()];
    let unescaped = json_text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let report: Value = serde_json::from_str(&unescaped).unwrap();
    let control = report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "10.2.1.4")
        .unwrap();
    assert_eq!(control["events"], 5, "{control:#}");
    assert_eq!(
        control["sources"]["covered"],
        json!(["web1@import:events.ndjson"]),
        "{control:#}"
    );
    assert_eq!(report["signature"]["digest"], digest.as_str());
    let from = report["period"]["from"].as_str().unwrap();
    let to = report["period"]["to"].as_str().unwrap();
    assert_eq!(secs(to) - secs(from), 3600, "{from} {to}");

    // Audited: one report_sent, a success, naming the digest and where it went.
    server.stop();
    let sent = audit_events(&data, "report_sent");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].get_str("event.outcome"), Some("success"));
    assert_eq!(
        sent[0].get_str("vigil.report.digest"),
        Some(digest.as_str())
    );
    assert_eq!(sent[0].get_str("vigil.report.schedule"), Some("hourly-pci"));

    // A restart within the hour does not send it again (the schedule's state is kept).
    let server = Server::start(&data, &["--config", &config_arg]);
    std::thread::sleep(std::time::Duration::from_secs(4));
    server.stop();
    assert_eq!(audit_events(&data, "report_sent").len(), 1);
    assert_eq!(smtp.messages().len(), 1);
}

fn chrono_free_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    vigil_event::Timestamp::from_secs(secs).to_rfc3339()
}

fn secs(text: &str) -> i64 {
    vigil_event::Timestamp::parse(text).unwrap().as_nanos() / 1_000_000_000
}
