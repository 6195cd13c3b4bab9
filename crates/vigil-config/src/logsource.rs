//! `[[logsource]]`: the Sigma logsource of what a listener, token or agent input receives,
//! declared by the operator (docs/config.md), so rules for a product no parser knows run on its
//! events.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// `[[logsource]]`: events whose `vigil.source` is `source` belong to this logsource.
/// Vigil sets `vigil.logsource.product`/`category`/`service` on them at ingest; input can never
/// claim those fields itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceSection {
    /// The `vigil.source` of the events: a syslog listener (`syslog-udp`, `syslog-tcp`,
    /// `syslog-tls`), an HTTP token (`http:TOKEN_NAME`, unless the sender names its own
    /// `?source=`), or an agent input's source name. (`vigil import` does not apply it.)
    pub source: String,
    /// Sigma's `product`.
    pub product: Option<String>,
    /// Sigma's `category`.
    pub category: Option<String>,
    /// Sigma's `service`.
    pub service: Option<String>,
}

impl LogSourceSection {
    /// Refuses an entry without a source or without any of product, category and service,
    /// and a source declared twice.
    pub fn check_all(entries: &[LogSourceSection]) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            let at = format!("[[logsource]] #{}", i + 1);
            if e.source.trim().is_empty() {
                return Err(ConfigError::invalid(at, "needs a source"));
            }
            let named = [&e.product, &e.category, &e.service]
                .iter()
                .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
            if !named {
                return Err(ConfigError::invalid(
                    at,
                    "needs at least one of product, category, service",
                ));
            }
            if !seen.insert(e.source.trim()) {
                return Err(ConfigError::invalid(
                    at,
                    "declares a source declared before",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked() {
        let ok = LogSourceSection {
            source: "syslog-udp".into(),
            product: Some("sonicwall".into()),
            ..LogSourceSection::default()
        };
        assert!(LogSourceSection::check_all(std::slice::from_ref(&ok)).is_ok());
        let none = LogSourceSection {
            product: None,
            ..ok.clone()
        };
        let e = LogSourceSection::check_all(&[none])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one of"), "{e}");
        let e = LogSourceSection::check_all(&[ok.clone(), ok.clone()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("declared before"), "{e}");
        let nameless = LogSourceSection {
            source: " ".into(),
            ..ok
        };
        assert!(LogSourceSection::check_all(&[nameless]).is_err());
    }
}
