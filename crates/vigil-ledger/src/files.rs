//! Where the ledger's files live and how they are read: the I/O edge under the pure formats.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::LedgerError;
use crate::format::{self, BlockHeader, BlockKind, FormatError};
use crate::merkle::Hash;

/// Paths of the files under `DATA_DIR/ledger/`.
#[derive(Debug, Clone)]
pub struct LedgerPaths {
    root: PathBuf,
}

impl LedgerPaths {
    /// The ledger of a Vigil data directory.
    pub fn new(data_dir: &Path) -> LedgerPaths {
        LedgerPaths {
            root: data_dir.join("ledger"),
        }
    }

    /// `DATA_DIR/ledger`.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Directory of segment files.
    pub fn segments_dir(&self) -> PathBuf {
        self.root.join("segments")
    }
    /// The segment starting at `first_seq`.
    pub fn segment(&self, first_seq: u64) -> PathBuf {
        self.segments_dir()
            .join(format::segment_file_name(first_seq))
    }
    /// Stored group hashes.
    pub fn tiles(&self) -> PathBuf {
        self.root.join("tiles.dat")
    }
    /// Signed checkpoints.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints.log")
    }
    /// Signed pruning records.
    pub fn prunes(&self) -> PathBuf {
        self.root.join("prunes.log")
    }
    /// The Ed25519 signing key (mode 0600).
    pub fn signing_key(&self) -> PathBuf {
        self.root.join("signing.key")
    }
    /// The public verifier key (C2SP vkey).
    pub fn verifier_key(&self) -> PathBuf {
        self.root.join("verifier.vkey")
    }
    /// A second copy of the latest signed checkpoint (see `integrity`).
    pub fn witness(&self) -> PathBuf {
        self.root.join("witness")
    }
    /// Checkpoints with their witnesses' cosignatures (see `cosigned`).
    pub fn cosignatures(&self) -> PathBuf {
        self.root.join("cosignatures.log")
    }
    /// Signed records of starts on a ledger that did not verify (`serve --recover`).
    pub fn recoveries(&self) -> PathBuf {
        self.root.join("recoveries.log")
    }
    /// Signed key rotations.
    pub fn key_history(&self) -> PathBuf {
        self.root.join("keys.log")
    }
    /// The single-writer lock file.
    pub fn lock(&self) -> PathBuf {
        self.root.join("LOCK")
    }
    /// Present while a legal hold suspends pruning; holds the reason.
    pub fn legal_hold(&self) -> PathBuf {
        self.root.join("legal-hold")
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, LedgerError> {
    fs::read(path).map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))
}

