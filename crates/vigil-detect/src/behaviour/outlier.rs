//! Outliers (`kind: outlier`, `kind: peer_outlier`): per entity, the value of the current
//! tumbling window and the values of its previous windows (idle windows count as 0); per peer
//! group, the values of its members' finished windows. See the module above for the baseline.

use std::collections::{HashSet, VecDeque};

use vigil_event::{Timestamp, Value};

use super::{
    Explanation, HashedMap, Hit, Metric, Outlier, Stats, evict_oldest, keyed_hash, median_mad, num,
    outlier_threshold, span_text,
};

/// Most distinct values counted per entity and window (a distinct count stops growing there,
/// far above any sensible floor).
pub(crate) const MAX_DISTINCT: usize = 65_536;

/// Most finished member windows a peer group keeps (the oldest go first).
pub(crate) const MAX_PEER_SAMPLES: usize = 4_096;

/// One entity's windows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entity {
    /// Hash of the entity's peer group value (0: none).
    pub group: u64,
    /// The current window's number (event time / window).
    pub window: i64,
    /// The current window's value.
    pub value: f64,
    /// Hashes of the distinct values in the current window (distinct_count only).
    pub distinct: HashSet<u64>,
    /// Previous windows' values, oldest first (at most the rule's `windows()`).
    pub history: VecDeque<f32>,
    /// Whether the current window already alerted.
    pub alerted: bool,
    /// Newest event time counted.
    pub last_seen: i64,
    /// The baseline computed in the current window: (median, MAD, windows, entities).
    pub cached: Option<(f64, f64, u64, u64)>,
}

/// A peer group's finished member windows: (member hash, window number, value).
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    /// Oldest first.
    pub samples: VecDeque<(u64, i64, f32)>,
    /// Newest event time of a member.
    pub last_seen: i64,
}

/// One outlier rule's memory.
#[derive(Debug, Clone)]
pub(crate) struct OutlierState {
    /// The hash key (random per rule, persisted).
    pub key: (u64, u64),
    /// Entities by hash of their `by` values.
    pub entities: HashedMap<Entity>,
    /// Peer groups by hash of their value.
    pub groups: HashedMap<Group>,
    /// Entities and groups evicted to stay under the cap.
    pub evicted: u64,
}

impl OutlierState {
    pub fn new() -> OutlierState {
        OutlierState {
            key: super::random_key(),
            entities: HashedMap::default(),
            groups: HashedMap::default(),
            evicted: 0,
        }
    }

    pub fn stats(&self) -> Stats {
        let hist: usize = self
            .entities
            .values()
            .map(|e| e.history.capacity() * 4 + e.distinct.capacity() * 9)
            .sum();
        let samples: usize = self
            .groups
            .values()
            .map(|g| g.samples.capacity() * 24)
            .sum();
        Stats {
            entries: self.entities.len() as u64,
            evicted: self.evicted,
            bytes: (self.entities.capacity() * (std::mem::size_of::<Entity>() + 9)
                + self.groups.capacity() * (std::mem::size_of::<Group>() + 9)
                + hist
                + samples) as u64,
        }
    }

