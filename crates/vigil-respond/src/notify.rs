//! Notifiers: getting an alert to a person. Webhooks (generic JSON, or Slack's shape), email over
//! SMTP (STARTTLS or plain) and syslog (RFC 5424 over UDP or TCP, CEF in the message), routed by
//! minimum level and rule. Failed deliveries are retried with backoff (1 s, 4 s, 16 s by
//! default), counted in `/metrics` and written to the ledger as `vigil.notify` events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use vigil_detect::alert::{Alert, Level, Notification, NotifyReason};
use vigil_event::{Event, Timestamp};
use vigil_ingest::{Ingest, Origin};

/// Where notifications go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// POST JSON to a URL (`http://` only, or `https://` with the system roots).
    Webhook {
        /// The URL.
        url: String,
        /// Slack-compatible body (`{"text": …}`) instead of the alert JSON.
        slack: bool,
    },
    /// Email over SMTP.
    Email {
        /// `host:port` of the SMTP server.
        server: String,
        /// Require STARTTLS (else plain SMTP, for a relay on the same host).
        starttls: bool,
        /// `From:` address.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// SMTP login, if the server wants one.
        username: Option<String>,
        /// Its password (never logged).
        password: Option<String>,
    },
    /// Syslog to a collector, the alert as CEF in the message.
    Syslog {
        /// `host:port`.
        addr: String,
        /// TCP (octet-counted) instead of UDP.
        tcp: bool,
    },
}

/// The kind of a notifier's target: the `target` label of the notification metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// [`Target::Webhook`].
    Webhook,
    /// [`Target::Email`].
    Email,
    /// [`Target::Syslog`].
    Syslog,
}

impl TargetKind {
    /// Every kind, in label order.
    pub const ALL: [TargetKind; 3] = [TargetKind::Email, TargetKind::Syslog, TargetKind::Webhook];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Email => "email",
            TargetKind::Syslog => "syslog",
        }
    }
}

impl Target {
    /// Its kind.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Webhook { .. } => TargetKind::Webhook,
            Target::Email { .. } => TargetKind::Email,
            Target::Syslog { .. } => TargetKind::Syslog,
        }
    }
}

/// Why a notification was dropped: the `reason` label of `vigil_notifications_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The notifiers' queue was full (they are far behind); the alert itself is in the ledger.
    QueueFull,
    /// Every retry failed (also written to the ledger as a `vigil.notify` event).
    RetriesExhausted,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 2] = [DropReason::QueueFull, DropReason::RetriesExhausted];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::RetriesExhausted => "retries_exhausted",
        }
    }
}

mod delivery;
pub mod report;
pub use delivery::{DeliveryError, post_webhook};

/// One notifier: a target and its routing.
#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    /// A name for metrics and logs.
    pub name: String,
    /// Where.
    pub target: Target,
    /// Only alerts of this level or above.
    pub min_level: Level,
    /// Only these rules (id or title); empty means all.
    pub rules: Vec<String>,
}

impl Notifier {
    /// Whether this notifier wants the alert.
    pub fn routes(&self, alert: &Alert) -> bool {
        alert.rule.level >= self.min_level
            && (self.rules.is_empty()
                || self.rules.iter().any(|r| {
                    r.eq_ignore_ascii_case(&alert.rule.id)
                        || r.eq_ignore_ascii_case(&alert.rule.title)
                }))
    }
}

/// Delivery counters for `/metrics`.
#[derive(Default)]
pub struct NotifyStats {
    /// Delivered.
    pub delivered: AtomicU64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: AtomicU64,
    /// Given up after every retry.
    pub failed: AtomicU64,
    /// Notifications not delivered, per target kind and reason (one per notifier that would
    /// have sent it).
    dropped: [[AtomicU64; DropReason::ALL.len()]; TargetKind::ALL.len()],
}

impl NotifyStats {
    /// Counts a notification one notifier of `kind` will not deliver.
    pub fn count_dropped(&self, kind: TargetKind, reason: DropReason) {
        self.dropped[kind as usize][reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Notifications dropped for targets of `kind` for `reason`.
    pub fn dropped(&self, kind: TargetKind, reason: DropReason) -> u64 {
        self.dropped[kind as usize][reason as usize].load(Ordering::Relaxed)
    }

    /// Writes `vigil_notifications_dropped_total{target, reason}` in the Prometheus text
    /// format, every series (zeros too).
    pub fn write_dropped(&self, out: &mut String) {
        use std::fmt::Write;
        let name = "vigil_notifications_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Notifications not delivered, per notifier target kind: the queue was full, or every retry failed.\n# TYPE {name} counter"
        );
        for kind in TargetKind::ALL {
            for reason in DropReason::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{target=\"{}\",reason=\"{}\"}} {}",
                    kind.as_str(),
                    reason.as_str(),
                    self.dropped(kind, reason)
                );
            }
        }
    }
}

