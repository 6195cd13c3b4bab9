//! The fields intel matching writes (ECS `threat.*`, and `vigil.intel.*`, which only Vigil
//! writes: senders' `vigil.*` fields are moved under `external.` when parsed).

use std::collections::BTreeMap;

use vigil_event::{Event, Value};

use crate::indicator::Kind;
use crate::intel::Match;

/// The number of indicators an event matched (present only on matched events); the bundled
/// rule alerts on it.
pub const MATCHES: &str = "vigil.intel.matches";
/// The first matched indicator's value.
pub const INDICATOR: &str = "vigil.intel.indicator";

/// ECS's confidence words for STIX's 0–100 scale (STIX 2.1 appendix A: None/Low/Med/High).
pub fn confidence_word(c: u8) -> &'static str {
    match c {
        0 => "None",
        1..=29 => "Low",
        30..=69 => "Medium",
        _ => "High",
    }
}

/// The ECS field of the indicator's value (`ip`, `url.full`, `url.domain`, `file.hash.md5`).
fn value_field(kind: Kind) -> &'static str {
    match kind {
        Kind::Ip => "ip",
        Kind::Domain => "url.domain",
        Kind::Url => "url.full",
        Kind::Md5 => "file.hash.md5",
        Kind::Sha1 => "file.hash.sha1",
        Kind::Sha256 => "file.hash.sha256",
    }
}

fn indicator_fields(m: &Match<'_>) -> Vec<(String, Value)> {
    let i = m.indicator;
    let mut out = vec![
        (
            "type".to_owned(),
            Value::Str(i.kind.ecs_type(&i.value).to_owned()),
        ),
        ("provider".to_owned(), Value::Str(i.provider.clone())),
        (value_field(i.kind).to_owned(), Value::Str(i.value.clone())),
    ];
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push((k.to_owned(), Value::Str(v.clone())));
        }
    };
    opt("first_seen", &i.first_seen);
    opt("last_seen", &i.last_seen);
    opt("description", &i.description);
    if let Some(c) = i.confidence {
        out.push((
            "confidence".to_owned(),
            Value::Str(confidence_word(c).to_owned()),
        ));
    }
    out
}

/// Writes `threat.enrichments` (one entry per match: `indicator.*` and `matched.*`),
/// `threat.indicator.*` and `threat.feed.name` of the first match, and `vigil.intel.*`.
pub fn write_matches(event: &mut Event, matches: &[Match<'_>]) {
    let Some(first) = matches.first() else {
        return;
    };
    let mut list = Vec::with_capacity(matches.len());
    for m in matches {
        let indicator: BTreeMap<String, Value> = indicator_fields(m).into_iter().collect();
        let matched: BTreeMap<String, Value> = [
            ("atomic".to_owned(), Value::Str(m.atomic.clone())),
            ("field".to_owned(), Value::Str(m.field.to_owned())),
            (
                "type".to_owned(),
                Value::Str("indicator_match_rule".to_owned()),
            ),
        ]
        .into_iter()
        .collect();
        let mut entry = BTreeMap::new();
        entry.insert("indicator".to_owned(), Value::Map(indicator));
        entry.insert("matched".to_owned(), Value::Map(matched));
        list.push(Value::Map(entry));
    }
    event.insert("threat.enrichments", Value::List(list));
    for (k, v) in indicator_fields(first) {
        event.insert(format!("threat.indicator.{k}"), v);
    }
    event.insert("threat.feed.name", first.indicator.provider.clone());
    event.insert(MATCHES, Value::Int(matches.len() as i64));
    event.insert(INDICATOR, first.indicator.value.clone());
}
