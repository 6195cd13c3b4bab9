//! Reading a ledger: events by sequence number, subtree hashes, proofs and checkpoints.
//!
//! A reader takes no lock and never writes, so `vigil proof`, `vigil checkpoint` and searches
//! work while `vigil serve` appends. It sees the ledger as of [`LedgerReader::open`];
//! [`LedgerReader::refresh`] picks up what was appended since.
//!
//! A reader never shows part of an append: blocks of a write whose last block is not on disk
//! yet (a trailing run of blocks flagged `continues`) are left out. A reader made by
//! [`crate::Ledger::reader`] also never shows events before the writer has made them durable
//! (fsynced) and published its end: what the server's followers (index, detection, searches)
//! use, so they never act on a write that a failed fsync undoes or crash recovery drops.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use vigil_event::Event;

use crate::blockmap;
use crate::error::LedgerError;
use crate::files::{self, LedgerPaths, SegmentBlocks};
use crate::format::{self, GROUP_SIZE};
use crate::keys;
use crate::merkle::{self, Hash, SubtreeHashes};
use crate::note::{Checkpoint, NoteVerifier};
use crate::retention::PruneRecord;

/// A signed checkpoint as stored: the parsed body and the full note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed checkpoint body.
    pub checkpoint: Checkpoint,
    /// The whole signed note (body, blank line, signature lines).
    pub note: String,
}

/// An inclusion proof of one event, ready to print as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Sequence number (equal to the leaf index).
    pub seq: u64,
    /// Tree size the proof is against.
    pub tree_size: u64,
    /// Canonical event bytes (the leaf data).
    pub leaf: Vec<u8>,
    /// `SHA-256(0x00 ‖ leaf)`.
    pub leaf_hash: Hash,
    /// Sibling hashes from the leaf upwards.
    pub proof: Vec<Hash>,
    /// The signed checkpoint for `tree_size`.
    pub checkpoint: SignedCheckpoint,
}

impl InclusionProof {
    /// The inclusion proof JSON of DESIGN §5, shared by `GET /api/v1/proof/inclusion` and
    /// `vigil proof`: `{seq, leaf_index, tree_size, leaf (base64), leaf_hash, proof (hex),
    /// checkpoint (the signed note)}`.
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine;
        serde_json::json!({
            "seq": self.seq,
            "leaf_index": self.seq,
            "tree_size": self.tree_size,
            "leaf": base64::engine::general_purpose::STANDARD.encode(&self.leaf),
            "leaf_hash": hex(&self.leaf_hash),
            "proof": self.proof.iter().map(hex).collect::<Vec<_>>(),
            "checkpoint": self.checkpoint.note,
        })
    }
}

/// Lower-case hex of a hash.
pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read-only view of a ledger.
#[derive(Debug)]
pub struct LedgerReader {
    paths: LedgerPaths,
    segments: Vec<SegmentBlocks>,
    tiles: Vec<Hash>,
    pruned_end: u64,
    end: u64,
    open_files: HashMap<u64, File>,
    group_cache: Option<(u64, Vec<Hash>)>,
    /// The writer's durable end (published after fsync), for a reader of a live ledger in the
    /// writer's process: nothing at or past it is shown.
    durable_end: Option<Arc<AtomicU64>>,
    /// The last scan left blocks out (past the durable end, or of an incomplete write): the
    /// next refresh scans again from there.
    held_back: bool,
}

impl LedgerReader {
    /// Opens the ledger of a data directory.
    pub fn open(data_dir: &Path) -> Result<LedgerReader, LedgerError> {
        Self::open_paths(LedgerPaths::new(data_dir), None)
    }

    /// Opens a reader that never sees past `durable_end` (the live writer's published end).
    pub(crate) fn open_paths(
        paths: LedgerPaths,
        durable_end: Option<Arc<AtomicU64>>,
    ) -> Result<LedgerReader, LedgerError> {
        if !paths.root().exists() {
            return Err(LedgerError::NotInitialized {
                path: paths.root().to_owned(),
            });
        }
        let mut reader = LedgerReader {
            paths,
            segments: Vec::new(),
            tiles: Vec::new(),
            pruned_end: 0,
            end: 0,
            open_files: HashMap::new(),
            group_cache: None,
            durable_end,
            held_back: false,
        };
        reader.refresh()?;
        Ok(reader)
    }

