//! What the crate reports to the [`metrics`] facade (feature `metrics`),
//! and under which names.
//!
//! The names follow Prometheus's conventions: an `api_tokens_` prefix,
//! `_total` on counters, base units (`_seconds`). Labels take only a
//! fixed, small set of values (an outcome, a store operation), never a
//! token id, organization, actor or label, so the number of series does
//! not grow with tenants or traffic.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | [`VERIFICATIONS`] | counter | `outcome` | verifications, by outcome |
//! | [`VERIFICATION_DURATION`] | histogram | — | how long a verification took, one call in [`DEFAULT_LATENCY_SAMPLING`] per thread |
//! | [`STORE_ERRORS`] | counter | `operation` | store calls of the service that failed, by store method |
//! | [`TOKENS_ISSUED`] | counter | — | tokens issued (not rotation successors) |
//! | [`TOKENS_REVOKED`] | counter | — | tokens revoked: one by one, by scope, by creator, found leaked |
//! | [`TOKENS_ROTATED`] | counter | — | tokens rotated |
//! | [`AUDIT_EVENTS_DROPPED`] | counter | — | audit events lost |
//! | [`REPLICA_LAG`] | gauge | — | how long ago a `ReplicatedStore` was last proven current |
//!
//! **Install the recorder before building the service** (and the
//! replica): a [`TokenService`](crate::TokenService) resolves its metric
//! handles once, when it is built, so the hot path never looks a name up.
//! A service built before any recorder was installed reports nothing.
//!
//! Verification outcomes reach the recorder in batches, so that cores do
//! not fight over one counter: at every timed call, at every flush of the
//! background worker, and at
//! [`TokenService::publish_metrics`](crate::TokenService::publish_metrics),
//! which a `/metrics` handler calls before rendering for counts exact to
//! the last call.
//!
//! ```
//! use std::sync::Arc;
//! use api_tokens::{HashKey, KeyId, Keyring, MemoryStore, TokenFormat, TokenService};
//!
//! // First: install the recorder of your choice (e.g.
//! // metrics-exporter-prometheus's `PrometheusBuilder::install_recorder`,
//! // giving `VERIFICATION_DURATION_BUCKETS` to `set_buckets_for_metric`).
//! api_tokens::metrics::describe_metrics();
//! let service = TokenService::new(
//!     TokenFormat::new("acme")?,
//!     Keyring::new(KeyId::new(1), HashKey::generate()?),
//!     Arc::new(MemoryStore::new()),
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use metrics::{Counter, Histogram, Unit};

use crate::audit::{AuditEvent, FailureReason};
use crate::error::VerifyError;

/// `api_tokens_verifications_total`, counter, label `outcome`: `valid`,
/// `malformed`, `invalid` (unknown id or wrong secret), `revoked`,
/// `expired`, `disabled`, `address_not_allowed`, `store_error`. The same
/// reasons [`VerifyFailures`](crate::VerifyFailures) counts, plus `valid`.
pub const VERIFICATIONS: &str = "api_tokens_verifications_total";

/// `api_tokens_verification_duration_seconds`, histogram: how long a
/// [`verify`](crate::TokenService::verify) or
/// [`verify_from`](crate::TokenService::verify_from) took, valid or not,
/// for one call in [`DEFAULT_LATENCY_SAMPLING`] on each thread (set with
/// [`TokenService::with_latency_sampling`](crate::TokenService::with_latency_sampling)).
/// Its count is therefore the sampled calls, not all of them: count calls
/// with [`VERIFICATIONS`].
pub const VERIFICATION_DURATION: &str = "api_tokens_verification_duration_seconds";

/// `api_tokens_store_errors_total`, counter, label `operation`: the
/// [`TokenStore`](crate::TokenStore) method that failed when the service
/// called it (`find_credential` for verification, `insert`, `revoke`,
/// `list`, …; see [`STORE_OPERATIONS`]).
pub const STORE_ERRORS: &str = "api_tokens_store_errors_total";

