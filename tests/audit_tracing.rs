//! The default audit sink writes each event through `tracing`, without a
//! secret. A binary of its own: a test's thread-local subscriber can miss
//! events of call sites other tests register at the same moment.

mod common;

use api_tokens::{IssueRequest, TokenFormat, TokenService};
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
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), "logged"))
        .await
        .unwrap();
    service
        .revoke(&org_admin("acme"), issued.summary.id)
        .await
        .unwrap();
    service.flush_audit().await;

    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    for (line, event) in lines.iter().zip(["Issued", "Revoked"]) {
        assert!(
            line.contains("INFO") && line.contains("api_tokens::audit"),
            "{line}"
        );
        assert!(
            line.contains(event) && line.contains(&issued.summary.id.to_string()),
            "{line}"
        );
    }
    let token = issued.token.expose_secret();
    assert!(!log.contains(&token[SECRET_AT..CHECKSUM_AT]), "{log}");
}
