//! The in-memory store: the embedded default.
//!
//! Its layout serves `find_credential`, which every verification calls:
//!
//! - The records live in the [sharded table](super::shards) the replica
//!   uses too: what verification reads (a [`StoredCredential`]) inline in
//!   the table entry, the rest of the record (label, creator, revocation
//!   details) in a box beside it. A lookup waits on main memory for one
//!   table entry (96 bytes, two adjacent cache lines fetched together),
//!   like the bare map lookup it is measured against, rather than for the
//!   entry and then for a record behind its pointer.
//! - A lookup of an unknown id reads a decoy entry, so a miss costs the
//!   memory traffic of a hit. The two still run different instructions in
//!   the hash table; a dudect test tells them apart by a few nanoseconds
//!   (0–2 % with lookups interleaved; up to 14 % on Intel in a loop of
//!   misses alone, the README's timing section has the figures per CPU),
//!   which says whether an id exists, never anything about a secret.
//! - Records of one scope share one copy of the scope.
//! - Lists read an ordered index of each scope's list positions. Nothing
//!   else is indexed (no index by creator or by expiry): each would cost
//!   every token memory (the README has the figures per token) for calls
//!   an operator makes rarely. What each call costs is on the
//!   [`TokenStore`] methods below.

use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::fmt;
use std::ops::{Bound, Range};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use hashbrown::HashTable;
use time::OffsetDateTime;

use super::shards::{
    Keyed, Shards, find_in, find_in_mut, insert_into, read, remove_from, shard_index, write,
};
use super::{
    Cursor, ExpiryCursor, ListedRecord, NoticeWindow, Retirement, RevokeOutcome, RotateOutcome,
    ScopeFilter, ScopeRevoked, TokenChange, TokenStore, UpdateOutcome,
};
use crate::error::StoreError;
use crate::ids::{ActorId, OrganizationId};
use crate::label::Label;
use crate::record::{
    Disablement, Revocation, StoredCredential, TokenRecord, ended_before, shared_restrictions,
};
use crate::scope::Scope;
use crate::token::TokenId;

/// Keeps records in this process's memory. They are gone when it exits, and
/// other instances of a service do not see them: use it for tests, for
/// single-process services that re-issue tokens on restart, or while
/// prototyping.
///
/// Every method holds a lock only for its own table operations, never across
/// an `.await`. `find` and `list` build their records afresh, so a caller
/// can keep one as long as it likes.
pub struct MemoryStore {
    /// The records, by id.
    shards: Shards<Entry>,
    /// Each scope's records. Verification never reads it.
    scopes: RwLock<Scopes>,
    /// Orders scope-wide revocations against inserts: inserting (and
    /// rotating) holds it shared from the table to the scope index,
    /// `revoke_scope` holds it exclusively, so no insert is half-way while a
    /// scope is revoked. Verification never takes it.
    inserting: RwLock<()>,
    /// Tests only: runs inside `revoke_scope` between reading the ids and
    /// revoking them, so a test can show nothing gets in between.
    #[cfg(test)]
    after_snapshot: std::sync::Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

/// Every scope's list positions.
#[derive(Default)]
struct Scopes {
    /// Each scope's records.
    by_scope: HashMap<Scope, ScopeIndex>,
    /// The domain scopes of each organization that has any: what an
    /// organization-wide list reads besides the organization's own.
    domains: HashMap<OrganizationId, Vec<Scope>>,
}

impl Scopes {
    /// The indexes of the scopes `filter` reads.
    fn read_by<'a>(&'a self, filter: &'a ScopeFilter) -> Vec<&'a ScopeIndex> {
        match filter {
            ScopeFilter::Exactly(scope) | ScopeFilter::Covered(scope @ Scope::Domain { .. }) => {
                self.by_scope.get(scope).into_iter().collect()
            }
            ScopeFilter::Covered(scope @ Scope::Organization { org }) => {
                let domains = self.domains.get(org).into_iter().flatten();
                std::iter::once(scope)
                    .chain(domains)
                    .filter_map(|scope| self.by_scope.get(scope))
                    .collect()
            }
            ScopeFilter::All => self.by_scope.values().collect(),
        }
    }
}

/// One scope's records.
struct ScopeIndex {
    /// The one copy of the scope its records share.
    shared: Arc<Scope>,
    /// Their list positions.
    positions: BTreeSet<Cursor>,
}

/// One record: the part verification reads inline, the rest boxed.
struct Entry {
    credential: StoredCredential,
    details: Box<Details>,
}

/// The fields of a [`TokenRecord`] that are not in its [`StoredCredential`].
struct Details {
    label: Label,
    created_at: OffsetDateTime,
    created_by: ActorId,
    revoked: Option<Revocation>,
    /// What few tokens have, boxed: an empty box costs 8 bytes where its
    /// contents cost 64.
    rare: Option<Box<Rare>>,
}

/// The fields of a [`Details`] that most tokens never set.
#[derive(Clone, Default)]
struct Rare {
    rotated_from: Option<TokenId>,
    replaced_by: Option<TokenId>,
    disabled: Option<Disablement>,
    /// The last expiry notice claimed: about which expiry, by a window of
    /// how many seconds. Kept here, not in every entry, so a token that
    /// never gets one costs no more than before.
    notice: Option<(OffsetDateTime, u32)>,
}

impl Details {
    fn replaced_by(&self) -> Option<TokenId> {
        self.rare.as_ref().and_then(|rare| rare.replaced_by)
    }

