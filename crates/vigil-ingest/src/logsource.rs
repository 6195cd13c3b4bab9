//! Logsources declared by configuration (`[[logsource]]`): the events of a named source get
//! `vigil.logsource.product`/`category`/`service`, which the detector's logsource table reads
//! (`vigil_detect::mapping::DECLARED_PRODUCT`) to run the rules of a product no parser knows.
//!
//! Applied by [`crate::Ingest`] to events from outside only, after any such field the input
//! carried is removed: a sender cannot choose which rules its events are judged by, beyond
//! the source name its credentials allow.

use std::collections::HashMap;

use vigil_event::{Event, field};

/// What one source declares (each part lower-cased; `None`: not declared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// Sigma's `product`.
    pub product: Option<String>,
    /// Sigma's `category`.
    pub category: Option<String>,
    /// Sigma's `service`.
    pub service: Option<String>,
}

/// `vigil.source` → what it declares.
#[derive(Debug, Clone, Default)]
pub struct DeclaredSources {
    by_source: HashMap<String, Declared>,
}

impl DeclaredSources {
    /// From `(source, declared)` pairs; names are trimmed, values trimmed and lower-cased
    /// (Sigma compares logsources case-insensitively), empty values dropped.
    pub fn new(entries: impl IntoIterator<Item = (String, Declared)>) -> DeclaredSources {
        let clean = |v: Option<String>| {
            v.map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
        };
        DeclaredSources {
            by_source: entries
                .into_iter()
                .map(|(source, d)| {
                    (
                        source.trim().to_owned(),
                        Declared {
                            product: clean(d.product),
                            category: clean(d.category),
                            service: clean(d.service),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Whether no source declares anything.
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// Removes any `vigil.logsource.*` field the event carries, then sets those its source
    /// declares.
    pub fn apply(&self, event: &mut Event) {
        const FIELDS: [&str; 3] = [
            field::VIGIL_LOGSOURCE_PRODUCT,
            field::VIGIL_LOGSOURCE_CATEGORY,
            field::VIGIL_LOGSOURCE_SERVICE,
        ];
        for f in FIELDS {
            event.remove(f);
        }
        let Some(declared) = event
            .get_str(field::VIGIL_SOURCE)
            .and_then(|s| self.by_source.get(s))
        else {
            return;
        };
        for (f, v) in
            FIELDS
                .into_iter()
                .zip([&declared.product, &declared.category, &declared.service])
        {
            if let Some(v) = v {
                event.insert(f, v.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::Timestamp;

    use super::*;

    #[test]
    fn a_declared_source_sets_its_logsource_and_claims_are_removed() {
        let sources = DeclaredSources::new([(
            " syslog-udp ".to_owned(),
            Declared {
                product: Some("SonicWall".into()),
                category: Some("firewall".into()),
                service: Some(" ".into()),
            },
        )]);
        let mut e = Event::new(Timestamp::from_secs(0));
        e.insert(field::VIGIL_SOURCE, "syslog-udp");
        e.insert(field::VIGIL_LOGSOURCE_SERVICE, "forged");
        sources.apply(&mut e);
        assert_eq!(e.get_str(field::VIGIL_LOGSOURCE_PRODUCT), Some("sonicwall"));
        assert_eq!(e.get_str(field::VIGIL_LOGSOURCE_CATEGORY), Some("firewall"));
        assert_eq!(e.get(field::VIGIL_LOGSOURCE_SERVICE), None);
        let mut other = Event::new(Timestamp::from_secs(0));
        other.insert(field::VIGIL_SOURCE, "http:app");
        other.insert(field::VIGIL_LOGSOURCE_PRODUCT, "sonicwall");
        sources.apply(&mut other);
        assert_eq!(other.get(field::VIGIL_LOGSOURCE_PRODUCT), None);
    }
}
