//! Token lifetimes: the service's expiry policy, and finding the tokens that
//! expire soon.

mod common;

use std::sync::Arc;
use std::time::Duration;

use api_tokens::{
    ExpiryPolicy, IssueError, IssueRequest, ListError, ScopeKind, TokenFormat, TokenService,
};
use common::*;

/// Organization tokens at most 90 days, 30 by default; domain tokens
/// unlimited, 30 days by default.
fn with_policy(fixture: &Fixture) -> TokenService {
    let policy = ExpiryPolicy::default()
        .with_default_lifetime(30 * DAY)
        .unwrap()
        .with_max_lifetime(ScopeKind::Organization, 90 * DAY)
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
    assert_eq!(default_org.summary.expires_at, Some(START + 30 * DAY));
    let longest = issue(IssueRequest::new(org("acme"), "longest").expires_at(START + 90 * DAY))
        .await
        .unwrap();
    assert_eq!(longest.summary.expires_at, Some(START + 90 * DAY));
    let forever_domain =
        issue(IssueRequest::new(domain("acme", "shop"), "forever").never_expires())
            .await
            .unwrap();
    assert_eq!(forever_domain.summary.expires_at, None);

    let calls_before = fixture.store.calls();
    assert!(matches!(
        issue(IssueRequest::new(org("acme"), "too long")
            .expires_at(START + 90 * DAY + SECOND))
        .await,
        Err(IssueError::LifetimeTooLong { kind: ScopeKind::Organization, max })
            if max == 90 * DAY
    ));
    assert!(matches!(
        issue(IssueRequest::new(org("acme"), "forever").never_expires()).await,
        Err(IssueError::MustExpire {
            kind: ScopeKind::Organization,
            ..
        })
    ));
    assert!(matches!(
        issue(IssueRequest::new(org("acme"), "past").expires_at(START - SECOND)).await,
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
        let request = IssueRequest::new(scope, label).expires_at(START + days * DAY);
        let service = &fixture.service;
        let alice = &alice;
        async move { service.issue(alice, request).await.unwrap().summary.id }
    };
    let in_five = issue_expiring(org("acme"), "in five days", 5).await;
    let in_two = issue_expiring(org("acme"), "in two days", 2).await;
    let in_sixty = issue_expiring(org("acme"), "in sixty days", 60).await;
    let revoked = issue_expiring(org("acme"), "revoked", 3).await;
    fixture
        .service
        .revoke(&alice, &org("acme"), revoked)
        .await
        .unwrap();
    let _domain = issue_expiring(domain("acme", "shop"), "a domain's", 4).await;
    let _never = fixture.issue_at(org("acme"), "never").await;

    let soon = fixture
        .service
        .list_expiring(&alice, &org("acme"), 7 * DAY, Default::default())
        .await
        .unwrap()
        .tokens;
    let ids: Vec<_> = soon.iter().map(|summary| summary.id).collect();
    assert_eq!(ids, [in_two, in_five]);
    assert!(!ids.contains(&in_sixty));

    // Once a token has expired it is no longer "expiring".
    fixture.clock.advance(2 * DAY);
    let soon = fixture
        .service
        .list_expiring(&alice, &org("acme"), 7 * DAY, Default::default())
        .await
        .unwrap()
        .tokens;
    assert_eq!(soon.iter().map(|s| s.id).collect::<Vec<_>>(), [in_five]);

    assert!(matches!(
        fixture
            .service
            .list_expiring(
                &domain_admin("acme", "shop"),
                &org("acme"),
                7 * DAY,
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
        .lookup(&domain_admin("acme", "shop"), &domain("acme", "shop"), id)
        .await
        .unwrap();
    assert_eq!(summary.label.as_str(), "details");
    for outsider in [domain_admin("acme", "blog"), org_admin("globex")] {
        assert!(matches!(
            fixture
                .service
                .lookup(&outsider, &domain("acme", "shop"), id)
                .await,
            Err(api_tokens::LookupError::NotFound { id: named }) if named == id
        ));
    }
}

#[tokio::test]
async fn expires_in_counts_from_the_services_clock_within_the_policy() {
    let fixture = fixture();
    let service = with_policy(&fixture);
    let alice = org_admin("acme");
    fixture.clock.advance(3 * DAY + 90 * SECOND);
    let now = START + 3 * DAY + 90 * SECOND;

    let issued = service
        .issue(
            &alice,
            IssueRequest::new(org("acme"), "a week").expires_in(7 * DAY),
        )
        .await
        .unwrap();
    assert_eq!(issued.summary.expires_at, Some(now + 7 * DAY));
    let verified = service.verify(issued.token.expose_secret()).await.unwrap();
    assert_eq!(verified.expires_at(), Some(now + 7 * DAY));
    // Where the policy sets no maximum, any lifetime it can represent.
    let long = service
        .issue(
            &alice,
            IssueRequest::new(domain("acme", "shop"), "a year").expires_in(365 * DAY),
        )
        .await
        .unwrap();
    assert_eq!(long.summary.expires_at, Some(now + 365 * DAY));
    // The longest the policy allows, and no longer.
    let longest = service
        .issue(
            &alice,
            IssueRequest::new(org("acme"), "longest").expires_in(90 * DAY),
        )
        .await
        .unwrap();
    assert_eq!(longest.summary.expires_at, Some(now + 90 * DAY));

    let calls_before = fixture.store.calls();
    assert!(matches!(
        service
            .issue(&alice, IssueRequest::new(org("acme"), "too long").expires_in(90 * DAY + SECOND))
            .await,
        Err(IssueError::LifetimeTooLong { kind: ScopeKind::Organization, max })
            if max == 90 * DAY
    ));
    assert!(matches!(
        service
            .issue(
                &alice,
                IssueRequest::new(org("acme"), "now").expires_in(Duration::ZERO)
            )
            .await,
        Err(IssueError::ExpiryNotInFuture)
    ));
    // Under a microsecond, the precision records keep: it would end as it
    // starts, so it is refused rather than issued expired.
    assert!(matches!(
        service
            .issue(
                &alice,
                IssueRequest::new(org("acme"), "a nanosecond")
                    .expires_in(Duration::from_nanos(999))
            )
            .await,
        Err(IssueError::ExpiryNotInFuture)
    ));
    assert!(matches!(
        service
            .issue(
                &alice,
                IssueRequest::new(domain("acme", "shop"), "past 9999").expires_in(Duration::MAX)
            )
            .await,
        Err(IssueError::ExpiryOutOfRange)
    ));
    assert_eq!(fixture.store.calls(), calls_before, "nothing stored");

    // The token ends when its lifetime does, by the service's clock.
    fixture.clock.advance(7 * DAY - SECOND);
    assert!(service.verify(issued.token.expose_secret()).await.is_ok());
    fixture.clock.advance(SECOND);
    assert!(service.verify(issued.token.expose_secret()).await.is_err());
}
