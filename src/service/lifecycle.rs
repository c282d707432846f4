//! The rest of a token's life: rotation with a grace period, revoking a
//! whole scope, finding tokens that expire soon, and purging ended ones.

use std::time::Duration;

use crate::clock::signed;

use super::unconfirmed::ChangeKind;
use super::{IssuedToken, TokenService, issue::ISSUE_ATTEMPTS, stored_time};
use crate::actor::Actor;
use crate::audit::{AuditEvent, Operation};
use crate::authorization;
use crate::error::{ListError, RevokeScopeError, RotateError, StoreError};
use crate::label::Label;
use crate::page::{PageRequest, TokenPage, check_page_size};
use crate::policy::Expiry;
use crate::record::{Revocation, TokenStatus};
use crate::scope::Scope;
use crate::store::{ExpiryCursor, Retirement, RotateOutcome, ScopeFilter, ScopeRevoked};
use crate::token::TokenId;

/// How many tokens one store call of [`TokenService::purge`] deletes at most.
pub const PURGE_BATCH: usize = 1_000;

/// The earliest purge cutoff: the first instant every store can hold.
const EARLIEST: time::OffsetDateTime = time::macros::datetime!(0001-01-01 00:00 UTC);

/// The reason recorded when a rotation without grace revokes the old token.
const ROTATED: &str = "rotated without grace";

impl TokenService {
    /// Rotates the token `id` at `scope`: issues a successor with the same scope, role
    /// and label (and a fresh lifetime from the [`ExpiryPolicy`]), returned
    /// once like [`issue`](Self::issue), and lets the old token verify until
    /// `now + grace`, after which it fails as expired. A zero grace revokes
    /// the old token at once. The two records link to each other
    /// (`replaced_by`, `rotated_from`). Same authorization as
    /// [`revoke`](Self::revoke).
    ///
    /// # Errors
    ///
    /// [`RotateError`]: not found (or out of the actor's reach), revoked,
    /// expired, already replaced (a token has at most one successor), a
    /// grace longer than the token has left, or a store
    /// failure. Nothing changes then.
    ///
    /// [`ExpiryPolicy`]: crate::ExpiryPolicy
    pub async fn rotate(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
        grace: Duration,
    ) -> Result<IssuedToken, RotateError> {
        let now = self.now();
        let Some(managed) = self
            .managed_token(actor, scope, id, Operation::Rotate)
            .await?
        else {
            return Err(RotateError::NotFound { id });
        };
        let old = managed.record()?;
        // The successor carries the old token's role: only an actor who
        // could issue that role may mint it (an admin rotating an owner's
        // token would otherwise get an owner token).
        if let Err(held) = authorization::may_rotate(actor, &old.scope, old.role) {
            self.refused(actor, Operation::Rotate, Some(scope), Some(id));
            return Err(RotateError::RoleTooHigh {
                role: old.role,
                held,
            });
        }
        if let Some(by) = old.replaced_by {
            return Err(RotateError::AlreadyReplaced { id, by });
        }
        match old.status_at(now) {
            TokenStatus::Revoked => return Err(RotateError::Revoked { id }),
            TokenStatus::Expired => return Err(RotateError::Expired { id }),
            // A disabled token may be rotated: its successor starts
            // disabled too, so a rotation never lifts a pause.
            TokenStatus::Active | TokenStatus::Disabled => {}
        }
        let retire = if grace.is_zero() {
            Retirement::Revoked(Revocation {
                at: now,
                by: actor.id.clone(),
                reason: Label::new(ROTATED).ok(),
            })
        } else {
            let until = now
                .checked_add(signed(grace))
                .and_then(stored_time)
                .ok_or(RotateError::GraceOutOfRange)?;
            if let Some(expiry) = old.expires_at
                && until > expiry
            {
                return Err(RotateError::GraceTooLong {
                    remaining: (expiry - now).unsigned_abs(),
                });
            }
            Retirement::ExpiresAt(until)
        };
        let old_valid_until = match &retire {
            Retirement::ExpiresAt(until) => *until,
            Retirement::Revoked(_) => now,
        };
        // A policy default is never refused, except where it would end past
        // the year 9999.
        let expires_at = match self
            .policy
            .resolve(old.scope.kind(), Expiry::PolicyDefault, now)
        {
            Ok(None) => None,
            Ok(Some(at)) => Some(stored_time(at).ok_or(RotateError::SuccessorExpiryOutOfRange)?),
            Err(_) => return Err(RotateError::SuccessorExpiryOutOfRange),
        };

        let mut attempt = 1;
        loop {
            let (token, mut successor) =
                self.mint(actor, &old.scope, old.role, &old.label, expires_at, now)?;
            successor.rotated_from = Some(id);
            // Rotation changes the secret and nothing the token may do.
            successor.restrictions = old.restrictions.clone();
            successor.disabled = old.disabled.clone();
            let summary = self.summary(&successor, now);
            let event = AuditEvent::Rotated {
                at: now,
                actor: actor.id.clone(),
                old: id,
                new: summary.id,
                scope: old.scope.clone(),
                role: old.role,
                label: old.label.clone(),
                old_valid_until,
            };
            match self
                .store
                .rotate(&old.scope, id, retire.clone(), successor)
                .await
                .inspect_err(|_| self.store_failed("rotate"))
            {
                Ok(RotateOutcome::Rotated) => {
                    self.audit.send(event);
                    return Ok(IssuedToken { token, summary });
                }
                // Another call changed the old token since it was read.
                Ok(RotateOutcome::NotFound) => return Err(RotateError::NotFound { id }),
                Ok(RotateOutcome::Revoked) => return Err(RotateError::Revoked { id }),
                Ok(RotateOutcome::AlreadyReplaced(by)) => {
                    return Err(RotateError::AlreadyReplaced { id, by });
                }
                Err(StoreError::AlreadyExists { .. }) if attempt < ISSUE_ATTEMPTS => attempt += 1,
                Err(error) => {
                    let kind = ChangeKind::Insert { id: summary.id };
                    self.hold_if_unknown(&error, kind, event);
                    return Err(error.into());
                }
            }
        }
    }

