//! The HTTP answer for every management error (issue, list, revoke, rotate,
//! look up, and the store beneath them): a status, a stable code, and the
//! same JSON shape [`TokenRejection`] answers with.
//!
//! The table in the [module docs](super#error-codes) is the contract; the
//! `http_case` methods below are its only source.

use std::error::Error as StdError;
use std::fmt::Write as _;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::rejection::TokenRejection;
use crate::error::{
    IssueError, ListError, LookupError, RevokeError, RevokeLeakedError, RevokeScopeError,
    RotateError, StoreError, UpdateError,
};

/// What a 503 asks the client to wait before retrying, in seconds
/// (`Retry-After`). Long enough for a replica to catch up or a connection
/// pool to reconnect, short enough that a client does not give up on a
/// blip.
pub(crate) const RETRY_AFTER_SECONDS: u16 = 5;

/// An error with a fixed HTTP answer: every management error of the crate
/// ([`IssueError`], [`ListError`], [`LookupError`], [`RevokeError`],
/// [`RevokeLeakedError`], [`RevokeScopeError`], [`RotateError`],
/// [`StoreError`]) and the layer's
/// [`TokenRejection`].
///
/// All of them also implement [`IntoResponse`], so a handler returns
/// `Result<_, RevokeError>` and uses `?`. This trait tells a service what the
/// response will say without building it, to log or match on:
///
/// ```no_run
/// use api_tokens::http::HttpError;
/// use api_tokens::{Actor, Scope, TokenId, TokenService};
/// use axum::response::{IntoResponse, Response};
///
/// async fn revoke(tokens: &TokenService, admin: &Actor, scope: &Scope, id: TokenId) -> Response {
///     match tokens.revoke(admin, scope, id).await {
///         Ok(_) => "revoked".into_response(),
///         Err(error) => {
///             // "not_found", "invalid_reason", "temporarily_unavailable", …
///             metrics_count(error.code());
///             error.into_response()
///         }
///     }
/// }
/// # fn metrics_count(_: &str) {}
/// ```
///
/// The trait is sealed: the crate alone decides the answers, so that one
/// client-side parser fits every service built on it.
pub trait HttpError: private::Sealed {
    /// The status the response carries.
    fn status(&self) -> StatusCode;

    /// The stable, machine-readable code: the body's `error` member. The
    /// [`http` module](super#error-codes) lists every code and its status.
    fn code(&self) -> &'static str;
}

mod private {
    /// Keeps [`HttpError`](super::HttpError) implemented by this crate only.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// One row of the table in the module docs: what the client is told. Several
/// errors share a row; a row's code, status and (for the rows that hide
/// their cause) description never depend on the error's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    NotFound,
    RoleTooHigh,
    InvalidLabel,
    InvalidReason,
    ExpiryNotInFuture,
    ExpiryOutOfRange,
    LifetimeTooLong,
    ExpiryRequired,
    TokenRevoked,
    TokenExpired,
    AlreadyRotated,
    GraceTooLong,
    GraceOutOfRange,
    InvalidPageSize,
    TooManyTokens,
    InvalidSource,
    InvalidPermission,
    PermissionNotGranted,
    InvalidAllowlist,
    ExpiryExtended,
    Conflict,
    Unavailable,
    ServerError,
}

impl Case {
    fn status(self) -> StatusCode {
        match self {
            Case::NotFound => StatusCode::NOT_FOUND,
            Case::RoleTooHigh | Case::PermissionNotGranted => StatusCode::FORBIDDEN,
            Case::TokenRevoked | Case::TokenExpired | Case::AlreadyRotated | Case::Conflict => {
                StatusCode::CONFLICT
            }
            Case::InvalidLabel
            | Case::InvalidReason
            | Case::ExpiryNotInFuture
            | Case::ExpiryOutOfRange
            | Case::LifetimeTooLong
            | Case::ExpiryRequired
            | Case::GraceTooLong
            | Case::GraceOutOfRange
            | Case::InvalidPageSize
            | Case::TooManyTokens
            | Case::InvalidSource
            | Case::InvalidPermission
            | Case::InvalidAllowlist
            | Case::ExpiryExtended => StatusCode::UNPROCESSABLE_ENTITY,
            Case::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Case::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Case::NotFound => "not_found",
            Case::RoleTooHigh => "role_too_high",
            Case::InvalidLabel => "invalid_label",
            Case::InvalidReason => "invalid_reason",
            Case::ExpiryNotInFuture => "expiry_not_in_future",
            Case::ExpiryOutOfRange => "expiry_out_of_range",
            Case::LifetimeTooLong => "lifetime_too_long",
            Case::ExpiryRequired => "expiry_required",
            Case::TokenRevoked => "token_revoked",
            Case::TokenExpired => "token_expired",
            Case::AlreadyRotated => "already_rotated",
            Case::GraceTooLong => "grace_too_long",
            Case::GraceOutOfRange => "grace_out_of_range",
            Case::InvalidPageSize => "invalid_page_size",
            Case::TooManyTokens => "too_many_tokens",
            Case::InvalidSource => "invalid_source",
            Case::InvalidPermission => "invalid_permission",
            Case::PermissionNotGranted => "permission_not_granted",
            Case::InvalidAllowlist => "invalid_allowlist",
            Case::ExpiryExtended => "expiry_extended",
            Case::Conflict => "conflict",
            // The layer's own codes for the same situations, so a client
            // handles an outage or a server bug alike wherever it met it.
            Case::Unavailable => "temporarily_unavailable",
            Case::ServerError => "server_error",
        }
    }

