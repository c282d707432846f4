//! A token-protected HTTP service: the dashboard's API Tokens page as
//! endpoints, and a resource per domain that takes those tokens.
//!
//! Run it with `cargo run --example axum_service --features axum`; it listens
//! on 127.0.0.1:3000 (or the port in `PORT`). Then, as alice (an
//! Organization Admin of `acme`):
//!
//! ```text
//! curl -si -X POST localhost:3000/organizations/acme/tokens \
//!      -H 'X-Demo-User: alice' -H 'Content-Type: application/json' \
//!      -d '{"label": "CI deploys", "role": "editor"}'
//! curl -si localhost:3000/organizations/acme/domains/shop/resource \
//!      -H 'Authorization: Bearer <the token from above>'
//! curl -si localhost:3000/organizations/acme/tokens -H 'X-Demo-User: alice'
//! curl -si -X DELETE localhost:3000/organizations/acme/tokens/<id> -H 'X-Demo-User: alice'
//! ```
//!
//! | endpoint | who |
//! |---|---|
//! | `POST /organizations/{org}/tokens` (create: `201`, the token shown once) | admin |
//! | `GET /organizations/{org}/tokens?limit=&after=` (list, never a secret) | admin |
//! | `DELETE /organizations/{org}/tokens/{id}` (revoke) | admin |
//! | the same three under `/organizations/{org}/domains/{domain}/tokens` | admin |
//! | `GET /organizations/{org}/domains/{domain}/resource` | a token for the domain or its organization |
//!
//! Tokens live in the in-memory store unless `API_TOKENS_STORE` names
//! another: `sqlite:<path>` (feature `sqlite`) or a `postgres://` URL
//! (feature `postgres`), e.g.
//!
//! ```sh
//! API_TOKENS_STORE=sqlite:tokens.db API_TOKENS_HASH_KEY=$(openssl rand -hex 32) \
//!     cargo run --example axum_service --features axum,sqlite
//! ```
//!
//! On PostgreSQL the service verifies from a [`ReplicatedStore`]: every
//! credential copied into memory and kept current through the database's
//! change feed, so no verification waits on the database, and a revocation
//! on any instance takes effect on this one within one second (or
//! `API_TOKENS_MAX_STALENESS_MS`). `API_TOKENS_REPLICA=off` verifies
//! against the database instead. `GET /healthz` reports the replica's lag,
//! and answers 503 while it is over the bound (verification fails closed
//! then too).
//!
//! With a durable store, give the hashing key in `API_TOKENS_HASH_KEY` (64
//! hex digits) so tokens verify after a restart; without it a fresh key is
//! made and earlier tokens stop verifying.
//!
//! DEMO ONLY: the dashboard endpoints know their admin from the
//! `X-Demo-User` header and a static user table ([`DEMO_USERS`]). Anyone can
//! send that header. A real service resolves the [`Actor`] from its own
//! session auth (cookie, SSO, …) in place of [`DemoAdmin`].

use std::error::Error;
use std::sync::Arc;

use api_tokens::http::{TokenLayer, TokenRejection};
use api_tokens::store::{Cursor, TokenStore};
use api_tokens::{
    Actor, ActorId, DamagedToken, DomainId, HashKey, IssueError, IssueRequest, KeyId, Keyring,
    ListError, MAX_PAGE_SIZE, MemoryStore, OrganizationId, PageRequest, RevokeError, Revoked, Role,
    Scope, StoreError, TokenFormat, TokenId, TokenService, TokenSummary, VerifiedToken,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long an ended (revoked or expired) token stays listed before the
/// hourly purge deletes it: 30 days.
const PURGE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 60 * 60);

/// DEMO ONLY: the header that names the acting admin. Replace it with your
/// service's own session auth.
pub const DEMO_USER_HEADER: &str = "x-demo-user";

