//! How long tokens live: the service's expiry policy, and what an issue
//! request asks for.

use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::signed;

use crate::error::{IssueError, PolicyError};
use crate::scope::ScopeKind;

/// The expiry an [`IssueRequest`](crate::IssueRequest) asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiry {
    /// Whatever the service's [`ExpiryPolicy`] gives a new token.
    #[default]
    PolicyDefault,
    /// Never, if the policy allows tokens of this scope kind to live forever.
    Never,
    /// At this instant, if the policy allows a lifetime that long.
    At(OffsetDateTime),
    /// This long after the service's clock reads at issue, if the policy
    /// allows a lifetime that long.
    In(Duration),
}

/// A service's rules for token lifetimes: a default lifetime for new tokens,
/// and a maximum per scope kind (e.g. organization tokens at most 90 days).
/// A kind with a maximum has no never-expiring tokens.
///
/// The default policy sets nothing: tokens never expire unless a request asks.
///
/// ```
/// use api_tokens::{ExpiryPolicy, ScopeKind};
/// use std::time::Duration;
///
/// const DAY: Duration = Duration::from_secs(24 * 3600);
/// let policy = ExpiryPolicy::default()
///     .with_default_lifetime(30 * DAY)?
///     .with_max_lifetime(ScopeKind::Organization, 90 * DAY)?;
/// # Ok::<(), api_tokens::PolicyError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiryPolicy {
    default_lifetime: Option<Duration>,
    max_organization_lifetime: Option<Duration>,
    max_domain_lifetime: Option<Duration>,
    extending_allowed: bool,
}

impl ExpiryPolicy {
    /// The same policy, giving tokens issued without an expiry this lifetime
    /// (capped by the kind's maximum).
    ///
    /// # Errors
    ///
    /// [`PolicyError`] for a lifetime that is not positive or longer than
    /// [`MAX_LIFETIME`].
    pub fn with_default_lifetime(mut self, lifetime: Duration) -> Result<Self, PolicyError> {
        self.default_lifetime = Some(positive(lifetime)?);
        Ok(self)
    }

    /// The same policy, refusing tokens of `kind` that would live longer than
    /// `lifetime`, and refusing never-expiring ones.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] for a lifetime that is not positive or longer than
    /// [`MAX_LIFETIME`].
    pub fn with_max_lifetime(
        mut self,
        kind: ScopeKind,
        lifetime: Duration,
    ) -> Result<Self, PolicyError> {
        let lifetime = Some(positive(lifetime)?);
        match kind {
            ScopeKind::Organization => self.max_organization_lifetime = lifetime,
            ScopeKind::Domain => self.max_domain_lifetime = lifetime,
        }
        Ok(self)
    }

    /// The same policy, letting an [edit](crate::TokenService::edit) push a
    /// token's expiry later (still within the kind's maximum, counted from
    /// the edit). By default an edit may only bring an expiry forward: a
    /// token then never lives longer than its issuer chose.
    #[must_use]
    pub fn allow_extending(mut self) -> Self {
        self.extending_allowed = true;
        self
    }

    /// Whether an edit may push a token's expiry later.
    pub fn extending_allowed(&self) -> bool {
        self.extending_allowed
    }

    /// The longest a token of `kind` may live, if limited.
    pub fn max_lifetime(&self, kind: ScopeKind) -> Option<Duration> {
        match kind {
            ScopeKind::Organization => self.max_organization_lifetime,
            ScopeKind::Domain => self.max_domain_lifetime,
        }
    }

    /// The lifetime a token gets when its request names none, if any: the
    /// default lifetime, capped by the kind's maximum, or the maximum itself
    /// when there is no default.
    pub fn default_lifetime(&self, kind: ScopeKind) -> Option<Duration> {
        match (self.default_lifetime, self.max_lifetime(kind)) {
            (Some(default), Some(max)) => Some(default.min(max)),
            (default, max) => default.or(max),
        }
    }

    /// When a token of `kind` asking for `expiry`, issued at `now`, expires.
    pub(crate) fn resolve(
        &self,
        kind: ScopeKind,
        expiry: Expiry,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, IssueError> {
        let max = self.max_lifetime(kind);
        let at = match expiry {
            Expiry::PolicyDefault => match self.default_lifetime(kind) {
                None => return Ok(None),
                Some(lifetime) => now.checked_add(signed(lifetime)),
            },
            Expiry::Never => {
                return match max {
                    Some(max) => Err(IssueError::MustExpire { kind, max }),
                    None => Ok(None),
                };
            }
            Expiry::At(at) => Some(at),
            Expiry::In(lifetime) if lifetime.is_zero() => {
                return Err(IssueError::ExpiryNotInFuture);
            }
            Expiry::In(lifetime) => now.checked_add(signed(lifetime)),
        };
        let at = at.ok_or(IssueError::ExpiryOutOfRange)?;
        if at <= now {
            return Err(IssueError::ExpiryNotInFuture);
        }
        if let Some(max) = max
            && at - now > max
        {
            return Err(IssueError::LifetimeTooLong { kind, max });
        }
        Ok(Some(at))
    }
}

/// The longest lifetime a policy may set: a century, past which "expires"
/// means nothing and date arithmetic nears its limits.
pub const MAX_LIFETIME: Duration = Duration::from_secs(36_525 * 24 * 3600);

fn positive(lifetime: Duration) -> Result<Duration, PolicyError> {
    if lifetime.is_zero() {
        Err(PolicyError::NotPositive)
    } else if lifetime > MAX_LIFETIME {
        Err(PolicyError::TooLong)
    } else {
        Ok(lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    #[test]
    fn the_default_is_capped_by_the_kinds_maximum() {
        let policy = ExpiryPolicy::default()
            .with_default_lifetime(365 * DAY)
            .unwrap()
            .with_max_lifetime(ScopeKind::Organization, 90 * DAY)
            .unwrap();
        assert_eq!(
            policy.default_lifetime(ScopeKind::Organization),
            Some(90 * DAY)
        );
        assert_eq!(policy.default_lifetime(ScopeKind::Domain), Some(365 * DAY));
        assert_eq!(
            policy
                .resolve(ScopeKind::Organization, Expiry::PolicyDefault, NOW)
                .unwrap(),
            Some(NOW + 90 * DAY)
        );
    }

    #[test]
    fn lifetimes_must_be_positive() {
        for (bad, error) in [
            (Duration::ZERO, PolicyError::NotPositive),
            (MAX_LIFETIME + Duration::from_secs(1), PolicyError::TooLong),
            (Duration::MAX, PolicyError::TooLong),
        ] {
            assert_eq!(
                ExpiryPolicy::default().with_default_lifetime(bad),
                Err(error)
            );
            assert_eq!(
                ExpiryPolicy::default().with_max_lifetime(ScopeKind::Domain, bad),
                Err(error)
            );
        }
        assert!(
            ExpiryPolicy::default()
                .with_default_lifetime(MAX_LIFETIME)
                .is_ok()
        );
    }
}
