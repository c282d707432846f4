//! The verification hot path, measured against a floor taken in the same run.
//!
//! `cargo bench --bench verify` runs every figure below and ends with a
//! summary table of the figures and their ratios. Filtering (`-- valid`) runs
//! a subset; the summary then shows only what ran.
//!
//! - `floor/<size>`: the least work any correct verify must do, written here
//!   with no crate code: length and checksum check, id decode (by table), a
//!   lookup in a `std` `HashMap` (id → digest) of `<size>` entries hashed as
//!   the memory store hashes ids (one multiplication), keyed BLAKE3 over
//!   id ‖ secret, a constant-time compare.
//! - `valid`, `unknown_id`, `wrong_secret`, `revoked`, `expired` at 1K, 1M and
//!   10M stored tokens: `TokenService::verify` over a `MemoryStore`, with
//!   last-used tracking on (the default) in its steady state: every token's
//!   use noted and flushed once before measuring. `valid_untracked`: the
//!   same with tracking off. Each
//!   iteration takes the next token of a pool spread over the whole store
//!   (up to 2^20 distinct tokens), so large stores pay real memory latency
//!   instead of re-reading one cached record. 10M uses 20 samples. One token
//!   in 100 is revoked and one in 100 expired, so those two pools are small
//!   and partly cached at large sizes: read them for orientation only.
//! - `malformed` (wrong length, separator, prefix in turn) and `bad_checksum`
//!   at 1K: refused before the store.
//! - `contended/1` and `contended/2`: verifies from 1 and 2 threads sharing one
//!   service over 1M tokens, while a third thread issues and revokes 1,000
//!   tokens a second. Reported as time per verify, wall clock.
//! - `issue`: `TokenService::issue` into a growing memory store.
//! - With feature `metrics` (`cargo bench --bench verify --features metrics`):
//!   `metrics_sampled/<size>` and `metrics_every_call/<size>`: `valid`
//!   through a service built under a real recorder (metrics-exporter-
//!   prometheus's, its upkeep run every second as a service runs it),
//!   timing one verify in 64 per thread (the default) or every one, in
//!   turns of 256 calls with the same store's service without a recorder,
//!   so that both meet the same load; the summary gives the median ratio
//!   of their samples, the cost in %. `metrics_counted_only/<size>`: the
//!   same timing no call, what counting the outcome alone costs. And
//!   `contended_metrics/1`, `/2`: `contended` through the sampled one. The
//!   other figures of such a run are built with no recorder installed, so
//!   their handles are no-ops: `valid` is then the feature's cost without a
//!   recorder (compare it with a run without the feature).
//! - `peer_prefixed_api_key/1M`: the `prefixed-api-key` crate (SHA-256) doing
//!   the same job: its parse and hash check plus a lookup of the stored hash
//!   in a `HashMap` of 1M entries.
//! - `peer_argon2_default`: one argon2id verification at the crate's default
//!   parameters, the naive baseline (10 samples).
//! - Memory: live heap bytes of a `MemoryStore` holding 1M tokens with
//!   20-character labels over 1,000 organizations × 10 domains (16-character
//!   ids, built afresh for each request as a service parsing requests would),
//!   counted by this binary's global allocator.
//!
//! Verify futures are polled once with a no-op waker: the memory store never
//! waits, so the figures are the verify's own cost, with no executor's.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use api_tokens::testing::ManualClock;
use api_tokens::{
    Actor, IssueRequest, MemoryStore, PermissionRegistry, Role, Scope, TokenId, TokenService,
};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use subtle::ConstantTimeEq;
use time::macros::datetime;

use support::*;

/// How many distinct tokens each figure cycles through, at most.
const POOL: usize = 1 << 20;
/// An hour, from `from_secs`: `Duration::from_hours` is newer than the
/// crate's minimum Rust version.
const HOUR: Duration = Duration::from_secs(60 * 60);

