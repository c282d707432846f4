//! The [`TokenStore`] contract as a test suite (feature `conformance`).
//!
//! Every store this crate ships runs it, and so should yours. Each check is
//! a public function of this module, `async fn(Arc<dyn TokenStore>)`, that
//! panics saying what went wrong; each function's docs say what a user
//! relies on. A check must get a fresh, empty store: a store that shares one
//! database between calls of your factory must hand out one that starts
//! empty each time (a fresh schema, say). The checks race operations from
//! spawned tasks, so they run inside a multi-threaded Tokio runtime.
//!
//! The list of checks is written once, in this module, and two entry points
//! run all of it, so neither can miss a check added later:
//!
//! - [`conformance_tests!`](crate::conformance_tests) writes one `#[test]`
//!   per check into your test file, each running its check on a fresh
//!   store, in a multi-threaded Tokio runtime of its own: a failing check
//!   names itself in the test output, and one failure hides none of the
//!   others. Invoke it in a module of its own (the tests are named after
//!   the checks), with a factory: an async function or closure returning
//!   `Arc<dyn TokenStore>`. Your crate needs no Tokio of its own for it.
//!
//!   ```no_run
//!   use std::sync::Arc;
//!   use api_tokens::{MemoryStore, TokenStore};
//!
//!   mod memory_store {
//!       use super::*;
//!
//!       api_tokens::conformance_tests!(|| async {
//!           Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>
//!       });
//!   }
//!   # fn main() {}
//!   ```
//!
//! - [`run`] runs every check in turn, each on a fresh store, inside the
//!   runtime of the test that calls it, and panics at the end naming every
//!   check that failed, with its message.
//!
//!   ```no_run
//!   use std::sync::Arc;
//!   use api_tokens::{MemoryStore, TokenStore};
//!
//!   #[tokio::test(flavor = "multi_thread")]
//!   async fn my_store_keeps_the_contract() {
//!       api_tokens::conformance::run(|| async {
//!           Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>
//!       })
//!       .await;
//!   }
//!   ```
//!
//! A single check can also be called on its own, on a store you prepared:
//! `api_tokens::conformance::revoke_is_a_compare_and_set(store).await`.

use std::future::Future;
use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::actor::Role;
use crate::error::StoreError;
use crate::hashing::{Digest, KeyId};
use crate::ids::{ActorId, DomainId, OrganizationId};
use crate::label::Label;
use crate::networks::IpNetwork;
use crate::permissions::PermissionName;
use crate::record::{Disablement, Revocation, TokenRecord};
use crate::restrictions::{RateLimit, Restrictions};
use crate::scope::Scope;
use crate::store::{
    Cursor, ExpiryChange, ExpiryCursor, ListedRecord, NoticeWindow, REPORTED_IDS, Retirement,
    RevokeOutcome, RotateOutcome, ScopeFilter, ScopeRevoked, TokenChange, TokenStore,
    UpdateOutcome,
};
use crate::token::{TokenId, fill_random};

/// Every check of the suite, in one list, for [`run`] and
/// [`conformance_tests!`](crate::conformance_tests) to expand: a check added
/// here is run by both, and a check not added here by neither.
#[doc(hidden)]
#[macro_export]
macro_rules! __api_tokens_conformance_checks {
    // One `#[test]` per check, each on a store from the factory.
    (@expand tests ($make_store:expr) [$($check:ident)*]) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::__private::run_one(
                    $make_store,
                    $crate::conformance::$check,
                );
            }
        )*
    };
    // Every check, named, as one array.
    (@expand list () [$($check:ident)*]) => {
        [$((
            ::core::stringify!($check),
            (|store| ::std::boxed::Box::pin($crate::conformance::$check(store)))
                as $crate::conformance::__private::Check,
        )),*]
    };
    // The list itself.
    ($mode:ident $args:tt) => {
        $crate::__api_tokens_conformance_checks! { @expand $mode $args [
            records_read_back_identical
            credentials_agree_with_records
            a_taken_id_is_a_conflict
            unknown_ids_are_absent
            lists_hold_one_scope
            paging_loses_and_repeats_nothing
            covered_lists_an_organization_with_its_domains
            all_lists_every_token
            revoke_is_a_compare_and_set
            revoke_reaches_only_its_own_scope
            records_come_back_raw
            uses_keep_the_latest_time
            rotation_is_one_step_once
            rotation_refuses_and_changes_nothing
            rotate_reaches_only_its_own_scope
            scope_revocation_covers_domains
            scope_revocation_reports_a_bounded_sample
            scope_revocation_races_rotation
            offboarding_revokes_a_creators_live_tokens
            offboarding_takes_turns_with_revocations
            expiring_lists_the_window
            expiring_lists_covered_and_all
            notices_claim_each_token_once_per_window
            notice_claims_race_once
            released_notices_are_claimed_again
            purge_deletes_what_ended_before_the_cutoff
            restrictions_and_disablement_read_back_identical
            disable_keeps_the_first_and_enable_clears
            edit_sets_the_label_and_compares_the_expiry
            update_reaches_only_its_own_scope
            update_refuses_revoked_and_replaced_records
            concurrent_disables_update_once
            rotation_stores_the_successors_restrictions
        ] }
    };
}

/// Writes one `#[test]` per conformance check into the module it is
/// invoked in, each running its check on a fresh store from `$make_store`
/// (an async function or closure returning `Arc<dyn TokenStore>`, called
/// once per test) in a multi-threaded Tokio runtime of its own. See the
/// [`conformance`](crate::conformance) module for an example.
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:expr $(,)?) => {
        $crate::__api_tokens_conformance_checks! { tests ($make_store) }
    };
}

/// What the suite's macros call; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use crate::store::TokenStore;

    /// A check, its future boxed so every check has one type.
    pub type Check = fn(Arc<dyn TokenStore>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Runs `check` on a store from `make_store`, in a multi-threaded
    /// runtime of its own (four workers, as the checks race up to sixteen
    /// tasks): what one generated test does.
    pub fn run_one<F, Fut, C, Checked>(make_store: F, check: C)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Arc<dyn TokenStore>>,
        C: FnOnce(Arc<dyn TokenStore>) -> Checked,
        Checked: Future<Output = ()>,
    {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the check")
            .block_on(async move { check(make_store().await).await });
    }
}

/// A time with microseconds, which every store must keep.
const T0: OffsetDateTime = datetime!(2030-01-01 09:00:00.123456 UTC);

/// How many concurrent calls race in the atomicity checks.
const RACERS: usize = 16;

/// Runs every check of the contract in turn, each on a fresh store from
/// `make_store`, each in a task of its own so a failing check does not stop
/// the rest. Then panics if any failed, naming each with its message.
///
/// # Panics
///
/// If any check failed; outside a multi-threaded Tokio runtime.
pub async fn run<F, Fut>(mut make_store: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn TokenStore>>,
{
    let checks = crate::__api_tokens_conformance_checks!(list());
    let mut failed = Vec::new();
    for (name, check) in checks {
        let store = make_store().await;
        if let Err(error) = tokio::spawn(check(store)).await {
            let message = match error.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic without a message".to_owned()),
                Err(error) => error.to_string(),
            };
            failed.push(format!("- {name}: {message}"));
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {} conformance checks failed:\n{}",
            failed.len(),
            checks.len(),
            failed.join("\n")
        );
    }
}

/// Runs a check's steps, failing the check, named, if the store failed.
async fn passes(name: &str, steps: impl Future<Output = Result<(), StoreError>>) {
    if let Err(error) = steps.await {
        panic!("conformance check `{name}`: the store failed: {error:?}");
    }
}

fn exactly(scope: Scope) -> ScopeFilter {
    ScopeFilter::Exactly(scope)
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

/// One change of each kind `update` makes: a disable, an enable, a label
/// edit, and an expiry edit from `from` (the record's expiry, so that only
/// the rule under test can refuse it).
fn every_change(from: Option<OffsetDateTime>) -> [TokenChange; 4] {
    [
        TokenChange::Disable(disablement("mallory", T0 + Duration::hours(1))),
        TokenChange::Enable,
        TokenChange::Edit {
            label: Some(label("edited")),
            expiry: None,
        },
        TokenChange::Edit {
            label: None,
            expiry: Some(ExpiryChange {
                from,
                to: Some(T0 + Duration::days(90)),
            }),
        },
    ]
}

/// Every address that is not the domain `acme/shop`'s: its organization,
/// a sibling, another organization and its namesake domain there.
fn not_acme_shop() -> [Scope; 4] {
    [
        org("acme"),
        domain("acme", "blog"),
        org("globex"),
        domain("globex", "shop"),
    ]
}

/// Every address that is not the organization `acme`'s: one of its
/// domains, another organization, and a domain there named like it.
fn not_acme_itself() -> [Scope; 3] {
    [
        domain("acme", "shop"),
        org("globex"),
        domain("globex", "acme"),
    ]
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
        restrictions: Restrictions::default(),
        disabled: None,
    }
}

