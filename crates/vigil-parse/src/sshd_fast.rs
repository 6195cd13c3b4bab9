//! The two sshd messages that make most of an auth.log — `Failed <method> for [invalid user]
//! <user> from <addr> port <n>` and `Accepted <method> for <user> from <addr> port <n>` — read
//! by hand, giving exactly the captures of the regular expressions in [`crate::linux`]
//! (`SSH_FAILED`, `SSH_ACCEPTED`). Only ASCII messages without a line feed take this path (where
//! `\S`, `\d` and `.` mean what the byte tests below test); others go to the regexes. The test
//! `hand_reading_agrees_with_the_regexes` holds both to the same answers.

/// The captures the callers use.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Login<'a> {
    pub method: &'a str,
    pub invalid_user: bool,
    pub user: &'a str,
    pub addr: &'a str,
    pub port: &'a str,
}

/// Whether this path may answer for `m` (else the regexes do).
pub(crate) fn applies(m: &str) -> bool {
    m.is_ascii() && memchr::memchr(b'\n', m.as_bytes()).is_none()
}

/// Regex `\s` on ASCII.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `(\S+)` at `i` followed by `then`: where the run ends, or `None`.
fn word_then(b: &[u8], i: usize, then: &[u8]) -> Option<usize> {
    let mut j = i;
    while j < b.len() && !is_space(b[j]) {
        j += 1;
    }
    (j > i && b[j..].starts_with(then)).then_some(j)
}

/// `(\d+)` at `i`: where the digits end, or `None`.
fn digits(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    (j > i).then_some(j)
}

/// ` from (\S+) port (\d+)` at `at`: the address and port ranges.
fn from_port(b: &[u8], at: usize) -> Option<(Span, Span)> {
    let addr = at + b" from ".len();
    if !b[at..].starts_with(b" from ") {
        return None;
    }
    let addr_end = word_then(b, addr, b" port ")?;
    let port = addr_end + b" port ".len();
    let port_end = digits(b, port)?;
    Some(((addr, addr_end), (port, port_end)))
}

/// A byte range.
type Span = (usize, usize);

/// `(.*) from (\S+) port (\d+)` from `start`: the **last** ` from ` after which the rest reads
/// (where the user ends, the address, the port). The last, because sshd writes the client's
/// address after the user name, and a user name an attacker chose can hold
/// ` from 6.6.6.6 port 1` itself (which would frame that address for a ban).
fn lazy_user(m: &str, start: usize) -> Option<(usize, Span, Span)> {
    let b = m.as_bytes();
    let mut end = b.len();
    while let Some(at) = memchr::memmem::rfind(&b[start..end], b" from ").map(|off| start + off) {
        if let Some((addr, port)) = from_port(b, at) {
            return Some((at, addr, port));
        }
        end = at;
    }
    None
}

/// `^Failed (\S+) for (invalid user )?(.*) from (\S+) port (\d+)`.
pub(crate) fn failed(m: &str) -> Option<Login<'_>> {
    let b = m.as_bytes();
    let rest = b.strip_prefix(b"Failed ")?;
    let method_start = b.len() - rest.len();
    let method_end = word_then(b, method_start, b" for ")?;
    let user_start = method_end + b" for ".len();
    let invalid = b[user_start..].starts_with(b"invalid user ");
    let (invalid, user_start, (user_end, addr, port)) = invalid
        .then(|| {
            let start = user_start + b"invalid user ".len();
            lazy_user(m, start).map(|found| (true, start, found))
        })
        .flatten()
        .or_else(|| lazy_user(m, user_start).map(|found| (false, user_start, found)))?;
    Some(Login {
        method: &m[method_start..method_end],
        invalid_user: invalid,
        user: &m[user_start..user_end],
        addr: &m[addr.0..addr.1],
        port: &m[port.0..port.1],
    })
}

