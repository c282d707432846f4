//! The token layer names the verified token in the service's traces: on
//! the request's own span where it declares `token_id`, and on a span of
//! its own around the handler. Never the token's text.
//!
//! A binary of its own: a test's thread-local subscriber can miss events of
//! call sites that tests on other threads register at the same moment.

mod common;

use std::sync::Arc;

use api_tokens::http::TokenLayer;
use api_tokens::{TokenService, VerifiedToken};
use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::get;
use reqwest::StatusCode;
use tracing::Instrument;

use common::http::{acme_token, client, serve};
use common::logs::capture_logs;
use common::*;

async fn handler(token: Option<VerifiedToken>) -> &'static str {
    tracing::info!(anonymous = token.is_none(), "the handler runs");
    "ok"
}

/// The span a service's tracing middleware opens per request (as
/// `tower_http`'s `TraceLayer` does), declaring `token_id` for the token
/// layer to fill in, and an event once the response is ready.
async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!("request", token_id = tracing::field::Empty);
    async move {
        let response = next.run(request).await;
        tracing::info!("the response is ready");
        response
    }
    .instrument(span)
    .await
}

async fn issue(tokens: &TokenService) -> String {
    let issued = tokens.issue(&org_admin("acme"), acme_token()).await;
    issued.unwrap().token.expose_secret().to_owned()
}

// The default (current-thread) runtime runs the server, the client and
// this test on one thread, so the thread's subscriber sees all they log.
#[tokio::test]
async fn the_layer_puts_the_token_id_on_the_request_span_and_its_own() {
    // INFO, as services commonly run: the layer's span must show there.
    let (captured, _guard) = capture_logs(tracing::Level::INFO);
    let Fixture { service, .. } = fixture();
    let tokens = Arc::new(service);
    let token = issue(&tokens).await;
    let id = &token[ID_AT..SECRET_AT];

    // Without a request span: the layer's own span carries the id.
    let bare = Router::new()
        .route("/", get(handler))
        .route_layer(TokenLayer::optional(tokens.clone()));
    let bare = serve(bare).await;
    let answer = client().get(&bare).bearer_auth(&token).send().await;
    assert_eq!(answer.unwrap().status(), StatusCode::OK);
    let log = captured.text();
    let line = log
        .lines()
        .find(|line| line.contains("the handler runs"))
        .expect("the handler logged");
    assert!(
        line.contains(&format!("api_token{{token_id={id}}}")),
        "{log}"
    );

    // With a request span declaring `token_id`: the layer records the id
    // there too, so the request's events after the handler carry it.
    let traced = Router::new()
        .route("/", get(handler))
        .route_layer(TokenLayer::optional(tokens.clone()))
        .layer(from_fn(request_span));
    let traced = serve(traced).await;
    let answer = client().get(&traced).bearer_auth(&token).send().await;
    assert_eq!(answer.unwrap().status(), StatusCode::OK);
    let log = captured.text();
    let handled = log
        .lines()
        .filter(|line| line.contains("the handler runs"))
        .nth(1)
        .expect("the handler logged twice");
    assert!(
        handled.contains(&format!(
            "request{{token_id={id}}}:api_token{{token_id={id}}}"
        )),
        "{log}"
    );
    let ready = log
        .lines()
        .find(|line| line.contains("the response is ready"))
        .expect("the request span logged");
    assert!(
        ready.contains(&format!("request{{token_id={id}}}")),
        "{log}"
    );

    // Anonymous: no token, no id, and the request span's field stays empty.
    let answer = client().get(&traced).send().await;
    assert_eq!(answer.unwrap().status(), StatusCode::OK);
    let log = captured.text();
    let anonymous = log
        .lines()
        .find(|line| line.contains("anonymous=true"))
        .expect("the anonymous request was handled");
    assert!(!anonymous.contains("token_id"), "{log}");

    // The id, never the token.
    assert!(!log.contains(&token[SECRET_AT..CHECKSUM_AT]), "{log}");
}
