//! C2SP signed notes (<https://c2sp.org/signed-note>) and checkpoints
//! (<https://c2sp.org/tlog-checkpoint>) with Ed25519 keys.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature lines
//! `— <key name> <base64(key id ‖ signature)>`. The key id is the first four bytes of
//! `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`; the signature is Ed25519 over the text.
//! Verifier keys print as `name+hex(key id)+base64(0x01 ‖ public key)` ("vkey"), signing keys as
//! `PRIVATE+KEY+name+hex(key id)+base64(0x01 ‖ seed)`, the forms Go's `golang.org/x/mod/sumdb/note`
//! and other C2SP tools read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Signature algorithm byte for Ed25519 in C2SP signed notes.
const ALG_ED25519: u8 = 0x01;
/// Notes larger than this are refused when parsing (a checkpoint is a few hundred bytes).
const MAX_NOTE_BYTES: usize = 1 << 20;

/// Why a key or note is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key string is malformed.
    #[error("malformed key: {0}")]
    Key(&'static str),
    /// The note text is malformed.
    #[error("malformed note: {0}")]
    Format(&'static str),
    /// No signature line by the expected key.
    #[error("no signature by key {name}+{key_id:08x}")]
    Unsigned {
        /// Name of the key looked for.
        name: String,
        /// Its key id.
        key_id: u32,
    },
    /// A signature by the expected key that does not verify.
    #[error("signature by {name} does not verify")]
    BadSignature {
        /// Name of the key.
        name: String,
    },
}

fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::Key(
            "key name must be non-empty, without spaces or '+'",
        ));
    }
    Ok(())
}

/// An Ed25519 note signing key with its name.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "NoteSigner({}+{:08x})", self.name, self.key_id)
    }
}

impl NoteSigner {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        Ok(NoteSigner::from_seed(name, new_seed(name)?))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> NoteSigner {
        let key = SigningKey::from_bytes(&seed);
        NoteSigner {
            name: name.to_owned(),
            key_id: key_id(name, key.verifying_key().as_bytes()),
            key,
        }
    }

    /// Reads `PRIVATE+KEY+name+hexid+base64(0x01 ‖ seed)`.
    pub fn from_skey(text: &str) -> Result<NoteSigner, NoteError> {
        let (name, id, seed) = parse_skey(text, ALG_ED25519, "not an Ed25519 signing key")?;
        let signer = NoteSigner::from_seed(name, seed);
        if signer.key_id != id {
            return Err(NoteError::Key("key id does not match key"));
        }
        Ok(signer)
    }

    /// The signing key in `PRIVATE+KEY+…` form. Secret: store with mode 0600.
    pub fn to_skey(&self) -> String {
        format_skey(&self.name, self.key_id, ALG_ED25519, &self.key.to_bytes())
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs `text` (which must end with a newline) and returns the whole note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Format("note text must end with a newline"));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.key_id.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

/// A random Ed25519 seed for a new key named `name` (checked first).
pub(crate) fn new_seed(name: &str) -> Result<[u8; 32], NoteError> {
    check_name(name)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| NoteError::Key("no system randomness"))?;
    Ok(seed)
}

/// Reads `PRIVATE+KEY+name+hexid+base64(alg ‖ seed)` for the algorithm byte `alg`: the name,
/// the key id it claims, and the seed (the caller checks the id against the key).
pub(crate) fn parse_skey<'a>(
    text: &'a str,
    alg: u8,
    wrong_kind: &'static str,
) -> Result<(&'a str, u32, [u8; 32]), NoteError> {
    let rest = text
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or(NoteError::Key("signing key must start with PRIVATE+KEY+"))?;
    let (name, id, material) = split_key(rest)?;
    let bytes = B64
        .decode(material)
        .map_err(|_| NoteError::Key("bad base64"))?;
    if bytes.len() != 33 || bytes[0] != alg {
        return Err(NoteError::Key(wrong_kind));
    }
    let seed: [u8; 32] = bytes[1..].try_into().expect("33 - 1 bytes");
    Ok((name, id, seed))
}

/// The signing key `name`/`key_id` with algorithm byte `alg` and `seed`, in `PRIVATE+KEY+…`
/// form.
pub(crate) fn format_skey(name: &str, key_id: u32, alg: u8, seed: &[u8; 32]) -> String {
    let mut material = vec![alg];
    material.extend_from_slice(seed);
    format!("PRIVATE+KEY+{name}+{key_id:08x}+{}", B64.encode(material))
}

