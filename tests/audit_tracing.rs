//! The default audit sink writes each event through `tracing`, without a
//! secret. A binary of its own: a test's thread-local subscriber can miss
//! events of call sites other tests register at the same moment.

mod common;

use api_tokens::{IssueRequest, Role, TokenFormat, TokenService};
use common::logs::capture_logs;
use common::*;

#[tokio::test]
async fn the_default_sink_logs_each_event_at_info_under_its_own_target() {
    let (captured, _guard) = capture_logs(tracing::Level::INFO);

    let store = std::sync::Arc::new(api_tokens::MemoryStore::new());
    // No audit sink configured: the default one.
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        store,
    );
    let issued = service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(org("acme"), "logged role=owner"),
        )
        .await
        .unwrap();
    service
        .revoke_because(
            &org_admin("acme"),
            &org("acme"),
            issued.summary.id,
            Some("done"),
        )
        .await
        .unwrap();
    // Refused: the scope it addressed is logged with the token it named.
    assert!(
        service
            .revoke(&org_admin("globex"), &org("acme"), issued.summary.id)
            .await
            .is_err()
    );
    service.flush_audit().await;

    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    let id = issued.summary.id;
    // One field per fact, so a log pipeline can filter on each.
    let shared = [
        format!("actor=\"{}\"", org_admin("acme").id),
        format!("token_id={id}"),
        format!("scope=\"{}\"", org("acme")),
        format!("role={}", Role::Viewer),
        // Quoted: a label cannot pose as another field.
        "label=\"logged role=owner\"".to_owned(),
    ];
    for (line, (event, own)) in lines
        .iter()
        .zip([("issued", None), ("revoked", Some("reason=\"done\""))])
    {
        assert!(
            line.contains("INFO") && line.contains("api_tokens::audit"),
            "{line}"
        );
        assert!(line.contains(&format!("event=\"{event}\"")), "{line}");
        assert!(line.contains(" at="), "{line}");
        for field in shared.iter().map(String::as_str).chain(own) {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
    // The issue has no reason to log.
    assert!(!lines[0].contains("reason="), "{}", lines[0]);
    let refused = lines[2];
    for field in [
        "event=\"refused\"".to_owned(),
        "operation=\"revoke\"".to_owned(),
        format!("actor=\"{}\"", org_admin("globex").id),
        format!("scope=\"{}\"", org("acme")),
        format!("token_id={id}"),
    ] {
        assert!(refused.contains(&field), "{field} missing: {refused}");
    }
    let token = issued.token.expose_secret();
    assert!(!log.contains(token), "{log}");
    assert!(!log.contains(&token[SECRET_AT..CHECKSUM_AT]), "{log}");
}
