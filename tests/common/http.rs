//! Real HTTP for the `axum` feature's tests: a router served on a loopback
//! port, a real client, and the exact answers RFC 6750 prescribes.

use std::sync::Arc;

use api_tokens::http::TokenLayer;
use api_tokens::testing::ManualClock;
use api_tokens::{IssueRequest, TokenService, VerifiedToken};
use axum::Router;
use axum::routing::get;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::Value;

use super::{Fixture, fixture, org, org_admin};

/// `WWW-Authenticate` for a request with no token (RFC 6750 §3.1: no error code).
pub const NO_TOKEN: &str = "Bearer";
/// `WWW-Authenticate` for a malformed credential header.
pub const INVALID_REQUEST: &str = r#"Bearer error="invalid_request", error_description="the request must present exactly one well-formed token""#;
/// `WWW-Authenticate` for a token that does not verify, whatever the reason.
pub const INVALID_TOKEN: &str =
    r#"Bearer error="invalid_token", error_description="the token is not valid""#;
/// `WWW-Authenticate` for a valid token without the scope or role required.
pub const INSUFFICIENT_SCOPE: &str = r#"Bearer error="insufficient_scope", error_description="the token does not grant this access""#;

/// Serves `router` on a fresh port of 127.0.0.1 for as long as the test's
/// runtime lives, and returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// [`serve`], as a service should serve it: with each connection's peer
/// address (`ConnectInfo<SocketAddr>`), which the token layer checks
/// allowlists against.
pub async fn serve_with_connect_info(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    format!("http://{address}")
}

/// A client that talks to the server directly, whatever proxy the
/// environment names.
pub fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

/// What a response said, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// The single `WWW-Authenticate` value, if any.
    pub fn challenge(&self) -> Option<&str> {
        let mut values = self.headers.get_all(WWW_AUTHENTICATE).iter();
        let first = values.next()?;
        assert!(values.next().is_none(), "one challenge only");
        Some(first.to_str().unwrap())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    /// The body's `error` code.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
}

/// What the protected route answers: the verified token's id.
pub async fn whoami(token: VerifiedToken) -> String {
    token.id().to_string()
}

/// A router whose one route, `/whoami`, sits behind `layer` (or nothing).
pub fn whoami_router(layer: Option<TokenLayer>) -> Router {
    let router = Router::new().route("/whoami", get(whoami));
    match layer {
        Some(layer) => router.route_layer(layer),
        None => router,
    }
}

/// A served `/whoami` behind a layer over a fresh fixture's service.
pub struct Protected {
    pub url: String,
    pub client: Client,
    pub tokens: Arc<TokenService>,
    pub clock: ManualClock,
}

pub async fn start(layer: fn(Arc<TokenService>) -> TokenLayer) -> Protected {
    let Fixture { service, clock, .. } = fixture();
    let tokens = Arc::new(service);
    let url = serve(whoami_router(Some(layer(tokens.clone())))).await;
    Protected {
        url,
        client: client(),
        tokens,
        clock,
    }
}

pub async fn start_bearer() -> Protected {
    start(TokenLayer::new).await
}

impl Protected {
    /// A new organization token for `acme`, optionally with an expiry.
    pub async fn issue(&self, request: IssueRequest) -> String {
        let issued = self.tokens.issue(&org_admin("acme"), request).await;
        issued.unwrap().token.expose_secret().to_owned()
    }

    pub fn whoami(&self) -> RequestBuilder {
        self.client.get(format!("{}/whoami", self.url))
    }

    /// `GET /whoami` with these `Authorization` values (none, one or more).
    pub async fn with_authorization(&self, values: &[&[u8]]) -> Answer {
        let mut request = self.whoami();
        for value in values {
            request = request.header(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        }
        Answer::of(request.send().await.unwrap()).await
    }

    pub async fn with_bearer(&self, token: &str) -> Answer {
        self.with_authorization(&[format!("Bearer {token}").as_bytes()])
            .await
    }
}

pub fn acme_token() -> IssueRequest {
    IssueRequest::new(org("acme"), "ci")
}
