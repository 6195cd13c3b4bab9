//! The settings audit: [`Config::settings`] flattens the serialized configuration.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Config;

impl Config {
    /// Every setting as `SECTION.KEY` → text, from the serialized configuration: secrets
    /// appear only as fingerprints ([`crate::Secret`]) or not at all (`skip_serializing`).
    /// A list of tables (`notify`, `query_rule`, `responder`) is one setting, its entries as
    /// compact JSON; a list of values is joined with `, `; an unset value is `none`.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let value = serde_json::to_value(self).expect("a configuration serializes");
        let mut out = BTreeMap::new();
        flatten("", &value, &mut out);
        out
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) if prefix.is_empty() || !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), text(other));
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::Object(_) => v.to_string(),
                other => text(other),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
