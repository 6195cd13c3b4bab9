//! Byte layouts of the ledger files (see `FORMAT.md`). Pure: encode to and decode from slices.

use crate::merkle::Hash;

/// Leaves per tile group: blocks never straddle a group and segments end on group boundaries,
/// so every complete group's hash (a level-8 Merkle node) is stored and lower levels are
/// recomputed from segment data when needed.
pub const GROUP_SIZE: u64 = 256;
/// `log2(GROUP_SIZE)`, the Merkle height of a group hash.
pub const GROUP_HEIGHT: u32 = 8;

/// Largest canonical event the ledger accepts (1 MiB): far above any log line, small enough
/// that a block stays a bounded allocation.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// A block is closed once its raw payload reaches this size (or holds a full group).
pub const BLOCK_TARGET_RAW: usize = 1 << 20;
/// Upper bound on a block's raw payload: target + one maximal event + length prefixes.
pub const MAX_BLOCK_RAW: usize = BLOCK_TARGET_RAW + MAX_EVENT_BYTES + 4096;

/// Largest sequence number a file may claim (2^62): far beyond any real ledger, and low enough
/// that sequence arithmetic never overflows on hostile input.
pub const MAX_SEQ: u64 = 1 << 62;

/// Segment file header magic.
pub const SEGMENT_MAGIC: &[u8; 8] = b"VIGILSEG";
/// Segment format version written. Version 2 added the block flag [`BlockHeader::continues`];
/// version 3 the "columns" compression of events blocks ([`Compression::Columns`]); version 4
/// columns with references ([`Compression::References`]). Versions 1 to 3 are still read.
pub const SEGMENT_VERSION: u8 = 4;
/// Oldest segment format version still read.
pub const MIN_SEGMENT_VERSION: u8 = 1;
/// Bytes in a segment header.
pub const SEGMENT_HEADER_LEN: usize = 32;

/// Block header magic.
pub const BLOCK_MAGIC: &[u8; 4] = b"VGBK";
/// Bytes in a block header.
pub const BLOCK_HEADER_LEN: usize = 32;

/// Tile store header magic; the header is 16 bytes, then one 32-byte hash per complete group.
pub const TILES_MAGIC: &[u8; 8] = b"VIGILTIL";
/// Checkpoint log header magic.
pub const CHECKPOINTS_MAGIC: &[u8; 8] = b"VIGILCKP";
/// Pruning record log header magic.
pub const PRUNES_MAGIC: &[u8; 8] = b"VIGILPRN";
/// Version byte of the tile store and the record logs.
pub const FILE_VERSION: u8 = 1;
/// Bytes in the header of the tile store and the record logs.
pub const FILE_HEADER_LEN: usize = 16;
/// Largest record in a record log (a signed note is a few hundred bytes).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Events `first_seq .. first_seq + n_events`.
    Events,
    /// The segment's last block: no events, `first_seq` is the segment's end, the payload is
    /// the seal time (i64 LE nanoseconds).
    Seal,
}

impl BlockKind {
    fn to_byte(self) -> u8 {
        match self {
            BlockKind::Events => 1,
            BlockKind::Seal => 2,
        }
    }
    fn from_byte(b: u8) -> Option<BlockKind> {
        match b {
            1 => Some(BlockKind::Events),
            2 => Some(BlockKind::Seal),
            _ => None,
        }
    }
}

/// Block header byte 6, bit 0: the write continues in the next block (segment version 2).
const FLAG_CONTINUES: u8 = 1;

/// How an events block's payload is stored (header byte 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 0: the framing as it is (seals, and blocks zstd does not shrink).
    None,
    /// 1: the framing, zstd-compressed.
    Zstd,
    /// 2: zstd over the block's events rearranged by field name (`columns.rs`; segment
    /// version 3).
    Columns,
    /// 3: zstd over the columns form in which values spelled out in their event's
    /// `event.original` are references to those bytes (`columns.rs`; segment version 4).
    References,
}

