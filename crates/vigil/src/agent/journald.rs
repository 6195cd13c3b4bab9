//! `[[journald]]`: follow the systemd journal through `journalctl` and ship it.
//!
//! The agent runs `journalctl --output=json --follow --no-tail --all` (with `--directory`,
//! `--file`, `--unit`, `--identifier` from the configuration), resuming with `--after-cursor`
//! at the last acknowledged entry, or on first start with `--since` (default: the whole journal).
//! Each entry becomes one RFC 5424 line, `<PRI>1 TIME HOST APP PID - - MESSAGE`, sent with
//! `format=syslog`, so the server's Linux parsers read it exactly as they read the same message
//! from rsyslog (sshd, sudo, PAM, … become ECS authentication and session events):
//!
//! * `PRI` from `SYSLOG_FACILITY` (default user) and `PRIORITY` (default notice), like
//!   rsyslog's `imjournal`;
//! * `TIME` is `__REALTIME_TIMESTAMP` (when journald received the entry), to the microsecond, UTC;
//! * `HOST` is `_HOSTNAME`, `APP` is `SYSLOG_IDENTIFIER` or else `_COMM`, `PID` is
//!   `SYSLOG_PID` or else `_PID` (a missing or unusable value is `-`);
//! * `MESSAGE` may be a string or, when it is not valid UTF-8 or holds control characters, an
//!   array of bytes (journald's JSON format); invalid UTF-8 becomes U+FFFD and control
//!   characters other than tab become `#ooo` (octal, rsyslog's escaping), so a multi-line
//!   message stays one event.
//!
//! Checkpointing mirrors the file tailer's: entries are batched (up to 1 MiB or one poll
//! interval), and before a batch leaves, its bytes are written to
//! `STATE_DIR/journald-<hash>.batch` and its end cursor and `Idempotency-Key` to `state.json`.
//! Only after the server's 200 does the acknowledged cursor advance. After a crash, the recorded
//! batch is re-sent byte for byte under the same key (the server stores it once), then
//! `journalctl` resumes after its last cursor: nothing lost, nothing stored twice.
//!
//! A `journalctl` that cannot start or exits is logged with its exit status and the last lines
//! it wrote to stderr, and restarted with backoff (200 ms doubling to 10 s) from the
//! acknowledged cursor. Memory is bounded: a JSON entry longer than [`MAX_ENTRY_BYTES`] is
//! skipped and logged; `journalctl`'s output is read only as fast as the server acknowledges.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::delivery::{BACKOFF_MAX, BACKOFF_START, MAX_BATCH_BYTES, fnv1a, send};
use super::state::write_durably;
use super::{AgentConfig, FatalError, Shipper};

/// Longest journal entry (one line of `journalctl`'s JSON) the agent reads; longer ones are
/// skipped with a logged error.
pub(super) const MAX_ENTRY_BYTES: usize = 2 << 20;
/// Longest stderr line of `journalctl` kept for the log.
const MAX_STDERR_LINE: usize = 4096;
/// How many of `journalctl`'s last stderr lines are kept for the log when it exits.
const STDERR_LINES: usize = 5;
/// A `journalctl` that ran this long before exiting is restarted without backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// The journal fields the agent reads (besides `__CURSOR` and `__REALTIME_TIMESTAMP`, which
/// `journalctl` always prints). Asking for these alone keeps large fields such as coredumps out.
const FIELDS: &str =
    "MESSAGE,_HOSTNAME,SYSLOG_IDENTIFIER,_COMM,SYSLOG_PID,_PID,PRIORITY,SYSLOG_FACILITY";

/// One `[[journald]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JournaldConfig {
    /// The `journalctl` binary [default: `journalctl` from `PATH`].
    journalctl: Option<PathBuf>,
    /// Read the journal files in this directory (`journalctl --directory`) instead of the
    /// system journal.
    directory: Option<PathBuf>,
    /// Read this journal file (`journalctl --file`; globs allowed) instead of the system journal.
    file: Option<String>,
    /// Only these systemd units (`journalctl --unit`, repeated).
    #[serde(default)]
    units: Vec<String>,
    /// Only these syslog identifiers (`journalctl --identifier`, repeated).
    #[serde(default)]
    identifiers: Vec<String>,
    /// On first start (no checkpoint yet), ship from this time (`journalctl --since`, e.g.
    /// `"now"`, `"-1h"`, `"2026-01-01"`) [default: the whole journal].
    since: Option<String>,
    /// The source name stored with each event, and the name of this journal's checkpoint
    /// [default: `journald`].
    source: Option<String>,
}

