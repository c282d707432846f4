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

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use api_tokens::{
    Actor, Cursor, DomainId, IssueRequest, OrganizationId, PageRequest, Role, Scope, TokenId,
    TokenService, TokenStatus, TokenSummary, http::HttpError,
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
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use super::demo_auth::{self, SESSION_COOKIE, Session, Sessions};

const ORGANIZATION_PAGE: &str = "/organizations/{org}/settings/api-tokens";
const DOMAIN_PAGE: &str = "/organizations/{org}/domains/{domain}/settings/security/api-tokens";

/// Tokens shown on one page of the list; older ones are a link away.
pub const PAGE_SIZE: usize = 50;

/// The lifetimes the form offers (form value, words, lifetime), of which
/// a page shows those the service's expiry policy allows.
const LIFETIMES: &[(&str, &str, Option<Duration>)] = &[
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
        .method_not_allowed_fallback(async || {
            let message = "This address cannot be opened that way: go back to the page and \
                           use its buttons.";
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, message).page(None)
        })
        .layer(middleware::map_response(browser_headers))
        .with_state(pages)
}

/// Any address no route takes: a page in words for a browser; for an API
/// client, the bare `404` it always had.
async fn not_found(headers: HeaderMap) -> Response {
    let browser = headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser {
        Problem::no_such_page().page(None)
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
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
    if !demo_auth::sign_in_token_matches(&headers, &form.csrf) {
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
    /// from their own page (it carries their session's forgery token).
    fn signed_in_post(&self, headers: &HeaderMap, csrf: &str) -> Result<Admin, Problem> {
        let admin = self.admin(headers).ok_or_else(Problem::not_signed_in)?;
        if admin.session.csrf_matches(csrf) {
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
    /// The token just revoked, to say so.
    revoked: Option<TokenId>,
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
        Ok(ListQuery { after, revoked }) => (after, revoked),
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
    let here = page_path(scope, None);
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
    let csrf = &admin.session.csrf;
    let body = html! {
        (breadcrumb(scope))
        h1 { "API Tokens" }
        p.lead {
            "Tokens of " strong { (scope) } ". An application sends one in its "
            code { "Authorization" } " header to call the API as "
            (if scope.domain_id().is_some() { "this domain" } else { "this organization" })
            ". A token is shown once, when it is created: only its hash is kept."
        }
        @if let Some(token) = just_revoked {
            p.notice role="status" {
                "“" (token.label) "” is revoked: every request with it is refused from now on."
            }
        }
        section.create aria-labelledby="create-heading" {
            h2 #create-heading { "Create Token" }
            form #create-token method="post" action=(here) {
                input type="hidden" name="csrf" value=(csrf);
                label {
                    span { "Label" }
                    input #token-label name="label" required autocomplete="off"
                        maxlength=(api_tokens::MAX_LABEL_CHARS)
                        placeholder="What is it for? e.g. CI deploys";
                }
                label {
                    span { "Role" }
                    select #token-role name="role" {
                        @for role in Role::ALL.into_iter().filter(|role| *role <= held) {
                            option value=(role) selected[role == Role::Viewer] { (role_name(role)) }
                        }
                    }
                }
                label {
                    span { "Expires" }
                    select #token-expires name="expires" {
                        @for (value, words, _) in &lifetimes {
                            option value=(value) selected[*value == default_lifetime] {
                                @if *value == "never" { (words) } @else { "In " (words) }
                            }
                        }
                    }
                }
                button #create-button type="submit" { "Create Token" }
            }
            p #create-error .error role="alert" {}
            noscript {
                p.error {
                    "This page needs JavaScript: a new token is shown in the page only, and "
                    "Revoke asks for confirmation first."
                }
            }
        }
        section aria-labelledby="list-heading" {
            h2 #list-heading { "Tokens" }
            @if page.tokens.is_empty() {
                p.empty { "No tokens yet. Create one above." }
            } @else {
                table #tokens {
                    thead { tr {
                        th { "Label" } th { "Token" } th { "Role" } th { "Created" }
                        th { "Last used" } th { "Expires" } th { "Status" } th { span.hidden { "Actions" } }
                    } }
                    tbody {
                        @for token in &page.tokens { (token_row(token, scope)) }
                    }
                }
            }
            @if !page.damaged.is_empty() {
                p.error {
                    (page.damaged.len()) " token(s) on this page could not be read back from the "
                    "store, and are left out. Ask your platform's operators to repair them."
                }
            }
            @if let Some(next) = page.next {
                p { a #older href=(page_path(scope, Some(&next))) { "Older tokens →" } }
            }
        }
        dialog #token-created aria-labelledby="created-heading" {
            h2 #created-heading { "Copy your new token" }
            p { "Label: " strong #new-token-label {} }
            p.warning role="alert" {
                strong { "This is the only time the token is shown." }
                " It cannot be viewed again: copy it now and keep it somewhere safe. "
                "If you lose it, revoke it and create another."
            }
            code #new-token {}
            div.actions {
                button #copy-token type="button" { "Copy Token" }
                span #copy-status role="status" {}
                button #close-token type="button" { "Done" }
            }
        }
        dialog #confirm-revoke aria-labelledby="revoke-heading" {
            h2 #revoke-heading { "Revoke this token?" }
            p {
                "Revoke “" strong #revoke-label {} "”? Every request using it will be refused "
                "from now on. This cannot be undone."
            }
            form #revoke-form method="post" {
                input type="hidden" name="csrf" value=(csrf);
                div.actions {
                    button #cancel-revoke type="button" { "Cancel" }
                    button #confirm-revoke-button .danger type="submit" { "Revoke" }
                }
            }
        }
    };
    layout_for(admin, "API Tokens", body).into_response()
}

