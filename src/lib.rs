//! API tokens for multi-tenant platforms: organizations own domains, an
//! organization admin creates tokens for the organization, a domain admin for
//! one domain. A token is shown once, only its keyed hash is kept, the token
//! list shows labels and metadata, and a revoked token never verifies again.
//!
//! ```
//! use std::sync::Arc;
//! use api_tokens::{
//!     Actor, ActorId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId,
//!     Role, Scope, TokenFormat, TokenService,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let service = TokenService::new(
//!     TokenFormat::new("acme")?,                          // tokens start with "acme"
//!     Keyring::new(KeyId::new(1), HashKey::generate()?), // load yours from a secret manager
//!     Arc::new(MemoryStore::new()),
//! );
//!
//! let org = Scope::organization(OrganizationId::new("org_42")?);
//! let alice = Actor::new(ActorId::new("alice")?).with_grant(org.clone(), Role::Admin);
//!
//! // Create Token: the text is returned this once.
//! // The role asked for (Viewer if none), never above the issuer's.
//! let request = IssueRequest::new(org.clone(), "CI deploys").role(Role::Editor);
//! let issued = service.issue(&alice, request).await?;
//! let text = issued.token.expose_secret();
//!
//! // Every request: what does this token grant?
//! let verified = service.verify(text).await?;
//! assert!(verified.allows(&org, Role::Editor));
//!
//! // Revoke: from now on it fails everywhere.
//! service.revoke(&alice, &org, verified.id()).await?;
//! assert!(service.verify(text).await.is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # The model
//!
//! - A [`Scope`] is an organization or one domain of it; an organization
//!   scope [covers](Scope::covers) its domains.
//! - An [`Actor`] holds [`Grant`]s: a [`Role`] at a scope. Managing tokens
//!   needs [`Role::Admin`] at the token's scope.
//! - A token is issued for a scope with a role, never above its issuer's.
//!   [`TokenService::verify`] returns a [`VerifiedToken`] whose
//!   [`allows`](VerifiedToken::allows) checks a request in one line.
//! - A token may do less than its role: a permission set from the
//!   platform's [`PermissionRegistry`], an allowlist of client
//!   [`IpNetwork`]s ([`TokenService::verify_from`]), a [`RateLimit`] (the
//!   HTTP layer enforces it). It may be paused
//!   ([`TokenService::disable`]) and edited ([`TokenService::edit`]).
//!
//! # Tokens and secrets
//!
//! A token looks like `acmeo_3kT9QxPb1Zr` followed by 49 more characters: a
//! per-service prefix, `o` or `d` for the scope kind, a public id, a 256-bit
//! secret and a CRC32 checksum ([`TokenFormat`] has the layout, and the
//! [regex](TokenFormat::regex_pattern) secret scanners can use). Stores keep
//! `BLAKE3-keyed(key, id ‖ secret)` and the id of the key; keys can be
//! rotated with a [`Keyring`]. Digests compare in constant time, and an
//! unknown id costs the same as a wrong secret.
//!
//! [`PlaintextToken`], [`HashKey`] and [`Keyring`] never print their secrets,
//! are not `Serialize`, and are wiped on drop. Keys load from text with
//! [`Keyring::from_config`] (`"2:<new key>,1:<old key>"`, current first) or
//! [`HashKey::from_hex`], which wipe the text they are given.
//!
//! # Text forms
//!
//! [`Role`], [`Scope`], [`KeyId`], [`Cursor`], [`ExpiryCursor`],
//! [`PermissionName`] and [`IpNetwork`] each have one text form: `Display` writes it, `FromStr` reads it back, and serde
//! uses the same string (`"admin"`, `"domain acme/shop"`, `"7"`, an
//! opaque URL-safe cursor, `"notifications:send"`, `"10.0.0.0/8"`), so a value reads the same in a log line, a URL
//! and a JSON body.
//!
//! # Storage and features
//!
//! | what | feature | for |
//! |---|---|---|
//! | [`MemoryStore`] | always built | tests, single-process services, prototypes |
//! | `SqliteStore` | `sqlite` | one instance that keeps its tokens across restarts: one file |
//! | `PostgresStore` | `postgres` | many instances sharing tokens and revocations |
//! | `PostgresStore` over TLS | `postgres-tls` | managed servers that require TLS (`sslmode=verify-full`) |
//! | `ReplicatedStore` over either SQL store | `postgres` or `sqlite` | verification from an in-process copy, never a database round trip, with a stated bound on how late a revocation takes effect (one second by default) |
//! | `conformance`: the store contract as a test suite | `conformance` | testing a store of your own |
//! | your own store | — | implement [`TokenStore`]: twelve small async methods |
//! | `http`: tower middleware and axum extractor | `axum` | protecting HTTP routes with `Authorization: Bearer` tokens |
//! | `metrics`: verification outcomes and latency, store errors, issues and revocations, replica lag | `metrics` | dashboards, through the `metrics` facade and the exporter of your choice |
//!
//! # A token's life
//!
//! - [`TokenService::rotate`] issues a successor and lets the old token work
//!   through a grace period; [`TokenService::revoke_scope`] revokes a whole
//!   organization's or domain's tokens at once.
//! - An [`ExpiryPolicy`] gives default and maximum lifetimes;
//!   [`TokenService::list_expiring`] finds the tokens to warn about.
//! - Verification notes when a token was last used, at most once per
//!   interval; the list shows them once written. **Start the background
//!   worker**, [`TokenService::spawn_maintenance`]: it writes them every few
//!   seconds (verification never writes, so without it no use is ever
//!   recorded), purges ended tokens if asked, and flushes on shutdown.
//! - Background jobs that act for the platform, not a user (the
//!   expiring-soon mailer, offboarding), use [`TokenService::operator`]:
//!   lists across scopes, and [`Operator::revoke_created_by`].
//! - Every change and every refused attempt goes to an [`AuditSink`]
//!   ([`TracingAuditSink`] by default) through a bounded queue, so no
//!   request waits for it; the worker's shutdown flushes it
//!   ([`TokenService::flush_audit`] without a worker). Failed verifications are counted in [`VerifyFailures`],
//!   not logged one by one.
//! - [`TokenFormat::find_tokens`] and [`TokenFormat::redact`] find and mask
//!   leaked tokens in text; [`TokenFormat::detect_secrets_plugin`] and
//!   [`TokenFormat::gitleaks_config`] teach secret scanners to find them.
//!
//! # Time
//!
//! The service reads time from a [`Clock`]; tests use a
//! [`ManualClock`](testing::ManualClock) and
//! move it. Records keep UTC to the microsecond.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod actor;
mod audit;
mod authorization;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod hashing;
#[cfg(feature = "axum")]
pub mod http;
mod ids;
mod label;
#[cfg(feature = "metrics")]
pub mod metrics;
mod networks;
mod page;
mod permissions;
mod policy;
mod record;
mod restrictions;
mod scan;
mod scanner_rules;
mod scope;
mod service;
pub mod store;
pub mod testing;
mod text;
mod token;
mod usage;