// ---------------------------------------------------------------------------
// A counting allocator, switched on only while the memory figure is taken, so
// the timed figures pay one relaxed load per allocation and nothing else.

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes asked for and not yet freed.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// The same, as glibc's malloc spends them (see `block_size`).
static LIVE_BLOCK_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// What glibc's malloc spends on a request of `size` bytes: an 8-byte
/// header, rounded up to 16, at least 32; above its mmap threshold (128 KiB)
/// whole pages. An estimate (it ignores free-list slack), not a measurement.
fn block_size(size: usize) -> isize {
    let block = if size >= 128 * 1024 {
        (size + 16).next_multiple_of(4096)
    } else {
        (size + 8).next_multiple_of(16).max(32)
    };
    block as isize
}

fn count(size: usize, sign: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
        LIVE_BLOCK_BYTES.fetch_add(sign * block_size(size), Ordering::Relaxed);
    }
}

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are only arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        count(layout.size(), 1);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------
// Fixtures.

/// A service over `size` tokens, the floor over the same ids, and pools of
/// token texts for each figure.
struct Fixture {
    /// Tracks last use (the default), flushed once before measuring.
    service: Arc<TokenService>,
    /// The same store, last-used tracking off.
    untracked: Arc<TokenService>,
    admins: Vec<Actor>,
    floor: Floor,
    valid: Pool,
    revoked: Pool,
    expired: Pool,
    /// Tokens with a permission set and a 4-entry allowlist (one in 100).
    narrowed: Pool,
    /// As many plain tokens, spread over the store alike (one in 100): what
    /// `narrowed` is compared with, so both pools sit in the cache alike.
    twins: Pool,
    /// The same store, reporting to a real metrics recorder.
    #[cfg(feature = "metrics")]
    recorded: recorded::Services,
}

/// The four networks of a narrowed token's allowlist; the client matches
/// only the last, so verification walks all four.
const ALLOWLIST: [&str; 4] = [
    "192.0.2.0/24",
    "2001:db8::/32",
    "198.51.100.0/24",
    "203.0.113.0/24",
];

/// The client address narrowed tokens are verified from.
const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));

/// The platform's permissions in this bench.
fn registry() -> PermissionRegistry {
    PermissionRegistry::new()
        .define("segments:read", Role::Viewer)
        .and_then(|registry| registry.define("notifications:send", Role::Editor))
        .expect("valid permissions")
}

impl Fixture {
    /// Token `i` is issued at `scope_of(i)`; one in 100 expires an hour after
    /// the start, one in 100 is revoked; the clock then moves two hours on.
    fn new(size: usize) -> Fixture {
        let start = datetime!(2030-01-01 00:00 UTC);
        let clock = ManualClock::new(start);
        let store = Arc::new(MemoryStore::new());
        let service = service(store.clone(), &clock).with_permissions(registry());
        let admins = admins();
        let mut floor = Floor::with_capacity(size);
        let keep_one_in = size.div_ceil(POOL).max(1);
        let (mut valid, mut revoked, mut expired) = (Vec::new(), Vec::new(), Vec::new());
        let (mut narrowed, mut twins) = (Vec::new(), Vec::new());
        for i in 0..size {
            let mut request = IssueRequest::new(scope_of(i), format!("token {i:014}"));
            if i % 100 == 1 {
                request = request.expires_at(start + HOUR);
            }
            if i % 100 == 3 {
                request = request
                    .permissions(["notifications:send"])
                    .allowed_networks(ALLOWLIST);
            }
            if i % 100 == 4 {
                // The role the narrowed tokens get from their permission.
                request = request.role(Role::Editor);
            }
            let admin = &admins[i % 1000];
            let issued = ready(service.issue(admin, request)).unwrap();
            let text = issued.token.expose_secret();
            let digest =
                blake3::keyed_hash(&KEY, &text.as_bytes()[ID_AT..TOKEN_LEN - CHECKSUM_LEN]);
            floor
                .digests
                .insert(id_number(issued.summary.id), *digest.as_bytes());
            match i % 100 {
                1 => expired.push(text.to_owned()),
                3 => narrowed.push(text.to_owned()),
                4 => twins.push(text.to_owned()),
                2 => {
                    ready(service.revoke(admin, &issued.summary.scope, issued.summary.id)).unwrap();
                    revoked.push(text.to_owned());
                }
                _ if i % keep_one_in == 0 => valid.push(text.to_owned()),
                _ => {}
            }
        }
        clock.advance(2 * HOUR);
        let valid = Pool::shuffled(valid);
        // Last-used tracking in its steady state: every token's use noted
        // once and flushed, as a service flushing every few seconds has it.
        // (The clock stands still, so none falls due again while measured.)
        let (narrowed, twins) = (Pool::shuffled(narrowed), Pool::shuffled(twins));
        for token in valid.iter().chain(narrowed.iter()).chain(twins.iter()) {
            ready(service.verify_from(token, CLIENT)).unwrap();
        }
        ready(service.flush_last_used()).unwrap();
        Fixture {
            #[cfg(feature = "metrics")]
            recorded: recorded::Services::new(&store, &clock, &valid),
            service: Arc::new(service),
            untracked: Arc::new(
                support::service(store, &clock)
                    .with_last_used_interval(None)
                    .expect("no interval is a valid setting"),
            ),
            admins,
            floor,
            valid,
            revoked: Pool::shuffled(revoked),
            expired: Pool::shuffled(expired),
            narrowed,
            twins,
        }
    }
}

