//! Where the service reads the time, so tests can move it.

use std::fmt;

use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time. The service reads it to stamp records and to
/// check expiry; give it a [`ManualClock`](crate::testing::ManualClock) in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock, in UTC. The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// `duration` as the `time` crate's signed span, for date arithmetic:
/// saturating at its maximum (some 292 billion years, past every date).
pub(crate) fn signed(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}

/// A duration for people: `90d`, `1h30m`, `250ms`. The public API takes
/// `std::time::Duration`, whose only text form is `Debug` (`7776000s`).
pub(crate) struct Readable(pub(crate) Duration);

impl fmt::Display for Readable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&signed(self.0), f)
    }
}