/// DEMO ONLY: who may send [`DEMO_USER_HEADER`], and where each is Admin:
/// (user, organization, domain or `None` for the whole organization).
pub const DEMO_USERS: &[(&str, &str, Option<&str>)] = &[
    ("alice", "acme", None),       // Organization Admin of acme
    ("bob", "acme", Some("shop")), // Domain Admin of acme/shop
    ("carol", "globex", None),     // Organization Admin of globex
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Debug level shows why a token was refused (never the token itself).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .init();

    let (store, replica) = store_from_env().await?;
    let tokens = Arc::new(TokenService::new(
        TokenFormat::new("acme")?,
        Keyring::new(KeyId::new(1), hash_key()?),
        store,
    ));
    // A replica answers once it holds every credential.
    tokens.ready().await?;
    // The service's chores. Verification only notes uses; this writes
    // them, so the list's `last_used_at` stays within a minute and a few
    // seconds of the truth. Audit events that waited on the store's
    // confirmation go out. Once an hour, tokens that ended more than 30
    // days ago are deleted, so the table stops growing.
    let chores = tokens.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        let mut last_purge = None::<tokio::time::Instant>;
        loop {
            every.tick().await;
            if let Err(error) = chores.flush_last_used().await {
                tracing::warn!(
                    error = &error as &dyn Error,
                    "last-used times not written yet"
                );
            }
            chores.flush_audit().await;
            if last_purge.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(3600)) {
                last_purge = Some(tokio::time::Instant::now());
                match chores.purge(PURGE_AFTER).await {
                    Ok(purged) => tracing::info!(purged, "ended tokens purged"),
                    Err(error) => {
                        tracing::warn!(
                            error = &error as &dyn Error,
                            "purge stopped; retried in an hour"
                        )
                    }
                }
            }
        }
    });
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!(
        "demo admins ({DEMO_USER_HEADER} header): alice (org acme), bob (domain acme/shop), carol (org globex)"
    );
    axum::serve(listener, app(tokens).merge(health(replica))).await?;
    Ok(())
}

/// The replica verification reads from, if the store is one.
#[cfg(feature = "postgres")]
type Replica = Option<Arc<api_tokens::ReplicatedStore>>;
#[cfg(not(feature = "postgres"))]
type Replica = Option<std::convert::Infallible>;

/// The store `API_TOKENS_STORE` names: `memory` (the default),
/// `sqlite:<path>` or a `postgres://` URL (replicated unless
/// `API_TOKENS_REPLICA=off`).
async fn store_from_env() -> Result<(Arc<dyn TokenStore>, Replica), Box<dyn Error>> {
    let setting = std::env::var("API_TOKENS_STORE").unwrap_or_else(|_| "memory".into());
    if setting == "memory" {
        return Ok((Arc::new(MemoryStore::new()), None));
    }
    #[cfg(feature = "sqlite")]
    if let Some(path) = setting.strip_prefix("sqlite:") {
        return Ok((Arc::new(api_tokens::SqliteStore::open(path).await?), None));
    }
    #[cfg(feature = "postgres")]
    if setting.starts_with("postgres://") || setting.starts_with("postgresql://") {
        let shared = api_tokens::PostgresStore::connect(&setting).await?;
        if std::env::var("API_TOKENS_REPLICA").is_ok_and(|replica| replica == "off") {
            return Ok((Arc::new(shared), None));
        }
        let mut options = api_tokens::ReplicaOptions::default();
        if let Ok(ms) = std::env::var("API_TOKENS_MAX_STALENESS_MS") {
            let ms = ms
                .parse()
                .map_err(|_| "API_TOKENS_MAX_STALENESS_MS: milliseconds")?;
            options = options.with_max_staleness(std::time::Duration::from_millis(ms));
        }
        let replica = Arc::new(api_tokens::ReplicatedStore::postgres(shared, options));
        return Ok((replica.clone(), Some(replica)));
    }
    Err(format!(
        "API_TOKENS_STORE={setting:?}: use memory, sqlite:<path> (feature sqlite) or a \
         postgres:// URL (feature postgres)"
    )
    .into())
}

