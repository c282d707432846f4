//! The SQLite store (feature `sqlite`): embedded and durable, one file, no
//! server.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

use super::migrations::{self, Migration};
use super::sql::{
    Class, Dialect, Reads, RecordParams, RecordRow, SqlTime, Statements, apply_migrations,
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
use crate::error::{StoreError, TableNameError};
use crate::ids::ActorId;
use crate::record::{Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

/// A row as SQLite reads it: times are microseconds since the Unix epoch.
type Row = RecordRow<i64>;

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

pub(in crate::store) fn error(error: sqlx::Error) -> StoreError {
    store_error(error, None, classify)
}

fn error_for(id: TokenId) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| store_error(error, Some(id), classify)
}

/// Keeps records in one SQLite database file: durable across restarts, no
/// server to run. Write transactions are serialized by SQLite itself, which
/// is what makes each method atomic; a scope revocation writes one mark,
/// however many tokens the scope holds.
///
/// ```no_run
/// # async fn open() -> Result<(), api_tokens::StoreError> {
/// let store = api_tokens::SqliteStore::open("tokens.db").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    table: TableName,
    statements: Arc<Statements>,
}

impl SqliteStore {
    /// Opens the database file at `path` (creating it if missing) with
    /// settings for a durable store, and brings the schema of the default
    /// table (`api_tokens`) up to date.
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

    /// A store over a pool you configured yourself, for tokens in the
    /// default table. Run the migrations before use: [`migrate`](Self::migrate),
    /// or [`migrations`](Self::migrations) with your own tool.
    pub fn from_pool(pool: SqlitePool) -> Self {
        let table = TableName::default();
        SqliteStore {
            pool,
            statements: Arc::new(Statements::new(&table, Dialect::Sqlite)),
            table,
        }
    }

    /// The same store, keeping tokens in `table`.
    ///
    /// # Errors
    ///
    /// [`TableNameError::SchemaNotSupported`] for a name with a schema
    /// part: SQLite's schemas are attached databases, whose triggers may
    /// only name tables of their own, unqualified.
    pub fn with_table(mut self, table: TableName) -> Result<Self, TableNameError> {
        refuse_schema(&table)?;
        self.statements = Arc::new(Statements::new(&table, Dialect::Sqlite));
        self.table = table;
        Ok(self)
    }

    /// The schema for tokens in `table`, as plain SQL, in order: the files
    /// under `migrations/sqlite/` in the repository, written for `table`.
    ///
    /// # Errors
    ///
    /// [`TableNameError::SchemaNotSupported`], as for
    /// [`with_table`](Self::with_table).
    pub fn migrations(table: &TableName) -> Result<Vec<Migration>, TableNameError> {
        refuse_schema(table)?;
        Ok(migrations::render(migrations::SQLITE, table))
    }

    /// Applies the migrations this database lacks, for the store's table,
    /// recording each in `<table>_migrations`. Safe to run any number of
    /// times, from any number of processes.
    ///
    /// # Errors
    ///
    /// A failure of the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let applied = self.table.quoted("_migrations");
        // `BEGIN IMMEDIATE`: the write lock first, so two processes never
        // both find a migration missing.
        let mut conn = self.pool.acquire().await.map_err(error)?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {applied} \
             (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        );
        // The store's table never has a schema part (`with_table` refuses one).
        let migrations = SqliteStore::migrations(&self.table).unwrap_or_default();
        apply_migrations!(&mut tx, &create, &applied, &migrations, error);
        tx.commit().await.map_err(error)
    }

    /// The pool the store uses, for your own queries or to close it.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The table the tokens live in.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The record with `id`.
    async fn read(
        &self,
        executor: impl sqlx::SqliteExecutor<'_>,
        id: TokenId,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&self.statements.find)
            .bind(id_to_sql(id))
            .fetch_optional(executor)
            .await
            .map_err(error_for(id))?;
        row.map(Row::into_record).transpose()
    }

    /// The record with `id` if its scope is exactly `scope`.
    async fn read_at(
        &self,
        executor: impl sqlx::SqliteExecutor<'_>,
        scope: &Scope,
        id: TokenId,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = bind_find_at!(sqlx::query_as(&self.statements.find_at), scope, id)
            .fetch_optional(executor)
            .await
            .map_err(error_for(id))?;
        row.map(Row::into_record).transpose()
    }
}