fn id_number(id: TokenId) -> u64 {
    decode_base62(id.to_string().as_bytes()).expect("an id's text decodes")
}

/// Token texts laid out one after another in one buffer, so that reading the
/// next one costs the same in every figure (a request's token arrives hot in
/// the cache), whatever order the texts were made in.
struct Pool {
    text: String,
    ends: Vec<usize>,
}

impl Pool {
    /// The texts in an order unrelated to the order they were issued in.
    fn shuffled(mut texts: Vec<String>) -> Pool {
        shuffle(&mut texts);
        Pool::new(texts)
    }

    fn new(texts: impl IntoIterator<Item = String>) -> Pool {
        let mut pool = Pool {
            text: String::new(),
            ends: Vec::new(),
        };
        for text in texts {
            pool.text.push_str(&text);
            pool.ends.push(pool.text.len());
        }
        assert!(!pool.ends.is_empty(), "a pool needs a token");
        pool
    }

    fn get(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).map(|index| self.get(index))
    }

    /// A pool of `change` applied to every token of this one.
    fn map(&self, change: impl Fn(usize, &str) -> String) -> Pool {
        Pool::new(self.iter().enumerate().map(|(i, text)| change(i, text)))
    }
}

/// Cycles through a pool, one token per call.
struct Cycle<'p> {
    pool: &'p Pool,
    next: usize,
}

impl<'p> Cycle<'p> {
    /// Starting at the token `start` (wrapped into the pool).
    fn new(pool: &'p Pool, start: usize) -> Self {
        Cycle {
            pool,
            next: start % pool.ends.len(),
        }
    }

    fn next(&mut self) -> &'p str {
        let token = self.pool.get(self.next);
        self.next = if self.next + 1 == self.pool.ends.len() {
            0
        } else {
            self.next + 1
        };
        token
    }
}

// ---------------------------------------------------------------------------
// Figures.

/// What `allocations_per_verify` found, for the summary.
static ALLOCATIONS_PER_VERIFY: Mutex<Option<f64>> = Mutex::new(None);

/// Notes that the benchmark `function` of group `verify` ran in this run.
fn ran(function: &str) {
    support::ran("verify", function);
}

/// Times `verify` over `pool`, asserting on each result so a broken fixture
/// cannot produce a flattering figure.
fn bench_verify(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    service: &TokenService,
    pool: &Pool,
    expect_ok: bool,
) {
    let mut tokens = Cycle::new(pool, 0);
    group.bench_function(id, |b| {
        ran(id);
        b.iter(|| {
            let result = ready(service.verify(black_box(tokens.next())));
            assert_eq!(result.is_ok(), expect_ok);
        })
    });
}

