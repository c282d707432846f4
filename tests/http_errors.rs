//! Management errors as HTTP answers, over real HTTP: a router whose
//! handlers call the service and return its errors with `?`, and a client
//! that sees only statuses, headers and the one JSON error shape.

mod common;

use std::sync::Arc;

use api_tokens::{
    Actor, IssueError, IssueRequest, KeyId, Keyring, ListError, LookupError, OrganizationId,
    PageRequest, RevokeError, RevokeScopeError, Role, RotateError, Scope, TokenFormat, TokenId,
    TokenService,
};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Deserialize;
use std::time::Duration;

use common::http::{Answer, client, serve};
use common::*;

// --- The service under test: the dashboard's calls, errors answered by `?` --

type Tokens = State<Arc<TokenService>>;

/// The signed-in user: an admin of the organization named in `x-admin-of`.
/// (A real service reads its session here.)
fn caller(headers: &HeaderMap) -> Actor {
    let org = headers["x-admin-of"].to_str().unwrap();
    org_admin(org)
}

#[derive(Deserialize)]
struct IssueQuery {
    label: String,
    role: Option<Role>,
    expires_in_minutes: Option<i64>,
}

async fn issue(
    State(tokens): Tokens,
    headers: HeaderMap,
    Path(org): Path<OrganizationId>,
    Query(query): Query<IssueQuery>,
) -> Result<(StatusCode, String), IssueError> {
    let mut request = IssueRequest::new(Scope::organization(org), query.label);
    if let Some(role) = query.role {
        request = request.role(role);
    }
    if let Some(minutes) = query.expires_in_minutes {
        request = request.expires_at(START + time::Duration::minutes(minutes));
    }
    let issued = tokens.issue(&caller(&headers), request).await?;
    Ok((StatusCode::CREATED, issued.summary.id.to_string()))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: usize,
}

async fn list(
    State(tokens): Tokens,
    headers: HeaderMap,
    Path(org): Path<OrganizationId>,
    Query(query): Query<ListQuery>,
) -> Result<String, ListError> {
    let scope = Scope::organization(org);
    let page = PageRequest::first(query.limit);
    let page = tokens.list(&caller(&headers), &scope, page).await?;
    Ok(page.tokens.len().to_string())
}

#[derive(Deserialize)]
struct ReasonQuery {
    reason: Option<String>,
}

async fn revoke_all(
    State(tokens): Tokens,
    headers: HeaderMap,
    Path(org): Path<OrganizationId>,
    Query(query): Query<ReasonQuery>,
) -> Result<&'static str, RevokeScopeError> {
    let scope = Scope::organization(org);
    let reason = query.reason.as_deref();
    tokens
        .revoke_scope(&caller(&headers), &scope, reason)
        .await?;
    Ok("revoked")
}

async fn lookup(
    State(tokens): Tokens,
    headers: HeaderMap,
    Path((org, id)): Path<(OrganizationId, TokenId)>,
) -> Result<String, LookupError> {
    let scope = Scope::organization(org);
    let summary = tokens.lookup(&caller(&headers), &scope, id).await?;
    Ok(summary.label.to_string())
}

async fn revoke(
    State(tokens): Tokens,
    headers: HeaderMap,
    Path((org, id)): Path<(OrganizationId, TokenId)>,
    Query(query): Query<ReasonQuery>,
) -> Result<&'static str, RevokeError> {
    let scope = Scope::organization(org);
    let reason = query.reason.as_deref();
    tokens
        .revoke_because(&caller(&headers), &scope, id, reason)
        .await?;
    Ok("revoked")
}

#[derive(Deserialize)]
struct RotateQuery {
    grace_seconds: u64,
}

async fn rotate(
    State(tokens): Tokens,
    headers: HeaderMap,
    Path((org, id)): Path<(OrganizationId, TokenId)>,
    Query(query): Query<RotateQuery>,
) -> Result<String, RotateError> {
    let scope = Scope::organization(org);
    let grace = Duration::from_secs(query.grace_seconds);
    let issued = tokens.rotate(&caller(&headers), &scope, id, grace).await?;
    Ok(issued.summary.id.to_string())
}

fn app(tokens: Arc<TokenService>) -> Router {
    Router::new()
        .route(
            "/orgs/{org}/tokens",
            post(issue).get(list).delete(revoke_all),
        )
        .route("/orgs/{org}/tokens/{id}", get(lookup).delete(revoke))
        .route("/orgs/{org}/tokens/{id}/rotate", post(rotate))
        .with_state(tokens)
}