/// `api_tokens_tokens_issued_total`, counter: tokens issued. A rotation's
/// successor counts in [`TOKENS_ROTATED`] instead.
pub const TOKENS_ISSUED: &str = "api_tokens_tokens_issued_total";

/// `api_tokens_tokens_revoked_total`, counter: tokens revoked, one per
/// token, whether revoked alone, with its scope, with its creator's
/// tokens, or found leaked
/// ([`revoke_leaked`](crate::TokenService::revoke_leaked)). Counted from the audit events, so each revocation that changed
/// something counts once.
pub const TOKENS_REVOKED: &str = "api_tokens_tokens_revoked_total";

/// `api_tokens_tokens_rotated_total`, counter: tokens rotated (each issued
/// a successor).
pub const TOKENS_ROTATED: &str = "api_tokens_tokens_rotated_total";

/// `api_tokens_audit_events_dropped_total`, counter: audit events lost, as
/// [`TokenService::audit_events_dropped`](crate::TokenService::audit_events_dropped)
/// counts them. Anything above zero needs a look.
pub const AUDIT_EVENTS_DROPPED: &str = "api_tokens_audit_events_dropped_total";

/// `api_tokens_replica_lag_seconds`, gauge: how long ago a
/// `ReplicatedStore` (features `postgres`, `sqlite`) was last proven
/// current, set by a task of the replica every quarter of its
/// `max_staleness`; `+Inf` while it has never been, or a read after a
/// write failed. Above `max_staleness`, verification fails closed. (One
/// replica per process: two would set the same gauge.)
pub const REPLICA_LAG: &str = "api_tokens_replica_lag_seconds";

/// How many verifications on one thread take one duration sample, unless
/// set with
/// [`TokenService::with_latency_sampling`](crate::TokenService::with_latency_sampling).
/// Two clock reads and a histogram write made a verification over the
/// memory store about 45 % slower when every call was timed; one call in
/// 64 costs about 1 % (the `verify` bench's `metrics_*` figures), under the
/// 3 % the hot path may spend on timing.
pub const DEFAULT_LATENCY_SAMPLING: NonZeroU32 = NonZeroU32::new(64).expect("not zero");

/// Bucket bounds (seconds) for [`VERIFICATION_DURATION`], for exporters
/// that need them (metrics-exporter-prometheus renders a summary without):
/// 100 ns to 1 s, from a replica's or the memory store's sub-microsecond
/// lookups to a database round trip.
pub const VERIFICATION_DURATION_BUCKETS: &[f64] = &[
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 1e-5, 1e-4, 1e-3, 5e-3, 0.025, 0.1, 1.0,
];

/// The values of [`STORE_ERRORS`]' `operation` label: the
/// [`TokenStore`](crate::TokenStore) methods the service calls.
pub const STORE_OPERATIONS: &[&str] = &[
    "insert",
    "find",
    "find_credential",
    "list",
    "revoke",
    "revoke_scope",
    "rotate",
    "update",
    "record_uses",
    "list_expiring",
    "revoke_created_by",
    "purge",
    "claim_expiry_notices",
    "release_expiry_notices",
    "ready",
];

/// Describes every metric above (help text and unit) to the installed
/// recorder. Call it once, after installing the recorder; a service works
/// without it, its metrics then have no help text.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        VERIFICATIONS,
        Unit::Count,
        "Token verifications, by outcome."
    );
    describe_histogram!(
        VERIFICATION_DURATION,
        Unit::Seconds,
        "How long a token verification took (a sample of the calls)."
    );
    describe_counter!(
        STORE_ERRORS,
        Unit::Count,
        "Token store calls that failed, by store operation."
    );
    describe_counter!(TOKENS_ISSUED, Unit::Count, "API tokens issued.");
    describe_counter!(
        TOKENS_REVOKED,
        Unit::Count,
        "API tokens revoked (alone, by scope, by creator or found leaked)."
    );
    describe_counter!(TOKENS_ROTATED, Unit::Count, "API tokens rotated.");
    describe_counter!(
        AUDIT_EVENTS_DROPPED,
        Unit::Count,
        "Audit events lost because the sink fell behind or a change stayed unconfirmed."
    );
    describe_gauge!(
        REPLICA_LAG,
        Unit::Seconds,
        "How long ago the token replica was last proven current."
    );
}

