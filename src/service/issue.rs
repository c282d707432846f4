//! Create Token: what a request asks for, the checks, and minting.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::TokenService;
use super::stored_time;
use super::unconfirmed::ChangeKind;
use crate::actor::{Actor, Role};
use crate::audit::{AuditEvent, Operation};
use crate::authorization::{self, IssueDenied};
use crate::error::{IssueError, RandomSourceError, StoreError};
use crate::label::Label;
use crate::networks::{IpNetwork, MAX_ALLOWED_NETWORKS};
use crate::permissions::{MAX_TOKEN_PERMISSIONS, PermissionName};
use crate::policy::Expiry;
use crate::record::{TokenRecord, TokenSummary};
use crate::restrictions::{RateLimit, Restrictions};
use crate::scan::redact_any_format;
use crate::scope::Scope;
use crate::token::PlaintextToken;

/// How often `issue` draws a new id when the store already has the one drawn.
/// With 64-bit random ids a single collision is already unlikely; three in a
/// row mean the store is broken, not unlucky.
pub(super) const ISSUE_ATTEMPTS: usize = 3;

/// What to issue: a token for `scope`, labelled `label`.
///
/// A token gets the least privilege unless the request asks for more: the
/// role it names, or else the service's default role
/// ([`TokenService::with_default_role`]), which is [`Role::Viewer`] unless
/// configured. Never the issuer's own role by default: an owner creating a
/// token for a read-only dashboard gets a viewer token without thinking
/// about it. The issuer's role at `scope` is the ceiling either way.
///
/// Its `Debug` shows the label with any token in it masked, as the label
/// will be kept.
#[derive(Clone)]
pub struct IssueRequest {
    /// Where the token will be valid.
    pub scope: Scope,
    /// What the token is for; validated as a [`Label`].
    pub label: String,
    /// The role the token grants, at most the issuer's own at `scope`;
    /// `None` for the service's default role (by default [`Role::Viewer`]).
    pub role: Option<Role>,
    /// When the token stops verifying; by default as the service's
    /// [`ExpiryPolicy`](crate::ExpiryPolicy) says (without one: never).
    pub expiry: Expiry,
    /// The only permissions the token will have, by name; `None` for all
    /// its role grants. Checked at issue against the service's
    /// [`PermissionRegistry`](crate::PermissionRegistry).
    pub permissions: Option<Vec<String>>,
    /// The only client networks the token will be accepted from, in CIDR
    /// form; `None` for any. Checked at issue.
    pub allowed_networks: Option<Vec<String>>,
    /// The token's own rate limit; `None` for the scope's default, if the
    /// HTTP layer sets one.
    pub rate_limit: Option<RateLimit>,
}

impl IssueRequest {
    /// A request for a token at `scope` with `label`, the service's default
    /// role ([`Role::Viewer`] unless configured) and the policy's default
    /// expiry.
    pub fn new(scope: Scope, label: impl Into<String>) -> Self {
        IssueRequest {
            scope,
            label: label.into(),
            role: None,
            expiry: Expiry::PolicyDefault,
            permissions: None,
            allowed_networks: None,
            rate_limit: None,
        }
    }

    /// Asks for a token with only these permissions (at most
    /// [`MAX_TOKEN_PERMISSIONS`]), each defined by the service's
    /// [`PermissionRegistry`](crate::PermissionRegistry) and granted by the
    /// token's role. Without a [`role`](Self::role), the token gets the
    /// lowest role that grants them all (at least the service's default).
    #[must_use]
    pub fn permissions<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        // Taken only up to one past the maximum: enough to refuse too many.
        let names = names.into_iter().take(MAX_TOKEN_PERMISSIONS + 1);
        self.permissions = Some(names.map(Into::into).collect());
        self
    }

    /// Asks for a token accepted only from clients in these networks, in
    /// CIDR form (`203.0.113.0/24`, `2001:db8::/32`, or a single address),
    /// at most [`MAX_ALLOWED_NETWORKS`].
    #[must_use]
    pub fn allowed_networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let networks = networks.into_iter().take(MAX_ALLOWED_NETWORKS + 1);
        self.allowed_networks = Some(networks.map(Into::into).collect());
        self
    }

    /// Asks for a token limited to `limit`: enforced by the HTTP layer
    /// set up with `http::TokenLayer::rate_limits` (feature `axum`),
    /// and by nothing else (a service verifying tokens itself counts uses
    /// itself, from [`VerifiedToken::rate_limit`](crate::VerifiedToken::rate_limit)).
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Asks for a token granting `role` (at most the issuer's own role).
    #[must_use]
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// Asks for a token that stops verifying at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expiry = Expiry::At(at);
        self
    }

    /// Asks for a token that stops verifying `lifetime` after it is issued,
    /// by the service's clock (so tests that move a
    /// [`ManualClock`](crate::testing::ManualClock) see it move too).
    #[must_use]
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expiry = Expiry::In(lifetime);
        self
    }

    /// Asks for a token that never expires (refused where the policy limits
    /// lifetimes).
    #[must_use]
    pub fn never_expires(mut self) -> Self {
        self.expiry = Expiry::Never;
        self
    }
}

