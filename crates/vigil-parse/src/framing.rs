//! Syslog stream framing (RFC 6587): octet counting (`LEN SP MSG`) or one message per line.
//!
//! Pure: the TCP and TLS listeners push received bytes in and take messages out. A message
//! longer than the maximum is cut there and flagged `truncated`; the rest of it is skipped.

/// One message cut out of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message bytes (without framing).
    pub bytes: Vec<u8>,
    /// Cut at the maximum message size.
    pub truncated: bool,
}

/// Splits a byte stream into syslog messages: RFC 6587 octet counting (`LEN SP MSG`) when a
/// frame starts with digits, a space and `<`; otherwise one message per line (LF, with an
/// optional CR before it; NUL also ends a message).
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    /// Bytes of an oversized message still to skip: `Some(n)` for octet counting, `Some(0)`
    /// meaning "until the next line end".
    skip: Option<usize>,
}

impl Framer {
    /// A framer cutting messages at `max` bytes.
    pub fn new(max: usize) -> Framer {
        Framer {
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            max: max.max(64),
            skip: None,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return None;
            }
            match self.skip {
                Some(0) => match rest.iter().position(|&b| b == b'\n' || b == 0) {
                    Some(i) => {
                        self.start += i + 1;
                        self.skip = None;
                        continue;
                    }
                    None => {
                        self.start = self.buf.len();
                        return None;
                    }
                },
                Some(n) => {
                    let k = n.min(rest.len());
                    self.start += k;
                    self.skip = if k == n { None } else { Some(n - k) };
                    continue;
                }
                None => {}
            }
            // Skip stray line ends between messages.
            if rest[0] == b'\n' || rest[0] == b'\r' || rest[0] == 0 {
                self.start += 1;
                continue;
            }
            if let Some((len, header)) = octet_count(rest) {
                if len > self.max {
                    if rest.len() < header + self.max {
                        return None;
                    }
                    let bytes = rest[header..header + self.max].to_vec();
                    self.start += header + self.max;
                    self.skip = Some(len - self.max);
                    if len - self.max == 0 {
                        self.skip = None;
                    }
                    return Some(Frame {
                        bytes,
                        truncated: true,
                    });
                }
                if rest.len() < header + len {
                    return None;
                }
                let bytes = trim_line_end(&rest[header..header + len]).to_vec();
                self.start += header + len;
                return Some(Frame {
                    bytes,
                    truncated: false,
                });
            }
            if octet_count_possible(rest) {
                // Digits so far, no space yet: wait for more.
                return None;
            }
            match rest.iter().position(|&b| b == b'\n' || b == 0) {
                Some(i) if i <= self.max => {
                    let bytes = trim_line_end(&rest[..i]).to_vec();
                    self.start += i + 1;
                    return Some(Frame {
                        bytes,
                        truncated: false,
                    });
                }
                _ if rest.len() > self.max => {
                    let bytes = rest[..self.max].to_vec();
                    self.start += self.max;
                    self.skip = Some(0);
                    return Some(Frame {
                        bytes,
                        truncated: true,
                    });
                }
                _ => return None,
            }
        }
    }

    /// At end of stream: whatever is left, as a final message.
    pub fn finish(&mut self) -> Option<Frame> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        if self.skip.is_some() {
            return None;
        }
        let mut rest = trim_line_end(&self.buf[self.start..]);
        self.start = self.buf.len();
        // An octet-counted frame cut short by the end of the stream: keep what came.
        let mut truncated = false;
        if let Some((_, header)) = octet_count(rest) {
            rest = &rest[header..];
            truncated = true;
        }
        if rest.len() > self.max {
            rest = &rest[..self.max];
            truncated = true;
        }
        if rest.is_empty() {
            None
        } else {
            Some(Frame {
                bytes: rest.to_vec(),
                truncated,
            })
        }
    }
}

/// The bytes without trailing CR, LF and NUL.
pub fn trim_line_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    &b[..end]
}

/// `LEN SP <` at the start: `(LEN, bytes of "LEN SP")`.
fn octet_count(b: &[u8]) -> Option<(usize, usize)> {
    if !(b'1'..=b'9').contains(b.first()?) {
        return None;
    }
    let digits = b.iter().take(10).take_while(|c| c.is_ascii_digit()).count();
    if b.get(digits) != Some(&b' ') || b.get(digits + 1) != Some(&b'<') {
        return None;
    }
    let len: usize = std::str::from_utf8(&b[..digits]).ok()?.parse().ok()?;
    Some((len, digits + 1))
}

/// Could this still become an octet-counted frame once more bytes arrive?
fn octet_count_possible(b: &[u8]) -> bool {
    if !b.first().is_some_and(|c| (b'1'..=b'9').contains(c)) {
        return false;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    digits <= 10 && (digits == b.len() || (b[digits] == b' ' && digits + 1 == b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max: usize) -> Vec<Frame> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for chunk in input {
            f.push(chunk);
            while let Some(x) = f.next_frame() {
                out.push(x);
            }
        }
        while let Some(x) = f.finish() {
            out.push(x);
        }
        out
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .collect()
    }

    #[test]
    fn lf_framing_across_chunks() {
        let f = frames(&[b"<13>one\r\n<13>tw", b"o\n\n<13>three"], 1024);
        assert_eq!(texts(&f), ["<13>one", "<13>two", "<13>three"]);
    }

    #[test]
    fn octet_counting_with_embedded_newlines() {
        let msg = "<13>multi\nline";
        let framed = format!("{} {msg}{} {msg}", msg.len(), msg.len());
        let bytes = framed.as_bytes();
        let f = frames(&[&bytes[..3], &bytes[3..20], &bytes[20..]], 1024);
        assert_eq!(texts(&f), [msg, msg]);
    }

    #[test]
    fn a_line_starting_with_digits_is_not_octet_counted() {
        let f = frames(&[b"2026-11-22T10:00:00Z host app: x\n12 apples\n"], 1024);
        assert_eq!(texts(&f), ["2026-11-22T10:00:00Z host app: x", "12 apples"]);
    }

    #[test]
    fn oversized_messages_are_cut_and_the_rest_skipped() {
        let long = format!("<13>{}\n<13>next\n", "x".repeat(300));
        let f = frames(&[long.as_bytes()], 100);
        assert_eq!(f.len(), 2);
        assert!(f[0].truncated);
        assert_eq!(f[0].bytes.len(), 100);
        assert_eq!(texts(&f[1..]), ["<13>next"]);
        let msg = format!("<13>{}", "y".repeat(300));
        let framed = format!("{} {msg}5 <13>a", msg.len());
        let f = frames(&[framed.as_bytes()], 100);
        assert_eq!(f.len(), 2);
        assert!(f[0].truncated);
        assert_eq!(texts(&f[1..]), ["<13>a"]);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let inputs: [&[u8]; 6] = [
            b"9999999999999 <",
            b"0 <",
            b"\0\0\0",
            b"12345678901234567890 <x",
            b"5 <13>abcdefgh",
            b"\xff\xfe\n",
        ];
        for input in inputs {
            let _ = frames(&[input], 64);
        }
    }
}