thread_local! {
    /// Verifications on this thread so far (wrapping). Per thread, so that
    /// no core writes a line another core reads; shared by every service
    /// on the thread, so each times the calls that land on its multiples.
    static CALLS: Cell<u32> = const { Cell::new(0) };

    /// The stripe of every service's outcome tally this thread adds to.
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// Stripes of an outcome tally: threads take them in turn, so up to this
/// many threads count without sharing a cache line.
const STRIPES: usize = 16;

/// The stripe the next thread takes.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// Outcomes counted: `valid`, then each [`FailureReason`].
const OUTCOMES: usize = 1 + FailureReason::ALL.len();

/// One thread's share of the outcome counts, alone on its cache lines
/// (two lines: a neighbour's prefetch pulls in pairs).
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; OUTCOMES]);

/// The verification metrics' handles, resolved once when the service is
/// built, and the outcome counts not yet handed to them.
///
/// Outcomes are counted in per-thread stripes, not on the recorder's
/// counters: those are one atomic each, which every core would write on
/// every verification, and the cache line bouncing between cores would
/// cost the hot path its scaling. The stripes' sums go to the recorder at
/// each timed call (one in [`DEFAULT_LATENCY_SAMPLING`] per thread) and
/// at [`publish`](Self::publish).
pub(crate) struct VerifyMetrics {
    /// Indexed by outcome: `valid`, then each [`FailureReason`].
    outcomes: [Counter; OUTCOMES],
    stripes: Box<[Stripe; STRIPES]>,
    /// What `outcomes` have been given so far, per outcome.
    published: Mutex<[u64; OUTCOMES]>,
    duration: Histogram,
    /// A call is timed when the thread's call count masked with this is
    /// zero: one in a power of two.
    sample_mask: u32,
}

impl VerifyMetrics {
    pub(crate) fn new() -> Self {
        let outcome = |name: &'static str| metrics::counter!(VERIFICATIONS, "outcome" => name);
        let failed = FailureReason::ALL.map(|reason| outcome(reason.outcome()));
        VerifyMetrics {
            outcomes: std::array::from_fn(|index| match index {
                0 => outcome("valid"),
                _ => failed[index - 1].clone(),
            }),
            stripes: Box::default(),
            published: Mutex::new([0; OUTCOMES]),
            duration: metrics::histogram!(VERIFICATION_DURATION),
            // A power of two already.
            sample_mask: DEFAULT_LATENCY_SAMPLING.get() - 1,
        }
    }

    /// The same, timing one verification in `one_in` (rounded up to a
    /// power of two, at most 2^31) on each thread.
    pub(crate) fn sampling(mut self, one_in: NonZeroU32) -> Self {
        let every = one_in.get().checked_next_power_of_two().unwrap_or(1 << 31);
        self.sample_mask = every - 1;
        self
    }

    /// When this verification started, if it is one to time: the thread's
    /// call count decides, so most calls cost an increment and a mask.
    #[inline]
    pub(crate) fn start(&self) -> Option<Instant> {
        let call = CALLS.with(|calls| {
            let call = calls.get().wrapping_add(1);
            calls.set(call);
            call
        });
        (call & self.sample_mask == 0).then(Instant::now)
    }

    /// Counts the outcome in this thread's stripe; for a timed call, also
    /// records the duration and hands the counts to the recorder.
    #[inline]
    pub(crate) fn finish<T>(&self, started: Option<Instant>, outcome: &Result<T, VerifyError>) {
        let index = match outcome {
            Ok(_) => 0,
            Err(error) => 1 + FailureReason::of(error) as usize,
        };
        let stripe = STRIPE.with(|stripe| *stripe);
        self.stripes[stripe].0[index].fetch_add(1, Ordering::Relaxed);
        if let Some(started) = started {
            self.duration.record(started.elapsed());
            self.publish_sampled();
        }
    }