// --- The client side -------------------------------------------------------

/// The fixed 404 every "absent" and "not yours" gives.
const NOT_FOUND: &str =
    r#"{"error":"not_found","error_description":"no such resource that the caller may manage"}"#;

struct Dashboard {
    url: String,
    client: reqwest::Client,
}

impl Dashboard {
    async fn over(tokens: Arc<TokenService>) -> Dashboard {
        Dashboard {
            url: serve(app(tokens)).await,
            client: client(),
        }
    }

    /// `method path` as an admin of `org`.
    async fn call(&self, method: reqwest::Method, path: &str, org: &str) -> Answer {
        let request = self.client.request(method, format!("{}{path}", self.url));
        Answer::of(request.header("x-admin-of", org).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, org: &str) -> Answer {
        self.call(reqwest::Method::POST, path, org).await
    }

    async fn get(&self, path: &str, org: &str) -> Answer {
        self.call(reqwest::Method::GET, path, org).await
    }

    async fn delete(&self, path: &str, org: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, org).await
    }

    /// A new token of `org`, issued over HTTP; its id.
    async fn issue(&self, org: &str) -> String {
        let answer = self
            .post(&format!("/orgs/{org}/tokens?label=ci"), org)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }
}

/// Asserts `answer` is `status` with `code`, in the one shape and with the
/// headers every error answer carries; returns the description.
fn assert_error(answer: &Answer, status: StatusCode, code: &str) -> String {
    assert_eq!(answer.status, status, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json.as_object().unwrap().len(), 2, "{}", answer.body);
    assert_eq!(json["error"], code, "{}", answer.body);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    assert_eq!(answer.headers[CACHE_CONTROL], "no-store");
    assert!(answer.headers.get(WWW_AUTHENTICATE).is_none());
    json["error_description"].as_str().unwrap().to_owned()
}

/// The dashboard over a fresh fixture's service, and the fixture's store.
async fn dashboard() -> (Dashboard, Arc<CountingStore>) {
    let Fixture { service, store, .. } = fixture();
    (Dashboard::over(Arc::new(service)).await, store)
}

// --- The tests -------------------------------------------------------------