// Written out: the label is raw input, and someone may have pasted a token
// into it. It is shown as it will be kept, with any token masked.
impl fmt::Debug for IssueRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueRequest")
            .field("scope", &self.scope)
            .field("label", &redact_any_format(&self.label))
            .field("role", &self.role)
            .field("expiry", &self.expiry)
            .field("permissions", &self.permissions.as_ref().map(Vec::len))
            .field(
                "allowed_networks",
                &self.allowed_networks.as_ref().map(Vec::len),
            )
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// A token just issued: the plaintext, to show the user once, and what the
/// token list will show of it from now on. Its `Debug` shows the token
/// redacted.
pub struct IssuedToken {
    /// The token text. Hand it to the user, then drop it: it cannot be
    /// recovered later.
    pub token: PlaintextToken,
    /// The token's row in the API Tokens list.
    pub summary: TokenSummary,
}

// Written out rather than derived: a type holding a plaintext token states
// for itself what its `Debug` shows.
impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("summary", &self.summary)
            .finish()
    }
}

impl TokenService {
    /// Issues a token: checks the actor's rights and the request, stores a
    /// record with the token's keyed hash, and returns the token text once.
    ///
    /// # Errors
    ///
    /// [`IssueError`] when the actor is not an admin at the scope, the role
    /// exceeds the actor's, a permission is unknown or beyond the token's
    /// (or the issuer's) role, the allowlist is malformed, the label is
    /// invalid, the expiry is not in the future or not what the
    /// [`ExpiryPolicy`](crate::ExpiryPolicy) allows, or the store fails.
    /// Nothing is stored then.
    pub async fn issue(
        &self,
        actor: &Actor,
        request: IssueRequest,
    ) -> Result<IssuedToken, IssueError> {
        let scope = request.scope;
        // Rights first: an actor who may not issue here learns nothing from
        // the rest of the request's checks.
        if !actor.can_manage_tokens(&scope) {
            self.refused(actor, Operation::Issue, Some(&scope), None);
            return Err(IssueError::NotAllowed { scope });
        }
        let permissions = request
            .permissions
            .map(|names| self.permission_set(&names))
            .transpose()?;
        // Within what the issuer's role grants here, naming what is not.
        let held = actor.role_at(&scope).unwrap_or(Role::Viewer);
        if let Some((permission, needs)) = permissions
            .iter()
            .flatten()
            .find(|(_, needs)| !authorization::role_grants(held, *needs))
        {
            self.refused(actor, Operation::Issue, Some(&scope), None);
            return Err(IssueError::PermissionNotGranted {
                permission: permission.clone(),
                needs: *needs,
                role: held,
            });
        }
        // A token asked for by its permissions gets a role that grants them.
        let needed = permissions.iter().flatten().map(|(_, needs)| *needs).max();
        let default_role = needed.map_or(self.default_role, |needs| needs.max(self.default_role));
        let role = match authorization::issued_role(actor, &scope, request.role, default_role) {
            Ok(role) => role,
            Err(denied) => {
                self.refused(actor, Operation::Issue, Some(&scope), None);
                return Err(match denied {
                    IssueDenied::NotAdmin => IssueError::NotAllowed { scope },
                    IssueDenied::RoleTooHigh { requested, held } => {
                        IssueError::RoleTooHigh { requested, held }
                    }
                });
            }
        };
        if let Some((permission, needs)) = permissions
            .iter()
            .flatten()
            .find(|(_, needs)| !authorization::role_grants(role, *needs))
        {
            return Err(IssueError::PermissionNotGranted {
                permission: permission.clone(),
                needs: *needs,
                role,
            });
        }
        let restrictions = Restrictions {
            permissions: permissions.map(|set| set.into_iter().map(|(name, _)| name).collect()),
            allowed_networks: request
                .allowed_networks
                .map(|networks| allowlist(&networks))
                .transpose()?,
            rate_limit: request.rate_limit,
        };
        let label = self.label(&request.label)?;
        let now = self.now();
        let expiry = match request.expiry {
            Expiry::At(at) => Expiry::At(stored_time(at).ok_or(IssueError::ExpiryOutOfRange)?),
            other => other,
        };
        let expires_at = self.policy.resolve(scope.kind(), expiry, now)?;
        let expires_at = expires_at
            .map(|at| stored_time(at).ok_or(IssueError::ExpiryOutOfRange))
            .transpose()?;
        // A lifetime under a microsecond ends, as kept, when it starts.
        if expires_at.is_some_and(|at| at <= now) {
            return Err(IssueError::ExpiryNotInFuture);
        }

        let mut attempt = 1;
        loop {
            let (token, mut record) = self.mint(actor, &scope, role, &label, expires_at, now)?;
            record.restrictions = restrictions.clone();
            let summary = self.summary(&record, now);
            let event = AuditEvent::Issued {
                at: now,
                actor: actor.id.clone(),
                token: summary.id,
                scope: summary.scope.clone(),
                role,
                label: summary.label.clone(),
                restrictions: restrictions.clone(),
            };
            match self
                .store
                .insert(record)
                .await
                .inspect_err(|_| self.store_failed("insert"))
            {
                Ok(()) => {
                    self.audit.send(event);
                    return Ok(IssuedToken { token, summary });
                }
                Err(StoreError::AlreadyExists { .. }) if attempt < ISSUE_ATTEMPTS => attempt += 1,
                Err(error) => {
                    // The token text is lost with this answer, but if the
                    // store kept the record, the audit trail must say so.
                    let kind = ChangeKind::Insert { id: summary.id };
                    self.hold_if_unknown(&error, kind, event);
                    return Err(error.into());
                }
            }
        }
    }

