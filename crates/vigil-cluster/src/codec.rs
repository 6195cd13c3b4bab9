//! The payload of one stream message: a batch of events.
//!
//! ```text
//! message = version:u8 (=1) · count:varint · count × (len:varint · canonical event bytes)
//! ```
//!
//! Events are in their canonical encoding (`vigil_event::canonical`, see FORMAT.md), so a
//! shard stores exactly the bytes that were published. Decoding is strict (minimal varints, the
//! count matches, no trailing bytes) and allocates no more than the message's own length.

use vigil_event::Event;

/// The version byte of the current layout.
pub const VERSION: u8 = 1;

/// Why a message does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The message is empty or of an unknown layout.
    #[error("unknown message layout (version byte {0:?})")]
    Version(Option<u8>),
    /// A length or count is cut, not minimal, or larger than the message.
    #[error("malformed length at byte {0}")]
    Length(usize),
    /// An event's bytes are not a canonical event.
    #[error("event {index} does not decode: {message}")]
    Event {
        /// Its position in the message.
        index: usize,
        /// Why.
        message: String,
    },
    /// Bytes after the last event.
    #[error("{0} bytes after the last event")]
    Trailing(usize),
}

/// Encodes `events` into messages of at most `max_bytes` each (an event larger than that alone
/// gets a message of its own: the caller's `fit` keeps events far below NATS's payload limit).
pub fn encode(events: &[Event], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 1 + 10;
    for event in events {
        let bytes = event.to_canonical();
        let cost = bytes.len() + 10;
        if !batch.is_empty() && size + cost > max_bytes {
            messages.push(frame(&batch));
            batch.clear();
            size = 1 + 10;
        }
        size += cost;
        batch.push(bytes);
    }
    if !batch.is_empty() {
        messages.push(frame(&batch));
    }
    messages
}

fn frame(events: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = events.iter().map(|e| e.len() + 10).sum();
    let mut out = Vec::with_capacity(11 + total);
    out.push(VERSION);
    put_varint(&mut out, events.len() as u64);
    for e in events {
        put_varint(&mut out, e.len() as u64);
        out.extend_from_slice(e);
    }
    out
}

/// Decodes one message.
pub fn decode(message: &[u8]) -> Result<Vec<Event>, CodecError> {
    split(message)?
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| {
            Event::from_canonical(bytes).map_err(|e| CodecError::Event {
                index,
                message: e.to_string(),
            })
        })
        .collect()
}

/// The canonical bytes of each event of one message, in order, without decoding them (the
/// detector passes over the events no loaded rule can match). Checks the framing as
/// [`decode`] does (version, minimal lengths within the message, no trailing bytes), not the
/// events themselves.
pub fn split(message: &[u8]) -> Result<Vec<&[u8]>, CodecError> {
    match message.first() {
        Some(&VERSION) => {}
        other => return Err(CodecError::Version(other.copied())),
    }
    let mut at = 1;
    let count = get_varint(message, &mut at)?;
    // Each event takes at least one length byte: a count beyond the bytes left is a lie.
    if count > (message.len() - at) as u64 {
        return Err(CodecError::Length(1));
    }
    // The count is the sender's claim: reserve for what the bytes can hold at a plausible
    // size, never for the claim itself.
    let mut events = Vec::with_capacity((count as usize).min(message.len() / 64 + 1));
    for _ in 0..count {
        let start = at;
        let len = get_varint(message, &mut at)?;
        if len > (message.len() - at) as u64 {
            return Err(CodecError::Length(start));
        }
        let end = at + len as usize;
        events.push(&message[at..end]);
        at = end;
    }
    if at != message.len() {
        return Err(CodecError::Trailing(message.len() - at));
    }
    Ok(events)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Result<u64, CodecError> {
    let start = *at;
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&b) = bytes.get(*at) else {
            return Err(CodecError::Length(start));
        };
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            // Minimal: no trailing zero group (except the single byte 0).
            if b == 0 && *at - start > 1 {
                return Err(CodecError::Length(start));
            }
            return Ok(value);
        }
    }
    Err(CodecError::Length(start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn event(i: usize) -> Event {
        let mut e = Event::new(Timestamp::from_nanos(i as i64 * 1_000));
        e.insert("message", format!("line {i} {}", "x".repeat(i % 300)));
        e.insert("n", i as i64);
        e
    }

    #[test]
    fn batches_round_trip_in_chunks_under_the_limit() {
        let events: Vec<Event> = (0..2000).map(event).collect();
        let messages = encode(&events, 64 * 1024);
        assert!(messages.len() > 1);
        assert!(messages.iter().all(|m| m.len() <= 64 * 1024));
        let back: Vec<Event> = messages.iter().flat_map(|m| decode(m).unwrap()).collect();
        assert_eq!(back, events);
    }

    #[test]
    fn hostile_messages_are_refused_not_trusted() {
        let good = encode(&[event(1), event(2)], 1 << 20).remove(0);
        assert_eq!(decode(&[]), Err(CodecError::Version(None)));
        assert_eq!(decode(&[2]), Err(CodecError::Version(Some(2))));
        // A count far beyond the bytes present.
        assert!(decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // Non-minimal varint.
        assert!(decode(&[1, 0x80, 0x00]).is_err());
        // Cut anywhere: refused.
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(CodecError::Trailing(1)));
        assert!(decode(&good).is_ok());
    }

    #[test]
    fn split_gives_each_events_canonical_bytes_and_refuses_what_decode_refuses() {
        let events: Vec<Event> = (0..50).map(event).collect();
        let good = encode(&events, 1 << 20).remove(0);
        let parts = split(&good).unwrap();
        let canonical: Vec<Vec<u8>> = events.iter().map(Event::to_canonical).collect();
        assert_eq!(
            parts,
            canonical.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        for cut in 1..good.len() {
            assert!(split(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(split(&trailing), Err(CodecError::Trailing(1)));
        // Framing intact, one event's bytes not an event: split passes it, decode refuses.
        let mut bad = vec![VERSION, 2];
        for bytes in [canonical[0].as_slice(), &[0xff, 0xfe]] {
            put_varint(&mut bad, bytes.len() as u64);
            bad.extend_from_slice(bytes);
        }
        assert_eq!(split(&bad).unwrap().len(), 2);
        assert!(matches!(
            decode(&bad),
            Err(CodecError::Event { index: 1, .. })
        ));
    }
}
