//! API tokens: created by `vigil token create`, stored as argon2 hashes, checked on every request.
//!
//! A token reads `vgl_<id>_<secret>`: the 8-hex-digit id is public (it is listed by `vigil token
//! list` and selects the stored entry), the secret (160 random bits) is checked against its
//! argon2id hash. A token whose id names no live entry is refused without hashing anything, so
//! a flood of guesses costs no CPU and never counts against an address's valid tokens; wrong
//! secrets for an existing id are limited per address and id
//! ([`crate::session::TokenGuessLimiter`]). Verified tokens are remembered in memory by their
//! SHA-256, compared in constant time, so argon2's deliberate slowness is paid once per token and
//! process, not per request. The file (`DATA_DIR/auth/tokens.json`, mode 0600) is re-read when it
//! changes, so `vigil token create|revoke` take effect at once while `serve` runs; verified tokens
//! that are still in it, unchanged and unrevoked, stay verified.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vigil_event::Timestamp;

use crate::error::{StoreError, UnknownRole};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read and triage.
    Analyst,
    /// Read only.
    Viewer,
    /// Send events, nothing else.
    Ingest,
    /// A CrowdSec bouncer: read ban decisions, nothing else.
    Bouncer,
}

impl Role {
    /// Parses `admin|analyst|viewer|ingest`.
    pub fn parse(s: &str) -> Result<Role, UnknownRole> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "viewer" => Ok(Role::Viewer),
            "ingest" => Ok(Role::Ingest),
            "bouncer" => Ok(Role::Bouncer),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
            Role::Bouncer => "bouncer",
        }
    }

    /// May send events.
    pub fn can_ingest(self) -> bool {
        matches!(self, Role::Admin | Role::Ingest)
    }

    /// May read ban decisions through the CrowdSec bouncer API.
    pub fn can_bounce(self) -> bool {
        matches!(self, Role::Bouncer)
    }

    /// May ban and unban by hand.
    pub fn can_ban(self) -> bool {
        matches!(self, Role::Admin | Role::Analyst)
    }

    /// May change an alert's triage state.
    pub fn can_triage(self) -> bool {
        matches!(self, Role::Admin | Role::Analyst)
    }

    /// May read events, checkpoints and metrics.
    pub fn can_read(self) -> bool {
        matches!(self, Role::Admin | Role::Analyst | Role::Viewer)
    }

    /// May manage accounts and tokens.
    pub fn can_administer(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Public id (8 hex digits), part of the token.
    pub id: String,
    /// Who or what it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// argon2id PHC string of the whole token.
    pub hash: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it was revoked, if it was.
    #[serde(default)]
    pub revoked: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenEntry>,
}

/// Where tokens live in a data directory.
pub fn tokens_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).tokens()
}