    /// Re-reads the segment list, tiles and pruning records. Sealed segments never change, and
    /// the last known one is walked on from its last block read ([`files::extend_scan`]), as
    /// `tiles.dat` is read on from its last hash ([`files::extend_tiles`]): a follower's
    /// refresh reads what was appended since, not the open segment again. Whatever is no
    /// longer what was read (a segment or tile store cut by crash recovery and written on) is
    /// read whole again; pruning starts over.
    pub fn refresh(&mut self) -> Result<(), LedgerError> {
        // Read the durable end before scanning: everything below it is on disk for good, so
        // the scan finds it (blocks past it may be a write that is undone later).
        let durable_end = self.durable_end.as_ref().map(|d| d.load(Ordering::Acquire));
        let pruned_end = prune_records(&self.paths)?.last().map_or(0, |r| r.end);
        if pruned_end != self.pruned_end {
            self.segments.clear();
        }
        self.pruned_end = pruned_end;
        let listed = files::list_segments(&self.paths)?;
        if !self.held_back && self.unchanged_since_scan(&listed) {
            return Ok(());
        }
        // Sealed segments never change; the last one read may have grown: its walk goes on
        // from the last block read (what was appended since, not the whole segment), unless
        // the file is no longer what was read (cut by crash recovery), then it is read again.
        let resumed = match self.segments.last_mut() {
            Some(last) if listed.iter().any(|(first, _)| *first == last.first_seq) => {
                files::extend_scan(last)?
            }
            _ => false,
        };
        if !resumed {
            let keep = self.segments.len().saturating_sub(1);
            self.segments.truncate(keep);
        }
        let held = self.segments.last().map(|s| s.first_seq);
        // Files of segments scanned again are opened again too.
        self.open_files
            .retain(|&first, _| held.is_some_and(|h| first <= h));
        self.group_cache = None;
        for (first, path) in listed {
            if held.is_some_and(|h| first <= h) {
                continue;
            }
            let scanned = blockmap::load_segment(&self.paths, first, &path)?;
            if scanned.first_seq != first {
                return Err(LedgerError::corrupt(
                    &path,
                    0,
                    Some(first),
                    format!(
                        "file name says the segment starts at {first}, its header says {}",
                        scanned.first_seq
                    ),
                ));
            }
            let contiguous = self
                .segments
                .last()
                .is_none_or(|prev| prev.end_seq() == first);
            if !contiguous {
                // A gap: stop here; `vigil verify` reports it.
                break;
            }
            self.segments.push(scanned);
        }
        self.hold_back(durable_end);
        let end = self
            .segments
            .last()
            .map_or(self.pruned_end, SegmentBlocks::end_seq);
        if end != self.end {
            self.group_cache = None;
        }
        self.end = end;
        files::extend_tiles(&self.paths.tiles(), &mut self.tiles)?;
        Ok(())
    }

