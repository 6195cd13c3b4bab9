//! Evidence bundles: selected events with everything a third party needs to check, without
//! Vigil, that the ledger holds them exactly as shown and has not been rewritten since.
//!
//! A bundle is a directory (format version [`BUNDLE_VERSION`]; the files DESIGN.md names, plus
//! `manifest.json`, `latest-checkpoint.txt` and `consistency.json`):
//!
//! | file | contents |
//! |---|---|
//! | `manifest.json` | `{"format": "vigil-evidence", "version": 1, "origin", "created", "selection", "events", "checkpoint_size", "latest_size"}` |
//! | `events.ndjson` | one line per event: `{"seq", "leaf" (base64 of the canonical event bytes, the Merkle leaf), "event" (the same event as JSON, for reading)}` |
//! | `proofs.json` | per seq (`{"SEQ": {"leaf_index", "tree_size", "proof"}}`): the RFC 9162 inclusion proof (hex sibling hashes from the leaf up) against `checkpoint.txt` |
//! | `checkpoint.txt` | the earliest signed checkpoint (C2SP signed note) whose tree holds every selected event |
//! | `latest-checkpoint.txt` | the ledger's latest signed checkpoint when the bundle was made |
//! | `consistency.json` | `{"old_size", "new_size", "proof"}`: the RFC 9162 consistency proof from `checkpoint.txt` to `latest-checkpoint.txt` (the later log extends the earlier one) |
//! | `vkey.txt` | the ledger's note verifier key (`name+keyid+base64(0x01 ‖ Ed25519 public key)`) |
//! | `verify.py` | a stand-alone verifier needing only Python's `hashlib` and the `cryptography` package |
//! | `README.md` | what the bundle is and how to check it |
//!
//! What a successful check proves: each event's bytes are leaf `seq` of a Merkle tree whose root
//! the ledger key signed at `checkpoint.txt`'s time, and the latest checkpoint's tree extends
//! that one (nothing in it was changed or removed afterwards). The `event` JSON is only a reading
//! aid: a verifier checks that it decodes from the leaf bytes, never trusts it alone. What it does
//! not prove: that the key belongs to whom you think — compare `vkey.txt` with the key the
//! ledger's operator published (`vigil key`) or with a witness's cosigned checkpoint.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value as Json, json};

use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, NoteVerifier};
use crate::reader::hex;
use crate::{LedgerError, LedgerReader, SignedCheckpoint};

/// The bundle format version written in `manifest.json`.
pub const BUNDLE_VERSION: u64 = 1;

/// The stand-alone Python verifier shipped in every bundle.
pub const VERIFY_PY: &str = include_str!("evidence_verify.py");

/// Events selected at most per bundle (each carries its proof; the bundle is read whole).
pub const MAX_EVENTS: usize = 100_000;

/// One event of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceEvent {
    /// Its sequence number (the leaf index).
    pub seq: u64,
    /// The canonical event bytes (the leaf data).
    pub leaf: Vec<u8>,
    /// Sibling hashes from the leaf up, against the bundle's checkpoint.
    pub proof: Vec<Hash>,
    /// The readable copy of the event (JSON) the bundle shows beside its bytes: checked to be
    /// exactly what the leaf decodes to.
    pub event: Json,
}

/// The readable JSON of canonical event bytes (a placeholder naming the error when they do
/// not decode, which [`Bundle::verify`] then refuses).
pub fn readable(leaf: &[u8]) -> Json {
    match vigil_event::Event::from_canonical(leaf) {
        Ok(event) => event.to_json(),
        Err(e) => json!({"undecodable": e.to_string()}),
    }
}

/// An evidence bundle in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// What was selected, as the exporter described it (e.g. `{"query": "…"}`).
    pub selection: Json,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The ledger's verifier key (vkey text).
    pub vkey: String,
    /// The signed checkpoint the inclusion proofs are against.
    pub checkpoint: String,
    /// The latest signed checkpoint when the bundle was made.
    pub latest: String,
    /// Consistency proof from `checkpoint` to `latest`.
    pub consistency: Vec<Hash>,
    /// The events, by sequence number.
    pub events: Vec<EvidenceEvent>,
}

/// What a bundle's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The log's origin (the key's name).
    pub origin: String,
    /// Tree size of the checkpoint the events are proven against.
    pub checkpoint_size: u64,
    /// Its `time` extension, if any.
    pub checkpoint_time: Option<String>,
    /// Tree size of the latest checkpoint.
    pub latest_size: u64,
    /// Events checked.
    pub events: usize,
    /// The key that signed both checkpoints, `name+keyid`.
    pub key: String,
}

