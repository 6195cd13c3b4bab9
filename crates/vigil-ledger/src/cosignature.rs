//! C2SP cosignatures (<https://c2sp.org/tlog-cosignature>, Ed25519 `cosignature/v1`): a
//! witness's statement that, as of a time, the checkpoint it signs is the largest consistent
//! tree head it has seen for the log. Pure: keys, signing, verification.
//!
//! * key id = first four bytes of `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)`;
//! * the signed message is `cosignature/v1\ntime <unix seconds>\n` followed by the checkpoint's
//!   note text (with its final newline, without signature lines);
//! * the signature line is `— <name> base64(key id ‖ u64 BE timestamp ‖ Ed25519 signature)`;
//! * keys print as vkeys `name+hex(key id)+base64(0x04 ‖ public key)` and signing keys as
//!   `PRIVATE+KEY+name+hex(key id)+base64(0x04 ‖ seed)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::note::{NoteError, format_skey, new_seed, parse_note, parse_skey, split_key};

/// Signature type byte of Ed25519 `cosignature/v1` keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Bytes of a cosignature blob after the key id: timestamp and signature.
const TIMESTAMPED_SIGNATURE_LEN: usize = 8 + 64;

fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_COSIGNATURE_V1]);
    h.update(public);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The message a cosignature signs: `cosignature/v1\ntime T\n` ‖ checkpoint text.
pub fn signed_message(checkpoint_text: &str, time: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(checkpoint_text.as_bytes());
    m
}

/// A witness's Ed25519 cosigning key with its name.
pub struct CosignatureSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "CosignatureSigner({}+{:08x})", self.name, self.key_id)
    }
}

impl CosignatureSigner {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<CosignatureSigner, NoteError> {
        Ok(CosignatureSigner::from_seed(name, new_seed(name)?))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> CosignatureSigner {
        let key = SigningKey::from_bytes(&seed);
        CosignatureSigner {
            name: name.to_owned(),
            key_id: key_id(name, key.verifying_key().as_bytes()),
            key,
        }
    }

    /// Reads `PRIVATE+KEY+name+hexid+base64(0x04 ‖ seed)`.
    pub fn from_skey(text: &str) -> Result<CosignatureSigner, NoteError> {
        let (name, id, seed) = parse_skey(
            text,
            ALG_COSIGNATURE_V1,
            "not an Ed25519 cosignature/v1 signing key",
        )?;
        let signer = CosignatureSigner::from_seed(name, seed);
        if signer.key_id != id {
            return Err(NoteError::Key("key id does not match key"));
        }
        Ok(signer)
    }

