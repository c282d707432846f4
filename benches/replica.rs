//! The `ReplicatedStore` over PostgreSQL at 1M tokens: verification through
//! the replica against a `MemoryStore` of the same tokens, against a plain
//! `PostgresStore` on the same table, and against the floor, all measured in
//! the same run; the heap each in-process store takes per token; and the
//! start-up load of every credential.
//!
//! ```sh
//! scripts/with-postgres cargo bench --bench replica --features postgres
//! ```
//!
//! Without `API_TOKENS_POSTGRES_URL` (which `scripts/with-postgres` sets) it
//! says so and measures nothing. `API_TOKENS_REPLICA_ROWS` changes the
//! number of bulk-loaded tokens (default 1,000,000).
//!
//! The fixture, built once in the schema `replica_bench` and shared by
//! every figure:
//!
//! - 1M tokens made here, with real token texts and real digests (keyed
//!   BLAKE3 over id ‖ secret, as the service hashes them), bulk-loaded with
//!   one `INSERT … SELECT … FROM unnest(…)` per 100,000 rows, shaped as the
//!   store writes them (the scopes of `support::scope_of`: 1,000
//!   organizations of 10 domains; 20-character labels; one in three with an
//!   expiry). As a bulk load may, it runs with the counting and change-feed
//!   triggers off and counts the scopes once at the end: the replica's load
//!   reads the table itself, not the feed.
//! - 10,000 more issued through a `TokenService` over the `PostgresStore`
//!   (so the store's own write path made some of the rows), each verified
//!   once and flushed, so last-used tracking is in its steady state.
//! - A `MemoryStore` holding the same records (the bulk ones built here,
//!   the issued ones read back with `find`).
//!
//! Figures (group `replica`; `<n>` is the size, e.g. `1M`):
//!
//! - `floor/<n>`: the least work any correct verify must do, with no crate
//!   code (as in the verify bench): length and checksum check, id decode, a
//!   lookup in a `std` `HashMap` (id → digest) of every token, keyed BLAKE3
//!   over id ‖ secret, a constant-time compare.
//! - `memory/<n>`, `replica/<n>`: `TokenService::verify` over each store,
//!   polled once with a no-op waker (neither waits), last-used tracking on.
//! - `replica_async/<n>`, `postgres/<n>`: the same over the replica and over
//!   a plain `PostgresStore` (`from_pool`, same table), awaited on the Tokio
//!   runtime, so the two compare like for like.
//!
//! Every timed figure takes the next token of one shuffled pool of every
//! token, so lookups in the large stores pay memory latency instead of
//! re-reading a cached entry. Each in-process figure is preceded by one
//! untimed lap of the pool through the same code, so each starts in the
//! steady state of cycling through its store, not warmed (or cooled) by the
//! figure before it. Every result is checked.
//!
//! Not criterion figures (printed as they are taken, and in the summary):
//!
//! - Alternating rounds: the floor, the memory store and the replica (polled
//!   once) each verify 10,000 tokens in turn, 100 rounds; the medians per
//!   verify and of each round's ratios. On a shared machine a burst of load
//!   from elsewhere lands on one criterion figure; here it lands on all
//!   three alike, so these ratios are the steadier ones.
//! - Memory: live heap bytes the process gains building each store (the
//!   `MemoryStore` from records; the replica from `ReplicatedStore::postgres`
//!   to `ready()`), counted by this binary's global allocator, per token.
//! - Start-up load: wall clock from `ReplicatedStore::postgres` to `ready()`
//!   returning, three runs, median; beside it the floor of a load: the same
//!   streaming `SELECT` the replica runs, through the same driver, rows
//!   counted and dropped.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_tokens::testing::ManualClock;
use api_tokens::{
    ActorId, Digest, IssueRequest, KeyId, Label, MemoryStore, PostgresStore, ReplicaOptions,
    ReplicatedStore, Role, ScopeKind, TokenId, TokenRecord, TokenService, TokenStore, VerifyError,
};
use criterion::Criterion;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use time::OffsetDateTime;
use time::macros::datetime;

use support::*;

const GROUP: &str = "replica";
const SCHEMA: &str = "replica_bench";
/// Tokens issued through the service, beside the bulk-loaded ones.
const ISSUED: usize = 10_000;
/// Rows per bulk `INSERT`.
const CHUNK: usize = 100_000;
/// Timed start-up loads.
const LOAD_RUNS: usize = 3;
/// The service clock's time: every record was last used then, so none falls
/// due for a last-used write while measured (the clock stands still).
const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

