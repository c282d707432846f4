//! The audit trail: an event for every change and every refusal, counters
//! (not events) for failed verifications, and never a secret in either.

mod common;

use api_tokens::{AuditEvent, IssueRequest, Operation, Role, VerifyFailures};
use common::*;

#[tokio::test]
async fn every_change_and_every_refusal_is_an_event() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let bob = domain_admin("acme", "shop");

    let (_, org_token) = fixture.issue_at(org("acme"), "billing export").await;
    let successor = fixture
        .service
        .rotate(&alice, &org("acme"), org_token, HOUR)
        .await
        .unwrap()
        .summary
        .id;
    fixture
        .service
        .revoke_because(&alice, &org("acme"), successor, Some("laptop lost"))
        .await
        .unwrap();
    // Refused: bob may not touch organization tokens, nor list them.
    assert!(
        fixture
            .service
            .issue(&bob, IssueRequest::new(org("acme"), "x"))
            .await
            .is_err()
    );
    assert!(
        fixture
            .service
            .list(&bob, &org("acme"), Default::default())
            .await
            .is_err()
    );
    assert!(
        fixture
            .service
            .revoke(&bob, &org("acme"), org_token)
            .await
            .is_err()
    );
    assert!(
        fixture
            .service
            .revoke_scope(&bob, &org("acme"), None)
            .await
            .is_err()
    );
    // The rotated token, live through its grace, is all the scope has left.
    let revoked = fixture
        .service
        .revoke_scope(&alice, &org("acme"), Some("customer offboarded"))
        .await
        .unwrap();
    assert_eq!(revoked.count, 1);
    // A scope with nothing left to revoke: nothing happened, no event.
    let nothing = fixture
        .service
        .revoke_scope(&alice, &org("acme"), None)
        .await
        .unwrap();
    assert_eq!(nothing.count, 0);

    let events = fixture.audit_events().await;
    let kinds: Vec<&str> = events.iter().map(AuditEvent::kind).collect();
    assert_eq!(
        kinds,
        [
            "issued",
            "rotated",
            "revoked",
            "refused",
            "refused",
            "refused",
            "refused",
            "scope_revoked"
        ]
    );
    // What every event shares, through its accessors: the refused revoke
    // names the scope bob addressed.
    assert!(events.iter().all(|event| event.at() == START));
    assert_eq!(events[1].token_id(), Some(org_token));
    assert_eq!(events[1].actor(), Some(&alice.id));
    assert_eq!(events[5].kind(), "refused");
    assert_eq!(events[5].actor(), Some(&bob.id));
    assert_eq!(events[5].scope(), Some(&org("acme")));
    assert_eq!(events[5].token_id(), Some(org_token));
    assert_eq!(events[7].token_id(), None);
    assert_eq!(
        events[0],
        AuditEvent::Issued {
            at: START,
            actor: alice.id.clone(),
            token: org_token,
            scope: org("acme"),
            role: Role::Viewer,
            label: api_tokens::Label::new("billing export").unwrap(),
            restrictions: api_tokens::Restrictions::default(),
        }
    );
    assert!(matches!(
        &events[1],
        AuditEvent::Rotated { old, new, old_valid_until, .. }
            if *old == org_token && *new == successor && *old_valid_until == START + HOUR
    ));
    assert!(matches!(
        &events[2],
        AuditEvent::Revoked { token, actor, reason: Some(reason), .. }
            if *token == successor && *actor == alice.id && reason.as_str() == "laptop lost"
    ));
    let refused: Vec<Operation> = events
        .iter()
        .filter_map(|event| match event {
            AuditEvent::Refused {
                operation, actor, ..
            } if *actor == bob.id => Some(*operation),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            Operation::Issue,
            Operation::List,
            Operation::Revoke,
            Operation::RevokeScope
        ]
    );
    assert!(matches!(
        &events[7],
        AuditEvent::ScopeRevoked { count: 1, first_tokens, reason: Some(reason), .. }
            if *first_tokens == [org_token] && reason.as_str() == "customer offboarded"
    ));
}

#[tokio::test]
async fn what_did_not_happen_is_not_an_event() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let (_, id) = fixture.issue_at(org("acme"), "ci").await;
    fixture
        .service
        .revoke(&alice, &org("acme"), id)
        .await
        .unwrap();
    let events_before = fixture.audit_events().await.len();

    // Revoking again, a bad label, a bad reason: no change, no event (and
    // these are not refusals for lack of rights either).
    fixture
        .service
        .revoke(&alice, &org("acme"), id)
        .await
        .unwrap();
    assert!(
        fixture
            .service
            .issue(&alice, IssueRequest::new(org("acme"), "two\nlines"))
            .await
            .is_err()
    );
    assert!(
        fixture
            .service
            .revoke_because(&alice, &org("acme"), id, Some("bad\u{0}reason"))
            .await
            .is_err()
    );
    assert_eq!(fixture.audit_events().await.len(), events_before);
}

