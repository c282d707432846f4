//! Every store the crate ships, and the custom-store example, keep the
//! `TokenStore` contract: the public conformance suite, run in full.

#[path = "../examples/custom_store.rs"]
#[allow(dead_code)]
mod custom_store;

use std::ops::Range;
use std::sync::Arc;

use api_tokens::store::{
    Cursor, ExpiryCursor, ListedRecord, Retirement, RevokeOutcome, RotateOutcome, ScopeRevoked,
};
use api_tokens::{
    MemoryStore, Revocation, Scope, StoreError, StoredCredential, TokenId, TokenRecord, TokenStore,
};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_keeps_the_contract() {
    api_tokens::conformance::run(|| async { Arc::new(MemoryStore::new()) as Arc<dyn TokenStore> })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_custom_store_example_keeps_the_contract() {
    api_tokens::conformance::run(|| async {
        let inner: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        Arc::new(custom_store::Metered::new(inner)) as Arc<dyn TokenStore>
    })
    .await;
}

// The suite has teeth: a store with one fault fails it, naming the rule.

#[derive(Clone, Copy)]
enum Fault {
    /// Keeps times to the second, as a careless column type would.
    DropsMicroseconds,
    /// Overwrites a revocation instead of compare-and-set.
    RevokeOverwrites,
    /// Serves credentials that never say revoked, like a stale cache.
    StaleCredentials,
}

/// The memory store with one fault.
struct Faulty(MemoryStore, Fault);

fn faulty(fault: Fault) -> impl FnMut() -> std::future::Ready<Arc<dyn TokenStore>> {
    move || std::future::ready(Arc::new(Faulty(MemoryStore::new(), fault)) as Arc<dyn TokenStore>)
}

#[async_trait::async_trait]
impl TokenStore for Faulty {
    async fn insert(&self, mut record: TokenRecord) -> Result<(), StoreError> {
        if let Fault::DropsMicroseconds = self.1 {
            record.created_at = record.created_at.replace_microsecond(0).unwrap();
        }
        self.0.insert(record).await
    }
    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.0.find(id).await
    }
    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        let mut credential = self.0.find_credential(id).await?;
        if let (Fault::StaleCredentials, Some(credential)) = (self.1, credential.as_mut()) {
            credential.revoked = false;
        }
        Ok(credential)
    }
    async fn list(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.0.list(scope, after, limit).await
    }
    async fn revoke(
        &self,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let outcome = self.0.revoke(id, revocation).await?;
        Ok(match (self.1, outcome) {
            (Fault::RevokeOverwrites, RevokeOutcome::AlreadyRevoked(_)) => RevokeOutcome::Revoked,
            (_, outcome) => outcome,
        })
    }
    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        self.0.revoke_scope(scope, revocation).await
    }
    async fn rotate(
        &self,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        self.0.rotate(old, retire, successor).await
    }
    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        self.0.record_uses(uses).await
    }
    async fn list_expiring(
        &self,
        scope: &Scope,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.0.list_expiring(scope, window, after, limit).await
    }
    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        self.0.purge(before, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a record must read back identical")]
async fn a_store_that_drops_microseconds_fails() {
    api_tokens::conformance::run(faulty(Fault::DropsMicroseconds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "concurrent revokes wins")]
async fn a_store_whose_revoke_overwrites_fails() {
    api_tokens::conformance::run(faulty(Fault::RevokeOverwrites)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "find_credential must say what find says")]
async fn a_store_with_stale_credentials_fails() {
    api_tokens::conformance::run(faulty(Fault::StaleCredentials)).await;
}
