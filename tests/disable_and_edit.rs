//! Pausing a token without revoking it, and editing its label and expiry:
//! authorized like revoke, audited, reversible where it should be, final
//! where it should be.

mod common;

use api_tokens::{
    AuditEvent, ExpiryPolicy, IssueRequest, Role, ScopeKind, TokenEdit, TokenStatus, UpdateError,
    VerifyError,
};
use common::*;

#[tokio::test]
async fn a_disabled_token_fails_until_enabled_and_is_counted_apart() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;

    let paused = fixture
        .service
        .disable(&admin, &org("acme"), id)
        .await
        .unwrap();
    assert_eq!(paused.status, TokenStatus::Disabled);
    assert_eq!(paused.disabled.as_ref().unwrap().by, admin.id);
    assert!(matches!(
        fixture.service.verify(&token).await,
        Err(VerifyError::Disabled)
    ));
    assert_eq!(fixture.service.verify_failures().disabled, 1);
    assert_eq!(fixture.service.verify_failures().revoked, 0);

    // A second pause keeps the first; it is not an event.
    fixture.clock.advance(MINUTE);
    let again = fixture
        .service
        .disable(&admin, &org("acme"), id)
        .await
        .unwrap();
    assert_eq!(again.disabled, paused.disabled);

    let resumed = fixture
        .service
        .enable(&admin, &org("acme"), id)
        .await
        .unwrap();
    assert_eq!(resumed.status, TokenStatus::Active);
    assert!(resumed.disabled.is_none());
    assert_eq!(fixture.service.verify(&token).await.unwrap().id(), id);

    let kinds: Vec<_> = fixture
        .audit_events()
        .await
        .iter()
        .map(AuditEvent::kind)
        .collect();
    assert_eq!(kinds, ["issued", "disabled", "enabled"]);
}

#[tokio::test]
async fn changes_are_authorized_like_revoke_and_change_nothing_when_refused() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(domain("acme", "shop"), "deploys").await;
    let shop = domain("acme", "shop");
    let outsiders = [
        (org_admin("globex"), shop.clone()),
        (domain_admin("acme", "blog"), shop.clone()),
        (
            actor("viewer", &[(shop.clone(), api_tokens::Role::Editor)]),
            shop.clone(),
        ),
        // The right admin, addressing the wrong scope.
        (org_admin("acme"), org("acme")),
        (org_admin("acme"), domain("acme", "blog")),
    ];
    for (actor, scope) in &outsiders {
        for outcome in [
            fixture.service.disable(actor, scope, id).await,
            fixture.service.enable(actor, scope, id).await,
            fixture
                .service
                .edit(actor, scope, id, TokenEdit::new().label("mine now"))
                .await,
        ] {
            assert!(matches!(outcome, Err(UpdateError::NotFound { id: named }) if named == id));
        }
    }
    let record = fixture.store.record(id).await;
    assert!(record.disabled.is_none());
    assert_eq!(record.label.as_str(), "deploys");
    assert!(fixture.service.verify(&token).await.is_ok());
    let refusals = fixture
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.kind() == "refused")
        .count();
    assert_eq!(refusals, 3 * outsiders.len());

    // A domain admin manages its own domain's token.
    let own = domain_admin("acme", "shop");
    assert!(fixture.service.disable(&own, &shop, id).await.is_ok());
}

