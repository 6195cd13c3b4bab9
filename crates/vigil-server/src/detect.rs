//! Streaming detection in `vigil serve`: a thread follows the ledger (like the indexer), runs
//! every new event through the compiled Sigma rule set, keeps the alert book, writes each new
//! alert, throttled update and triage to the ledger, and hands notifications to the notifiers.
//! Rules reload when their files change; a broken rule is reported and skipped.
//!
//! State survives restarts in `DATA_DIR/detect/state.json` (the next sequence number to
//! evaluate and the alert book), written atomically each second it changed; events that arrive
//! while the server is down are evaluated when it comes back. The file is a cache (DESIGN
//! invariant 3): without it, the book is rebuilt from the alert events in the ledger and the
//! events after them are evaluated again ([`rebuild_from_ledger`]).
//!
//! Alerts, triage and rule changes go to the ledger through the ingest pipeline
//! ([`Ingest::submit`]); the detector does not wait for their fsync but goes on evaluating.
//! The saved cursor means "evaluated, and every alert raised up to here is durable": a save
//! first waits for the writes submitted since the previous one (put off while they are not
//! durable yet, up to `SAVE_PUT_OFF`, so evaluation does not stall on an fsync), so
//! a crash never leaves a book or cursor ahead of the alerts in the ledger; a write the ledger
//! refused is submitted again and the state is not saved past it. An alert's notifications
//! and its responders' bans wait for the alert to be durable (checked without blocking at
//! every turn of the loop), so nothing leaves Vigil about an alert the ledger does not hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use vigil_detect::alert::{AlertBook, Observed, RuleInfo as AlertRule, Triage};
use vigil_detect::compile::IssueKind;
use vigil_detect::{Evaluator, RuleSet};
use vigil_event::{Event, Timestamp, Value};
use vigil_ingest::{Door, Origin, Pending};

mod behaviour;
mod lane;
mod progress;
mod query_rule;
mod shared;
#[cfg(test)]
mod skip_tests;
mod source;
mod state;
pub use progress::DetectProgress;
pub use source::EventSource;
pub use state::{Resume, rebuild_from_ledger};

pub use vigil_detect::load::LoadedRules;
use vigil_detect::load::fingerprint;

/// Loads and compiles every rule file under `dirs` ([`vigil_detect::load::load_rules`]) and
/// logs each rule left out. Never fails: problems are reported in the result and the rest of
/// the rules still run.
pub fn load_rules(dirs: &[PathBuf]) -> LoadedRules {
    let loaded = vigil_detect::load::load_rules(dirs);
    for issue in loaded
        .issues
        .iter()
        .filter(|i| i.kind == IssueKind::Unsupported)
    {
        tracing::warn!(
            "rule {} ({}) skipped: {}",
            issue.title,
            issue.source.as_deref().unwrap_or("?"),
            issue.reason
        );
    }
    loaded
}

pub use vigil_detect::evaluate::{alert_rule, main_entity};

pub use query_rule::{QueryRule, query_rule_groups};

pub use vigil_detect::alert::{Notification, NotifyReason};

/// Alert events submitted to the ledger and what waits for them to be durable.
struct Effect {
    pending: Option<Pending>,
    events: Vec<Event>,
    origin: Origin,
    notes: Vec<Notification>,
    respond: Vec<vigil_detect::alert::Alert>,
}

/// How long a stopping detector keeps evaluating the events it has not reached before it saves
/// its cursor and stops anyway: a stop must not wait for a backlog.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The longest the detector sleeps when it has nothing to evaluate; a new durable event wakes
/// it sooner.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// How often the detector saves its state when it changed.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How long a save may be put off while alerts submitted before it are not durable yet.
const SAVE_PUT_OFF: Duration = Duration::from_secs(2);