impl Compression {
    fn to_byte(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
            Compression::Columns => 2,
            Compression::References => 3,
        }
    }
    fn from_byte(b: u8) -> Option<Compression> {
        Some(match b {
            0 => Compression::None,
            1 => Compression::Zstd,
            2 => Compression::Columns,
            3 => Compression::References,
            _ => return None,
        })
    }
}

/// Most bytes the columns form of a block may take beyond its framing (`raw_len`): per event
/// a length and at most two more bytes of time, per field a key number no longer than the key
/// it replaces; the writer falls back to plain zstd past it.
const COLUMNS_SLACK: usize = 4096;

/// A decoded block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Events or seal.
    pub kind: BlockKind,
    /// How the payload is stored.
    pub compression: Compression,
    /// Sequence number of the first event (for a seal: the segment's end).
    pub first_seq: u64,
    /// Number of events.
    pub n_events: u32,
    /// Stored payload bytes following the header.
    pub payload_len: u32,
    /// Payload bytes after decompression.
    pub raw_len: u32,
    /// CRC-32 of the header's first 28 bytes and the stored payload.
    pub crc: u32,
    /// The write (one group commit of whole appends) this block belongs to continues in the
    /// next block: a block with this flag is never the last block of a complete write, so
    /// recovery drops a trailing run of such blocks (an append is stored whole or not at all).
    /// Always false in version-1 segments and for seals.
    pub continues: bool,
}

