//! What the integration tests share: a service over a real `MemoryStore` with
//! a manual clock, the platform's actors, and token surgery helpers.

#![allow(dead_code)] // each test binary uses a different part of this module

#[cfg(feature = "axum")]
pub mod browser;
#[cfg(feature = "axum")]
pub mod http;
pub mod logs;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub mod server;

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use api_tokens::store::{
    Cursor, ExpiryCursor, ListedRecord, NoticeWindow, Retirement, RevokeOutcome, RotateOutcome,
    ScopeFilter, ScopeRevoked, TokenChange, TokenStore, UpdateOutcome,
};
use api_tokens::testing::{ManualClock, MemoryAuditSink};
use api_tokens::{
    Actor, ActorId, DomainId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId,
    Revocation, Role, Scope, StoreError, StoredCredential, TokenFormat, TokenId, TokenRecord,
    TokenService, VerifyError,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub const START: OffsetDateTime = datetime!(2030-01-01 09:00 UTC);
pub const PREFIX: &str = "acme";

// Spans for the tests, built with `from_secs`: `Duration::from_mins` and
// `from_hours` are newer than the crate's minimum Rust version.
pub const SECOND: Duration = Duration::from_secs(1);
pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(60 * 60);
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

pub struct Fixture {
    pub service: TokenService,
    pub store: Arc<CountingStore>,
    pub clock: ManualClock,
    /// Every audit event the service sent.
    pub audit: Arc<MemoryAuditSink>,
}

/// A service with prefix `acme`, one key, a counting memory store, and a
/// manual clock at [`START`].
pub fn fixture() -> Fixture {
    fixture_with_keys(Keyring::new(KeyId::new(1), key(1)))
}

/// A service with prefix `acme` and key 1 over `store`, with the real
/// clock: instances of one service sharing a store, as the SQL store and
/// replica tests run them.
pub fn service_over(store: Arc<dyn TokenStore>) -> TokenService {
    TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        store,
    )
}

pub fn fixture_with_keys(keys: Keyring) -> Fixture {
    let store = Arc::new(CountingStore::default());
    let clock = ManualClock::new(START);
    let audit = Arc::new(MemoryAuditSink::new());
    let service = TokenService::new(TokenFormat::new(PREFIX).unwrap(), keys, store.clone())
        .with_clock(Arc::new(clock.clone()))
        .with_audit_sink(audit.clone());
    Fixture {
        service,
        store,
        clock,
        audit,
    }
}

impl Fixture {
    /// Every audit event so far, once the service's queue has delivered
    /// them all.
    pub async fn audit_events(&self) -> Vec<api_tokens::AuditEvent> {
        self.service.flush_audit().await;
        self.audit.events()
    }

    /// Issues a token at `scope` as an admin of its organization; returns the
    /// token text and its id.
    pub async fn issue_at(&self, scope: Scope, label: &str) -> (String, TokenId) {
        let admin = org_admin(scope.org().as_str());
        let issued = self
            .service
            .issue(&admin, api_tokens::IssueRequest::new(scope, label))
            .await
            .unwrap();
        (issued.token.expose_secret().to_owned(), issued.summary.id)
    }
}

/// A real token of another service, whose tokens start with `prefix`.
pub async fn other_service_token(prefix: &str) -> String {
    let service = TokenService::new(
        TokenFormat::new(prefix).unwrap(),
        Keyring::new(KeyId::new(1), key(9)),
        Arc::new(MemoryStore::new()),
    );
    let issued = service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), "x"))
        .await
        .unwrap();
    issued.token.expose_secret().to_owned()
}

/// A deterministic key, so tests can build the same key twice.
pub fn key(seed: u8) -> HashKey {
    HashKey::from_bytes(&[seed; 32])
}

pub fn org(id: &str) -> Scope {
    Scope::organization(OrganizationId::new(id).unwrap())
}

pub fn domain(org: &str, domain: &str) -> Scope {
    Scope::domain(
        OrganizationId::new(org).unwrap(),
        DomainId::new(domain).unwrap(),
    )
}

pub fn actor(id: &str, grants: &[(Scope, Role)]) -> Actor {
    grants.iter().fold(
        Actor::new(ActorId::new(id).unwrap()),
        |actor, (scope, role)| actor.with_grant(scope.clone(), *role),
    )
}

pub fn org_admin(org_id: &str) -> Actor {
    actor(&format!("admin-of-{org_id}"), &[(org(org_id), Role::Admin)])
}

pub fn domain_admin(org_id: &str, domain_id: &str) -> Actor {
    actor(
        &format!("admin-of-{org_id}-{domain_id}"),
        &[(domain(org_id, domain_id), Role::Admin)],
    )
}

/// The token's body (all but the checksum) with a fresh, valid checksum:
/// CRC32 of the body as 6 base62 digits, written here independently of the
/// crate from the format's description.
pub fn with_checksum(body: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut crc = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [0u8; 6];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&digits).unwrap())
}