    /// Leaves out of the scanned segments every block of an incomplete write (a trailing run of
    /// `continues` blocks, possibly across a segment roll) and every block at or past
    /// `durable_end`; notes whether anything was left out, so the next refresh looks again.
    fn hold_back(&mut self, durable_end: Option<u64>) {
        // The end of the last complete write: the last block without the `continues` flag.
        let complete_end = self
            .segments
            .iter()
            .rev()
            .find_map(|s| {
                s.blocks
                    .iter()
                    .rev()
                    .find(|b| !b.header.continues)
                    .map(|b| b.header.end_seq())
            })
            .unwrap_or_else(|| {
                self.segments
                    .first()
                    .map_or(self.pruned_end, |s| s.first_seq)
            });
        let limit = durable_end.map_or(complete_end, |d| d.min(complete_end));
        self.held_back = false;
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.first_seq >= limit)
        {
            self.segments.pop();
            self.held_back = true;
        }
        if let Some(last) = self.segments.last_mut() {
            let keep = last.blocks.partition_point(|b| b.header.end_seq() <= limit);
            if keep < last.blocks.len() {
                last.valid_len = last.blocks[keep].offset;
                last.blocks.truncate(keep);
                // The seal (if any) follows the blocks left out.
                last.sealed_nanos = None;
                self.held_back = true;
            }
        }
    }

    /// Whether the segment files are what the last scan saw: the same files, and the last one
    /// no longer than it was (a refresh then has nothing to read; searches refresh every time).
    fn unchanged_since_scan(&self, listed: &[(u64, std::path::PathBuf)]) -> bool {
        let Some(last) = self.segments.last() else {
            return false;
        };
        let same_files = listed.len() == self.segments.len()
            && listed
                .iter()
                .zip(&self.segments)
                .all(|((first, _), s)| *first == s.first_seq);
        same_files && std::fs::metadata(&last.path).is_ok_and(|m| m.len() == last.file_len)
    }

    /// Paths of this ledger's files.
    pub fn paths(&self) -> &LedgerPaths {
        &self.paths
    }

    /// First sequence number still stored (everything before was pruned).
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(self.end, |s| s.first_seq)
    }

    /// One past the last readable sequence number (the number of events ever appended, as far
    /// as this reader can see).
    pub fn end_seq(&self) -> u64 {
        self.end
    }

    /// Segments as scanned.
    pub fn segments(&self) -> &[SegmentBlocks] {
        &self.segments
    }

    /// The ledger's verifier key.
    pub fn verifier(&self) -> Result<NoteVerifier, LedgerError> {
        keys::load_verifier(&self.paths)
    }

    /// All stored checkpoints in the order they were written (signatures not checked here).
    pub fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, LedgerError> {
        read_checkpoints(&self.paths)
    }

    /// The most recent checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, LedgerError> {
        Ok(self.checkpoints()?.pop())
    }

    /// Canonical bytes of event `seq`.
    pub fn read_raw(&mut self, seq: u64) -> Result<Vec<u8>, LedgerError> {
        let mut found = None;
        self.for_each_raw(seq..seq + 1, |_, bytes| {
            found = Some(bytes.to_vec());
            Ok(())
        })?;
        found.ok_or(LedgerError::OutOfRange {
            seq,
            first: self.first_seq(),
            end: self.end,
        })
    }

    /// Event `seq`, decoded, with `vigil.seq` set.
    pub fn read_event(&mut self, seq: u64) -> Result<Event, LedgerError> {
        let raw = self.read_raw(seq)?;
        decode_stored(seq, &raw, &self.paths)
    }

    /// Calls `f(seq, canonical bytes)` for every stored event in `range`, in order.
    pub fn for_each_raw(
        &mut self,
        range: Range<u64>,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let start = range.start.max(self.first_seq());
        let end = range.end.min(self.end);
        if start >= end {
            return Ok(());
        }
        let mut seg_idx = self.segments.partition_point(|s| s.end_seq() <= start);
        let mut seq = start;
        while seq < end && seg_idx < self.segments.len() {
            let segment = &self.segments[seg_idx];
            let Some((mut block_idx, _)) = segment.find(seq) else {
                seg_idx += 1;
                continue;
            };
            let first = segment.first_seq;
            let path = segment.path.clone();
            let file = match self.open_files.entry(first) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    File::open(&path)
                        .map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?,
                ),
            };
            let segment = &self.segments[seg_idx];
            while seq < end && block_idx < segment.blocks.len() {
                let location = segment.blocks[block_idx];
                let raw = files::read_block_raw(file, &path, &location)?;
                let events = format::split_events(&raw, location.header.n_events).map_err(|e| {
                    LedgerError::corrupt(
                        &path,
                        location.offset,
                        Some(location.header.first_seq),
                        format!("block {e}"),
                    )
                })?;
                for (i, bytes) in events.iter().enumerate() {
                    let s = location.header.first_seq + i as u64;
                    if s >= seq && s < end {
                        f(s, bytes)?;
                    }
                }
                seq = location.header.end_seq();
                block_idx += 1;
            }
            seg_idx += 1;
        }
        Ok(())
    }

    /// Calls `f(seq, canonical bytes)` for each of `seqs` (ascending, no repeats) that is
    /// stored, in order, decompressing each block at most once: how search results are fetched.
    pub fn for_each_raw_at(
        &mut self,
        seqs: &[u64],
        mut f: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut i = 0;
        while i < seqs.len() {
            let start = seqs[i];
            // The block holding `start`: fetch it whole, then take every wanted seq inside it.
            let block_end = self.block_end(start).unwrap_or(start + 1);
            let j = i + seqs[i..].partition_point(|&s| s < block_end);
            let wanted = &seqs[i..j];
            let mut k = 0;
            self.for_each_raw(start..block_end, |s, bytes| {
                while k < wanted.len() && wanted[k] < s {
                    k += 1;
                }
                if k < wanted.len() && wanted[k] == s {
                    f(s, bytes)?;
                }
                Ok(())
            })?;
            i = j.max(i + 1);
        }
        Ok(())
    }

    /// One past the last sequence number of the block holding `seq`, if it is stored.
    fn block_end(&self, seq: u64) -> Option<u64> {
        let seg_idx = self.segments.partition_point(|s| s.end_seq() <= seq);
        let segment = self.segments.get(seg_idx)?;
        let (block_idx, _) = segment.find(seq)?;
        Some(segment.blocks[block_idx].header.end_seq())
    }

    /// Leaf hashes of group `g` (up to 256; fewer for the last, partial group).
    pub fn group_leaf_hashes(&mut self, g: u64) -> Result<Vec<Hash>, LedgerError> {
        if let Some((cached, hashes)) = &self.group_cache
            && *cached == g
        {
            return Ok(hashes.clone());
        }
        let start = g * GROUP_SIZE;
        if start < self.first_seq() {
            return Err(LedgerError::Invalid(format!(
                "events {start}..{} were pruned; their leaf hashes are gone (only group hashes remain)",
                start + GROUP_SIZE
            )));
        }
        let mut hashes = Vec::with_capacity(GROUP_SIZE as usize);
        self.for_each_raw(start..start + GROUP_SIZE, |_, bytes| {
            hashes.push(merkle::leaf_hash(bytes));
            Ok(())
        })?;
        self.group_cache = Some((g, hashes.clone()));
        Ok(hashes)
    }

    /// Hash of complete group `g`: the stored tile hash when there is one, else recomputed.
    fn group_hash(&mut self, g: u64) -> Result<Hash, LedgerError> {
        if let Some(h) = self.tiles.get(g as usize) {
            return Ok(*h);
        }
        let leaves = self.group_leaf_hashes(g)?;
        if leaves.len() as u64 != GROUP_SIZE {
            return Err(LedgerError::Invalid(format!("group {g} is not complete")));
        }
        Ok(merkle::root_from_leaf_hashes(&leaves))
    }

    /// Inclusion proof of `seq` against the latest checkpoint.
    pub fn inclusion_proof(&mut self, seq: u64) -> Result<InclusionProof, LedgerError> {
        let checkpoint = self
            .latest_checkpoint()?
            .ok_or_else(|| LedgerError::Invalid("the ledger has no checkpoint yet".into()))?;
        let size = checkpoint.checkpoint.size;
        if seq >= size {
            return Err(LedgerError::Invalid(format!(
                "seq {seq} is not covered by the latest checkpoint (tree size {size}); wait for the next checkpoint"
            )));
        }
        let leaf = self.read_raw(seq)?;
        let proof = merkle::inclusion_proof(self, seq, size)?;
        Ok(InclusionProof {
            seq,
            tree_size: size,
            leaf_hash: merkle::leaf_hash(&leaf),
            leaf,
            proof,
            checkpoint,
        })
    }

    /// Consistency proof between two tree sizes.
    pub fn consistency_proof(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        if old > new || new > self.end {
            return Err(LedgerError::Invalid(format!(
                "consistency proof needs 0 < old <= new <= {} (got {old}, {new})",
                self.end
            )));
        }
        merkle::consistency_proof(self, old, new)
    }

    /// `MTH` of the first `size` leaves.
    pub fn root_at(&mut self, size: u64) -> Result<Hash, LedgerError> {
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        if size > self.end {
            return Err(LedgerError::Invalid(format!(
                "tree size {size} exceeds the {} events stored",
                self.end
            )));
        }
        self.subtree_hash(0, size)
    }
}

