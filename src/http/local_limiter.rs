//! The default rate limiter: a GCRA per token (governor's), in this
//! process, in bounded memory.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use hashlink::LinkedHashMap;
use time::OffsetDateTime;

use super::rate_limits::{RateDecision, RateLimiter};
use crate::clock::Clock;
use crate::restrictions::RateLimit;
use crate::token::TokenId;

/// The most shards the tokens are spread over: enough that requests of
/// different tokens rarely wait for the same lock.
const MAX_SHARDS: usize = 16;

/// The fewest tokens a shard holds, unless the capacity is smaller.
const MIN_SHARD_CAPACITY: usize = 64;

/// Where the limiter's time stops, in nanoseconds since it started (some
/// 146 years): governor adds periods to instants unchecked, and this
/// leaves room for every period a [`RateLimit`] may have.
const MAX_NANOS: u64 = 1 << 62;

/// Counts each token's requests in this process with the GCRA
/// ([governor](https://docs.rs/governor)'s): one request's worth of a
/// token's quota comes back every `period / requests`, up to a burst of
/// `requests`. Exact, and nothing leaves the process: **the limit is per
/// service instance**, so N instances allow up to N × the limit (see
/// [`RateLimiter`] for a shared one).
///
/// # Bounded memory
///
/// It tracks at most [`capacity`](Self::capacity) tokens
/// ([`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) unless told), however many
/// distinct tokens it sees, in about 100 bytes each (some 10 MB at the
/// default). The tokens are spread over up to 16 shards by id, each with its
/// share of the capacity (64 tokens or more) and its own lock. When a token's shard is full,
/// making room for it:
///
/// 1. first drops every token whose quota has fully come back: nothing is
///    lost, since a token seen anew starts with its full quota anyway;
/// 2. then, if none has, the least recently used token. That one token
///    loses its count: used again within its period, it starts with a
///    fresh burst, so it may make up to `requests` more requests in that
///    period than its limit allows. That happens only while more tokens
///    than the capacity are in use within their periods; size the capacity
///    above the number of limited tokens active at once and it never
///    does.
///
/// A token whose limit changes (another scope default, or a service that
/// computes limits itself) starts
/// afresh under the new limit.
///
/// ```
/// use std::time::Duration;
/// use api_tokens::http::{LocalRateLimiter, RateLimiter};
/// use api_tokens::{RateLimit, TokenId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = LocalRateLimiter::with_capacity(10_000);
/// let token: TokenId = "3kT9QxPb1Zr".parse()?;
/// let limit = RateLimit::new(2, Duration::from_secs(60))?;
/// assert!(limiter.check(token, limit).await.is_allowed());
/// assert!(limiter.check(token, limit).await.is_allowed());
/// let third = limiter.check(token, limit).await;
/// assert!(!third.is_allowed());
/// assert!(third.reset() <= Duration::from_secs(30)); // one back every 30 s
/// assert_eq!(limiter.len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct LocalRateLimiter {
    shards: Box<[Shard]>,
    capacity: usize,
    ticker: Ticker,
}

/// One shard, aligned so that no two shards' locks share a cache line.
#[repr(align(128))]
struct Shard(Mutex<Table>);

/// A shard's tokens, least recently used first.
struct Table {
    entries: LinkedHashMap<TokenId, Entry, RandomState>,
    capacity: usize,
    /// Before this instant no entry's quota has fully come back, so a
    /// sweep would find nothing: it spares a full table a scan per new
    /// token. (It may be early, never late.)
    next_sweep: u64,
}

/// One token's state.
struct Entry {
    limit: RateLimit,
    gcra: Gcra<NotKeyed, InMemoryState, Ticker, StateInformationMiddleware>,
    /// When it was last checked, allowed or not.
    last_used: u64,
}