    /// The permission set `names` asks for, sorted without repeats, each
    /// with the lowest role that grants it.
    fn permission_set(&self, names: &[String]) -> Result<Vec<(PermissionName, Role)>, IssueError> {
        if names.is_empty() {
            return Err(IssueError::EmptyPermissionSet);
        }
        if names.len() > MAX_TOKEN_PERMISSIONS {
            return Err(IssueError::TooManyPermissions {
                max: MAX_TOKEN_PERMISSIONS,
            });
        }
        let mut set = names
            .iter()
            .map(|name| {
                let permission = self
                    .permissions
                    .permission(name)
                    .map_err(IssueError::InvalidPermission)?;
                Ok((permission.name().clone(), permission.granted_from()))
            })
            .collect::<Result<Vec<_>, IssueError>>()?;
        set.sort();
        set.dedup();
        Ok(set)
    }

    /// A fresh token for `scope` and the record to store for it.
    pub(super) fn mint(
        &self,
        actor: &Actor,
        scope: &Scope,
        role: Role,
        label: &Label,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(PlaintextToken, TokenRecord), RandomSourceError> {
        let token = self.format.generate(scope.kind())?;
        let (key_id, key) = self.keys.current();
        let record = TokenRecord {
            id: token.id(),
            scope: scope.clone(),
            role,
            label: label.clone(),
            key_id,
            digest: key.digest(token.hashed_part()),
            created_at: now,
            created_by: actor.id.clone(),
            expires_at,
            revoked: None,
            last_used_at: None,
            rotated_from: None,
            replaced_by: None,
            restrictions: Restrictions::default(),
            disabled: None,
        };
        Ok((token, record))
    }
}

/// The allowlist `networks` asks for, in the order given, without repeats.
fn allowlist(networks: &[String]) -> Result<Vec<IpNetwork>, IssueError> {
    if networks.is_empty() {
        return Err(IssueError::EmptyAllowlist);
    }
    if networks.len() > MAX_ALLOWED_NETWORKS {
        return Err(IssueError::TooManyNetworks {
            max: MAX_ALLOWED_NETWORKS,
        });
    }
    let mut allowlist: Vec<IpNetwork> = Vec::with_capacity(networks.len());
    for (position, text) in networks.iter().enumerate() {
        let network = text
            .parse()
            .map_err(|error| IssueError::InvalidNetwork { position, error })?;
        if !allowlist.contains(&network) {
            allowlist.push(network);
        }
    }
    Ok(allowlist)
}
