//! Key rotation: the only way a ledger gets a new signing key, signed and on the record.
//!
//! `keys.log` holds one signed note per rotation. The new key always signs it; the old key signs
//! it too when its private half is still there (a **vouched** rotation). When it is not (the key
//! file was lost, or deleted by an attacker), the rotation is **unvouched**: it is recorded and
//! reported loudly by every `vigil verify`, and a verifier that trusts only the old key does not
//! accept what the new key signs.
//!
//! [`KeyRing`] is the set of keys a verification accepts, starting from one trusted key: a key a
//! rotation names as `new` is accepted when the rotation is vouched by an accepted `old` key; a
//! key named as `old` is accepted when an accepted `new` key signed the rotation (the new key
//! takes over the history it names).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use vigil_event::Timestamp;

use crate::error::LedgerError;
use crate::files::{self, LedgerPaths, sync_dir};
use crate::format;
use crate::keys;
use crate::note::{NoteError, NoteSigner, NoteVerifier, parse_note};

/// Magic of `keys.log`.
pub const KEYS_MAGIC: &[u8; 8] = b"VIGILKEY";
const ROTATION_HEADER: &str = "vigil-key-rotation/v1";

/// One recorded key rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// The ledger's origin (the name of both keys).
    pub origin: String,
    /// The key replaced, when its public half was known.
    pub old: Option<NoteVerifier>,
    /// The new key.
    pub new: NoteVerifier,
    /// Tree size of the latest checkpoint signed by the old key.
    pub size: u64,
    /// When.
    pub time: Timestamp,
    /// Why.
    pub reason: String,
    /// Whether the old key signed the rotation.
    pub vouched: bool,
    /// The signed note.
    pub note: String,
}

impl KeyRotation {
    fn text(
        origin: &str,
        old: Option<&NoteVerifier>,
        new: &NoteVerifier,
        size: u64,
        time: Timestamp,
        reason: &str,
    ) -> String {
        format!(
            "{ROTATION_HEADER}\norigin {origin}\nold {}\nnew {}\nsize {size}\ntime {}\nreason {}\n",
            old.map_or_else(|| "unknown".to_owned(), NoteVerifier::to_vkey),
            new.to_vkey(),
            time.to_rfc3339(),
            reason.replace(['\n', '\r'], " ")
        )
    }

    /// Parses a rotation note and checks its signatures: the new key must have signed it;
    /// `vouched` says whether the old key did too.
    pub fn parse(note: &str) -> Result<KeyRotation, String> {
        let parsed = parse_note(note).map_err(|e| e.to_string())?;
        let mut lines = parsed.text.lines();
        if lines.next() != Some(ROTATION_HEADER) {
            return Err("not a key rotation record".into());
        }
        let mut field = |name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("missing {name} line"))
        };
        let origin = field("origin")?;
        let old = field("old")?;
        let old = if old == "unknown" {
            None
        } else {
            Some(NoteVerifier::from_vkey(&old).map_err(|e| format!("old key: {e}"))?)
        };
        let new = NoteVerifier::from_vkey(&field("new")?).map_err(|e| format!("new key: {e}"))?;
        let size = field("size")?.parse().map_err(|_| "bad size".to_string())?;
        let time = Timestamp::parse(&field("time")?).map_err(|e| e.to_string())?;
        let reason = field("reason")?;
        new.open(note)
            .map_err(|e| format!("not signed by the new key it names: {e}"))?;
        let vouched = old.as_ref().is_some_and(|o| o.open(note).is_ok());
        Ok(KeyRotation {
            origin,
            old,
            new,
            size,
            time,
            reason,
            vouched,
            note: note.to_owned(),
        })
    }
}

/// The keys a verification accepts, from one trusted key and the rotation records.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<NoteVerifier>,
    /// Every valid rotation record, in order.
    pub rotations: Vec<KeyRotation>,
    /// Records that do not check out.
    pub problems: Vec<String>,
}

