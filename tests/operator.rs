//! Background jobs act through the operator handle: across every scope,
//! with no actor's rights, and audited under the job's name.

mod common;

use std::collections::HashSet;

use api_tokens::store::{REPORTED_IDS, ScopeFilter};
use api_tokens::{
    ActorId, AuditEvent, IssueRequest, PageRequest, REVOKE_BATCH, RevokeCreatedByError, Role,
    TokenId, VerifyError,
};
use common::*;

/// Issues a token at `scope` by `creator` (an admin there), expiring
/// `in_days` from the fixture's start if given.
async fn issue_by(
    fixture: &Fixture,
    creator: &str,
    scope: api_tokens::Scope,
    in_days: Option<u32>,
) -> (String, TokenId) {
    let issuer = actor(creator, &[(scope.clone(), Role::Admin)]);
    let mut request = IssueRequest::new(scope, format!("by {creator}"));
    if let Some(days) = in_days {
        request = request.expires_in(days * DAY);
    }
    let issued = fixture.service.issue(&issuer, request).await.unwrap();
    (issued.token.expose_secret().to_owned(), issued.summary.id)
}

fn job(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

#[tokio::test]
async fn an_organization_is_listed_with_its_domains_and_everything_pages() {
    let fixture = fixture();
    let mut acme = HashSet::new();
    for scope in [org("acme"), domain("acme", "shop"), domain("acme", "blog")] {
        for _ in 0..3 {
            acme.insert(issue_by(&fixture, "alice", scope.clone(), None).await.1);
            fixture.clock.advance(SECOND);
        }
    }
    let globex = issue_by(&fixture, "carol", org("globex"), None).await.1;
    let operator = fixture.service.operator(job("audit-export"));

    let mut listed = Vec::new();
    let mut page = PageRequest::first(4);
    let covered = ScopeFilter::Covered(org("acme"));
    loop {
        let got = operator.list(&covered, page).await.unwrap();
        assert!(got.tokens.len() <= 4);
        listed.extend(got.tokens.iter().map(|token| token.id));
        match got.next {
            Some(next) => page = PageRequest::after(next, 4),
            None => break,
        }
    }
    // Every token of acme and its domains, once, newest first; none of globex.
    assert_eq!(listed.len(), 9);
    assert_eq!(listed.iter().copied().collect::<HashSet<_>>(), acme);

    let exactly = operator
        .list(&ScopeFilter::Exactly(org("acme")), PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(exactly.tokens.len(), 3);

    let everything = operator
        .list(&ScopeFilter::All, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(everything.tokens.len(), 10);
    assert_eq!(everything.tokens[0].id, globex, "newest first");

    assert!(
        operator
            .list(&ScopeFilter::All, PageRequest::first(0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_mailer_finds_every_scopes_tokens_expiring_soon_soonest_first() {
    let fixture = fixture();
    let shop_soon = issue_by(&fixture, "bob", domain("acme", "shop"), Some(3))
        .await
        .1;
    let globex_sooner = issue_by(&fixture, "carol", org("globex"), Some(1)).await.1;
    let acme_later = issue_by(&fixture, "alice", org("acme"), Some(6)).await.1;
    let _not_soon = issue_by(&fixture, "alice", org("acme"), Some(30)).await;
    let _never = issue_by(&fixture, "alice", org("acme"), None).await;
    let mailer = fixture.service.operator(job("expiry-mailer"));

    let week = mailer
        .list_expiring(&ScopeFilter::All, 7 * DAY, PageRequest::first(2))
        .await
        .unwrap();
    let ids: Vec<_> = week.tokens.iter().map(|token| token.id).collect();
    assert_eq!(ids, [globex_sooner, shop_soon]);
    let rest = mailer
        .list_expiring(
            &ScopeFilter::All,
            7 * DAY,
            PageRequest::after(week.next.unwrap(), 2),
        )
        .await
        .unwrap();
    let ids: Vec<_> = rest.tokens.iter().map(|token| token.id).collect();
    assert_eq!(ids, [acme_later]);
    assert_eq!(rest.next, None);

    // One organization with its domains only.
    let acme = mailer
        .list_expiring(
            &ScopeFilter::Covered(org("acme")),
            7 * DAY,
            PageRequest::first(10),
        )
        .await
        .unwrap();
    let ids: Vec<_> = acme.tokens.iter().map(|token| token.id).collect();
    assert_eq!(ids, [shop_soon, acme_later]);
}

#[tokio::test]
async fn offboarding_revokes_every_token_the_person_created_and_nothing_else() {
    let fixture = fixture();
    let mut alices = Vec::new();
    for scope in [org("acme"), domain("acme", "shop"), org("globex")] {
        alices.push(issue_by(&fixture, "alice", scope, None).await);
    }
    let bobs = issue_by(&fixture, "bob", domain("acme", "shop"), None).await;
    let offboarding = fixture.service.operator(job("offboarding"));

    let revoked = offboarding
        .revoke_created_by(&ActorId::new("alice").unwrap(), Some("left the company"))
        .await
        .unwrap();

    assert_eq!(revoked.count, 3);
    let expected: HashSet<_> = alices.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        revoked.first.iter().copied().collect::<HashSet<_>>(),
        expected
    );
    for (text, _) in &alices {
        assert!(matches!(
            fixture.service.verify(text).await,
            Err(VerifyError::Revoked)
        ));
    }
    assert!(fixture.service.verify(&bobs.0).await.is_ok());

    let events = fixture.audit_events().await;
    let offboarded: Vec<_> = events
        .iter()
        .filter(|event| matches!(event, AuditEvent::CreatorRevoked { .. }))
        .collect();
    assert_eq!(offboarded.len(), 1);
    match offboarded[0] {
        AuditEvent::CreatorRevoked {
            actor,
            creator,
            reason,
            count,
            ..
        } => {
            assert_eq!(actor.as_str(), "offboarding");
            assert_eq!(creator.as_str(), "alice");
            assert_eq!(reason.as_ref().unwrap().as_str(), "left the company");
            assert_eq!(*count, 3);
        }
        _ => unreachable!(),
    }

    // Again: nothing left, nothing audited.
    let again = offboarding
        .revoke_created_by(&ActorId::new("alice").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(again.count, 0);
    assert!(again.first.is_empty());
    let events_after = fixture.audit_events().await;
    assert_eq!(events_after.len(), events.len());
}

#[tokio::test]
async fn offboarding_goes_in_bounded_batches_and_reports_a_bounded_list() {
    let fixture = fixture();
    let mut texts = Vec::new();
    for _ in 0..REVOKE_BATCH + 5 {
        texts.push(issue_by(&fixture, "alice", org("acme"), None).await.0);
    }
    let calls_before = fixture.store.calls();

    let revoked = fixture
        .service
        .operator(job("offboarding"))
        .revoke_created_by(&ActorId::new("alice").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(revoked.count, (REVOKE_BATCH + 5) as u64);
    assert_eq!(revoked.first.len(), REPORTED_IDS);
    // Two store calls: a full batch, then the rest.
    assert_eq!(fixture.store.calls() - calls_before, 2);
    for text in [&texts[0], &texts[REVOKE_BATCH + 4]] {
        assert!(fixture.service.verify(text).await.is_err());
    }
}

#[tokio::test]
async fn a_bad_reason_revokes_nothing() {
    let fixture = fixture();
    let (text, _) = issue_by(&fixture, "alice", org("acme"), None).await;

    let refused = fixture
        .service
        .operator(job("offboarding"))
        .revoke_created_by(&ActorId::new("alice").unwrap(), Some("bad\u{0}reason"))
        .await;

    assert!(matches!(
        refused,
        Err(RevokeCreatedByError::InvalidReason(_))
    ));
    assert!(fixture.service.verify(&text).await.is_ok());
}
