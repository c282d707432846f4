//! What is kept about a token, and what a list shows of it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::actor::Role;
use crate::hashing::{Digest, KeyId};
use crate::ids::ActorId;
use crate::label::Label;
use crate::permissions::PermissionName;
use crate::restrictions::Restrictions;
use crate::scope::Scope;
use crate::token::TokenId;

/// Everything a store keeps about one token: plain data, no secret.
///
/// The digest is a keyed hash, useless without the service's key, but it is
/// still not for display: serialize a record only to persist it, and show
/// people a [`TokenSummary`] instead. `Debug` omits the digest bytes.
///
/// Stores return records as they are, revoked and expired ones included; the
/// service alone decides whether a record lets a token through.
///
/// Timestamps are UTC and whole microseconds (the service truncates them), the
/// precision every backend keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public id, also written in the token.
    pub id: TokenId,
    /// Where the token is valid.
    pub scope: Scope,
    /// The highest role the token grants.
    pub role: Role,
    /// What the token is for, as its creator wrote it.
    pub label: Label,
    /// The key that made `digest`.
    pub key_id: KeyId,
    /// `BLAKE3-keyed(key, id ‖ secret)`.
    pub digest: Digest,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who issued it.
    pub created_by: ActorId,
    /// When it stops verifying, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Set once, when the token is revoked; never cleared.
    pub revoked: Option<Revocation>,
    /// When a verification last succeeded with it, as far as recorded: the
    /// service writes this at most once per token per interval (see
    /// [`TokenService::with_last_used_interval`](crate::TokenService::with_last_used_interval)).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The token this one was issued to replace, if it came from a rotation.
    pub rotated_from: Option<TokenId>,
    /// The token that replaced this one, once it was rotated. A replaced
    /// token keeps verifying until its grace period ends.
    pub replaced_by: Option<TokenId>,
    /// What narrows it below its role (permissions, client networks, a rate
    /// limit); by default nothing.
    #[serde(default)]
    pub restrictions: Restrictions,
    /// Set while the token is disabled (paused): it fails verification
    /// until enabled again.
    #[serde(default)]
    pub disabled: Option<Disablement>,
}

/// The part of a [`TokenRecord`] that verification reads: enough to check the
/// secret and the status, and to say what the token grants. Nothing else.
///
/// [`TokenStore::find_credential`](crate::TokenStore::find_credential) returns
/// it on every verification, so a store may keep it apart from the rest of the
/// record (labels, creators, revocation details): the memory store keeps it
/// inline in its hash table. The scope is shared (`Arc`) because verification
/// hands it on to the [`VerifiedToken`](crate::VerifiedToken); a store that
/// builds credentials afresh allocates one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredential {
    /// The public id.
    pub id: TokenId,
    /// Where the token is valid. Shared, so that handing a credential out
    /// (on every verification) costs one reference count, not a copy of the
    /// scope's ids.
    pub scope: Arc<Scope>,
    /// The highest role the token grants.
    pub role: Role,
    /// The key that made `digest`.
    pub key_id: KeyId,
    /// `BLAKE3-keyed(key, id ‖ secret)`.
    pub digest: Digest,
    /// When it stops verifying, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Whether it was rotated (a replaced token verifies until its grace
    /// period ends; a use after that is an audit event of its own).
    pub replaced: bool,
    /// When a use was last recorded, so the service writes a new one only
    /// once the interval has passed.
    pub last_used_at: Option<OffsetDateTime>,
    /// What narrows the token, shared; `None` when nothing does
    /// ([`Restrictions::is_unrestricted`]), which is what keeps tokens
    /// without restrictions as small and as fast as before.
    pub restrictions: Option<Arc<Restrictions>>,
    /// Whether it is disabled.
    pub disabled: bool,
}

/// When and by whom a token was disabled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disablement {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// By whom.
    pub by: ActorId,
}

/// When, by whom and why a token was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// By whom.
    pub by: ActorId,
    /// Why, in the revoker's words (validated like a label), if they said.
    pub reason: Option<Label>,
}

/// Whether a token would verify now, as a list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Neither revoked, expired nor disabled.
    Active,
    /// Disabled, and neither revoked nor expired: it verifies again once
    /// enabled.
    Disabled,
    /// Past its expiry (and not revoked).
    Expired,
    /// Revoked (whether or not it has also expired since).
    Revoked,
}

