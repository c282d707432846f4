//! Handlers take the verified token as an extractor, and check what it
//! grants in one line.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use super::layer::Anonymous;
use super::rejection::TokenRejection;
use crate::authorization::Requirement;
use crate::scope::Scope;
use crate::service::VerifiedToken;

/// The token the [`TokenLayer`](super::TokenLayer) verified for this request.
///
/// On a route the layer does not cover there is none, and the extractor
/// answers [`TokenRejection::NotInstalled`] (500): a routing bug must not let
/// requests through unauthenticated. On a route of an
/// [optional](super::TokenLayer::optional) layer, a request that came
/// without a token is refused with
/// [`TokenRejection::MissingCredentials`] (401): this handler needs one.
impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = TokenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match verified(parts)? {
            Some(token) => Ok(token),
            None => {
                tracing::debug!(reason = %TokenRejection::MissingCredentials, "API token refused");
                Err(TokenRejection::MissingCredentials)
            }
        }
    }
}

/// `Option<VerifiedToken>`, for routes behind an
/// [optional](super::TokenLayer::optional) layer: `None` for a request the
/// layer let through without a token, the token otherwise. (The layer has
/// already refused every request whose header was present but not valid.)
///
/// On a route no layer covers it answers [`TokenRejection::NotInstalled`]
/// (500), like the plain extractor: `None` there would serve every caller as
/// anonymous, tokens or not.
impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedToken {
    type Rejection = TokenRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        verified(parts)
    }
}

/// The verified token, `None` if an optional layer passed the request
/// without one, or `NotInstalled` if no layer ran.
fn verified(parts: &Parts) -> Result<Option<VerifiedToken>, TokenRejection> {
    if let Some(token) = parts.extensions.get::<VerifiedToken>() {
        return Ok(Some(token.clone()));
    }
    if parts.extensions.get::<Anonymous>().is_some() {
        return Ok(None);
    }
    tracing::error!(
        path = parts.uri.path(),
        "a handler takes a VerifiedToken on a route without TokenLayer"
    );
    Err(TokenRejection::NotInstalled)
}

impl VerifiedToken {
    /// [`allows`](Self::allows) as a handler wants it: `Ok` if the token may
    /// act at `scope` as `required` (a [`Role`](crate::Role) or a
    /// [`Permission`](crate::Permission)) asks, else
    /// [`TokenRejection::InsufficientScope`] (403, `insufficient_scope`), so
    /// that `token.require(&scope, Role::Editor)?;` is the whole check. An
    /// organization token passes for every domain of its organization; a
    /// domain token only for its domain.
    ///
    /// ```no_run
    /// use api_tokens::http::TokenRejection;
    /// use api_tokens::{DomainId, OrganizationId, Role, Scope, VerifiedToken};
    /// use axum::extract::Path;
    ///
    /// async fn settings(
    ///     token: VerifiedToken,
    ///     Path((org, domain)): Path<(OrganizationId, DomainId)>,
    /// ) -> Result<&'static str, TokenRejection> {
    ///     token.require(&Scope::domain(org, domain), Role::Viewer)?;
    ///     Ok("the domain's settings")
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`TokenRejection::InsufficientScope`] when the token's scope does not
    /// cover `scope` or it does not meet `required`.
    pub fn require(&self, scope: &Scope, required: impl Requirement) -> Result<(), TokenRejection> {
        if self.allows(scope, &required) {
            return Ok(());
        }
        tracing::debug!(
            token_id = %self.id(),
            required_scope = %scope,
            required = %required,
            "API token lacks the scope, role or permission"
        );
        Err(TokenRejection::InsufficientScope)
    }
}