    /// The description of the rows whose error must not reach the client:
    /// a refusal that must not tell "absent" from "not yours" (the error
    /// names the id or scope asked for), and server-side failures (whose
    /// cause goes to the log). `None`: the error's own message helps the
    /// client and holds nothing secret, so it is the description.
    fn fixed_description(self) -> Option<&'static str> {
        match self {
            Case::NotFound => Some("no such resource that the caller may manage"),
            Case::Unavailable => Some("the token store is unavailable; retry later"),
            Case::ServerError => Some("the server could not complete the request"),
            _ => None,
        }
    }
}

// Every `http_case` below matches each variant by name, with no `_ =>` arm.
// The enums are `#[non_exhaustive]`, but that binds other crates only: here,
// a variant added to one of them fails to compile until it is given its row.
// Keep it that way, so no future error falls silently into a catch-all.

impl IssueError {
    fn http_case(&self) -> Case {
        match self {
            IssueError::NotAllowed { .. } => Case::NotFound,
            IssueError::RoleTooHigh { .. } => Case::RoleTooHigh,
            IssueError::InvalidLabel(_) => Case::InvalidLabel,
            IssueError::ExpiryNotInFuture => Case::ExpiryNotInFuture,
            IssueError::ExpiryOutOfRange => Case::ExpiryOutOfRange,
            IssueError::LifetimeTooLong { .. } => Case::LifetimeTooLong,
            IssueError::MustExpire { .. } => Case::ExpiryRequired,
            IssueError::InvalidPermission(_)
            | IssueError::EmptyPermissionSet
            | IssueError::TooManyPermissions { .. } => Case::InvalidPermission,
            IssueError::PermissionNotGranted { .. } => Case::PermissionNotGranted,
            IssueError::InvalidNetwork { .. }
            | IssueError::EmptyAllowlist
            | IssueError::TooManyNetworks { .. } => Case::InvalidAllowlist,
            IssueError::RandomSource(_) => Case::ServerError,
            IssueError::Store(store) => store.http_case(),
        }
    }
}

impl UpdateError {
    fn http_case(&self) -> Case {
        match self {
            UpdateError::NotFound { .. } => Case::NotFound,
            UpdateError::Revoked { .. } => Case::TokenRevoked,
            UpdateError::Replaced { .. } => Case::AlreadyRotated,
            UpdateError::Expired { .. } => Case::TokenExpired,
            UpdateError::RoleTooHigh { .. } => Case::RoleTooHigh,
            UpdateError::InvalidLabel(_) => Case::InvalidLabel,
            UpdateError::ExpiryNotInFuture => Case::ExpiryNotInFuture,
            UpdateError::ExpiryOutOfRange => Case::ExpiryOutOfRange,
            UpdateError::ExpiryExtended => Case::ExpiryExtended,
            UpdateError::LifetimeTooLong { .. } => Case::LifetimeTooLong,
            UpdateError::MustExpire { .. } => Case::ExpiryRequired,
            UpdateError::Conflict { .. } => Case::Conflict,
            UpdateError::Store(store) => store.http_case(),
        }
    }
}

impl RevokeError {
    fn http_case(&self) -> Case {
        match self {
            RevokeError::NotFound { .. } => Case::NotFound,
            RevokeError::InvalidReason(_) => Case::InvalidReason,
            RevokeError::Store(store) => store.http_case(),
        }
    }
}

impl LookupError {
    fn http_case(&self) -> Case {
        match self {
            LookupError::NotFound { .. } => Case::NotFound,
            LookupError::Store(store) => store.http_case(),
        }
    }
}

impl RevokeScopeError {
    fn http_case(&self) -> Case {
        match self {
            RevokeScopeError::NotAllowed { .. } => Case::NotFound,
            RevokeScopeError::InvalidReason(_) => Case::InvalidReason,
            RevokeScopeError::Store(store) => store.http_case(),
        }
    }
}

