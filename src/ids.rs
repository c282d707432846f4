//! The platform's own identifiers: organizations, domains and actors.
//!
//! The crate does not invent these ids; it carries the ones the embedding
//! platform already has (numeric ids, UUIDs, slugs, e-mail addresses). Each is
//! validated once, on construction, so every later use can rely on it:
//! 1 to [`MAX_ID_LEN`] bytes of printable ASCII (`!` through `~`, no spaces or
//! control characters), and never an API token (of any service built on this
//! crate). That keeps ids safe to put in log lines, URLs and SQL text columns
//! without escaping surprises, and keeps a token pasted into the wrong field
//! out of every log.
//!
//! Ids are reference-counted strings, so cloning one (into a record, a scope,
//! a summary) never copies its text.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IdError;
use crate::scan::find_any_format_tokens;

/// The longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Checks the rule every platform identifier follows (see the module docs).
fn validate(value: &str, what: &'static str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            max: MAX_ID_LEN,
        });
    }
    if let Some(position) = value.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(IdError::NotPrintable { what, position });
    }
    // Ids are logged and shown everywhere: one must never be a token pasted
    // into the wrong field. (Only a token with a two-letter prefix fits in
    // `MAX_ID_LEN` bytes.)
    if !find_any_format_tokens(value).is_empty() {
        return Err(IdError::HoldsToken { what });
    }
    Ok(())
}

/// Defines one validated identifier type. The three id types differ only in
/// name and in the word their errors use, so they share one definition.
macro_rules! platform_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            #[doc = concat!("Validates `value` as ", $what, ".")]
            ///
            /// # Errors
            ///
            /// [`IdError`] if `value` is empty, longer than [`MAX_ID_LEN`] bytes,
            /// or holds anything but printable ASCII.
            pub fn new(value: &str) -> Result<Self, IdError> {
                validate(value, $what)?;
                Ok(Self(Arc::from(value)))
            }

            /// The id as the platform wrote it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

platform_id!(
    /// The platform's identifier of an organization (a tenant).
    OrganizationId,
    "an organization id"
);

platform_id!(
    /// The platform's identifier of a domain. A domain id need only be unique
    /// within its organization: a [`Scope`](crate::Scope) always pairs it with
    /// the organization's id.
    DomainId,
    "a domain id"
);

platform_id!(
    /// The platform's identifier of whoever acts: a person or a system. It is
    /// recorded as the creator and revoker of tokens.
    ActorId,
    "an actor id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_shapes_platforms_use() {
        for id in [
            "42",
            "acme",
            "acme-corp_eu",
            "0b6f1f8e-6a1c-4c4e-9a9e-3c1f5d9b2a77",
        ] {
            assert_eq!(OrganizationId::new(id).unwrap().as_str(), id);
        }
        assert_eq!(
            ActorId::new("alice@example.com").unwrap().to_string(),
            "alice@example.com"
        );
    }

    #[test]
    fn rejects_empty_long_and_unprintable() {
        assert_eq!(
            DomainId::new(""),
            Err(IdError::Empty {
                what: "a domain id"
            })
        );
        assert!(matches!(
            DomainId::new(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong { .. })
        ));
        assert!(DomainId::new(&"x".repeat(MAX_ID_LEN)).is_ok());
        for (bad, position) in [("a b", 1), ("ab\0", 2), ("é", 0), ("\n", 0)] {
            assert_eq!(
                DomainId::new(bad),
                Err(IdError::NotPrintable {
                    what: "a domain id",
                    position
                })
            );
        }
    }

    #[test]
    fn refuses_a_token_pasted_as_an_id() {
        // With a two-letter prefix a token is exactly `MAX_ID_LEN` bytes.
        let format = crate::TokenFormat::new("zz").unwrap();
        let token = format.generate(crate::ScopeKind::Domain).unwrap();
        let text = token.expose_secret();
        assert_eq!(text.len(), MAX_ID_LEN);
        assert_eq!(
            ActorId::new(text),
            Err(IdError::HoldsToken {
                what: "an actor id"
            })
        );
        // One character changed breaks the checksum: an ordinary id again.
        let mut altered = text.to_owned();
        altered.replace_range(20..21, if &text[20..21] == "a" { "b" } else { "a" });
        assert!(ActorId::new(&altered).is_ok());
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let id = OrganizationId::new("acme").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"acme\"");
        assert_eq!(serde_json::from_str::<OrganizationId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<OrganizationId>("\"has space\"").is_err());
    }
}
