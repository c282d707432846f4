//! Changes the store may or may not have made: a write whose call failed as
//! unavailable (the deadline fired, the connection broke) after the server
//! may already have committed it.
//!
//! The service answers such a call with the error, since it cannot know,
//! but keeps the change here with the audit event it would have sent. The
//! event goes out once the store shows the change happened: when a retry
//! finds the token revoked by exactly this revocation, or when
//! [`TokenService::flush_audit`](crate::TokenService::flush_audit) checks
//! every change still held. A change the store still does not show
//! [`SETTLE`] after its call is taken as not made and forgotten: a server
//! that commits after the client gave up does so within its own timeout
//! (PostgreSQL's is twice the store's, ten seconds by default). So the
//! audit trail has one event for a change that landed, and none for one
//! that did not, whichever call learns of it.
//!
//! Not covered: scope revocations (their mark has no id the service could
//! look up) and purges.
//!
//! Bound: at most [`MAX_UNCONFIRMED`] changes are held; past that the
//! oldest is dropped and counted with the audit events dropped.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::record::Revocation;
use crate::store::TokenStore;
use crate::token::TokenId;

/// The most unconfirmed changes held at once.
pub(crate) const MAX_UNCONFIRMED: usize = 1_000;

/// How long after its call a change the store does not show may still
/// land: until then it is held, checked again at each flush.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);

/// A change the store did not confirm, with the event to send if it landed.
pub(crate) struct Change {
    pub(crate) kind: ChangeKind,
    pub(crate) event: AuditEvent,
    /// When its call gave up.
    pub(crate) failed_at: Instant,
}

/// What to look for in the store.
pub(crate) enum ChangeKind {
    /// The token `id` revoked with exactly `revocation`.
    Revoke { id: TokenId, revocation: Revocation },
    /// A record `id` stored (an issue, or a rotation's successor).
    Insert { id: TokenId },
}

impl Change {
    /// Whether the store shows the change: `Ok(None)` when it cannot tell
    /// yet (still unavailable).
    async fn landed(&self, store: &dyn TokenStore) -> Option<bool> {
        let id = match &self.kind {
            ChangeKind::Revoke { id, .. } | ChangeKind::Insert { id } => *id,
        };
        match store.find(id).await {
            Ok(found) => Some(match (&self.kind, found) {
                (ChangeKind::Revoke { revocation, .. }, Some(record)) => {
                    record.revoked.as_ref() == Some(revocation)
                }
                (ChangeKind::Insert { .. }, found) => found.is_some(),
                (ChangeKind::Revoke { .. }, None) => false,
            }),
            Err(StoreError::Unavailable { .. }) => None,
            // A record that cannot be read back cannot confirm anything;
            // holding it would hold it forever.
            Err(_) => Some(false),
        }
    }
}

/// The changes held, oldest first.
#[derive(Default)]
pub(crate) struct Unconfirmed {
    changes: Mutex<VecDeque<Change>>,
}

impl Unconfirmed {
    /// Holds `change`; returns `false` if that dropped the oldest one.
    pub(crate) fn hold(&self, change: Change) -> bool {
        let mut changes = self.lock();
        let room = changes.len() < MAX_UNCONFIRMED;
        if !room {
            changes.pop_front();
        }
        changes.push_back(change);
        room
    }

    /// The event of the held revocation of `id` that `revocation` is, if
    /// any, no longer held: a retry found it landed.
    pub(crate) fn confirm_revocation(
        &self,
        id: TokenId,
        revocation: &Revocation,
    ) -> Option<AuditEvent> {
        let mut changes = self.lock();
        let position = changes.iter().position(|change| {
            matches!(&change.kind, ChangeKind::Revoke { id: held, revocation: kept }
                if *held == id && kept == revocation)
        })?;
        changes.remove(position).map(|change| change.event)
    }

    /// Asks `store` about the held changes: returns the events of those
    /// that landed, forgets those that did not and can no longer
    /// ([`SETTLE`]), and keeps the rest. At the first store failure it
    /// stops asking and keeps the rest unasked, so a store that is down
    /// costs one failed lookup, not one per change. Also returns how many
    /// changes were dropped because more were held than fit.
    pub(crate) async fn confirm(&self, store: &dyn TokenStore) -> (Vec<AuditEvent>, usize) {
        let held: Vec<Change> = self.lock().drain(..).collect();
        let mut landed = Vec::new();
        let mut kept = Vec::new();
        let mut held = held.into_iter();
        for change in held.by_ref() {
            match change.landed(store).await {
                Some(true) => landed.push(change.event),
                Some(false) if change.failed_at.elapsed() >= SETTLE => {}
                Some(false) => kept.push(change),
                None => {
                    kept.push(change);
                    break;
                }
            }
        }
        kept.extend(held);
        let mut changes = self.lock();
        // Held again ahead of any held meanwhile: they are older.
        for change in kept.into_iter().rev() {
            changes.push_front(change);
        }
        let mut dropped = 0;
        while changes.len() > MAX_UNCONFIRMED {
            changes.pop_front();
            dropped += 1;
        }
        (landed, dropped)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Change>> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
