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
//! `examples/axum_service.rs` is a whole service: the dashboard's create,
//! list and revoke as endpoints, and a protected resource per domain.

mod credential;
mod extract;
mod layer;
mod rejection;

pub use layer::{TokenLayer, TokenMiddleware};
pub use rejection::TokenRejection;
