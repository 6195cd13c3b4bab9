//! Where the detector reads events from: the local ledger's durable events (standalone), or
//! the replicated stream in stream order (cluster mode, `crate::cluster::detect`). Positions
//! are increasing numbers the alert book records (`vigil.alert.last_seq`, samples) and the
//! cursor saves; standalone they are the ledger's sequence numbers, unchanged.

use vigil_event::Event;
use vigil_ledger::LedgerReader;

/// A source of events for the detector, read forward from a position.
pub trait EventSource: Send {
    /// Calls `f(position, event)` for the events from position `from` on (at most about
    /// `max`: a source may finish the message it is in), in order; returns how many it read
    /// and the position to read from next (`from` when nothing new is there). Events that do
    /// not decode are skipped.
    fn read(
        &mut self,
        from: u64,
        max: u64,
        f: &mut dyn FnMut(u64, &Event),
    ) -> Result<(u64, u64), String>;

    /// [`EventSource::read`], calling `f` only for the events whose canonical bytes `wanted`
    /// accepts: the others are counted and passed over without being decoded (the detector
    /// passes over events no loaded rule can match). A source that does not hold canonical
    /// bytes calls `f` for every event.
    fn read_wanted(
        &mut self,
        from: u64,
        max: u64,
        wanted: &dyn Fn(&[u8]) -> bool,
        f: &mut dyn FnMut(u64, &Event),
    ) -> Result<(u64, u64), String> {
        let _ = wanted;
        self.read(from, max, f)
    }
}

/// The local ledger, never past its durable end: the standalone detector, as before.
impl EventSource for LedgerReader {
    fn read(
        &mut self,
        from: u64,
        max: u64,
        f: &mut dyn FnMut(u64, &Event),
    ) -> Result<(u64, u64), String> {
        self.read_wanted(from, max, &|_| true, f)
    }

    fn read_wanted(
        &mut self,
        from: u64,
        max: u64,
        wanted: &dyn Fn(&[u8]) -> bool,
        f: &mut dyn FnMut(u64, &Event),
    ) -> Result<(u64, u64), String> {
        self.refresh().map_err(|e| e.to_string())?;
        let start = from.max(self.first_seq());
        let end = self.end_seq().min(start + max);
        if start >= end {
            return Ok((0, from));
        }
        let mut n = 0;
        self.for_each_raw(start..end, |seq, raw| {
            n += 1;
            if wanted(raw)
                && let Ok(event) = Event::from_canonical(raw)
            {
                f(seq, &event);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((n, start + n))
    }
}
