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

    #[test]
    fn other_datasets_stay() {
        let mut e = Event::new(Timestamp::from_epoch_int(0));
        e.insert("event.dataset", "nginx.access");
        assert_eq!(quarantine(&mut e), 0);
        assert_eq!(e.get_str("event.dataset"), Some("nginx.access"));
        assert!(!tagged(&e));
    }
}
