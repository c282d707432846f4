//! What narrows one token below its role: a permission set, an allowlist of
//! client networks, a rate limit. Plain data, kept with the record.
//!
//! A token without any of them ([`Restrictions::is_unrestricted`]) costs
//! verification nothing: its credential holds no restrictions at all, one
//! empty pointer.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RateLimitError;
use crate::networks::IpNetwork;
use crate::permissions::PermissionName;

/// What narrows a token, beyond its scope and role. The default narrows
/// nothing.
///
/// Stores keep it as given; the service builds it only from a validated
/// [`IssueRequest`](crate::IssueRequest): permission names sorted without
/// repeats, at most [`MAX_TOKEN_PERMISSIONS`](crate::MAX_TOKEN_PERMISSIONS),
/// and at most [`MAX_ALLOWED_NETWORKS`](crate::MAX_ALLOWED_NETWORKS)
/// networks, neither list empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Restrictions {
    /// The only permissions the token has, or `None` for all that its role
    /// grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<PermissionName>>,
    /// The only client networks it is accepted from, or `None` for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_networks: Option<Vec<IpNetwork>>,
    /// How fast it may be used, or `None` for the scope's default (if the
    /// HTTP layer sets one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

impl Restrictions {
    /// Whether it narrows nothing.
    pub fn is_unrestricted(&self) -> bool {
        self.permissions.is_none() && self.allowed_networks.is_none() && self.rate_limit.is_none()
    }

    /// Whether a request from `client` may use the token. Without an
    /// allowlist, any client may (an unknown one too); with one, only a
    /// known client inside it: an unknown client is refused, so a caller
    /// that forgot to pass the address fails closed.
    pub fn admits(&self, client: Option<IpAddr>) -> bool {
        match (&self.allowed_networks, client) {
            (None, _) => true,
            (Some(networks), Some(client)) => {
                networks.iter().any(|network| network.contains(client))
            }
            (Some(_), None) => false,
        }
    }

    /// Whether the permission set (if any) holds `name`. Without a set,
    /// every name: the role decides. A linear scan (a set holds at most 64
    /// names), so a set a store returns in another order still answers
    /// right.
    pub fn holds(&self, name: &PermissionName) -> bool {
        self.permissions
            .as_ref()
            .is_none_or(|set| set.contains(name))
    }
}

/// The fewest and most requests a [`RateLimit`] may allow per period.
pub const RATE_LIMIT_REQUESTS: std::ops::RangeInclusive<u32> = 1..=1_000_000;

/// The shortest and longest period of a [`RateLimit`], in seconds: one
/// second to one day.
pub const RATE_LIMIT_PERIOD_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;

/// `requests` requests per `period`, as a GCRA enforces it (the HTTP
/// layer's `http::LocalRateLimiter`, feature `axum`): a burst of
/// up to `requests` at once, then one request's worth of quota back every
/// `period / requests`. A steady client gets `requests` per `period`; one
/// that waited a whole period and then spends its burst may get up to
/// `2 × requests − 1` within one window of `period`.
///
/// Only the HTTP layer enforces it, and only when it is set up with
/// `http::TokenLayer::rate_limits`:
/// [`verify`](crate::TokenService::verify) itself counts nothing.
///
/// ```
/// use api_tokens::RateLimit;
/// use std::time::Duration;
///
/// let limit = RateLimit::new(100, Duration::from_secs(60))?;
/// assert_eq!(limit.to_string(), "100 per 60 s");
/// # Ok::<(), api_tokens::RateLimitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RateLimitFields", into = "RateLimitFields")]
pub struct RateLimit {
    requests: u32,
    period_secs: u32,
}

impl RateLimit {
    /// `requests` per `period`, in whole seconds.
    ///
    /// # Errors
    ///
    /// [`RateLimitError`] when `requests` is outside [`RATE_LIMIT_REQUESTS`]
    /// or `period` is not whole seconds within [`RATE_LIMIT_PERIOD_SECS`].
    pub fn new(requests: u32, period: Duration) -> Result<Self, RateLimitError> {
        if !RATE_LIMIT_REQUESTS.contains(&requests) {
            return Err(RateLimitError::Requests);
        }
        if period.subsec_nanos() != 0 || !RATE_LIMIT_PERIOD_SECS.contains(&period.as_secs()) {
            return Err(RateLimitError::Period);
        }
        Ok(RateLimit {
            requests,
            period_secs: period.as_secs() as u32,
        })
    }

    /// How many requests a period allows.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.period_secs))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} per {} s", self.requests, self.period_secs)
    }
}

/// The serialized form: `{"requests": 100, "period_secs": 60}`.
#[derive(Serialize, Deserialize)]
struct RateLimitFields {
    requests: u32,
    period_secs: u64,
}

impl TryFrom<RateLimitFields> for RateLimit {
    type Error = RateLimitError;

    fn try_from(fields: RateLimitFields) -> Result<Self, RateLimitError> {
        RateLimit::new(fields.requests, Duration::from_secs(fields.period_secs))
    }
}

impl From<RateLimit> for RateLimitFields {
    fn from(limit: RateLimit) -> Self {
        RateLimitFields {
            requests: limit.requests,
            period_secs: u64::from(limit.period_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_stay_within_their_ranges() {
        assert!(RateLimit::new(1, Duration::from_secs(1)).is_ok());
        assert!(RateLimit::new(1_000_000, Duration::from_secs(86_400)).is_ok());
        assert_eq!(
            RateLimit::new(0, Duration::from_secs(1)),
            Err(RateLimitError::Requests)
        );
        assert_eq!(
            RateLimit::new(1_000_001, Duration::from_secs(1)),
            Err(RateLimitError::Requests)
        );
        for period in [
            Duration::ZERO,
            Duration::from_millis(1_500),
            Duration::from_secs(86_401),
            Duration::MAX,
        ] {
            assert_eq!(RateLimit::new(10, period), Err(RateLimitError::Period));
        }
        let json =
            serde_json::to_string(&RateLimit::new(5, Duration::from_secs(60)).unwrap()).unwrap();
        assert_eq!(json, r#"{"requests":5,"period_secs":60}"#);
        assert!(serde_json::from_str::<RateLimit>(r#"{"requests":0,"period_secs":60}"#).is_err());
    }

    #[test]
    fn an_allowlist_fails_closed_without_an_address() {
        let open = Restrictions::default();
        let listed = Restrictions {
            allowed_networks: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            ..Restrictions::default()
        };
        assert!(open.admits(None));
        assert!(listed.admits(Some("10.9.9.9".parse().unwrap())));
        assert!(!listed.admits(Some("11.0.0.1".parse().unwrap())));
        assert!(!listed.admits(None));
    }
}
