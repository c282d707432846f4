//! Background jobs' access to every scope: the expiring-soon mailer
//! (whose notices are in `notices`), offboarding, audits across tenants. No actor's rights limit it, so it is
//! a separate type, obtained by name, that no request path holds by
//! accident.

use std::time::Duration;

use super::TokenService;
use crate::audit::AuditEvent;
use crate::error::{ListError, RevokeCreatedByError};
use crate::ids::ActorId;
use crate::page::{PageRequest, TokenPage};
use crate::record::Revocation;
use crate::store::{Cursor, ExpiryCursor, REPORTED_IDS, ScopeFilter};
use crate::token::TokenId;

/// How many tokens one store call of
/// [`Operator::revoke_created_by`] revokes at most: each call is one short
/// transaction, however many tokens the person created.
pub const REVOKE_BATCH: usize = 1_000;

/// A background job's handle on the service, from
/// [`TokenService::operator`]: it lists and revokes across every scope,
/// with no actor's rights checked.
///
/// **Never hand one to a request handler.** A handler acts for a user: it
/// resolves an [`Actor`](crate::Actor) and calls the service's own methods,
/// which check that actor's rights. This type exists for jobs that act for
/// the platform itself, and what it changes is audited under the job's
/// name.
#[derive(Debug)]
pub struct Operator<'a> {
    pub(super) service: &'a TokenService,
    pub(super) job: ActorId,
}

/// What [`Operator::revoke_created_by`] revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatorRevoked {
    /// How many tokens this call revoked (not those revoked before).
    pub count: u64,
    /// The first of them, at most [`REPORTED_IDS`]: the answer and its
    /// audit event stay small however many tokens the person created.
    pub first: Vec<TokenId>,
}

impl TokenService {
    /// Access for the background job `job` to every scope, with no actor's
    /// rights checked: see [`Operator`], and never use it on a request's
    /// behalf. `job` names the job in the audit trail (`"offboarding"`,
    /// `"expiry-mailer"`).
    ///
    /// ```no_run
    /// # async fn mail(service: &api_tokens::TokenService) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use api_tokens::{ActorId, PageRequest};
    /// use api_tokens::store::ScopeFilter;
    ///
    /// let mailer = service.operator(ActorId::new("expiry-mailer")?);
    /// let week = Duration::from_secs(7 * 24 * 3600);
    /// let mut page = PageRequest::first(500);
    /// loop {
    ///     let expiring = mailer.list_expiring(&ScopeFilter::All, week, page).await?;
    ///     for token in &expiring.tokens {
    ///         // e-mail token.created_by about token.label ...
    ///     }
    ///     match expiring.next {
    ///         Some(next) => page = PageRequest::after(next, 500),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn operator(&self, job: ActorId) -> Operator<'_> {
        Operator { service: self, job }
    }
}

impl Operator<'_> {
    /// One page of the tokens `filter` selects, newest first: an
    /// organization with all its domains ([`ScopeFilter::Covered`]), or
    /// every token ([`ScopeFilter::All`]).
    ///
    /// # Errors
    ///
    /// [`ListError::InvalidPageSize`] for a page size outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE), or a store failure.
    pub async fn list(
        &self,
        filter: &ScopeFilter,
        page: PageRequest,
    ) -> Result<TokenPage<Cursor>, ListError> {
        self.service.list_filtered(filter, page).await
    }

    /// One page of the live tokens `filter` selects that expire within
    /// `within` from now, the soonest first: the expiring-soon mailer's
    /// list, across every scope with [`ScopeFilter::All`].
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        within: Duration,
        page: PageRequest<ExpiryCursor>,
    ) -> Result<TokenPage<ExpiryCursor>, ListError> {
        self.service.expiring_filtered(filter, within, page).await
    }

    /// Revokes every token `creator` issued that is not revoked yet (expired
    /// ones too, as the store has no clock), in every scope: when a person
    /// leaves, the tokens they made stop working with them. Runs in
    /// store calls of at most [`REVOKE_BATCH`] tokens until none is left;
    /// one [`AuditEvent::CreatorRevoked`] says how many went, under the
    /// job's name. Tokens revoked before keep their revocation.
    ///
    /// # Errors
    ///
    /// [`RevokeCreatedByError::InvalidReason`] for a reason that breaks
    /// the rules of a [`Label`](crate::Label) (nothing is revoked then); a
    /// store failure stops the call, and what was revoked stays revoked
    /// and audited: run it again to finish. One gap, as for
    /// [`revoke_scope`](TokenService::revoke_scope): a batch whose store
    /// call committed but answered as unavailable (a deadline firing after
    /// the commit) is in no event, and the rerun finds it revoked already.
    pub async fn revoke_created_by(
        &self,
        creator: &ActorId,
        reason: Option<&str>,
    ) -> Result<CreatorRevoked, RevokeCreatedByError> {
        let service = self.service;
        let reason = reason
            .map(|reason| service.label(reason))
            .transpose()
            .map_err(RevokeCreatedByError::InvalidReason)?;
        let revocation = Revocation {
            at: service.now(),
            by: self.job.clone(),
            reason: reason.clone(),
        };
        let mut revoked = CreatorRevoked {
            count: 0,
            first: Vec::new(),
        };
        let outcome = loop {
            match service
                .store
                .revoke_created_by(creator, revocation.clone(), REVOKE_BATCH)
                .await
                .inspect_err(|_| service.store_failed("revoke_created_by"))
            {
                Ok(batch) => {
                    revoked.count += batch.len() as u64;
                    let room = REPORTED_IDS.saturating_sub(revoked.first.len());
                    revoked.first.extend(batch.iter().take(room));
                    if batch.len() < REVOKE_BATCH {
                        break Ok(());
                    }
                }
                Err(error) => break Err(error),
            }
        };
        if revoked.count > 0 {
            service.audit.send(AuditEvent::CreatorRevoked {
                at: revocation.at,
                actor: self.job.clone(),
                creator: creator.clone(),
                reason,
                count: revoked.count,
                first_tokens: revoked.first.clone(),
            });
        }
        outcome.map_err(RevokeCreatedByError::Store)?;
        Ok(revoked)
    }
}
