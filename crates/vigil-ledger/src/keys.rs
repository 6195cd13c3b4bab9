//! The ledger's Ed25519 signing key: created once, kept with mode 0600.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;

use crate::error::LedgerError;
use crate::files::{self, LedgerPaths, read_file, sync_dir};
use crate::format;
use crate::note::{NoteSigner, NoteVerifier};

/// Loads the signing key, creating it (and the verifier key file) on first use. The key name is
/// the log's origin, `vigil/<host>/<random>`, unique per ledger.
pub fn load_or_create_signer(paths: &LedgerPaths) -> Result<NoteSigner, LedgerError> {
    let path = paths.signing_key();
    match fs::read_to_string(&path) {
        Ok(text) => {
            let signer = NoteSigner::from_skey(&text).map_err(|e| {
                LedgerError::corrupt(&path, 0, None, format!("signing key unreadable: {e}"))
            })?;
            if !paths.verifier_key().exists() {
                write_verifier(paths, &signer)?;
            }
            Ok(signer)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(evidence) = existing_ledger(paths)? {
                return Err(LedgerError::KeyMissing {
                    path: path.clone(),
                    detail: format!(
                        "{} is missing but this ledger already exists ({evidence}): Vigil never makes a new signing key for an existing ledger, \
                         because anything signed with it would pass for this ledger's history. Restore the key file from a backup, or rotate to a new key \
                         explicitly and on the record with `vigil ledger rotate-key --data-dir DIR --reason \"...\"`",
                        path.display()
                    ),
                });
            }
            let mut suffix = [0u8; 4];
            getrandom::fill(&mut suffix)
                .map_err(|_| LedgerError::Invalid("no system randomness".into()))?;
            let origin = format!(
                "vigil/{}/{:02x}{:02x}{:02x}{:02x}",
                host_name(),
                suffix[0],
                suffix[1],
                suffix[2],
                suffix[3]
            );
            let signer = NoteSigner::generate(&origin)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| LedgerError::io(format!("creating {}", path.display()), e))?;
            file.write_all(format!("{}\n", signer.to_skey()).as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
            write_verifier(paths, &signer)?;
            sync_dir(paths.root())?;
            Ok(signer)
        }
        Err(e) => Err(LedgerError::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes `verifier.vkey` whole or not at all (a temporary file, then a rename): a reader such
/// as `vigil key` never sees it half written.
fn write_verifier(paths: &LedgerPaths, signer: &NoteSigner) -> Result<(), LedgerError> {
    let path = paths.verifier_key();
    let tmp = path.with_extension("vkey.tmp");
    fs::write(&tmp, format!("{}\n", signer.verifier().to_vkey()))
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))
}

/// Why the ledger of `paths` counts as existing (so its key must not be replaced), if it does.
pub(crate) fn existing_ledger(paths: &LedgerPaths) -> Result<Option<String>, LedgerError> {
    if paths.witness().exists() {
        return Ok(Some("its witness is present".into()));
    }
    for (path, magic) in [
        (paths.checkpoints(), format::CHECKPOINTS_MAGIC),
        (paths.prunes(), format::PRUNES_MAGIC),
    ] {
        if !files::read_record_log(&path, magic)?.records.is_empty() {
            return Ok(Some(format!("{} holds signed records", path.display())));
        }
    }
    for (_, segment) in files::list_segments(paths)? {
        let len = segment.metadata().map(|m| m.len()).unwrap_or(0);
        if len > format::SEGMENT_HEADER_LEN as u64 {
            return Ok(Some(format!("{} holds events", segment.display())));
        }
    }
    Ok(None)
}

/// Loads the verifier key of a ledger.
pub fn load_verifier(paths: &LedgerPaths) -> Result<NoteVerifier, LedgerError> {
    let path = paths.verifier_key();
    if !path.exists() {
        if !paths.root().exists() {
            return Err(LedgerError::NotInitialized {
                path: paths.root().to_owned(),
            });
        }
        let signing = if paths.signing_key().exists() {
            "signing.key is present"
        } else {
            "signing.key is missing too"
        };
        return Err(LedgerError::KeyMissing {
            path: path.clone(),
            detail: format!(
                "the ledger at {} exists but its verifier key {} is missing ({signing}): give the verifier key saved elsewhere with --key VKEY|FILE",
                paths.root().display(),
                path.display()
            ),
        });
    }
    let text = String::from_utf8(read_file(&path)?)
        .map_err(|_| LedgerError::corrupt(&path, 0, None, "verifier key is not UTF-8"))?;
    Ok(NoteVerifier::from_vkey(&text)?)
}

/// This machine's host name, reduced to characters safe in a key name.
fn host_name() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(63)
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}