/// `token` with the byte at `position` replaced and the checksum recomputed:
/// it passes every format check, but is another token.
pub fn altered(token: &str, position: usize, replacement: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    assert_ne!(
        bytes[position], replacement,
        "alter to a different character"
    );
    bytes[position] = replacement;
    let body = String::from_utf8(bytes[..bytes.len() - 6].to_vec()).unwrap();
    with_checksum(&body)
}

/// A base62 character other than `c`.
pub fn other_than(c: u8) -> u8 {
    if c == b'A' { b'B' } else { b'A' }
}

/// The labels of the tokens [`issue_rows_to_damage`] issues, one for each
/// way a SQL store's test damages a row.
pub const DAMAGED_LABELS: [&str; 6] = [
    "short digest",
    "unknown kind",
    "bad permission",
    "bad network",
    "bad rate limit",
    "half disabled",
];

/// Issues a token of organization `acme` for each of [`DAMAGED_LABELS`],
/// for a SQL store's test to damage those rows in its own dialect; returns
/// each token with its id.
pub async fn issue_rows_to_damage(service: &TokenService) -> Vec<(String, TokenId)> {
    let mut tokens = Vec::new();
    for label in DAMAGED_LABELS {
        let issued = service
            .issue(&org_admin("acme"), IssueRequest::new(org("acme"), label))
            .await
            .unwrap();
        tokens.push((issued.token.expose_secret().to_owned(), issued.summary.id));
    }
    tokens
}

/// Asserts each damaged token is reported as `StoreError::Corrupt` naming
/// it, by verification and by both lookups: never trusted as a token.
pub async fn assert_damaged_rows_are_corrupt(
    service: &TokenService,
    store: &dyn TokenStore,
    tokens: &[(String, TokenId)],
) {
    for (token, id) in tokens {
        let named = |error: &StoreError| matches!(error, StoreError::Corrupt { id: Some(named), .. } if named == id);
        match service.verify(token).await {
            Err(VerifyError::Store(error)) => assert!(named(&error), "{error:?}"),
            other => panic!("a corrupt row must not verify: {other:?}"),
        }
        assert!(named(&store.find(*id).await.unwrap_err()));
        assert!(named(&store.find_credential(*id).await.unwrap_err()));
    }
    // Lists that read the damaged rows' organization report each in its
    // place, with its id, among the valid ones: never a token, never hiding
    // the rest.
    for filter in [ScopeFilter::Covered(org("acme")), ScopeFilter::All] {
        let listed = store.list(&filter, None, 100).await.unwrap();
        for (_, id) in tokens {
            let damaged = listed.iter().filter_map(|entry| entry.as_ref().err());
            assert!(
                damaged.filter(|damaged| damaged.id == Some(*id)).count() == 1,
                "{filter:?} reports damaged token {id} once: {listed:?}"
            );
        }
        let created: Vec<_> = listed
            .iter()
            .map(|entry| match entry {
                Ok(record) => record.created_at,
                Err(damaged) => damaged.created_at.expect("its creation time reads"),
            })
            .collect();
        assert!(
            created.is_sorted_by(|a, b| a >= b),
            "{filter:?} keeps damaged rows in their place, newest first"
        );
    }
}

/// Byte offsets in a token with the `acme` prefix.
pub const KIND_AT: usize = 4;
pub const ID_AT: usize = 6;
pub const SECRET_AT: usize = 17;
pub const CHECKSUM_AT: usize = 60;
pub const TOKEN_LEN: usize = 66;