/// One row of the API Tokens list: everything about a token except its
/// secret and digest. Safe to serialize into a response or a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    /// The public id.
    pub id: TokenId,
    /// The token's public head, e.g. `acmeo_3kT9QxPb1Zr…`, so its holder can
    /// recognise it.
    pub hint: String,
    /// What the token is for.
    pub label: Label,
    /// Where it is valid.
    pub scope: Scope,
    /// The role it grants.
    pub role: Role,
    /// Whether it verifies, as of the moment the list was made.
    pub status: TokenStatus,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who issued it.
    pub created_by: ActorId,
    /// When it expires, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When and by whom it was revoked, if it was.
    pub revoked: Option<Revocation>,
    /// When it was last used, to the precision the service records
    /// (see [`TokenRecord::last_used_at`]).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The token it replaced, if it came from a rotation.
    pub rotated_from: Option<TokenId>,
    /// The token that replaced it, once rotated.
    pub replaced_by: Option<TokenId>,
    /// What narrows it below its role: its permission set, client
    /// networks and rate limit, each only if it has one.
    pub restrictions: Restrictions,
    /// When and by whom it was disabled, while it is.
    pub disabled: Option<Disablement>,
}

impl TokenRecord {
    /// What verification reads of this record.
    pub fn credential(&self) -> StoredCredential {
        StoredCredential {
            id: self.id,
            scope: Arc::new(self.scope.clone()),
            role: self.role,
            key_id: self.key_id,
            digest: self.digest,
            expires_at: self.expires_at,
            revoked: self.revoked.is_some(),
            replaced: self.replaced_by.is_some(),
            last_used_at: self.last_used_at,
            restrictions: shared_restrictions(&self.restrictions),
            disabled: self.disabled.is_some(),
        }
    }

    /// Whether the token stopped verifying before `before`: revoked then,
    /// or expired then. What [`TokenStore::purge`](crate::TokenStore::purge)
    /// deletes.
    pub fn ended_before(&self, before: OffsetDateTime) -> bool {
        ended_before(
            self.revoked.as_ref().map(|revocation| revocation.at),
            self.expires_at,
            before,
        )
    }

    /// Whether the token is revoked, expired (at `now`), disabled or
    /// active. Revocation wins over expiry, expiry over a pause.
    pub fn status_at(&self, now: OffsetDateTime) -> TokenStatus {
        if self.revoked.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|expiry| now >= expiry) {
            TokenStatus::Expired
        } else if self.disabled.is_some() {
            TokenStatus::Disabled
        } else {
            TokenStatus::Active
        }
    }
}

/// A row of a token list the store could not read back as a token (edited
/// by hand, say): listed in its place with what is wrong, so it is seen and
/// can be revoked by id, but never shown or trusted as a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedToken {
    /// Its id, if that much could be read.
    pub id: Option<TokenId>,
    /// What is wrong with it.
    pub problem: String,
}

/// Whether a token revoked at `revoked_at` (if ever) and expiring at
/// `expires_at` (if ever) stopped verifying before `before`: the rule of
/// [`TokenRecord::ended_before`], for a store that keeps the two apart.
pub(crate) fn ended_before(
    revoked_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    before: OffsetDateTime,
) -> bool {
    revoked_at.is_some_and(|at| at < before) || expires_at.is_some_and(|at| at < before)
}

/// The restrictions as a credential shares them: `None` when nothing is
/// restricted, so an unrestricted token's credential holds one null pointer.
///
/// Every part is allocated afresh, one right after another (the names too,
/// rather than shared with the record), so that a store keeping the
/// credential for long finds its restrictions together in memory: in a
/// store far larger than the CPU's caches, verification then waits on one
/// or two neighbouring cache lines, not on one for each part.
pub(crate) fn shared_restrictions(restrictions: &Restrictions) -> Option<Arc<Restrictions>> {
    if restrictions.is_unrestricted() {
        return None;
    }
    let allowed_networks = restrictions.allowed_networks.clone();
    let permissions = restrictions.permissions.as_ref().map(|names| {
        names
            .iter()
            .map(PermissionName::fresh_copy)
            .collect::<Vec<_>>()
    });
    Some(Arc::new(Restrictions {
        permissions,
        allowed_networks,
        rate_limit: restrictions.rate_limit,
    }))
}
