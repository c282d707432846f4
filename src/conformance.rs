//! The [`TokenStore`] contract as a test suite (feature `conformance`).
//!
//! Every store this crate ships runs it, and so should yours: one call runs
//! every check, each against a fresh, empty store from your factory, and
//! panics with the check's name and what went wrong at the first failure.
//!
//! ```no_run
//! use std::sync::Arc;
//! use api_tokens::{MemoryStore, TokenStore};
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_store_keeps_the_contract() {
//!     api_tokens::conformance::run(|| async {
//!         Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>
//!     })
//!     .await;
//! }
//! ```
//!
//! It must run inside a multi-threaded tokio runtime: the atomicity checks
//! race operations from spawned tasks. A store that shares one database
//! between factory calls must hand out a store that starts empty each time
//! (a fresh schema, say).
//!
//! The checks, and what a user relies on in each:
//!
//! - a record reads back identical, every field, to the microsecond, with
//!   any label; `find_credential` agrees with `find`;
//! - inserting a taken id fails as a conflict and changes nothing;
//! - unknown ids are `None`, `NotFound`, or skipped, never an error;
//! - a list holds exactly its scope, newest first, and paging by cursor
//!   neither loses nor repeats a record, even while records are inserted;
//! - revoking is a compare-and-set: of many concurrent revokes one wins and
//!   its revocation is the one kept;
//! - revoked and expired records come back as stored;
//! - uses keep the latest time; rotation inserts, links and retires in one
//!   step, once, and takes turns with scope revocation (no successor escapes
//!   it); scope revocation covers an organization's domains and keeps
//!   earlier revocations, is honoured by every read, revoke and rotate,
//!   spares tokens issued after it, and reports what it revoked (a count,
//!   and at most `REPORTED_IDS` ids); `list_expiring` holds the scope's
//!   live tokens in the window that no rotation replaced, soonest first,
//!   and pages; `purge` deletes exactly what ended before the cutoff, in
//!   steps no larger than asked.

use std::future::Future;
use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::actor::Role;
use crate::error::StoreError;
use crate::hashing::{Digest, KeyId};
use crate::ids::{ActorId, DomainId, OrganizationId};
use crate::label::Label;
use crate::record::{Revocation, TokenRecord};
use crate::scope::Scope;
use crate::store::{
    Cursor, ExpiryCursor, REPORTED_IDS, Retirement, RevokeOutcome, RotateOutcome, ScopeRevoked,
    TokenStore,
};
use crate::token::{TokenId, fill_random};

/// A time with microseconds, which every store must keep.
const T0: OffsetDateTime = datetime!(2030-01-01 09:00:00.123456 UTC);

/// How many concurrent calls race in the atomicity checks.
const RACERS: usize = 16;

/// Runs every check of the contract, each on a fresh store from
/// `make_store`. Panics, naming the check, at the first failure.
pub async fn run<F, Fut>(mut make_store: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn TokenStore>>,
{
    check(
        "records read back identical",
        records_read_back_identical(make_store().await),
    )
    .await;
    check(
        "credentials agree with records",
        credentials_agree_with_records(make_store().await),
    )
    .await;
    check(
        "a taken id is a conflict",
        a_taken_id_is_a_conflict(make_store().await),
    )
    .await;
    check(
        "unknown ids are absent",
        unknown_ids_are_absent(make_store().await),
    )
    .await;
    check(
        "lists hold one scope, newest first",
        lists_hold_one_scope(make_store().await),
    )
    .await;
    check(
        "paging loses and repeats nothing",
        paging_loses_and_repeats_nothing(make_store().await),
    )
    .await;
    check(
        "revoke is a compare-and-set",
        revoke_is_a_compare_and_set(make_store().await),
    )
    .await;
    check(
        "records come back raw",
        records_come_back_raw(make_store().await),
    )
    .await;
    check(
        "uses keep the latest time",
        uses_keep_the_latest_time(make_store().await),
    )
    .await;
    check(
        "rotation is one step, once",
        rotation_is_one_step_once(make_store().await),
    )
    .await;
    check(
        "rotation refuses and changes nothing",
        rotation_refuses(make_store().await),
    )
    .await;
    check(
        "scope revocation covers domains",
        scope_revocation(make_store().await),
    )
    .await;
    check(
        "scope revocation and rotation take turns",
        scope_revocation_races_rotation(make_store().await),
    )
    .await;
    check(
        "scope revocation reports a bounded sample",
        scope_revocation_reports_a_bounded_sample(make_store().await),
    )
    .await;
    check(
        "purge deletes what ended before the cutoff",
        purge_deletes_what_ended_before_the_cutoff(make_store().await),
    )
    .await;
    check(
        "expiring lists the window",
        expiring_lists_the_window(make_store().await),
    )
    .await;
}

async fn check(name: &str, outcome: impl Future<Output = Result<(), StoreError>>) {
    if let Err(error) = outcome.await {
        panic!("conformance check `{name}`: the store failed: {error:?}");
    }
}

fn org(name: &str) -> Scope {
    Scope::organization(OrganizationId::new(name).expect("a valid id"))
}

fn domain(org: &str, domain: &str) -> Scope {
    Scope::domain(
        OrganizationId::new(org).expect("a valid id"),
        DomainId::new(domain).expect("a valid id"),
    )
}

fn actor(name: &str) -> ActorId {
    ActorId::new(name).expect("a valid id")
}

fn random_id() -> TokenId {
    let mut bytes = [0; 8];
    fill_random(&mut bytes).expect("the OS random source");
    TokenId::from_bits(u64::from_le_bytes(bytes))
}

/// A live record of `scope`, created at `created_at`, with every optional
/// field empty.
fn record(scope: Scope, created_at: OffsetDateTime) -> TokenRecord {
    let id = random_id();
    let mut digest = [0; 32];
    fill_random(&mut digest).expect("the OS random source");
    TokenRecord {
        id,
        scope,
        role: Role::Editor,
        label: Label::new("deploys").expect("a valid label"),
        key_id: KeyId::new(7),
        digest: Digest::from_bytes(digest),
        created_at,
        created_by: actor("alice"),
        expires_at: None,
        revoked: None,
        last_used_at: None,
        rotated_from: None,
        replaced_by: None,
    }
}

fn revocation(by: &str, at: OffsetDateTime) -> Revocation {
    Revocation {
        at,
        by: actor(by),
        reason: Some(Label::new("no longer needed").expect("a valid label")),
    }
}

/// A list's records; a damaged entry fails the check (the suite stores
/// only valid records).
async fn listed(
    store: &dyn TokenStore,
    scope: &Scope,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<TokenRecord>, StoreError> {
    let entries = store.list(scope, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|entry| entry.unwrap_or_else(|damaged| panic!("a valid record listed as {damaged:?}")))
        .collect())
}

async fn found(store: &dyn TokenStore, id: TokenId) -> Result<TokenRecord, StoreError> {
    Ok(store
        .find(id)
        .await?
        .unwrap_or_else(|| panic!("record {id} is missing")))
}

/// Records with every field set, odd labels and microsecond times.
fn varied_records() -> Vec<TokenRecord> {
    let mut full = record(domain("acme", "shop"), T0);
    full.role = Role::Owner;
    full.label = Label::new("Déploiement 🚀 中文 עברית \"quoted\" 'x' %_\\").expect("valid");
    full.expires_at = Some(T0 + Duration::days(90) + Duration::microseconds(7));
    full.revoked = Some(revocation("bob", T0 + Duration::microseconds(1)));
    full.last_used_at = Some(T0 + Duration::seconds(59) + Duration::microseconds(999_999));
    full.rotated_from = Some(random_id());
    full.replaced_by = Some(random_id());
    let mut bare = record(org("acme"), T0 - Duration::days(400));
    bare.revoked = Some(Revocation {
        at: T0,
        by: actor("carol"),
        reason: None,
    });
    vec![full, bare, record(org("x"), T0)]
}

async fn records_read_back_identical(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    for record in varied_records() {
        store.insert(record.clone()).await?;
        let back = found(&*store, record.id).await?;
        assert!(
            back == record,
            "a record must read back identical:\n{record:?}\n{back:?}"
        );
    }
    Ok(())
}

async fn credentials_agree_with_records(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let mut records = varied_records();
    let mut expired = record(org("acme"), T0);
    expired.expires_at = Some(T0 - Duration::days(1));
    records.push(expired);
    for record in &records {
        store.insert(record.clone()).await?;
    }
    store.revoke(records[2].id, revocation("dave", T0)).await?;
    store
        .record_uses(&[(records[3].id, T0 + Duration::hours(1))])
        .await?;
    for record in &records {
        let back = found(&*store, record.id).await?;
        let credential = store.find_credential(record.id).await?;
        assert!(
            credential.as_ref() == Some(&back.credential()),
            "find_credential must say what find says: {credential:?} for {back:?}"
        );
    }
    Ok(())
}

async fn a_taken_id_is_a_conflict(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let original = record(org("acme"), T0);
    store.insert(original.clone()).await?;
    let mut impostor = record(org("globex"), T0 + Duration::hours(1));
    impostor.id = original.id;
    match store.insert(impostor).await {
        Err(StoreError::AlreadyExists { id }) => {
            assert!(id == original.id, "the conflict must name the id")
        }
        other => panic!("inserting a taken id must fail as AlreadyExists, not {other:?}"),
    }
    assert!(
        found(&*store, original.id).await? == original,
        "a failed insert must change nothing"
    );
    assert!(
        listed(&*store, &org("globex"), None, 10).await?.is_empty(),
        "a failed insert must not be listed"
    );
    Ok(())
}

async fn unknown_ids_are_absent(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    store.insert(record(org("acme"), T0)).await?;
    let unknown = random_id();
    assert!(
        store.find(unknown).await?.is_none(),
        "find of an unknown id is None"
    );
    assert!(
        store.find_credential(unknown).await?.is_none(),
        "find_credential of an unknown id is None"
    );
    assert!(
        store.revoke(unknown, revocation("x", T0)).await? == RevokeOutcome::NotFound,
        "revoke of an unknown id says NotFound"
    );
    let successor = record(org("acme"), T0);
    let successor_id = successor.id;
    assert!(
        store
            .rotate(unknown, Retirement::ExpiresAt(T0), successor)
            .await?
            == RotateOutcome::NotFound,
        "rotate of an unknown id says NotFound"
    );
    assert!(
        store.find(successor_id).await?.is_none(),
        "a refused rotation stores no successor"
    );
    store.record_uses(&[(unknown, T0)]).await?;
    Ok(())
}

async fn lists_hold_one_scope(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let mut expected = Vec::new();
    for minutes in [3, 1, 2] {
        let record = record(org("acme"), T0 + Duration::minutes(minutes));
        store.insert(record.clone()).await?;
        expected.push(record);
    }
    // Records in one instant: the id breaks the tie, in the ids' own
    // (unsigned) order, so ids on either side of the top bit must sort right.
    for bits in [1, u64::MAX, 1 << 63, (1 << 63) - 1] {
        let mut twin = record(org("acme"), T0 + Duration::minutes(2));
        twin.id = TokenId::from_bits(bits);
        store.insert(twin.clone()).await?;
        expected.push(twin);
    }
    for other in [
        domain("acme", "shop"),
        org("globex"),
        domain("globex", "acme"),
    ] {
        store.insert(record(other, T0)).await?;
    }
    expected.sort_by_key(|record| std::cmp::Reverse(Cursor::of(record)));

    let all = listed(&*store, &org("acme"), None, 100).await?;
    assert!(
        all == expected,
        "a list holds exactly its scope (not its domains), newest first by (created_at, id)"
    );
    let shop = store.list(&domain("acme", "shop"), None, 100).await?;
    assert!(
        shop.len() == 1,
        "a domain's list holds its own records only"
    );
    assert!(
        listed(&*store, &org("acme"), None, 2).await? == expected[..2],
        "a list holds at most `limit` records"
    );
    Ok(())
}

async fn paging_loses_and_repeats_nothing(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let mut inserted = Vec::new();
    for seconds in 0..25 {
        // Some share an instant, so the id must break ties.
        let record = record(org("acme"), T0 + Duration::seconds(seconds / 2));
        store.insert(record.clone()).await?;
        inserted.push(record.id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    let mut newer = 0;
    loop {
        let page = listed(&*store, &org("acme"), after, 4).await?;
        // Others keep issuing tokens while the list is paged through.
        newer += 1;
        store
            .insert(record(org("acme"), T0 + Duration::hours(newer)))
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor::of(last));
        seen.extend(page.iter().map(|record| record.id));
    }
    inserted.sort();
    seen.sort();
    assert!(
        seen == inserted,
        "paging must return every record present at the start exactly once"
    );
    Ok(())
}

async fn revoke_is_a_compare_and_set(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let target = record(org("acme"), T0);
    store.insert(target.clone()).await?;
    let racers: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            let revocation = revocation(&format!("racer{n}"), T0 + Duration::seconds(n as i64));
            tokio::spawn(async move {
                let outcome = store.revoke(target.id, revocation.clone()).await;
                (revocation, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for racer in racers {
        let (revocation, outcome) = racer.await.expect("a racing task panicked");
        match outcome? {
            RevokeOutcome::Revoked => winners.push(revocation),
            RevokeOutcome::AlreadyRevoked(kept) => losers.push(kept),
            RevokeOutcome::NotFound => panic!("revoke lost a stored record"),
        }
    }
    assert!(
        winners.len() == 1,
        "exactly one of {RACERS} concurrent revokes wins, not {}",
        winners.len()
    );
    let stored = found(&*store, target.id).await?.revoked;
    assert!(
        stored.as_ref() == Some(&winners[0]),
        "the winner's revocation is the one kept"
    );
    assert!(
        losers.iter().all(|kept| Some(kept) == stored.as_ref()),
        "the others are told the kept revocation"
    );
    Ok(())
}

async fn records_come_back_raw(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let mut expired = record(org("acme"), T0 - Duration::days(10));
    expired.expires_at = Some(T0 - Duration::days(1));
    let revoked = record(org("acme"), T0);
    for record in [&expired, &revoked] {
        store.insert(record.clone()).await?;
    }
    store.revoke(revoked.id, revocation("bob", T0)).await?;
    assert!(
        found(&*store, expired.id).await? == expired,
        "an expired record is returned as stored: the service decides validity"
    );
    let back = found(&*store, revoked.id).await?;
    assert!(
        back.revoked.is_some(),
        "a revoked record is returned, revoked"
    );
    assert!(
        listed(&*store, &org("acme"), None, 10).await?.len() == 2,
        "lists include revoked and expired records"
    );
    Ok(())
}

async fn uses_keep_the_latest_time(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let (a, b) = (record(org("acme"), T0), record(org("acme"), T0));
    store.insert(a.clone()).await?;
    store.insert(b.clone()).await?;
    let later = T0 + Duration::minutes(5) + Duration::microseconds(3);
    // An id twice in one batch keeps its later time, whichever comes first.
    store
        .record_uses(&[(a.id, later), (b.id, T0), (random_id(), T0), (a.id, T0)])
        .await?;
    store
        .record_uses(&[(a.id, T0 + Duration::minutes(1))])
        .await?;
    assert!(
        found(&*store, a.id).await?.last_used_at == Some(later),
        "an earlier use never overwrites a later one"
    );
    assert!(
        found(&*store, b.id).await?.last_used_at == Some(T0),
        "each use is kept"
    );
    Ok(())
}

async fn rotation_is_one_step_once(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let old = record(domain("acme", "shop"), T0);
    store.insert(old.clone()).await?;
    let grace_end = T0 + Duration::hours(24);
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let mut successor = record(old.scope.clone(), T0 + Duration::seconds(1));
            successor.rotated_from = Some(old.id);
            tokio::spawn(async move {
                let id = successor.id;
                let outcome = store
                    .rotate(old.id, Retirement::ExpiresAt(grace_end), successor)
                    .await;
                (id, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for racer in racers {
        let (id, outcome) = racer.await.expect("a racing task panicked");
        match outcome? {
            RotateOutcome::Rotated => winners.push(id),
            RotateOutcome::AlreadyReplaced(by) => losers.push((id, by)),
            other => panic!("a concurrent rotation said {other:?}"),
        }
    }
    assert!(
        winners.len() == 1,
        "exactly one of {RACERS} concurrent rotations wins: no fork"
    );
    let successor = winners[0];
    let retired = found(&*store, old.id).await?;
    assert!(
        retired.replaced_by == Some(successor),
        "the old record names its successor"
    );
    assert!(
        retired.expires_at == Some(grace_end),
        "the old record expires when its grace ends"
    );
    assert!(
        retired.revoked.is_none(),
        "a rotation with grace does not revoke"
    );
    let new = found(&*store, successor).await?;
    assert!(
        new.rotated_from == Some(old.id),
        "the successor names what it replaced"
    );
    for (id, by) in losers {
        assert!(by == successor, "losers are told the winner");
        assert!(
            store.find(id).await?.is_none(),
            "a losing successor is not stored"
        );
    }
    assert!(
        store.list(&domain("acme", "shop"), None, 100).await?.len() == 2,
        "the old record and one successor are listed"
    );

    // Without grace: retired by revocation, in the same step.
    let mut next = record(new.scope.clone(), T0 + Duration::seconds(2));
    next.rotated_from = Some(successor);
    let revoked = revocation("alice", T0 + Duration::seconds(2));
    let outcome = store
        .rotate(
            successor,
            Retirement::Revoked(revoked.clone()),
            next.clone(),
        )
        .await?;
    assert!(outcome == RotateOutcome::Rotated, "a live record rotates");
    let retired = found(&*store, successor).await?;
    assert!(
        retired.revoked == Some(revoked),
        "a rotation without grace revokes"
    );
    assert!(retired.replaced_by == Some(next.id), "and links");
    Ok(())
}

async fn rotation_refuses(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let revoked = record(org("acme"), T0);
    let live = record(org("acme"), T0);
    let bystander = record(org("acme"), T0);
    for record in [&revoked, &live, &bystander] {
        store.insert(record.clone()).await?;
    }
    store.revoke(revoked.id, revocation("bob", T0)).await?;
    let before = found(&*store, revoked.id).await?;
    let successor = record(org("acme"), T0);
    let successor_id = successor.id;
    assert!(
        store
            .rotate(revoked.id, Retirement::ExpiresAt(T0), successor)
            .await?
            == RotateOutcome::Revoked,
        "a revoked record is not rotated"
    );
    assert!(
        found(&*store, revoked.id).await? == before,
        "and is left as it was"
    );
    assert!(
        store.find(successor_id).await?.is_none(),
        "and no successor is stored"
    );

    // A successor whose id is taken: a conflict, and nothing changes.
    let mut clash = record(org("acme"), T0);
    clash.id = bystander.id;
    match store
        .rotate(live.id, Retirement::ExpiresAt(T0), clash)
        .await
    {
        Err(StoreError::AlreadyExists { id }) => assert!(id == bystander.id, "naming the id"),
        other => panic!("a taken successor id must fail as AlreadyExists, not {other:?}"),
    }
    assert!(
        found(&*store, live.id).await? == live,
        "the old record is untouched"
    );
    assert!(
        found(&*store, bystander.id).await? == bystander,
        "the holder is untouched"
    );
    Ok(())
}

async fn scope_revocation(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let acme = record(org("acme"), T0);
    let shop = record(domain("acme", "shop"), T0);
    let earlier = record(domain("acme", "blog"), T0);
    let globex = record(org("globex"), T0);
    let globex_shop = record(domain("globex", "shop"), T0);
    for record in [&acme, &shop, &earlier, &globex, &globex_shop] {
        store.insert(record.clone()).await?;
    }
    let first = revocation("bob", T0);
    store.revoke(earlier.id, first.clone()).await?;
    let offboarding = revocation("alice", T0 + Duration::hours(1));
    let mut revoked = store
        .revoke_scope(&org("acme"), offboarding.clone())
        .await?;
    revoked.first.sort();
    let mut expected = vec![acme.id, shop.id];
    expected.sort();
    assert!(
        revoked.count == 2 && revoked.first == expected,
        "an organization's revocation says exactly what it revoked: {revoked:?}"
    );
    for id in [acme.id, shop.id] {
        assert!(
            found(&*store, id).await?.revoked == Some(offboarding.clone()),
            "an organization's tokens and its domains' are revoked"
        );
        let credential = store.find_credential(id).await?;
        assert!(
            credential.is_some_and(|credential| credential.revoked),
            "verification sees the scope's revocation"
        );
    }
    assert!(
        found(&*store, earlier.id).await?.revoked == Some(first),
        "an earlier revocation is kept"
    );
    assert!(
        store
            .revoke(acme.id, revocation("carol", T0 + Duration::hours(2)))
            .await?
            == RevokeOutcome::AlreadyRevoked(offboarding.clone()),
        "revoking a token of a revoked scope says it was revoked, by the scope"
    );
    let successor = record(domain("acme", "shop"), T0 + Duration::hours(2));
    assert!(
        store
            .rotate(
                shop.id,
                Retirement::ExpiresAt(T0 + Duration::days(1)),
                successor
            )
            .await?
            == RotateOutcome::Revoked,
        "a token of a revoked scope cannot be rotated"
    );
    for id in [globex.id, globex_shop.id] {
        assert!(
            found(&*store, id).await?.revoked.is_none(),
            "other tenants are untouched"
        );
    }
    let later = record(domain("acme", "shop"), T0 + Duration::hours(3));
    store.insert(later.clone()).await?;
    assert!(
        found(&*store, later.id).await?.revoked.is_none(),
        "a token issued after the revocation is live"
    );
    let again = store
        .revoke_scope(&domain("globex", "shop"), offboarding.clone())
        .await?;
    assert!(
        again.count == 1 && again.first == [globex_shop.id],
        "a domain's revocation takes that domain only: {again:?}"
    );
    assert!(
        found(&*store, globex.id).await?.revoked.is_none(),
        "and not its organization"
    );
    let nothing = store.revoke_scope(&org("nobody"), offboarding).await?;
    assert!(
        nothing == ScopeRevoked::default(),
        "a scope without tokens revokes nothing: {nothing:?}"
    );
    Ok(())
}

async fn scope_revocation_reports_a_bounded_sample(
    store: Arc<dyn TokenStore>,
) -> Result<(), StoreError> {
    let many = REPORTED_IDS + 5;
    let mut ids = Vec::new();
    for n in 0..many {
        let record = record(domain("acme", "shop"), T0 + Duration::seconds(n as i64));
        ids.push(record.id);
        store.insert(record).await?;
    }
    let revoked = store
        .revoke_scope(
            &domain("acme", "shop"),
            revocation("alice", T0 + Duration::hours(1)),
        )
        .await?;
    assert!(
        revoked.count == many as u64,
        "the count covers every token revoked: {} of {many}",
        revoked.count
    );
    assert!(
        revoked.first.len() == REPORTED_IDS && revoked.first.iter().all(|id| ids.contains(id)),
        "at most REPORTED_IDS ids, each one revoked"
    );
    let again = store
        .revoke_scope(&org("acme"), revocation("alice", T0 + Duration::hours(2)))
        .await?;
    assert!(
        again.count == 0,
        "tokens revoked by an earlier scope revocation are not counted again"
    );
    Ok(())
}

async fn scope_revocation_races_rotation(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let olds: Vec<TokenRecord> = (0..RACERS).map(|_| record(org("acme"), T0)).collect();
    for old in &olds {
        store.insert(old.clone()).await?;
    }
    let rotations: Vec<_> = olds
        .iter()
        .map(|old| {
            let store = store.clone();
            let mut successor = record(old.scope.clone(), T0 + Duration::seconds(1));
            successor.rotated_from = Some(old.id);
            let old = old.id;
            tokio::spawn(async move {
                store
                    .rotate(
                        old,
                        Retirement::ExpiresAt(T0 + Duration::hours(1)),
                        successor,
                    )
                    .await
            })
        })
        .collect();
    let revoking = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .revoke_scope(&org("acme"), revocation("alice", T0 + Duration::seconds(2)))
                .await
        })
    };
    for rotation in rotations {
        rotation.await.expect("a racing task panicked")?;
    }
    revoking.await.expect("a racing task panicked")?;
    // Each rotation came before the revocation (its successor revoked with
    // the rest) or after it (refused: the old token was revoked). Never a
    // revoked old token with a live successor.
    for record in listed(&*store, &org("acme"), None, 1000).await? {
        assert!(
            record.revoked.is_some(),
            "a token of a revoked organization is live: {record:?}"
        );
    }
    Ok(())
}

async fn expiring_lists_the_window(store: Arc<dyn TokenStore>) -> Result<(), StoreError> {
    let expiring = |days: i64| {
        let mut record = record(org("acme"), T0);
        record.expires_at = Some(T0 + Duration::days(days));
        record
    };
    let (in_two, in_five, at_end, later) = (expiring(2), expiring(5), expiring(7), expiring(30));
    let revoked = expiring(3);
    let mut replaced = expiring(4);
    replaced.replaced_by = Some(random_id());
    let mut elsewhere = record(domain("acme", "shop"), T0);
    elsewhere.expires_at = Some(T0 + Duration::days(1));
    let never = record(org("acme"), T0);
    for record in [
        &in_five, &in_two, &at_end, &later, &revoked, &replaced, &elsewhere, &never,
    ] {
        store.insert(record.clone()).await?;
    }
    store.revoke(revoked.id, revocation("bob", T0)).await?;
    let window = T0 + Duration::days(2)..T0 + Duration::days(7);
    let ids = |entries: Vec<crate::store::ListedRecord>| -> Vec<TokenId> {
        entries
            .into_iter()
            .map(|entry| entry.expect("a valid record").id)
            .collect()
    };
    let listed = ids(store
        .list_expiring(&org("acme"), window.clone(), None, 100)
        .await?);
    assert!(
        listed == [in_two.id, in_five.id],
        "the window holds the scope's live, unreplaced tokens expiring in [start, end), \
         soonest first"
    );
    let first = store
        .list_expiring(&org("acme"), window.clone(), None, 1)
        .await?;
    let after = first[0].as_ref().ok().and_then(ExpiryCursor::of);
    let second = ids(store.list_expiring(&org("acme"), window, after, 1).await?);
    assert!(
        ids(first) == [in_two.id] && second == [in_five.id],
        "the expiring list pages like the list"
    );
    Ok(())
}

async fn purge_deletes_what_ended_before_the_cutoff(
    store: Arc<dyn TokenStore>,
) -> Result<(), StoreError> {
    let cutoff = T0 + Duration::days(30);
    let mut expired = record(org("acme"), T0);
    expired.expires_at = Some(cutoff - Duration::microseconds(1));
    let mut expiring_later = record(org("acme"), T0);
    expiring_later.expires_at = Some(cutoff);
    let revoked = record(org("acme"), T0);
    let revoked_later = record(org("acme"), T0);
    let live = record(org("acme"), T0);
    let offboarded = record(org("globex"), T0);
    for record in [
        &expired,
        &expiring_later,
        &revoked,
        &revoked_later,
        &live,
        &offboarded,
    ] {
        store.insert(record.clone()).await?;
    }
    store.revoke(revoked.id, revocation("bob", T0)).await?;
    store
        .revoke(revoked_later.id, revocation("bob", cutoff))
        .await?;
    store
        .revoke_scope(&org("globex"), revocation("alice", T0 + Duration::days(1)))
        .await?;

    // In steps of at most two: a backlog goes in bounded calls.
    let mut purged = 0;
    loop {
        let step = store.purge(cutoff, 2).await?;
        assert!(step <= 2, "purge deleted {step}, more than its limit of 2");
        purged += step;
        if step < 2 {
            break;
        }
    }
    assert!(
        purged == 3,
        "three tokens ended before the cutoff, not {purged}"
    );
    for gone in [expired.id, revoked.id, offboarded.id] {
        assert!(
            store.find(gone).await?.is_none(),
            "{gone} ended before the cutoff"
        );
    }
    for kept in [expiring_later.id, revoked_later.id, live.id] {
        assert!(
            store.find(kept).await?.is_some(),
            "{kept} ended at or after it"
        );
    }
    assert!(
        listed(&*store, &org("acme"), None, 10).await?.len() == 3
            && listed(&*store, &org("globex"), None, 10).await?.is_empty(),
        "purged tokens leave the lists"
    );
    assert!(
        store.purge(cutoff, 2).await? == 0,
        "purging again finds nothing"
    );
    let newcomer = record(org("globex"), T0 + Duration::days(40));
    store.insert(newcomer.clone()).await?;
    assert!(
        found(&*store, newcomer.id).await?.revoked.is_none(),
        "a token issued after a purged scope revocation is live"
    );
    Ok(())
}