fn breadcrumb(scope: &Scope) -> Markup {
    html! {
        nav.breadcrumb aria-label="Breadcrumb" {
            @match scope.domain_id() {
                None => { "Organization Settings (" (scope.org()) ") › " }
                Some(domain) => { "Domain Settings (" (domain) ") › Security › " }
            }
            span aria-current="page" { "API Tokens" }
        }
    }
}

fn token_row(token: &TokenSummary, scope: &Scope) -> Markup {
    let (status, class) = match token.status {
        TokenStatus::Active => ("Active", "active"),
        TokenStatus::Disabled => ("Disabled", "disabled"),
        TokenStatus::Expired => ("Expired", "expired"),
        TokenStatus::Revoked => ("Revoked", "revoked"),
    };
    let revoke = format!("{}/{}/revoke", page_path(scope, None), token.id);
    html! {
        tr data-token-id=(token.id) class=(class) {
            td.label { (token.label) }
            td { code { (token.hint) } }
            td { (role_name(token.role)) }
            td { (token.created_by) br; (when(token.created_at)) }
            td { @match token.last_used_at { Some(at) => (when(at)), None => "Never" } }
            td { @match token.expires_at { Some(at) => (when(at)), None => "Never" } }
            td {
                span.status.(class) { (status) }
                @if let Some(revoked) = &token.revoked {
                    br; "by " (revoked.by) ", " (when(revoked.at))
                }
            }
            td {
                @if token.status != TokenStatus::Revoked {
                    button.revoke type="button" data-revoke=(revoke) data-label=(token.label) {
                        "Revoke"
                    }
                }
            }
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "Viewer",
        Role::Editor => "Editor",
        Role::Admin => "Admin",
        Role::Owner => "Owner",
    }
}

fn when(at: OffsetDateTime) -> Markup {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let at = at.to_offset(time::UtcOffset::UTC);
    let text = at.format(&format).unwrap_or_default();
    let machine = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    html! { time datetime=(machine) { (text) } }
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
    let Ok(Path(ScopePath {
        org,
        domain,
        id: Some(id),
    })) = path
    else {
        return Problem::no_such_page().page(Some(&admin.session));
    };
    let scope = ScopePath {
        org,
        domain,
        id: None,
    }
    .scope();
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

// ---- Problems in words ---------------------------------------------------

/// What went wrong, for the person at the browser: a status and a sentence
/// that says what to do. Never a stack trace, never a token.
struct Problem {
    status: StatusCode,
    message: String,
}

impl Problem {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Problem {
            status,
            message: message.into(),
        }
    }

    /// A crate error: its own words, which name the field and the rule;
    /// but a store failure's details go to the log, for the operators. A
    /// write may have happened before the store failed, so the page does
    /// not say that nothing changed.
    fn from_error<E: HttpError + Display>(error: &E) -> Self {
        let status = error.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%error, "the API Tokens page met a store outage");
            let message = "The token service cannot reach its store right now. Reload the \
                           page to see whether anything changed, and try again in a few \
                           seconds.";
            return Problem::new(status, message);
        }
        if status.is_server_error() {
            tracing::error!(%error, "the API Tokens page met a store failure");
            let message = "The token service failed. Reload the page to see whether anything \
                           changed; if it keeps failing, tell your platform's operators.";
            return Problem::new(status, message);
        }
        Problem::new(status, sentence(error))
    }

    fn not_your_scope(admin: &Admin, scope: &Scope) -> Self {
        let who = match scope.domain_id() {
            None => format!("an admin of {scope}"),
            Some(_) => format!("an admin of {scope} or of its organization"),
        };
        let message = format!(
            "You are signed in as {}, an admin of {}. Only {who} may see and manage its API \
             tokens.",
            admin.name, admin.home
        );
        Problem::new(StatusCode::FORBIDDEN, message)
    }

    fn not_signed_in() -> Self {
        let message = "You are not signed in, or your session has ended. Nothing was changed: \
                       sign in and try again.";
        Problem::new(StatusCode::UNAUTHORIZED, message)
    }

    fn forged() -> Self {
        let message = "This form did not come from your page on this site, or the page is \
                       older than your sign-in. Nothing was changed: reload the page and try \
                       again.";
        Problem::new(StatusCode::FORBIDDEN, message)
    }

    fn out_of_date() -> Self {
        let message = "This sign-in form is out of date, or came from another site. Open the \
                       sign-in page again and pick an admin.";
        Problem::new(StatusCode::FORBIDDEN, message)
    }

    fn needs_script() -> Self {
        let message = "Creating a token needs JavaScript, so that the token is shown in the \
                       page only. Nothing was created: turn JavaScript on and try again.";
        Problem::new(StatusCode::BAD_REQUEST, message)
    }

    fn unreadable_form() -> Self {
        let message = "The form could not be read. Reload the page and try again.";
        Problem::new(StatusCode::BAD_REQUEST, message)
    }

    fn no_such_page() -> Self {
        let message = "There is no such page: the organization, domain or token in its \
                       address is not valid.";
        Problem::new(StatusCode::NOT_FOUND, message)
    }

    /// For the page's script.
    fn json(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        (self.status, Json(body)).into_response()
    }

    /// A page of its own, with the way to the admin's API Tokens page (or
    /// to the sign-in page).
    fn page(self, session: Option<&Session>) -> Response {
        let home = session.and_then(|session| demo_auth::admin(session.user));
        let body = html! {
            h1 { "Something went wrong" }
            p #problem .error role="alert" { (self.message) }
            @match home {
                Some((_, _, scope)) => p { a href=(page_path(&scope, None)) { "Go to your API Tokens page" } },
                None => p { a href="/sign-in" { "Go to the sign-in page" } },
            }
        };
        (self.status, layout("Something went wrong", session, body)).into_response()
    }

    /// A page of its own, with the way back to the admin's API Tokens page.
    fn page_for(self, admin: &Admin, scope: &Scope) -> Response {
        let body = html! {
            (breadcrumb(scope))
            h1 { "API Tokens" }
            p #problem .error role="alert" { (self.message) }
            p { a href=(page_path(&admin.home, None)) { "Go to your API Tokens page" } }
        };
        (self.status, layout_for(admin, "API Tokens", body)).into_response()
    }
}

