//! The in-memory positions map, [`PositionMap`].
//!
//! Keys and values follow Promtail's positions file (spec §6.1): a file's absolute path maps to
//! the byte offset of the next byte to read; `cursor-*` / `journal-*` keys hold opaque cursor
//! strings, kept verbatim until a source attaches to the key ([`PositionMap::attach_cursor`]);
//! from then on its value is the cursor that source has *committed*. A file being read is a [`PathState`]: its value is the
//! *committed* offset of its newest generation (never what was merely read, DESIGN.md contract
//! 2), and the generations before it that still have lines in flight go to the sidecar.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::generations::{Fingerprint, PathState, ResumePlan, SavedGeneration};
use crate::ack::StampGate;
use crate::ack::{Cursor, Tracker};

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
    /// A fingerprint of the file's first bytes, when known (an inode can be reused by a new
    /// file once the old one is deleted).
    pub fingerprint: Option<Fingerprint>,
}

impl SavedPosition {
    /// A position known by path only (Promtail's format).
    pub fn at(offset: u64) -> Self {
        SavedPosition {
            offset,
            identity: None,
            fingerprint: None,
        }
    }
}

#[derive(Debug)]
enum Slot {
    /// A file path: what was restored from disk, and the generations its readers add.
    Path(Arc<PathState>),
    /// A non-file value (`cursor-*`, `journal-*`, or anything not an integer), kept verbatim.
    Opaque(String),
    /// A cursor key a source commits through (its value: the committed cursor).
    Cursor(Arc<Cursor<String>>),
}

/// One file key as a save writes it: the positions file's value and the sidecar's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedPath {
    /// The offset of the file at the path (the positions file's value).
    pub offset: u64,
    /// The newest generation, when its identity is known.
    pub current: Option<SavedGeneration>,
    /// Older generations still to be read or acknowledged, oldest first.
    pub older: Vec<SavedGeneration>,
}

/// A snapshot of the whole map: Promtail-format values, and the sidecar's file entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `key -> value` as the positions file holds them.
    pub values: BTreeMap<String, String>,
    /// The file keys whose identity or older generations are known.
    pub files: BTreeMap<String, SavedPath>,
}

/// The positions map in memory. [`Positions`](super::Positions), the handle everything
/// shares, adds the file it is saved to (`positions/file.rs`) and dereferences to it.
#[derive(Debug)]
pub struct PositionMap {
    slots: Mutex<HashMap<String, Slot>>,
    /// Signalled by every commit and generation change: the writer saves soon after.
    dirty: Arc<Notify>,
    /// Tells senders when the stamps of what they push are saved.
    gate: Arc<StampGate>,
}

impl Default for PositionMap {
    fn default() -> Self {
        PositionMap {
            slots: Mutex::new(HashMap::new()),
            dirty: Arc::new(Notify::new()),
            gate: Arc::new(StampGate::default()),
        }
    }
}

impl PositionMap {
    /// Tells senders when saves are on disk.
    pub fn gate(&self) -> &Arc<StampGate> {
        &self.gate
    }