impl LocalRateLimiter {
    /// How many tokens a limiter tracks unless told otherwise.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A limiter tracking up to [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)
    /// tokens, on the system's monotonic clock.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A limiter tracking up to `capacity` tokens (at least one), on the
    /// system's monotonic clock.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // A power of two, so the top bits of an id pick its shard, each
        // with room for a fair number of tokens: a shard of a handful
        // would evict while others have room.
        let shards = 1 << (capacity / MIN_SHARD_CAPACITY).clamp(1, MAX_SHARDS).ilog2();
        let shards = (0..shards)
            .map(|index| {
                let share = capacity / shards + usize::from(index < capacity % shards);
                Shard(Mutex::new(Table {
                    entries: LinkedHashMap::with_hasher(RandomState::new()),
                    capacity: share,
                    next_sweep: 0,
                }))
            })
            .collect();
        LocalRateLimiter {
            shards,
            capacity,
            ticker: Ticker(Arc::new(TimeSource::Monotonic(Instant::now()))),
        }
    }

    /// The same limiter, reading time from `clock` instead (a
    /// [`ManualClock`](crate::testing::ManualClock), to test a limit
    /// refilling without waiting), from the moment of this call. Time
    /// before that moment reads as that moment; a clock moved back after
    /// it moves the limiter back too, and no token gets quota early from
    /// it. Forgets every token tracked so far.
    ///
    /// The system clock can jump (NTP corrections); the default monotonic
    /// clock cannot, so keep it outside tests.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let start = clock.now();
        let mut limiter = Self::with_capacity(self.capacity);
        limiter.ticker = Ticker(Arc::new(TimeSource::Clock { clock, start }));
        limiter
    }

    /// How many tokens it tracks at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many tokens it tracks now: never more than the capacity.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).entries.len())
            .sum()
    }

    /// Whether it tracks no token.
    pub fn is_empty(&self) -> bool {
        self.shards
            .iter()
            .all(|shard| lock(shard).entries.is_empty())
    }

    /// Counts a request of `token` against `limit` now.
    fn check_now(&self, token: TokenId, limit: RateLimit) -> RateDecision {
        let now = self.ticker.nanos();
        let shard = &self.shards[shard_index(token, self.shards.len())];
        let mut table = lock(shard);
        let known = table
            .entries
            .to_back(&token)
            .is_some_and(|entry| entry.limit == limit);
        if !known {
            // A new token, or one whose limit changed: a fresh state (its
            // old one, if any, is replaced, so the table does not grow).
            if !table.entries.contains_key(&token) {
                table.make_room(now);
            }
            table
                .entries
                .replace(token, Entry::new(limit, self.ticker.clone()));
        }
        let Some(entry) = table.entries.get_mut(&token) else {
            // Inserted just above, under the same lock.
            return RateDecision::allowed(0, interval(limit));
        };
        entry.last_used = now;
        let full_at = entry.full_at();
        let decision = match entry.gcra.check() {
            Ok(state) => RateDecision::allowed(state.remaining_burst_capacity(), interval(limit)),
            Err(not_until) => RateDecision::denied(not_until.wait_time_from(Nanos::from(now))),
        };
        table.next_sweep = table.next_sweep.min(full_at);
        decision
    }
}

impl Default for LocalRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RateLimiter for LocalRateLimiter {
    /// Never waits: one lock of one shard, held for a map lookup and an
    /// atomic update.
    async fn check(&self, token: TokenId, limit: RateLimit) -> RateDecision {
        self.check_now(token, limit)
    }
}

impl Table {
    /// Makes room for one more token, if the table is full: first by
    /// dropping every token whose quota has fully come back, then, if none
    /// has, the least recently used.
    fn make_room(&mut self, now: u64) {
        if self.entries.len() < self.capacity {
            return;
        }
        if now >= self.next_sweep {
            let mut next_sweep = u64::MAX;
            self.entries.retain(|_, entry| {
                let full_at = entry.full_at();
                let keep = full_at > now;
                if keep {
                    next_sweep = next_sweep.min(full_at);
                }
                keep
            });
            self.next_sweep = next_sweep;
        }
        while self.entries.len() >= self.capacity {
            if self.entries.pop_front().is_none() {
                break;
            }
        }
    }
}