impl SubtreeHashes for LedgerReader {
    type Error = LedgerError;

    fn subtree_hash(&mut self, start: u64, end: u64) -> Result<Hash, LedgerError> {
        let n = end - start;
        if n == GROUP_SIZE && start.is_multiple_of(GROUP_SIZE) {
            return self.group_hash(start / GROUP_SIZE);
        }
        let g = start / GROUP_SIZE;
        if n < GROUP_SIZE && g == (end - 1) / GROUP_SIZE {
            let leaves = self.group_leaf_hashes(g)?;
            let from = (start - g * GROUP_SIZE) as usize;
            let to = (end - g * GROUP_SIZE) as usize;
            if to > leaves.len() {
                return Err(LedgerError::Invalid(format!(
                    "events up to {end} are not stored"
                )));
            }
            return Ok(merkle::root_from_leaf_hashes(&leaves[from..to]));
        }
        let k = merkle::split_point(n);
        let left = self.subtree_hash(start, start + k)?;
        let right = self.subtree_hash(start + k, end)?;
        Ok(merkle::node_hash(&left, &right))
    }
}

/// Decodes stored canonical bytes and adds `vigil.seq`.
pub(crate) fn decode_stored(
    seq: u64,
    raw: &[u8],
    paths: &LedgerPaths,
) -> Result<Event, LedgerError> {
    let mut event = Event::from_canonical(raw).map_err(|e| {
        LedgerError::corrupt(
            paths.root(),
            0,
            Some(seq),
            format!("stored event does not decode: {e}"),
        )
    })?;
    event.insert("vigil.seq", seq as i64);
    Ok(event)
}

