//! The audit trail: who issued, rotated and revoked what, who was refused,
//! and how many verifications failed, by reason.
//!
//! The service hands an [`AuditEvent`] to its [`AuditSink`] after every
//! management operation that changed something and every one it refused.
//! Failed verifications are not events (a flood of bad tokens must not flood
//! the sink): they are counted, by reason, in [`VerifyFailures`]. The one
//! verification that is an event is the use of a rotated token after its
//! grace period: a client still holding an old credential, or a leaked copy.
//!
//! No event or counter holds a token, a secret or a digest: only public ids,
//! scopes, roles and labels.
//!
//! No request waits for the sink: events go through a bounded queue to a
//! task that delivers them in order ([`queue`] has the details and bounds).

mod queue;

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::actor::Role;
use crate::error::VerifyError;
use crate::ids::ActorId;
use std::net::IpAddr;

use crate::label::Label;
use crate::restrictions::Restrictions;
use crate::scope::Scope;
use crate::store::ExpiryChange;
use crate::token::TokenId;

pub(crate) use queue::AuditQueue;
pub use queue::DEFAULT_AUDIT_QUEUE_CAPACITY;

/// Something the audit trail records. Every variant says when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A token was issued.
    Issued {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who issued it.
        actor: ActorId,
        /// The new token's id.
        token: TokenId,
        /// Its scope.
        scope: Scope,
        /// Its role.
        role: Role,
        /// Its label.
        label: Label,
        /// What narrows it (left out of the serde form when nothing does).
        #[serde(skip_serializing_if = "Restrictions::is_unrestricted")]
        restrictions: Restrictions,
    },
    /// A token was rotated: a successor issued, the old one given a grace
    /// period (or revoked, for a rotation without grace).
    Rotated {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who rotated it.
        actor: ActorId,
        /// The replaced token.
        old: TokenId,
        /// The successor.
        new: TokenId,
        /// Their scope.
        scope: Scope,
        /// Their role.
        role: Role,
        /// Their label.
        label: Label,
        /// When the old token stops verifying (now, for no grace).
        #[serde(with = "time::serde::rfc3339")]
        old_valid_until: OffsetDateTime,
    },
    /// A token was revoked.
    Revoked {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who revoked it.
        actor: ActorId,
        /// The token.
        token: TokenId,
        /// Its scope.
        scope: Scope,
        /// Its role; `None` for a stored record damaged so that it could
        /// not be read back (revoked by id and scope).
        role: Option<Role>,
        /// Its label; `None` as for `role`.
        label: Option<Label>,
        /// Why, if the revoker said.
        reason: Option<Label>,
    },
    /// A token found in leaked text was revoked by
    /// [`TokenService::revoke_leaked`](crate::TokenService::revoke_leaked):
    /// whoever submitted the text held its secret, and that proved the
    /// right to end it.
    LeakRevoked {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who revoked it: the operator, or
        /// [`LEAK_REPORTER`](crate::LEAK_REPORTER) for an anonymous report.
        actor: ActorId,
        /// The token.
        token: TokenId,
        /// Its scope.
        scope: Scope,
        /// Where the text came from, as the caller described it (a paste
        /// site, a report form, a file).
        source: Label,
    },
    /// Every live token of a scope (and, for an organization, of its domains)
    /// was revoked at once.
    ScopeRevoked {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who revoked them.
        actor: ActorId,
        /// The scope.
        scope: Scope,
        /// Why, if the revoker said.
        reason: Option<Label>,
        /// How many tokens this revoked (not those revoked before).
        count: u64,
        /// The first of them, at most
        /// [`REPORTED_IDS`](crate::store::REPORTED_IDS): the event stays
        /// small however large the scope.
        first_tokens: Vec<TokenId>,
    },
    /// Every live token a person created was revoked, by a background job
    /// ([`Operator::revoke_created_by`](crate::Operator::revoke_created_by)):
    /// offboarding.
    CreatorRevoked {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The job that revoked them.
        actor: ActorId,
        /// Whose tokens.
        creator: ActorId,
        /// Why, if the job said.
        reason: Option<Label>,
        /// How many tokens this revoked (not those revoked before).
        count: u64,
        /// The first of them, at most
        /// [`REPORTED_IDS`](crate::store::REPORTED_IDS).
        first_tokens: Vec<TokenId>,
    },
    /// Tokens that ended (revoked or expired) before a cutoff were deleted
    /// by [`TokenService::purge`](crate::TokenService::purge).
    Purged {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The cutoff: tokens that ended before it.
        #[serde(with = "time::serde::rfc3339")]
        before: OffsetDateTime,
        /// How many were deleted.
        count: u64,
    },
    /// A management operation was refused because the actor lacks the
    /// rights, or named a token it may not manage or that does not exist.
    /// The last two are one event, as they are one answer to the actor
    /// (no such token), so that neither the answer nor the work behind it
    /// tells another tenant's token from a missing one.
    Refused {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who tried.
        actor: ActorId,
        /// What they tried.
        operation: Operation,
        /// The scope they named, if they named one.
        scope: Option<Scope>,
        /// The token they named, if they named one.
        token: Option<TokenId>,
    },
    /// A token was disabled (paused).
    Disabled {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who disabled it.
        actor: ActorId,
        /// The token.
        token: TokenId,
        /// Its scope.
        scope: Scope,
    },
    /// A disabled token was enabled again.
    Enabled {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who enabled it.
        actor: ActorId,
        /// The token.
        token: TokenId,
        /// Its scope.
        scope: Scope,
    },
    /// A token's label or expiry was edited.
    Edited {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Who edited it.
        actor: ActorId,
        /// The token.
        token: TokenId,
        /// Its scope.
        scope: Scope,
        /// The new label, if it changed.
        label: Option<Label>,
        /// The expiry before and after, if it changed.
        expiry: Option<ExpiryChange>,
    },
    /// A token with an allowlist was presented (with the right secret) by
    /// a client outside it, or without a client address. Once a minute per
    /// token at most: the refusals themselves are counted in
    /// [`VerifyFailures::address_not_allowed`].
    AddressRefused {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The token.
        token: TokenId,
        /// Its scope.
        scope: Scope,
        /// The client's address, if the caller gave one.
        client: Option<IpAddr>,
    },
    /// A rotated token was presented after its grace period ended (with the
    /// right secret): a client not yet moved to the successor, or a leak.
    RetiredTokenUsed {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The retired token.
        token: TokenId,
        /// The token that replaced it.
        replaced_by: Option<TokenId>,
        /// Its scope.
        scope: Scope,
    },
}

