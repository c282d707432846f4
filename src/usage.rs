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
//! previous recorded one was at least an interval old (as of the last
//! flush); it reaches the store at the next flush; and the list therefore
//! shows a time at most one interval plus two flush periods older than the
//! true last use. A token's use is written at most once per interval: a use
//! noted while a flush writes it is not noted again.
//!
//! A service that notes uses but never flushes them (nobody started
//! [`TokenService::spawn_maintenance`] or called `flush_last_used`) warns
//! once through `tracing`, two intervals after the first use it noted.
//!
//! Bounds: the pending set holds at most one entry per token that verified
//! successfully (right secret, live) since its last write, so it never
//! grows past the number of live tokens, and forged or wrong tokens never
//! add to it. The retired-use throttle ([`OncePerInterval`]) has a fixed
//! size.
//!
//! [`TokenService::flush_last_used`]: crate::TokenService::flush_last_used
//! [`TokenService::spawn_maintenance`]: crate::TokenService::spawn_maintenance

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

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
    /// Unix seconds at the last successful flush; 0 before the first, so
    /// that a token never used is due at once.
    coarse_now: AtomicI64,
    shards: Box<[Mutex<Pending>]>,
    /// Unix seconds of the first use noted, 0 before it: when nobody
    /// flushing starts to matter.
    first_noted: AtomicI64,
    /// Set by the first flush, or by the warning that none came: either
    /// way nothing more to check.
    flushing_settled: AtomicBool,
}

/// One shard's uses: noted since the last flush, and taken by a flush whose
/// write has not returned yet (a use of those is not noted again, or the
/// next flush would write it a second time within the interval).
#[derive(Debug, Default)]
struct Pending {
    noted: HashMap<TokenId, OffsetDateTime>,
    writing: HashMap<TokenId, OffsetDateTime>,
}

impl UsageTracker {
    /// A tracker writing each token's use at most once per `interval`
    /// (whole seconds; the caller checked it is at least one).
    pub(crate) fn new(interval: Duration) -> Self {
        UsageTracker {
            interval_seconds: i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1),
            coarse_now: AtomicI64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            first_noted: AtomicI64::new(0),
            flushing_settled: AtomicBool::new(false),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds.unsigned_abs())
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
            let mut pending = self.shard(credential.id);
            let fresh = !pending.writing.contains_key(&credential.id)
                && !pending.noted.contains_key(&credential.id);
            // Until the first flush every use is due (nothing was written,
            // so nothing is recent), and each one checks whether the wait
            // has grown too long: one token used for hours must warn too.
            let unflushed = !self.flushing_settled.load(Ordering::Relaxed);
            if fresh || unflushed {
                let at = now();
                if fresh {
                    pending.noted.insert(credential.id, at);
                }
                drop(pending);
                if unflushed {
                    self.warn_if_never_flushed(at);
                }
            }
        }
    }

    /// Warns once if uses have waited two intervals since the first was
    /// noted and no flush has come: without one, no use is ever recorded,
    /// and nothing else would say so.
    #[cold]
    fn warn_if_never_flushed(&self, at: OffsetDateTime) {
        let now = at.unix_timestamp();
        let first =
            match self
                .first_noted
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(first) => first,
            };
        if now.saturating_sub(first) >= self.interval_seconds.saturating_mul(2)
            && !self.flushing_settled.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                target: "api_tokens",
                waiting_seconds = now.saturating_sub(first),
                "token uses are noted but never flushed, so no last-used time is ever \
                 written: start TokenService::spawn_maintenance, or call \
                 TokenService::flush_last_used every few seconds"
            );
        }
    }

    /// Takes every noted use for a flush to write; they stay marked as being
    /// written until that flush calls [`finish`](Self::finish) with them.
    ///
    /// Flushes may overlap: a token is in at most one flush's batch at a
    /// time, because a use of a token being written is not noted again.
    pub(crate) fn take(&self) -> Vec<(TokenId, OffsetDateTime)> {
        self.flushing_settled.store(true, Ordering::Relaxed);
        let mut taken = Vec::new();
        for shard in self.shards.iter() {
            let mut pending = lock(shard);
            let noted = std::mem::take(&mut pending.noted);
            taken.extend(noted.iter().map(|(&id, &at)| (id, at)));
            pending.writing.extend(noted);
        }
        taken
    }

    /// Ends the flush begun at `now` that took `batch`, and touches nothing
    /// another flush took. Written: the store has the times, and the coarse
    /// time moves on. Not written: the batch's uses wait for the next flush
    /// (none of them was noted meanwhile, so none is lost or doubled).
    pub(crate) fn finish(
        &self,
        batch: &[(TokenId, OffsetDateTime)],
        now: OffsetDateTime,
        written: bool,
    ) {
        for &(id, at) in batch {
            let mut pending = self.shard(id);
            pending.writing.remove(&id);
            if !written {
                pending.noted.insert(id, at);
            }
        }
        if written {
            self.coarse_now
                .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
        }
    }

    fn shard(&self, id: TokenId) -> MutexGuard<'_, Pending> {
        lock(&self.shards[id.bits() as usize % SHARDS])
    }
}

