//! The in-memory store on its own and under concurrent use from OS threads.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use api_tokens::store::{RevokeOutcome, ScopeFilter, TokenStore};
use api_tokens::{
    ActorId, IssueRequest, MemoryStore, Revocation, StoreError, TokenId, TokenRecord, TokenService,
    VerifyError,
};
use common::*;
use static_assertions::assert_impl_all;

// The service holds its store as `Arc<dyn TokenStore>`; the service itself is
// shared between threads.
assert_impl_all!(MemoryStore: TokenStore, Send, Sync);
assert_impl_all!(TokenService: Send, Sync);
assert_impl_all!(Arc<dyn TokenStore>: Send, Sync);

/// The service's futures can be spawned onto a multi-threaded runtime.
#[allow(dead_code)]
fn futures_are_send(service: &'static TokenService, actor: &'static api_tokens::Actor) {
    fn spawnable<F: std::future::Future + Send>(_: F) {}
    spawnable(service.verify(""));
    spawnable(service.issue(actor, IssueRequest::new(org("acme"), "x")));
    let id = "00000000000".parse().unwrap();
    spawnable(service.revoke(actor, &org("acme"), id));
    spawnable(service.rotate(actor, &org("acme"), id, std::time::Duration::ZERO));
    spawnable(service.lookup(actor, &org("acme"), id));
    spawnable(service.list(actor, &org("acme"), Default::default()));
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

async fn sample_record(fixture: &Fixture) -> TokenRecord {
    let issued = fixture
        .service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), "sample"))
        .await
        .unwrap();
    fixture.store.record(issued.summary.id).await
}