/// The checkpoint of one journal source in `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct JournalPosition {
    /// Cursor of the last entry the server acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// The batch in flight, recorded before it leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sending: Option<InFlight>,
}

/// A batch sent but not yet acknowledged: its bytes are in the source's `.batch` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    /// Cursor of the batch's last entry.
    end: String,
    /// Its `Idempotency-Key`.
    key: String,
}

/// The reader of one `[[journald]]` entry.
pub(super) struct Journal {
    /// Checkpoint name (`state.json`'s `journald` map) and log prefix.
    key: String,
    url: String,
    journalctl: PathBuf,
    /// `--directory`, `--file`, `--unit`, `--identifier` arguments.
    filters: Vec<String>,
    since: Option<String>,
}

/// One reader per `[[journald]]` entry, checked.
pub(super) fn readers(config: &AgentConfig, server: &str) -> Result<Vec<Journal>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for j in &config.journald {
        let source = j.source.clone().unwrap_or_else(|| "journald".into());
        if !seen.insert(source.clone()) {
            bail!(
                "[[journald]] source {source:?} is listed twice (give each journal its own `source`)"
            );
        }
        let mut filters = Vec::new();
        match (&j.directory, &j.file) {
            (Some(_), Some(_)) => {
                bail!("[[journald]] {source}: set `directory` or `file`, not both")
            }
            (Some(d), None) => filters.push(format!("--directory={}", d.display())),
            (None, Some(f)) => filters.push(format!("--file={f}")),
            (None, None) => {}
        }
        for u in &j.units {
            filters.push(format!("--unit={u}"));
        }
        for t in &j.identifiers {
            filters.push(format!("--identifier={t}"));
        }
        let url = reqwest::Url::parse_with_params(
            &format!("{server}/api/v1/ingest"),
            [("format", "syslog"), ("source", source.as_str())],
        )
        .with_context(|| format!("server URL {server:?}"))?;
        out.push(Journal {
            key: source,
            url: url.to_string(),
            journalctl: j
                .journalctl
                .clone()
                .unwrap_or_else(|| PathBuf::from("journalctl")),
            filters,
            since: j.since.clone(),
        });
    }
    Ok(out)
}

/// Entries read but not yet sent.
#[derive(Default)]
struct Batch {
    body: Vec<u8>,
    /// Cursor of the last entry in `body`.
    end: Option<String>,
    /// When the first entry arrived: the batch leaves one poll interval later at the latest.
    deadline: Option<tokio::time::Instant>,
}

