//! The witness itself, transport-agnostic: which logs it knows, its cosigning key, and the
//! latest checkpoint it cosigned for each log, persisted and fsynced before it cosigns.
//!
//! Logs are known by origin. From the configuration (`[witness] logs`: a log's vkey, whose key
//! name is its origin, as for every Vigil ledger) or, in cluster mode, registered by the nodes
//! of the cluster on first use (trust on first use, then pinned: a new key for a known origin is
//! refused). One lock serialises the check of `old` and the update of the state, so two
//! concurrent requests can never roll the recorded size back (the race the specification warns
//! about).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use vigil_ledger::cosignature::CosignatureSigner;
use vigil_ledger::merkle::{self, Hash};
use vigil_ledger::note::{Checkpoint, NoteVerifier, parse_note};

use super::protocol::{AddCheckpoint, WitnessError, parse_request};

/// Most logs one witness keeps (configured and registered): bounds what cluster registrations
/// can make it hold.
pub const MAX_LOGS: usize = 10_000;
/// Version of `state.json`.
const STATE_VERSION: u32 = 1;

/// Where a known log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// `[witness] logs` / `--witness-log`.
    Config,
    /// Registered by a node of the cluster (trust on first use, then pinned).
    Cluster,
}

/// What the witness keeps about one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    /// The log's verifier key (a C2SP vkey whose name is the origin).
    pub vkey: String,
    /// Where the key came from.
    pub source: LogSource,
    /// Size of the latest checkpoint cosigned (0: none).
    pub size: u64,
    /// Its root hash, base64 (absent before the first cosignature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    logs: BTreeMap<String, LogState>,
}

/// A witness: key, known logs, state.
#[derive(Debug)]
pub struct Witness {
    dir: PathBuf,
    signer: CosignatureSigner,
    state: Mutex<BTreeMap<String, LogState>>,
}