/// `GET /healthz`: 200 while verification can answer, with the replica's
/// lag if there is one; 503 while the replica is over its bound.
fn health(replica: Replica) -> Router {
    Router::new().route(
        "/healthz",
        get(async move || {
            #[cfg(feature = "postgres")]
            if let Some(replica) = &replica {
                let lag = replica.lag();
                let status = match lag {
                    Some(lag) if lag <= replica.max_staleness() => StatusCode::OK,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                let lag_ms = lag.map(|lag| lag.as_secs_f64() * 1e3);
                return (
                    status,
                    Json(serde_json::json!({ "replica_lag_ms": lag_ms })),
                );
            }
            let _ = &replica;
            (
                StatusCode::OK,
                Json(serde_json::json!({ "replica_lag_ms": null })),
            )
        }),
    )
}

/// The hashing key: `API_TOKENS_HASH_KEY` (64 hex digits) if set, else a
/// fresh one. A real service loads it from its secret manager.
fn hash_key() -> Result<HashKey, Box<dyn Error>> {
    let Ok(hex) = std::env::var("API_TOKENS_HASH_KEY") else {
        return Ok(HashKey::generate()?);
    };
    // `from_hex` wipes the text; its error names no character of the key.
    HashKey::from_hex(hex).map_err(|error| format!("API_TOKENS_HASH_KEY: {error}").into())
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    tokens: Arc<TokenService>,
}

/// The whole service.
pub fn app(tokens: Arc<TokenService>) -> Router {
    // `route_layer`: only matched routes need a token, so a wrong path is
    // still a 404 rather than a 401.
    let protected = Router::new()
        .route(
            "/organizations/{org}/domains/{domain}/resource",
            get(domain_resource),
        )
        .route_layer(TokenLayer::new(tokens.clone()));
    let dashboard = Router::new()
        .route("/organizations/{org}/tokens", post(create).get(list))
        .route("/organizations/{org}/tokens/{id}", delete(revoke))
        .route(
            "/organizations/{org}/domains/{domain}/tokens",
            post(create).get(list),
        )
        .route(
            "/organizations/{org}/domains/{domain}/tokens/{id}",
            delete(revoke),
        )
        .with_state(AppState { tokens });
    dashboard.merge(protected)
}

// ---------------------------------------------------------------------------
// The protected resource

/// What the resource answers: which domain, and what the token granted.
#[derive(Serialize)]
struct ResourceView {
    scope: Scope,
    token_id: TokenId,
    token_scope: Scope,
    token_role: Role,
}

/// `GET /organizations/{org}/domains/{domain}/resource`: any token whose
/// scope covers the domain (the domain's own, or its organization's).
async fn domain_resource(
    token: VerifiedToken,
    PathScope { scope, .. }: PathScope,
) -> Result<Json<ResourceView>, TokenRejection> {
    // The layer proved the token valid; this proves it is valid here.
    token.require(&scope, Role::Viewer)?;
    Ok(Json(ResourceView {
        token_id: token.id(),
        token_scope: token.scope().clone(),
        token_role: token.role(),
        scope,
    }))
}

// ---------------------------------------------------------------------------
// The dashboard: create, list, revoke

/// The body of a create request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    label: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// The one response that carries a token's text.
#[derive(Serialize)]
struct Created<'a> {
    token: &'a str,
    summary: TokenSummary,
}

/// `POST …/tokens`: create a token at the path's scope, returned this once.
async fn create(
    State(state): State<AppState>,
    DemoAdmin(actor): DemoAdmin,
    PathScope { scope, .. }: PathScope,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|rejection| ApiError {
        status: rejection.status(),
        code: "invalid_body",
        description: rejection.body_text(),
    })?;
    let mut request = IssueRequest::new(scope, body.label);
    request.role = body.role;
    if let Some(at) = body.expires_at {
        request = request.expires_at(at);
    }
    let issued = state.tokens.issue(&actor, request).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(Created {
            token: issued.token.expose_secret(),
            summary: issued.summary,
        }),
    )
        .into_response();
    // Shown once means kept by no cache either (RFC 6749 §5.1 asks the same
    // of token responses).
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `?limit=&after=` on a list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// One page of a list; `next` is the `after` for the page that follows.
#[derive(Serialize)]
struct ListView {
    tokens: Vec<TokenSummary>,
    /// Rows the store could not read back, with what is wrong.
    damaged: Vec<DamagedToken>,
    next: Option<String>,
}

/// `GET …/tokens`: the path's scope's tokens, newest first, without secrets.
async fn list(
    State(state): State<AppState>,
    DemoAdmin(actor): DemoAdmin,
    PathScope { scope, .. }: PathScope,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListView>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_query",
        description: rejection.body_text(),
    })?;
    let limit = query
        .limit
        .unwrap_or(PageRequest::<Cursor>::default().limit);
    let after = match query.after.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<Cursor>().map_err(|_| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_query",
            description: "`after` is not a cursor this service returned".into(),
        })?),
    };
    let page = state
        .tokens
        .list(&actor, &scope, PageRequest { limit, after })
        .await?;
    Ok(Json(ListView {
        tokens: page.tokens,
        damaged: page.damaged,
        // The cursor's own text: opaque, URL-safe, read back by `parse`.
        next: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// What a revoke did.
#[derive(Serialize)]
struct RevokeView {
    status: &'static str,
    revoked: api_tokens::Revocation,
}

/// `DELETE …/tokens/{id}`: revoke a token of the path's scope. Revoking it
/// again is harmless and says `already_revoked`.
async fn revoke(
    State(state): State<AppState>,
    DemoAdmin(actor): DemoAdmin,
    PathScope { scope, id }: PathScope,
) -> Result<Json<RevokeView>, ApiError> {
    let Some(id) = id else {
        return Err(ApiError::not_found("no such token"));
    };
    // The path names the scope: a token of another scope is not found
    // here, answered like an unknown id.
    let (status, revoked) = match state.tokens.revoke(&actor, &scope, id).await? {
        Revoked::Now(revocation) => ("revoked", revocation),
        Revoked::Already(revocation) => ("already_revoked", revocation),
    };
    Ok(Json(RevokeView { status, revoked }))
}

// ---------------------------------------------------------------------------
// Extractors

/// The scope a path names (`/organizations/{org}` or
/// `/organizations/{org}/domains/{domain}`), and the token id in it, if any.
/// A path whose ids are not valid ids names nothing: 404.
struct PathScope {
    scope: Scope,
    id: Option<TokenId>,
}

#[derive(Deserialize)]
struct PathParams {
    org: OrganizationId,
    #[serde(default)]
    domain: Option<DomainId>,
    #[serde(default)]
    id: Option<TokenId>,
}

impl<S: Send + Sync> FromRequestParts<S> for PathScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params) = Path::<PathParams>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("no such organization, domain or token"))?;
        let scope = match params.domain {
            None => Scope::organization(params.org),
            Some(domain) => Scope::domain(params.org, domain),
        };
        Ok(PathScope {
            scope,
            id: params.id,
        })
    }
}

