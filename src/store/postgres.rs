//! The PostgreSQL store (feature `postgres`): one database shared by every
//! instance of a service, so a revocation on one is seen by all at once.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;

use super::sql::{
    Class, CredentialRow, FIND, FIND_CREDENTIAL, INSERT, LIST, LIST_EXPIRING, RETIRE, REVOKE,
    REVOKE_DOMAIN, REVOKE_ORGANIZATION, RecordParams, RecordRow, bind_record, id_from_sql,
    id_to_sql, limit_to_sql, list_start, retirement_to_sql, revocation_to_sql, revoke_missed,
    rotation_refused, scope_to_sql, store_error, time_to_sql,
};
use super::{Cursor, Retirement, RevokeOutcome, RotateOutcome, TokenStore};
use crate::error::StoreError;
use crate::record::{Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

/// The schema, one migration per entry, applied in order and recorded in
/// `api_tokens_schema` so each runs once.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS api_tokens (
        id BIGINT PRIMARY KEY,
        scope_kind TEXT NOT NULL,
        org_id TEXT NOT NULL,
        domain_id TEXT NOT NULL,
        role TEXT NOT NULL,
        label TEXT NOT NULL,
        key_id BIGINT NOT NULL,
        digest BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT,
        revoked_by TEXT,
        revoke_reason TEXT,
        last_used_at BIGINT,
        rotated_from BIGINT,
        replaced_by BIGINT
    );
    CREATE INDEX IF NOT EXISTS api_tokens_by_scope
        ON api_tokens (org_id, scope_kind, domain_id, created_at, id);
    CREATE INDEX IF NOT EXISTS api_tokens_by_expiry
        ON api_tokens (org_id, scope_kind, domain_id, expires_at);",
)];

/// Migrations from many instances at once take turns on this advisory lock
/// (an arbitrary number of ours), so two never race to create one table.
const MIGRATION_LOCK: i64 = 0x6170_695f_746f_6b6e;

/// The key space of the per-organization advisory locks (the first half of
/// PostgreSQL's two-part key; the second is a hash of the organization id).
/// Inserts and rotations hold their organization's lock shared, scope
/// revocations exclusively: under READ COMMITTED a revocation's `UPDATE`
/// would otherwise miss a successor a concurrent rotation inserted after the
/// revocation's snapshot while it revoked the old token, leaving the new one
/// live.
const ORG_LOCK_SPACE: i32 = 0x6170_6974;

/// PostgreSQL's error codes meaning "try again later": connection
/// exceptions (class 08), the server shutting down or starting (57P0x), a
/// statement cancelled (57014), insufficient resources (class 53: disk
/// full, out of memory, too many connections), a read-only server after a
/// failover (25006), a serialization failure or deadlock. Data corrupted on
/// disk (XX001, XX002) is corrupt.
fn classify(code: &str) -> Class {
    if code.starts_with("08")
        || code.starts_with("57P0")
        || code.starts_with("53")
        || matches!(code, "57014" | "25006" | "40001" | "40P01")
    {
        Class::Outage
    } else if matches!(code, "XX001" | "XX002") {
        Class::Corrupt
    } else {
        Class::Other
    }
}

fn error(error: sqlx::Error) -> StoreError {
    store_error(error, None, classify)
}

fn error_for(id: TokenId) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| store_error(error, Some(id), classify)
}

/// Keeps records in a PostgreSQL database that every instance of a service
/// shares: a token issued on one verifies on all, and once `revoke` returns
/// it fails on all. Each method is one statement, or one transaction for a
/// rotation, so the database's own locking makes it atomic.
///
/// ```no_run
/// # async fn connect() -> Result<(), api_tokens::StoreError> {
/// let store = api_tokens::PostgresStore::connect("postgres://app@db.internal/app").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// How long any call may take before it fails as unavailable.
    timeout: Duration,
}