/// Why a bundle does not check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    /// A file is missing or malformed.
    #[error("{file}: {reason}")]
    Malformed {
        /// The bundle file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint's signature does not verify with the bundle's key.
    #[error("{file}: the signature does not verify with vkey.txt: {reason}")]
    Signature {
        /// The checkpoint file.
        file: String,
        /// The verifier's error.
        reason: String,
    },
    /// An event's bytes are not in the signed tree.
    #[error("event seq {seq}: {reason}")]
    Event {
        /// Its sequence number.
        seq: u64,
        /// What failed.
        reason: String,
    },
    /// The latest checkpoint does not extend the bundle's checkpoint.
    #[error("consistency.json: the latest checkpoint does not extend checkpoint.txt: {0}")]
    Consistency(String),
}

fn malformed(file: &str, reason: impl Into<String>) -> EvidenceError {
    EvidenceError::Malformed {
        file: file.into(),
        reason: reason.into(),
    }
}

impl Bundle {
    /// Builds a bundle of the events `seqs` (deduplicated, sorted) from `reader`: proofs against
    /// the earliest signed checkpoint holding them all, and consistency to the latest.
    pub fn build(
        reader: &mut LedgerReader,
        seqs: &[u64],
        selection: Json,
        created: String,
    ) -> Result<Bundle, LedgerError> {
        let mut seqs = seqs.to_vec();
        seqs.sort_unstable();
        seqs.dedup();
        if seqs.is_empty() {
            return Err(LedgerError::Invalid("no events selected".into()));
        }
        if seqs.len() > MAX_EVENTS {
            return Err(LedgerError::Invalid(format!(
                "{} events selected; a bundle holds at most {MAX_EVENTS}: narrow the selection",
                seqs.len()
            )));
        }
        let newest = *seqs.last().unwrap_or(&0);
        let checkpoints: Vec<SignedCheckpoint> = reader.checkpoints()?;
        let latest = checkpoints
            .iter()
            .max_by_key(|c| c.checkpoint.size)
            .cloned()
            .ok_or_else(|| LedgerError::Invalid("the ledger has no checkpoint yet".into()))?;
        let covering = checkpoints
            .iter()
            .filter(|c| c.checkpoint.size > newest)
            .min_by_key(|c| c.checkpoint.size)
            .cloned()
            .ok_or_else(|| {
                LedgerError::Invalid(format!(
                    "event seq {newest} is not covered by a signed checkpoint yet (latest tree size {}); one is signed within seconds while `vigil serve` runs — try again",
                    latest.checkpoint.size
                ))
            })?;
        let size = covering.checkpoint.size;
        let mut events = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if seq < reader.first_seq() {
                return Err(LedgerError::Invalid(format!(
                    "event seq {seq} was pruned by retention (the ledger starts at {})",
                    reader.first_seq()
                )));
            }
            let leaf = reader.read_raw(seq)?;
            let proof = merkle::inclusion_proof(reader, seq, size)?;
            let event = readable(&leaf);
            events.push(EvidenceEvent {
                seq,
                leaf,
                proof,
                event,
            });
        }
        let consistency = reader.consistency_proof(size, latest.checkpoint.size)?;
        Ok(Bundle {
            selection,
            created,
            vkey: reader.verifier()?.to_vkey(),
            checkpoint: covering.note,
            latest: latest.note,
            consistency,
            events,
        })
    }

    /// Checks everything the bundle claims, with nothing but the bundle (see the module docs
    /// for what that proves).
    pub fn verify(&self) -> Result<Verified, EvidenceError> {
        let verifier = NoteVerifier::from_vkey(self.vkey.trim())
            .map_err(|e| malformed("vkey.txt", e.to_string()))?;
        let open = |file: &str, note: &str| -> Result<Checkpoint, EvidenceError> {
            let body = verifier.open(note).map_err(|e| EvidenceError::Signature {
                file: file.into(),
                reason: e.to_string(),
            })?;
            let checkpoint = Checkpoint::parse(body).map_err(|e| malformed(file, e.to_string()))?;
            if checkpoint.origin != verifier.name() {
                return Err(malformed(
                    file,
                    format!(
                        "origin {:?} is not the key's name {:?}",
                        checkpoint.origin,
                        verifier.name()
                    ),
                ));
            }
            Ok(checkpoint)
        };
        if self.events.is_empty() {
            return Err(malformed("events.ndjson", "no events: nothing is proven"));
        }
        let checkpoint = open("checkpoint.txt", &self.checkpoint)?;
        let latest = open("latest-checkpoint.txt", &self.latest)?;
        for event in &self.events {
            let leaf = merkle::leaf_hash(&event.leaf);
            merkle::verify_inclusion(
                &leaf,
                event.seq,
                checkpoint.size,
                &event.proof,
                &checkpoint.root,
            )
            .map_err(|e| EvidenceError::Event {
                seq: event.seq,
                reason: format!("not in the signed tree: {e}"),
            })?;
            if vigil_event::Event::from_canonical(&event.leaf).is_err() {
                return Err(EvidenceError::Event {
                    seq: event.seq,
                    reason: "its bytes are not a Vigil event".into(),
                });
            }
            if readable(&event.leaf) != event.event {
                return Err(EvidenceError::Event {
                    seq: event.seq,
                    reason:
                        "its readable copy (\"event\") differs from its proven bytes (\"leaf\")"
                            .into(),
                });
            }
        }
        merkle::verify_consistency(
            checkpoint.size,
            latest.size,
            &self.consistency,
            &checkpoint.root,
            &latest.root,
        )
        .map_err(|e| EvidenceError::Consistency(e.to_string()))?;
        Ok(Verified {
            checkpoint_time: checkpoint.time().map(str::to_owned),
            origin: checkpoint.origin,
            checkpoint_size: checkpoint.size,
            latest_size: latest.size,
            events: self.events.len(),
            key: {
                let vkey = verifier.to_vkey();
                vkey.rsplit_once('+')
                    .map_or(vkey.clone(), |(k, _)| k.to_owned())
            },
        })
    }

    /// Writes the bundle into `dir`, which must not exist or be empty.
    pub fn write_to(&self, dir: &Path) -> Result<(), LedgerError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |e: std::io::Error| LedgerError::io(what, e)
        };
        usable_dir(dir)?;
        std::fs::create_dir_all(dir).map_err(io(&format!("creating {}", dir.display())))?;
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.join(name), bytes)
                .map_err(io(&format!("writing {}", dir.join(name).display())))
        };
        let body = |note: &str| -> Result<Checkpoint, LedgerError> {
            let parsed =
                crate::note::parse_note(note).map_err(|e| LedgerError::Invalid(e.to_string()))?;
            Checkpoint::parse(parsed.text).map_err(|e| LedgerError::Invalid(e.to_string()))
        };
        let checkpoint = body(&self.checkpoint)?;
        let latest_size = body(&self.latest)?.size;
        let manifest = json!({
            "format": "vigil-evidence",
            "version": BUNDLE_VERSION,
            "origin": checkpoint.origin,
            "created": self.created,
            "selection": self.selection,
            "events": self.events.len(),
            "checkpoint_size": checkpoint.size,
            "latest_size": latest_size,
        });
        let mut lines = Vec::new();
        let mut proofs = serde_json::Map::new();
        for e in &self.events {
            let line = json!({
                "seq": e.seq,
                "leaf": B64.encode(&e.leaf),
                "event": e.event,
            });
            writeln!(lines, "{line}").map_err(io("encoding events.ndjson"))?;
            proofs.insert(
                e.seq.to_string(),
                json!({
                    "leaf_index": e.seq,
                    "tree_size": checkpoint.size,
                    "proof": e.proof.iter().map(hex).collect::<Vec<_>>(),
                }),
            );
        }
        write(
            "manifest.json",
            serde_json::to_string_pretty(&manifest)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        write("events.ndjson", &lines)?;
        write(
            "proofs.json",
            serde_json::to_string_pretty(&Json::Object(proofs))
                .unwrap_or_default()
                .as_bytes(),
        )?;
        write("checkpoint.txt", self.checkpoint.as_bytes())?;
        write("latest-checkpoint.txt", self.latest.as_bytes())?;
        let consistency = json!({
            "old_size": checkpoint.size,
            "new_size": latest_size,
            "proof": self.consistency.iter().map(hex).collect::<Vec<_>>(),
        });
        write("consistency.json", format!("{consistency}\n").as_bytes())?;
        write("vkey.txt", format!("{}\n", self.vkey.trim()).as_bytes())?;
        write("verify.py", VERIFY_PY.as_bytes())?;
        write("README.md", readme(&manifest).as_bytes())?;
        Ok(())
    }

    /// Reads a bundle directory (bounded: each file at most 1 GiB, every field checked).
    pub fn read_from(dir: &Path) -> Result<Bundle, EvidenceError> {
        use std::io::Read;
        // Regular files only (never a FIFO, a device or a link to one), each read at most to
        // its limit: a hostile bundle cannot hang the verifier or exhaust its memory.
        let read = |name: &str| -> Result<String, EvidenceError> {
            let limit: u64 = match name {
                "events.ndjson" | "proofs.json" => 256 << 20,
                _ => 1 << 20,
            };
            let path = dir.join(name);
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| malformed(name, e.to_string()))?;
            if !meta.file_type().is_file() {
                return Err(malformed(name, "not a regular file"));
            }
            let file = std::fs::File::open(&path).map_err(|e| malformed(name, e.to_string()))?;
            let mut text = String::new();
            file.take(limit + 1)
                .read_to_string(&mut text)
                .map_err(|e| malformed(name, e.to_string()))?;
            if text.len() as u64 > limit {
                return Err(malformed(name, format!("larger than {limit} bytes")));
            }
            Ok(text)
        };
        let manifest: Json = serde_json::from_str(&read("manifest.json")?)
            .map_err(|e| malformed("manifest.json", e.to_string()))?;
        if manifest["format"] != "vigil-evidence" {
            return Err(malformed("manifest.json", "not a Vigil evidence bundle"));
        }
        if manifest["version"] != BUNDLE_VERSION {
            return Err(malformed(
                "manifest.json",
                format!(
                    "bundle version {} (this Vigil reads version {BUNDLE_VERSION})",
                    manifest["version"]
                ),
            ));
        }
        let hash = |file: &str, h: &Json| -> Result<Hash, EvidenceError> {
            h.as_str()
                .and_then(decode_hex)
                .ok_or_else(|| malformed(file, format!("{h} is not a 32-byte hex hash")))
        };
        let hashes = |file: &str, list: &Json| -> Result<Vec<Hash>, EvidenceError> {
            let list = list
                .as_array()
                .ok_or_else(|| malformed(file, "proof is not a list"))?;
            if list.len() > 64 {
                return Err(malformed(file, "proof longer than a 2^64 tree needs"));
            }
            list.iter().map(|h| hash(file, h)).collect()
        };
        let mut sizes = Vec::new();
        let proofs: Json = serde_json::from_str(&read("proofs.json")?)
            .map_err(|e| malformed("proofs.json", e.to_string()))?;
        let mut events = Vec::new();
        for (n, line) in read("events.ndjson")?.lines().enumerate() {
            let file = format!("events.ndjson line {}", n + 1);
            let v: Json =
                serde_json::from_str(line).map_err(|e| malformed(&file, e.to_string()))?;
            let seq = v["seq"]
                .as_u64()
                .ok_or_else(|| malformed(&file, "seq is not a number"))?;
            let leaf = v["leaf"]
                .as_str()
                .and_then(|s| B64.decode(s).ok())
                .ok_or_else(|| malformed(&file, "leaf is not base64"))?;
            if events.len() >= MAX_EVENTS {
                return Err(malformed(&file, format!("more than {MAX_EVENTS} events")));
            }
            let proof = &proofs[seq.to_string()];
            let file = format!("proofs.json seq {seq}");
            if proof["leaf_index"].as_u64() != Some(seq) {
                return Err(malformed(
                    &file,
                    "missing, or its leaf_index is not the seq",
                ));
            }
            let tree_size = proof["tree_size"]
                .as_u64()
                .ok_or_else(|| malformed(&file, "tree_size is not a number"))?;
            events.push(EvidenceEvent {
                seq,
                leaf,
                proof: hashes(&file, &proof["proof"])?,
                event: v["event"].clone(),
            });
            sizes.push(tree_size);
        }
        let consistency: Json = serde_json::from_str(&read("consistency.json")?)
            .map_err(|e| malformed("consistency.json", e.to_string()))?;
        let bundle = Bundle {
            selection: manifest["selection"].clone(),
            created: manifest["created"].as_str().unwrap_or_default().to_owned(),
            vkey: read("vkey.txt")?,
            checkpoint: read("checkpoint.txt")?,
            latest: read("latest-checkpoint.txt")?,
            consistency: hashes("consistency.json", &consistency["proof"])?,
            events,
        };
        // The sizes the files state must be the checkpoints' own (verify checks the rest).
        let size_of = |note: &str| {
            crate::note::parse_note(note)
                .ok()
                .and_then(|n| Checkpoint::parse(n.text).ok())
                .map(|c| c.size)
        };
        let (first, latest) = (size_of(&bundle.checkpoint), size_of(&bundle.latest));
        if let Some(bad) = sizes.iter().find(|s| Some(**s) != first) {
            return Err(malformed(
                "proofs.json",
                format!("a proof states tree size {bad}, checkpoint.txt is {first:?}"),
            ));
        }
        if consistency["old_size"].as_u64() != first || consistency["new_size"].as_u64() != latest {
            return Err(malformed(
                "consistency.json",
                "its sizes are not the checkpoints'",
            ));
        }
        Ok(bundle)
    }
}

