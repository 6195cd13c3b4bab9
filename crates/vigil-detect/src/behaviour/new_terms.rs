//! First seen (`kind: new_terms`): per rule, a table from the keyed hash of (entity, tuple) to
//! the event time it was last seen. An event's tuple is new when it is not in the table or was
//! last seen longer ago than the history window.

use vigil_event::{Timestamp, Value};

use super::{Explanation, HashedMap, Hit, NewTerms, Stats, evict_oldest, keyed_hash, span_text};

/// One first-seen rule's memory.
#[derive(Debug, Clone)]
pub(crate) struct NewTermsState {
    /// The hash key (random per rule, persisted with the table).
    pub key: (u64, u64),
    /// Event time of the first event counted (the start of learning).
    pub since: Option<i64>,
    /// Newest event time counted.
    pub newest: i64,
    /// hash(entity, tuple) → last seen (event time, ns).
    pub seen: HashedMap<i64>,
    /// Tuples evicted to stay under the cap.
    pub evicted: u64,
}

impl NewTermsState {
    pub fn new() -> NewTermsState {
        NewTermsState {
            key: super::random_key(),
            since: None,
            newest: i64::MIN,
            seen: HashedMap::default(),
            evicted: 0,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            entries: self.seen.len() as u64,
            evicted: self.evicted,
            bytes: (self.seen.capacity() * 17 + 64) as u64,
        }
    }

    pub fn observe<'e>(
        &mut self,
        spec: &NewTerms,
        read: &dyn Fn(&str) -> Option<&'e Value>,
        time: Timestamp,
        alert: bool,
    ) -> Option<Hit> {
        let t = time.as_nanos();
        // The entity: every `per` field must be present (one value each; a list is its text).
        let mut entity = Vec::with_capacity(spec.per.len());
        for f in &spec.per {
            let v = read(f).filter(|v| !matches!(v, Value::Null))?;
            entity.push(v.to_string());
        }
        // The tuples: a list field gives one tuple per element (bounded).
        let columns: Vec<Vec<String>> = spec.fields.iter().map(|f| super::texts(read(f))).collect();
        if columns.iter().any(Vec::is_empty) {
            return None;
        }
        // Learning is measured from the first event the rule counted to the newest: an event
        // dated before it (a sender may set any time) neither restarts learning nor escapes it.
        let since = *self.since.get_or_insert(t);
        self.newest = self.newest.max(t);
        let learned = self.newest.saturating_sub(since) >= spec.learning_ns;
        let mut hit: Option<Hit> = None;
        let mut idx = vec![0usize; columns.len()];
        let mut parts: Vec<&str> = Vec::with_capacity(entity.len() + columns.len());
        for _ in 0..super::MAX_LIST {
            parts.clear();
            parts.extend(entity.iter().map(String::as_str));
            parts.extend(columns.iter().zip(&idx).map(|(c, &i)| c[i].as_str()));
            let h = keyed_hash(self.key, &parts);
            let is_new = match self.seen.get_mut(&h) {
                Some(last) if t.saturating_sub(*last) <= spec.history_ns => {
                    *last = (*last).max(t);
                    false
                }
                Some(last) => {
                    *last = t;
                    true
                }
                None => {
                    if self.seen.len() >= spec.max_entries {
                        self.make_room(spec);
                    }
                    self.seen.insert(h, t);
                    true
                }
            };
            if is_new && alert && learned && hit.is_none() {
                hit = Some(self.hit(spec, &entity, &columns, &idx, t));
            }
            // Next combination (odometer), or done.
            let mut k = idx.len();
            loop {
                if k == 0 {
                    return hit;
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < columns[k].len() {
                    break;
                }
                idx[k] = 0;
            }
        }
        hit
    }

    /// Drops what expired, then the oldest last-seen until 90 % of the cap is left.
    fn make_room(&mut self, spec: &NewTerms) {
        let horizon = self.newest.saturating_sub(spec.history_ns);
        self.seen.retain(|_, last| *last >= horizon);
        if self.seen.len() >= spec.max_entries {
            let keep = spec.max_entries - spec.max_entries / 10;
            self.evicted += evict_oldest(&mut self.seen, keep.min(spec.max_entries - 1), |t| *t);
        }
    }

    fn hit(
        &self,
        spec: &NewTerms,
        entity: &[String],
        columns: &[Vec<String>],
        idx: &[usize],
        t: i64,
    ) -> Hit {
        let mut group: Vec<(String, String)> = spec
            .per
            .iter()
            .cloned()
            .zip(entity.iter().cloned())
            .collect();
        let tuple: Vec<(String, String)> = spec
            .fields
            .iter()
            .zip(columns.iter().zip(idx))
            .map(|(f, (c, &i))| (f.clone(), c[i].clone()))
            .collect();
        group.extend(tuple.iter().cloned());
        let observed = tuple
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let whose = if entity.is_empty() {
            "anywhere".to_owned()
        } else {
            format!(
                "for {}",
                spec.per
                    .iter()
                    .zip(entity)
                    .map(|(f, v)| format!("{f}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        let since = self
            .since
            .unwrap_or(t)
            .max(t.saturating_sub(spec.history_ns));
        let summary = format!(
            "{observed} was not seen {whose} in the history window of {} (history from {} to {}, {} tuples remembered)",
            span_text(spec.history_ns),
            Timestamp::from_nanos(since).to_rfc3339(),
            Timestamp::from_nanos(t).to_rfc3339(),
            self.seen.len()
        );
        Hit {
            group,
            explain: Explanation {
                kind: "new_terms".into(),
                observed,
                metric: format!("first seen of {}", spec.fields.join(", ")),
                windows: Some(self.seen.len() as u64),
                since: Timestamp::from_nanos(since),
                until: Timestamp::from_nanos(t),
                summary,
                ..Explanation::default()
            },
        }
    }
}
