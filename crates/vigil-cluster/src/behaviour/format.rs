//! The behaviour checkpoint's bytes (pure: no I/O; compiled by path into the
//! `behaviour_checkpoint` fuzz target).
//!
//! ## FORMAT, version 1 (an object's bytes)
//!
//! All integers little-endian.
//!
//! ```text
//! magic      4 bytes  "VGBC"
//! version    u8       1
//! partition  u32      the detector partition's index
//! count      u32      the cluster's detector partitions K (0 and 1: the one `detector`)
//! epoch      u64      the lease epoch of the holder that wrote it (= the name's)
//! position   u64      the detector position the state is valid at (events before it learnt)
//! length     u64      the state's bytes, then: the state (the behaviour state file's format,
//!                     `vigil_detect::behaviour::persist`, with its own version and check)
//! ```
//!
//! What is read back is untrusted (any client with rights on the bucket can write it): the
//! object's size is checked against [`MAX_CHECKPOINT_BYTES`] before it is read, the read is
//! bounded, and every field is checked ([`decode`]); a refusal is an error naming why, never a
//! panic.

/// The first bytes of a checkpoint.
pub const MAGIC: &[u8; 4] = b"VGBC";
/// The format version written (and the only one read).
pub const VERSION: u8 = 1;
/// The header's length in bytes.
pub const HEADER_LEN: usize = 4 + 1 + 4 + 4 + 8 + 8 + 8;
/// The largest checkpoint written or read (256 MiB): a partition whose behaviour state is
/// larger (rules with very high `max_entries`) is not checkpointed (logged at every save) and
/// its successor starts blind; a larger object is refused unread.
pub const MAX_CHECKPOINT_BYTES: usize = 256 << 20;

/// A checkpoint's header and state bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The detector partition's index.
    pub partition: u32,
    /// The cluster's detector partitions.
    pub count: u32,
    /// The epoch of the holder that wrote it.
    pub epoch: u64,
    /// The detector position the state is valid at.
    pub position: u64,
    /// The behaviour state (`vigil_detect::behaviour::persist` format; decoded by the caller).
    pub state: Vec<u8>,
}

/// A checkpoint's bytes (the format above).
pub fn encode(c: &Checkpoint) -> Vec<u8> {
    let mut w = Vec::with_capacity(HEADER_LEN + c.state.len());
    w.extend_from_slice(MAGIC);
    w.push(VERSION);
    w.extend_from_slice(&c.partition.to_le_bytes());
    w.extend_from_slice(&c.count.to_le_bytes());
    w.extend_from_slice(&c.epoch.to_le_bytes());
    w.extend_from_slice(&c.position.to_le_bytes());
    w.extend_from_slice(&(c.state.len() as u64).to_le_bytes());
    w.extend_from_slice(&c.state);
    w
}

/// Reads a checkpoint's bytes: any damage, another version, or a length that does not match
/// is an error naming it.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.len() > MAX_CHECKPOINT_BYTES {
        return Err(format!(
            "behaviour checkpoint: {} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
            bytes.len()
        ));
    }
    if bytes.len() < HEADER_LEN {
        return Err("behaviour checkpoint: shorter than its header".into());
    }
    if &bytes[..4] != MAGIC {
        return Err("behaviour checkpoint: not a behaviour checkpoint (bad magic)".into());
    }
    if bytes[4] != VERSION {
        return Err(format!(
            "behaviour checkpoint: version {} is not one this Vigil reads ({VERSION})",
            bytes[4]
        ));
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let (partition, count, epoch, position, length) =
        (u32_at(5), u32_at(9), u64_at(13), u64_at(21), u64_at(29));
    let body = &bytes[HEADER_LEN..];
    if length != body.len() as u64 {
        return Err(format!(
            "behaviour checkpoint: its header says {length} state bytes, it holds {}",
            body.len()
        ));
    }
    if count > 1 && partition >= count {
        return Err(format!(
            "behaviour checkpoint: partition {partition} of {count} does not exist"
        ));
    }
    Ok(Checkpoint {
        partition,
        count,
        epoch,
        position,
        state: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            partition: 2,
            count: 3,
            epoch: 9,
            position: 12345 << 20,
            state: b"VGBH....".to_vec(),
        }
    }

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        assert_eq!(decode(&encode(&sample())).unwrap(), sample());
    }

    #[test]
    fn damaged_or_hostile_checkpoints_are_refused_with_a_reason() {
        let good = encode(&sample());
        let refuse = |b: &[u8], why: &str| {
            let e = decode(b).unwrap_err();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        };
        refuse(&good[..HEADER_LEN - 1], "shorter");
        let mut b = good.clone();
        b[0] = b'X';
        refuse(&b, "bad magic");
        let mut b = good.clone();
        b[4] = 2;
        refuse(&b, "version 2");
        // A length larger than what follows (a hostile count): refused, nothing allocated.
        let mut b = good.clone();
        b[29..37].copy_from_slice(&u64::MAX.to_le_bytes());
        refuse(&b, "header says");
        refuse(&good[..good.len() - 1], "header says");
        let mut b = good.clone();
        b[5..9].copy_from_slice(&7u32.to_le_bytes());
        refuse(&b, "does not exist");
        // Every truncation and every single-byte change either reads or is refused: no panic.
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
            let mut b = good.clone();
            b[n] ^= 0xff;
            let _ = decode(&b);
        }
    }
}