fn sized(group: &mut BenchmarkGroup<'_, WallTime>, size: usize, label: &str) {
    let fixture = Fixture::new(size);
    let service = &fixture.service;

    let mut tokens = Cycle::new(&fixture.valid, 0);
    let floor_id = format!("floor/{label}");
    group.bench_function(&floor_id, |b| {
        ran(&floor_id);
        b.iter(|| assert!(fixture.floor.verify(black_box(tokens.next().as_bytes()))))
    });

    // The last id character changes: the id's low bits, so a random place in
    // the store. (Changing the first character would clear the id's top bits
    // and send every unknown id to the same few shards, already in cache.)
    let unknown_id = fixture.valid.map(|_, token| altered(token, SECRET_AT - 1));
    let wrong_secret = (fixture.valid).map(|_, token| altered(token, TOKEN_LEN - CHECKSUM_LEN - 1));
    bench_verify(
        group,
        &format!("valid_untracked/{label}"),
        &fixture.untracked,
        &fixture.valid,
        true,
    );
    for (figure, pool, expect_ok) in [
        ("valid", &fixture.valid, true),
        ("unknown_id", &unknown_id, false),
        ("wrong_secret", &wrong_secret, false),
        ("revoked", &fixture.revoked, false),
        ("expired", &fixture.expired, false),
    ] {
        bench_verify(
            group,
            &format!("{figure}/{label}"),
            service,
            pool,
            expect_ok,
        );
    }

    // A narrowed token as a handler meets it: verified from the client's
    // address (matching the last of four networks), then its permission
    // checked; its plain twin through the same calls, where both checks
    // pass at once.
    let send = service
        .permissions()
        .permission("notifications:send")
        .expect("defined");
    for (figure, pool) in [
        ("narrowed", &fixture.narrowed),
        ("plain_twin", &fixture.twins),
    ] {
        let id = format!("{figure}/{label}");
        let mut tokens = Cycle::new(pool, 0);
        group.bench_function(&id, |b| {
            ran(&id);
            b.iter(|| {
                let token = ready(service.verify_from(black_box(tokens.next()), CLIENT)).unwrap();
                assert!(token.allows(token.scope(), &send));
            })
        });
    }

    if size == 1_000 {
        *ALLOCATIONS_PER_VERIFY.lock().unwrap() = Some(allocations_per_verify(&fixture));
        let malformed = fixture.valid.map(|i, token| match i % 3 {
            0 => token[..TOKEN_LEN - 1].to_owned(),
            1 => token.replacen('_', "-", 1),
            _ => token.replacen(PREFIX, "acmf", 1),
        });
        bench_verify(group, "malformed/1K", service, &malformed, false);
        let bad_checksum = fixture.valid.map(|_, token| {
            let (body, last) = token.split_at(TOKEN_LEN - 1);
            format!("{body}{}", if last == "0" { '1' } else { '0' })
        });
        bench_verify(group, "bad_checksum/1K", service, &bad_checksum, false);
    }
    #[cfg(feature = "metrics")]
    for (figure, recorded) in [
        ("metrics_sampled", &fixture.recorded.sampled),
        ("metrics_every_call", &fixture.recorded.every_call),
        ("metrics_counted_only", &fixture.recorded.counted_only),
    ] {
        let id = format!("{figure}/{label}");
        recorded::paired(group, &id, service, recorded, &fixture.valid);
    }
    if size == 1_000_000 {
        contended(group, &fixture, &fixture.service, "contended");
        #[cfg(feature = "metrics")]
        contended(
            group,
            &fixture,
            &fixture.recorded.sampled,
            "contended_metrics",
        );
    }
}

/// Services that report to a real recorder (feature `metrics`).
#[cfg(feature = "metrics")]
mod recorded {
    use std::num::NonZeroU32;
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use api_tokens::testing::ManualClock;
    use api_tokens::{MemoryStore, TokenService};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

    use std::hint::black_box;
    use std::sync::Mutex;
    use std::time::Instant;

    use criterion::BenchmarkGroup;
    use criterion::measurement::WallTime;

    use super::{Cycle, Pool, ran, ready};

    /// For each sample of a paired figure, by its id: its recorded
    /// verifies' time ÷ its plain ones'.
    static RATIOS: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

