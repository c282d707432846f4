//! The pages' HTML: the API Tokens page, its rows, and the layout every
//! page shares. maud escapes every value written here.

use std::time::Duration;

use api_tokens::{Cursor, Role, Scope, TokenPage, TokenStatus, TokenSummary};
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::macros::format_description;

use super::demo_auth::Session;

/// What the API Tokens page shows.
pub(super) struct TokensView<'a> {
    pub scope: &'a Scope,
    pub session: &'a Session,
    /// The roles the admin may grant here, lowest first.
    pub roles: Vec<Role>,
    /// The lifetimes the expiry policy allows (form value, words,
    /// lifetime), and the form value chosen at first.
    pub lifetimes: Vec<&'static (&'static str, &'static str, Option<Duration>)>,
    pub default_lifetime: &'static str,
    pub page: TokenPage,
    /// The token just revoked, to say so.
    pub just_revoked: Option<TokenSummary>,
}

/// The body of Organization Settings → API Tokens, or of Domain Settings →
/// Security → API Tokens: the create form, the list, and the two modals
/// the script opens.
pub(super) fn tokens_page(view: &TokensView) -> Markup {
    let TokensView {
        scope,
        session,
        roles,
        lifetimes,
        default_lifetime,
        page,
        just_revoked,
    } = view;
    let here = page_path(scope, None);
    let csrf = &session.csrf;
    html! {
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
                        @for &role in roles {
                            option value=(role) selected[role == Role::Viewer] { (role_name(role)) }
                        }
                    }
                }
                label {
                    span { "Expires" }
                    select #token-expires name="expires" {
                        @for (value, words, _) in lifetimes.iter() {
                            option value=(value) selected[value == default_lifetime] {
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
        // `closedby="none"`: no Escape or click outside closes it (the
        // script also reopens it unless Done closed it).
        dialog #token-created aria-labelledby="created-heading" closedby="none" {
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
    }
}

pub(super) fn breadcrumb(scope: &Scope) -> Markup {
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

pub(super) fn role_name(role: Role) -> &'static str {
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

/// A whole page; signed in, its header names the admin and has Sign out.
pub(super) fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
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
pub(super) fn page_path(scope: &Scope, after: Option<&Cursor>) -> String {
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
