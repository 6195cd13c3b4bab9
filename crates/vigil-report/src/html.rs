//! The report as one self-contained HTML page (no scripts, no outside resources), for people:
//! a summary, one row per control, the sections' details, and at the bottom the digest of the
//! JSON report, the checkpoint it was computed at and the signature over both, and (hidden) the
//! JSON itself, so the page can be checked (`crate::signature`).

use serde_json::Value as Json;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => escape(s),
        Json::Null => "—".into(),
        v => escape(&v.to_string()),
    }
}

fn list(v: &Json) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(text).collect::<Vec<_>>().join(", "),
        _ => "—".into(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1f24;max-width:72em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #c8ccd1;padding:.35em .5em;text-align:left;vertical-align:top;font-size:.9em}\
th{background:#f0f2f4}.met{color:#116329;font-weight:600}.gap{color:#9a6700;font-weight:600}\
.failed{color:#cf222e;font-weight:700}code,pre{font-family:ui-monospace,monospace;font-size:.8em;\
white-space:pre-wrap;word-break:break-all}.summary span{margin-right:1.5em}";

/// The Sigma logsources the controls ask for: who sent events of each, which rules watch it.
fn logsources(h: &mut String, report: &Json) {
    let mut rows = String::new();
    for c in report["controls"].as_array().into_iter().flatten() {
        for l in c["evidence"]["logsources"].as_array().into_iter().flatten() {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                text(&c["id"]),
                text(&l["logsource"]),
                text(&l["events"]),
                list(&l["sources"]),
                if l["more_sources"] == true {
                    ", …"
                } else {
                    ""
                },
                if l["rules"].is_null() {
                    "not known (give --rules)".to_owned()
                } else {
                    list(&l["rules"])
                },
            ));
        }
    }
    if !rows.is_empty() {
        h.push_str("<h2>Logsources</h2><table><tr><th>Control</th><th>Sigma logsource</th><th>Events</th><th>Sources sending it</th><th>Rules watching it</th></tr>");
        h.push_str(&rows);
        h.push_str("</table>");
    }
}

