//! Who may do what: every authorization rule of the crate, in one file.
//!
//! **Managing tokens.** Issuing, listing, looking up, revoking and rotating
//! tokens at a scope, and revoking a whole scope, need [`Role::Admin`] (or
//! higher) there. An actor's role at a scope is the highest role of its
//! grants that cover it ([`Actor::role_at`]), so an organization admin
//! manages the organization's tokens and those of each of its domains, a
//! domain admin only that domain's.
//!
//! **Addressing a token.** A call that names a token also names the scope
//! the caller addresses (the `{domain}` of `/orgs/{org}/domains/{domain}/tokens/{id}`).
//! The token must live at exactly that scope: an organization's address does
//! not reach its domains' tokens, and one domain's address never reaches a
//! sibling's. A token outside the addressed scope, one the actor may not
//! manage, and one that does not exist are one answer (not found), for the
//! same work, so that no answer tells another tenant's token from a missing
//! one. The stores enforce the scope again inside their write queries.
//!
//! **Roles of tokens.** A token's role is at most its issuer's role at the
//! token's scope. A request that names no role gets the service's default
//! role ([`Role::Viewer`] unless configured), never the issuer's own by
//! default; a default above the issuer's role is refused, not clipped.
//! Rotation mints a successor with the old token's role, so only an actor
//! who holds that role may rotate it.
//!
//! **Pausing and editing.** Disabling a token and editing its label or
//! bringing its expiry forward take power away, so they need what revoking
//! needs. Enabling a token and pushing its expiry later give power back,
//! so they also need the token's own role, as rotation does: an admin
//! cannot resume an owner's token that an owner paused.
//!
//! **Using a token.** A verified token allows an action at a scope when its
//! own scope covers that scope (an organization token works for every
//! domain of its organization) and it meets the [`Requirement`]:
//! [`VerifiedToken::allows`], and `require` in the HTTP layer.
//!
//! - A [`Role`]: the token's role is at least that one, and the token is
//!   not narrowed to a permission set. A narrowed token passes no plain
//!   role check: narrowing that a route guarded by role alone ignored
//!   would narrow nothing.
//! - A [`Permission`]: the token's role grants it (is at least the
//!   permission's [`granted_from`](Permission::granted_from)), and the
//!   token's permission set, if it has one, holds it. A permission the
//!   registry no longer defines has no [`Permission`] handle, so it grants
//!   nothing; a token carrying its name keeps the rest of its set.
//!
//! **Narrowing at issue.** A token's permission set must lie within what
//! its role grants at its scope (its role is at most its issuer's), and
//! every name must be one the registry defines.
//!
//! **Operators.** Background jobs act through
//! [`Operator`](crate::Operator), which no rule here limits: it is obtained
//! deliberately, by name, and never from a request.

use std::fmt;

use crate::actor::{Actor, Role};
use crate::permissions::Permission;
use crate::scope::Scope;
use crate::service::VerifiedToken;

impl Actor {
    /// Whether the actor may issue, list and revoke tokens at `scope`
    /// (it needs at least [`Role::Admin`] there).
    pub fn can_manage_tokens(&self, scope: &Scope) -> bool {
        self.role_at(scope).is_some_and(|role| role >= Role::Admin)
    }
}

impl VerifiedToken {
    /// Whether the token may act at `scope` as `required` asks: its scope
    /// covers `scope` (an organization token covers the organization's
    /// domains), and it meets the [`Requirement`], a [`Role`] or a
    /// [`Permission`] (the module docs give both rules).
    ///
    /// ```
    /// # use api_tokens::{PermissionRegistry, Role, Scope, VerifiedToken};
    /// fn may_send(token: &VerifiedToken, registry: &PermissionRegistry, scope: &Scope) -> bool {
    ///     let send = registry.permission("notifications:send").expect("defined at start-up");
    ///     token.allows(scope, &send)
    /// }
    /// fn may_read(token: &VerifiedToken, scope: &Scope) -> bool {
    ///     token.allows(scope, Role::Viewer)
    /// }
    /// ```
    pub fn allows(&self, scope: &Scope, required: impl Requirement) -> bool {
        self.scope().covers(scope) && required.met_by(self)
    }
}

/// What a request needs of a token besides its scope: a [`Role`] or a
/// [`Permission`] (by value or by reference). Sealed: the rules live here.
pub trait Requirement: sealed::Sealed + fmt::Display {}

impl Requirement for Role {}
impl Requirement for Permission {}
impl<T: Requirement + ?Sized> Requirement for &T {}

mod sealed {
    use super::{Permission, Role, VerifiedToken, role_grants};

    /// The check behind [`Requirement`](super::Requirement), out of users' reach.
    pub trait Sealed {
        fn met_by(&self, token: &VerifiedToken) -> bool;
    }

    impl Sealed for Role {
        fn met_by(&self, token: &VerifiedToken) -> bool {
            token.permissions().is_none() && role_grants(token.role(), *self)
        }
    }

    impl Sealed for Permission {
        fn met_by(&self, token: &VerifiedToken) -> bool {
            role_grants(token.role(), self.granted_from()) && token.holds(self.name())
        }
    }

    impl<T: Sealed + ?Sized> Sealed for &T {
        fn met_by(&self, token: &VerifiedToken) -> bool {
            (**self).met_by(token)
        }
    }
}

