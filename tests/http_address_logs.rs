//! What the token layer logs about client addresses: once, that the server
//! gives it none; and for each address refusal, the address it saw, never
//! the token.
//!
//! A binary of its own: a test's thread-local subscriber can miss events of
//! call sites that tests on other threads register at the same moment.

mod common;

use std::sync::Arc;

use api_tokens::http::TokenLayer;
use reqwest::StatusCode;

use common::http::*;
use common::logs::capture_logs;
use common::*;

// The default (current-thread) runtime runs the servers, the client and
// this test on one thread, so the thread's subscriber sees all they log.
#[tokio::test]
async fn a_missing_connect_info_is_said_once_and_a_refusal_names_the_address() {
    let (captured, _guard) = capture_logs(tracing::Level::DEBUG);
    let Fixture { service, .. } = fixture();
    let tokens = Arc::new(service);
    let request = acme_token().allowed_networks(["203.0.113.0/24"]);
    let issued = tokens.issue(&org_admin("acme"), request).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    let call = async |url: &str| {
        let request = client().get(format!("{url}/whoami")).bearer_auth(&token);
        request.send().await.unwrap().status()
    };

    // Served without connect info: no address, refused, said once.
    let plain = serve(whoami_router(Some(TokenLayer::new(tokens.clone())))).await;
    for _ in 0..3 {
        assert_eq!(call(&plain).await, StatusCode::FORBIDDEN);
    }
    let log = captured.text();
    assert_eq!(
        log.matches("the token layer sees no client address")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains("WARN"), "{log}");

    // Served with it: the refusal names the address the layer saw.
    let with_peer =
        serve_with_connect_info(whoami_router(Some(TokenLayer::new(tokens.clone())))).await;
    assert_eq!(call(&with_peer).await, StatusCode::FORBIDDEN);
    let log = captured.text();
    assert!(log.contains("client=127.0.0.1"), "{log}");
    assert!(
        log.contains("the token may not be used from this address"),
        "{log}"
    );
    assert_eq!(
        log.matches("the token layer sees no client address")
            .count(),
        1,
        "{log}"
    );
    let secret = &token[SECRET_AT..CHECKSUM_AT];
    assert!(!log.contains(secret), "a secret was logged:\n{log}");
}
