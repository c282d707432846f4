//! Every error the crate returns: one enum per operation, so an error says
//! only what can go wrong there (an [`IssueError`] cannot be "expired").
//!
//! Why not one error type for all management calls, since `NotFound` and
//! `Store` recur? Because a `match` on one call's error then needs arms
//! for what that call can never return (a revoke has no page size), and
//! the compiler stops telling a caller which cases are real. The shared
//! parts are shared where it matters instead: every store failure is the
//! one [`StoreError`], and under the `axum` feature every error answers
//! HTTP through one table of codes (`api_tokens::http`), so a service
//! writes no glue either way.
//!
//! No error holds a token, a secret, a digest or a key; each message says what
//! went wrong and, where the caller can act, what to do.

use std::error::Error as StdError;
use std::time::Duration;

use crate::actor::Role;
use crate::clock::Readable;
use crate::hashing::KeyId;
use crate::permissions::PermissionName;
use crate::scope::{Scope, ScopeKind};
use crate::token::TokenId;

/// The cause a [`StoreError`] keeps: any error a backend met.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An organization, domain or actor id was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Nothing was given.
    #[error("{what} must not be empty")]
    Empty {
        /// Which kind of id.
        what: &'static str,
    },
    /// Too many bytes.
    #[error("{what} must be at most {max} bytes")]
    TooLong {
        /// Which kind of id.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A byte outside printable ASCII (`!` to `~`).
    #[error("{what} may hold only printable ASCII without spaces; byte {position} is not")]
    NotPrintable {
        /// Which kind of id.
        what: &'static str,
        /// Byte offset of the first offending byte.
        position: usize,
    },
    /// The id is an API token, pasted into the wrong field. Revoke that
    /// token: it has been sent somewhere it should not be.
    #[error("{what} must not be an API token; revoke the token that was pasted here")]
    HoldsToken {
        /// Which kind of id.
        what: &'static str,
    },
}

/// A token label was refused. See [`Label`](crate::Label) for the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// Empty, or only whitespace.
    #[error("the label is empty: say what the token is for")]
    Empty,
    /// Too many characters.
    #[error("the label is longer than {max} characters")]
    TooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// A control, line-separator, format (invisible or direction-changing)
    /// or default-ignorable character, outside the emoji sequences a label
    /// accepts.
    #[error(
        "the label has a forbidden character U+{code_point:04X} at position {position}; \
         a label is one line of visible text, without control, invisible or \
         direction-changing characters"
    )]
    ForbiddenCharacter {
        /// Index (in characters, after trimming) of the first forbidden one.
        position: usize,
        /// Which character it is.
        code_point: u32,
    },
}

/// The operating system's random source failed, so no key or token could be
/// made. Nothing was stored. It usually means the process may not read the
/// OS random source (a sandbox or seccomp policy); retrying rarely helps.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed")]
pub struct RandomSourceError(#[source] pub(crate) BoxError);

/// A token prefix was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a token prefix is 2 to 10 characters of a-z and 0-9, starting with a letter")]
pub struct PrefixError;

/// A SQL store's table name was refused. See
/// [`TableName`](crate::store::TableName) for the rules.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableNameError {
    /// A part of the name is empty.
    #[error("a table name is `table` or `schema.table`, and neither part may be empty")]
    Empty,
    /// More than one `.`.
    #[error("a table name is `table` or `schema.table`: at most one `.`")]
    TooManyParts,
    /// A part is too long.
    #[error("a part of the table name is longer than {max} bytes")]
    TooLong {
        /// The limit for that part.
        max: usize,
    },
    /// A character other than `a-z`, `0-9` and `_` (or a digit first).
    #[error(
        "the table name has a character other than a-z, 0-9 and _ (or starts a part with a \
         digit) at byte {position}"
    )]
    InvalidCharacter {
        /// Byte offset in the whole name.
        position: usize,
    },
    /// A schema part for a store that takes none (SQLite).
    #[error(
        "SQLite table names take no schema part: a schema is an attached database, \
         whose triggers can only name its own tables"
    )]
    SchemaNotSupported,
}