pub use actor::{Actor, Grant, Role};
/// The attribute every implementation of [`AuditSink`] or [`TokenStore`]
/// needs on its `impl` block (`#[api_tokens::async_trait]`), re-exported so
/// that writing one takes no other dependency.
pub use async_trait::async_trait;
pub use audit::{
    AuditEvent, AuditSink, DEFAULT_AUDIT_QUEUE_CAPACITY, Operation, TracingAuditSink,
    VerifyFailures,
};
pub use authorization::Requirement;
pub use clock::{Clock, SystemClock};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use error::TableNameError;
pub use error::{
    BoxError, CursorError, IdError, InvalidKeyId, InvalidRole, InvalidTokenId, IssueError,
    KeyTextError, KeyringConfigError, KeyringError, LabelError, ListError, LookupError,
    MalformedToken, NetworkError, PermissionError, PolicyError, PrefixError, RandomSourceError,
    RateLimitError, RevokeCreatedByError, RevokeError, RevokeLeakedError, RevokeScopeError,
    RotateError, ScopeParseError, StoreError, UpdateError, VerifyError,
};
pub use hashing::{Digest, HashKey, KeyId, Keyring};
pub use ids::{ActorId, DomainId, MAX_ID_LEN, OrganizationId};
pub use label::{Label, MAX_LABEL_CHARS};
pub use networks::{IpNetwork, MAX_ALLOWED_NETWORKS};
pub use page::{Cursor, ExpiryCursor, MAX_PAGE_SIZE, PageRequest, TokenPage};
pub use permissions::{
    MAX_PERMISSION_LEN, MAX_REGISTRY_PERMISSIONS, MAX_TOKEN_PERMISSIONS, Permission,
    PermissionName, PermissionRegistry,
};
pub use policy::{Expiry, ExpiryPolicy, MAX_LIFETIME};
pub use record::{
    DamagedToken, Disablement, Revocation, StoredCredential, TokenRecord, TokenStatus, TokenSummary,
};
pub use restrictions::{RATE_LIMIT_PERIOD_SECS, RATE_LIMIT_REQUESTS, RateLimit, Restrictions};
pub use scan::FoundToken;
pub use scope::{Scope, ScopeKind};
pub use service::{
    CreatorRevoked, DEFAULT_FLUSH_EVERY, DEFAULT_LAST_USED_INTERVAL, IssueRequest, IssuedToken,
    LEAK_REPORTER, LeakedTokens, MAX_LEAKED_TOKENS, MIN_FLUSH_EVERY, Maintenance,
    MaintenanceHandle, Operator, PURGE_BATCH, REVOKE_BATCH, Revoked, TokenEdit, TokenService,
    VerifiedToken,
};
pub use service::{
    ExpiringToken, ExpiryNotice, ExpiryNoticeError, ExpiryNoticeSink, MAX_NOTICE_WINDOW,
    MAX_NOTICE_WINDOWS, MIN_NOTICE_WINDOW, NOTICE_BATCH, NOTICE_BATCHES_PER_RUN,
    NOTICE_SEND_TIMEOUT, NoticesSent,
};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, TokenStore};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::{ReplicaOptions, ReplicatedStore};
pub use token::{ParsedToken, PlaintextToken, TokenFormat, TokenId};
/// The wrapper that wipes a value on drop, as
/// [`HashKey::generate_text`] returns its text in: re-exported so a
/// service need not depend on `zeroize` itself.
pub use zeroize::Zeroizing;

// The README's examples compile and run as doctests. One of them shows the
// `axum` feature, so they are checked with it on, as the README's own
// `cargo test --all-features` does.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
