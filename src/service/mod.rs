//! The service: one [`TokenService`] that issues, verifies, revokes and
//! lists tokens. This is the only place that combines the token format, the
//! keys and the store. Each file holds one part of it:
//!
//! - `issue`: [`IssueRequest`] and minting a token;
//! - `verify`: the hot path, and [`VerifiedToken`];
//! - `manage`: revoking, looking up and listing a scope's tokens;
//! - `lifecycle`: rotation, scope-wide revocation, expiring soon, purge;
//! - `operator`: background jobs' access to every scope;
//! - `leaked`: revoking tokens found in leaked text, for whoever found them;
//! - `notices`: expiry notices, grouped for e-mails, once per window;
//! - `last_used`: writing down when tokens were used;
//! - `maintenance`: the background worker that does it, purges and sends
//!   expiry notices;
//! - `unconfirmed`: changes whose outcome the store did not confirm.
//!
//! Who may do what is decided in [`crate::authorization`], nowhere else.
//! Every management call that changes something, and every one refused for
//! lack of rights, goes to the service's [`AuditSink`].

mod changes;
mod issue;
mod last_used;
mod leaked;
mod lifecycle;
mod maintenance;
mod manage;
mod notices;
mod operator;
mod unconfirmed;
mod verify;

pub use changes::TokenEdit;
pub use issue::{IssueRequest, IssuedToken};
pub use last_used::DEFAULT_LAST_USED_INTERVAL;
pub use leaked::{LEAK_REPORTER, LeakedTokens, MAX_LEAKED_TOKENS};
pub use lifecycle::PURGE_BATCH;
pub use maintenance::{
    DEFAULT_FLUSH_EVERY, MAX_NOTICE_WINDOWS, MIN_FLUSH_EVERY, Maintenance, MaintenanceHandle,
};
pub use manage::Revoked;
pub use notices::{
    ExpiringToken, ExpiryNotice, ExpiryNoticeError, ExpiryNoticeSink, MAX_NOTICE_WINDOW,
    MIN_NOTICE_WINDOW, NOTICE_BATCH, NOTICE_BATCHES_PER_RUN, NOTICE_SEND_TIMEOUT, NoticesSent,
};
pub use operator::{CreatorRevoked, Operator, REVOKE_BATCH};
pub use verify::VerifiedToken;

use std::fmt;
use std::sync::Arc;

use time::{OffsetDateTime, UtcOffset};

use crate::actor::{Actor, Role};
use crate::audit::{
    AuditEvent, AuditQueue, AuditSink, DEFAULT_AUDIT_QUEUE_CAPACITY, FailureCounters, Operation,
    TracingAuditSink,
};
use crate::clock::{Clock, SystemClock};
use crate::error::LabelError;
use crate::error::{PolicyError, StoreError};
use crate::hashing::Keyring;
use crate::label::Label;
use crate::permissions::PermissionRegistry;
use crate::policy::ExpiryPolicy;
use crate::record::{TokenRecord, TokenSummary};
use crate::scope::Scope;
use crate::store::TokenStore;
use crate::token::{TokenFormat, TokenId};
use crate::usage::{OncePerInterval, UsageTracker};
use unconfirmed::Unconfirmed;

/// Issues, verifies, revokes and lists API tokens over a [`TokenStore`].
///
/// Share one service between all request handlers (for example in an `Arc`):
/// every method takes `&self`.
///
/// ```
/// use std::sync::Arc;
/// use api_tokens::{HashKey, KeyId, Keyring, MemoryStore, TokenFormat, TokenService};
///
/// let service = TokenService::new(
///     TokenFormat::new("acme")?,
///     Keyring::new(KeyId::new(1), HashKey::generate()?),
///     Arc::new(MemoryStore::new()),
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TokenService {
    format: TokenFormat,
    keys: Keyring,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    policy: ExpiryPolicy,
    /// The role of a token whose request names none.
    default_role: Role,
    /// Where audit events wait for the sink; no request waits for it.
    audit: AuditQueue,
    /// Writes whose outcome the store did not confirm, with their events.
    unconfirmed: Unconfirmed,
    failures: FailureCounters,
    /// `None` when last-used tracking is off.
    usage: Option<UsageTracker>,
    /// A retired token's use is audited once per token per interval.
    retired_reports: OncePerInterval,
    /// A use from outside a token's allowlist is audited once per token per
    /// interval.
    address_reports: OncePerInterval,
    /// The platform's permissions, for checking permission sets at issue.
    permissions: PermissionRegistry,
    /// Verification outcomes and sampled durations, reported to the
    /// recorder installed when the service was built.
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::VerifyMetrics,
}

