//! Per-token rate limits over HTTP: which limit applies to a token, the
//! limiter that keeps count, and the `RateLimit` header fields that tell a
//! client where it stands.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{HeaderName, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::local_limiter::LocalRateLimiter;
use super::rejection::TokenRejection;
use crate::ids::OrganizationId;
use crate::restrictions::RateLimit;
use crate::scope::Scope;
use crate::service::VerifiedToken;
use crate::token::TokenId;

/// Keeps count of each token's requests and says whether one more may pass.
///
/// The layer calls [`check`](Self::check) once per request whose token has
/// a limit (its own, or its scope's default: see [`RateLimits`]), after
/// the token verified and before the handler runs. Tokens without a limit
/// never reach it.
///
/// [`LocalRateLimiter`] is the default: exact, but per service instance.
/// Implement this trait to share one count across a fleet (a counter in
/// Redis or in the database the tokens live in); the limit is then
/// fleet-wide, at the cost of a round trip per request.
/// `tests/http_shared_rate_limit.rs` has one over PostgreSQL: a
/// fixed-window counter in one `INSERT … ON CONFLICT` statement, shared by
/// two instances.
///
/// ```no_run
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use api_tokens::http::{RateDecision, RateLimiter};
/// use api_tokens::{RateLimit, TokenId, async_trait};
///
/// /// The requests counted so far, never reset: a limiter for a demo.
/// struct Forever(Mutex<HashMap<TokenId, u32>>);
///
/// #[async_trait]
/// impl RateLimiter for Forever {
///     async fn check(&self, token: TokenId, limit: RateLimit) -> RateDecision {
///         let mut counts = self.0.lock().unwrap();
///         let used = counts.entry(token).or_default();
///         if *used >= limit.requests() {
///             return RateDecision::denied(limit.period());
///         }
///         *used += 1;
///         RateDecision::allowed(limit.requests() - *used, limit.period())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `token`, limited to `limit`, and says whether
    /// it may pass.
    ///
    /// There is no error: a limiter whose backend fails decides itself
    /// whether that lets requests through (availability first) or refuses
    /// them (the limit first), and logs it.
    async fn check(&self, token: TokenId, limit: RateLimit) -> RateDecision;
}

/// What a [`RateLimiter`] decided for one request: whether it may pass,
/// how many more may, and how long until the quota grows again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    allowed: bool,
    remaining: u32,
    reset: Duration,
}

impl RateDecision {
    /// The request may pass; `remaining` more may pass right now, and more
    /// quota comes back within `reset`.
    pub fn allowed(remaining: u32, reset: Duration) -> Self {
        RateDecision {
            allowed: true,
            remaining,
            reset,
        }
    }

    /// The request is over the limit; one may pass again after
    /// `retry_after`.
    pub fn denied(retry_after: Duration) -> Self {
        RateDecision {
            allowed: false,
            remaining: 0,
            reset: retry_after,
        }
    }

    /// Whether the request may pass.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// How many more requests may pass right now (0 when denied): the
    /// `RateLimit` field's `r`.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// How long until more quota is available: when denied, how long until
    /// a request may pass again (`Retry-After`). The `RateLimit` field's
    /// `t`.
    pub fn reset(&self) -> Duration {
        self.reset
    }
}

/// Rate limits for a [`TokenLayer`](super::TokenLayer): the limiter, and
/// default limits for scopes whose tokens have none of their own.
///
/// The limit a request counts against ([`limit_for`](Self::limit_for)) is
/// the token's own [`rate_limit`](crate::VerifiedToken::rate_limit) if it
/// has one, else its domain's default (for a domain token), else its
/// organization's default: an organization default applies to all its
/// domains unless a domain has its own. A token with no limit anywhere
/// costs nothing: the limiter is not called.
///
/// # Per instance
///
/// With the default [`LocalRateLimiter`] **the limit is per service
/// instance**: each process counts alone, so N instances behind a load
/// balancer allow up to N × the limit. For a fleet-wide limit, pass
/// [`new`](Self::new) a [`RateLimiter`] that shares its count.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use api_tokens::http::{RateLimits, TokenLayer};
/// use api_tokens::{OrganizationId, RateLimit, Scope, TokenService};
///
/// fn layer(tokens: Arc<TokenService>) -> Result<TokenLayer, Box<dyn std::error::Error>> {
///     let acme = Scope::organization(OrganizationId::new("acme")?);
///     let limits = RateLimits::local()
///         // Tokens of acme without a limit of their own: 600 a minute.
///         .scope_default(acme, RateLimit::new(600, Duration::from_secs(60))?);
///     Ok(TokenLayer::new(tokens).rate_limits(limits))
/// }
/// ```
#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    organizations: HashMap<OrganizationId, RateLimit>,
    /// Keyed by the whole domain scope, so a domain token's own scope is
    /// the key: no allocation to look it up.
    domains: HashMap<Scope, RateLimit>,
}