/// A text was not a token id (11 base62 characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a token id is 11 characters of 0-9, A-Z and a-z")]
pub struct InvalidTokenId;

/// A [`Keyring`](crate::Keyring) could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// No key was given.
    #[error("a keyring needs at least one key")]
    Empty,
    /// Two keys share an id, so a stored key id would be ambiguous.
    #[error("key id {0} is given twice; every key needs its own id")]
    DuplicateId(KeyId),
}

/// Why a string is not a well-formed token. Found without touching the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedToken {
    /// Every token of a service has one length.
    #[error("a token has {expected} characters; this one has {found}")]
    WrongLength {
        /// This service's token length.
        expected: usize,
        /// The length given (in bytes).
        found: usize,
    },
    /// It does not start with this service's prefix (another service's token?).
    #[error("the token does not start with this service's prefix")]
    WrongPrefix,
    /// The letter after the prefix names no scope kind.
    #[error("the token's scope letter is neither `o` nor `d`")]
    UnknownKind,
    /// The `_` after the scope letter is missing.
    #[error("the token lacks the `_` after its scope letter")]
    MissingSeparator,
    /// A character outside `[A-Za-z0-9]` after the separator, in a token whose
    /// checksum matched (otherwise the checksum reports it).
    #[error("the token has a character outside A-Z, a-z and 0-9 at byte {position}")]
    InvalidCharacter {
        /// Byte offset of the first one.
        position: usize,
    },
    /// The checksum does not match: a typo (a character outside the alphabet
    /// included), a truncated copy, or not a token.
    #[error("the token's checksum does not match: it was mistyped or cut short")]
    BadChecksum,
    /// The id part is too large to be an id this crate makes.
    #[error("the token's id is out of range")]
    IdOutOfRange,
}

/// A [`TokenStore`](crate::TokenStore) failed. Backends map their own errors
/// into these variants and keep the original as the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `insert` met a record with the same id; nothing was changed.
    #[error("a token with id {id} is already stored")]
    AlreadyExists {
        /// The id given twice.
        id: TokenId,
    },
    /// The backend cannot be reached or is overloaded; retrying may help.
    #[error("the token store is unavailable; retry later")]
    Unavailable {
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// A TLS connection to the backend could not be made: the server's
    /// certificate is not trusted (check the CA you gave, e.g. PostgreSQL's
    /// `sslrootcert`), does not name the host, or TLS is not available.
    /// Retrying will not help until the configuration changes.
    #[error("no trusted TLS connection to the token store: check its CA certificate and host name")]
    Tls {
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// A stored record cannot be read back as a valid record.
    #[error(
        "the token store holds a corrupt record{}",
        .id.map_or(String::new(), |id| format!(" for token {id}"))
    )]
    Corrupt {
        /// The record's id, when it could be read.
        id: Option<TokenId>,
        /// The record's scope, when it could be read: enough for an admin
        /// of it to revoke the token, whatever else is damaged.
        scope: Option<Scope>,
        /// What was wrong with it.
        #[source]
        source: BoxError,
    },
    /// Any other backend failure.
    #[error("the token store failed")]
    Other {
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

/// A setting of the service was refused: an
/// [`ExpiryPolicy`](crate::ExpiryPolicy) lifetime, the last-used interval or
/// the audit queue's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A lifetime of zero.
    #[error("a token lifetime must be more than zero")]
    NotPositive,
    /// A lifetime beyond [`MAX_LIFETIME`](crate::MAX_LIFETIME).
    #[error("a token lifetime may be at most 100 years; use a never-expiring token instead")]
    TooLong,
    /// A last-used interval under one second.
    #[error("the last-used interval must be at least one second")]
    TooShort,
    /// An audit queue that could hold no event.
    #[error("the audit queue must hold at least one event")]
    ZeroCapacity,
}

