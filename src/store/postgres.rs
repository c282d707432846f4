//! The PostgreSQL store (feature `postgres`): one database shared by every
//! instance of a service, so a revocation on one is seen by all at once.
//!
//! What is PostgreSQL's own here, beside the statements in [`sql`](super::sql):
//!
//! - **Two pools.** Verification has a pool of its own; every other call
//!   uses a second, small one, and waits there. A management call borrows
//!   a verification connection only for the one lookup the service makes to
//!   check who may manage a token (`find_credential`, as short as a
//!   verification and bounded by the same deadline), so however many
//!   management calls queue, and whoever makes them, verification never
//!   waits behind them.
//! - **Bounded calls, on both ends.** Each call has one deadline (five
//!   seconds unless [`with_timeout`](PostgresStore::with_timeout) says
//!   otherwise). Every management call runs in a transaction that sets
//!   `statement_timeout`, `lock_timeout` and
//!   `idle_in_transaction_session_timeout` to twice that (never shorter
//!   than the client waits), so the server aborts a call the client gave up
//!   on and releases its locks; the pools this store opens set the same on
//!   every connection. A connection whose call
//!   was cancelled (by the deadline or by the caller) is closed, never
//!   returned to the pool, where it would stay busy until the server
//!   finished the abandoned statement.
//! - **Organization locks.** Inserts, revocations, rotations and updates
//!   hold their organizations' advisory locks shared, a scope revocation
//!   its one lock exclusively, for one short transaction: under READ
//!   COMMITTED a scope mark could otherwise miss a successor a concurrent
//!   rotation inserted, count a token a concurrent revocation revoked too,
//!   or be followed by a change to a token it had revoked. Offboarding,
//!   whose tokens lie in organizations it learns only as it revokes them,
//!   holds one offboarding lock exclusively instead, which scope
//!   revocations take shared: a step of offboarding and a scope revocation
//!   (of any tenant) take turns, each short.
//! - **TLS** (feature `postgres-tls`): `sslmode=verify-full` in the URL,
//!   and `sslrootcert=<path>` for a private CA.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres};
use time::OffsetDateTime;

use super::migrations::{self, Migration};
use super::sql::{
    Class, Dialect, Reads, RecordParams, RecordRow, Statements, apply_migrations,
    bind_claim_notices, bind_find_at, bind_list, bind_list_expiring, bind_mark, bind_marked,
    bind_record, bind_release_notice, bind_retire, bind_revoke, bind_scope_counts, id_to_sql,
    limit_to_sql, revoke_created_by_rounds, revoke_missed, rotation_refused, scope_revoked,
    soonest_first, store_error, update_missed, update_query,
};
use super::table::TableName;
use super::{
    Cursor, ExpiryCursor, ListedRecord, NoticeWindow, REPORTED_IDS, Retirement, RevokeOutcome,
    RotateOutcome, ScopeFilter, ScopeRevoked, TokenChange, TokenStore, UpdateOutcome,
};
use crate::error::StoreError;
use crate::ids::ActorId;
use crate::record::{Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

/// A row as PostgreSQL reads it: times are `timestamptz`.
type Row = RecordRow<OffsetDateTime>;

/// Migrations from many instances at once take turns on this advisory lock
/// (an arbitrary number of ours), so two never race to create one table.
const MIGRATION_LOCK: i64 = 0x6170_695f_746f_6b6e;

/// The key space of the per-organization advisory locks (the first half of
/// PostgreSQL's two-part key; the second is a hash of the organization id).
const ORG_LOCK_SPACE: i32 = 0x6170_6974;

/// How long a call may take unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of the verification pool [`PostgresStore::connect`] opens.
const VERIFY_CONNECTIONS: u32 = 16;

/// Connections of the management pool the store opens: enough for a few
/// admins at once; more calls queue for them, never for verification's.
const MANAGEMENT_CONNECTIONS: u32 = 4;

/// Most last-used times written by one statement.
const USES_PER_STATEMENT: usize = 1_000;

/// Offboarding (`revoke_created_by`) holds this advisory lock (an
/// arbitrary number of ours) exclusively, scope revocations shared: an
/// offboarding step waits for scope revocations under way, and they for it
/// (the module docs say why).
const OFFBOARDING_LOCK: i64 = 0x6170_695f_6f66_6662;

/// PostgreSQL's error codes meaning "try again later": connection
/// exceptions (class 08), the server shutting down or starting (57P0x), a
/// statement cancelled or timed out (57014), a lock not granted in time
/// (55P03), insufficient resources (class 53: disk full, out of memory, too
/// many connections), a read-only server after a failover (25006), a
/// serialization failure or deadlock, a transaction idle too long (25P03).
/// Data corrupted on disk (XX001, XX002) is corrupt.
fn classify(code: &str) -> Class {
    if code.starts_with("08")
        || code.starts_with("57P0")
        || code.starts_with("53")
        || matches!(
            code,
            "57014" | "55P03" | "25006" | "25P03" | "40001" | "40P01"
        )
    {
        Class::Outage
    } else if matches!(code, "XX001" | "XX002") {
        Class::Corrupt
    } else {
        Class::Other
    }
}

pub(in crate::store) fn error(error: sqlx::Error) -> StoreError {
    store_error(error, None, classify)
}

fn error_for(id: TokenId) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| store_error(error, Some(id), classify)
}