/// `^Accepted (\S+) for (\S+) from (\S+) port (\d+)`.
pub(crate) fn accepted(m: &str) -> Option<Login<'_>> {
    let b = m.as_bytes();
    let rest = b.strip_prefix(b"Accepted ")?;
    let method_start = b.len() - rest.len();
    let method_end = word_then(b, method_start, b" for ")?;
    let user_start = method_end + b" for ".len();
    let user_end = word_then(b, user_start, b" from ")?;
    let (addr, port) = from_port(b, user_end)?;
    Some(Login {
        method: &m[method_start..method_end],
        invalid_user: false,
        user: &m[user_start..user_end],
        addr: &m[addr.0..addr.1],
        port: &m[port.0..port.1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn by_regex<'a>(re: &Regex, m: &'a str, failed: bool) -> Option<Login<'a>> {
        let c = re.captures(m)?;
        let g = |i: usize| c.get(i).map_or("", |x| x.as_str());
        Some(if failed {
            Login {
                method: g(1),
                invalid_user: c.get(2).is_some(),
                user: g(3),
                addr: g(4),
                port: g(5),
            }
        } else {
            Login {
                method: g(1),
                invalid_user: false,
                user: g(2),
                addr: g(3),
                port: g(4),
            }
        })
    }

    /// The expressions as `linux.rs` has them (copied, so that a change there shows here).
    static FAILED: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"^Failed (\S+) for (invalid user )?(.*) from (\S+) port (\d+)(?: (ssh\d?))?")
            .unwrap()
    });
    static ACCEPTED: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"^Accepted (\S+) for (\S+) from (\S+) port (\d+)(?: (ssh\d?))?(?:: (.*))?")
            .unwrap()
    });

    fn check(m: &str) {
        if applies(m) {
            assert_eq!(failed(m), by_regex(&FAILED, m, true), "{m:?}");
            assert_eq!(accepted(m), by_regex(&ACCEPTED, m, false), "{m:?}");
            assert_eq!(failed(m), crate::linux::ssh_failed_by_regex(m), "{m:?}");
            assert_eq!(accepted(m), crate::linux::ssh_accepted_by_regex(m), "{m:?}");
        }
    }

    #[test]
    fn hand_reading_agrees_with_the_regexes() {
        for m in [
            "Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2",
            "Failed password for root from 203.0.113.5 port 22 ssh2",
            "Failed password for invalid user a b from 2001:db8::7 port 2222 ssh2",
            "Failed publickey for root from 198.51.100.2 port 40000 ssh2: RSA SHA256:abc",
            "Failed password for invalid user from 1.2.3.4 port 22",
            "Failed password for invalid user  from 1.2.3.4 port 22",
            "Failed password for  from 1.2.3.4 port 22",
            "Failed password for x from from 1.2.3.4 port 22",
            "Failed password for x from y from 1.2.3.4 port 22",
            "Failed password for x from 1.2.3.4 port x from 5.6.7.8 port 9",
            "Failed password for x from 1.2.3.4  port 22",
            "Failed none for x from 1.2.3.4 port ",
            "Failed\tpassword for x from 1.2.3.4 port 1",
            "Failed  password for x from 1.2.3.4 port 1",
            "Accepted publickey for alice from 198.51.100.7 port 50022 ssh2: ED25519 SHA256:x",
            "Accepted password for a b from 1.2.3.4 port 1",
            "Accepted password for alice from 1.2.3.4 port 1x",
            "Accepted password for alice from  port 1",
            "Accepted keyboard-interactive/pam for bob from 10.0.0.1 port 7 ssh2",
        ] {
            check(m);
        }
        use proptest::prelude::*;
        let part = prop::sample::select(vec![
            "Failed ",
            "Accepted ",
            "password",
            "publickey",
            " for ",
            "for",
            "invalid user ",
            "invalid",
            " user ",
            " from ",
            "from",
            " port ",
            "port",
            "22",
            "1.2.3.4",
            "::1",
            " ",
            "\t",
            "x",
            "ssh2",
            ": ",
            "\u{b}",
        ]);
        let head = prop::sample::select(vec!["Failed ", "Accepted ", ""]);
        let line = (head, prop::collection::vec(part, 0..14))
            .prop_map(|(h, p)| format!("{h}{}", p.concat()));
        proptest!(ProptestConfig::with_cases(10_000), |(line in line)| {
            check(&line);
        });
    }
}