/// Why an actor may not issue a token.
pub(crate) enum IssueDenied {
    /// The actor is not an admin at the scope.
    NotAdmin,
    /// The role asked for (or the default) is above the actor's own there.
    RoleTooHigh { requested: Role, held: Role },
}

/// The role a token issued by `actor` at `scope` gets: `requested`, or else
/// `default`, but never above the actor's own role there.
pub(crate) fn issued_role(
    actor: &Actor,
    scope: &Scope,
    requested: Option<Role>,
    default: Role,
) -> Result<Role, IssueDenied> {
    let held = match actor.role_at(scope) {
        Some(held) if held >= Role::Admin => held,
        _ => return Err(IssueDenied::NotAdmin),
    };
    let role = requested.unwrap_or(default);
    if role > held {
        return Err(IssueDenied::RoleTooHigh {
            requested: role,
            held,
        });
    }
    Ok(role)
}

/// Whether a token of `role` may use a permission granted from `needs`:
/// the permission's role or a higher one.
pub(crate) fn role_grants(role: Role, needs: Role) -> bool {
    role >= needs
}

/// Whether `actor`, addressing `addressed`, reaches a token that lives at
/// `token_scope`: the token must live at exactly that scope, and the actor
/// must manage it.
pub(crate) fn reaches(actor: &Actor, addressed: &Scope, token_scope: &Scope) -> bool {
    token_scope == addressed && actor.can_manage_tokens(addressed)
}

/// Whether `actor` may rotate a token of `role` at `scope`: the successor
/// gets the same role, which the actor must hold (an admin rotating an
/// owner's token would otherwise mint an owner token). `Err` holds the
/// actor's role there, for the error.
pub(crate) fn may_rotate(actor: &Actor, scope: &Scope, role: Role) -> Result<(), Role> {
    match actor.role_at(scope) {
        Some(held) if held >= role => Ok(()),
        held => Err(held.unwrap_or(role)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ActorId, DomainId, OrganizationId};

    fn org(id: &str) -> Scope {
        Scope::organization(OrganizationId::new(id).unwrap())
    }

    fn domain(org: &str, domain: &str) -> Scope {
        Scope::domain(
            OrganizationId::new(org).unwrap(),
            DomainId::new(domain).unwrap(),
        )
    }

    fn actor() -> Actor {
        Actor::new(ActorId::new("alice").unwrap())
    }

    #[test]
    fn an_organization_admin_manages_its_domains_a_domain_admin_only_its_own() {
        let org_admin = actor().with_grant(org("acme"), Role::Admin);
        let shop_admin = actor()
            .with_grant(org("acme"), Role::Editor)
            .with_grant(domain("acme", "shop"), Role::Admin);

        assert!(org_admin.can_manage_tokens(&org("acme")));
        assert!(org_admin.can_manage_tokens(&domain("acme", "shop")));
        assert!(!org_admin.can_manage_tokens(&org("globex")));
        assert!(shop_admin.can_manage_tokens(&domain("acme", "shop")));
        assert!(!shop_admin.can_manage_tokens(&domain("acme", "blog")));
        assert!(!shop_admin.can_manage_tokens(&org("acme")));
    }

    #[test]
    fn a_token_is_reached_only_at_its_own_scope() {
        let admin = actor()
            .with_grant(org("acme"), Role::Admin)
            .with_grant(domain("globex", "shop"), Role::Admin);
        let shop = domain("acme", "shop");

        assert!(reaches(&admin, &shop, &shop));
        // Through the organization, a sibling, or another tenant: no.
        assert!(!reaches(&admin, &org("acme"), &shop));
        assert!(!reaches(&admin, &domain("acme", "blog"), &shop));
        assert!(!reaches(&admin, &domain("globex", "shop"), &shop));
        // The right address, but not the actor's to manage: no.
        assert!(!reaches(&actor(), &shop, &shop));
    }

    #[test]
    fn a_token_role_never_exceeds_its_issuer_and_defaults_low() {
        let admin = actor().with_grant(org("acme"), Role::Admin);
        let acme = org("acme");

        assert!(matches!(
            issued_role(&admin, &acme, None, Role::Viewer),
            Ok(Role::Viewer)
        ));
        assert!(matches!(
            issued_role(&admin, &acme, Some(Role::Admin), Role::Viewer),
            Ok(Role::Admin)
        ));
        assert!(matches!(
            issued_role(&admin, &acme, Some(Role::Owner), Role::Viewer),
            Err(IssueDenied::RoleTooHigh {
                requested: Role::Owner,
                held: Role::Admin
            })
        ));
        // A default above the issuer is refused, not clipped.
        assert!(matches!(
            issued_role(&admin, &acme, None, Role::Owner),
            Err(IssueDenied::RoleTooHigh { .. })
        ));
        let editor = actor().with_grant(org("acme"), Role::Editor);
        assert!(matches!(
            issued_role(&editor, &acme, Some(Role::Viewer), Role::Viewer),
            Err(IssueDenied::NotAdmin)
        ));
    }

    #[test]
    fn only_a_holder_of_the_role_rotates_the_token() {
        let admin = actor().with_grant(org("acme"), Role::Admin);
        assert!(may_rotate(&admin, &org("acme"), Role::Admin).is_ok());
        assert_eq!(
            may_rotate(&admin, &org("acme"), Role::Owner),
            Err(Role::Admin)
        );
    }
}