/// Why [`TokenService::issue`](crate::TokenService::issue) made no token.
/// Nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The actor lacks the Admin role at the requested scope.
    #[error("the actor may not manage tokens at {scope}: that needs the admin role there")]
    NotAllowed {
        /// The scope asked for.
        scope: Scope,
    },
    /// A token's role may not exceed its issuer's role at its scope.
    #[error("a token cannot have role {requested}: its issuer holds only {held} at that scope")]
    RoleTooHigh {
        /// The role asked for.
        requested: Role,
        /// The issuer's role at the scope.
        held: Role,
    },
    /// The label was refused.
    #[error(transparent)]
    InvalidLabel(#[from] LabelError),
    /// The requested expiry is not after the current time.
    #[error("the expiry must lie in the future")]
    ExpiryNotInFuture,
    /// The requested expiry has no UTC form (it lies past the year 9999).
    #[error("the expiry lies beyond the year 9999")]
    ExpiryOutOfRange,
    /// The expiry lies further ahead than the policy allows for this kind.
    #[error("{kind} tokens may live at most {}; ask for an earlier expiry", Readable(*max))]
    LifetimeTooLong {
        /// The token's scope kind.
        kind: ScopeKind,
        /// The longest lifetime allowed.
        max: Duration,
    },
    /// A never-expiring token was asked for where the policy limits lifetimes.
    #[error("{kind} tokens must expire within {}; ask for an expiry", Readable(*max))]
    MustExpire {
        /// The token's scope kind.
        kind: ScopeKind,
        /// The longest lifetime allowed.
        max: Duration,
    },
    /// A permission asked for was refused: not a valid name, or not one
    /// the service's [`PermissionRegistry`](crate::PermissionRegistry)
    /// defines (the error names it).
    #[error("the permission set is not valid: {0}")]
    InvalidPermission(#[source] PermissionError),
    /// The permission set holds no permission: a token that may do nothing.
    #[error("a permission set needs at least one permission; leave it out for the role's own")]
    EmptyPermissionSet,
    /// More permissions than one token may carry.
    #[error("a token may carry at most {max} permissions")]
    TooManyPermissions {
        /// The most allowed.
        max: usize,
    },
    /// A permission asked for needs a higher role than the token's, or
    /// than its issuer's: the set must lie within what the issuer's role
    /// grants at the scope, and within the token's own role.
    #[error("permission {permission} needs role {needs}, above {role}")]
    PermissionNotGranted {
        /// The permission beyond the role.
        permission: PermissionName,
        /// The lowest role that grants it.
        needs: Role,
        /// The role it is beyond: the issuer's at the scope when even that
        /// does not grant it, else the token's.
        role: Role,
    },
    /// An entry of the allowlist is not a network in CIDR form (entries
    /// count from 0; the text is not repeated, it may be anything).
    #[error("allowlist entry {position} is not a network in CIDR form: {error}")]
    InvalidNetwork {
        /// Which entry.
        position: usize,
        /// What is wrong with it.
        #[source]
        error: NetworkError,
    },
    /// The allowlist is empty: a token no client could use.
    #[error("an allowlist needs at least one network; leave it out to accept any client")]
    EmptyAllowlist,
    /// More networks than one allowlist may hold.
    #[error("an allowlist holds at most {max} networks")]
    TooManyNetworks {
        /// The most allowed.
        max: usize,
    },
    /// The operating system's random source failed.
    #[error(transparent)]
    RandomSource(#[from] RandomSourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A permission name or registry entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionError {
    /// Not 1 to 64 bytes of `a`-`z`, `0`-`9` and `:` `.` `_` `-`, starting
    /// with a letter (the text is not repeated: it may be anything).
    #[error(
        "a permission name is 1 to 64 characters of a-z, 0-9 and : . _ -, starting with a letter"
    )]
    InvalidName,
    /// The registry does not define this permission.
    #[error("permission {permission} is not defined by this service")]
    Unknown {
        /// The permission.
        permission: PermissionName,
    },
    /// The registry defines this permission already.
    #[error("permission {permission} is defined twice")]
    Duplicate {
        /// The permission.
        permission: PermissionName,
    },
    /// The registry is full.
    #[error("a registry defines at most {max} permissions")]
    TooMany {
        /// The most allowed.
        max: usize,
    },
}

