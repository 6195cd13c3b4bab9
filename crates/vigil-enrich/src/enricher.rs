//! The enricher: the configured files, reloaded when they change, and the snapshot every
//! ingest batch enriches with.
//!
//! [`Enricher::reload`] looks at every configured file (size and modification time) and reads
//! only those that changed; a file that fails to read keeps what it held before and records
//! why (shown by [`Enricher::status`]). The new snapshot replaces the old one atomically: a
//! batch is enriched wholly with one or the other.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use vigil_event::{Event, Timestamp};

use crate::feed::{self, Format};
use crate::geo::{self, GeoDb};
use crate::indicator::Indicator;
use crate::intel::IntelSet;
use crate::table::Table;

/// Largest indicator feed or table file read.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Largest GeoIP database read (GeoLite2-City is ~60 MiB).
pub const MAX_GEO_BYTES: u64 = 1 << 30;
/// Most files read from one configured directory.
pub const MAX_DIR_FILES: usize = 1000;

/// What to load: paths as configured (`[intel]` and `[enrich]` in vigil.toml).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Indicator feeds: files, or directories whose files are all feeds.
    pub feeds: Vec<PathBuf>,
    /// Most indicators over all feeds.
    pub max_indicators: usize,
    /// Enrichment tables (CSV).
    pub tables: Vec<PathBuf>,
    /// Most rows of one table.
    pub max_rows: usize,
    /// MaxMind DB files.
    pub geoip: Vec<PathBuf>,
}

impl Settings {
    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty() && self.tables.is_empty() && self.geoip.is_empty()
    }
}

/// What one file holds now, for the UI and API.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    /// The file.
    pub path: PathBuf,
    /// `intel`, `table` or `geoip`.
    pub role: &'static str,
    /// The format read (`plain`, `csv`, `stix`, `misp`, `csv` for tables, `mmdb`).
    pub format: &'static str,
    /// Indicators, rows, or 1 for a database, in force now.
    pub count: usize,
    /// Entries skipped as not matchable (feeds only).
    pub skipped: usize,
    /// When what is in force was loaded.
    pub loaded_at: Option<Timestamp>,
    /// The file's modification time when it was loaded.
    pub modified: Option<Timestamp>,
    /// Why the file's latest version could not be used (what is in force is the one before).
    pub error: Option<String>,
}

impl SourceStatus {
    /// As JSON for the API.
    pub fn to_json(&self) -> serde_json::Value {
        let ts = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339());
        serde_json::json!({
            "path": self.path.display().to_string(),
            "role": self.role,
            "format": self.format,
            "count": self.count,
            "skipped": self.skipped,
            "loaded_at": ts(self.loaded_at),
            "modified": ts(self.modified),
            "error": self.error,
        })
    }
}

/// Counters of what enrichment did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events that matched at least one indicator.
    pub intel_matches: AtomicU64,
    /// Events joined with a table row.
    pub table_joins: AtomicU64,
    /// Events given GeoIP/ASN fields.
    pub geo_hits: AtomicU64,
    /// Sender fields moved under `external.` because enrichment owns their names.
    pub claims_moved: AtomicU64,
    /// Reloads that changed something.
    pub reloads: AtomicU64,
}

type Stamp = (SystemTime, u64);

enum Held {
    Intel(Arc<Vec<Indicator>>),
    Table(Arc<Table>),
    Geo(Arc<GeoDb>),
}

struct FileState {
    stamp: Option<Stamp>,
    held: Option<Held>,
    status: SourceStatus,
}

/// What a batch is enriched with: an immutable view of every loaded file.
#[derive(Default)]
pub struct Snapshot {
    intel: IntelSet,
    tables: Vec<Arc<Table>>,
    geo: Vec<Arc<GeoDb>>,
    /// Whether any feed is configured (then `threat.*` names are Vigil's).
    intel_on: bool,
    /// Exact field names enrichment owns (table columns).
    owned: Vec<String>,
}

/// The host table's criticality, copied where only Vigil writes (alert severity reads it).
pub const CRITICALITY: &str = "vigil.criticality";

/// Field name prefixes only intel enrichment writes.
const INTEL_PREFIXES: &[&str] = &["threat.enrichments", "threat.indicator.", "threat.feed."];