impl RateLimits {
    /// Limits counted by `limiter`, with no scope defaults: only tokens
    /// with a limit of their own are limited.
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        RateLimits {
            limiter,
            organizations: HashMap::new(),
            domains: HashMap::new(),
        }
    }

    /// Limits counted in this process by a [`LocalRateLimiter`] of the
    /// default capacity.
    pub fn local() -> Self {
        Self::new(Arc::new(LocalRateLimiter::new()))
    }

    /// The same limits, with `limit` for the tokens of `scope` that have
    /// none of their own: for an organization scope, its organization
    /// tokens and the domain tokens of domains without a default; for a
    /// domain scope, that domain's tokens. Setting a scope twice keeps the
    /// last.
    #[must_use]
    pub fn scope_default(mut self, scope: Scope, limit: RateLimit) -> Self {
        match scope {
            Scope::Organization { org } => {
                self.organizations.insert(org, limit);
            }
            domain @ Scope::Domain { .. } => {
                self.domains.insert(domain, limit);
            }
        }
        self
    }

    /// The limit requests with `token` count against, or `None` if it has
    /// none.
    pub fn limit_for(&self, token: &VerifiedToken) -> Option<RateLimit> {
        if let Some(own) = token.rate_limit() {
            return Some(own);
        }
        let scope = token.scope();
        if let Scope::Domain { .. } = scope
            && let Some(domain) = self.domains.get(scope)
        {
            return Some(*domain);
        }
        self.organizations.get(scope.org()).copied()
    }

    /// Counts a request of `token` against `limit`.
    pub(crate) async fn check(&self, token: TokenId, limit: RateLimit) -> RateDecision {
        self.limiter.check(token, limit).await
    }
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("organization_defaults", &self.organizations)
            .field("domain_defaults", &self.domains)
            .finish_non_exhaustive()
    }
}

/// `RateLimit-Policy`, from the IETF draft "RateLimit header fields for
/// HTTP" (draft-ietf-httpapi-ratelimit-headers-10; the fields' form since
/// draft 08): the quota and its window.
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`, from the same draft: what is left, and when more comes.
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The name both fields give the one policy a request counts against.
const POLICY_NAME: &str = "token";

/// Adds the `RateLimit-Policy` and `RateLimit` fields for `decision` under
/// `limit`: `"token";q=100;w=60` and `"token";r=42;t=1`.
pub(crate) fn add_fields(headers: &mut HeaderMap, limit: RateLimit, decision: RateDecision) {
    let policy = format!(
        "\"{POLICY_NAME}\";q={};w={}",
        limit.requests(),
        limit.period().as_secs()
    );
    let state = format!(
        "\"{POLICY_NAME}\";r={};t={}",
        decision.remaining(),
        whole_seconds(decision.reset())
    );
    // Digits, quotes and semicolons: always a valid value.
    if let (Ok(policy), Ok(state)) = (HeaderValue::try_from(policy), HeaderValue::try_from(state)) {
        headers.insert(&RATELIMIT_POLICY, policy);
        headers.insert(&RATELIMIT, state);
    }
}

/// The 429 for a request over `limit`: [`TokenRejection::RateLimited`],
/// with `Retry-After` and the `RateLimit` fields, whose `t` is the same
/// moment (the draft asks that `Retry-After` not be earlier than `t`).
pub(crate) fn too_many_requests(limit: RateLimit, decision: RateDecision) -> Response {
    let mut response = TokenRejection::RateLimited.into_response();
    let headers = response.headers_mut();
    headers.insert(
        RETRY_AFTER,
        HeaderValue::from(whole_seconds(decision.reset())),
    );
    add_fields(headers, limit, decision);
    response
}

/// `duration` in whole seconds, rounded up, and at least 1: a client told
/// 0 would retry at once and be refused again.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    let rounded = if duration.subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    };
    rounded.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DomainId;

    #[test]
    fn seconds_round_up_and_never_to_zero() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
        assert_eq!(whole_seconds(Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_fields_name_the_quota_window_remaining_and_reset() {
        let limit = RateLimit::new(100, Duration::from_secs(60)).unwrap();
        let mut headers = HeaderMap::new();
        add_fields(
            &mut headers,
            limit,
            RateDecision::allowed(42, Duration::from_millis(600)),
        );
        assert_eq!(headers["ratelimit-policy"], r#""token";q=100;w=60"#);
        assert_eq!(headers["ratelimit"], r#""token";r=42;t=1"#);

        let response = too_many_requests(limit, RateDecision::denied(Duration::from_millis(2_500)));
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
        assert_eq!(response.headers()["ratelimit"], r#""token";r=0;t=3"#);
        assert_eq!(
            response.headers()["ratelimit-policy"],
            r#""token";q=100;w=60"#
        );
    }

    #[test]
    fn a_domain_default_beats_its_organizations() {
        let org = OrganizationId::new("acme").unwrap();
        let shop = Scope::domain(org.clone(), DomainId::new("shop").unwrap());
        let per_minute = |n| RateLimit::new(n, Duration::from_secs(60)).unwrap();
        let limits = RateLimits::local()
            .scope_default(Scope::organization(org.clone()), per_minute(10))
            .scope_default(shop.clone(), per_minute(5));
        assert_eq!(limits.organizations.get(&org), Some(&per_minute(10)));
        assert_eq!(limits.domains.get(&shop), Some(&per_minute(5)));
    }
}
