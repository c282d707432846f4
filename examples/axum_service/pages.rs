//! The dashboard's API Tokens pages, for a person in a browser: the
//! platform's **Organization Settings → API Tokens** and **Domain Settings
//! → Security → API Tokens**.
//!
//! | page | route |
//! |---|---|
//! | demo sign-in | `GET /sign-in` (`POST`: sign in), `POST /sign-out` |
//! | Organization Settings → API Tokens | `GET /organizations/{org}/settings/api-tokens` |
//! | Domain Settings → Security → API Tokens | `GET /organizations/{org}/domains/{domain}/settings/security/api-tokens` |
//! | Create Token | `POST` to the page's own path: the new token as JSON, for the page's script |
//! | Revoke | `POST {page}/{id}/revoke`, then back to the page |
//!
//! Server-rendered HTML: maud escapes every value written into a page, and
//! the pages allow no inline script (`Content-Security-Policy`). The one
//! script, `assets/api-tokens.js`, opens the modals, copies the token, and
//! creates a token with `fetch`, so that its text lives only in the open
//! page's memory: never in a URL, the history, a cookie, a cache or a log.
//! Every answer says `Cache-Control: no-store`.
//!
//! Every POST must carry its session's forgery token
//! ([`Session::csrf`](super::demo_auth::Session)); the session cookie is
//! `SameSite=Strict` as well. What goes wrong is said in words on the page
//! ([`Problem`]), never as a bare status.

use std::sync::Arc;
use std::time::Duration;

use api_tokens::{
    Actor, Cursor, DomainId, IssueRequest, OrganizationId, PageRequest, Role, Scope, TokenId,
    TokenService, TokenStatus,
};
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use maud::html;
use serde::{Deserialize, Serialize};

use super::demo_auth::{self, SESSION_COOKIE, Session, Sessions};

mod problem;
mod view;

use problem::Problem;
use view::{TokensView, layout, page_path};

const ORGANIZATION_PAGE: &str = "/organizations/{org}/settings/api-tokens";
const DOMAIN_PAGE: &str = "/organizations/{org}/domains/{domain}/settings/security/api-tokens";

/// Tokens shown on one page of the list; older ones are a link away.
pub const PAGE_SIZE: usize = 50;

/// The lifetimes the form offers (form value, words, lifetime), of which
/// a page shows those the service's expiry policy allows.
const LIFETIMES: &[(&str, &str, Option<Duration>)] = &[
    ("1d", "1 day", Some(Duration::from_secs(86_400))),
    ("7d", "7 days", Some(Duration::from_secs(7 * 86_400))),
    ("30d", "30 days", Some(Duration::from_secs(30 * 86_400))),
    ("90d", "90 days", Some(Duration::from_secs(90 * 86_400))),
    ("1y", "1 year", Some(Duration::from_secs(365 * 86_400))),
    ("never", "Never", None),
];

struct Pages {
    tokens: Arc<TokenService>,
    sessions: Sessions,
}

/// The sign-in and API Tokens pages, their form handlers and assets.
pub fn routes(tokens: Arc<TokenService>) -> Router {
    let pages = Arc::new(Pages {
        tokens,
        sessions: Sessions::default(),
    });
    let mut router = Router::new()
        .route("/", get(async || see_other("/sign-in", None)))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/assets/api-tokens.js", get(script))
        .route("/assets/api-tokens.css", get(style));
    for page in [ORGANIZATION_PAGE, DOMAIN_PAGE] {
        router = router
            .route(page, get(tokens_page).post(create))
            .route(&format!("{page}/{{id}}/revoke"), post(revoke));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::map_response(browser_headers))
        .with_state(pages)
}

