//! Where records live: the [`TokenStore`] trait, and the in-memory backend.
//!
//! A store keeps [`TokenRecord`]s and nothing else: it never sees a secret or
//! a key, and it applies no rule. It returns records as they are (revoked and
//! expired ones too); the [`TokenService`](crate::TokenService) decides what a
//! record means.
//!
//! # Writing your own store
//!
//! Implement the methods below; each must be atomic on its own, and none
//! needs a transaction with another. [`find_credential`] is the one
//! verification calls: it must agree with [`find`](TokenStore::find) (a
//! database answers it from the same row, as the example does from the same
//! map). Writes to one token name the scope the caller addresses, and must
//! miss a token of any other scope in the same atomic step; lists read the
//! scopes a [`ScopeFilter`] names ([`ScopeFilter::reads`] says which). The
//! example keeps everything under one lock, which makes every method
//! trivially atomic; the memory store shows how to do better. Prove a store
//! keeps the contract with the suite in `conformance` (feature
//! `conformance`), as every store of this crate does.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::ops::Range;
//! use std::sync::{Arc, Mutex};
//!
//! use api_tokens::store::{
//!     Cursor, ExpiryCursor, ListedRecord, NoticeWindow, Retirement, RevokeOutcome, RotateOutcome,
//!     ScopeFilter, ScopeRevoked, TokenChange, TokenStore, UpdateOutcome,
//! };
//! use time::OffsetDateTime;
//! use api_tokens::{
//!     ActorId, Revocation, Scope, StoreError, StoredCredential, TokenId, TokenRecord,
//! };
//!
//! /// Every record in one ordered map behind one lock, and beside it the
//! /// expiry-notice marks (`(expires_at, window length)`), locked after it.
//! #[derive(Default)]
//! struct BTreeStore(
//!     Mutex<BTreeMap<TokenId, TokenRecord>>,
//!     Mutex<BTreeMap<TokenId, (OffsetDateTime, u32)>>,
//! );
//!
//! #[async_trait::async_trait]
//! impl TokenStore for BTreeStore {
//!     async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         if records.contains_key(&record.id) {
//!             return Err(StoreError::AlreadyExists { id: record.id });
//!         }
//!         records.insert(record.id, record);
//!         Ok(())
//!     }
//!
//!     async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
//!         Ok(self.0.lock().unwrap().get(&id).cloned())
//!     }
//!
//!     async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
//!         Ok(self.0.lock().unwrap().get(&id).map(TokenRecord::credential))
//!     }
//!
//!     async fn list(
//!         &self,
//!         filter: &ScopeFilter,
//!         after: Option<Cursor>,
//!         limit: usize,
//!     ) -> Result<Vec<ListedRecord>, StoreError> {
//!         let records = self.0.lock().unwrap();
//!         let mut found: Vec<_> = records
//!             .values()
//!             .filter(|r| filter.reads(&r.scope))
//!             .filter(|r| after.is_none_or(|cursor| Cursor::of(r) < cursor))
//!             .cloned()
//!             .collect();
//!         found.sort_by_key(|r| std::cmp::Reverse(Cursor::of(r)));
//!         // Records kept as Rust values cannot be damaged: all `Ok`.
//!         Ok(found.into_iter().take(limit).map(Ok).collect())
//!     }
//!
//!     async fn revoke(
//!         &self,
//!         scope: &Scope,
//!         id: TokenId,
//!         revocation: Revocation,
//!     ) -> Result<RevokeOutcome, StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         // Another scope's token is not found: the caller does not address it.
//!         let Some(record) = records.get_mut(&id).filter(|r| &r.scope == scope) else {
//!             return Ok(RevokeOutcome::NotFound);
//!         };
//!         if let Some(earlier) = &record.revoked {
//!             return Ok(RevokeOutcome::AlreadyRevoked(earlier.clone()));
//!         }
//!         record.revoked = Some(revocation);
//!         Ok(RevokeOutcome::Revoked)
//!     }
//!
//!     async fn update(
//!         &self,
//!         scope: &Scope,
//!         id: TokenId,
//!         change: &TokenChange,
//!     ) -> Result<UpdateOutcome, StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         let Some(record) = records.get_mut(&id).filter(|r| &r.scope == scope) else {
//!             return Ok(UpdateOutcome::NotFound);
//!         };
//!         if record.revoked.is_some() {
//!             return Ok(UpdateOutcome::Revoked);
//!         }
//!         if let Some(successor) = record.replaced_by {
//!             return Ok(UpdateOutcome::Replaced(successor));
//!         }
//!         match change {
//!             TokenChange::Disable(_) if record.disabled.is_some() => return Ok(UpdateOutcome::Unchanged),
//!             TokenChange::Enable if record.disabled.is_none() => return Ok(UpdateOutcome::Unchanged),
//!             TokenChange::Disable(disablement) => record.disabled = Some(disablement.clone()),
//!             TokenChange::Enable => record.disabled = None,
//!             TokenChange::Edit { label, expiry } => {
//!                 if let Some(expiry) = expiry {
//!                     if record.expires_at != expiry.from {
//!                         return Ok(UpdateOutcome::ExpiryMoved(record.expires_at));
//!                     }
//!                     record.expires_at = expiry.to;
//!                 }
//!                 if let Some(label) = label {
//!                     record.label = label.clone();
//!                 }
//!             }
//!         }
//!         Ok(UpdateOutcome::Updated)
//!     }
//!
//!     async fn revoke_scope(&self, scope: &Scope, revocation: Revocation) -> Result<ScopeRevoked, StoreError> {
//!         let mut revoked = ScopeRevoked::default();
//!         for record in self.0.lock().unwrap().values_mut() {
//!             if scope.covers(&record.scope) && record.revoked.is_none() {
//!                 record.revoked = Some(revocation.clone());
//!                 revoked.add(record.id);
//!             }
//!         }
//!         Ok(revoked)
//!     }
//!
//!     async fn rotate(
//!         &self,
//!         scope: &Scope,
//!         old: TokenId,
//!         retire: Retirement,
//!         successor: TokenRecord,
//!     ) -> Result<RotateOutcome, StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         if records.contains_key(&successor.id) {
//!             return Err(StoreError::AlreadyExists { id: successor.id });
//!         }
//!         let Some(record) = records.get_mut(&old).filter(|r| &r.scope == scope) else {
//!             return Ok(RotateOutcome::NotFound);
//!         };
//!         if let Some(by) = record.replaced_by {
//!             return Ok(RotateOutcome::AlreadyReplaced(by));
//!         }
//!         if record.revoked.is_some() {
//!             return Ok(RotateOutcome::Revoked);
//!         }
//!         record.replaced_by = Some(successor.id);
//!         match retire {
//!             Retirement::ExpiresAt(at) => record.expires_at = Some(at),
//!             Retirement::Revoked(revocation) => record.revoked = Some(revocation),
//!         }
//!         records.insert(successor.id, successor);
//!         Ok(RotateOutcome::Rotated)
//!     }
//!
//!     async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         for &(id, at) in uses {
//!             if let Some(record) = records.get_mut(&id) {
//!                 record.last_used_at = record.last_used_at.max(Some(at));
//!             }
//!         }
//!         Ok(())
//!     }
//!
//!     async fn list_expiring(
//!         &self,
//!         filter: &ScopeFilter,
//!         window: Range<OffsetDateTime>,
//!         after: Option<ExpiryCursor>,
//!         limit: usize,
//!     ) -> Result<Vec<ListedRecord>, StoreError> {
//!         let records = self.0.lock().unwrap();
//!         let mut found: Vec<_> = records
//!             .values()
//!             .filter(|r| filter.reads(&r.scope) && r.revoked.is_none() && r.replaced_by.is_none())
//!             .filter(|r| r.expires_at.is_some_and(|at| window.contains(&at)))
//!             .filter(|r| after.is_none_or(|cursor| ExpiryCursor::of(r) > Some(cursor)))
//!             .cloned()
//!             .collect();
//!         found.sort_by_key(|r| (r.expires_at, r.id));
//!         Ok(found.into_iter().take(limit).map(Ok).collect())
//!     }
//!
//!     async fn revoke_created_by(
//!         &self,
//!         creator: &ActorId,
//!         revocation: Revocation,
//!         limit: usize,
//!     ) -> Result<Vec<TokenId>, StoreError> {
//!         let mut revoked = Vec::new();
//!         let mut records = self.0.lock().unwrap();
//!         let live = records
//!             .values_mut()
//!             .filter(|r| &r.created_by == creator && r.revoked.is_none());
//!         for record in live.take(limit) {
//!             record.revoked = Some(revocation.clone());
//!             revoked.push(record.id);
//!         }
//!         Ok(revoked)
//!     }
//!
//!     async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         let ended: Vec<TokenId> = records
//!             .values()
//!             .filter(|r| r.ended_before(before))
//!             .map(|r| r.id)
//!             .take(limit)
//!             .collect();
//!         for id in &ended {
//!             records.remove(id);
//!         }
//!         Ok(ended.len() as u64)
//!     }
//!
//!     async fn claim_expiry_notices(
//!         &self,
//!         filter: &ScopeFilter,
//!         window: NoticeWindow,
//!         limit: usize,
//!     ) -> Result<Vec<ListedRecord>, StoreError> {
//!         // Both locks held, records first: nothing changes in between.
//!         let records = self.0.lock().unwrap();
//!         let mut marks = self.1.lock().unwrap();
//!         let mut due: Vec<_> = records
//!             .values()
//!             .filter(|r| filter.reads(&r.scope) && r.revoked.is_none() && r.replaced_by.is_none())
//!             .filter(|r| window.is_due(r.expires_at, marks.get(&r.id).copied()))
//!             .collect();
//!         due.sort_by_key(|r| (r.expires_at, r.id));
//!         due.truncate(limit);
//!         for record in &due {
//!             if let Some(at) = record.expires_at {
//!                 marks.insert(record.id, (at, window.length_secs));
//!             }
//!         }
//!         Ok(due.into_iter().cloned().map(Ok).collect())
//!     }
//!
//!     async fn release_expiry_notices(
//!         &self,
//!         length_secs: u32,
//!         claimed: &[ExpiryCursor],
//!     ) -> Result<(), StoreError> {
//!         let mut marks = self.1.lock().unwrap();
//!         for position in claimed {
//!             if marks.get(&position.id) == Some(&(position.expires_at, length_secs)) {
//!                 marks.remove(&position.id);
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let store: Arc<dyn TokenStore> = Arc::new(BTreeStore::default());
//! ```
//!
//! [`find_credential`]: TokenStore::find_credential

