//! Token lifetimes: the service's expiry policy, and finding the tokens that
//! expire soon.

mod common;

use std::sync::Arc;

use api_tokens::{
    ExpiryPolicy, IssueError, IssueRequest, ListError, ScopeKind, TokenFormat, TokenService,
};
use common::*;
use time::Duration;

/// Organization tokens at most 90 days, 30 by default; domain tokens
/// unlimited, 30 days by default.
fn with_policy(fixture: &Fixture) -> TokenService {
    let policy = ExpiryPolicy::default()
        .with_default_lifetime(Duration::days(30))
        .unwrap()
        .with_max_lifetime(ScopeKind::Organization, Duration::days(90))
        .unwrap();
    TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        fixture.store.clone(),
    )
    .with_clock(Arc::new(fixture.clock.clone()))
    .with_expiry_policy(policy)
}

#[tokio::test]
async fn the_policy_gives_defaults_and_enforces_maximums() {
    let fixture = fixture();
    let service = with_policy(&fixture);
    let alice = org_admin("acme");
    let issue = |request: IssueRequest| service.issue(&alice, request);

    let default_org = issue(IssueRequest::new(org("acme"), "default"))
        .await
        .unwrap();
    assert_eq!(
        default_org.summary.expires_at,
        Some(START + Duration::days(30))
    );
    let longest =
        issue(IssueRequest::new(org("acme"), "longest").expires_at(START + Duration::days(90)))
            .await
            .unwrap();
    assert_eq!(longest.summary.expires_at, Some(START + Duration::days(90)));
    let forever_domain =
        issue(IssueRequest::new(domain("acme", "shop"), "forever").never_expires())
            .await
            .unwrap();
    assert_eq!(forever_domain.summary.expires_at, None);

    let calls_before = fixture.store.calls();
    assert!(matches!(
        issue(IssueRequest::new(org("acme"), "too long")
            .expires_at(START + Duration::days(90) + Duration::seconds(1)))
        .await,
        Err(IssueError::LifetimeTooLong { kind: ScopeKind::Organization, max })
            if max == Duration::days(90)
    ));
    assert!(matches!(
        issue(IssueRequest::new(org("acme"), "forever").never_expires()).await,
        Err(IssueError::MustExpire {
            kind: ScopeKind::Organization,
            ..
        })
    ));
    assert!(matches!(
        issue(IssueRequest::new(org("acme"), "past").expires_at(START - Duration::seconds(1)))
            .await,
        Err(IssueError::ExpiryNotInFuture)
    ));
    assert_eq!(fixture.store.calls(), calls_before, "nothing stored");
}

#[tokio::test]
async fn without_a_policy_tokens_never_expire_unless_asked() {
    let fixture = fixture();
    let (_, id) = fixture.issue_at(org("acme"), "plain").await;
    assert_eq!(fixture.store.record(id).await.expires_at, None);
}

#[tokio::test]
async fn expiring_soon_lists_a_scopes_live_tokens_by_expiry() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let issue_expiring = |scope, label: &'static str, days| {
        let request = IssueRequest::new(scope, label).expires_at(START + Duration::days(days));
        let service = &fixture.service;
        let alice = &alice;
        async move { service.issue(alice, request).await.unwrap().summary.id }
    };
    let in_five = issue_expiring(org("acme"), "in five days", 5).await;
    let in_two = issue_expiring(org("acme"), "in two days", 2).await;
    let in_sixty = issue_expiring(org("acme"), "in sixty days", 60).await;
    let revoked = issue_expiring(org("acme"), "revoked", 3).await;
    fixture.service.revoke(&alice, revoked).await.unwrap();
    let _domain = issue_expiring(domain("acme", "shop"), "a domain's", 4).await;
    let _never = fixture.issue_at(org("acme"), "never").await;

    let soon = fixture
        .service
        .list_expiring(&alice, &org("acme"), Duration::days(7), Default::default())
        .await
        .unwrap()
        .tokens;
    let ids: Vec<_> = soon.iter().map(|summary| summary.id).collect();
    assert_eq!(ids, [in_two, in_five]);
    assert!(!ids.contains(&in_sixty));

    // Once a token has expired it is no longer "expiring".
    fixture.clock.advance(Duration::days(2));
    let soon = fixture
        .service
        .list_expiring(&alice, &org("acme"), Duration::days(7), Default::default())
        .await
        .unwrap()
        .tokens;
    assert_eq!(soon.iter().map(|s| s.id).collect::<Vec<_>>(), [in_five]);

    assert!(matches!(
        fixture
            .service
            .list_expiring(&alice, &org("acme"), Duration::days(-1), Default::default())
            .await,
        Err(ListError::InvalidWindow)
    ));
    assert!(matches!(
        fixture
            .service
            .list_expiring(
                &domain_admin("acme", "shop"),
                &org("acme"),
                Duration::days(7),
                Default::default()
            )
            .await,
        Err(ListError::NotAllowed { .. })
    ));
}

#[tokio::test]
async fn a_token_is_looked_up_by_id_within_the_actors_reach() {
    let fixture = fixture();
    let (_, id) = fixture.issue_at(domain("acme", "shop"), "details").await;
    let summary = fixture
        .service
        .token(&domain_admin("acme", "shop"), id)
        .await
        .unwrap();
    assert_eq!(summary.label.as_str(), "details");
    for outsider in [domain_admin("acme", "blog"), org_admin("globex")] {
        assert!(matches!(
            fixture.service.token(&outsider, id).await,
            Err(api_tokens::LookupError::NotFound { id: named }) if named == id
        ));
    }
}