/// Any address no route takes, in the whole example (one router of a merge
/// may have a fallback): a page in words for a browser; for an API client,
/// a `404` with no body, as before the pages.
async fn not_found(State(pages): State<Arc<Pages>>, headers: HeaderMap) -> Response {
    let browser = headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser {
        Problem::no_such_page().page(pages.sessions.find(&headers).as_ref())
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// A page's address opened with the wrong method: a revoke address pasted
/// into the address bar, say.
async fn not_allowed(State(pages): State<Arc<Pages>>, headers: HeaderMap) -> Response {
    let message = "This address cannot be opened that way: go back to the page and use its \
                   buttons.";
    let problem = Problem::new(StatusCode::METHOD_NOT_ALLOWED, message);
    problem.page(pages.sessions.find(&headers).as_ref())
}

/// On every answer: kept by no cache (a page that showed a token must not
/// come back from one), no script but ours, never framed, no `Referer`.
async fn browser_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let policy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                  form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn script() -> impl IntoResponse {
    let script = include_str!("assets/api-tokens.js");
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], script)
}

async fn style() -> impl IntoResponse {
    let style = include_str!("assets/api-tokens.css");
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], style)
}

// ---- Sign-in -------------------------------------------------------------

/// The demo's sign-in: pick an admin. The form's forgery token lives in
/// a cookie of its own ([`demo_auth::SIGN_IN_COOKIE`]), so this page keeps
/// nothing on the server and leaves any session as it is.
async fn sign_in_page(State(pages): State<Arc<Pages>>, headers: HeaderMap) -> Response {
    let (token, new) = demo_auth::sign_in_token(&headers);
    let session = pages.sessions.find(&headers);
    let body = html! {
        h1 { "Sign in" }
        p.lead {
            "DEMO ONLY: anyone may sign in as anyone here. A real service signs people in "
            "its own way and hands the crate an " code { "Actor" } "."
        }
        ul.users {
            @for &(user, scope) in demo_auth::USERS {
                li {
                    form method="post" action="/sign-in" {
                        input type="hidden" name="csrf" value=(token);
                        input type="hidden" name="user" value=(user);
                        button type="submit" id={ "sign-in-" (user) } { "Sign in as " (user) }
                    }
                    span { "Admin of " (scope) }
                }
            }
        }
    };
    let page = layout("Sign in", session.as_ref(), body).into_response();
    if new {
        with_cookie(page, &demo_auth::sign_in_cookie(&token))
    } else {
        page
    }
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
}

/// Signs in with a new session (ending the one the browser had, if any),
/// and goes to the admin's own API Tokens page.
async fn sign_in(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let session = pages.sessions.find(&headers);
    let Ok(Form(form)) = form else {
        return Problem::unreadable_form().page(session.as_ref());
    };
    let forged = demo_auth::from_another_origin(&headers);
    if forged || !demo_auth::sign_in_token_matches(&headers, &form.csrf) {
        return Problem::out_of_date().page(session.as_ref());
    }
    let Some((user, _, scope)) = demo_auth::admin(&form.user) else {
        let message = "There is no demo admin of that name: pick one of the buttons.";
        return Problem::new(StatusCode::BAD_REQUEST, message).page(session.as_ref());
    };
    if let Some(session) = session {
        pages.sessions.end(&session.id);
    }
    let signed_in = pages.sessions.start(user);
    see_other(&page_path(&scope, None), Some(&signed_in.cookie()))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(form)| form.csrf).unwrap_or_default();
    match pages.signed_in_post(&headers, &csrf) {
        Ok(admin) => pages.sessions.end(&admin.session.id),
        // Signed out already: nothing to do but go to the sign-in page.
        Err(Problem { status, .. }) if status == StatusCode::UNAUTHORIZED => {}
        Err(problem) => return problem.page(pages.sessions.find(&headers).as_ref()),
    }
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    see_other("/sign-in", Some(&expired))
}

// ---- The API Tokens page -------------------------------------------------

/// `/organizations/{org}/…` or `/organizations/{org}/domains/{domain}/…`.
#[derive(Deserialize)]
struct ScopePath {
    org: OrganizationId,
    domain: Option<DomainId>,
    /// The token, on the revoke route.
    id: Option<TokenId>,
}

impl ScopePath {
    fn scope(&self) -> Scope {
        match &self.domain {
            None => Scope::organization(self.org.clone()),
            Some(domain) => Scope::domain(self.org.clone(), domain.clone()),
        }
    }
}