    /// Revokes every live token of `scope` (for an organization, its domains'
    /// tokens too), in one store call: for a domain the platform removes or a
    /// customer it offboards. Tokens revoked before keep their revocation.
    /// Same authorization as [`revoke`](Self::revoke) at `scope`. Returns how
    /// many tokens this call revoked, with the first
    /// [`REPORTED_IDS`](crate::store::REPORTED_IDS) of their ids (so the
    /// answer and its audit event stay small however large the scope).
    ///
    /// A token issued while this runs is either revoked by it or issued after
    /// it (its `issue` returns once this call has revoked the rest), never
    /// left live in between.
    ///
    /// # Errors
    ///
    /// [`RevokeScopeError`]: the actor is not an admin at `scope`, the reason
    /// breaks the rules of a [`Label`], or the store failed.
    pub async fn revoke_scope(
        &self,
        actor: &Actor,
        scope: &Scope,
        reason: Option<&str>,
    ) -> Result<ScopeRevoked, RevokeScopeError> {
        if !actor.can_manage_tokens(scope) {
            self.refused(actor, Operation::RevokeScope, Some(scope), None);
            return Err(RevokeScopeError::NotAllowed {
                scope: scope.clone(),
            });
        }
        let reason = reason
            .map(|reason| self.label(reason))
            .transpose()
            .map_err(RevokeScopeError::InvalidReason)?;
        let revocation = Revocation {
            at: self.now(),
            by: actor.id.clone(),
            reason: reason.clone(),
        };
        let at = revocation.at;
        let revoked = self
            .store
            .revoke_scope(scope, revocation)
            .await
            .inspect_err(|_| self.store_failed("revoke_scope"))?;
        // Nothing revoked, nothing happened: no event.
        if revoked.count > 0 {
            self.audit.send(AuditEvent::ScopeRevoked {
                at,
                actor: actor.id.clone(),
                scope: scope.clone(),
                reason,
                count: revoked.count,
                first_tokens: revoked.first.clone(),
            });
        }
        Ok(revoked)
    }

