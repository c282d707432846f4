//! Protecting HTTP services built on tower and axum (feature `axum`).
//!
//! - [`TokenLayer`] verifies each request's token, from
//!   `Authorization: Bearer <token>` (RFC 6750) or a header of your choice,
//!   and refuses the request if it is missing or not valid.
//! - Handlers take the [`VerifiedToken`](crate::VerifiedToken) as an
//!   extractor and check what it grants with
//!   [`require`](crate::VerifiedToken::require).
//! - Every refusal is a [`TokenRejection`]: the status and
//!   `WWW-Authenticate` challenge RFC 6750 prescribes, and a JSON body that
//!   never says whether a token was unknown, wrong, revoked or expired. The
//!   precise reason goes to [`tracing`](https://docs.rs/tracing) at debug
//!   level, with the token's public id and never its text; a store failure
//!   answers 503 and is logged as a warning.
//! - [`TokenLayer::optional`] serves anonymous callers too: handlers take
//!   `Option<VerifiedToken>`, which is `None` for a request without the
//!   header; a header that is present must still hold a valid token.
//! - A token with an allowlist passes only from an address inside it: the
//!   layer takes the client's address from the connection (serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()`), and behind
//!   [trusted proxies](TokenLayer::trusted_proxies) from `X-Forwarded-For`.
//!   Without an address such a token is refused.
//! - [`TokenLayer::rate_limits`] enforces per-token rate limits (a GCRA
//!   per token, [`LocalRateLimiter`], in bounded memory), answering 429
//!   with `Retry-After` and the draft IETF `RateLimit` fields. **That limit
//!   is per service instance**; a [`RateLimiter`] of your own can share it
//!   across a fleet.
//! - The management errors ([`IssueError`](crate::IssueError),
//!   [`RevokeError`](crate::RevokeError), …) are responses too, so the
//!   handlers of a token dashboard use `?`; see [Error codes](#error-codes).
//! - The layer names the verified token's id in the service's traces: see
//!   [`TokenLayer`]'s *Tracing*.
//!
//! ```no_run
//! use std::sync::Arc;
//! use api_tokens::http::{TokenLayer, TokenRejection};
//! use api_tokens::{DomainId, OrganizationId, Role, Scope, TokenService, VerifiedToken};
//! use axum::{Router, extract::Path, routing::get};
//!
//! async fn deploy(
//!     token: VerifiedToken,
//!     Path((org, domain)): Path<(OrganizationId, DomainId)>,
//! ) -> Result<&'static str, TokenRejection> {
//!     // An organization token passes for all its domains, a domain token
//!     // for its own only.
//!     token.require(&Scope::domain(org, domain), Role::Editor)?;
//!     Ok("deploying")
//! }
//!
//! fn router(tokens: Arc<TokenService>) -> Router {
//!     Router::new()
//!         .route("/organizations/{org}/domains/{domain}/deploy", get(deploy))
//!         .route_layer(TokenLayer::new(tokens))
//! }
//! ```
//!
//! `examples/axum_service/` is a whole service: the dashboard's create,
//! list and revoke as endpoints, and a protected resource per domain.
//!
//! # Error codes
//!
//! Every error this module answers with, the layer's refusals and the
//! management errors alike, has one JSON shape, so a client parses one:
//!
//! ```json
//! {"error":"not_found","error_description":"no such resource that the caller may manage"}
//! ```
//!
//! It is the shape RFC 6750 gives a refused token (and OAuth 2.0 every
//! error): `error` is a stable code for programs to match, and
//! `error_description` a sentence for people, which may change between
//! versions. Every error answer carries `Content-Type: application/json`
//! and `Cache-Control: no-store`; every 503 carries `Retry-After: 5`, and
//! every 429 the wait its rate limit asks for.
//!
//! The management errors, [`IssueError`], [`ListError`], [`LookupError`],
//! [`RevokeError`], [`RevokeLeakedError`], [`RevokeScopeError`],
//! [`RotateError`] and [`StoreError`], implement [`IntoResponse`](axum::response::IntoResponse),
//! so a handler returns `Result<_, RevokeError>` and uses `?`; [`HttpError`]
//! tells the code and status without building the response, to log or count
//! them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use api_tokens::{Actor, OrganizationId, RevokeError, Scope, TokenId, TokenService};
//! use axum::extract::{Path, State};
//!
//! async fn revoke(
//!     State(tokens): State<Arc<TokenService>>,
//!     Path((org, id)): Path<(OrganizationId, TokenId)>,
//! ) -> Result<&'static str, RevokeError> {
//!     let admin: Actor = signed_in_admin();
//!     let scope = Scope::organization(org);
//!     tokens.revoke(&admin, &scope, id).await?; // 404 not_found, 503, …
//!     Ok("revoked")
//! }
//! # fn signed_in_admin() -> Actor { Actor::new(api_tokens::ActorId::new("alice").unwrap()) }
//! ```
//!
//! Management errors:
//!
//! | code | status | meaning | errors |
//! |---|---|---|---|
//! | `not_found` | 404 | no such token, or a token or scope the caller may not manage | `NotFound` of [`RevokeError`], [`RotateError`], [`LookupError`], [`UpdateError`]; `NotAllowed` of [`IssueError`], [`ListError`], [`RevokeScopeError`] |
//! | `role_too_high` | 403 | the token's role would exceed the caller's at its scope | `RoleTooHigh` of [`IssueError`], [`RotateError`], [`UpdateError`] (enabling or extending a token of a higher role) |
//! | `permission_not_granted` | 403 | a permission asked for needs a higher role than the token's | [`IssueError::PermissionNotGranted`] |
//! | `invalid_permission` | 422 | the permission set is empty, too large, or names a permission the service does not define | `InvalidPermission`, `EmptyPermissionSet`, `TooManyPermissions` of [`IssueError`] |
//! | `invalid_allowlist` | 422 | the allowlist is empty, too large, or holds an entry that is not a network in CIDR form | `InvalidNetwork`, `EmptyAllowlist`, `TooManyNetworks` of [`IssueError`] |
//! | `invalid_label` | 422 | the label breaks the [label rules](crate::Label) | `InvalidLabel` of [`IssueError`], [`UpdateError`] |
//! | `invalid_reason` | 422 | the revocation reason breaks the label rules | `InvalidReason` of [`RevokeError`], [`RevokeScopeError`] |
//! | `expiry_not_in_future` | 422 | the expiry asked for has passed | `ExpiryNotInFuture` of [`IssueError`], [`UpdateError`] |
//! | `expiry_out_of_range` | 422 | the expiry asked for lies past the year 9999 | `ExpiryOutOfRange` of [`IssueError`], [`UpdateError`] |
//! | `lifetime_too_long` | 422 | the expiry lies further ahead than the policy allows | `LifetimeTooLong` of [`IssueError`], [`UpdateError`] |
//! | `expiry_required` | 422 | the policy requires tokens of this kind to expire | `MustExpire` of [`IssueError`], [`UpdateError`] |
//! | `expiry_extended` | 422 | an edit would push the expiry later, which the policy does not allow | [`UpdateError::ExpiryExtended`] |
//! | `token_revoked` | 409 | the token to rotate or change is revoked | [`RotateError::Revoked`], [`UpdateError::Revoked`] |
//! | `token_expired` | 409 | the token to rotate, or whose expiry to move, has expired | [`RotateError::Expired`], [`UpdateError::Expired`] |
//! | `already_rotated` | 409 | the token was rotated before; the description names its successor | [`RotateError::AlreadyReplaced`], [`UpdateError::Replaced`] |
//! | `conflict` | 409 | the token changed during the edit; read it again and retry | [`UpdateError::Conflict`] |
//! | `grace_too_long` | 422 | a grace period that outlasts the token | [`RotateError::GraceTooLong`] |
//! | `grace_out_of_range` | 422 | a grace period ending past the year 9999 | [`RotateError::GraceOutOfRange`] |
//! | `invalid_page_size` | 422 | a page size of zero or above the maximum | [`ListError::InvalidPageSize`] |
//! | `too_many_tokens` | 422 | a leak report holds more tokens than one call takes; split it | [`RevokeLeakedError::TooManyTokens`] |
//! | `invalid_source` | 422 | a leak report's source breaks the label rules | [`RevokeLeakedError::InvalidSource`] |
//! | `temporarily_unavailable` | 503 | the token store cannot be reached; retry later | [`StoreError::Unavailable`], alone or inside any of the above |
//! | `server_error` | 500 | a failure on the server's side; retrying will not help | every other [`StoreError`]; `RandomSource` of [`IssueError`], [`RotateError`]; [`RotateError::SuccessorExpiryOutOfRange`] |
//!
//! What the description says:
//!
//! - `not_found` has one fixed body, byte for byte, whatever the error
//!   named: "absent" and "not yours" look alike, so a caller learns nothing
//!   about other tenants' tokens (the error's id or scope is in its
//!   `Display`, for the service's logs, never in the body).
//! - 403, 409 and 422 answers carry the error's message, which says what to
//!   change (a label error gives the position and code point of a bad
//!   character, never the label's text).
//! - 500 and 503 answers have fixed bodies. Their cause is logged through
//!   `tracing`, at error level for a 500 and warn level for a 503, with the
//!   `operation` and `code`; 4xx answers are logged at debug level.
//!
//! The layer's refusals ([`TokenRejection`]; challenges as RFC 6750 §3
//! prescribes):
//!
//! | code | status | meaning |
//! |---|---|---|
//! | `missing_token` | 401 | the route needs a token and the request presents none |
//! | `invalid_request` | 400 | the credential header is malformed |
//! | `invalid_token` | 401 | the token is malformed, unknown, wrong, revoked, expired or disabled |
//! | `insufficient_scope` | 403 | the token does not grant the scope or role required |
//! | `address_not_allowed` | 403 | the token has an allowlist, and the client's address is outside it or unknown |
//! | `rate_limited` | 429 | the token is over its rate limit; `Retry-After` says when to retry |
//! | `temporarily_unavailable` | 503 | the token store is unavailable; retry later |
//! | `server_error` | 500 | the route's handler needs a token but no layer covers it |
//!
//! [`IssueError`]: crate::IssueError
//! [`UpdateError`]: crate::UpdateError
//! [`IssueError::PermissionNotGranted`]: crate::IssueError::PermissionNotGranted
//! [`UpdateError::ExpiryExtended`]: crate::UpdateError::ExpiryExtended
//! [`UpdateError::Revoked`]: crate::UpdateError::Revoked
//! [`UpdateError::Expired`]: crate::UpdateError::Expired
//! [`UpdateError::Replaced`]: crate::UpdateError::Replaced
//! [`UpdateError::Conflict`]: crate::UpdateError::Conflict
//! [`ListError`]: crate::ListError
//! [`ListError::InvalidPageSize`]: crate::ListError::InvalidPageSize
//! [`LookupError`]: crate::LookupError
//! [`RevokeError`]: crate::RevokeError
//! [`RevokeLeakedError`]: crate::RevokeLeakedError
//! [`RevokeLeakedError::TooManyTokens`]: crate::RevokeLeakedError::TooManyTokens
//! [`RevokeLeakedError::InvalidSource`]: crate::RevokeLeakedError::InvalidSource
//! [`RevokeScopeError`]: crate::RevokeScopeError
//! [`RotateError`]: crate::RotateError
//! [`RotateError::Revoked`]: crate::RotateError::Revoked
//! [`RotateError::Expired`]: crate::RotateError::Expired
//! [`RotateError::AlreadyReplaced`]: crate::RotateError::AlreadyReplaced
//! [`RotateError::GraceTooLong`]: crate::RotateError::GraceTooLong
//! [`RotateError::GraceOutOfRange`]: crate::RotateError::GraceOutOfRange
//! [`RotateError::SuccessorExpiryOutOfRange`]: crate::RotateError::SuccessorExpiryOutOfRange
//! [`StoreError`]: crate::StoreError
//! [`StoreError::Unavailable`]: crate::StoreError::Unavailable

mod client_address;
mod credential;
mod errors;
mod extract;
mod layer;
mod local_limiter;
mod rate_limits;
mod rejection;

pub use errors::HttpError;
pub use layer::{TokenLayer, TokenMiddleware};
pub use local_limiter::LocalRateLimiter;
pub use rate_limits::{RateDecision, RateLimiter, RateLimits};
pub use rejection::TokenRejection;