/// The signed-in admin, as the crate knows them.
struct Admin {
    session: Session,
    name: &'static str,
    actor: Actor,
    /// Where they are Admin.
    home: Scope,
}

impl Pages {
    /// The signed-in admin of this request's session, if any.
    fn admin(&self, headers: &HeaderMap) -> Option<Admin> {
        let session = self.sessions.find(headers)?;
        let (name, actor, home) = demo_auth::admin(session.user)?;
        Some(Admin {
            session,
            name,
            actor,
            home,
        })
    }

    /// The admin sending a form, if they are signed in and the form came
    /// from their own page (it carries their session's forgery token, and
    /// the browser says it came from this origin).
    fn signed_in_post(&self, headers: &HeaderMap, csrf: &str) -> Result<Admin, Problem> {
        let admin = self.admin(headers).ok_or_else(Problem::not_signed_in)?;
        if !demo_auth::from_another_origin(headers) && admin.session.csrf_matches(csrf) {
            Ok(admin)
        } else {
            Err(Problem::forged())
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    /// Where the page starts: a [`Cursor`] from the previous page's link.
    after: Option<String>,
    /// The token just revoked, to say so (an id that is not one is
    /// ignored, and keeps no other parameter from being read).
    revoked: Option<String>,
}

async fn tokens_page(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    path: Result<Path<ScopePath>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Some(admin) = pages.admin(&headers) else {
        return see_other("/sign-in", None);
    };
    let Ok(Path(path)) = path else {
        return Problem::no_such_page().page(Some(&admin.session));
    };
    let scope = path.scope();
    let query = query.map(|Query(query)| query);
    let (after, revoked) = match query {
        Ok(ListQuery { after, revoked }) => (after, revoked.and_then(|id| id.parse().ok())),
        Err(_) => (None, None),
    };
    let after = match after.map(|text| text.parse::<Cursor>()).transpose() {
        Ok(after) => after,
        Err(_) => {
            let message = "That link to older tokens is not valid: start from the first page.";
            let problem = Problem::new(StatusCode::BAD_REQUEST, message);
            return problem.page_for(&admin, &scope);
        }
    };
    render_tokens_page(&pages, &admin, &scope, after, revoked).await
}

async fn render_tokens_page(
    pages: &Pages,
    admin: &Admin,
    scope: &Scope,
    after: Option<Cursor>,
    revoked: Option<TokenId>,
) -> Response {
    // The service checks this too; checking first says it in better words.
    if !admin.actor.can_manage_tokens(scope) {
        return Problem::not_your_scope(admin, scope).page_for(admin, scope);
    }
    let request = PageRequest {
        limit: PAGE_SIZE,
        after,
    };
    let page = match pages.tokens.list(&admin.actor, scope, request).await {
        Ok(page) => page,
        Err(error) => return Problem::from_error(&error).page_for(admin, scope),
    };
    let held = admin.actor.role_at(scope).unwrap_or(Role::Viewer);
    let max = pages.tokens.expiry_policy().max_lifetime(scope.kind());
    let lifetimes: Vec<_> = LIFETIMES
        .iter()
        .filter(|(_, _, lifetime)| match (lifetime, max) {
            (_, None) => true,
            (Some(lifetime), Some(max)) => *lifetime <= max,
            (None, Some(_)) => false,
        })
        .collect();
    // The policy's default lifetime if the form offers it, else 90 days,
    // else the longest offered.
    let policy_default = pages.tokens.expiry_policy().default_lifetime(scope.kind());
    let default_lifetime = lifetimes
        .iter()
        .find(|(_, _, lifetime)| policy_default.is_some() && *lifetime == policy_default)
        .or_else(|| lifetimes.iter().find(|(value, ..)| *value == "90d"))
        .or(lifetimes.last())
        .map_or("", |(value, ..)| value);
    // Said only of a token that is revoked, wherever in the list it is.
    let just_revoked = match revoked {
        Some(id) => match pages.tokens.lookup(&admin.actor, scope, id).await {
            Ok(token) if token.status == TokenStatus::Revoked => Some(token),
            _ => None,
        },
        None => None,
    };
    let view = TokensView {
        scope,
        session: &admin.session,
        roles: Role::ALL.into_iter().filter(|role| *role <= held).collect(),
        lifetimes,
        default_lifetime,
        page,
        just_revoked,
    };
    layout("API Tokens", Some(&admin.session), view::tokens_page(&view)).into_response()
}

// ---- Create and revoke ---------------------------------------------------

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expires: String,
}

/// The one answer with a token's text, for the page's script: borrowed, so
/// that no copy of it outlives the request but the response's bytes.
#[derive(Serialize)]
struct Created<'a> {
    token: &'a str,
    label: &'a str,
}