impl Journal {
    /// Follows the journal forever; returns only on a fatal error (the state cannot be written).
    pub(super) async fn run(self, shipper: &Shipper, linger: Duration) -> Result<()> {
        let mut position = shipper.store().get_journal(&self.key).unwrap_or_default();
        self.resend_in_flight(shipper, &mut position).await?;
        let mut backoff = BACKOFF_START;
        loop {
            let started = Instant::now();
            match self.session(shipper, &mut position, linger).await {
                Err(e) if e.is::<FatalError>() => return Err(e),
                Err(e) => eprintln!("vigil: agent: journald {}: {e:#}", self.key),
                Ok(()) => {}
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = BACKOFF_START;
            }
            eprintln!(
                "vigil: agent: journald {}: restarting journalctl in {} ms",
                self.key,
                backoff.as_millis()
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The file holding this source's batch in flight.
    fn batch_file(&self) -> String {
        format!("journald-{:016x}.batch", fnv1a(self.key.as_bytes()))
    }

    /// After a crash: sends the batch that was in flight again, under its key, and moves the
    /// checkpoint past it.
    async fn resend_in_flight(
        &self,
        shipper: &Shipper,
        position: &mut JournalPosition,
    ) -> Result<()> {
        let Some(flight) = position.sending.clone() else {
            return Ok(());
        };
        let path = shipper.state_dir.join(self.batch_file());
        let body = match std::fs::read(&path) {
            Ok(b)
                if flight
                    .key
                    .ends_with(&format!(":{}:{:016x}", b.len(), fnv1a(&b))) =>
            {
                b
            }
            Ok(_) | Err(_) => {
                // Written before the state named it, so this means the state directory was
                // tampered with; resume from the acknowledged cursor.
                eprintln!(
                    "vigil: agent: journald {}: the batch in flight ({}) is missing or differs; \
                     resuming after the last acknowledged entry",
                    self.key,
                    path.display()
                );
                position.sending = None;
                return self.checkpoint(shipper, position);
            }
        };
        eprintln!(
            "vigil: agent: journald {}: re-sending the batch in flight at the last stop",
            self.key
        );
        send(shipper, &self.url, &self.key, &flight.key, body).await;
        position.cursor = Some(flight.end);
        position.sending = None;
        self.checkpoint(shipper, position)
    }

    fn checkpoint(&self, shipper: &Shipper, position: &JournalPosition) -> Result<()> {
        shipper
            .store()
            .set_journal(&self.key, position.clone())
            .map_err(|e| {
                anyhow::Error::new(FatalError(format!(
                    "checkpoint for journald {}: {e:#}",
                    self.key
                )))
            })
    }

    /// The `Idempotency-Key` of a batch: host, source, where it starts (a hash of the cursor
    /// before it), its length and a hash of its bytes.
    fn batch_key(&self, shipper: &Shipper, after: Option<&str>, body: &[u8]) -> String {
        format!(
            "{}:journald:{:016x}:{:016x}:{}:{:016x}",
            shipper.host,
            fnv1a(self.key.as_bytes()),
            fnv1a(after.unwrap_or("").as_bytes()),
            body.len(),
            fnv1a(body)
        )
    }

    /// Records the batch, sends it until acknowledged, then advances the checkpoint.
    async fn ship(
        &self,
        shipper: &Shipper,
        position: &mut JournalPosition,
        batch: &mut Batch,
    ) -> Result<()> {
        let Some(end) = batch.end.take() else {
            return Ok(());
        };
        let body = std::mem::take(&mut batch.body);
        batch.deadline = None;
        let key = self.batch_key(shipper, position.cursor.as_deref(), &body);
        write_durably(&shipper.state_dir, &self.batch_file(), &body).map_err(|e| {
            anyhow::Error::new(FatalError(format!(
                "recording the journald {} batch: {e:#}",
                self.key
            )))
        })?;
        position.sending = Some(InFlight {
            end: end.clone(),
            key: key.clone(),
        });
        self.checkpoint(shipper, position)?;
        send(shipper, &self.url, &self.key, &key, body).await;
        position.cursor = Some(end);
        position.sending = None;
        self.checkpoint(shipper, position)
    }

    /// The `journalctl` command line, resuming after `cursor`.
    fn command(&self, cursor: Option<&str>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.journalctl);
        cmd.args([
            "--output=json",
            "--follow",
            "--no-tail",
            "--all",
            "--no-pager",
            "--quiet",
        ])
        .arg(format!("--output-fields={FIELDS}"))
        .args(&self.filters);
        match (cursor, &self.since) {
            (Some(c), _) => {
                cmd.arg(format!("--after-cursor={c}"));
            }
            (None, Some(s)) => {
                cmd.arg(format!("--since={s}"));
            }
            (None, None) => {}
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `journalctl` once and ships what it prints until it exits. `Ok` when it exited
    /// (the caller restarts it); a fatal error when the state cannot be written.
    async fn session(
        &self,
        shipper: &Shipper,
        position: &mut JournalPosition,
        linger: Duration,
    ) -> Result<()> {
        let mut child = self
            .command(position.cursor.as_deref())
            .spawn()
            .with_context(|| format!("cannot start {}", self.journalctl.display()))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            bail!("journalctl started without pipes");
        };
        // The last few stderr lines, for the message when journalctl exits.
        let stderr_task = tokio::spawn(async move {
            let mut lines = LineReader::new(BufReader::new(stderr), MAX_STDERR_LINE);
            let mut last = VecDeque::new();
            while let Ok(Some(line)) = lines.next().await {
                if let Line::Complete(l) = line {
                    if last.len() == STDERR_LINES {
                        last.pop_front();
                    }
                    last.push_back(String::from_utf8_lossy(&l).trim_end().to_owned());
                }
            }
            last
        });
        let mut lines = LineReader::new(BufReader::new(stdout), MAX_ENTRY_BYTES);
        let mut batch = Batch::default();
        let mut bad_entries = 0u64;
        let read_error = loop {
            let next = match batch.deadline {
                Some(d) => match tokio::time::timeout_at(d, lines.next()).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.ship(shipper, position, &mut batch).await?;
                        continue;
                    }
                },
                None => lines.next().await,
            };
            match next {
                Ok(Some(Line::Complete(line))) => match entry_line(&line) {
                    Ok((cursor, text)) => {
                        batch.body.extend_from_slice(text.as_bytes());
                        batch.body.push(b'\n');
                        batch.end = Some(cursor);
                        if batch.deadline.is_none() {
                            batch.deadline = Some(tokio::time::Instant::now() + linger);
                        }
                        if batch.body.len() as u64 >= MAX_BATCH_BYTES {
                            self.ship(shipper, position, &mut batch).await?;
                        }
                    }
                    Err(e) => {
                        bad_entries += 1;
                        if bad_entries <= 10 || bad_entries.is_power_of_two() {
                            eprintln!(
                                "vigil: agent: journald {}: skipping an unreadable entry \
                                 ({bad_entries} so far): {e}",
                                self.key
                            );
                        }
                    }
                },
                Ok(Some(Line::TooLong(n))) => {
                    eprintln!(
                        "vigil: agent: journald {}: skipping an entry of more than {n} bytes \
                         (limit {MAX_ENTRY_BYTES})",
                        self.key
                    );
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        // What was read is complete entries: ship it before restarting.
        self.ship(shipper, position, &mut batch).await?;
        if read_error.is_some() {
            let _ = child.start_kill();
        }
        let status = child.wait().await;
        let last = stderr_task.await.unwrap_or_default();
        let said = if last.is_empty() {
            String::new()
        } else {
            format!(": {}", Vec::from(last).join(" / "))
        };
        match (read_error, status) {
            (Some(e), _) => bail!("reading journalctl's output: {e}{said}"),
            (None, Ok(s)) => bail!("journalctl exited ({s}){said}"),
            (None, Err(e)) => bail!("journalctl: {e}{said}"),
        }
    }
}

/// What [`LineReader::next`] returns.
enum Line {
    /// A line without its `\n`.
    Complete(Vec<u8>),
    /// A line longer than the limit (this many bytes), skipped.
    TooLong(usize),
}

/// Reads `\n`-terminated lines of bounded length. Cancel-safe: a partial line stays in the
/// reader, so [`LineReader::next`] can be raced against a timer.
struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    /// Bytes of an overlong line skipped so far.
    skipping: Option<usize>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::new(),
            max,
            skipping: None,
        }
    }

    /// The next line; `None` at the end (a last line without `\n` is dropped: `journalctl`
    /// ends every entry with one, so it can only be a write cut short).
    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                self.buf.clear();
                self.skipping = None;
                return Ok(None);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let piece = &available[..newline.unwrap_or(available.len())];
            match &mut self.skipping {
                Some(n) => *n += take,
                None if self.buf.len() + piece.len() > self.max => {
                    self.skipping = Some(self.buf.len() + take);
                    self.buf = Vec::new();
                }
                None => self.buf.extend_from_slice(piece),
            }
            self.inner.consume(take);
            if newline.is_some() {
                return Ok(Some(match self.skipping.take() {
                    Some(n) => Line::TooLong(n),
                    None => Line::Complete(std::mem::take(&mut self.buf)),
                }));
            }
        }
    }
}

