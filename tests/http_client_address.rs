//! Allowlists over real HTTP: the layer takes the client's address from the
//! connection, reads `X-Forwarded-For` only from trusted proxies, and
//! refuses a token with an allowlist whenever the address is outside it or
//! cannot be told, with one 403 for all of them.

mod common;

use std::sync::Arc;

use api_tokens::http::TokenLayer;
use api_tokens::testing::MemoryAuditSink;
use api_tokens::{AuditEvent, IpNetwork, TokenService};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use common::http::*;
use common::*;

/// The one answer to every address refusal.
const ADDRESS_NOT_ALLOWED: &str = r#"Bearer error="address_not_allowed", error_description="the token may not be used from this address""#;
const ADDRESS_NOT_ALLOWED_BODY: &str = r#"{"error":"address_not_allowed","error_description":"the token may not be used from this address"}"#;

/// A `/whoami` served with connect info behind a layer, the service
/// behind it, and its audit trail.
struct Served {
    url: String,
    tokens: Arc<TokenService>,
    audit: Arc<MemoryAuditSink>,
}

async fn served(layer: impl FnOnce(Arc<TokenService>) -> TokenLayer) -> Served {
    let Fixture { service, audit, .. } = fixture();
    let tokens = Arc::new(service);
    let url = serve_with_connect_info(whoami_router(Some(layer(tokens.clone())))).await;
    Served { url, tokens, audit }
}

async fn issue(tokens: &TokenService, networks: Option<&[&str]>) -> String {
    let mut request = acme_token();
    if let Some(networks) = networks {
        request = request.allowed_networks(networks.iter().copied());
    }
    let issued = tokens.issue(&org_admin("acme"), request).await.unwrap();
    issued.token.expose_secret().to_owned()
}

/// `GET /whoami` with `token` and these `X-Forwarded-For` lines.
async fn call(url: &str, token: &str, forwarded_for: &[&str]) -> Answer {
    let mut request = client().get(format!("{url}/whoami")).bearer_auth(token);
    for line in forwarded_for {
        request = request.header("x-forwarded-for", *line);
    }
    Answer::of(request.send().await.unwrap()).await
}

fn trusted(networks: &[&str]) -> Vec<IpNetwork> {
    networks.iter().map(|text| text.parse().unwrap()).collect()
}

#[track_caller]
fn assert_passed(answer: &Answer, what: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
}

/// Every address refusal: the same status, challenge and body, byte for
/// byte, whatever the reason. Returns the headers that could differ.
#[track_caller]
fn assert_address_refused(answer: &Answer, what: &str) -> HeaderMap {
    assert_eq!(
        answer.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        answer.body
    );
    assert_eq!(answer.challenge(), Some(ADDRESS_NOT_ALLOWED), "{what}");
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json", "{what}");
    assert_eq!(answer.body, ADDRESS_NOT_ALLOWED_BODY, "{what}");
    let mut headers = answer.headers.clone();
    headers.remove("date");
    headers
}

