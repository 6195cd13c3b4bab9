//! The report's `signature` block, and the check `vigil report verify FILE` runs on a report
//! file, JSON or HTML.
//!
//! Format `vigil-report/v1` (the first line of the signed note is the version):
//!
//! * `signature.digest` is the SHA-256 (hex) of the report's JSON *without* the `signature`
//!   member, serialized compactly with every object's members sorted by key ([`canonical`]) —
//!   so anyone can recompute it: parse the file, drop `signature`, serialize compactly with
//!   sorted keys (Python: `json.dumps(r, sort_keys=True, separators=(",", ":"),
//!   ensure_ascii=False)`), hash.
//! * `signature.note` is a C2SP signed note, signed with the ledger key, whose text is
//!   [`note_text`]: `vigil-report/v1`, the framework, the digest and the size of the checkpoint
//!   the report was computed at, one per line.
//! * `signature.checkpoint` is that checkpoint (a signed note of the same key), and
//!   `signature.key` the ledger's verifier key (to compare with the one the operator publishes;
//!   `vigil report verify --key` pins it).
//! * The HTML page carries the JSON it was rendered from in `<pre id="vigil-report-json">`
//!   (HTML-escaped); a page checks when it is byte for byte the rendering of that JSON, and the
//!   JSON checks. A page rendered by a Vigil with another renderer does not compare; its JSON
//!   still can be checked on its own.
//!
//! Everything here is pure; the signature itself is checked at the edge (the CLI holds the
//! ledger's note verifier), against [`Claims::note_text`].

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The first line of a report's signed note: the signature format version.
pub const NOTE_HEADER: &str = "vigil-report/v1";

/// The members of the `signature` block, sorted.
pub const SIGNATURE_MEMBERS: [&str; 5] = ["checkpoint", "digest", "error", "key", "note"];

/// Where the HTML page carries its JSON.
pub const HTML_JSON_OPEN: &str = "<pre id=\"vigil-report-json\" hidden>";
/// The end of the page's JSON.
pub const HTML_JSON_CLOSE: &str = "</pre>";

/// The SHA-256 (hex) of `report` without its `signature` member, serialized by [`canonical`].
pub fn digest(report: &Json) -> String {
    let mut bytes = Vec::new();
    match report.as_object() {
        Some(map) => {
            let unsigned: serde_json::Map<String, Json> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "signature")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            canonical(&Json::Object(unsigned), &mut bytes);
        }
        None => canonical(report, &mut bytes),
    }
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compact JSON with every object's members sorted by key (byte order, which is code point
/// order), whatever order the value keeps them in: `serde_json`'s own output for strings,
/// numbers and literals. What Python's `json.dumps(v, sort_keys=True, separators=(",", ":"),
/// ensure_ascii=False)` writes for the same value.
pub fn canonical(value: &Json, out: &mut Vec<u8>) {
    match value {
        Json::Object(map) => {
            let mut members: Vec<(&String, &Json)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("a string serializes");
                out.push(b':');
                canonical(v, out);
            }
            out.push(b'}');
        }
        Json::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar serializes"),
    }
}

/// The text the ledger key signs for a report of `framework` with `digest`, computed at the
/// checkpoint of tree size `size`.
pub fn note_text(framework: &str, digest: &str, size: u64) -> String {
    format!("{NOTE_HEADER}\n{framework}\n{digest}\n{size}\n")
}

/// Which kind of file a report came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The JSON report.
    Json,
    /// The HTML page.
    Html,
}

/// Why a report file does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not a report: neither its JSON nor an HTML page carrying it.
    #[error("not a Vigil report: {0}")]
    NotAReport(String),
    /// The HTML page is not the rendering of the JSON it carries: it was changed.
    #[error(
        "the HTML page is not the rendering of the report it carries (it was changed after signing, or rendered by another Vigil version: check its JSON instead); first difference at byte {0}"
    )]
    PageChanged(usize),
    /// The report has no usable signature block.
    #[error("the report is not signed: {0}")]
    Unsigned(String),
    /// The report's content does not hash to the digest it states.
    #[error(
        "the report was changed: its content hashes to {computed}, the signature says {stated}"
    )]
    DigestMismatch {
        /// SHA-256 of the content as found.
        computed: String,
        /// The digest in the signature block.
        stated: String,
    },
}