/// The running detector.
pub struct DetectService {
    rules: RwLock<Arc<LoadedRules>>,
    book: Mutex<AlertBook>,
    last_fired: Mutex<HashMap<String, Timestamp>>,
    /// Counters.
    pub progress: DetectProgress,
    door: Arc<dyn Door>,
    /// Writes submitted since the last save, waited for before the next.
    unsaved: Mutex<std::collections::VecDeque<Effect>>,
    dirs: Vec<PathBuf>,
    state_path: PathBuf,
    /// `detect/behaviour.bin` (standalone only).
    behaviour_path: Option<PathBuf>,
    notify: crate::notify::NotifyQueue,
    stop: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    dirty: AtomicBool,
    decisions: Option<Arc<crate::decisions::DecisionService>>,
    /// Alerts waiting for the responders (filled under the book's lock, drained after it).
    respond: Mutex<Vec<vigil_detect::alert::Alert>>,
    /// Cluster mode: one role per detector partition — its lease, the stream and its cursor
    /// (empty standalone). The detector's thread runs a [`lane::Lane`] for each.
    cluster: Vec<Arc<crate::cluster::detect::ClusterRole>>,
    /// Cluster mode: alerts whose count changed since their last event (written at each save).
    unwritten: Mutex<std::collections::BTreeSet<u64>>,
}

/// Correlation groups held, groups evicted and window entries dropped by `evaluator`, over
/// every correlation of `set`.
fn correlation_totals(evaluator: &Evaluator, set: &RuleSet) -> (u64, u64, u64) {
    (0..set.correlations().len())
        .map(|c| evaluator.correlations().stats(c))
        .fold((0, 0, 0), |(g, e, d), st| {
            (
                g + st.groups as u64,
                e + st.evicted_groups,
                d + st.dropped_entries,
            )
        })
}

impl DetectService {
    /// Loads the rules and the saved state, and starts following the ledger. Notifications go
    /// to `notify` (a full queue drops them, counted in its stats).
    pub fn start(
        data_dir: &Path,
        dirs: Vec<PathBuf>,
        throttle_secs: i64,
        door: Arc<dyn Door>,
        notify: crate::notify::NotifyQueue,
        decisions: Option<Arc<crate::decisions::DecisionService>>,
    ) -> Result<Arc<DetectService>, String> {
        Self::start_with(
            data_dir,
            dirs,
            throttle_secs,
            door,
            notify,
            decisions,
            Vec::new(),
        )
    }

    /// [`DetectService::start`], in cluster mode when `cluster` is not empty (one role per
    /// detector partition): the book starts empty (the shared `sys` shard fills it), and each
    /// partition is evaluated only while this node holds its lease, over the stream, from the
    /// partition's cursor.
    pub fn start_with(
        data_dir: &Path,
        dirs: Vec<PathBuf>,
        throttle_secs: i64,
        door: Arc<dyn Door>,
        notify: crate::notify::NotifyQueue,
        decisions: Option<Arc<crate::decisions::DecisionService>>,
        cluster: Vec<Arc<crate::cluster::detect::ClusterRole>>,
    ) -> Result<Arc<DetectService>, String> {
        let layout = vigil_config::DataDir::new(data_dir);
        let state_dir = layout.detect();
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        let state_path = layout.detect_state();
        let (book, next_seq, recount_until) = if cluster.is_empty() {
            state::restore(
                &state_path,
                &mut door.follower().map_err(|e| e.to_string())?,
                throttle_secs,
            )?
        } else {
            (AlertBook::new(throttle_secs), 0, 0)
        };
        let seen_through = book.seen_through().unwrap_or(0);
        let rules = load_rules(&dirs);
        tracing::info!(
            "detection: {} rules loaded from {} ({} not supported)",
            rules.set.len(),
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            rules
                .issues
                .iter()
                .filter(|i| i.kind == IssueKind::Unsupported)
                .count()
        );
        let service = Arc::new(DetectService {
            rules: RwLock::new(Arc::new(rules)),
            book: Mutex::new(book),
            last_fired: Mutex::new(HashMap::new()),
            progress: DetectProgress::default(),
            door,
            unsaved: Mutex::new(std::collections::VecDeque::new()),
            dirs,
            state_path,
            behaviour_path: cluster.is_empty().then(|| layout.behaviour_state()),
            notify,
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
            dirty: AtomicBool::new(true),
            decisions,
            respond: Mutex::new(Vec::new()),
            cluster,
            unwritten: Mutex::default(),
        });
        service.progress.next_seq.store(next_seq, Ordering::Relaxed);
        let lanes = if service.cluster.is_empty() {
            vec![lane::Lane::standalone(
                next_seq,
                recount_until,
                seen_through,
            )]
        } else {
            service
                .cluster
                .iter()
                .cloned()
                .map(lane::Lane::cluster)
                .collect()
        };
        let me = Arc::clone(&service);
        let handle = std::thread::Builder::new()
            .name("vigil-detect".into())
            .spawn(move || me.follow(lanes))
            .map_err(|e| e.to_string())?;
        *service.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(service)
    }

