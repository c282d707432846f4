//! Who acts, and with what rights: roles, grants and actors.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InvalidRole;
use crate::ids::ActorId;
use crate::scope::Scope;

/// An access level. Roles are ordered: `Viewer < Editor < Admin < Owner`, and
/// a higher role may do everything a lower one may.
///
/// Managing tokens (issue, list, revoke) needs at least [`Role::Admin`] at the
/// token's scope. A token carries a role too, which the embedding service
/// checks with [`VerifiedToken::allows`](crate::VerifiedToken::allows); a
/// token's role never exceeds its issuer's role at the token's scope, so only
/// an owner can issue an owner token.
///
/// Its text form is one lowercase word, `viewer`, `editor`, `admin` or
/// `owner`: `Display` writes it, `FromStr` reads exactly it, and serde uses
/// the same string.
///
/// ```
/// use api_tokens::Role;
///
/// let role: Role = "editor".parse()?;
/// assert_eq!(role, Role::Editor);
/// assert_eq!(role.to_string(), "editor");
/// assert!("Editor".parse::<Role>().is_err());
/// # Ok::<(), api_tokens::InvalidRole>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May read.
    Viewer,
    /// May read and change.
    Editor,
    /// May also manage the scope, its API tokens included.
    Admin,
    /// May do everything an admin may, and what the platform reserves for
    /// owners (billing, deleting the organization, …).
    Owner,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Admin, Role::Owner];

    /// The role's text form (what `Display` writes and serde uses).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = InvalidRole;

    /// Reads exactly what `Display` writes: lowercase, no spaces.
    fn from_str(text: &str) -> Result<Self, InvalidRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or(InvalidRole)
    }
}

/// A role held at a scope. "Organization Admin" is `Admin` granted at an
/// organization scope; "Domain Admin" is `Admin` granted at a domain scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Where the role applies (and, for an organization, in all its domains).
    pub scope: Scope,
    /// The role held there.
    pub role: Role,
}

/// The person or system performing a management operation, with the grants
/// the embedding service resolved for it (from its own sessions, SSO, …).
///
/// ```
/// use api_tokens::{Actor, ActorId, DomainId, OrganizationId, Role, Scope};
///
/// let acme = OrganizationId::new("acme")?;
/// let shop = Scope::domain(acme.clone(), DomainId::new("shop")?);
/// let alice = Actor::new(ActorId::new("alice")?).with_grant(Scope::organization(acme), Role::Admin);
/// assert_eq!(alice.role_at(&shop), Some(Role::Admin));
/// assert!(alice.can_manage_tokens(&shop));
/// # Ok::<(), api_tokens::IdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Who this is; recorded as the creator or revoker of tokens.
    pub id: ActorId,
    /// Everything the actor holds.
    pub grants: Vec<Grant>,
}

impl Actor {
    /// An actor with no grants yet.
    pub fn new(id: ActorId) -> Self {
        Actor {
            id,
            grants: Vec::new(),
        }
    }

    /// Adds a grant of `role` at `scope`.
    #[must_use]
    pub fn with_grant(mut self, scope: Scope, role: Role) -> Self {
        self.grants.push(Grant { scope, role });
        self
    }

    /// The actor's role at `scope`: the highest role among the grants that
    /// cover it, or `None` if no grant does.
    pub fn role_at(&self, scope: &Scope) -> Option<Role> {
        self.grants
            .iter()
            .filter(|grant| grant.scope.covers(scope))
            .map(|grant| grant.role)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DomainId, OrganizationId};

    #[test]
    fn role_at_is_the_highest_covering_grant() {
        let acme = OrganizationId::new("acme").unwrap();
        let org = Scope::organization(acme.clone());
        let shop = Scope::domain(acme.clone(), DomainId::new("shop").unwrap());
        let blog = Scope::domain(acme, DomainId::new("blog").unwrap());
        let bob = Actor::new(ActorId::new("bob").unwrap())
            .with_grant(org.clone(), Role::Viewer)
            .with_grant(shop.clone(), Role::Admin);

        assert_eq!(bob.role_at(&org), Some(Role::Viewer));
        assert_eq!(bob.role_at(&shop), Some(Role::Admin));
        assert_eq!(bob.role_at(&blog), Some(Role::Viewer));
    }

    #[test]
    fn text_form_display_parse_and_serde_agree() {
        for role in Role::ALL {
            let text = role.to_string();
            assert_eq!(text.parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Role>(&format!("\"{text}\"")).unwrap(),
                role
            );
        }
        for bad in [
            "",
            "Admin",
            "ADMIN",
            " admin",
            "admin ",
            "superuser",
            "admi",
        ] {
            assert_eq!(bad.parse::<Role>(), Err(InvalidRole), "{bad:?}");
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Editor);
        assert!(Role::Editor < Role::Admin);
        assert!(Role::Admin < Role::Owner);
    }
}