/// Segment files present, sorted by first sequence number. Unknown files are ignored.
pub fn list_segments(paths: &LedgerPaths) -> Result<Vec<(u64, PathBuf)>, LedgerError> {
    let dir = paths.segments_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LedgerError::io(format!("listing {}", dir.display()), e)),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LedgerError::io(format!("listing {}", dir.display()), e))?;
        if let Some(first) = entry
            .file_name()
            .to_str()
            .and_then(format::parse_segment_file_name)
        {
            segments.push((first, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Where one block sits in its segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLocation {
    /// Byte offset of the block header.
    pub offset: u64,
    /// The decoded header.
    pub header: BlockHeader,
}

/// A segment's blocks, found by walking the headers (payloads are skipped, not checked).
#[derive(Debug, Clone)]
pub struct SegmentBlocks {
    /// First sequence number from the header.
    pub first_seq: u64,
    /// Creation time from the header (ns).
    pub created_nanos: i64,
    /// File path.
    pub path: PathBuf,
    /// Event blocks in file order.
    pub blocks: Vec<BlockLocation>,
    /// Seal time if the segment ends in a seal block.
    pub sealed_nanos: Option<i64>,
    /// Offset where readable blocks end.
    pub valid_len: u64,
    /// File length when scanned; more than `valid_len` means a torn or damaged tail.
    pub file_len: u64,
    /// What stopped the walk before the end of the file, if anything.
    pub tail_problem: Option<FormatError>,
}

impl SegmentBlocks {
    /// One past the last event sequence number.
    pub fn end_seq(&self) -> u64 {
        self.blocks
            .last()
            .map_or(self.first_seq, |b| b.header.end_seq())
    }

    /// The block holding `seq`, with its index.
    pub fn find(&self, seq: u64) -> Option<(usize, &BlockLocation)> {
        let i = self.blocks.partition_point(|b| b.header.end_seq() <= seq);
        self.blocks
            .get(i)
            .filter(|b| b.header.first_seq <= seq)
            .map(|b| (i, b))
    }
}

/// Walks a segment's block headers. Stops at the first header that is incomplete or invalid,
/// or whose payload runs past the end of the file, and records why in `tail_problem`.
pub fn scan_segment(path: &Path) -> Result<SegmentBlocks, LedgerError> {
    let mut file =
        File::open(path).map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
    let file_len = file
        .metadata()
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?
        .len();
    let mut header = [0u8; format::SEGMENT_HEADER_LEN];
    let n = read_up_to(&mut file, &mut header)
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
    let (first_seq, created_nanos) = format::decode_segment_header(&header[..n])
        .map_err(|e| LedgerError::corrupt(path, 0, None, format!("segment header: {e}")))?;
    let mut scanned = SegmentBlocks {
        first_seq,
        created_nanos,
        path: path.to_owned(),
        blocks: Vec::new(),
        sealed_nanos: None,
        valid_len: format::SEGMENT_HEADER_LEN as u64,
        file_len,
        tail_problem: None,
    };
    walk_blocks(&file, &mut scanned)?;
    Ok(scanned)
}

/// Walks on from where `scanned` ends: the blocks a growing segment gained since it was
/// scanned, reading only their headers (a follower's refresh then costs what was appended,
/// not the size of the segment). Returns false, changing nothing, when the file is no longer
/// what was scanned — shorter than the blocks read, or the last block read no longer where it
/// was (crash recovery cut it and the writer wrote on): the caller scans it whole again.
pub fn extend_scan(scanned: &mut SegmentBlocks) -> Result<bool, LedgerError> {
    let path = scanned.path.clone();
    let io_err = |e| LedgerError::io(format!("reading {}", path.display()), e);
    let file =
        File::open(&path).map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
    let file_len = file.metadata().map_err(io_err)?.len();
    if file_len < scanned.valid_len {
        return Ok(false);
    }
    if let Some(last) = scanned.blocks.last() {
        let mut buf = [0u8; format::BLOCK_HEADER_LEN];
        let n = read_up_to_at(&file, &mut buf, last.offset).map_err(io_err)?;
        if format::decode_block_header(&buf[..n]).ok() != Some(last.header) {
            return Ok(false);
        }
    }
    scanned.file_len = file_len;
    scanned.tail_problem = None;
    walk_blocks(&file, scanned)?;
    Ok(true)
}

/// Walks block headers from `scanned.valid_len` to the end of the file, adding the blocks to
/// `scanned`; stops at the first bad or incomplete one and records why.
fn walk_blocks(file: &File, scanned: &mut SegmentBlocks) -> Result<(), LedgerError> {
    let path = scanned.path.clone();
    let file_len = scanned.file_len;
    // Each header is read where it sits (one positioned read of its 32 bytes): payloads are
    // skipped without being read, so walking a segment reads 32 bytes per block rather than
    // the whole file through a buffer.
    let mut offset = scanned.valid_len;
    let mut next_seq = scanned.end_seq();
    let mut buf = [0u8; format::BLOCK_HEADER_LEN];
    while offset < file_len {
        let n = read_up_to_at(file, &mut buf, offset)
            .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
        let header = match format::decode_block_header(&buf[..n]) {
            Ok(h) => h,
            Err(e) => {
                scanned.tail_problem = Some(e);
                break;
            }
        };
        if offset + header.stored_len() > file_len {
            scanned.tail_problem = Some(FormatError::Incomplete);
            break;
        }
        if header.first_seq != next_seq || scanned.sealed_nanos.is_some() {
            scanned.tail_problem = Some(FormatError::Field("sequence number out of order"));
            break;
        }
        match header.kind {
            BlockKind::Events => {
                scanned.blocks.push(BlockLocation { offset, header });
                next_seq = header.end_seq();
            }
            BlockKind::Seal => {
                let mut payload = [0u8; 8];
                let n = read_up_to_at(file, &mut payload, offset + buf.len() as u64)
                    .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
                if n < payload.len() || format::check_block_crc(&buf, &payload).is_err() {
                    scanned.tail_problem = Some(FormatError::Checksum);
                    break;
                }
                scanned.sealed_nanos = Some(i64::from_le_bytes(payload));
            }
        }
        offset += header.stored_len();
        scanned.valid_len = offset;
    }
    Ok(())
}

/// Fills `buf` from `offset` on as far as the file allows; returns the number of bytes read.
fn read_up_to_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads a block's payload, checks its CRC and returns the raw event framing.
pub fn read_block_raw(
    file: &mut File,
    path: &Path,
    location: &BlockLocation,
) -> Result<Vec<u8>, LedgerError> {
    let len = format::BLOCK_HEADER_LEN + location.header.payload_len as usize;
    let mut bytes = vec![0u8; len];
    file.seek(SeekFrom::Start(location.offset))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
    let corrupt = |reason: String| {
        LedgerError::corrupt(
            path,
            location.offset,
            Some(location.header.first_seq),
            reason,
        )
    };
    let (head, payload) = bytes.split_at(format::BLOCK_HEADER_LEN);
    if format::decode_block_header(head).ok() != Some(location.header) {
        return Err(corrupt("block header changed since it was indexed".into()));
    }
    format::check_block_crc(head, payload).map_err(|e| corrupt(format!("block {e}")))?;
    format::block_raw_payload(&location.header, payload).map_err(|e| corrupt(format!("block {e}")))
}

/// Fills `buf` as far as the reader allows; returns the number of bytes read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The records of a record log and where its valid framing ends.
#[derive(Debug, Default)]
pub struct RecordLog {
    /// Records in order.
    pub records: Vec<Vec<u8>>,
    /// Byte length of header plus valid records.
    pub valid_len: u64,
    /// File length.
    pub file_len: u64,
}

/// Reads a record log; a missing file is an empty log.
pub fn read_record_log(path: &Path, magic: &[u8; 8]) -> Result<RecordLog, LedgerError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RecordLog::default()),
        Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
    };
    if bytes.len() < format::FILE_HEADER_LEN {
        // A torn header: the file was being created.
        return Ok(RecordLog {
            records: Vec::new(),
            valid_len: 0,
            file_len: bytes.len() as u64,
        });
    }
    format::check_file_header(&bytes, magic)
        .map_err(|e| LedgerError::corrupt(path, 0, None, format!("file header: {e}")))?;
    let (records, end) = format::decode_records(&bytes[format::FILE_HEADER_LEN..]);
    Ok(RecordLog {
        records: records.into_iter().map(<[u8]>::to_vec).collect(),
        valid_len: (format::FILE_HEADER_LEN + end) as u64,
        file_len: bytes.len() as u64,
    })
}

