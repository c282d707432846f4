//! [`ReplicatedStore`]: every credential of a shared SQL store, copied into
//! this process's memory and kept current, so verification never waits on
//! the database, with a stated bound on how late a revocation can take
//! effect.
//!
//! How it works, and the bound it keeps: see [`ReplicatedStore`].
//!
//! Everything else (lists, `find`, every write) goes to the shared store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::shards::{Keyed, Shards, find_in_mut, insert_into, read, remove_from, write};
use super::{
    Cursor, ExpiryCursor, ListedRecord, NoticeWindow, Retirement, RevokeOutcome, RotateOutcome,
    ScopeFilter, ScopeRevoked, TokenChange, TokenStore, UpdateOutcome,
};
use crate::error::StoreError;
use crate::ids::ActorId;
use crate::record::{Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

pub(crate) mod feed;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::LISTENER_APPLICATION_NAME;
#[cfg(feature = "sqlite")]
mod sqlite;

use feed::{Change, Feed, Position, Read, Since};

/// How late a revocation may take effect unless told otherwise.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);

/// The least bound a replica keeps (see
/// [`ReplicaOptions::with_max_staleness`]).
pub const MIN_MAX_STALENESS: Duration = Duration::from_millis(20);

/// How long change rows are kept unless told otherwise: a replica cut off
/// for longer reloads everything instead of catching up.
pub const DEFAULT_CHANGE_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The least change retention (see
/// [`ReplicaOptions::with_change_retention`]).
pub const MIN_CHANGE_RETENTION: Duration = Duration::from_secs(1);

/// How often a replica deletes change rows older than the retention (or
/// more often, for a shorter retention).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Most change rows one transaction of pruning deletes.
const PRUNE_BATCH: usize = 10_000;

/// Most transactions of pruning a minute: a million change rows, far more
/// writes than a token table sees.
const PRUNE_BATCHES: usize = 100;

/// The longest a read of the feed may take, beside the store's own call
/// deadline (SQLite has none).
const READ_LIMIT: Duration = Duration::from_secs(30);

/// How many credentials a load reports progress after.
const PROGRESS_EVERY: u64 = 100_000;

/// How a [`ReplicatedStore`] keeps its copy.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    max_staleness: Duration,
    notifications: bool,
    change_retention: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            max_staleness: DEFAULT_MAX_STALENESS,
            notifications: true,
            change_retention: DEFAULT_CHANGE_RETENTION,
        }
    }
}

impl ReplicaOptions {
    /// The bound: no lookup answers from a copy last proven current longer
    /// ago than this (default one second). The replica reads the feed
    /// every quarter of it, so each instance makes four small queries a
    /// second at the default. A bound under [`MIN_MAX_STALENESS`] is
    /// raised to it: below that, reads would follow one another without
    /// pause and a round trip could rarely prove the copy current in time.
    #[must_use]
    pub fn with_max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound.max(MIN_MAX_STALENESS);
        self
    }

    /// Whether to `LISTEN` for change notifications (PostgreSQL; default
    /// yes). Without them a change arrives with the next timed read of the
    /// feed, within a quarter of `max_staleness`: for a connection pooler
    /// that does not pass notifications on, or to test that path alone.
    #[must_use]
    pub fn with_notifications(mut self, listen: bool) -> Self {
        self.notifications = listen;
        self
    }

    /// How long change rows are kept (default 15 minutes): longer than any
    /// outage a replica should catch up from rather than reload. Each
    /// replica prunes older rows once a minute (or once per retention, if
    /// shorter). A retention under [`MIN_CHANGE_RETENTION`] is raised to
    /// it: shorter, replicas that keep up would be pruned past and reload.
    #[must_use]
    pub fn with_change_retention(mut self, retention: Duration) -> Self {
        self.change_retention = retention.max(MIN_CHANGE_RETENTION);
        self
    }

    /// The bound set.
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }
}