#[tokio::test]
async fn the_connection_address_decides_and_the_header_is_never_read_by_default() {
    let served = served(TokenLayer::new).await;
    let tokens = &served.tokens;
    let loopback = issue(tokens, Some(&["127.0.0.0/8"])).await;
    let elsewhere = issue(tokens, Some(&["203.0.113.0/24"])).await;
    let open = issue(tokens, None).await;

    assert_passed(&call(&served.url, &loopback, &[]).await, "inside the list");
    assert_passed(&call(&served.url, &open, &[]).await, "no list");
    let outside = assert_address_refused(&call(&served.url, &elsewhere, &[]).await, "outside");

    // Spoofing: the client claims an allowed address. No proxy is trusted,
    // so the header is not read and the connection (127.0.0.1) decides.
    let spoofed = call(&served.url, &elsewhere, &["203.0.113.7"]).await;
    assert_eq!(assert_address_refused(&spoofed, "spoofed"), outside);
    let spoofed = call(
        &served.url,
        &elsewhere,
        &["203.0.113.7, 203.0.113.8", "203.0.113.9"],
    )
    .await;
    assert_eq!(
        assert_address_refused(&spoofed, "spoofed, two lines"),
        outside
    );
    // Nor can a header lock out a client that is allowed.
    assert_passed(
        &call(&served.url, &loopback, &["203.0.113.7"]).await,
        "header ignored",
    );
    assert_passed(
        &call(&served.url, &loopback, &["garbage"]).await,
        "garbage ignored",
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_entry_decides() {
    // The test client plays the proxy: its connection comes from 127.0.0.1.
    let served =
        served(|tokens| TokenLayer::new(tokens).trusted_proxies(trusted(&["127.0.0.1/32"]))).await;
    let tokens = &served.tokens;
    let office = issue(tokens, Some(&["203.0.113.0/24"])).await;
    let open = issue(tokens, None).await;

    // The proxy appended the real client; the rest is what the client sent.
    assert_passed(
        &call(&served.url, &office, &["203.0.113.7"]).await,
        "real client",
    );
    assert_passed(
        &call(&served.url, &office, &["198.51.100.1, 203.0.113.7"]).await,
        "forged left, real right",
    );
    // A client outside the office forges an office address on the left;
    // the proxy's entry, on the right, is the truth.
    let forged = call(&served.url, &office, &["203.0.113.7, 198.51.100.9"]).await;
    let outside = assert_address_refused(&forged, "forged left-most");
    // The forged entry as a line of its own, before the proxy's line.
    let forged = call(&served.url, &office, &["203.0.113.7", "198.51.100.9"]).await;
    assert_eq!(assert_address_refused(&forged, "forged line"), outside);
    // The proxy chain: another trusted hop's own entry is skipped.
    assert_passed(
        &call(&served.url, &office, &["203.0.113.7, 127.0.0.1"]).await,
        "two hops",
    );
    // Only proxies: the left-most is the client, here the proxy itself.
    let only_proxies = call(&served.url, &office, &["127.0.0.1"]).await;
    assert_eq!(
        assert_address_refused(&only_proxies, "only proxies"),
        outside
    );
    // No header from the proxy: the proxy is the client.
    assert_eq!(
        assert_address_refused(&call(&served.url, &office, &[]).await, "no header"),
        outside
    );

    // Garbage on the walk: no address, so the allowlisted token fails
    // closed, while a token without a list is not bothered.
    for garbage in [
        "garbage",
        "203.0.113.7, unknown",
        "203.0.113.7 198.51.100.9",
        "203.0.113.7;198.51.100.9",
        "203.0.113.0/24",
        "_hidden",
    ] {
        let answer = call(&served.url, &office, &[garbage]).await;
        assert_eq!(assert_address_refused(&answer, garbage), outside);
        assert_passed(&call(&served.url, &open, &[garbage]).await, garbage);
    }
    // Left of the client, garbage is never read.
    assert_passed(
        &call(&served.url, &office, &["garbage, 203.0.113.7"]).await,
        "garbage left of the client",
    );
}

#[tokio::test]
async fn a_trusted_network_does_not_make_an_untrusted_peer_trusted() {
    // Trusting a network the test client is not in: its header is ignored.
    let served =
        served(|tokens| TokenLayer::new(tokens).trusted_proxies(trusted(&["10.0.0.0/8"]))).await;
    let tokens = &served.tokens;
    let office = issue(tokens, Some(&["203.0.113.0/24"])).await;
    let answer = call(&served.url, &office, &["203.0.113.7"]).await;
    assert_address_refused(&answer, "untrusted peer");
}

#[tokio::test]
async fn without_connect_info_allowlisted_tokens_fail_closed_and_others_pass() {
    let Fixture { service, .. } = fixture();
    let tokens = Arc::new(service);
    // Served the plain way: no ConnectInfo, so no address.
    let url = serve(whoami_router(Some(TokenLayer::new(tokens.clone())))).await;
    let loopback = issue(&tokens, Some(&["127.0.0.0/8"])).await;
    let open = issue(&tokens, None).await;

    assert_address_refused(&call(&url, &loopback, &[]).await, "no connect info");
    assert_address_refused(&call(&url, &loopback, &["127.0.0.1"]).await, "header");
    assert_passed(&call(&url, &open, &[]).await, "no list");
}

#[tokio::test]
async fn an_address_refusal_is_audited_with_the_address_the_layer_saw() {
    let served =
        served(|tokens| TokenLayer::new(tokens).trusted_proxies(trusted(&["127.0.0.1/32"]))).await;
    let tokens = &served.tokens;
    let office = issue(tokens, Some(&["203.0.113.0/24"])).await;
    assert_address_refused(
        &call(&served.url, &office, &["203.0.113.7, 198.51.100.9"]).await,
        "outside",
    );
    tokens.flush_audit().await;
    let refused: Vec<_> = served
        .audit
        .events()
        .into_iter()
        .filter_map(|event| match event {
            AuditEvent::AddressRefused { client, .. } => Some(client),
            _ => None,
        })
        .collect();
    assert_eq!(refused, [Some("198.51.100.9".parse().unwrap())]);
    assert_eq!(tokens.verify_failures().address_not_allowed, 1);
}