fn host_name() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    if name.is_empty() { "host".into() } else { name }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Loads the witness's cosigning key from `dir` (`witness.key`), creating it (and
/// `witness.vkey`) on first use.
pub fn load_or_create_key(dir: &Path) -> Result<CosignatureSigner, String> {
    let path = dir.join("witness.key");
    match fs::read_to_string(&path) {
        Ok(text) => {
            CosignatureSigner::from_skey(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
            let mut suffix = [0u8; 4];
            getrandom_fill(&mut suffix)?;
            let name = format!(
                "vigil-witness/{}/{}",
                host_name(),
                suffix
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            let signer = CosignatureSigner::generate(&name).map_err(|e| e.to_string())?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| io_err("creating", &path, e))?;
            file.write_all(format!("{}\n", signer.to_skey()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err("writing", &path, e))?;
            let vkey = dir.join("witness.vkey");
            fs::write(&vkey, format!("{}\n", signer.verifier().to_vkey()))
                .map_err(|e| io_err("writing", &vkey, e))?;
            sync_dir(dir)?;
            Ok(signer)
        }
        Err(e) => Err(io_err("reading", &path, e)),
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), String> {
    // The ledger's key generation draws from the same source; a fresh key proves it works.
    let probe = CosignatureSigner::generate("probe").map_err(|e| e.to_string())?;
    let digest = merkle::leaf_hash(probe.to_skey().as_bytes());
    buf.copy_from_slice(&digest[..buf.len()]);
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing", dir, e))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Witness {
    /// Opens (or creates) the witness in `dir` and adds the configured logs' keys. A configured
    /// key replaces the one recorded for its origin (the operator said so); the recorded size and
    /// root are kept.
    pub fn open(dir: &Path, configured: &[NoteVerifier]) -> Result<Witness, String> {
        let signer = load_or_create_key(dir)?;
        let path = dir.join("state.json");
        let mut logs = match fs::read(&path) {
            Ok(bytes) => {
                let file: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if file.version != STATE_VERSION {
                    return Err(format!(
                        "{}: version {} (this Vigil reads {STATE_VERSION})",
                        path.display(),
                        file.version
                    ));
                }
                file.logs
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io_err("reading", &path, e)),
        };
        for key in configured {
            let entry = logs.entry(key.name().to_owned()).or_insert(LogState {
                vkey: key.to_vkey(),
                source: LogSource::Config,
                size: 0,
                root: None,
            });
            entry.vkey = key.to_vkey();
            entry.source = LogSource::Config;
        }
        let witness = Witness {
            dir: dir.to_owned(),
            signer,
            state: Mutex::new(logs),
        };
        {
            let logs = witness.state.lock().expect("witness state");
            witness.persist(&logs)?;
        }
        Ok(witness)
    }

    /// The witness's name (its key name).
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// The witness's cosignature verifier key (a vkey of type 0x04), what clients and
    /// `vigil verify --witness-key` are given.
    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    /// The state of every known log.
    pub fn logs(&self) -> BTreeMap<String, LogState> {
        self.state.lock().expect("witness state").clone()
    }

    fn persist(&self, logs: &BTreeMap<String, LogState>) -> Result<(), String> {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let body = serde_json::to_vec_pretty(&StateFile {
            version: STATE_VERSION,
            logs: logs.clone(),
        })
        .map_err(|e| e.to_string())?;
        let mut file = File::create(&tmp).map_err(|e| io_err("creating", &tmp, e))?;
        file.write_all(&body)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err("writing", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("renaming", &tmp, e))?;
        sync_dir(&self.dir)
    }

    /// Registers a log by its vkey (cluster mode: trust on first use). Known with the same key:
    /// nothing to do. Known with another key: refused (403), the pinned key stays.
    pub fn register(&self, vkey: &str) -> Result<bool, WitnessError> {
        let key = NoteVerifier::from_vkey(vkey)
            .map_err(|e| WitnessError::Malformed(format!("log key: {e}")))?;
        let mut logs = self.state.lock().expect("witness state");
        if let Some(known) = logs.get(key.name()) {
            if known.vkey == key.to_vkey() {
                return Ok(false);
            }
            return Err(WitnessError::Forbidden {
                origin: key.name().to_owned(),
                reason: "a different key is pinned for this origin; a key change is refused".into(),
            });
        }
        if logs.len() >= MAX_LOGS {
            return Err(WitnessError::Internal(format!(
                "the witness already knows {MAX_LOGS} logs"
            )));
        }
        let mut next = logs.clone();
        next.insert(
            key.name().to_owned(),
            LogState {
                vkey: key.to_vkey(),
                source: LogSource::Cluster,
                size: 0,
                root: None,
            },
        );
        self.persist(&next).map_err(WitnessError::Internal)?;
        *logs = next;
        Ok(true)
    }

    /// `add-checkpoint` from its raw body: the cosignature line(s), or the refusal.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<String, WitnessError> {
        self.add(&parse_request(body)?)
    }

    /// `add-checkpoint` from a parsed request.
    pub fn add(&self, req: &AddCheckpoint) -> Result<String, WitnessError> {
        let parsed = parse_note(&req.note)
            .map_err(|e| WitnessError::Malformed(format!("checkpoint: {e}")))?;
        let checkpoint = Checkpoint::parse(parsed.text)
            .map_err(|e| WitnessError::Malformed(format!("checkpoint: {e}")))?;
        let origin = checkpoint.origin.clone();
        let mut logs = self.state.lock().expect("witness state");
        let Some(log) = logs.get(&origin) else {
            return Err(WitnessError::UnknownLog(origin));
        };
        let key = NoteVerifier::from_vkey(&log.vkey).map_err(|e| WitnessError::Forbidden {
            origin: origin.clone(),
            reason: format!("the recorded key is unreadable: {e}"),
        })?;
        key.open(&req.note).map_err(|e| WitnessError::Forbidden {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        if req.old > checkpoint.size {
            return Err(WitnessError::Malformed(format!(
                "old size {} is larger than the checkpoint's size {}",
                req.old, checkpoint.size
            )));
        }
        if req.old != log.size {
            return Err(WitnessError::Conflict {
                latest: log.size,
                reason: format!("the request says old {}", req.old),
            });
        }
        let stored_root: Option<Hash> = log
            .root
            .as_deref()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|b| b.try_into().ok());
        if req.old == 0 {
            if !req.proof.is_empty() {
                return Err(WitnessError::Malformed(
                    "a proof from size 0 must be empty".into(),
                ));
            }
        } else {
            let old_root = stored_root.ok_or_else(|| {
                WitnessError::Internal(format!(
                    "no root recorded for {origin} at size {}",
                    log.size
                ))
            })?;
            if req.old == checkpoint.size {
                if old_root != checkpoint.root {
                    return Err(WitnessError::Conflict {
                        latest: log.size,
                        reason: "same size, different root hash: a fork".into(),
                    });
                }
            } else {
                merkle::verify_consistency(
                    req.old,
                    checkpoint.size,
                    &req.proof,
                    &old_root,
                    &checkpoint.root,
                )
                .map_err(|e| WitnessError::BadProof(e.to_string()))?;
            }
        }
        let mut next = logs.clone();
        let entry = next.get_mut(&origin).expect("looked up above");
        entry.size = checkpoint.size;
        entry.root = Some(B64.encode(checkpoint.root));
        self.persist(&next).map_err(WitnessError::Internal)?;
        *logs = next;
        drop(logs);
        self.signer
            .cosign(parsed.text, now_secs())
            .map_err(|e| WitnessError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::witness::protocol::format_request;
    use vigil_ledger::cosignature::CosignatureVerifier;
    use vigil_ledger::merkle::{consistency_proof, leaf_hash, root_from_leaf_hashes};
    use vigil_ledger::note::NoteSigner;

    struct Log {
        signer: NoteSigner,
        leaves: Vec<Hash>,
    }

    impl Log {
        fn new(origin: &str) -> Log {
            Log {
                signer: NoteSigner::generate(origin).unwrap(),
                leaves: Vec::new(),
            }
        }
        fn grow(&mut self, n: usize) {
            let start = self.leaves.len();
            self.leaves
                .extend((start..start + n).map(|i| leaf_hash(&(i as u64).to_be_bytes())));
        }
        fn text(&self, size: usize) -> String {
            Checkpoint {
                origin: self.signer.name().into(),
                size: size as u64,
                root: root_from_leaf_hashes(&self.leaves[..size]),
                extensions: vec![],
            }
            .to_text()
        }
        fn note(&self, size: usize) -> String {
            self.signer.sign(&self.text(size)).unwrap()
        }
        fn request(&self, old: usize, size: usize) -> String {
            let proof = if old == 0 {
                vec![]
            } else {
                consistency_proof(&mut self.leaves.as_slice(), old as u64, size as u64).unwrap()
            };
            format_request(old as u64, &proof, &self.note(size))
        }
    }

    fn witness(dir: &Path, log: &Log) -> Witness {
        Witness::open(dir, &[log.signer.verifier()]).unwrap()
    }

    #[test]
    fn cosigns_a_consistent_history_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new("vigil/b/0001");
        log.grow(10);
        let w = witness(dir.path(), &log);
        let line = w.add_checkpoint(log.request(0, 10).as_bytes()).unwrap();
        let verifier = CosignatureVerifier::from_vkey(&w.vkey()).unwrap();
        verifier
            .verify_note(&format!("{}{line}", log.note(10)))
            .unwrap();
        log.grow(7);
        w.add_checkpoint(log.request(10, 17).as_bytes()).unwrap();
        // Same size, same root: cosigned again.
        w.add_checkpoint(log.request(17, 17).as_bytes()).unwrap();
        drop(w);
        let again = witness(dir.path(), &log);
        assert_eq!(again.vkey(), verifier.to_vkey(), "the key is kept");
        assert_eq!(again.logs()["vigil/b/0001"].size, 17, "the state is kept");
        assert!(dir.path().join("state.json").exists());
    }

    #[test]
    fn wrong_old_is_409_with_the_latest_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new("vigil/b/0002");
        log.grow(20);
        let w = witness(dir.path(), &log);
        w.add_checkpoint(log.request(0, 12).as_bytes()).unwrap();
        let e = w.add_checkpoint(log.request(0, 20).as_bytes()).unwrap_err();
        assert_eq!((e.status(), e.body()), (409, "12\n".to_string()));
        let e = w.add_checkpoint(log.request(5, 20).as_bytes()).unwrap_err();
        assert_eq!(e.status(), 409);
        // A rolled-back log (smaller than what the witness saw) can only be told the size.
        let e = w.add_checkpoint(log.request(0, 8).as_bytes()).unwrap_err();
        assert_eq!((e.status(), e.body()), (409, "12\n".to_string()));
        // old larger than the checkpoint: malformed.
        let e = w.add_checkpoint(log.request(12, 12).replace("old 12", "old 13").as_bytes());
        assert_eq!(e.unwrap_err().status(), 400);
    }

    #[test]
    fn a_bad_proof_is_422_and_a_fork_at_the_same_size_409() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new("vigil/b/0003");
        log.grow(9);
        let w = witness(dir.path(), &log);
        w.add_checkpoint(log.request(0, 9).as_bytes()).unwrap();
        // The same log key signs a different history (a rewritten ledger).
        let mut fork = Log {
            signer: NoteSigner::from_skey(&log.signer.to_skey()).unwrap(),
            leaves: log.leaves.clone(),
        };
        fork.leaves[3] = leaf_hash(b"rewritten");
        fork.grow(5);
        let e = w
            .add_checkpoint(fork.request(9, 14).as_bytes())
            .unwrap_err();
        assert_eq!(e.status(), 422, "{e}");
        let e = w.add_checkpoint(fork.request(9, 9).as_bytes()).unwrap_err();
        assert_eq!(e.status(), 409, "{e}");
        assert_eq!(
            w.logs()["vigil/b/0003"].size,
            9,
            "nothing refused changed the state"
        );
    }

    #[test]
    fn unknown_log_404_forged_signature_403_key_change_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new("vigil/b/0004");
        log.grow(3);
        let w = witness(dir.path(), &log);
        let mut stranger = Log::new("vigil/other/0001");
        stranger.grow(3);
        assert_eq!(
            w.add_checkpoint(stranger.request(0, 3).as_bytes())
                .unwrap_err()
                .status(),
            404
        );
        // Same origin, another key: the signature is not by the known key.
        let mut impostor = Log::new("vigil/b/0004");
        impostor.grow(3);
        let e = w
            .add_checkpoint(impostor.request(0, 3).as_bytes())
            .unwrap_err();
        assert_eq!(e.status(), 403, "{e}");
        // A signature line by the known name and key id, with a tampered body.
        let tampered = log.request(0, 3).replacen("\n3\n", "\n4\n", 1);
        assert_eq!(
            w.add_checkpoint(tampered.as_bytes()).unwrap_err().status(),
            403
        );
        // Cluster registration: first use pins, a key change is refused, the same key is fine.
        let node = NoteSigner::generate("vigil/c/p0/n1").unwrap();
        assert_eq!(w.register(&node.verifier().to_vkey()), Ok(true));
        assert_eq!(w.register(&node.verifier().to_vkey()), Ok(false));
        let usurper = NoteSigner::generate("vigil/c/p0/n1").unwrap();
        assert_eq!(
            w.register(&usurper.verifier().to_vkey())
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(w.register("garbage").unwrap_err().status(), 400);
        drop(w);
        let again = witness(dir.path(), &log);
        assert_eq!(
            again.logs()["vigil/c/p0/n1"].vkey,
            node.verifier().to_vkey()
        );
        assert_eq!(again.logs()["vigil/c/p0/n1"].source, LogSource::Cluster);
    }

    #[test]
    fn oversized_body_is_413_and_a_proof_from_zero_400() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new("vigil/b/0005");
        let w = witness(dir.path(), &log);
        let body = vec![b'x'; super::super::protocol::MAX_REQUEST_BYTES + 1];
        assert_eq!(w.add_checkpoint(&body).unwrap_err().status(), 413);
        // A proof from 0 must be empty.
        let mut log = log;
        log.grow(2);
        let body = format_request(0, &[[0; 32]], &log.note(2));
        assert_eq!(w.add_checkpoint(body.as_bytes()).unwrap_err().status(), 400);
        assert_eq!(w.logs()["vigil/b/0005"].size, 0);
    }
}
