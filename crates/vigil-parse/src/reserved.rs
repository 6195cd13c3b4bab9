//! The names Vigil keeps for itself, and what happens when input claims them.
//!
//! Vigil's own events — its audit trail, alerts, ban decisions, notifier failures — carry
//! `event.dataset` `vigil.*`, and Vigil records facts about every event under `vigil.*`
//! (`vigil.source`, `vigil.received`, `vigil.parser`, `vigil.redacted`, …). Detection trusts
//! both: the bundled rules against brute force on Vigil's login match `event.dataset:
//! vigil.audit`. So nothing that arrives from outside may carry them, or six UDP datagrams
//! shaped like failed logins would raise Vigil's own alerts and ban whom the sender names.
//!
//! Input that claims a reserved name is not refused (bad input is data, and losing the event
//! would blind the operator to the attempt): the claimed fields move under `external.` —
//! `vigil.seq` becomes `external.vigil.seq`, a `vigil.audit` dataset becomes
//! `external.event.dataset` — and the event is tagged [`RESERVED_CLAIM_TAG`], which is itself
//! worth an alert. Parsers call [`quarantine`] on the fields they copy from the input, before
//! they add fields of their own; [`crate::parse_line`] checks the dataset of every event it
//! returns.
//!
//! Comparisons ignore ASCII case and surrounding white space, as Sigma's string matching does.

use vigil_event::{Event, Value, field, tag};

/// The tag of an event whose input claimed a name Vigil reserves (the same as
/// [`tag::RESERVED_CLAIM`], kept under this name for existing callers).
pub const RESERVED_CLAIM_TAG: &str = tag::RESERVED_CLAIM;

/// Where claimed fields go: `external.<original name>`.
pub const QUARANTINE_PREFIX: &str = "external.";

/// Whether a field name belongs to Vigil: `vigil` itself or anything under `vigil.`.
pub fn is_reserved_field(name: &str) -> bool {
    let name = name.trim();
    name.eq_ignore_ascii_case("vigil")
        || name
            .get(..6)
            .is_some_and(|head| head.eq_ignore_ascii_case(field::VIGIL_PREFIX))
}

/// The fields Vigil records about an event it receives — which source, when, which parser,
/// who sent it, which node and stream carried it, whether it belongs to a drill, the
/// idempotency key it answered — set by Vigil after parsing, never by a sender (an input's
/// own `vigil.*` names move under `external.`). Masking never changes them, name or value
/// ([`is_provenance_field`]): a token, listener or sender named like a secret (`password=x`)
/// must not rewrite who sent an event or when it arrived, and a drill mark must stay the
/// mark the door set. They hold names and times Vigil chose or authenticated, not log text.
///
/// Other `vigil.*` fields are masked like any field: the free text people type into Vigil
/// (comments, case titles, queries) and the metadata a HEC sender chooses (`vigil.hec.source`,
/// `vigil.sourcetype`, `vigil.index`).
pub const PROVENANCE_FIELDS: &[&str] = &[
    field::VIGIL_SOURCE,
    field::VIGIL_RECEIVED,
    field::VIGIL_SENDER,
    field::VIGIL_PARSER,
    field::VIGIL_REDACTED,
    field::VIGIL_SEQ,
    field::VIGIL_ORIGIN,
    field::VIGIL_LOGSOURCE_PRODUCT,
    field::VIGIL_LOGSOURCE_CATEGORY,
    field::VIGIL_LOGSOURCE_SERVICE,
    field::VIGIL_STREAM_SEQ,
    field::VIGIL_NODE,
    field::VIGIL_DRILL_RUN,
    // `vigil_ingest::idempotency`'s record, written by the door after masking (the key is
    // kept as the sender sent it, or a retry would not find it).
    "vigil.idempotency.key",
    "vigil.idempotency.sender",
    "vigil.idempotency.events",
    "vigil.idempotency.parse_errors",
];

/// Whether masking must leave `name` alone: one of [`PROVENANCE_FIELDS`], spelt exactly as
/// Vigil spells it (an input's differently cased claim was moved under `external.` and is
/// masked like any input).
pub fn is_provenance_field(name: &str) -> bool {
    name.starts_with(field::VIGIL_PREFIX) && PROVENANCE_FIELDS.contains(&name)
}

/// Whether a value of `event.dataset` names one of Vigil's own datasets (`vigil`, `vigil.*`).
pub fn is_reserved_dataset(value: &str) -> bool {
    is_reserved_field(value)
}

/// Whether a source name (the `vigil.source` of events from a listener, an HTTP `?source=`,
/// a token's name) would pass for Vigil's own: `vigil`, or beginning with `vigil` followed by
/// `.`, `:` or `/`. Such names are refused where a sender chooses them.
pub fn is_reserved_source(name: &str) -> bool {
    let name = name.trim();
    match name.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("vigil") => {
            matches!(name.as_bytes().get(5), None | Some(b'.' | b':' | b'/'))
        }
        _ => false,
    }
}

/// Moves every reserved field of `event` (and an `event.dataset` naming a Vigil dataset) under
/// [`QUARANTINE_PREFIX`] and tags the event [`RESERVED_CLAIM_TAG`]. Returns how many fields
/// moved. Call it on events built from input, before adding Vigil's own fields.
pub fn quarantine(event: &mut Event) -> usize {
    let claimed: Vec<String> = event
        .fields()
        .filter(|(name, value)| {
            is_reserved_field(name)
                || (name.trim().eq_ignore_ascii_case(field::EVENT_DATASET) && claims_dataset(value))
        })
        .map(|(name, _)| name.to_owned())
        .collect();
    for name in &claimed {
        if let Some(value) = event.remove(name) {
            event.insert(format!("{QUARANTINE_PREFIX}{name}"), value);
        }
    }
    if !claimed.is_empty() {
        event.add_tag(RESERVED_CLAIM_TAG);
    }
    claimed.len()
}

