//! Enrichment tables: facts about users and hosts from CSV, joined to events at ingest.
//!
//! The first column of the header names the key field, one of [`KEY_FIELDS`] (`user.name`,
//! `host.name`, …); the other columns name the fields to set, which must sit under the same
//! entity (`user.*` for a user table, `host.*` for a host table), so a table can never write
//! `event.*`, `threat.*` or `vigil.*`. Keys match case-insensitively. A `user.roles` or
//! `host.roles` cell is a list separated by `;`; a `host.criticality` cell must be one of
//! [`CRITICALITIES`].
//!
//! ```csv
//! user.name,user.department,user.roles,user.title
//! alice,finance,analyst;approver,Controller
//! ```

use std::collections::HashMap;

use vigil_event::{Event, Value};

/// Fields a table may be keyed by.
pub const KEY_FIELDS: &[&str] = &[
    "user.name",
    "user.id",
    "user.email",
    "host.name",
    "host.hostname",
    "host.id",
];

/// Values of `host.criticality`, lowest first; alert severity is raised for the top two.
pub const CRITICALITIES: &[&str] = &["low", "medium", "high", "critical"];

/// Longest cell kept.
const MAX_CELL_BYTES: usize = 1024;
/// Most columns of a table.
const MAX_COLUMNS: usize = 64;

/// Why a table could not be read (the previous one stays in force).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// More rows than allowed.
    #[error("more than {max} rows; raise [enrich] max_rows")]
    TooMany {
        /// The cap.
        max: usize,
    },
    /// The header or a row is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// One loaded table.
#[derive(Debug, Default)]
pub struct Table {
    key: String,
    columns: Vec<String>,
    rows: HashMap<String, Vec<Option<Value>>>,
}

impl Table {
    /// Reads a table from CSV bytes, with at most `max` rows.
    pub fn parse(bytes: &[u8], max: usize) -> Result<Table, TableError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| TableError::Invalid(format!("header: {e}")))?
            .clone();
        let names: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
        let Some(key) = names.first().filter(|k| KEY_FIELDS.contains(&k.as_str())) else {
            return Err(TableError::Invalid(format!(
                "the first column must be the key, one of {}; found {:?}",
                KEY_FIELDS.join(", "),
                names.first().map(String::as_str).unwrap_or("")
            )));
        };
        if names.len() > MAX_COLUMNS {
            return Err(TableError::Invalid(format!(
                "more than {MAX_COLUMNS} columns"
            )));
        }
        let entity = key.split('.').next().unwrap_or("");
        let columns = names[1..].to_vec();
        for c in &columns {
            let ok = c
                .strip_prefix(entity)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| {
                    !r.is_empty()
                        && r.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                        })
                });
            if !ok || c == key || KEY_FIELDS.contains(&c.as_str()) {
                return Err(TableError::Invalid(format!(
                    "column {c:?}: a {entity} table sets fields under `{entity}.` (lowercase ECS names), not its key fields"
                )));
            }
        }
        let mut rows = HashMap::new();
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| TableError::Invalid(format!("row {}: {e}", n + 2)))?;
            let Some(k) = record
                .get(0)
                .map(|k| k.trim().to_lowercase())
                .filter(|k| !k.is_empty())
            else {
                continue;
            };
            if rows.len() >= max && !rows.contains_key(&k) {
                return Err(TableError::TooMany { max });
            }
            let mut values = Vec::with_capacity(columns.len());
            for (i, c) in columns.iter().enumerate() {
                let cell = record.get(i + 1).map(str::trim).unwrap_or("");
                if cell.len() > MAX_CELL_BYTES {
                    return Err(TableError::Invalid(format!(
                        "row {}, column {c}: longer than {MAX_CELL_BYTES} bytes",
                        n + 2
                    )));
                }
                values.push(
                    cell_value(c, cell).map_err(|m| {
                        TableError::Invalid(format!("row {}, column {c}: {m}", n + 2))
                    })?,
                );
            }
            rows.insert(k, values);
        }
        Ok(Table {
            key: key.clone(),
            columns,
            rows,
        })
    }

    /// The key field.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fields the table sets.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Sets the row's fields on `event` when its key field names a row; returns whether it did.
    pub fn join(&self, event: &mut Event) -> bool {
        let Some(k) = event.get_str(&self.key) else {
            return false;
        };
        // Keys are stored lowercased; most events' keys already are (no allocation then).
        let found = if k.chars().any(char::is_uppercase) {
            self.rows.get(k.to_lowercase().as_str())
        } else {
            self.rows.get(k)
        };
        let Some(values) = found else {
            return false;
        };
        for (c, v) in self.columns.iter().zip(values) {
            if let Some(v) = v {
                event.insert(c.clone(), v.clone());
            }
        }
        true
    }
}

fn cell_value(column: &str, cell: &str) -> Result<Option<Value>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    if column.ends_with(".roles") {
        let list: Vec<Value> = cell
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::Str(s.to_owned()))
            .collect();
        return Ok(Some(Value::List(list)));
    }
    if column == "host.criticality" {
        let lower = cell.to_ascii_lowercase();
        if !CRITICALITIES.contains(&lower.as_str()) {
            return Err(format!(
                "{cell:?} is not one of {}",
                CRITICALITIES.join(", ")
            ));
        }
        return Ok(Some(Value::Str(lower)));
    }
    Ok(Some(Value::Str(cell.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_join_by_key_case_insensitively() {
        let t = Table::parse(
            b"user.name,user.department,user.roles\nAlice,finance,analyst; approver\nbob,,admin\n",
            10,
        )
        .unwrap();
        assert_eq!((t.key(), t.len()), ("user.name", 2));
        let mut e = Event::new(vigil_event::Timestamp::from_secs(0));
        e.insert("user.name", "ALICE");
        assert!(t.join(&mut e));
        assert_eq!(e.get_str("user.department"), Some("finance"));
        assert_eq!(
            e.get("user.roles"),
            Some(&Value::List(vec!["analyst".into(), "approver".into()]))
        );
        let mut e = Event::new(vigil_event::Timestamp::from_secs(0));
        e.insert("user.name", "bob");
        e.insert("user.department", "claimed");
        assert!(t.join(&mut e));
        // An empty cell sets nothing (the pipeline has moved any claimed value away already).
        assert_eq!(e.get_str("user.department"), Some("claimed"));
        let mut e = Event::new(vigil_event::Timestamp::from_secs(0));
        e.insert("user.name", "carol");
        assert!(!t.join(&mut e));
    }

    #[test]
    fn hostile_tables_are_refused_with_a_reason() {
        let err = |b: &[u8]| Table::parse(b, 2).unwrap_err().to_string();
        assert!(err(b"event.dataset,x\n").contains("first column"));
        assert!(err(b"user.name,vigil.rule.level\n").contains("vigil.rule.level"));
        assert!(err(b"user.name,threat.indicator.type\n").contains("threat"));
        assert!(err(b"host.name,user.department\n").contains("host"));
        assert!(err(b"host.name,host.criticality\nweb1,extreme\n").contains("extreme"));
        assert!(err(b"user.name,user.x\na,1\nb,2\nc,3\n").contains("more than 2 rows"));
        assert!(err(b"user.name,user.x\n\"a,1\n").contains("row"));
        let long = format!("user.name,user.x\na,{}\n", "y".repeat(MAX_CELL_BYTES + 1));
        assert!(err(long.as_bytes()).contains("longer"));
    }
}