/// `text` as a sentence: a capital first letter and a full stop.
fn sentence(text: impl Display) -> String {
    let text = text.to_string();
    let mut chars = text.chars();
    let mut sentence: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    sentence.push_str(chars.as_str());
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

// ---- Layout and addresses ------------------------------------------------

fn layout_for(admin: &Admin, title: &str, body: Markup) -> Markup {
    layout(title, Some(&admin.session), body)
}

/// A whole page; signed in, its header names the admin and has Sign out.
fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Acme platform (demo)" }
                link rel="stylesheet" href="/assets/api-tokens.css";
                script src="/assets/api-tokens.js" defer {}
            }
            body {
                header.top {
                    span.brand { "Acme platform" }
                    span.demo { "demo" }
                    @if let Some(session) = session {
                        form.account method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            span { "Signed in as " strong #signed-in-as { (session.user) } }
                            button #sign-out type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The API Tokens page of `scope` (from `after`, if given), its ids
/// escaped for a path.
fn page_path(scope: &Scope, after: Option<&Cursor>) -> String {
    let org = path_segment(scope.org().as_str());
    let page = match scope.domain_id() {
        None => format!("/organizations/{org}/settings/api-tokens"),
        Some(domain) => format!(
            "/organizations/{org}/domains/{}/settings/security/api-tokens",
            path_segment(domain.as_str())
        ),
    };
    match after {
        // A cursor is URL-safe base64.
        Some(after) => format!("{page}?after={after}"),
        None => page,
    }
}

/// `text` with every byte but RFC 3986's unreserved characters
/// percent-encoded: an id may hold any printable ASCII.
fn path_segment(text: &str) -> String {
    let mut segment = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    segment
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
