//! Rotation: a successor issued, the old token alive through its grace
//! period and refused after, records linked both ways, no forks.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use api_tokens::{AuditEvent, IssueRequest, Role, RotateError, TokenStatus, VerifyError};
use common::*;

#[tokio::test]
async fn the_successor_takes_over_and_the_old_token_lasts_its_grace() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let issued = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(domain("acme", "shop"), "deploys").role(Role::Editor),
        )
        .await
        .unwrap();
    let old_token = issued.token.expose_secret().to_owned();
    let old_id = issued.summary.id;

    let successor = fixture
        .service
        .rotate(&admin, &domain("acme", "shop"), old_id, 24 * HOUR)
        .await
        .unwrap();
    let new_token = successor.token.expose_secret();
    assert_ne!(new_token, old_token);
    let (new_summary, old_summary) = (
        &successor.summary,
        fixture
            .service
            .lookup(&admin, &domain("acme", "shop"), old_id)
            .await
            .unwrap(),
    );
    assert_eq!(new_summary.scope, domain("acme", "shop"));
    assert_eq!(new_summary.role, Role::Editor);
    assert_eq!(new_summary.label.as_str(), "deploys");
    assert_eq!(new_summary.rotated_from, Some(old_id));
    assert_eq!(old_summary.replaced_by, Some(new_summary.id));
    assert_eq!(old_summary.expires_at, Some(START + 24 * HOUR));

    // Both verify during the grace period.
    assert_eq!(
        fixture.service.verify(&old_token).await.unwrap().id(),
        old_id
    );
    assert_eq!(
        fixture.service.verify(new_token).await.unwrap().id(),
        new_summary.id
    );
    fixture.clock.advance(24 * HOUR - SECOND);
    assert!(fixture.service.verify(&old_token).await.is_ok());

    // Afterwards only the successor does, and the old token's use is an
    // audit event of its own.
    fixture.clock.advance(SECOND);
    assert!(matches!(
        fixture.service.verify(&old_token).await,
        Err(VerifyError::Expired)
    ));
    assert!(fixture.service.verify(new_token).await.is_ok());
    let retired_uses: Vec<_> = fixture
        .audit_events()
        .await
        .into_iter()
        .filter(|event| matches!(event, AuditEvent::RetiredTokenUsed { .. }))
        .collect();
    assert_eq!(retired_uses.len(), 1);
    assert!(matches!(
        &retired_uses[0],
        AuditEvent::RetiredTokenUsed { token, replaced_by, .. }
            if *token == old_id && *replaced_by == Some(new_summary.id)
    ));
}

#[tokio::test]
async fn zero_grace_revokes_the_old_token_at_once() {
    let fixture = fixture();
    let (old_token, old_id) = fixture.issue_at(org("acme"), "ci").await;
    let successor = fixture
        .service
        .rotate(&org_admin("acme"), &org("acme"), old_id, Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(
        fixture.service.verify(&old_token).await,
        Err(VerifyError::Revoked)
    ));
    assert!(
        fixture
            .service
            .verify(successor.token.expose_secret())
            .await
            .is_ok()
    );
    let old = fixture.store.record(old_id).await;
    assert_eq!(old.replaced_by, Some(successor.summary.id));
    assert_eq!(old.revoked.unwrap().at, START);
}

