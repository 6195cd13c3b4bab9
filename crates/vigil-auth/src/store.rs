//! Where accounts and tokens are kept: the data directory's files (standalone, the default) or
//! the cluster's shared buckets ([`crate::shared`]). `vigil user|token` and the admin API call
//! these, so the same commands act on either.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{StoreError, UserError};
use crate::shared::SharedAuth;
use crate::token::{self, Role, TokenEntry};
use crate::users::{self, User};

/// The accounts and tokens of a node.
#[derive(Clone)]
pub enum AuthStore {
    /// `DATA_DIR/auth/` (standalone).
    Files(PathBuf),
    /// The cluster's shared buckets.
    Shared(Arc<SharedAuth>),
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthStore::Files(dir) => f.debug_tuple("Files").field(dir).finish(),
            AuthStore::Shared(_) => f.write_str("Shared"),
        }
    }
}

impl AuthStore {
    /// The shared store, in cluster mode.
    pub fn shared(&self) -> Option<&Arc<SharedAuth>> {
        match self {
            AuthStore::Shared(s) => Some(s),
            AuthStore::Files(_) => None,
        }
    }

    /// Creates a token; returns `(entry, token)`. The token is shown once.
    pub fn create_token(&self, name: &str, role: Role) -> Result<(TokenEntry, String), StoreError> {
        match self {
            AuthStore::Files(dir) => token::create_token(dir, name, role),
            AuthStore::Shared(s) => s.create_token(name, role),
        }
    }

    /// Every stored token.
    pub fn list_tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        match self {
            AuthStore::Files(dir) => token::list_tokens(dir),
            AuthStore::Shared(s) => s.list_tokens(),
        }
    }

    /// Revokes the tokens with this id or name; how many were revoked.
    pub fn revoke_token(&self, id_or_name: &str) -> Result<usize, StoreError> {
        match self {
            AuthStore::Files(dir) => token::revoke_token(dir, id_or_name),
            AuthStore::Shared(s) => s.revoke_token(id_or_name),
        }
    }

    /// Every account.
    pub fn load_users(&self) -> Result<Vec<User>, StoreError> {
        match self {
            AuthStore::Files(dir) => users::load_users(dir),
            AuthStore::Shared(s) => s.load_users(),
        }
    }

    /// Adds an account.
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<User, UserError> {
        match self {
            AuthStore::Files(dir) => users::add_user(dir, name, role, password),
            AuthStore::Shared(s) => s.add_user(name, role, password),
        }
    }

    /// Sets a new password (and optionally a new role).
    pub fn set_password(
        &self,
        name: &str,
        password: &str,
        role: Option<Role>,
    ) -> Result<User, UserError> {
        match self {
            AuthStore::Files(dir) => users::set_password(dir, name, password, role),
            AuthStore::Shared(s) => s.set_password(name, password, role),
        }
    }

    /// Deletes an account (never the last admin).
    pub fn delete_user(&self, name: &str) -> Result<User, UserError> {
        match self {
            AuthStore::Files(dir) => users::delete_user(dir, name),
            AuthStore::Shared(s) => s.delete_user(name),
        }
    }

    /// Creates the first admin when there are no accounts; the generated password goes to
    /// `data_dir`'s initial password file (on the one node that created it).
    pub fn ensure_initial_admin(&self, data_dir: &Path) -> Result<Option<PathBuf>, UserError> {
        match self {
            AuthStore::Files(dir) => users::ensure_initial_admin(dir),
            AuthStore::Shared(s) => s.ensure_initial_admin(data_dir),
        }
    }
}