/// Reads the stored group hashes; a missing file is an empty store.
pub fn read_tiles(path: &Path) -> Result<Vec<Hash>, LedgerError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
    };
    if bytes.len() < format::FILE_HEADER_LEN {
        return Ok(Vec::new());
    }
    format::check_file_header(&bytes, format::TILES_MAGIC)
        .map_err(|e| LedgerError::corrupt(path, 0, None, format!("file header: {e}")))?;
    Ok(format::decode_tiles(&bytes[format::FILE_HEADER_LEN..]))
}

/// Brings `tiles` (the group hashes read from `path` before) up to date, reading only the
/// hashes appended since; reads the whole file again when it is no longer what was read
/// (shorter, or the last hash read changed: crash recovery cut it and the writer wrote on).
pub fn extend_tiles(path: &Path, tiles: &mut Vec<Hash>) -> Result<(), LedgerError> {
    use std::os::unix::fs::FileExt;
    if tiles.is_empty() {
        *tiles = read_tiles(path)?;
        return Ok(());
    }
    let io_err = |e| LedgerError::io(format!("reading {}", path.display()), e);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tiles.clear();
            return Ok(());
        }
        Err(e) => return Err(io_err(e)),
    };
    let file_len = file.metadata().map_err(io_err)?.len();
    let known = (format::FILE_HEADER_LEN + 32 * tiles.len()) as u64;
    let mut last = [0u8; 32];
    let same = file_len >= known
        && read_up_to_at(&file, &mut last, known - 32).map_err(io_err)? == 32
        && tiles.last() == Some(&last);
    if !same {
        *tiles = read_tiles(path)?;
        return Ok(());
    }
    let new = (file_len - known) / 32;
    if new > 0 {
        let mut bytes = vec![0u8; (new * 32) as usize];
        file.read_exact_at(&mut bytes, known).map_err(io_err)?;
        tiles.extend(format::decode_tiles(&bytes));
    }
    Ok(())
}

/// Opens a file for appending, creating it with `header` when missing or torn before the end
/// of its header, and truncating it to `valid_len` when that is given.
pub(crate) fn open_append(
    path: &Path,
    header: &[u8],
    valid_len: Option<u64>,
) -> Result<File, LedgerError> {
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| LedgerError::io(ctx("opening"), e))?;
    let len = file
        .metadata()
        .map_err(|e| LedgerError::io(ctx("reading"), e))?
        .len();
    if len < header.len() as u64 {
        file.set_len(0)
            .and_then(|_| file.write_all(header))
            .and_then(|_| file.sync_data())
            .map_err(|e| LedgerError::io(ctx("initialising"), e))?;
    } else if let Some(valid) = valid_len
        && valid < len
        && valid >= header.len() as u64
    {
        file.set_len(valid)
            .and_then(|_| file.sync_data())
            .map_err(|e| LedgerError::io(ctx("truncating"), e))?;
    }
    file.seek(SeekFrom::End(0))
        .map_err(|e| LedgerError::io(ctx("seeking"), e))?;
    Ok(file)
}

/// fsyncs a directory so that created, renamed or deleted entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LedgerError::io(format!("syncing directory {}", dir.display()), e))
}
