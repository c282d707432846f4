//! `TokenService::verify`: what a valid token grants, and every way a token
//! is refused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use api_tokens::{IssueRequest, KeyId, Keyring, Role, TokenFormat, TokenService, VerifyError};
use common::*;

async fn issue(fixture: &Fixture, request: IssueRequest) -> String {
    fixture
        .service
        .issue(&org_admin("acme"), request)
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn a_valid_token_reports_its_scope_and_role() {
    let fixture = fixture();
    let org_token = issue(
        &fixture,
        IssueRequest::new(org("acme"), "org").role(Role::Editor),
    )
    .await;
    let shop_token = issue(
        &fixture,
        IssueRequest::new(domain("acme", "shop"), "shop").role(Role::Admin),
    )
    .await;

    let verified = fixture.service.verify(&org_token).await.unwrap();
    assert_eq!(verified.scope(), &org("acme"));
    assert_eq!(verified.role(), Role::Editor);
    assert_eq!(verified.expires_at(), None);
    // An organization token is good for the organization's domains.
    assert!(verified.allows(&org("acme"), Role::Editor));
    assert!(verified.allows(&domain("acme", "shop"), Role::Viewer));
    assert!(!verified.allows(&domain("acme", "shop"), Role::Admin));
    assert!(!verified.allows(&org("globex"), Role::Viewer));
    assert!(!verified.allows(&domain("globex", "shop"), Role::Viewer));

    let verified = fixture.service.verify(&shop_token).await.unwrap();
    assert_eq!(verified.scope(), &domain("acme", "shop"));
    assert_eq!(verified.role(), Role::Admin);
    // A domain token is good for its domain only.
    assert!(verified.allows(&domain("acme", "shop"), Role::Admin));
    assert!(!verified.allows(&domain("acme", "blog"), Role::Viewer));
    assert!(!verified.allows(&org("acme"), Role::Viewer));
    assert!(!verified.allows(&domain("globex", "shop"), Role::Viewer));
}

#[tokio::test]
async fn keys_rotate_without_invalidating_older_tokens() {
    let fixture = fixture_with_keys(Keyring::new(KeyId::new(1), key(1)));
    let old_token = issue(&fixture, IssueRequest::new(org("acme"), "made under key 1")).await;

    // The same store, now served with keys [1, 2].
    let rotated = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::from_keys([(KeyId::new(1), key(1)), (KeyId::new(2), key(2))]).unwrap(),
        fixture.store.clone(),
    );
    let new_token = rotated
        .issue(
            &org_admin("acme"),
            IssueRequest::new(org("acme"), "made under key 2"),
        )
        .await
        .unwrap();
    let new_token = new_token.token.expose_secret();

    for (token, key_id) in [(new_token, KeyId::new(2)), (&old_token, KeyId::new(1))] {
        let verified = rotated.verify(token).await.unwrap();
        assert_eq!(fixture.store.record(verified.id()).await.key_id, key_id);
    }

    // A service that dropped key 1 refuses tokens made under it, as invalid.
    let key_1_retired = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(2), key(2)),
        fixture.store.clone(),
    );
    assert!(matches!(
        key_1_retired.verify(&old_token).await,
        Err(VerifyError::Invalid)
    ));
    assert!(key_1_retired.verify(new_token).await.is_ok());

    // A key id reused for different key material verifies nothing old.
    let wrong_material = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(9)),
        fixture.store.clone(),
    );
    assert!(matches!(
        wrong_material.verify(&old_token).await,
        Err(VerifyError::Invalid)
    ));
}

#[tokio::test]
async fn unknown_id_and_wrong_secret_are_the_same_error() {
    let fixture = fixture();
    let token = issue(&fixture, IssueRequest::new(org("acme"), "ci")).await;
    let wrong_secret = altered(
        &token,
        SECRET_AT + 20,
        other_than(token.as_bytes()[SECRET_AT + 20]),
    );
    let unknown_id = altered(&token, ID_AT + 5, other_than(token.as_bytes()[ID_AT + 5]));

    let finds_before = fixture.store.finds();
    let wrong = fixture.service.verify(&wrong_secret).await.unwrap_err();
    let unknown = fixture.service.verify(&unknown_id).await.unwrap_err();
    assert!(matches!(wrong, VerifyError::Invalid));
    assert!(matches!(unknown, VerifyError::Invalid));
    assert_eq!(wrong.to_string(), unknown.to_string());
    // Both were well formed, so both were looked up.
    assert_eq!(fixture.store.finds(), finds_before + 2);
}