impl TokenService {
    /// A service issuing tokens of `format`, hashing with `keys` and keeping
    /// records in `store`, reading the system clock, with no expiry policy,
    /// audit events going to `tracing`, and last-used tracking every
    /// [`DEFAULT_LAST_USED_INTERVAL`] (start
    /// [`spawn_maintenance`](Self::spawn_maintenance) to write them down).
    ///
    /// With feature `metrics`, the service reports to the
    /// `metrics` recorder installed when it is built (see the `metrics` module):
    /// install yours first.
    pub fn new(format: TokenFormat, keys: Keyring, store: Arc<dyn TokenStore>) -> Self {
        #[cfg(feature = "metrics")]
        crate::metrics::register_store_errors();
        TokenService {
            format,
            keys,
            store,
            clock: Arc::new(SystemClock),
            policy: ExpiryPolicy::default(),
            default_role: Role::Viewer,
            audit: AuditQueue::new(Arc::new(TracingAuditSink), DEFAULT_AUDIT_QUEUE_CAPACITY),
            unconfirmed: Unconfirmed::default(),
            failures: FailureCounters::default(),
            usage: Some(UsageTracker::new(DEFAULT_LAST_USED_INTERVAL)),
            retired_reports: OncePerInterval::new(DEFAULT_LAST_USED_INTERVAL),
            address_reports: OncePerInterval::new(DEFAULT_LAST_USED_INTERVAL),
            permissions: PermissionRegistry::new(),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::VerifyMetrics::new(),
        }
    }

    /// The same service, timing one verification in `one_in` (rounded up
    /// to a power of two, at most 2^31) on each thread for the duration
    /// histogram, instead of
    /// [`DEFAULT_LATENCY_SAMPLING`](crate::metrics::DEFAULT_LATENCY_SAMPLING);
    /// one in one times every call. Every call is counted either way.
    /// (Services sharing a thread share its call count: each times the
    /// calls that fall on its multiples.)
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn with_latency_sampling(mut self, one_in: std::num::NonZeroU32) -> Self {
        self.metrics = self.metrics.sampling(one_in);
        self
    }

