//! The PostgreSQL change feed: snapshots as positions, and a listener for
//! the notifications writes send at commit.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPoolOptions};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::feed::{Change, Feed, FeedStatements, Position, Read, Since, load_tokens, read_changes};
use crate::error::StoreError;
use crate::store::PostgresStore;
use crate::store::postgres::error;

/// The `application_name` of the listener's connection: how to find it in
/// `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "api-tokens replica listener";

/// How long a load of every credential may take: far longer than any call,
/// since it streams the whole table.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The longest pause between attempts to reconnect the listener.
const LISTEN_BACKOFF: Duration = Duration::from_secs(2);

/// Every read of the feed: one snapshot for all its statements.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The rows a snapshot `$1` did not see: written by a transaction that
/// began after it (at or past its `xmax`) or was still running when it was
/// taken (in its `xip` list). Written this way rather than as
/// `NOT pg_visible_in_snapshot`, the index finds exactly those rows, however
/// far back a long transaction elsewhere holds the snapshot's `xmin`.
const AFTER: &str = "(ch.xid >= pg_snapshot_xmax($1::pg_snapshot) \
     OR ch.xid IN (SELECT pg_snapshot_xip($1::pg_snapshot)))";

impl PostgresStore {
    /// Promotes the pruning candidate to the horizon once it is `$1`
    /// seconds old, taking the xmin of this statement's snapshot as the
    /// next candidate (see the migration `0002_change_feed`).
    fn advance_horizon_statement(&self) -> String {
        format!(
            "UPDATE {} SET through_xid = candidate_xid, \
             candidate_xid = pg_snapshot_xmin(pg_current_snapshot()), candidate_at = now() \
             WHERE candidate_at <= now() - make_interval(secs => $1)",
            self.table().quoted("_changes_pruned")
        )
    }

    /// Deletes up to `$1` change rows below the horizon.
    fn prune_statement(&self) -> String {
        let changes = self.table().quoted("_changes");
        let pruned = self.table().quoted("_changes_pruned");
        format!(
            "DELETE FROM {changes} WHERE ctid IN (SELECT ctid FROM {changes} \
             WHERE xid < (SELECT through_xid FROM {pruned}) LIMIT $1)"
        )
    }

    fn feed_statements(&self) -> FeedStatements {
        FeedStatements::new(self.table(), AFTER)
    }

    /// The read's snapshot, and the store's reload epoch as of it.
    fn epoch_statement(&self) -> String {
        format!(
            "SELECT pg_current_snapshot()::text, epoch FROM {}",
            self.table().quoted("_changes_pruned")
        )
    }
}

#[async_trait]
impl Feed for PostgresStore {
    async fn load(&self, apply: &mut (dyn FnMut(Read) + Send)) -> Result<Position, StoreError> {
        let statements = self.feed_statements();
        let epoch = self.epoch_statement();
        self.call_within(self.pool(), LOAD_TIMEOUT, async |conn| {
            let mut tx = PostgresStore::begin_within(conn, BEGIN_SNAPSHOT, LOAD_TIMEOUT).await?;
            let (snapshot, epoch): (String, i64) = sqlx::query_as(&epoch)
                .fetch_one(&mut *tx)
                .await
                .map_err(error)?;
            load_tokens!(&mut tx, statements, &mut *apply, error, OffsetDateTime);
            tx.commit().await.map_err(error)?;
            Ok(Position::Snapshot { snapshot, epoch })
        })
        .await
    }

    async fn changes_since(
        &self,
        since: &Position,
        apply: &mut (dyn FnMut(Change) + Send),
    ) -> Result<Since, StoreError> {
        // Refutable only when both SQL features are on.
        #[allow(irrefutable_let_patterns)]
        let Position::Snapshot {
            snapshot: since,
            epoch: since_epoch,
        } = since
        else {
            return Ok(Since::Pruned);
        };
        let statements = self.feed_statements();
        let epoch = self.epoch_statement();
        // Rows below the horizon may be gone; this read needs every row
        // from the previous snapshot's xmin on.
        let pruned = format!(
            "SELECT through_xid > pg_snapshot_xmin($1::pg_snapshot) FROM {}",
            self.table().quoted("_changes_pruned")
        );
        self.call_within(self.pool(), self.timeout(), async |conn| {
            let mut tx = PostgresStore::begin_within(conn, BEGIN_SNAPSHOT, self.timeout()).await?;
            let (snapshot, epoch): (String, i64) = sqlx::query_as(&epoch)
                .fetch_one(&mut *tx)
                .await
                .map_err(error)?;
            let overtaken: bool = sqlx::query_scalar(&pruned)
                .bind(since)
                .fetch_one(&mut *tx)
                .await
                .map_err(error)?;
            if overtaken || epoch != *since_epoch {
                return Ok(Since::Pruned);
            }
            read_changes!(
                &mut tx,
                statements,
                since,
                &mut *apply,
                error,
                OffsetDateTime
            );
            tx.commit().await.map_err(error)?;
            Ok(Since::CaughtUp(Position::Snapshot { snapshot, epoch }))
        })
        .await
    }

    async fn prune_changes(&self, retention: Duration, limit: usize) -> Result<u64, StoreError> {
        let (advance, prune) = (self.advance_horizon_statement(), self.prune_statement());
        self.call_within(self.management_pool(), self.timeout(), async |conn| {
            let mut tx = PostgresStore::begin_within(conn, "BEGIN", self.timeout()).await?;
            // Capped at about 30 years, which PostgreSQL's intervals hold.
            sqlx::query(&advance)
                .bind(retention.as_secs_f64().min(1e9))
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            let pruned = sqlx::query(&prune)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            tx.commit().await.map_err(error)?;
            Ok(pruned.rows_affected())
        })
        .await
    }

    fn listen(&self, wake: Arc<Notify>) -> Option<JoinHandle<()>> {
        let options = (*self.pool().connect_options())
            .clone()
            .application_name(LISTENER_APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.timeout())
            .connect_lazy_with(options);
        let table = self.table().quoted("");
        Some(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match listen_until_lost(&pool, &table, &wake).await {
                    Ok(()) => backoff = Duration::from_millis(50),
                    Err(failure) => {
                        tracing::debug!(error = %failure, "the replica's listener reconnects");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(LISTEN_BACKOFF);
                    }
                }
                // Whatever was sent while no one listened, the feed has.
                wake.notify_one();
            }
        }))
    }
}

/// Listens on the table's channel and wakes the feed reader on each
/// notification, until the connection is lost.
async fn listen_until_lost(
    pool: &sqlx::PgPool,
    table: &str,
    wake: &Notify,
) -> Result<(), StoreError> {
    let mut listener = PgListener::connect_with(pool).await.map_err(error)?;
    let oid: i64 = sqlx::query_scalar("SELECT $1::regclass::oid::bigint")
        .bind(table)
        .fetch_one(&mut listener)
        .await
        .map_err(error)?;
    listener
        .listen(&format!("tokens_changed_{oid}"))
        .await
        .map_err(error)?;
    // Listening from here: anything committed before is in the feed.
    wake.notify_one();
    loop {
        match listener.try_recv().await.map_err(error)? {
            Some(_) => wake.notify_one(),
            // The connection was lost; the listener would reconnect on the
            // next call, but the caller starts afresh instead.
            None => return Ok(()),
        }
    }
}