impl Entry {
    fn new(limit: RateLimit, ticker: Ticker) -> Self {
        let burst = NonZeroU32::new(limit.requests()).unwrap_or(NonZeroU32::MIN);
        // `RateLimit` keeps the interval at 1 µs or more, so the period is
        // never zero and the fallback never used.
        let quota = Quota::with_period(interval(limit))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Entry {
            limit,
            gcra: Gcra::direct_with_clock(quota, ticker).with_middleware(),
            last_used: 0,
        }
    }

    /// When its quota has fully come back, at the latest. The GCRA's state
    /// never runs more than `period` ahead of the last request it let
    /// through, which was at or before `last_used`.
    fn full_at(&self) -> u64 {
        let period = u64::try_from(self.limit.period().as_nanos()).unwrap_or(u64::MAX);
        self.last_used.saturating_add(period)
    }
}

/// How often one request's worth of `limit` comes back: `period /
/// requests`. Also the longest wait for more quota after an allowed
/// request, which the `RateLimit` field's `t` reports.
fn interval(limit: RateLimit) -> Duration {
    (limit.period() / limit.requests().max(1)).max(Duration::from_nanos(1))
}

/// The shard of `token` among `shards` (a power of two): its id's top bits.
/// Ids are drawn uniformly at random, so shards fill evenly.
fn shard_index(token: TokenId, shards: usize) -> usize {
    let bits = shards.trailing_zeros();
    token
        .bits()
        .checked_shr(u64::BITS - bits)
        .map_or(0, |index| index as usize)
}

/// A shard's table; a panic elsewhere while it was held leaves counts that
/// are still counts, so a poisoned lock is used as is.
fn lock(shard: &Shard) -> MutexGuard<'_, Table> {
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The limiter's time, shared by every token's GCRA: nanoseconds since the
/// limiter started.
#[derive(Clone)]
struct Ticker(Arc<TimeSource>);

enum TimeSource {
    Monotonic(Instant),
    Clock {
        clock: Arc<dyn Clock>,
        start: OffsetDateTime,
    },
}

impl Ticker {
    fn nanos(&self) -> u64 {
        let elapsed = match &*self.0 {
            TimeSource::Monotonic(start) => start.elapsed(),
            TimeSource::Clock { clock, start } => {
                Duration::try_from(clock.now() - *start).unwrap_or(Duration::ZERO)
            }
        };
        u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX)
            .min(MAX_NANOS)
    }
}

impl governor::clock::Clock for Ticker {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ManualClock;
    use time::macros::datetime;

    fn limit(requests: u32, period_secs: u64) -> RateLimit {
        RateLimit::new(requests, Duration::from_secs(period_secs)).unwrap()
    }

    fn id(n: u64) -> TokenId {
        // Spread over the shards as random ids are.
        TokenId::from_bits(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn manual() -> (LocalRateLimiter, ManualClock) {
        let clock = ManualClock::new(datetime!(2030-01-01 09:00 UTC));
        let limiter = LocalRateLimiter::with_capacity(64).with_clock(Arc::new(clock.clone()));
        (limiter, clock)
    }

    #[test]
    fn allows_a_burst_of_the_limit_then_refuses_until_a_request_comes_back() {
        let (limiter, clock) = manual();
        let three_a_minute = limit(3, 60);
        for remaining in [2, 1, 0] {
            let decision = limiter.check_now(id(1), three_a_minute);
            assert_eq!(
                decision,
                RateDecision::allowed(remaining, Duration::from_secs(20))
            );
        }
        assert_eq!(
            limiter.check_now(id(1), three_a_minute),
            RateDecision::denied(Duration::from_secs(20))
        );
        clock.advance(Duration::from_secs(15));
        assert_eq!(
            limiter.check_now(id(1), three_a_minute),
            RateDecision::denied(Duration::from_secs(5))
        );
        clock.advance(Duration::from_secs(5));
        assert!(limiter.check_now(id(1), three_a_minute).is_allowed());
        assert!(!limiter.check_now(id(1), three_a_minute).is_allowed());
        // A whole period idle: the whole burst is back.
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check_now(id(1), three_a_minute).is_allowed());
        }
    }

    #[test]
    fn tokens_count_apart() {
        let (limiter, _) = manual();
        let one = limit(1, 60);
        assert!(limiter.check_now(id(1), one).is_allowed());
        assert!(!limiter.check_now(id(1), one).is_allowed());
        assert!(limiter.check_now(id(2), one).is_allowed());
    }