use async_trait::async_trait;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{BoxError, StoreError};
use crate::ids::ActorId;
use crate::label::Label;
use crate::record::{Disablement, Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod replica;
mod shards;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod table;

pub use crate::page::{Cursor, ExpiryCursor};
pub use memory::MemoryStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use migrations::Migration;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "postgres")]
pub use replica::LISTENER_APPLICATION_NAME;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use replica::{
    DEFAULT_CHANGE_RETENTION, DEFAULT_MAX_STALENESS, MIN_CHANGE_RETENTION, MIN_MAX_STALENESS,
    ReplicaOptions, ReplicatedStore,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use table::{MAX_TABLE_NAME_LEN, TableName};

/// Storage for token records. Object safe: the service holds an
/// `Arc<dyn TokenStore>`.
///
/// Implementations must be safe to call from many tasks and threads at once,
/// and every method must be atomic: a reader sees a record entirely before or
/// entirely after a write, and once a write has returned, every later read (on
/// any instance sharing the storage) sees it.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new record.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] if a record with the same id is stored
    /// (the stored one is left unchanged), or a backend failure.
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError>;

    /// The record with `id`, if any, as stored (revoked and expired included).
    ///
    /// # Errors
    ///
    /// A backend failure, or [`StoreError::Corrupt`] for a record that
    /// cannot be read back.
    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError>;

    /// What verification needs of the record with `id`: exactly what
    /// `find(id)` returns, projected by [`TokenRecord::credential`] (revoked
    /// and expired records included, never a stale copy).
    ///
    /// Every verification calls this, so it is the one method whose speed
    /// matters. A database answers it from the same indexed row as `find`;
    /// the memory store keeps credentials apart from the rest of the record
    /// so a lookup touches as little memory as it can.
    ///
    /// # Errors
    ///
    /// As [`find`](Self::find).
    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError>;

    /// Up to `limit` records of the scopes `filter` reads (with
    /// [`ScopeFilter::Exactly`] an organization's list does not include its
    /// domains' tokens), newest first: ordered by [`Cursor`] descending,
    /// across every scope the filter reads. With `after`, only records
    /// strictly after that cursor in this order, so pages neither repeat nor
    /// skip a record even while others are inserted.
    ///
    /// A row that cannot be read back as a record takes its place in the
    /// list as a [`DamagedRecord`], so one damaged row never hides the rest
    /// of its scope.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError>;

    /// Sets `revoked` on the record with `id` at `scope` if it is not set
    /// yet, as one atomic compare-and-set: of many concurrent calls, exactly
    /// one reports [`RevokeOutcome::Revoked`], and its revocation is the one
    /// stored. It needs the id and the scope and nothing else of the record:
    /// a record damaged in any other field can still be revoked.
    ///
    /// `scope` is the scope the caller addresses, and must equal the
    /// record's **exactly**: a token lives at one scope, and an
    /// organization's address does not reach its domains' tokens (nor a
    /// domain's its organization's). A record at any other scope is
    /// [`RevokeOutcome::NotFound`], revoked or not, and is left unchanged.
    /// The store checks the scope in the same atomic step as the write (a
    /// SQL store in the `UPDATE`'s own `WHERE`), so no caller can revoke
    /// what it does not address, whatever it read before.
    ///
    /// # Errors
    ///
    /// A backend failure. An unknown id, or one at another scope, is not an
    /// error but [`RevokeOutcome::NotFound`].
    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Revokes, with `revocation`, every record not yet revoked whose scope
    /// `scope` [covers](Scope::covers) (an organization's own tokens and its
    /// domains', expired ones too), as one atomic step, and says how many
    /// it revoked and which, up to the first [`REPORTED_IDS`]. Records
    /// revoked before keep their revocation.
    ///
    /// Atomic against inserts: a record whose insert returned before this
    /// call began is revoked by it; one inserted concurrently is either
    /// revoked too or ordered after it, never half-way. Its cost must not
    /// grow with the scope's size while it holds a lock others wait for
    /// (the SQL stores write one mark that every read honours).
    ///
    /// # Errors
    ///
    /// A backend failure; then nothing was revoked, or (for a store that
    /// cannot do it in one step) what was revoked stays revoked and a retry
    /// finishes the job. A failure that hides whether the store committed
    /// (a deadline at the commit) may leave the revocation standing; a retry
    /// then reports nothing more to revoke. Reading which ids it revoked,
    /// once it stands, is best effort and never fails the call.
    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError>;

    /// Replaces the record `old` at `scope` by `successor` (whose
    /// `rotated_from` is `old`, and whose scope is normally `scope`: the
    /// store inserts it as given) in one atomic step, if `old` is neither
    /// revoked nor replaced yet: inserts `successor`, sets `old`'s
    /// `replaced_by` to the successor's id, and retires `old` as `retire`
    /// says. Otherwise changes nothing and says why. Of many concurrent
    /// rotations of one record, exactly one succeeds.
    ///
    /// `scope` must equal `old`'s scope exactly, as for
    /// [`revoke`](Self::revoke): a record at any other scope is
    /// [`RotateOutcome::NotFound`] (whatever its state), checked in the
    /// same atomic step as the write, and nothing changes.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] if the successor's id is taken (nothing
    /// changed), or a backend failure.
    async fn rotate(
        &self,
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError>;

    /// Applies `change` to the record `id` at `scope` in one atomic step:
    /// disables it, enables it, or edits its label and expiry.
    ///
    /// `scope` must equal the record's exactly, as for
    /// [`revoke`](Self::revoke), checked in the same atomic step as the
    /// write. A revoked record (on its own or by a scope revocation) and a
    /// replaced one are final: the call changes nothing and says so. An
    /// [`Edit`](TokenChange::Edit) that changes the expiry applies only if
    /// the expiry is still [`ExpiryChange::from`] (a compare-and-set, so a
    /// rule the service checked against what it read cannot be raced past);
    /// otherwise nothing changes, not even the label.
    ///
    /// # Errors
    ///
    /// A backend failure; then nothing changed (or, a failure that hides
    /// whether the store committed, the change may stand).
    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError>;

    /// Records uses: for each `(id, at)`, sets the record's `last_used_at` to
    /// `at` unless it already holds a later time. Ids with no record are
    /// skipped. Each pair is applied atomically; the batch need not be.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError>;

    /// Up to `limit` records of the scopes `filter` reads, neither revoked
    /// nor replaced by a rotation (that expiry is a grace period the admin
    /// chose), whose `expires_at` lies in `window` (start included, end
    /// excluded), the soonest to expire first, ties by id, across every
    /// scope the filter reads: what an "expiring soon" e-mail lists. With
    /// `after`, only records strictly after that position, as
    /// [`list`](Self::list) pages. Damaged rows are [`DamagedRecord`]s, as
    /// in `list`.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError>;

    /// Revokes, with `revocation`, up to `limit` live records created by
    /// `creator`, whatever their scope, and returns their ids: what
    /// offboarding a person does to the tokens they issued. A caller revokes
    /// them all by calling again until fewer than `limit` come back; each
    /// call is one short atomic step whose size is bounded by `limit`, never
    /// by how many tokens the creator made.
    ///
    /// Live means what [`revoke_scope`](Self::revoke_scope) counts: not
    /// revoked, on its own or by a scope revocation. Expired records count
    /// as live here, as they do there: the store has no clock and applies
    /// no rule, and a record revoked on offboarding says so in every later
    /// list and audit. Records revoked before keep their revocation and are
    /// not returned. Each returned id was revoked by this call and by no
    /// other: a concurrent [`revoke`](Self::revoke) of the same record
    /// reports [`RevokeOutcome::AlreadyRevoked`] with this revocation, or
    /// this call leaves the record to it. Fewer than `limit` ids (none when
    /// `limit` is 0) means no live record of `creator` was left when the
    /// call ran, apart from any inserted concurrently.
    ///
    /// # Errors
    ///
    /// A backend failure; then nothing was revoked, or (a failure that
    /// hides whether the store committed) the step stands and a retry
    /// returns the rest.
    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError>;

    /// Deletes up to `limit` records that ended before `before`: revoked
    /// then, or expired then ([`TokenRecord::ended_before`]), and returns
    /// how many it deleted; fewer than `limit` means none is left. Each call
    /// is bounded by `limit`, so a caller deletes a large backlog in many
    /// short steps. A deleted record's id may live on in another record's
    /// `rotated_from` or `replaced_by`.
    ///
    /// # Errors
    ///
    /// A backend failure before anything was deleted. A failure after some
    /// records were deleted returns how many instead (they stay deleted,
    /// and are counted); the failure shows on the next call.
    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError>;

    /// Claims up to `limit` records for an expiry notice of `window`, and
    /// returns them: the records of the scopes `filter` reads that are
    /// **due**, each marked in the same atomic step as notified about its
    /// current `expires_at` by a window of `window.length_secs`.
    ///
    /// Due means: live as [`list_expiring`](Self::list_expiring) lists
    /// (neither revoked, on its own or by a scope revocation, nor replaced;
    /// a disabled record is live, since it can be enabled again),
    /// `expires_at` in `window.start..window.end`, and not marked already
    /// for this same `expires_at` by a window no longer than this one. So a
    /// 30-day window and then a 7-day one claim a token once each, a
    /// 30-day window after a 7-day one does not claim it again, and an
    /// expiry changed since ([`TokenChange::Edit`]) makes it due afresh.
    ///
    /// Soonest to expire first, ties by id, as `list_expiring` orders. Each
    /// record is claimed by one call at most: of concurrent calls, every
    /// record goes to one of them (a compare-and-set per record, checked in
    /// the same atomic step as the mark). An empty answer means none was
    /// due when the call ran, apart from records another call was writing
    /// at that moment (a database may skip a row another transaction holds
    /// rather than wait for it): the next call takes those. The cost: the
    /// SQL stores walk the expiry index in order from the window's start,
    /// passing over live tokens already notified for it, so a call reads
    /// up to every live token in the window once (not only `limit`), plus
    /// the writes. Keep windows to what a notice needs (days to weeks).
    ///
    /// The mark is the store's own bookkeeping, not part of the record:
    /// `find` and `list` do not show it, and a replica need not see it.
    /// A row that cannot be read back is returned as a [`DamagedRecord`]
    /// (claimed all the same).
    ///
    /// # Errors
    ///
    /// A backend failure; then nothing was claimed (or, a failure that
    /// hides whether the store committed, the claims may stand).
    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError>;

    /// Undoes claims of [`claim_expiry_notices`](Self::claim_expiry_notices)
    /// made by a window of `length_secs`: clears the mark of each record of
    /// `claimed` still marked for exactly that `expires_at` and that
    /// length, so the next claim returns it again. What a caller does when
    /// it could not deliver a notice. A record marked otherwise since (by
    /// another window, or for a new expiry) is left as it is, and so is an
    /// id with no record. Each record is released atomically; the batch
    /// need not be.
    ///
    /// # Errors
    ///
    /// A backend failure; the records not yet released stay claimed.
    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError>;

    /// Waits until the store can answer: a store that loads a copy of its
    /// data first (a `ReplicatedStore`) returns once it has. Every other
    /// store is ready at once, which is what this default says.
    ///
    /// # Errors
    ///
    /// A store that gave up getting ready says why.
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Which scopes a list reads ([`TokenStore::list`],
/// [`TokenStore::list_expiring`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeFilter {
    /// The tokens of exactly this scope (an organization's own, not its
    /// domains').
    Exactly(Scope),
    /// The tokens of this scope and of every scope it
    /// [covers](Scope::covers): an organization and all its domains. For a
    /// domain, the same as `Exactly`.
    Covered(Scope),
    /// Every token in the store: for operators' background jobs only,
    /// never for a tenant's request (a store may answer it at a cost that
    /// grows with the store: see each store's docs).
    All,
}

impl ScopeFilter {
    /// Whether the filter reads the tokens of `scope`.
    pub fn reads(&self, scope: &Scope) -> bool {
        match self {
            ScopeFilter::Exactly(exactly) => exactly == scope,
            ScopeFilter::Covered(covering) => covering.covers(scope),
            ScopeFilter::All => true,
        }
    }
}

/// What an expiry notice covers, for
/// [`TokenStore::claim_expiry_notices`]: the tokens expiring at or after
/// `start` and before `end`, claimed by a window `length_secs` long.
///
/// The length is what the store records with each token it claims (whole
/// seconds), so that windows of different lengths each notify once; the
/// service makes `end` its clock's now plus the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoticeWindow {
    /// The first instant a due token may expire at (included).
    pub start: OffsetDateTime,
    /// The instant due tokens expire before (excluded).
    pub end: OffsetDateTime,
    /// How far the window looks ahead, in whole seconds.
    pub length_secs: u32,
}

impl NoticeWindow {
    /// Whether a record expiring at `expires_at`, last marked (if ever)
    /// about `marked` (`(expires_at, length_secs)`), is due in this window,
    /// leaving liveness aside: the rule of
    /// [`TokenStore::claim_expiry_notices`], for a store that keeps the
    /// mark as values.
    pub fn is_due(
        &self,
        expires_at: Option<OffsetDateTime>,
        marked: Option<(OffsetDateTime, u32)>,
    ) -> bool {
        expires_at.is_some_and(|at| {
            (self.start..self.end).contains(&at)
                && !marked.is_some_and(|(about, length)| about == at && length <= self.length_secs)
        })
    }
}

/// How many ids [`TokenStore::revoke_scope`] reports at most, and its
/// audit event holds: enough to recognise what was revoked, bounded however
/// large the scope.
pub const REPORTED_IDS: usize = 100;

/// What [`TokenStore::revoke_scope`] revoked: how many tokens, and the
/// first [`REPORTED_IDS`] of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRevoked {
    /// How many tokens the call revoked (not those revoked before).
    pub count: u64,
    /// The first of them, at most [`REPORTED_IDS`].
    pub first: Vec<TokenId>,
}