#[tokio::test]
async fn a_revoked_or_replaced_token_is_final() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (_, revoked) = fixture.issue_at(org("acme"), "old").await;
    fixture
        .service
        .revoke(&admin, &org("acme"), revoked)
        .await
        .unwrap();
    let (_, rotated) = fixture.issue_at(org("acme"), "rotated").await;
    let successor = fixture
        .service
        .rotate(&admin, &org("acme"), rotated, HOUR)
        .await
        .unwrap();

    for (id, expected) in [(revoked, "revoked"), (rotated, "replaced")] {
        for outcome in [
            fixture.service.disable(&admin, &org("acme"), id).await,
            fixture.service.enable(&admin, &org("acme"), id).await,
            fixture
                .service
                .edit(&admin, &org("acme"), id, TokenEdit::new().label("x"))
                .await,
        ] {
            match (expected, outcome) {
                ("revoked", Err(UpdateError::Revoked { .. })) => {}
                ("replaced", Err(UpdateError::Replaced { by, .. })) => {
                    assert_eq!(by, successor.summary.id);
                }
                (_, other) => panic!("{expected}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn an_edit_renames_and_brings_the_expiry_forward_only() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let issued = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "ci").expires_in(30 * DAY),
        )
        .await
        .unwrap();
    let (id, token) = (issued.summary.id, issued.token.expose_secret().to_owned());

    let edited = fixture
        .service
        .edit(
            &admin,
            &org("acme"),
            id,
            TokenEdit::new().label("  nightly CI  ").expires_in(DAY),
        )
        .await
        .unwrap();
    assert_eq!(edited.label.as_str(), "nightly CI");
    assert_eq!(edited.expires_at, Some(START + DAY));
    let stored = fixture.store.record(id).await;
    assert_eq!(
        (stored.label.as_str(), stored.expires_at),
        ("nightly CI", Some(START + DAY))
    );

    for (edit, refused) in [
        (TokenEdit::new().expires_in(2 * DAY), "later"),
        (TokenEdit::new().never_expires(), "never"),
        (TokenEdit::new().expires_at(START - DAY), "past"),
        (TokenEdit::new().label("\u{202e}evil"), "label"),
        (TokenEdit::new().label("ok").expires_in(2 * DAY), "both"),
    ] {
        let outcome = fixture.service.edit(&admin, &org("acme"), id, edit).await;
        let expected = match refused {
            "later" | "never" | "both" => matches!(outcome, Err(UpdateError::ExpiryExtended)),
            "past" => matches!(outcome, Err(UpdateError::ExpiryNotInFuture)),
            _ => matches!(outcome, Err(UpdateError::InvalidLabel(_))),
        };
        assert!(expected, "{refused}: {outcome:?}");
    }
    // Nothing of a refused edit landed, not even the valid half.
    let stored = fixture.store.record(id).await;
    assert_eq!(
        (stored.label.as_str(), stored.expires_at),
        ("nightly CI", Some(START + DAY))
    );

    fixture.clock.advance(DAY);
    assert!(matches!(
        fixture.service.verify(&token).await,
        Err(VerifyError::Expired)
    ));
    let kinds: Vec<_> = fixture
        .audit_events()
        .await
        .iter()
        .map(AuditEvent::kind)
        .collect();
    assert_eq!(kinds, ["issued", "edited"]);
}

#[tokio::test]
async fn a_policy_may_allow_extending_within_its_maximum() {
    let mut fixture = fixture();
    let policy = ExpiryPolicy::default()
        .with_max_lifetime(ScopeKind::Organization, 90 * DAY)
        .unwrap()
        .allow_extending();
    fixture.service = fixture.service.with_expiry_policy(policy);
    let admin = org_admin("acme");
    let issued = fixture
        .service
        .issue(&admin, IssueRequest::new(org("acme"), "ci").expires_in(DAY))
        .await
        .unwrap();
    let id = issued.summary.id;

    fixture.clock.advance(12 * HOUR);
    let extended = fixture
        .service
        .edit(
            &admin,
            &org("acme"),
            id,
            TokenEdit::new().expires_in(90 * DAY),
        )
        .await
        .unwrap();
    assert_eq!(extended.expires_at, Some(START + 12 * HOUR + 90 * DAY));
    assert!(matches!(
        fixture
            .service
            .edit(
                &admin,
                &org("acme"),
                id,
                TokenEdit::new().expires_in(91 * DAY)
            )
            .await,
        Err(UpdateError::LifetimeTooLong { .. })
    ));
    assert!(matches!(
        fixture
            .service
            .edit(&admin, &org("acme"), id, TokenEdit::new().never_expires())
            .await,
        Err(UpdateError::MustExpire { .. })
    ));
}

#[tokio::test]
async fn a_rotation_keeps_a_pause() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (_, id) = fixture.issue_at(org("acme"), "ci").await;
    fixture
        .service
        .disable(&admin, &org("acme"), id)
        .await
        .unwrap();
    let successor = fixture
        .service
        .rotate(&admin, &org("acme"), id, HOUR)
        .await
        .unwrap();
    assert_eq!(successor.summary.status, TokenStatus::Disabled);
    assert!(matches!(
        fixture
            .service
            .verify(successor.token.expose_secret())
            .await,
        Err(VerifyError::Disabled)
    ));
}

#[tokio::test]
async fn an_unknown_id_is_not_found_and_a_store_outage_is_a_store_error() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let unknown: api_tokens::TokenId = "00000000042".parse().unwrap();
    assert!(matches!(
        fixture.service.disable(&admin, &org("acme"), unknown).await,
        Err(UpdateError::NotFound { .. })
    ));
    let down = service_over(std::sync::Arc::new(Unreachable));
    assert!(matches!(
        down.edit(&admin, &org("acme"), unknown, TokenEdit::new().label("x"))
            .await,
        Err(UpdateError::Store(_))
    ));
}