#[tokio::test]
async fn an_unknown_id_and_another_tenants_token_are_one_refusal() {
    let fixture = fixture();
    let mallory = org_admin("globex");
    let (_, acme_token) = fixture.issue_at(org("acme"), "acme's").await;
    let unknown: api_tokens::TokenId = "00000000007".parse().unwrap();
    let before = fixture.audit_events().await.len();

    for id in [acme_token, unknown] {
        assert!(matches!(
            fixture.service.revoke(&mallory, &org("acme"), id).await,
            Err(api_tokens::RevokeError::NotFound { id: named }) if named == id
        ));
    }
    let events = fixture.audit_events().await;
    let refusals: Vec<_> = events[before..]
        .iter()
        .map(|event| match event {
            AuditEvent::Refused {
                actor,
                operation,
                scope,
                token,
                ..
            } => (actor.clone(), *operation, scope.clone(), *token),
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    let as_refused = |id| {
        (
            mallory.id.clone(),
            Operation::Revoke,
            Some(org("acme")),
            Some(id),
        )
    };
    assert_eq!(refusals, [as_refused(acme_token), as_refused(unknown)]);
}

#[tokio::test]
async fn failed_verifications_are_counted_by_reason_not_logged() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    let expiring = fixture
        .service
        .issue(
            &alice,
            IssueRequest::new(org("acme"), "short").expires_at(START + MINUTE),
        )
        .await
        .unwrap();
    let events_before = fixture.audit_events().await.len();

    for _ in 0..3 {
        assert!(fixture.service.verify("not a token").await.is_err());
    }
    let wrong = altered(&token, SECRET_AT, other_than(token.as_bytes()[SECRET_AT]));
    for _ in 0..2 {
        assert!(fixture.service.verify(&wrong).await.is_err());
    }
    fixture.clock.advance(MINUTE);
    assert!(
        fixture
            .service
            .verify(expiring.token.expose_secret())
            .await
            .is_err()
    );
    fixture
        .service
        .revoke(&alice, &org("acme"), id)
        .await
        .unwrap();
    assert!(fixture.service.verify(&token).await.is_err());

    assert_eq!(
        fixture.service.verify_failures(),
        VerifyFailures {
            malformed: 3,
            invalid: 2,
            revoked: 1,
            expired: 1,
            disabled: 0,
            address_not_allowed: 0,
            store: 0,
        }
    );
    // The revoke is the only event since; the failures are not events.
    assert_eq!(fixture.audit_events().await.len(), events_before + 1);
}

#[tokio::test]
async fn no_event_holds_a_secret_or_a_digest() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let mut tokens = Vec::new();
    for scope in [org("acme"), domain("acme", "shop")] {
        let issued = fixture
            .service
            .issue(&alice, IssueRequest::new(scope, "secret-free"))
            .await
            .unwrap();
        tokens.push((issued.token.expose_secret().to_owned(), issued.summary.id));
    }
    let rotated = fixture
        .service
        .rotate(&alice, &org("acme"), tokens[0].1, 5 * MINUTE)
        .await
        .unwrap();
    tokens.push((rotated.token.expose_secret().to_owned(), rotated.summary.id));
    fixture
        .service
        .revoke(&alice, &domain("acme", "shop"), tokens[1].1)
        .await
        .unwrap();
    fixture.clock.advance(5 * MINUTE);
    let _ = fixture.service.verify(&tokens[0].0).await; // a retired token's use
    fixture
        .service
        .revoke_scope(&alice, &org("acme"), Some("offboarded"))
        .await
        .unwrap();

    let events = fixture.audit_events().await;
    assert!(events.len() >= 6);
    let shown: Vec<String> = events
        .iter()
        .flat_map(|event| [format!("{event:?}"), serde_json::to_string(event).unwrap()])
        .collect();
    for (token, id) in &tokens {
        let digest = fixture.store.record(*id).await.digest;
        let digest_hex: String = digest
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for text in &shown {
            assert!(!text.contains(token.as_str()), "{text}");
            assert!(!text.contains(&token[SECRET_AT..CHECKSUM_AT]), "{text}");
            assert!(!text.contains(&digest_hex), "{text}");
            assert!(
                !text.contains(&format!("{:?}", digest.as_bytes())),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_pasted_into_a_label_or_reason_is_kept_redacted() {
    let fixture = fixture();
    let alice = org_admin("acme");
    let (leaked, leaked_id) = fixture.issue_at(org("acme"), "ci").await;
    let head = &leaked[..SECRET_AT];

    let issued = fixture
        .service
        .issue(
            &alice,
            IssueRequest::new(org("acme"), format!("replaces {leaked}")),
        )
        .await
        .unwrap();
    assert_eq!(
        issued.summary.label.as_str(),
        format!("replaces {head}…[redacted]")
    );
    fixture
        .service
        .revoke_because(
            &alice,
            &org("acme"),
            leaked_id,
            Some(&format!("pasted in chat: {leaked}")),
        )
        .await
        .unwrap();
    let stored = fixture.store.record(leaked_id).await;
    assert_eq!(
        stored.revoked.unwrap().reason.unwrap().as_str(),
        format!("pasted in chat: {head}…[redacted]")
    );
    for event in fixture.audit_events().await {
        assert!(!format!("{event:?}").contains(&leaked[SECRET_AT..CHECKSUM_AT]));
    }
}