    fn is_disabled(&self) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|rare| rare.disabled.is_some())
    }

    /// The rare fields, to change; an all-empty box is dropped again by
    /// [`tidy`](Self::tidy).
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    fn tidy(&mut self) {
        if self.rare.as_ref().is_some_and(|rare| {
            rare.rotated_from.is_none()
                && rare.replaced_by.is_none()
                && rare.disabled.is_none()
                && rare.notice.is_none()
        }) {
            self.rare = None;
        }
    }
}

impl Entry {
    /// The entry of `record`, whose scope is `scope`.
    fn new(record: TokenRecord, scope: Arc<Scope>) -> Entry {
        Entry {
            credential: StoredCredential {
                id: record.id,
                scope,
                role: record.role,
                key_id: record.key_id,
                digest: record.digest,
                expires_at: record.expires_at,
                revoked: record.revoked.is_some(),
                replaced: record.replaced_by.is_some(),
                last_used_at: record.last_used_at,
                restrictions: shared_restrictions(&record.restrictions),
                disabled: record.disabled.is_some(),
            },
            details: Box::new(Details {
                label: record.label,
                created_at: record.created_at,
                created_by: record.created_by,
                revoked: record.revoked,
                rare: (record.rotated_from.is_some()
                    || record.replaced_by.is_some()
                    || record.disabled.is_some())
                .then(|| {
                    Box::new(Rare {
                        rotated_from: record.rotated_from,
                        replaced_by: record.replaced_by,
                        disabled: record.disabled,
                        notice: None,
                    })
                }),
            }),
        }
    }

    /// Sets the revocation, in both halves (under one write lock, so no
    /// reader sees one without the other), unless one is set already.
    /// Whether it changed anything.
    fn revoke(&mut self, revocation: Revocation) -> bool {
        if self.details.revoked.is_some() {
            return false;
        }
        self.credential.revoked = true;
        self.details.revoked = Some(revocation);
        true
    }

    /// [`TokenRecord::ended_before`], without building the record.
    fn record_ended_before(&self, before: OffsetDateTime) -> bool {
        let revoked_at = self
            .details
            .revoked
            .as_ref()
            .map(|revocation| revocation.at);
        ended_before(revoked_at, self.credential.expires_at, before)
    }

    fn record(&self) -> TokenRecord {
        let (credential, details) = (&self.credential, &*self.details);
        TokenRecord {
            id: credential.id,
            scope: Scope::clone(&credential.scope),
            role: credential.role,
            label: details.label.clone(),
            key_id: credential.key_id,
            digest: credential.digest,
            created_at: details.created_at,
            created_by: details.created_by.clone(),
            expires_at: credential.expires_at,
            revoked: details.revoked.clone(),
            last_used_at: credential.last_used_at,
            rotated_from: details.rare.as_ref().and_then(|rare| rare.rotated_from),
            replaced_by: details.replaced_by(),
            restrictions: credential
                .restrictions
                .as_deref()
                .cloned()
                .unwrap_or_default(),
            disabled: details.rare.as_ref().and_then(|rare| rare.disabled.clone()),
        }
    }
}