// ---------------------------------------------------------------------------
// A counting allocator, switched on only while a store is built, so the
// timed figures pay one relaxed load per allocation and nothing else.

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes asked for and not yet freed, while counting.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count(size: usize, sign: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
    }
}

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
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

/// The live heap bytes `build` adds, in every thread of the process.
fn heap_growth<T>(build: impl FnOnce() -> T) -> (T, isize) {
    COUNTING.store(true, Ordering::SeqCst);
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    let built = build();
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    COUNTING.store(false, Ordering::SeqCst);
    (built, after - before)
}

// ---------------------------------------------------------------------------
// Tokens made here.

/// A token made here: its text and what the store keeps of it.
struct Made {
    id: TokenId,
    text: String,
    digest: [u8; 32],
}

/// splitmix64: deterministic, so runs compare.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `value` as `out.len()` base62 digits, most significant first.
fn encode_base62(mut value: u64, out: &mut [u8]) {
    for digit in out.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
}

/// `count` tokens, token `i` at `scope_of(i)`, with uniformly random ids
/// (as the service draws them) and secrets, laid out as the service writes
/// them: prefix, scope letter, `_`, id, secret, checksum.
fn make_tokens(count: usize) -> Vec<Made> {
    let mut state = 0x5eed_f1d5_u64;
    let mut seen = HashSet::with_capacity(count);
    let mut made = Vec::with_capacity(count);
    while made.len() < count {
        let bits = next_random(&mut state);
        if !seen.insert(bits) {
            continue;
        }
        let i = made.len();
        let letter = match scope_of(i).kind() {
            ScopeKind::Organization => b'o',
            ScopeKind::Domain => b'd',
        };
        let mut text = Vec::with_capacity(TOKEN_LEN);
        text.extend_from_slice(PREFIX.as_bytes());
        text.extend_from_slice(&[letter, b'_']);
        let mut id = [0u8; ID_LEN];
        encode_base62(bits, &mut id);
        text.extend_from_slice(&id);
        for _ in 0..SECRET_LEN {
            text.push(BASE62[(next_random(&mut state) % 62) as usize]);
        }
        let sum = checksum(&text);
        text.extend_from_slice(&sum);
        let text = String::from_utf8(text).expect("ASCII");
        let digest = *blake3::keyed_hash(&KEY, hashed_part(text.as_bytes())).as_bytes();
        let id = std::str::from_utf8(&id).unwrap().parse().expect("an id");
        made.push(Made { id, text, digest });
    }
    made
}

/// Bulk token `i`'s record, exactly as the bulk load writes its row.
fn bulk_record(i: usize, made: &Made) -> TokenRecord {
    let offset = u64::try_from(i).unwrap();
    TokenRecord {
        id: made.id,
        scope: scope_of(i),
        role: Role::Editor,
        label: Label::new(&format!("token {i:014}")).unwrap(),
        key_id: KeyId::new(1),
        digest: Digest::from_bytes(made.digest),
        created_at: NOW - Duration::from_secs(offset),
        created_by: ActorId::new(&format!("admin{:011}", i % 1000)).unwrap(),
        expires_at: i
            .is_multiple_of(3)
            .then(|| NOW + Duration::from_secs(90 * 24 * 60 * 60)),
        revoked: None,
        last_used_at: Some(NOW),
        rotated_from: None,
        replaced_by: None,
        restrictions: Default::default(),
        disabled: None,
    }
}

/// The rows of `made` (bulk tokens `first..`), as `bulk_record` builds them.
const BULK_INSERT: &str = "INSERT INTO api_tokens (id, scope_kind, org_id, domain_id, role, label, \
     key_id, digest, created_at, created_by, expires_at, last_used_at) \
     SELECT u.id, \
     CASE WHEN (u.n / 1000) % 11 = 10 THEN 'organization' ELSE 'domain' END, \
     'org' || lpad((u.n % 1000)::text, 13, '0'), \
     CASE WHEN (u.n / 1000) % 11 = 10 THEN '' \
     ELSE 'dom' || lpad(((u.n % 1000) * 10 + (u.n / 1000) % 11)::text, 13, '0') END, \
     'editor', 'token ' || lpad(u.n::text, 14, '0'), 1, u.digest, \
     $4 - u.n * interval '1 second', 'admin' || lpad((u.n % 1000)::text, 11, '0'), \
     CASE WHEN u.n % 3 = 0 THEN $4 + interval '90 days' END, $4 \
     FROM (SELECT id, digest, $3::bigint + k - 1 AS n \
     FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS x(id, digest, k)) AS u";