fn load(path: &Path) -> Result<Vec<TokenEntry>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<TokenFile>(&bytes)
            .map(|f| f.tokens)
            .map_err(|source| StoreError::Corrupt {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn save(path: &Path, tokens: &[TokenEntry]) -> Result<(), StoreError> {
    write_json(
        path,
        &TokenFile {
            version: 1,
            tokens: tokens.to_vec(),
        },
    )
}

/// [`write_private`] of a value as pretty JSON.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    write_private(path, &body)
}

/// Replaces `path` atomically with `body`, readable by the owner only (mode 0600), creating its
/// directory when needed.
pub fn write_private(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    file.write_all(body)
        .and_then(|_| file.sync_all())
        .map_err(|e| StoreError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}

/// Runs `change` holding an exclusive lock on `DATA_DIR/auth/.lock`, so a running server and
/// `vigil user|token` never interleave their read-modify-write of the account and token files.
pub fn with_auth_lock<T, E: From<StoreError>>(
    data_dir: &Path,
    change: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let layout = vigil_config::DataDir::new(data_dir);
    let dir = layout.auth();
    fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let path = layout.auth_lock();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    lock.lock().map_err(|e| StoreError::io(&path, e))?;
    let result = change();
    drop(lock);
    result
}

/// `n_bytes` of system randomness as lowercase hex.
pub fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    getrandom::fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token, stores its hash, and returns `(entry, token)`. The token is shown once.
pub fn create_token(
    data_dir: &Path,
    name: &str,
    role: Role,
) -> Result<(TokenEntry, String), StoreError> {
    with_auth_lock(data_dir, || create_token_unlocked(data_dir, name, role))
}

fn create_token_unlocked(
    data_dir: &Path,
    name: &str,
    role: Role,
) -> Result<(TokenEntry, String), StoreError> {
    let path = tokens_path(data_dir);
    let mut tokens = load(&path)?;
    let mut id = random_hex(4);
    while tokens.iter().any(|t| t.id == id) {
        id = random_hex(4);
    }
    let token = format!("vgl_{id}_{}", random_hex(20));
    let hash = Argon2::default()
        .hash_password(token.as_bytes())
        .map_err(|e| StoreError::Hash(format!("hashing the token: {e}")))?
        .to_string();
    let entry = TokenEntry {
        id,
        name: name.to_owned(),
        role,
        hash,
        created: Timestamp::now().to_rfc3339(),
        revoked: None,
    };
    tokens.push(entry.clone());
    save(&path, &tokens)?;
    Ok((entry, token))
}

/// Lists stored tokens (hashes included; callers print only id, name, role, dates).
pub fn list_tokens(data_dir: &Path) -> Result<Vec<TokenEntry>, StoreError> {
    load(&tokens_path(data_dir))
}

/// Revokes the token with this id or name. Returns how many were revoked.
pub fn revoke_token(data_dir: &Path, id_or_name: &str) -> Result<usize, StoreError> {
    with_auth_lock(data_dir, || revoke_token_unlocked(data_dir, id_or_name))
}

fn revoke_token_unlocked(data_dir: &Path, id_or_name: &str) -> Result<usize, StoreError> {
    let path = tokens_path(data_dir);
    let mut tokens = load(&path)?;
    let now = Timestamp::now().to_rfc3339();
    let mut n = 0;
    for t in tokens.iter_mut() {
        if (t.id == id_or_name || t.name == id_or_name) && t.revoked.is_none() {
            t.revoked = Some(now.clone());
            n += 1;
        }
    }
    if n > 0 {
        save(&path, &tokens)?;
    }
    Ok(n)
}

/// The identity behind a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id.
    pub id: String,
    /// Token name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials were sent.
    #[error("authentication required")]
    Missing,
    /// Credentials were sent but are not a valid, unrevoked token.
    #[error("invalid or revoked token")]
    Invalid,
}

/// What a `stat` says about the token file: enough to tell that it changed (it is replaced by
/// a rename, so a new version has a new inode even within one modification-time tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    /// The file's stamp; `None` when it does not exist (or cannot be read).
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

/// Which version of the tokens a cache holds: the file's stamp, or the generation of the
/// cluster's shared snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    File(Option<FileStamp>),
    Shared(u64),
}

struct Cache {
    loaded_at: Instant,
    stamp: Version,
    tokens: Vec<TokenEntry>,
    /// SHA-256 of tokens that passed argon2, with their principal and the stored hash they
    /// passed.
    verified: Vec<([u8; 32], Principal, String)>,
}

/// The server's view of the token file (or, in cluster mode, of the shared tokens).
pub struct TokenStore {
    path: PathBuf,
    /// In cluster mode: the shared tokens, in place of the file.
    shared: Option<std::sync::Arc<crate::shared::SharedAuth>>,
    cache: RwLock<Cache>,
    /// When each token (by id) was last used, and whether that changed since the last flush.
    usage: std::sync::Mutex<(std::collections::BTreeMap<String, Timestamp>, bool)>,
    /// Where the last-used times are written.
    usage_file: PathBuf,
    /// Wrong secrets for existing token ids, per address.
    guesses: crate::session::TokenGuessLimiter,
    /// How many times the token file was read after opening (for tests of the reload bound).
    reads: std::sync::atomic::AtomicU64,
}

/// Where token last-used times are kept: apart from `tokens.json`, so a busy server never
/// rewrites the token file (which `vigil token` edits) on the request path.
pub fn usage_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).token_usage()
}

