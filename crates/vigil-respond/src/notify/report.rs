//! Scheduled compliance reports through the notifiers: the same targets as alerts, another
//! kind of message. Email carries a summary and attaches the signed HTML page; a webhook
//! receives the JSON report; syslog a one-line summary with the report's digest (the report
//! itself does not fit a datagram). Retried like alerts.

use std::time::Duration;

use serde_json::json;
use vigil_event::Timestamp;

use super::{DeliveryError, Target, backoff, post_webhook, send_email_with, send_syslog};

/// A computed, signed report, ready to send.
#[derive(Debug, Clone)]
pub struct ReportMessage {
    /// The schedule's name (`[[report]] name`).
    pub schedule: String,
    /// The framework as the report names it (`pci-dss-4.0.1`).
    pub framework: String,
    /// The SHA-256 digest the report is signed under.
    pub digest: String,
    /// The report (JSON, with its signature block).
    pub json: serde_json::Value,
    /// The report as its HTML page.
    pub html: String,
}

impl ReportMessage {
    /// Controls met, with gaps and failed, in that order.
    fn counts(&self) -> (usize, usize, usize) {
        let controls = self.json["controls"].as_array();
        let n = |s: &str| controls.map_or(0, |c| c.iter().filter(|c| c["status"] == s).count());
        (n("met"), n("gap"), n("failed"))
    }

    /// The email subject.
    pub fn subject(&self) -> String {
        let (met, gap, failed) = self.counts();
        format!(
            "[Vigil report] {} {} — {met} met, {gap} gaps, {failed} failed",
            self.json["name"].as_str().unwrap_or(&self.framework),
            self.json["version"].as_str().unwrap_or_default(),
        )
    }

    /// The plain-text summary: period, counts, each control that is not met, the digest and
    /// how to check it.
    pub fn summary(&self) -> String {
        let (met, gap, failed) = self.counts();
        let mut lines = vec![
            format!(
                "Compliance report {} (schedule {}).",
                self.framework, self.schedule
            ),
            format!(
                "Period:  {} to {}",
                self.json["period"]["from"].as_str().unwrap_or("?"),
                self.json["period"]["to"].as_str().unwrap_or("?")
            ),
            format!("Events:  {}", self.json["events"]),
            format!("Controls: {met} met, {gap} gaps, {failed} failed"),
        ];
        for c in self.json["controls"].as_array().into_iter().flatten() {
            if c["status"] != "met" {
                lines.push(format!(
                    "  {} {}: {}",
                    c["status"].as_str().unwrap_or("?").to_uppercase(),
                    c["id"].as_str().unwrap_or("?"),
                    c["title"].as_str().unwrap_or_default()
                ));
            }
        }
        lines.push(format!(
            "Ledger verification: {}",
            if self.json["integrity"]["verified"] == true {
                "verified"
            } else {
                "FAILED"
            }
        ));
        lines.push(format!("SHA-256: {}", self.digest));
        lines.push(
            "The signed report is attached; check it with `vigil report verify FILE --key KEY`."
                .into(),
        );
        lines.join("\n") + "\n"
    }

    /// The attachment's file name.
    pub fn file_name(&self) -> String {
        let safe: String = self
            .framework
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("vigil-{safe}-report.html")
    }
}

/// Sends `report` to `target` once.
pub async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    report: &ReportMessage,
) -> Result<(), DeliveryError> {
    match target {
        Target::Email { .. } => {
            send_email_with(
                target,
                report.subject(),
                report.summary(),
                Some((report.file_name(), report.html.clone())),
            )
            .await
        }
        Target::Webhook { url, slack: true } => {
            post_webhook(client, url, &json!({"text": report.summary()})).await
        }
        Target::Webhook { url, slack: false } => {
            let body = json!({
                "kind": "report",
                "schedule": report.schedule,
                "framework": report.framework,
                "digest": report.digest,
                "summary": report.summary(),
                "report": report.json,
            });
            post_webhook(client, url, &body).await
        }
        Target::Syslog { addr, tcp } => {
            let (met, gap, failed) = report.counts();
            let line = format!(
                "<110>1 {} vigil vigil - report - compliance report {} ({}): {met} met, {gap} gaps, {failed} failed; sha256 {}",
                Timestamp::now().to_rfc3339(),
                report.framework,
                report.schedule,
                report.digest
            );
            send_syslog(addr, *tcp, &line).await
        }
    }
}

/// Sends `report` to `target`, retrying (after `backoff_base`, ×4, ×16) what may succeed
/// later; the last error when every attempt failed.
pub async fn deliver_with_retries(
    client: &reqwest::Client,
    target: &Target,
    report: &ReportMessage,
    backoff_base: Duration,
) -> Result<(), DeliveryError> {
    let mut last = None;
    for delay in std::iter::once(Duration::ZERO).chain(backoff(backoff_base)) {
        tokio::time::sleep(delay).await;
        match deliver(client, target, report).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let retry = e.retryable();
                last = Some(e);
                if !retry {
                    break;
                }
            }
        }
    }
    Err(last.expect("at least one attempt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_period_the_failing_controls_and_the_digest() {
        let json = json!({"name": "PCI DSS", "version": "4.0.1", "events": 12,
            "period": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-08T00:00:00Z"},
            "integrity": {"verified": true},
            "controls": [{"id": "10.2.2", "title": "fields", "status": "gap"},
                         {"id": "10.3.2", "title": "protected", "status": "met"}]});
        let m = ReportMessage {
            schedule: "weekly".into(),
            framework: "pci-dss-4.0.1".into(),
            digest: "ab".repeat(32),
            json,
            html: String::new(),
        };
        assert_eq!(
            m.subject(),
            "[Vigil report] PCI DSS 4.0.1 — 1 met, 1 gaps, 0 failed"
        );
        let s = m.summary();
        assert!(
            s.contains("2026-12-01T00:00:00Z to 2026-12-08T00:00:00Z"),
            "{s}"
        );
        assert!(s.contains("GAP 10.2.2: fields"), "{s}");
        assert!(!s.contains("10.3.2"), "{s}");
        assert!(s.contains(&"ab".repeat(32)), "{s}");
        assert_eq!(m.file_name(), "vigil-pci-dss-4.0.1-report.html");
    }
}
