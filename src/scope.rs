//! Where a token (or a grant) applies: a whole organization, or one domain of it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{DomainId, OrganizationId};

/// The part of the platform a token or a grant applies to.
///
/// A domain always belongs to an organization, so a domain scope carries its
/// organization's id and [`covers`](Scope::covers) needs no lookup.
///
/// ```
/// use api_tokens::{DomainId, OrganizationId, Scope};
///
/// let acme = OrganizationId::new("acme")?;
/// let org = Scope::organization(acme.clone());
/// let shop = Scope::domain(acme, DomainId::new("shop")?);
/// assert!(org.covers(&shop));
/// assert!(!shop.covers(&org));
/// # Ok::<(), api_tokens::IdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// The whole organization, its domains included.
    Organization {
        /// The organization.
        org: OrganizationId,
    },
    /// One domain of an organization, and nothing else.
    Domain {
        /// The organization that owns the domain.
        org: OrganizationId,
        /// The domain.
        domain: DomainId,
    },
}

/// Which of the two [`Scope`] shapes a scope has. Tokens carry it as one letter
/// so that people and secret scanners can tell organization tokens from domain
/// tokens at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// [`Scope::Organization`].
    Organization,
    /// [`Scope::Domain`].
    Domain,
}

impl Scope {
    /// The scope of a whole organization.
    pub fn organization(org: OrganizationId) -> Self {
        Scope::Organization { org }
    }

    /// The scope of one domain of `org`.
    pub fn domain(org: OrganizationId, domain: DomainId) -> Self {
        Scope::Domain { org, domain }
    }

    /// Whether this is an organization or a domain scope.
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Organization { .. } => ScopeKind::Organization,
            Scope::Domain { .. } => ScopeKind::Domain,
        }
    }

    /// The organization this scope belongs to (for a domain, its owner).
    pub fn org(&self) -> &OrganizationId {
        match self {
            Scope::Organization { org } | Scope::Domain { org, .. } => org,
        }
    }

    /// The domain, for a domain scope.
    pub fn domain_id(&self) -> Option<&DomainId> {
        match self {
            Scope::Organization { .. } => None,
            Scope::Domain { domain, .. } => Some(domain),
        }
    }

    /// Whether something valid at `self` is also valid at `other`: an
    /// organization scope covers itself and every domain of that organization;
    /// a domain scope covers only itself.
    pub fn covers(&self, other: &Scope) -> bool {
        match self {
            Scope::Organization { org } => other.org() == org,
            Scope::Domain { .. } => self == other,
        }
    }
}

impl fmt::Display for Scope {
    /// `organization acme` or `domain acme/shop`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Organization { org } => write!(f, "organization {org}"),
            Scope::Domain { org, domain } => write!(f, "domain {org}/{domain}"),
        }
    }
}

impl fmt::Display for ScopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            ScopeKind::Organization => "organization",
            ScopeKind::Domain => "domain",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> Scope {
        Scope::organization(OrganizationId::new(id).unwrap())
    }

    fn domain(org: &str, domain: &str) -> Scope {
        Scope::domain(
            OrganizationId::new(org).unwrap(),
            DomainId::new(domain).unwrap(),
        )
    }

    #[test]
    fn organization_covers_itself_and_its_domains_only() {
        assert!(org("acme").covers(&org("acme")));
        assert!(org("acme").covers(&domain("acme", "shop")));
        assert!(!org("acme").covers(&org("globex")));
        assert!(!org("acme").covers(&domain("globex", "shop")));
    }

    #[test]
    fn domain_covers_only_itself() {
        assert!(domain("acme", "shop").covers(&domain("acme", "shop")));
        assert!(!domain("acme", "shop").covers(&domain("acme", "blog")));
        assert!(!domain("acme", "shop").covers(&org("acme")));
        // The same domain id under another organization is another domain.
        assert!(!domain("acme", "shop").covers(&domain("globex", "shop")));
    }

    #[test]
    fn serializes_with_a_kind_tag() {
        let scope = domain("acme", "shop");
        let json = serde_json::to_string(&scope).unwrap();
        assert_eq!(json, r#"{"kind":"domain","org":"acme","domain":"shop"}"#);
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        assert_eq!(scope.to_string(), "domain acme/shop");
    }
}
