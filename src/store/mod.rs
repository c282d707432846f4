//! Where records live: the [`TokenStore`] trait, and the in-memory backend.
//!
//! A store keeps [`TokenRecord`]s and nothing else: it never sees a secret or
//! a key, and it applies no rule. It returns records as they are (revoked and
//! expired ones too); the [`TokenService`](crate::TokenService) decides what a
//! record means.
//!
//! # Writing your own store
//!
//! Implement the five methods below; each must be atomic on its own, and none
//! needs a transaction with another. [`find_credential`] is the one
//! verification calls: it must agree with [`find`](TokenStore::find) (a
//! database answers it from the same row, as the example does from the same
//! map).
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::{Arc, Mutex};
//!
//! use api_tokens::store::{Cursor, RevokeOutcome, TokenStore};
//! use api_tokens::{Revocation, Scope, StoreError, StoredCredential, TokenId, TokenRecord};
//!
//! /// Every record in one ordered map behind one lock.
//! #[derive(Default)]
//! struct BTreeStore(Mutex<BTreeMap<TokenId, TokenRecord>>);
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
//!         scope: &Scope,
//!         after: Option<Cursor>,
//!         limit: usize,
//!     ) -> Result<Vec<TokenRecord>, StoreError> {
//!         let records = self.0.lock().unwrap();
//!         let mut found: Vec<_> = records
//!             .values()
//!             .filter(|r| &r.scope == scope)
//!             .filter(|r| after.is_none_or(|cursor| Cursor::of(r) < cursor))
//!             .cloned()
//!             .collect();
//!         found.sort_by_key(|r| std::cmp::Reverse(Cursor::of(r)));
//!         found.truncate(limit);
//!         Ok(found)
//!     }
//!
//!     async fn revoke(&self, id: TokenId, revocation: Revocation) -> Result<RevokeOutcome, StoreError> {
//!         let mut records = self.0.lock().unwrap();
//!         let Some(record) = records.get_mut(&id) else {
//!             return Ok(RevokeOutcome::NotFound);
//!         };
//!         if let Some(earlier) = &record.revoked {
//!             return Ok(RevokeOutcome::AlreadyRevoked(earlier.clone()));
//!         }
//!         record.revoked = Some(revocation);
//!         Ok(RevokeOutcome::Revoked)
//!     }
//! }
//!
//! let store: Arc<dyn TokenStore> = Arc::new(BTreeStore::default());
//! ```
//!
//! [`find_credential`]: TokenStore::find_credential

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::record::{Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

mod memory;

pub use memory::MemoryStore;

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

    /// Up to `limit` records whose scope equals `scope` exactly (an
    /// organization's list does not include its domains' tokens), newest
    /// first: ordered by [`Cursor`] descending. With `after`, only records
    /// strictly after that cursor in this order, so pages neither repeat nor
    /// skip a record even while others are inserted.
    ///
    /// # Errors
    ///
    /// A backend failure, or [`StoreError::Corrupt`].
    async fn list(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, StoreError>;

    /// Sets `revoked` on the record with `id` if it is not set yet, as one
    /// atomic compare-and-set: of many concurrent calls, exactly one reports
    /// [`RevokeOutcome::Revoked`], and its revocation is the one stored.
    ///
    /// # Errors
    ///
    /// A backend failure. An unknown id is not an error but
    /// [`RevokeOutcome::NotFound`].
    async fn revoke(
        &self,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError>;
}

/// What [`TokenStore::revoke`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The record was live and is now revoked with the given revocation.
    Revoked,
    /// The record was revoked before; it keeps that earlier revocation.
    AlreadyRevoked(Revocation),
    /// No record has this id.
    NotFound,
}

/// A position in a scope's token list, which is ordered newest first. Ordering
/// cursors compares `created_at`, then `id`; a list runs from the greatest
/// cursor down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// When the record at this position was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its id, which breaks ties between records created in the same instant.
    pub id: TokenId,
}

impl Cursor {
    /// The position of `record`.
    pub fn of(record: &TokenRecord) -> Self {
        Cursor {
            created_at: record.created_at,
            id: record.id,
        }
    }
}
