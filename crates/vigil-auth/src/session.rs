//! Web UI sessions and login rate limiting.
//!
//! A login creates a session: a 256-bit random id sent to the browser in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` under TLS), and a separate random CSRF token the UI sends
//! back in `X-CSRF-Token` with every state-changing request. The server keeps only the SHA-256
//! of the session id, so a memory dump does not yield usable cookies. Sessions end after
//! `idle` without use, after `max` in any case, at logout, and when the user's password or role
//! changes or the user is deleted. They live in memory (bounded): a restart logs everyone out.
//! In cluster mode they live in the cluster's sessions bucket instead ([`crate::shared`]): a
//! login on one node holds on every node, a logout on any node ends it everywhere at once (each
//! request reads the session from the bucket), and a node's restart logs no one out.
//!
//! Failed logins are limited per source address (IPv6 per /64): after
//! [`LoginLimiter::MAX_FAILURES`] failures within [`LoginLimiter::WINDOW`], further attempts
//! are refused until the window has passed. They are also limited per account, from any
//! address ([`AccountLimiter`]), against guessing spread over many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vigil_event::Timestamp;

use crate::error::Limited;
use crate::token::Role;
use crate::users::{self, User};

/// The session cookie's name.
pub const COOKIE: &str = "vigil_session";
/// Sessions kept at once; the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;

/// What a request's session says about its user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionView {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// The CSRF token of this session.
    pub csrf: String,
    /// When the session ends if it stays in use (RFC 3339).
    pub expires: String,
    /// The user logged in with a generated password: until it is changed, the session may
    /// only change it (and load the UI that does so).
    pub must_change_password: bool,
}

impl SessionView {
    /// `{"user", "role", "csrf", "expires", "must_change_password"}`, as the login and session
    /// routes answer.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

struct Session {
    user: String,
    role: Role,
    csrf: String,
    /// The user's `changed` stamp when the session began.
    user_changed: String,
    /// The user's password was generated and must be changed first.
    must_change_password: bool,
    created: Instant,
    last_seen: Instant,
}

struct UsersCache {
    checked: Instant,
    modified: Option<SystemTime>,
    users: std::sync::Arc<Vec<User>>,
}

/// Sessions and the accounts behind them.
pub struct SessionStore {
    data_dir: PathBuf,
    /// In cluster mode: sessions and accounts from the cluster's buckets.
    shared: Option<std::sync::Arc<crate::shared::SharedAuth>>,
    idle: Duration,
    max: Duration,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    users: Mutex<UsersCache>,
}

fn digest(session_id: &str) -> [u8; 32] {
    Sha256::digest(session_id.as_bytes()).into()
}

impl SessionStore {
    /// A store for the accounts of `data_dir`; sessions end after `idle` unused or `max` old.
    pub fn new(data_dir: &Path, idle: Duration, max: Duration) -> SessionStore {
        SessionStore {
            data_dir: data_dir.to_owned(),
            shared: None,
            idle,
            max,
            sessions: Mutex::new(HashMap::new()),
            users: Mutex::new(UsersCache {
                checked: Instant::now() - Duration::from_secs(60),
                modified: None,
                users: Default::default(),
            }),
        }
    }

    /// Sessions and accounts of the cluster (cluster mode): kept in `shared`'s buckets, with
    /// the same `idle` and `max` limits, measured in wall-clock time.
    pub fn new_shared(
        shared: std::sync::Arc<crate::shared::SharedAuth>,
        idle: Duration,
        max: Duration,
    ) -> SessionStore {
        let mut store = SessionStore::new(Path::new(""), idle, max);
        store.shared = Some(shared);
        store
    }

    /// The current accounts, re-read when `users.json` changed (checked at most once a second);
    /// in cluster mode, this node's snapshot of the shared accounts.
    pub fn users(&self) -> std::sync::Arc<Vec<User>> {
        if let Some(shared) = &self.shared {
            return shared.users();
        }
        let mut cache = match self.users.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if cache.checked.elapsed() >= Duration::from_secs(1) {
            cache.checked = Instant::now();
            let path = users::users_path(&self.data_dir);
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if modified != cache.modified || modified.is_none() {
                match users::load_users(&self.data_dir) {
                    Ok(users) => {
                        cache.users = std::sync::Arc::new(users);
                        cache.modified = modified;
                    }
                    Err(e) => tracing::error!("cannot read accounts: {e}"),
                }
            }
        }
        std::sync::Arc::clone(&cache.users)
    }

