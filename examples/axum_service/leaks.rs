//! `POST /credentials/revoke`: anyone who finds one of our tokens (in a
//! public paste, a commit, a log) sends it here and it dies, modelled on
//! GitHub's credential revocation API.
//!
//! ```text
//! curl -si -X POST localhost:3000/credentials/revoke \
//!      -H 'Content-Type: application/json' -d '{"credentials": ["acmeo_…"]}'
//! ```
//!
//! No authentication: holding the secret is the right to end it. So that
//! the endpoint tells nobody whether a string was a live token, every
//! accepted request gets the same `202` and body, and the revoking happens
//! afterwards in one background task (a live token's store write does not
//! show in the response time). What is bounded, and answered how:
//!
//! | limit | answer |
//! |---|---|
//! | body over [`MAX_BODY_BYTES`] | `413` |
//! | more than [`MAX_LEAKED_TOKENS`] credentials, or tokens in them | `422 too_many_credentials` |
//! | more than [`REQUESTS_PER_MINUTE`] requests a minute, all clients together | `429` with `Retry-After` |
//! | [`QUEUE`] reports already waiting for the background task | `503` with `Retry-After` |
//!
//! The rate limit is one for all clients: enough for people and scanners
//! reporting leaks, and it keeps an anonymous flood from costing more than
//! that many lookups a minute. A service that expects heavy reporting
//! would limit per client address as well.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use api_tokens::{MAX_LEAKED_TOKENS, TokenService};
use axum::body::{Bytes, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

/// The largest body read. A report of 1,000 tokens, quoted in JSON, is
/// about 70 KB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Requests a minute the endpoint accepts, from all clients together.
pub const REQUESTS_PER_MINUTE: u32 = 30;

/// Reports waiting for the background task at most.
pub const QUEUE: usize = 16;

/// What every accepted report is answered with, whatever it held.
const ACCEPTED: &str = "Accepted: every valid credential in the report will be revoked.";

#[derive(Deserialize)]
struct Report {
    credentials: Vec<String>,
}

struct Endpoint {
    tokens: Arc<TokenService>,
    limit: DefaultDirectRateLimiter,
    reports: mpsc::Sender<(String, SocketAddr)>,
}

/// The route, and the task that revokes what it accepts (it ends when the
/// router is dropped).
pub fn routes(tokens: Arc<TokenService>) -> Router {
    let (reports, mut queue) = mpsc::channel::<(String, SocketAddr)>(QUEUE);
    let revoker = tokens.clone();
    tokio::spawn(async move {
        while let Some((text, client)) = queue.recv().await {
            let source = format!("POST /credentials/revoke from {}", client.ip());
            match revoker.revoke_leaked(&text, &source).await {
                Ok(leaked) => tracing::info!(
                    found = leaked.found,
                    revoked = leaked.revoked.len(),
                    "leak report handled"
                ),
                Err(error) => tracing::warn!(%error, "leak report not fully handled"),
            }
        }
    });
    let per_minute = NonZeroU32::new(REQUESTS_PER_MINUTE).expect("a positive limit");
    let endpoint = Endpoint {
        tokens,
        limit: RateLimiter::direct(Quota::per_minute(per_minute)),
        reports,
    };
    Router::new()
        .route("/credentials/revoke", post(revoke))
        .with_state(Arc::new(endpoint))
}

async fn revoke(
    State(endpoint): State<Arc<Endpoint>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // Before the body is read: a refused request costs no more than this.
    if endpoint.limit.check().is_err() {
        return retry_later(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let body: Bytes = match to_bytes(request.into_body(), MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return refused(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
    };
    let Ok(report) = serde_json::from_slice::<Report>(&body) else {
        return refused(StatusCode::BAD_REQUEST, "invalid_body");
    };
    let text = report.credentials.join("\n");
    // Counting needs only the public format, so it tells nothing.
    let found = endpoint.tokens.format().find_tokens(&text).len();
    if report.credentials.len() > MAX_LEAKED_TOKENS || found > MAX_LEAKED_TOKENS {
        return refused(StatusCode::UNPROCESSABLE_ENTITY, "too_many_credentials");
    }
    if endpoint.reports.try_send((text, client)).is_err() {
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, "busy");
    }
    (StatusCode::ACCEPTED, Json(json!({ "message": ACCEPTED }))).into_response()
}

fn refused(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

fn retry_later(status: StatusCode, error: &str) -> Response {
    let mut response = refused(status, error);
    response
        .headers_mut()
        .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
    response
}