/// A [`TokenStore`] that serves `find_credential` (every verification)
/// from an in-process copy of a shared SQL store, and everything else from
/// the store itself.
///
/// # How it stays current
///
/// 1. **Start-up.** One streaming read copies every credential into the
///    sharded table the memory store uses (logging progress through
///    `tracing`). Until it finishes, verification fails as unavailable;
///    [`ready`](ReplicatedStore::ready) waits for it.
/// 2. **The change feed** (`<table>_changes`, from the migration
///    `0002_change_feed`). Every write to the store adds a row naming what
///    changed, inside the writer's transaction. Reading the feed re-reads
///    exactly the tokens it names, in one snapshot, and applies scope
///    revocations to the copy. On PostgreSQL a read takes the rows its
///    previous read's snapshot did not see, so a transaction that commits
///    out of order is read when it commits, never skipped; on SQLite (one
///    writer at a time) rows are numbered in commit order.
/// 3. **When it reads.** On PostgreSQL a dedicated connection `LISTEN`s for
///    the notification each write sends at commit, and the replica reads
///    the feed at once. Whatever happens to notifications (a lost listener,
///    a reconnect, a pooler that drops them), it also reads the feed every
///    quarter of `max_staleness`: that read proves the copy current even
///    when nothing changed, and catches up after any gap.
/// 4. **Its own writes.** A write through the replica goes to the store,
///    then reads the feed before it returns, so this instance sees its own
///    writes at once. If that read fails, or cannot start within the bound
///    (a reload is running), the copy counts as stale until a read
///    succeeds.
///
/// # The bound
///
/// Each read of the feed that succeeds proves the copy holds every change
/// committed before the read began: "fresh as of" that moment. A lookup
/// made more than `max_staleness` after it fails closed with
/// [`StoreError::Unavailable`] (a 503 through the HTTP layer) instead of
/// answering. So a token revoked at time R is refused everywhere from
/// R + `max_staleness` on, whatever fails in between, and the replica
/// recovers by itself once reads succeed again.
///
/// Change rows are pruned after a retention (15 minutes,
/// [`ReplicaOptions::with_change_retention`]); a replica cut off for
/// longer reloads everything, failing closed while it does.
///
/// # Costs and limits
///
/// - Memory for every credential (no label or creator: about half what
///   `MemoryStore` keeps per token).
/// - Four small queries a second at the default bound, and one connection
///   for `LISTEN`.
/// - Writes through the replica wait for one read of the feed after they
///   commit; while a (re)load runs, they wait for it up to the bound, then
///   return and leave the copy stale until the next read.
/// - Followed are writes through any instance and statements that change
///   rows of the token table, or update or add scope marks (a `TRUNCATE`
///   makes every replica reload). A scope mark deleted by hand is not:
///   replicas keep its tokens revoked until they reload.
/// - Last-used times are not in the feed: each instance records its own
///   (see [`record_uses`](TokenStore::record_uses) below).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use api_tokens::{PostgresStore, ReplicaOptions, ReplicatedStore};
///
/// let shared = PostgresStore::connect("postgres://app@db.internal/app").await?;
/// let store = ReplicatedStore::postgres(shared, ReplicaOptions::default());
/// store.ready().await?; // every credential loaded
/// assert!(store.lag().is_some_and(|lag| lag < store.max_staleness()));
/// # Ok(()) }
/// ```
pub struct ReplicatedStore {
    shared: Arc<Shared>,
    /// The feed reader, the pruner and the listener, stopped when the store
    /// is dropped.
    tasks: Vec<JoinHandle<()>>,
}

/// What the store's tasks share with it.
struct Shared {
    source: Arc<dyn Feed>,
    /// The copy: every credential, by id.
    table: Shards<Entry>,
    /// One copy of each scope, which its credentials share.
    scopes: Mutex<HashMap<Scope, Arc<Scope>>>,
    /// Tokens whose rows do not read back: reported as corrupt, as the
    /// shared store reports them. Looked at only on a miss, and only when
    /// `any_damaged` says there is one.
    damaged: RwLock<HashMap<TokenId, (Option<Scope>, String)>>,
    any_damaged: AtomicBool,
    /// When the copy was last proven current: nanoseconds since `epoch`,
    /// plus one; 0 while it is not (not loaded, or a read after a write
    /// failed).
    fresh_as_of: AtomicU64,
    epoch: Instant,
    options: ReplicaOptions,
    /// The feed is read by one task at a time, in order; this holds where.
    sync: tokio::sync::Mutex<SyncState>,
    /// Wakes the feed reader: a notification, or a write.
    wake: Arc<Notify>,
    /// Whether the first load has finished.
    loaded: watch::Sender<bool>,
    /// How many loads finished.
    loads: AtomicU64,
}

/// Why the feed is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occasion {
    /// On a notification, or because a quarter of the bound passed.
    Timed,
    /// Right after a write through this instance.
    AfterWrite,
}