/// Keeps records in a PostgreSQL database that every instance of a service
/// shares: a token issued on one verifies on all, and once `revoke` returns
/// it fails on all. Each method is one short transaction, so the
/// database's own locking makes it atomic, and none grows with the size of
/// a scope (a scope revocation writes one mark; see the `store` docs).
///
/// ```no_run
/// # async fn connect() -> Result<(), api_tokens::StoreError> {
/// let store = api_tokens::PostgresStore::connect("postgres://app@db.internal/app").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    /// `find_credential`'s, and nothing else's.
    verify_pool: PgPool,
    /// Every other call's.
    management_pool: Arc<Management>,
    table: TableName,
    statements: Arc<Statements>,
    /// How long any call may take before it fails as unavailable.
    timeout: Duration,
}

impl PostgresStore {
    /// Connects to the database at `url`, opening a verification pool and
    /// a management pool, and brings the schema of the default table
    /// (`api_tokens`) up to date: the embedded path. A service that runs
    /// its own migrations uses [`connect_lazy_with`](Self::connect_lazy_with)
    /// or [`from_pools`](Self::from_pools) instead, and never `migrate`.
    ///
    /// TLS (feature `postgres-tls`): `?sslmode=verify-full` checks the
    /// server's certificate against the usual public roots, or
    /// `&sslrootcert=/path/ca.pem` against your own CA.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached,
    /// [`StoreError::Tls`] if no trusted TLS connection can be made, or a
    /// failure of the migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(error)?;
        let store = PostgresStore::connect_lazy_with(options);
        store.migrate().await?;
        Ok(store)
    }

    /// A store whose two pools connect with `options`, lazily: nothing is
    /// opened until the first call, so this cannot fail, and a server that
    /// is down makes calls fail as unavailable until it is back. Every
    /// connection gets the store's server-side timeouts. Tokens live in the
    /// default table (see [`with_table`](Self::with_table)); nothing is
    /// migrated.
    pub fn connect_lazy_with(options: PgConnectOptions) -> Self {
        let options = with_server_timeouts(options, DEFAULT_TIMEOUT);
        let pool = |connections| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(DEFAULT_TIMEOUT)
                // No ping before every query: it would double a verify's
                // round trips, and a broken connection fails its query and
                // is dropped.
                .test_before_acquire(false)
                .connect_lazy_with(options.clone())
        };
        PostgresStore::from_pools(pool(VERIFY_CONNECTIONS), pool(MANAGEMENT_CONNECTIONS))
    }

    /// A store over your pool, for verification, and a management pool of
    /// its own of at most four connections, opened lazily with your pool's
    /// options (and the store's server-side timeouts), so management never
    /// takes a connection your verification needs. Tokens live in the
    /// default table; see [`with_table`](Self::with_table).
    pub fn from_pool(pool: PgPool) -> Self {
        let options = with_server_timeouts((*pool.connect_options()).clone(), DEFAULT_TIMEOUT);
        let mut store = PostgresStore::from_pools(pool.clone(), pool);
        // Made at its first use: opening a pool needs the Tokio runtime,
        // which a store built outside one finds only once it is called.
        store.management_pool = Arc::new(Management {
            options: Some(options),
            pool: OnceLock::new(),
        });
        store
    }

    /// A store over two pools of yours: `verify` for verification alone,
    /// `management` for every other call. Give verification the larger
    /// share of the server's connections.
    pub fn from_pools(verify: PgPool, management: PgPool) -> Self {
        let table = TableName::default();
        PostgresStore {
            verify_pool: verify,
            management_pool: Arc::new(Management {
                options: None,
                pool: OnceLock::from(management),
            }),
            statements: Arc::new(Statements::new(&table, Dialect::Postgres)),
            table,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same store, keeping tokens in `table` (which
    /// [`migrate`](Self::migrate) or your migration tool creates).
    #[must_use]
    pub fn with_table(mut self, table: TableName) -> Self {
        self.statements = Arc::new(Statements::new(&table, Dialect::Postgres));
        self.table = table;
        self
    }

    /// The same store, failing any call that gets no answer within
    /// `timeout` as [`StoreError::Unavailable`], and telling the server to
    /// abandon it then too (pools you gave keep their own settings for
    /// verification).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The schema for tokens in `table`, as plain SQL, in order: for a
    /// migration tool of your own (sqlx's, refinery, …). The same text as
    /// the files under `migrations/postgres/` in the repository, written
    /// for `table`.
    ///
    /// ```
    /// use api_tokens::{PostgresStore, store::TableName};
    ///
    /// let migrations = PostgresStore::migrations(&"billing.tokens".parse()?);
    /// assert!(migrations[0].sql.contains(r#"CREATE TABLE "billing"."tokens" ("#));
    /// # Ok::<(), api_tokens::TableNameError>(())
    /// ```
    pub fn migrations(table: &TableName) -> Vec<Migration> {
        migrations::render(migrations::POSTGRES, table)
    }

    /// Applies the migrations this database lacks, for the store's table,
    /// recording each in `<table>_migrations`: the embedded path, for a
    /// service without a migration tool. It needs the right to create
    /// tables. Safe to run any number of times, from any number of
    /// instances at once.
    ///
    /// # Errors
    ///
    /// A failure of the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let applied = self.table.quoted("_migrations");
        let migrations = PostgresStore::migrations(&self.table);
        self.call(self.management_pool(), async |conn| {
            let mut tx = self.begin(conn).await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {applied} \
                 (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            );
            apply_migrations!(&mut tx, &create, &applied, &migrations, error);
            tx.commit().await.map_err(error)
        })
        .await
    }

    /// The verification pool, for your own queries or to close it.
    pub fn pool(&self) -> &PgPool {
        &self.verify_pool
    }

    /// The management pool. (One that [`from_pool`](Self::from_pool)
    /// derives is made here, on first use: call this inside the Tokio
    /// runtime.)
    pub fn management_pool(&self) -> &PgPool {
        let management = &*self.management_pool;
        management.pool.get_or_init(|| {
            let options = management.options.clone().unwrap_or_default();
            PgPoolOptions::new()
                .max_connections(MANAGEMENT_CONNECTIONS)
                .acquire_timeout(DEFAULT_TIMEOUT)
                .connect_lazy_with(options)
        })
    }

    /// The table the tokens live in.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// Runs `work` on a connection of `pool`, all of it within the store's
    /// timeout. A call that runs out of time (or is dropped by its caller)
    /// closes its connection instead of returning it to the pool.
    async fn call<T>(
        &self,
        pool: &PgPool,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.call_within(pool, self.timeout, work).await
    }

    /// [`call`](Self::call), within `timeout` instead of the store's.
    pub(in crate::store) async fn call_within<T>(
        &self,
        pool: &PgPool,
        timeout: Duration,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let unavailable = |elapsed| StoreError::Unavailable {
            source: Box::new(elapsed),
        };
        let connection = tokio::time::timeout_at(deadline, pool.acquire())
            .await
            .map_err(unavailable)?
            .map_err(error)?;
        let mut connection = ClosedUnlessFinished {
            connection,
            finished: false,
        };
        let outcome = tokio::time::timeout_at(deadline, work(&mut connection.connection))
            .await
            .map_err(unavailable)?;
        connection.finished = true;
        outcome
    }

    /// Begins a transaction that the server, too, abandons after the
    /// store's timeout, releasing its locks.
    async fn begin<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> Result<sqlx::Transaction<'c, Postgres>, StoreError> {
        PostgresStore::begin_within(conn, "BEGIN", self.timeout).await
    }

    /// Begins a transaction with `begin` (`BEGIN` and its modes) that the
    /// server abandons after `timeout`, as [`begin`](Self::begin) does.
    pub(in crate::store) async fn begin_within<'c>(
        conn: &'c mut PgConnection,
        begin: &str,
        timeout: Duration,
    ) -> Result<sqlx::Transaction<'c, Postgres>, StoreError> {
        let ms = server_timeout(timeout).as_millis();
        conn.begin_with(format!(
            "{begin}; SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}; \
             SET LOCAL idle_in_transaction_session_timeout = {ms}"
        ))
        .await
        .map_err(error)
    }

    /// The store's deadline for one call.
    pub(in crate::store) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The record with `id`, read on the management pool.
    async fn read(
        &self,
        conn: &mut PgConnection,
        id: TokenId,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&self.statements.find)
            .bind(id_to_sql(id))
            .fetch_optional(conn)
            .await
            .map_err(error_for(id))?;
        row.map(Row::into_record).transpose()
    }

    /// The record with `id` if its scope is exactly `scope`.
    async fn read_at(
        &self,
        conn: &mut PgConnection,
        scope: &Scope,
        id: TokenId,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = bind_find_at!(sqlx::query_as(&self.statements.find_at), scope, id)
            .fetch_optional(conn)
            .await
            .map_err(error_for(id))?;
        row.map(Row::into_record).transpose()
    }
}

