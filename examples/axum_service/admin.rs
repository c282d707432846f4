//! The dashboard: create, list, revoke, disable, enable and edit the
//! tokens of the scope a path names. The crate checks that the admin may manage that scope and that
//! the token is of it, and its errors are responses: a handler is a call
//! and a `?`. A path, query or body axum cannot read gets axum's own 4xx.

use std::sync::Arc;

use api_tokens::{
    Cursor, DomainId, IssueError, IssueRequest, ListError, OrganizationId, PageRequest, RateLimit,
    RevokeError, Revoked, Role, Scope, TokenEdit, TokenId, TokenService, TokenSummary, UpdateError,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::demo_auth::DemoAdmin;

/// The same endpoints for an organization's tokens and for a domain's.
pub fn routes(tokens: Arc<TokenService>) -> Router {
    let endpoints = Router::new()
        .route("/tokens", post(create).get(list))
        .route("/tokens/{id}", delete(revoke).patch(edit))
        .route("/tokens/{id}/disable", post(disable))
        .route("/tokens/{id}/enable", post(enable));
    Router::new()
        .nest("/organizations/{org}", endpoints.clone())
        .nest("/organizations/{org}/domains/{domain}", endpoints)
        .with_state(tokens)
}

/// `/organizations/{org}` or `/organizations/{org}/domains/{domain}`.
#[derive(Deserialize)]
struct ScopePath {
    org: OrganizationId,
    domain: Option<DomainId>,
}

impl ScopePath {
    fn scope(self) -> Scope {
        match self.domain {
            None => Scope::organization(self.org),
            Some(domain) => Scope::domain(self.org, domain),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    label: String,
    role: Option<Role>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    /// Narrows the token: e.g. `["notifications:send"]`.
    permissions: Option<Vec<String>>,
    /// Narrows the token: e.g. `["203.0.113.0/24"]`.
    allowed_networks: Option<Vec<String>>,
    /// E.g. `{"requests": 100, "period_secs": 60}`.
    rate_limit: Option<RateLimit>,
}

/// The one answer with a token's text: borrowed, so that no copy of it
/// outlives the request but the response's bytes.
#[derive(Serialize)]
struct Created<'a> {
    token: &'a str,
    summary: TokenSummary,
}

async fn create(
    State(tokens): State<Arc<TokenService>>,
    DemoAdmin(admin): DemoAdmin,
    Path(path): Path<ScopePath>,
    Json(body): Json<CreateToken>,
) -> Result<Response, IssueError> {
    let mut request = IssueRequest::new(path.scope(), body.label);
    request.role = body.role;
    request.permissions = body.permissions;
    request.allowed_networks = body.allowed_networks;
    request.rate_limit = body.rate_limit;
    if let Some(at) = body.expires_at {
        request = request.expires_at(at);
    }
    let issued = tokens.issue(&admin, request).await?;
    let created = Created {
        token: issued.token.expose_secret(),
        summary: issued.summary,
    };
    // Shown once means kept by no cache either (RFC 6749 §5.1 asks the same
    // of token responses).
    let no_store = [(CACHE_CONTROL, "no-store")];
    Ok((StatusCode::CREATED, no_store, Json(created)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<Cursor>,
}

/// Newest first; `next` is the `after` of the following page, and
/// `damaged` the rows the store could not read back.
async fn list(
    State(tokens): State<Arc<TokenService>>,
    DemoAdmin(admin): DemoAdmin,
    Path(path): Path<ScopePath>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ListError> {
    let limit = query.limit.unwrap_or(<PageRequest>::default().limit);
    let after = query.after;
    let request = PageRequest { limit, after };
    let page = tokens.list(&admin, &path.scope(), request).await?;
    let body = json!({ "tokens": page.tokens, "damaged": page.damaged, "next": page.next });
    Ok(Json(body))
}

#[derive(Deserialize)]
struct TokenPath {
    id: TokenId,
}

/// Revoking again is harmless and says `already_revoked`.
async fn revoke(
    State(tokens): State<Arc<TokenService>>,
    DemoAdmin(admin): DemoAdmin,
    Path(path): Path<ScopePath>,
    Path(TokenPath { id }): Path<TokenPath>,
) -> Result<Json<Value>, RevokeError> {
    let (status, revoked) = match tokens.revoke(&admin, &path.scope(), id).await? {
        Revoked::Now(revocation) => ("revoked", revocation),
        Revoked::Already(revocation) => ("already_revoked", revocation),
    };
    Ok(Json(json!({ "status": status, "revoked": revoked })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditToken {
    label: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// A new label, an earlier expiry, or both.
async fn edit(
    State(tokens): State<Arc<TokenService>>,
    DemoAdmin(admin): DemoAdmin,
    Path(path): Path<ScopePath>,
    Path(TokenPath { id }): Path<TokenPath>,
    Json(body): Json<EditToken>,
) -> Result<Json<TokenSummary>, UpdateError> {
    let edit = TokenEdit {
        label: body.label,
        expiry: body.expires_at.map(api_tokens::Expiry::At),
    };
    Ok(Json(tokens.edit(&admin, &path.scope(), id, edit).await?))
}

/// Pauses a token; `enable` resumes it. Both are harmless to repeat.
async fn disable(
    State(tokens): State<Arc<TokenService>>,
    DemoAdmin(admin): DemoAdmin,
    Path(path): Path<ScopePath>,
    Path(TokenPath { id }): Path<TokenPath>,
) -> Result<Json<TokenSummary>, UpdateError> {
    Ok(Json(tokens.disable(&admin, &path.scope(), id).await?))
}

async fn enable(
    State(tokens): State<Arc<TokenService>>,
    DemoAdmin(admin): DemoAdmin,
    Path(path): Path<ScopePath>,
    Path(TokenPath { id }): Path<TokenPath>,
) -> Result<Json<TokenSummary>, UpdateError> {
    Ok(Json(tokens.enable(&admin, &path.scope(), id).await?))
}
