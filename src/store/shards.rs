//! The sharded hash table both in-process stores serve verification from:
//! [`MemoryStore`](super::MemoryStore) and the
//! [`ReplicatedStore`](super::ReplicatedStore)'s replica.
//!
//! - What verification reads (a [`StoredCredential`]) sits inline in each
//!   table entry, so a lookup in a table far larger than the CPU's caches
//!   waits on main memory for one entry, like the bare map lookup it is
//!   measured against.
//! - Entries are spread over [`SHARDS`] tables by id, each behind its own
//!   lock on its own cache lines, so lookups from many threads rarely touch
//!   the same lock and reads scale with cores.
//! - Ids are hashed with one multiplication instead of SipHash. That is safe
//!   here: ids are drawn from the OS random source when a token is issued,
//!   and the ids a caller sends are only ever looked up, never inserted, so
//!   nobody can fill a table with colliding keys.
//! - A lookup of an unknown id reads the entry nearest to where the id would
//!   be ([`touch_decoy`]), as a lookup of a known id reads its own, so both
//!   wait on main memory alike: without this an unknown id cost half a
//!   known one's time at 1M tokens.

use std::hint::black_box;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use crate::record::StoredCredential;
use crate::token::TokenId;

/// How many tables the entries are spread over: enough that two threads
/// rarely want the same lock, few enough to cost nothing in a small store.
pub(super) const SHARDS: usize = 64;

/// An entry of a sharded table: whatever it holds, it starts with the
/// credential verification reads.
pub(super) trait Keyed {
    fn credential(&self) -> &StoredCredential;
}

/// `SHARDS` tables; an entry lives in the one its id picks.
pub(super) struct Shards<E>(Box<[Shard<E>]>);

/// One table, aligned so that no two tables' locks share a cache line (nor
/// the adjacent line some CPUs fetch with it): a reader's write to its lock
/// never slows a reader of another table.
#[repr(align(128))]
pub(super) struct Shard<E>(pub(super) RwLock<HashTable<E>>);

impl<E: Keyed> Shards<E> {
    pub(super) fn new() -> Self {
        Shards(
            (0..SHARDS)
                .map(|_| Shard(RwLock::new(HashTable::new())))
                .collect(),
        )
    }

    /// The table `id` lives in.
    pub(super) fn of(&self, id: TokenId) -> &RwLock<HashTable<E>> {
        &self.0[shard_index(id)].0
    }

    /// Every table, in index order (the order to lock two in).
    pub(super) fn all(&self) -> &[Shard<E>] {
        &self.0
    }

    /// Whether they hold no entry.
    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(|shard| read(&shard.0).is_empty())
    }

    /// How many entries they hold.
    pub(super) fn len(&self) -> usize {
        self.0.iter().map(|shard| read(&shard.0).len()).sum()
    }

    /// A copy of the credential of `id`; for an unknown id, after reading a
    /// decoy entry as a hit would read its own.
    pub(super) fn credential(&self, id: TokenId) -> Option<StoredCredential> {
        let table = read(self.of(id));
        match find_in(&table, id) {
            Some(entry) => Some(entry.credential().clone()),
            None => {
                touch_decoy(&table, id);
                None
            }
        }
    }
}

/// Where an id lives in its table. The top bits of an id pick its table
/// ([`shard_index`]); hashbrown takes the table position from the low bits
/// of this hash and a tag from its top bits, so the multiplication by an odd
/// constant (2^64 divided by the golden ratio) spreads every bit of the id
/// into the tag.
pub(super) fn hash(id: TokenId) -> u64 {
    id.bits().wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The table an id belongs to. Ids are uniformly random, so tables fill
/// evenly.
pub(super) fn shard_index(id: TokenId) -> usize {
    (id.bits() >> (u64::BITS - SHARDS.trailing_zeros())) as usize
}

pub(super) fn find_in<E: Keyed>(table: &HashTable<E>, id: TokenId) -> Option<&E> {
    table.find(hash(id), |entry| entry.credential().id == id)
}

pub(super) fn find_in_mut<E: Keyed>(table: &mut HashTable<E>, id: TokenId) -> Option<&mut E> {
    table.find_mut(hash(id), |entry| entry.credential().id == id)
}

pub(super) fn insert_into<E: Keyed>(table: &mut HashTable<E>, entry: E) {
    let id = entry.credential().id;
    table.insert_unique(hash(id), entry, |entry| hash(entry.credential().id));
}

/// Removes the entry of `id`, if any.
pub(super) fn remove_from<E: Keyed>(table: &mut HashTable<E>, id: TokenId) -> Option<E> {
    let entry = table
        .find_entry(hash(id), |entry| entry.credential().id == id)
        .ok()?;
    Some(entry.remove().0)
}

/// Does to an entry the caller cannot predict what a successful lookup does
/// to the one it finds: reads its credential and takes a copy. The entry is
/// the first occupied one at or after the position `id` hashes to, which
/// the failed lookup has just probed, so the decoy costs one read of a
/// table entry, as a hit does.
fn touch_decoy<E: Keyed>(table: &HashTable<E>, id: TokenId) {
    if table.is_empty() {
        return;
    }
    // The table's size is a power of two.
    let mask = table.num_buckets() - 1;
    let start = hash(id) as usize;
    let decoy = (0..=mask).find_map(|step| table.get_bucket(start.wrapping_add(step) & mask));
    black_box(decoy.map(|entry| entry.credential().clone()));
}

// A panic while a lock was held cannot leave a table half-changed (each write
// is one table operation), so a poisoned lock is still usable.
pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_every_shard() {
        let mut counts = [0usize; SHARDS];
        for n in 0..64_000u64 {
            // Spread over the whole range, as the OS random source gives.
            let id = TokenId::from_bits(n.wrapping_mul(0x2545_f491_4f6c_dd1d));
            counts[shard_index(id)] += 1;
        }
        assert!(
            counts.iter().all(|&n| (700..1300).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn ids_of_one_shard_get_every_tag() {
        // Ids of one shard share their top bits; hashbrown's tags are the top
        // 7 bits of the hash, so the hash must not keep them fixed.
        let tags: std::collections::HashSet<u64> = (0..1_000u64)
            .map(|n| hash(TokenId::from_bits(n)) >> 57)
            .collect();
        assert_eq!(tags.len(), 128);
    }
}