impl BlockHeader {
    /// One past the last sequence number in the block.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + u64::from(self.n_events)
    }

    /// Total bytes of header and payload on disk.
    pub fn stored_len(&self) -> u64 {
        BLOCK_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// Why bytes are not a valid block or header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Fewer bytes than the structure needs (a torn write at the end of a file).
    #[error("incomplete")]
    Incomplete,
    /// Wrong magic bytes.
    #[error("bad magic")]
    Magic,
    /// A version this build cannot read.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A field out of its allowed range.
    #[error("invalid header field: {0}")]
    Field(&'static str),
    /// Checksum mismatch.
    #[error("checksum mismatch")]
    Checksum,
    /// The payload does not decompress or does not frame into events.
    #[error("payload: {0}")]
    Payload(&'static str),
}

/// Encodes a segment header.
pub fn encode_segment_header(first_seq: u64, created_nanos: i64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8] = SEGMENT_VERSION;
    h[12..20].copy_from_slice(&first_seq.to_le_bytes());
    h[20..28].copy_from_slice(&created_nanos.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header: `(first_seq, created_nanos)`.
pub fn decode_segment_header(h: &[u8]) -> Result<(u64, i64), FormatError> {
    if h.len() < SEGMENT_HEADER_LEN {
        return Err(FormatError::Incomplete);
    }
    if &h[..8] != SEGMENT_MAGIC {
        return Err(FormatError::Magic);
    }
    if !(MIN_SEGMENT_VERSION..=SEGMENT_VERSION).contains(&h[8]) {
        return Err(FormatError::Version(h[8]));
    }
    if crc32fast::hash(&h[..28]) != u32::from_le_bytes(h[28..32].try_into().expect("4")) {
        return Err(FormatError::Checksum);
    }
    let first_seq = u64::from_le_bytes(h[12..20].try_into().expect("8"));
    if first_seq > MAX_SEQ {
        return Err(FormatError::Field("sequence number"));
    }
    Ok((
        first_seq,
        i64::from_le_bytes(h[20..28].try_into().expect("8")),
    ))
}

/// The format version of a segment header, if `h` is long enough to hold one.
pub fn segment_version(h: &[u8]) -> Option<u8> {
    h.get(8).copied()
}

/// Decodes and range-checks a block header (the CRC is checked with the payload).
pub fn decode_block_header(h: &[u8]) -> Result<BlockHeader, FormatError> {
    if h.len() < BLOCK_HEADER_LEN {
        return Err(FormatError::Incomplete);
    }
    if &h[..4] != BLOCK_MAGIC {
        return Err(FormatError::Magic);
    }
    let kind = BlockKind::from_byte(h[4]).ok_or(FormatError::Field("kind"))?;
    let compression = Compression::from_byte(h[5]).ok_or(FormatError::Field("compression"))?;
    if h[6] & !FLAG_CONTINUES != 0 || h[7] != 0 {
        return Err(FormatError::Field("reserved"));
    }
    let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4"));
    let header = BlockHeader {
        kind,
        compression,
        first_seq: u64::from_le_bytes(h[8..16].try_into().expect("8")),
        n_events: u32_at(16),
        payload_len: u32_at(20),
        raw_len: u32_at(24),
        crc: u32_at(28),
        continues: h[6] & FLAG_CONTINUES != 0,
    };
    if header.first_seq > MAX_SEQ {
        return Err(FormatError::Field("sequence number"));
    }
    if header.raw_len as usize > MAX_BLOCK_RAW || header.payload_len as usize > MAX_BLOCK_RAW {
        return Err(FormatError::Field("length"));
    }
    match kind {
        BlockKind::Events => {
            if header.n_events == 0 || u64::from(header.n_events) > GROUP_SIZE {
                return Err(FormatError::Field("event count"));
            }
            // A block never straddles a group boundary.
            let last = header.first_seq + u64::from(header.n_events) - 1;
            if header.first_seq / GROUP_SIZE != last / GROUP_SIZE {
                return Err(FormatError::Field("block crosses a group boundary"));
            }
        }
        BlockKind::Seal => {
            if header.n_events != 0
                || header.raw_len != 8
                || compression != Compression::None
                || header.continues
            {
                return Err(FormatError::Field("seal block shape"));
            }
        }
    }
    Ok(header)
}

/// The 32 bytes of a block header: the inverse of [`decode_block_header`] (block maps keep
/// headers this way, `blockmap.rs`).
pub fn encode_block_header(header: &BlockHeader) -> [u8; BLOCK_HEADER_LEN] {
    let mut h = [0u8; BLOCK_HEADER_LEN];
    h[..4].copy_from_slice(BLOCK_MAGIC);
    h[4] = header.kind.to_byte();
    h[5] = header.compression.to_byte();
    h[6] = if header.continues { FLAG_CONTINUES } else { 0 };
    h[8..16].copy_from_slice(&header.first_seq.to_le_bytes());
    h[16..20].copy_from_slice(&header.n_events.to_le_bytes());
    h[20..24].copy_from_slice(&header.payload_len.to_le_bytes());
    h[24..28].copy_from_slice(&header.raw_len.to_le_bytes());
    h[28..32].copy_from_slice(&header.crc.to_le_bytes());
    h
}

fn block_crc(header_prefix: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_prefix);
    h.update(payload);
    h.finalize()
}

/// Appends one events block (header + zstd payload) framing `events` (canonical bytes) to `out`,
/// the last block of its write.
pub fn encode_events_block(
    out: &mut Vec<u8>,
    first_seq: u64,
    events: &[&[u8]],
    zstd_level: i32,
    scratch: &mut Vec<u8>,
) {
    encode_events_block_flagged(out, first_seq, events, zstd_level, scratch, false);
}

/// [`encode_events_block`] with the [`BlockHeader::continues`] flag.
pub fn encode_events_block_flagged(
    out: &mut Vec<u8>,
    first_seq: u64,
    events: &[&[u8]],
    zstd_level: i32,
    scratch: &mut Vec<u8>,
    continues: bool,
) {
    encode_block_with(out, first_seq, events, scratch, continues, |data| {
        zstd::bulk::compress(data, zstd_level)
    });
}

/// [`encode_events_block_flagged`] compressing with `compressor`, a zstd context kept from one
/// block to the next (the writer's: making a context per block cost more than a little of the
/// group commit's CPU). The bytes are the same as with a fresh context of the same level.
pub fn encode_events_block_reusing(
    out: &mut Vec<u8>,
    first_seq: u64,
    events: &[&[u8]],
    compressor: &mut zstd::bulk::Compressor<'static>,
    scratch: &mut Vec<u8>,
    continues: bool,
) {
    encode_block_with(out, first_seq, events, scratch, continues, |data| {
        compressor.compress(data)
    });
}

fn encode_block_with(
    out: &mut Vec<u8>,
    first_seq: u64,
    events: &[&[u8]],
    scratch: &mut Vec<u8>,
    continues: bool,
    compress: impl FnOnce(&[u8]) -> std::io::Result<Vec<u8>>,
) {
    scratch.clear();
    for e in events {
        write_varint(scratch, e.len() as u64);
        scratch.extend_from_slice(e);
    }
    // The columns form with references when it gives this exact framing back (it always
    // should; anything else is stored as plain zstd), else the framing itself.
    let columns = crate::columns::encode_references(scratch).filter(|c| {
        c.len() <= scratch.len() + COLUMNS_SLACK
            && crate::columns::decode_references(c, scratch.len()).as_deref() == Some(&scratch[..])
    });
    let compressed = compress(columns.as_deref().unwrap_or(scratch));
    let (compression, payload): (Compression, &[u8]) = match &compressed {
        Ok(c) if c.len() < scratch.len() => (
            if columns.is_some() {
                Compression::References
            } else {
                Compression::Zstd
            },
            c,
        ),
        _ => (Compression::None, scratch),
    };
    push_block(
        out,
        BlockKind::Events,
        (compression, if continues { FLAG_CONTINUES } else { 0 }),
        first_seq,
        events.len() as u32,
        payload,
        scratch.len() as u32,
    );
}

/// Appends a seal block marking `end_seq` as the end of the segment.
pub fn encode_seal_block(out: &mut Vec<u8>, end_seq: u64, sealed_nanos: i64) {
    let payload = sealed_nanos.to_le_bytes();
    push_block(
        out,
        BlockKind::Seal,
        (Compression::None, 0),
        end_seq,
        0,
        &payload,
        8,
    );
}

fn push_block(
    out: &mut Vec<u8>,
    kind: BlockKind,
    (compression, flags): (Compression, u8),
    first_seq: u64,
    n_events: u32,
    payload: &[u8],
    raw_len: u32,
) {
    let start = out.len();
    out.extend_from_slice(BLOCK_MAGIC);
    out.push(kind.to_byte());
    out.push(compression.to_byte());
    out.extend_from_slice(&[flags, 0]);
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&n_events.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&raw_len.to_le_bytes());
    let crc = block_crc(&out[start..start + 28], payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Checks the CRC of a block whose header and stored payload are given.
pub fn check_block_crc(header_bytes: &[u8], payload: &[u8]) -> Result<(), FormatError> {
    let stored = u32::from_le_bytes(header_bytes[28..32].try_into().expect("4"));
    if block_crc(&header_bytes[..28], payload) != stored {
        return Err(FormatError::Checksum);
    }
    Ok(())
}

thread_local! {
    /// Each reading thread's zstd context, kept from one block to the next (the followers —
    /// detector, silence watch — made one per block, ~2 % of a syslog stream's CPU); `None`
    /// if zstd could not make one, and each block then makes its own.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// Decompresses a block payload into raw event framing.
pub fn block_raw_payload(header: &BlockHeader, payload: &[u8]) -> Result<Vec<u8>, FormatError> {
    let raw_len = header.raw_len as usize;
    let unzstd = |limit: usize| {
        DECOMPRESSOR
            .with(|d| match &mut *d.borrow_mut() {
                Some(d) => d.decompress(payload, limit),
                None => zstd::bulk::decompress(payload, limit),
            })
            .map_err(|_| FormatError::Payload("zstd data does not decompress"))
    };
    let raw = match header.compression {
        Compression::None => payload.to_vec(),
        Compression::Zstd => unzstd(raw_len)?,
        Compression::Columns => crate::columns::decode(&unzstd(raw_len + COLUMNS_SLACK)?, raw_len)
            .ok_or(FormatError::Payload("the columns of a block do not decode"))?,
        Compression::References => {
            crate::columns::decode_references(&unzstd(raw_len + COLUMNS_SLACK)?, raw_len).ok_or(
                FormatError::Payload("the columns with references of a block do not decode"),
            )?
        }
    };
    if raw.len() != header.raw_len as usize {
        return Err(FormatError::Payload(
            "decompressed length differs from header",
        ));
    }
    Ok(raw)
}

/// Splits raw event framing into exactly `n` canonical events.
pub fn split_events(raw: &[u8], n: u32) -> Result<Vec<&[u8]>, FormatError> {
    let mut events = Vec::with_capacity(n as usize);
    let mut pos = 0usize;
    while pos < raw.len() {
        let (len, used) = read_varint(&raw[pos..]).ok_or(FormatError::Payload("bad length"))?;
        pos += used;
        let len = usize::try_from(len).map_err(|_| FormatError::Payload("bad length"))?;
        if len > MAX_EVENT_BYTES || raw.len() - pos < len {
            return Err(FormatError::Payload("event length exceeds block"));
        }
        events.push(&raw[pos..pos + len]);
        pos += len;
        if events.len() > n as usize {
            break;
        }
    }
    if events.len() != n as usize {
        return Err(FormatError::Payload("event count differs from header"));
    }
    Ok(events)
}

pub(crate) fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(crate) fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

/// Encodes the 16-byte header of the tile store or a record log.
pub fn encode_file_header(magic: &[u8; 8]) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(magic);
    h[8] = FILE_VERSION;
    h
}

/// Checks the 16-byte header of the tile store or a record log.
pub fn check_file_header(h: &[u8], magic: &[u8; 8]) -> Result<(), FormatError> {
    if h.len() < FILE_HEADER_LEN {
        return Err(FormatError::Incomplete);
    }
    if &h[..8] != magic {
        return Err(FormatError::Magic);
    }
    if h[8] != FILE_VERSION {
        return Err(FormatError::Version(h[8]));
    }
    Ok(())
}

/// Frames one record of a record log: `len u32 LE ‖ bytes ‖ crc32(bytes) u32 LE`.
pub fn encode_record(out: &mut Vec<u8>, record: &[u8]) {
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(record);
    out.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
}

/// Splits a record log body (after the header) into records. Returns the records and the
/// byte offset (within `body`) where valid framing ends; anything after it is a torn tail or
/// damage.
pub fn decode_records(body: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    loop {
        if body.len() - pos < 4 {
            break;
        }
        let len = u32::from_le_bytes(body[pos..pos + 4].try_into().expect("4")) as usize;
        if len > MAX_RECORD_BYTES || body.len() - pos - 4 < len + 4 {
            break;
        }
        let record = &body[pos + 4..pos + 4 + len];
        let crc = u32::from_le_bytes(body[pos + 4 + len..pos + 8 + len].try_into().expect("4"));
        if crc32fast::hash(record) != crc {
            break;
        }
        records.push(record);
        pos += len + 8;
    }
    (records, pos)
}

/// Reads the group hashes of a tile store body (after the header); a partial trailing hash
/// (torn write) is ignored.
pub fn decode_tiles(body: &[u8]) -> Vec<Hash> {
    body.chunks_exact(32)
        .map(|c| c.try_into().expect("32"))
        .collect()
}

/// The segment file name for a segment starting at `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first sequence number encoded in a segment file name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd context kept from block to block (the writer's) writes the same bytes as a fresh
    /// one per block: the block format does not depend on it.
    #[test]
    fn a_kept_compressor_writes_the_same_blocks() {
        let mut compressor = zstd::bulk::Compressor::new(3).unwrap();
        for round in 0..4u8 {
            let events: Vec<Vec<u8>> = (0..40u8)
                .map(|i| {
                    let mut e = vec![0x01];
                    e.extend_from_slice(&[round; 8]);
                    e.extend(
                        (0..60 + u32::from(i))
                            .map(|j| b'a' + ((j * 7 + u32::from(round)) % 26) as u8),
                    );
                    e
                })
                .collect();
            let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
            let (mut fresh, mut kept) = (Vec::new(), Vec::new());
            let continues = round % 2 == 0;
            encode_events_block_flagged(&mut fresh, 256, &refs, 3, &mut Vec::new(), continues);
            encode_events_block_reusing(
                &mut kept,
                256,
                &refs,
                &mut compressor,
                &mut Vec::new(),
                continues,
            );
            assert_eq!(fresh, kept, "round {round}");
        }
    }

    #[test]
    fn block_round_trip() {
        let events: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100 + i as usize]).collect();
        let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        encode_events_block(&mut out, 512, &refs, 3, &mut scratch);
        let header = decode_block_header(&out).unwrap();
        assert_eq!(header.first_seq, 512);
        assert_eq!(header.n_events, 10);
        assert_ne!(header.compression, Compression::None);
        let payload = &out[BLOCK_HEADER_LEN..];
        assert_eq!(payload.len(), header.payload_len as usize);
        check_block_crc(&out, payload).unwrap();
        let raw = block_raw_payload(&header, payload).unwrap();
        assert_eq!(split_events(&raw, 10).unwrap(), refs);

        let mut flipped = out.clone();
        flipped[BLOCK_HEADER_LEN + 3] ^= 1;
        assert_eq!(
            check_block_crc(&flipped, &flipped[BLOCK_HEADER_LEN..]),
            Err(FormatError::Checksum)
        );
    }

    #[test]
    fn canonical_events_are_stored_by_field_and_read_back_exactly() {
        use vigil_event::{Event, Timestamp};
        let events: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i));
                e.insert(
                    "event.original",
                    format!("sshd[{i}]: Failed password for root"),
                );
                e.insert("user.name", "root");
                e.insert("n", i);
                e.to_canonical()
            })
            .collect();
        let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        encode_events_block(&mut out, 0, &refs, 3, &mut Vec::new());
        let header = decode_block_header(&out).unwrap();
        assert_eq!(header.compression, Compression::References);
        assert_eq!(out[5], 3);
        assert_eq!(
            decode_block_header(&encode_block_header(&header)),
            Ok(header)
        );
        let payload = &out[BLOCK_HEADER_LEN..];
        let raw = block_raw_payload(&header, payload).unwrap();
        assert_eq!(split_events(&raw, 200).unwrap(), refs);
        // Smaller than the same events as plain zstd.
        let mut framing = Vec::new();
        for e in &refs {
            write_varint(&mut framing, e.len() as u64);
            framing.extend_from_slice(e);
        }
        let plain = zstd::bulk::compress(&framing, 3).unwrap();
        assert!(
            payload.len() < plain.len(),
            "{} vs {}",
            payload.len(),
            plain.len()
        );
        // A version-3 block (columns without references) of the same events still reads.
        let columns = crate::columns::encode(&framing).unwrap();
        let stored = zstd::bulk::compress(&columns, 3).unwrap();
        let mut v3 = Vec::new();
        push_block(
            &mut v3,
            BlockKind::Events,
            (Compression::Columns, 0),
            0,
            200,
            &stored,
            framing.len() as u32,
        );
        let v3_header = decode_block_header(&v3).unwrap();
        assert_eq!(v3_header.compression, Compression::Columns);
        check_block_crc(&v3, &v3[BLOCK_HEADER_LEN..]).unwrap();
        let raw = block_raw_payload(&v3_header, &v3[BLOCK_HEADER_LEN..]).unwrap();
        assert_eq!(split_events(&raw, 200).unwrap(), refs);
        // References are smaller than columns alone here (the line spells out `n`).
        assert!(
            payload.len() < stored.len(),
            "{} vs {}",
            payload.len(),
            stored.len()
        );
        // Plain zstd data, or garbage, under the columns byte is an error, not a panic.
        let mut as_columns = header;
        as_columns.payload_len = plain.len() as u32;
        assert!(block_raw_payload(&as_columns, &plain).is_err());
        assert!(block_raw_payload(&as_columns, &[0x28, 0xb5, 0x2f, 0xfd, 0, 0]).is_err());
    }

    #[test]
    fn blocks_may_not_cross_groups() {
        let e = [1u8; 4];
        let mut out = Vec::new();
        let events: Vec<&[u8]> = vec![&e[..]; 10];
        encode_events_block(&mut out, 250, &events, 1, &mut Vec::new());
        assert_eq!(
            decode_block_header(&out),
            Err(FormatError::Field("block crosses a group boundary"))
        );
    }

    /// Found by `cargo fuzz run ledger_block`: a huge first_seq overflowed the group check.
    #[test]
    fn hostile_sequence_number_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        encode_events_block(&mut out, 0, &[&[1u8][..]], 1, &mut Vec::new());
        out[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decode_block_header(&out),
            Err(FormatError::Field("sequence number"))
        );
    }

    #[test]
    fn continues_flag_round_trips_and_other_bits_stay_reserved() {
        let e = [7u8; 8];
        let mut out = Vec::new();
        encode_events_block_flagged(&mut out, 0, &[&e[..]], 1, &mut Vec::new(), true);
        assert!(decode_block_header(&out).unwrap().continues);
        out[6] = 0;
        assert!(!decode_block_header(&out).unwrap().continues);
        out[6] = 2;
        assert_eq!(
            decode_block_header(&out),
            Err(FormatError::Field("reserved"))
        );
        // Version-1 and 2 segment headers still decode; unknown versions do not.
        let mut h = encode_segment_header(256, 7);
        assert_eq!(segment_version(&h), Some(SEGMENT_VERSION));
        for (version, ok) in [
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, false),
            (0, false),
        ] {
            h[8] = version;
            let crc = crc32fast::hash(&h[..28]);
            h[28..32].copy_from_slice(&crc.to_le_bytes());
            let expected = if ok {
                Ok((256, 7))
            } else {
                Err(FormatError::Version(version))
            };
            assert_eq!(decode_segment_header(&h), expected, "version {version}");
        }
    }

    #[test]
    fn seal_round_trip() {
        let mut out = Vec::new();
        encode_seal_block(&mut out, 1024, 99);
        let header = decode_block_header(&out).unwrap();
        assert_eq!(header.kind, BlockKind::Seal);
        assert_eq!(header.first_seq, 1024);
        check_block_crc(&out, &out[BLOCK_HEADER_LEN..]).unwrap();
    }

    #[test]
    fn records_stop_at_torn_tail() {
        let mut body = Vec::new();
        encode_record(&mut body, b"one");
        encode_record(&mut body, b"two");
        let full = body.len();
        encode_record(&mut body, b"three");
        body.truncate(body.len() - 2);
        let (records, end) = decode_records(&body);
        assert_eq!(records, vec![&b"one"[..], &b"two"[..]]);
        assert_eq!(end, full);
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(256), "00000000000000000256.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000256.seg"),
            Some(256)
        );
        assert_eq!(parse_segment_file_name("256.seg"), None);
        let h = encode_segment_header(256, 7);
        assert_eq!(decode_segment_header(&h), Ok((256, 7)));
    }
}
