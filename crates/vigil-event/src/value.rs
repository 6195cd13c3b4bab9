//! Typed field values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// A typed field value.
///
/// Equality compares floats by their bits, which is what the canonical encoding does: `0.0` and
/// `-0.0` are different values, and all NaNs are stored as one canonical NaN.
#[derive(Debug, Clone)]
pub enum Value {
    /// JSON `null`; Sigma's `field: null` matches it and absent fields.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float (NaN is normalised to one canonical NaN).
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An ordered list.
    List(Vec<Value>),
    /// A map, kept only inside lists (at top level it is flattened into dotted keys).
    Map(BTreeMap<String, Value>),
}

/// The one NaN bit pattern Vigil stores.
pub(crate) const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

impl Value {
    /// A float, with NaN normalised to the canonical NaN.
    pub fn float(f: f64) -> Value {
        if f.is_nan() {
            Value::Float(f64::from_bits(CANONICAL_NAN))
        } else {
            Value::Float(f)
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside, if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A number as f64 (integers converted), if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The address inside, if this is an IP.
    pub fn as_ip(&self) -> Option<IpAddr> {
        match self {
            Value::Ip(ip) => Some(*ip),
            _ => None,
        }
    }

    /// The value as JSON (IPs as strings, non-finite floats as null).
    pub fn to_json(&self) -> serde_json::Value {
        crate::json::value_to_json(self)
    }

    /// A short name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Ip(_) => "ip",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Ip(a), Value::Ip(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

/// Renders the value as a user would type it: strings bare, lists and maps as JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::List(_) | Value::Map(_) => write!(f, "{}", crate::json::value_to_json(self)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<u16> for Value {
    fn from(i: u16) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<IpAddr> for Value {
    fn from(ip: IpAddr) -> Value {
        Value::Ip(ip)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}
