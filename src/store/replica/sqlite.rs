//! The SQLite change feed: SQLite runs one writer at a time, so change rows
//! are numbered in commit order and a position is the last number read.
//! There is no notification: a process that writes through the replica
//! reads the feed before the write returns, and other processes sharing
//! the file read it every quarter of the bound.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::feed::{Change, Feed, FeedStatements, Position, Read, Since, load_tokens, read_changes};
use crate::error::StoreError;
use crate::store::SqliteStore;
use crate::store::sqlite::error;

/// Rows after the position `$1`.
const AFTER: &str = "ch.pos > $1";

impl SqliteStore {
    fn feed_statements(&self) -> FeedStatements {
        FeedStatements::new(self.table(), AFTER)
    }

    /// The highest change row written (or pruned): where a load made now
    /// starts following.
    /// Also how far pruning went, and the store's reload epoch.
    fn last_pos_statement(&self) -> String {
        let pruned = self.table().quoted("_changes_pruned");
        format!(
            "SELECT max(coalesce((SELECT max(pos) FROM {}), 0), p.through_pos), \
             p.through_pos, p.epoch FROM {pruned} AS p",
            self.table().quoted("_changes"),
        )
    }
}

#[async_trait]
impl Feed for SqliteStore {
    async fn load(&self, apply: &mut (dyn FnMut(Read) + Send)) -> Result<Position, StoreError> {
        let statements = self.feed_statements();
        // One read transaction: in WAL mode, one snapshot for both reads.
        let mut tx = self.pool().begin().await.map_err(error)?;
        let (pos, _, epoch): (i64, i64, i64) = sqlx::query_as(&self.last_pos_statement())
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?;
        load_tokens!(&mut tx, statements, &mut *apply, error, i64);
        tx.commit().await.map_err(error)?;
        Ok(Position::Pos { pos, epoch })
    }

    async fn changes_since(
        &self,
        since: &Position,
        apply: &mut (dyn FnMut(Change) + Send),
    ) -> Result<Since, StoreError> {
        // Refutable only when both SQL features are on.
        #[allow(irrefutable_let_patterns)]
        let &Position::Pos {
            pos: since,
            epoch: since_epoch,
        } = since
        else {
            return Ok(Since::Pruned);
        };
        let statements = self.feed_statements();
        let mut tx = self.pool().begin().await.map_err(error)?;
        let (last, pruned, epoch): (i64, i64, i64) = sqlx::query_as(&self.last_pos_statement())
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?;
        if pruned > since || epoch != since_epoch {
            return Ok(Since::Pruned);
        }
        read_changes!(&mut tx, statements, since, &mut *apply, error, i64);
        tx.commit().await.map_err(error)?;
        Ok(Since::CaughtUp(Position::Pos { pos: last, epoch }))
    }

    async fn prune_changes(&self, retention: Duration, limit: usize) -> Result<u64, StoreError> {
        let changes = self.table().quoted("_changes");
        let pruned = self.table().quoted("_changes_pruned");
        // The oldest rows, up to `limit`, made before the cutoff.
        let oldest =
            format!("SELECT pos FROM {changes} WHERE changed_at < $1 ORDER BY pos LIMIT $2");
        let note = format!(
            "UPDATE {pruned} SET through_pos = \
             max(through_pos, coalesce((SELECT max(pos) FROM ({oldest})), 0))"
        );
        let delete = format!("DELETE FROM {changes} WHERE pos IN ({oldest})");
        // A retention reaching back before the year -9999 prunes nothing.
        let Some(cutoff) = time::OffsetDateTime::now_utc()
            .checked_sub(time::Duration::try_from(retention).unwrap_or(time::Duration::MAX))
        else {
            return Ok(0);
        };
        let cutoff = (cutoff.unix_timestamp_nanos() / 1_000) as i64;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut tx = self.pool().begin().await.map_err(error)?;
        sqlx::query(&note)
            .bind(cutoff)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let done = sqlx::query(&delete)
            .bind(cutoff)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok(done.rows_affected())
    }

    fn listen(&self, _wake: Arc<Notify>) -> Option<JoinHandle<()>> {
        None
    }
}