/// Where the replica is in the feed.
struct SyncState {
    /// `None` until loaded, and after a prune overtook it: load everything.
    position: Option<Position>,
    /// Whether the last read failed (to log the failure once, and the
    /// recovery).
    failing: bool,
}

/// One credential of the copy.
struct Entry {
    credential: StoredCredential,
    /// Its insertion order: a scope revocation covers the tokens up to a
    /// `seq`.
    seq: i64,
}

impl Keyed for Entry {
    fn credential(&self) -> &StoredCredential {
        &self.credential
    }
}

impl ReplicatedStore {
    /// A replica of `store`, following its change feed with notifications
    /// (see [`ReplicaOptions::with_notifications`]). It starts loading at
    /// once, in a task on the current Tokio runtime: call it inside one.
    /// Await [`ready`](Self::ready) before serving; until then lookups fail
    /// as unavailable.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    #[cfg(feature = "postgres")]
    pub fn postgres(store: super::PostgresStore, options: ReplicaOptions) -> Self {
        ReplicatedStore::start(Arc::new(store), options)
    }

    /// A replica of `store`: for one process that writes through it (or a
    /// few sharing the file on one machine, which read each other's
    /// writes from the feed within a quarter of `max_staleness`). It starts
    /// loading at once, in a task on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(store: super::SqliteStore, options: ReplicaOptions) -> Self {
        ReplicatedStore::start(Arc::new(store), options)
    }

    fn start(source: Arc<dyn Feed>, options: ReplicaOptions) -> Self {
        let wake = Arc::new(Notify::new());
        let listen = options.notifications;
        let shared = Arc::new(Shared {
            source,
            table: Shards::new(),
            scopes: Mutex::default(),
            damaged: RwLock::default(),
            any_damaged: AtomicBool::new(false),
            fresh_as_of: AtomicU64::new(0),
            epoch: Instant::now(),
            options,
            sync: tokio::sync::Mutex::new(SyncState {
                position: None,
                failing: false,
            }),
            wake: wake.clone(),
            loaded: watch::Sender::new(false),
            loads: AtomicU64::new(0),
        });
        let mut tasks = vec![
            tokio::spawn(follow(shared.clone())),
            tokio::spawn(prune_periodically(shared.clone())),
        ];
        if listen {
            tasks.extend(shared.source.listen(wake));
        }
        #[cfg(feature = "metrics")]
        tasks.push(tokio::spawn(report_lag(shared.clone())));
        ReplicatedStore { shared, tasks }
    }

    /// Waits until every credential is loaded. It keeps trying while the
    /// store is unreachable (each failure is logged); bound the wait with
    /// `tokio::time::timeout` if you need to.
    ///
    /// # Errors
    ///
    /// None yet: the result leaves room for a replica that gives up.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let mut loaded = self.shared.loaded.subscribe();
        // The sender lives as long as `self`.
        let _ = loaded.wait_for(|&done| done).await;
        Ok(())
    }

    /// How long ago the copy was last proven current, or `None` while it is
    /// not (still loading, or a read after a write failed). Above
    /// [`max_staleness`](Self::max_staleness), lookups fail closed: for
    /// health checks and metrics.
    pub fn lag(&self) -> Option<Duration> {
        self.shared.lag()
    }

    /// The bound lookups keep.
    pub fn max_staleness(&self) -> Duration {
        self.shared.options.max_staleness
    }

    /// How many credentials the copy holds (revoked and expired ones
    /// included, until the store purges them).
    pub fn len(&self) -> usize {
        self.shared.table.len()
    }

    /// Whether the copy holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times the replica loaded every credential: 1 after
    /// start-up, one more for each reload (after the store pruned changes
    /// it had not read yet). For metrics: a count that keeps growing means
    /// replicas are cut off for longer than the change retention.
    pub fn loads(&self) -> u64 {
        self.shared.loads.load(Ordering::Relaxed)
    }

    /// Reads the feed now, after a write, and returns once this instance
    /// sees the write (or, if the read failed, counts as stale).
    async fn after_write(&self) {
        self.shared.catch_up(Occasion::AfterWrite).await;
    }
}

impl Drop for ReplicatedStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl fmt::Debug for ReplicatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedStore")
            .field("credentials", &self.len())
            .field("lag", &self.lag())
            .field("max_staleness", &self.max_staleness())
            .finish_non_exhaustive()
    }
}

