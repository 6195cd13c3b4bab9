//! Accounts, API tokens and browser sessions shared by the nodes of a cluster.
//!
//! In cluster mode the files of `DATA_DIR/auth/` give way to two replicated key-value buckets
//! (JetStream KV, behind the [`SharedKv`] trait so that this crate stays free of NATS):
//!
//! - the **auth** bucket: `token.<id>` → a [`TokenEntry`] (argon2 hash, never the token) and
//!   `user.<hex of the name>` → a [`User`] (argon2 hash, never the password) — names are
//!   hex-encoded because KV keys cannot hold every character a name may (`@`);
//! - the **sessions** bucket: `s.<SHA-256 of the cookie, hex>` → a [`SharedSession`] (the cookie
//!   itself is never stored), expiring with the session's lifetime.
//!
//! Every change is a compare-and-set on one key (`create` fails when the key exists, `update`
//! when its revision moved), so two nodes never overwrite each other's change and the first
//! admin is created once however many nodes start together. Each node keeps a snapshot of the
//! auth bucket, fed by a watch of it ([`SharedAuth::apply`]): a token revoked or a password
//! changed on one node is known to every node as soon as the watch delivers it, and a token
//! or user the snapshot does not know yet is looked up in the bucket before being refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use serde::{Deserialize, Serialize};
use vigil_event::Timestamp;

use crate::error::{StoreError, UserError};
use crate::token::{Role, TokenEntry, random_hex, write_private};
use crate::users::{self, User};

/// A replicated key-value bucket (JetStream KV in cluster mode). Calls block until the store
/// answers (bounded by the implementation's timeout): call them off the async executor.
pub trait SharedKv: Send + Sync {
    /// The value and revision of `key`, or `None` when it does not exist (or was deleted).
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError>;
    /// Creates `key`; `Ok(None)` when it exists already.
    fn create(&self, key: &str, value: Vec<u8>) -> Result<Option<u64>, StoreError>;
    /// Replaces `key` if its revision is still `revision`; `Ok(None)` when it moved.
    fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> Result<Option<u64>, StoreError>;
    /// Writes `key` whatever its revision.
    fn put(&self, key: &str, value: Vec<u8>) -> Result<u64, StoreError>;
    /// Deletes `key` (nothing when it does not exist).
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The keys starting with `prefix`, at most `limit` (more is an error).
    fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;
}

/// Entries of each kind a node keeps or lists (bounded memory and time).
pub const MAX_ENTRIES: usize = 10_000;
/// How many times a compare-and-set is retried when another node changed the key meanwhile.
const CAS_ATTEMPTS: usize = 8;

/// A browser session as the sessions bucket holds it (times in Unix milliseconds, since
/// `Instant`s do not cross machines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSession {
    /// The user's name.
    pub user: String,
    /// The user's role when the session began.
    pub role: Role,
    /// The session's CSRF token (useless without the cookie, which is never stored).
    pub csrf: String,
    /// The user's `changed` stamp when the session began: a later change ends the session.
    pub user_changed: String,
    /// The password was generated and must be changed first.
    #[serde(default)]
    pub must_change_password: bool,
    /// When the session began.
    pub created_ms: i64,
    /// When the session was last seen in use (written at most every few seconds).
    pub seen_ms: i64,
}

#[derive(Default)]
struct Snapshot {
    tokens: BTreeMap<String, TokenEntry>,
    users: BTreeMap<String, User>,
    /// The users as a list, rebuilt on change (sessions check theirs on every request).
    user_list: Arc<Vec<User>>,
    /// The revision last applied per key: an older value (a read that raced a change) is not
    /// applied over a newer one, so a revocation is never undone in the snapshot.
    revisions: BTreeMap<String, u64>,
}

/// The cluster's shared accounts, tokens and sessions, with this node's snapshot of the first
/// two.
pub struct SharedAuth {
    auth: Arc<dyn SharedKv>,
    sessions: Arc<dyn SharedKv>,
    snapshot: RwLock<Snapshot>,
    generation: AtomicU64,
}

/// The key of a token id; `None` for an id that is not 8 hex digits (never looked up).
pub fn token_key(id: &str) -> Option<String> {
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("token.{id}"))
}

/// The key of a user name.
pub fn user_key(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("user.{hex}")
}