/// A real `MemoryStore` that also counts how often each method is called, so
/// tests can prove which operations reach the store. It can also play another
/// writer that takes the drawn id first (see [`CountingStore::take_ids_first`]).
#[derive(Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    finds: AtomicUsize,
    inserts: AtomicUsize,
    revokes: AtomicUsize,
    uses: AtomicUsize,
    fail_next_use_write: AtomicBool,
    /// When set, `record_uses` says it started, then waits to be released.
    use_write_gate: std::sync::Mutex<Option<UseWriteGate>>,
    ids_taken_first: AtomicUsize,
    /// When set, `revoke` lets this many more calls through, then fails
    /// one as an outage (without revoking) and is cleared.
    revokes_before_outage: std::sync::Mutex<Option<usize>>,
    /// When set, `find` (not `find_credential`) waits for a permit: a
    /// store whose record reads are slow.
    find_gate: std::sync::Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl CountingStore {
    /// From now on each `find` waits for a permit of the returned
    /// semaphore (which starts with none).
    pub fn hold_finds(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *self.find_gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// For the next `inserts` inserts, the same record is stored just before
    /// the insert runs, so that insert meets a real duplicate in the real store.
    pub fn take_ids_first(&self, inserts: usize) {
        self.ids_taken_first.store(inserts, Ordering::SeqCst);
    }

    /// After `calls` more revokes, the next one fails as an outage
    /// without revoking anything.
    pub fn fail_revokes_after(&self, calls: usize) {
        *self.revokes_before_outage.lock().unwrap() = Some(calls);
    }

    pub fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }

    /// The next `record_uses` waits inside the store until released: to
    /// see what happens while a flush is writing.
    pub fn hold_next_use_write(&self) -> UseWriteGate {
        let gate = UseWriteGate::default();
        *self.use_write_gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// The next `record_uses` to go on (a held one once released) fails as
    /// an outage.
    pub fn fail_next_use_write(&self) {
        self.fail_next_use_write.store(true, Ordering::SeqCst);
    }

    /// How many times uses were written (one call per flush).
    pub fn use_writes(&self) -> usize {
        self.uses.load(Ordering::SeqCst)
    }

    /// The stored record with `id`, which must exist.
    pub async fn record(&self, id: TokenId) -> TokenRecord {
        let found = self.inner.find(id).await.unwrap();
        found.expect("the record exists")
    }

    /// Every call of any method so far.
    pub fn calls(&self) -> usize {
        self.finds() + self.inserts.load(Ordering::SeqCst) + self.revokes.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenStore for CountingStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        let take_first = self
            .ids_taken_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if take_first {
            self.inner.insert(record.clone()).await?;
        }
        self.inner.insert(record).await
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        let gate = self.find_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        self.inner.find(id).await
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find_credential(id).await
    }

    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.inner.list(filter, after, limit).await
    }

    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        self.revokes.fetch_add(1, Ordering::SeqCst);
        {
            let mut countdown = self.revokes_before_outage.lock().unwrap();
            match *countdown {
                Some(0) => {
                    *countdown = None;
                    return Err(outage());
                }
                Some(calls) => *countdown = Some(calls - 1),
                None => {}
            }
        }
        self.inner.revoke(scope, id, revocation).await
    }

    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        self.revokes.fetch_add(1, Ordering::SeqCst);
        self.inner.update(scope, id, change).await
    }

    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        self.revokes.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke_scope(scope, revocation).await
    }

    async fn rotate(
        &self,
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        self.inner.rotate(scope, old, retire, successor).await
    }

    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        self.revokes.fetch_add(1, Ordering::SeqCst);
        self.inner
            .revoke_created_by(creator, revocation, limit)
            .await
    }

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        let gate = self.use_write_gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.entered.notify_one();
            gate.release.notified().await;
        }
        // Checked once released, so a held write can be made to fail too.
        if self.fail_next_use_write.swap(false, Ordering::SeqCst) {
            return Err(outage());
        }
        self.uses.fetch_add(1, Ordering::SeqCst);
        self.inner.record_uses(uses).await
    }

    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.inner.list_expiring(filter, window, after, limit).await
    }

    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        self.inner.purge(before, limit).await
    }

    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        self.inner.claim_expiry_notices(filter, window, limit).await
    }

    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        self.inner
            .release_expiry_notices(length_secs, claimed)
            .await
    }
}

/// Holds a `record_uses` call inside the store (see
/// [`CountingStore::hold_next_use_write`]).
#[derive(Clone, Default)]
pub struct UseWriteGate {
    /// Notified once the write has started.
    pub entered: Arc<tokio::sync::Notify>,
    /// Notify to let the write go on.
    pub release: Arc<tokio::sync::Notify>,
}

/// A store whose backend is down: what a network store returns during an
/// outage. (The real outage, against a real server, is the PostgreSQL
/// backend's to test.)
pub struct Unreachable;

pub fn outage() -> StoreError {
    StoreError::Unavailable {
        source: Box::new(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "connection refused",
        )),
    }
}

#[async_trait::async_trait]
impl TokenStore for Unreachable {
    async fn insert(&self, _: TokenRecord) -> Result<(), StoreError> {
        Err(outage())
    }
    async fn find(&self, _: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        Err(outage())
    }
    async fn find_credential(&self, _: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        Err(outage())
    }
    async fn list(
        &self,
        _: &ScopeFilter,
        _: Option<Cursor>,
        _: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        Err(outage())
    }
    async fn revoke(
        &self,
        _: &Scope,
        _: TokenId,
        _: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        Err(outage())
    }
    async fn revoke_scope(&self, _: &Scope, _: Revocation) -> Result<ScopeRevoked, StoreError> {
        Err(outage())
    }
    async fn update(
        &self,
        _: &Scope,
        _: TokenId,
        _: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        Err(outage())
    }
    async fn rotate(
        &self,
        _: &Scope,
        _: TokenId,
        _: Retirement,
        _: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        Err(outage())
    }
    async fn revoke_created_by(
        &self,
        _: &ActorId,
        _: Revocation,
        _: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        Err(outage())
    }
    async fn record_uses(&self, _: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        Err(outage())
    }
    async fn list_expiring(
        &self,
        _: &ScopeFilter,
        _: Range<OffsetDateTime>,
        _: Option<ExpiryCursor>,
        _: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        Err(outage())
    }
    async fn purge(&self, _: OffsetDateTime, _: usize) -> Result<u64, StoreError> {
        Err(outage())
    }
    async fn claim_expiry_notices(
        &self,
        _: &ScopeFilter,
        _: NoticeWindow,
        _: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        Err(outage())
    }
    async fn release_expiry_notices(&self, _: u32, _: &[ExpiryCursor]) -> Result<(), StoreError> {
        Err(outage())
    }
}
