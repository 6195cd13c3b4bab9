//! User accounts for the web UI: names, roles and argon2id password hashes.
//!
//! Stored in `DATA_DIR/auth/users.json` (mode 0600, replaced atomically), layout:
//!
//! ```json
//! {"version": 1, "users": [{"name": "admin", "role": "admin", "hash": "$argon2id$…",
//!   "created": "RFC 3339", "changed": "RFC 3339"}]}
//! ```
//!
//! `version` is the format's version number; a reader refuses a version it does not know. The
//! server re-reads the file when it changes, so `vigil user add|passwd|del` take effect at once,
//! and a password change or deletion ends that user's sessions.

use std::fs;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use vigil_event::Timestamp;

use crate::error::{StoreError, UserError};
use crate::token::{Role, random_hex, with_auth_lock, write_json, write_private};

/// The version of `users.json` this code writes and reads.
pub const USERS_FORMAT: u32 = 1;
/// Shortest password `vigil user add|passwd` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted anywhere (argon2 input is bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// argon2id PHC string of the password.
    pub hash: String,
    /// When the account was created (RFC 3339).
    pub created: String,
    /// When the password or role last changed (RFC 3339); sessions older than this end.
    pub changed: String,
    /// Whether the password was generated for the user (the first admin's) and must be changed
    /// before the account can do anything else; cleared by the first change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change_password: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct UsersFile {
    version: u32,
    users: Vec<User>,
}

/// Where accounts live in a data directory.
pub fn users_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).users()
}

/// Where the generated first admin password is written.
pub fn initial_password_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).initial_admin_password()
}

/// Reads every account (none when the file does not exist).
pub fn load_users(data_dir: &Path) -> Result<Vec<User>, StoreError> {
    let path = users_path(data_dir);
    match fs::read(&path) {
        Ok(bytes) => {
            let file: UsersFile =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
            if file.version != USERS_FORMAT {
                return Err(StoreError::Version {
                    path,
                    found: file.version,
                    expected: USERS_FORMAT,
                });
            }
            Ok(file.users)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn save_users(data_dir: &Path, users: &[User]) -> Result<(), StoreError> {
    write_json(
        &users_path(data_dir),
        &UsersFile {
            version: USERS_FORMAT,
            users: users.to_vec(),
        },
    )
}

pub(crate) fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidName(name.to_owned()))
    }
}

/// Checks a new password against the policy.
pub fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::PasswordTooLong);
    }
    Ok(())
}

pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(format!("hashing the password: {e}")))
}

/// A random password of 24 letters and digits (about 143 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("system randomness");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Adds an account. Fails if the name is taken.
pub fn add_user(
    data_dir: &Path,
    name: &str,
    role: Role,
    password: &str,
) -> Result<User, UserError> {
    with_auth_lock(data_dir, || {
        add_user_unlocked(data_dir, name, role, password)
    })
}

fn add_user_unlocked(
    data_dir: &Path,
    name: &str,
    role: Role,
    password: &str,
) -> Result<User, UserError> {
    check_name(name)?;
    check_password(password)?;
    if role == Role::Bouncer {
        return Err(UserError::BouncerAccount);
    }
    let mut users = load_users(data_dir)?;
    if users.iter().any(|u| u.name == name) {
        return Err(UserError::Exists(name.to_owned()));
    }
    let now = Timestamp::now().to_rfc3339();
    let user = User {
        name: name.to_owned(),
        role,
        hash: hash_password(password)?,
        created: now.clone(),
        changed: now,
        must_change_password: false,
    };
    users.push(user.clone());
    save_users(data_dir, &users)?;
    Ok(user)
}

/// Sets a new password (and optionally a new role).
pub fn set_password(
    data_dir: &Path,
    name: &str,
    password: &str,
    role: Option<Role>,
) -> Result<User, UserError> {
    check_password(password)?;
    with_auth_lock(data_dir, || {
        set_password_unlocked(data_dir, name, password, role)
    })
}

