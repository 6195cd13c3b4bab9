//! `STATE_DIR/state.json`: the agent's checkpoints (one position per file, journal source
//! and folder), replaced atomically and durably on every change.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{folder, journald};

/// A checkpointed position: which file (dev, inode) and the acknowledged byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Position {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) offset: u64,
    /// The end of the batch being sent, recorded before it leaves: after a crash the same
    /// bytes go again with the same `Idempotency-Key`, so the server recognises them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sending: Option<u64>,
}

/// `STATE_DIR/state.json`: one position per configured path and per journal source.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    files: BTreeMap<String, Position>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    journald: BTreeMap<String, journald::JournalPosition>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    folders: folder::FolderStates,
}

/// The state file and its atomic updates.
pub(super) struct StateStore {
    dir: PathBuf,
    state: State,
}

impl StateStore {
    pub(super) fn open(dir: &Path) -> Result<StateStore> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        let path = dir.join("state.json");
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a valid agent state file (move it away to ship the files from the start)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(StateStore {
            dir: dir.to_path_buf(),
            state,
        })
    }

    pub(super) fn get(&self, key: &str) -> Option<Position> {
        self.state.files.get(key).copied()
    }

    /// Records `pos` for `key` and makes it durable: temporary file, fsync, rename, dir fsync.
    pub(super) fn set(&mut self, key: &str, pos: Position) -> Result<()> {
        if self.state.files.get(key) == Some(&pos) {
            return Ok(());
        }
        self.state.files.insert(key.to_owned(), pos);
        self.save()
    }

    /// The checkpointed position of journal source `key`.
    pub(super) fn get_journal(&self, key: &str) -> Option<journald::JournalPosition> {
        self.state.journald.get(key).cloned()
    }

    /// Records `pos` for journal source `key` and makes it durable.
    pub(super) fn set_journal(&mut self, key: &str, pos: journald::JournalPosition) -> Result<()> {
        if self.state.journald.get(key) == Some(&pos) {
            return Ok(());
        }
        self.state.journald.insert(key.to_owned(), pos);
        self.save()
    }

    /// The checkpoint of folder `key`.
    pub(super) fn get_folder(&self, key: &str) -> Option<folder::FolderPosition> {
        self.state.folders.get(key).cloned()
    }

    /// Records `pos` for folder `key` and makes it durable.
    pub(super) fn set_folder(&mut self, key: &str, pos: folder::FolderPosition) -> Result<()> {
        if self.state.folders.get(key) == Some(&pos) {
            return Ok(());
        }
        self.state.folders.insert(key.to_owned(), pos);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state)?;
        write_durably(&self.dir, "state.json", &bytes)
    }
}

/// Replaces `dir/name` with `bytes` atomically and durably: temporary file, fsync, rename,
/// fsync of the directory.
pub(super) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}