impl KeyRing {
    /// Just one key.
    pub fn single(key: NoteVerifier) -> KeyRing {
        KeyRing {
            keys: vec![key],
            rotations: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The keys reachable from `trusted` through `keys.log`.
    pub fn load(paths: &LedgerPaths, trusted: &NoteVerifier) -> Result<KeyRing, LedgerError> {
        let log = files::read_record_log(&paths.key_history(), KEYS_MAGIC)?;
        let mut ring = KeyRing::single(trusted.clone());
        if log.file_len > log.valid_len {
            ring.problems.push(format!(
                "keys.log ends in {} bytes that are not a complete record (damaged or edited)",
                log.file_len - log.valid_len
            ));
        }
        for (i, bytes) in log.records.iter().enumerate() {
            match std::str::from_utf8(bytes)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(KeyRotation::parse)
            {
                Ok(r) => ring.rotations.push(r),
                Err(e) => ring.problems.push(format!("key rotation #{}: {e}", i + 1)),
            }
        }
        loop {
            let before = ring.keys.len();
            for r in &ring.rotations {
                let has = |k: &NoteVerifier| ring.keys.contains(k);
                let mut add = Vec::new();
                if has(&r.new)
                    && let Some(old) = &r.old
                    && !has(old)
                {
                    add.push(old.clone());
                }
                if r.vouched && r.old.as_ref().is_some_and(has) && !has(&r.new) {
                    add.push(r.new.clone());
                }
                ring.keys.extend(add);
            }
            if ring.keys.len() == before {
                break;
            }
        }
        Ok(ring)
    }

    /// Opens a note signed by any accepted key; returns its text and the signing key.
    pub fn open<'a>(&self, note: &'a str) -> Result<(&'a str, &NoteVerifier), NoteError> {
        let mut first_err = None;
        for key in &self.keys {
            match key.open(note) {
                Ok(text) => return Ok((text, key)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.expect("a ring holds at least one key"))
    }

    /// The trusted key the ring started from.
    pub fn trusted(&self) -> &NoteVerifier {
        &self.keys[0]
    }

    /// Accepted keys.
    pub fn keys(&self) -> &[NoteVerifier] {
        &self.keys
    }
}

/// Replaces the ledger's signing key, recording the rotation in `keys.log` (signed by the new
/// key, and by the old one when it is still there) before the key files change. `old_key` names
/// the old public key when `verifier.vkey` is gone too. The writer must not be running.
pub fn rotate_key(
    data_dir: &Path,
    reason: &str,
    old_key: Option<NoteVerifier>,
) -> Result<KeyRotation, LedgerError> {
    let paths = LedgerPaths::new(data_dir);
    if keys::existing_ledger(&paths)?.is_none() {
        return Err(LedgerError::Invalid(format!(
            "no ledger with events at {}: a new ledger makes its key at its first start",
            paths.root().display()
        )));
    }
    if reason.trim().is_empty() {
        return Err(LedgerError::Invalid(
            "a key rotation needs a reason (it is signed into keys.log)".into(),
        ));
    }
    let _lock = crate::writer::lock_writer(&paths)?;
    let old_signer = match fs::read_to_string(paths.signing_key()) {
        Ok(text) => Some(NoteSigner::from_skey(&text).map_err(|e| {
            LedgerError::corrupt(&paths.signing_key(), 0, None, format!("signing key: {e}"))
        })?),
        Err(_) => None,
    };
    let old = match (&old_signer, old_key) {
        (Some(s), _) => Some(s.verifier()),
        (None, Some(k)) => Some(k),
        (None, None) => keys::load_verifier(&paths).ok(),
    };
    let latest = crate::reader::read_checkpoints(&paths)?.pop();
    let origin = match (&old, &latest) {
        (Some(k), _) => k.name().to_owned(),
        (None, Some(c)) => c.checkpoint.origin.clone(),
        (None, None) => {
            return Err(LedgerError::Invalid(
                "cannot tell the ledger's origin: give the old verifier key with --old-key".into(),
            ));
        }
    };
    let size = latest.map_or(0, |c| c.checkpoint.size);
    let new = NoteSigner::generate(&origin)?;
    let text = KeyRotation::text(
        &origin,
        old.as_ref(),
        &new.verifier(),
        size,
        Timestamp::now(),
        reason,
    );
    let mut note = new.sign(&text)?;
    if let Some(old_signer) = &old_signer {
        let by_old = old_signer.sign(&text)?;
        note.push_str(&by_old[text.len() + 1..]);
    }
    let rotation = KeyRotation::parse(&note).map_err(LedgerError::Invalid)?;

    // The record first (fsynced), then the key files.
    let path = paths.key_history();
    let log = files::read_record_log(&path, KEYS_MAGIC)?;
    let mut file = files::open_append(
        &path,
        &format::encode_file_header(KEYS_MAGIC),
        Some(log.valid_len),
    )?;
    let mut bytes = Vec::new();
    format::encode_record(&mut bytes, note.as_bytes());
    file.write_all(&bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
    let key_path = paths.signing_key();
    let tmp = key_path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut key_file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| LedgerError::io(format!("creating {}", tmp.display()), e))?;
    key_file
        .write_all(format!("{}\n", new.to_skey()).as_bytes())
        .and_then(|_| key_file.sync_all())
        .map_err(|e| LedgerError::io(format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, &key_path)
        .map_err(|e| LedgerError::io(format!("replacing {}", key_path.display()), e))?;
    fs::write(
        paths.verifier_key(),
        format!("{}\n", new.verifier().to_vkey()),
    )
    .map_err(|e| LedgerError::io(format!("writing {}", paths.verifier_key().display()), e))?;
    sync_dir(paths.root())?;
    Ok(rotation)
}
