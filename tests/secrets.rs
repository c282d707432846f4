//! Secrets never leak through formatting or serde, and records (which hold
//! no secret) serialize and round-trip.

mod common;

use api_tokens::store::Cursor;
use api_tokens::{
    HashKey, IssueRequest, IssuedToken, KeyId, Keyring, ParsedToken, PlaintextToken, TokenRecord,
    TokenService, TokenSummary,
};
use common::*;
use static_assertions::assert_not_impl_any;

// Secret-holding types cannot be serialized, cloned or compared by accident.
assert_not_impl_any!(PlaintextToken: serde::Serialize, Clone, PartialEq);
assert_not_impl_any!(ParsedToken<'static>: serde::Serialize, Clone, PartialEq);
assert_not_impl_any!(IssuedToken: serde::Serialize, Clone, PartialEq);
assert_not_impl_any!(HashKey: serde::Serialize, Clone, PartialEq);
assert_not_impl_any!(Keyring: serde::Serialize, Clone, PartialEq);
assert_not_impl_any!(TokenService: serde::Serialize, Clone);

async fn issued(fixture: &Fixture) -> IssuedToken {
    fixture
        .service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(domain("acme", "shop"), "Déploiement 🚀")
                .expires_at(START + 90 * DAY),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn debug_and_display_of_the_plaintext_are_redacted() {
    let fixture = fixture();
    let issued = issued(&fixture).await;
    let token = issued.token.expose_secret();
    let secret = &token[SECRET_AT..CHECKSUM_AT];
    let head = &token[..SECRET_AT];

    let debug = format!("{:?}", issued.token);
    let display = format!("{}", issued.token);
    let pretty = format!("{issued:#?}");
    assert_eq!(debug, format!("PlaintextToken({head}…[redacted])"));
    assert_eq!(display, format!("{head}…[redacted]"));
    for shown in [&debug, &display, &pretty] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            !shown.contains(&token[CHECKSUM_AT..]),
            "not even the checksum: {shown}"
        );
    }
}

#[tokio::test]
async fn digests_and_keys_stay_out_of_debug_output() {
    let fixture = fixture();
    let issued = issued(&fixture).await;
    let verified = fixture
        .service
        .verify(issued.token.expose_secret())
        .await
        .unwrap();
    let record = &fixture.store.record(verified.id()).await;
    let credential = record.credential();
    let digest_hex = serde_json::to_value(record).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(digest_hex.len(), 64);

    let key_hex: String = [1u8; 32].iter().map(|b| format!("{b:02x}")).collect();
    let key_debug = format!("{:?}", [1u8; 32]);
    for shown in [
        format!("{verified:?}"),
        format!("{record:?}"),
        format!("{credential:?}"),
        format!("{:?}", fixture.service),
        format!("{:?}", Keyring::new(KeyId::new(1), key(1))),
        format!("{:?}", key(1)),
    ] {
        assert!(!shown.contains(&digest_hex), "{shown}");
        assert!(
            !shown.contains(&format!("{:?}", record.digest.as_bytes())),
            "{shown}"
        );
        assert!(
            !shown.contains(&key_hex) && !shown.contains(&key_debug),
            "{shown}"
        );
        assert!(!shown.contains(&issued.token.expose_secret()[SECRET_AT..CHECKSUM_AT]));
    }
    assert!(format!("{record:?}").contains("Digest(..)"));
}

#[tokio::test]
async fn records_summaries_and_cursors_round_trip_through_serde() {
    let fixture = fixture();
    let issued = issued(&fixture).await;
    fixture.clock.advance(SECOND);
    fixture
        .service
        .revoke(&org_admin("acme"), &issued.summary.scope, issued.summary.id)
        .await
        .unwrap();
    let record = fixture.store.record(issued.summary.id).await;
    assert!(record.revoked.is_some() && record.expires_at.is_some());

    let json = serde_json::to_string(&record).unwrap();
    let back: TokenRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
    assert!(!json.contains(&issued.token.expose_secret()[SECRET_AT..CHECKSUM_AT]));

    let json = serde_json::to_string(&issued.summary).unwrap();
    assert_eq!(
        serde_json::from_str::<TokenSummary>(&json).unwrap(),
        issued.summary
    );

    let cursor = Cursor::of(&record);
    let json = serde_json::to_string(&cursor).unwrap();
    assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), cursor);
}