/// What a report file states about itself, its digest already recomputed and matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The kind of file.
    pub kind: FileKind,
    /// The framework (`pci-dss-4.0.1`).
    pub framework: String,
    /// The digest, recomputed and equal to the stated one.
    pub digest: String,
    /// The signed note.
    pub note: String,
    /// The checkpoint the report was computed at (a signed note), if the ledger had one.
    pub checkpoint: Option<String>,
    /// The verifier key the report names (not trusted by itself).
    pub key: Option<String>,
    /// The period, as the report states it.
    pub period: (String, String),
}

impl Claims {
    /// The text the signed note must carry for a checkpoint of tree size `size`.
    pub fn note_text(&self, size: u64) -> String {
        note_text(&self.framework, &self.digest, size)
    }
}

/// Walks any JSON value and fails on an object with the same key twice.
struct UniqueKeys;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("the key {key:?} twice")));
            }
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }
}

/// Reads a report file (JSON, or the HTML page), checks that an HTML page is the rendering of
/// the JSON it carries, and that the content hashes to the stated digest. The signed note is
/// the caller's to check (with [`Claims::note_text`]).
pub fn check(bytes: &[u8]) -> Result<Claims, SignatureError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| SignatureError::NotAReport(format!("not UTF-8 text ({e})")))?;
    let (report, kind) = if text.trim_start().starts_with('{') {
        let report: Json = serde_json::from_str(text)
            .map_err(|e| SignatureError::NotAReport(format!("JSON: {e}")))?;
        // A reader keeps the last of two equal keys, a person or another program may read the
        // first: a report whose digest covers one `controls` while it shows another is refused.
        let mut de = serde_json::Deserializer::from_str(text);
        serde::Deserializer::deserialize_any(&mut de, UniqueKeys)
            .map_err(|e| SignatureError::NotAReport(format!("JSON: {e}")))?;
        (report, FileKind::Json)
    } else {
        let report = embedded(text)?;
        let rendered = crate::html::render(&report);
        if rendered != text {
            let at = rendered
                .bytes()
                .zip(text.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(rendered.len().min(text.len()));
            return Err(SignatureError::PageChanged(at));
        }
        (report, FileKind::Html)
    };
    let signature = &report["signature"];
    let Some(block) = signature.as_object() else {
        return Err(SignatureError::Unsigned("no signature block".into()));
    };
    // Exactly the members a signature block has: the block is outside the digest, so nothing
    // may be added to it, renamed in it or left out of it.
    let mut members: Vec<&str> = block.keys().map(String::as_str).collect();
    members.sort_unstable();
    if members != SIGNATURE_MEMBERS {
        return Err(SignatureError::Unsigned(format!(
            "the signature block has the members {:?}, not {SIGNATURE_MEMBERS:?}",
            block.keys().collect::<Vec<_>>()
        )));
    }
    let stated = signature["digest"]
        .as_str()
        .ok_or_else(|| SignatureError::Unsigned("no digest".into()))?;
    let note = signature["note"].as_str().ok_or_else(|| {
        SignatureError::Unsigned(
            signature["error"]
                .as_str()
                .unwrap_or("no signed note")
                .to_owned(),
        )
    })?;
    let computed = digest(&report);
    if computed != stated {
        return Err(SignatureError::DigestMismatch {
            computed,
            stated: stated.to_owned(),
        });
    }
    let framework = report["framework"]
        .as_str()
        .ok_or_else(|| SignatureError::NotAReport("no framework".into()))?;
    let text = |v: &Json| v.as_str().unwrap_or_default().to_owned();
    Ok(Claims {
        kind,
        framework: framework.to_owned(),
        digest: computed,
        note: note.to_owned(),
        checkpoint: signature["checkpoint"].as_str().map(str::to_owned),
        key: signature["key"].as_str().map(str::to_owned),
        period: (
            text(&report["period"]["from"]),
            text(&report["period"]["to"]),
        ),
    })
}