/// The detector's end of the notifiers' queue: a notification that does not fit (the
/// notifiers are far behind) is dropped and counted for each notifier that would have sent it.
#[derive(Clone)]
pub struct NotifyQueue {
    tx: mpsc::Sender<Notification>,
    notifiers: Arc<[Notifier]>,
    stats: Arc<NotifyStats>,
}

impl NotifyQueue {
    /// The queue into `tx`, routed to `notifiers` by [`run`].
    pub fn new(
        tx: mpsc::Sender<Notification>,
        notifiers: Vec<Notifier>,
        stats: Arc<NotifyStats>,
    ) -> NotifyQueue {
        NotifyQueue {
            tx,
            notifiers: notifiers.into(),
            stats,
        }
    }

    /// Queues a notification without waiting.
    pub fn send(&self, note: Notification) {
        if let Err(mpsc::error::TrySendError::Full(note)) = self.tx.try_send(note) {
            for n in self.notifiers.iter().filter(|n| n.routes(&note.alert)) {
                self.stats
                    .count_dropped(n.target.kind(), DropReason::QueueFull);
            }
        }
    }
}

/// Delay before the first retry; each further retry waits four times longer (three retries).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// The delays before each retry for a first delay of `base`: base, 4×, 16×.
pub fn backoff(base: Duration) -> [Duration; 3] {
    [base, base * 4, base * 16]
}

/// The generic webhook body: the alert, plus its OCSF Detection Finding.
pub fn webhook_body(note: &Notification, slack: bool) -> serde_json::Value {
    let a = &note.alert;
    if slack {
        return json!({
            "text": format!(
                "{}*[{}]* {} — {} ({} matches, {} … {}) alert {}",
                drill_prefix(a),
                a.rule.level.as_str().to_uppercase(),
                a.rule.title,
                a.group_key(),
                a.count,
                a.first_seen.to_rfc3339(),
                a.last_seen.to_rfc3339(),
                a.id
            )
        });
    }
    json!({
        "reason": note.reason.as_str(),
        "drill": a.drill_run(),
        "alert": {
            "id": a.id,
            "rule": {"id": a.rule.id, "title": a.rule.title, "level": a.rule.level.as_str(), "tags": a.rule.tags},
            "group": a.group.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "count": a.count,
            "first_seen": a.first_seen.to_rfc3339(),
            "last_seen": a.last_seen.to_rfc3339(),
            "samples": a.samples,
            "status": a.status.as_str(),
        },
        "ocsf": a.to_ocsf(),
    })
}

fn cef_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('=', "\\=")
        .replace('\n', " ")
}

/// The alert as an RFC 5424 syslog line with a CEF message.
pub fn syslog_line(note: &Notification) -> String {
    let a = &note.alert;
    let severity = match a.rule.level {
        Level::Informational => 1,
        Level::Low => 3,
        Level::Medium => 5,
        Level::High => 8,
        Level::Critical => 10,
    };
    let ext: Vec<String> = a
        .group
        .iter()
        .map(|(k, v)| {
            let key = match k.as_str() {
                "source.ip" => "src",
                "user.name" => "suser",
                "host.name" => "dhost",
                _ => "cs1",
            };
            format!("{key}={}", cef_escape(v))
        })
        .collect();
    format!(
        "<{}>1 {} vigil vigil - alert - CEF:0|Vigil|Vigil|0.1|{}|{}|{}|cnt={} externalId={} {}",
        8 * 4 + if severity >= 8 { 2 } else { 4 },
        Timestamp::now().to_rfc3339(),
        cef_escape(&a.rule.id),
        cef_escape(&a.rule.title),
        severity,
        a.count,
        a.id,
        ext.join(" ")
    )
}

/// `[DRILL run] ` before the text of a drill alert's notification (nothing for a real one):
/// a drill is told apart at a glance, and receivers can filter on it.
pub fn drill_prefix(a: &Alert) -> String {
    a.drill_run()
        .map_or_else(String::new, |run| format!("[DRILL {run}] "))
}