    /// Verifies through `recorded` and `plain` in turns of 256 calls each,
    /// timing each turn, so both meet the same load on a noisy machine.
    /// Criterion's figure is the time per recorded verify; each sample
    /// also notes recorded ÷ plain, whose median [`ratio`] gives.
    pub(crate) fn paired(
        group: &mut BenchmarkGroup<'_, WallTime>,
        id: &str,
        plain: &TokenService,
        recorded: &TokenService,
        pool: &Pool,
    ) {
        const TURN: u64 = 256;
        let mut tokens = Cycle::new(pool, 0);
        group.bench_function(id, |b| {
            ran(id);
            b.iter_custom(|iters| {
                let mut times = [Duration::ZERO; 2];
                let mut left = iters;
                while left > 0 {
                    let turn = left.min(TURN);
                    for (service, time) in [recorded, plain].into_iter().zip(&mut times) {
                        let started = Instant::now();
                        for _ in 0..turn {
                            let token = black_box(tokens.next());
                            assert!(ready(service.verify(token)).is_ok());
                        }
                        *time += started.elapsed();
                    }
                    left -= turn;
                }
                let ratio = times[0].as_secs_f64() / times[1].as_secs_f64();
                RATIOS.lock().unwrap().push((id.to_owned(), ratio));
                times[0]
            })
        });
    }

    /// The median of a paired figure's ratios, if it ran.
    pub(crate) fn ratio(id: &str) -> Option<f64> {
        let mut ratios: Vec<f64> = RATIOS
            .lock()
            .unwrap()
            .iter()
            .filter(|(figure, _)| figure == id)
            .map(|(_, ratio)| *ratio)
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied()
    }

    pub(crate) struct Services {
        /// One verify in 64 per thread timed (the default).
        pub(crate) sampled: Arc<TokenService>,
        /// Every verify timed.
        pub(crate) every_call: Arc<TokenService>,
        /// No verify timed (but the first on each thread): what counting
        /// alone costs.
        pub(crate) counted_only: Arc<TokenService>,
    }

    impl Services {
        /// Services over `store`, each in last-used tracking's steady
        /// state over `valid` (as the fixture's own).
        pub(crate) fn new(store: &Arc<MemoryStore>, clock: &ManualClock, valid: &Pool) -> Self {
            let build = |one_in: NonZeroU32| {
                let service = metrics::with_local_recorder(recorder(), || {
                    super::service(store.clone(), clock).with_latency_sampling(one_in)
                });
                for token in valid.iter() {
                    ready(service.verify(token)).unwrap();
                }
                ready(service.flush_last_used()).unwrap();
                Arc::new(service)
            };
            Services {
                sampled: build(api_tokens::metrics::DEFAULT_LATENCY_SAMPLING),
                every_call: build(NonZeroU32::MIN),
                counted_only: build(NonZeroU32::MAX),
            }
        }
    }

    /// The Prometheus recorder, configured as the example service's, with
    /// a thread running its upkeep every second (which drains the
    /// histogram samples a scrape would).
    fn recorder() -> &'static PrometheusRecorder {
        static RECORDER: OnceLock<PrometheusRecorder> = OnceLock::new();
        RECORDER.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(api_tokens::metrics::VERIFICATION_DURATION.to_owned()),
                    api_tokens::metrics::VERIFICATION_DURATION_BUCKETS,
                )
                .expect("buckets")
                .build_recorder();
            let handle = recorder.handle();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    handle.run_upkeep();
                }
            });
            recorder
        })
    }
}

