//! The in-memory store: the embedded default, needing no other crate.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use super::{Cursor, RevokeOutcome, TokenStore};
use crate::error::StoreError;
use crate::record::{Revocation, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

/// Keeps records in this process's memory. They are gone when it exits, and
/// other instances of a service do not see them: use it for tests, for
/// single-process services that re-issue tokens on restart, or in front of
/// nothing at all while prototyping.
///
/// Records are held behind `Arc`s, so `find` hands one out without copying
/// it. Every method holds the lock only for its own map operations, never
/// across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

#[derive(Default)]
struct Tables {
    records: HashMap<TokenId, Arc<TokenRecord>>,
    /// Each scope's records, by list position.
    by_scope: HashMap<Scope, BTreeSet<Cursor>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records it holds, revoked and expired ones included.
    pub fn len(&self) -> usize {
        self.read().records.len()
    }

    /// Whether it holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while the lock was held cannot leave the tables half-changed
    // (each write is a single map operation), so a poisoned lock is usable.
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let mut tables = self.write();
        if tables.records.contains_key(&record.id) {
            return Err(StoreError::AlreadyExists { id: record.id });
        }
        tables
            .by_scope
            .entry(record.scope.clone())
            .or_default()
            .insert(Cursor::of(&record));
        tables.records.insert(record.id, Arc::new(record));
        Ok(())
    }

    async fn find(&self, id: TokenId) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        Ok(self.read().records.get(&id).cloned())
    }

    async fn list(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Arc<TokenRecord>>, StoreError> {
        let tables = self.read();
        let Some(positions) = tables.by_scope.get(scope) else {
            return Ok(Vec::new());
        };
        let end = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(positions
            .range((Bound::Unbounded, end))
            .rev()
            .take(limit)
            .filter_map(|position| tables.records.get(&position.id).cloned())
            .collect())
    }

    async fn revoke(
        &self,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut tables = self.write();
        let Some(record) = tables.records.get_mut(&id) else {
            return Ok(RevokeOutcome::NotFound);
        };
        if let Some(earlier) = &record.revoked {
            return Ok(RevokeOutcome::AlreadyRevoked(earlier.clone()));
        }
        // Readers holding the old `Arc` keep the record as it was when they
        // read it; every read from now on gets the revoked copy.
        Arc::make_mut(record).revoked = Some(revocation);
        Ok(RevokeOutcome::Revoked)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}