/// The statement the replica's load runs (`feed::FeedStatements::load`),
/// restated: every row with its scope revocation, if any.
const LOAD_SELECT: &str = "SELECT t.seq, t.id, t.scope_kind, t.org_id, t.domain_id, t.role, \
     t.label, t.key_id, t.digest, t.created_at, t.created_by, t.expires_at, t.revoked_at, \
     t.revoked_by, t.revoke_reason, t.last_used_at, t.rotated_from, t.replaced_by, \
     m.revoked_at AS scope_revoked_at, m.revoked_by AS scope_revoked_by, \
     m.revoke_reason AS scope_revoke_reason \
     FROM api_tokens AS t LEFT JOIN api_tokens_scope_revocations AS m ON m.id = (\
     SELECT c.id FROM api_tokens_scope_revocations AS c WHERE c.org_id = t.org_id \
     AND c.domain_id IN ('', t.domain_id) AND c.through_seq >= t.seq ORDER BY c.id LIMIT 1)";

// ---------------------------------------------------------------------------
// Token texts.

/// Token texts laid out one after another in one buffer, so reading the
/// next costs the same in every figure (a request's token arrives hot).
struct Pool {
    text: String,
    ends: Vec<usize>,
}

impl Pool {
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

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }
}

/// Cycles through a pool, one token per call.
struct Cycle<'p> {
    pool: &'p Pool,
    next: usize,
}

impl<'p> Cycle<'p> {
    fn new(pool: &'p Pool) -> Self {
        Cycle { pool, next: 0 }
    }

    /// One untimed lap of the whole pool through `verify`, before a figure
    /// is measured: each figure then starts in the same state, that of a
    /// store cycled through (whatever of it the caches keep), not in
    /// whatever state the previous figure left.
    fn lap(&mut self, mut verify: impl FnMut(&'p str)) {
        for _ in 0..self.pool.len() {
            verify(self.next());
        }
    }

    fn next(&mut self) -> &'p str {
        let token = self.pool.get(self.next);
        self.next += 1;
        if self.next == self.pool.len() {
            self.next = 0;
        }
        token
    }
}

// ---------------------------------------------------------------------------
// The fixture.

/// A service over `store`, with the bench's key and standing clock.
fn service_over(store: Arc<dyn TokenStore>) -> TokenService {
    TokenService::new(
        api_tokens::TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(KeyId::new(1), api_tokens::HashKey::from_bytes(&KEY)),
        store,
    )
    .with_clock(Arc::new(ManualClock::new(NOW)))
}

/// "1M", "50K", "1234": the size in a figure's name.
fn size_label(size: usize) -> String {
    match size {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}K", n / 1_000),
        n => n.to_string(),
    }
}

