//! A store of your own: `Metered` wraps any other store and counts its calls
//! and failures, for a metrics endpoint. It passes the conformance suite
//! (`tests/conformance.rs` runs it there), which is how you know a store of
//! yours keeps the contract the service relies on.
//!
//! Run it with `cargo run --example custom_store`.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api_tokens::store::{
    Cursor, ExpiryCursor, ListedRecord, NoticeWindow, Retirement, RevokeOutcome, RotateOutcome,
    ScopeFilter, ScopeRevoked, TokenChange, TokenStore, UpdateOutcome,
};
use api_tokens::{
    Actor, ActorId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId, Revocation,
    Role, Scope, StoreError, StoredCredential, TokenFormat, TokenId, TokenRecord, TokenService,
};
use time::OffsetDateTime;

/// Counts the calls made to the store it wraps, and how many failed.
pub struct Metered {
    inner: Arc<dyn TokenStore>,
    /// Verification's lookups, the figure to watch.
    pub lookups: AtomicU64,
    /// Every other call.
    pub other_calls: AtomicU64,
    /// Calls that returned an error.
    pub failures: AtomicU64,
}

impl Metered {
    /// `inner`, counted.
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        Metered {
            inner,
            lookups: AtomicU64::new(0),
            other_calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Counts one call of the kind `counter` tallies, and its failure.
    fn count<T>(
        &self,
        counter: &AtomicU64,
        outcome: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        counter.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

#[async_trait::async_trait]
impl TokenStore for Metered {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.count(&self.other_calls, self.inner.insert(record).await)
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.count(&self.other_calls, self.inner.find(id).await)
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        self.count(&self.lookups, self.inner.find_credential(id).await)
    }

    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.count(
            &self.other_calls,
            self.inner.list(filter, after, limit).await,
        )
    }

    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let outcome = self.inner.revoke(scope, id, revocation).await;
        self.count(&self.other_calls, outcome)
    }

    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        let outcome = self.inner.update(scope, id, change).await;
        self.count(&self.other_calls, outcome)
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        self.count(
            &self.other_calls,
            self.inner.revoke_scope(scope, revocation).await,
        )
    }

    async fn rotate(
        &self,
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        let outcome = self.inner.rotate(scope, old, retire, successor).await;
        self.count(&self.other_calls, outcome)
    }

    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        let outcome = self
            .inner
            .revoke_created_by(creator, revocation, limit)
            .await;
        self.count(&self.other_calls, outcome)
    }

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        self.count(&self.other_calls, self.inner.record_uses(uses).await)
    }

    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let outcome = self.inner.list_expiring(filter, window, after, limit).await;
        self.count(&self.other_calls, outcome)
    }

    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        self.count(&self.other_calls, self.inner.purge(before, limit).await)
    }

    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let outcome = self.inner.claim_expiry_notices(filter, window, limit).await;
        self.count(&self.other_calls, outcome)
    }

    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        let outcome = self
            .inner
            .release_expiry_notices(length_secs, claimed)
            .await;
        self.count(&self.other_calls, outcome)
    }
}

#[allow(dead_code)] // the conformance test includes this file for `Metered` alone
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(Metered::new(Arc::new(MemoryStore::new())));
    let service = TokenService::new(
        TokenFormat::new("acme")?,
        Keyring::new(KeyId::new(1), HashKey::generate()?),
        store.clone(),
    );
    let org = Scope::organization(OrganizationId::new("acme")?);
    let alice = Actor::new(ActorId::new("alice")?).with_grant(org.clone(), Role::Admin);
    let issued = service
        .issue(&alice, IssueRequest::new(org, "metered"))
        .await?;
    for _ in 0..1000 {
        service.verify(issued.token.expose_secret()).await?;
    }
    println!(
        "store lookups: {}, other calls: {}, failures: {}",
        store.lookups.load(Ordering::Relaxed),
        store.other_calls.load(Ordering::Relaxed),
        store.failures.load(Ordering::Relaxed),
    );
    Ok(())
}
