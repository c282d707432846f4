//! A token-protected HTTP service: the dashboard's API Tokens pages, for a
//! browser ([`pages`]) and as JSON endpoints, and a resource per domain that
//! takes those tokens.
//!
//! Run it with `cargo run --example axum_service --features axum`; it listens
//! on 127.0.0.1:3000 (or the port in `PORT`). Open
//! <http://127.0.0.1:3000/sign-in> and sign in as alice (an Organization
//! Admin of `acme`) or bob (a Domain Admin of `acme/shop`). Or, as alice
//! from the command line:
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
//! A narrowed token: it may only send notifications, only from this
//! machine, at most twice a minute (the third answers `429`; from any other
//! address, or for `GET …/resource`, `403`):
//!
//! ```text
//! curl -si -X POST localhost:3000/organizations/acme/domains/shop/tokens \
//!      -H 'X-Demo-User: alice' -H 'Content-Type: application/json' \
//!      -d '{"label": "notifier", "permissions": ["notifications:send"],
//!           "allowed_networks": ["127.0.0.1"], "rate_limit": {"requests": 2, "period_secs": 60}}'
//! curl -si -X POST localhost:3000/organizations/acme/domains/shop/notifications \
//!      -H 'Authorization: Bearer <the token from above>'
//! ```
//!
//! | endpoint | who |
//! |---|---|
//! | `GET /organizations/{org}/settings/api-tokens`, `GET /organizations/{org}/domains/{domain}/settings/security/api-tokens` (the pages: see [`pages`]) | admin, signed in at `/sign-in` |
//! | `POST /organizations/{org}/tokens` (create: `201`, the token shown once) | admin |
//! | `GET /organizations/{org}/tokens?limit=&after=` (list, never a secret) | admin |
//! | `DELETE /organizations/{org}/tokens/{id}` (revoke) | admin |
//! | `PATCH /organizations/{org}/tokens/{id}` (label, earlier expiry) | admin |
//! | `POST /organizations/{org}/tokens/{id}/disable`, `…/enable` | admin |
//! | the same under `/organizations/{org}/domains/{domain}/tokens` | admin |
//! | `GET /organizations/{org}/domains/{domain}/resource` | a token for the domain or its organization |
//! | `POST /organizations/{org}/domains/{domain}/notifications` | a token with `notifications:send` (an editor's, or one narrowed to it) |
//! | `POST /credentials/revoke` (leaked tokens die; always `202`, see [`leaks`]) | anyone |
//! | `GET /healthz` (the replica's lag; `503` while over its bound) | anyone |
//! | `GET /metrics` (Prometheus's text format; with `--features axum,metrics`) | anyone |
//!
//! `API_TOKENS_STORE` picks the store: `memory` (the default),
//! `sqlite:<path>` (feature `sqlite`) or a `postgres://` URL (feature
//! `postgres`). PostgreSQL is verified from an in-memory `ReplicatedStore`,
//! which sees a revocation anywhere within one second (or
//! `API_TOKENS_MAX_STALENESS_MS`), unless `API_TOKENS_REPLICA=off`. A durable
//! store needs its hashing key in `API_TOKENS_HASH_KEY` (64 hex digits), or
//! its tokens stop verifying at a restart:
//!
//! ```sh
//! API_TOKENS_STORE=sqlite:tokens.db API_TOKENS_HASH_KEY=$(openssl rand -hex 32) \
//!     cargo run --example axum_service --features axum,sqlite
//! ```
//!
//! DEMO ONLY: admins sign in with the `X-Demo-User` header, which anyone can
//! send, or pick who they are on the sign-in page ([`demo_auth`]). A real
//! service uses its own sessions.

mod admin;
pub mod demo_auth;
pub mod leaks;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod pages;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_tokens::http::{RateLimits, TokenLayer, TokenRejection};
use api_tokens::{
    DomainId, HashKey, KeyId, Keyring, Maintenance, MemoryStore, OrganizationId,
    PermissionRegistry, Role, Scope, TokenFormat, TokenService, TokenStore, VerifiedToken,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Debug level shows why a token was refused (never the token itself).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .init();
    // Before the store and service: they report to the recorder installed
    // when they are built.
    #[cfg(feature = "metrics")]
    let metrics = metrics::install()?;
    let (store, replica) = store_from_env().await?;
    let keys = Keyring::new(KeyId::new(1), hash_key()?);
    let tokens = TokenService::new(TokenFormat::new("acme")?, keys, store);
    let tokens = Arc::new(tokens.with_permissions(permissions()));
    // A replica answers once it holds every credential.
    tokens.ready().await?;
    // Without the worker no last-used time is ever written. Its hourly purge
    // deletes tokens that ended more than 30 days ago, so lists stay short.
    const HOUR: Duration = Duration::from_secs(60 * 60);
    let maintenance = tokens.spawn_maintenance(Maintenance::new().purge(HOUR, 30 * 24 * HOUR));

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");
    println!("the API Tokens pages: open http://{address}/sign-in");
    println!("{}", demo_auth::BANNER);
    // Connect info gives the layer each client's address, which tokens
    // with an allowlist are checked against (behind a proxy, also name it
    // with `TokenLayer::trusted_proxies`).
    let router = app(tokens.clone()).merge(health(replica));
    #[cfg(feature = "metrics")]
    let router = router.merge(metrics::routes(metrics, tokens.clone()));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop_signal())
    .await?;
    // The last uses and audit events, written before the process ends.
    maintenance.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM: what container runtimes and systemd stop a service with.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = terminate.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The replica verification reads from, if the store is one.