/// The feed reader: loads, then reads the feed whenever woken and at
/// least every quarter of the bound, and prunes old change rows.
async fn follow(shared: Arc<Shared>) {
    let every = shared.options.max_staleness / 4;
    loop {
        shared.catch_up(Occasion::Timed).await;
        // A wake-up that came while reading stays stored: the next wait
        // returns at once.
        let _ = tokio::time::timeout(every, shared.wake.notified()).await;
    }
}

/// Sets the replica-lag gauge every quarter of the bound: a task of its
/// own, so the gauge keeps rising while a read of the feed hangs or
/// fails, which is when it matters.
#[cfg(feature = "metrics")]
async fn report_lag(shared: Arc<Shared>) {
    let gauge = metrics::gauge!(crate::metrics::REPLICA_LAG);
    let mut every = tokio::time::interval(shared.options.max_staleness / 4);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        gauge.set(shared.lag().map_or(f64::INFINITY, |lag| lag.as_secs_f64()));
    }
}

/// The pruner: a task of its own, so that deleting a backlog of change
/// rows never holds up a read of the feed.
async fn prune_periodically(shared: Arc<Shared>) {
    let every = shared.options.change_retention.min(PRUNE_EVERY);
    loop {
        tokio::time::sleep(every).await;
        if *shared.loaded.borrow() {
            shared.prune().await;
        }
    }
}