impl AuditEvent {
    /// What happened, as the `event` field of its serde form names it:
    /// `issued`, `rotated`, `revoked`, `leak_revoked`, `scope_revoked`, `creator_revoked`,
    /// `purged`, `refused`, `disabled`, `enabled`, `edited`,
    /// `address_refused`, `retired_token_used`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::Disabled { .. } => "disabled",
            AuditEvent::Enabled { .. } => "enabled",
            AuditEvent::Edited { .. } => "edited",
            AuditEvent::AddressRefused { .. } => "address_refused",
            AuditEvent::Issued { .. } => "issued",
            AuditEvent::Rotated { .. } => "rotated",
            AuditEvent::Revoked { .. } => "revoked",
            AuditEvent::LeakRevoked { .. } => "leak_revoked",
            AuditEvent::ScopeRevoked { .. } => "scope_revoked",
            AuditEvent::CreatorRevoked { .. } => "creator_revoked",
            AuditEvent::Purged { .. } => "purged",
            AuditEvent::Refused { .. } => "refused",
            AuditEvent::RetiredTokenUsed { .. } => "retired_token_used",
        }
    }

    /// When it happened.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            AuditEvent::Issued { at, .. }
            | AuditEvent::Rotated { at, .. }
            | AuditEvent::Revoked { at, .. }
            | AuditEvent::LeakRevoked { at, .. }
            | AuditEvent::ScopeRevoked { at, .. }
            | AuditEvent::CreatorRevoked { at, .. }
            | AuditEvent::Purged { at, .. }
            | AuditEvent::Refused { at, .. }
            | AuditEvent::Disabled { at, .. }
            | AuditEvent::Enabled { at, .. }
            | AuditEvent::Edited { at, .. }
            | AuditEvent::AddressRefused { at, .. }
            | AuditEvent::RetiredTokenUsed { at, .. } => *at,
        }
    }

    /// Who acted; `None` for what no actor did (a purge, a retired token's
    /// use).
    pub fn actor(&self) -> Option<&ActorId> {
        match self {
            AuditEvent::Issued { actor, .. }
            | AuditEvent::Rotated { actor, .. }
            | AuditEvent::Revoked { actor, .. }
            | AuditEvent::LeakRevoked { actor, .. }
            | AuditEvent::ScopeRevoked { actor, .. }
            | AuditEvent::CreatorRevoked { actor, .. }
            | AuditEvent::Refused { actor, .. }
            | AuditEvent::Disabled { actor, .. }
            | AuditEvent::Enabled { actor, .. }
            | AuditEvent::Edited { actor, .. } => Some(actor),
            AuditEvent::Purged { .. }
            | AuditEvent::AddressRefused { .. }
            | AuditEvent::RetiredTokenUsed { .. } => None,
        }
    }

    /// The scope it concerns, if one: the token's, or the one named.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            AuditEvent::Issued { scope, .. }
            | AuditEvent::Rotated { scope, .. }
            | AuditEvent::Revoked { scope, .. }
            | AuditEvent::LeakRevoked { scope, .. }
            | AuditEvent::ScopeRevoked { scope, .. }
            | AuditEvent::Disabled { scope, .. }
            | AuditEvent::Enabled { scope, .. }
            | AuditEvent::Edited { scope, .. }
            | AuditEvent::AddressRefused { scope, .. }
            | AuditEvent::RetiredTokenUsed { scope, .. } => Some(scope),
            AuditEvent::Refused { scope, .. } => scope.as_ref(),
            AuditEvent::CreatorRevoked { .. } | AuditEvent::Purged { .. } => None,
        }
    }

    /// The token it concerns, if one: for a rotation the old token (the
    /// successor is in the event).
    pub fn token_id(&self) -> Option<TokenId> {
        match self {
            AuditEvent::Issued { token, .. }
            | AuditEvent::Revoked { token, .. }
            | AuditEvent::LeakRevoked { token, .. }
            | AuditEvent::Disabled { token, .. }
            | AuditEvent::Enabled { token, .. }
            | AuditEvent::Edited { token, .. }
            | AuditEvent::AddressRefused { token, .. }
            | AuditEvent::RetiredTokenUsed { token, .. } => Some(*token),
            AuditEvent::Rotated { old, .. } => Some(*old),
            AuditEvent::Refused { token, .. } => *token,
            AuditEvent::ScopeRevoked { .. }
            | AuditEvent::CreatorRevoked { .. }
            | AuditEvent::Purged { .. } => None,
        }
    }
}

