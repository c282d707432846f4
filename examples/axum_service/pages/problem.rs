//! What went wrong, in words for the person at the browser.

use std::error::Error;
use std::fmt::Display;

use api_tokens::Scope;
use api_tokens::http::HttpError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::Admin;
use super::demo_auth::{self, Session};
use super::view::{breadcrumb, layout, page_path};

/// What went wrong, for the person at the browser: a status and a sentence
/// that says what to do. Never a stack trace, never a token.
pub(super) struct Problem {
    pub(super) status: StatusCode,
    message: String,
}

impl Problem {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Problem {
            status,
            message: message.into(),
        }
    }

    /// A crate error: its own words, which name the field and the rule;
    /// but a store failure's details go to the log, for the operators. A
    /// write may have happened before the store failed, so the page does
    /// not say that nothing changed.
    pub(super) fn from_error<E: HttpError + Error + 'static>(error: &E) -> Self {
        let status = error.status();
        // As a `dyn Error`, so that the log shows the whole chain of causes.
        let cause = error as &(dyn Error + 'static);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = cause, "the API Tokens page met a store outage");
            let message = "The token service cannot reach its store right now. Reload the \
                           page to see whether anything changed, and try again in a few \
                           seconds.";
            return Problem::new(status, message);
        }
        if status.is_server_error() {
            tracing::error!(error = cause, "the API Tokens page met a failure");
            let message = "The token service failed. Reload the page to see whether anything \
                           changed; if it keeps failing, tell your platform's operators.";
            return Problem::new(status, message);
        }
        Problem::new(status, sentence(error))
    }

    pub(super) fn not_your_scope(admin: &Admin, scope: &Scope) -> Self {
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

    pub(super) fn not_signed_in() -> Self {
        let message = "You are not signed in, or your session has ended. Nothing was changed: \
                       sign in and try again.";
        Problem::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(super) fn forged() -> Self {
        let message = "This form did not come from your page on this site, or the page is \
                       older than your sign-in. Nothing was changed: reload the page and try \
                       again.";
        Problem::new(StatusCode::FORBIDDEN, message)
    }

    pub(super) fn out_of_date() -> Self {
        let message = "This sign-in form is out of date, or came from another site. Open the \
                       sign-in page again and pick an admin.";
        Problem::new(StatusCode::FORBIDDEN, message)
    }

    pub(super) fn needs_script() -> Self {
        let message = "Creating a token needs JavaScript, so that the token is shown in the \
                       page only. Nothing was created: turn JavaScript on and try again.";
        Problem::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn unreadable_form() -> Self {
        let message = "The form could not be read. Reload the page and try again.";
        Problem::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn no_such_page() -> Self {
        let message = "There is no such page: the organization, domain or token in its \
                       address is not valid.";
        Problem::new(StatusCode::NOT_FOUND, message)
    }

    /// For the page's script.
    pub(super) fn json(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        (self.status, Json(body)).into_response()
    }

    /// A page of its own, with the way to the admin's API Tokens page (or
    /// to the sign-in page).
    pub(super) fn page(self, session: Option<&Session>) -> Response {
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
    pub(super) fn page_for(self, admin: &Admin, scope: &Scope) -> Response {
        let body = html! {
            (breadcrumb(scope))
            h1 { "API Tokens" }
            p #problem .error role="alert" { (self.message) }
            p { a href=(page_path(&admin.home, None)) { "Go to your API Tokens page" } }
        };
        (
            self.status,
            layout("API Tokens", Some(&admin.session), body),
        )
            .into_response()
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
