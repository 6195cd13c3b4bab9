//! The ledger's Ed25519 signing key: created once, kept with mode 0600.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;

use crate::error::LedgerError;
use crate::files::{LedgerPaths, read_file, sync_dir};
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

fn write_verifier(paths: &LedgerPaths, signer: &NoteSigner) -> Result<(), LedgerError> {
    let path = paths.verifier_key();
    fs::write(&path, format!("{}\n", signer.verifier().to_vkey()))
        .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))
}

/// Loads the verifier key of a ledger.
pub fn load_verifier(paths: &LedgerPaths) -> Result<NoteVerifier, LedgerError> {
    let path = paths.verifier_key();
    if !path.exists() {
        return Err(LedgerError::NotInitialized {
            path: paths.root().to_owned(),
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