/// Verifies through `service` from `threads` threads at once while a writer
/// issues and revokes its own tokens 1,000 times a second; the figure is
/// wall time per verify.
fn contended(
    group: &mut BenchmarkGroup<'_, WallTime>,
    fixture: &Fixture,
    service: &TokenService,
    name: &str,
) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let admin = &fixture.admins[0];
            let scope = Scope::organization(org_id(0));
            while !stop.load(Ordering::Relaxed) {
                let request = IssueRequest::new(scope.clone(), "written while others read");
                let issued = ready(fixture.service.issue(admin, request)).unwrap();
                ready(fixture.service.revoke(admin, &scope, issued.summary.id)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // Few, long samples (a twentieth of the measurement time each), so
        // that how soon the OS wakes each thread does not show.
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(20);
        for threads in [1usize, 2] {
            let id = format!("{name}/{threads}");
            group.bench_function(&id, |b| {
                ran(&id);
                b.iter_custom(|iters| {
                    let barrier = Barrier::new(threads + 1);
                    let mut started = None;
                    std::thread::scope(|inner| {
                        for t in 0..threads {
                            // Thread t does its share of `iters`, starting
                            // elsewhere in the pool than the other thread.
                            let share = iters / threads as u64
                                + u64::from((t as u64) < iters % threads as u64);
                            let barrier = &barrier;
                            let mut tokens =
                                Cycle::new(&fixture.valid, t * fixture.valid.ends.len() / 2);
                            inner.spawn(move || {
                                barrier.wait();
                                for _ in 0..share {
                                    let token = black_box(tokens.next());
                                    assert!(ready(service.verify(token)).is_ok());
                                }
                            });
                        }
                        barrier.wait();
                        started = Some(Instant::now());
                    });
                    // The scope has joined every thread.
                    started.expect("set inside the scope").elapsed()
                })
            });
        }
        group.sampling_mode(SamplingMode::Auto);
        group.sample_size(100);
        stop.store(true, Ordering::Relaxed);
    });
}

fn issue(group: &mut BenchmarkGroup<'_, WallTime>) {
    let clock = ManualClock::new(datetime!(2030-01-01 00:00 UTC));
    let service = service(Arc::new(MemoryStore::new()), &clock);
    let admins = admins();
    let mut i = 0;
    group.bench_function("issue", |b| {
        ran("issue");
        b.iter(|| {
            i += 1;
            let request = IssueRequest::new(scope_of(i), "token 00000000000000");
            ready(service.issue(&admins[i % 1000], request)).unwrap()
        })
    });
}

fn peers(group: &mut BenchmarkGroup<'_, WallTime>) {
    use prefixed_api_key::{PrefixedApiKey, PrefixedApiKeyController};

    let controller = PrefixedApiKeyController::configure()
        .prefix("acme".to_owned())
        .seam_defaults()
        .finalize()
        .unwrap();
    let mut hashes = HashMap::with_capacity(1_000_000);
    let mut pool = Vec::new();
    for _ in 0..1_000_000 {
        let (key, hash) = controller.try_generate_key_and_hash().unwrap();
        hashes.insert(key.short_token().to_owned(), hash);
        if pool.len() < POOL {
            pool.push(key.to_string());
        }
    }
    let pool = Pool::shuffled(pool);
    let mut tokens = Cycle::new(&pool, 0);
    group.bench_function("peer_prefixed_api_key/1M", |b| {
        ran("peer_prefixed_api_key/1M");
        b.iter(|| {
            let key = PrefixedApiKey::from_string(black_box(tokens.next())).unwrap();
            let stored = hashes.get(key.short_token()).unwrap();
            assert!(controller.check_hash(&key, stored));
        })
    });
    drop((hashes, pool));

    let argon2 = argon2::Argon2::default();
    let secret = b"a 256-bit secret, as a token carries";
    let salt = b"sixteen byte slt";
    let mut stored = [0u8; 32];
    argon2
        .hash_password_into(secret, salt, &mut stored)
        .unwrap();
    group.sample_size(10);
    group.bench_function("peer_argon2_default", |b| {
        ran("peer_argon2_default");
        b.iter(|| {
            let mut digest = [0u8; 32];
            argon2
                .hash_password_into(black_box(secret), salt, &mut digest)
                .unwrap();
            assert!(bool::from(digest.ct_eq(&stored)));
        })
    });
}

/// Heap allocations one successful `verify` makes, counted over many.
fn allocations_per_verify(fixture: &Fixture) -> f64 {
    const VERIFIES: usize = 10_000;
    let mut tokens = Cycle::new(&fixture.valid, 0);
    COUNTING.store(true, Ordering::SeqCst);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..VERIFIES {
        assert!(ready(fixture.service.verify(tokens.next())).is_ok());
    }
    let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
    COUNTING.store(false, Ordering::SeqCst);
    made as f64 / VERIFIES as f64
}