/// SQLite takes table names without a schema part.
fn refuse_schema(table: &TableName) -> Result<(), TableNameError> {
    match table.schema() {
        Some(_) => Err(TableNameError::SchemaNotSupported),
        None => Ok(()),
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let id = record.id;
        let inserted = bind_record!(
            sqlx::query(&self.statements.insert),
            RecordParams::<i64>::of(&record)
        )
        .execute(&self.pool)
        .await
        .map_err(error_for(id))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists { id });
        }
        Ok(())
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.read(&self.pool, id).await
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        // The same statement as `find`: what `find` calls damaged never
        // verifies.
        Ok(self
            .read(&self.pool, id)
            .await?
            .map(|record| record.credential()))
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
        let rows: Vec<Row> = bind_list!(
            sqlx::query_as(self.statements.list.get(&reads)),
            i64,
            reads,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        Ok(rows.into_iter().map(Row::into_listed).collect())
    }

    /// One update by primary key, its scope checked in its `WHERE`; a
    /// miss reads the row at that scope once, to say why.
    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let query = sqlx::query(&self.statements.revoke);
        let revoked = bind_revoke!(query, i64, &revocation, scope, id)
            .execute(&self.pool)
            .await
            .map_err(error_for(id))?;
        if revoked.rows_affected() == 1 {
            return Ok(RevokeOutcome::Revoked);
        }
        revoke_missed(self.read_at(&self.pool, scope, id).await?)
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        // One transaction, holding SQLite's write lock from its first
        // statement: the live counts the mark covers, the mark, and the
        // counts zeroed. Its cost grows with the scope's domains, never
        // with its tokens.
        let mut conn = self.pool.acquire().await.map_err(error)?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let live: Vec<i64> =
            bind_scope_counts!(sqlx::query_scalar(&self.statements.count_live), scope)
                .fetch_all(&mut *tx)
                .await
                .map_err(error)?;
        let mark: Option<(i64, i64)> = bind_mark!(
            sqlx::query_as(&self.statements.mark_scope),
            i64,
            scope,
            &revocation
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(error)?;
        bind_scope_counts!(sqlx::query(&self.statements.zero_live), scope)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        // Which tokens, read after the commit, at best effort: the
        // revocation stands whatever this read does.
        let first: Vec<String> = match mark.filter(|_| live.iter().any(|&n| n > 0)) {
            None => Vec::new(),
            Some(mark) => bind_marked!(
                sqlx::query_scalar(&self.statements.first_marked),
                scope,
                mark
            )
            .bind(limit_to_sql(REPORTED_IDS))
            .fetch_all(&mut *conn)
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
        let new = successor.id;
        let mut tx = self.pool.begin().await.map_err(error)?;
        // The first statement writes, so the transaction takes SQLite's
        // write lock at once and concurrent rotations queue behind it.
        let query = sqlx::query(&self.statements.retire);
        let retired = bind_retire!(query, i64, new, &retire, scope, old)
            .execute(&mut *tx)
            .await
            .map_err(error_for(old))?;
        if retired.rows_affected() == 0 {
            let refused = rotation_refused(self.read_at(&mut *tx, scope, old).await?);
            // Rolled back now, not when the pool next lends the connection:
            // until then it would hold the write lock.
            tx.rollback().await.map_err(error)?;
            return Ok(refused);
        }
        let inserted = bind_record!(
            sqlx::query(&self.statements.insert),
            RecordParams::<i64>::of(&successor)
        )
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

    /// One update by primary key, its scope and the change's condition
    /// checked in its `WHERE`; a miss reads the row at that scope once, to
    /// say why, in the same transaction.
    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        // The update writes, so the transaction holds SQLite's write lock
        // from its first statement: a miss reads back the row as the
        // update saw it, not as a concurrent enable left it.
        let updated = update_query!(self.statements, i64, change, scope, id)
            .execute(&mut *tx)
            .await
            .map_err(error_for(id))?;
        let outcome = if updated.rows_affected() == 1 {
            Ok(UpdateOutcome::Updated)
        } else {
            match self.read_at(&mut *tx, scope, id).await {
                Ok(found) => update_missed(found, change),
                Err(failure) => Err(failure),
            }
        };
        // Ended now, whatever was read, not when the pool next lends the
        // connection: until then it would hold the write lock. A miss
        // wrote nothing, so committing it is rolling it back.
        tx.commit().await.map_err(error)?;
        outcome
    }

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        // One transaction per thousand: each holds the write lock briefly.
        for chunk in uses.chunks(1_000) {
            let mut tx = self.pool.begin().await.map_err(error)?;
            for &(id, at) in chunk {
                sqlx::query(&self.statements.record_use)
                    .bind(i64::to_sql(at))
                    .bind(id_to_sql(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(error_for(id))?;
            }
            tx.commit().await.map_err(error)?;
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
        let rows: Vec<Row> = bind_list_expiring!(
            sqlx::query_as(self.statements.list_expiring.get(&reads)),
            i64,
            reads,
            window,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        Ok(rows.into_iter().map(Row::into_listed).collect())
    }

    /// One transaction holding SQLite's write lock: one statement revokes
    /// up to `limit` of the creator's live tokens, read from one index range
    /// (`<table>_by_creator`), and returns their ids. (It runs again only
    /// if a returned id could not be named, a row edited by hand: that row
    /// is revoked all the same but does not count towards `limit`.) Its
    /// size is bounded by `limit`, plus the creator's tokens covered by
    /// scope marks, read and skipped until they are purged.
    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await.map_err(error)?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let revoked =
            revoke_created_by_rounds!(tx, self.statements, i64, creator, &revocation, limit, error);
        tx.commit().await.map_err(error)?;
        Ok(revoked)
    }

    /// One statement, which holds SQLite's write lock from its start:
    /// picks the due rows as `list_expiring` reads them and marks them, so
    /// no other writer, in this process or another sharing the file, claims
    /// one of them too.
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
        let rows: Vec<Row> = bind_claim_notices!(
            sqlx::query_as(self.statements.claim_notices.get(&reads)),
            i64,
            reads,
            window,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        Ok(soonest_first(
            rows.into_iter().map(Row::into_listed).collect(),
        ))
    }

    /// One short transaction, one statement per record.
    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        for position in claimed {
            bind_release_notice!(
                sqlx::query(&self.statements.release_notice),
                i64,
                length_secs,
                position
            )
            .execute(&mut *tx)
            .await
            .map_err(error_for(position.id))?;
        }
        tx.commit().await.map_err(error)
    }

    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for statement in self.statements.purge_steps() {
            let left = limit.saturating_sub(deleted as usize);
            if left == 0 {
                return Ok(deleted);
            }
            let step = sqlx::query(statement)
                .bind(i64::to_sql(before))
                .bind(limit_to_sql(left))
                .execute(&self.pool)
                .await;
            match step {
                Ok(done) => deleted += done.rows_affected(),
                // What was deleted counts; the failure shows next call.
                Err(_) if deleted > 0 => return Ok(deleted),
                Err(failure) => return Err(error(failure)),
            }
        }
        // Nothing is left for the old marks to cover.
        let dropped = sqlx::query(&self.statements.drop_marks)
            .bind(i64::to_sql(before))
            .execute(&self.pool)
            .await;
        match dropped {
            Err(failure) if deleted == 0 => Err(error(failure)),
            _ => Ok(deleted),
        }
    }
}