/// Reads every stored checkpoint (body parsed, signature not checked).
pub fn read_checkpoints(paths: &LedgerPaths) -> Result<Vec<SignedCheckpoint>, LedgerError> {
    let log = files::read_record_log(&paths.checkpoints(), format::CHECKPOINTS_MAGIC)?;
    log.records
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            parse_signed_checkpoint(&bytes).map_err(|reason| {
                LedgerError::corrupt(
                    &paths.checkpoints(),
                    0,
                    None,
                    format!("checkpoint #{}: {reason}", i + 1),
                )
            })
        })
        .collect()
}

/// Parses a stored checkpoint note.
pub(crate) fn parse_signed_checkpoint(bytes: &[u8]) -> Result<SignedCheckpoint, String> {
    let note = String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8".to_string())?;
    let parsed = crate::note::parse_note(&note).map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::parse(parsed.text).map_err(|e| e.to_string())?;
    Ok(SignedCheckpoint { checkpoint, note })
}

/// Reads every pruning record (signature not checked here).
pub fn prune_records(paths: &LedgerPaths) -> Result<Vec<PruneRecord>, LedgerError> {
    let log = files::read_record_log(&paths.prunes(), format::PRUNES_MAGIC)?;
    log.records
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            String::from_utf8(bytes)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|note| PruneRecord::parse_note(&note))
                .map_err(|reason| {
                    LedgerError::corrupt(
                        &paths.prunes(),
                        0,
                        None,
                        format!("pruning record #{}: {reason}", i + 1),
                    )
                })
        })
        .collect()
}