/// How long a call waits for the database unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Connects to the database at `url` with a pool suited to verification
    /// traffic, and brings its schema up to date. A call that gets no answer
    /// within five seconds (no connection, or a server that stopped
    /// answering) fails as unavailable rather than hanging; connections are
    /// re-made once the server is back.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached, or a
    /// failure of the migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(DEFAULT_TIMEOUT)
            // No ping before every query: it would double a verify's round
            // trips, and a broken connection fails its query and is dropped.
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(error)?;
        let store = PostgresStore::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over a pool you configured yourself. Every call is bounded by
    /// five seconds (see [`with_timeout`](Self::with_timeout)). Call
    /// [`migrate`](Self::migrate) once before use.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresStore {
            pool,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same store, failing any call that gets no answer within
    /// `timeout` as [`StoreError::Unavailable`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `work`, or fails as unavailable once the timeout has passed (the
    /// connection it held is dropped, not returned to the pool).
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(outcome) => outcome,
            Err(elapsed) => Err(StoreError::Unavailable {
                source: Box::new(elapsed),
            }),
        }
    }

    /// Creates or updates the tables and indexes this store needs, in the
    /// connection's schema. Safe to run any number of times, from any number
    /// of instances at once.
    ///
    /// # Errors
    ///
    /// A failure of the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.bounded(self.migrate_unbounded()).await
    }

    async fn migrate_unbounded(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS api_tokens_schema (version BIGINT PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        for &(version, script) in MIGRATIONS {
            let applied = sqlx::query("SELECT 1 FROM api_tokens_schema WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error)?;
            if applied.is_none() {
                sqlx::raw_sql(script)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                sqlx::query("INSERT INTO api_tokens_schema (version) VALUES ($1)")
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
            }
        }
        tx.commit().await.map_err(error)
    }

    /// The pool the store uses, for your own queries or to close it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// How [`lock_org`] takes an organization's lock.
enum Lock {
    /// With other inserts and rotations.
    Shared,
    /// Alone: a scope revocation.
    Exclusive,
}

/// Takes the advisory lock of organization `org` until `tx` ends.
async fn lock_org(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
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
        self.bounded(async {
            let id = record.id;
            let mut tx = self.pool.begin().await.map_err(error)?;
            lock_org(&mut tx, record.scope.org().as_str(), Lock::Shared).await?;
            let inserted = bind_record!(sqlx::query(&INSERT), RecordParams::of(&record))
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
        self.bounded(async {
            let row: Option<RecordRow> = sqlx::query_as(&FIND)
                .bind(id_to_sql(id))
                .fetch_optional(&self.pool)
                .await
                .map_err(error_for(id))?;
            row.map(RecordRow::into_record).transpose()
        })
        .await
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        self.bounded(async {
            let row: Option<CredentialRow> = sqlx::query_as(&FIND_CREDENTIAL)
                .bind(id_to_sql(id))
                .fetch_optional(&self.pool)
                .await
                .map_err(error_for(id))?;
            row.map(CredentialRow::into_credential).transpose()
        })
        .await
    }

    async fn list(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.bounded(async {
            let (kind, org, domain) = scope_to_sql(scope);
            let (created_at, id) = list_start(after);
            let rows: Vec<RecordRow> = sqlx::query_as(&LIST)
                .bind(org)
                .bind(kind)
                .bind(domain)
                .bind(created_at)
                .bind(id)
                .bind(limit_to_sql(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error)?;
            rows.into_iter().map(RecordRow::into_record).collect()
        })
        .await
    }

    async fn revoke(
        &self,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        self.bounded(async {
            let (at, by, reason) = revocation_to_sql(&revocation);
            let revoked = sqlx::query(REVOKE)
                .bind(at)
                .bind(by)
                .bind(reason)
                .bind(id_to_sql(id))
                .execute(&self.pool)
                .await
                .map_err(error_for(id))?;
            if revoked.rows_affected() == 1 {
                return Ok(RevokeOutcome::Revoked);
            }
            revoke_missed(self.find(id).await?)
        })
        .await
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<Vec<TokenId>, StoreError> {
        self.bounded(async {
            let (kind, org, domain) = scope_to_sql(scope);
            let (at, by, reason) = revocation_to_sql(&revocation);
            let update = match scope {
                Scope::Organization { .. } => sqlx::query_scalar(REVOKE_ORGANIZATION),
                Scope::Domain { .. } => sqlx::query_scalar(REVOKE_DOMAIN),
            };
            let mut update = update.bind(at).bind(by).bind(reason).bind(org);
            if let Scope::Domain { .. } = scope {
                update = update.bind(kind).bind(domain);
            }
            let mut tx = self.pool.begin().await.map_err(error)?;
            lock_org(&mut tx, org, Lock::Exclusive).await?;
            let revoked: Vec<i64> = update.fetch_all(&mut *tx).await.map_err(error)?;
            tx.commit().await.map_err(error)?;
            Ok(revoked.into_iter().map(id_from_sql).collect())
        })
        .await
    }

    async fn rotate(
        &self,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        self.bounded(async {
            let new = successor.id;
            let retirement = retirement_to_sql(&retire);
            let mut tx = self.pool.begin().await.map_err(error)?;
            lock_org(&mut tx, successor.scope.org().as_str(), Lock::Shared).await?;
            // The update locks the old row: a concurrent rotation waits for this
            // transaction, then finds `replaced_by` set and changes nothing.
            let retired = sqlx::query(RETIRE)
                .bind(id_to_sql(new))
                .bind(retirement.expires_at)
                .bind(retirement.revoked_at)
                .bind(retirement.revoked_by)
                .bind(retirement.revoke_reason)
                .bind(id_to_sql(old))
                .execute(&mut *tx)
                .await
                .map_err(error_for(old))?;
            if retired.rows_affected() == 0 {
                tx.rollback().await.map_err(error)?;
                return Ok(rotation_refused(self.find(old).await?));
            }
            let inserted = bind_record!(sqlx::query(&INSERT), RecordParams::of(&successor))
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

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        self.bounded(async {
            // One statement for the whole batch; an id given twice keeps its
            // latest time (an UPDATE ... FROM would apply an arbitrary one).
            let (ids, times): (Vec<i64>, Vec<i64>) = uses
                .iter()
                .map(|&(id, at)| (id_to_sql(id), time_to_sql(at)))
                .unzip();
            sqlx::query(
                "UPDATE api_tokens AS token SET last_used_at = used.at \
                 FROM (SELECT id, max(at) AS at FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS u (id, at) \
                       GROUP BY id) AS used \
                 WHERE token.id = used.id \
                 AND (token.last_used_at IS NULL OR token.last_used_at < used.at)",
            )
            .bind(ids)
            .bind(times)
            .execute(&self.pool)
            .await
            .map_err(error)?;
            Ok(())
        })
        .await
    }

    async fn list_expiring(
        &self,
        scope: &Scope,
        window: Range<OffsetDateTime>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.bounded(async {
            let (kind, org, domain) = scope_to_sql(scope);
            let rows: Vec<RecordRow> = sqlx::query_as(&LIST_EXPIRING)
                .bind(org)
                .bind(kind)
                .bind(domain)
                .bind(time_to_sql(window.start))
                .bind(time_to_sql(window.end))
                .fetch_all(&self.pool)
                .await
                .map_err(error)?;
            rows.into_iter().map(RecordRow::into_record).collect()
        })
        .await
    }
}
