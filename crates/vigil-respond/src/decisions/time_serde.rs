//! Timestamps in `decisions.json`: nanoseconds since the epoch.

pub(super) mod nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use vigil_event::Timestamp;

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.as_nanos())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(d).map(Timestamp::from_nanos)
    }
}

/// Optional timestamps in `decisions.json`.
pub(super) mod opt_nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use vigil_event::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.as_nanos()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<i64>::deserialize(d).map(|o| o.map(Timestamp::from_nanos))
    }
}
