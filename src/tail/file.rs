//! One open file and its blocking reading rounds: where reading starts, reading a chunk,
//! telling end of file, truncation and rotation apart, and finding the generations of a path
//! again after a restart.
//!
//! Everything here is blocking (`std::fs`) and runs inside `spawn_blocking`; the async side
//! (permits, chunks, channels, parking) is in `reader.rs`.
//!
//! Invariants:
//! - `pos` is the offset of the next byte to read from the descriptor, and
//!   `pos - buffer.pending_bytes()` the offset just after the last complete line: the only
//!   offset a chunk may commit;
//! - at end of file the path is looked at *before* the descriptor is checked again, so that what
//!   the writer wrote to the old file before the path changed is read before the rotation is
//!   reported;
//! - a saved position applies to a file only when its identity matches and, where a
//!   fingerprint was saved, its first bytes too (an inode is reused once its file is deleted);
//! - a rotated generation is found again only in the path's own directory: by `(dev, inode)`
//!   and fingerprint, or, for content that was truncated away (copytruncate), by fingerprint
//!   alone among the other files there, the most recently modified first.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::TailSettings;
use super::identity::identity_of;
use super::line_buffer::LineBuffer;
use super::stamper::Stamper;
use crate::ack::Tracker;
use crate::positions::{
    FINGERPRINT_BYTES, FileIdentity, Fingerprint, GenHandle, ResumePlan, SavedGeneration,
    SavedPosition, Stamps,
};

pub(crate) use super::line_buffer::Split;

/// A file opened and looked at (blocking), not yet being read.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) identity: FileIdentity,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) size: u64,
}

impl Opened {
    /// Opens `path`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Self::from_file(File::open(path)?)
    }

    /// Looks at an open descriptor: identity, size and fingerprint.
    pub(crate) fn from_file(file: File) -> io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "file is a directory",
            ));
        }
        let fingerprint = fingerprint_of(&file, FINGERPRINT_BYTES)?;
        Ok(Opened {
            file,
            identity: identity_of(&meta),
            fingerprint,
            size: meta.len(),
        })
    }
}

/// The fingerprint of the first `len` bytes of `file` (fewer if it is shorter), read without
/// moving its offset.
pub(crate) fn fingerprint_of(file: &File, len: u64) -> io::Result<Fingerprint> {
    let want = usize::try_from(len.min(FINGERPRINT_BYTES)).unwrap_or(0);
    let mut head = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Fingerprint::of(&head[..got]))
}

/// Whether `file` still starts with the bytes `fp` was taken of (an empty `fp` knows nothing,
/// so anything matches).
fn starts_like(file: &File, size: u64, fp: Fingerprint) -> bool {
    if fp.is_empty() {
        return true;
    }
    size >= u64::from(fp.len) && fingerprint_of(file, u64::from(fp.len)).is_ok_and(|f| f == fp)
}

/// An open file and its reading state (moved into each blocking round and back).
#[derive(Debug)]
pub(crate) struct OpenFile {
    file: File,
    /// `(dev, ino)` of the open file.
    pub(crate) identity: FileIdentity,
    /// The first bytes of the file, as far as they were there when looked at.
    pub(crate) fingerprint: Fingerprint,
    /// Offset of the next byte to read from `file`.
    pub(crate) pos: u64,
    /// File size at the last `fstat` (or the poll that woke the reader).
    pub(crate) size: u64,
    /// Modification time when the head was last compared with the fingerprint.
    pub(crate) modified: Option<SystemTime>,
    /// Holds the unfinished line between rounds.
    pub(crate) buffer: LineBuffer,
    /// This generation in the path's committed state.
    pub(crate) generation: GenHandle,
    /// The generation's tracker.
    pub(crate) tracker: Arc<Tracker>,
    /// Lines completed by the last round (reused between rounds).
    pub(crate) lines: Vec<Bytes>,
    /// Where each of `lines` starts, from the end of the complete lines before the round.
    pub(crate) starts: Vec<u64>,
    /// Gives the lines their read-time stamps.
    pub(crate) stamper: Stamper,
}