    pub fn observe<'e>(
        &mut self,
        spec: &Outlier,
        read: &dyn Fn(&str) -> Option<&'e Value>,
        time: Timestamp,
        alert: bool,
    ) -> Option<Hit> {
        let t = time.as_nanos();
        let mut by = Vec::with_capacity(spec.by.len());
        for f in &spec.by {
            let v = read(f).filter(|v| !matches!(v, Value::Null))?;
            by.push(v.to_string());
        }
        let group_text = match &spec.peers {
            Some(f) => Some(read(f).filter(|v| !matches!(v, Value::Null))?.to_string()),
            None => None,
        };
        // What this event adds.
        let add: Add = match &spec.metric {
            Metric::Count => Add::One,
            Metric::Sum(f) => match read(f) {
                Some(Value::Int(i)) => Add::Amount(*i as f64),
                Some(Value::Float(x)) if x.is_finite() => Add::Amount(*x),
                Some(Value::Str(s)) => {
                    Add::Amount(s.trim().parse::<f64>().ok().filter(|x| x.is_finite())?)
                }
                _ => return None,
            },
            Metric::DistinctCount(f) => {
                let vals = super::texts(read(f));
                if vals.is_empty() {
                    return None;
                }
                Add::Values(vals.iter().map(|v| keyed_hash(self.key, &[v])).collect())
            }
        };
        let parts: Vec<&str> = by.iter().map(String::as_str).collect();
        let eh = keyed_hash(self.key, &parts);
        let gh = group_text
            .as_deref()
            .map_or(0, |g| keyed_hash(self.key, &["\u{1}group", g]) | 1);
        let window = t.div_euclid(spec.window_ns);
        let windows = spec.windows();
        if !self.entities.contains_key(&eh) && self.entities.len() >= spec.max_entities {
            let keep = (spec.max_entities - spec.max_entities / 10).min(spec.max_entities - 1);
            self.evicted += evict_oldest(&mut self.entities, keep, |e| e.last_seen);
        }
        let entity = self.entities.entry(eh).or_insert_with(|| Entity {
            group: gh,
            window,
            ..Entity::default()
        });
        entity.last_seen = entity.last_seen.max(t);
        // A late event (of a window already finished) counts into the current window: dropping
        // it would let one event dated in the future blind the rule to an entity.
        if window > entity.window {
            // Finish the current window: into the entity's history, and its group's samples.
            let finished = (entity.window, entity.value as f32);
            entity.history.push_back(finished.1);
            let idle = (window - entity.window - 1).min(windows as i64);
            for _ in 0..idle {
                entity.history.push_back(0.0);
            }
            while entity.history.len() > windows {
                entity.history.pop_front();
            }
            entity.window = window;
            entity.value = 0.0;
            entity.distinct.clear();
            entity.alerted = false;
            entity.cached = None;
            if spec.peers.is_some() {
                let g = self.groups.entry(entity.group).or_default();
                g.samples.push_back((eh, finished.0, finished.1));
                while g.samples.len() > MAX_PEER_SAMPLES {
                    g.samples.pop_front();
                }
            }
            entity.group = gh;
        }
        match add {
            Add::One => entity.value += 1.0,
            Add::Amount(x) => entity.value += x,
            Add::Values(hs) => {
                for h in hs {
                    if entity.distinct.len() < MAX_DISTINCT {
                        entity.distinct.insert(h);
                    }
                }
                entity.value = entity.distinct.len() as f64;
            }
        }
        if spec.peers.is_some() {
            if !self.groups.contains_key(&gh) && self.groups.len() >= spec.max_entities {
                let keep = (spec.max_entities - spec.max_entities / 10).min(spec.max_entities - 1);
                self.evicted += evict_oldest(&mut self.groups, keep, |g| g.last_seen);
            }
            let g = self.groups.entry(gh).or_default();
            g.last_seen = g.last_seen.max(t);
        }
        let entity = self.entities.get_mut(&eh)?;
        if !alert || entity.alerted || entity.value < spec.floor {
            return None;
        }
        // The baseline, once per entity and window.
        let (median, mad, n, peers) = match entity.cached {
            Some(c) => c,
            None => {
                let c = match spec.peers {
                    None => {
                        let mut xs: Vec<f64> =
                            entity.history.iter().map(|&x| f64::from(x)).collect();
                        let (m, d) = median_mad(&mut xs);
                        (m, d, xs.len() as u64, 1)
                    }
                    Some(_) => {
                        let oldest = window - windows as i64;
                        let g = self.groups.get(&gh);
                        let mut members = HashSet::new();
                        let mut xs: Vec<f64> = g
                            .into_iter()
                            .flat_map(|g| g.samples.iter())
                            .filter(|(m, w, _)| *m != eh && *w >= oldest)
                            .map(|(m, _, v)| {
                                members.insert(*m);
                                f64::from(*v)
                            })
                            .collect();
                        let (m, d) = median_mad(&mut xs);
                        (m, d, xs.len() as u64, members.len() as u64)
                    }
                };
                entity.cached = Some(c);
                c
            }
        };
        if (n as usize) < spec.min_windows {
            return None; // still learning
        }
        let limit = outlier_threshold(median, mad, spec.threshold);
        if entity.value <= limit {
            return None;
        }
        entity.alerted = true;
        let value = entity.value;
        let group: Vec<(String, String)> = spec.by.iter().cloned().zip(by).collect();
        let window_start = window * spec.window_ns;
        let since = window_start
            .saturating_sub(spec.history_ns.min(spec.window_ns.saturating_mul(n as i64)));
        let who = group
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let metric = spec.metric.describe();
        let (kind, peer_group, baseline_of) = match (&spec.peers, group_text) {
            (Some(f), Some(g)) => (
                "peer_outlier",
                Some(format!("{f}={g}")),
                format!("{peers} peers in {f}={g} ({n} member windows)"),
            ),
            _ => ("outlier", None, format!("its own previous {n} windows")),
        };
        let summary = format!(
            "{metric} of {who} in the {} window from {} is {}; normal for {baseline_of} from {} is a median of {} (MAD {}), so above {} is an outlier (threshold {}, floor {})",
            span_text(spec.window_ns),
            Timestamp::from_nanos(window_start).to_rfc3339(),
            num(value),
            Timestamp::from_nanos(since).to_rfc3339(),
            num(median),
            num(mad),
            num(limit),
            num(spec.threshold),
            num(spec.floor),
        );
        Some(Hit {
            group,
            explain: Explanation {
                kind: kind.into(),
                observed: num(value),
                metric,
                median: Some(median),
                mad: Some(mad),
                threshold: Some(limit),
                windows: Some(n),
                entities: Some(peers),
                peer_group,
                since: Timestamp::from_nanos(since),
                until: Timestamp::from_nanos(window_start),
                summary,
            },
        })
    }
}

enum Add {
    One,
    Amount(f64),
    Values(Vec<u64>),
}
