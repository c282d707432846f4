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
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::actor::Role;
use crate::error::VerifyError;
use crate::ids::ActorId;
use crate::label::Label;
use crate::scope::Scope;
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
/// target `api_tokens::audit` and the event as a structured field.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAuditSink;

#[async_trait]
impl AuditSink for TracingAuditSink {
    async fn record(&self, event: AuditEvent) {
        tracing::info!(target: "api_tokens::audit", ?event, "api token audit event");
    }
}

/// Keeps every event in memory, in order: for tests, including yours. It
/// never forgets one, so it grows with every event: not for production.
/// Call [`TokenService::flush_audit`](crate::TokenService::flush_audit)
/// before reading it, so every event so far has arrived.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event recorded so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
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
    /// The store failed.
    pub store: u64,
}

/// The live counters behind [`VerifyFailures`].
#[derive(Debug, Default)]
pub(crate) struct FailureCounters {
    malformed: AtomicU64,
    invalid: AtomicU64,
    revoked: AtomicU64,
    expired: AtomicU64,
    store: AtomicU64,
}

impl FailureCounters {
    pub(crate) fn count(&self, error: &VerifyError) {
        let counter = match error {
            VerifyError::Malformed(_) => &self.malformed,
            VerifyError::Invalid => &self.invalid,
            VerifyError::Revoked => &self.revoked,
            VerifyError::Expired => &self.expired,
            VerifyError::Store(_) => &self.store,
        };
        // Only a tally: no other memory depends on its order.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> VerifyFailures {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        VerifyFailures {
            malformed: read(&self.malformed),
            invalid: read(&self.invalid),
            revoked: read(&self.revoked),
            expired: read(&self.expired),
            store: read(&self.store),
        }
    }
}