/// What one blocking round found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Round {
    /// `bytes` were read; `split` tells what completed (the lines are in `OpenFile::lines`).
    Read { bytes: usize, split: Split },
    /// There is data to read but no permits were granted for it (`size` is up to date).
    NeedPermits,
    /// End of file, and the path still names this file.
    Eof,
    /// The file is shorter than what was read: truncated in place. `lost` counts bytes that were
    /// in it and never read (what the previous size showed beyond the read offset, and an
    /// unterminated line).
    Truncated { lost: u64 },
    /// End of file, and the path names another file (`replaced`) or nothing.
    Rotated { replaced: bool },
}

/// Where reading starts in the file found at the path (spec §5.3 plus the identity and
/// fingerprint checks Promtail's positions cannot do).
pub(crate) fn start_offset(key: &str, saved: Option<SavedPosition>, found: &Opened) -> u64 {
    let Some(saved) = saved else {
        return 0;
    };
    let offset = saved.offset;
    if let Some(id) = saved.identity {
        let same_content = saved
            .fingerprint
            .is_none_or(|fp| starts_like(&found.file, found.size, fp));
        if id != found.identity || !same_content {
            tracing::info!(
                path = key,
                offset,
                "File was replaced while it was not tailed; reading it from the start."
            );
            return 0;
        }
    }
    if found.size < offset {
        tracing::info!(
            path = key,
            offset,
            size = found.size,
            "File is shorter than its saved position (truncated while not tailed); reading it from the start."
        );
        return 0;
    }
    offset
}

/// What a reader found at its start: the older generations of its plan that are still on
/// disk, those that are not, and the file at the path.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// Found again, oldest first: the file and where its committed state was.
    pub(crate) older: Vec<(Opened, SavedGeneration, PathBuf)>,
    /// Gone (deleted, compressed, moved elsewhere) before their lines were all delivered.
    pub(crate) lost: Vec<SavedGeneration>,
    /// The file at the path and where to start in it.
    pub(crate) current: Option<(Opened, u64)>,
    /// The stamps its lines from there on were handed on with before the restart.
    pub(crate) current_stamps: Stamps,
    /// Why the path could not be opened, when it exists but cannot be (not `NotFound`).
    pub(crate) open_error: Option<io::Error>,
}

/// Finds what `plan` names (blocking): the file at `path` and the older generations, in the
/// path's directory.
pub(crate) fn resolve(path: &Path, key: &str, plan: &ResumePlan) -> Resolved {
    let mut out = Resolved::default();
    match Opened::open(path) {
        Ok(found) => {
            let start = start_offset(key, plan.current, &found);
            out.current = Some((found, start));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => out.open_error = Some(e),
    }
    let at_path = out.current.as_ref().map(|(o, _)| o.identity);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let (Some((found, start)), Some(saved)) = (&out.current, plan.current)
        && saved.identity == Some(found.identity)
        && saved.offset == *start
    {
        out.current_stamps = plan.current_stamps.clone();
    }
    let mut wanted = plan.older.clone();
    wanted.extend(moved_away(plan, out.current.as_ref().map(|(o, _)| o)));
    for g in &wanted {
        if !g.copied && Some(g.identity) == at_path {
            // Still at the path: its position is the path's. When the sidecar was older than
            // the positions file (a crash between the two writes) its stamps are still the
            // ones of this file.
            if let Some((found, start)) = &out.current
                && out.current_stamps.is_empty()
                && *start >= g.offset
                && starts_like(&found.file, found.size, g.fingerprint)
            {
                out.current_stamps = g.stamps.clone();
            }
            continue;
        }
        let known = |o: &Opened| {
            Some(o.identity) == at_path && !g.copied
                || out.older.iter().any(|(f, _, _)| f.identity == o.identity)
        };
        match find_generation(dir, path, g) {
            Some((found, name)) if !known(&found) => out.older.push((found, g.clone(), name)),
            Some(_) => {}
            None => out.lost.push(g.clone()),
        }
    }
    out
}

/// Looks for a copy of the content `identity` had before it was truncated (copytruncate), by
/// its fingerprint, among the other files of `path`'s directory (blocking). `read` bytes of it
/// were read; the copy must hold at least that much.
pub(crate) fn find_copy(
    path: &Path,
    identity: FileIdentity,
    fingerprint: Fingerprint,
    read: u64,
) -> Option<(Opened, PathBuf)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let g = SavedGeneration {
        identity,
        fingerprint,
        offset: read,
        size: read,
        copied: true,
        stamps: Stamps::default(),
    };
    find_generation(dir, path, &g)
}

