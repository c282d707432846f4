//! The dashboard: create, list and revoke the tokens of the scope a path
//! names. The crate checks that the admin may manage that scope and that
//! the token is of it, and its errors are responses: a handler is a call
//! and a `?`. A path, query or body axum cannot read gets axum's own 4xx.

use std::sync::Arc;

use api_tokens::{
    Cursor, DomainId, IssueError, IssueRequest, ListError, OrganizationId, PageRequest,
    RevokeError, Revoked, Role, Scope, TokenId, TokenService, TokenSummary,
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
        .route("/tokens/{id}", delete(revoke));
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