/// How long the server gives a statement, a lock wait or an idle
/// transaction of a call whose client waits `timeout`: twice as long, so it
/// never abandons work the client still waits for, and soon after the
/// client gave up.
fn server_timeout(timeout: Duration) -> Duration {
    timeout.saturating_mul(2)
}

// Written out: the pools' connect options hold the database password.
impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .field("verify_connections", &self.verify_pool.size())
            .finish_non_exhaustive()
    }
}

/// The management pool, given or made on first use.
struct Management {
    /// What to open it with, if it is made here (always, when `pool` is
    /// empty).
    options: Option<PgConnectOptions>,
    pool: OnceLock<PgPool>,
}

/// `options` with the server told to abandon any statement, lock wait or
/// idle transaction of a call whose client waits `timeout`.
fn with_server_timeouts(options: PgConnectOptions, timeout: Duration) -> PgConnectOptions {
    let ms = server_timeout(timeout).as_millis().to_string();
    options.options([
        ("statement_timeout", ms.as_str()),
        ("lock_timeout", ms.as_str()),
        ("idle_in_transaction_session_timeout", ms.as_str()),
    ])
}

/// A pooled connection that is closed, not returned to the pool, unless
/// the call using it finished: after a cancelled call it may still be busy
/// with the abandoned statement.
struct ClosedUnlessFinished {
    connection: PoolConnection<Postgres>,
    finished: bool,
}