#[cfg(feature = "postgres")]
type Replica = Option<Arc<api_tokens::ReplicatedStore>>;
#[cfg(not(feature = "postgres"))]
type Replica = Option<std::convert::Infallible>;

/// The store `API_TOKENS_STORE` names (see above).
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
            options = options.with_max_staleness(Duration::from_millis(ms));
        }
        let replica = Arc::new(api_tokens::ReplicatedStore::postgres(shared, options));
        return Ok((replica.clone(), Some(replica)));
    }
    let expected = "memory, sqlite:<path> (feature sqlite) or postgres://… (feature postgres)";
    Err(format!("API_TOKENS_STORE={setting:?}: expected {expected}").into())
}

/// `GET /healthz`: 503 while the replica is over its bound (verification
/// fails closed then too), so that a load balancer sends traffic elsewhere.
fn health(replica: Replica) -> Router {
    let check = async move || {
        let (status, lag): (_, Option<Duration>) = match &replica {
            #[cfg(feature = "postgres")]
            Some(replica) => match replica.lag() {
                Some(lag) if lag <= replica.max_staleness() => (StatusCode::OK, Some(lag)),
                lag => (StatusCode::SERVICE_UNAVAILABLE, lag),
            },
            _ => (StatusCode::OK, None),
        };
        let lag_ms = lag.map(|lag| lag.as_secs_f64() * 1e3);
        (status, Json(json!({ "replica_lag_ms": lag_ms })))
    };
    Router::new().route("/healthz", get(check))
}

/// `API_TOKENS_HASH_KEY`, else a fresh key. A real service loads it from its
/// secret manager.
fn hash_key() -> Result<HashKey, Box<dyn Error>> {
    let Ok(hex) = std::env::var("API_TOKENS_HASH_KEY") else {
        return Ok(HashKey::generate()?);
    };
    // `from_hex` wipes the text; its error names no character of the key.
    HashKey::from_hex(hex).map_err(|error| format!("API_TOKENS_HASH_KEY: {error}").into())
}

/// The platform's permissions, and the lowest role granting each: what a
/// token may be narrowed to.
pub fn permissions() -> PermissionRegistry {
    PermissionRegistry::new()
        .define("segments:read", Role::Viewer)
        .and_then(|registry| registry.define("notifications:send", Role::Editor))
        .expect("valid permission names")
}

/// The whole service but `/healthz`. Call it inside a Tokio runtime: it
/// starts the task that handles leak reports.
pub fn app(tokens: Arc<TokenService>) -> Router {
    let domain = "/organizations/{org}/domains/{domain}";
    // `route_layer`: only matched routes need a token, so a wrong path is
    // still a 404 rather than a 401.
    let protected = Router::new()
        .route(&format!("{domain}/resource"), get(resource))
        .route(&format!("{domain}/notifications"), post(notify))
        .with_state(tokens.clone())
        // Each token's own rate limit, counted in this process (N instances
        // allow N times the limit: plug in a shared `RateLimiter` for one
        // fleet-wide count).
        .route_layer(TokenLayer::new(tokens.clone()).rate_limits(RateLimits::local()));
    admin::routes(tokens.clone())
        .merge(pages::routes(tokens.clone()))
        .merge(leaks::routes(tokens))
        .merge(protected)
}

/// Any token whose scope covers the domain: the domain's own, or its
/// organization's.
async fn resource(
    token: VerifiedToken,
    Path((org, domain)): Path<(OrganizationId, DomainId)>,
) -> Result<Json<Value>, TokenRejection> {
    let scope = Scope::domain(org, domain);
    // The layer proved the token valid; this proves it valid here.
    token.require(&scope, Role::Viewer)?;
    Ok(Json(json!({
        "scope": scope,
        "token_id": token.id(),
        "token_scope": token.scope(),
        "token_role": token.role(),
    })))
}

/// Needs the `notifications:send` permission: an Editor's token, or one
/// narrowed to that permission (which may do nothing else).
async fn notify(
    State(tokens): State<Arc<TokenService>>,
    token: VerifiedToken,
    Path((org, domain)): Path<(OrganizationId, DomainId)>,
) -> Result<Json<Value>, TokenRejection> {
    let send = tokens.permissions().permission("notifications:send");
    let send = send.expect("defined in `permissions`");
    token.require(&Scope::domain(org, domain), &send)?;
    Ok(Json(json!({ "sent": true, "token_id": token.id() })))
}