/// One line of `journalctl --output=json` → its cursor and the RFC 5424 line to send.
fn entry_line(json: &[u8]) -> Result<(String, String), String> {
    let entry: serde_json::Map<String, Value> =
        serde_json::from_slice(json).map_err(|e| format!("not a JSON object: {e}"))?;
    let cursor = match entry.get("__CURSOR") {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        _ => return Err("no __CURSOR".into()),
    };
    let number = |name: &str, max: u64| {
        field_text(entry.get(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&n| n <= max)
    };
    let priority = number("PRIORITY", 7).unwrap_or(5);
    let facility = number("SYSLOG_FACILITY", 23).unwrap_or(1);
    let time = number("__REALTIME_TIMESTAMP", i64::MAX as u64)
        .and_then(|us| chrono::DateTime::from_timestamp_micros(i64::try_from(us).ok()?))
        .map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
    let host = header_field(entry.get("_HOSTNAME"), 255);
    let app = match entry.get("SYSLOG_IDENTIFIER") {
        Some(v) if !matches!(v, Value::Null) => header_field(Some(v), 48),
        _ => header_field(entry.get("_COMM"), 48),
    };
    let pid = ["SYSLOG_PID", "_PID"]
        .iter()
        .find_map(|f| number(f, u64::from(u32::MAX)))
        .map_or_else(|| "-".to_owned(), |p| p.to_string());
    let message = escape_controls(&field_text(entry.get("MESSAGE")).unwrap_or_default());
    let pri = facility * 8 + priority;
    Ok((
        cursor,
        format!("<{pri}>1 {time} {host} {app} {pid} - - {message}"),
    ))
}

/// A field's value as text. journald's JSON gives a string, or an array of byte values when
/// the data is not printable UTF-8, or an array of those when the field occurs more than once
/// (then the values are joined by newlines).
fn field_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            let bytes: Vec<u8> = items
                .iter()
                .map(|b| {
                    b.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .unwrap_or(b'?')
                })
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(|i| field_text(Some(i))).collect();
            Some(parts.join("\n"))
        }
        _ => None,
    }
}

