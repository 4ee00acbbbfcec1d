//! The in-memory positions map and its handle, [`Positions`].
//!
//! Keys and values follow Promtail's positions file (spec §6.1): a file's absolute path maps to
//! the byte offset of the next byte to read; `cursor-*` / `journal-*` keys hold opaque cursor
//! strings and are kept verbatim. A tracked file's value is taken from its ack [`Tracker`]'s
//! *committed* offset, never from what was merely read (DESIGN.md contract 2).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::acks::Tracker;
use super::file::Backing;

/// What identifies a file beyond its path, so that a file replaced while ferrotail was stopped
/// is not read from a stale offset (Promtail's format cannot hold this; it is kept beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
}

/// A position read back from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedPosition {
    /// Byte offset of the next byte to read.
    pub offset: u64,
    /// The identity of the file the offset belongs to, when known.
    pub identity: Option<FileIdentity>,
}

#[derive(Debug)]
enum Slot {
    /// A file position not currently tracked by a reader (from the file, or a stopped reader).
    File(SavedPosition),
    /// A file being read: the value is the tracker's committed offset.
    Tracked {
        identity: FileIdentity,
        tracker: Arc<Tracker>,
    },
    /// A non-file value (`cursor-*`, `journal-*`, or anything not an integer), kept verbatim.
    Opaque(String),
}

/// Shared handle to the positions map, optionally backed by the positions file
/// ([`Positions::open`], [`Positions::save`]).
#[derive(Debug, Default)]
pub struct Positions {
    slots: Mutex<HashMap<String, Slot>>,
    /// The file this map is saved to; `None` for [`Positions::in_memory`].
    backing: Option<Backing>,
}

impl Positions {
    /// An empty positions map that is never written to disk.
    pub fn in_memory() -> Arc<Self> {
        Arc::new(Positions::default())
    }

    pub(super) fn with_backing(mut self, backing: Backing) -> Self {
        self.backing = Some(backing);
        self
    }

