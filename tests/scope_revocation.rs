//! Revoking a whole scope: an organization with its domains, or one domain;
//! earlier revocations kept; nothing issued before the call left live.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use api_tokens::{RevokeScopeError, TokenId, TokenStatus, VerifyError};
use common::*;

#[tokio::test]
async fn an_organization_scope_takes_its_domains_and_nothing_else() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let (_, acme) = fixture.issue_at(org("acme"), "org").await;
    let (shop_token, shop) = fixture.issue_at(domain("acme", "shop"), "shop").await;
    let (_, blog) = fixture.issue_at(domain("acme", "blog"), "blog").await;
    let (globex_token, globex) = fixture.issue_at(org("globex"), "other tenant").await;
    let (_, globex_shop) = fixture
        .issue_at(domain("globex", "shop"), "same domain id")
        .await;

    // Revoked earlier: keeps that revocation, and does not count.
    fixture.clock.advance(MINUTE);
    fixture
        .service
        .revoke(&alice, &domain("acme", "blog"), blog)
        .await
        .unwrap();
    let earlier = fixture.store.record(blog).await.revoked.unwrap();

    fixture.clock.advance(MINUTE);
    let revoked = fixture
        .service
        .revoke_scope(&alice, &org("acme"), Some("customer offboarded"))
        .await
        .unwrap();
    assert_eq!(revoked.count, 2);
    for id in [acme, shop] {
        let revocation = fixture.store.record(id).await.revoked.unwrap();
        assert_eq!(revocation.at, START + 2 * MINUTE);
        assert_eq!(revocation.by, alice.id);
        assert_eq!(revocation.reason.unwrap().as_str(), "customer offboarded");
    }
    assert_eq!(fixture.store.record(blog).await.revoked.unwrap(), earlier);
    for id in [globex, globex_shop] {
        assert_eq!(
            fixture.store.record(id).await.status_at(START),
            TokenStatus::Active
        );
    }
    assert!(matches!(
        fixture.service.verify(&shop_token).await,
        Err(VerifyError::Revoked)
    ));
    assert!(fixture.service.verify(&globex_token).await.is_ok());
}

#[tokio::test]
async fn a_domain_scope_takes_only_that_domain() {
    let fixture = fixture();
    let (_, acme) = fixture.issue_at(org("acme"), "org").await;
    let (_, shop) = fixture.issue_at(domain("acme", "shop"), "shop").await;
    let (_, blog) = fixture.issue_at(domain("acme", "blog"), "blog").await;
    let bob = domain_admin("acme", "shop");
    let revoked = fixture
        .service
        .revoke_scope(&bob, &domain("acme", "shop"), None)
        .await
        .unwrap();
    assert_eq!(revoked.count, 1);
    assert!(fixture.store.record(shop).await.revoked.is_some());
    for id in [acme, blog] {
        assert!(fixture.store.record(id).await.revoked.is_none());
    }
}

#[tokio::test]
async fn only_an_admin_of_the_scope_may_and_a_refusal_changes_nothing() {
    let fixture = fixture();
    let (_, acme) = fixture.issue_at(org("acme"), "org").await;
    let (_, shop) = fixture.issue_at(domain("acme", "shop"), "shop").await;
    let refused = [
        (domain_admin("acme", "shop"), org("acme")),
        (domain_admin("acme", "blog"), domain("acme", "shop")),
        (org_admin("globex"), org("acme")),
        (
            actor("viewer", &[(org("acme"), api_tokens::Role::Editor)]),
            org("acme"),
        ),
    ];
    for (actor, scope) in refused {
        assert!(matches!(
            fixture.service.revoke_scope(&actor, &scope, None).await,
            Err(RevokeScopeError::NotAllowed { .. })
        ));
    }
    assert!(matches!(
        fixture
            .service
            .revoke_scope(&org_admin("acme"), &org("acme"), Some(""))
            .await,
        Err(RevokeScopeError::InvalidReason(_))
    ));
    for id in [acme, shop] {
        assert!(fixture.store.record(id).await.revoked.is_none());
    }
}

/// Tokens issued from other threads while the scope is revoked: every one
/// whose issue returned before the revocation began is revoked; the rest are
/// either revoked too or issued after it, never half-way.
#[test]
fn nothing_issued_before_the_call_survives_it() {
    let fixture = Arc::new(fixture());
    // Each issue, once returned, takes a number from this counter.
    let returned = Arc::new(AtomicU64::new(0));
    let issued: Arc<Mutex<Vec<(u64, TokenId)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let issuers: Vec<_> = (0..3)
        .map(|n| {
            let (fixture, returned, issued, stop) = (
                fixture.clone(),
                returned.clone(),
                issued.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let scope = if n == 0 {
                    org("acme")
                } else {
                    domain("acme", "shop")
                };
                while !stop.load(Ordering::SeqCst) {
                    let (_, id) = runtime.block_on(fixture.issue_at(scope.clone(), "racing"));
                    let number = returned.fetch_add(1, Ordering::SeqCst);
                    issued.lock().unwrap().push((number, id));
                }
            })
        })
        .collect();
    while returned.load(Ordering::SeqCst) < 300 {
        std::thread::yield_now();
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let began = returned.load(Ordering::SeqCst);
    let revoked = runtime
        .block_on(
            fixture
                .service
                .revoke_scope(&org_admin("acme"), &org("acme"), None),
        )
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for issuer in issuers {
        issuer.join().unwrap();
    }

    let issued = issued.lock().unwrap();
    let mut revoked_here = 0;
    for &(number, id) in issued.iter() {
        let record = runtime.block_on(fixture.store.record(id));
        if number < began {
            assert!(
                record.revoked.is_some(),
                "token {number} issued before the call is live"
            );
        }
        revoked_here += u64::from(record.revoked.is_some());
    }
    assert_eq!(
        revoked.count, revoked_here,
        "the count is what the call revoked"
    );
    assert!(revoked.count >= began);
}
