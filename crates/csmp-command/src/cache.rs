//! Ticket states kept in memory between commands, each behind its own lock.
//!
//! The lock serialises the commands of one ticket inside this process, so that they queue up
//! instead of racing each other to the stream; a command holds it from reading the state to
//! storing the new one. Other processes are not kept out: the append's expected sequence catches
//! them, and the loser reloads.
//!
//! The cache is bounded. Tickets are spread over shards by hash, and a shard over its share
//! evicts in "second chance" order: the oldest entry goes unless it was used since the last sweep
//! or a command holds or waits for its lock. While every entry of a shard is in use, the shard
//! grows past its share until commands finish.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use csmp_domain::{TenantId, Ticket, TicketId};

type Key = (TenantId, TicketId);

/// The cached state of one ticket; `None` when it must be read from the store.
pub(crate) type Slot = tokio::sync::Mutex<Option<Ticket>>;

const MAX_SHARDS: usize = 16;
/// Fewer tickets than this per shard would make eviction follow the hash more than use.
const MIN_PER_SHARD: usize = 64;

pub(crate) struct TicketCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

struct Cached {
    slot: Arc<Slot>,
    used: AtomicBool,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Key, Cached>,
    /// Keys in the order they were added, for eviction.
    order: VecDeque<Key>,
}

impl TicketCache {
    /// A cache for about `capacity` tickets (at least one per shard).
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = (capacity / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let per_shard = capacity.div_ceil(shards).max(1);
        TicketCache { shards: (0..shards).map(|_| Mutex::default()).collect(), per_shard }
    }

    /// The slot of a ticket, added empty if the ticket is not cached.
    pub(crate) fn slot(&self, tenant: &TenantId, ticket: TicketId) -> Arc<Slot> {
        let mut hasher = DefaultHasher::new();
        (tenant, ticket).hash(&mut hasher);
        let index = (hasher.finish() % self.shards.len() as u64) as usize;
        // A panic while holding the shard lock leaves the map consistent: every step below
        // completes or does nothing.
        let mut shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);

        let key = (tenant.clone(), ticket);
        let slot = match shard.entries.entry(key) {
            Entry::Occupied(entry) => {
                let entry = entry.get();
                entry.used.store(true, Ordering::Relaxed);
                return Arc::clone(&entry.slot);
            }
            Entry::Vacant(vacant) => {
                let key = vacant.key().clone();
                let slot = Arc::new(Slot::new(None));
                vacant.insert(Cached { slot: Arc::clone(&slot), used: AtomicBool::new(false) });
                shard.order.push_back(key);
                slot
            }
        };
        shard.evict(self.per_shard);
        slot
    }

    /// Number of cached tickets, for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        let len = |shard: &Mutex<Shard>| {
            shard.lock().unwrap_or_else(PoisonError::into_inner).entries.len()
        };
        self.shards.iter().map(len).sum()
    }
}

impl Shard {
    fn evict(&mut self, keep: usize) {
        // Each key is looked at most twice: once to clear its second chance, once to evict.
        let mut budget = self.order.len() * 2;
        while self.entries.len() > keep && budget > 0 {
            budget -= 1;
            let Some(key) = self.order.pop_front() else { break };
            let Some(entry) = self.entries.get(&key) else { continue };
            let in_use = Arc::strong_count(&entry.slot) > 1;
            let used = entry.used.swap(false, Ordering::Relaxed);
            if in_use || used {
                self.order.push_back(key);
            } else {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn id(n: u128) -> TicketId {
        TicketId(Uuid::from_u128(n))
    }

    #[test]
    fn the_same_ticket_gets_the_same_slot_and_tenants_are_apart() {
        let cache = TicketCache::new(100);

        let first = cache.slot(&tenant(), id(1));
        let again = cache.slot(&tenant(), id(1));
        let other_tenant = cache.slot(&TenantId::parse("globex").unwrap(), id(1));

        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &other_tenant));
    }

    #[test]
    fn the_cache_stays_within_capacity_and_keeps_slots_in_use() {
        let cache = TicketCache::new(1);
        let held = cache.slot(&tenant(), id(1));

        for n in 2..50 {
            cache.slot(&tenant(), id(n));
        }

        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&held, &cache.slot(&tenant(), id(1))));
    }

    #[test]
    fn a_full_cache_evicts_the_ticket_not_used_since_it_was_added() {
        let cache = TicketCache::new(2);
        let first = Arc::downgrade(&cache.slot(&tenant(), id(1)));
        let second = Arc::downgrade(&cache.slot(&tenant(), id(2)));
        cache.slot(&tenant(), id(2));

        let third = Arc::downgrade(&cache.slot(&tenant(), id(3)));

        assert_eq!(cache.len(), 2);
        assert!(first.upgrade().is_none());
        assert!(second.upgrade().is_some());
        assert!(third.upgrade().is_some());
    }
}