#[tokio::test]
async fn what_cannot_be_rotated_is_refused_and_nothing_changes() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (_, revoked) = fixture.issue_at(org("acme"), "revoked").await;
    fixture
        .service
        .revoke(&admin, &org("acme"), revoked)
        .await
        .unwrap();
    let expiring = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "expiring").expires_at(START + HOUR),
        )
        .await
        .unwrap()
        .summary
        .id;
    let (_, rotated) = fixture.issue_at(org("acme"), "rotated once").await;
    let successor = fixture
        .service
        .rotate(&admin, &org("acme"), rotated, HOUR)
        .await
        .unwrap()
        .summary
        .id;
    let (_, live) = fixture.issue_at(org("acme"), "live").await;
    let (_, elsewhere) = fixture.issue_at(org("globex"), "theirs").await;
    let unknown = "00000000007".parse().unwrap();

    let before = fixture
        .service
        .list(&admin, &org("acme"), Default::default())
        .await
        .unwrap();
    // Each addressed at its own scope: the other refusals are the point.
    let attempts = [
        (revoked, org("acme"), HOUR, "revoked"),
        (rotated, org("acme"), HOUR, "replaced"),
        (expiring, org("acme"), 2 * HOUR, "grace past expiry"),
        (live, org("acme"), Duration::MAX, "absurd grace"),
        (unknown, org("acme"), HOUR, "unknown"),
        (elsewhere, org("globex"), HOUR, "out of reach"),
    ];
    for (id, scope, grace, case) in attempts {
        let error = fixture
            .service
            .rotate(&admin, &scope, id, grace)
            .await
            .unwrap_err();
        let expected = match case {
            "revoked" => matches!(error, RotateError::Revoked { .. }),
            "replaced" => {
                matches!(error, RotateError::AlreadyReplaced { by, .. } if by == successor)
            }
            "grace past expiry" => {
                matches!(error, RotateError::GraceTooLong { remaining } if remaining == HOUR)
            }
            "absurd grace" => matches!(error, RotateError::GraceOutOfRange),
            // Another tenant's token is reported exactly like a missing one.
            _ => matches!(error, RotateError::NotFound { id: named } if named == id),
        };
        assert!(expected, "{case}: {error:?}");
    }
    // An expired token cannot be handed over either.
    fixture.clock.advance(HOUR);
    assert!(matches!(
        fixture
            .service
            .rotate(&admin, &org("acme"), expiring, Duration::ZERO)
            .await,
        Err(RotateError::Expired { .. })
    ));
    fixture.clock.rewind(HOUR);

    let after = fixture
        .service
        .list(&admin, &org("acme"), Default::default())
        .await
        .unwrap();
    assert_eq!(after, before, "no token issued, no record changed");
    assert!(fixture.store.record(live).await.replaced_by.is_none());
    assert_eq!(
        fixture.store.record(elsewhere).await.status_at(START),
        TokenStatus::Active
    );
}

