//! Permissions: what a platform lets tokens do, finer than a role.
//!
//! The platform names its own permissions (`notifications:send`,
//! `segments:read`, …) in a [`PermissionRegistry`], each with the lowest
//! role that grants it. A token issued without a permission set may do what
//! its role grants, as before; one issued with a set may do only what is in
//! the set **and** still in the registry **and** granted by its role. A
//! narrowed token passes no plain role check
//! ([`VerifiedToken::allows`](crate::VerifiedToken::allows) with a
//! [`Role`]): narrowing that a route guarded by role alone ignored would
//! narrow nothing.
//!
//! A handler checks a [`Permission`], the registry's handle for a name, so
//! a name the registry no longer defines grants nothing: nobody can hold a
//! handle for it. Tokens that carry such a name still verify for the rest
//! of their set.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::actor::Role;
use crate::error::PermissionError;

/// The longest permission name, in bytes.
pub const MAX_PERMISSION_LEN: usize = 64;

/// The most permissions one token may carry.
pub const MAX_TOKEN_PERMISSIONS: usize = 64;

/// The most permissions a registry may define.
pub const MAX_REGISTRY_PERMISSIONS: usize = 1_000;

/// A permission's name: 1 to [`MAX_PERMISSION_LEN`] bytes of `a`–`z`,
/// `0`–`9` and `:` `.` `_` `-`, starting with a letter (`notifications:send`).
/// Lowercase only, so two spellings never name one permission. Its text
/// form (`Display`, `FromStr`, serde) is the name itself.
///
/// ```
/// use api_tokens::PermissionName;
///
/// let name: PermissionName = "notifications:send".parse()?;
/// assert_eq!(name.as_str(), "notifications:send");
/// assert!("Notifications:Send".parse::<PermissionName>().is_err());
/// # Ok::<(), api_tokens::PermissionError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PermissionName(Arc<str>);

impl PermissionName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`PermissionError::InvalidName`] for an empty or overlong name, or
    /// one with a character outside the set above.
    pub fn new(name: &str) -> Result<Self, PermissionError> {
        let valid_char =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b);
        let valid = (1..=MAX_PERMISSION_LEN).contains(&name.len())
            && name.as_bytes()[0].is_ascii_lowercase()
            && name.bytes().all(valid_char);
        if !valid {
            return Err(PermissionError::InvalidName);
        }
        Ok(PermissionName(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same name in an allocation of its own (a clone shares one).
    pub(crate) fn fresh_copy(&self) -> PermissionName {
        PermissionName(Arc::from(&*self.0))
    }
}

impl fmt::Display for PermissionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for PermissionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl FromStr for PermissionName {
    type Err = PermissionError;

    fn from_str(name: &str) -> Result<Self, PermissionError> {
        PermissionName::new(name)
    }
}

impl Serialize for PermissionName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PermissionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::deserialize_from_str(deserializer, "a permission name")
    }
}

/// A permission as the registry defines it: a name and the lowest role that
/// grants it. Only a [`PermissionRegistry`] makes one, so holding a
/// `Permission` means the platform defines it. Handlers check one with
/// [`VerifiedToken::allows`](crate::VerifiedToken::allows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    name: PermissionName,
    granted_from: Role,
}

impl Permission {
    /// Its name.
    pub fn name(&self) -> &PermissionName {
        &self.name
    }

    /// The lowest role that grants it.
    pub fn granted_from(&self) -> Role {
        self.granted_from
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.name, f)
    }
}

/// The platform's permissions and which roles grant them: each permission
/// is granted by one role and every role above it. At most
/// [`MAX_REGISTRY_PERMISSIONS`].
///
/// ```
/// use api_tokens::{PermissionRegistry, Role};
///
/// let registry = PermissionRegistry::new()
///     .define("segments:read", Role::Viewer)?
///     .define("notifications:send", Role::Editor)?;
/// let send = registry.permission("notifications:send")?;
/// assert_eq!(send.granted_from(), Role::Editor);
/// # Ok::<(), api_tokens::PermissionError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionRegistry {
    granted_from: BTreeMap<PermissionName, Role>,
}

impl PermissionRegistry {
    /// A registry that defines nothing: every token has its role's rights
    /// and no permission set can be issued.
    pub fn new() -> Self {
        PermissionRegistry::default()
    }

    /// The same registry, defining `name` as granted by `granted_from` and
    /// every higher role.
    ///
    /// # Errors
    ///
    /// [`PermissionError::InvalidName`], [`PermissionError::Duplicate`] for
    /// a name defined already, or [`PermissionError::TooMany`].
    pub fn define(mut self, name: &str, granted_from: Role) -> Result<Self, PermissionError> {
        let name = PermissionName::new(name)?;
        if self.granted_from.contains_key(&name) {
            return Err(PermissionError::Duplicate { permission: name });
        }
        if self.granted_from.len() >= MAX_REGISTRY_PERMISSIONS {
            return Err(PermissionError::TooMany {
                max: MAX_REGISTRY_PERMISSIONS,
            });
        }
        self.granted_from.insert(name, granted_from);
        Ok(self)
    }

    /// The permission named `name`, for handlers to check.
    ///
    /// # Errors
    ///
    /// [`PermissionError::InvalidName`], or [`PermissionError::Unknown`]
    /// for a name the registry does not define.
    pub fn permission(&self, name: &str) -> Result<Permission, PermissionError> {
        let name = PermissionName::new(name)?;
        match self.granted_from.get(&name) {
            Some(&granted_from) => Ok(Permission { name, granted_from }),
            None => Err(PermissionError::Unknown { permission: name }),
        }
    }

    /// The lowest role granting `name`, if the registry defines it.
    pub fn granted_from(&self, name: &PermissionName) -> Option<Role> {
        self.granted_from.get(name).copied()
    }

    /// Every permission, in name order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.granted_from
            .iter()
            .map(|(name, &granted_from)| Permission {
                name: name.clone(),
                granted_from,
            })
    }

    /// How many permissions it defines.
    pub fn len(&self) -> usize {
        self.granted_from.len()
    }

    /// Whether it defines none.
    pub fn is_empty(&self) -> bool {
        self.granted_from.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_words_with_separators() {
        for good in [
            "a",
            "notifications:send",
            "billing.invoices_read",
            "x-1",
            &"a".repeat(64),
        ] {
            assert_eq!(PermissionName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Send",
            "1send",
            ":send",
            "send mail",
            "send\n",
            "sénd",
            &"a".repeat(65),
            &"a".repeat(1 << 20),
        ] {
            assert!(
                matches!(PermissionName::new(bad), Err(PermissionError::InvalidName)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_registry_refuses_duplicates_and_answers_only_for_what_it_defines() {
        let registry = PermissionRegistry::new()
            .define("a:read", Role::Viewer)
            .unwrap();
        assert!(matches!(
            registry.clone().define("a:read", Role::Editor),
            Err(PermissionError::Duplicate { .. })
        ));
        assert!(matches!(
            registry.permission("a:write"),
            Err(PermissionError::Unknown { permission }) if permission.as_str() == "a:write"
        ));
        assert_eq!(
            registry.permission("a:read").unwrap().granted_from(),
            Role::Viewer
        );
    }

    #[test]
    fn a_registry_holds_at_most_its_maximum() {
        let mut registry = PermissionRegistry::new();
        for n in 0..MAX_REGISTRY_PERMISSIONS {
            registry = registry.define(&format!("p{n}"), Role::Viewer).unwrap();
        }
        assert!(matches!(
            registry.define("one:more", Role::Viewer),
            Err(PermissionError::TooMany { .. })
        ));
    }
}