fn disablement(by: &str, at: OffsetDateTime) -> Disablement {
    Disablement { at, by: actor(by) }
}

fn label(text: &str) -> Label {
    Label::new(text).expect("a valid label")
}

fn network(text: &str) -> IpNetwork {
    text.parse().expect("a valid network")
}

fn permission(name: &str) -> PermissionName {
    PermissionName::new(name).expect("a valid permission name")
}

/// Every kind of restriction at once: several permissions (sorted, as the
/// service keeps them), IPv4 and IPv6 networks (a single address among
/// them), a rate limit.
fn restricted() -> Restrictions {
    Restrictions {
        permissions: Some(vec![
            permission("billing:read"),
            permission("notifications:send"),
            permission("segments.v2:write-all"),
        ]),
        allowed_networks: Some(vec![
            network("10.0.0.0/8"),
            network("198.51.100.7/32"),
            network("2001:db8::/32"),
            network("2001:db8:1:2::17/128"),
        ]),
        rate_limit: Some(
            RateLimit::new(250, std::time::Duration::from_secs(60)).expect("a valid rate limit"),
        ),
    }
}

/// Asserts the store holds exactly `expected`: `find` reads it back
/// identical and `find_credential` says what it says. `what` says why.
async fn assert_stored(
    store: &dyn TokenStore,
    expected: &TokenRecord,
    what: &str,
) -> Result<(), StoreError> {
    let back = found(store, expected.id).await?;
    assert!(back == *expected, "{what}:\n{expected:?}\n{back:?}");
    let credential = store.find_credential(expected.id).await?;
    assert!(
        credential == Some(expected.credential()),
        "{what} (find_credential): {credential:?} for {expected:?}"
    );
    Ok(())
}

fn revocation(by: &str, at: OffsetDateTime) -> Revocation {
    Revocation {
        at,
        by: actor(by),
        reason: Some(Label::new("no longer needed").expect("a valid label")),
    }
}

/// The records of exactly `scope`'s list.
async fn listed(
    store: &dyn TokenStore,
    scope: &Scope,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<TokenRecord>, StoreError> {
    listed_by(store, &exactly(scope.clone()), after, limit).await
}

/// A list's records; a damaged entry fails the check (the suite stores
/// only valid records).
async fn listed_by(
    store: &dyn TokenStore,
    filter: &ScopeFilter,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<TokenRecord>, StoreError> {
    Ok(valid(store.list(filter, after, limit).await?))
}

/// The records of a list, none damaged.
fn valid(entries: Vec<ListedRecord>) -> Vec<TokenRecord> {
    entries
        .into_iter()
        .map(|entry| entry.unwrap_or_else(|damaged| panic!("a valid record listed as {damaged:?}")))
        .collect()
}

/// Pages through the list `filter` reads, `page` records at a time. After
/// each page another token is issued, newer than any so far, into each of
/// `issuing` in turn (others keep issuing while an admin pages). Every
/// record seen, in order.
async fn every_page(
    store: &dyn TokenStore,
    filter: &ScopeFilter,
    page: usize,
    issuing: &[Scope],
) -> Result<Vec<TokenRecord>, StoreError> {
    let mut seen = Vec::new();
    let mut after = None;
    for pages in 1.. {
        let records = listed_by(store, filter, after, page).await?;
        assert!(
            records.len() <= page,
            "a page holds at most `limit` records"
        );
        if !issuing.is_empty() {
            let scope = issuing[pages % issuing.len()].clone();
            store
                .insert(record(
                    scope,
                    T0 + Duration::days(365) + Duration::hours(pages as i64),
                ))
                .await?;
        }
        let Some(last) = records.last() else {
            break;
        };
        after = Some(Cursor::of(last));
        seen.extend(records);
    }
    Ok(seen)
}

/// Pages through the expiring list of `filter` in `window`, `page` records
/// at a time; the ids seen, in order.
async fn every_expiring_page(
    store: &dyn TokenStore,
    filter: &ScopeFilter,
    window: std::ops::Range<OffsetDateTime>,
    page: usize,
) -> Result<Vec<TokenId>, StoreError> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let records = valid(
            store
                .list_expiring(filter, window.clone(), after, page)
                .await?,
        );
        assert!(
            records.len() <= page,
            "a page holds at most `limit` records"
        );
        let Some(last) = records.last() else {
            return Ok(seen);
        };
        after = ExpiryCursor::of(last);
        seen.extend(records.iter().map(|record| record.id));
    }
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

/// A record reads back identical, every field, to the microsecond, with any
/// label (emoji, right-to-left scripts, quotes, SQL wildcards): what a list
/// shows is what was issued.
pub async fn records_read_back_identical(store: Arc<dyn TokenStore>) {
    passes("records_read_back_identical", async move {
        for record in varied_records() {
            store.insert(record.clone()).await?;
            let back = found(&*store, record.id).await?;
            assert!(
                back == record,
                "a record must read back identical:\n{record:?}\n{back:?}"
            );
        }
        Ok(())
    })
    .await;
}

/// `find_credential` says exactly what `find` says, for revoked, expired and
/// used records too: verification never decides on another copy.
pub async fn credentials_agree_with_records(store: Arc<dyn TokenStore>) {
    passes("credentials_agree_with_records", async move {
        let mut records = varied_records();
        let mut expired = record(org("acme"), T0);
        expired.expires_at = Some(T0 - Duration::days(1));
        records.push(expired);
        for record in &records {
            store.insert(record.clone()).await?;
        }
        store
            .revoke(&records[2].scope, records[2].id, revocation("dave", T0))
            .await?;
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
    })
    .await;
}

/// Inserting a taken id fails as `AlreadyExists` naming it, and changes
/// nothing: an id drawn twice never overwrites another tenant's token.
pub async fn a_taken_id_is_a_conflict(store: Arc<dyn TokenStore>) {
    passes("a_taken_id_is_a_conflict", async move {
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
    })
    .await;
}

/// Unknown ids are `None`, `NotFound` or skipped, never an error: a forged
/// token costs a lookup, not a failure.
pub async fn unknown_ids_are_absent(store: Arc<dyn TokenStore>) {
    passes("unknown_ids_are_absent", async move {
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
            store
                .revoke(&org("acme"), unknown, revocation("x", T0))
                .await?
                == RevokeOutcome::NotFound,
            "revoke of an unknown id says NotFound"
        );
        let successor = record(org("acme"), T0);
        let successor_id = successor.id;
        assert!(
            store
                .rotate(&org("acme"), unknown, Retirement::ExpiresAt(T0), successor)
                .await?
                == RotateOutcome::NotFound,
            "rotate of an unknown id says NotFound"
        );
        assert!(
            store.find(successor_id).await?.is_none(),
            "a refused rotation stores no successor"
        );
        for change in every_change(None) {
            let outcome = store.update(&org("acme"), unknown, &change).await?;
            assert!(
                outcome == UpdateOutcome::NotFound,
                "update of an unknown id says NotFound, not {outcome:?}"
            );
        }
        store.record_uses(&[(unknown, T0)]).await?;
        Ok(())
    })
    .await;
}

/// [`ScopeFilter::Exactly`] lists exactly its scope (an organization's list
/// not its domains'), newest first by `(created_at, id)` with ids in their
/// unsigned order, at most `limit` records.
pub async fn lists_hold_one_scope(store: Arc<dyn TokenStore>) {
    passes("lists_hold_one_scope", async move {
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
        let shop = store
            .list(&exactly(domain("acme", "shop")), None, 100)
            .await?;
        assert!(
            shop.len() == 1,
            "a domain's list holds its own records only"
        );
        assert!(
            listed(&*store, &org("acme"), None, 2).await? == expected[..2],
            "a list holds at most `limit` records"
        );
        Ok(())
    })
    .await;
}

/// Paging a scope's list by cursor returns every record present at the
/// start exactly once, even while new tokens are issued.
pub async fn paging_loses_and_repeats_nothing(store: Arc<dyn TokenStore>) {
    passes("paging_loses_and_repeats_nothing", async move {
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
    })
    .await;
}