/// A management operation, as [`AuditEvent::Refused`] names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// Issuing a token.
    Issue,
    /// Listing a scope's tokens.
    List,
    /// Revoking a token.
    Revoke,
    /// Revoking every token of a scope.
    RevokeScope,
    /// Rotating a token.
    Rotate,
    /// Disabling or enabling a token.
    Disable,
    /// Editing a token's label or expiry.
    Edit,
}

impl Operation {
    /// Its name, as in its serde form: `issue`, `list`, `revoke`,
    /// `revoke_scope`, `rotate`, `disable`, `edit`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Issue => "issue",
            Operation::List => "list",
            Operation::Revoke => "revoke",
            Operation::RevokeScope => "revoke_scope",
            Operation::Rotate => "rotate",
            Operation::Disable => "disable",
            Operation::Edit => "edit",
        }
    }
}

/// Where audit events go: a log, a table, a message queue. Object safe; the
/// service holds an `Arc<dyn AuditSink>`.
///
/// The service never waits for a sink. It hands each event to a bounded
/// queue and goes on; a task of its own calls `record` with one event at a
/// time, in the order they happened, so a slow sink slows nothing but the
/// delivery of events. When the sink falls [a queue's
/// worth](crate::TokenService::with_audit_queue_capacity) behind, new events
/// are dropped and counted
/// ([`audit_events_dropped`](crate::TokenService::audit_events_dropped)).
/// [`flush_audit`](crate::TokenService::flush_audit) waits until every
/// event so far has been recorded: call it before shutting down.
///
/// `record` cannot fail: a sink that can lose events (a lost connection)
/// decides itself whether to retry, buffer or drop, and says so in its own
/// monitoring. An event leaves the queue only once `record` has returned,
/// so a delivery cut off midway (its Tokio runtime shut down) is made again
/// later: rarely, a sink may see an event twice, never miss one that was
/// queued.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Keeps `event`.
    async fn record(&self, event: AuditEvent);
}