    /// One page of the live tokens of exactly `scope` that expire within
    /// `within` from now, the soonest first: the "your tokens expire soon"
    /// e-mail. Pages like [`list`](Self::list). Same authorization as
    /// `list`.
    ///
    /// # Errors
    ///
    /// [`ListError`]: the actor is not an admin at `scope`, the page size is
    /// outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE), or the store failed.
    pub async fn list_expiring(
        &self,
        actor: &Actor,
        scope: &Scope,
        within: Duration,
        page: PageRequest<ExpiryCursor>,
    ) -> Result<TokenPage<ExpiryCursor>, ListError> {
        if !actor.can_manage_tokens(scope) {
            self.refused(actor, Operation::List, Some(scope), None);
            return Err(ListError::NotAllowed {
                scope: scope.clone(),
            });
        }
        self.expiring_filtered(&ScopeFilter::Exactly(scope.clone()), within, page)
            .await
    }

    /// One page of the live tokens `filter` selects that expire within
    /// `within`, soonest first, for whoever was allowed to ask.
    pub(super) async fn expiring_filtered(
        &self,
        filter: &ScopeFilter,
        within: Duration,
        page: PageRequest<ExpiryCursor>,
    ) -> Result<TokenPage<ExpiryCursor>, ListError> {
        check_page_size(page.limit)?;
        let now = self.now();
        // A token whose expiry is `now` has expired already; times are kept
        // to the microsecond, so the window starts one later. Near the year
        // 9999 the window ends where time does.
        let start = now.saturating_add(time::Duration::MICROSECOND);
        let end = now.saturating_add(signed(within));
        let listed = self
            .store
            .list_expiring(filter, start..end, page.after, page.limit + 1)
            .await
            .inspect_err(|_| self.store_failed("list_expiring"))?;
        Ok(self.page(listed, page.limit, |listed| match listed {
            Ok(record) => ExpiryCursor::of(record),
            Err(damaged) => Some(ExpiryCursor {
                expires_at: damaged.expires_at?,
                id: damaged.id?,
            }),
        }))
    }

    /// Deletes every token that was revoked, or expired, more than
    /// `older_than` ago, in batches of [`PURGE_BATCH`] (each a short store
    /// call), and returns how many it deleted: the table, and the cost of
    /// whole-scope operations, stop growing forever. The tokens are gone
    /// from lists and lookups; their audit events stay wherever your sink
    /// keeps them. One [`AuditEvent::Purged`] says how many went.
    ///
    /// What stays: a rotated token's link to its successor (`replaced_by`,
    /// `rotated_from`) may name a token purged before it, since the two may
    /// end at different times.
    ///
    /// Run it periodically: [`Maintenance::purge`](crate::Maintenance::purge)
    /// has the worker do it. It is not an actor's operation, so it takes
    /// none.
    ///
    /// # Errors
    ///
    /// A store failure stops the purge; what was deleted stays deleted (and
    /// audited), and the next run goes on.
    pub async fn purge(&self, older_than: Duration) -> Result<u64, StoreError> {
        let now = self.now();
        // Never before the year 1: a huge `older_than` means "everything
        // that ended", and SQL servers hold no earlier time.
        let before = now.saturating_sub(signed(older_than)).max(EARLIEST);
        let mut purged = 0;
        let outcome = loop {
            match self
                .store
                .purge(before, PURGE_BATCH)
                .await
                .inspect_err(|_| self.store_failed("purge"))
            {
                Ok(deleted) => {
                    purged += deleted;
                    if deleted < PURGE_BATCH as u64 {
                        break Ok(purged);
                    }
                }
                Err(error) => break Err(error),
            }
        };
        if purged > 0 {
            self.audit.send(AuditEvent::Purged {
                at: now,
                before,
                count: purged,
            });
        }
        outcome
    }
}