    /// [`Self::users`] for checking `name`'s password: in cluster mode `name` is read from the
    /// bucket first (a login must see an account or password made on another node a moment
    /// ago; one read per login), falling back to the snapshot when the bucket does not answer.
    pub fn users_for(&self, name: &str) -> std::sync::Arc<Vec<User>> {
        if let Some(shared) = &self.shared {
            shared.fetch_user(name);
        }
        self.users()
    }

    /// Makes the next [`Self::users`] re-read the accounts (after this server changed them).
    pub fn reload_users(&self) {
        let mut cache = match self.users.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        cache.checked = Instant::now() - Duration::from_secs(60);
        cache.modified = None;
    }

    /// Starts a session for a verified user; returns the cookie value and the session's view.
    pub fn create(&self, user: &User) -> (String, SessionView) {
        let id = users::random_id(32);
        let csrf = users::random_id(32);
        if let Some(shared) = &self.shared {
            return self.create_shared(shared, user, id, csrf);
        }
        let now = Instant::now();
        let session = Session {
            user: user.name.clone(),
            role: user.role,
            csrf: csrf.clone(),
            user_changed: user.changed.clone(),
            must_change_password: user.must_change_password,
            created: now,
            last_seen: now,
        };
        let view = self.view(&session);
        let mut sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| !self.expired(s, now));
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(digest(&id), session);
        (id, view)
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) >= self.idle || now.duration_since(s.created) >= self.max
    }

    fn view(&self, s: &Session) -> SessionView {
        let left = self
            .idle
            .min(self.max.saturating_sub(s.created.elapsed()))
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        SessionView {
            user: s.user.clone(),
            role: s.role,
            csrf: s.csrf.clone(),
            expires: Timestamp::from_nanos(Timestamp::now().as_nanos().saturating_add(left))
                .to_rfc3339(),
            must_change_password: s.must_change_password,
        }
    }

    /// The live session behind a cookie value, refreshed (its idle clock restarts). Expired
    /// sessions, and those of users who were deleted or changed since, are removed.
    pub fn lookup(&self, session_id: &str) -> Option<SessionView> {
        if session_id.len() != 64 {
            return None;
        }
        let key = digest(session_id);
        if let Some(shared) = &self.shared {
            return self.lookup_shared(shared, &key);
        }
        let users = self.users();
        let mut sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let session = sessions.get_mut(&key)?;
        let current = users
            .iter()
            .any(|u| u.name == session.user && u.changed == session.user_changed);
        if self.expired(session, now) || !current {
            sessions.remove(&key);
            return None;
        }
        session.last_seen = now;
        let view = self.view(session);
        Some(view)
    }

    /// Whether `presented` is this session's CSRF token (constant-time).
    pub fn csrf_matches(view: &SessionView, presented: &str) -> bool {
        view.csrf.len() == presented.len()
            && bool::from(view.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Ends a session; returns its user if there was one.
    pub fn remove(&self, session_id: &str) -> Option<String> {
        if let Some(shared) = &self.shared {
            let key = digest(session_id);
            let (session, _) = shared.session(&key).ok().flatten()?;
            if let Err(e) = shared.delete_session(&key) {
                tracing::error!("ending a session: {e}");
                return None;
            }
            return Some(session.user);
        }
        let mut sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        sessions.remove(&digest(session_id)).map(|s| s.user)
    }

    /// Live sessions (for metrics; in cluster mode 0: they live in the cluster's bucket).
    pub fn len(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Wall-clock milliseconds (shared sessions are compared across machines).
fn now_ms() -> i64 {
    Timestamp::now().as_nanos() / 1_000_000
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Cluster mode: sessions in the shared bucket.
impl SessionStore {
    fn create_shared(
        &self,
        shared: &crate::shared::SharedAuth,
        user: &User,
        id: String,
        csrf: String,
    ) -> (String, SessionView) {
        let now = now_ms();
        let record = crate::shared::SharedSession {
            user: user.name.clone(),
            role: user.role,
            csrf,
            user_changed: user.changed.clone(),
            must_change_password: user.must_change_password,
            created_ms: now,
            seen_ms: now,
        };
        if let Err(e) = shared.put_session(&digest(&id), &record) {
            // The cookie then opens nothing: the next request is asked to log in again.
            tracing::error!("storing a session in the cluster: {e}");
        }
        let view = self.shared_view(&record, now);
        (id, view)
    }

    fn shared_view(&self, s: &crate::shared::SharedSession, now: i64) -> SessionView {
        let left = millis(self.idle).min(millis(self.max).saturating_sub(now - s.created_ms));
        SessionView {
            user: s.user.clone(),
            role: s.role,
            csrf: s.csrf.clone(),
            expires: Timestamp::from_nanos(
                Timestamp::now()
                    .as_nanos()
                    .saturating_add(left.max(0).saturating_mul(1_000_000)),
            )
            .to_rfc3339(),
            must_change_password: s.must_change_password,
        }
    }

    /// Reads the session from the bucket on every request (so a logout on any node holds at
    /// once), ends it when expired or when its user changed, and records its use at most every
    /// [`touch_every`] (a compare-and-set: a session ended meanwhile is not brought back).
    fn lookup_shared(
        &self,
        shared: &crate::shared::SharedAuth,
        key: &[u8; 32],
    ) -> Option<SessionView> {
        let (mut session, revision) = match shared.session(key) {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!("reading a session from the cluster: {e}");
                return None;
            }
        };
        let now = now_ms();
        let expired = now.saturating_sub(session.seen_ms) >= millis(self.idle)
            || now.saturating_sub(session.created_ms) >= millis(self.max);
        let current = |u: &User| u.name == session.user && u.changed == session.user_changed;
        // The snapshot may lag a change made on another node a moment ago: ask the bucket
        // before ending a session over it.
        let live = !expired
            && (self.users().iter().any(current)
                || shared
                    .fetch_user(&session.user)
                    .is_some_and(|u| current(&u)));
        if !live {
            if let Err(e) = shared.delete_session(key) {
                tracing::warn!("ending a session in the cluster: {e}");
            }
            return None;
        }
        if now.saturating_sub(session.seen_ms) >= millis(touch_every(self.idle)) {
            session.seen_ms = now;
            if let Err(e) = shared.touch_session(key, &session, revision) {
                tracing::warn!("recording a session's use in the cluster: {e}");
            }
        }
        Some(self.shared_view(&session, now))
    }
}

/// How often a shared session's use is written: a tenth of the idle limit, at most 30 s (the
/// idle limit holds within that much).
fn touch_every(idle: Duration) -> Duration {
    (idle / 10).min(Duration::from_secs(30))
}

/// Failures counted per key within a window; a key that failed too often is refused until the
/// window (which starts at its first failure) has passed. Bounded: at most [`MAX_TRACKED`]
/// keys.
struct FailureCounter<K> {
    failures: Mutex<HashMap<K, (u32, Instant)>>,
    max_failures: u32,
    window: Duration,
}

fn limited(retry_after_secs: u64) -> Limited {
    Limited { retry_after_secs }
}

/// Keys tracked at once (bounded memory).
const MAX_TRACKED: usize = 100_000;

impl<K: std::hash::Hash + Eq> FailureCounter<K> {
    fn new(max_failures: u32, window: Duration) -> Self {
        FailureCounter {
            failures: Mutex::new(HashMap::new()),
            max_failures,
            window,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<K, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check(&self, key: &K) -> Result<(), u64> {
        match self.map().get(key) {
            Some((n, since)) if *n >= self.max_failures => {
                match self.window.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => Err(left.as_secs().max(1)),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn failed(&self, key: K) {
        let mut map = self.map();
        let now = Instant::now();
        if map.len() >= MAX_TRACKED {
            // Forget what has expired, then what is not blocked: a flood of fresh keys cannot
            // lift a block that is in force, unless blocked keys alone fill the table.
            map.retain(|_, (_, since)| since.elapsed() < self.window);
            if map.len() >= MAX_TRACKED {
                map.retain(|_, (n, _)| *n >= self.max_failures);
            }
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(key).or_insert((0, now));
        if entry.1.elapsed() >= self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    fn succeeded(&self, key: &K) {
        self.map().remove(key);
    }
}

/// Failed-authentication bookkeeping per source address.
pub struct LoginLimiter(FailureCounter<IpAddr>);

impl Default for LoginLimiter {
    /// The limit for logins: [`LoginLimiter::MAX_FAILURES`] in [`LoginLimiter::WINDOW`].
    fn default() -> Self {
        LoginLimiter::new(Self::MAX_FAILURES, Self::WINDOW)
    }
}

/// IPv6 addresses count per /64 (one host usually has a whole /64).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
    }
}

impl LoginLimiter {
    /// Failures allowed per address within [`Self::WINDOW`].
    pub const MAX_FAILURES: u32 = 5;
    /// The window failures are counted in.
    pub const WINDOW: Duration = Duration::from_secs(300);

    /// A limiter allowing `max_failures` per address within `window`.
    pub fn new(max_failures: u32, window: Duration) -> LoginLimiter {
        LoginLimiter(FailureCounter::new(max_failures, window))
    }

    /// The limit for invalid API tokens and session cookies: generous for a client whose
    /// token was just revoked or whose session expired, but it keeps a flood of guesses from
    /// costing an argon2 hash or an audit event each.
    pub fn for_tokens() -> LoginLimiter {
        LoginLimiter::new(30, Duration::from_secs(60))
    }

    /// `Err` (with the time to wait) when this address has failed too often lately.
    pub fn check(&self, ip: IpAddr) -> Result<(), Limited> {
        self.0.check(&limit_key(ip)).map_err(limited)
    }

    /// Records a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        self.0.failed(limit_key(ip));
    }

    /// A successful login clears the address's failures.
    pub fn succeeded(&self, ip: IpAddr) {
        self.0.succeeded(&limit_key(ip));
    }
}

/// Wrong secrets presented for an existing token id, per address and id: verifying such a token
/// costs an argon2 hash, so each address gets [`TokenGuessLimiter::MAX_FAILURES`] attempts per id
/// within [`TokenGuessLimiter::WINDOW`]. Tokens whose id does not exist cost nothing to refuse and
/// are not counted here, so guesses never lock out the valid tokens of an address.
pub struct TokenGuessLimiter(FailureCounter<(IpAddr, String)>);

impl Default for TokenGuessLimiter {
    fn default() -> Self {
        TokenGuessLimiter(FailureCounter::new(Self::MAX_FAILURES, Self::WINDOW))
    }
}

impl TokenGuessLimiter {
    /// Wrong secrets allowed per address and token id within [`Self::WINDOW`].
    pub const MAX_FAILURES: u32 = 30;
    /// The window wrong secrets are counted in.
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// A limiter allowing `max_failures` wrong secrets per address and id within `window`.
    pub fn new(max_failures: u32, window: Duration) -> TokenGuessLimiter {
        TokenGuessLimiter(FailureCounter::new(max_failures, window))
    }

    /// `Err` (with the time to wait) when `ip` presented too many wrong secrets for token `id`
    /// lately.
    pub fn check(&self, ip: IpAddr, id: &str) -> Result<(), Limited> {
        self.0
            .check(&(limit_key(ip), id.to_owned()))
            .map_err(limited)
    }

    /// Records a wrong secret for token `id` from `ip`.
    pub fn failed(&self, ip: IpAddr, id: &str) {
        self.0.failed((limit_key(ip), id.to_owned()));
    }
}

/// Failed logins per account, from any address: a guessing campaign spread over many
/// addresses (each under [`LoginLimiter`]'s limit) still stops after
/// [`AccountLimiter::MAX_FAILURES`] failures within [`AccountLimiter::WINDOW`]. Names that are
/// not accounts are counted alike, so the answer does not tell which names exist.
///
/// So that guessing cannot lock the owner out (an attacker could keep any account, the admin
/// included, locked from anywhere), an address the account logged in from successfully within
/// [`AccountLimiter::REMEMBER`] is still let through while the account is locked (its own
/// per-address limit still applies). The memory is in the server's memory only.
pub struct AccountLimiter {
    failures: FailureCounter<String>,
    /// `(account, address /64)` → last successful login.
    known: Mutex<HashMap<(String, IpAddr), Instant>>,
}

impl Default for AccountLimiter {
    fn default() -> Self {
        AccountLimiter {
            failures: FailureCounter::new(Self::MAX_FAILURES, Self::WINDOW),
            known: Mutex::new(HashMap::new()),
        }
    }
}

impl AccountLimiter {
    /// Failures allowed per account within [`Self::WINDOW`].
    pub const MAX_FAILURES: u32 = 10;
    /// The window failures are counted in (from the first).
    pub const WINDOW: Duration = Duration::from_secs(900);
    /// How long an address the account logged in from stays trusted while it is locked.
    pub const REMEMBER: Duration = Duration::from_secs(30 * 86_400);

    /// `Err` (with the time to wait) when this account has failed too often lately and `ip`
    /// is not an address it logged in from before.
    pub fn check(&self, user: &str, ip: IpAddr) -> Result<(), Limited> {
        let wait = match self.failures.check(&user.to_owned()).map_err(limited) {
            Ok(()) => return Ok(()),
            Err(wait) => wait,
        };
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match known.get(&(user.to_owned(), limit_key(ip))) {
            Some(at) if at.elapsed() < Self::REMEMBER => Ok(()),
            _ => Err(wait),
        }
    }

    /// Records a failed login for `user`.
    pub fn failed(&self, user: &str) {
        self.failures.failed(user.to_owned());
    }

    /// A successful login from `ip` clears the account's failures and remembers the address.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        self.failures.succeeded(&user.to_owned());
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= MAX_TRACKED {
            known.retain(|_, at| at.elapsed() < Self::REMEMBER);
            if known.len() >= MAX_TRACKED {
                known.clear();
            }
        }
        known.insert((user.to_owned(), limit_key(ip)), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end_with_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let user =
            users::add_user(dir.path(), "ann", Role::Analyst, "correct horse battery").unwrap();
        let store = SessionStore::new(
            dir.path(),
            Duration::from_millis(300),
            Duration::from_secs(3600),
        );
        let (id, view) = store.create(&user);
        assert_eq!(store.lookup(&id).unwrap().csrf, view.csrf);
        let json = view.to_json();
        assert_eq!(json["user"], "ann");
        assert_eq!(json["role"], "analyst");
        assert_eq!(json["csrf"], view.csrf.as_str());
        assert!(json["expires"].as_str().unwrap().ends_with('Z'));
        assert!(SessionStore::csrf_matches(&view, &view.csrf));
        assert!(!SessionStore::csrf_matches(&view, "nope"));
        assert_eq!(store.lookup(&"0".repeat(64)), None);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(store.lookup(&id), None, "idle expiry");

        let (id, _) = store.create(&user);
        assert!(store.lookup(&id).is_some());
        // A password change ends the session (the users file is re-read after a second).
        std::thread::sleep(Duration::from_millis(100));
        users::set_password(dir.path(), "ann", "a different password", None).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(store.lookup(&id), None);

        let user = users::load_users(dir.path()).unwrap().remove(0);
        let (id, _) = store.create(&user);
        assert_eq!(store.remove(&id).as_deref(), Some("ann"));
        assert_eq!(store.lookup(&id), None, "logout");
    }

    #[test]
    fn limiter_blocks_after_repeated_failures_per_address() {
        let limiter = LoginLimiter::default();
        let a: IpAddr = "203.0.113.9".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b2: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..LoginLimiter::MAX_FAILURES {
            assert!(limiter.check(a).is_ok());
            limiter.failed(a);
            limiter.failed(b);
        }
        assert!(limiter.check(a).unwrap_err().retry_after_secs > 0);
        assert!(limiter.check(b2).is_err(), "same /64");
        assert!(limiter.check("198.51.100.1".parse().unwrap()).is_ok());
        limiter.succeeded(a);
        assert!(limiter.check(a).is_ok());
    }

    #[test]
    fn account_limiter_counts_per_name_and_clears_on_success() {
        let limiter = AccountLimiter::default();
        let (home, attacker): (IpAddr, IpAddr) = (
            "192.0.2.10".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        );
        limiter.succeeded("root", home);
        for _ in 0..AccountLimiter::MAX_FAILURES {
            assert!(limiter.check("root", attacker).is_ok());
            limiter.failed("root");
        }
        let wait = limiter
            .check("root", attacker)
            .unwrap_err()
            .retry_after_secs;
        assert!(wait > 0 && wait <= AccountLimiter::WINDOW.as_secs());
        assert!(limiter.check("root", home).is_ok(), "the owner's address");
        assert!(limiter.check("Root", attacker).is_ok(), "names are exact");
        assert!(limiter.check("ann", attacker).is_ok());
        limiter.succeeded("root", home);
        assert!(limiter.check("root", attacker).is_ok());
    }
}