#[tokio::test]
async fn duplicate_insert_fails_and_changes_nothing() {
    let fixture = fixture();
    let original = sample_record(&fixture).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    store.insert(original.clone()).await.unwrap();

    let mut impostor = original.clone();
    impostor.label = api_tokens::Label::new("impostor").unwrap();
    impostor.scope = org("globex");
    match store.insert(impostor).await {
        Err(StoreError::AlreadyExists { id }) => assert_eq!(id, original.id),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.find(original.id).await.unwrap().unwrap(), original);
    assert!(
        store
            .list(&ScopeFilter::Exactly(org("globex")), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn agree(store: &MemoryStore, ids: &[TokenId]) {
    for &id in ids {
        let record = store.find(id).await.unwrap().unwrap();
        let credential = store.find_credential(id).await.unwrap().unwrap();
        assert_eq!(credential, record.credential(), "{id}");
    }
}

/// `find_credential` is what verification trusts: it must say exactly what
/// `find` says, for records stored revoked or expiring and after a revoke.
#[tokio::test]
async fn credentials_agree_with_records_through_every_change() {
    let fixture = fixture();
    let store = MemoryStore::new();
    let active = sample_record(&fixture).await;
    let mut expiring = sample_record(&fixture).await;
    expiring.expires_at = Some(START + DAY);
    let mut revoked = sample_record(&fixture).await;
    revoked.revoked = Some(Revocation {
        at: START,
        by: ActorId::new("alice").unwrap(),
        reason: None,
    });
    let ids = [active.id, expiring.id, revoked.id];
    for record in [active, expiring, revoked] {
        store.insert(record).await.unwrap();
    }
    agree(&store, &ids).await;
    let revocation = Revocation {
        at: START + HOUR,
        by: ActorId::new("bob").unwrap(),
        reason: None,
    };
    store
        .revoke(&org("acme"), ids[0], revocation)
        .await
        .unwrap();
    agree(&store, &ids).await;
    assert!(
        store
            .find_credential(ids[0])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        store
            .find_credential("00000000007".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn unknown_ids_are_none_and_not_found() {
    let store = MemoryStore::new();
    let id: TokenId = "00000000007".parse().unwrap();
    assert!(store.find(id).await.unwrap().is_none());
    let revocation = Revocation {
        at: START,
        by: ActorId::new("alice").unwrap(),
        reason: None,
    };
    assert_eq!(
        store.revoke(&org("acme"), id, revocation).await.unwrap(),
        RevokeOutcome::NotFound
    );
    assert!(store.is_empty());
}

#[test]
fn of_concurrent_revokes_exactly_one_wins_and_its_revocation_is_kept() {
    const THREADS: usize = 8;
    let fixture = fixture();
    let store = Arc::new(MemoryStore::new());
    for round in 0..50 {
        let record = block_on(sample_record(&fixture));
        let id = record.id;
        block_on(store.insert(record)).unwrap();

        let barrier = Arc::new(Barrier::new(THREADS));
        let winners: Vec<Option<ActorId>> = (0..THREADS)
            .map(|n| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || {
                    let by = ActorId::new(&format!("admin-{n}")).unwrap();
                    let revocation = Revocation {
                        at: START,
                        by: by.clone(),
                        reason: None,
                    };
                    barrier.wait();
                    match block_on(store.revoke(&org("acme"), id, revocation)).unwrap() {
                        RevokeOutcome::Revoked => Some(by),
                        RevokeOutcome::AlreadyRevoked(_) => None,
                        other => panic!("the record exists: {other:?}"),
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect();

        let won: Vec<&ActorId> = winners.iter().flatten().collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one revoke changes the record"
        );
        let stored = block_on(store.find(id)).unwrap().unwrap();
        assert_eq!(&stored.revoked.as_ref().unwrap().by, won[0]);
    }
}

/// Verifier threads hammer a shared service while another thread revokes and
/// a third issues. A verify that starts after `revoke` returned must fail.
#[test]
fn no_verify_succeeds_once_revoke_has_returned() {
    const TOKENS: usize = 300;
    const VERIFIERS: usize = 4;
    let fixture = fixture();
    let service = Arc::new(fixture.service);
    let admin = org_admin("acme");

    let mut tokens = Vec::new();
    for n in 0..TOKENS {
        let scope = if n % 2 == 0 {
            org("acme")
        } else {
            domain("acme", "shop")
        };
        let issued =
            block_on(service.issue(&admin, IssueRequest::new(scope, format!("t{n}")))).unwrap();
        tokens.push((
            issued.token.expose_secret().to_owned(),
            issued.summary.id,
            issued.summary.scope,
        ));
    }
    let tokens = Arc::new(tokens);
    let revoke_returned: Arc<Vec<AtomicBool>> =
        Arc::new((0..TOKENS).map(|_| AtomicBool::new(false)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let (successes, refusals, violations) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );

    let verifiers: Vec<_> = (0..VERIFIERS)
        .map(|v| {
            let (service, tokens, revoke_returned, done) = (
                service.clone(),
                tokens.clone(),
                revoke_returned.clone(),
                done.clone(),
            );
            let (successes, refusals, violations) =
                (successes.clone(), refusals.clone(), violations.clone());
            thread::spawn(move || {
                block_on(async {
                    let mut n = v;
                    while !done.load(Ordering::SeqCst) {
                        let index = n % TOKENS;
                        n += 7;
                        let revoked_before = revoke_returned[index].load(Ordering::SeqCst);
                        match service.verify(&tokens[index].0).await {
                            Ok(_) if revoked_before => {
                                violations.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(_) => {
                                successes.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(VerifyError::Revoked) => {
                                refusals.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(other) => panic!("a real token failed with {other:?}"),
                        }
                    }
                })
            })
        })
        .collect();

    let issued = Arc::new(AtomicUsize::new(0));
    let issuer = {
        let (service, admin, done) = (service.clone(), admin.clone(), done.clone());
        let issued_so_far = issued.clone();
        thread::spawn(move || {
            block_on(async {
                let mut issued_count = 0;
                while !done.load(Ordering::SeqCst) {
                    let issued = service
                        .issue(
                            &admin,
                            IssueRequest::new(domain("acme", "blog"), "concurrent"),
                        )
                        .await
                        .unwrap();
                    // Issued means usable, immediately.
                    service.verify(issued.token.expose_secret()).await.unwrap();
                    issued_count += 1;
                    issued_so_far.fetch_add(1, Ordering::SeqCst);
                }
                issued_count
            })
        })
    };

    // The race needs every party running: on a loaded machine a thread may
    // not be scheduled before the revoker is through, so the revoker waits
    // for the first issue and the first success, and the run lasts until a
    // verifier has met a revoked token.
    let running = |counter: &AtomicUsize| {
        while counter.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
    };
    running(&issued);
    running(&successes);
    let revoker = {
        let (service, tokens, revoke_returned) =
            (service.clone(), tokens.clone(), revoke_returned.clone());
        thread::spawn(move || {
            block_on(async {
                // Every other token, in an order unlike the verifiers'.
                for index in (0..TOKENS).rev().step_by(2) {
                    let (_, id, scope) = &tokens[index];
                    service.revoke(&admin, scope, *id).await.unwrap();
                    revoke_returned[index].store(true, Ordering::SeqCst);
                    thread::yield_now();
                }
            })
        })
    };

    revoker.join().unwrap();
    running(&refusals);
    done.store(true, Ordering::SeqCst);
    for verifier in verifiers {
        verifier.join().unwrap();
    }
    let issued_concurrently = issuer.join().unwrap();

    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "a revoked token verified after revoke returned"
    );
    assert!(successes.load(Ordering::SeqCst) > 0 && refusals.load(Ordering::SeqCst) > 0);
    assert!(issued_concurrently > 0);
    for (index, (token, ..)) in tokens.iter().enumerate() {
        let revoked = revoke_returned[index].load(Ordering::SeqCst);
        assert_eq!(
            block_on(service.verify(token)).is_ok(),
            !revoked,
            "token {index}"
        );
    }
    assert_eq!(
        revoke_returned
            .iter()
            .filter(|r| r.load(Ordering::SeqCst))
            .count(),
        TOKENS / 2
    );
    assert_eq!(fixture.store.inner.len(), TOKENS + issued_concurrently);
}