impl Snapshot {
    /// The indicators in force.
    pub fn intel(&self) -> &IntelSet {
        &self.intel
    }

    fn owns(&self, name: &str) -> bool {
        name == CRITICALITY
            || name.starts_with("vigil.intel.")
            || (self.intel_on && INTEL_PREFIXES.iter().any(|p| name.starts_with(p)))
            || (!self.geo.is_empty()
                && geo::GEO_FIELDS.iter().any(|(_, prefix)| {
                    name.strip_prefix(prefix)
                        .and_then(|r| r.strip_prefix('.'))
                        .is_some_and(|r| r.starts_with("geo.") || r.starts_with("as."))
                }))
            || self.owned.iter().any(|o| o == name)
    }

    /// Enriches one event from outside: first moves any field enrichment owns that the sender
    /// set (under `external.`, tagged `reserved_claim`, as Vigil does for `vigil.*`), then
    /// joins tables, adds GeoIP/ASN and matches indicators. Returns what it did.
    pub fn enrich(&self, event: &mut Event, stats: &Stats) {
        let claimed: Vec<String> = event
            .fields()
            .map(|(k, _)| k)
            .filter(|k| self.owns(k))
            .map(str::to_owned)
            .collect();
        if !claimed.is_empty() {
            for name in &claimed {
                if let Some(v) = event.remove(name) {
                    event.insert(format!("external.{name}"), v);
                }
            }
            event.add_tag(vigil_event::tag::RESERVED_CLAIM);
            stats
                .claims_moved
                .fetch_add(claimed.len() as u64, Ordering::Relaxed);
        }
        let mut joined = false;
        for table in &self.tables {
            joined |= table.join(event);
        }
        if joined {
            stats.table_joins.fetch_add(1, Ordering::Relaxed);
            // Vigil's own copy, which alert severity trusts (a sender can claim `host.*` when
            // no table owns it, never `vigil.*`).
            if let Some(c) = event.get_str("host.criticality")
                && self.owned.iter().any(|o| o == "host.criticality")
            {
                let c = c.to_owned();
                event.insert(CRITICALITY, c);
            }
        }
        if !self.geo.is_empty() {
            let dbs: Vec<&GeoDb> = self.geo.iter().map(|g| g.as_ref()).collect();
            if geo::enrich(&dbs, event) {
                stats.geo_hits.fetch_add(1, Ordering::Relaxed);
            }
        }
        let matches = self.intel.matches(event);
        if !matches.is_empty() {
            stats.intel_matches.fetch_add(1, Ordering::Relaxed);
            crate::fields::write_matches(event, &matches);
        }
    }
}

/// The configured files and what they hold. Shared by the ingest pipeline (reads the
/// snapshot), the reload task and the API.
pub struct Enricher {
    settings: Settings,
    files: Mutex<BTreeMap<(u8, PathBuf), FileState>>,
    current: RwLock<Arc<Snapshot>>,
    /// Counters.
    pub stats: Stats,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("settings", &self.settings)
            .finish()
    }
}

const ROLE_INTEL: u8 = 0;
const ROLE_TABLE: u8 = 1;
const ROLE_GEO: u8 = 2;

impl Enricher {
    /// An enricher over `settings`, loaded once (errors are in [`Enricher::status`]).
    pub fn new(settings: Settings) -> Enricher {
        let e = Enricher {
            settings,
            files: Mutex::new(BTreeMap::new()),
            current: RwLock::new(Arc::new(Snapshot::default())),
            stats: Stats::default(),
        };
        e.reload();
        e
    }