/// A text was not an IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// Not `address/prefix` or a bare IPv4 or IPv6 address.
    #[error("expected an address with an optional /prefix, like 203.0.113.0/24 or 2001:db8::/32")]
    Malformed,
    /// The prefix is longer than the address (32 bits for IPv4, 128 for IPv6).
    #[error("the prefix is longer than the address")]
    PrefixTooLong,
    /// The address has bits set past the prefix: write the network's first
    /// address, or the prefix meant.
    #[error("the address has bits set past the prefix; write the network's first address")]
    HostBitsSet,
}

/// A [`RateLimit`](crate::RateLimit) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// Not 1 to 1,000,000 requests per period.
    #[error("a rate limit allows 1 to 1000000 requests per period")]
    Requests,
    /// Not a whole number of seconds from 1 s to one day.
    #[error("a rate limit's period is a whole number of seconds, from 1 to 86400")]
    Period,
}

/// Why [`TokenService::verify`](crate::TokenService::verify) refused a token.
///
/// An unknown id, a wrong secret, a tampered scope letter and a key the
/// service no longer holds are all [`Invalid`](Self::Invalid): they cost the
/// same and look alike. [`Revoked`](Self::Revoked) and
/// [`Expired`](Self::Expired) are reported only for a token whose secret
/// matched. An HTTP service should answer all of them the same way (401) and
/// keep the precise reason for its own logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not shaped like this service's tokens; the store was not asked.
    #[error("malformed token: {0}")]
    Malformed(#[from] MalformedToken),
    /// No token with this id and secret exists.
    #[error("the token is not valid")]
    Invalid,
    /// The token was revoked.
    #[error("the token was revoked")]
    Revoked,
    /// The token's expiry has passed.
    #[error("the token has expired")]
    Expired,
    /// The token is disabled (paused, and may be enabled again).
    #[error("the token is disabled")]
    Disabled,
    /// The token may be used only from the networks of its allowlist, and
    /// the client's address is outside them, or was not given.
    #[error("the token may not be used from this address")]
    AddressNotAllowed,
    /// The store failed, so the token could not be checked.
    #[error(transparent)]
    Store(StoreError),
}