impl ScopeRevoked {
    /// Counts one more revoked token, keeping its id while there is room.
    pub fn add(&mut self, id: TokenId) {
        self.count += 1;
        if self.first.len() < REPORTED_IDS {
            self.first.push(id);
        }
    }
}

/// One entry of a list: a record, or a row the store could not read back.
pub type ListedRecord = Result<TokenRecord, DamagedRecord>;

/// A row a store holds but cannot read back as a valid record (edited by
/// hand, say): reported in its place in a list, with what could be read of
/// it, never trusted as a token.
#[derive(Debug)]
pub struct DamagedRecord {
    /// Its id, if that much could be read.
    pub id: Option<TokenId>,
    /// When it was created, if that could be read: its place in a list.
    pub created_at: Option<OffsetDateTime>,
    /// When it expires, if that could be read: its place in an expiring list.
    pub expires_at: Option<OffsetDateTime>,
    /// What is wrong with it.
    pub source: BoxError,
}

/// How [`TokenStore::rotate`] retires the replaced record. Deliberately not
/// `#[non_exhaustive]`: a new way to retire a token must fail every store's
/// build until the store handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retirement {
    /// It keeps verifying until this time (its grace period), then expires.
    ExpiresAt(OffsetDateTime),
    /// It is revoked at once (a rotation without grace).
    Revoked(Revocation),
}