    /// What was configured.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The snapshot in force (cheap: one reference count).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every file's status, intel feeds first.
    pub fn status(&self) -> Vec<SourceStatus> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.values().map(|f| f.status.clone()).collect()
    }

    /// Reads the files that changed since the last call (and drops those gone); returns the
    /// paths that changed, with the error of each that could not be used. Blocking I/O: call
    /// it off the async runtime.
    pub fn reload(&self) -> Vec<(PathBuf, Option<String>)> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let mut wanted: Vec<(u8, PathBuf)> = Vec::new();
        let mut listing_errors = Vec::new();
        for p in &self.settings.feeds {
            match feed_files(p) {
                Ok(list) => wanted.extend(list.into_iter().map(|f| (ROLE_INTEL, f))),
                Err(e) => listing_errors.push((p.clone(), e)),
            }
        }
        wanted.extend(self.settings.tables.iter().map(|p| (ROLE_TABLE, p.clone())));
        wanted.extend(self.settings.geoip.iter().map(|p| (ROLE_GEO, p.clone())));
        let mut changes = Vec::new();
        let before = files.len();
        // A path that cannot be listed stays a source (with its error), not a removal.
        files.retain(|k, _| {
            wanted.contains(k)
                || listing_errors
                    .iter()
                    .any(|(p, _)| k.0 == ROLE_INTEL && *p == k.1)
        });
        let mut changed = files.len() != before;
        for (path, error) in listing_errors {
            // A configured path that cannot be listed shows as a source with its error.
            let key = (ROLE_INTEL, path.clone());
            let state = files
                .entry(key)
                .or_insert_with(|| FileState::new(&path, ROLE_INTEL));
            if state.status.error.as_deref() != Some(error.as_str()) {
                state.status.error = Some(error.clone());
                changes.push((path, Some(error)));
            }
        }
        // Room for each feed: the cap minus what the other feeds hold.
        for key in &wanted {
            let (role, path) = key;
            let stamp = stamp_of(path, *role);
            let state = files
                .entry(key.clone())
                .or_insert_with(|| FileState::new(path, *role));
            if stamp.as_ref().ok() == state.stamp.as_ref() && state.stamp.is_some() {
                continue;
            }
            let stamp = match stamp {
                Ok(s) => s,
                Err(e) => {
                    if state.status.error.as_deref() != Some(e.as_str()) {
                        state.status.error = Some(e.clone());
                        changes.push((path.clone(), Some(e)));
                    }
                    state.stamp = None;
                    continue;
                }
            };
            state.stamp = Some(stamp);
            let loaded = match *role {
                ROLE_INTEL => load_feed(path, self.settings.max_indicators),
                ROLE_TABLE => load_table(path, self.settings.max_rows),
                _ => load_geo(path),
            };
            let now = Timestamp::now();
            match loaded {
                Ok((held, format, count, skipped)) => {
                    state.held = Some(held);
                    state.status.format = format;
                    state.status.count = count;
                    state.status.skipped = skipped;
                    state.status.loaded_at = Some(now);
                    state.status.modified = Some(Timestamp::from_nanos(nanos(stamp.0)));
                    state.status.error = None;
                    changes.push((path.clone(), None));
                    changed = true;
                }
                Err(e) => {
                    state.status.error = Some(e.clone());
                    changes.push((path.clone(), Some(e)));
                }
            }
        }
        // The cap over all feeds: a feed that would pass it is refused whole (its previous
        // list, if any, stays only if that still fits).
        let mut total = 0usize;
        let max = self.settings.max_indicators;
        for state in files.values_mut() {
            if let Some(Held::Intel(list)) = &state.held {
                if total + list.len() > max {
                    let e = format!(
                        "loading it would pass [intel] max_indicators ({max}) over all feeds; not in force"
                    );
                    state.status.error = Some(e.clone());
                    state.status.count = 0;
                    state.held = None;
                    state.stamp = None;
                    changes.push((state.status.path.clone(), Some(e)));
                } else {
                    total += list.len();
                }
            }
        }
        if changed {
            let mut indicators = Vec::with_capacity(total);
            let mut tables = Vec::new();
            let mut geo = Vec::new();
            for state in files.values() {
                match &state.held {
                    Some(Held::Intel(list)) => indicators.extend(list.iter().cloned()),
                    Some(Held::Table(t)) => tables.push(Arc::clone(t)),
                    Some(Held::Geo(g)) => geo.push(Arc::clone(g)),
                    None => {}
                }
            }
            let owned = tables
                .iter()
                .flat_map(|t| t.columns().iter().cloned())
                .collect();
            let snapshot = Snapshot {
                intel: IntelSet::new(indicators),
                tables,
                geo,
                intel_on: !self.settings.feeds.is_empty(),
                owned,
            };
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
            self.stats.reloads.fetch_add(1, Ordering::Relaxed);
        } else if self.snapshot().intel_on == self.settings.feeds.is_empty() {
            let snapshot = Snapshot {
                intel_on: !self.settings.feeds.is_empty(),
                ..Snapshot::default()
            };
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        }
        changes
    }
}