/// When each token (by id) was last used, as far as a server recorded it (RFC 3339 times).
pub fn token_usage(data_dir: &Path) -> std::collections::BTreeMap<String, String> {
    fs::read(usage_path(data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// How often the token file's modification time is checked.
const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Verified tokens remembered per process (bounded memory).
const MAX_VERIFIED: usize = 4096;

impl TokenStore {
    /// Opens the token store of a data directory.
    pub fn open(data_dir: &Path) -> Result<TokenStore, StoreError> {
        Self::open_with(data_dir, None)
    }

    /// Opens the cluster's shared tokens (cluster mode): they are read from `shared`'s
    /// snapshot, kept current by its watch, and a token id the snapshot does not know is looked
    /// up in the bucket before it is refused. Last-used times stay in `data_dir` (per node).
    pub fn open_shared(
        data_dir: &Path,
        shared: std::sync::Arc<crate::shared::SharedAuth>,
    ) -> Result<TokenStore, StoreError> {
        Self::open_with(data_dir, Some(shared))
    }

    fn open_with(
        data_dir: &Path,
        shared: Option<std::sync::Arc<crate::shared::SharedAuth>>,
    ) -> Result<TokenStore, StoreError> {
        let path = tokens_path(data_dir);
        let (stamp, tokens) = match &shared {
            Some(s) => (Version::Shared(s.generation()), s.tokens()),
            None => (Version::File(FileStamp::of(&path)), load(&path)?),
        };
        let usage = token_usage(data_dir)
            .into_iter()
            .filter_map(|(id, at)| Some((id, Timestamp::parse(&at).ok()?)))
            .collect();
        Ok(TokenStore {
            path,
            shared,
            cache: RwLock::new(Cache {
                loaded_at: Instant::now(),
                stamp,
                tokens,
                verified: Vec::new(),
            }),
            usage: std::sync::Mutex::new((usage, false)),
            usage_file: usage_path(data_dir),
            guesses: crate::session::TokenGuessLimiter::default(),
            reads: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Records a use (on the request path: no allocation once the token is known, no I/O).
    fn touch(&self, id: &str) {
        let now = Timestamp::now();
        if let Ok(mut usage) = self.usage.lock() {
            let (times, dirty) = &mut *usage;
            let room = times.len() < MAX_VERIFIED;
            match times.get_mut(id) {
                Some(at) => *at = now,
                // Bounded: one entry per stored token id.
                None if room => {
                    times.insert(id.to_owned(), now);
                }
                None => return,
            }
            *dirty = true;
        }
    }

    /// When each token (by id) was last used, as this server knows it (RFC 3339).
    pub fn usage(&self) -> std::collections::BTreeMap<String, String> {
        self.usage
            .lock()
            .map(|u| {
                u.0.iter()
                    .map(|(id, at)| (id.clone(), at.to_rfc3339()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes the last-used times if any changed since the last call (the server calls this
    /// every few seconds).
    pub fn flush_usage(&self) -> Result<(), StoreError> {
        {
            let Ok(mut usage) = self.usage.lock() else {
                return Ok(());
            };
            if !usage.1 {
                return Ok(());
            }
            usage.1 = false;
        }
        write_json(&self.usage_file, &self.usage())
    }

    /// Looks at the token file if it was not looked at for [`RELOAD_CHECK`] (so revocations
    /// take effect within that time), and re-reads it if it changed.
    fn refresh(&self) {
        // The shared snapshot's generation costs nothing to compare: checked on every request,
        // so a revocation on another node holds here as soon as the watch delivered it.
        let stale = self.shared.is_some()
            || self
                .cache
                .read()
                .map(|c| c.loaded_at.elapsed() >= RELOAD_CHECK)
                .unwrap_or(true);
        if stale {
            self.reload_if_changed();
        }
    }

    /// Re-reads the token file if its stamp (modification time, length, inode) differs from
    /// the one last read: one `stat`, and a read only when the file really changed. Called for
    /// a token whose id is not in the cached file, so a token created a moment ago (`vigil
    /// token create`) works on its very first request, while a flood of made-up ids costs no
    /// more than a `stat` each.
    fn reload_if_changed(&self) {
        let stamp = match &self.shared {
            Some(s) => Version::Shared(s.generation()),
            None => Version::File(FileStamp::of(&self.path)),
        };
        // The common case of a flood of made-up ids: the file has not changed. Checked under
        // the read lock, so such a flood never serializes the verification of valid tokens.
        if self
            .cache
            .read()
            .map(|c| {
                c.stamp == stamp && (self.shared.is_some() || c.loaded_at.elapsed() < RELOAD_CHECK)
            })
            .unwrap_or(false)
        {
            return;
        }
        let mut cache = match self.cache.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        cache.loaded_at = Instant::now();
        if stamp == cache.stamp {
            return;
        }
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tokens = match &self.shared {
            Some(s) => s.tokens(),
            None => match load(&self.path) {
                Ok(tokens) => tokens,
                Err(_) => return,
            },
        };
        // Revocations take effect: a verified token stays verified only while its entry is
        // still there, unrevoked, with the hash it was verified against (other tokens being
        // created or revoked do not make the tokens in use pay argon2 again).
        cache.verified.retain_mut(|(_, principal, hash)| {
            match tokens
                .iter()
                .find(|t| t.id == principal.id && t.revoked.is_none() && t.hash == *hash)
            {
                Some(entry) => {
                    principal.name = entry.name.clone();
                    principal.role = entry.role;
                    true
                }
                None => false,
            }
        });
        cache.tokens = tokens;
        cache.stamp = stamp;
    }

    /// Whether this exact token was verified before (a cheap, constant-time check; no argon2).
    pub fn is_known(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.cache.read().is_ok_and(|cache| {
            cache
                .verified
                .iter()
                .any(|(known, _, _)| bool::from(known.ct_eq(&digest)))
        })
    }

    /// Checks a presented token. Slow (argon2) the first time a token is seen, then fast.
    pub fn verify(&self, presented: &str) -> Result<Principal, AuthError> {
        self.verify_from(presented, None)
    }

    /// [`TokenStore::verify`] for a request from `peer`: a token whose id names no live entry
    /// is refused at once (no argon2); an address that presented too many wrong secrets for
    /// one id lately is refused for that id without hashing.
    pub fn verify_from(
        &self,
        presented: &str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Principal, AuthError> {
        self.refresh();
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let known = self.cache.read().ok().and_then(|cache| {
            cache
                .verified
                .iter()
                .find(|(known, _, _)| bool::from(known.ct_eq(&digest)))
                .map(|(_, principal, _)| principal.clone())
        });
        if let Some(principal) = known {
            self.touch(&principal.id);
            return Ok(principal);
        }
        let id = presented
            .strip_prefix("vgl_")
            .and_then(|rest| rest.split('_').next())
            .ok_or(AuthError::Invalid)?;
        let find = || {
            self.cache.read().ok().and_then(|cache| {
                cache
                    .tokens
                    .iter()
                    .find(|t| t.id == id && t.revoked.is_none())
                    .cloned()
            })
        };
        // An id the cached file does not know may be a token created a moment ago: look again
        // (a `stat`, and a read only if the file changed) before refusing.
        let entry = find().or_else(|| {
            // In cluster mode, the token may have been created on another node a moment ago,
            // before the watch delivered it: ask the bucket (ids that are not 8 hex digits are
            // refused without asking).
            if let Some(shared) = &self.shared {
                shared.fetch_token(id);
            }
            self.reload_if_changed();
            find()
        });
        // Ids are public: an unknown one is refused without the cost of a hash.
        let Some(entry) = entry else {
            return Err(AuthError::Invalid);
        };
        if let Some(ip) = peer
            && self.guesses.check(ip, &entry.id).is_err()
        {
            return Err(AuthError::Invalid);
        }
        let hash = PasswordHash::new(&entry.hash).map_err(|_| AuthError::Invalid)?;
        if Argon2::default()
            .verify_password(presented.as_bytes(), &hash)
            .is_err()
        {
            if let Some(ip) = peer {
                self.guesses.failed(ip, &entry.id);
            }
            return Err(AuthError::Invalid);
        }
        let principal = Principal {
            id: entry.id.clone(),
            name: entry.name.clone(),
            role: entry.role,
        };
        if let Ok(mut cache) = self.cache.write() {
            if cache.verified.len() >= MAX_VERIFIED {
                cache.verified.remove(0);
            }
            cache
                .verified
                .push((digest, principal.clone(), entry.hash.clone()));
        }
        self.touch(&principal.id);
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let (entry, token) = create_token(dir.path(), "rsyslog", Role::Ingest).unwrap();
        assert!(token.starts_with(&format!("vgl_{}_", entry.id)));
        let stored = fs::read_to_string(tokens_path(dir.path())).unwrap();
        assert!(!stored.contains(&token), "the token itself is never stored");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(tokens_path(dir.path()))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );

        let store = TokenStore::open(dir.path()).unwrap();
        let p = store.verify(&token).unwrap();
        assert_eq!(p.role, Role::Ingest);
        assert_eq!(p.name, "rsyslog");
        assert_eq!(store.verify(&token).unwrap(), p, "cached path");
        let wrong = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(store.verify(&wrong), Err(AuthError::Invalid));
        assert_eq!(store.verify("vgl_00000000_abc"), Err(AuthError::Invalid));
        assert_eq!(store.verify("Basic xyz"), Err(AuthError::Invalid));

        assert_eq!(revoke_token(dir.path(), "rsyslog").unwrap(), 1);
        // The store notices the change within a second.
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        assert_eq!(store.verify(&token), Err(AuthError::Invalid));
    }

    #[test]
    fn a_new_token_works_at_once_and_unknown_ids_cost_only_a_stat() {
        use std::sync::atomic::Ordering::Relaxed;
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = create_token(dir.path(), "first", Role::Viewer).unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        assert!(store.verify(&first).is_ok());
        for i in 0..5 {
            // No pause: the periodic check ran a moment ago, yet the new id is found.
            let (_, token) = create_token(dir.path(), &format!("t{i}"), Role::Ingest).unwrap();
            assert_eq!(
                store.verify(&token).unwrap().role,
                Role::Ingest,
                "token {i}"
            );
        }
        let reads = store.reads.load(Relaxed);
        for i in 0..1000 {
            let guess = format!("vgl_{i:08x}_{}", random_hex(20));
            assert_eq!(store.verify(&guess), Err(AuthError::Invalid));
        }
        assert_eq!(
            store.reads.load(Relaxed),
            reads,
            "unknown ids re-read nothing while the file is unchanged"
        );
    }

    #[test]
    fn guesses_never_lock_out_a_valid_token_and_reloads_keep_tokens_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let (_, used) = create_token(dir.path(), "agent", Role::Ingest).unwrap();
        let (entry, fresh) = create_token(dir.path(), "other", Role::Viewer).unwrap();
        let mut store = TokenStore::open(dir.path()).unwrap();
        // Fewer attempts than the default, to spend fewer argon2 hashes in a debug build.
        store.guesses = crate::session::TokenGuessLimiter::new(3, Duration::from_secs(60));
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert!(store.verify_from(&used, Some(ip)).is_ok());
        // Unknown ids are refused without a hash and count against nothing.
        for i in 0..100 {
            let guess = format!("vgl_{i:08x}_{}", random_hex(20));
            assert_eq!(store.verify_from(&guess, Some(ip)), Err(AuthError::Invalid));
        }
        assert!(
            store.verify_from(&fresh, Some(ip)).is_ok(),
            "a valid uncached token"
        );
        // Wrong secrets for an existing id are limited per address and id.
        let (_, target) = create_token(dir.path(), "target", Role::Viewer).unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        let id = target.split('_').nth(1).unwrap().to_owned();
        for _ in 0..3 {
            let wrong = format!("vgl_{id}_{}", random_hex(20));
            assert_eq!(store.verify_from(&wrong, Some(ip)), Err(AuthError::Invalid));
        }
        assert_eq!(
            store.verify_from(&target, Some(ip)),
            Err(AuthError::Invalid),
            "this id is locked for this address"
        );
        let elsewhere: std::net::IpAddr = "192.0.2.8".parse().unwrap();
        assert!(store.verify_from(&target, Some(elsewhere)).is_ok());
        // The token file changed (a token created above, one revoked now): the token in use
        // stays verified, the revoked one does not.
        assert_eq!(revoke_token(dir.path(), &entry.id).unwrap(), 1);
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        assert!(store.verify_from(&used, Some(ip)).is_ok());
        assert!(store.is_known(&used), "still cached across the reload");
        assert_eq!(store.verify_from(&fresh, Some(ip)), Err(AuthError::Invalid));
        assert!(!store.is_known(&fresh));
    }
}
