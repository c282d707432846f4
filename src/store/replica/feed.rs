//! The change feed a replica follows: what a SQL store must answer so that
//! a [`ReplicatedStore`](super::ReplicatedStore) can copy it and keep the
//! copy current. The migration `0002_change_feed` keeps the feed: a row in
//! `<table>_changes` for every write that changes what verification reads,
//! added by triggers inside the writer's own transaction.
//!
//! The two backends differ only in how a reader knows which rows it has not
//! read yet (its [`Position`]):
//!
//! - **PostgreSQL** runs writers concurrently, so rows do not become
//!   visible in the order they were written: a transaction that wrote first
//!   may commit last. A position is therefore the *snapshot* of the
//!   previous read (`pg_current_snapshot()`), and the next read takes every
//!   row whose writing transaction that snapshot did not see
//!   (`NOT pg_visible_in_snapshot(xid, previous)`), read in a new snapshot.
//!   Any transaction is either visible in the old snapshot (read before) or
//!   not (read now, once it has committed), so nothing is missed however
//!   commits interleave.
//! - **SQLite** runs one writer at a time, so a row's `pos` grows in commit
//!   order: a position is the last `pos` read.
//!
//! Pruning deletes old rows and records how far it may have gone; a reader
//! whose position is older than that may have missed a row, and reloads
//! everything instead. On SQLite that is the highest `pos` deleted (rows
//! older than the retention). On PostgreSQL it is an xid horizon: the xmin
//! of a snapshot taken at least a retention earlier, below which rows are
//! deleted. A reader needs the rows from its snapshot's xmin on, and a long
//! transaction holds every snapshot's xmin back alike, so it never makes a
//! reader that is keeping up reload.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::record::StoredCredential;
use crate::scope::Scope;
use crate::store::TokenStore;
use crate::token::TokenId;

use super::super::sql::{RECORD_COLUMNS, RecordRow, SqlTime, joined};
use super::super::table::TableName;

/// Where a reader is in the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    /// PostgreSQL: the snapshot of the previous read, as text.
    #[cfg(feature = "postgres")]
    Snapshot { snapshot: String, epoch: i64 },
    /// SQLite: the last change row read.
    #[cfg(feature = "sqlite")]
    Pos { pos: i64, epoch: i64 },
}
// Both: `epoch` is the store's reload epoch as the read found it; once the
// store's has moved on (a change no row can say), the reader reloads.

/// One token's state as read from the store.
#[derive(Debug)]
pub(crate) enum Read {
    /// Its credential, and its insertion order (`seq`), which scope
    /// revocations cover up to a mark.
    Credential(StoredCredential, i64),
    /// A row that does not read back as a credential: never verified,
    /// reported as corrupt.
    Damaged {
        id: TokenId,
        scope: Option<Scope>,
        error: String,
    },
    /// No such token (any more).
    Gone(TokenId),
}

impl Read {
    /// The token it is about.
    pub(crate) fn id(&self) -> TokenId {
        match self {
            Read::Credential(credential, _) => credential.id,
            Read::Damaged { id, .. } | Read::Gone(id) => *id,
        }
    }
}

/// One change the feed reports.
#[derive(Debug)]
pub(crate) enum Change {
    /// A token changed; this is its state as of the read.
    Token(Read),
    /// Organization `org`'s scope `domain` (`''` for all of it) was revoked
    /// through `through_seq`.
    Scope {
        org: String,
        domain: String,
        through_seq: i64,
    },
}

/// What reading the feed since a position found.
pub(crate) enum Since {
    /// Every change since, applied; the new position.
    CaughtUp(Position),
    /// Changes since the position were pruned: reload everything.
    Pruned,
}

/// A store a replica can follow. Each read sees one consistent snapshot.
/// PostgreSQL bounds each call by the store's deadline (a load by a longer
/// one); the replica bounds a read of changes by its own bound as well.
#[async_trait]
pub(crate) trait Feed: TokenStore + 'static {
    /// Every token, streamed to `apply`, and the position the read was made
    /// at.
    async fn load(&self, apply: &mut (dyn FnMut(Read) + Send)) -> Result<Position, StoreError>;

    /// Every change since `since`, streamed to `apply`, each token's state
    /// read in the same snapshot.
    async fn changes_since(
        &self,
        since: &Position,
        apply: &mut (dyn FnMut(Change) + Send),
    ) -> Result<Since, StoreError>;

    /// Deletes up to `limit` change rows older than `retention`; how many.
    async fn prune_changes(&self, retention: Duration, limit: usize) -> Result<u64, StoreError>;

    /// PostgreSQL: starts a task that listens for the store's change
    /// notifications and calls `wake` on each, and after any gap in
    /// listening (a lost connection): the caller then reads the feed.
    fn listen(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
    ) -> Option<tokio::task::JoinHandle<()>>;
}

