//! Every store the crate ships, and the custom-store example, keep the
//! `TokenStore` contract: the public conformance suite, one test per check
//! (`conformance_tests!`), and `conformance::run`, which has teeth.

#[path = "../examples/custom_store.rs"]
#[allow(dead_code)]
mod custom_store;

use std::ops::Range;
use std::sync::Arc;

use api_tokens::store::{
    Cursor, ExpiryCursor, ListedRecord, NoticeWindow, Retirement, RevokeOutcome, RotateOutcome,
    ScopeFilter, ScopeRevoked, TokenChange, UpdateOutcome,
};
use api_tokens::{
    ActorId, MemoryStore, Revocation, Scope, StoreError, StoredCredential, TokenId, TokenRecord,
    TokenStore,
};
use time::OffsetDateTime;

mod memory_store {
    use super::*;

    api_tokens::conformance_tests!(|| async {
        Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>
    });
}

mod custom_store_example {
    use super::*;

    async fn metered_memory_store() -> Arc<dyn TokenStore> {
        let inner: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        Arc::new(custom_store::Metered::new(inner))
    }

    api_tokens::conformance_tests!(metered_memory_store);
}

// The suite has teeth: a store with one fault fails it, naming the rule.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Keeps times to the second, as a careless column type would.
    DropsMicroseconds,
    /// Overwrites a revocation instead of compare-and-set.
    RevokeOverwrites,
    /// Serves credentials that never say revoked, like a stale cache.
    StaleCredentials,
    /// Revokes, rotates and updates whatever the id names, at any scope:
    /// the authorization hole scoped writes close.
    ScopeBlind,
    /// Offboards twice as many tokens a call as it is asked to.
    OffboardsPastTheLimit,
    /// Disables, enables and edits whatever the id names, at any scope
    /// (revoke and rotate are scoped): the hole in `update` alone.
    UpdateScopeBlind,
    /// Edits the expiry whatever it is now, as an update that forgot the
    /// compare-and-set would: an edit made from a stale read wins.
    EditIgnoresTheExpiry,
    /// Returns the due tokens but records no notice, as a mailer that only
    /// lists would: every run reports them again.
    NoticesNotRecorded,
}

/// The memory store with some faults.
struct Faulty(MemoryStore, Vec<Fault>);

impl Faulty {
    fn has(&self, fault: Fault) -> bool {
        self.1.contains(&fault)
    }

    /// The scope to pass on: the record's own, for a store blind to it.
    async fn scope_for(&self, blind: bool, scope: &Scope, id: TokenId) -> Scope {
        match self.0.find(id).await {
            Ok(Some(record)) if blind => record.scope,
            _ => scope.clone(),
        }
    }
}

fn faulty(faults: &[Fault]) -> impl FnMut() -> std::future::Ready<Arc<dyn TokenStore>> + use<> {
    let faults = faults.to_vec();
    move || {
        let store = Faulty(MemoryStore::new(), faults.clone());
        std::future::ready(Arc::new(store) as Arc<dyn TokenStore>)
    }
}

