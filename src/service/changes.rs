//! Changing a token without revoking it: disable (pause), enable, and edit
//! its label or expiry.
//!
//! Each is authorized like [`revoke`](TokenService::revoke) (admin at the
//! token's exact scope, and "not found" for anything else), audited, and
//! one atomic [`TokenStore::update`](crate::TokenStore::update). A revoked
//! token and one replaced by a rotation are final: they cannot be changed.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::{TokenService, stored_time};
use crate::actor::Actor;
use crate::audit::{AuditEvent, Operation};
use crate::authorization;
use crate::error::{IssueError, UpdateError};
use crate::policy::Expiry;
use crate::record::{Disablement, TokenRecord, TokenSummary};
use crate::scan::redact_any_format;
use crate::scope::Scope;
use crate::store::{ExpiryChange, TokenChange, UpdateOutcome};
use crate::token::TokenId;

/// What [`TokenService::edit`] changes: the label, the expiry, or both
/// (atomically). Fields left `None` stay as they are.
///
/// The expiry may only be brought forward, unless the service's
/// [`ExpiryPolicy`](crate::ExpiryPolicy) [allows
/// extending](crate::ExpiryPolicy::allow_extending); either way it must
/// lie in the future and within the policy's maximum lifetime, counted
/// from the edit.
///
/// Its `Debug` shows the label with any token in it masked.
#[derive(Clone, Default)]
pub struct TokenEdit {
    /// The new label; validated as a [`Label`](crate::Label).
    pub label: Option<String>,
    /// The new expiry.
    pub expiry: Option<Expiry>,
}

impl TokenEdit {
    /// An edit that changes nothing yet.
    pub fn new() -> Self {
        TokenEdit::default()
    }

    /// Changes the label.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Makes the token expire at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expiry = Some(Expiry::At(at));
        self
    }

    /// Makes the token expire `lifetime` from now, by the service's clock.
    #[must_use]
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expiry = Some(Expiry::In(lifetime));
        self
    }

    /// Makes the token never expire (an extension: refused unless the
    /// policy allows extending and sets no maximum lifetime).
    #[must_use]
    pub fn never_expires(mut self) -> Self {
        self.expiry = Some(Expiry::Never);
        self
    }
}

// Written out: the label is raw input, and someone may have pasted a token
// into it.
impl fmt::Debug for TokenEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEdit")
            .field("label", &self.label.as_deref().map(redact_any_format))
            .field("expiry", &self.expiry)
            .finish()
    }
}

impl TokenService {
    /// Disables (pauses) the token `id` at `scope`: from the moment this
    /// returns it fails verification with [`VerifyError::Disabled`](crate::VerifyError::Disabled)
    /// (401 over HTTP, like a revoked token, and counted apart), until
    /// [`enable`](Self::enable)d. Disabling a disabled token changes
    /// nothing: the first pause (who, when) is kept. Returns the token's
    /// row of the list as it now stands.
    ///
    /// # Errors
    ///
    /// [`UpdateError::NotFound`] when no such token lives at `scope` or the
    /// actor may not manage it; `Revoked` or `Replaced` for a token that is
    /// final; or a store failure.
    pub async fn disable(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
    ) -> Result<TokenSummary, UpdateError> {
        let disablement = Disablement {
            at: self.now(),
            by: actor.id.clone(),
        };
        let change = TokenChange::Disable(disablement);
        self.change(actor, scope, id, Operation::Disable, |_| Ok(change))
            .await
    }

    /// Enables a disabled token again: it verifies as before. Enabling a
    /// token that is not disabled changes nothing.
    ///
    /// Enabling gives power back, so it also needs the token's own role
    /// (an admin cannot resume an owner's token).
    ///
    /// # Errors
    ///
    /// As [`disable`](Self::disable), and [`UpdateError::RoleTooHigh`]
    /// when the actor's role is below the token's.
    pub async fn enable(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
    ) -> Result<TokenSummary, UpdateError> {
        self.change(actor, scope, id, Operation::Disable, |record| {
            self.may_give_back(actor, record)?;
            Ok(TokenChange::Enable)
        })
        .await
    }

    /// Edits the token's label and expiry, as `edit` says (see
    /// [`TokenEdit`] for the expiry's rules), in one atomic step.
    ///
    /// # Errors
    ///
    /// As [`disable`](Self::disable); [`UpdateError::InvalidLabel`]; for
    /// the expiry `Expired` (an expired token's expiry stays),
    /// `ExpiryNotInFuture`, `ExpiryOutOfRange`, `ExpiryExtended`,
    /// `LifetimeTooLong`, `MustExpire`, and `RoleTooHigh` (pushing it
    /// later needs the token's own role); and `Conflict` when the token's
    /// expiry changed between the check and the write.
    pub async fn edit(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
        edit: TokenEdit,
    ) -> Result<TokenSummary, UpdateError> {
        self.change(actor, scope, id, Operation::Edit, |record| {
            let label = edit
                .label
                .as_deref()
                .map(|label| self.label(label))
                .transpose()?;
            let expiry = edit
                .expiry
                .map(|expiry| self.new_expiry(record, expiry))
                .transpose()?;
            if expiry.is_some_and(extends) {
                self.may_give_back(actor, record)?;
            }
            Ok(TokenChange::Edit { label, expiry })
        })
        .await
    }