/// What [`TokenStore::rotate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The successor is stored and the old record retired.
    Rotated,
    /// No record has the old id at the scope addressed (one at another
    /// scope is not found either); nothing changed.
    NotFound,
    /// The old record is revoked; nothing changed.
    Revoked,
    /// The old record was already replaced, by this record; nothing changed.
    AlreadyReplaced(TokenId),
}

/// One change [`TokenStore::update`] makes to a record. Deliberately not
/// `#[non_exhaustive]`, like [`Retirement`]: a new kind of change must fail
/// every store's build until the store handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenChange {
    /// Sets `disabled` unless it is set (the first pause is the one kept).
    Disable(Disablement),
    /// Clears `disabled`.
    Enable,
    /// Sets the label and the expiry, where given.
    Edit {
        /// The new label, if it changes.
        label: Option<Label>,
        /// The new expiry, if it changes.
        expiry: Option<ExpiryChange>,
    },
}

/// A new expiry, applied only while the record's expiry is still `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiryChange {
    /// The expiry the caller read (`None`: never).
    #[serde(with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// The expiry to set (`None`: never).
    #[serde(with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
}

/// What [`TokenStore::update`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateOutcome {
    /// The change is applied.
    Updated,
    /// The record was in that state already (disabled, or not disabled);
    /// nothing changed.
    Unchanged,
    /// No record has this id at the scope addressed; nothing changed.
    NotFound,
    /// The record is revoked; nothing changed.
    Revoked,
    /// The record was replaced by this one; nothing changed.
    Replaced(TokenId),
    /// The record's expiry is no longer the edit's `from` (it is this);
    /// nothing changed.
    ExpiryMoved(Option<OffsetDateTime>),
}

/// What [`TokenStore::revoke`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeOutcome {
    /// The record was live and is now revoked with the given revocation.
    Revoked,
    /// The record was revoked before; it keeps that earlier revocation.
    AlreadyRevoked(Revocation),
    /// No record has this id at the scope addressed (one at another scope
    /// is not found either); nothing changed.
    NotFound,
}