    /// The rule directories (what [`DetectService::rules`] was loaded from).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The rules now in force.
    pub fn rules(&self) -> Arc<LoadedRules> {
        Arc::clone(&self.rules.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// When each rule (by alert rule id) last fired.
    pub fn last_fired(&self) -> HashMap<String, Timestamp> {
        self.last_fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the alert book.
    pub fn with_book<R>(&self, f: impl FnOnce(&AlertBook) -> R) -> R {
        f(&self.book.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Raises (or updates) alerts for a query rule's result rows (blocking: writes the ledger).
    pub fn raise_query_rule(&self, rule: &QueryRule, groups: Vec<Vec<(String, String)>>) {
        // Cluster mode: only the holder of the first detector partition raises them.
        let tag = self.cluster.first().and_then(|c| c.tag());
        if self.cluster.first().is_some_and(|c| !c.detecting()) {
            return;
        }
        let info = AlertRule {
            id: rule.name.clone(),
            title: rule.name.clone(),
            level: rule.level,
            tags: rule.tags.clone(),
        };
        let mut out = Vec::new();
        let mut notes = Vec::new();
        let now = Timestamp::now();
        for group in groups {
            let raised = vigil_detect::Raised {
                rule: info.clone(),
                group,
                time: now,
                explain: None,
            };
            self.raise(raised, None, tag, &mut out, &mut notes);
        }
        self.submit(out, Origin::Alert, notes);
        self.dispatch_durable(false);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Hands the alerts collected by [`DetectService::raise`] to the responders.
    fn run_responders(&self, alerts: &[vigil_detect::alert::Alert]) {
        if let Some(decisions) = &self.decisions
            && !alerts.is_empty()
        {
            decisions.on_alerts(alerts);
        }
    }

    /// Changes an alert's triage state and writes the change to the ledger (blocking).
    pub fn triage(&self, id: u64, change: Triage) -> Result<vigil_detect::alert::Alert, String> {
        let alert = {
            let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
            book.triage(id, change)?.clone()
        };
        self.dirty.store(true, Ordering::Relaxed);
        self.door
            .submit_own(
                vec![alert.to_event("triaged", Timestamp::now())],
                Origin::Triage,
            )
            .wait()
            .map_err(|e| e.to_string())?;
        Ok(alert)
    }

    /// Evaluates the rest of the ledger (for up to [`STOP_GRACE`], so a stop is bounded; the
    /// next start resumes where this one stopped), saves the state and stops.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    fn follow(&self, mut lanes: Vec<lane::Lane>) {
        let mut last_save = Instant::now();
        let mut last_rule_check = Instant::now();
        let mut stop_asked: Option<Instant> = None;
        loop {
            let stopping = self.stop.load(Ordering::SeqCst);
            if stopping && stop_asked.is_none() {
                stop_asked = Some(Instant::now());
            }
            let out_of_time = stop_asked.is_some_and(|t| t.elapsed() >= STOP_GRACE);
            if last_rule_check.elapsed() >= Duration::from_secs(2) {
                last_rule_check = Instant::now();
                self.reload_if_changed();
            }
            let (mut evaluated, mut active) = (0, 0);
            for lane in lanes.iter_mut() {
                if let Some(role) = lane.role.clone()
                    && !self.lead(&role, lane)
                {
                    continue;
                }
                active += 1;
                evaluated += self.turn(lane);
            }
            if active == 0 {
                // Cluster mode, no detector partition held: nothing to evaluate or save.
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            if let Some(min) = lanes
                .iter()
                .filter(|l| l.role.as_ref().is_none_or(|r| r.detecting()))
                .map(|l| l.next_seq)
                .min()
            {
                self.progress.next_seq.store(min, Ordering::Relaxed);
            }
            // Notifications and bans of alerts that became durable meanwhile.
            let all_durable = self.dispatch_durable(false);
            // A save waits for the alerts submitted before it: while some are not durable it is
            // put off (their group commit wakes this thread), so evaluation does not stall on
            // an fsync; after SAVE_PUT_OFF (a ledger that keeps up never takes that long) it
            // waits.
            let due = last_save.elapsed() >= SAVE_EVERY
                && (all_durable || last_save.elapsed() >= SAVE_EVERY + SAVE_PUT_OFF);
            if (due || stopping) && self.dirty.swap(false, Ordering::Relaxed) {
                last_save = Instant::now();
                if let Err(e) = self.save(&lanes) {
                    tracing::error!("saving detection state: {e}");
                    self.dirty.store(true, Ordering::Relaxed);
                } else if let (Some(path), Some(lane)) = (&self.behaviour_path, lanes.first())
                    && let Some((_, evaluator)) = lane.scratch.as_ref()
                    && !evaluator.behaviour().is_empty()
                    && let Err(e) = behaviour::save(path, evaluator.behaviour(), lane.next_seq)
                {
                    // The next start rebuilds what the file lacks from the ledger.
                    tracing::error!("saving behaviour state: {e}");
                }
            }
            if stopping && evaluated == 0 {
                return;
            }
            if out_of_time {
                // The state (with the cursor) was saved just above: the next start resumes here.
                tracing::warn!(
                    "detection: stopping with events not evaluated yet; the next start resumes at seq {}",
                    self.progress.next_seq.load(Ordering::Relaxed)
                );
                return;
            }
            if evaluated == 0 {
                // Woken by the ledger's next group commit; the timeout keeps the poll as a
                // fallback (rule reloads, saves, stop requests, cluster mode's stream).
                match lanes.first() {
                    Some(lane) if self.cluster.is_empty() => {
                        self.door.wait_durable(lane.next_seq, IDLE_WAIT);
                    }
                    _ => std::thread::sleep(IDLE_WAIT),
                }
            }
        }
    }

    fn reload_if_changed(&self) {
        let current = self.rules();
        if fingerprint(&self.dirs) == current.fingerprint {
            return;
        }
        let loaded = load_rules(&self.dirs);
        tracing::info!("detection: rules changed, {} loaded", loaded.set.len());
        // Rule changes are audited: which rules came, went, or fail to load.
        let titles = |rules: &LoadedRules| -> std::collections::BTreeSet<String> {
            rules
                .set
                .rules()
                .map(|(_, info)| {
                    let r = alert_rule(&info.meta);
                    format!("{} ({})", r.title, r.id)
                })
                .collect()
        };
        let (before, after) = (titles(&current), titles(&loaded));
        let added: Vec<String> = after.difference(&before).cloned().collect();
        let removed: Vec<String> = before.difference(&after).cloned().collect();
        let mut audit = Event::audit_builder("rules_changed")
            .category(vigil_event::Category::Configuration)
            .event_type(vigil_event::EventType::Change)
            .outcome(vigil_event::Outcome::Success)
            .build();
        audit.insert(
            "message",
            format!(
                "detection rules changed: {} loaded ({} added, {} removed), {} not loaded",
                loaded.set.len(),
                added.len(),
                removed.len(),
                loaded.issues.len() + loaded.file_errors.len()
            ),
        );
        let list = |v: Vec<String>| Value::List(v.into_iter().map(Value::from).collect());
        audit.insert("vigil.rules.added", list(added));
        audit.insert("vigil.rules.removed", list(removed));
        audit.insert("vigil.rules.loaded", loaded.set.len() as i64);
        self.submit(vec![audit], Origin::Rule, Vec::new());
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
    }

    /// Evaluates up to 10,000 new events of `lane`; returns how many.
    fn step(&self, lane: &mut lane::Lane) -> Result<u64, String> {
        let start = lane.next_seq;
        let (tag, partition) = (lane.tag(), lane.partition());
        let lane::Lane {
            reader,
            scratch,
            recount_until,
            seen_through,
            behaviour_from,
            others_from,
            restored,
            ..
        } = lane;
        let Some(reader) = reader.as_mut() else {
            return Ok(0);
        };
        let rules = self.rules();
        let key = Arc::as_ptr(&rules) as usize;
        if scratch.as_ref().is_none_or(|(k, _)| *k != key) {
            // New rules: new scratch and new correlation windows; behaviour rules keep their
            // memory when unchanged, and new ones learn the history first (backfill).
            // Cluster mode: only this lane's share of the alert groups (the whole of them
            // standalone and with one detector partition: the same evaluator).
            let mut evaluator = if partition.is_whole() {
                Evaluator::new(&rules.set, vigil_detect::Limits::default())
            } else {
                Evaluator::partitioned(&rules.set, vigil_detect::Limits::default(), partition)
            };
            // Cluster mode: the state a takeover restored comes first.
            let previous = restored.take().or_else(|| {
                scratch
                    .take()
                    .map(|(_, mut e)| std::mem::take(e.behaviour_mut()))
            });
            let prepared = behaviour::prepare(
                &mut evaluator,
                &rules.set,
                previous,
                self.behaviour_path.as_deref(),
                reader.as_mut(),
                start,
            )?;
            if prepared.backfilled > 0 {
                tracing::info!(
                    "detection: {} behaviour rules learned their history ({} ledger events read)",
                    prepared.backfilled,
                    prepared.events_read
                );
            }
            *scratch = Some((key, evaluator));
        }
        let (_, evaluator) = scratch.as_mut().expect("set above");
        let matches_before = evaluator.matches;
        let (_, evicted_before, dropped_before) = correlation_totals(evaluator, &rules.set);
        let mut out = Vec::new();
        let mut notes = Vec::new();
        let (recount_until, seen_through) = (*recount_until, *seen_through);
        let (behaviour_from, others_from) = (*behaviour_from, *others_from);
        // Events no loaded rule's logsource admits are passed over undecoded (with only
        // Vigil's own rules loaded, nearly every event); a reload brings a new set, and the
        // events after it are checked against that.
        let wanted = |raw: &[u8]| rules.set.may_match_canonical(raw);
        let (n, next) = reader.read_wanted(start, 10_000, &wanted, &mut |seq, event| {
            evaluator.feed(seq >= behaviour_from, seq >= others_from);
            for raised in evaluator.evaluate(&rules.set, event) {
                if seq < recount_until
                    || (seq < seen_through
                        && self
                            .book
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .has_counted(&raised.rule.id, &raised.group, seq))
                {
                    // Evaluated before the book was rebuilt: notified and responded to then.
                    self.book
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .observe_uncounted(
                            &raised.rule,
                            raised.group,
                            raised.time,
                            seq,
                            Timestamp::now(),
                        );
                    continue;
                }
                self.raise(raised, Some(seq), tag, &mut out, &mut notes);
            }
        })?;
        if n == 0 && next == start {
            return Ok(0);
        }
        self.submit(out, Origin::Alert, notes);
        self.dispatch_durable(false);
        self.progress
            .matches
            .fetch_add(evaluator.matches - matches_before, Ordering::Relaxed);
        let (groups, evicted, dropped) = correlation_totals(evaluator, &rules.set);
        let p = &self.progress;
        let b = evaluator.behaviour().stats();
        p.behaviour_entries.store(b.entries, Ordering::Relaxed);
        p.behaviour_evicted.fetch_max(b.evicted, Ordering::Relaxed);
        p.behaviour_bytes.store(b.bytes, Ordering::Relaxed);
        p.correlation_groups.store(groups, Ordering::Relaxed);
        // Counters across rule reloads (a reload starts a new evaluator from zero).
        p.evicted_groups
            .fetch_add(evicted - evicted_before, Ordering::Relaxed);
        p.dropped_entries
            .fetch_add(dropped - dropped_before, Ordering::Relaxed);
        self.progress.events.fetch_add(n, Ordering::Relaxed);
        lane.next_seq = next;
        self.dirty.store(true, Ordering::Relaxed);
        Ok(n)
    }

    /// Counts a match in the book; a new alert or a due update goes to the ledger and out.
    fn raise(
        &self,
        raised: vigil_detect::Raised,
        seq: Option<u64>,
        partition: Option<u32>,
        out: &mut Vec<Event>,
        notes: &mut Vec<Notification>,
    ) {
        let vigil_detect::Raised {
            rule,
            group,
            time,
            explain,
        } = raised;
        let rule = &rule;
        let now = Timestamp::now();
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        let observed = book.observe_in(partition, rule, group, time, seq, now);
        let id = match observed {
            Observed::New(id) | Observed::Updated { id, .. } => id,
        };
        if let Some(x) = explain {
            book.explain(id, x);
        }
        // Responders see every match: a ban that expired while the attack goes on comes back.
        if self.decisions.is_some()
            && let Some(alert) = book.get(id)
        {
            self.respond
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(alert.clone());
        }
        let (id, reason) = match observed {
            Observed::New(id) => {
                self.progress.alerts.fetch_add(1, Ordering::Relaxed);
                (id, NotifyReason::New)
            }
            Observed::Updated { id, notify: true } => (id, NotifyReason::Update),
            Observed::Updated { id, .. } => return self.note_unwritten(id),
        };
        if let Some(alert) = book.get(id) {
            out.push(alert.to_event(reason.action(), now));
            notes.push(Notification {
                reason,
                alert: alert.clone(),
            });
        }
        self.last_fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rule.id.clone(), now);
    }

    /// Hands alert events to the ingest pipeline without waiting, with what must wait for them:
    /// the notifications and the responders' bans go out only once the alerts are durable
    /// ([`DetectService::dispatch_durable`]), so a crash never leaves a notification or a ban
    /// the ledger has no alert for.
    fn submit(&self, events: Vec<Event>, origin: Origin, notes: Vec<Notification>) {
        let respond = std::mem::take(&mut *self.respond.lock().unwrap_or_else(|p| p.into_inner()));
        if events.is_empty() && notes.is_empty() && respond.is_empty() {
            return;
        }
        let pending = (!events.is_empty()).then(|| self.door.submit_own(events.clone(), origin));
        self.unsaved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Effect {
                pending,
                events,
                origin,
                notes,
                respond,
            });
    }

    /// Sends the notifications and runs the responders of every submitted batch that is
    /// durable, in order; with `wait`, waits for all of them. A batch the ledger refused (a
    /// full disk) is submitted again and stays queued: its effects wait, and the state is not
    /// saved past it. Returns whether every submitted batch is durable.
    fn dispatch_durable(&self, wait: bool) -> bool {
        loop {
            let Some(mut effect) = self
                .unsaved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            else {
                return true;
            };
            let outcome = match effect.pending.take() {
                None => Ok(()),
                Some(pending) if wait => pending.wait().map(|_| ()),
                Some(pending) => match pending.try_result() {
                    Ok(result) => result.map(|_| ()),
                    Err(pending) => {
                        effect.pending = Some(pending);
                        self.unsaved
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push_front(effect);
                        return false;
                    }
                },
            };
            if let Err(e) = outcome {
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("detection: writing alerts to the ledger: {e}; trying again");
                effect.pending = Some(self.door.submit_own(effect.events.clone(), effect.origin));
                self.unsaved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_front(effect);
                return false;
            }
            for note in effect.notes {
                // A full queue means notifiers are far behind; the alert is in the ledger.
                self.notify.send(note);
            }
            self.run_responders(&effect.respond);
        }
    }

    fn save(&self, lanes: &[lane::Lane]) -> Result<(), String> {
        self.write_counts();
        // The cursor and book saved below never run ahead of the alerts in the ledger.
        if !self.dispatch_durable(true) {
            return Err("alerts not yet in the ledger; state not saved (will retry)".into());
        }
        if !self.cluster.is_empty() {
            // Cluster mode: each held partition's cursor, by its holder only (the book is in
            // `sys`); every one is tried, the failures reported together.
            let failed: Vec<String> = lanes
                .iter()
                .filter_map(|l| Some((l.role.as_ref()?, l.next_seq)))
                .filter_map(|(role, next)| role.save_cursor(next).err())
                .collect();
            return if failed.is_empty() {
                // Behaviour state only behind a saved cursor (never ahead of it).
                if self.checkpoint_behaviour(lanes, self.stop.load(Ordering::SeqCst)) {
                    self.dirty.store(true, Ordering::Relaxed);
                }
                Ok(())
            } else {
                Err(failed.join("; "))
            };
        }
        let next_seq = lanes.first().map_or(0, |l| l.next_seq);
        // Read before the book: an alert event written meanwhile is replayed at the next start.
        let ledger_seq = self.door.durable_end();
        let state = self.with_book(|book| state::snapshot(book, next_seq, ledger_seq));
        let bytes = serde_json::to_vec(&state).map_err(|e| e.to_string())?;
        let tmp = self.state_path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.state_path)
            .map_err(|e| format!("{}: {e}", self.state_path.display()))
    }
}