#[tokio::test]
async fn an_expired_token_cannot_be_revived_by_an_edit() {
    let mut fixture = fixture();
    fixture.service = fixture
        .service
        .with_expiry_policy(ExpiryPolicy::default().allow_extending());
    let admin = org_admin("acme");
    let issued = fixture
        .service
        .issue(&admin, IssueRequest::new(org("acme"), "ci").expires_in(DAY))
        .await
        .unwrap();
    let id = issued.summary.id;
    fixture.clock.advance(2 * DAY);
    let outcome = fixture
        .service
        .edit(
            &admin,
            &org("acme"),
            id,
            TokenEdit::new().expires_in(30 * DAY),
        )
        .await;
    assert!(
        matches!(outcome, Err(UpdateError::Expired { .. })),
        "{outcome:?}"
    );
    assert!(matches!(
        fixture.service.verify(issued.token.expose_secret()).await,
        Err(VerifyError::Expired)
    ));
    // Its label may still change: that gives nothing back.
    let relabelled = fixture
        .service
        .edit(&admin, &org("acme"), id, TokenEdit::new().label("old CI"))
        .await
        .unwrap();
    assert_eq!(relabelled.status, TokenStatus::Expired);
}

#[tokio::test]
async fn giving_power_back_needs_the_tokens_own_role() {
    let mut fixture = fixture();
    fixture.service = fixture
        .service
        .with_expiry_policy(ExpiryPolicy::default().allow_extending());
    let owner = actor("olivia", &[(org("acme"), Role::Owner)]);
    let admin = org_admin("acme");
    let issued = fixture
        .service
        .issue(
            &owner,
            IssueRequest::new(org("acme"), "billing")
                .role(Role::Owner)
                .expires_in(DAY),
        )
        .await
        .unwrap();
    let id = issued.summary.id;

    // An admin may pause an owner's token and bring its expiry forward...
    fixture
        .service
        .disable(&admin, &org("acme"), id)
        .await
        .unwrap();
    fixture
        .service
        .edit(&admin, &org("acme"), id, TokenEdit::new().expires_in(HOUR))
        .await
        .unwrap();
    // ...but neither resume it nor extend it.
    for outcome in [
        fixture.service.enable(&admin, &org("acme"), id).await,
        fixture
            .service
            .edit(&admin, &org("acme"), id, TokenEdit::new().expires_in(DAY))
            .await,
    ] {
        assert!(
            matches!(
                outcome,
                Err(UpdateError::RoleTooHigh {
                    role: Role::Owner,
                    held: Role::Admin
                })
            ),
            "{outcome:?}"
        );
    }
    let record = fixture.store.record(id).await;
    assert!(record.disabled.is_some());
    assert_eq!(record.expires_at, Some(START + HOUR));
    // The owner may.
    fixture
        .service
        .enable(&owner, &org("acme"), id)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_paused_rotated_token_is_not_reported_as_retired() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let (old_token, id) = fixture.issue_at(org("acme"), "ci").await;
    fixture
        .service
        .disable(&admin, &org("acme"), id)
        .await
        .unwrap();
    fixture
        .service
        .rotate(&admin, &org("acme"), id, HOUR)
        .await
        .unwrap();
    assert!(matches!(
        fixture.service.verify(&old_token).await,
        Err(VerifyError::Disabled)
    ));
    let retired = fixture
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.kind() == "retired_token_used")
        .count();
    assert_eq!(retired, 0);
}
