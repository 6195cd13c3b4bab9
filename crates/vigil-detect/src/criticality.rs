//! Alert severity from the asset: an alert on an event from a host an enrichment table marks
//! `high` or `critical` is raised one or two levels (capped at `critical`).
//!
//! The criticality is read from `vigil.criticality`, which only Vigil writes (the ingest
//! enrichment copies the table's `host.criticality` there; a sender's `vigil.*` fields are
//! moved under `external.` when parsed), so a sender cannot raise its own alerts by claiming
//! `host.criticality: critical`.

use vigil_event::Event;

use crate::alert::Level;

/// The field the ingest enrichment writes with the host table's criticality.
pub const FIELD: &str = "vigil.criticality";

/// `level` raised for the criticality `event` carries: `high` +1, `critical` +2.
pub fn raise(level: Level, event: &Event) -> Level {
    let steps = match event.get_str(FIELD) {
        Some("critical") => 2,
        Some("high") => 1,
        _ => 0,
    };
    (0..steps).fold(level, |l, _| match l {
        Level::Informational => Level::Low,
        Level::Low => Level::Medium,
        Level::Medium => Level::High,
        Level::High | Level::Critical => Level::Critical,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    #[test]
    fn criticality_raises_and_only_vigils_field_counts() {
        let mut e = Event::new(Timestamp::from_secs(0));
        assert_eq!(raise(Level::Medium, &e), Level::Medium);
        e.insert("host.criticality", "critical");
        assert_eq!(raise(Level::Medium, &e), Level::Medium, "a sender's claim");
        e.insert(FIELD, "high");
        assert_eq!(raise(Level::Low, &e), Level::Medium);
        e.insert(FIELD, "critical");
        assert_eq!(raise(Level::Informational, &e), Level::Medium);
        assert_eq!(raise(Level::High, &e), Level::Critical);
        e.insert(FIELD, "low");
        assert_eq!(raise(Level::High, &e), Level::High);
    }
}