/// A fresh schema holding `made` as bulk rows; returns a pool whose
/// connections use it.
async fn bulk_loaded(url: &str, made: &[Made]) -> PgPool {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    for statement in [
        format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
        format!("CREATE SCHEMA {SCHEMA}"),
    ] {
        sqlx::query(&statement).execute(&admin).await.unwrap();
    }
    admin.close().await;
    // sqlx warns of every statement over a second: the bulk inserts and
    // the replica's load are meant to be long.
    let options: PgConnectOptions = url
        .parse::<PgConnectOptions>()
        .unwrap()
        .disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.options([("search_path", SCHEMA)]))
        .await
        .unwrap();
    PostgresStore::from_pool(pool.clone())
        .migrate()
        .await
        .unwrap();

    let loading = Instant::now();
    for trigger in ["api_tokens_counted", "api_tokens_noted"] {
        sqlx::query(&format!("ALTER TABLE api_tokens DISABLE TRIGGER {trigger}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    for (chunk, tokens) in made.chunks(CHUNK).enumerate() {
        let ids: Vec<String> = tokens.iter().map(|made| made.id.to_string()).collect();
        let digests: Vec<Vec<u8>> = tokens.iter().map(|made| made.digest.to_vec()).collect();
        sqlx::query(BULK_INSERT)
            .bind(ids)
            .bind(digests)
            .bind(i64::try_from(chunk * CHUNK).unwrap())
            .bind(NOW)
            .execute(&pool)
            .await
            .unwrap();
    }
    for statement in [
        "ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_counted",
        "ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_noted",
        "INSERT INTO api_tokens_scope_counts (org_id, domain_id, live) \
         SELECT org_id, domain_id, count(*) FROM api_tokens GROUP BY org_id, domain_id",
        "VACUUM ANALYZE api_tokens",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    eprintln!(
        "replica bench: {} rows bulk-loaded in {:.1?}",
        made.len(),
        loading.elapsed()
    );
    pool
}

/// `ISSUED` tokens issued through `service` from 8 tasks, bulk tokens
/// `first..` by number; each then verified once and the uses flushed.
async fn issued(service: &Arc<TokenService>, first: usize) -> Vec<String> {
    let admins = Arc::new(admins());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (service, admins) = (service.clone(), admins.clone());
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                for i in (first + task..first + ISSUED).step_by(8) {
                    let request = IssueRequest::new(scope_of(i), format!("token {i:014}"));
                    let issued = service.issue(&admins[i % 1000], request).await.unwrap();
                    tokens.push(issued.token.expose_secret().to_owned());
                }
                tokens
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.extend(task.await.unwrap());
    }
    for token in &tokens {
        service
            .verify(token)
            .await
            .expect("an issued token verifies");
    }
    service.flush_last_used().await.unwrap();
    tokens
}

/// One start-up load: (the replica, wall-clock seconds, heap bytes gained).
async fn load_replica(pool: &PgPool) -> (ReplicatedStore, f64, isize) {
    COUNTING.store(true, Ordering::SeqCst);
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    let started = Instant::now();
    let replica = ReplicatedStore::postgres(
        PostgresStore::from_pool(pool.clone()),
        ReplicaOptions::default(),
    );
    replica.ready().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    COUNTING.store(false, Ordering::SeqCst);
    (replica, seconds, after - before)
}

/// The floor of a load: the replica's `SELECT`, streamed through the same
/// driver, rows counted and dropped undecoded. Seconds and rows.
async fn load_floor(pool: &PgPool) -> (f64, usize) {
    let started = Instant::now();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut rows = sqlx::query(LOAD_SELECT).fetch(&mut *conn);
    let mut count = 0;
    while let Some(row) = rows.try_next().await.unwrap() {
        black_box(&row);
        count += 1;
    }
    drop(rows);
    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    (started.elapsed().as_secs_f64(), count)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Verifications through the replica that failed as unavailable (the copy
/// not proven current within its bound): each would make the figure
/// flattering, so the summary reports them.
static STALE: AtomicU64 = AtomicU64::new(0);

fn check_replica(result: Result<api_tokens::VerifiedToken, VerifyError>) {
    match result {
        Ok(_) => {}
        Err(VerifyError::Store(_)) => {
            STALE.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => panic!("a live token failed through the replica: {error}"),
    }
}

fn main() {
    let started = Instant::now();
    let Ok(url) = std::env::var("API_TOKENS_POSTGRES_URL") else {
        println!(
            "no PostgreSQL server: run `scripts/with-postgres cargo bench --bench replica \
             --features postgres`"
        );
        return;
    };
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    let bulk: usize = std::env::var("API_TOKENS_REPLICA_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(1_000_000);
    let size = size_label(bulk);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The tokens, the table, the real tokens issued through the service.
    let made = make_tokens(bulk);
    let pool = runtime.block_on(bulk_loaded(&url, &made));
    let postgres = Arc::new(PostgresStore::from_pool(pool.clone()));
    let postgres_service = Arc::new(service_over(postgres.clone()));
    let issued = runtime.block_on(issued(&postgres_service, bulk));
    let issued_records: Vec<TokenRecord> = runtime.block_on(async {
        let format = api_tokens::TokenFormat::new(PREFIX).unwrap();
        let mut records = Vec::with_capacity(issued.len());
        for token in &issued {
            let id = format.parse(token).unwrap().id();
            records.push(postgres.find(id).await.unwrap().expect("an issued row"));
        }
        records
    });
    let total = bulk + issued.len();

    // The floor, and the pool every figure verifies from.
    let mut floor = Floor::with_capacity(total);
    let mut texts = Vec::with_capacity(total);
    for token in made.iter().map(|made| &made.text).chain(&issued) {
        let id = decode_base62(&token.as_bytes()[ID_AT..SECRET_AT]).unwrap();
        let digest = blake3::keyed_hash(&KEY, hashed_part(token.as_bytes()));
        floor.digests.insert(id, *digest.as_bytes());
        texts.push(token.clone());
    }
    shuffle(&mut texts);
    let pool_texts = Pool::new(texts);

    // The memory store: the same records.
    let memory = Arc::new(MemoryStore::new());
    let ((), memory_bytes) = heap_growth(|| {
        for (i, made) in made.iter().enumerate() {
            ready(memory.insert(bulk_record(i, made))).unwrap();
        }
        for record in &issued_records {
            ready(memory.insert(record.clone())).unwrap();
        }
    });
    assert_eq!(memory.len(), total);
    let memory_service = service_over(memory.clone());
    drop((made, issued_records));

    // Start-up loads: the first on a quiet heap gives the memory figure;
    // each later one after the previous replica is gone.
    let mut load_seconds = Vec::new();
    let mut replica_bytes = Vec::new();
    let mut replica = None;
    for run in 1..=LOAD_RUNS {
        drop(replica.take());
        // Let the dropped replica's aborted tasks finish, freeing its copy.
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
        let (loaded, seconds, bytes) = runtime.block_on(load_replica(&pool));
        assert_eq!(loaded.len(), total, "the replica holds every row");
        eprintln!(
            "replica bench: load {run}: {total} credentials in {seconds:.2} s, \
             heap +{:.1} bytes/token",
            bytes as f64 / total as f64
        );
        load_seconds.push(seconds);
        replica_bytes.push(bytes);
        replica = Some(Arc::new(loaded));
    }
    let replica = replica.expect("loaded");
    let (floor_seconds, floor_rows) = runtime.block_on(load_floor(&pool));
    assert_eq!(floor_rows, total);
    eprintln!("replica bench: load floor: {floor_rows} rows streamed in {floor_seconds:.2} s");
    let replica_service = service_over(replica.clone());

    // Every store verifies every kind of token before anything is timed.
    for index in [0, 1, pool_texts.len() / 2, pool_texts.len() - 1] {
        let token = pool_texts.get(index);
        assert!(floor.verify(token.as_bytes()));
        ready(memory_service.verify(token)).expect("memory");
        ready(replica_service.verify(token)).expect("replica");
        runtime
            .block_on(postgres_service.verify(token))
            .expect("postgres");
    }
    for token in issued.iter().take(10) {
        ready(replica_service.verify(token)).expect("an issued token, replica");
    }

    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group(GROUP);
        let id = format!("floor/{size}");
        let mut tokens = Cycle::new(&pool_texts);
        let mut cold = true;
        group.bench_function(&id, |b| {
            ran(GROUP, &id);
            if std::mem::take(&mut cold) {
                tokens.lap(|token| assert!(floor.verify(token.as_bytes())));
            }
            b.iter(|| assert!(floor.verify(black_box(tokens.next().as_bytes()))))
        });
        let id = format!("memory/{size}");
        let mut tokens = Cycle::new(&pool_texts);
        let mut cold = true;
        group.bench_function(&id, |b| {
            ran(GROUP, &id);
            if std::mem::take(&mut cold) {
                tokens.lap(|token| assert!(ready(memory_service.verify(token)).is_ok()));
            }
            b.iter(|| {
                let result = ready(memory_service.verify(black_box(tokens.next())));
                assert!(result.is_ok(), "{result:?}");
            })
        });
        let id = format!("replica/{size}");
        let mut tokens = Cycle::new(&pool_texts);
        let mut cold = true;
        group.bench_function(&id, |b| {
            ran(GROUP, &id);
            if std::mem::take(&mut cold) {
                tokens.lap(|token| check_replica(ready(replica_service.verify(token))));
            }
            b.iter(|| check_replica(ready(replica_service.verify(black_box(tokens.next())))))
        });
        let id = format!("replica_async/{size}");
        let mut tokens = Cycle::new(&pool_texts);
        let mut cold = true;
        group.bench_function(&id, |b| {
            ran(GROUP, &id);
            if std::mem::take(&mut cold) {
                tokens.lap(|token| check_replica(ready(replica_service.verify(token))));
            }
            b.to_async(&runtime).iter(|| {
                let token = tokens.next();
                let service = &replica_service;
                async move { check_replica(service.verify(black_box(token)).await) }
            })
        });
        // A lap of the pool through PostgreSQL would take minutes; its
        // round trip dwarfs any cache effect anyway.
        let id = format!("postgres/{size}");
        let mut tokens = Cycle::new(&pool_texts);
        group.bench_function(&id, |b| {
            ran(GROUP, &id);
            b.to_async(&runtime).iter(|| {
                let token = tokens.next();
                let service = &postgres_service;
                async move {
                    service
                        .verify(black_box(token))
                        .await
                        .expect("a live token verifies through PostgreSQL")
                }
            })
        });
        group.finish();
    }
    criterion.final_summary();

    let interleaved = interleaved(&pool_texts, &floor, &memory_service, &replica_service);
    summary(
        &size,
        &Measured {
            total,
            memory_bytes,
            replica_bytes: replica_bytes[0],
            load_seconds,
            floor_seconds,
            interleaved,
        },
    );
    println!(
        "replica lag at the end: {:?}; whole bench: {:.0?}",
        replica.lag(),
        started.elapsed()
    );
    drop(replica_service);
    drop(replica);
}

// ---------------------------------------------------------------------------
// The in-process paths measured in alternation.

/// Nanoseconds per verify of each in-process path, and their ratios: the
/// medians over rounds in which each path verifies `BLOCK` tokens in turn.
/// Criterion measures one figure after another, so a burst of load from
/// elsewhere on the machine lands on one of them; here it lands on all
/// three, and each round's ratios compare like with like.
struct Interleaved {
    floor: f64,
    memory: f64,
    replica: f64,
    replica_per_memory: f64,
    memory_per_floor: f64,
    replica_per_floor: f64,
}

fn interleaved(
    pool: &Pool,
    floor: &Floor,
    memory: &TokenService,
    replica: &TokenService,
) -> Interleaved {
    const ROUNDS: usize = 100;
    const BLOCK: usize = 10_000;
    let verify = |path: usize, token: &str| match path {
        0 => assert!(floor.verify(token.as_bytes())),
        1 => assert!(ready(memory.verify(token)).is_ok()),
        _ => check_replica(ready(replica.verify(token))),
    };
    let mut cycles = [Cycle::new(pool), Cycle::new(pool), Cycle::new(pool)];
    for (path, cycle) in cycles.iter_mut().enumerate() {
        cycle.lap(|token| verify(path, token));
    }
    let mut times = [const { Vec::new() }; 3];
    for round in 0..ROUNDS {
        // Each path in turn goes first, second and last.
        for turn in 0..3 {
            let path = (round + turn) % 3;
            let cycle = &mut cycles[path];
            let started = Instant::now();
            for _ in 0..BLOCK {
                verify(path, black_box(cycle.next()));
            }
            times[path].push(started.elapsed().as_secs_f64() * 1e9 / BLOCK as f64);
        }
    }
    let ratio = |a: usize, b: usize| {
        let ratios: Vec<f64> = (0..ROUNDS).map(|r| times[a][r] / times[b][r]).collect();
        median(&ratios)
    };
    Interleaved {
        floor: median(&times[0]),
        memory: median(&times[1]),
        replica: median(&times[2]),
        replica_per_memory: ratio(2, 1),
        memory_per_floor: ratio(1, 0),
        replica_per_floor: ratio(2, 0),
    }
}

/// What the summary shows beside criterion's figures.
struct Measured {
    total: usize,
    /// Live heap bytes gained building each store.
    memory_bytes: isize,
    replica_bytes: isize,
    /// Each start-up load, and the floor of one.
    load_seconds: Vec<f64>,
    floor_seconds: f64,
    interleaved: Interleaved,
}

// ---------------------------------------------------------------------------
// The summary, computed from criterion's own estimates.

fn summary(size: &str, measured: &Measured) {
    let Measured {
        total,
        memory_bytes,
        replica_bytes,
        ref load_seconds,
        floor_seconds,
        ref interleaved,
    } = *measured;
    let ns = |figure: &str| estimate_ns(GROUP, &format!("{figure}/{size}"));
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let show = |value: Option<f64>, unit: &str, digits: usize| {
        value.map_or("—".to_owned(), |v| format!("{v:.digits$}{unit}"))
    };
    let row = |figure: &str, value: String, target: &str| {
        println!("| {figure:<56} | {value:>12} | {target:<10} |");
    };

    println!(
        "\nCPU: {}; PostgreSQL on loopback; {total} tokens",
        cpu_model()
    );
    println!(
        "\n| {:<56} | {:>12} | {:<10} |",
        "figure", "measured", "target"
    );
    println!("|{:-<58}|{:-<14}|{:-<12}|", "", "", "");
    let floor = ns("floor");
    let memory = ns("memory");
    let replica = ns("replica");
    let replica_async = ns("replica_async");
    let postgres = ns("postgres");
    row(&format!("floor/{size}"), show(floor, " ns", 1), "");
    row(
        &format!("memory store verify/{size}"),
        show(memory, " ns", 1),
        "",
    );
    row(
        &format!("replica verify/{size}"),
        show(replica, " ns", 1),
        "",
    );
    row(
        &format!("replica verify, awaited on Tokio/{size}"),
        show(replica_async, " ns", 1),
        "",
    );
    row(
        &format!("PostgresStore verify/{size}"),
        show(postgres.map(|ns| ns / 1e3), " µs", 1),
        "",
    );
    row(
        &format!("replica ÷ memory store at {size}"),
        show(ratio(replica, memory), "×", 3),
        "≤ 1.1",
    );
    row(
        &format!("replica (awaited) ÷ PostgresStore at {size}"),
        show(ratio(replica_async, postgres), "×", 4),
        "≤ 0.01",
    );
    row(
        &format!("memory store ÷ floor at {size}"),
        show(ratio(memory, floor), "×", 2),
        "",
    );
    row(
        &format!("replica ÷ floor at {size}"),
        show(ratio(replica, floor), "×", 2),
        "",
    );
    row(
        &format!("PostgresStore ÷ floor at {size}"),
        show(ratio(postgres, floor), "×", 0),
        "",
    );
    let alternated = |figure: &str, value: f64, unit: &str, digits: usize, target: &str| {
        row(
            &format!("{figure}, alternating rounds at {size}"),
            show(Some(value), unit, digits),
            target,
        )
    };
    alternated("floor", interleaved.floor, " ns", 1, "");
    alternated("memory store verify", interleaved.memory, " ns", 1, "");
    alternated("replica verify", interleaved.replica, " ns", 1, "");
    alternated(
        "replica ÷ memory store",
        interleaved.replica_per_memory,
        "×",
        3,
        "≤ 1.1",
    );
    alternated(
        "memory store ÷ floor",
        interleaved.memory_per_floor,
        "×",
        2,
        "",
    );
    alternated("replica ÷ floor", interleaved.replica_per_floor, "×", 2, "");
    let stale = STALE.load(Ordering::Relaxed);
    row(
        "replica verifies refused as stale (must be 0)",
        stale.to_string(),
        "0",
    );
    let per_token = |bytes: isize| bytes as f64 / total as f64;
    row(
        "memory store heap (bytes per token)",
        show(Some(per_token(memory_bytes)), "", 1),
        "",
    );
    row(
        "replica heap (bytes per token)",
        show(Some(per_token(replica_bytes)), "", 1),
        "",
    );
    row(
        "memory per token, replica ÷ memory store",
        show(
            Some(per_token(replica_bytes) / per_token(memory_bytes)),
            "×",
            3,
        ),
        "≤ 1.1",
    );
    let runs: Vec<String> = load_seconds.iter().map(|s| format!("{s:.2}")).collect();
    row(
        &format!(
            "start-up load, median of {} ({} s)",
            runs.len(),
            runs.join(", ")
        ),
        show(Some(median(load_seconds)), " s", 2),
        "≤ 10 s",
    );
    row(
        "  its floor: the same SELECT streamed, rows undecoded",
        show(Some(floor_seconds), " s", 2),
        "",
    );
    if stale > 0 {
        println!(
            "\n{stale} verifications through the replica were refused as stale: \
             its replica figures are not valid."
        );
    }
}