/// The default sink: each event becomes one `tracing` event at `INFO`, with
/// target `api_tokens::audit` and one field per fact, so a log pipeline can
/// filter on them: `event` (its [kind](AuditEvent::kind)), `at`, `actor`,
/// `token_id`, `scope`, and where the event has them `role`, `label`,
/// `reason`, `operation`, `count`, `creator`, `successor`, `replaced_by`,
/// `valid_until`, `before`, `first_tokens`. None of them holds a secret.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAuditSink;

#[async_trait]
impl AuditSink for TracingAuditSink {
    async fn record(&self, event: AuditEvent) {
        use tracing::field::display;
        // The facts every event may have, then one call per shape: `tracing`
        // fields are fixed at compile time, and an absent value is left out
        // rather than logged empty.
        let (kind, at) = (event.kind(), rfc3339(event.at()));
        let actor = event.actor().map(quoted);
        let scope = event.scope().map(quoted);
        let token_id = event.token_id().map(display);
        macro_rules! audit {
            ($($fields:tt)*) => {
                tracing::info!(
                    target: "api_tokens::audit",
                    event = kind, %at, actor, token_id, scope, $($fields)*
                )
            };
        }
        match &event {
            AuditEvent::Issued {
                role,
                label,
                restrictions,
                ..
            } => audit!(
                %role, label = quoted(label),
                permissions = restrictions.permissions.as_deref().map(|set| display(joined(set))),
                allowed_networks = restrictions.allowed_networks.as_deref().map(|set| display(joined(set))),
                rate_limit = restrictions.rate_limit.map(display),
                "api token issued"
            ),
            AuditEvent::Disabled { .. } => audit!("api token disabled"),
            AuditEvent::Enabled { .. } => audit!("api token enabled"),
            AuditEvent::Edited { label, expiry, .. } => audit!(
                label = label.as_ref().map(quoted),
                expires_at = expiry
                    .map(|change| display(change.to.map_or_else(|| "never".to_owned(), rfc3339))),
                "api token edited"
            ),
            AuditEvent::AddressRefused { client, .. } => audit!(
                client = client.map(display),
                "api token refused: client address not allowed"
            ),
            AuditEvent::Rotated {
                new,
                role,
                label,
                old_valid_until,
                ..
            } => audit!(
                successor = %new, %role, label = quoted(label),
                valid_until = %rfc3339(*old_valid_until), "api token rotated"
            ),
            AuditEvent::Revoked {
                role,
                label,
                reason,
                ..
            } => audit!(
                role = role.map(display),
                label = label.as_ref().map(quoted),
                reason = reason.as_ref().map(quoted),
                "api token revoked"
            ),
            AuditEvent::LeakRevoked { source, .. } => {
                audit!(source = quoted(source), "leaked api token revoked")
            }
            AuditEvent::ScopeRevoked {
                reason,
                count,
                first_tokens,
                ..
            } => audit!(
                count, reason = reason.as_ref().map(quoted),
                first_tokens = %ids(first_tokens), "api tokens of a scope revoked"
            ),
            AuditEvent::CreatorRevoked {
                creator,
                reason,
                count,
                first_tokens,
                ..
            } => audit!(
                creator = quoted(creator), count, reason = reason.as_ref().map(quoted),
                first_tokens = %ids(first_tokens), "api tokens of a creator revoked"
            ),
            AuditEvent::Purged { before, count, .. } => audit!(
                before = %rfc3339(*before), count, "ended api tokens purged"
            ),
            AuditEvent::Refused { operation, .. } => {
                audit!(operation = operation.name(), "api token operation refused")
            }
            AuditEvent::RetiredTokenUsed { replaced_by, .. } => audit!(
                replaced_by = replaced_by.map(display),
                "retired api token used"
            ),
        }
    }
}