impl Keyed for Entry {
    fn credential(&self) -> &StoredCredential {
        &self.credential
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            shards: Shards::new(),
            scopes: RwLock::default(),
            inserting: RwLock::default(),
            #[cfg(test)]
            after_snapshot: std::sync::Mutex::default(),
        }
    }

    /// How many records it holds, revoked and expired ones included.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether it holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    fn shard(&self, id: TokenId) -> &RwLock<HashTable<Entry>> {
        self.shards.of(id)
    }

    /// The copy of `scope` its records share, made on first use.
    fn shared_scope(&self, scope: &Scope) -> Arc<Scope> {
        if let Some(index) = read(&self.scopes).by_scope.get(scope) {
            return Arc::clone(&index.shared);
        }
        let mut scopes = write(&self.scopes);
        let Scopes { by_scope, domains } = &mut *scopes;
        let index = by_scope.entry(scope.clone()).or_insert_with(|| {
            if let Scope::Domain { org, .. } = scope {
                domains.entry(org.clone()).or_default().push(scope.clone());
            }
            ScopeIndex {
                shared: Arc::new(scope.clone()),
                positions: BTreeSet::new(),
            }
        });
        Arc::clone(&index.shared)
    }

    /// Lists `cursor` under its scope, once its record is stored.
    fn index(&self, scope: &Scope, cursor: Cursor) {
        // `shared_scope` made the entry before the record was stored.
        if let Some(index) = write(&self.scopes).by_scope.get_mut(scope) {
            index.positions.insert(cursor);
        }
    }

    /// The ids listed under the scopes `filter` reads, each scope's newest
    /// first.
    fn ids_of(&self, filter: &ScopeFilter) -> Vec<TokenId> {
        let scopes = read(&self.scopes);
        scopes
            .read_by(filter)
            .into_iter()
            .flat_map(|index| index.positions.iter().rev().map(|position| position.id))
            .collect()
    }
}

/// The place of `entry` in an expiring list of `window` after `after`, if
/// it belongs there: live, unreplaced, expiring in the window.
fn expiring_in(
    entry: &Entry,
    window: &Range<OffsetDateTime>,
    after: Option<ExpiryCursor>,
) -> Option<ExpiryCursor> {
    let credential = &entry.credential;
    let at = credential.expires_at.filter(|at| window.contains(at))?;
    let position = ExpiryCursor {
        expires_at: at,
        id: credential.id,
    };
    let live = !credential.revoked && !credential.replaced;
    (live && after.is_none_or(|after| position > after)).then_some(position)
}

/// The place of `entry` in the expiring list of `window`, if it is due
/// for a notice of it: expiring in it, live, and not marked for its expiry
/// by a window as short or shorter.
fn due_in(entry: &Entry, window: &NoticeWindow) -> Option<ExpiryCursor> {
    let position = expiring_in(entry, &(window.start..window.end), None)?;
    let marked = entry.details.rare.as_ref().and_then(|rare| rare.notice);
    window
        .is_due(Some(position.expires_at), marked)
        .then_some(position)
}

/// The first `limit` positions of a list read from `indexes`, newest first,
/// after `after`: a merge of each index's ordered positions, so a page costs
/// one seek per index and then `log(indexes)` per record, however many
/// records the indexes hold.
fn newest_first(indexes: &[&ScopeIndex], after: Option<Cursor>, limit: usize) -> Vec<TokenId> {
    let end = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut runs: Vec<_> = indexes
        .iter()
        .map(|index| index.positions.range((Bound::Unbounded, end)).rev())
        .collect();
    let mut heads: BinaryHeap<(Cursor, usize)> = runs
        .iter_mut()
        .enumerate()
        .filter_map(|(run, positions)| Some((*positions.next()?, run)))
        .collect();
    let mut ids = Vec::new();
    while ids.len() < limit {
        let Some((position, run)) = heads.pop() else {
            break;
        };
        ids.push(position.id);
        if let Some(next) = runs[run].next() {
            heads.push((*next, run));
        }
    }
    ids
}