    /// Hands the metrics recorder the verification counts not yet given
    /// to it (feature `metrics`). Verification counts each outcome in a
    /// stripe of its thread's own, so that cores do not fight over one
    /// counter, and hands the sums over at every timed call (one in
    /// [`DEFAULT_LATENCY_SAMPLING`](crate::metrics::DEFAULT_LATENCY_SAMPLING)
    /// per thread) and at the background worker's every flush. Call this
    /// before rendering a scrape for counts exact to the last call.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        self.metrics.publish();
    }

    /// The same service, issuing permission sets from `registry`: the
    /// platform's permission names and the lowest role granting each.
    /// Without one, every token has its role's rights and a request with a
    /// permission set is refused.
    #[must_use]
    pub fn with_permissions(mut self, registry: PermissionRegistry) -> Self {
        self.permissions = registry;
        self
    }

    /// The service's permission registry: where handlers get the
    /// [`Permission`](crate::Permission)s they check.
    pub fn permissions(&self) -> &PermissionRegistry {
        &self.permissions
    }

    /// The same service, reading time from `clock` (a
    /// [`ManualClock`](crate::testing::ManualClock) in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same service, applying `policy` to the lifetimes of new tokens.
    #[must_use]
    pub fn with_expiry_policy(mut self, policy: ExpiryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The rules new tokens' lifetimes are held to: what a form offers as
    /// expiry choices, say.
    pub fn expiry_policy(&self) -> ExpiryPolicy {
        self.policy
    }

    /// The same service, giving `role` to tokens whose [`IssueRequest`]
    /// names no role (instead of [`Role::Viewer`]). The issuer's role stays
    /// the ceiling: an issuer who holds less than `role` must name a role
    /// it holds, or is refused with [`IssueError::RoleTooHigh`](crate::IssueError::RoleTooHigh).
    #[must_use]
    pub fn with_default_role(mut self, role: Role) -> Self {
        self.default_role = role;
        self
    }

    /// The same service, sending audit events to `sink`. No request waits
    /// for it: see [`AuditSink`] for how events reach it.
    #[must_use]
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = AuditQueue::new(sink, self.audit.capacity());
        self
    }

    /// The same service, letting its audit sink fall at most `capacity`
    /// events behind (instead of [`DEFAULT_AUDIT_QUEUE_CAPACITY`]) before new
    /// events are dropped and counted. The queue takes memory for that many
    /// events when the sink is that far behind, and none otherwise.
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroCapacity`] for a capacity of zero.
    pub fn with_audit_queue_capacity(mut self, capacity: usize) -> Result<Self, PolicyError> {
        if capacity == 0 {
            return Err(PolicyError::ZeroCapacity);
        }
        self.audit = AuditQueue::new(self.audit.sink().clone(), capacity);
        Ok(self)
    }

    /// Waits until the store can answer: at once for most stores; for a
    /// `ReplicatedStore` (features `postgres`, `sqlite`), once its copy of
    /// every credential is loaded. Await it before serving traffic.
    ///
    /// # Errors
    ///
    /// What the store reports if it gave up getting ready.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store
            .ready()
            .await
            .inspect_err(|_| self.store_failed("ready"))
    }

    /// Waits until every audit event so far has reached the sink. The
    /// maintenance worker's shutdown calls it; call it yourself before
    /// shutting down a service that runs no worker, and in tests before reading a
    /// [`MemoryAuditSink`](crate::testing::MemoryAuditSink). Without a Tokio runtime
    /// (no delivery task can run) it is the only way events reach the sink.
    ///
    /// It first asks the store about the changes whose call failed before
    /// the store could confirm them (a deadline that fired after the server
    /// committed, say): the event of each that landed is sent now, once;
    /// one the store still does not show 30 seconds after its call is
    /// forgotten; the rest wait for the next flush (all of them, once the
    /// store fails a lookup).
    pub async fn flush_audit(&self) {
        let (landed, dropped) = self.unconfirmed.confirm(&*self.store).await;
        for event in landed {
            self.audit.send(event);
        }
        for _ in 0..dropped {
            self.audit.count_dropped();
        }
        self.audit.flush().await;
    }

    /// How many audit events were dropped since the service started:
    /// because the sink was a whole queue behind, or because more changes
    /// awaited the store's confirmation than are held (see
    /// [`flush_audit`](Self::flush_audit)). Export it to your metrics:
    /// anything above zero needs a look.
    pub fn audit_events_dropped(&self) -> u64 {
        self.audit.dropped()
    }

    /// The token format this service issues and accepts.
    pub fn format(&self) -> &TokenFormat {
        &self.format
    }

    fn summary(&self, record: &TokenRecord, now: OffsetDateTime) -> TokenSummary {
        TokenSummary {
            id: record.id,
            hint: self.format.hint(record.scope.kind(), record.id),
            label: record.label.clone(),
            scope: record.scope.clone(),
            role: record.role,
            status: record.status_at(now),
            created_at: record.created_at,
            created_by: record.created_by.clone(),
            expires_at: record.expires_at,
            revoked: record.revoked.clone(),
            last_used_at: record.last_used_at,
            rotated_from: record.rotated_from,
            replaced_by: record.replaced_by,
            restrictions: record.restrictions.clone(),
            disabled: record.disabled.clone(),
        }
    }

    /// A label or reason as kept: validated, with any token of this service
    /// someone pasted into it redacted, so no list, record or audit event
    /// ever holds one.
    fn label(&self, text: &str) -> Result<Label, LabelError> {
        Label::new(&self.format.redact(text))
    }

    /// Tells the audit sink that `actor` was refused `operation`.
    fn refused(
        &self,
        actor: &Actor,
        operation: Operation,
        scope: Option<&Scope>,
        token: Option<TokenId>,
    ) {
        self.audit.send(AuditEvent::Refused {
            at: self.now(),
            actor: actor.id.clone(),
            operation,
            scope: scope.cloned(),
            token,
        });
    }

    /// Counts a failed call of the store's `operation` (feature
    /// `metrics`; nothing without it). Use as
    /// `.inspect_err(|_| self.store_failed("insert"))`.
    #[inline]
    fn store_failed(&self, operation: &'static str) {
        #[cfg(feature = "metrics")]
        crate::metrics::store_error(operation);
        #[cfg(not(feature = "metrics"))]
        let _ = operation;
    }

    /// The time to write into a record. A clock so far off that its time has
    /// no UTC form (past the year 9999) is used as it reads.
    fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        stored_time(now).unwrap_or(now)
    }
}

/// Records keep UTC to the microsecond, the precision every backend shares,
/// so a record reads back exactly as it was written whatever the store.
/// `None` for a time whose UTC form lies beyond the representable years.
fn stored_time(at: OffsetDateTime) -> Option<OffsetDateTime> {
    Some(
        at.checked_to_offset(UtcOffset::UTC)?
            .truncate_to_microsecond(),
    )
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("format", &self.format)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}
