//! The default audit sink logs the narrowing, pause, edit and address
//! events one field per fact. A binary of its own, as `audit_tracing`: a
//! test's thread-local subscriber can miss events of call sites other tests
//! register at the same moment.

mod common;

use api_tokens::{IssueRequest, Role, TokenFormat, TokenService};
use common::logs::capture_logs;
use common::*;

#[tokio::test]
async fn narrowing_pauses_edits_and_address_refusals_are_logged_field_by_field() {
    let (captured, _guard) = capture_logs(tracing::Level::INFO);
    let registry = api_tokens::PermissionRegistry::new()
        .define("notifications:send", Role::Editor)
        .unwrap();
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        std::sync::Arc::new(api_tokens::MemoryStore::new()),
    )
    .with_permissions(registry);
    let admin = org_admin("acme");
    let issued = service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "notifier")
                .permissions(["notifications:send"])
                .allowed_networks(["10.0.0.0/8", "2001:db8::/32"]),
        )
        .await
        .unwrap();
    let id = issued.summary.id;
    let from = "192.0.2.1".parse().unwrap();
    assert!(
        service
            .verify_from(issued.token.expose_secret(), from)
            .await
            .is_err()
    );
    service.disable(&admin, &org("acme"), id).await.unwrap();
    service.enable(&admin, &org("acme"), id).await.unwrap();
    service
        .edit(
            &admin,
            &org("acme"),
            id,
            api_tokens::TokenEdit::new().label("pager"),
        )
        .await
        .unwrap();
    service.flush_audit().await;

    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    let expected: [&[&str]; 5] = [
        &[
            "event=\"issued\"",
            "permissions=notifications:send",
            "allowed_networks=10.0.0.0/8,2001:db8::/32",
        ],
        &["event=\"address_refused\"", "client=192.0.2.1"],
        &["event=\"disabled\"", "actor=\"admin-of-acme\""],
        &["event=\"enabled\""],
        &["event=\"edited\"", "label=\"pager\""],
    ];
    for (line, fields) in lines.iter().zip(expected) {
        assert!(line.contains(&format!("token_id={id}")), "{line}");
        for field in fields {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
}