/// Moves one field an outside sender names (HEC `fields`, say) under [`QUARANTINE_PREFIX`] if
/// it is reserved; returns the name to store it under and whether it was moved.
pub fn quarantined_name(name: &str, value: &Value) -> (String, bool) {
    let claimed = is_reserved_field(name)
        || (name.trim().eq_ignore_ascii_case(field::EVENT_DATASET) && claims_dataset(value));
    if claimed {
        (format!("{QUARANTINE_PREFIX}{name}"), true)
    } else {
        (name.to_owned(), false)
    }
}

fn claims_dataset(value: &Value) -> bool {
    match value {
        Value::Str(s) => is_reserved_dataset(s),
        Value::List(items) => items.iter().any(claims_dataset),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::Timestamp;

    use super::*;

    fn tagged(e: &Event) -> bool {
        e.has_tag(tag::RESERVED_CLAIM)
    }

    #[test]
    fn reserved_names() {
        for name in [
            "vigil",
            "vigil.seq",
            "VIGIL.source",
            " Vigil.audit ",
            "vigil.x.y",
        ] {
            assert!(is_reserved_field(name), "{name}");
        }
        for name in ["vigilant", "vigil_x", "event.dataset", "x.vigil.seq", ""] {
            assert!(!is_reserved_field(name), "{name}");
        }
        for name in ["vigil", "vigil:x", "Vigil.audit", "vigil/x"] {
            assert!(is_reserved_source(name), "{name}");
        }
        for name in ["vigilant", "http:vigil", "web01", ""] {
            assert!(!is_reserved_source(name), "{name}");
        }
    }

    #[test]
    fn claimed_fields_move_and_the_event_is_tagged() {
        let mut e = Event::new(Timestamp::from_epoch_int(0));
        e.insert("event.dataset", "Vigil.Audit ");
        e.insert("vigil.seq", 7i64);
        e.insert("Vigil.source", "vigil");
        e.insert("user.name", "alice");
        assert_eq!(quarantine(&mut e), 3);
        assert_eq!(e.get("event.dataset"), None);
        assert_eq!(e.get_str("external.event.dataset"), Some("Vigil.Audit "));
        assert_eq!(e.get("external.vigil.seq"), Some(&Value::Int(7)));
        assert_eq!(e.get_str("external.Vigil.source"), Some("vigil"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert!(tagged(&e));
    }

    /// A sender, source or drill mark named like a secret is Vigil's record, not log text:
    /// masking leaves it as Vigil set it, and still masks the event's own text and any
    /// claimed copy under `external.`.
    #[test]
    fn masking_never_changes_provenance() {
        let redactor = crate::redact::Redactor::default();
        let mut e = Event::new(Timestamp::from_epoch_int(0));
        e.insert(field::VIGIL_SENDER, "api:password=hunter2/t1");
        e.insert(field::VIGIL_SOURCE, "token=abcdef123456");
        e.insert(field::VIGIL_RECEIVED, "2026-12-07T10:00:00Z");
        e.insert(field::VIGIL_DRILL_RUN, "secret: 4111111111111111");
        e.insert("vigil.idempotency.key", "Bearer abcdefghijkl");
        e.insert("external.vigil.sender", "password=claimed");
        e.insert("message", "login password=s3cr3t");
        let before = e.clone();
        redactor.redact_event(&mut e);
        for name in [
            field::VIGIL_SENDER,
            field::VIGIL_SOURCE,
            field::VIGIL_RECEIVED,
            field::VIGIL_DRILL_RUN,
            "vigil.idempotency.key",
        ] {
            assert_eq!(e.get(name), before.get(name), "{name}");
        }
        assert_eq!(
            e.get_str("external.vigil.sender"),
            Some("password=[REDACTED:password]")
        );
        assert_eq!(
            e.get_str("message"),
            Some("login password=[REDACTED:password]")
        );
        assert_eq!(
            e.get(field::VIGIL_REDACTED),
            Some(&Value::List(vec![Value::from("password")]))
        );

        // Only provenance named like secrets: nothing to mask, nothing recorded as masked.
        let mut only = Event::new(Timestamp::from_epoch_int(0));
        only.insert(field::VIGIL_SENDER, "api:password=hunter2/t1");
        only.insert(field::VIGIL_SOURCE, "secret=x");
        let before = only.clone();
        assert_eq!(redactor.redact_event(&mut only).total(), 0);
        assert_eq!(only, before);

        // Other `vigil.*` fields (people's free text, HEC metadata) are masked as before,
        // and so is a differently cased claim.
        assert!(!is_provenance_field("vigil.case.comment"));
        assert!(!is_provenance_field("vigil.hec.source"));
        assert!(!is_provenance_field("Vigil.sender"));
        let mut own = Event::new(Timestamp::from_epoch_int(0));
        own.insert("vigil.case.comment", "their password=hunter2");
        redactor.redact_event(&mut own);
        assert_eq!(
            own.get_str("vigil.case.comment"),
            Some("their password=[REDACTED:password]")
        );
    }

    #[test]
    fn other_datasets_stay() {
        let mut e = Event::new(Timestamp::from_epoch_int(0));
        e.insert("event.dataset", "nginx.access");
        assert_eq!(quarantine(&mut e), 0);
        assert_eq!(e.get_str("event.dataset"), Some("nginx.access"));
        assert!(!tagged(&e));
    }
}