/// Creates a token; answers JSON to the page's script (a token, or a
/// `message` to show in the form). Only to the script, which asks for
/// JSON: a form submitted without it (a page without JavaScript, another
/// site's form) would show the token as a page of its own, kept in the
/// browser's history, so it creates nothing and answers a page in words.
async fn create(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    path: Result<Path<ScopePath>, PathRejection>,
    form: Result<Form<CreateForm>, FormRejection>,
) -> Response {
    let from_script = headers
        .get(ACCEPT)
        .is_some_and(|accept| accept == "application/json");
    let refuse = |problem: Problem| match from_script {
        true => problem.json(),
        false => problem.page(pages.sessions.find(&headers).as_ref()),
    };
    let Ok(Form(form)) = form else {
        return refuse(Problem::unreadable_form());
    };
    let admin = match pages.signed_in_post(&headers, &form.csrf) {
        Ok(admin) => admin,
        Err(problem) => return refuse(problem),
    };
    if !from_script {
        return refuse(Problem::needs_script());
    }
    let Ok(Path(path)) = path else {
        return Problem::no_such_page().json();
    };
    let scope = path.scope();
    if !admin.actor.can_manage_tokens(&scope) {
        return Problem::not_your_scope(&admin, &scope).json();
    }
    let Ok(role) = form.role.parse::<Role>() else {
        return Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Choose a role.").json();
    };
    let Some(&(_, _, lifetime)) = LIFETIMES.iter().find(|(value, ..)| *value == form.expires)
    else {
        return Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Choose when it expires.").json();
    };
    let request = IssueRequest::new(scope, form.label).role(role);
    let request = match lifetime {
        Some(lifetime) => request.expires_in(lifetime),
        None => request.never_expires(),
    };
    let issued = match pages.tokens.issue(&admin.actor, request).await {
        Ok(issued) => issued,
        Err(error) => return Problem::from_error(&error).json(),
    };
    let created = Created {
        token: issued.token.expose_secret(),
        label: issued.summary.label.as_str(),
    };
    (StatusCode::CREATED, Json(created)).into_response()
}

/// Revokes, then shows the page again (a redirect, so that reloading it
/// sends nothing twice).
async fn revoke(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    path: Result<Path<ScopePath>, PathRejection>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(form)| form.csrf).unwrap_or_default();
    let admin = match pages.signed_in_post(&headers, &csrf) {
        Ok(admin) => admin,
        Err(problem) => return problem.page(pages.sessions.find(&headers).as_ref()),
    };
    let Ok(Path(path)) = path else {
        return Problem::no_such_page().page(Some(&admin.session));
    };
    let (scope, Some(id)) = (path.scope(), path.id) else {
        return Problem::no_such_page().page(Some(&admin.session));
    };
    if !admin.actor.can_manage_tokens(&scope) {
        return Problem::not_your_scope(&admin, &scope).page_for(&admin, &scope);
    }
    match pages.tokens.revoke(&admin.actor, &scope, id).await {
        Ok(_) => {
            let page = page_path(&scope, None);
            see_other(&format!("{page}?revoked={id}"), None)
        }
        Err(error) => Problem::from_error(&error).page_for(&admin, &scope),
    }
}

fn see_other(location: &str, cookie: Option<&str>) -> Response {
    let response = (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response();
    match cookie {
        Some(cookie) => with_cookie(response, cookie),
        None => response,
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}
