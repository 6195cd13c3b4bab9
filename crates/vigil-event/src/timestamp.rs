//! Event time: nanoseconds since the Unix epoch, UTC.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// An instant in UTC with nanosecond precision (years 1677 to 2262).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// A timestamp string or number that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot read {input:?} as a timestamp (expected RFC 3339 like 2026-11-22T10:00:00Z, or epoch seconds/milliseconds)"
)]
pub struct TimestampError {
    input: String,
}

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// From milliseconds since the epoch (saturating outside the representable range).
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// From seconds since the epoch (saturating outside the representable range).
    pub const fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }

    /// From a chrono UTC time (saturating outside 1677..2262).
    pub fn from_datetime(dt: DateTime<Utc>) -> Timestamp {
        match dt.timestamp_nanos_opt() {
            Some(n) => Timestamp(n),
            None if dt.timestamp() < 0 => Timestamp(i64::MIN),
            None => Timestamp(i64::MAX),
        }
    }

    /// As a chrono UTC time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    /// RFC 3339 in UTC with as many fractional digits as needed (`2026-11-22T10:00:00.5Z`).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Reads RFC 3339 (`2026-11-22T10:00:00Z`, with offset or fraction), the same with a space
    /// instead of `T`, or a naive `2026-11-22T10:00:00` taken as UTC.
    pub fn parse(input: &str) -> Result<Timestamp, TimestampError> {
        let s = input.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp::from_datetime(dt.with_timezone(&Utc)));
        }
        for format in [
            "%Y-%m-%d %H:%M:%S%.f%:z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f%z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(s, format) {
                return Ok(Timestamp::from_datetime(dt.with_timezone(&Utc)));
            }
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
                return Ok(Timestamp::from_datetime(naive.and_utc()));
            }
        }
        Err(TimestampError {
            input: input.chars().take(64).collect(),
        })
    }

    /// Reads an integral epoch number (milliseconds above 10^11, else seconds), saturating.
    pub fn from_epoch_int(n: i64) -> Timestamp {
        if n.unsigned_abs() > 100_000_000_000 {
            Timestamp::from_millis(n)
        } else {
            Timestamp::from_secs(n)
        }
    }

    /// Reads an epoch number: values above 10^11 are taken as milliseconds (10^11 seconds is
    /// the year 5138), others as seconds.
    pub fn from_epoch_number(n: f64) -> Result<Timestamp, TimestampError> {
        if !n.is_finite() {
            return Err(TimestampError {
                input: n.to_string(),
            });
        }
        if n.fract() == 0.0 && n.abs() < 9e15 {
            return Ok(Timestamp::from_epoch_int(n as i64));
        }
        let nanos = if n.abs() > 1e11 { n * 1e6 } else { n * 1e9 };
        if nanos < i64::MIN as f64 || nanos > i64::MAX as f64 {
            return Err(TimestampError {
                input: n.to_string(),
            });
        }
        Ok(Timestamp(nanos as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::parse("2026-11-22T10:00:00.123456789Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T10:00:00.123456789Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn offsets_become_utc() {
        let t = Timestamp::parse("2026-11-22T12:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T10:00:00Z");
        let naive = Timestamp::parse("2026-11-22 10:00:00").unwrap();
        assert_eq!(naive, t);
    }

    #[test]
    fn epoch_numbers() {
        assert_eq!(
            Timestamp::from_epoch_number(1_700_000_000.0).unwrap(),
            Timestamp::from_secs(1_700_000_000)
        );
        assert_eq!(
            Timestamp::from_epoch_number(1_700_000_000_123.0).unwrap(),
            Timestamp::from_millis(1_700_000_000_123)
        );
        assert!(Timestamp::from_epoch_number(f64::NAN).is_err());
    }

    #[test]
    fn garbage_is_an_error_naming_the_input() {
        let err = Timestamp::parse("yesterday-ish").unwrap_err();
        assert!(err.to_string().contains("yesterday-ish"));
    }
}