/// Renders `report` (with its `signature` block) as HTML.
pub fn render(report: &Json) -> String {
    let mut h = String::new();
    let count = |status: &str| {
        report["controls"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["status"] == status).count())
    };
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>{} {} — Vigil compliance report</title><style>{STYLE}</style></head><body>",
        text(&report["name"]),
        text(&report["version"])
    ));
    h.push_str(&format!(
        "<h1>{} {}: log controls</h1><p>Period {} to {}{}. {} events from {} sources.</p>",
        text(&report["name"]),
        text(&report["version"]),
        text(&report["period"]["from"]),
        text(&report["period"]["to"]),
        report["scope"]
            .as_str()
            .map(|s| format!(", scope <code>{}</code>", escape(s)))
            .unwrap_or_default(),
        text(&report["events"]),
        text(&report["sources"]),
    ));
    h.push_str(&format!(
        "<p class=\"summary\"><span class=\"met\">{} met</span><span class=\"gap\">{} gaps</span><span class=\"failed\">{} failed</span></p>",
        count("met"),
        count("gap"),
        count("failed")
    ));
    h.push_str("<h2>Controls</h2><table><tr><th>Control</th><th>Requirement</th><th>Status</th><th>Events</th><th>Alerts</th><th>Sources covered</th><th>Sources missing</th></tr>");
    for c in report["controls"].as_array().into_iter().flatten() {
        let status = c["status"].as_str().unwrap_or("gap");
        h.push_str(&format!(
            "<tr id=\"control-{id}\"><td>{id}</td><td>{title}</td><td class=\"{status}\">{status}</td><td>{events}</td><td>{alerts}</td><td>{covered}</td><td>{missing}</td></tr>",
            id = text(&c["id"]),
            title = text(&c["title"]),
            status = escape(status),
            events = text(&c["events"]),
            alerts = text(&c["alerts"]),
            covered = list(&c["sources"]["covered"]),
            missing = list(&c["sources"]["missing"]),
        ));
    }
    h.push_str("</table>");
    logsources(&mut h, report);
    let i = &report["integrity"];
    h.push_str(&format!(
        "<h2>Integrity</h2><p>Ledger verification: <b class=\"{}\">{}</b>. {} signed checkpoints in the period; consistency from the first to the last: {}.</p>",
        if i["verified"] == true { "met" } else { "failed" },
        if i["verified"] == true { "verified" } else { "FAILED" },
        i["checkpoints"].as_array().map_or(0, Vec::len),
        match i["consistency_verified"].as_bool() {
            Some(true) => "proven",
            Some(false) => "<b class=\"failed\">NOT proven</b>",
            None => "not applicable (fewer than two checkpoint sizes)",
        }
    ));
    let runs = &i["verification_runs"];
    h.push_str(&format!(
        "<p>Verifications of the ledger on record in the period: {} ({} failed){}. Witness cosignatures: {} on {} checkpoints{}.</p>",
        text(&runs["total"]),
        text(&runs["failed"]),
        runs["runs"]
            .as_array()
            .filter(|r| !r.is_empty())
            .map(|r| format!(
                ": {}",
                r.iter()
                    .map(|v| format!("{} by {} ({})", text(&v["at"]), text(&v["user"]), text(&v["outcome"])))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
            .unwrap_or_default(),
        text(&i["witness_cosignatures"]),
        text(&i["cosigned_checkpoints"]),
        i["witnesses"]
            .as_array()
            .filter(|w| !w.is_empty())
            .map(|_| format!(" by {}", list(&i["witnesses"])))
            .unwrap_or_default(),
    ));
    for p in i["problems"].as_array().into_iter().flatten() {
        h.push_str(&format!("<p class=\"failed\">{}</p>", text(p)));
    }
    let r = &report["review"];
    h.push_str(&format!(
        "<h2>Review</h2><p>{} alerts, {} acknowledged, {} open, {} not acknowledged within 24 h; median time to acknowledge {} s. Rules that fired: {}.</p>",
        text(&r["alerts"]),
        text(&r["acknowledged"]),
        text(&r["open"]),
        text(&r["not_acknowledged_within_24h"]),
        text(&r["time_to_acknowledge_secs"]["median"]),
        list(&r["rules_fired"]),
    ));
    let t = &report["retention"];
    h.push_str(&format!(
        "<h2>Retention</h2><p>Oldest event {}; policy {}; {} pruning records; legal holds: {}.</p>",
        text(&t["oldest"]),
        t["policy"]
            .as_str()
            .map_or("keep everything".into(), escape),
        t["pruned"].as_array().map_or(0, Vec::len),
        list(&t["holds"]),
    ));
    let f = &report["failures"];
    h.push_str("<h2>Control failures</h2><table><tr><th>Silent source</th><th>Last seen</th><th>Silent for (s)</th><th>Learned gap (s)</th></tr>");
    for s in f["silent_sources"].as_array().into_iter().flatten() {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(&s["source"]),
            text(&s["last_seen"]),
            text(&s["silent_secs"]),
            text(&s["learned_gap_secs"])
        ));
    }
    h.push_str(&format!(
        "</table><p>Vigil starts {}, unclean stops {}, events that did not parse {}, reads of the audit trail {}.</p>",
        text(&f["starts"]),
        f["unclean_stops"].as_array().map_or(0, Vec::len),
        text(&f["drops"]),
        text(&f["audit_reads_total"]),
    ));
    let s = &report["signature"];
    h.push_str(&format!(
        "<h2>Signature</h2><p>SHA-256 of the JSON report (without this block): <code>{}</code></p><p>Computed at the ledger checkpoint:</p><pre>{}</pre><p>Signed with the ledger key <code>{}</code>:</p><pre>{}</pre><p>Check this page with <code>vigil report verify FILE --key KEY</code>.</p>",
        text(&s["digest"]),
        text(&s["checkpoint"]),
        text(&s["key"]),
        text(&s["note"]),
    ));
    // The JSON the page was rendered from, for `vigil report verify` (crate::signature).
    h.push_str(crate::signature::HTML_JSON_OPEN);
    let mut json = Vec::new();
    crate::signature::canonical(report, &mut json);
    h.push_str(&escape(&String::from_utf8(json).expect("JSON is UTF-8")));
    h.push_str(crate::signature::HTML_JSON_CLOSE);
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_from_events_is_escaped() {
        let report = serde_json::json!({
            "name": "<script>alert(1)</script>",
            "controls": [{"id": "x", "title": "\"><img src=x onerror=alert(1)>", "status": "met",
                          "sources": {"covered": ["<b>host</b>"], "missing": []}}],
        });
        let html = render(&report);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>host</b>"));
        assert!(html.contains("&lt;b&gt;host&lt;/b&gt;"));
    }

    #[test]
    fn logsources_are_listed_with_their_sources_and_rules() {
        let report = serde_json::json!({
            "controls": [{"id": "10.2.1.4", "status": "met", "evidence": {"logsources": [
                {"logsource": "product: linux, service: sshd", "events": 3,
                 "sources": ["<i>host1</i>@syslog:10.0.0.5"], "more_sources": true,
                 "rules": ["SSH brute force"]},
                {"logsource": "category: firewall", "events": 0, "sources": [],
                 "more_sources": false, "rules": null}]}}],
        });
        let html = render(&report);
        assert!(html.contains("<h2>Logsources</h2>"));
        assert!(html.contains("<td>product: linux, service: sshd</td><td>3</td><td>&lt;i&gt;host1&lt;/i&gt;@syslog:10.0.0.5, …</td><td>SSH brute force</td>"), "{html}");
        assert!(html.contains("not known (give --rules)"));
    }
}