/// The statements of the feed, written for one table.
#[derive(Debug)]
pub(crate) struct FeedStatements {
    /// Every token's [`TokenRow`].
    pub(crate) load: String,
    /// The [`ChangeRow`]s after the position `$1`.
    pub(crate) changes: String,
    /// The [`TokenRow`]s of the tokens those rows name.
    pub(crate) changed_tokens: String,
}

impl FeedStatements {
    /// `after` is the condition on a change row `ch` that it comes after
    /// the position `$1`.
    pub(crate) fn new(table: &TableName, after: &str) -> Self {
        let joined = joined(table);
        let changes = table.quoted("_changes");
        FeedStatements {
            load: format!("SELECT t.seq, {RECORD_COLUMNS} FROM {joined}"),
            changes: format!(
                "SELECT ch.token_id, ch.org_id, ch.domain_id, ch.through_seq \
                 FROM {changes} AS ch WHERE {after}"
            ),
            changed_tokens: format!(
                "SELECT t.seq, {RECORD_COLUMNS} FROM {joined} WHERE t.id IN \
                 (SELECT ch.token_id FROM {changes} AS ch WHERE {after})"
            ),
        }
    }
}

/// A row of `<table>_changes`: a token's id, or a scope revocation.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    token_id: Option<String>,
    org_id: Option<String>,
    domain_id: Option<String>,
    through_seq: Option<i64>,
}

impl ChangeRow {
    /// The scope it revoked, or the id of the token it changed; `None` for
    /// a token id that is no id (no request can carry it).
    pub(crate) fn into_change(self) -> Option<Result<Change, TokenId>> {
        match (self.token_id, self.org_id, self.domain_id, self.through_seq) {
            (Some(id), ..) => id.parse().ok().map(Err),
            (None, Some(org), Some(domain), Some(through_seq)) => Some(Ok(Change::Scope {
                org,
                domain,
                through_seq,
            })),
            _ => None,
        }
    }
}

/// A token row with its insertion order; `T` is the backend's time type.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow<T> {
    seq: i64,
    #[sqlx(flatten)]
    record: RecordRow<T>,
}

impl<T: SqlTime> TokenRow<T> {
    /// Its credential, as `find_credential` would read it (damaged exactly
    /// when `find` calls it damaged); `None` for a row whose id is no id.
    pub(crate) fn into_read(self) -> Option<Read> {
        match self.record.into_record() {
            Ok(record) => Some(Read::Credential(record.credential(), self.seq)),
            Err(StoreError::Corrupt {
                id: Some(id),
                scope,
                source,
            }) => Some(Read::Damaged {
                id,
                scope,
                error: source.to_string(),
            }),
            Err(_) => None,
        }
    }
}

/// Streams every token row in the transaction `$tx` to `$apply`: a load.
/// A macro for the same reason as [`read_changes`].
macro_rules! load_tokens {
    ($tx:expr, $statements:expr, $apply:expr, $error:expr, $time:ty) => {{
        use futures_util::TryStreamExt as _;
        let (tx, apply) = ($tx, $apply);
        let mut rows =
            sqlx::query_as::<_, $crate::store::replica::feed::TokenRow<$time>>(&$statements.load)
                .fetch(&mut **tx);
        while let Some(row) = rows.try_next().await.map_err($error)? {
            if let Some(read) = row.into_read() {
                apply(read);
            }
        }
    }};
}

pub(crate) use load_tokens;

/// Reads the change rows after `$since` in the transaction `$tx` and
/// passes each change to `$apply`: scope revocations as they come, then the
/// state of every token they name, read in the same snapshot (a token named
/// but not found was deleted). A macro, as the stores' bind chains are:
/// the two drivers' executors share no trait a function could name briefly.
macro_rules! read_changes {
    ($tx:expr, $statements:expr, $since:expr, $apply:expr, $error:expr, $time:ty) => {{
        use futures_util::TryStreamExt as _;
        use $crate::store::replica::feed::{Change, ChangeRow, Read, TokenRow};
        let (tx, since, apply) = ($tx, $since, $apply);
        let mut changed = std::collections::HashSet::new();
        let mut rows = sqlx::query_as::<_, ChangeRow>(&$statements.changes)
            .bind(since)
            .fetch(&mut **tx);
        while let Some(row) = rows.try_next().await.map_err($error)? {
            match row.into_change() {
                Some(Ok(scope)) => apply(scope),
                Some(Err(id)) => {
                    changed.insert(id);
                }
                None => {}
            }
        }
        drop(rows);
        if !changed.is_empty() {
            let mut rows = sqlx::query_as::<_, TokenRow<$time>>(&$statements.changed_tokens)
                .bind(since)
                .fetch(&mut **tx);
            while let Some(row) = rows.try_next().await.map_err($error)? {
                if let Some(read) = row.into_read() {
                    changed.remove(&read.id());
                    apply(Change::Token(read));
                }
            }
        }
        // Named by a change, and no longer there.
        for id in changed {
            apply(Change::Token(Read::Gone(id)));
        }
    }};
}

pub(crate) use read_changes;