/// The file the saved position was taken of, when it is no longer the file at the path
/// (rotated while ferrotail was stopped, or its content truncated away): it is one more
/// generation to find again and read from the saved offset, newer than the saved older ones.
/// Only with a fingerprint: by inode alone a reused inode could pass for it.
fn moved_away(plan: &ResumePlan, at_path: Option<&Opened>) -> Option<SavedGeneration> {
    let saved = plan.current?;
    let identity = saved.identity?;
    let fingerprint = saved.fingerprint?;
    let same_inode = at_path.is_some_and(|o| o.identity == identity);
    if same_inode && at_path.is_some_and(|o| starts_like(&o.file, o.size, fingerprint)) {
        return None; // still there: the path's own position
    }
    Some(SavedGeneration {
        identity,
        fingerprint,
        offset: saved.offset,
        size: plan.current_size.max(saved.offset),
        copied: same_inode,
        stamps: plan.current_stamps.clone(),
    })
}

/// Looks for generation `g` of `live` in `dir` (blocking): by identity and fingerprint, or for
/// content truncated away, by fingerprint in the most recently modified other file.
fn find_generation(dir: &Path, live: &Path, g: &SavedGeneration) -> Option<(Opened, PathBuf)> {
    if g.copied && g.fingerprint.is_empty() {
        return None; // nothing to recognise a copy by
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "Cannot list the directory of a rotated file.");
            return None;
        }
    };
    let mut best: Option<(SystemTime, Opened, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.path();
        if name == live {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&name) else {
            continue;
        };
        if !meta.is_file() || meta.len() < g.offset {
            continue;
        }
        if !g.copied && identity_of(&meta) != g.identity {
            continue;
        }
        let Ok(found) = Opened::open(&name) else {
            continue;
        };
        if !starts_like(&found.file, found.size, g.fingerprint) {
            continue;
        }
        if !g.copied {
            return (found.identity == g.identity).then_some((found, name));
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(m, _, _)| modified > *m) {
            best = Some((modified, found, name));
        }
    }
    best.map(|(_, found, name)| (found, name))
}

impl OpenFile {
    /// Starts reading `opened` at `start`, as generation `generation`.
    pub(crate) fn start(
        opened: Opened,
        start: u64,
        generation: GenHandle,
        settings: &TailSettings,
    ) -> io::Result<Self> {
        let Opened {
            mut file,
            identity,
            fingerprint,
            size,
        } = opened;
        // Always: a descriptor that was read before (a truncated file queued again) is not
        // at `start`.
        file.seek(SeekFrom::Start(start))?;
        let tracker = generation.tracker();
        let stamper = Stamper::new(generation.restored_stamps());
        Ok(OpenFile {
            file,
            identity,
            fingerprint,
            pos: start,
            size,
            modified: None,
            buffer: LineBuffer::new(settings.max_line_bytes, settings.long_line_action),
            generation,
            tracker,
            lines: Vec::new(),
            starts: Vec::new(),
            stamper,
        })
    }

    /// Offset just after the last complete line read.
    pub(crate) fn line_end(&self) -> u64 {
        self.pos - self.buffer.pending_bytes()
    }

    /// Bytes worth reading next (what the file holds beyond the read offset, up to one buffer).
    pub(crate) fn want(&self, read_buffer: usize) -> usize {
        let left = self.size.saturating_sub(self.pos);
        usize::try_from(left).unwrap_or(usize::MAX).min(read_buffer)
    }

