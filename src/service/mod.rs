//! The service: issue, verify, revoke and list, with the authorization rules;
//! the rest of a token's life (rotation, scope-wide revocation, expiring
//! soon, last used) is in [`lifecycle`].
//!
//! This is the only place that combines the token format, the keys and the
//! store. Authorization, in full:
//!
//! - issue, list, revoke and rotate at a scope need [`Role::Admin`] (or
//!   higher) there; an organization admin therefore manages the
//!   organization's tokens and those of each of its domains, a domain admin
//!   only that domain's;
//! - a token's role is at most its issuer's role at the token's scope; a
//!   request that names no role gets the service's default role
//!   ([`Role::Viewer`] unless configured), never the issuer's by default;
//! - revoking or rotating a token the actor may not manage fails exactly like
//!   naming a token that does not exist.
//!
//! Every management call that changes something, and every one refused for
//! lack of rights, goes to the service's [`AuditSink`].

mod lifecycle;
mod unconfirmed;

pub use lifecycle::PURGE_BATCH;

use std::fmt;
use std::sync::Arc;

use subtle::{Choice, ConstantTimeEq};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::actor::{Actor, Role};
use crate::audit::{
    AuditEvent, AuditQueue, AuditSink, DEFAULT_AUDIT_QUEUE_CAPACITY, FailureCounters, Operation,
    TracingAuditSink,
};
use crate::clock::{Clock, SystemClock};
use crate::error::LabelError;
use crate::error::{
    IssueError, ListError, LookupError, PolicyError, RandomSourceError, RevokeError, StoreError,
    VerifyError,
};
use crate::hashing::{Digest, Keyring};
use crate::label::Label;
use crate::policy::{Expiry, ExpiryPolicy};
use crate::record::{DamagedToken, Revocation, TokenRecord, TokenSummary};
use crate::scan::redact_any_format;
use crate::scope::Scope;
use crate::store::{Cursor, ListedRecord, RevokeOutcome, ScopeFilter, TokenStore};
use crate::token::{PlaintextToken, TokenFormat, TokenId};
use crate::usage::{OncePerInterval, UsageTracker};
use unconfirmed::{Change, ChangeKind, Unconfirmed};

/// How often a token's use is written at most, unless configured otherwise.
pub const DEFAULT_LAST_USED_INTERVAL: Duration = Duration::seconds(60);

/// The most tokens one [`TokenService::list`] call returns.
pub const MAX_PAGE_SIZE: usize = 1000;

/// How often `issue` draws a new id when the store already has the one drawn.
/// With 64-bit random ids a single collision is already unlikely; three in a
/// row mean the store is broken, not unlucky.
const ISSUE_ATTEMPTS: usize = 3;

/// What an unknown id's secret is compared against, so that an unknown id
/// costs the same hash and comparison as a wrong secret.
const NO_RECORD_DIGEST: Digest = Digest::from_bytes([0; 32]);

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
}

/// What to issue: a token for `scope`, labelled `label`.
///
/// A token gets the least privilege unless the request asks for more: the
/// role it names, or else the service's default role
/// ([`TokenService::with_default_role`]), which is [`Role::Viewer`] unless
/// configured. Never the issuer's own role by default: an owner creating a
/// token for a read-only dashboard gets a viewer token without thinking
/// about it. The issuer's role at `scope` is the ceiling either way.
///
/// Its `Debug` shows the label with any token in it masked, as the label
/// will be kept.
#[derive(Clone)]
pub struct IssueRequest {
    /// Where the token will be valid.
    pub scope: Scope,
    /// What the token is for; validated as a [`Label`].
    pub label: String,
    /// The role the token grants, at most the issuer's own at `scope`;
    /// `None` for the service's default role (by default [`Role::Viewer`]).
    pub role: Option<Role>,
    /// When the token stops verifying; by default as the service's
    /// [`ExpiryPolicy`] says (without one: never).
    pub expiry: Expiry,
}

impl IssueRequest {
    /// A request for a token at `scope` with `label`, the service's default
    /// role ([`Role::Viewer`] unless configured) and the policy's default
    /// expiry.
    pub fn new(scope: Scope, label: impl Into<String>) -> Self {
        IssueRequest {
            scope,
            label: label.into(),
            role: None,
            expiry: Expiry::PolicyDefault,
        }
    }

