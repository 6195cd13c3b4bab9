//! `verify`, `checkpoint`, `key`, `proof`, `retention`: commands that read or maintain the ledger.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use vigil_event::Timestamp;
use vigil_ledger::note::NoteVerifier;
use vigil_ledger::{
    Ledger, LedgerConfig, LedgerReader, PruneOutcome, RetentionPolicy, VerifyOptions, legal_hold,
    parse_duration, set_legal_hold,
};

use crate::DataDir;

/// Just the data directory.
#[derive(clap::Args)]
pub struct DataDirArgs {
    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments of `vigil verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataDir,
    /// Verifier key to trust (a vkey string or a file holding one) instead of the ledger's own
    /// verifier.vkey, which an attacker with disk access could replace.
    #[arg(long, value_name = "VKEY|FILE")]
    key: Option<String>,
    /// A signed checkpoint kept outside this host (a file holding the note, or the JSON a
    /// checkpoint sink received): the ledger must be consistent with it (RFC 9162 consistency
    /// proof), which catches a rollback or a fork signed with a stolen key.
    #[arg(long, value_name = "CHECKPOINT_FILE")]
    against: Option<std::path::PathBuf>,
    #[command(flatten)]
    witness: crate::witness_cmds::CosignatureArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Put this run and its outcome on record in the ledger's audit trail (`ledger_verify`,
    /// stored by the running server or the next start): compliance reports list the
    /// verifications on record (PCI DSS 10.3.4). Without it, `verify` writes nothing.
    #[arg(long)]
    record: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

/// Exit code of `vigil verify` when everything checks out but the ledger was recovered
/// (re-signed after a failed check) at least once, or its key was rotated without the old
/// key's signature.
pub const EXIT_VERIFIED_RECOVERED: u8 = 3;

/// The checkpoint note in a `--against` file: the note itself, or JSON with a `checkpoint`
/// field (what a checkpoint sink receives).
fn read_against(path: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--against {}", path.display()))?;
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        return value
            .get("checkpoint")
            .and_then(|c| c.as_str())
            .map(str::to_owned)
            .with_context(|| {
                format!(
                    "--against {}: JSON without a \"checkpoint\" note",
                    path.display()
                )
            });
    }
    Ok(text)
}

/// `name+keyid` of a vkey (without the public key material, whose base64 may hold `+`; a key
/// name never does).
fn key_label(vkey: &str) -> &str {
    match vkey.match_indices('+').nth(1) {
        Some((at, _)) => &vkey[..at],
        None => vkey,
    }
}

/// `vigil verify`: exit 0 when every event is verified by the key up to a named checkpoint,
/// 1 with the first bad place otherwise, 2 when it could not run, 3 when verified but the ledger
/// was recovered (re-signed) at least once.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let trusted_key = match &args.key {
        None => None,
        Some(k) => {
            let text = match std::fs::read_to_string(k) {
                Ok(t) => t,
                Err(_) => k.clone(),
            };
            Some(NoteVerifier::from_vkey(&text).with_context(|| format!("--key {k}"))?)
        }
    };
    let against = args.against.as_deref().map(read_against).transpose()?;
    let key_source = if trusted_key.is_some() {
        "given with --key"
    } else {
        "the ledger's own verifier.vkey; pass --key with a copy kept elsewhere to rule out a replaced key"
    };
    let bar = progress_bar(args.quiet || args.format == OutputFormat::Json, "verifying");
    let report = vigil_ledger::verify(
        &args.data.data_dir,
        &VerifyOptions {
            trusted_key,
            against,
        },
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    let cosignatures = crate::witness_cmds::check(&args.data.data_dir, &args.witness)?;
    let checkpoint_json = |c: &vigil_ledger::note::Checkpoint| {
        json!({
            "size": c.size,
            "root": vigil_ledger::hex(&c.root),
            "time": c.time(),
        })
    };
    let verdict = if !report.is_intact() {
        "failed"
    } else if report.needs_attention() {
        "verified_recovered"
    } else {
        "verified"
    };
    if args.record {
        crate::cli_audit::record_verification(
            &args.data.data_dir,
            report.is_intact(),
            &format!(
                "ledger verification (vigil verify): {verdict}{}",
                report
                    .problems
                    .first()
                    .map(|p| format!("; first problem: {p}"))
                    .unwrap_or_default()
            ),
        );
    }
    let mut out = io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            let mut body = json!({
                "intact": report.is_intact(),
                "verdict": verdict,
                "verified_by_key": report.latest_verified_key.as_deref().unwrap_or(key_label(&report.key)),
                "key_rotations": report.rotations.iter().map(|r| json!({
                    "time": r.time.to_rfc3339(), "size": r.size, "reason": r.reason,
                    "old": r.old.as_ref().map(|k| k.to_vkey()), "new": r.new.to_vkey(),
                    "vouched": r.vouched,
                })).collect::<Vec<_>>(),
                "verified_up_to": report.latest_verified.as_ref().map(checkpoint_json),
                "recoveries": report.recoveries.iter().map(|r| json!({
                    "time": r.time.to_rfc3339(), "size": r.size, "reason": r.reason, "found": r.found,
                })).collect::<Vec<_>>(),
                "against": report.against.as_ref().map(checkpoint_json),
                "first_problem": report.problems.first().map(|p| p.to_string()),
                "problems": report.problems.iter().map(|p| json!({
                    "file": p.place.file.as_ref().map(|f| f.display().to_string()),
                    "block": p.place.block,
                    "offset": p.place.offset,
                    "seq": p.place.seq,
                    "checkpoint": p.place.checkpoint,
                    "message": p.message,
                })).collect::<Vec<_>>(),
                "notes": report.notes,
                "events": report.events,
                "event_bytes": report.event_bytes,
                "segments": report.segments,
                "blocks": report.blocks,
                "end_seq": report.end_seq,
                "pruned_end": report.pruned_end,
                "checkpoints_verified": report.checkpoints_verified,
                "checkpoints_in_pruned_range": report.checkpoints_pruned,
                "latest_checkpoint_size": report.latest_checkpoint.as_ref().map(|c| c.size),
                "prunes": report.prunes.iter().map(|p| json!({
                    "start": p.start, "end": p.end, "time": p.time.to_rfc3339(), "reason": p.reason,
                    "segments": p.segments.len(),
                })).collect::<Vec<_>>(),
                "key": report.key,
            });
            if let Some(c) = &cosignatures {
                body["cosignatures"] = c.json.clone();
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
        }
        OutputFormat::Text => {
            writeln!(out, "key:         {} ({key_source})", report.key)?;
            writeln!(
                out,
                "events:      {} present ({} bytes) in {} segments, {} blocks; sequence numbers {}..{}",
                report.events,
                report.event_bytes,
                report.segments,
                report.blocks,
                report.pruned_end,
                report.end_seq
            )?;
            for p in &report.prunes {
                writeln!(
                    out,
                    "pruned:      events {}..{} removed {} ({}, {} segments), signed record checked",
                    p.start,
                    p.end,
                    p.time,
                    p.reason,
                    p.segments.len()
                )?;
            }
            writeln!(
                out,
                "checkpoints: {} verified{}; latest signs {} events",
                report.checkpoints_verified,
                if report.checkpoints_pruned > 0 {
                    format!(
                        ", {} inside the pruned range not recomputable",
                        report.checkpoints_pruned
                    )
                } else {
                    String::new()
                },
                report.latest_checkpoint.as_ref().map_or(0, |c| c.size)
            )?;
            for r in &report.recoveries {
                writeln!(
                    out,
                    "RECOVERED:   at {} the writer was started on this ledger although it did not verify, and re-signed its {} events (signed recovery record; reason given: {}); it found: {}",
                    r.time,
                    r.size,
                    r.reason,
                    r.found.join("; ")
                )?;
            }
            for r in &report.rotations {
                writeln!(
                    out,
                    "{}at {} (after checkpoint size {}) key {} was replaced by {}; {} (reason: {})",
                    if r.vouched {
                        "key rotated: "
                    } else {
                        "UNVOUCHED KEY ROTATION: "
                    },
                    r.time,
                    r.size,
                    r.old.as_ref().map_or_else(
                        || "unknown".to_owned(),
                        |k| key_label(&k.to_vkey()).to_owned()
                    ),
                    key_label(&r.new.to_vkey()),
                    if r.vouched {
                        "the old key signed the rotation"
                    } else {
                        "the old key did NOT sign it (its private key was gone): only the new key vouches for the history it took over; verify with --key OLD_KEY to refuse it"
                    },
                    r.reason
                )?;
            }
            if let Some(c) = &report.against {
                writeln!(
                    out,
                    "against:     the outside checkpoint (size {}, root {}) is signed by the key and the ledger's tree extends it (consistency proof checked)",
                    c.size,
                    vigil_ledger::hex(&c.root)
                )?;
            }
            for note in &report.notes {
                writeln!(out, "note:        {note}")?;
            }
            if report.is_intact() {
                match &report.latest_verified {
                    Some(c) => writeln!(
                        out,
                        "OK: verified by key {} up to checkpoint size {}, root {}, signed {}{}",
                        report
                            .latest_verified_key
                            .as_deref()
                            .unwrap_or(key_label(&report.key)),
                        c.size,
                        vigil_ledger::hex(&c.root),
                        c.time().unwrap_or("(no time)"),
                        if report.needs_attention() {
                            "; BUT see the RECOVERED / UNVOUCHED lines above".to_owned()
                        } else {
                            String::new()
                        }
                    )?,
                    None => writeln!(
                        out,
                        "OK: the ledger holds no events and no checkpoint to verify (key {})",
                        key_label(&report.key)
                    )?,
                }
            } else {
                writeln!(
                    out,
                    "FAILED: {} problem(s); {}",
                    report.problems.len(),
                    match &report.latest_verified {
                        Some(c) => format!(
                            "the last checkpoint whose root was recomputed and matched is size {}, root {}, signed {}",
                            c.size,
                            vigil_ledger::hex(&c.root),
                            c.time().unwrap_or("(no time)")
                        ),
                        None => "no checkpoint verified".into(),
                    }
                )?;
                for (i, p) in report.problems.iter().enumerate() {
                    let label = if i == 0 { "FIRST BAD PLACE" } else { "also" };
                    writeln!(out, "{label}: {p}")?;
                }
            }
            for line in cosignatures.iter().flat_map(|c| &c.lines) {
                writeln!(out, "{line}")?;
            }
        }
    }
    let witnessed = cosignatures.as_ref().is_none_or(|c| c.passed);
    Ok(if !report.is_intact() || !witnessed {
        ExitCode::from(1)
    } else if report.needs_attention() {
        ExitCode::from(EXIT_VERIFIED_RECOVERED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `vigil checkpoint`: the latest signed checkpoint note.
pub fn checkpoint(args: DataDirArgs) -> Result<ExitCode> {
    let reader = LedgerReader::open(&args.data.data_dir)?;
    let Some(latest) = reader.latest_checkpoint()? else {
        bail!("the ledger has no checkpoint yet (one is signed within seconds of the first event)");
    };
    io::stdout().write_all(latest.note.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `vigil key`: the verifier key.
pub fn key(args: DataDirArgs) -> Result<ExitCode> {
    let verifier =
        vigil_ledger::load_verifier(&vigil_ledger::LedgerPaths::new(&args.data.data_dir))?;
    writeln!(io::stdout(), "{}", verifier.to_vkey())?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `vigil proof`.
#[derive(clap::Args)]
pub struct ProofArgs {
    #[command(flatten)]
    data: DataDir,
    /// Sequence number of the event to prove (inclusion proof against the latest checkpoint).
    #[arg(long, required_unless_present = "old_size")]
    seq: Option<u64>,
    /// Prove that the tree of this size is a prefix of the latest checkpoint's tree.
    #[arg(long, conflicts_with = "seq")]
    old_size: Option<u64>,
}

/// `vigil proof`.
pub fn proof(args: ProofArgs) -> Result<ExitCode> {
    let mut reader = LedgerReader::open(&args.data.data_dir)?;
    let hex = vigil_ledger::hex;
    let body = if let Some(seq) = args.seq {
        reader.inclusion_proof(seq)?.to_json()
    } else {
        let old = args.old_size.expect("clap requires one of the two");
        let latest = reader
            .latest_checkpoint()?
            .context("the ledger has no checkpoint yet")?;
        let new = latest.checkpoint.size;
        if old == 0 || old > new {
            bail!("--old-size must be between 1 and the latest checkpoint's size {new}");
        }
        let proof = reader.consistency_proof(old, new)?;
        json!({
            "old_size": old,
            "old_root": hex(&reader.root_at(old)?),
            "tree_size": new,
            "proof": proof.iter().map(hex).collect::<Vec<_>>(),
            "checkpoint": latest.note,
        })
    };
    writeln!(io::stdout(), "{}", serde_json::to_string_pretty(&body)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `vigil retention`.
#[derive(clap::Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    action: RetentionAction,
}

#[derive(clap::Subcommand)]
enum RetentionAction {
    /// Remove sealed segments older than --max-age (needs the ledger not to be open by serve).
    Prune {
        #[command(flatten)]
        data: DataDir,
        /// Keep at least this long, e.g. 365d (PCI DSS asks for a year), 6y (HIPAA documentation).
        #[arg(long, value_parser = parse_duration_arg)]
        max_age: std::time::Duration,
    },
    /// Suspend all pruning until released (legal hold).
    Hold {
        #[command(flatten)]
        data: DataDir,
        /// Why (case number, who asked).
        #[arg(long)]
        reason: String,
    },
    /// Release the legal hold.
    Release {
        #[command(flatten)]
        data: DataDir,
    },
    /// Show what is stored, what was pruned, and whether a hold is set.
    Status {
        #[command(flatten)]
        data: DataDir,
    },
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s)
}

/// `vigil retention …`.
pub fn retention(args: RetentionArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match args.action {
        RetentionAction::Prune { data, max_age } => {
            let (ledger, _) = Ledger::open(&data.data_dir, LedgerConfig::default())?;
            let outcome = ledger.prune(RetentionPolicy { max_age }, Timestamp::now())?;
            ledger.close()?;
            match outcome {
                PruneOutcome::Held { reason } => {
                    writeln!(out, "legal hold set, nothing pruned: {reason}")?
                }
                PruneOutcome::NothingToDo => writeln!(
                    out,
                    "nothing to prune: no sealed segment is older than {}s",
                    max_age.as_secs()
                )?,
                PruneOutcome::Pruned(record) => writeln!(
                    out,
                    "pruned events {}..{} ({} segments); signed record written to prunes.log",
                    record.start,
                    record.end,
                    record.segments.len()
                )?,
            }
        }
        RetentionAction::Hold { data, reason } => {
            set_legal_hold(&data.data_dir, Some(&reason))?;
            writeln!(
                out,
                "legal hold set: pruning is suspended until `vigil retention release`"
            )?;
        }
        RetentionAction::Release { data } => {
            set_legal_hold(&data.data_dir, None)?;
            writeln!(out, "legal hold released")?;
        }
        RetentionAction::Status { data } => {
            let reader = LedgerReader::open(&data.data_dir)?;
            writeln!(
                out,
                "stored: sequence numbers {}..{} in {} segments",
                reader.first_seq(),
                reader.end_seq(),
                reader.segments().len()
            )?;
            for record in vigil_ledger::prune_records(reader.paths())? {
                writeln!(
                    out,
                    "pruned: {}..{} at {} ({})",
                    record.start, record.end, record.time, record.reason
                )?;
            }
            match legal_hold(&data.data_dir)? {
                Some(hold) => writeln!(out, "legal hold: {}", hold.replace('\n', "; "))?,
                None => writeln!(out, "legal hold: none")?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A byte-count progress bar on stderr, hidden when `quiet` or stderr is not a terminal.
pub fn progress_bar(quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Arguments of `vigil ledger`.
#[derive(clap::Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    action: LedgerAction,
}

#[derive(clap::Subcommand)]
enum LedgerAction {
    /// Replace the signing key, on the record: the rotation is signed by the new key and, when
    /// it is still there, by the old one, kept in ledger/keys.log and written to the ledger;
    /// `vigil verify` reports it (loudly when the old key could not sign). Stop serve first.
    RotateKey {
        #[command(flatten)]
        data: DataDir,
        /// Why (who decided, ticket): signed into the record.
        #[arg(long)]
        reason: String,
        /// The old verifier key (vkey or file), when verifier.vkey is gone too.
        #[arg(long, value_name = "VKEY|FILE")]
        old_key: Option<String>,
    },
}

/// `vigil ledger …`.
pub fn ledger(args: LedgerArgs) -> Result<ExitCode> {
    match args.action {
        LedgerAction::RotateKey {
            data,
            reason,
            old_key,
        } => {
            let old_key = old_key
                .map(|k| {
                    let text = std::fs::read_to_string(&k).unwrap_or_else(|_| k.clone());
                    NoteVerifier::from_vkey(&text).with_context(|| format!("--old-key {k}"))
                })
                .transpose()?;
            let rotation = vigil_ledger::rotation::rotate_key(&data.data_dir, &reason, old_key)?;
            let (ledger, _) = Ledger::open(&data.data_dir, LedgerConfig::default()).context(
                "the rotation is recorded in keys.log, but the ledger does not open with the new key",
            )?;
            let mut audit = vigil_event::Event::audit_builder("ledger_key_rotated")
                .category(vigil_event::Category::Configuration)
                .event_type(vigil_event::EventType::Change)
                .outcome(vigil_event::Outcome::Success)
                .at(rotation.time)
                .build();
            audit.insert("event.reason", rotation.reason.as_str());
            audit.insert("vigil.key.new", rotation.new.to_vkey());
            if let Some(old) = &rotation.old {
                audit.insert("vigil.key.old", old.to_vkey());
            }
            audit.insert("vigil.key.vouched", rotation.vouched);
            audit.insert(
                "message",
                format!(
                    "signing key rotated{} (reason: {})",
                    if rotation.vouched {
                        ", signed by the old key"
                    } else {
                        " WITHOUT the old key's signature (unvouched)"
                    },
                    rotation.reason
                ),
            );
            // Through the one door, like every event (origin `cli`).
            let ingest = vigil_ingest::Ingest::new(
                vigil_ingest::NodeLog::from(ledger.clone()),
                vigil_parse::redact::Redactor::default(),
                std::sync::Arc::default(),
            );
            ingest
                .submit(vec![audit], vigil_ingest::Origin::Cli)
                .wait()?;
            drop(ingest);
            ledger.close()?;
            let mut out = io::stdout().lock();
            writeln!(out, "new verifier key: {}", rotation.new.to_vkey())?;
            if rotation.vouched {
                writeln!(
                    out,
                    "the old key signed the rotation (keys.log); keep a copy of the new verifier key off this host"
                )?;
            } else {
                writeln!(
                    out,
                    "WARNING: the old signing key was not available, so the rotation is UNVOUCHED; `vigil verify` reports it, and a verifier holding only the old key refuses what the new key signs"
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