    /// One blocking round: reads at most `granted` bytes, or checks for truncation and rotation
    /// at end of file.
    pub(crate) fn round(
        &mut self,
        granted: usize,
        read_buffer: usize,
        path: &Path,
    ) -> io::Result<Round> {
        let prev_size = self.size;
        let meta = self.file.metadata()?;
        self.size = meta.len();
        if self.size < self.pos || self.rewritten(&meta) {
            return Ok(self.truncated(prev_size));
        }
        if self.size > self.pos {
            let want = self.want(read_buffer).min(granted);
            if want == 0 {
                return Ok(Round::NeedPermits);
            }
            let bytes = self.buffer.read_from(&mut self.file, want)?;
            if bytes == 0 {
                // The size said there was more; wait for the next change instead of spinning.
                return Ok(Round::Eof);
            }
            self.pos += bytes as u64;
            self.grow_fingerprint();
            let split = self.buffer.split_lines(&mut self.lines, &mut self.starts);
            return Ok(Round::Read { bytes, split });
        }
        // At end of file. Look at the path first, then at the descriptor again: what the writer
        // put in the old file before the path changed is then visible and gets read.
        let replaced = match std::fs::metadata(path) {
            Ok(meta) if identity_of(&meta) == self.identity => return Ok(Round::Eof),
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "Checking a file's path failed.");
                return Ok(Round::Eof);
            }
        };
        let prev_size = self.size;
        self.size = self.file.metadata()?.len();
        if self.size < self.pos {
            return Ok(self.truncated(prev_size));
        }
        if self.size > self.pos {
            return Ok(Round::NeedPermits);
        }
        Ok(Round::Rotated { replaced })
    }

    /// Whether the file was truncated and written again past the read offset between two
    /// looks (copytruncate under load: the size alone shows nothing, or growth). Its head is
    /// compared with the fingerprint whenever the modification time moved, one read of at most
    /// [`FINGERPRINT_BYTES`] per round that found changes. A rewrite within the filesystem's
    /// timestamp granularity, or with the same first bytes, is not seen.
    fn rewritten(&mut self, meta: &std::fs::Metadata) -> bool {
        let modified = meta.modified().ok();
        if modified == self.modified {
            return false;
        }
        self.modified = modified;
        self.pos > 0 && !starts_like(&self.file, self.size, self.fingerprint)
    }

    /// While the file is shorter than a full fingerprint, takes a new one as it grows (a file
    /// that was empty when opened would otherwise never be recognisable).
    fn grow_fingerprint(&mut self) {
        if u64::from(self.fingerprint.len) >= FINGERPRINT_BYTES
            || self.size <= u64::from(self.fingerprint.len)
        {
            return;
        }
        if let Ok(fp) = fingerprint_of(&self.file, FINGERPRINT_BYTES)
            && fp != self.fingerprint
        {
            self.fingerprint = fp;
            self.generation.set_fingerprint(fp);
        }
    }

    /// Opens the file the path names now if it is none of `known` (blocking): a newer
    /// generation that appeared while this one is still being read. Held open, it can be read
    /// after this one even if it is rotated away in the meantime. `None` when the path names a
    /// known file, nothing, or something that cannot be opened (logged at debug level).
    pub(crate) fn open_newer(path: &Path, known: &[FileIdentity]) -> Option<Opened> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || known.contains(&identity_of(&meta)) {
            return None;
        }
        let opened = match Opened::open(path) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "Opening a newer generation failed.");
                return None;
            }
        };
        // The path may have changed again between the stat and the open: trust the descriptor.
        (!known.contains(&opened.identity)).then_some(opened)
    }

    fn truncated(&self, prev_size: u64) -> Round {
        Round::Truncated {
            lost: prev_size.saturating_sub(self.pos) + self.buffer.pending_bytes(),
        }
    }

    /// Gives the descriptor back as a file to read again from its start (after truncation,
    /// once a copy of its old content has been read).
    pub(crate) fn into_opened(self) -> Opened {
        Opened {
            file: self.file,
            identity: self.identity,
            fingerprint: Fingerprint::default(),
            size: self.size,
        }
    }

    /// Starts again at offset 0 of the same descriptor as a new generation (after truncation).
    pub(crate) fn restart(&mut self, generation: GenHandle) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.pos = 0;
        self.buffer.clear();
        self.fingerprint = fingerprint_of(&self.file, FINGERPRINT_BYTES)?;
        generation.set_fingerprint(self.fingerprint);
        self.tracker = generation.tracker();
        self.stamper = Stamper::default();
        self.generation = generation;
        Ok(())
    }

    /// Capacity of the line buffer (tests assert it stays bounded).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buffer.capacity()
    }

    #[cfg(test)]
    pub(crate) fn take_lines(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.lines)
    }

    /// Opens `path` from its start as the only generation of an in-memory state (tests).
    #[cfg(test)]
    pub(crate) fn open_fresh(path: &Path, settings: &TailSettings) -> io::Result<Self> {
        let opened = Opened::open(path)?;
        let positions = crate::positions::Positions::in_memory();
        let (state, _) = positions.attach(&path.to_string_lossy(), 0);
        let generation = state.add(
            0,
            opened.identity,
            opened.fingerprint,
            0,
            opened.size,
            crate::positions::Phase::Reading,
        );
        Self::start(opened, 0, generation, settings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tail::LongLineAction;
    use std::io::Write;

    fn settings(cap: usize, action: LongLineAction, read: usize) -> TailSettings {
        TailSettings {
            max_line_bytes: cap,
            long_line_action: action,
            read_buffer_bytes: read,
            ..TailSettings::default()
        }
    }

    #[test]
    fn start_offset_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        let found = Opened::open(&path).unwrap();
        let (id, fp) = (found.identity, found.fingerprint);
        let saved = |offset, identity, fingerprint| {
            Some(SavedPosition {
                offset,
                identity,
                fingerprint,
            })
        };
        let other = FileIdentity {
            dev: id.dev,
            ino: id.ino + 1,
        };
        assert_eq!(start_offset("/f", None, &found), 0, "new file: from 0");
        assert_eq!(
            start_offset("/f", saved(40, Some(id), Some(fp)), &found),
            40
        );
        assert_eq!(
            start_offset("/f", saved(40, None, None), &found),
            40,
            "Promtail positions have no identity"
        );
        assert_eq!(
            start_offset("/f", saved(40, Some(other), None), &found),
            0,
            "replaced while stopped"
        );
        assert_eq!(
            start_offset(
                "/f",
                saved(40, Some(id), Some(Fingerprint::of(b"other"))),
                &found
            ),
            0,
            "same inode, other content: the inode was reused"
        );
        assert_eq!(
            start_offset("/f", saved(400, Some(id), Some(fp)), &found),
            0,
            "truncated while stopped"
        );
        assert_eq!(start_offset("/f", saved(100, Some(id), None), &found), 100);
        // A fingerprint of fewer bytes (the file was short then) still matches its start.
        let short = Fingerprint::of(&[b'x'; 10]);
        assert_eq!(
            start_offset("/f", saved(10, Some(id), Some(short)), &found),
            10
        );
    }

    #[test]
    fn rotated_generations_are_found_again_by_identity_or_as_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        std::fs::write(&live, b"gen one line 1\ngen one line 2\n").unwrap();
        let one = Opened::open(&live).unwrap();
        std::fs::rename(&live, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&live, b"gen two\n").unwrap();
        let saved = |o: &Opened, offset, copied| SavedGeneration {
            identity: o.identity,
            fingerprint: o.fingerprint,
            offset,
            size: o.size,
            copied,
            stamps: Stamps::default(),
        };
        let plan = ResumePlan {
            older: vec![saved(&one, 15, false)],
            ..ResumePlan::default()
        };
        let r = resolve(&live, "k", &plan);
        assert_eq!(r.older.len(), 1);
        assert_eq!(r.older[0].2, dir.path().join("app.log.1"));
        assert_eq!(r.older[0].1.offset, 15);
        assert!(r.lost.is_empty());
        assert_eq!(r.current.as_ref().map(|(_, start)| *start), Some(0));

        // Deleted (or compressed): lost, with what the plan knew of it.
        std::fs::remove_file(dir.path().join("app.log.1")).unwrap();
        let r = resolve(&live, "k", &plan);
        assert!(r.older.is_empty());
        assert_eq!(r.lost, plan.older);

        // copytruncate: the old content lives on in a copy with another inode.
        let before = Opened::open(&live).unwrap();
        std::fs::copy(&live, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&live, b"").unwrap();
        let copied = ResumePlan {
            older: vec![saved(&before, 0, true)],
            ..ResumePlan::default()
        };
        let r = resolve(&live, "k", &copied);
        assert_eq!(r.older.len(), 1, "{r:?}");
        assert_eq!(r.older[0].2, dir.path().join("app.log.1"));
        assert_ne!(r.older[0].0.identity, before.identity);
    }

    #[test]
    fn a_reused_inode_is_not_taken_for_the_old_generation() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        std::fs::write(&live, b"first content\n").unwrap();
        let first = Opened::open(&live).unwrap();
        let mut g = SavedGeneration {
            identity: first.identity,
            fingerprint: Fingerprint::of(b"other content\n"),
            offset: 0,
            size: 14,
            copied: false,
            stamps: Stamps::default(),
        };
        let rotated = dir.path().join("app.log.1");
        std::fs::rename(&live, &rotated).unwrap();
        let plan = |g| ResumePlan {
            older: vec![g],
            ..ResumePlan::default()
        };
        assert_eq!(resolve(&live, "k", &plan(g.clone())).lost.len(), 1);
        g.fingerprint = first.fingerprint;
        assert_eq!(resolve(&live, "k", &plan(g)).older.len(), 1);
    }

    /// Drives rounds with unlimited permits until end of file; returns the lines.
    fn drain(of: &mut OpenFile, path: &Path, read: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match of.round(usize::MAX, read, path).unwrap() {
                Round::Read { .. } | Round::NeedPermits => {
                    out.extend(of.take_lines().iter().map(|b| b.to_vec()))
                }
                Round::Eof => return out,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn fifty_megabyte_line_keeps_the_buffer_bounded() {
        let cap = 256 * 1024;
        let read = 64 * 1024;
        for action in [LongLineAction::Truncate, LongLineAction::Drop] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("big.log");
            let mut f = File::create(&path).unwrap();
            let block = vec![b'x'; 1024 * 1024];
            for _ in 0..50 {
                f.write_all(&block).unwrap();
            }
            f.flush().unwrap();
            let s = settings(cap, action, read);
            let mut of = OpenFile::open_fresh(&path, &s).unwrap();
            let mut max_capacity = 0;
            loop {
                match of.round(usize::MAX, read, &path).unwrap() {
                    Round::Read { split, .. } => {
                        assert_eq!(split, Split::default(), "nothing completes without a \\n");
                        max_capacity = max_capacity.max(of.buffer_capacity());
                    }
                    Round::Eof => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(
                of.take_lines().is_empty(),
                "an unterminated line is never emitted"
            );
            assert_eq!(of.pos, 50 * 1024 * 1024);
            assert_eq!(of.line_end(), 0);
            assert!(
                max_capacity <= cap + read,
                "buffer capacity {max_capacity} for a 50 MiB line (cap {cap}, read {read})"
            );
            f.write_all(b"\nnext\n").unwrap();
            f.flush().unwrap();
            let lines = drain(&mut of, &path, read);
            let want: Vec<Vec<u8>> = match action {
                LongLineAction::Truncate => vec![vec![b'x'; cap], b"next".to_vec()],
                LongLineAction::Drop => vec![b"next".to_vec()],
            };
            assert_eq!(lines, want);
            assert_eq!(of.line_end(), 50 * 1024 * 1024 + 6);
        }
    }

    #[test]
    fn reads_no_more_than_granted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open_fresh(&path, &s).unwrap();
        assert_eq!(of.round(0, 1024, &path).unwrap(), Round::NeedPermits);
        let r = of.round(5, 1024, &path).unwrap();
        assert_eq!(
            r,
            Round::Read {
                bytes: 5,
                split: Split {
                    lines: 1,
                    consumed: 4,
                    long_lines: 0
                }
            }
        );
        assert_eq!(of.take_lines(), vec![Bytes::from_static(b"one")]);
        assert_eq!(of.line_end(), 4);
    }

    #[test]
    fn rotation_and_truncation_are_reported_at_end_of_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\npart").unwrap();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open_fresh(&path, &s).unwrap();
        assert_eq!(drain(&mut of, &path, 1024).len(), 2);
        // Truncated in place: the unterminated "part" is lost.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(
            of.round(usize::MAX, 1024, &path).unwrap(),
            Round::Truncated { lost: 4 }
        );
        let again = of.generation.clone();
        of.restart(again).unwrap();
        std::fs::write(&path, b"x\n").unwrap();
        assert_eq!(drain(&mut of, &path, 1024), vec![b"x".to_vec()]);
        // Renamed away and replaced.
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        assert_eq!(
            of.round(usize::MAX, 1024, &path).unwrap(),
            Round::Rotated { replaced: false }
        );
        std::fs::write(&path, b"new\n").unwrap();
        assert_eq!(
            of.round(usize::MAX, 1024, &path).unwrap(),
            Round::Rotated { replaced: true }
        );
    }

    #[test]
    fn truncated_and_written_again_past_the_offset_is_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"2026-12-04T05:00:00Z first generation\n").unwrap();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open_fresh(&path, &s).unwrap();
        assert_eq!(drain(&mut of, &path, 1024).len(), 1);
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        // copytruncate, then the writer's next burst, all between two looks: the same size,
        // and then a larger one; neither is growth of the old content.
        for (line, n) in [
            (&b"2026-12-04T05:00:01Z other generation\n"[..], 1u64),
            (b"2026-12-04T05:00:02Z third generation, longer\n", 2),
        ] {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(0).unwrap();
            std::fs::write(&path, line).unwrap();
            f.set_modified(before + std::time::Duration::from_secs(n))
                .unwrap();
            assert_eq!(
                of.round(usize::MAX, 1024, &path).unwrap(),
                Round::Truncated { lost: 0 }
            );
            let again = of.generation.clone();
            of.restart(again).unwrap();
            assert_eq!(
                drain(&mut of, &path, 1024),
                vec![line[..line.len() - 1].to_vec()]
            );
        }
        // Plain appends move the modification time too, and are growth.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"appended\n").unwrap();
        f.set_modified(before + std::time::Duration::from_secs(9))
            .unwrap();
        assert_eq!(drain(&mut of, &path, 1024), vec![b"appended".to_vec()]);
    }

    #[test]
    fn open_newer_holds_only_a_generation_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"first\n").unwrap();
        let first = identity_of(&std::fs::metadata(&path).unwrap());
        assert!(OpenFile::open_newer(&path, &[first]).is_none(), "same file");
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        assert!(OpenFile::open_newer(&path, &[first]).is_none(), "path gone");
        std::fs::write(&path, b"second\n").unwrap();
        let newer = OpenFile::open_newer(&path, &[first]).expect("newer one");
        let (mut file, second) = (newer.file, newer.identity);
        assert_ne!(second, first);
        // Held open, it stays readable after it is rotated away too.
        std::fs::rename(&path, dir.path().join("app.log.2")).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "second\n");
        std::fs::write(&path, b"third\n").unwrap();
        let third = identity_of(&std::fs::metadata(&path).unwrap());
        assert!(OpenFile::open_newer(&path, &[first, second, third]).is_none());
    }
}