/// The most tokens one shard of [`OncePerInterval`] remembers: 16 shards of
/// 4,096 entries of 32 bytes, about 2 MiB at most.
pub(crate) const REMEMBERED_PER_SHARD: usize = 4096;

/// Lets something happen at most once per token per interval: the audit
/// event for a retired token's use, so that a client hammering the service
/// with one makes one event a minute, not one per request.
///
/// It remembers at most [`REMEMBERED_PER_SHARD`] tokens per shard, whatever
/// the traffic: a full shard first forgets the turns older than the
/// interval, which no longer hold anything back, and if it is still full
/// (more retired tokens used within one interval than it holds), forgets
/// all of them. A forgotten token may then have its turn again early: one
/// more audit event, never a lost one.
#[derive(Debug)]
pub(crate) struct OncePerInterval {
    interval: Duration,
    last: Box<[Mutex<HashMap<TokenId, OffsetDateTime>>]>,
}

impl OncePerInterval {
    pub(crate) fn new(interval: Duration) -> Self {
        OncePerInterval {
            interval,
            last: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Whether `id` may have its turn at `now`; if so, the next is an
    /// interval later.
    pub(crate) fn turn(&self, id: TokenId, now: OffsetDateTime) -> bool {
        let mut last = lock(&self.last[id.bits() as usize % SHARDS]);
        if let Some(&at) = last.get(&id)
            && now - at < self.interval
        {
            return false;
        }
        if last.len() >= REMEMBERED_PER_SHARD && !last.contains_key(&id) {
            last.retain(|_, at| now - *at < self.interval);
            if last.len() >= REMEMBERED_PER_SHARD {
                last.clear();
            }
        }
        last.insert(id, now);
        true
    }

    /// How many tokens it remembers now.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.last.iter().map(|shard| lock(shard).len()).sum()
    }
}

// A panic while the lock was held leaves at worst a use noted or not: the
// set is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_million_retired_tokens_leave_the_throttle_bounded() {
        let once = OncePerInterval::new(Duration::from_secs(60));
        let start = datetime!(2030-01-01 00:00 UTC);
        let mut turns = 0;
        for n in 0..1_000_000u64 {
            // Spread over the ids' shards, all within one interval.
            let id = TokenId::from_bits(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let now = start + Duration::from_micros(n);
            turns += usize::from(once.turn(id, now));
            if n % 4096 == 0 {
                assert!(once.remembered() <= SHARDS * REMEMBERED_PER_SHARD);
            }
        }
        assert_eq!(turns, 1_000_000, "every token's first use has its turn");
        assert!(once.remembered() <= SHARDS * REMEMBERED_PER_SHARD);
    }

    #[test]
    fn a_token_has_one_turn_per_interval() {
        let once = OncePerInterval::new(Duration::from_secs(60));
        let start = datetime!(2030-01-01 00:00 UTC);
        let id = TokenId::from_bits(7);
        assert!(once.turn(id, start));
        assert!(!once.turn(id, start + Duration::from_secs(59)));
        assert!(once.turn(id, start + Duration::from_secs(60)));
        assert!(!once.turn(id, start + Duration::from_secs(61)));
    }
}
