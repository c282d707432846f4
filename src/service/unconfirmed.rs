//! Changes the store may or may not have made: a write whose call failed as
//! unavailable (the deadline fired, the connection broke) after the server
//! may already have committed it.
//!
//! The service answers such a call with the error, since it cannot know,
//! but keeps the change here with the audit event it would have sent. The
//! event goes out once the store shows the change happened: when a retry
//! finds the token revoked by exactly this revocation, or when
//! [`TokenService::flush_audit`](crate::TokenService::flush_audit) checks
//! every change still held. A change the store shows did not happen is
//! forgotten. So the audit trail has exactly one event for a change that
//! landed, and none for one that did not, whichever call learns of it.
//!
//! Bound: at most [`MAX_UNCONFIRMED`] changes are held; past that the
//! oldest is dropped and counted with the audit events dropped.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::record::Revocation;
use crate::store::TokenStore;
use crate::token::TokenId;

/// The most unconfirmed changes held at once.
pub(crate) const MAX_UNCONFIRMED: usize = 1_000;

/// A change the store did not confirm, with the event to send if it landed.
pub(crate) struct Change {
    pub(crate) kind: ChangeKind,
    pub(crate) event: AuditEvent,
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

    /// Asks `store` about every held change: returns the events of those
    /// that landed, forgets those that did not, and keeps the rest.
    pub(crate) async fn confirm(&self, store: &dyn TokenStore) -> Vec<AuditEvent> {
        let held: Vec<Change> = self.lock().drain(..).collect();
        let mut landed = Vec::new();
        let mut unknown = Vec::new();
        for change in held {
            match change.landed(store).await {
                Some(true) => landed.push(change.event),
                Some(false) => {}
                None => unknown.push(change),
            }
        }
        let mut changes = self.lock();
        // Held again ahead of any held meanwhile: they are older.
        for change in unknown.into_iter().rev() {
            changes.push_front(change);
        }
        while changes.len() > MAX_UNCONFIRMED {
            changes.pop_front();
        }
        landed
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Change>> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