/// Subject and plain-text body of the alert email.
pub fn email_text(note: &Notification) -> (String, String) {
    let a = &note.alert;
    let subject = format!(
        "{}[Vigil {}] {} — {}",
        drill_prefix(a),
        a.rule.level.as_str(),
        a.rule.title,
        a.group_key()
    );
    let body = format!(
        "{}\n\nRule:       {} ({})\nLevel:      {}\nGroup:      {}\nMatches:    {}\nFirst seen: {}\nLast seen:  {}\nATT&CK:     {}\nAlert:      {} ({})\nEvents:     {}\n",
        if note.reason == NotifyReason::New {
            "A new alert."
        } else {
            "An alert is still matching."
        },
        a.rule.title,
        a.rule.id,
        a.rule.level.as_str(),
        a.group_key(),
        a.count,
        a.first_seen.to_rfc3339(),
        a.last_seen.to_rfc3339(),
        a.rule
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .collect::<Vec<_>>()
            .join(", "),
        a.id,
        a.status.as_str(),
        a.samples
            .iter()
            .map(|s| format!("seq {s}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    (subject, body)
}

async fn send_email(target: &Target, note: &Notification) -> Result<(), DeliveryError> {
    let (subject, body) = email_text(note);
    send_email_text(target, subject, body).await
}

/// Sends one plain-text email to an email target.
pub(crate) async fn send_email_text(
    target: &Target,
    subject: String,
    body: String,
) -> Result<(), DeliveryError> {
    send_email_with(target, subject, body, None).await
}

/// Sends one email to an email target: plain text, and an HTML file attached when given
/// (`(file name, content)`).
pub(crate) async fn send_email_with(
    target: &Target,
    subject: String,
    body: String,
    attachment: Option<(String, String)>,
) -> Result<(), DeliveryError> {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let Target::Email {
        server,
        starttls,
        from,
        to,
        username,
        password,
    } = target
    else {
        return Err(DeliveryError::Config("not an email target".into()));
    };
    let config = DeliveryError::Config;
    let (host, port) = server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| config(format!("SMTP server {server:?}: expected host:port")))?;
    let mut message = Message::builder()
        .from(
            from.parse()
                .map_err(|e| config(format!("from {from:?}: {e}")))?,
        )
        .subject(subject);
    for rcpt in to {
        message = message.to(rcpt
            .parse()
            .map_err(|e| config(format!("to {rcpt:?}: {e}")))?);
    }
    let message = match attachment {
        None => message.body(body),
        Some((name, html)) => message.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                // As bytes: base64, so the page arrives byte for byte (a String's line
                // endings would become CRLF, and a signed page must not change).
                .singlepart(Attachment::new(name).body(html.into_bytes(), ContentType::TEXT_HTML)),
        ),
    }
    .map_err(|e| config(format!("email: {e}")))?;
    let mut builder = if *starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| config(format!("SMTP server {server}: {e}")))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
    }
    .port(port)
    .timeout(Some(Duration::from_secs(20)));
    if let (Some(user), Some(pass)) = (username, password) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.clone(),
            pass.clone(),
        ));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| {
            let target = server.clone();
            if e.is_permanent() || e.is_transient() {
                DeliveryError::Refused {
                    target,
                    reason: e.to_string(),
                    retry: e.is_transient(),
                }
            } else {
                DeliveryError::Unreachable {
                    target,
                    reason: e.to_string(),
                }
            }
        })
}

async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    note: &Notification,
) -> Result<(), DeliveryError> {
    match target {
        Target::Email { .. } => send_email(target, note).await,
        Target::Webhook { url, slack } => {
            post_webhook(client, url, &webhook_body(note, *slack)).await
        }
        Target::Syslog { addr, tcp } => send_syslog(addr, *tcp, &syslog_line(note)).await,
    }
}

/// Sends one syslog message: over TCP octet-counted (RFC 6587), connecting and writing within
/// [`SYSLOG_SEND_TIMEOUT`] each so a collector that accepts and never reads cannot hold a
/// notifier forever; or as one UDP datagram. Alerts and checkpoint copies both go through here.
pub(crate) async fn send_syslog(addr: &str, tcp: bool, line: &str) -> Result<(), DeliveryError> {
    let failed = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            DeliveryError::Config(format!("syslog collector {addr:?}: {e}"))
        } else {
            DeliveryError::Unreachable {
                target: addr.to_owned(),
                reason: e.to_string(),
            }
        }
    };
    let timed_out = |what: &str| DeliveryError::Unreachable {
        target: addr.to_owned(),
        reason: format!("{what} timed out"),
    };
    if tcp {
        let mut s = tokio::time::timeout(SYSLOG_SEND_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connecting"))?
            .map_err(failed)?;
        tokio::time::timeout(
            SYSLOG_SEND_TIMEOUT,
            s.write_all(format!("{} {line}", line.len()).as_bytes()),
        )
        .await
        .map_err(|_| timed_out("writing"))?
        .map_err(failed)
    } else {
        let s = tokio::net::UdpSocket::bind("0.0.0.0:0")
            .await
            .map_err(failed)?;
        s.send_to(line.as_bytes(), addr)
            .await
            .map(|_| ())
            .map_err(failed)
    }
}