    /// Asks for a token granting `role` (at most the issuer's own role).
    #[must_use]
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// Asks for a token that stops verifying at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expiry = Expiry::At(at);
        self
    }

    /// Asks for a token that never expires (refused where the policy limits
    /// lifetimes).
    #[must_use]
    pub fn never_expires(mut self) -> Self {
        self.expiry = Expiry::Never;
        self
    }
}

// Written out: the label is raw input, and someone may have pasted a token
// into it. It is shown as it will be kept, with any token masked.
impl fmt::Debug for IssueRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueRequest")
            .field("scope", &self.scope)
            .field("label", &redact_any_format(&self.label))
            .field("role", &self.role)
            .field("expiry", &self.expiry)
            .finish()
    }
}

/// A token just issued: the plaintext, to show the user once, and what the
/// token list will show of it from now on. Its `Debug` shows the token
/// redacted.
pub struct IssuedToken {
    /// The token text. Hand it to the user, then drop it: it cannot be
    /// recovered later.
    pub token: PlaintextToken,
    /// The token's row in the API Tokens list.
    pub summary: TokenSummary,
}

// Written out rather than derived: a type holding a plaintext token states
// for itself what its `Debug` shows.
impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("summary", &self.summary)
            .finish()
    }
}

/// A token that passed [`TokenService::verify`]: what it grants.
///
/// It holds what verification read and nothing more; the token's label,
/// creator and the rest are one [`TokenStore::find`] away, by [`id`](Self::id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    id: TokenId,
    scope: Arc<Scope>,
    role: Role,
    expires_at: Option<OffsetDateTime>,
}

impl VerifiedToken {
    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// Where the token is valid.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The role it grants there.
    pub fn role(&self) -> Role {
        self.role
    }

    /// When the token stops verifying, or `None` if it never expires: a
    /// client can be told to rotate it before then.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }

    /// Whether the token may act at `scope` with at least `role`: its scope
    /// covers `scope` (an organization token covers the organization's
    /// domains) and its role is `role` or higher.
    pub fn allows(&self, scope: &Scope, role: Role) -> bool {
        self.scope.covers(scope) && self.role >= role
    }
}

/// What [`TokenService::revoke`] did. Either way the token is revoked now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// This call revoked it.
    Now(Revocation),
    /// It was revoked earlier; the earlier revocation stands.
    Already(Revocation),
}

/// Which page of a list to fetch: of the API Tokens list (positions are
/// [`Cursor`]s), or of the expiring-soon list
/// ([`ExpiryCursor`](crate::store::ExpiryCursor)s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest<C = Cursor> {
    /// At most this many tokens (1 to [`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// Continue after this position: the `next` of the previous page.
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The first `limit` tokens.
    pub fn first(limit: usize) -> Self {
        PageRequest { limit, after: None }
    }

    /// The `limit` tokens after `cursor`.
    pub fn after(cursor: C, limit: usize) -> Self {
        PageRequest {
            limit,
            after: Some(cursor),
        }
    }
}

impl<C> Default for PageRequest<C> {
    /// The first 50 tokens.
    fn default() -> Self {
        PageRequest::first(50)
    }
}

/// One page of a list: the API Tokens list (newest first) or the
/// expiring-soon list (soonest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPage<C = Cursor> {
    /// The tokens on this page.
    pub tokens: Vec<TokenSummary>,
    /// Rows on this page the store could not read back (edited by hand,
    /// say), with what is wrong: shown, never trusted, and never hiding the
    /// rest of the page.
    pub damaged: Vec<DamagedToken>,
    /// Where the next page starts, or `None` if this is the last page.
    pub next: Option<C>,
}

/// A token an actor may manage, as the store could read it.
enum Managed {
    /// The whole record.
    Readable(TokenRecord),
    /// A record damaged outside its scope: revocable by id, nothing more.
    Damaged { scope: Scope, error: StoreError },
}

impl Managed {
    /// The record, or the error that says why there is none to show.
    fn record(self) -> Result<TokenRecord, StoreError> {
        match self {
            Managed::Readable(record) => Ok(record),
            Managed::Damaged { error, .. } => Err(error),
        }
    }
}

