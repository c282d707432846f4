//! Where a token (or a grant) applies: a whole organization, or one domain of it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ScopeParseError;
use crate::ids::{DomainId, MAX_ID_LEN, OrganizationId};

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
///
/// # Text form
///
/// `organization <org>` or `domain <org>/<domain>`, with a `%` inside an id
/// written `%25` and a `/` inside an id written `%2F` (see
/// [`Display`](#impl-Display-for-Scope)). `FromStr` reads exactly that text
/// back, for every valid scope, and serde writes and reads the same string,
/// so a scope looks alike in a log line, a JSON body and a configuration
/// file:
///
/// ```
/// use api_tokens::{DomainId, OrganizationId, Scope};
///
/// let scope = Scope::domain(OrganizationId::new("a/b")?, DomainId::new("50%")?);
/// assert_eq!(scope.to_string(), "domain a%2Fb/50%25");
/// assert_eq!("domain a%2Fb/50%25".parse::<Scope>()?, scope);
/// assert_eq!(serde_json::to_string(&scope)?, r#""domain a%2Fb/50%25""#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// The longest text of a scope: `domain `, two ids whose every byte is
/// escaped to three, and the `/` between them.
const MAX_SCOPE_TEXT: usize = "domain ".len() + 3 * MAX_ID_LEN + 1 + 3 * MAX_ID_LEN;

impl FromStr for Scope {
    type Err = ScopeParseError;

    /// Reads exactly the text `Display` writes: `organization <org>` or
    /// `domain <org>/<domain>`, ids escaped as `Display` escapes them
    /// (`%25` and `%2F`, uppercase). Any other `%`, or a second `/`, is
    /// refused, so every scope has one text.
    fn from_str(text: &str) -> Result<Self, ScopeParseError> {
        if text.len() > MAX_SCOPE_TEXT {
            return Err(ScopeParseError::TooLong {
                max: MAX_SCOPE_TEXT,
                found: text.len(),
            });
        }
        if let Some(org) = text.strip_prefix("organization ") {
            let start = text.len() - org.len();
            if let Some(slash) = org.find('/') {
                return Err(ScopeParseError::UnexpectedSeparator {
                    position: start + slash,
                });
            }
            let org = unescape(org, start)?;
            let org = OrganizationId::new(&org).map_err(ScopeParseError::Organization)?;
            return Ok(Scope::Organization { org });
        }
        let Some(ids) = text.strip_prefix("domain ") else {
            return Err(ScopeParseError::UnknownKind);
        };
        let start = text.len() - ids.len();
        let Some((org, domain)) = ids.split_once('/') else {
            return Err(ScopeParseError::MissingSeparator);
        };
        let domain_start = start + org.len() + 1;
        if let Some(slash) = domain.find('/') {
            return Err(ScopeParseError::UnexpectedSeparator {
                position: domain_start + slash,
            });
        }
        let org = unescape(org, start)?;
        let domain = unescape(domain, domain_start)?;
        Ok(Scope::Domain {
            org: OrganizationId::new(&org).map_err(ScopeParseError::Organization)?,
            domain: DomainId::new(&domain).map_err(ScopeParseError::Domain)?,
        })
    }
}

/// An id from its escaped text: `%25` becomes `%` and `%2F` becomes `/`;
/// any other `%` is an error at its byte offset (`start` is the text's
/// offset in the whole scope). Everything else is left to the id's own
/// rules.
fn unescape(text: &str, start: usize) -> Result<String, ScopeParseError> {
    let mut id = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(percent) = rest.find('%') {
        id.push_str(&rest[..percent]);
        let escape = rest.get(percent..percent + 3);
        id.push(match escape {
            Some("%25") => '%',
            Some("%2F") => '/',
            _ => {
                return Err(ScopeParseError::InvalidEscape {
                    position: start + (text.len() - rest.len()) + percent,
                });
            }
        });
        rest = &rest[percent + 3..];
    }
    id.push_str(rest);
    Ok(id)
}

impl Serialize for Scope {
    /// The scope's text, as `Display` writes it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    /// The scope's text, as `FromStr` reads it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::deserialize_from_str(
            deserializer,
            "a scope: `organization <org>` or `domain <org>/<domain>`",
        )
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
    use crate::error::IdError;

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
    fn serializes_as_its_text() {
        let scope = domain("acme", "shop");
        let json = serde_json::to_string(&scope).unwrap();
        assert_eq!(json, r#""domain acme/shop""#);
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        assert_eq!(scope.to_string(), "domain acme/shop");
        let json = serde_json::to_string(&org("acme")).unwrap();
        assert_eq!(json, r#""organization acme""#);
        // The tagged form of earlier versions is refused, as is any non-string.
        for old in [
            r#"{"kind":"domain","org":"acme","domain":"shop"}"#,
            "42",
            "null",
        ] {
            assert!(serde_json::from_str::<Scope>(old).is_err(), "{old}");
        }
    }

    #[test]
    fn parses_what_display_writes() {
        for scope in [
            org("acme"),
            domain("acme", "shop"),
            domain("a/b", "c"),
            domain("a", "b/c"),
            domain("a%2Fb", "c"),
            org("50%/off"),
            org("%"),
            domain("/", "%"),
            org(&"/".repeat(MAX_ID_LEN)),
            domain(&"%".repeat(MAX_ID_LEN), &"/".repeat(MAX_ID_LEN)),
        ] {
            let text = scope.to_string();
            assert!(text.len() <= MAX_SCOPE_TEXT);
            assert_eq!(text.parse::<Scope>(), Ok(scope), "{text}");
        }
    }

    #[test]
    fn refuses_text_display_never_writes() {
        use ScopeParseError as E;
        let cases: &[(&str, ScopeParseError)] = &[
            ("", E::UnknownKind),
            ("acme", E::UnknownKind),
            ("Organization acme", E::UnknownKind),
            ("organization", E::UnknownKind),
            (
                "organization  acme",
                E::Organization(IdError::NotPrintable {
                    what: "an organization id",
                    position: 0,
                }),
            ),
            ("org acme", E::UnknownKind),
            ("domain acme", E::MissingSeparator),
            (
                "domain acme/shop/x",
                E::UnexpectedSeparator { position: 16 },
            ),
            ("organization a/b", E::UnexpectedSeparator { position: 14 }),
            ("organization a%2fb", E::InvalidEscape { position: 14 }),
            ("organization a%", E::InvalidEscape { position: 14 }),
            ("organization a%2", E::InvalidEscape { position: 14 }),
            ("domain a/b%41", E::InvalidEscape { position: 10 }),
            ("domain a%25%/b", E::InvalidEscape { position: 11 }),
            (
                "organization ",
                E::Organization(IdError::Empty {
                    what: "an organization id",
                }),
            ),
            (
                "domain /shop",
                E::Organization(IdError::Empty {
                    what: "an organization id",
                }),
            ),
            (
                "domain acme/",
                E::Domain(IdError::Empty {
                    what: "a domain id",
                }),
            ),
            (
                "organization acme ",
                E::Organization(IdError::NotPrintable {
                    what: "an organization id",
                    position: 4,
                }),
            ),
            (
                "organization acmé",
                E::Organization(IdError::NotPrintable {
                    what: "an organization id",
                    position: 3,
                }),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Scope>().as_ref(), Err(expected), "{text:?}");
        }
        let huge = format!("organization {}", "a".repeat(1 << 20));
        assert_eq!(
            huge.parse::<Scope>(),
            Err(E::TooLong {
                max: MAX_SCOPE_TEXT,
                found: huge.len()
            })
        );
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