pub(crate) fn split_key(rest: &str) -> Result<(&str, u32, &str), NoteError> {
    let mut parts = rest.splitn(3, '+');
    let name = parts.next().ok_or(NoteError::Key("missing name"))?;
    let id = parts.next().ok_or(NoteError::Key("missing key id"))?;
    let material = parts.next().ok_or(NoteError::Key("missing key"))?;
    check_name(name)?;
    if id.len() != 8 {
        return Err(NoteError::Key("key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::Key("key id is not hex"))?;
    Ok((name, id, material))
}

/// An Ed25519 note verifier key with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a vkey `name+hexid+base64(0x01 ‖ public key)`.
    pub fn from_vkey(text: &str) -> Result<NoteVerifier, NoteError> {
        let (name, id, material) = split_key(text.trim())?;
        let bytes = B64
            .decode(material)
            .map_err(|_| NoteError::Key("bad base64"))?;
        if bytes.len() != 33 || bytes[0] != ALG_ED25519 {
            return Err(NoteError::Key("not an Ed25519 verifier key"));
        }
        let public: [u8; 32] = bytes[1..].try_into().expect("33 - 1 bytes");
        if key_id(name, &public) != id {
            return Err(NoteError::Key("key id does not match key"));
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::Key("not a valid Ed25519 point"))?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        let mut material = vec![ALG_ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(material))
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks that `note` carries a valid signature by this key and returns its text.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let parsed = parse_note(note)?;
        let mut found = false;
        for sig in &parsed.signatures {
            if sig.name != self.name || sig.key_id != self.key_id {
                continue;
            }
            found = true;
            let Ok(bytes) = <[u8; 64]>::try_from(sig.signature.as_slice()) else {
                continue;
            };
            if self
                .key
                .verify(parsed.text.as_bytes(), &Signature::from_bytes(&bytes))
                .is_ok()
            {
                return Ok(parsed.text);
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

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (first four bytes of the blob).
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// A note split into its text and signature lines (signatures not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedNote<'a> {
    /// The signed text, ending in a newline.
    pub text: &'a str,
    /// The signature lines.
    pub signatures: Vec<NoteSignature>,
}

/// Splits a note into text and signatures.
pub fn parse_note(note: &str) -> Result<ParsedNote<'_>, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::Format("note too large"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Format("no blank line before signatures"))?;
    let text = &note[..split + 1];
    let sig_block = &note[split + 2..];
    if !sig_block.ends_with('\n') {
        return Err(NoteError::Format("signature lines must end with a newline"));
    }
    let mut signatures = Vec::new();
    for line in sig_block.lines() {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Format(
            "signature line must start with an em dash",
        ))?;
        let (name, blob) = rest.split_once(' ').ok_or(NoteError::Format(
            "signature line needs a name and a signature",
        ))?;
        let blob = B64
            .decode(blob)
            .map_err(|_| NoteError::Format("signature is not base64"))?;
        if blob.len() < 5 {
            return Err(NoteError::Format("signature too short"));
        }
        signatures.push(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
            signature: blob[4..].to_vec(),
        });
    }
    if signatures.is_empty() {
        return Err(NoteError::Format("no signature lines"));
    }
    Ok(ParsedNote { text, signatures })
}

/// The body of a C2SP tlog checkpoint: origin, tree size, root hash, extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique origin line (also the signing key's name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// `MTH` of the first `size` leaves.
    pub root: Hash,
    /// Extension lines; Vigil writes one, `time <RFC 3339>`, when the checkpoint was signed.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The root hash in lower-case hex (as the API and `vigil checkpoint` print it).
    pub fn root_hex(&self) -> String {
        self.root.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The note text.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for ext in &self.extensions {
            s.push_str(ext);
            s.push('\n');
        }
        s
    }

    /// Parses note text (not the signatures).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::Format("checkpoint must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|l| !l.is_empty());
        let origin = origin.ok_or(NoteError::Format("missing origin line"))?;
        let size = lines
            .next()
            .ok_or(NoteError::Format("missing tree size line"))?;
        if size.is_empty() || (size.len() > 1 && size.starts_with('0')) {
            return Err(NoteError::Format("tree size is not a canonical decimal"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| NoteError::Format("tree size is not a decimal number"))?;
        let root = lines
            .next()
            .ok_or(NoteError::Format("missing root hash line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(NoteError::Format("root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Format("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The `time` extension, if present.
    pub fn time(&self) -> Option<&str> {
        self.extensions.iter().find_map(|e| e.strip_prefix("time "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_open() {
        let signer = NoteSigner::generate("vigil.test/log").unwrap();
        let verifier = NoteVerifier::from_vkey(&signer.verifier().to_vkey()).unwrap();
        let note = signer.sign("hello\nworld\n").unwrap();
        assert!(note.starts_with("hello\nworld\n\n\u{2014} vigil.test/log "));
        assert_eq!(verifier.open(&note).unwrap(), "hello\nworld\n");

        let tampered = note.replacen("world", "w0rld", 1);
        assert!(matches!(
            verifier.open(&tampered),
            Err(NoteError::BadSignature { .. })
        ));
        let other = NoteSigner::generate("vigil.test/log").unwrap();
        assert!(matches!(
            other.verifier().open(&note),
            Err(NoteError::Unsigned { .. })
        ));
    }

    #[test]
    fn signing_key_round_trip() {
        let signer = NoteSigner::generate("a.example/log").unwrap();
        let again = NoteSigner::from_skey(&signer.to_skey()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        assert!(format!("{signer:?}").contains("a.example/log"));
        assert!(!format!("{signer:?}").contains(&signer.to_skey()[20..]));
    }

    /// The example verifier key from the signed-note specification (Go's note package docs).
    #[test]
    fn reads_go_example_vkey() {
        let v = NoteVerifier::from_vkey(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(
            v.open(note).unwrap(),
            "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
        );
    }

    #[test]
    fn checkpoint_text_round_trip() {
        let cp = Checkpoint {
            origin: "vigil/host/abcd".into(),
            size: 12345,
            root: [7; 32],
            extensions: vec!["time 2026-11-22T10:00:00Z".into()],
        };
        let text = cp.to_text();
        assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
        assert_eq!(cp.time(), Some("2026-11-22T10:00:00Z"));
        assert!(Checkpoint::parse("o\n012\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n12\nAAAA\n").is_err());
    }
}