/// Revoking is a compare-and-set: of many concurrent revokes of one token
/// exactly one wins, its revocation is the one kept, and the others are
/// told it.
pub async fn revoke_is_a_compare_and_set(store: Arc<dyn TokenStore>) {
    passes("revoke_is_a_compare_and_set", async move {
        let target = record(org("acme"), T0);
        store.insert(target.clone()).await?;
        let racers: Vec<_> = (0..RACERS)
            .map(|n| {
                let store = store.clone();
                let (scope, id) = (target.scope.clone(), target.id);
                let revocation = revocation(&format!("racer{n}"), T0 + Duration::seconds(n as i64));
                tokio::spawn(async move {
                    let outcome = store.revoke(&scope, id, revocation.clone()).await;
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
    })
    .await;
}

/// Revoked and expired records come back as stored, and lists include
/// them: the service, not the store, decides what is valid.
pub async fn records_come_back_raw(store: Arc<dyn TokenStore>) {
    passes("records_come_back_raw", async move {
        let mut expired = record(org("acme"), T0 - Duration::days(10));
        expired.expires_at = Some(T0 - Duration::days(1));
        let revoked = record(org("acme"), T0);
        for record in [&expired, &revoked] {
            store.insert(record.clone()).await?;
        }
        store
            .revoke(&revoked.scope, revoked.id, revocation("bob", T0))
            .await?;
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
    })
    .await;
}

/// Recording uses keeps each token's latest time, whatever order the uses
/// arrive in, and skips unknown ids.
pub async fn uses_keep_the_latest_time(store: Arc<dyn TokenStore>) {
    passes("uses_keep_the_latest_time", async move {
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
    })
    .await;
}

/// Rotation inserts the successor, links both records and retires the old
/// one (by a grace expiry or by revocation) in one step, and of many
/// concurrent rotations of one token exactly one wins: a token never forks.
pub async fn rotation_is_one_step_once(store: Arc<dyn TokenStore>) {
    passes("rotation_is_one_step_once", async move {
        let old = record(domain("acme", "shop"), T0);
        store.insert(old.clone()).await?;
        let grace_end = T0 + Duration::hours(24);
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let store = store.clone();
                let (scope, old) = (old.scope.clone(), old.id);
                let mut successor = record(scope.clone(), T0 + Duration::seconds(1));
                successor.rotated_from = Some(old);
                tokio::spawn(async move {
                    let id = successor.id;
                    let outcome = store
                        .rotate(&scope, old, Retirement::ExpiresAt(grace_end), successor)
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
            store
                .list(&exactly(domain("acme", "shop")), None, 100)
                .await?
                .len()
                == 2,
            "the old record and one successor are listed"
        );

        // Without grace: retired by revocation, in the same step.
        let mut next = record(new.scope.clone(), T0 + Duration::seconds(2));
        next.rotated_from = Some(successor);
        let revoked = revocation("alice", T0 + Duration::seconds(2));
        let outcome = store
            .rotate(
                &new.scope,
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
    })
    .await;
}

/// Rotating a revoked token is refused, and a successor whose id is taken
/// is a conflict: either way nothing changes.
pub async fn rotation_refuses_and_changes_nothing(store: Arc<dyn TokenStore>) {
    passes("rotation_refuses_and_changes_nothing", async move {
        let revoked = record(org("acme"), T0);
        let live = record(org("acme"), T0);
        let bystander = record(org("acme"), T0);
        for record in [&revoked, &live, &bystander] {
            store.insert(record.clone()).await?;
        }
        store
            .revoke(&revoked.scope, revoked.id, revocation("bob", T0))
            .await?;
        let before = found(&*store, revoked.id).await?;
        let successor = record(org("acme"), T0);
        let successor_id = successor.id;
        assert!(
            store
                .rotate(
                    &revoked.scope,
                    revoked.id,
                    Retirement::ExpiresAt(T0),
                    successor
                )
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
            .rotate(&live.scope, live.id, Retirement::ExpiresAt(T0), clash)
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
    })
    .await;
}

/// A scope revocation revokes an organization's tokens and its domains'
/// (a domain's only that domain's), keeps earlier revocations, is honoured
/// by every read, revoke and rotate, spares other tenants and tokens issued
/// after it, and says exactly what it revoked.
pub async fn scope_revocation_covers_domains(store: Arc<dyn TokenStore>) {
    passes("scope_revocation_covers_domains", async move {
        let acme = record(org("acme"), T0);
        let shop = record(domain("acme", "shop"), T0);
        let earlier = record(domain("acme", "blog"), T0);
        let globex = record(org("globex"), T0);
        let globex_shop = record(domain("globex", "shop"), T0);
        for record in [&acme, &shop, &earlier, &globex, &globex_shop] {
            store.insert(record.clone()).await?;
        }
        let first = revocation("bob", T0);
        store
            .revoke(&earlier.scope, earlier.id, first.clone())
            .await?;
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
                .revoke(
                    &acme.scope,
                    acme.id,
                    revocation("carol", T0 + Duration::hours(2)),
                )
                .await?
                == RevokeOutcome::AlreadyRevoked(offboarding.clone()),
            "revoking a token of a revoked scope says it was revoked, by the scope"
        );
        let successor = record(domain("acme", "shop"), T0 + Duration::hours(2));
        assert!(
            store
                .rotate(
                    &shop.scope,
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
    })
    .await;
}

/// A scope revocation counts every token it revoked but names at most
/// [`REPORTED_IDS`] of them, and a second one counts nothing again.
pub async fn scope_revocation_reports_a_bounded_sample(store: Arc<dyn TokenStore>) {
    passes("scope_revocation_reports_a_bounded_sample", async move {
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
    })
    .await;
}

/// A scope revocation and concurrent rotations take turns: no successor of
/// a revoked organization's token escapes the revocation.
pub async fn scope_revocation_races_rotation(store: Arc<dyn TokenStore>) {
    passes("scope_revocation_races_rotation", async move {
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
                let (scope, old) = (old.scope.clone(), old.id);
                tokio::spawn(async move {
                    store
                        .rotate(
                            &scope,
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
    })
    .await;
}

/// [`list_expiring`](TokenStore::list_expiring) holds a scope's live,
/// unreplaced tokens expiring in `[start, end)`, soonest first, and pages.
pub async fn expiring_lists_the_window(store: Arc<dyn TokenStore>) {
    passes("expiring_lists_the_window", async move {
        let expiring = |days: i64| {
            let mut record = record(org("acme"), T0);
            record.expires_at = Some(T0 + Duration::days(days));
            record
        };
        let (in_two, in_five, at_end, later) =
            (expiring(2), expiring(5), expiring(7), expiring(30));
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
        store
            .revoke(&revoked.scope, revoked.id, revocation("bob", T0))
            .await?;
        let window = T0 + Duration::days(2)..T0 + Duration::days(7);
        let ids = |entries: Vec<crate::store::ListedRecord>| -> Vec<TokenId> {
            entries
                .into_iter()
                .map(|entry| entry.expect("a valid record").id)
                .collect()
        };
        let listed = ids(store
            .list_expiring(&exactly(org("acme")), window.clone(), None, 100)
            .await?);
        assert!(
            listed == [in_two.id, in_five.id],
            "the window holds the scope's live, unreplaced tokens expiring in [start, end), \
         soonest first"
        );
        let first = store
            .list_expiring(&exactly(org("acme")), window.clone(), None, 1)
            .await?;
        let after = first[0].as_ref().ok().and_then(ExpiryCursor::of);
        let second = ids(store
            .list_expiring(&exactly(org("acme")), window, after, 1)
            .await?);
        assert!(
            ids(first) == [in_two.id] && second == [in_five.id],
            "the expiring list pages like the list"
        );
        Ok(())
    })
    .await;
}

/// Purging deletes exactly the records that ended (revoked, expired, or
/// covered by a scope revocation) before the cutoff, in steps no larger
/// than asked, and they leave the lists; a later token of a purged revoked
/// scope is live.
pub async fn purge_deletes_what_ended_before_the_cutoff(store: Arc<dyn TokenStore>) {
    passes("purge_deletes_what_ended_before_the_cutoff", async move {
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
        store
            .revoke(&revoked.scope, revoked.id, revocation("bob", T0))
            .await?;
        store
            .revoke(
                &revoked_later.scope,
                revoked_later.id,
                revocation("bob", cutoff),
            )
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
    })
    .await;
}

/// [`ScopeFilter::Covered`] of an organization lists its own tokens and
/// every one of its domains', merged newest first by `(created_at, id)`
/// with ids in their unsigned order, and no other tenant's (not an
/// organization whose id shares a prefix, nor another organization's domain
/// of the same name); paging loses and repeats nothing while tokens are
/// issued. `Covered` of a domain is that domain's own list.
pub async fn covered_lists_an_organization_with_its_domains(store: Arc<dyn TokenStore>) {
    passes(
        "covered_lists_an_organization_with_its_domains",
        async move {
            let scopes = [org("acme"), domain("acme", "shop"), domain("acme", "blog")];
            let mut expected = Vec::new();
            for n in 0..21 {
                // Three records an instant, in three scopes: the id orders them.
                let record = record(scopes[n % 3].clone(), T0 + Duration::seconds(n as i64 / 3));
                store.insert(record.clone()).await?;
                expected.push(record);
            }
            for (bits, scope) in [1, u64::MAX, 1 << 63, (1 << 63) - 1]
                .into_iter()
                .zip(&scopes)
            {
                let mut twin = record(scope.clone(), T0 + Duration::seconds(2));
                twin.id = TokenId::from_bits(bits);
                store.insert(twin.clone()).await?;
                expected.push(twin);
            }
            for other in [
                org("acme2"),
                org("acm"),
                domain("acme2", "shop"),
                domain("globex", "shop"),
                domain("globex", "acme"),
                org("globex"),
            ] {
                store
                    .insert(record(other, T0 + Duration::seconds(3)))
                    .await?;
            }
            expected.sort_by_key(|record| std::cmp::Reverse(Cursor::of(record)));
            let covered = ScopeFilter::Covered(org("acme"));
            assert!(
                listed_by(&*store, &covered, None, 100).await? == expected,
                "an organization's covered list holds its tokens and its domains', and no one \
             else's, newest first by (created_at, id)"
            );
            assert!(
                listed_by(&*store, &covered, None, 5).await? == expected[..5],
                "a covered list holds at most `limit` records"
            );
            let issuing = [domain("acme", "shop"), org("globex"), org("acme")];
            let paged = every_page(&*store, &covered, 4, &issuing).await?;
            assert!(
                paged == expected,
                "paging a covered list returns every record present at the start once, in order"
            );
            let shop = domain("acme", "shop");
            assert!(
                listed_by(&*store, &ScopeFilter::Covered(shop.clone()), None, 100).await?
                    == listed(&*store, &shop, None, 100).await?,
                "a domain covers only itself"
            );
            Ok(())
        },
    )
    .await;
}

/// [`ScopeFilter::All`] lists every token of every tenant, organizations'
/// and domains' alike, newest first by `(created_at, id)` with ids in their
/// unsigned order; paging loses and repeats nothing while tokens are
/// issued.
pub async fn all_lists_every_token(store: Arc<dyn TokenStore>) {
    passes("all_lists_every_token", async move {
        let scopes = [
            org("acme"),
            domain("acme", "shop"),
            org("globex"),
            domain("globex", "shop"),
            domain("initech", "hq"),
        ];
        let mut expected = Vec::new();
        for n in 0..23 {
            let record = record(scopes[n % 5].clone(), T0 + Duration::seconds(n as i64 / 4));
            store.insert(record.clone()).await?;
            expected.push(record);
        }
        for (bits, scope) in [1, u64::MAX, 1 << 63, (1 << 63) - 1]
            .into_iter()
            .zip(&scopes)
        {
            let mut twin = record(scope.clone(), T0 + Duration::seconds(3));
            twin.id = TokenId::from_bits(bits);
            store.insert(twin.clone()).await?;
            expected.push(twin);
        }
        expected.sort_by_key(|record| std::cmp::Reverse(Cursor::of(record)));
        assert!(
            listed_by(&*store, &ScopeFilter::All, None, 1000).await? == expected,
            "the list of all holds every tenant's tokens, newest first by (created_at, id)"
        );
        let issuing = [org("umbrella"), domain("acme", "blog")];
        let paged = every_page(&*store, &ScopeFilter::All, 3, &issuing).await?;
        assert!(
            paged == expected,
            "paging the list of all returns every record present at the start once, in order"
        );
        Ok(())
    })
    .await;
}

/// `revoke` reaches a token only at the token's own scope: addressed at any
/// other (another organization, a sibling domain, a domain token's
/// organization, an organization token's domain) it is `NotFound`, whether
/// the token is live, revoked on its own or revoked with its scope, and the
/// record is left unchanged.
pub async fn revoke_reaches_only_its_own_scope(store: Arc<dyn TokenStore>) {
    passes("revoke_reaches_only_its_own_scope", async move {
        let shop = record(domain("acme", "shop"), T0);
        let acme = record(org("acme"), T0);
        let mut revoked = record(domain("acme", "shop"), T0);
        let earlier = revocation("bob", T0);
        revoked.revoked = Some(earlier.clone());
        let blog = record(domain("acme", "blog"), T0);
        for record in [&shop, &acme, &revoked, &blog] {
            store.insert(record.clone()).await?;
        }
        let blog_revocation = revocation("carol", T0 + Duration::minutes(1));
        store
            .revoke_scope(&domain("acme", "blog"), blog_revocation.clone())
            .await?;
        let blog = found(&*store, blog.id).await?;
        let (not_shop, not_acme) = (not_acme_shop(), not_acme_itself());
        let not_blog = [
            org("acme"),
            domain("acme", "shop"),
            domain("globex", "blog"),
        ];
        for (target, elsewhere) in [
            (&shop, &not_shop[..]),
            (&acme, &not_acme[..]),
            (&revoked, &not_shop[..]),
            (&blog, &not_blog[..]),
        ] {
            for scope in elsewhere {
                let outcome = store
                    .revoke(
                        scope,
                        target.id,
                        revocation("mallory", T0 + Duration::hours(1)),
                    )
                    .await?;
                assert!(
                    outcome == RevokeOutcome::NotFound,
                    "a token of {} addressed at {scope} is not found, not {outcome:?}",
                    target.scope
                );
                assert!(
                    found(&*store, target.id).await? == *target,
                    "a token addressed at another scope is left unchanged"
                );
            }
        }
        let credential = store.find_credential(shop.id).await?;
        assert!(
            credential.is_some_and(|credential| !credential.revoked),
            "a token addressed at other scopes still verifies"
        );
        let now = revocation("alice", T0 + Duration::hours(2));
        assert!(
            store.revoke(&shop.scope, shop.id, now.clone()).await? == RevokeOutcome::Revoked
                && store.revoke(&acme.scope, acme.id, now.clone()).await? == RevokeOutcome::Revoked,
            "a token addressed at its own scope is revoked"
        );
        assert!(
            store
                .revoke(&revoked.scope, revoked.id, now.clone())
                .await?
                == RevokeOutcome::AlreadyRevoked(earlier)
                && store.revoke(&blog.scope, blog.id, now).await?
                    == RevokeOutcome::AlreadyRevoked(blog_revocation),
            "a revoked token addressed at its own scope says it was revoked"
        );
        Ok(())
    })
    .await;
}

/// `rotate` reaches a token only at the token's own scope: addressed at any
/// other it is `NotFound` (whether the token is live, revoked or replaced
/// already), the old record is left unchanged and no successor is stored.
pub async fn rotate_reaches_only_its_own_scope(store: Arc<dyn TokenStore>) {
    passes("rotate_reaches_only_its_own_scope", async move {
        let shop = record(domain("acme", "shop"), T0);
        let acme = record(org("acme"), T0);
        let mut revoked = record(domain("acme", "shop"), T0);
        revoked.revoked = Some(revocation("bob", T0));
        let mut replaced = record(org("acme"), T0);
        replaced.replaced_by = Some(random_id());
        for record in [&shop, &acme, &revoked, &replaced] {
            store.insert(record.clone()).await?;
        }
        let (not_shop, not_acme) = (not_acme_shop(), not_acme_itself());
        for (target, elsewhere) in [
            (&shop, &not_shop[..]),
            (&acme, &not_acme[..]),
            (&revoked, &not_shop[..]),
            (&replaced, &not_acme[..]),
        ] {
            for scope in elsewhere {
                let mut successor = record(target.scope.clone(), T0 + Duration::hours(1));
                successor.rotated_from = Some(target.id);
                let successor_id = successor.id;
                let retire = Retirement::Revoked(revocation("mallory", T0 + Duration::hours(1)));
                let outcome = store.rotate(scope, target.id, retire, successor).await?;
                assert!(
                    outcome == RotateOutcome::NotFound,
                    "a token of {} rotated at {scope} is not found, not {outcome:?}",
                    target.scope
                );
                assert!(
                    found(&*store, target.id).await? == *target,
                    "a token rotated at another scope is left unchanged"
                );
                assert!(
                    store.find(successor_id).await?.is_none(),
                    "and no successor is stored"
                );
            }
        }
        for target in [&shop, &acme] {
            let mut successor = record(target.scope.clone(), T0 + Duration::hours(2));
            successor.rotated_from = Some(target.id);
            let retire = Retirement::ExpiresAt(T0 + Duration::days(1));
            assert!(
                store
                    .rotate(&target.scope, target.id, retire, successor)
                    .await?
                    == RotateOutcome::Rotated,
                "a token rotated at its own scope is rotated"
            );
        }
        Ok(())
    })
    .await;
}

/// `revoke_created_by` revokes exactly the creator's live tokens, across
/// organizations and domains (expired ones and rotated ones in their grace
/// included), at most `limit` a call and each once, keeping earlier
/// revocations (the token's own or its scope's) and sparing everyone
/// else's; a call with `limit` 0, or once none is left, revokes nothing;
/// verification sees every one revoked at once.
pub async fn offboarding_revokes_a_creators_live_tokens(store: Arc<dyn TokenStore>) {
    passes("offboarding_revokes_a_creators_live_tokens", async move {
        let made_by = |scope: Scope, creator: &str| {
            let mut record = record(scope, T0);
            record.created_by = actor(creator);
            record
        };
        let mut live: Vec<TokenRecord> = [
            org("acme"),
            domain("acme", "shop"),
            domain("acme", "shop"),
            org("globex"),
            domain("globex", "blog"),
            domain("initech", "hq"),
            org("acme"),
        ]
        .into_iter()
        .map(|scope| made_by(scope, "bob"))
        .collect();
        let mut expired = made_by(org("acme"), "bob");
        expired.expires_at = Some(T0 - Duration::days(1));
        let mut in_grace = made_by(domain("acme", "shop"), "bob");
        in_grace.replaced_by = Some(random_id());
        in_grace.expires_at = Some(T0 + Duration::hours(1));
        live.extend([expired, in_grace]);
        let earlier = made_by(org("acme"), "bob");
        let covered = made_by(domain("umbrella", "lab"), "bob");
        let others: Vec<TokenRecord> = [
            (org("acme"), "alice"),
            (domain("acme", "shop"), "bobby"),
            (org("globex"), "bo"),
            (org("umbrella"), "alice"),
        ]
        .into_iter()
        .map(|(scope, creator)| made_by(scope, creator))
        .collect();
        for record in live.iter().chain([&earlier, &covered]).chain(&others) {
            store.insert(record.clone()).await?;
        }
        let first = revocation("carol", T0);
        store
            .revoke(&earlier.scope, earlier.id, first.clone())
            .await?;
        let scoped = revocation("dave", T0 + Duration::minutes(1));
        store
            .revoke_scope(&domain("umbrella", "lab"), scoped.clone())
            .await?;
        let offboarding = revocation("admin", T0 + Duration::hours(2));
        let bob = actor("bob");
        assert!(
            store
                .revoke_created_by(&bob, offboarding.clone(), 0)
                .await?
                .is_empty(),
            "a limit of 0 revokes nothing"
        );
        assert!(
            found(&*store, live[0].id).await?.revoked.is_none(),
            "and changes nothing"
        );

        let mut revoked = Vec::new();
        loop {
            let step = store
                .revoke_created_by(&bob, offboarding.clone(), 3)
                .await?;
            assert!(
                step.len() <= 3,
                "{} revoked, more than the limit of 3",
                step.len()
            );
            revoked.extend(step.iter().copied());
            assert!(revoked.len() <= live.len(), "more revoked than were live");
            if step.len() < 3 {
                break;
            }
        }
        revoked.sort();
        let mut expected: Vec<TokenId> = live.iter().map(|record| record.id).collect();
        expected.sort();
        assert!(
            revoked == expected,
            "offboarding names each of the creator's live tokens once, and nothing else"
        );
        for record in &live {
            assert!(
                found(&*store, record.id).await?.revoked.as_ref() == Some(&offboarding),
                "the creator's tokens carry the offboarding's revocation"
            );
            let credential = store.find_credential(record.id).await?;
            assert!(
                credential.is_some_and(|credential| credential.revoked),
                "verification sees the offboarding at once"
            );
        }
        assert!(
            found(&*store, earlier.id).await?.revoked == Some(first),
            "an earlier revocation is kept"
        );
        assert!(
            found(&*store, covered.id).await?.revoked == Some(scoped),
            "a scope's revocation is kept"
        );
        for record in &others {
            assert!(
                found(&*store, record.id).await?.revoked.is_none(),
                "other people's tokens are untouched"
            );
        }
        assert!(
            store
                .revoke_created_by(&bob, offboarding.clone(), 3)
                .await?
                .is_empty(),
            "once none is left, offboarding revokes nothing"
        );
        assert!(
            store
                .revoke(
                    &live[0].scope,
                    live[0].id,
                    revocation("erin", T0 + Duration::hours(3))
                )
                .await?
                == RevokeOutcome::AlreadyRevoked(offboarding),
            "revoking an offboarded token says it was revoked, by the offboarding"
        );
        Ok(())
    })
    .await;
}

/// Offboarding takes turns with revocations of the same tokens, individual
/// and scope-wide, running at once: each token ends revoked once, by
/// exactly one call that says so (an id `revoke_created_by` returns is one
/// no `revoke` won and no scope revocation counted), and the revocation
/// stored is that call's; tokens taken by others never make offboarding
/// stop before none is left.
pub async fn offboarding_takes_turns_with_revocations(store: Arc<dyn TokenStore>) {
    passes("offboarding_takes_turns_with_revocations", async move {
        let tokens: Vec<TokenRecord> = (0..2 * RACERS)
            .map(|n| {
                let scope = if n % 2 == 0 {
                    org("acme")
                } else {
                    domain("acme", "shop")
                };
                let mut record = record(scope, T0 + Duration::seconds(n as i64));
                record.created_by = actor("bob");
                record
            })
            .collect();
        for record in &tokens {
            store.insert(record.clone()).await?;
        }
        let offboardings: Vec<_> = (0..2)
            .map(|n| {
                let store = store.clone();
                let revocation = revocation(&format!("offboarding{n}"), T0 + Duration::hours(1));
                tokio::spawn(async move {
                    let mut revoked = Vec::new();
                    loop {
                        let step = store
                            .revoke_created_by(&actor("bob"), revocation.clone(), 5)
                            .await?;
                        revoked.extend(step.iter().copied());
                        if step.len() < 5 {
                            return Ok::<_, StoreError>((revocation, revoked));
                        }
                    }
                })
            })
            .collect();
        // A third of the tokens also revoked one by one; the organization's
        // others only an offboarding revokes, so an offboarding that stopped
        // before none was left leaves one live.
        let revokes: Vec<_> = tokens
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 3 == 0)
            .map(|(n, token)| {
                let store = store.clone();
                let (scope, id) = (token.scope.clone(), token.id);
                let revocation = revocation(&format!("racer{n}"), T0 + Duration::hours(1));
                tokio::spawn(async move {
                    let outcome = store.revoke(&scope, id, revocation.clone()).await;
                    (id, revocation, outcome)
                })
            })
            .collect();
        let scope_wide = {
            let store = store.clone();
            let revocation = revocation("scope", T0 + Duration::hours(1));
            tokio::spawn(async move {
                let revoked = store
                    .revoke_scope(&domain("acme", "shop"), revocation.clone())
                    .await;
                (revocation, revoked)
            })
        };

        // Who says they revoked each token, with what.
        let mut claims: Vec<(TokenId, Revocation)> = Vec::new();
        for offboarding in offboardings {
            let (revocation, revoked) = offboarding.await.expect("a racing task panicked")?;
            claims.extend(revoked.into_iter().map(|id| (id, revocation.clone())));
        }
        for revoke in revokes {
            let (id, revocation, outcome) = revoke.await.expect("a racing task panicked");
            match outcome? {
                RevokeOutcome::Revoked => claims.push((id, revocation)),
                RevokeOutcome::AlreadyRevoked(_) => {}
                RevokeOutcome::NotFound => panic!("revoke lost a stored record"),
            }
        }
        let (revocation, scope_revoked) = scope_wide.await.expect("a racing task panicked");
        let scope_revoked = scope_revoked?;
        assert!(
            scope_revoked.count == scope_revoked.first.len() as u64,
            "a scope revocation of fewer than REPORTED_IDS tokens names each it counts: \
             {scope_revoked:?}"
        );
        claims.extend(
            scope_revoked
                .first
                .into_iter()
                .map(|id| (id, revocation.clone())),
        );
        for token in &tokens {
            let claimed: Vec<&Revocation> = claims
                .iter()
                .filter(|(id, _)| *id == token.id)
                .map(|(_, revocation)| revocation)
                .collect();
            assert!(
                claimed.len() == 1,
                "each token is revoked by exactly one call that says so (offboarding goes on \
                 until none is left), not {}",
                claimed.len()
            );
            assert!(
                found(&*store, token.id).await?.revoked.as_ref() == Some(claimed[0]),
                "the revocation kept is the one of the call that says it revoked the token"
            );
        }
        Ok(())
    })
    .await;
}

/// `list_expiring` with [`ScopeFilter::Covered`] of an organization holds
/// its and its domains' live, unreplaced tokens expiring in the window and
/// no other tenant's; with [`ScopeFilter::All`], every tenant's; soonest
/// first by `(expires_at, id)`, paging without loss or repeat. `Covered` of
/// a domain is that domain's own list.
pub async fn expiring_lists_covered_and_all(store: Arc<dyn TokenStore>) {
    passes("expiring_lists_covered_and_all", async move {
        let expiring = |scope: Scope, at: Duration| {
            let mut record = record(scope, T0);
            record.expires_at = Some(T0 + at);
            record
        };
        let days = Duration::days;
        let acme_in = [
            expiring(org("acme"), days(2)),
            expiring(domain("acme", "shop"), days(3)),
            // One instant, two scopes: the id orders them.
            expiring(domain("acme", "blog"), days(3)),
            expiring(domain("acme", "shop"), days(6)),
            expiring(org("acme"), days(7) - Duration::microseconds(1)),
        ];
        let others_in = [
            expiring(org("globex"), days(4)),
            expiring(domain("globex", "shop"), days(2)),
            expiring(domain("acme2", "shop"), days(3)),
        ];
        let revoked = expiring(org("acme"), days(3));
        let mut replaced = expiring(domain("acme", "shop"), days(4));
        replaced.replaced_by = Some(random_id());
        let scope_revoked = expiring(domain("acme", "hq"), days(5));
        let outside = [
            expiring(org("acme"), days(7)),
            expiring(domain("acme", "shop"), days(2) - Duration::microseconds(1)),
            record(org("acme"), T0),
            record(org("globex"), T0),
        ];
        for record in acme_in
            .iter()
            .chain(&others_in)
            .chain([&revoked, &replaced, &scope_revoked])
            .chain(&outside)
        {
            store.insert(record.clone()).await?;
        }
        store
            .revoke(&revoked.scope, revoked.id, revocation("bob", T0))
            .await?;
        store
            .revoke_scope(&domain("acme", "hq"), revocation("bob", T0))
            .await?;
        let window = T0 + days(2)..T0 + days(7);
        let soonest_first = |records: &[&TokenRecord]| {
            let mut records = records.to_vec();
            records.sort_by_key(|record| (record.expires_at, record.id));
            records.iter().map(|record| record.id).collect::<Vec<_>>()
        };
        let acme: Vec<&TokenRecord> = acme_in.iter().collect();
        let all: Vec<&TokenRecord> = acme_in.iter().chain(&others_in).collect();
        let covered = ScopeFilter::Covered(org("acme"));
        for page in [100, 2] {
            assert!(
                every_expiring_page(&*store, &covered, window.clone(), page).await?
                    == soonest_first(&acme),
                "an organization's covered expiring list holds its and its domains' live, \
                 unreplaced tokens in [start, end), soonest first, and pages"
            );
            assert!(
                every_expiring_page(&*store, &ScopeFilter::All, window.clone(), page).await?
                    == soonest_first(&all),
                "the expiring list of all holds every tenant's, soonest first, and pages"
            );
        }
        let shop = domain("acme", "shop");
        assert!(
            every_expiring_page(
                &*store,
                &ScopeFilter::Covered(shop.clone()),
                window.clone(),
                2
            )
            .await?
                == every_expiring_page(&*store, &exactly(shop), window, 2).await?,
            "a domain covers only itself"
        );
        Ok(())
    })
    .await;
}

/// A token's restrictions (permissions, client networks, a rate limit) and
/// its disablement read back exactly as issued, each on its own and all at
/// once, through `find`, `find_credential` and both lists: what
/// verification enforces is what was issued, and a token without
/// restrictions has no restrictions in its credential.
pub async fn restrictions_and_disablement_read_back_identical(store: Arc<dyn TokenStore>) {
    passes(
        "restrictions_and_disablement_read_back_identical",
        async move {
            let mut full = record(domain("acme", "shop"), T0);
            full.restrictions = restricted();
            full.disabled = Some(disablement("bob", T0 + Duration::microseconds(7)));
            full.expires_at = Some(T0 + Duration::days(10));
            let mut permissions = record(org("acme"), T0 + Duration::seconds(1));
            permissions.restrictions.permissions = Some(vec![permission("segments:read")]);
            let mut networks = record(org("acme"), T0 + Duration::seconds(2));
            networks.restrictions.allowed_networks =
                Some(vec![network("2001:db8:1::/48"), network("0.0.0.0/0")]);
            let mut rate_limited = record(domain("acme", "blog"), T0 + Duration::seconds(3));
            rate_limited.restrictions.rate_limit = Some(
                RateLimit::new(1, std::time::Duration::from_secs(86_400))
                    .expect("a valid rate limit"),
            );
            let mut disabled = record(org("globex"), T0 + Duration::seconds(4));
            disabled.disabled = Some(disablement("carol", T0 + Duration::seconds(5)));
            let plain = record(org("globex"), T0 + Duration::seconds(5));
            let only_expiring = full.clone();
            let mut records = vec![full, permissions, networks, rate_limited, disabled, plain];
            for record in &records {
                store.insert(record.clone()).await?;
            }
            for record in &records {
                assert_stored(
                    &*store,
                    record,
                    "restrictions and a disablement read back as issued",
                )
                .await?;
            }
            records.sort_by_key(|record| std::cmp::Reverse(Cursor::of(record)));
            assert!(
                listed_by(&*store, &ScopeFilter::All, None, 100).await? == records,
                "a list shows each token's restrictions and disablement as issued"
            );
            let expiring = valid(
                store
                    .list_expiring(&ScopeFilter::All, T0..T0 + Duration::days(30), None, 100)
                    .await?,
            );
            assert!(
                expiring == [only_expiring],
                "the expiring list shows them as issued too: {expiring:?}"
            );
            Ok(())
        },
    )
    .await;
}

/// `update` disables a live token and enables a disabled one; disabling a
/// disabled token, or enabling one that is not, is `Unchanged` and keeps
/// the first disablement (who paused it, and when, is not overwritten by a
/// second pause); verification sees each change at once.
pub async fn disable_keeps_the_first_and_enable_clears(store: Arc<dyn TokenStore>) {
    passes("disable_keeps_the_first_and_enable_clears", async move {
        let mut target = record(org("acme"), T0);
        target.restrictions = restricted();
        store.insert(target.clone()).await?;
        let (scope, id) = (target.scope.clone(), target.id);
        let mut expected = target;
        let first = disablement("bob", T0 + Duration::minutes(1));
        let second = disablement("carol", T0 + Duration::minutes(2));

        let outcome = store
            .update(&scope, id, &TokenChange::Disable(first.clone()))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "disabling a live token updates it, not {outcome:?}"
        );
        expected.disabled = Some(first);
        assert_stored(&*store, &expected, "a disabled token reads back disabled").await?;
        let outcome = store
            .update(&scope, id, &TokenChange::Disable(second.clone()))
            .await?;
        assert!(
            outcome == UpdateOutcome::Unchanged,
            "disabling a disabled token is Unchanged, not {outcome:?}"
        );
        assert_stored(&*store, &expected, "a second disable keeps the first").await?;

        let outcome = store.update(&scope, id, &TokenChange::Enable).await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "enabling a disabled token updates it, not {outcome:?}"
        );
        expected.disabled = None;
        assert_stored(&*store, &expected, "an enabled token reads back enabled").await?;
        let outcome = store.update(&scope, id, &TokenChange::Enable).await?;
        assert!(
            outcome == UpdateOutcome::Unchanged,
            "enabling a token that is not disabled is Unchanged, not {outcome:?}"
        );
        assert_stored(&*store, &expected, "a second enable changes nothing").await?;

        let outcome = store
            .update(&scope, id, &TokenChange::Disable(second.clone()))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "a token enabled again can be disabled again, not {outcome:?}"
        );
        expected.disabled = Some(second);
        assert_stored(&*store, &expected, "a new pause after an enable is kept").await
    })
    .await;
}

/// An edit sets the label and, given an expiry change, the expiry, only
/// while the expiry is still the one the caller read (a compare-and-set, a
/// token that never expires included): an edit whose expiry moved is
/// `ExpiryMoved` with the expiry the token has now and changes nothing,
/// not even the label. Restrictions and a disablement are kept.
pub async fn edit_sets_the_label_and_compares_the_expiry(store: Arc<dyn TokenStore>) {
    passes("edit_sets_the_label_and_compares_the_expiry", async move {
        let mut target = record(domain("acme", "shop"), T0);
        target.expires_at = Some(T0 + Duration::days(30));
        target.restrictions = restricted();
        store.insert(target.clone()).await?;
        let (scope, id) = (target.scope.clone(), target.id);
        let mut expected = target;
        let edit = |text: Option<&str>, expiry: Option<(Option<Duration>, Option<Duration>)>| {
            TokenChange::Edit {
                label: text.map(label),
                expiry: expiry.map(|(from, to)| ExpiryChange {
                    from: from.map(|days| T0 + days),
                    to: to.map(|days| T0 + days),
                }),
            }
        };
        let (d30, d60, d90) = (
            Some(Duration::days(30)),
            Some(Duration::days(60)),
            Some(Duration::days(90)),
        );

        let outcome = store
            .update(&scope, id, &edit(Some("renamed"), None))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "an edit of the label updates, not {outcome:?}"
        );
        expected.label = label("renamed");
        assert_stored(&*store, &expected, "an edit sets the label alone").await?;

        let outcome = store
            .update(&scope, id, &edit(Some("extended"), Some((d30, d60))))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "an edit from the current expiry updates, not {outcome:?}"
        );
        expected.label = label("extended");
        expected.expires_at = Some(T0 + Duration::days(60));
        assert_stored(&*store, &expected, "an edit sets the label and the expiry").await?;

        let outcome = store
            .update(&scope, id, &edit(Some("lost"), Some((d30, None))))
            .await?;
        assert!(
            outcome == UpdateOutcome::ExpiryMoved(expected.expires_at),
            "an edit whose expiry moved is refused with the expiry it has now, not {outcome:?}"
        );
        assert_stored(
            &*store,
            &expected,
            "an edit whose expiry moved changes nothing, not even the label",
        )
        .await?;

        let outcome = store
            .update(&scope, id, &edit(None, Some((d60, None))))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "an edit to never expire updates, not {outcome:?}"
        );
        expected.expires_at = None;
        assert_stored(
            &*store,
            &expected,
            "an edit to never expire keeps the label",
        )
        .await?;
        let outcome = store
            .update(&scope, id, &edit(None, Some((d60, d90))))
            .await?;
        assert!(
            outcome == UpdateOutcome::ExpiryMoved(None),
            "an edit from an expiry a token that never expires lacks is refused, not {outcome:?}"
        );
        assert_stored(&*store, &expected, "and changes nothing").await?;
        let outcome = store
            .update(&scope, id, &edit(None, Some((None, d90))))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "an edit from never (as read) updates, not {outcome:?}"
        );
        expected.expires_at = Some(T0 + Duration::days(90));
        assert_stored(&*store, &expected, "an edit from never sets the expiry").await?;

        let paused = disablement("bob", T0 + Duration::hours(1));
        store
            .update(&scope, id, &TokenChange::Disable(paused.clone()))
            .await?;
        let outcome = store
            .update(&scope, id, &edit(Some("paused"), None))
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "a disabled token can be edited, not {outcome:?}"
        );
        expected.label = label("paused");
        expected.disabled = Some(paused);
        assert_stored(&*store, &expected, "an edit keeps the disablement").await
    })
    .await;
}

/// `update` reaches a token only at the token's own scope: addressed at any
/// other (its organization, a sibling domain, one of its domains, another
/// organization) every change is `NotFound`, whether the token is live,
/// disabled, revoked or replaced, and the record is left unchanged.
pub async fn update_reaches_only_its_own_scope(store: Arc<dyn TokenStore>) {
    passes("update_reaches_only_its_own_scope", async move {
        let mut shop = record(domain("acme", "shop"), T0);
        shop.expires_at = Some(T0 + Duration::days(30));
        let mut acme = record(org("acme"), T0);
        acme.disabled = Some(disablement("bob", T0));
        let mut revoked = record(domain("acme", "shop"), T0);
        revoked.revoked = Some(revocation("bob", T0));
        let mut replaced = record(org("acme"), T0);
        replaced.replaced_by = Some(random_id());
        for record in [&shop, &acme, &revoked, &replaced] {
            store.insert(record.clone()).await?;
        }
        let (not_shop, not_acme) = (not_acme_shop(), not_acme_itself());
        for (target, elsewhere) in [
            (&shop, &not_shop[..]),
            (&acme, &not_acme[..]),
            (&revoked, &not_shop[..]),
            (&replaced, &not_acme[..]),
        ] {
            let changes = every_change(target.expires_at);
            for scope in elsewhere {
                for change in &changes {
                    let outcome = store.update(scope, target.id, change).await?;
                    assert!(
                        outcome == UpdateOutcome::NotFound,
                        "an update addressed at another scope ({scope}; the token's is {}) is \
                         NotFound, not {outcome:?}",
                        target.scope
                    );
                    assert_stored(
                        &*store,
                        target,
                        "a token updated at another scope is left unchanged",
                    )
                    .await?;
                }
            }
        }
        let outcome = store
            .update(
                &shop.scope,
                shop.id,
                &TokenChange::Disable(disablement("alice", T0 + Duration::hours(2))),
            )
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "a token updated at its own scope is updated, not {outcome:?}"
        );
        Ok(())
    })
    .await;
}

/// A revoked token (on its own, or by a scope revocation) is `Revoked` and
/// a replaced one `Replaced` naming its successor, for every change, a
/// disabled token's disable and enable included: revocation and
/// replacement are final, and nothing changes. A token issued after its
/// scope was revoked updates.
pub async fn update_refuses_revoked_and_replaced_records(store: Arc<dyn TokenStore>) {
    passes("update_refuses_revoked_and_replaced_records", async move {
        let revoked = record(org("acme"), T0);
        let mut paused_then_revoked = record(org("acme"), T0);
        paused_then_revoked.disabled = Some(disablement("bob", T0));
        let covered = record(domain("acme", "shop"), T0);
        let mut covered_paused = record(domain("acme", "shop"), T0);
        covered_paused.disabled = Some(disablement("bob", T0));
        let mut old = record(org("acme"), T0);
        old.expires_at = Some(T0 + Duration::days(30));
        for record in [
            &revoked,
            &paused_then_revoked,
            &covered,
            &covered_paused,
            &old,
        ] {
            store.insert(record.clone()).await?;
        }
        for record in [&revoked, &paused_then_revoked] {
            store
                .revoke(&record.scope, record.id, revocation("bob", T0))
                .await?;
        }
        store
            .revoke_scope(&domain("acme", "shop"), revocation("carol", T0))
            .await?;
        let mut successor = record(org("acme"), T0 + Duration::seconds(1));
        successor.rotated_from = Some(old.id);
        let successor_id = successor.id;
        let rotated = store
            .rotate(
                &old.scope,
                old.id,
                Retirement::ExpiresAt(T0 + Duration::days(1)),
                successor,
            )
            .await?;
        assert!(rotated == RotateOutcome::Rotated, "a live token rotates");

        for (target, refused, what) in [
            (&revoked, UpdateOutcome::Revoked, "revoked"),
            (
                &paused_then_revoked,
                UpdateOutcome::Revoked,
                "disabled, then revoked",
            ),
            (&covered, UpdateOutcome::Revoked, "scope-revoked"),
            (
                &covered_paused,
                UpdateOutcome::Revoked,
                "disabled, then scope-revoked",
            ),
            (&old, UpdateOutcome::Replaced(successor_id), "replaced"),
        ] {
            let before = found(&*store, target.id).await?;
            for change in every_change(before.expires_at) {
                let outcome = store.update(&before.scope, before.id, &change).await?;
                assert!(
                    outcome == refused,
                    "{change:?} of a {what} token is {refused:?}, not {outcome:?}"
                );
                assert_stored(&*store, &before, "a refused update changes nothing").await?;
            }
        }
        let later = record(domain("acme", "shop"), T0 + Duration::hours(1));
        store.insert(later.clone()).await?;
        let outcome = store
            .update(
                &later.scope,
                later.id,
                &TokenChange::Disable(disablement("erin", T0 + Duration::hours(2))),
            )
            .await?;
        assert!(
            outcome == UpdateOutcome::Updated,
            "a token issued after its scope was revoked updates, not {outcome:?}"
        );
        Ok(())
    })
    .await;
}

/// Of many concurrent disables of one token exactly one is `Updated` and
/// its disablement is the one kept, the others `Unchanged`; likewise of
/// many concurrent enables exactly one is `Updated`.
pub async fn concurrent_disables_update_once(store: Arc<dyn TokenStore>) {
    passes("concurrent_disables_update_once", async move {
        let target = record(domain("acme", "shop"), T0);
        store.insert(target.clone()).await?;
        let race = |enable: bool| {
            let racers: Vec<_> = (0..RACERS)
                .map(|n| {
                    let store = store.clone();
                    let (scope, id) = (target.scope.clone(), target.id);
                    let change = match enable {
                        true => TokenChange::Enable,
                        false => TokenChange::Disable(disablement(
                            &format!("racer{n}"),
                            T0 + Duration::seconds(n as i64),
                        )),
                    };
                    tokio::spawn(async move {
                        let outcome = store.update(&scope, id, &change).await;
                        (change, outcome)
                    })
                })
                .collect();
            async move {
                let mut winners = Vec::new();
                for racer in racers {
                    let (change, outcome) = racer.await.expect("a racing task panicked");
                    match outcome? {
                        UpdateOutcome::Updated => winners.push(change),
                        UpdateOutcome::Unchanged => {}
                        other => panic!("a concurrent {change:?} said {other:?}"),
                    }
                }
                Ok::<_, StoreError>(winners)
            }
        };
        let winners = race(false).await?;
        assert!(
            winners.len() == 1,
            "exactly one of {RACERS} concurrent disables is Updated, not {}",
            winners.len()
        );
        let TokenChange::Disable(kept) = &winners[0] else {
            unreachable!("only disables raced")
        };
        assert!(
            found(&*store, target.id).await?.disabled.as_ref() == Some(kept),
            "the winner's disablement is the one kept"
        );
        let winners = race(true).await?;
        assert!(
            winners.len() == 1,
            "exactly one of {RACERS} concurrent enables is Updated, not {}",
            winners.len()
        );
        assert_stored(&*store, &target, "enabled, the token is as issued").await
    })
    .await;
}

/// Rotation stores the successor exactly as given, its restrictions and
/// disablement included (the service copies the old token's restrictions,
/// or narrows them; the store keeps what it is given), and leaves the old
/// token's own.
pub async fn rotation_stores_the_successors_restrictions(store: Arc<dyn TokenStore>) {
    passes("rotation_stores_the_successors_restrictions", async move {
        let mut old = record(domain("acme", "shop"), T0);
        old.restrictions = restricted();
        store.insert(old.clone()).await?;
        let mut successor = record(old.scope.clone(), T0 + Duration::seconds(1));
        successor.rotated_from = Some(old.id);
        successor.restrictions = old.restrictions.clone();
        let grace_end = T0 + Duration::days(1);
        let outcome = store
            .rotate(
                &old.scope,
                old.id,
                Retirement::ExpiresAt(grace_end),
                successor.clone(),
            )
            .await?;
        assert!(outcome == RotateOutcome::Rotated, "a live token rotates");
        assert_stored(&*store, &successor, "a successor is stored as given").await?;
        let mut retired = old.clone();
        retired.replaced_by = Some(successor.id);
        retired.expires_at = Some(grace_end);
        assert_stored(&*store, &retired, "the old token keeps its restrictions").await?;

        // Narrowed, and disabled, without grace: still stored as given.
        let mut next = record(old.scope.clone(), T0 + Duration::seconds(2));
        next.rotated_from = Some(successor.id);
        next.restrictions = Restrictions {
            permissions: Some(vec![permission("billing:read")]),
            allowed_networks: Some(vec![network("2001:db8::/32")]),
            rate_limit: None,
        };
        next.disabled = Some(disablement("alice", T0 + Duration::seconds(2)));
        let revoked = revocation("alice", T0 + Duration::seconds(2));
        let outcome = store
            .rotate(
                &successor.scope,
                successor.id,
                Retirement::Revoked(revoked.clone()),
                next.clone(),
            )
            .await?;
        assert!(
            outcome == RotateOutcome::Rotated,
            "a live successor rotates"
        );
        assert_stored(&*store, &next, "a narrowed successor is stored as given").await?;
        successor.replaced_by = Some(next.id);
        successor.revoked = Some(revoked);
        assert_stored(&*store, &successor, "the retired successor keeps its own").await
    })
    .await;
}

/// A notice window from `start`, `days` long.
fn notice_window(start: OffsetDateTime, days: i64) -> NoticeWindow {
    NoticeWindow {
        start,
        end: start + Duration::days(days),
        length_secs: u32::try_from(days * 24 * 3600).expect("a window in seconds"),
    }
}

/// The ids of claimed records, none damaged, in the order given.
fn claimed_ids(claimed: Vec<ListedRecord>) -> Vec<TokenId> {
    valid(claimed).iter().map(|record| record.id).collect()
}

/// `claim_expiry_notices` returns the live tokens of the filter's scopes
/// expiring in the window (disabled ones too; not revoked, replaced or
/// expired ones, nor other scopes'), soonest first, as stored, and each
/// once per window length: a second claim by the same window gets none, a
/// longer window none of those, a shorter window each again, and a token
/// whose expiry was edited is due afresh. The mark shows in no record.
pub async fn notices_claim_each_token_once_per_window(store: Arc<dyn TokenStore>) {
    passes("notices_claim_each_token_once_per_window", async move {
        let expiring = |scope: Scope, days: i64| {
            let mut record = record(scope, T0 - Duration::days(1));
            record.expires_at = Some(T0 + Duration::days(days));
            record
        };
        let (in_two, in_five, later) = (
            expiring(org("acme"), 2),
            expiring(org("acme"), 5),
            expiring(org("acme"), 20),
        );
        let mut disabled = expiring(org("acme"), 6);
        disabled.disabled = Some(disablement("bob", T0 - Duration::hours(1)));
        let revoked = expiring(org("acme"), 3);
        let mut replaced = expiring(org("acme"), 4);
        replaced.replaced_by = Some(random_id());
        let expired = expiring(org("acme"), -1);
        let elsewhere = expiring(domain("acme", "shop"), 1);
        let never = record(org("acme"), T0);
        for record in [
            &in_five, &later, &in_two, &disabled, &revoked, &replaced, &expired, &elsewhere, &never,
        ] {
            store.insert(record.clone()).await?;
        }
        store
            .revoke(&revoked.scope, revoked.id, revocation("bob", T0))
            .await?;
        let acme = exactly(org("acme"));
        let week = notice_window(T0, 7);

        let claimed = valid(store.claim_expiry_notices(&acme, week, 100).await?);
        assert!(
            claimed == [in_two.clone(), in_five.clone(), disabled.clone()],
            "a claim returns the scope's live tokens expiring in the window, disabled ones \
             too, soonest first, as stored"
        );
        assert!(
            store
                .claim_expiry_notices(&acme, week, 100)
                .await?
                .is_empty(),
            "a claimed token is not claimed again by the same window"
        );
        assert!(
            found(&*store, in_two.id).await? == in_two,
            "a claim changes nothing a record shows"
        );
        assert!(
            claimed_ids(
                store
                    .claim_expiry_notices(&acme, notice_window(T0, 30), 100)
                    .await?
            ) == [later.id],
            "a longer window claims only what no window as short or shorter claimed"
        );
        assert!(
            claimed_ids(
                store
                    .claim_expiry_notices(&acme, notice_window(T0, 3), 100)
                    .await?
            ) == [in_two.id],
            "a shorter window claims again what a longer one claimed"
        );
        let edit = TokenChange::Edit {
            label: None,
            expiry: Some(ExpiryChange {
                from: in_five.expires_at,
                to: Some(T0 + Duration::days(4)),
            }),
        };
        store.update(&in_five.scope, in_five.id, &edit).await?;
        assert!(
            claimed_ids(store.claim_expiry_notices(&acme, week, 100).await?) == [in_five.id],
            "a token whose expiry changed is due afresh, about the new expiry"
        );
        assert!(
            claimed_ids(
                store
                    .claim_expiry_notices(&ScopeFilter::All, week, 100)
                    .await?
            ) == [elsewhere.id],
            "a claim reads the scopes its filter reads, and only those"
        );
        Ok(())
    })
    .await;
}

/// Concurrent claims share the due tokens out: every one is claimed by
/// exactly one call, and no call returns more than its limit (none for a
/// limit of 0).
pub async fn notice_claims_race_once(store: Arc<dyn TokenStore>) {
    passes("notice_claims_race_once", async move {
        let mut due = Vec::new();
        for n in 0..40 {
            let mut record = record(org("acme"), T0 - Duration::days(1));
            record.expires_at = Some(T0 + Duration::hours(n + 1));
            store.insert(record.clone()).await?;
            due.push(record.id);
        }
        let window = notice_window(T0, 7);
        assert!(
            store
                .claim_expiry_notices(&ScopeFilter::All, window, 0)
                .await?
                .is_empty(),
            "a claim with a limit of 0 claims nothing"
        );
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    // Each claim but the last takes at least one of the 40.
                    for _ in 0..=40 {
                        let claimed = store
                            .claim_expiry_notices(&ScopeFilter::All, window, 3)
                            .await?;
                        assert!(
                            claimed.len() <= 3,
                            "a claim returns at most its limit of 3, not {}",
                            claimed.len()
                        );
                        if claimed.is_empty() {
                            return Ok::<_, StoreError>(mine);
                        }
                        mine.extend(claimed_ids(claimed));
                    }
                    panic!("claims go on returning tokens: a claimed token is claimed again");
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for racer in racers {
            claimed.extend(racer.await.expect("a racing task panicked")?);
        }
        claimed.sort();
        due.sort();
        assert!(
            claimed == due,
            "of {RACERS} concurrent claims, each due token goes to exactly one \
             ({} claims for {} tokens)",
            claimed.len(),
            due.len()
        );
        Ok(())
    })
    .await;
}

/// A released claim is claimed again by its window; a release that names
/// another window's length, or an expiry the token no longer has, changes
/// nothing; an unknown id is skipped.
pub async fn released_notices_are_claimed_again(store: Arc<dyn TokenStore>) {
    passes("released_notices_are_claimed_again", async move {
        let mut target = record(org("acme"), T0 - Duration::days(1));
        target.expires_at = Some(T0 + Duration::days(2));
        store.insert(target.clone()).await?;
        let week = notice_window(T0, 7);
        let acme = exactly(org("acme"));
        let position = ExpiryCursor::of(&target).expect("it expires");
        let claimed = store.claim_expiry_notices(&acme, week, 10).await?;
        assert!(claimed_ids(claimed) == [target.id], "the token is claimed");

        let unknown = ExpiryCursor {
            id: random_id(),
            ..position
        };
        let stale = ExpiryCursor {
            expires_at: T0 + Duration::days(3),
            ..position
        };
        let month_secs = notice_window(T0, 30).length_secs;
        store
            .release_expiry_notices(month_secs, &[position, unknown])
            .await?;
        store
            .release_expiry_notices(week.length_secs, &[stale])
            .await?;
        assert!(
            store
                .claim_expiry_notices(&acme, week, 10)
                .await?
                .is_empty(),
            "a release of another window's length or of another expiry leaves the claim"
        );
        store
            .release_expiry_notices(week.length_secs, &[position, unknown])
            .await?;
        assert!(
            claimed_ids(store.claim_expiry_notices(&acme, week, 10).await?) == [target.id],
            "a released token is claimed again by its window"
        );
        Ok(())
    })
    .await;
}
