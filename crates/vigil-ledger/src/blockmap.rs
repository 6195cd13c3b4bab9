//! Block maps: where each block of a sealed segment sits, kept beside the ledger so that a
//! reader finds the block holding an event without walking the segment's block headers.
//!
//! Opening a reader used to walk every block header of every segment (about 25,000 blocks per
//! 6 million events); a search for four events paid for the whole walk. A sealed segment never
//! changes, so the writer saves its walk once, as `ledger/blockmaps/<first seq>.blocks`
//! (layout in `FORMAT.md`, "Block map"), when it seals the segment, and at start-up for sealed
//! segments that have none (ledgers written before block maps). A reader loads the map instead
//! of walking the segment when the map names the segment exactly (same segment header, same file
//! length) and its own checks pass; otherwise it walks the segment as before. Only the last
//! (unsealed) segment is always walked.
//!
//! A block map is a cache, never a proof: it is not signed, not fsynced, and nothing is believed
//! because of it. Every block read through it is still checked against the segment (the header
//! found at the offset must be the one the map names, and its CRC must hold), and `vigil verify`
//! never reads block maps. A damaged or stale map costs a walk, nothing else.

use std::fs::{self, File};
use std::io::{self, Read};

use std::path::{Path, PathBuf};

use crate::files::{BlockLocation, LedgerPaths, SegmentBlocks};
use crate::format::{self, BlockKind, SEGMENT_HEADER_LEN};

/// Magic of a block map file.
pub const BLOCKMAP_MAGIC: &[u8; 8] = b"VIGILBMP";
/// Block map format version written and read.
pub const BLOCKMAP_VERSION: u8 = 1;
/// Bytes before the block headers: magic, version, reserved, segment header, file length,
/// block count.
const PREFIX_LEN: usize = 16 + SEGMENT_HEADER_LEN + 8 + 8;
/// A map larger than this is not read (a 64 MiB segment of one-event blocks needs ~8 MiB).
const MAX_MAP_BYTES: u64 = 64 << 20;
/// A seal block's stored bytes: its header and its 8-byte payload.
const SEAL_LEN: usize = format::BLOCK_HEADER_LEN + 8;

/// `DATA_DIR/ledger/blockmaps`.
pub fn blockmaps_dir(paths: &LedgerPaths) -> PathBuf {
    paths.root().join("blockmaps")
}

/// The block map of the segment starting at `first_seq`.
pub fn blockmap_path(paths: &LedgerPaths, first_seq: u64) -> PathBuf {
    blockmaps_dir(paths).join(format!("{first_seq:020}.blocks"))
}