/// Live heap bytes of a memory store holding 1M realistic tokens, per token.
fn memory_per_token() -> (f64, f64) {
    const TOKENS: usize = 1_000_000;
    let clock = ManualClock::new(datetime!(2030-01-01 00:00 UTC));
    let admins = admins();
    let store = Arc::new(MemoryStore::new());
    let service = service(store.clone(), &clock);
    COUNTING.store(true, Ordering::SeqCst);
    let before = (
        LIVE_BYTES.load(Ordering::SeqCst),
        LIVE_BLOCK_BYTES.load(Ordering::SeqCst),
    );
    for i in 0..TOKENS {
        let request = IssueRequest::new(scope_of(i), format!("token {i:014}"));
        drop(ready(service.issue(&admins[i % 1000], request)).unwrap());
    }
    let after = (
        LIVE_BYTES.load(Ordering::SeqCst),
        LIVE_BLOCK_BYTES.load(Ordering::SeqCst),
    );
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(store.len(), TOKENS);
    let per_token = |before: isize, after: isize| (after - before) as f64 / TOKENS as f64;
    (per_token(before.0, after.0), per_token(before.1, after.1))
}

// ---------------------------------------------------------------------------
// The summary, computed from criterion's own estimates.

fn summary(memory: Option<(f64, f64)>) {
    let ns = |function: &str| estimate_ns("verify", function);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let show = |value: Option<f64>, unit: &str| {
        value.map_or("—".to_owned(), |v| format!("{v:.2}{unit}"))
    };
    let row = |figure: &str, value: String, target: &str| {
        println!("| {figure:<52} | {value:>12} | {target:<14} |");
    };

    println!("\nCPU: {}", cpu_model());
    println!(
        "\n| {:<52} | {:>12} | {:<14} |",
        "figure", "measured", "target"
    );
    println!("|{:-<54}|{:-<14}|{:-<16}|", "", "", "");
    for size in ["1K", "1M", "10M"] {
        let floor = ns(&format!("floor/{size}"));
        let valid = ns(&format!("valid/{size}"));
        row(&format!("floor/{size}"), show(floor, " ns"), "");
        row(&format!("valid/{size}"), show(valid, " ns"), "");
        row(
            &format!("valid ÷ floor at {size}"),
            show(ratio(valid, floor), "×"),
            "≤ 1.3",
        );
        let untracked = ns(&format!("valid_untracked/{size}"));
        row(
            &format!("valid, last-used tracking off, ÷ floor at {size}"),
            show(ratio(untracked, floor), "×"),
            "",
        );
        for failure in ["unknown_id", "wrong_secret"] {
            let failed = ns(&format!("{failure}/{size}"));
            row(
                &format!("{failure} ÷ valid at {size}"),
                show(ratio(failed, valid), "×"),
                "0.8 – 1.2",
            );
        }
        // The existence oracle: what an attacker holding an id can compare.
        row(
            &format!("unknown_id ÷ wrong_secret at {size}"),
            show(
                ratio(
                    ns(&format!("unknown_id/{size}")),
                    ns(&format!("wrong_secret/{size}")),
                ),
                "×",
            ),
            "1.00",
        );
        let narrowed = ns(&format!("narrowed/{size}"));
        let twin = ns(&format!("plain_twin/{size}"));
        row(&format!("narrowed/{size}"), show(narrowed, " ns"), "");
        row(
            &format!("narrowed − plain twin at {size}"),
            show(narrowed.zip(twin).map(|(n, t)| n - t), " ns"),
            "≤ 30 ns",
        );
        for status in ["revoked", "expired"] {
            let figure = ns(&format!("{status}/{size}"));
            if figure.is_some() {
                row(&format!("{status}/{size}"), show(figure, " ns"), "");
            }
        }
    }
    let floor_1k = ns("floor/1K");
    for early in ["malformed/1K", "bad_checksum/1K"] {
        row(
            &format!("{early} ÷ floor at 1K"),
            show(ratio(ns(early), floor_1k), "×"),
            "≤ 0.25",
        );
    }
    let (one, two) = (ns("contended/1"), ns("contended/2"));
    let per_second = |v: Option<f64>| v.map(|ns| 1e9 / ns / 1e6);
    row(
        "contended, 1 thread (M verifies/s)",
        show(per_second(one), ""),
        "",
    );
    row(
        "contended, 2 threads (M verifies/s)",
        show(per_second(two), ""),
        "",
    );
    row(
        "contended 2 threads ÷ 1 thread",
        show(ratio(one, two), "×"),
        "≥ 1.7",
    );
    // Feature `metrics`: what a real recorder costs the hot path, and
    // which part of it timing takes (the issue's rule: sample the latency
    // if timing every call costs more than 3 %).
    #[cfg(feature = "metrics")]
    for size in ["1K", "1M", "10M"] {
        let paired = |figure: &str| recorded::ratio(&format!("{figure}/{size}"));
        let (sampled, every, counted) = (
            paired("metrics_sampled"),
            paired("metrics_every_call"),
            paired("metrics_counted_only"),
        );
        if sampled.is_none() {
            continue;
        }
        let recorded = ns(&format!("metrics_sampled/{size}"));
        let floor = ns(&format!("floor/{size}"));
        row(
            &format!("metrics recorded (1 in 64 timed) ÷ floor at {size}"),
            show(ratio(recorded, floor), "×"),
            "",
        );
        for (what, value) in [("1 in 64 timed", sampled), ("none timed", counted)] {
            row(
                &format!("metrics recorded ({what}) ÷ none, in turns, at {size}"),
                show(value, "×"),
                "",
            );
        }
        row(
            &format!("  timing 1 in 64 ÷ timing none at {size}"),
            show(ratio(sampled, counted), "×"),
            "≤ 1.03",
        );
        row(
            &format!("  timing every call ÷ timing none at {size}"),
            show(ratio(every, counted), "×"),
            "> 1.03: sample",
        );
    }
    let (one, two) = (ns("contended_metrics/1"), ns("contended_metrics/2"));
    if one.is_some() {
        row(
            "contended 2 threads ÷ 1 thread, metrics recorded",
            show(ratio(one, two), "×"),
            "≥ 1.7",
        );
    }
    row(
        "issue (k tokens/s)",
        show(ns("issue").map(|ns| 1e6 / ns), ""),
        "",
    );
    row(
        "prefixed-api-key ÷ valid at 1M",
        show(ratio(ns("peer_prefixed_api_key/1M"), ns("valid/1M")), "×"),
        "≥ 1.3",
    );
    row(
        "argon2id default (ms)",
        show(ns("peer_argon2_default").map(|ns| ns / 1e6), ""),
        "",
    );
    row(
        "memory store at 1M (bytes per token)",
        show(memory.map(|(asked, _)| asked), ""),
        "≤ 400",
    );
    row(
        "  with glibc's per-block overhead (estimate)",
        show(memory.map(|(_, blocks)| blocks), ""),
        "",
    );
    row(
        "heap allocations per valid verify",
        show(*ALLOCATIONS_PER_VERIFY.lock().unwrap(), ""),
        "",
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // `VERIFY_BENCH=1K,peers` runs only those parts (building the 10M store
    // alone takes a minute); by default everything runs.
    let parts = std::env::var("VERIFY_BENCH").unwrap_or_default();
    let wanted = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    {
        let mut group = criterion.benchmark_group("verify");
        for (size, label) in [(1_000, "1K"), (1_000_000, "1M"), (10_000_000, "10M")] {
            if wanted(label) {
                group.sample_size(if size > 1_000_000 { 20 } else { 100 });
                sized(&mut group, size, label);
            }
        }
        group.sample_size(100);
        if wanted("issue") {
            issue(&mut group);
        }
        if wanted("peers") {
            peers(&mut group);
        }
        group.finish();
    }
    let memory = wanted("memory").then(memory_per_token);
    criterion.final_summary();
    summary(memory);
}
