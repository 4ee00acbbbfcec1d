//! A small least-recently-used map from label sets to timestamps (the `timestamp` stage's
//! "last known timestamp per stream" for `action_on_failure: fudge`, spec §7.4).
//!
//! Invariants: at most `capacity` entries; `get` and `put` make the key the most recently used;
//! a `put` into a full map evicts the least recently used key. Nodes live in a slab linked by
//! indices, so every operation is O(1) after the hash lookup. Hashing a label set is the
//! expensive part (every label, SipHash), so the slots of the last few label *objects* seen are
//! remembered by identity: entries of a stream share one `LabelSet` allocation, and finding it
//! again costs a pointer comparison.

use std::collections::HashMap;

use crate::entry::{LabelSet, Timestamp};

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node {
    key: LabelSet,
    value: Timestamp,
    prev: usize,
    next: usize,
    /// Incremented when the node is reused for another key (invalidates `recent` entries).
    generation: u64,
}

/// How many label-set objects are remembered by identity.
const RECENT: usize = 8;

/// An identity for the map behind a label set: the address of its first non-empty label
/// name's bytes. Distinct live maps never share a string buffer (cloning a map copies its
/// strings), and `recent` holds a clone of the label set, so the address cannot be reused
/// by another map while it is remembered. `None` for label sets without a non-empty name.
fn identity(labels: &LabelSet) -> Option<usize> {
    labels
        .iter()
        .find(|(name, _)| !name.is_empty())
        .map(|(name, _)| name.as_ptr() as usize)
}

/// An LRU map `LabelSet → Timestamp`.
#[derive(Debug)]
pub struct LabelLru {
    capacity: usize,
    index: HashMap<LabelSet, usize>,
    nodes: Vec<Node>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    /// Recently used label-set objects: (the label set, its identity, slot, slot generation).
    recent: Vec<(LabelSet, usize, usize, u64)>,
    next_recent: usize,
}

impl LabelLru {
    /// An empty map holding at most `capacity` (≥ 1) keys.
    pub fn new(capacity: usize) -> Self {
        LabelLru {
            capacity: capacity.max(1),
            index: HashMap::new(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            recent: Vec::with_capacity(RECENT),
            next_recent: 0,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn find(&mut self, key: &LabelSet) -> Option<usize> {
        let id = identity(key);
        if let Some(id) = id {
            let nodes = &self.nodes;
            if let Some(&(_, _, slot, _)) = self.recent.iter().find(|(_, rid, slot, generation)| {
                *rid == id
                    && nodes
                        .get(*slot)
                        .is_some_and(|n| n.generation == *generation)
            }) {
                return Some(slot);
            }
        }
        let i = *self.index.get(key)?;
        self.remember(key, id, i);
        Some(i)
    }

    fn remember(&mut self, key: &LabelSet, id: Option<usize>, slot: usize) {
        let Some(id) = id else { return };
        let entry = (key.clone(), id, slot, self.nodes[slot].generation);
        if self.recent.len() < RECENT {
            self.recent.push(entry);
        } else {
            self.recent[self.next_recent] = entry;
            self.next_recent = (self.next_recent + 1) % RECENT;
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn touch(&mut self, i: usize) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// The value of `key`, marking it most recently used.
    pub fn get(&mut self, key: &LabelSet) -> Option<Timestamp> {
        let i = self.find(key)?;
        self.touch(i);
        Some(self.nodes[i].value)
    }

    /// Sets `key` to `value`, marking it most recently used (evicts the least recently used key
    /// when full).
    pub fn put(&mut self, key: &LabelSet, value: Timestamp) {
        if let Some(i) = self.find(key) {
            self.nodes[i].value = value;
            self.touch(i);
            return;
        }
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key: key.clone(),
                value,
                prev: NIL,
                next: NIL,
                generation: 0,
            });
            self.nodes.len() - 1
        } else {
            let i = self.tail;
            self.unlink(i);
            let old = std::mem::replace(&mut self.nodes[i].key, key.clone());
            self.index.remove(&old);
            self.nodes[i].value = value;
            self.nodes[i].generation += 1;
            i
        };
        self.index.insert(key.clone(), i);
        self.push_front(i);
        self.remember(key, identity(key), i);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ls(v: &str) -> LabelSet {
        LabelSet::from_pairs([("filename", v)])
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut lru = LabelLru::new(2);
        lru.put(&ls("a"), Timestamp(1));
        lru.put(&ls("b"), Timestamp(2));
        assert_eq!(lru.get(&ls("a")), Some(Timestamp(1))); // a is now the most recent
        lru.put(&ls("c"), Timestamp(3)); // evicts b
        assert_eq!(lru.get(&ls("b")), None);
        assert_eq!(lru.get(&ls("a")), Some(Timestamp(1)));
        assert_eq!(lru.get(&ls("c")), Some(Timestamp(3)));
        assert_eq!(lru.len(), 2);
        lru.put(&ls("c"), Timestamp(4));
        lru.put(&ls("d"), Timestamp(5)); // evicts a
        assert_eq!(lru.get(&ls("a")), None);
        assert_eq!(lru.get(&ls("c")), Some(Timestamp(4)));
        assert_eq!(lru.get(&ls("d")), Some(Timestamp(5)));
    }

    #[test]
    fn remembered_objects_survive_eviction_correctly() {
        // The same label-set objects are looked up again and again while slots are reused.
        let mut lru = LabelLru::new(3);
        let keys: Vec<LabelSet> = (0..10).map(|i| ls(&i.to_string())).collect();
        for round in 0..5 {
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(
                    lru.get(k),
                    None,
                    "round {round} key {i} must have been evicted"
                );
                lru.put(k, Timestamp(i as i64));
                assert_eq!(lru.get(k), Some(Timestamp(i as i64)));
                // An equal but distinct object finds the same entry.
                assert_eq!(lru.get(&ls(&i.to_string())), Some(Timestamp(i as i64)));
            }
        }
        assert_eq!(lru.get(&LabelSet::new()), None);
        lru.put(&LabelSet::new(), Timestamp(7));
        assert_eq!(lru.get(&LabelSet::new()), Some(Timestamp(7)));
    }

    #[test]
    fn many_keys_stay_bounded() {
        let mut lru = LabelLru::new(100);
        for i in 0..1000 {
            lru.put(&ls(&i.to_string()), Timestamp(i));
        }
        assert_eq!(lru.len(), 100);
        assert_eq!(lru.get(&ls("999")), Some(Timestamp(999)));
        assert_eq!(lru.get(&ls("899")), None);
        assert_eq!(lru.get(&ls("900")), Some(Timestamp(900)));
    }
}
