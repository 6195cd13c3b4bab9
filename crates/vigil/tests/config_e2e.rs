//! `vigil serve`'s configuration as a user meets it: one list of settings for the `--config`
//! file, the flags and the audited settings of each start; a bad file is refused with the
//! file, the key and the reason, before anything starts.

mod common;

use common::*;

#[test]
fn file_flags_and_the_audited_settings_are_one_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("vigil.toml");
    std::fs::write(
        &file,
        r#"
        [ui]
        session_idle = "10m"
        [detect]
        throttle = "5m"
        [redaction]
        patterns = [{ kind = "employee", regex = "EMP-SECRET-\\d+" }]
        [[notify]]
        type = "webhook"
        url = "http://127.0.0.1:9/hook/SECRET-TOKEN"
        min_level = "critical"
        "#,
    )
    .unwrap();
    let file = file.display().to_string();
    Server::start(&data, &["--config", &file, "--session-idle", "2m"]).stop();

    let starts = audit_events(&data, "vigil_start");
    assert_eq!(starts.len(), 1);
    let start = &starts[0];
    let setting = |key: &str| start.get_str(&format!("vigil.settings.{key}"));
    assert_eq!(setting("ui.session_idle"), Some("2m"), "the flag wins");
    assert_eq!(setting("detect.throttle"), Some("5m"), "the file's value");
    assert_eq!(setting("ui.session_max"), Some("12h"), "the default");
    assert_eq!(setting("listen.syslog_udp"), Some("off"));
    let notify = setting("notify").unwrap();
    assert!(notify.contains("\"min_level\":\"critical\""), "{notify}");
    assert!(setting("redaction.patterns").unwrap().starts_with('#'));
    for (name, value) in start.fields() {
        assert!(
            !value.to_json().to_string().contains("SECRET"),
            "{name} shows a secret: {value:?}"
        );
    }
}

#[test]
fn a_bad_config_file_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.display().to_string();
    for (text, expected) in [
        ("[listen]\nhtp = \"127.0.0.1:1\"\n", "unknown field `htp`"),
        ("[ui]\nsession_idle = \"10\"\n", "add a unit"),
        (
            "[[notify]]\ntype = \"pager\"\n",
            "[[notify]] #1: type \"pager\": use webhook, email or syslog",
        ),
        (
            "[[query_rule]]\nname = \"q\"\nquery = \"| |\"\n",
            "[[query_rule]] \"q\": query error at column",
        ),
        (
            "[redaction]\npatterns = [{ kind = \"k\", regex = \"(\" }]\n",
            "[redaction] patterns",
        ),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = vigil()
            .args(["serve", "--data-dir", &data_arg, "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(!data.exists(), "nothing started or written: {stderr}");
    }
}
