//! Managing one scope's tokens: revoke, look up, list.

use std::sync::Arc;

use super::TokenService;
use super::unconfirmed::{Change, ChangeKind};
use crate::actor::Actor;
use crate::audit::{AuditEvent, Operation};
use crate::authorization;
use crate::error::{ListError, LookupError, RevokeError, StoreError};
use crate::page::{PageRequest, TokenPage, check_page_size};
use crate::record::{DamagedToken, Revocation, TokenRecord, TokenSummary};
use crate::scope::Scope;
use crate::store::{Cursor, ListedRecord, RevokeOutcome, ScopeFilter};
use crate::token::TokenId;

/// What [`TokenService::revoke`] did. Either way the token is revoked now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// This call revoked it.
    Now(Revocation),
    /// It was revoked earlier; the earlier revocation stands.
    Already(Revocation),
}

/// A token an actor may manage, as the store could read it.
pub(super) enum Managed {
    /// The whole record (boxed: it is many times the size of the other).
    Readable(Box<TokenRecord>),
    /// A record damaged outside its scope: revocable by id, nothing more.
    Damaged { error: StoreError },
}

impl Managed {
    /// The record, or the error that says why there is none to show.
    pub(super) fn record(self) -> Result<TokenRecord, StoreError> {
        match self {
            Managed::Readable(record) => Ok(*record),
            Managed::Damaged { error, .. } => Err(error),
        }
    }
}

impl TokenService {
    /// Revokes the token with `id`: from the moment this returns, the token
    /// fails verification on every service sharing the store. Revoking a
    /// revoked token changes nothing and says so.
    ///
    /// # Errors
    ///
    /// [`RevokeError::NotFound`] when no such token lives at `scope` *or*
    /// the actor may not manage it (the two are indistinguishable by
    /// design), or a store failure.
    pub async fn revoke(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
    ) -> Result<Revoked, RevokeError> {
        self.revoke_because(actor, scope, id, None).await
    }

    /// [`revoke`](Self::revoke), recording why: `reason` is kept with the
    /// revocation and sent with the audit event.
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke), and
    /// [`RevokeError::InvalidReason`] for a reason that breaks the rules of
    /// a [`Label`](crate::Label).
    pub async fn revoke_because(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
        reason: Option<&str>,
    ) -> Result<Revoked, RevokeError> {
        // Rights first: an actor without them learns nothing from how its
        // reason is judged, and its attempt is audited either way.
        let Some(managed) = self
            .managed_token(actor, scope, id, Operation::Revoke)
            .await?
        else {
            return Err(RevokeError::NotFound { id });
        };
        let reason = reason
            .map(|reason| self.label(reason))
            .transpose()
            .map_err(RevokeError::InvalidReason)?;
        // A record damaged outside its scope can still be revoked, by id:
        // its event says what could be read of it.
        let (role, label) = match managed {
            Managed::Readable(record) => (Some(record.role), Some(record.label)),
            Managed::Damaged { .. } => (None, None),
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
        match self
            .store
            .revoke(scope, id, revocation.clone())
            .await
            .inspect_err(|_| self.store_failed("revoke"))
        {
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
    pub(super) fn hold_if_unknown(&self, error: &StoreError, kind: ChangeKind, event: AuditEvent) {
        let change = Change {
            kind,
            event,
            failed_at: std::time::Instant::now(),
        };
        if matches!(error, StoreError::Unavailable { .. }) && !self.unconfirmed.hold(change) {
            self.audit.count_dropped();
        }
    }

    /// Looks up the token `id` at `scope`: its row of the API Tokens list,
    /// for its details page.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when no such token lives at `scope` *or*
    /// the actor may not manage it, as for [`revoke`](Self::revoke); or a
    /// store failure.
    pub async fn lookup(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
    ) -> Result<TokenSummary, LookupError> {
        match self
            .managed_token(actor, scope, id, Operation::List)
            .await?
        {
            Some(managed) => Ok(self.summary(&managed.record()?, self.now())),
            None => Err(LookupError::NotFound { id }),
        }
    }

    /// The token `id` if it lives at exactly `addressed` and `actor` may
    /// manage it there; `None` if there is none or it is out of the actor's
    /// reach (see [`authorization`]), which the caller reports alike.
    ///
    /// The two do the same work, so that its cost does not tell another
    /// tenant's token from an id that does not exist: the same credential
    /// lookup verification makes (equal work for a hit and a miss, see
    /// [`verify`](Self::verify)), and the same refused `operation` handed to
    /// the audit queue. Only a token the actor may manage is then read in
    /// full (its scope never changes, so the check still holds). A record
    /// the store cannot read back is managed by whoever may manage the
    /// scope the store could read of it.
    pub(super) async fn managed_token(
        &self,
        actor: &Actor,
        addressed: &Scope,
        id: TokenId,
        operation: Operation,
    ) -> Result<Option<Managed>, StoreError> {
        // The scope stays shared with the store's copy: cloning it (an
        // allocation) only for tokens that exist would time them apart.
        let scope: Option<Arc<Scope>> = match self
            .store
            .find_credential(id)
            .await
            .inspect_err(|_| self.store_failed("find_credential"))
        {
            Ok(found) => found.map(|credential| credential.scope),
            Err(StoreError::Corrupt {
                scope: Some(scope), ..
            }) => Some(Arc::new(scope)),
            // Whose it is cannot be read, so it is nobody's to manage: the
            // answer stays "not found", whichever tenant's row it is.
            Err(StoreError::Corrupt { scope: None, .. }) => None,
            Err(error) => return Err(error),
        };
        if !scope.is_some_and(|scope| authorization::reaches(actor, addressed, &scope)) {
            self.refused(actor, operation, Some(addressed), Some(id));
            return Ok(None);
        }
        // `None` only if the token was deleted in between.
        match self
            .store
            .find(id)
            .await
            .inspect_err(|_| self.store_failed("find"))
        {
            Ok(found) => Ok(found.map(|record| Managed::Readable(Box::new(record)))),
            Err(StoreError::Corrupt {
                id: damaged,
                scope: Some(scope),
                source,
            }) => Ok(Some(Managed::Damaged {
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
    /// is outside 1 to [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE), or the store fails.
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
        self.list_filtered(&ScopeFilter::Exactly(scope.clone()), page)
            .await
    }

    /// One page of what `filter` selects, newest first, for whoever was
    /// allowed to ask.
    pub(super) async fn list_filtered(
        &self,
        filter: &ScopeFilter,
        page: PageRequest,
    ) -> Result<TokenPage, ListError> {
        check_page_size(page.limit)?;
        // One record more than asked tells whether another page follows.
        let listed = self
            .store
            .list(filter, page.after, page.limit + 1)
            .await
            .inspect_err(|_| self.store_failed("list"))?;
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
    pub(super) fn page<C>(
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
}
