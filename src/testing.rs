//! Aids for tests, yours included: a clock that moves only when told, and
//! an audit sink that keeps every event in memory. Neither belongs in
//! production: the clock never moves by itself, and the sink grows with
//! every event.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditSink};
use crate::clock::Clock;

/// A clock that stands still until told to move: for tests, including your
/// own tests of code that uses this crate.
///
/// Clones share one time, so a test keeps a clone and moves the clock the
/// service reads.
///
/// ```
/// use api_tokens::Clock;
/// use api_tokens::testing::ManualClock;
/// use std::time::Duration;
/// use time::macros::datetime;
///
/// let clock = ManualClock::new(datetime!(2030-01-01 00:00 UTC));
/// let handle = clock.clone();
/// handle.advance(Duration::from_secs(24 * 3600));
/// assert_eq!(clock.now(), datetime!(2030-01-02 00:00 UTC));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock that reads `start` until moved.
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the time to `now`.
    pub fn set(&self, now: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time forward by `by`.
    ///
    /// # Panics
    ///
    /// If the result lies past the years `time` can represent (9999): a
    /// test that does this has a bug worth stopping for.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Moves the time back by `by`: a clock corrected backwards.
    ///
    /// # Panics
    ///
    /// As [`advance`](Self::advance), before the year -9999.
    pub fn rewind(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now -= by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// Keeps every event in memory, in order: for tests, including yours. It
/// never forgets one, so it grows with every event: not for production.
/// Call [`TokenService::flush_audit`](crate::TokenService::flush_audit)
/// before reading it, so every event so far has arrived.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event recorded so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}