/// An RFC 5424 header field: printable ASCII without spaces, at most `max` characters; `-` when
/// there is nothing.
fn header_field(value: Option<&Value>, max: usize) -> String {
    let text = field_text(value).unwrap_or_default();
    let first = text.lines().next().unwrap_or("");
    let clean: String = first
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

/// Control characters other than tab as `#ooo` (rsyslog's escaping), so one entry stays one
/// line.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            // C0 controls and DEL as three octal digits; C1 controls (U+0080..U+009F) as four.
            out.push_str(&format!("#{:03o}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> String {
        entry_line(json.as_bytes()).unwrap().1
    }

    #[test]
    fn sshd_entry_becomes_an_rfc5424_line_the_syslog_parser_reads() {
        let text = line(
            r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1700000000123456","_HOSTNAME":"bastion","SYSLOG_IDENTIFIER":"sshd","_PID":"4242","PRIORITY":"6","SYSLOG_FACILITY":"10","MESSAGE":"Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2"}"#,
        );
        assert_eq!(
            text,
            "<86>1 2023-11-14T22:13:20.123456Z bastion sshd 4242 - - Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2"
        );
        let ctx = vigil_parse::ParseContext::new(vigil_event::Timestamp::now(), "t");
        let e = vigil_parse::parse_line(text.as_bytes(), vigil_parse::Format::Syslog, &ctx);
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.5");
        assert_eq!(e.get_str("process.name"), Some("sshd"));
        assert_eq!(e.get_str("host.name"), Some("bastion"));
        assert_eq!(
            e.timestamp().to_rfc3339(),
            vigil_event::Timestamp::parse("2023-11-14T22:13:20.123456Z")
                .unwrap()
                .to_rfc3339()
        );
    }

    #[test]
    fn byte_array_messages_and_missing_fields() {
        // "a\nb \xff" as journald prints non-printable data; no host, _COMM instead of an
        // identifier, SYSLOG_PID preferred, no time.
        let text = line(
            r#"{"__CURSOR":"c","MESSAGE":[97,10,98,32,255],"_COMM":"my app","SYSLOG_PID":"7","_PID":"8"}"#,
        );
        assert_eq!(text, "<13>1 - - my_app 7 - - a#012b \u{fffd}");
        // A field present twice is an array of values.
        let text = line(r#"{"__CURSOR":"c","MESSAGE":["one",[116,119,111]],"PRIORITY":"9"}"#);
        assert_eq!(text, "<13>1 - - - - - - one#012two");
    }

    #[test]
    fn unreadable_entries_are_errors_not_panics() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"MESSAGE":"no cursor"}"#,
            r#"{"__CURSOR":7}"#,
        ] {
            assert!(entry_line(bad.as_bytes()).is_err(), "{bad}");
        }
        // Odd values are tolerated.
        let text = line(
            r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"99999999999999999999","_PID":"-1","MESSAGE":[300,-1,"x"],"_HOSTNAME":""}"#,
        );
        assert_eq!(text, "<13>1 - - - - - - 300#012-1#012x");
    }

    #[tokio::test]
    async fn line_reader_bounds_lines_and_survives_cancellation() {
        let data = b"short\nxxxxxxxxxxxxxxxxxxxx\nok\npartial".to_vec();
        let mut r = LineReader::new(BufReader::with_capacity(3, &data[..]), 8);
        let mut got = Vec::new();
        while let Some(l) = r.next().await.unwrap() {
            got.push(match l {
                Line::Complete(b) => String::from_utf8(b).unwrap(),
                Line::TooLong(n) => format!("<{n}>"),
            });
        }
        assert_eq!(got, ["short", "<21>", "ok"]);
    }
}