    #[test]
    fn a_changed_limit_starts_afresh() {
        let (limiter, _) = manual();
        assert!(limiter.check_now(id(1), limit(1, 60)).is_allowed());
        assert!(!limiter.check_now(id(1), limit(1, 60)).is_allowed());
        assert!(limiter.check_now(id(1), limit(2, 60)).is_allowed());
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn never_tracks_more_tokens_than_its_capacity() {
        for capacity in [1, 2, 3, 15, 16, 17, 100, 1_000] {
            let limiter = LocalRateLimiter::with_capacity(capacity);
            for n in 0..(capacity as u64 * 5 + 20) {
                assert!(limiter.check_now(id(n), limit(5, 3_600)).is_allowed());
                assert!(limiter.len() <= capacity, "{capacity}: {}", limiter.len());
            }
            assert_eq!(limiter.len(), capacity);
        }
        assert_eq!(LocalRateLimiter::with_capacity(0).capacity(), 1);
    }

    #[test]
    fn a_full_table_drops_replenished_tokens_before_the_least_recently_used() {
        let clock = ManualClock::new(datetime!(2030-01-01 09:00 UTC));
        // One shard, of two tokens.
        let limiter = LocalRateLimiter::with_capacity(2).with_clock(Arc::new(clock.clone()));
        let short = limit(1, 1);
        let long = limit(1, 3_600);
        assert!(limiter.check_now(id(1), long).is_allowed());
        assert!(limiter.check_now(id(2), short).is_allowed());
        clock.advance(Duration::from_secs(2));
        // Token 2 is replenished, token 1 is the least recently used but
        // not: token 2 makes room, and token 1 keeps its count.
        assert!(limiter.check_now(id(3), long).is_allowed());
        assert!(!limiter.check_now(id(1), long).is_allowed());
        // Nothing is replenished now: the least recently used (3) goes.
        assert!(limiter.check_now(id(4), long).is_allowed());
        assert_eq!(limiter.len(), 2);
        assert!(!limiter.check_now(id(1), long).is_allowed());
        // Token 3 was forgotten: it starts again with its burst.
        assert!(limiter.check_now(id(3), long).is_allowed());
    }

    #[test]
    fn a_denied_request_counts_as_use_for_eviction() {
        let clock = ManualClock::new(datetime!(2030-01-01 09:00 UTC));
        let limiter = LocalRateLimiter::with_capacity(2).with_clock(Arc::new(clock.clone()));
        let long = limit(1, 3_600);
        assert!(limiter.check_now(id(1), long).is_allowed());
        assert!(limiter.check_now(id(2), long).is_allowed());
        // Token 1 keeps knocking: it is the most recently used.
        assert!(!limiter.check_now(id(1), long).is_allowed());
        assert!(limiter.check_now(id(3), long).is_allowed());
        assert!(!limiter.check_now(id(1), long).is_allowed());
    }

    #[test]
    fn time_going_backwards_stands_still() {
        let (limiter, clock) = manual();
        let one = limit(1, 60);
        assert!(limiter.check_now(id(1), one).is_allowed());
        clock.rewind(Duration::from_secs(3_600));
        assert_eq!(
            limiter.check_now(id(1), one),
            RateDecision::denied(Duration::from_secs(60))
        );
    }

    #[test]
    fn an_entry_stays_small_enough_for_the_documented_100_bytes() {
        // With the key, the map's two links and its slot, and the
        // allocator's rounding, an entry of 56 bytes costs about 100.
        assert!(std::mem::size_of::<Entry>() <= 56);
    }

    #[test]
    fn the_top_bits_pick_the_shard() {
        assert_eq!(shard_index(TokenId::from_bits(u64::MAX), 1), 0);
        assert_eq!(shard_index(TokenId::from_bits(u64::MAX), 16), 15);
        assert_eq!(shard_index(TokenId::from_bits(1 << 60), 16), 1);
        assert_eq!(shard_index(TokenId::from_bits(0), 16), 0);
    }
}