impl RotateError {
    fn http_case(&self) -> Case {
        match self {
            RotateError::NotFound { .. } => Case::NotFound,
            RotateError::Revoked { .. } => Case::TokenRevoked,
            RotateError::Expired { .. } => Case::TokenExpired,
            RotateError::AlreadyReplaced { .. } => Case::AlreadyRotated,
            RotateError::GraceTooLong { .. } => Case::GraceTooLong,
            RotateError::GraceOutOfRange => Case::GraceOutOfRange,
            // The successor's expiry comes from the service's policy and
            // clock, not from the request: nothing the client can change.
            RotateError::SuccessorExpiryOutOfRange => Case::ServerError,
            RotateError::RoleTooHigh { .. } => Case::RoleTooHigh,
            RotateError::RandomSource(_) => Case::ServerError,
            RotateError::Store(store) => store.http_case(),
        }
    }
}

impl ListError {
    fn http_case(&self) -> Case {
        match self {
            ListError::NotAllowed { .. } => Case::NotFound,
            ListError::InvalidPageSize { .. } => Case::InvalidPageSize,
            ListError::Store(store) => store.http_case(),
        }
    }
}

impl RevokeLeakedError {
    fn http_case(&self) -> Case {
        match self {
            RevokeLeakedError::TooManyTokens { .. } => Case::TooManyTokens,
            RevokeLeakedError::InvalidSource(_) => Case::InvalidSource,
            RevokeLeakedError::Store(store) => store.http_case(),
        }
    }
}

impl StoreError {
    fn http_case(&self) -> Case {
        match self {
            StoreError::Unavailable { .. } => Case::Unavailable,
            // A duplicate id the service did not retry, a TLS setup the
            // operator must fix, a damaged record, anything else: the
            // client can do nothing about them, and retrying will not help.
            StoreError::AlreadyExists { .. }
            | StoreError::Tls { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Other { .. } => Case::ServerError,
        }
    }
}

/// `HttpError` and `IntoResponse` for a management error, whose `http_case`
/// method gives its row; `operation` names the call in the log.
macro_rules! http_error {
    ($error:ty, $operation:literal) => {
        impl private::Sealed for $error {}

        impl HttpError for $error {
            fn status(&self) -> StatusCode {
                self.http_case().status()
            }

            fn code(&self) -> &'static str {
                self.http_case().code()
            }
        }

        /// The answer the [`http` module](crate::http#error-codes) lists
        /// for each variant. A server-side failure is logged here, with its
        /// cause, and never shown to the client.
        impl IntoResponse for $error {
            fn into_response(self) -> Response {
                respond(&self, self.http_case(), $operation)
            }
        }
    };
}

http_error!(IssueError, "issue");
http_error!(RevokeError, "revoke");
http_error!(UpdateError, "update");
http_error!(LookupError, "lookup");
http_error!(RevokeScopeError, "revoke_scope");
http_error!(RotateError, "rotate");
http_error!(ListError, "list");
http_error!(RevokeLeakedError, "revoke_leaked");
http_error!(StoreError, "store");

impl private::Sealed for TokenRejection {}

impl HttpError for TokenRejection {
    fn status(&self) -> StatusCode {
        TokenRejection::status(*self)
    }

    fn code(&self) -> &'static str {
        TokenRejection::code(*self)
    }
}

/// Logs `error` as its row asks and builds the response.
fn respond(error: &(dyn StdError + 'static), case: Case, operation: &'static str) -> Response {
    let code = case.code();
    match case {
        Case::ServerError => tracing::error!(
            operation,
            code,
            error,
            "API token management failed on the server's side"
        ),
        Case::Unavailable => tracing::warn!(
            operation,
            code,
            error,
            "API token management failed: the token store is unavailable"
        ),
        _ => tracing::debug!(operation, code, reason = %error, "API token management refused"),
    }
    let body = match case.fixed_description() {
        Some(description) => json_body(code, description),
        None => json_body(code, &error.to_string()),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = case.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Errors describe this request's outcome, not a resource to keep.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if case == Case::Unavailable {
        headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}

/// `{"error":code,"error_description":description}`, the shape of every
/// error body of the crate, with `description` escaped as a JSON string.
fn json_body(code: &str, description: &str) -> String {
    let mut body = String::with_capacity(40 + code.len() + description.len());
    body.push_str("{\"error\":\"");
    push_json_escaped(&mut body, code);
    body.push_str("\",\"error_description\":\"");
    push_json_escaped(&mut body, description);
    body.push_str("\"}");
    body
}

/// RFC 8259 §7: quote, backslash and control characters escaped; the rest
/// (non-ASCII included) kept as UTF-8.
fn push_json_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < '\u{20}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