fn set_password_unlocked(
    data_dir: &Path,
    name: &str,
    password: &str,
    role: Option<Role>,
) -> Result<User, UserError> {
    let mut users = load_users(data_dir)?;
    let Some(user) = users.iter_mut().find(|u| u.name == name) else {
        return Err(UserError::NoSuchUser(name.to_owned()));
    };
    user.hash = hash_password(password)?;
    if let Some(role) = role {
        user.role = role;
    }
    user.changed = Timestamp::now().to_rfc3339();
    user.must_change_password = false;
    let user = user.clone();
    save_users(data_dir, &users)?;
    if name == "admin" {
        // The generated first password is no longer valid; do not leave it lying around.
        let _ = fs::remove_file(initial_password_path(data_dir));
    }
    Ok(user)
}

/// Deletes an account. Refuses to delete the last admin.
pub fn delete_user(data_dir: &Path, name: &str) -> Result<User, UserError> {
    with_auth_lock(data_dir, || delete_user_unlocked(data_dir, name))
}

fn delete_user_unlocked(data_dir: &Path, name: &str) -> Result<User, UserError> {
    let mut users = load_users(data_dir)?;
    let Some(at) = users.iter().position(|u| u.name == name) else {
        return Err(UserError::NoSuchUser(name.to_owned()));
    };
    if users[at].role == Role::Admin && users.iter().filter(|u| u.role == Role::Admin).count() == 1
    {
        return Err(UserError::LastAdmin(name.to_owned()));
    }
    let user = users.remove(at);
    save_users(data_dir, &users)?;
    Ok(user)
}

/// On first start (no accounts yet): creates `admin` with a generated password, written to
/// [`initial_password_path`] (mode 0600), that must be changed at the first login (the file
/// goes with the change). Returns that path when it created the account.
pub fn ensure_initial_admin(data_dir: &Path) -> Result<Option<PathBuf>, UserError> {
    with_auth_lock(data_dir, || {
        if !load_users(data_dir)?.is_empty() {
            return Ok(None);
        }
        let password = generate_password();
        let path = initial_password_path(data_dir);
        write_private(&path, format!("{password}\n").as_bytes())?;
        add_user_unlocked(data_dir, "admin", Role::Admin, &password)?;
        let mut users = load_users(data_dir)?;
        for user in users.iter_mut().filter(|u| u.name == "admin") {
            user.must_change_password = true;
        }
        save_users(data_dir, &users)?;
        Ok(Some(path))
    })
}

/// Checks a login. Takes about the same time whether or not the user exists.
pub fn verify_login(users: &[User], name: &str, password: &str) -> Option<User> {
    if password.len() > MAX_PASSWORD_BYTES {
        return None;
    }
    match users.iter().find(|u| u.name == name) {
        Some(user) => {
            let hash = PasswordHash::new(&user.hash).ok()?;
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .ok()
                .map(|_| user.clone())
        }
        None => {
            // Spend an argon2 hash's time so unknown names cannot be told apart by timing.
            let _ = Argon2::default().hash_password(password.as_bytes());
            None
        }
    }
}

