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
//! | more than [`MAX_LEAKED_TOKENS`] credentials, or tokens in them | `422 too_many_tokens` |
//! | more than [`REQUESTS_PER_MINUTE`] reports a minute from one client (an IPv4 address, an IPv6 /64) | `429` with `Retry-After` |
//! | [`MAX_CLIENTS`] clients tracked, all of them over their limit | `429` with `Retry-After` |
//! | [`QUEUE`] reports already waiting for the background task | `503` with `Retry-After` |
//!
//! The limit is per client, so that one client's flood does not stop
//! anyone else from reporting a leak; the queue bounds the work a flood
//! from many addresses can cause (it can still delay honest reports,
//! which retry on `503`). A report whose revoking meets a store outage is
//! retried a few times before it is given up and logged.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use api_tokens::{MAX_LEAKED_TOKENS, RevokeLeakedError, TokenService};
use axum::body::{Bytes, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

/// The largest body read. A report of 1,000 tokens, quoted in JSON, is
/// about 70 KB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Reports a minute the endpoint accepts from one client.
pub const REQUESTS_PER_MINUTE: u32 = 10;

/// Clients whose limits are tracked at once. When full, those back at a
/// full quota are forgotten; if none is, new clients are refused.
pub const MAX_CLIENTS: usize = 10_000;

/// How often a report whose revoking met a store outage is tried, in all.
const ATTEMPTS: u32 = 3;

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
    limits: DefaultKeyedRateLimiter<IpAddr>,
    reports: mpsc::Sender<(String, SocketAddr)>,
}

/// The route, and the task that revokes what it accepts (it ends when the
/// router is dropped): call it inside a Tokio runtime.
pub fn routes(tokens: Arc<TokenService>) -> Router {
    let (reports, mut queue) = mpsc::channel::<(String, SocketAddr)>(QUEUE);
    let revoker = tokens.clone();
    tokio::spawn(async move {
        while let Some((text, client)) = queue.recv().await {
            let source = format!("POST /credentials/revoke from {}", client.ip());
            revoke_reported(&revoker, &text, &source).await;
        }
    });
    let per_minute = NonZeroU32::new(REQUESTS_PER_MINUTE).expect("a positive limit");
    let endpoint = Endpoint {
        tokens,
        limits: RateLimiter::keyed(Quota::per_minute(per_minute)),
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
    if !endpoint.admits(client.ip()) {
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
        return refused(StatusCode::UNPROCESSABLE_ENTITY, "too_many_tokens");
    }
    if endpoint.reports.try_send((text, client)).is_err() {
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, "busy");
    }
    (StatusCode::ACCEPTED, Json(json!({ "message": ACCEPTED }))).into_response()
}

impl Endpoint {
    /// Whether `client` is within its limit (and counts this report).
    fn admits(&self, client: IpAddr) -> bool {
        let client = network_of(client);
        if self.limits.len() >= MAX_CLIENTS {
            self.limits.retain_recent();
            if self.limits.len() >= MAX_CLIENTS {
                return false;
            }
        }
        self.limits.check_key(&client).is_ok()
    }
}

/// The client as limits count it: an IPv4 address, or an IPv6 /64 (one
/// host usually holds a whole /64, so counting its addresses one by one
/// would limit nothing).
fn network_of(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Revokes what `text` leaked, trying again after a store outage (a retry
/// skips what the failed try revoked already), and logs the outcome.
async fn revoke_reported(tokens: &TokenService, text: &str, source: &str) {
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        match tokens.revoke_leaked(text, source).await {
            Ok(leaked) => {
                tracing::info!(
                    found = leaked.found,
                    revoked = leaked.revoked.len(),
                    "leak report handled"
                );
                return;
            }
            Err(RevokeLeakedError::Store(error)) if attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "leak report: store failed, trying again");
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
            Err(error) => {
                tracing::error!(%error, "leak report given up: submit it again");
                return;
            }
        }
    }
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
