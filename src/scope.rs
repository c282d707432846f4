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
    /// `organization acme` or `domain acme/shop`. The `/` between the two
    /// ids is the only one shown: a `/` inside an id is written `%2F` (and
    /// a `%` as `%25`), so organization `a/b` with domain `c` (`domain
    /// a%2Fb/c`) never reads like organization `a` with domain `b/c`
    /// (`domain a/b%2Fc`) in a log line or an alert.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Organization { org } => write!(f, "organization {}", Escaped(org.as_str())),
            Scope::Domain { org, domain } => write!(
                f,
                "domain {}/{}",
                Escaped(org.as_str()),
                Escaped(domain.as_str())
            ),
        }
    }
}

/// An id as a scope's text shows it: `%` and `/` percent-encoded, every
/// other character (printable ASCII, as ids are) as it is.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.0.split_inclusive(['%', '/']) {
            match part.as_bytes().last() {
                Some(b'%') => write!(f, "{}%25", &part[..part.len() - 1])?,
                Some(b'/') => write!(f, "{}%2F", &part[..part.len() - 1])?,
                _ => f.write_str(part)?,
            }
        }
        Ok(())
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

    #[test]
    fn display_tells_apart_scopes_whose_ids_hold_the_separator() {
        let left = domain("a/b", "c");
        let right = domain("a", "b/c");
        assert_ne!(left.to_string(), right.to_string());
        assert_eq!(left.to_string(), "domain a%2Fb/c");
        assert_eq!(right.to_string(), "domain a/b%2Fc");
        // An escape written by hand stays apart from the character it names.
        assert_ne!(
            domain("a%2Fb", "c").to_string(),
            domain("a/b", "c").to_string()
        );
        assert_eq!(domain("a%2Fb", "c").to_string(), "domain a%252Fb/c");
        assert_eq!(org("50%/off").to_string(), "organization 50%25%2Foff");
    }
}
