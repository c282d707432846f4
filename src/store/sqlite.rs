//! The SQLite store (feature `sqlite`): embedded and durable, one file, no
//! server.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
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
        id INTEGER PRIMARY KEY,
        scope_kind TEXT NOT NULL,
        org_id TEXT NOT NULL,
        domain_id TEXT NOT NULL,
        role TEXT NOT NULL,
        label TEXT NOT NULL,
        key_id INTEGER NOT NULL,
        digest BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        revoked_by TEXT,
        revoke_reason TEXT,
        last_used_at INTEGER,
        rotated_from INTEGER,
        replaced_by INTEGER
    );
    CREATE INDEX IF NOT EXISTS api_tokens_by_scope
        ON api_tokens (org_id, scope_kind, domain_id, created_at, id);
    CREATE INDEX IF NOT EXISTS api_tokens_by_expiry
        ON api_tokens (org_id, scope_kind, domain_id, expires_at);",
)];

/// SQLite's result codes (the primary code is the low byte; extended codes
/// add bits above it): busy or locked (another connection holds the write
/// lock), an I/O error or a file that cannot be opened are outages; a
/// damaged file or one that is not a database is corrupt.
fn classify(code: &str) -> Class {
    match code.parse::<u32>().map(|code| code & 0xff) {
        Ok(5 | 6 | 10 | 14) => Class::Outage,
        Ok(11 | 26) => Class::Corrupt,
        _ => Class::Other,
    }
}

fn error(error: sqlx::Error) -> StoreError {
    store_error(error, None, classify)
}

fn error_for(id: TokenId) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| store_error(error, Some(id), classify)
}

/// Keeps records in one SQLite database file: durable across restarts, no
/// server to run. Write transactions are serialized by SQLite itself, which
/// is what makes each method atomic.
///
/// ```no_run
/// # async fn open() -> Result<(), api_tokens::StoreError> {
/// let store = api_tokens::SqliteStore::open("tokens.db").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database file at `path` (creating it if missing) with
    /// settings for a durable store, and brings its schema up to date.
    ///
    /// The journal is a write-ahead log with `synchronous = FULL`: once a
    /// write returns, it survives the process being killed (the tests prove
    /// this) and, as SQLite documents for this setting, the machine losing
    /// power. Writers wait up to five seconds for one another.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the file cannot be opened or created,
    /// [`StoreError::Corrupt`] if it is not a database, or a failure of the
    /// migration.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(error)?;
        let store = SqliteStore::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over a pool you configured yourself. Call
    /// [`migrate`](Self::migrate) once before use.
    pub fn from_pool(pool: SqlitePool) -> Self {
        SqliteStore { pool }
    }

    /// Creates or updates the tables and indexes this store needs. Safe to
    /// run any number of times, from any number of processes.
    ///
    /// # Errors
    ///
    /// A failure of the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS api_tokens_schema (version INTEGER PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        for &(version, script) in MIGRATIONS {
            let applied = sqlx::query("SELECT 1 FROM api_tokens_schema WHERE version = ?1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error)?;
            if applied.is_none() {
                sqlx::raw_sql(script)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                sqlx::query("INSERT INTO api_tokens_schema (version) VALUES (?1)")
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
            }
        }
        tx.commit().await.map_err(error)
    }

    /// The pool the store uses, for your own queries or to close it.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let id = record.id;
        let inserted = bind_record!(sqlx::query(&INSERT), RecordParams::of(&record))
            .execute(&self.pool)
            .await
            .map_err(error_for(id))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists { id });
        }
        Ok(())
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<RecordRow> = sqlx::query_as(&FIND)
            .bind(id_to_sql(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(error_for(id))?;
        row.map(RecordRow::into_record).transpose()
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        let row: Option<CredentialRow> = sqlx::query_as(&FIND_CREDENTIAL)
            .bind(id_to_sql(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(error_for(id))?;
        row.map(CredentialRow::into_credential).transpose()
    }

    async fn list(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, StoreError> {
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
    }

    async fn revoke(
        &self,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
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
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<Vec<TokenId>, StoreError> {
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
        let revoked: Vec<i64> = update.fetch_all(&self.pool).await.map_err(error)?;
        Ok(revoked.into_iter().map(id_from_sql).collect())
    }

    async fn rotate(
        &self,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        let new = successor.id;
        let retirement = retirement_to_sql(&retire);
        let mut tx = self.pool.begin().await.map_err(error)?;
        // The first statement writes, so the transaction takes SQLite's
        // write lock at once and concurrent rotations queue behind it.
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
            // Rolled back now, not when the pool next lends the connection:
            // until then it would hold the write lock.
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
    }

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        for &(id, at) in uses {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(time_to_sql(at))
            .bind(id_to_sql(id))
            .execute(&mut *tx)
            .await
            .map_err(error_for(id))?;
        }
        tx.commit().await.map_err(error)
    }

    async fn list_expiring(
        &self,
        scope: &Scope,
        window: Range<OffsetDateTime>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
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
    }
}