#[tokio::test]
async fn absent_and_not_yours_answer_the_same_404_byte_for_byte() {
    let (dashboard, _) = dashboard().await;
    let acme_token = dashboard.issue("acme").await;
    let unknown = "00000000001";

    let mut answers = Vec::new();
    for id in [&*acme_token, unknown] {
        // As globex's admin, acme's token is exactly as absent as one that
        // never existed, addressed through acme (not theirs) or through
        // globex (not there).
        for org in ["acme", "globex"] {
            let path = format!("/orgs/{org}/tokens/{id}");
            answers.push(dashboard.get(&path, "globex").await);
            answers.push(dashboard.delete(&path, "globex").await);
            let rotate = format!("{path}/rotate?grace_seconds=0");
            answers.push(dashboard.post(&rotate, "globex").await);
        }
    }
    // Scopes the caller may not manage: issue, list and revoke all.
    answers.push(dashboard.post("/orgs/acme/tokens?label=x", "globex").await);
    answers.push(dashboard.get("/orgs/acme/tokens?limit=10", "globex").await);
    answers.push(dashboard.delete("/orgs/acme/tokens", "globex").await);

    for answer in &answers {
        assert_error(answer, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(answer.body, NOT_FOUND);
        assert_eq!(
            answer.headers_without_date(),
            answers[0].headers_without_date()
        );
    }
    // And the token is still there for its own organization.
    let own = dashboard
        .get(&format!("/orgs/acme/tokens/{acme_token}"), "acme")
        .await;
    assert_eq!(own.status, StatusCode::OK);
}

/// The headers a test compares: all but `date`, which moves with the clock.
trait WithoutDate {
    fn headers_without_date(&self) -> reqwest::header::HeaderMap;
}

impl WithoutDate for Answer {
    fn headers_without_date(&self) -> reqwest::header::HeaderMap {
        let mut headers = self.headers.clone();
        headers.remove(reqwest::header::DATE);
        headers
    }
}

#[tokio::test]
async fn issue_refusals_say_what_to_change() {
    let (dashboard, _) = dashboard().await;

    let owner = dashboard
        .post("/orgs/acme/tokens?label=ci&role=owner", "acme")
        .await;
    let description = assert_error(&owner, StatusCode::FORBIDDEN, "role_too_high");
    assert!(description.contains("owner"), "{description}");

    let empty = dashboard.post("/orgs/acme/tokens?label=%20", "acme").await;
    assert_error(&empty, StatusCode::UNPROCESSABLE_ENTITY, "invalid_label");

    // A right-to-left override hidden in a label: the answer points at it
    // without echoing the label.
    let hidden = dashboard
        .post("/orgs/acme/tokens?label=deploy%E2%80%AEsecret-word", "acme")
        .await;
    let description = assert_error(&hidden, StatusCode::UNPROCESSABLE_ENTITY, "invalid_label");
    assert!(
        description.contains("U+202E at position 6"),
        "{description}"
    );
    assert!(!hidden.body.contains("secret-word"), "{}", hidden.body);

    let past = dashboard
        .post("/orgs/acme/tokens?label=ci&expires_in_minutes=-5", "acme")
        .await;
    assert_error(
        &past,
        StatusCode::UNPROCESSABLE_ENTITY,
        "expiry_not_in_future",
    );
}

#[tokio::test]
async fn list_revoke_and_rotate_refusals_over_http() {
    let (dashboard, _) = dashboard().await;
    let id = dashboard.issue("acme").await;

    let page = dashboard.get("/orgs/acme/tokens?limit=0", "acme").await;
    let description = assert_error(&page, StatusCode::UNPROCESSABLE_ENTITY, "invalid_page_size");
    assert!(description.contains("1 to"), "{description}");

    let reason = dashboard
        .delete(&format!("/orgs/acme/tokens/{id}?reason=%07bell"), "acme")
        .await;
    assert_error(&reason, StatusCode::UNPROCESSABLE_ENTITY, "invalid_reason");
    let scope_reason = dashboard
        .delete("/orgs/acme/tokens?reason=%20", "acme")
        .await;
    assert_error(
        &scope_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_reason",
    );

    // Rotated once: a second rotation names the successor to rotate instead.
    let rotated = dashboard
        .post(
            &format!("/orgs/acme/tokens/{id}/rotate?grace_seconds=60"),
            "acme",
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let successor = rotated.body;
    let again = dashboard
        .post(
            &format!("/orgs/acme/tokens/{id}/rotate?grace_seconds=60"),
            "acme",
        )
        .await;
    let description = assert_error(&again, StatusCode::CONFLICT, "already_rotated");
    assert!(description.contains(&successor), "{description}");

    // Revoked: nothing to rotate from.
    let revoked = dashboard
        .delete(&format!("/orgs/acme/tokens/{successor}"), "acme")
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let from_revoked = dashboard
        .post(
            &format!("/orgs/acme/tokens/{successor}/rotate?grace_seconds=0"),
            "acme",
        )
        .await;
    assert_error(&from_revoked, StatusCode::CONFLICT, "token_revoked");
}

#[tokio::test]
async fn a_store_outage_is_503_with_retry_after_and_no_cause() {
    let outage = Arc::new(TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        Arc::new(Unreachable),
    ));
    let dashboard = Dashboard::over(outage).await;
    let id = "00000000001";

    let answers = [
        dashboard.post("/orgs/acme/tokens?label=ci", "acme").await,
        dashboard.get("/orgs/acme/tokens?limit=10", "acme").await,
        dashboard.delete("/orgs/acme/tokens", "acme").await,
        dashboard
            .get(&format!("/orgs/acme/tokens/{id}"), "acme")
            .await,
        dashboard
            .delete(&format!("/orgs/acme/tokens/{id}"), "acme")
            .await,
        dashboard
            .post(
                &format!("/orgs/acme/tokens/{id}/rotate?grace_seconds=0"),
                "acme",
            )
            .await,
    ];
    for answer in &answers {
        let description = assert_error(
            answer,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        );
        assert_eq!(description, "the token store is unavailable; retry later");
        assert_eq!(answer.headers[RETRY_AFTER], "5");
        assert!(!answer.body.contains("refused"), "{}", answer.body);
    }
}

#[tokio::test]
async fn a_server_side_failure_is_500_with_a_fixed_body() {
    let (dashboard, store) = dashboard().await;
    // Every id the service draws is taken just before it inserts: the
    // store refuses each insert as a duplicate, and the service gives up.
    store.take_ids_first(usize::MAX);

    let answer = dashboard.post("/orgs/acme/tokens?label=ci", "acme").await;
    let description = assert_error(&answer, StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    assert_eq!(description, "the server could not complete the request");
    assert!(answer.headers.get(RETRY_AFTER).is_none());
}