/// A fresh random identifier of `n_bytes` (hex), for sessions and CSRF tokens.
pub fn random_id(n_bytes: usize) -> String {
    random_hex(n_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_login_passwd_delete() {
        let dir = tempfile::tempdir().unwrap();
        let created = ensure_initial_admin(dir.path()).unwrap().unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&created).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(users_path(dir.path()))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let first = fs::read_to_string(&created).unwrap().trim().to_owned();
        assert_eq!(ensure_initial_admin(dir.path()).unwrap(), None);
        let users = load_users(dir.path()).unwrap();
        assert!(
            verify_login(&users, "admin", &first)
                .unwrap()
                .must_change_password,
            "the generated password must be changed"
        );
        assert!(verify_login(&users, "admin", "wrong password!").is_none());
        assert!(verify_login(&users, "nobody", &first).is_none());
        let stored = fs::read_to_string(users_path(dir.path())).unwrap();
        assert!(!stored.contains(&first), "only the hash is stored");

        assert!(add_user(dir.path(), "ann", Role::Analyst, "short").is_err());
        assert!(add_user(dir.path(), "bad name", Role::Analyst, "long enough pw").is_err());
        add_user(dir.path(), "ann", Role::Analyst, "correct horse battery").unwrap();
        assert!(add_user(dir.path(), "ann", Role::Viewer, "correct horse battery").is_err());
        set_password(
            dir.path(),
            "ann",
            "another good password",
            Some(Role::Viewer),
        )
        .unwrap();
        let users = load_users(dir.path()).unwrap();
        assert!(verify_login(&users, "ann", "correct horse battery").is_none());
        let ann = verify_login(&users, "ann", "another good password").unwrap();
        assert_eq!(ann.role, Role::Viewer);

        assert!(delete_user(dir.path(), "admin").is_err(), "last admin");
        delete_user(dir.path(), "ann").unwrap();
        assert!(delete_user(dir.path(), "ann").is_err());
        let admin = set_password(dir.path(), "admin", "a brand new admin pw", None).unwrap();
        assert!(!admin.must_change_password, "changed");
        assert!(
            !fs::read_to_string(users_path(dir.path()))
                .unwrap()
                .contains("must_change")
        );
        assert!(
            !created.exists(),
            "the first password file goes once changed"
        );
    }

    #[test]
    fn errors_say_what_failed_and_whether_to_retry() {
        let dir = tempfile::tempdir().unwrap();
        add_user(dir.path(), "root", Role::Admin, "a long enough password").unwrap();
        let refused = [
            add_user(dir.path(), "root", Role::Viewer, "a long enough password").unwrap_err(),
            add_user(dir.path(), "x y", Role::Viewer, "a long enough password").unwrap_err(),
            add_user(dir.path(), "amy", Role::Viewer, "short").unwrap_err(),
            add_user(dir.path(), "edge", Role::Bouncer, "a long enough password").unwrap_err(),
            delete_user(dir.path(), "root").unwrap_err(),
            delete_user(dir.path(), "nobody").unwrap_err(),
        ];
        assert!(matches!(refused[0], UserError::Exists(ref n) if n == "root"));
        assert!(matches!(refused[1], UserError::InvalidName(_)));
        assert!(matches!(refused[2], UserError::PasswordTooShort));
        assert!(matches!(refused[3], UserError::BouncerAccount));
        assert!(matches!(refused[4], UserError::LastAdmin(_)));
        assert!(matches!(refused[5], UserError::NoSuchUser(_)));
        assert!(refused.iter().all(|e| !e.is_retryable()));
        // A file from a newer Vigil is not something a retry fixes; a file system error may be.
        fs::write(users_path(dir.path()), br#"{"version": 99, "users": []}"#).unwrap();
        let e = load_users(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::Version { found: 99, .. }), "{e}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("format version 99"), "{e}");
        fs::remove_file(users_path(dir.path())).unwrap();
        fs::create_dir(users_path(dir.path())).unwrap();
        let e = load_users(dir.path()).unwrap_err();
        assert!(
            matches!(e, StoreError::Io { .. }) && e.is_retryable(),
            "{e}"
        );
        assert_eq!(
            crate::token::Role::parse("root").unwrap_err().to_string(),
            "unknown role \"root\": use admin, analyst, viewer, ingest or bouncer"
        );
    }

    #[test]
    fn concurrent_changes_are_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || {
                    add_user(
                        &path,
                        &format!("u{i}"),
                        Role::Viewer,
                        "a long enough password",
                    )
                    .unwrap();
                    crate::token::create_token(&path, &format!("t{i}"), Role::Ingest).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(load_users(dir.path()).unwrap().len(), 6);
        assert_eq!(crate::token::list_tokens(dir.path()).unwrap().len(), 6);
    }
}