/// Token ids for one log field: `id1,id2,…`.
fn ids(ids: &[TokenId]) -> String {
    joined(ids)
}

/// Values for one log field, comma-separated (none of them holds a comma).
fn joined(values: &[impl std::fmt::Display]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A field value a plain-text log cannot misread: quoted, with quotes and
/// control characters escaped, so a label holding ` role=owner` stays one
/// value.
fn quoted(value: &impl std::fmt::Display) -> tracing::field::DebugValue<String> {
    tracing::field::debug(value.to_string())
}

/// A time as the serialized events write it (RFC 3339).
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// How many verifications failed, by reason, since the service started.
/// Counted instead of logged, so a flood of bad tokens costs an increment
/// each, not a log line each. Read it with
/// [`TokenService::verify_failures`](crate::TokenService::verify_failures)
/// and export it to your metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyFailures {
    /// Not shaped like a token (the store was not asked).
    pub malformed: u64,
    /// Unknown id, wrong secret, or a key no longer held.
    pub invalid: u64,
    /// Revoked tokens.
    pub revoked: u64,
    /// Expired tokens (retired rotated ones included).
    pub expired: u64,
    /// Disabled tokens.
    pub disabled: u64,
    /// Tokens used from outside their allowlist, or with no client address.
    pub address_not_allowed: u64,
    /// The store failed.
    pub store: u64,
}

/// Why a verification failed: the reasons [`VerifyFailures`] counts, one
/// counter each (and, with feature `metrics`, one `outcome` label value
/// each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureReason {
    Malformed,
    Invalid,
    Revoked,
    Expired,
    Disabled,
    AddressNotAllowed,
    Store,
}

impl FailureReason {
    /// Every reason, in the order of its discriminant.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const ALL: [FailureReason; 7] = [
        FailureReason::Malformed,
        FailureReason::Invalid,
        FailureReason::Revoked,
        FailureReason::Expired,
        FailureReason::Disabled,
        FailureReason::AddressNotAllowed,
        FailureReason::Store,
    ];

    pub(crate) fn of(error: &VerifyError) -> FailureReason {
        match error {
            VerifyError::Malformed(_) => FailureReason::Malformed,
            VerifyError::Invalid => FailureReason::Invalid,
            VerifyError::Revoked => FailureReason::Revoked,
            VerifyError::Expired => FailureReason::Expired,
            VerifyError::Disabled => FailureReason::Disabled,
            VerifyError::AddressNotAllowed => FailureReason::AddressNotAllowed,
            VerifyError::Store(_) => FailureReason::Store,
        }
    }

    /// Its value of the verification metric's `outcome` label.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            FailureReason::Malformed => "malformed",
            FailureReason::Invalid => "invalid",
            FailureReason::Revoked => "revoked",
            FailureReason::Expired => "expired",
            FailureReason::Disabled => "disabled",
            FailureReason::AddressNotAllowed => "address_not_allowed",
            FailureReason::Store => "store_error",
        }
    }
}

/// The live counters behind [`VerifyFailures`], indexed by
/// [`FailureReason`].
#[derive(Debug, Default)]
pub(crate) struct FailureCounters {
    counts: [AtomicU64; FailureReason::ALL.len()],
}

impl FailureCounters {
    pub(crate) fn count(&self, error: &VerifyError) {
        // Only a tally: no other memory depends on its order.
        self.counts[FailureReason::of(error) as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> VerifyFailures {
        let read = |reason: FailureReason| self.counts[reason as usize].load(Ordering::Relaxed);
        VerifyFailures {
            malformed: read(FailureReason::Malformed),
            invalid: read(FailureReason::Invalid),
            revoked: read(FailureReason::Revoked),
            expired: read(FailureReason::Expired),
            disabled: read(FailureReason::Disabled),
            address_not_allowed: read(FailureReason::AddressNotAllowed),
            store: read(FailureReason::Store),
        }
    }
}
