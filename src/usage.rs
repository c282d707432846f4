//! "Last used" tracking that never slows verification.
//!
//! A successful verification compares the token's recorded `last_used_at`
//! (which the store returned with the credential anyway) with a coarse
//! "now" that [`TokenService::flush_last_used`] sets: no clock read, no lock,
//! one relaxed atomic load. Only when the interval has passed does it note
//! the use, with the real time, in a pending set (at most one entry per
//! token); the next flush writes the whole set to the store in one call.
//!
//! So a user gets: `last_used_at` is the time of the first use after the
//! previous recorded one was at least an interval old; it reaches the store
//! at the next flush; and the list therefore shows a time at most one
//! interval plus one flush period older than the true last use.
//!
//! [`TokenService::flush_last_used`]: crate::TokenService::flush_last_used

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::{Duration, OffsetDateTime};

use crate::record::StoredCredential;
use crate::token::TokenId;

/// Shards of the pending set, so verifications of different tokens rarely
/// wait for one another on the rare occasions they note a use.
const SHARDS: usize = 16;

/// Uses noted since the last flush, and the coarse time they are judged by.
#[derive(Debug)]
pub(crate) struct UsageTracker {
    /// At most one write per token per this many seconds.
    interval_seconds: i64,
    /// Unix seconds at the last flush; 0 before the first, so that a token
    /// never used is due at once.
    coarse_now: AtomicI64,
    pending: Box<[Mutex<HashMap<TokenId, OffsetDateTime>>]>,
}

impl UsageTracker {
    /// A tracker writing each token's use at most once per `interval`
    /// (counted in whole seconds, at least one).
    pub(crate) fn new(interval: Duration) -> Self {
        UsageTracker {
            interval_seconds: interval.whole_seconds().max(1),
            coarse_now: AtomicI64::new(0),
            pending: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::seconds(self.interval_seconds)
    }

    /// Notes a successful verification of `credential`, if its last
    /// recorded use is an interval old; `now` is read only then.
    #[inline]
    pub(crate) fn note(&self, credential: &StoredCredential, now: impl FnOnce() -> OffsetDateTime) {
        // A stale coarse time only delays a token's next write to a later
        // flush; nothing else depends on it, so relaxed is enough.
        let coarse_now = self.coarse_now.load(Ordering::Relaxed);
        let due = credential
            .last_used_at
            .is_none_or(|last| coarse_now - last.unix_timestamp() >= self.interval_seconds);
        if due {
            self.shard(credential.id)
                .entry(credential.id)
                .or_insert_with(now);
        }
    }

    /// Takes every pending use, and moves the coarse time to `now`.
    pub(crate) fn take(&self, now: OffsetDateTime) -> Vec<(TokenId, OffsetDateTime)> {
        self.coarse_now
            .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
        self.pending
            .iter()
            .flat_map(|shard| lock(shard).drain().collect::<Vec<_>>())
            .collect()
    }

    /// Puts back uses a flush could not write, so the next flush tries
    /// again. A use of the same token noted meanwhile is newer, and stays.
    pub(crate) fn put_back(&self, uses: Vec<(TokenId, OffsetDateTime)>) {
        for (id, at) in uses {
            self.shard(id).entry(id).or_insert(at);
        }
    }

    fn shard(&self, id: TokenId) -> MutexGuard<'_, HashMap<TokenId, OffsetDateTime>> {
        lock(&self.pending[id.bits() as usize % SHARDS])
    }
}

// A panic while the lock was held leaves at worst a use noted or not: the
// set is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
