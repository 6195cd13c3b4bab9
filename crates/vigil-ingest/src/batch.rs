//! What one append hands the door: its events, and whether they are masked already.
//!
//! Every event from outside is masked with the operator's redactor before it is stored. A
//! listener that parses its input with `vigil_parse::parse_line` and the door's own redactor
//! ([`crate::Ingest::redactor`]) gets events that are masked already — the parser masks the
//! raw text and every field — so the door need not scan them a second time
//! ([`crate::Ingest::parsed`] says so, typed). Any other batch (`Vec<Event>` converts into
//! one) is masked by the door as before.

use vigil_event::Event;

/// The events of one append, and whether the door's redactor has masked them already.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) events: Vec<Event>,
    /// Masked by the door's own redactor, as `vigil_parse::parse_line` does: the door's
    /// redaction pass is skipped. Only [`crate::Ingest::parsed`] sets it.
    pub(crate) masked: bool,
}

impl Batch {
    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether the door will skip masking these events (they were masked when parsed).
    pub fn masked(&self) -> bool {
        self.masked
    }

    /// The events.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Moves the events of `other` to the end of this batch; the whole is masked only if
    /// both parts were (an empty batch takes the other's state).
    pub fn append(&mut self, mut other: Batch) {
        self.masked = if self.events.is_empty() {
            other.masked
        } else {
            self.masked && (other.masked || other.events.is_empty())
        };
        self.events.append(&mut other.events);
    }
}

/// Events not known to be masked: the door masks them.
impl From<Vec<Event>> for Batch {
    fn from(events: Vec<Event>) -> Batch {
        Batch {
            events,
            masked: false,
        }
    }
}