/// Why [`TokenService::revoke`](crate::TokenService::revoke) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// No token with this id exists, or the actor may not manage it: the two
    /// are reported alike, so the answer reveals nothing about other tenants.
    #[error("no token {id} that this actor may manage")]
    NotFound {
        /// The id asked for.
        id: TokenId,
    },
    /// The reason given was refused (the rules of a [`Label`](crate::Label)).
    #[error("the revocation reason is not valid: {0}")]
    InvalidReason(#[source] LabelError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`TokenService::revoke_leaked`](crate::TokenService::revoke_leaked)
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeLeakedError {
    /// The text holds more tokens than one call looks at; nothing was
    /// changed. Split it and call once per part.
    #[error("the text holds more than {max} tokens; split it and submit each part")]
    TooManyTokens {
        /// [`MAX_LEAKED_TOKENS`](crate::MAX_LEAKED_TOKENS).
        max: usize,
    },
    /// The source given was refused (the rules of a [`Label`](crate::Label)).
    #[error("the leak's source is not valid: {0}")]
    InvalidSource(#[source] LabelError),
    /// The store failed. Tokens revoked before the failure stay revoked;
    /// calling again with the same text revokes the rest.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`TokenService::lookup`](crate::TokenService::lookup) found nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No token with this id exists, or the actor may not manage it (the two
    /// are reported alike, as for revoke).
    #[error("no token {id} that this actor may manage")]
    NotFound {
        /// The id asked for.
        id: TokenId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`TokenService::revoke_scope`](crate::TokenService::revoke_scope)
/// revoked nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeScopeError {
    /// The actor lacks the Admin role at the scope.
    #[error("the actor may not manage tokens at {scope}: that needs the admin role there")]
    NotAllowed {
        /// The scope asked for.
        scope: Scope,
    },
    /// The reason given was refused (the rules of a [`Label`](crate::Label)).
    #[error("the revocation reason is not valid: {0}")]
    InvalidReason(#[source] LabelError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`TokenService::rotate`](crate::TokenService::rotate) issued no
/// successor. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// No token with this id exists, or the actor may not manage it (the two
    /// are reported alike, as for revoke).
    #[error("no token {id} that this actor may manage")]
    NotFound {
        /// The id asked for.
        id: TokenId,
    },
    /// The token is revoked: there is nothing to hand over from.
    #[error("token {id} is revoked; issue a new token instead")]
    Revoked {
        /// The token.
        id: TokenId,
    },
    /// The token has expired: there is nothing to hand over from.
    #[error("token {id} has expired; issue a new token instead")]
    Expired {
        /// The token.
        id: TokenId,
    },
    /// The token was rotated before; rotate its successor instead (one token
    /// has at most one successor).
    #[error("token {id} was already replaced by {by}; rotate that one instead")]
    AlreadyReplaced {
        /// The token.
        id: TokenId,
        /// Its successor.
        by: TokenId,
    },
    /// A grace period longer than the token has left to live.
    #[error("the grace period outlasts the token, which has {} left", Readable(*remaining))]
    GraceTooLong {
        /// What the token has left.
        remaining: Duration,
    },
    /// A grace period ending beyond the year 9999.
    #[error("the grace period ends beyond the year 9999")]
    GraceOutOfRange,
    /// The successor's lifetime under the policy would end beyond the year
    /// 9999.
    #[error("the successor's lifetime would end beyond the year 9999")]
    SuccessorExpiryOutOfRange,
    /// The token's role is above the actor's at its scope: its successor
    /// would be a token the actor may not issue.
    #[error(
        "a token of role {role} can be rotated only by one who holds it; the actor holds {held}"
    )]
    RoleTooHigh {
        /// The token's role.
        role: Role,
        /// The actor's role at the token's scope.
        held: Role,
    },
    /// The operating system's random source failed.
    #[error(transparent)]
    RandomSource(#[from] RandomSourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`TokenService::list`](crate::TokenService::list) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The actor lacks the Admin role at the scope.
    #[error("the actor may not manage tokens at {scope}: that needs the admin role there")]
    NotAllowed {
        /// The scope asked for.
        scope: Scope,
    },
    /// The page size is zero or above the maximum.
    #[error("a page holds 1 to {max} tokens; {requested} were asked for")]
    InvalidPageSize {
        /// The size asked for.
        requested: usize,
        /// The largest page allowed.
        max: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`TokenService::disable`](crate::TokenService::disable),
/// [`enable`](crate::TokenService::enable) or
/// [`edit`](crate::TokenService::edit) changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// No such token at the scope addressed, or one the actor may not
    /// manage (the two look alike on purpose).
    #[error("no token {id} that this actor may manage")]
    NotFound {
        /// The id asked for.
        id: TokenId,
    },
    /// The token is revoked: a revocation is final.
    #[error("token {id} is revoked; a revoked token cannot be changed")]
    Revoked {
        /// The token.
        id: TokenId,
    },
    /// The token has expired: its expiry cannot be moved (issue a new
    /// token instead).
    #[error("token {id} has expired; issue a new token instead")]
    Expired {
        /// The token.
        id: TokenId,
    },
    /// Enabling a token, or pushing its expiry later, gives power back, so
    /// it needs the token's own role, as rotation does.
    #[error(
        "a token of role {role} can be enabled or extended only by one who holds {role}; the actor holds {held} here"
    )]
    RoleTooHigh {
        /// The token's role.
        role: Role,
        /// The actor's role at the token's scope.
        held: Role,
    },
    /// The token was replaced by a rotation; change its successor instead.
    #[error("token {id} was replaced by {by}; change that one instead")]
    Replaced {
        /// The token.
        id: TokenId,
        /// Its successor.
        by: TokenId,
    },
    /// The new label was refused.
    #[error(transparent)]
    InvalidLabel(#[from] LabelError),
    /// The new expiry is not after the current time.
    #[error("the expiry must lie in the future")]
    ExpiryNotInFuture,
    /// The new expiry has no UTC form (it lies past the year 9999).
    #[error("the expiry lies beyond the year 9999")]
    ExpiryOutOfRange,
    /// The new expiry is later than the current one (or never), and the
    /// service's [`ExpiryPolicy`](crate::ExpiryPolicy) only lets expiries
    /// be brought forward.
    #[error("the expiry may only be brought forward; issue a new token for a longer life")]
    ExpiryExtended,
    /// The new expiry lies further ahead than the policy allows for this kind.
    #[error("{kind} tokens may live at most {}; ask for an earlier expiry", Readable(*max))]
    LifetimeTooLong {
        /// The token's scope kind.
        kind: ScopeKind,
        /// The longest lifetime allowed, from now.
        max: Duration,
    },
    /// A never-expiring token was asked for where the policy limits lifetimes.
    #[error("{kind} tokens must expire within {}; ask for an expiry", Readable(*max))]
    MustExpire {
        /// The token's scope kind.
        kind: ScopeKind,
        /// The longest lifetime allowed.
        max: Duration,
    },
    /// The token's expiry kept changing under this edit; nothing changed.
    /// Read the token again and retry.
    #[error("token {id} was changed meanwhile; read it again and retry")]
    Conflict {
        /// The token.
        id: TokenId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`Operator::revoke_created_by`](crate::Operator::revoke_created_by)
/// stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeCreatedByError {
    /// The reason given was refused (the rules of a [`Label`](crate::Label));
    /// nothing was revoked.
    #[error("the revocation reason is not valid: {0}")]
    InvalidReason(#[source] LabelError),
    /// The store failed; the tokens revoked before it did stay revoked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A text was not a [`Role`]: one of `viewer`, `editor`, `admin` and
/// `owner`, exactly as [`Role`]'s `Display` writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a role is one of viewer, editor, admin and owner (lowercase)")]
pub struct InvalidRole;

/// A text was not a [`Scope`] as its `Display` writes it:
/// `organization <org>` or `domain <org>/<domain>`, with `%` and `/` inside
/// an id written `%25` and `%2F`. The error names positions, never the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeParseError {
    /// Longer than any scope's text can be.
    #[error("a scope's text is at most {max} bytes; this one has {found}")]
    TooLong {
        /// The longest scope text.
        max: usize,
        /// The length given, in bytes.
        found: usize,
    },
    /// It starts with neither `organization ` nor `domain `.
    #[error("a scope reads `organization <org>` or `domain <org>/<domain>`")]
    UnknownKind,
    /// A domain scope without the `/` between organization and domain.
    #[error("a domain scope reads `domain <org>/<domain>`; the `/` is missing")]
    MissingSeparator,
    /// A second unescaped `/` (in an id it is written `%2F`).
    #[error("the scope has an unexpected `/` at byte {position}; inside an id it is written %2F")]
    UnexpectedSeparator {
        /// Byte offset of the `/`.
        position: usize,
    },
    /// A `%` that does not start `%25` or `%2F`.
    #[error("the scope has a `%` at byte {position} that starts neither %25 nor %2F")]
    InvalidEscape {
        /// Byte offset of the `%`.
        position: usize,
    },
    /// The organization id, once unescaped, is not a valid id.
    #[error("the scope's organization id is not valid: {0}")]
    Organization(#[source] IdError),
    /// The domain id, once unescaped, is not a valid id.
    #[error("the scope's domain id is not valid: {0}")]
    Domain(#[source] IdError),
}

/// A text was not a [`KeyId`]: a decimal number from 0 to 4294967295,
/// without sign, spaces or leading zeros (one text per id, as `Display`
/// writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key id is a decimal number below 2^32, without sign or leading zeros")]
pub struct InvalidKeyId;

/// A text was not a list cursor this crate wrote
/// ([`Cursor`](crate::Cursor) or [`ExpiryCursor`](crate::ExpiryCursor)).
/// A client should send back the cursor it was given, unchanged; an HTTP
/// service answers this with 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// Every cursor has one length.
    #[error("a cursor is {expected} characters; this one has {found} bytes")]
    WrongLength {
        /// A cursor's length.
        expected: usize,
        /// The length given, in bytes.
        found: usize,
    },
    /// A character outside `A-Z`, `a-z`, `0-9`, `-` and `_`.
    #[error("a cursor has only A-Z, a-z, 0-9, - and _; byte {position} is none of them")]
    InvalidCharacter {
        /// Byte offset of the first one.
        position: usize,
    },
    /// A cursor of the other list: an expiring-soon cursor given to the
    /// token list, or the other way round.
    #[error("the cursor belongs to the other list (the token list or the expiring-soon list)")]
    WrongList,
    /// Not a cursor format this version of the crate knows.
    #[error("the cursor is not one this service wrote; start the list from the beginning")]
    UnknownVersion,
    /// Well formed, but naming no position: a time beyond what a record
    /// can hold, or an id that is not a token id.
    #[error("the cursor names no position a list can have")]
    InvalidPosition,
}

/// A hash key's text was refused (by [`HashKey::from_hex`],
/// [`HashKey::from_base64`] or an entry of
/// [`Keyring::from_config`](crate::Keyring::from_config)).
///
/// It holds lengths and positions only, never a character of the text, so
/// it is safe to log: a key with one typo is still nearly the key.
///
/// [`HashKey::from_hex`]: crate::HashKey::from_hex
/// [`HashKey::from_base64`]: crate::HashKey::from_base64
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyTextError {
    /// Nothing but whitespace was given.
    #[error("no key was given")]
    Empty,
    /// The text has the wrong length for a 32-byte key in its encoding.
    #[error("a key is {expected}; this one has {found} bytes")]
    WrongLength {
        /// What the encoding needs, in words.
        expected: &'static str,
        /// The length given (after trimming whitespace), in bytes.
        found: usize,
    },
    /// A character outside the encoding's alphabet (or a base64 `=` that
    /// is not the last character).
    #[error("the key has a character outside its alphabet at byte {position}")]
    InvalidCharacter {
        /// Byte offset from the key's first character (after any leading
        /// whitespace).
        position: usize,
    },
    /// The last base64 character carries bits past the 32 bytes: the key
    /// was altered or cut short.
    #[error("the key's last base64 character (byte {position}) does not end a 32-byte key")]
    InvalidLastCharacter {
        /// Byte offset from the key's first character.
        position: usize,
    },
}

/// A keyring configuration ([`Keyring::from_config`]) was refused. It names
/// the entry (counting from 1, in the order written) and the problem, never
/// a character of the text.
///
/// [`Keyring::from_config`]: crate::Keyring::from_config
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringConfigError {
    /// Nothing but whitespace was given.
    #[error("the key configuration is empty: give at least one `id:key` entry")]
    Empty,
    /// An entry holds nothing (two commas in a row, or one at either end).
    #[error("entry {entry} of the key configuration is empty")]
    EmptyEntry {
        /// Which entry, counting from 1.
        entry: usize,
    },
    /// An entry lacks the `:` between its key id and its key.
    #[error("entry {entry} of the key configuration lacks the `:` between key id and key")]
    MissingColon {
        /// Which entry, counting from 1.
        entry: usize,
    },
    /// An entry's key id is not a [`KeyId`].
    #[error("entry {entry} of the key configuration has an invalid key id: {source}")]
    InvalidId {
        /// Which entry, counting from 1.
        entry: usize,
        /// What is wrong with it.
        #[source]
        source: InvalidKeyId,
    },
    /// Two entries name the same key id, so a stored key id would be ambiguous.
    #[error("entry {entry} of the key configuration repeats key id {id} of entry {first}")]
    DuplicateId {
        /// Which entry, counting from 1.
        entry: usize,
        /// The entry that named the id first.
        first: usize,
        /// The id named twice.
        id: KeyId,
    },
    /// An entry's key is not 32 bytes in hex or base64.
    #[error("entry {entry} of the key configuration has an invalid key: {source}")]
    InvalidKey {
        /// Which entry, counting from 1.
        entry: usize,
        /// What is wrong with it.
        #[source]
        source: KeyTextError,
    },
}