    /// Every generation's tracker with the end of its stamps, taken before a save's snapshot:
    /// once that save is on disk, those stamps are (they only grow).
    pub(super) fn stamp_ends(&self) -> Vec<(Arc<Tracker>, u64)> {
        let mut out = Vec::new();
        for slot in self.lock().values() {
            if let Slot::Path(state) = slot {
                state.stamp_ends(&mut out);
            }
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signalled whenever something a save writes has changed.
    pub fn dirty(&self) -> Arc<Notify> {
        Arc::clone(&self.dirty)
    }

    /// Loads raw Promtail values (`path -> "offset"`, `cursor-x -> "..."`) and, for file keys,
    /// what the sidecar adds to them (identity of the file at the path, older generations).
    pub fn load_values(
        &self,
        values: impl IntoIterator<Item = (String, String)>,
        plans: &HashMap<String, ResumePlan>,
    ) {
        let mut slots = self.lock();
        for (key, value) in values {
            let slot = match value.trim().parse::<u64>() {
                Ok(offset) if !key.starts_with("cursor-") && !key.starts_with("journal-") => {
                    let mut plan = plans.get(&key).cloned().unwrap_or_default();
                    let current = plan.current.get_or_insert(SavedPosition::at(offset));
                    current.offset = offset;
                    Slot::Path(PathState::new(
                        plan,
                        Arc::clone(&self.dirty),
                        Arc::clone(&self.gate),
                    ))
                }
                _ => Slot::Opaque(value),
            };
            slots.insert(key, slot);
        }
    }

    /// Attaches reader `owner` to `path` and returns the path's shared state and where the
    /// reader starts (see [`PathState::attach`]).
    pub fn attach(&self, path: &str, owner: u64) -> (Arc<PathState>, ResumePlan) {
        let state = {
            let mut slots = self.lock();
            match slots.get(path) {
                Some(Slot::Path(state)) => Arc::clone(state),
                _ => {
                    let state = PathState::new(
                        ResumePlan::default(),
                        Arc::clone(&self.dirty),
                        Arc::clone(&self.gate),
                    );
                    slots.insert(path.to_string(), Slot::Path(Arc::clone(&state)));
                    state
                }
            }
        };
        let plan = state.attach(owner);
        (state, plan)
    }

    /// The position of `path`: the committed offset of its newest generation, or the stored
    /// one. `None` when there is none or the value is not an offset.
    pub fn get(&self, path: &str) -> Option<SavedPosition> {
        match self.lock().get(path)? {
            Slot::Path(state) => state.newest(),
            Slot::Opaque(_) | Slot::Cursor(_) => None,
        }
    }

    /// The raw value of a non-file key (e.g. a journal cursor).
    pub fn get_opaque(&self, key: &str) -> Option<String> {
        match self.lock().get(key)? {
            Slot::Opaque(v) => Some(v.clone()),
            Slot::Cursor(c) => c.committed(),
            Slot::Path(_) => None,
        }
    }

    /// The cursor a source commits `key` through, starting from the value saved for it. A
    /// source that attaches again (a container restarted) gets the same cursor back, so what
    /// its earlier run left in flight still commits in order.
    pub fn attach_cursor(&self, key: &str) -> Arc<Cursor<String>> {
        let mut slots = self.lock();
        let start = match slots.get(key) {
            Some(Slot::Cursor(c)) => return Arc::clone(c),
            Some(Slot::Opaque(v)) => Some(v.clone()),
            _ => None,
        };
        let cursor = Cursor::new(start, Some(Arc::clone(&self.dirty)));
        slots.insert(key.to_string(), Slot::Cursor(Arc::clone(&cursor)));
        cursor
    }

    /// Sets a non-file key verbatim.
    pub fn set_opaque(&self, key: &str, value: String) {
        self.lock().insert(key.to_string(), Slot::Opaque(value));
    }

    /// Sets the stored position of a path that no reader is attached to (replacing its state).
    pub fn set(&self, path: &str, position: SavedPosition) {
        let plan = ResumePlan {
            current: Some(position),
            ..ResumePlan::default()
        };
        let state = PathState::new(plan, Arc::clone(&self.dirty), Arc::clone(&self.gate));
        self.lock().insert(path.to_string(), Slot::Path(state));
    }

    /// Forgets `path`.
    pub fn remove(&self, path: &str) {
        self.lock().remove(path);
    }

    /// Forgets `key` unless a reader is attached to it or lines of it are in flight. Returns
    /// whether it was removed.
    pub fn remove_if_untracked(&self, key: &str) -> bool {
        let mut slots = self.lock();
        match slots.get(key) {
            Some(Slot::Path(state)) if state.busy() => false,
            None => false,
            Some(_) => slots.remove(key).is_some(),
        }
    }

    /// All keys, in no particular order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Paths whose saved state names older generations that no reader has read yet: a reader
    /// must start for them even when nothing is at the path any more.
    pub fn unread_generations(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter_map(|(k, slot)| match slot {
                Slot::Path(state)
                    if !state.attached_ever() && !state.restored().older.is_empty() =>
                {
                    Some(k.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// What a save writes, sorted by key. Paths that were let go and have nothing in flight
    /// any more are removed first.
    pub fn snapshot(&self) -> Snapshot {
        let mut slots = self.lock();
        slots.retain(|_, slot| match slot {
            Slot::Path(state) => !state.prune(),
            Slot::Opaque(_) | Slot::Cursor(_) => true,
        });
        let mut out = Snapshot::default();
        for (k, slot) in slots.iter() {
            match slot {
                Slot::Path(state) => {
                    let Some(saved) = state.saved() else {
                        continue;
                    };
                    out.values.insert(k.clone(), saved.offset.to_string());
                    if saved.current.is_some() || !saved.older.is_empty() {
                        out.files.insert(k.clone(), saved);
                    }
                }
                Slot::Opaque(v) => {
                    out.values.insert(k.clone(), v.clone());
                }
                Slot::Cursor(c) => {
                    if let Some(v) = c.committed() {
                        out.values.insert(k.clone(), v);
                    }
                }
            }
        }
        out
    }

    /// Freezes every generation's tracker: nothing is committed after this (shutdown deadline).
    pub fn freeze_all(&self) {
        for slot in self.lock().values() {
            match slot {
                Slot::Path(state) => state.freeze(),
                Slot::Cursor(c) => c.freeze(),
                Slot::Opaque(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::positions::generations::Phase;

    const ID: FileIdentity = FileIdentity { dev: 1, ino: 2 };

    #[test]
    fn value_is_committed_not_read() {
        let p = Arc::new(PositionMap::default());
        let (state, plan) = p.attach("/a.log", 0);
        assert_eq!(plan, ResumePlan::default());
        let g = state.add(0, ID, Fingerprint::default(), 100, 0, Phase::Reading);
        let ack = g.tracker().chunk(200, None);
        assert_eq!(p.get("/a.log").map(|s| s.offset), Some(100));
        drop(ack);
        assert_eq!(
            p.snapshot().values.get("/a.log").map(String::as_str),
            Some("200")
        );
    }

    #[test]
    fn a_cursor_saves_only_what_is_acknowledged() {
        let p = Arc::new(PositionMap::default());
        p.load_values(
            [("cursor-abc".to_string(), "1711111111".to_string())],
            &HashMap::new(),
        );
        let c = p.attach_cursor("cursor-abc");
        let first = c.chunk("1711111112".to_string(), None);
        let second = c.chunk("1711111113".to_string(), None);
        assert_eq!(p.snapshot().values["cursor-abc"], "1711111111");
        drop(second);
        assert_eq!(p.snapshot().values["cursor-abc"], "1711111111");
        drop(first);
        assert_eq!(p.snapshot().values["cursor-abc"], "1711111113");
        assert!(Arc::ptr_eq(&c, &p.attach_cursor("cursor-abc")));
        let late = c.chunk("1711111114".to_string(), None);
        p.freeze_all();
        drop(late);
        assert_eq!(p.get_opaque("cursor-abc").as_deref(), Some("1711111113"));
    }

    #[test]
    fn cursors_are_kept_verbatim() {
        let p = Arc::new(PositionMap::default());
        p.load_values(
            [
                ("cursor-journal".to_string(), "s=abc;i=1".to_string()),
                ("/x".to_string(), "42".to_string()),
            ],
            &HashMap::new(),
        );
        assert_eq!(p.get_opaque("cursor-journal").as_deref(), Some("s=abc;i=1"));
        assert_eq!(p.get("/x").map(|s| s.offset), Some(42));
        assert_eq!(p.snapshot().values.len(), 2);
    }

    #[test]
    fn a_released_path_is_removed_once_acknowledged() {
        let p = Arc::new(PositionMap::default());
        let (state, _) = p.attach("/a", 0);
        let g = state.add(0, ID, Fingerprint::default(), 0, 5, Phase::Reading);
        let ack = g.tracker().chunk(5, None);
        state.release(0);
        assert!(!p.remove_if_untracked("/a"), "lines in flight");
        assert!(p.snapshot().values.contains_key("/a"));
        drop(ack);
        assert!(!p.snapshot().values.contains_key("/a"));
        assert!(p.keys().is_empty());
    }
}
