//! When was each token last used: verification notes it in memory, at most
//! once per token per interval; a flush writes the notes to the store.

use std::time::Duration;

use super::TokenService;
use crate::error::{PolicyError, StoreError};
use crate::usage::UsageTracker;

/// How often a token's use is written at most, unless configured otherwise.
pub const DEFAULT_LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

impl TokenService {
    /// The same service, recording a token's use at most once per `interval`
    /// (counted in whole seconds), or not at all for `None`.
    ///
    /// # Errors
    ///
    /// [`PolicyError::TooShort`] for an interval under one second.
    pub fn with_last_used_interval(
        mut self,
        interval: Option<Duration>,
    ) -> Result<Self, PolicyError> {
        if interval.is_some_and(|interval| interval < Duration::from_secs(1)) {
            return Err(PolicyError::TooShort);
        }
        self.usage = interval.map(UsageTracker::new);
        Ok(self)
    }

    /// Writes the uses verification noted since the last flush to the store,
    /// in one call, and returns how many: verification itself never writes.
    /// [`spawn_maintenance`](Self::spawn_maintenance) calls it every few
    /// seconds and once on shutdown; call it yourself only if you run no
    /// worker.
    ///
    /// # Errors
    ///
    /// A store failure; the uses are kept for the next flush.
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        let Some(usage) = &self.usage else {
            return Ok(0);
        };
        let now = self.now();
        let uses = usage.take();
        let written = if uses.is_empty() {
            Ok(())
        } else {
            self.store
                .record_uses(&uses)
                .await
                .inspect_err(|_| self.store_failed("record_uses"))
        };
        usage.finish(&uses, now, written.is_ok());
        written.map(|()| uses.len())
    }

    /// How often a token's use is recorded at most, or `None` when last-used
    /// tracking is off.
    pub fn last_used_interval(&self) -> Option<Duration> {
        self.usage.as_ref().map(|usage| usage.interval())
    }
}