/// The JSON an HTML page carries.
fn embedded(page: &str) -> Result<Json, SignatureError> {
    let start = page
        .find(HTML_JSON_OPEN)
        .map(|i| i + HTML_JSON_OPEN.len())
        .ok_or_else(|| {
            SignatureError::NotAReport("neither JSON nor a report page carrying its JSON".into())
        })?;
    let len = page[start..]
        .find(HTML_JSON_CLOSE)
        .ok_or_else(|| SignatureError::NotAReport("the page's JSON is not closed".into()))?;
    let json = unescape(&page[start..start + len]);
    serde_json::from_str(&json)
        .map_err(|e| SignatureError::NotAReport(format!("the page's JSON: {e}")))
}

/// Reverses [`crate::html::escape`].
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signed() -> Json {
        let mut r = json!({"framework": "pci-dss-4.0.1", "period": {"from": "a", "to": "b"},
                           "controls": [{"id": "10.2.2", "title": "<&'\"> ü", "status": "met"}],
                           "ratio": 0.6667});
        let d = digest(&r);
        r["signature"] =
            json!({"digest": d, "note": "n", "checkpoint": null, "key": "k", "error": null});
        r
    }

    #[test]
    fn the_digest_does_not_depend_on_member_order() {
        let a: Json = serde_json::from_str(r#"{"b":1,"a":{"d":[1.5,"é"],"c":null}}"#).unwrap();
        let b: Json = serde_json::from_str(r#"{"a":{"c":null,"d":[1.5,"é"]},"b":1}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        let mut out = Vec::new();
        canonical(&a, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":null,"d":[1.5,"é"]},"b":1}"#
        );
    }

    /// Found in review: a forged `controls` put before the real one (serde keeps the last,
    /// a reader may show the first) is refused, at any depth.
    #[test]
    fn a_report_with_a_key_twice_is_refused() {
        let r = signed();
        let text = serde_json::to_string(&r).unwrap();
        assert!(check(text.as_bytes()).is_ok());
        let forged = text.replacen(
            "{",
            r#"{"controls":[{"id":"10.2.2","status":"met","title":"forged"}],"#,
            1,
        );
        assert!(matches!(
            check(forged.as_bytes()),
            Err(SignatureError::NotAReport(m)) if m.contains("twice")
        ));
        let nested = text.replacen(r#""status":"met""#, r#""status":"gap","status":"met""#, 1);
        assert!(check(nested.as_bytes()).is_err());
    }

    #[test]
    fn json_and_html_check_and_one_changed_byte_anywhere_fails() {
        let r = signed();
        let json_text = serde_json::to_string_pretty(&r).unwrap();
        let claims = check(json_text.as_bytes()).unwrap();
        assert_eq!(claims.kind, FileKind::Json);
        assert_eq!(claims.digest, r["signature"]["digest"]);
        assert_eq!(
            claims.note_text(7),
            format!("vigil-report/v1\npci-dss-4.0.1\n{}\n7\n", claims.digest)
        );
        let page = crate::html::render(&r);
        assert_eq!(check(page.as_bytes()).unwrap().kind, FileKind::Html);
        // Every byte of the page, changed: never a report that checks.
        let bytes = page.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x01;
            assert!(
                check(&b).is_err(),
                "byte {i} changed and still checks: {:?}",
                &page[i.saturating_sub(40)..(i + 40).min(page.len())]
            );
        }
        let changed = json_text.replace("0.6667", "0.6668");
        assert!(matches!(
            check(changed.as_bytes()),
            Err(SignatureError::DigestMismatch { .. })
        ));
    }
}