    /// Hands the recorder what was counted since the last hand-over, on a
    /// timed call: skipped if another thread is at it (its sums take this
    /// thread's counts, or the next hand-over's will), so that no
    /// verification waits on another.
    fn publish_sampled(&self) {
        match self.published.try_lock() {
            Ok(published) => self.hand_over(published),
            Err(TryLockError::Poisoned(poisoned)) => self.hand_over(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// Hands the recorder everything counted so far: waits for a hand-over
    /// under way, so the counts are exact to the last finished call.
    pub(crate) fn publish(&self) {
        self.hand_over(
            self.published
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    fn hand_over(&self, mut published: MutexGuard<'_, [u64; OUTCOMES]>) {
        for (index, counter) in self.outcomes.iter().enumerate() {
            let total: u64 = self
                .stripes
                .iter()
                .map(|stripe| stripe.0[index].load(Ordering::Relaxed))
                .sum();
            let new = total.saturating_sub(published[index]);
            if new > 0 {
                counter.increment(new);
                published[index] = total;
            }
        }
    }
}

impl Drop for VerifyMetrics {
    /// A service going away hands over what it counted last.
    fn drop(&mut self) {
        self.publish();
    }
}

/// Counts a store call of the service that failed. Rare, so the handle is
/// looked up here (every operation's series was made at zero by
/// [`register_store_errors`]).
pub(crate) fn store_error(operation: &'static str) {
    debug_assert!(
        STORE_OPERATIONS.contains(&operation),
        "{operation} is not a TokenStore operation"
    );
    metrics::counter!(STORE_ERRORS, "operation" => operation).increment(1);
}

/// Makes every operation's store-error series, at zero, so a dashboard
/// sees zero rather than no data before the first failure.
pub(crate) fn register_store_errors() {
    for operation in STORE_OPERATIONS {
        let _ = metrics::counter!(STORE_ERRORS, "operation" => *operation);
    }
}

/// The handles the audit queue counts changes with: every change the
/// service makes goes through it as an event, so counting there counts
/// each once, whichever method made it.
pub(crate) struct ChangeMetrics {
    issued: Counter,
    revoked: Counter,
    rotated: Counter,
    dropped: Counter,
}

impl ChangeMetrics {
    pub(crate) fn new() -> Self {
        ChangeMetrics {
            issued: metrics::counter!(TOKENS_ISSUED),
            revoked: metrics::counter!(TOKENS_REVOKED),
            rotated: metrics::counter!(TOKENS_ROTATED),
            dropped: metrics::counter!(AUDIT_EVENTS_DROPPED),
        }
    }

    /// Counts what `event` changed.
    pub(crate) fn event(&self, event: &AuditEvent) {
        match event {
            AuditEvent::Issued { .. } => self.issued.increment(1),
            AuditEvent::Rotated { .. } => self.rotated.increment(1),
            AuditEvent::Revoked { .. } | AuditEvent::LeakRevoked { .. } => {
                self.revoked.increment(1)
            }
            AuditEvent::ScopeRevoked { count, .. } | AuditEvent::CreatorRevoked { count, .. } => {
                self.revoked.increment(*count)
            }
            AuditEvent::Purged { .. }
            | AuditEvent::Refused { .. }
            | AuditEvent::Disabled { .. }
            | AuditEvent::Enabled { .. }
            | AuditEvent::Edited { .. }
            | AuditEvent::AddressRefused { .. }
            | AuditEvent::RetiredTokenUsed { .. } => {}
        }
    }

    /// Counts an audit event dropped.
    pub(crate) fn dropped(&self) {
        self.dropped.increment(1);
    }
}