impl Shared {
    /// Deletes change rows older than the retention, a batch per short
    /// transaction, at most [`PRUNE_BATCHES`] batches a minute; and forgets
    /// scopes no credential holds.
    async fn prune(&self) {
        let retention = self.options.change_retention;
        for _ in 0..PRUNE_BATCHES {
            match self.source.prune_changes(retention, PRUNE_BATCH).await {
                Ok(deleted) if deleted < PRUNE_BATCH as u64 => break,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "old change rows not pruned; retried in a minute");
                    break;
                }
            }
        }
        self.drop_unused_scopes();
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    fn lag(&self) -> Option<Duration> {
        let fresh = self.fresh_as_of.load(Ordering::Acquire);
        (fresh != 0).then(|| Duration::from_nanos(self.now().saturating_sub(fresh)))
    }

    /// Reads the feed (after loading everything, if there is no position
    /// yet or the feed was pruned past it), and records what the read
    /// proved: the copy is current as of the moment the read began.
    async fn catch_up(&self, why: Occasion) {
        let mut state = match why {
            Occasion::Timed => self.sync.lock().await,
            // A write does not wait behind a reload (or a stuck read) for
            // longer than the bound: the copy then counts as stale, and the
            // write returns.
            Occasion::AfterWrite => {
                match tokio::time::timeout(self.options.max_staleness, self.sync.lock()).await {
                    Ok(state) => state,
                    Err(_) => {
                        self.fresh_as_of.store(0, Ordering::Release);
                        return;
                    }
                }
            }
        };
        let outcome = self.read_feed(&mut state).await;
        match outcome {
            Ok(started) => {
                self.fresh_as_of.fetch_max(started, Ordering::AcqRel);
                // Ready once loaded and fresh, in that order.
                self.loaded
                    .send_if_modified(|loaded| !std::mem::replace(loaded, true));
                if std::mem::take(&mut state.failing) {
                    tracing::info!("the replica is current again");
                }
            }
            Err(error) => {
                // A timed read that failed changes nothing: the copy is as
                // current as the last read proved, and lookups fail closed
                // once that is past the bound. A read after a write that
                // failed may have missed the write, which this instance
                // must see: count as stale until a read succeeds.
                if why == Occasion::AfterWrite {
                    self.fresh_as_of.store(0, Ordering::Release);
                }
                if !std::mem::replace(&mut state.failing, true) {
                    tracing::warn!(
                        error = %error,
                        "the replica cannot read the store's changes; lookups fail closed once \
                         its last successful read is {:?} old",
                        self.options.max_staleness
                    );
                }
            }
        }
    }

    /// Reads the feed since the position, loading first when there is
    /// none; returns when the successful read began. A load proves nothing
    /// by itself (it took a while): the read after it, from the load's
    /// snapshot, is what makes a loaded copy current.
    ///
    /// The read is bounded by the store's call deadline, and by
    /// [`READ_LIMIT`]: not by the bound, since a large catch-up (after an
    /// outage) that takes longer than the bound must still finish to make
    /// progress; freshness counts from when the read began either way.
    async fn read_feed(&self, state: &mut SyncState) -> Result<u64, StoreError> {
        // Twice at most: once more after the feed was pruned past us.
        for _ in 0..2 {
            if state.position.is_none() {
                self.load(state).await?;
            }
            let Some(position) = state.position.clone() else {
                break;
            };
            let started = self.now();
            let mut marks = HashMap::new();
            let read = tokio::time::timeout(
                READ_LIMIT,
                self.source
                    .changes_since(&position, &mut |change| self.apply(change, &mut marks)),
            )
            .await
            .unwrap_or_else(|elapsed| {
                Err(StoreError::Unavailable {
                    source: Box::new(elapsed),
                })
            });
            // Applied even if the read failed half-way: revocations only
            // ever make the copy safer, and the next read repeats them.
            self.revoke_covered(&marks);
            match read? {
                Since::CaughtUp(next) => {
                    state.position = Some(next);
                    return Ok(started);
                }
                Since::Pruned => {
                    tracing::warn!(
                        "the store pruned changes this replica had not read, or changed what \
                         no change row can say (a TRUNCATE); reloading everything"
                    );
                    state.position = None;
                }
            }
        }
        Err(StoreError::Unavailable {
            source: "the store pruned its changes past this replica's reload".into(),
        })
    }

    /// Copies every credential, replacing the copy: entries the load did
    /// not see are dropped at the end. Lookups keep answering from the old
    /// copy while it runs, as long as it is within the bound.
    async fn load(&self, state: &mut SyncState) -> Result<(), StoreError> {
        // What to sweep afterwards: entries this load does not see (none
        // to sweep when starting empty). The set is as large as the copy,
        // for as long as a reload runs.
        let mut seen = (!self.table.is_empty()).then(HashSet::new);
        let started = Instant::now();
        tracing::info!("loading every credential into the replica");
        let mut loaded = 0u64;
        let mut damaged = HashMap::new();
        let position = self
            .source
            .load(&mut |read| {
                loaded += 1;
                if loaded.is_multiple_of(PROGRESS_EVERY) {
                    tracing::info!(loaded, "loading the replica");
                }
                match read {
                    Read::Credential(credential, seq) => {
                        if let Some(seen) = &mut seen {
                            seen.insert(credential.id);
                        }
                        self.upsert(credential, seq);
                    }
                    Read::Damaged { id, scope, error } => {
                        damaged.insert(id, (scope, error));
                    }
                    Read::Gone(_) => {}
                }
            })
            .await?;
        let compact = self.compact_scopes();
        for shard in self.table.all() {
            let mut table = write(&shard.0);
            if let Some(seen) = &seen {
                table.retain(|entry| seen.contains(&entry.credential.id));
            }
            for entry in table.iter_mut() {
                if let Some(scope) = compact.get(&*entry.credential.scope) {
                    entry.credential.scope = scope.clone();
                }
            }
        }
        self.any_damaged
            .store(!damaged.is_empty(), Ordering::Release);
        *self.damaged.write().unwrap_or_else(PoisonError::into_inner) = damaged;
        self.drop_unused_scopes();
        state.position = Some(position);
        self.loads.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            loaded,
            seconds = started.elapsed().as_secs_f64(),
            "the replica is loaded"
        );
        Ok(())
    }

    /// Applies one change read from the feed; a scope revocation is noted
    /// in `marks`, to be applied with the others the read finds.
    fn apply(&self, change: Change, marks: &mut HashMap<String, Vec<(String, i64)>>) {
        match change {
            Change::Token(Read::Credential(credential, seq)) => {
                self.forget_damage(credential.id);
                self.upsert(credential, seq);
            }
            Change::Token(Read::Damaged { id, scope, error }) => {
                remove_from(&mut write(self.table.of(id)), id);
                self.damaged
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id, (scope, error));
                self.any_damaged.store(true, Ordering::Release);
            }
            Change::Token(Read::Gone(id)) => {
                remove_from(&mut write(self.table.of(id)), id);
                self.forget_damage(id);
            }
            Change::Scope {
                org,
                domain,
                through_seq,
            } => marks.entry(org).or_default().push((domain, through_seq)),
        }
    }

    fn forget_damage(&self, id: TokenId) {
        if self.any_damaged.load(Ordering::Acquire) {
            let mut damaged = self.damaged.write().unwrap_or_else(PoisonError::into_inner);
            damaged.remove(&id);
            self.any_damaged
                .store(!damaged.is_empty(), Ordering::Release);
        }
    }

    /// A fresh copy of every scope, allocated one after another, to replace
    /// the ones a load interned. Every verification touches its scope's
    /// reference count; interned in the middle of decoding rows, the
    /// copies lie scattered across the heap, one per cache line or page,
    /// and a lookup at 1M tokens paid a second cache miss for it. Packed,
    /// they stay in cache, as the memory store's do.
    fn compact_scopes(&self) -> HashMap<Scope, Arc<Scope>> {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let compact: HashMap<Scope, Arc<Scope>> = scopes
            .keys()
            .map(|scope| (scope.clone(), Arc::new(scope.clone())))
            .collect();
        scopes.clone_from(&compact);
        compact
    }

    /// Forgets the scopes no credential holds any more (their tokens were
    /// purged), so the map is bounded by the scopes the copy holds.
    fn drop_unused_scopes(&self) {
        self.scopes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, scope| Arc::strong_count(scope) > 1);
    }

    /// Stores `credential` in the copy, replacing an earlier state. The
    /// last-used time only moves forward: the copy may hold a later one,
    /// written through this instance, than a read made just before.
    fn upsert(&self, mut credential: StoredCredential, seq: i64) {
        credential.scope = self.intern(&credential.scope);
        let mut table = write(self.table.of(credential.id));
        match find_in_mut(&mut table, credential.id) {
            Some(entry) => {
                credential.last_used_at =
                    credential.last_used_at.max(entry.credential.last_used_at);
                *entry = Entry { credential, seq };
            }
            None => insert_into(&mut table, Entry { credential, seq }),
        }
    }

    /// The one copy of `scope` its credentials share.
    fn intern(&self, scope: &Arc<Scope>) -> Arc<Scope> {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        match scopes.get(&**scope) {
            Some(shared) => shared.clone(),
            None => {
                scopes.insert(Scope::clone(scope), scope.clone());
                scope.clone()
            }
        }
    }

    /// Marks revoked every credential of organization `org` (of its domain
    /// `domain`, unless that is `''`) inserted up to `through_seq`, for each
    /// such mark: what scope marks say. Each table is scanned under its read lock, so
    /// lookups go on; the write lock is taken only to set what matched.
    ///
    /// All the marks one read found are applied in one pass over the copy
    /// (`marks`: organization → its marks' domains and `through_seq`s), so
    /// a read with many scope revocations costs one scan, not one each.
    fn revoke_covered(&self, marks: &HashMap<String, Vec<(String, i64)>>) {
        if marks.is_empty() {
            return;
        }
        let covered = |entry: &Entry| {
            let scope = &entry.credential.scope;
            !entry.credential.revoked
                && marks.get(scope.org().as_str()).is_some_and(|marks| {
                    marks.iter().any(|(domain, through_seq)| {
                        entry.seq <= *through_seq
                            && (domain.is_empty()
                                || scope.domain_id().is_some_and(|d| d.as_str() == domain))
                    })
                })
        };
        for shard in self.table.all() {
            let ids: Vec<TokenId> = read(&shard.0)
                .iter()
                .filter(|entry| covered(entry))
                .map(|entry| entry.credential.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let mut table = write(&shard.0);
            for id in ids {
                if let Some(entry) = find_in_mut(&mut table, id) {
                    entry.credential.revoked = true;
                }
            }
        }
    }

    /// The credential of `id` from the copy, if the copy is within the
    /// bound: the verification path.
    fn credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        let fresh = self.fresh_as_of.load(Ordering::Acquire);
        let lag = Duration::from_nanos(self.now().saturating_sub(fresh));
        if fresh == 0 || lag > self.options.max_staleness {
            return Err(self.stale(fresh, lag));
        }
        match self.table.credential(id) {
            Some(credential) => Ok(Some(credential)),
            None if self.any_damaged.load(Ordering::Acquire) => self.damage_of(id),
            None => Ok(None),
        }
    }

    /// Records uses written through this instance in the copy too, so
    /// verification does not note them again.
    fn note_uses(&self, uses: &[(TokenId, OffsetDateTime)]) {
        for &(id, at) in uses {
            if let Some(entry) = find_in_mut(&mut write(self.table.of(id)), id) {
                let last = &mut entry.credential.last_used_at;
                *last = (*last).max(Some(at));
            }
        }
    }

    #[cold]
    fn stale(&self, fresh: u64, lag: Duration) -> StoreError {
        let why = if fresh == 0 {
            "the replica is not loaded, or its last read of the store failed".to_string()
        } else {
            format!(
                "the replica was last proven current {lag:?} ago, more than its bound of {:?}",
                self.options.max_staleness
            )
        };
        StoreError::Unavailable { source: why.into() }
    }

    #[cold]
    fn damage_of(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        let damaged = self.damaged.read().unwrap_or_else(PoisonError::into_inner);
        match damaged.get(&id) {
            Some((scope, error)) => Err(StoreError::Corrupt {
                id: Some(id),
                scope: scope.clone(),
                source: error.clone().into(),
            }),
            None => Ok(None),
        }
    }
}