#[tokio::test]
async fn deserializing_a_record_validates_every_field() {
    let fixture = fixture();
    let issued = issued(&fixture).await;
    let record = fixture.store.record(issued.summary.id).await;
    let good = serde_json::to_value(&record).unwrap();
    // Scope and key id are written as their text forms.
    assert_eq!(good["scope"], "domain acme/shop");
    assert_eq!(good["key_id"], "1");

    let tamper = |field: &str, value: serde_json::Value| {
        let mut bad = good.clone();
        bad[field] = value;
        serde_json::from_value::<TokenRecord>(bad)
    };
    assert!(tamper("digest", "00".into()).is_err());
    assert!(tamper("id", "not an id".into()).is_err());
    assert!(tamper("label", "two\nlines".into()).is_err());
    assert!(tamper("label", "".into()).is_err());
    assert!(tamper("created_by", "has space".into()).is_err());
    assert!(tamper("role", "superuser".into()).is_err());
    assert!(tamper("scope", "galaxy acme".into()).is_err());
    assert!(tamper("scope", "domain acme".into()).is_err());
    // The tagged form of earlier versions is not a scope any more.
    assert!(
        tamper(
            "scope",
            serde_json::json!({"kind": "organization", "org": "acme"})
        )
        .is_err()
    );
    assert!(tamper("key_id", "01".into()).is_err());
    assert!(tamper("key_id", 1.into()).is_err());
    assert!(tamper("created_at", "yesterday".into()).is_err());
    assert!(tamper("digest", "00".repeat(32).into()).is_ok());
}

#[tokio::test]
async fn a_parsed_token_shows_only_its_public_parts() {
    let fixture = fixture();
    let issued = issued(&fixture).await;
    let token = issued.token.expose_secret();
    let parsed = fixture.service.format().parse(token).unwrap();

    let shown = format!("{parsed:?}");
    assert!(shown.contains(&issued.summary.id.to_string()), "{shown}");
    assert!(!shown.contains(&token[SECRET_AT..CHECKSUM_AT]), "{shown}");
    assert!(!shown.contains(&token[CHECKSUM_AT..]), "{shown}");
}

/// Every public type built from input, given input that holds a real
/// token (of this service, and of another): the token's secret never shows
/// in its `Debug`, nor its serde form where it has one.
#[tokio::test]
async fn no_type_built_from_input_shows_a_token_pasted_into_it() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "victim").await;
    let other = other_service_token("zz").await;
    let admin = org_admin("acme");
    let mut shown = Vec::new();
    for pasted in [&token, &other] {
        let text = format!("see {pasted} here");
        // The raw request, before the service has seen it.
        let request = IssueRequest::new(org("acme"), text.clone()).role(api_tokens::Role::Viewer);
        shown.push(format!("{request:?}"));
        // A label and a revocation reason, however they are made.
        let label = api_tokens::Label::new(&text).unwrap();
        shown.push(format!("{label:?} {label}"));
        shown.push(serde_json::to_string(&label).unwrap());
        let issued = fixture.service.issue(&admin, request).await.unwrap();
        shown.push(format!("{issued:?}"));
        shown.push(serde_json::to_string(&issued.summary).unwrap());
        let revoked = fixture
            .service
            .revoke_because(
                &admin,
                &issued.summary.scope,
                issued.summary.id,
                Some(&text),
            )
            .await
            .unwrap();
        shown.push(format!("{revoked:?}"));
        let record = fixture.store.record(issued.summary.id).await;
        shown.push(format!("{record:?}"));
        shown.push(serde_json::to_string(&record).unwrap());
        // An id that is a token is refused, and the refusal does not show it.
        for refused in [
            format!("{:?}", api_tokens::ActorId::new(pasted)),
            format!("{:?}", api_tokens::OrganizationId::new(pasted)),
            format!("{:?}", api_tokens::DomainId::new(pasted)),
        ] {
            shown.push(refused);
        }
    }
    let revoked = fixture
        .service
        .revoke(&admin, &org("acme"), id)
        .await
        .unwrap();
    shown.push(format!("{revoked:?}"));
    let page = fixture
        .service
        .list(&admin, &org("acme"), Default::default())
        .await
        .unwrap();
    shown.push(format!("{page:?}"));
    for event in fixture.audit_events().await {
        shown.push(format!("{event:?}"));
        shown.push(serde_json::to_string(&event).unwrap());
    }
    for pasted in [&token, &other] {
        let secret = &pasted[pasted.len() - 49..pasted.len() - 6];
        for text in &shown {
            assert!(!text.contains(secret), "a secret shows in: {text}");
        }
    }
}