#[async_trait::async_trait]
impl TokenStore for Faulty {
    async fn insert(&self, mut record: TokenRecord) -> Result<(), StoreError> {
        if self.has(Fault::DropsMicroseconds) {
            record.created_at = record.created_at.replace_microsecond(0).unwrap();
        }
        self.0.insert(record).await
    }
    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.0.find(id).await
    }
    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        let mut credential = self.0.find_credential(id).await?;
        if let (true, Some(credential)) = (self.has(Fault::StaleCredentials), credential.as_mut()) {
            credential.revoked = false;
        }
        Ok(credential)
    }
    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.0.list(filter, after, limit).await
    }
    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let scope = self.scope_for(self.has(Fault::ScopeBlind), scope, id).await;
        let outcome = self.0.revoke(&scope, id, revocation).await?;
        Ok(match outcome {
            RevokeOutcome::AlreadyRevoked(_) if self.has(Fault::RevokeOverwrites) => {
                RevokeOutcome::Revoked
            }
            outcome => outcome,
        })
    }
    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        let blind = self.has(Fault::ScopeBlind) || self.has(Fault::UpdateScopeBlind);
        let scope = self.scope_for(blind, scope, id).await;
        let mut change = change.clone();
        if let TokenChange::Edit {
            expiry: Some(expiry),
            ..
        } = &mut change
            && self.has(Fault::EditIgnoresTheExpiry)
            && let Ok(Some(record)) = self.0.find(id).await
        {
            expiry.from = record.expires_at;
        }
        self.0.update(&scope, id, &change).await
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
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        let scope = self
            .scope_for(self.has(Fault::ScopeBlind), scope, old)
            .await;
        self.0.rotate(&scope, old, retire, successor).await
    }
    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        let limit = match self.has(Fault::OffboardsPastTheLimit) {
            true => limit.saturating_mul(2),
            false => limit,
        };
        self.0.revoke_created_by(creator, revocation, limit).await
    }
    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        self.0.record_uses(uses).await
    }
    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.0.list_expiring(filter, window, after, limit).await
    }
    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        self.0.purge(before, limit).await
    }
    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let claimed = self.0.claim_expiry_notices(filter, window, limit).await?;
        if self.has(Fault::NoticesNotRecorded) {
            let positions: Vec<ExpiryCursor> = claimed
                .iter()
                .filter_map(|listed| ExpiryCursor::of(listed.as_ref().ok()?))
                .collect();
            self.0
                .release_expiry_notices(window.length_secs, &positions)
                .await?;
        }
        Ok(claimed)
    }
    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        self.0.release_expiry_notices(length_secs, claimed).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a record must read back identical")]
async fn a_store_that_drops_microseconds_fails() {
    api_tokens::conformance::run(faulty(&[Fault::DropsMicroseconds])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "concurrent revokes wins")]
async fn a_store_whose_revoke_overwrites_fails() {
    api_tokens::conformance::run(faulty(&[Fault::RevokeOverwrites])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "find_credential must say what find says")]
async fn a_store_with_stale_credentials_fails() {
    api_tokens::conformance::run(faulty(&[Fault::StaleCredentials])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "addressed at organization acme is not found")]
async fn a_store_whose_writes_ignore_the_scope_fails() {
    api_tokens::conformance::run(faulty(&[Fault::ScopeBlind])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "more than the limit of 3")]
async fn a_store_that_offboards_past_the_limit_fails() {
    api_tokens::conformance::run(faulty(&[Fault::OffboardsPastTheLimit])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "an update addressed at another scope")]
async fn a_store_whose_update_ignores_the_scope_fails() {
    api_tokens::conformance::run(faulty(&[Fault::UpdateScopeBlind])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "an edit whose expiry moved is refused")]
async fn a_store_whose_edit_ignores_the_expiry_fails() {
    api_tokens::conformance::run(faulty(&[Fault::EditIgnoresTheExpiry])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a claimed token is not claimed again by the same window")]
async fn a_store_that_records_no_notice_fails() {
    api_tokens::conformance::run(faulty(&[Fault::NoticesNotRecorded])).await;
}

/// One failing check hides no other: `run` goes on, then names them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_reports_every_failing_check_not_just_the_first() {
    let faults = [Fault::DropsMicroseconds, Fault::ScopeBlind];
    let failed = tokio::spawn(api_tokens::conformance::run(faulty(&faults)))
        .await
        .expect_err("a store with two faults fails");
    let panic = failed.into_panic();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    for check in [
        "records_read_back_identical",
        "revoke_reaches_only_its_own_scope",
        "rotate_reaches_only_its_own_scope",
        "update_reaches_only_its_own_scope",
    ] {
        assert!(
            message.contains(&format!("- {check}: ")),
            "{check} is named: {message}"
        );
    }
    assert!(
        !message.contains("uses_keep_the_latest_time"),
        "checks that pass are not: {message}"
    );
    assert!(message.contains("conformance checks failed"), "{message}");
}