/// How long connecting to, or writing to, a syslog collector may take.
const SYSLOG_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs until the channel closes: every notification to every notifier that routes it, with
/// retries. A failure after the last retry is written to the ledger.
pub async fn run(
    mut rx: mpsc::Receiver<Notification>,
    notifiers: Vec<Notifier>,
    stats: Arc<NotifyStats>,
    ledger: Arc<Ingest>,
    backoff_base: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // One crypto provider in the whole process: ring (DESIGN §10). Installing it twice is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notifications are off: cannot build an HTTP client: {e}");
            return;
        }
    };
    loop {
        let note = tokio::select! {
            note = rx.recv() => match note {
                Some(n) => n,
                None => return,
            },
            _ = stop.changed() => return,
        };
        for n in notifiers.iter().filter(|n| n.routes(&note.alert)) {
            let (client, n, note, stats, ledger) = (
                client.clone(),
                n.clone(),
                note.clone(),
                Arc::clone(&stats),
                Arc::clone(&ledger),
            );
            tokio::spawn(async move {
                let mut last = String::new();
                for (attempt, delay) in std::iter::once(Duration::ZERO)
                    .chain(backoff(backoff_base))
                    .enumerate()
                {
                    tokio::time::sleep(delay).await;
                    match deliver(&client, &n.target, &note).await {
                        Ok(()) => {
                            stats.delivered.fetch_add(1, Ordering::Relaxed);
                            if let Some(run) = note.alert.drill_run() {
                                // A drill measures delivery: it is on record, in the ledger.
                                let e = delivery_event(&n, &note, run, attempt + 1);
                                let _ = ledger.submit(vec![e], Origin::Notifier).durable().await;
                            }
                            return;
                        }
                        Err(e) => {
                            stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                "notifier {}: attempt {} for alert {} failed: {e}",
                                n.name,
                                attempt + 1,
                                note.alert.id
                            );
                            last = e.to_string();
                            if !e.retryable() {
                                break;
                            }
                        }
                    }
                }
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.count_dropped(n.target.kind(), DropReason::RetriesExhausted);
                let mut e = Event::new(Timestamp::now());
                e.insert("event.dataset", "vigil.notify");
                e.insert("event.kind", "event");
                e.insert("event.action", "notification-failed");
                e.insert("event.outcome", "failure");
                e.insert("vigil.alert.id", note.alert.id as i64);
                e.insert("vigil.notifier", n.name.as_str());
                e.insert("vigil.notifier.kind", n.target.kind().as_str());
                if let Some(run) = note.alert.drill_run() {
                    e.insert(vigil_event::field::VIGIL_DRILL_RUN, run);
                }
                e.insert("error.message", last.as_str());
                e.insert(
                    "message",
                    format!(
                        "notifier {} gave up on alert {}: {last}",
                        n.name, note.alert.id
                    ),
                );
                let _ = ledger.submit(vec![e], Origin::Notifier).durable().await;
            });
        }
    }
}

/// The `vigil.notify` event of a drill alert's delivery (`notification-delivered`).
fn delivery_event(n: &Notifier, note: &Notification, run: &str, attempts: usize) -> Event {
    let mut e = Event::new(Timestamp::now());
    e.insert("event.dataset", "vigil.notify");
    e.insert("event.kind", "event");
    e.insert("event.action", "notification-delivered");
    e.insert("event.outcome", "success");
    e.insert(vigil_event::field::VIGIL_DRILL_RUN, run);
    e.insert("vigil.alert.id", note.alert.id as i64);
    e.insert("vigil.notifier", n.name.as_str());
    e.insert("vigil.notifier.kind", n.target.kind().as_str());
    e.insert("vigil.notify.attempts", attempts as i64);
    e.insert(
        "message",
        format!(
            "drill {run}: notifier {} delivered alert {} (attempt {attempts})",
            n.name, note.alert.id
        ),
    );
    e
}

#[cfg(test)]
mod tests;