    /// The signing key in `PRIVATE+KEY+…` form. Secret: store with mode 0600.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.name,
            self.key_id,
            ALG_COSIGNATURE_V1,
            &self.key.to_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Key name (the witness's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosignature line (ending in a newline) over `checkpoint_text` (the note text of a
    /// checkpoint, ending in a newline) at `time` (Unix seconds, below 2^63).
    pub fn cosign(&self, checkpoint_text: &str, time: u64) -> Result<String, NoteError> {
        if !checkpoint_text.ends_with('\n') {
            return Err(NoteError::Format("note text must end with a newline"));
        }
        if time > i64::MAX as u64 {
            return Err(NoteError::Format("cosignature time must be below 2^63"));
        }
        let signature = self.key.sign(&signed_message(checkpoint_text, time));
        let mut blob = self.key_id.to_be_bytes().to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("\u{2014} {} {}\n", self.name, B64.encode(blob)))
    }
}

/// A witness's Ed25519 cosignature verifier key with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Reads a vkey `name+hexid+base64(0x04 ‖ public key)`.
    pub fn from_vkey(text: &str) -> Result<CosignatureVerifier, NoteError> {
        let (name, id, material) = split_key(text.trim())?;
        let bytes = B64
            .decode(material)
            .map_err(|_| NoteError::Key("bad base64"))?;
        if bytes.len() != 33 || bytes[0] != ALG_COSIGNATURE_V1 {
            return Err(NoteError::Key(
                "not an Ed25519 cosignature/v1 verifier key (type 0x04)",
            ));
        }
        let public: [u8; 32] = bytes[1..].try_into().expect("33 - 1 bytes");
        if key_id(name, &public) != id {
            return Err(NoteError::Key("key id does not match key"));
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::Key("not a valid Ed25519 point"))?;
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        let mut material = vec![ALG_COSIGNATURE_V1];
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(material))
    }

    /// Key name (the witness's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+hexid`, for messages.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Checks one signature blob (key id already matched) over `text`; the cosignature time.
    fn check(&self, text: &str, blob_after_id: &[u8]) -> Option<u64> {
        if blob_after_id.len() != TIMESTAMPED_SIGNATURE_LEN {
            return None;
        }
        let time = u64::from_be_bytes(blob_after_id[..8].try_into().expect("8"));
        let sig: [u8; 64] = blob_after_id[8..].try_into().expect("64");
        self.key
            .verify(&signed_message(text, time), &Signature::from_bytes(&sig))
            .ok()
            .map(|()| time)
    }

    /// Checks that `note` (a checkpoint with signature lines) carries a valid cosignature by
    /// this key; returns its time. Lines by other keys are ignored.
    pub fn verify_note(&self, note: &str) -> Result<u64, NoteError> {
        let parsed = parse_note(note)?;
        let mut found = false;
        for sig in &parsed.signatures {
            if sig.name != self.name || sig.key_id != self.key_id {
                continue;
            }
            found = true;
            if let Some(time) = self.check(parsed.text, &sig.signature) {
                return Ok(time);
            }
        }
        if found {
            Err(NoteError::BadSignature {
                name: self.name.clone(),
            })
        } else {
            Err(NoteError::Unsigned {
                name: self.name.clone(),
                key_id: self.key_id,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    #[test]
    fn cosign_and_verify() {
        let log = NoteSigner::generate("example.com/log").unwrap();
        let text = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let note = log.sign(text).unwrap();
        let witness = CosignatureSigner::generate("witness.example/w1").unwrap();
        let line = witness.cosign(text, 1_679_315_147).unwrap();
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        let cosigned = format!("{note}{line}");
        let verifier = CosignatureVerifier::from_vkey(&witness.verifier().to_vkey()).unwrap();
        assert_eq!(verifier.verify_note(&cosigned), Ok(1_679_315_147));
        // The log's own signature still opens the note with the cosignature appended.
        assert_eq!(log.verifier().open(&cosigned).unwrap(), text);
        // Not cosigned, or cosigned by another witness of the same name: refused.
        assert!(matches!(
            verifier.verify_note(&note),
            Err(NoteError::Unsigned { .. })
        ));
        let other = CosignatureSigner::generate("witness.example/w1").unwrap();
        assert!(matches!(
            other.verifier().verify_note(&cosigned),
            Err(NoteError::Unsigned { .. })
        ));
        // Another checkpoint body: the signature does not verify.
        let forged = cosigned.replacen("\n5\n", "\n6\n", 1);
        assert!(matches!(
            verifier.verify_note(&forged),
            Err(NoteError::BadSignature { .. })
        ));
        // The timestamp is signed: changing it breaks the signature.
        let blob = B64.decode(line.trim().rsplit_once(' ').unwrap().1).unwrap();
        let mut changed = blob.clone();
        changed[11] ^= 1;
        let moved = format!(
            "{note}\u{2014} witness.example/w1 {}\n",
            B64.encode(changed)
        );
        assert!(verifier.verify_note(&moved).is_err());
    }

    #[test]
    fn key_formats_round_trip_and_are_typed() {
        let witness = CosignatureSigner::generate("w.example/1").unwrap();
        let again = CosignatureSigner::from_skey(&witness.to_skey()).unwrap();
        assert_eq!(again.verifier(), witness.verifier());
        assert!(!format!("{witness:?}").contains(&witness.to_skey()[20..]));
        // A note (0x01) key is not a cosignature key, and the reverse.
        let note_key = NoteSigner::generate("w.example/1").unwrap();
        assert!(CosignatureVerifier::from_vkey(&note_key.verifier().to_vkey()).is_err());
        assert!(crate::note::NoteVerifier::from_vkey(&witness.verifier().to_vkey()).is_err());
        assert_eq!(witness.verifier().label().len(), "w.example/1+".len() + 8);
    }

    /// The signed message of the specification's example.
    #[test]
    fn signed_message_is_the_specified_one() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(
            signed_message(text, 1_679_315_147),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }
}