impl FileState {
    fn new(path: &Path, role: u8) -> FileState {
        FileState {
            stamp: None,
            held: None,
            status: SourceStatus {
                path: path.to_owned(),
                role: match role {
                    ROLE_INTEL => "intel",
                    ROLE_TABLE => "table",
                    _ => "geoip",
                },
                format: "",
                count: 0,
                skipped: 0,
                loaded_at: None,
                modified: None,
                error: None,
            },
        }
    }
}

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The feed files of a configured path: the file, or a directory's regular files (not
/// hidden, not editor backups), sorted; in a MISP feed directory (one with `manifest.json`)
/// only the manifest, which names its event files.
fn feed_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let manifest = path.join("manifest.json");
    if manifest.is_file() {
        return Ok(vec![manifest]);
    }
    let mut out = Vec::new();
    let dir = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".tmp") {
            continue;
        }
        if entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink())
        {
            out.push(entry.path());
            if out.len() > MAX_DIR_FILES {
                return Err(format!(
                    "{}: more than {MAX_DIR_FILES} files; split the feeds into directories",
                    path.display()
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file's (modification time, length); for a MISP manifest, also its directory's JSON
/// files, so a changed event file is picked up.
fn stamp_of(path: &Path, role: u8) -> Result<Stamp, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut stamp = (
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
    );
    if role == ROLE_INTEL
        && path.file_name().is_some_and(|n| n == "manifest.json")
        && let Some(dir) = path.parent().and_then(|d| std::fs::read_dir(d).ok())
    {
        for entry in dir.flatten().take(feed::MAX_MANIFEST_EVENTS + 1) {
            if let Ok(m) = entry.metadata() {
                let t = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                stamp.0 = stamp.0.max(t);
                stamp.1 = stamp.1.wrapping_add(m.len().wrapping_mul(31));
            }
        }
    }
    Ok(stamp)
}

/// Reads at most `max` bytes of a file, or says it is larger.
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("{}: larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}

type Loaded = (Held, &'static str, usize, usize);

fn load_feed(path: &Path, max: usize) -> Result<Loaded, String> {
    let bytes = read_capped(path, MAX_FILE_BYTES)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let provider = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = Format::detect(&name, &bytes);
    let at = |e: feed::FeedError| format!("{}: {e}", path.display());
    let parsed = if format == Format::Misp && name == "manifest.json" {
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
        if !feed::is_misp_manifest(&doc) {
            return Err(format!("{}: not a MISP feed manifest", path.display()));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let provider = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(provider);
        let mut all = feed::Parsed::default();
        for file in feed::misp_manifest_events(&doc, feed::MAX_MANIFEST_EVENTS).map_err(at)? {
            let p = dir.join(&file);
            let bytes = read_capped(&p, MAX_FILE_BYTES)?;
            let room = max.saturating_sub(all.indicators.len());
            let one = feed::parse(Format::Misp, &bytes, &provider, room)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            all.indicators.extend(one.indicators);
            all.skipped += one.skipped;
        }
        all
    } else {
        feed::parse(format, &bytes, &provider, max).map_err(at)?
    };
    let count = parsed.indicators.len();
    Ok((
        Held::Intel(Arc::new(parsed.indicators)),
        format.as_str(),
        count,
        parsed.skipped,
    ))
}

fn load_table(path: &Path, max: usize) -> Result<Loaded, String> {
    let bytes = read_capped(path, MAX_FILE_BYTES)?;
    let table = Table::parse(&bytes, max).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = table.len();
    Ok((Held::Table(Arc::new(table)), "csv", n, 0))
}

fn load_geo(path: &Path) -> Result<Loaded, String> {
    let bytes = read_capped(path, MAX_GEO_BYTES)?;
    let db =
        GeoDb::open(bytes).map_err(|e| format!("{}: not a MaxMind DB: {e}", path.display()))?;
    Ok((Held::Geo(Arc::new(db)), "mmdb", 1, 0))
}

#[cfg(test)]
mod tests;