impl TokenService {
    /// A service issuing tokens of `format`, hashing with `keys` and keeping
    /// records in `store`, reading the system clock, with no expiry policy,
    /// audit events going to `tracing`, and last-used tracking every
    /// [`DEFAULT_LAST_USED_INTERVAL`] (call
    /// [`flush_last_used`](Self::flush_last_used) periodically).
    pub fn new(format: TokenFormat, keys: Keyring, store: Arc<dyn TokenStore>) -> Self {
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
        }
    }

    /// The same service, reading time from `clock` (a
    /// [`ManualClock`](crate::ManualClock) in tests).
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

    /// The same service, giving `role` to tokens whose [`IssueRequest`]
    /// names no role (instead of [`Role::Viewer`]). The issuer's role stays
    /// the ceiling: an issuer who holds less than `role` must name a role
    /// it holds, or is refused with [`IssueError::RoleTooHigh`].
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
    /// [`ReplicatedStore`](crate::store::ReplicatedStore), once its copy of
    /// every credential is loaded. Await it before serving traffic.
    ///
    /// # Errors
    ///
    /// What the store reports if it gave up getting ready.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ready().await
    }

    /// Waits until every audit event so far has reached the sink. Call it
    /// periodically and before shutting down, and in tests before reading a
    /// [`MemoryAuditSink`](crate::MemoryAuditSink). Without a Tokio runtime
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

    /// The same service, recording a token's use at most once per `interval`
    /// (counted in whole seconds), or not at all for `None`.
    ///
    /// # Errors
    ///
    /// [`PolicyError::TooShort`] for an interval under one second.
    pub fn with_last_used_interval(
        mut self,
        interval: Option<Duration>,
    ) -> Result<Self, PolicyError> {
        if interval.is_some_and(|interval| interval < Duration::SECOND) {
            return Err(PolicyError::TooShort);
        }
        self.usage = interval.map(UsageTracker::new);
        Ok(self)
    }

    /// The token format this service issues and accepts.
    pub fn format(&self) -> &TokenFormat {
        &self.format
    }

    /// Issues a token: checks the actor's rights and the request, stores a
    /// record with the token's keyed hash, and returns the token text once.
    ///
    /// # Errors
    ///
    /// [`IssueError`] when the actor is not an admin at the scope, the role
    /// exceeds the actor's, the label is invalid, the expiry is not in the
    /// future or not what the [`ExpiryPolicy`] allows, or the store fails.
    /// Nothing is stored then.
    pub async fn issue(
        &self,
        actor: &Actor,
        request: IssueRequest,
    ) -> Result<IssuedToken, IssueError> {
        let scope = request.scope;
        let held = match actor.role_at(&scope) {
            Some(held) if held >= Role::Admin => held,
            _ => {
                self.refused(actor, Operation::Issue, Some(&scope), None);
                return Err(IssueError::NotAllowed { scope });
            }
        };
        let role = request.role.unwrap_or(self.default_role);
        if role > held {
            self.refused(actor, Operation::Issue, Some(&scope), None);
            return Err(IssueError::RoleTooHigh {
                requested: role,
                held,
            });
        }
        let label = self.label(&request.label)?;
        let now = self.now();
        let expiry = match request.expiry {
            Expiry::At(at) => Expiry::At(stored_time(at).ok_or(IssueError::ExpiryOutOfRange)?),
            other => other,
        };
        let expires_at = self.policy.resolve(scope.kind(), expiry, now)?;
        let expires_at = expires_at
            .map(|at| stored_time(at).ok_or(IssueError::ExpiryOutOfRange))
            .transpose()?;

        let mut attempt = 1;
        loop {
            let (token, record) = self.mint(actor, &scope, role, &label, expires_at, now)?;
            let summary = self.summary(&record, now);
            let event = AuditEvent::Issued {
                at: now,
                actor: actor.id.clone(),
                token: summary.id,
                scope: summary.scope.clone(),
                role,
                label: summary.label.clone(),
            };
            match self.store.insert(record).await {
                Ok(()) => {
                    self.audit.send(event);
                    return Ok(IssuedToken { token, summary });
                }
                Err(StoreError::AlreadyExists { .. }) if attempt < ISSUE_ATTEMPTS => attempt += 1,
                Err(error) => {
                    // The token text is lost with this answer, but if the
                    // store kept the record, the audit trail must say so.
                    let kind = ChangeKind::Insert { id: summary.id };
                    self.hold_if_unknown(&error, kind, event);
                    return Err(error.into());
                }
            }
        }
    }

    /// A fresh token for `scope` and the record to store for it.
    fn mint(
        &self,
        actor: &Actor,
        scope: &Scope,
        role: Role,
        label: &Label,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(PlaintextToken, TokenRecord), RandomSourceError> {
        let token = self.format.generate(scope.kind())?;
        let (key_id, key) = self.keys.current();
        let record = TokenRecord {
            id: token.id(),
            scope: scope.clone(),
            role,
            label: label.clone(),
            key_id,
            digest: key.digest(token.hashed_part()),
            created_at: now,
            created_by: actor.id.clone(),
            expires_at,
            revoked: None,
            last_used_at: None,
            rotated_from: None,
            replaced_by: None,
        };
        Ok((token, record))
    }

    /// Checks a token presented with a request and says what it grants.
    ///
    /// This is the hot path. A malformed token is refused before the store is
    /// asked. A well-formed one costs one store lookup, one keyed hash and one
    /// constant-time comparison, whether or not its id exists, and the answer
    /// is the same [`VerifyError::Invalid`]: where the secret is wrong never
    /// shows in the timing, and whether the id exists shows only by the few
    /// nanoseconds a hash table's hit and miss differ (the README's timing
    /// section has the figures). Revocation and expiry are checked only once
    /// the secret has matched.
    ///
    /// A success may note the token's use for the next
    /// [`flush_last_used`](Self::flush_last_used); a failure only counts
    /// towards [`verify_failures`](Self::verify_failures), except a rotated
    /// token used after its grace period, which is an audit event.
    ///
    /// # Errors
    ///
    /// [`VerifyError`]: malformed, invalid (unknown or wrong secret), revoked,
    /// expired, or a store failure.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let verified = self.check(token).await;
        if let Err(error) = &verified {
            self.failures.count(error);
        }
        verified
    }

    /// `verify` without the failure count.
    async fn check(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let parsed = self.format.parse(token)?;
        let found = self
            .store
            .find_credential(parsed.id())
            .await
            .map_err(VerifyError::Store)?;

        // Exactly one hash and one comparison on every path below. Without a
        // record, the comparison is against a fixed digest; without the
        // record's key, the hash uses the current key. Either way the outcome
        // is then forced to "no match".
        let record_key = found
            .as_ref()
            .and_then(|credential| self.keys.get(credential.key_id));
        let key = record_key.unwrap_or(self.keys.current().1);
        let expected = found
            .as_ref()
            .map_or(&NO_RECORD_DIGEST, |credential| &credential.digest);
        let secret_matches = key.digest(parsed.hashed_part()).ct_eq(expected)
            & Choice::from(u8::from(record_key.is_some()));

        let credential = match found {
            // A scope letter changed (and the checksum recomputed) names a
            // token that does not exist.
            Some(credential)
                if bool::from(secret_matches) && credential.scope.kind() == parsed.kind() =>
            {
                credential
            }
            _ => return Err(VerifyError::Invalid),
        };
        let refused = if credential.revoked {
            Some(VerifyError::Revoked)
        } else if credential
            .expires_at
            .is_some_and(|expiry| self.clock.now() >= expiry)
        {
            Some(VerifyError::Expired)
        } else {
            None
        };
        if let Some(refused) = refused {
            // A rotated token past its grace (or rotated without one): a
            // client still holding an old credential, or a leaked copy.
            if credential.replaced {
                self.retired_token_used(&credential).await;
            }
            return Err(refused);
        }
        if let Some(usage) = &self.usage {
            usage.note(&credential, || self.now());
        }
        Ok(VerifiedToken {
            id: credential.id,
            scope: credential.scope,
            role: credential.role,
            expires_at: credential.expires_at,
        })
    }

    /// Revokes the token with `id`: from the moment this returns, the token
    /// fails verification on every service sharing the store. Revoking a
    /// revoked token changes nothing and says so.
    ///
    /// # Errors
    ///
    /// [`RevokeError::NotFound`] when no such token exists *or* the actor may
    /// not manage it (the two are indistinguishable by design), or a store
    /// failure.
    pub async fn revoke(&self, actor: &Actor, id: TokenId) -> Result<Revoked, RevokeError> {
        self.revoke_because(actor, id, None).await
    }

    /// [`revoke`](Self::revoke), recording why: `reason` is kept with the
    /// revocation and sent with the audit event.
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke), and
    /// [`RevokeError::InvalidReason`] for a reason that breaks the rules of
    /// a [`Label`].
    pub async fn revoke_because(
        &self,
        actor: &Actor,
        id: TokenId,
        reason: Option<&str>,
    ) -> Result<Revoked, RevokeError> {
        let reason = reason
            .map(|reason| self.label(reason))
            .transpose()
            .map_err(RevokeError::InvalidReason)?;
        let Some(managed) = self.managed_token(actor, id, Operation::Revoke).await? else {
            return Err(RevokeError::NotFound { id });
        };
        // A record damaged outside its scope can still be revoked, by id:
        // its event says what could be read of it.
        let (scope, role, label) = match managed {
            Managed::Readable(record) => (record.scope, Some(record.role), Some(record.label)),
            Managed::Damaged { scope, .. } => (scope, None, None),
        };
        let revocation = Revocation {
            at: self.now(),
            by: actor.id.clone(),
            reason,
        };
        let event = AuditEvent::Revoked {
            at: revocation.at,
            actor: actor.id.clone(),
            token: id,
            scope: scope.clone(),
            role,
            label,
            reason: revocation.reason.clone(),
        };
        match self.store.revoke(&scope, id, revocation.clone()).await {
            Ok(RevokeOutcome::Revoked) => {
                self.audit.send(event);
                Ok(Revoked::Now(revocation))
            }
            Ok(RevokeOutcome::AlreadyRevoked(earlier)) => {
                // Perhaps an earlier call's, whose answer was lost after the
                // store had made it: its event goes out now, once.
                if let Some(landed) = self.unconfirmed.confirm_revocation(id, &earlier) {
                    self.audit.send(landed);
                }
                Ok(Revoked::Already(earlier))
            }
            Ok(RevokeOutcome::NotFound) => Err(RevokeError::NotFound { id }),
            Err(error) => {
                self.hold_if_unknown(&error, ChangeKind::Revoke { id, revocation }, event);
                Err(error.into())
            }
        }
    }

    /// Holds `event` until the store confirms the change `kind`, if
    /// `error` leaves open whether the store made it (see [`unconfirmed`]).
    fn hold_if_unknown(&self, error: &StoreError, kind: ChangeKind, event: AuditEvent) {
        let change = Change {
            kind,
            event,
            failed_at: std::time::Instant::now(),
        };
        if matches!(error, StoreError::Unavailable { .. }) && !self.unconfirmed.hold(change) {
            self.audit.count_dropped();
        }
    }

    /// The API Tokens list's row for the token `id`: its details page.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when no such token exists *or* the actor may
    /// not manage it, as for [`revoke`](Self::revoke); or a store failure.
    pub async fn token(&self, actor: &Actor, id: TokenId) -> Result<TokenSummary, LookupError> {
        match self.managed_token(actor, id, Operation::List).await? {
            Some(managed) => Ok(self.summary(&managed.record()?, self.now())),
            None => Err(LookupError::NotFound { id }),
        }
    }

    /// The token `id` if `actor` may manage it; `None` if there is none or
    /// it is out of the actor's reach, which the caller reports alike.
    ///
    /// The two do the same work, so that its cost does not tell another
    /// tenant's token from an id that does not exist: the same credential
    /// lookup verification makes (equal work for a hit and a miss, see
    /// [`verify`](Self::verify)), and the same refused `operation` handed to
    /// the audit queue. Only a token the actor may manage is then read in
    /// full (its scope never changes, so the check still holds). A record
    /// the store cannot read back is managed by whoever may manage the
    /// scope the store could read of it.
    async fn managed_token(
        &self,
        actor: &Actor,
        id: TokenId,
        operation: Operation,
    ) -> Result<Option<Managed>, StoreError> {
        let scope = match self.store.find_credential(id).await {
            Ok(found) => found.map(|credential| Arc::unwrap_or_clone(credential.scope)),
            Err(StoreError::Corrupt {
                scope: Some(scope), ..
            }) => Some(scope),
            Err(error) => return Err(error),
        };
        if !scope.is_some_and(|scope| actor.can_manage_tokens(&scope)) {
            self.refused(actor, operation, None, Some(id));
            return Ok(None);
        }
        // `None` only if the token was deleted in between.
        match self.store.find(id).await {
            Ok(found) => Ok(found.map(Managed::Readable)),
            Err(StoreError::Corrupt {
                id: damaged,
                scope: Some(scope),
                source,
            }) => Ok(Some(Managed::Damaged {
                scope: scope.clone(),
                error: StoreError::Corrupt {
                    id: damaged,
                    scope: Some(scope),
                    source,
                },
            })),
            Err(error) => Err(error),
        }
    }

    /// One page of the tokens at exactly `scope` (an organization's list does
    /// not include its domains' tokens), newest first, without secrets.
    ///
    /// # Errors
    ///
    /// [`ListError`] when the actor is not an admin at `scope`, the page size
    /// is outside 1 to [`MAX_PAGE_SIZE`], or the store fails.
    pub async fn list(
        &self,
        actor: &Actor,
        scope: &Scope,
        page: PageRequest,
    ) -> Result<TokenPage, ListError> {
        if !actor.can_manage_tokens(scope) {
            self.refused(actor, Operation::List, Some(scope), None);
            return Err(ListError::NotAllowed {
                scope: scope.clone(),
            });
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page.limit) {
            return Err(ListError::InvalidPageSize {
                requested: page.limit,
                max: MAX_PAGE_SIZE,
            });
        }
        // One record more than asked tells whether another page follows.
        let filter = ScopeFilter::Exactly(scope.clone());
        let listed = self.store.list(&filter, page.after, page.limit + 1).await?;
        Ok(self.page(listed, page.limit, |listed| match listed {
            Ok(record) => Some(Cursor::of(record)),
            Err(damaged) => Some(Cursor {
                created_at: damaged.created_at?,
                id: damaged.id?,
            }),
        }))
    }

    /// A page of at most `limit` of `listed` (which may hold one more, to
    /// tell that another page follows), continuing after the position of
    /// its last entry that has one.
    fn page<C>(
        &self,
        mut listed: Vec<ListedRecord>,
        limit: usize,
        position: impl Fn(&ListedRecord) -> Option<C>,
    ) -> TokenPage<C> {
        let next = if listed.len() > limit {
            listed.truncate(limit);
            listed.iter().rev().find_map(position)
        } else {
            None
        };
        let now = self.now();
        let mut page = TokenPage {
            tokens: Vec::with_capacity(listed.len()),
            damaged: Vec::new(),
            next,
        };
        for entry in listed {
            match entry {
                Ok(record) => page.tokens.push(self.summary(&record, now)),
                Err(damaged) => page.damaged.push(DamagedToken {
                    id: damaged.id,
                    problem: damaged.source.to_string(),
                }),
            }
        }
        page
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{HashKey, KeyId, counters};
    use crate::ids::{ActorId, OrganizationId};
    use crate::store::MemoryStore;

    /// `token` with the character at `position` changed to another base62
    /// character and the checksum fixed: well formed, but not the same token.
    fn altered(token: &str, position: usize) -> String {
        let mut bytes = token.as_bytes().to_vec();
        bytes[position] = if bytes[position] == b'0' { b'1' } else { b'0' };
        let body_len = bytes.len() - crate::token::CHECKSUM_LEN;
        let checksum = crate::token::checksum_chars(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&checksum);
        String::from_utf8(bytes).unwrap()
    }

    fn service(keys: Keyring, store: Arc<MemoryStore>) -> TokenService {
        TokenService::new(TokenFormat::new("acme").unwrap(), keys, store)
    }

    /// Runs `verify` and returns the (hashes, comparisons) it made.
    async fn cost(service: &TokenService, token: &str) -> (u64, u64, bool) {
        let (hashes, comparisons) = counters::read();
        let ok = service.verify(token).await.is_ok();
        let (hashes_after, comparisons_after) = counters::read();
        (hashes_after - hashes, comparisons_after - comparisons, ok)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_well_formed_token_costs_one_hash_and_one_comparison() {
        let store = Arc::new(MemoryStore::new());
        let old = service(
            Keyring::new(KeyId::new(1), HashKey::from_bytes(&[1; 32])),
            store.clone(),
        );
        let new = service(
            Keyring::new(KeyId::new(2), HashKey::from_bytes(&[2; 32])),
            store,
        );
        let org = Scope::organization(OrganizationId::new("acme").unwrap());
        let admin = Actor::new(ActorId::new("alice").unwrap()).with_grant(org.clone(), Role::Admin);
        let issued = old
            .issue(&admin, IssueRequest::new(org, "ci"))
            .await
            .unwrap();
        let token = issued.token.expose_secret();
        let last_secret_char = token.len() - 7;
        let first_id_char = "acmeo_".len();

        let valid = cost(&old, token).await;
        let wrong_secret = cost(&old, &altered(token, last_secret_char)).await;
        let unknown_id = cost(&old, &altered(token, first_id_char)).await;
        let key_no_longer_held = cost(&new, token).await;

        assert_eq!(valid, (1, 1, true));
        for (hashes, comparisons, ok) in [wrong_secret, unknown_id, key_no_longer_held] {
            assert_eq!((hashes, comparisons, ok), (1, 1, false));
        }
        // A malformed token costs neither.
        assert_eq!(cost(&old, "acmeo_short").await, (0, 0, false));
    }
}