#[tokio::test]
async fn a_changed_scope_letter_is_invalid_even_with_a_fixed_checksum() {
    let fixture = fixture();
    let token = issue(&fixture, IssueRequest::new(domain("acme", "shop"), "shop")).await;
    let as_org_token = altered(&token, KIND_AT, b'o');
    assert!(matches!(
        fixture.service.verify(&as_org_token).await,
        Err(VerifyError::Invalid)
    ));
}

#[tokio::test]
async fn revoked_is_reported_only_once_the_secret_matched() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let issued = fixture
        .service
        .issue(&admin, IssueRequest::new(org("acme"), "ci"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    assert!(fixture.service.verify(token).await.is_ok());

    fixture
        .service
        .revoke(&admin, &issued.summary.scope, issued.summary.id)
        .await
        .unwrap();
    // The very next verify fails.
    assert!(matches!(
        fixture.service.verify(token).await,
        Err(VerifyError::Revoked)
    ));
    // A wrong secret for the revoked id learns nothing about its status.
    let wrong_secret = altered(token, SECRET_AT, other_than(token.as_bytes()[SECRET_AT]));
    assert!(matches!(
        fixture.service.verify(&wrong_secret).await,
        Err(VerifyError::Invalid)
    ));
}

#[tokio::test]
async fn expired_is_reported_from_the_expiry_instant_and_only_with_the_secret() {
    let fixture = fixture();
    let expiry = START + 30 * DAY;
    let token = issue(
        &fixture,
        IssueRequest::new(org("acme"), "ci").expires_at(expiry),
    )
    .await;
    let wrong_secret = altered(&token, SECRET_AT, other_than(token.as_bytes()[SECRET_AT]));

    fixture.clock.set(expiry - Duration::from_micros(1));
    let verified = fixture.service.verify(&token).await.unwrap();
    // The client can be told when to rotate.
    assert_eq!(verified.expires_at(), Some(expiry));

    fixture.clock.set(expiry);
    assert!(matches!(
        fixture.service.verify(&token).await,
        Err(VerifyError::Expired)
    ));
    assert!(matches!(
        fixture.service.verify(&wrong_secret).await,
        Err(VerifyError::Invalid)
    ));

    fixture.clock.advance(365 * DAY);
    assert!(matches!(
        fixture.service.verify(&token).await,
        Err(VerifyError::Expired)
    ));
}

#[tokio::test]
async fn garbage_gets_a_typed_error_and_never_a_panic() {
    let fixture = fixture();
    let token = issue(&fixture, IssueRequest::new(org("acme"), "ci")).await;

    let mut garbage = vec![
        String::new(),
        " ".into(),
        "\0".repeat(TOKEN_LEN),
        "a".repeat(1 << 20),
        "é".repeat(TOKEN_LEN / 2),
        "🔑".repeat(TOKEN_LEN / 4) + "ab",
        format!("Bearer {token}"),
        format!("{token}\n"),
        format!(" {token}"),
        token.to_uppercase(),
        token.replace('_', "\0"),
        format!("{}\0{}", &token[..30], &token[31..]),
        format!("{}é{}", &token[..30], &token[32..]),
        token[..TOKEN_LEN / 2].to_owned(),
    ];
    // Every position changed to a byte of every class: NUL, ASCII, non-ASCII.
    for position in 0..TOKEN_LEN {
        for replacement in ["\0", "-", "Z", "9", "ü"] {
            let mut changed = token.clone();
            changed.replace_range(position..=position, replacement);
            if changed != token {
                garbage.push(changed);
            }
        }
    }

    for input in &garbage {
        let error = fixture.service.verify(input).await.unwrap_err();
        assert!(
            matches!(error, VerifyError::Malformed(_) | VerifyError::Invalid),
            "{:?}: {error:?}",
            input.get(..80)
        );
        // The message never echoes the input.
        assert!(!error.to_string().contains(&token[SECRET_AT..CHECKSUM_AT]));
    }
    // None of that disturbed the real token.
    assert!(fixture.service.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_token_of_another_service_is_malformed_here() {
    let fixture = fixture();
    let token = issue(&fixture, IssueRequest::new(org("acme"), "ci")).await;
    let globex = TokenService::new(
        TokenFormat::new("globex").unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        Arc::new(api_tokens::MemoryStore::new()),
    );
    assert!(matches!(
        globex.verify(&token).await,
        Err(VerifyError::Malformed(_))
    ));
}
