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
    CREDENTIAL_COLUMNS, Class, CredentialRow, RECORD_COLUMNS, RecordParams, RecordRow, bind_record,
    id_from_sql, id_to_sql, scope_to_sql, store_error, time_to_sql,
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

/// `WHERE` conditions for a scope exactly, its parameters numbered from `first`.
fn exact_scope(first: usize) -> String {
    format!(
        "org_id = ?{} AND scope_kind = ?{} AND domain_id = ?{}",
        first,
        first + 1,
        first + 2
    )
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let id = record.id;
        let query = format!(
            "INSERT INTO api_tokens ({RECORD_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
             ON CONFLICT (id) DO NOTHING"
        );
        let inserted = bind_record!(sqlx::query(&query), RecordParams::of(&record))
            .execute(&self.pool)
            .await
            .map_err(error_for(id))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists { id });
        }
        Ok(())
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        let query = format!("SELECT {RECORD_COLUMNS} FROM api_tokens WHERE id = ?1");
        let row: Option<RecordRow> = sqlx::query_as(&query)
            .bind(id_to_sql(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(error_for(id))?;
        row.map(RecordRow::into_record).transpose()
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        let query = format!("SELECT {CREDENTIAL_COLUMNS} FROM api_tokens WHERE id = ?1");
        let row: Option<CredentialRow> = sqlx::query_as(&query)
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
        // Without a cursor, start after the greatest position there can be.
        let (created_at, id) = after.map_or((i64::MAX, i64::MAX), |cursor| {
            (time_to_sql(cursor.created_at), id_to_sql(cursor.id))
        });
        let query = format!(
            "SELECT {RECORD_COLUMNS} FROM api_tokens WHERE {} AND (created_at, id) < (?4, ?5) \
             ORDER BY created_at DESC, id DESC LIMIT ?6",
            exact_scope(1)
        );
        let rows: Vec<RecordRow> = sqlx::query_as(&query)
            .bind(org)
            .bind(kind)
            .bind(domain)
            .bind(created_at)
            .bind(id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
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
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?1, revoked_by = ?2, revoke_reason = ?3 \
             WHERE id = ?4 AND revoked_at IS NULL",
        )
        .bind(time_to_sql(revocation.at))
        .bind(revocation.by.as_str())
        .bind(revocation.reason.as_ref().map(|reason| reason.as_str()))
        .bind(id_to_sql(id))
        .execute(&self.pool)
        .await
        .map_err(error_for(id))?;
        if revoked.rows_affected() == 1 {
            return Ok(RevokeOutcome::Revoked);
        }
        // Revoked before, or absent; a revocation is never undone, so what
        // is read now is what made the update miss.
        Ok(match self.find(id).await? {
            Some(TokenRecord {
                revoked: Some(earlier),
                ..
            }) => RevokeOutcome::AlreadyRevoked(earlier),
            Some(_) => {
                return Err(StoreError::Other {
                    source: "a live record was not revoked".into(),
                });
            }
            None => RevokeOutcome::NotFound,
        })
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<Vec<TokenId>, StoreError> {
        let (kind, org, domain) = scope_to_sql(scope);
        // An organization covers its domains: every row of the organization.
        let covered = match scope {
            Scope::Organization { .. } => "org_id = ?4".to_owned(),
            Scope::Domain { .. } => exact_scope(4),
        };
        let query = format!(
            "UPDATE api_tokens SET revoked_at = ?1, revoked_by = ?2, revoke_reason = ?3 \
             WHERE {covered} AND revoked_at IS NULL RETURNING id"
        );
        let mut update = sqlx::query_scalar(&query)
            .bind(time_to_sql(revocation.at))
            .bind(revocation.by.as_str())
            .bind(revocation.reason.as_ref().map(|reason| reason.as_str()))
            .bind(org);
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
        let (expires_at, revoked) = match &retire {
            Retirement::ExpiresAt(at) => (Some(time_to_sql(*at)), None),
            Retirement::Revoked(revocation) => (None, Some(revocation)),
        };
        let mut tx = self.pool.begin().await.map_err(error)?;
        // The first statement writes, so the transaction takes SQLite's
        // write lock at once and concurrent rotations queue behind it.
        let retired = sqlx::query(
            "UPDATE api_tokens SET replaced_by = ?1, \
                 expires_at = COALESCE(?2, expires_at), \
                 revoked_at = ?3, revoked_by = ?4, revoke_reason = ?5 \
             WHERE id = ?6 AND revoked_at IS NULL AND replaced_by IS NULL",
        )
        .bind(id_to_sql(new))
        .bind(expires_at)
        .bind(revoked.map(|revocation| time_to_sql(revocation.at)))
        .bind(revoked.map(|revocation| revocation.by.as_str()))
        .bind(revoked.and_then(|revocation| revocation.reason.as_ref().map(|r| r.as_str())))
        .bind(id_to_sql(old))
        .execute(&mut *tx)
        .await
        .map_err(error_for(old))?;
        if retired.rows_affected() == 0 {
            // Rolled back now, not when the pool next lends the connection:
            // until then it would hold the write lock.
            tx.rollback().await.map_err(error)?;
            return Ok(match self.find(old).await? {
                None => RotateOutcome::NotFound,
                Some(record) => match record.replaced_by {
                    Some(by) => RotateOutcome::AlreadyReplaced(by),
                    None => RotateOutcome::Revoked,
                },
            });
        }
        let query = format!(
            "INSERT INTO api_tokens ({RECORD_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
             ON CONFLICT (id) DO NOTHING"
        );
        let inserted = bind_record!(sqlx::query(&query), RecordParams::of(&successor))
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
                "UPDATE api_tokens SET last_used_at = ?1 \
                 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
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
        let query = format!(
            "SELECT {RECORD_COLUMNS} FROM api_tokens WHERE {} AND revoked_at IS NULL \
             AND replaced_by IS NULL AND expires_at >= ?4 AND expires_at < ?5 \
             ORDER BY expires_at, id",
            exact_scope(1)
        );
        let rows: Vec<RecordRow> = sqlx::query_as(&query)
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
