//! Revoking leaked tokens on the word of whoever found them: every live
//! token in the text dies, nothing else changes, and the trail says where
//! the text came from.

mod common;

use api_tokens::{
    ActorId, AuditEvent, IssueRequest, LEAK_REPORTER, MAX_LEAKED_TOKENS, RevokeLeakedError,
    StoreError, TokenRecord, TokenService, VerifyError,
};
use common::*;

/// Every record the store holds for `ids`, to compare before and after.
async fn records(fixture: &Fixture, ids: &[api_tokens::TokenId]) -> Vec<TokenRecord> {
    let mut records = Vec::new();
    for &id in ids {
        records.push(fixture.store.record(id).await);
    }
    records
}

#[tokio::test]
async fn every_live_token_in_the_text_is_revoked_wherever_it_sits() {
    let fixture = fixture();
    let (config, config_id) = fixture.issue_at(org("acme"), "config").await;
    let (bearer, bearer_id) = fixture.issue_at(domain("acme", "shop"), "log").await;
    let (json, json_id) = fixture.issue_at(org("globex"), "json").await;
    let (untouched, untouched_id) = fixture.issue_at(org("acme"), "not leaked").await;
    let paste = format!(
        "api_key: \"{config}\"\n\
         GET /v1 Authorization: Bearer {bearer}\n\
         {{\"token\":\"{json}\"}}\n\
         again:{config}"
    );

    let leaked = fixture
        .service
        .revoke_leaked(&paste, "public paste 4711")
        .await
        .unwrap();

    // The repeated token counts once.
    assert_eq!(leaked.found, 3);
    assert_eq!(leaked.revoked, [config_id, bearer_id, json_id]);
    for token in [&config, &bearer, &json] {
        assert!(matches!(
            fixture.service.verify(token).await,
            Err(VerifyError::Revoked)
        ));
    }
    assert!(fixture.service.verify(&untouched).await.is_ok());

    let record = fixture.store.record(bearer_id).await;
    let revocation = record.revoked.unwrap();
    assert_eq!(revocation.by.as_str(), LEAK_REPORTER);
    assert_eq!(revocation.reason.unwrap().as_str(), "public paste 4711");
    assert!(fixture.store.record(untouched_id).await.revoked.is_none());

    let events = fixture.audit_events().await;
    let leaks: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            AuditEvent::LeakRevoked {
                actor,
                token,
                scope,
                source,
                ..
            } => Some((actor.as_str(), *token, scope.clone(), source.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        leaks,
        [
            (LEAK_REPORTER, config_id, org("acme"), "public paste 4711"),
            (
                LEAK_REPORTER,
                bearer_id,
                domain("acme", "shop"),
                "public paste 4711"
            ),
            (LEAK_REPORTER, json_id, org("globex"), "public paste 4711"),
        ]
    );
}

#[tokio::test]
async fn strings_that_are_not_live_tokens_change_nothing() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    let (revoked, revoked_id) = fixture.issue_at(org("acme"), "revoked before").await;
    fixture
        .service
        .revoke_because(
            &org_admin("acme"),
            &org("acme"),
            revoked_id,
            Some("rotated"),
        )
        .await
        .unwrap();
    let (expiring, expiring_id) = issue(
        &fixture.service,
        IssueRequest::new(org("acme"), "short").expires_in(HOUR),
    )
    .await;
    fixture.clock.advance(2 * HOUR);
    let ids = [id, revoked_id, expiring_id];
    let before = records(&fixture, &ids).await;
    let events_before = fixture.audit_events().await.len();
    let finds_before = fixture.store.finds();

    let last_secret_char = token.len() - 7;
    let first_id_char = "acmeo_".len();
    let wrong_secret = altered(
        &token,
        last_secret_char,
        other_than(token.as_bytes()[last_secret_char]),
    );
    let unknown_id = altered(
        &token,
        first_id_char,
        other_than(token.as_bytes()[first_id_char]),
    );
    // One character changed, checksum not recomputed: not even a token.
    let mut typo = token.clone().into_bytes();
    typo[last_secret_char] = other_than(typo[last_secret_char]);
    let typo = String::from_utf8(typo).unwrap();
    let other_service = other_service_token("globex").await;
    let text = format!(
        "{wrong_secret}\n{unknown_id}\n{typo}\n{other_service}\n{revoked}\n{expiring}\n\
         acmeo_short\n\u{e9}\u{1F600}{}\n",
        &token[..token.len() - 1]
    );

    let leaked = fixture
        .service
        .revoke_leaked(&text, "scanner")
        .await
        .unwrap();

    assert!(leaked.revoked.is_empty());
    // Wrong secret, unknown id, the revoked and the expired token: four
    // well-formed tokens of this service, each looked up once.
    assert_eq!(leaked.found, 4);
    assert_eq!(fixture.store.finds() - finds_before, 4);
    assert_eq!(records(&fixture, &ids).await, before);
    assert_eq!(fixture.audit_events().await.len(), events_before);
    assert!(fixture.service.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_disabled_or_allowlisted_token_dies_too_and_none_is_marked_used() {
    let Fixture { service, store, .. } = fixture();
    // Tracking on: a use would be noted, and written at the flush below.
    let service = service.with_last_used_interval(Some(SECOND)).unwrap();
    let admin = org_admin("acme");
    let (paused, paused_id) = issue(&service, IssueRequest::new(org("acme"), "paused")).await;
    service
        .disable(&admin, &org("acme"), paused_id)
        .await
        .unwrap();
    let (fenced, fenced_id) = issue(
        &service,
        IssueRequest::new(org("acme"), "fenced").allowed_networks(["10.0.0.0/8"]),
    )
    .await;

    let leaked = service
        .revoke_leaked(&format!("{paused} {fenced}"), "support ticket 12")
        .await
        .unwrap();

    assert_eq!(leaked.revoked, [paused_id, fenced_id]);
    service.flush_last_used().await.unwrap();
    for id in [paused_id, fenced_id] {
        let record = store.record(id).await;
        assert!(record.revoked.is_some());
        assert_eq!(record.last_used_at, None, "a leak report is not a use");
    }
}

#[tokio::test]
async fn an_operator_revokes_as_itself() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    let job = ActorId::new("oncall-bob").unwrap();

    let leaked = fixture
        .service
        .operator(job.clone())
        .revoke_leaked(&token, "cli:incident-42.txt")
        .await
        .unwrap();

    assert_eq!(leaked.revoked, [id]);
    assert_eq!(fixture.store.record(id).await.revoked.unwrap().by, job);
    let events = fixture.audit_events().await;
    assert!(matches!(
        events.last(),
        Some(AuditEvent::LeakRevoked { actor, .. }) if *actor == job
    ));
}

#[tokio::test]
async fn too_many_tokens_or_a_bad_source_change_nothing() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    let before = records(&fixture, &[id]).await;
    // Distinct well-formed tokens: the live one, then unknown ids.
    let mut text = token.clone();
    for n in 0..MAX_LEAKED_TOKENS {
        text.push('\n');
        text.push_str(&other_token_like(&token, n));
    }

    let error = fixture
        .service
        .revoke_leaked(&text, "dump")
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RevokeLeakedError::TooManyTokens {
            max: MAX_LEAKED_TOKENS
        }
    ));
    assert!(error.to_string().contains("split it"));

    for source in ["", "\u{7}bell", &"x".repeat(10_000)] {
        let error = fixture
            .service
            .revoke_leaked(&token, source)
            .await
            .unwrap_err();
        assert!(
            matches!(error, RevokeLeakedError::InvalidSource(_)),
            "{source:?}"
        );
    }
    assert_eq!(records(&fixture, &[id]).await, before);
    assert!(fixture.service.verify(&token).await.is_ok());

    // At the bound exactly, the call goes through.
    let at_bound: String = text
        .lines()
        .take(MAX_LEAKED_TOKENS)
        .collect::<Vec<_>>()
        .join(" ");
    let leaked = fixture
        .service
        .revoke_leaked(&at_bound, "dump")
        .await
        .unwrap();
    assert_eq!(
        (leaked.found, leaked.revoked),
        (MAX_LEAKED_TOKENS, vec![id])
    );
}