    /// The one path of every change: rights, the record's state, the
    /// change `make` builds from the record, the store's atomic update,
    /// the audit event.
    async fn change(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
        operation: Operation,
        make: impl FnOnce(&TokenRecord) -> Result<TokenChange, UpdateError>,
    ) -> Result<TokenSummary, UpdateError> {
        // Rights first: an actor without them learns nothing from how the
        // edit is judged, and its attempt is audited either way.
        let Some(managed) = self.managed_token(actor, scope, id, operation).await? else {
            return Err(UpdateError::NotFound { id });
        };
        let mut record = managed.record()?;
        if record.revoked.is_some() {
            return Err(UpdateError::Revoked { id });
        }
        if let Some(by) = record.replaced_by {
            return Err(UpdateError::Replaced { id, by });
        }
        let change = make(&record)?;
        match self
            .store
            .update(scope, id, &change)
            .await
            .inspect_err(|_| self.store_failed("update"))?
        {
            UpdateOutcome::Updated => {}
            // Already so: perhaps by a call that landed after the read
            // above, so the answer is read afresh.
            UpdateOutcome::Unchanged => {
                let current = self
                    .store
                    .find(id)
                    .await
                    .inspect_err(|_| self.store_failed("find"))?;
                return Ok(self.summary(&current.unwrap_or(record), self.now()));
            }
            UpdateOutcome::NotFound => return Err(UpdateError::NotFound { id }),
            UpdateOutcome::Revoked => return Err(UpdateError::Revoked { id }),
            UpdateOutcome::Replaced(by) => return Err(UpdateError::Replaced { id, by }),
            UpdateOutcome::ExpiryMoved(_) => return Err(UpdateError::Conflict { id }),
        }
        let (at, actor, token, scope) = (self.now(), actor.id.clone(), id, scope.clone());
        let event = match change {
            TokenChange::Disable(disablement) => {
                record.disabled = Some(disablement);
                AuditEvent::Disabled {
                    at,
                    actor,
                    token,
                    scope,
                }
            }
            TokenChange::Enable => {
                record.disabled = None;
                AuditEvent::Enabled {
                    at,
                    actor,
                    token,
                    scope,
                }
            }
            TokenChange::Edit { label, expiry } => {
                if let Some(label) = &label {
                    record.label = label.clone();
                }
                if let Some(expiry) = expiry {
                    record.expires_at = expiry.to;
                }
                AuditEvent::Edited {
                    at,
                    actor,
                    token,
                    scope,
                    label,
                    expiry,
                }
            }
        };
        self.audit.send(event);
        Ok(self.summary(&record, self.now()))
    }

    /// Whether `actor` may give `record`'s token power back (enable it,
    /// extend it): it needs the token's role (see [`authorization`]).
    fn may_give_back(&self, actor: &Actor, record: &TokenRecord) -> Result<(), UpdateError> {
        authorization::may_rotate(actor, &record.scope, record.role).map_err(|held| {
            UpdateError::RoleTooHigh {
                role: record.role,
                held,
            }
        })
    }

    /// The expiry change an edit asks for, checked against the policy and
    /// the token's current expiry.
    fn new_expiry(
        &self,
        record: &TokenRecord,
        expiry: Expiry,
    ) -> Result<ExpiryChange, UpdateError> {
        let now = self.now();
        // An expired token stays so: moving its expiry would revive it.
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err(UpdateError::Expired { id: record.id });
        }
        let expiry = match expiry {
            Expiry::At(at) => Expiry::At(stored_time(at).ok_or(UpdateError::ExpiryOutOfRange)?),
            other => other,
        };
        let to = self
            .policy
            .resolve(record.scope.kind(), expiry, now)
            .map_err(|error| match error {
                IssueError::LifetimeTooLong { kind, max } => {
                    UpdateError::LifetimeTooLong { kind, max }
                }
                IssueError::MustExpire { kind, max } => UpdateError::MustExpire { kind, max },
                IssueError::ExpiryNotInFuture => UpdateError::ExpiryNotInFuture,
                _ => UpdateError::ExpiryOutOfRange,
            })?
            .map(|at| stored_time(at).ok_or(UpdateError::ExpiryOutOfRange))
            .transpose()?;
        if to.is_some_and(|at| at <= now) {
            return Err(UpdateError::ExpiryNotInFuture);
        }
        let change = ExpiryChange {
            from: record.expires_at,
            to,
        };
        if extends(change) && !self.policy.extending_allowed() {
            return Err(UpdateError::ExpiryExtended);
        }
        Ok(change)
    }
}

/// Whether `change` pushes the expiry later (or off: never expiring).
fn extends(change: ExpiryChange) -> bool {
    match (change.from, change.to) {
        (Some(from), Some(to)) => to > from,
        (Some(_), None) => true,
        (None, _) => false,
    }
}