impl Drop for ClosedUnlessFinished {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.close_on_drop();
        }
    }
}

/// How [`lock_org`] takes an organization's lock.
enum Lock {
    /// With other inserts and rotations.
    Shared,
    /// Alone: a scope revocation.
    Exclusive,
}

/// Takes the shared advisory locks of the organizations `orgs` until `tx`
/// ends, in order: a scope revocation only ever holds one organization's
/// lock, so taking several shared ones cannot deadlock with it.
async fn lock_orgs_shared<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    orgs: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let orgs: std::collections::BTreeSet<&str> = orgs.into_iter().collect();
    for org in orgs {
        lock_org(tx, org, Lock::Shared).await?;
    }
    Ok(())
}

/// Takes the advisory lock of organization `org` until `tx` ends.
async fn lock_org(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    org: &str,
    lock: Lock,
) -> Result<(), StoreError> {
    let query = match lock {
        Lock::Shared => "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))",
        Lock::Exclusive => "SELECT pg_advisory_xact_lock($1, hashtext($2))",
    };
    sqlx::query(query)
        .bind(ORG_LOCK_SPACE)
        .bind(org)
        .execute(&mut **tx)
        .await
        .map_err(error)?;
    Ok(())
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.call(self.management_pool(), async |conn| {
            let id = record.id;
            let mut tx = self.begin(conn).await?;
            lock_org(&mut tx, record.scope.org().as_str(), Lock::Shared).await?;
            let params = RecordParams::<OffsetDateTime>::of(&record);
            let inserted = bind_record!(sqlx::query(&self.statements.insert), params)
                .execute(&mut *tx)
                .await
                .map_err(error_for(id))?;
            if inserted.rows_affected() == 0 {
                tx.rollback().await.map_err(error)?;
                return Err(StoreError::AlreadyExists { id });
            }
            tx.commit().await.map_err(error)
        })
        .await
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.call(self.management_pool(), async |conn| {
            let mut tx = self.begin(conn).await?;
            let found = self.read(&mut tx, id).await;
            tx.commit().await.map_err(error)?;
            found
        })
        .await
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        // One statement, on verification's own pool, and the same one as
        // `find`: what `find` calls damaged never verifies.
        self.call(&self.verify_pool, async |conn| {
            let row: Option<Row> = sqlx::query_as(&self.statements.find)
                .bind(id_to_sql(id))
                .fetch_optional(conn)
                .await
                .map_err(error_for(id))?;
            Ok(row
                .map(Row::into_record)
                .transpose()?
                .map(|record| record.credential()))
        })
        .await
    }

    /// One statement reading one index range in order (see the
    /// `store::sql` docs): a page costs the page, for every filter.
    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let reads = Reads::of(filter);
        self.call(self.management_pool(), async |conn| {
            let query = sqlx::query_as(self.statements.list.get(&reads));
            let mut tx = self.begin(conn).await?;
            let rows: Vec<Row> = bind_list!(query, OffsetDateTime, reads, after, limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(error)?;
            tx.commit().await.map_err(error)?;
            Ok(rows.into_iter().map(Row::into_listed).collect())
        })
        .await
    }

    /// One update by primary key, its scope checked in its `WHERE`; a
    /// miss reads the row at that scope once, to say why.
    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        self.call(self.management_pool(), async |conn| {
            let query = sqlx::query(&self.statements.revoke);
            let mut tx = self.begin(conn).await?;
            // Shared with other writes, exclusive with a scope revocation:
            // otherwise this token could be revoked here and counted as
            // revoked by a concurrent scope revocation too. A token of
            // another organization is not addressed, so its lock is not
            // needed.
            lock_org(&mut tx, scope.org().as_str(), Lock::Shared).await?;
            let revoked = bind_revoke!(query, OffsetDateTime, &revocation, scope, id)
                .execute(&mut *tx)
                .await
                .map_err(error_for(id))?;
            let outcome = if revoked.rows_affected() == 1 {
                Ok(RevokeOutcome::Revoked)
            } else {
                revoke_missed(self.read_at(&mut tx, scope, id).await?)
            };
            tx.commit().await.map_err(error)?;
            outcome
        })
        .await
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        let (live, mark) = self
            .call(self.management_pool(), async |conn| {
                // One short transaction, under the organization's lock so no
                // insert, rotation or revocation of it is half-way: the live
                // counts the mark covers, the mark, and the counts zeroed.
                // Its cost grows with the scope's domains, never with its
                // tokens.
                let count_query = sqlx::query_scalar(&self.statements.count_live);
                let mark_query = sqlx::query_as(&self.statements.mark_scope);
                let zero_query = sqlx::query(&self.statements.zero_live);
                let mut tx = self.begin(conn).await?;
                sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                    .bind(OFFBOARDING_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                lock_org(&mut tx, scope.org().as_str(), Lock::Exclusive).await?;
                let live: Vec<i64> = bind_scope_counts!(count_query, scope)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(error)?;
                let mark: Option<(i64, i64)> =
                    bind_mark!(mark_query, OffsetDateTime, scope, &revocation)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(error)?;
                bind_scope_counts!(zero_query, scope)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                tx.commit().await.map_err(error)?;
                Ok((live, mark))
            })
            .await?;
        // Which tokens, read after the commit, in a call of its own and at
        // best effort: the revocation stands whatever this read does, and
        // the rows it covers never change their revocation again.
        let first = match mark.filter(|_| live.iter().any(|&n| n > 0)) {
            None => Vec::new(),
            Some(mark) => self
                .call(self.management_pool(), async |conn| {
                    let first_query = sqlx::query_scalar(&self.statements.first_marked);
                    let mut tx = self.begin(conn).await?;
                    let first: Vec<String> = bind_marked!(first_query, scope, mark)
                        .bind(limit_to_sql(REPORTED_IDS))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(error)?;
                    tx.commit().await.map_err(error)?;
                    Ok(first)
                })
                .await
                .unwrap_or_default(),
        };
        Ok(scope_revoked(&live, &first))
    }

    async fn rotate(
        &self,
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        self.call(self.management_pool(), async |conn| {
            let new = successor.id;
            let query = sqlx::query(&self.statements.retire);
            let mut tx = self.begin(conn).await?;
            // The old token's organization (its retirement may revoke it)
            // and the successor's (a scope mark must not miss it): one and
            // the same unless a caller rotates across organizations.
            let orgs = [scope.org().as_str(), successor.scope.org().as_str()];
            lock_orgs_shared(&mut tx, orgs).await?;
            // The update locks the old row: a concurrent rotation waits for
            // this transaction, then finds `replaced_by` set and changes
            // nothing.
            let retired = bind_retire!(query, OffsetDateTime, new, &retire, scope, old)
                .execute(&mut *tx)
                .await
                .map_err(error_for(old))?;
            if retired.rows_affected() == 0 {
                let refused = rotation_refused(self.read_at(&mut tx, scope, old).await?);
                tx.rollback().await.map_err(error)?;
                return Ok(refused);
            }
            let params = RecordParams::<OffsetDateTime>::of(&successor);
            let inserted = bind_record!(sqlx::query(&self.statements.insert), params)
                .execute(&mut *tx)
                .await
                .map_err(error_for(new))?;
            if inserted.rows_affected() == 0 {
                tx.rollback().await.map_err(error)?;
                return Err(StoreError::AlreadyExists { id: new });
            }
            tx.commit().await.map_err(error)?;
            Ok(RotateOutcome::Rotated)
        })
        .await
    }

    /// One short transaction: the row locked, then one update by primary
    /// key, its scope and the change's condition checked in its `WHERE`; a
    /// miss reads the row at that scope once, to say why.
    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        self.call(self.management_pool(), async |conn| {
            let lock = sqlx::query(&self.statements.lock_at);
            let mut tx = self.begin(conn).await?;
            // Shared with other writes, exclusive with a scope revocation:
            // otherwise a token a concurrent scope revocation covers could
            // be changed after it was revoked (a revoked token is final).
            lock_org(&mut tx, scope.org().as_str(), Lock::Shared).await?;
            // Under READ COMMITTED a concurrent update could change the row
            // between an update that missed and the read that says why
            // (enable it after this disable found it disabled, say): with
            // the row locked first, the read sees what the update saw.
            bind_find_at!(lock, scope, id)
                .execute(&mut *tx)
                .await
                .map_err(error_for(id))?;
            let updated = update_query!(self.statements, OffsetDateTime, change, scope, id)
                .execute(&mut *tx)
                .await
                .map_err(error_for(id))?;
            let outcome = if updated.rows_affected() == 1 {
                Ok(UpdateOutcome::Updated)
            } else {
                update_missed(self.read_at(&mut tx, scope, id).await?, change)
            };
            tx.commit().await.map_err(error)?;
            outcome
        })
        .await
    }

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        let tokens = self.table.quoted("");
        // An id given twice keeps its latest time (an UPDATE ... FROM would
        // apply an arbitrary one).
        let statement = format!(
            "UPDATE {tokens} AS token SET last_used_at = used.at \
             FROM (SELECT id, max(at) AS at \
                   FROM UNNEST($1::TEXT[], $2::TIMESTAMPTZ[]) AS u (id, at) GROUP BY id) AS used \
             WHERE token.id = used.id \
             AND (token.last_used_at IS NULL OR token.last_used_at < used.at)"
        );
        // A bounded statement per chunk, each its own short transaction.
        for chunk in uses.chunks(USES_PER_STATEMENT) {
            let (ids, times): (Vec<String>, Vec<OffsetDateTime>) =
                chunk.iter().map(|&(id, at)| (id_to_sql(id), at)).unzip();
            self.call(self.management_pool(), async |conn| {
                let mut tx = self.begin(conn).await?;
                sqlx::query(&statement)
                    .bind(ids)
                    .bind(times)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                tx.commit().await.map_err(error)
            })
            .await?;
        }
        Ok(())
    }

    /// One statement reading one range of a partial index of live tokens
    /// in order (see the `store::sql` docs).
    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let reads = Reads::of(filter);
        self.call(self.management_pool(), async |conn| {
            let query = sqlx::query_as(self.statements.list_expiring.get(&reads));
            let mut tx = self.begin(conn).await?;
            let rows: Vec<Row> =
                bind_list_expiring!(query, OffsetDateTime, reads, window.clone(), after, limit)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(error)?;
            tx.commit().await.map_err(error)?;
            Ok(rows.into_iter().map(Row::into_listed).collect())
        })
        .await
    }

    /// One short transaction: the offboarding lock, then one statement
    /// that revokes up to `limit` of the creator's live tokens read from
    /// one index range (`<table>_by_creator`, see the `store::sql` docs)
    /// and returns their ids. (It runs again only if a returned id could
    /// not be named, a row edited by hand: that row is revoked all the same
    /// but does not count towards `limit`.) Its size is bounded by `limit`,
    /// plus the creator's tokens covered by scope marks, read and skipped
    /// until they are purged.
    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.call(self.management_pool(), async |conn| {
            let mut tx = self.begin(conn).await?;
            // The creator's tokens may lie in any organization, unknown
            // until the statement reads them: rather than their locks, one
            // lock that scope revocations take shared, so none of them is
            // half-way (and none counts a token this revokes too).
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(OFFBOARDING_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            let revoked = revoke_created_by_rounds!(
                tx,
                self.statements,
                OffsetDateTime,
                creator,
                &revocation,
                limit,
                error
            );
            tx.commit().await.map_err(error)?;
            Ok(revoked)
        })
        .await
    }

    /// One short transaction, one statement: the due rows picked `FOR
    /// UPDATE SKIP LOCKED` as `list_expiring` reads them, and marked (see
    /// the `store::sql` docs). Two instances claiming at once each take
    /// rows the other does not hold. A mark is no change the feed reports.
    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reads = Reads::of(filter);
        self.call(self.management_pool(), async |conn| {
            let query = sqlx::query_as(self.statements.claim_notices.get(&reads));
            let mut tx = self.begin(conn).await?;
            let rows: Vec<Row> = bind_claim_notices!(query, OffsetDateTime, reads, window, limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(error)?;
            tx.commit().await.map_err(error)?;
            Ok(soonest_first(
                rows.into_iter().map(Row::into_listed).collect(),
            ))
        })
        .await
    }

    /// One short transaction, one statement per record.
    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        self.call(self.management_pool(), async |conn| {
            let mut tx = self.begin(conn).await?;
            for position in claimed {
                bind_release_notice!(
                    sqlx::query(&self.statements.release_notice),
                    OffsetDateTime,
                    length_secs,
                    position
                )
                .execute(&mut *tx)
                .await
                .map_err(error_for(position.id))?;
            }
            tx.commit().await.map_err(error)
        })
        .await
    }

    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for statement in self.statements.purge_steps() {
            let left = limit.saturating_sub(deleted as usize);
            if left == 0 {
                return Ok(deleted);
            }
            // Each step a short transaction of its own.
            let step = self
                .call(self.management_pool(), async |conn| {
                    let mut tx = self.begin(conn).await?;
                    let done = sqlx::query(statement)
                        .bind(before)
                        .bind(limit_to_sql(left))
                        .execute(&mut *tx)
                        .await
                        .map_err(error)?;
                    tx.commit().await.map_err(error)?;
                    Ok(done.rows_affected())
                })
                .await;
            match step {
                Ok(done) => deleted += done,
                // What was deleted counts; the failure shows next call.
                Err(_) if deleted > 0 => return Ok(deleted),
                Err(error) => return Err(error),
            }
        }
        // Nothing is left for the old marks to cover.
        let dropped = self
            .call(self.management_pool(), async |conn| {
                let mut tx = self.begin(conn).await?;
                sqlx::query(&self.statements.drop_marks)
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                tx.commit().await.map_err(error)
            })
            .await;
        match dropped {
            Err(error) if deleted == 0 => Err(error),
            _ => Ok(deleted),
        }
    }
}