/// DEMO ONLY: the admin named by the `X-Demo-User` header, from
/// [`DEMO_USERS`]. Replace this extractor with one that resolves the
/// [`Actor`] and its grants from your own sessions.
pub struct DemoAdmin(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for DemoAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let name = parts
            .headers
            .get(DEMO_USER_HEADER)
            .and_then(|value| value.to_str().ok());
        let user = DEMO_USERS.iter().find(|(user, ..)| Some(*user) == name);
        let Some(&(user, org, domain)) = user else {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthenticated",
                description: format!("send {DEMO_USER_HEADER}: alice, bob or carol (demo sign-in)"),
            });
        };
        Ok(DemoAdmin(demo_actor(user, org, domain).map_err(|_| {
            ApiError::internal("the demo user table holds an invalid id")
        })?))
    }
}

fn demo_actor(user: &str, org: &str, domain: Option<&str>) -> Result<Actor, api_tokens::IdError> {
    let org = OrganizationId::new(org)?;
    let scope = match domain {
        None => Scope::organization(org),
        Some(domain) => Scope::domain(org, DomainId::new(domain)?),
    };
    Ok(Actor::new(ActorId::new(user)?).with_grant(scope, Role::Admin))
}

// ---------------------------------------------------------------------------
// Errors: every failure is a status and a JSON body shaped like the token
// layer's, `{"error": code, "error_description": text}`.

/// A failed request.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ApiError {
    fn not_found(description: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            description: description.into(),
        }
    }

    fn internal(description: &str) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            description: description.into(),
        }
    }

    fn forbidden(error: &dyn Error) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            description: error.to_string(),
        }
    }

    fn unprocessable(code: &'static str, error: &dyn Error) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            description: error.to_string(),
        }
    }

    /// A store failure: 503, logged with its cause, which the client does
    /// not need.
    fn store(error: &StoreError) -> Self {
        tracing::warn!(error = error as &dyn Error, "token store failed");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: "the token store is unavailable; retry later".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            error_description: &self.description,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // A 401 must say how to authenticate (RFC 9110 §11.6.1): here,
            // with the demo header.
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("DemoUser realm=\"api-tokens example\""),
            );
        }
        response
    }
}

impl From<IssueError> for ApiError {
    fn from(error: IssueError) -> Self {
        match &error {
            IssueError::NotAllowed { .. } | IssueError::RoleTooHigh { .. } => {
                ApiError::forbidden(&error)
            }
            IssueError::InvalidLabel(_) => ApiError::unprocessable("invalid_label", &error),
            IssueError::ExpiryNotInFuture | IssueError::ExpiryOutOfRange => {
                ApiError::unprocessable("invalid_expiry", &error)
            }
            IssueError::Store(store) => ApiError::store(store),
            _ => ApiError::internal("the token could not be created"),
        }
    }
}

impl From<ListError> for ApiError {
    fn from(error: ListError) -> Self {
        match &error {
            ListError::NotAllowed { .. } => ApiError::forbidden(&error),
            ListError::InvalidPageSize { .. } => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_query",
                description: format!("`limit` must be 1 to {MAX_PAGE_SIZE}"),
            },
            ListError::Store(store) => ApiError::store(store),
            _ => ApiError::internal("the tokens could not be listed"),
        }
    }
}

impl From<RevokeError> for ApiError {
    fn from(error: RevokeError) -> Self {
        match &error {
            RevokeError::NotFound { .. } => ApiError::not_found(&error.to_string()),
            RevokeError::Store(store) => ApiError::store(store),
            _ => ApiError::internal("the token could not be revoked"),
        }
    }
}