#[tokio::test]
async fn a_store_failure_is_reported_and_a_retry_finishes_the_job() {
    let fixture = fixture();
    let (first, first_id) = fixture.issue_at(org("acme"), "first").await;
    let (second, second_id) = fixture.issue_at(org("acme"), "second").await;
    let text = format!("{first}\n{second}");
    fixture.store.fail_revokes_after(1);

    let error = fixture
        .service
        .revoke_leaked(&text, "paste")
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RevokeLeakedError::Store(StoreError::Unavailable { .. })
    ));
    assert!(fixture.store.record(first_id).await.revoked.is_some());
    assert!(fixture.store.record(second_id).await.revoked.is_none());

    let leaked = fixture.service.revoke_leaked(&text, "paste").await.unwrap();
    assert_eq!(leaked.revoked, [second_id]);
    assert!(fixture.service.verify(&second).await.is_err());
}

/// A well-formed token of the same service with the n-th unknown id.
fn other_token_like(token: &str, n: usize) -> String {
    let id_start = "acmeo_".len();
    let mut body = token[..token.len() - 6].to_owned();
    let digits = format!("{n:011}");
    body.replace_range(id_start..id_start + 11, &digits);
    with_checksum(&body)
}

async fn issue(service: &TokenService, request: IssueRequest) -> (String, api_tokens::TokenId) {
    let issued = service.issue(&org_admin("acme"), request).await.unwrap();
    (issued.token.expose_secret().to_owned(), issued.summary.id)
}