/// Writes go to the shared store, then read the feed so this instance sees
/// them before they return; reads other than `find_credential` go to the
/// shared store as they are.
#[async_trait]
impl TokenStore for ReplicatedStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let inserted = self.shared.source.insert(record).await;
        self.after_write().await;
        inserted
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.shared.source.find(id).await
    }

    /// From the copy, never the database: fails as unavailable while the
    /// copy is not proven current within `max_staleness`.
    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        self.shared.credential(id)
    }

    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.shared.source.list(filter, after, limit).await
    }

    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let revoked = self.shared.source.revoke(scope, id, revocation).await;
        self.after_write().await;
        revoked
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        let revoked = self.shared.source.revoke_scope(scope, revocation).await;
        self.after_write().await;
        revoked
    }

    async fn rotate(
        &self,
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        let rotated = self
            .shared
            .source
            .rotate(scope, old, retire, successor)
            .await;
        self.after_write().await;
        rotated
    }

    /// Each revoked token's row is updated in the store, so the change
    /// feed names it (its triggers follow every update of `revoked_at`),
    /// and the read after the write applies it here before this returns.
    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        let revoked = self
            .shared
            .source
            .revoke_created_by(creator, revocation, limit)
            .await;
        self.after_write().await;
        revoked
    }

    /// The row is updated in the store, so the change feed names it (its
    /// triggers follow every column but `last_used_at`, the disablement
    /// and the expiry included), and the read after the write applies it
    /// here before this returns: a token disabled through this instance
    /// fails verification here at once.
    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        let updated = self.shared.source.update(scope, id, change).await;
        self.after_write().await;
        updated
    }

    /// Last-used times are no change the feed reports (they would make
    /// every flush a change for every replica): each instance sets them
    /// in its own copy when it writes them, and so writes a token's use at
    /// most once per interval itself.
    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        self.shared.source.record_uses(uses).await?;
        self.shared.note_uses(uses);
        Ok(())
    }

    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.shared
            .source
            .list_expiring(filter, window, after, limit)
            .await
    }

    /// To the shared store as it is: a notice mark is bookkeeping that
    /// verification never reads, so the change feed does not carry it and
    /// there is nothing to apply here.
    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.shared
            .source
            .claim_expiry_notices(filter, window, limit)
            .await
    }

    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        self.shared
            .source
            .release_expiry_notices(length_secs, claimed)
            .await
    }

    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        let purged = self.shared.source.purge(before, limit).await;
        self.after_write().await;
        purged
    }

    async fn ready(&self) -> Result<(), StoreError> {
        ReplicatedStore::ready(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica's entry costs what a memory store's does (the credential
    /// and one word beside it), so a lookup touches the same cache lines.
    #[test]
    fn a_bound_or_retention_too_short_to_keep_is_raised_to_the_least_one() {
        let options = ReplicaOptions::default()
            .with_max_staleness(Duration::ZERO)
            .with_change_retention(Duration::ZERO);
        assert_eq!(options.max_staleness(), MIN_MAX_STALENESS);
        assert_eq!(options.change_retention, MIN_CHANGE_RETENTION);
        let options = ReplicaOptions::default().with_max_staleness(Duration::from_secs(3));
        assert_eq!(options.max_staleness(), Duration::from_secs(3));
    }

    #[test]
    fn an_entry_is_as_large_as_the_memory_stores() {
        assert_eq!(
            size_of::<Entry>(),
            size_of::<StoredCredential>() + size_of::<Box<()>>()
        );
    }
}