/// The key of a session, from the SHA-256 of its cookie.
pub fn session_key(digest: &[u8; 32]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("s.{hex}")
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Shared(format!("encoding: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Shared(format!("{key} is not what Vigil writes: {e}")))
}

impl SharedAuth {
    /// The shared store over its two buckets, with an empty snapshot (fill it with
    /// [`SharedAuth::apply`] from a watch, or [`SharedAuth::load_snapshot`]).
    pub fn new(auth: Arc<dyn SharedKv>, sessions: Arc<dyn SharedKv>) -> SharedAuth {
        SharedAuth {
            auth,
            sessions,
            snapshot: RwLock::new(Snapshot::default()),
            generation: AtomicU64::new(0),
        }
    }

    /// Counts changes to the snapshot: a reader compares it to know whether to look again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Applies one change of the auth bucket to the snapshot (the watch calls this for every
    /// put and delete; `None` = deleted) at its bucket `revision`. A change older than one
    /// applied before is ignored. A value that does not decode is logged and treated as absent:
    /// it grants nothing. Returns whether the snapshot changed.
    pub fn apply(&self, key: &str, value: Option<&[u8]>, revision: u64) -> bool {
        let mut snap = match self.snapshot.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if snap
            .revisions
            .get(key)
            .is_some_and(|known| *known > revision)
        {
            return false;
        }
        if snap.revisions.len() < 2 * MAX_ENTRIES || snap.revisions.contains_key(key) {
            snap.revisions.insert(key.to_owned(), revision);
        }
        let changed = if let Some(id) = key.strip_prefix("token.") {
            let entry = value.and_then(|v| match decode::<TokenEntry>(key, v) {
                Ok(t) if t.id == id => Some(t),
                Ok(_) => {
                    tracing::warn!(key, "token entry under another id's key: ignored");
                    None
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            });
            replace(&mut snap.tokens, id, entry)
        } else if key.starts_with("user.") {
            let user = value.and_then(|v| match decode::<User>(key, v) {
                Ok(u) if user_key(&u.name) == key => Some(u),
                Ok(_) => {
                    tracing::warn!(key, "account under another name's key: ignored");
                    None
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            });
            let name = user.as_ref().map(|u| u.name.clone()).or_else(|| {
                snap.users
                    .iter()
                    .find(|(n, _)| user_key(n) == key)
                    .map(|(n, _)| n.clone())
            });
            let changed = match name {
                Some(name) => replace(&mut snap.users, &name, user),
                None => false,
            };
            if changed {
                snap.user_list = Arc::new(snap.users.values().cloned().collect());
            }
            changed
        } else {
            false
        };
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    /// Fills the snapshot from the bucket (a node that has no watch running: the CLI, tests).
    pub fn load_snapshot(&self) -> Result<(), StoreError> {
        for (key, t, revision) in self.entries::<TokenEntry>("token.")? {
            self.apply(&key, Some(&encode(&t)?), revision);
        }
        for (key, u, revision) in self.entries::<User>("user.")? {
            self.apply(&key, Some(&encode(&u)?), revision);
        }
        Ok(())
    }

    /// The snapshot's tokens.
    pub fn tokens(&self) -> Vec<TokenEntry> {
        self.snapshot
            .read()
            .map(|s| s.tokens.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The snapshot's accounts.
    pub fn users(&self) -> Arc<Vec<User>> {
        self.snapshot
            .read()
            .map(|s| Arc::clone(&s.user_list))
            .unwrap_or_default()
    }

    /// Looks a token id up in the bucket (a token created on another node a moment ago) and
    /// brings the snapshot up to date with what it finds. Ids that are not 8 hex digits are
    /// not looked up.
    pub fn fetch_token(&self, id: &str) -> Option<TokenEntry> {
        let key = token_key(id)?;
        match self.auth.get(&key) {
            Ok(found) => {
                if let Some((value, revision)) = found {
                    self.apply(&key, Some(&value), revision);
                }
                self.snapshot.read().ok()?.tokens.get(id).cloned()
            }
            Err(e) => {
                tracing::warn!("looking up token {id}: {e}");
                None
            }
        }
    }

    /// Looks an account up in the bucket and brings the snapshot up to date with it.
    pub fn fetch_user(&self, name: &str) -> Option<User> {
        let key = user_key(name);
        match self.auth.get(&key) {
            Ok(found) => {
                if let Some((value, revision)) = found {
                    self.apply(&key, Some(&value), revision);
                }
                self.snapshot.read().ok()?.users.get(name).cloned()
            }
            Err(e) => {
                tracing::warn!("looking up account {name}: {e}");
                None
            }
        }
    }

    fn entries<T: for<'de> Deserialize<'de>>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T, u64)>, StoreError> {
        let mut out = Vec::new();
        for key in self.auth.keys(prefix, MAX_ENTRIES)? {
            if let Some((bytes, revision)) = self.auth.get(&key)? {
                match decode::<T>(&key, &bytes) {
                    Ok(v) => out.push((key, v, revision)),
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
        Ok(out)
    }

    // ---- tokens ------------------------------------------------------------------------------

    /// Every token in the bucket (hashes included; callers print only id, name, role, dates).
    pub fn list_tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        let mut tokens: Vec<TokenEntry> = self
            .entries::<TokenEntry>("token.")?
            .into_iter()
            .map(|(_, t, _)| t)
            .collect();
        tokens.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(tokens)
    }

    /// Creates a token, stores its hash, and returns `(entry, token)`. The token is shown once.
    pub fn create_token(&self, name: &str, role: Role) -> Result<(TokenEntry, String), StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let id = random_hex(4);
            let token = format!("vgl_{id}_{}", random_hex(20));
            let hash = Argon2::default()
                .hash_password(token.as_bytes())
                .map_err(|e| StoreError::Hash(format!("hashing the token: {e}")))?
                .to_string();
            let entry = TokenEntry {
                id: id.clone(),
                name: name.to_owned(),
                role,
                hash,
                created: Timestamp::now().to_rfc3339(),
                revoked: None,
            };
            let key = format!("token.{id}");
            let body = encode(&entry)?;
            if let Some(revision) = self.auth.create(&key, body.clone())? {
                self.apply(&key, Some(&body), revision);
                return Ok((entry, token));
            }
        }
        Err(StoreError::Shared("no free token id after 8 tries".into()))
    }

    /// Revokes the tokens with this id or name. Returns how many were revoked.
    pub fn revoke_token(&self, id_or_name: &str) -> Result<usize, StoreError> {
        let now = Timestamp::now().to_rfc3339();
        let mut n = 0;
        for (key, mut entry, mut revision) in self.entries::<TokenEntry>("token.")? {
            if entry.id != id_or_name && entry.name != id_or_name {
                continue;
            }
            for attempt in 0..CAS_ATTEMPTS {
                if entry.revoked.is_some() {
                    break;
                }
                entry.revoked = Some(now.clone());
                let body = encode(&entry)?;
                if let Some(revision) = self.auth.update(&key, body.clone(), revision)? {
                    self.apply(&key, Some(&body), revision);
                    n += 1;
                    break;
                }
                // Changed meanwhile: read it again and retry.
                match self.auth.get(&key)? {
                    Some((bytes, rev)) if attempt + 1 < CAS_ATTEMPTS => {
                        entry = decode(&key, &bytes)?;
                        revision = rev;
                    }
                    Some(_) => return Err(StoreError::Shared(format!("{key} keeps changing"))),
                    None => break,
                }
            }
        }
        Ok(n)
    }

    // ---- accounts ----------------------------------------------------------------------------

    /// Every account in the bucket.
    pub fn load_users(&self) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = self
            .entries::<User>("user.")?
            .into_iter()
            .map(|(_, u, _)| u)
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    fn create_user(&self, user: &User) -> Result<bool, StoreError> {
        let key = user_key(&user.name);
        let body = encode(user)?;
        let created = self.auth.create(&key, body.clone())?;
        if let Some(revision) = created {
            self.apply(&key, Some(&body), revision);
        }
        Ok(created.is_some())
    }

    /// Adds an account. Fails if the name is taken (on any node).
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<User, UserError> {
        users::check_name(name)?;
        users::check_password(password)?;
        if role == Role::Bouncer {
            return Err(UserError::BouncerAccount);
        }
        let now = Timestamp::now().to_rfc3339();
        let user = User {
            name: name.to_owned(),
            role,
            hash: users::hash_password(password)?,
            created: now.clone(),
            changed: now,
            must_change_password: false,
        };
        if !self.create_user(&user)? {
            return Err(UserError::Exists(name.to_owned()));
        }
        Ok(user)
    }

    /// Sets a new password (and optionally a new role): the user's sessions end on every node.
    pub fn set_password(
        &self,
        name: &str,
        password: &str,
        role: Option<Role>,
    ) -> Result<User, UserError> {
        users::check_password(password)?;
        let key = user_key(name);
        let hash = users::hash_password(password)?;
        for _ in 0..CAS_ATTEMPTS {
            let Some((bytes, revision)) = self.auth.get(&key)? else {
                return Err(UserError::NoSuchUser(name.to_owned()));
            };
            let mut user: User = decode(&key, &bytes)?;
            user.hash = hash.clone();
            if let Some(role) = role {
                user.role = role;
            }
            user.changed = Timestamp::now().to_rfc3339();
            user.must_change_password = false;
            let body = encode(&user)?;
            if let Some(revision) = self.auth.update(&key, body.clone(), revision)? {
                self.apply(&key, Some(&body), revision);
                return Ok(user);
            }
        }
        Err(StoreError::Shared(format!("{key} keeps changing")).into())
    }

    /// Deletes an account. Refuses to delete the last admin (as the bucket is read now: two
    /// admins deleting each other at the same instant on two nodes could both succeed).
    pub fn delete_user(&self, name: &str) -> Result<User, UserError> {
        let users = self.entries::<User>("user.")?;
        let Some((key, user, revision)) = users.iter().find(|(_, u, _)| u.name == name).cloned()
        else {
            return Err(UserError::NoSuchUser(name.to_owned()));
        };
        let admins = users
            .iter()
            .filter(|(_, u, _)| u.role == Role::Admin)
            .count();
        if user.role == Role::Admin && admins == 1 {
            return Err(UserError::LastAdmin(name.to_owned()));
        }
        self.auth.delete(&key)?;
        // The delete marker's revision is above the entry's: the watch delivers it later.
        self.apply(&key, None, revision);
        Ok(user)
    }

    /// On the cluster's first start (no accounts yet): creates `admin` with a generated
    /// password that must be changed at the first login. Of several nodes starting together
    /// exactly one creates it (the bucket's `create` succeeds once) and writes the password to
    /// its own `initial_password_path(data_dir)`; the others return `None` and print nothing.
    pub fn ensure_initial_admin(&self, data_dir: &Path) -> Result<Option<PathBuf>, UserError> {
        if !self.auth.keys("user.", MAX_ENTRIES)?.is_empty() {
            return Ok(None);
        }
        let password = users::generate_password();
        let now = Timestamp::now().to_rfc3339();
        let admin = User {
            name: "admin".into(),
            role: Role::Admin,
            hash: users::hash_password(&password)?,
            created: now.clone(),
            changed: now,
            must_change_password: true,
        };
        if !self.create_user(&admin)? {
            return Ok(None);
        }
        let path = users::initial_password_path(data_dir);
        write_private(&path, format!("{password}\n").as_bytes())?;
        Ok(Some(path))
    }

    // ---- sessions ----------------------------------------------------------------------------

    /// The session stored under this cookie digest, with its revision.
    pub fn session(&self, digest: &[u8; 32]) -> Result<Option<(SharedSession, u64)>, StoreError> {
        let key = session_key(digest);
        match self.sessions.get(&key)? {
            Some((bytes, revision)) => Ok(Some((decode(&key, &bytes)?, revision))),
            None => Ok(None),
        }
    }

    /// Stores a session (a new one, or one seen in use again).
    pub fn put_session(
        &self,
        digest: &[u8; 32],
        session: &SharedSession,
    ) -> Result<(), StoreError> {
        self.sessions.put(&session_key(digest), encode(session)?)?;
        Ok(())
    }

    /// Records a session's use if it is unchanged since `revision` (a session ended meanwhile
    /// stays ended); whether it was written.
    pub fn touch_session(
        &self,
        digest: &[u8; 32],
        session: &SharedSession,
        revision: u64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .sessions
            .update(&session_key(digest), encode(session)?, revision)?
            .is_some())
    }

    /// Ends a session on every node.
    pub fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.sessions.delete(&session_key(digest))
    }
}

/// Puts or removes `key` in `map` (bounded by [`MAX_ENTRIES`]); whether anything changed.
fn replace<T: PartialEq>(map: &mut BTreeMap<String, T>, key: &str, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            if map.get(key) == Some(&v) {
                return false;
            }
            if map.len() >= MAX_ENTRIES && !map.contains_key(key) {
                tracing::warn!(key, "more than {MAX_ENTRIES} shared entries: ignored");
                return false;
            }
            map.insert(key.to_owned(), v);
            true
        }
        None => map.remove(key).is_some(),
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