    pub(super) fn backing(&self) -> Option<&Backing> {
        self.backing.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads raw Promtail values (`path -> "offset"`, `cursor-x -> "..."`) and identities.
    pub fn load_values(
        &self,
        values: impl IntoIterator<Item = (String, String)>,
        identities: &HashMap<String, FileIdentity>,
    ) {
        let mut slots = self.lock();
        for (key, value) in values {
            let slot = match value.trim().parse::<u64>() {
                Ok(offset) if !key.starts_with("cursor-") && !key.starts_with("journal-") => {
                    Slot::File(SavedPosition {
                        offset,
                        identity: identities.get(&key).copied(),
                    })
                }
                _ => Slot::Opaque(value),
            };
            slots.insert(key, slot);
        }
    }

    /// The position of `path`: the committed offset of its tracker if one is attached, else the
    /// stored one. `None` when there is none or the value is not an offset.
    pub fn get(&self, path: &str) -> Option<SavedPosition> {
        match self.lock().get(path)? {
            Slot::File(p) => Some(*p),
            Slot::Tracked { identity, tracker } => Some(SavedPosition {
                offset: tracker.committed(),
                identity: Some(*identity),
            }),
            Slot::Opaque(_) => None,
        }
    }

    /// The raw value of a non-file key (e.g. a journal cursor).
    pub fn get_opaque(&self, key: &str) -> Option<String> {
        match self.lock().get(key)? {
            Slot::Opaque(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Sets a non-file key verbatim.
    pub fn set_opaque(&self, key: &str, value: String) {
        self.lock().insert(key.to_string(), Slot::Opaque(value));
    }

    /// From now on the position of `path` is `tracker`'s committed offset. The latest call wins
    /// (after a rotation the new file's tracker replaces the old one's).
    pub fn track(&self, path: &str, identity: FileIdentity, tracker: Arc<Tracker>) {
        self.lock()
            .insert(path.to_string(), Slot::Tracked { identity, tracker });
    }

    /// Detaches `tracker` from `path` (the reader stopped), freezing its current committed
    /// offset as the stored value. Does nothing if another tracker has replaced it since.
    pub fn untrack(&self, path: &str, tracker: &Arc<Tracker>) {
        let mut slots = self.lock();
        if let Some(Slot::Tracked {
            identity,
            tracker: t,
        }) = slots.get(path)
            && Arc::ptr_eq(t, tracker)
        {
            let saved = SavedPosition {
                offset: t.committed(),
                identity: Some(*identity),
            };
            slots.insert(path.to_string(), Slot::File(saved));
        }
    }

    /// Sets the stored offset of an untracked path.
    pub fn set(&self, path: &str, position: SavedPosition) {
        self.lock().insert(path.to_string(), Slot::File(position));
    }

    /// Forgets `path` (it no longer matches its glob, or it was deleted).
    pub fn remove(&self, path: &str) {
        self.lock().remove(path);
    }

    /// Forgets `key` unless a reader's tracker is attached to it. Returns whether it was removed.
    pub fn remove_if_untracked(&self, key: &str) -> bool {
        let mut slots = self.lock();
        match slots.get(key) {
            Some(Slot::Tracked { .. }) | None => false,
            Some(_) => slots.remove(key).is_some(),
        }
    }

    /// All keys, in no particular order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The values to write, Promtail style (`key -> string`), sorted by key, and the identities
    /// of the file keys that have one.
    pub fn snapshot(&self) -> (BTreeMap<String, String>, BTreeMap<String, FileIdentity>) {
        let slots = self.lock();
        let mut values = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for (k, slot) in slots.iter() {
            match slot {
                Slot::File(p) => {
                    values.insert(k.clone(), p.offset.to_string());
                    if let Some(id) = p.identity {
                        ids.insert(k.clone(), id);
                    }
                }
                Slot::Tracked { identity, tracker } => {
                    values.insert(k.clone(), tracker.committed().to_string());
                    ids.insert(k.clone(), *identity);
                }
                Slot::Opaque(v) => {
                    values.insert(k.clone(), v.clone());
                }
            }
        }
        (values, ids)
    }

    /// Freezes every attached tracker: nothing is committed after this (shutdown deadline).
    pub fn freeze_all(&self) {
        for slot in self.lock().values() {
            if let Slot::Tracked { tracker, .. } = slot {
                tracker.freeze();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_value_is_committed_not_read() {
        let p = Positions::in_memory();
        let t = Tracker::new(100);
        p.track("/a.log", FileIdentity { dev: 1, ino: 2 }, Arc::clone(&t));
        let ack = t.chunk(200, None);
        assert_eq!(p.get("/a.log").map(|s| s.offset), Some(100));
        drop(ack);
        assert_eq!(
            p.snapshot().0.get("/a.log").map(String::as_str),
            Some("200")
        );
    }

    #[test]
    fn cursors_are_kept_verbatim() {
        let p = Positions::in_memory();
        p.load_values(
            [
                ("cursor-journal".to_string(), "s=abc;i=1".to_string()),
                ("/x".to_string(), "42".to_string()),
            ],
            &HashMap::new(),
        );
        assert_eq!(p.get_opaque("cursor-journal").as_deref(), Some("s=abc;i=1"));
        assert_eq!(p.get("/x").map(|s| s.offset), Some(42));
    }

    #[test]
    fn untrack_by_a_stale_tracker_is_ignored() {
        let p = Positions::in_memory();
        let old = Tracker::new(5);
        let new = Tracker::new(0);
        let id = FileIdentity { dev: 1, ino: 1 };
        p.track("/a", id, Arc::clone(&old));
        p.track("/a", FileIdentity { dev: 1, ino: 2 }, Arc::clone(&new));
        p.untrack("/a", &old);
        assert_eq!(
            p.get("/a").and_then(|s| s.identity),
            Some(FileIdentity { dev: 1, ino: 2 })
        );
    }
}