#[test]
fn of_concurrent_rotations_exactly_one_succeeds() {
    let fixture = Arc::new(fixture());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (_, id) = runtime.block_on(fixture.issue_at(org("acme"), "contested"));
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let outcomes: Vec<_> = (0..threads)
        .map(|_| {
            let (fixture, barrier) = (fixture.clone(), barrier.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                barrier.wait();
                runtime.block_on(
                    fixture
                        .service
                        .rotate(&org_admin("acme"), &org("acme"), id, HOUR),
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();

    let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "one successor, no fork");
    let successor = winners[0].summary.id;
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert!(
                matches!(error, RotateError::AlreadyReplaced { by, .. } if *by == successor),
                "{error:?}"
            );
        }
    }
    let record = runtime.block_on(fixture.store.record(id));
    assert_eq!(record.replaced_by, Some(successor));
    let listed = runtime
        .block_on(
            fixture
                .service
                .list(&org_admin("acme"), &org("acme"), Default::default()),
        )
        .unwrap();
    assert_eq!(listed.tokens.len(), 2, "the original and one successor");
}

#[tokio::test]
async fn an_admin_cannot_rotate_an_owners_token_into_an_owner_token() {
    let fixture = fixture();
    let owner = actor("olga", &[(org("acme"), Role::Owner)]);
    let admin = org_admin("acme");
    let owners = fixture
        .service
        .issue(
            &owner,
            IssueRequest::new(org("acme"), "owner's").role(Role::Owner),
        )
        .await
        .unwrap();
    assert_eq!(owners.summary.role, Role::Owner);
    // The admin may revoke it, but not mint its successor.
    assert!(matches!(
        fixture
            .service
            .rotate(&admin, &org("acme"), owners.summary.id, HOUR)
            .await,
        Err(RotateError::RoleTooHigh {
            role: Role::Owner,
            held: Role::Admin
        })
    ));
    assert!(
        fixture
            .store
            .record(owners.summary.id)
            .await
            .replaced_by
            .is_none()
    );
    assert!(matches!(
        fixture.audit_events().await.last(),
        Some(AuditEvent::Refused {
            operation: api_tokens::Operation::Rotate,
            ..
        })
    ));
    // The owner may.
    let successor = fixture
        .service
        .rotate(&owner, &org("acme"), owners.summary.id, HOUR)
        .await
        .unwrap();
    assert_eq!(successor.summary.role, Role::Owner);
}

#[tokio::test]
async fn refused_rotations_leave_no_event_but_a_refusal_for_lack_of_rights() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (_, live) = fixture.issue_at(org("acme"), "live").await;
    let (_, theirs) = fixture.issue_at(org("globex"), "theirs").await;
    let before = fixture.audit_events().await.len();
    assert!(
        fixture
            .service
            .rotate(&admin, &org("acme"), live, Duration::MAX)
            .await
            .is_err()
    );
    assert_eq!(
        fixture.audit_events().await.len(),
        before,
        "nothing happened"
    );
    assert!(
        fixture
            .service
            .rotate(&admin, &org("globex"), theirs, HOUR)
            .await
            .is_err()
    );
    let events = fixture.audit_events().await;
    assert_eq!(events.len(), before + 1);
    assert!(matches!(
        &events[before],
        AuditEvent::Refused {
            operation: api_tokens::Operation::Rotate,
            scope: Some(scope),
            token: Some(token),
            ..
        } if *token == theirs && *scope == org("globex")
    ));
}

#[tokio::test]
async fn a_retired_tokens_uses_are_audited_once_a_minute_not_per_request() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (old_token, old_id) = fixture.issue_at(org("acme"), "ci").await;
    // Rotated without grace: revoked at once, and still a retired token.
    fixture
        .service
        .rotate(&admin, &org("acme"), old_id, Duration::ZERO)
        .await
        .unwrap();
    async fn retired_events(fixture: &Fixture) -> usize {
        let events = fixture.audit_events().await;
        events
            .iter()
            .filter(|event| matches!(event, AuditEvent::RetiredTokenUsed { .. }))
            .count()
    }
    for _ in 0..100 {
        assert!(matches!(
            fixture.service.verify(&old_token).await,
            Err(VerifyError::Revoked)
        ));
    }
    assert_eq!(retired_events(&fixture).await, 1);
    fixture.clock.advance(Duration::from_secs(61));
    assert!(fixture.service.verify(&old_token).await.is_err());
    assert_eq!(retired_events(&fixture).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_a_retired_token_never_waits_for_the_read_that_names_its_successor() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (old_token, old_id) = fixture.issue_at(org("acme"), "ci").await;
    let successor = fixture
        .service
        .rotate(&admin, &org("acme"), old_id, Duration::ZERO)
        .await
        .unwrap();
    // Record reads hang until released: a slow database behind the
    // service. The refusal does not wait for one (if it did, this would
    // time out).
    let gate = fixture.store.hold_finds();
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        fixture.service.verify(&old_token),
    )
    .await
    .expect("the refusal waited for the store's record read");
    assert!(matches!(refused, Err(VerifyError::Revoked)));
    // Once the read answers, the report goes out, naming the successor.
    gate.add_permits(1);
    let started = std::time::Instant::now();
    loop {
        let events = fixture.audit_events().await;
        let named = events.iter().any(|event| {
            matches!(event, AuditEvent::RetiredTokenUsed { token, replaced_by, .. }
                if *token == old_id && *replaced_by == Some(successor.summary.id))
        });
        if named {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