/// The bytes of the block map of a scanned, sealed segment whose walk found nothing wrong,
/// given the segment's header and its seal block (header and payload, as stored); `None` for
/// any other segment (unsealed, or with a damaged tail), which gets no map.
pub fn encode(
    segment_header: &[u8; SEGMENT_HEADER_LEN],
    seal: &[u8; SEAL_LEN],
    scanned: &SegmentBlocks,
) -> Option<Vec<u8>> {
    scanned.sealed_nanos?;
    if scanned.tail_problem.is_some() || scanned.valid_len != scanned.file_len {
        return None;
    }
    let n = scanned.blocks.len() as u64;
    let mut out = Vec::with_capacity(PREFIX_LEN + (scanned.blocks.len() + 1) * 32 + 12);
    out.extend_from_slice(BLOCKMAP_MAGIC);
    out.push(BLOCKMAP_VERSION);
    out.extend_from_slice(&[0; 7]);
    out.extend_from_slice(segment_header);
    out.extend_from_slice(&scanned.file_len.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    for b in &scanned.blocks {
        out.extend_from_slice(&format::encode_block_header(&b.header));
    }
    out.extend_from_slice(seal);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// The segment a block map describes, if the map is well formed and names exactly this segment
/// file: its header `segment_header` and length `file_len`. Every block header is decoded and
/// range-checked as a walk would, the sequence numbers must follow each other, and the blocks
/// and the seal must fill the file exactly.
pub fn decode(
    bytes: &[u8],
    path: &Path,
    segment_header: &[u8],
    file_len: u64,
) -> Option<SegmentBlocks> {
    if bytes.len() < PREFIX_LEN + 12 || &bytes[..8] != BLOCKMAP_MAGIC {
        return None;
    }
    if bytes[8] != BLOCKMAP_VERSION || bytes[9..16].iter().any(|&b| b != 0) {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let header = &body[16..16 + SEGMENT_HEADER_LEN];
    if header != segment_header {
        return None;
    }
    let (first_seq, created_nanos) = format::decode_segment_header(header).ok()?;
    let u64_at = |i: usize| {
        body.get(i..i + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    };
    if u64_at(16 + SEGMENT_HEADER_LEN)? != file_len {
        return None;
    }
    let n = usize::try_from(u64_at(16 + SEGMENT_HEADER_LEN + 8)?).ok()?;
    let headers = &body[PREFIX_LEN..];
    if headers.len()
        != n.checked_mul(format::BLOCK_HEADER_LEN)?
            .checked_add(SEAL_LEN)?
    {
        return None;
    }
    let (headers, seal) = headers.split_at(headers.len() - SEAL_LEN);
    let mut blocks = Vec::with_capacity(n);
    let mut offset = SEGMENT_HEADER_LEN as u64;
    let mut next_seq = first_seq;
    for raw in headers.chunks_exact(format::BLOCK_HEADER_LEN) {
        let header = format::decode_block_header(raw).ok()?;
        if header.kind != BlockKind::Events || header.first_seq != next_seq {
            return None;
        }
        blocks.push(BlockLocation { offset, header });
        next_seq = header.end_seq();
        offset = offset.checked_add(header.stored_len())?;
    }
    // The seal, checked as the walk checks it.
    let (seal_header, seal_payload) = seal.split_at(format::BLOCK_HEADER_LEN);
    let header = format::decode_block_header(seal_header).ok()?;
    if header.kind != BlockKind::Seal
        || header.first_seq != next_seq
        || format::check_block_crc(seal_header, seal_payload).is_err()
        || offset.checked_add(header.stored_len())? != file_len
    {
        return None;
    }
    let sealed_nanos = i64::from_le_bytes(seal_payload.try_into().ok()?);
    Some(SegmentBlocks {
        first_seq,
        created_nanos,
        path: path.to_owned(),
        blocks,
        sealed_nanos: Some(sealed_nanos),
        valid_len: file_len,
        file_len,
        tail_problem: None,
    })
}

/// The blocks of a segment file: from its block map when one matches it, else by walking its
/// block headers ([`crate::files::scan_segment`]).
pub fn load_segment(
    paths: &LedgerPaths,
    first_seq: u64,
    path: &Path,
) -> Result<SegmentBlocks, crate::LedgerError> {
    match from_map(paths, first_seq, path) {
        Ok(Some(scanned)) => Ok(scanned),
        _ => crate::files::scan_segment(path),
    }
}

fn from_map(paths: &LedgerPaths, first_seq: u64, path: &Path) -> io::Result<Option<SegmentBlocks>> {
    use std::os::unix::fs::FileExt;
    let map = match read_bounded(&blockmap_path(paths, first_seq)) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0)?;
    let Some(scanned) = decode(&map, path, &header, file_len).filter(|s| s.first_seq == first_seq)
    else {
        return Ok(None);
    };
    // The seal the map names must be the one at the end of the file (a segment cut back by
    // crash recovery and sealed again has another).
    let mut seal = [0u8; SEAL_LEN];
    file.read_exact_at(&mut seal, file_len - SEAL_LEN as u64)?;
    Ok((seal[..] == map[map.len() - 4 - SEAL_LEN..map.len() - 4]).then_some(scanned))
}

/// A file's bytes, unless it is larger than [`MAX_MAP_BYTES`].
fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    if file.metadata()?.len() > MAX_MAP_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.by_ref().take(MAX_MAP_BYTES).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Saves the block map of a sealed segment from its walk `scanned`, replacing any older one;
/// does nothing for a segment that gets no map. A cache: written to a temporary file and
/// renamed, not fsynced; failures are returned for the caller to log, never to stop on.
pub fn save(paths: &LedgerPaths, scanned: &SegmentBlocks) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    if scanned.sealed_nanos.is_none() || scanned.valid_len < (SEGMENT_HEADER_LEN + SEAL_LEN) as u64
    {
        return Ok(());
    }
    let file = File::open(&scanned.path)?;
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0)?;
    let mut seal = [0u8; SEAL_LEN];
    file.read_exact_at(&mut seal, scanned.valid_len - SEAL_LEN as u64)?;
    let Some(bytes) = encode(&header, &seal, scanned) else {
        return Ok(());
    };
    let dir = blockmaps_dir(paths);
    fs::create_dir_all(&dir)?;
    let target = blockmap_path(paths, scanned.first_seq);
    let tmp = target.with_extension("blocks.tmp");
    fs::write(&tmp, &bytes)?;
    fs::rename(&tmp, &target)
}

/// Saves the block map of every sealed segment of `segments` that has none yet.
pub fn save_missing(paths: &LedgerPaths, segments: &[SegmentBlocks]) -> io::Result<()> {
    for s in segments {
        if s.sealed_nanos.is_some() && !blockmap_path(paths, s.first_seq).exists() {
            save(paths, s)?;
        }
    }
    Ok(())
}

/// Removes the block map of a segment (when the segment is pruned); a missing map is fine.
pub fn remove(paths: &LedgerPaths, first_seq: u64) -> io::Result<()> {
    match fs::remove_file(blockmap_path(paths, first_seq)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
