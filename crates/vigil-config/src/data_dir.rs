//! The data directory's layout, owned by one type.

use std::path::{Path, PathBuf};

/// A data directory, and the path of everything Vigil keeps in it. No other code joins path
/// names onto a data directory.
///
/// ```text
/// DATA_DIR/
/// ├── ledger/                     the ledger (layout: vigil_ledger::LedgerPaths): segments,
/// │                               tiles, checkpoints, keys, legal hold, LOCK
/// ├── index/                      the search index (derived: rebuilt from the ledger)
/// ├── detect/state.json           the detector's alert book and correlation state (derived)
/// ├── detect/behaviour.bin        behaviour rules' memory (derived; rebuilt from the ledger)
/// ├── decisions.json              active ban decisions (derived)
/// ├── auth/
/// │   ├── tokens.json             API tokens (hashes), and .lock for changes to it
/// │   ├── token-usage.json        tokens' last-used times
/// │   ├── users.json              web UI accounts (password hashes)
/// │   ├── initial-admin-password  the generated first admin password (mode 0600)
/// │   ├── audit-pending.jsonl     audit events of CLI changes, stored by the next server
/// │   └── audit-pending.draining  the same, while a server stores them
/// ├── builtin-rules/              Vigil's bundled Sigma rules, written at start
/// ├── demo-rules/                 the demo's Sigma rules (`serve --demo`)
/// ├── tls/cert.pem, tls/key.pem   the generated self-signed certificate (key mode 0600)
/// ├── witness/                    the C2SP witness this server runs for other logs:
/// │   ├── witness.key             its cosigning key (mode 0600), witness.vkey its verifier key
/// │   └── state.json              the latest size and root cosigned per log (fsynced first)
/// ├── server/
/// │   ├── settings.json           the settings of the last start (derived: for config_changed)
/// │   └── running                 present while a server runs (an unclean stop leaves it)
/// └── shards/<shard>/             cluster mode: one data directory (ledger/, index/) per
///                                 shard this node owns or has owned (p0, p1, …, sys)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ledger/` (its own layout is [`vigil_ledger::LedgerPaths`], which the ledger crate,
    /// below this one, owns).
    pub fn ledger(&self) -> PathBuf {
        self.ledger_paths().root().to_owned()
    }

    /// The files under `ledger/`.
    pub fn ledger_paths(&self) -> vigil_ledger::LedgerPaths {
        vigil_ledger::LedgerPaths::new(&self.root)
    }

    /// `witness/`: the C2SP witness's key and state (`vigil_respond::witness`).
    pub fn witness(&self) -> PathBuf {
        self.root.join("witness")
    }

    /// `index/` (`vigil_index::index_dir`, below this crate, names it too: a test holds them
    /// together).
    pub fn index(&self) -> PathBuf {
        self.root.join("index")
    }

    /// `detect/`.
    pub fn detect(&self) -> PathBuf {
        self.root.join("detect")
    }

    /// `detect/state.json`.
    pub fn detect_state(&self) -> PathBuf {
        self.detect().join("state.json")
    }

    /// `detect/behaviour.bin`: behaviour rules' memory (format in
    /// `vigil_detect::behaviour::persist`; a cache, rebuilt from the ledger).
    pub fn behaviour_state(&self) -> PathBuf {
        self.detect().join("behaviour.bin")
    }

    /// `reports/schedule.json`: when each scheduled report last ran (a cache; losing it sends
    /// each report once more).
    pub fn report_schedule(&self) -> PathBuf {
        self.root.join("reports").join("schedule.json")
    }

    /// `decisions.json`.
    pub fn decisions(&self) -> PathBuf {
        self.root.join("decisions.json")
    }

    /// `auth/`.
    pub fn auth(&self) -> PathBuf {
        self.root.join("auth")
    }

    /// `auth/tokens.json`.
    pub fn tokens(&self) -> PathBuf {
        self.auth().join("tokens.json")
    }

    /// `auth/.lock`.
    pub fn auth_lock(&self) -> PathBuf {
        self.auth().join(".lock")
    }

    /// `auth/token-usage.json`.
    pub fn token_usage(&self) -> PathBuf {
        self.auth().join("token-usage.json")
    }

    /// `auth/users.json`.
    pub fn users(&self) -> PathBuf {
        self.auth().join("users.json")
    }

    /// `auth/initial-admin-password`.
    pub fn initial_admin_password(&self) -> PathBuf {
        self.auth().join("initial-admin-password")
    }

    /// `auth/audit-pending.jsonl`.
    pub fn audit_pending(&self) -> PathBuf {
        self.auth().join("audit-pending.jsonl")
    }

    /// `auth/audit-pending.draining`.
    pub fn audit_draining(&self) -> PathBuf {
        self.auth().join("audit-pending.draining")
    }

    /// `builtin-rules/`.
    pub fn builtin_rules(&self) -> PathBuf {
        self.root.join("builtin-rules")
    }

    /// `demo-rules/`.
    pub fn demo_rules(&self) -> PathBuf {
        self.root.join("demo-rules")
    }

    /// `tls/`.
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// `tls/cert.pem`.
    pub fn tls_cert(&self) -> PathBuf {
        self.tls().join("cert.pem")
    }

    /// `tls/key.pem`.
    pub fn tls_key(&self) -> PathBuf {
        self.tls().join("key.pem")
    }

    /// `server/`.
    pub fn server(&self) -> PathBuf {
        self.root.join("server")
    }

    /// `server/settings.json`.
    pub fn settings(&self) -> PathBuf {
        self.server().join("settings.json")
    }

    /// `server/running`.
    pub fn running(&self) -> PathBuf {
        self.server().join("running")
    }

    /// `shards/` (cluster mode).
    pub fn shards(&self) -> PathBuf {
        self.root.join("shards")
    }

    /// `shards/<shard>/`: the data directory of one shard (its own `ledger/` and `index/`).
    /// `shard` is a shard's name (`p3`, `sys`), never a path.
    pub fn shard(&self, shard: &str) -> DataDir {
        DataDir::new(self.shards().join(shard))
    }
}

impl AsRef<Path> for DataDir {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}

impl From<PathBuf> for DataDir {
    fn from(root: PathBuf) -> DataDir {
        DataDir::new(root)
    }
}

impl From<&Path> for DataDir {
    fn from(root: &Path) -> DataDir {
        DataDir::new(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_in_the_documented_tree() {
        let d = DataDir::new("/d");
        let paths = [
            d.ledger(),
            d.index(),
            d.detect_state(),
            d.decisions(),
            d.tokens(),
            d.auth_lock(),
            d.token_usage(),
            d.users(),
            d.initial_admin_password(),
            d.audit_pending(),
            d.audit_draining(),
            d.builtin_rules(),
            d.demo_rules(),
            d.tls_cert(),
            d.tls_key(),
            d.settings(),
            d.running(),
            d.shards(),
        ];
        let doc = include_str!("data_dir.rs");
        let tree = &doc[..doc.find("pub struct DataDir").unwrap()];
        for p in paths {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(
                tree.contains(name),
                "{name} is not in DataDir's documented tree"
            );
            assert!(p.starts_with("/d"));
        }
    }

    #[test]
    fn the_lower_crates_name_their_directories_the_same() {
        let d = DataDir::new("/d");
        assert_eq!(d.index(), vigil_index::index_dir(d.root()));
        assert_eq!(d.ledger(), vigil_ledger::LedgerPaths::new(d.root()).root());
    }
}