/// The `limit` soonest of `positions`, soonest first: a bounded heap, so a
/// scan keeps no more than a page.
fn soonest(positions: impl Iterator<Item = ExpiryCursor>, limit: usize) -> Vec<ExpiryCursor> {
    if limit == 0 {
        return Vec::new();
    }
    let mut kept: BinaryHeap<ExpiryCursor> = BinaryHeap::new();
    for position in positions {
        if kept.len() < limit {
            kept.push(position);
        } else if kept.peek().is_some_and(|latest| position < *latest) {
            kept.pop();
            kept.push(position);
        }
    }
    kept.into_sorted_vec()
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let _inserting = read(&self.inserting);
        let id = record.id;
        let cursor = Cursor::of(&record);
        let scope = self.shared_scope(&record.scope);
        {
            let mut table = write(self.shard(id));
            if find_in(&table, id).is_some() {
                return Err(StoreError::AlreadyExists { id });
            }
            insert_into(&mut table, Entry::new(record, Arc::clone(&scope)));
        }
        // Listed once stored, so a list never names a record `find` lacks.
        self.index(&scope, cursor);
        Ok(())
    }

    async fn find(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        Ok(find_in(&read(self.shard(id)), id).map(Entry::record))
    }

    async fn find_credential(&self, id: TokenId) -> Result<Option<StoredCredential>, StoreError> {
        Ok(self.shards.credential(id))
    }

    /// Reads each listed scope's ordered positions, merged: a page costs
    /// one seek per scope read and `log(scopes)` per record, under the
    /// scope index's read lock (inserts wait for it, verification never
    /// does). [`ScopeFilter::Exactly`] and a domain's
    /// [`ScopeFilter::Covered`] read one scope, an organization's `Covered`
    /// its own and each of its domains', [`ScopeFilter::All`] every scope
    /// the store has held: proportional to the page and the number of
    /// scopes, never to the number of tokens.
    async fn list(
        &self,
        filter: &ScopeFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let ids: Vec<TokenId> = {
            let scopes = read(&self.scopes);
            newest_first(&scopes.read_by(filter), after, limit)
        };
        // Records kept as Rust values cannot be damaged: every one is `Ok`.
        Ok(ids
            .into_iter()
            .filter_map(|id| find_in(&read(self.shard(id)), id).map(Entry::record))
            .map(Ok)
            .collect())
    }

    async fn revoke(
        &self,
        scope: &Scope,
        id: TokenId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut table = write(self.shard(id));
        // Checked under the lock the write takes: another scope's token is
        // not found, whatever its state.
        let addressed =
            find_in_mut(&mut table, id).filter(|entry| *entry.credential.scope == *scope);
        let Some(entry) = addressed else {
            return Ok(RevokeOutcome::NotFound);
        };
        if let Some(earlier) = &entry.details.revoked {
            return Ok(RevokeOutcome::AlreadyRevoked(earlier.clone()));
        }
        entry.revoke(revocation);
        Ok(RevokeOutcome::Revoked)
    }

    /// Revokes the scope's records one by one, each under its own table's
    /// lock for one update, so verification waits at most that long. Inserts
    /// and rotations (of every scope) wait for the whole call: in memory it
    /// takes well under a second for a million tokens.
    async fn revoke_scope(
        &self,
        scope: &Scope,
        revocation: Revocation,
    ) -> Result<ScopeRevoked, StoreError> {
        // No insert is between its table and its scope index while this runs.
        let _no_inserts = write(&self.inserting);
        let ids = self.ids_of(&ScopeFilter::Covered(scope.clone()));
        #[cfg(test)]
        if let Some(hook) = &*self.after_snapshot.lock().unwrap() {
            hook();
        }
        let mut revoked = ScopeRevoked::default();
        for id in ids {
            let mut table = write(self.shard(id));
            if find_in_mut(&mut table, id).is_some_and(|entry| entry.revoke(revocation.clone())) {
                revoked.add(id);
            }
        }
        Ok(revoked)
    }

    async fn rotate(
        &self,
        scope: &Scope,
        old: TokenId,
        retire: Retirement,
        successor: TokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        let _inserting = read(&self.inserting);
        let cursor = Cursor::of(&successor);
        let shared = self.shared_scope(&successor.scope);
        let new = successor.id;
        // Both tables locked, always in index order, so two rotations cannot
        // wait on each other.
        let (i, j) = (shard_index(old), shard_index(new));
        let mut first = write(&self.shards.all()[i.min(j)].0);
        let mut second = (i != j).then(|| write(&self.shards.all()[i.max(j)].0));
        let (old_table, new_table) = match second.as_deref_mut() {
            None => (&mut *first, None),
            Some(other) if i < j => (&mut *first, Some(other)),
            Some(other) => (other, Some(&mut *first)),
        };
        let taken = match &new_table {
            Some(table) => find_in(table, new).is_some(),
            None => find_in(old_table, new).is_some(),
        };
        if taken {
            return Err(StoreError::AlreadyExists { id: new });
        }
        // Checked under the lock the write takes, as `revoke` does.
        let addressed =
            find_in_mut(old_table, old).filter(|entry| *entry.credential.scope == *scope);
        let Some(entry) = addressed else {
            return Ok(RotateOutcome::NotFound);
        };
        if let Some(successor) = entry.details.replaced_by() {
            return Ok(RotateOutcome::AlreadyReplaced(successor));
        }
        if entry.details.revoked.is_some() {
            return Ok(RotateOutcome::Revoked);
        }
        entry.credential.replaced = true;
        entry.details.rare_mut().replaced_by = Some(new);
        match retire {
            Retirement::ExpiresAt(at) => entry.credential.expires_at = Some(at),
            Retirement::Revoked(revocation) => {
                entry.revoke(revocation);
            }
        }
        let entry = Entry::new(successor, Arc::clone(&shared));
        insert_into(new_table.unwrap_or(old_table), entry);
        drop((first, second));
        self.index(&shared, cursor);
        Ok(RotateOutcome::Rotated)
    }

    async fn update(
        &self,
        scope: &Scope,
        id: TokenId,
        change: &TokenChange,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut table = write(self.shard(id));
        // Checked under the lock the write takes, as `revoke` does.
        let addressed =
            find_in_mut(&mut table, id).filter(|entry| *entry.credential.scope == *scope);
        let Some(entry) = addressed else {
            return Ok(UpdateOutcome::NotFound);
        };
        if entry.details.revoked.is_some() {
            return Ok(UpdateOutcome::Revoked);
        }
        if let Some(successor) = entry.details.replaced_by() {
            return Ok(UpdateOutcome::Replaced(successor));
        }
        let (credential, details) = (&mut entry.credential, &mut *entry.details);
        match change {
            TokenChange::Disable(_) | TokenChange::Enable
                if details.is_disabled() == matches!(change, TokenChange::Disable(_)) =>
            {
                return Ok(UpdateOutcome::Unchanged);
            }
            TokenChange::Disable(disablement) => {
                credential.disabled = true;
                details.rare_mut().disabled = Some(disablement.clone());
            }
            TokenChange::Enable => {
                credential.disabled = false;
                details.rare_mut().disabled = None;
                details.tidy();
            }
            TokenChange::Edit { label, expiry } => {
                if let Some(expiry) = expiry {
                    if credential.expires_at != expiry.from {
                        return Ok(UpdateOutcome::ExpiryMoved(credential.expires_at));
                    }
                    credential.expires_at = expiry.to;
                }
                if let Some(label) = label {
                    details.label = label.clone();
                }
            }
        }
        Ok(UpdateOutcome::Updated)
    }

    async fn record_uses(&self, uses: &[(TokenId, OffsetDateTime)]) -> Result<(), StoreError> {
        for &(id, at) in uses {
            let mut table = write(self.shard(id));
            if let Some(entry) = find_in_mut(&mut table, id) {
                let last = &mut entry.credential.last_used_at;
                *last = Some(last.map_or(at, |earlier| earlier.max(at)));
            }
        }
        Ok(())
    }

    /// Keeps no index by expiry (it would cost every token memory for a
    /// daily job): reads each token of the scopes the filter reads, keeping
    /// the page's soonest in a bounded heap, then builds those records.
    /// [`ScopeFilter::All`] scans every table, one at a time under its read
    /// lock (verification goes on): a cost that grows with the store, for
    /// operators' jobs only.
    async fn list_expiring(
        &self,
        filter: &ScopeFilter,
        window: Range<OffsetDateTime>,
        after: Option<ExpiryCursor>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        let positions =
            self.soonest_where(filter, limit, |entry| expiring_in(entry, &window, after));
        // A record purged since it was seen is left out, as a list does.
        Ok(positions
            .into_iter()
            .filter_map(|position| {
                let table = read(self.shard(position.id));
                find_in(&table, position.id).map(Entry::record)
            })
            .map(Ok)
            .collect())
    }

    /// Scans every table in turn, under its read lock, for the creator's
    /// live records (a read of each live record's details), and takes its
    /// write lock only to revoke what it found, each record by the same
    /// compare-and-set as `revoke`. It stops once it has revoked `limit`;
    /// the call that finds fewer has read the whole store. No index by
    /// creator: offboarding is rare, and an index would cost every token
    /// memory.
    async fn revoke_created_by(
        &self,
        creator: &ActorId,
        revocation: Revocation,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        let mut revoked = Vec::new();
        for shard in self.shards.all() {
            // Read under the read lock, revoke under the write lock; ids
            // another call revoked in between are skipped (that call reports
            // them) and the shard is read again, so fewer than `limit`
            // still means none is left. Never more ids than this call may
            // revoke are collected.
            loop {
                let room = limit - revoked.len();
                if room == 0 {
                    return Ok(revoked);
                }
                let found: Vec<TokenId> = read(&shard.0)
                    .iter()
                    .filter(|entry| {
                        !entry.credential.revoked && entry.details.created_by == *creator
                    })
                    .map(|entry| entry.credential.id)
                    .take(room)
                    .collect();
                if found.is_empty() {
                    break;
                }
                let mut table = write(&shard.0);
                for id in found {
                    if find_in_mut(&mut table, id)
                        .is_some_and(|entry| entry.revoke(revocation.clone()))
                    {
                        revoked.push(id);
                    }
                }
            }
        }
        Ok(revoked)
    }

    /// Finds the due records as `list_expiring` does (read locks only),
    /// then marks each under its table's write lock, checking again that it
    /// is due: a record another call marked in between is skipped. If every
    /// one found was taken so, it looks again, so an empty answer means
    /// none is due.
    async fn claim_expiry_notices(
        &self,
        filter: &ScopeFilter,
        window: NoticeWindow,
        limit: usize,
    ) -> Result<Vec<ListedRecord>, StoreError> {
        loop {
            let found = self.soonest_where(filter, limit, |entry| due_in(entry, &window));
            if found.is_empty() {
                return Ok(Vec::new());
            }
            let mut claimed = Vec::new();
            for position in found {
                let mut table = write(self.shard(position.id));
                if let Some(entry) = find_in_mut(&mut table, position.id)
                    && due_in(entry, &window).is_some()
                {
                    let mark = (position.expires_at, window.length_secs);
                    entry.details.rare_mut().notice = Some(mark);
                    claimed.push(Ok(entry.record()));
                }
            }
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
    }

    async fn release_expiry_notices(
        &self,
        length_secs: u32,
        claimed: &[ExpiryCursor],
    ) -> Result<(), StoreError> {
        for position in claimed {
            let mut table = write(self.shard(position.id));
            let Some(entry) = find_in_mut(&mut table, position.id) else {
                continue;
            };
            let details = &mut *entry.details;
            let mark = details.rare.as_ref().and_then(|rare| rare.notice);
            if mark == Some((position.expires_at, length_secs)) {
                details.rare_mut().notice = None;
                details.tidy();
            }
        }
        Ok(())
    }

    async fn purge(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        // Table by table, each locked only while its own ended records go.
        let mut deleted = Vec::new();
        for shard in self.shards.all() {
            let left = limit.saturating_sub(deleted.len());
            if left == 0 {
                break;
            }
            let mut table = write(&shard.0);
            let ended: Vec<TokenId> = table
                .iter()
                .filter(|entry| entry.record_ended_before(before))
                .map(|entry| entry.credential.id)
                .take(left)
                .collect();
            for &id in &ended {
                if let Some(removed) = remove_from(&mut table, id) {
                    deleted.push((
                        removed.credential.scope,
                        Cursor {
                            created_at: removed.details.created_at,
                            id,
                        },
                    ));
                }
            }
        }
        // Unlisted once gone, so a list never names a record `find` lacks.
        let mut scopes = write(&self.scopes);
        for (scope, position) in &deleted {
            if let Some(index) = scopes.by_scope.get_mut(&**scope) {
                index.positions.remove(position);
            }
        }
        Ok(deleted.len() as u64)
    }
}