/// Refuses a bundle directory that exists and is not empty (a bundle never overwrites).
pub fn usable_dir(dir: &Path) -> Result<(), LedgerError> {
    let io = |what: String| move |e: std::io::Error| LedgerError::io(what, e);
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io(format!("reading {}", dir.display())))?
            .next()
            .is_some()
    {
        return Err(LedgerError::Invalid(format!(
            "{} exists and is not empty: choose a new directory for the bundle",
            dir.display()
        )));
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn readme(manifest: &Json) -> String {
    format!(
        "# Vigil evidence bundle\n\n\
         {events} event(s) from the Vigil ledger `{origin}`, selected by `{selection}`, exported {created}.\n\n\
         Each event in `events.ndjson` carries its exact stored bytes (`leaf`, base64); `proofs.json`\n\
         holds its Merkle inclusion proof (RFC 9162) against `checkpoint.txt`, a checkpoint of tree\n\
         size {size} signed\n\
         with the ledger's Ed25519 key (`vkey.txt`, C2SP signed-note format). `consistency.json`\n\
         proves that the ledger's latest checkpoint when the bundle was made\n\
         (`latest-checkpoint.txt`, tree size {latest}) extends it: nothing before it was changed since.\n\n\
         ## Check it\n\n\
         Without Vigil (Python 3 with the `cryptography` package):\n\n\
         ```\npython3 verify.py .\n```\n\n\
         With Vigil: `vigil evidence verify .`\n\n\
         Then compare `vkey.txt` with the key the ledger's operator published (`vigil key` on the\n\
         server) or a witness cosignature: the proofs show the events are in the log that key signs.\n\
         The `event` field of each line is a readable copy of `leaf`; only `leaf` is proven.\n",
        events = manifest["events"],
        origin = manifest["origin"].as_str().unwrap_or_default(),
        selection = manifest["selection"],
        created = manifest["created"].as_str().unwrap_or_default(),
        size = manifest["checkpoint_size"],
        latest = manifest["latest_size"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_or_partial_bundle_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = |dir: &Path| Bundle::read_from(dir).unwrap_err().to_string();
        assert!(err(dir.path()).starts_with("manifest.json:"));
        std::fs::write(dir.path().join("manifest.json"), "{\"format\": \"other\"}").unwrap();
        assert!(err(dir.path()).contains("not a Vigil evidence bundle"));
        std::fs::write(
            dir.path().join("manifest.json"),
            "{\"format\": \"vigil-evidence\", \"version\": 9}",
        )
        .unwrap();
        assert!(err(dir.path()).contains("bundle version 9"));
        std::fs::write(
            dir.path().join("manifest.json"),
            "{\"format\": \"vigil-evidence\", \"version\": 1}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("proofs.json"),
            "{\"0\": {\"leaf_index\": 0, \"tree_size\": 1, \"proof\": [\"zz\"]}}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("events.ndjson"),
            "{\"seq\": 0, \"leaf\": \"AA==\"}\n",
        )
        .unwrap();
        assert!(err(dir.path()).contains("is not a 32-byte hex hash"));
        let long = format!(
            "[{}]",
            vec![format!("\"{}\"", "00".repeat(32)); 65].join(",")
        );
        std::fs::write(
            dir.path().join("proofs.json"),
            format!("{{\"0\": {{\"leaf_index\": 0, \"tree_size\": 1, \"proof\": {long}}}}}"),
        )
        .unwrap();
        assert!(err(dir.path()).contains("proof longer"));
        std::fs::write(
            dir.path().join("events.ndjson"),
            "{\"seq\": 1, \"leaf\": \"AA==\"}\n",
        )
        .unwrap();
        assert!(err(dir.path()).contains("proofs.json seq 1"));
        std::fs::write(dir.path().join("events.ndjson"), "{\"seq\": -1}\n").unwrap();
        assert!(err(dir.path()).contains("seq is not a number"));
    }
}