impl MemoryStore {
    /// The `limit` soonest positions `place` gives the entries of the
    /// scopes `filter` reads, at the cost `list_expiring` states.
    fn soonest_where(
        &self,
        filter: &ScopeFilter,
        limit: usize,
        place: impl Fn(&Entry) -> Option<ExpiryCursor>,
    ) -> Vec<ExpiryCursor> {
        match filter {
            ScopeFilter::All => {
                let mut found = Vec::new();
                for shard in self.shards.all() {
                    let table = read(&shard.0);
                    let placed = table.iter().filter_map(&place);
                    found = soonest(found.into_iter().chain(placed), limit);
                }
                found
            }
            _ => {
                let placed = self.ids_of(filter).into_iter().filter_map(|id| {
                    let table = read(self.shard(id));
                    find_in(&table, id).and_then(&place)
                });
                soonest(placed, limit)
            }
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a memory store call, which never waits.
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let waker = std::task::Waker::noop();
        match future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => unreachable!("the memory store never waits"),
        }
    }

    fn record(n: u64) -> TokenRecord {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        TokenRecord {
            id: TokenId::from_bits(n.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            scope: Scope::organization(crate::ids::OrganizationId::new("acme").unwrap()),
            role: crate::actor::Role::Admin,
            label: Label::new("x").unwrap(),
            key_id: crate::hashing::KeyId::new(1),
            digest: crate::hashing::Digest::from_bytes([0; 32]),
            created_at: at,
            created_by: ActorId::new("alice").unwrap(),
            expires_at: None,
            revoked: None,
            last_used_at: None,
            rotated_from: None,
            replaced_by: None,
            restrictions: Default::default(),
            disabled: None,
        }
    }

    /// An insert that starts while a scope is being revoked cannot finish
    /// (and return, live) before the revocation has: otherwise a token whose
    /// issue returned before `revoke_scope` did would escape it.
    #[test]
    fn no_insert_completes_inside_a_scope_revocation() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::mpsc;

        let store = Arc::new(MemoryStore::new());
        ready(store.insert(record(1))).unwrap();
        let (paused, is_paused) = mpsc::channel();
        let (resume, resumed) = mpsc::channel::<()>();
        let resumed = std::sync::Mutex::new(resumed);
        *store.after_snapshot.lock().unwrap() = Some(Box::new(move || {
            paused.send(()).unwrap();
            resumed.lock().unwrap().recv().unwrap();
        }));
        let revocation = Revocation {
            at: time::OffsetDateTime::UNIX_EPOCH,
            by: ActorId::new("alice").unwrap(),
            reason: None,
        };
        let revoker = {
            let store = store.clone();
            let scope = record(1).scope;
            std::thread::spawn(move || ready(store.revoke_scope(&scope, revocation)).unwrap())
        };
        is_paused.recv().unwrap();

        let inserted = Arc::new(AtomicBool::new(false));
        let inserter = {
            let (store, inserted) = (store.clone(), inserted.clone());
            std::thread::spawn(move || {
                ready(store.insert(record(2))).unwrap();
                inserted.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !inserted.load(Ordering::SeqCst),
            "an insert completed between the revocation's snapshot and its writes"
        );
        resume.send(()).unwrap();
        assert_eq!(revoker.join().unwrap().first, [record(1).id]);
        inserter.join().unwrap();
        // Issued after the revocation, in the store's order: live.
        let late = ready(store.find(record(2).id)).unwrap().unwrap();
        assert!(late.revoked.is_none());
    }
}
