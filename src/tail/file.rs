//! One open file and its blocking reading rounds: where reading starts, reading a chunk,
//! and telling end of file, truncation and rotation apart.
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
//!   reported.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::TailSettings;
use super::identity::identity_of;
use super::line_buffer::LineBuffer;
use crate::positions::acks::Tracker;
use crate::positions::{FileIdentity, Positions, SavedPosition};

pub(crate) use super::line_buffer::Split;
/// An open file and its reading state (moved into each blocking round and back).
#[derive(Debug)]
pub(crate) struct OpenFile {
    file: File,
    /// `(dev, ino)` of the open file.
    pub(crate) identity: FileIdentity,
    /// Offset of the next byte to read from `file`.
    pub(crate) pos: u64,
    /// File size at the last `fstat` (or the poll that woke the reader).
    pub(crate) size: u64,
    /// Holds the unfinished line between rounds.
    pub(crate) buffer: LineBuffer,
    /// The tracker attached to positions for this file.
    pub(crate) tracker: Arc<Tracker>,
    /// Lines completed by the last round (reused between rounds).
    pub(crate) lines: Vec<Bytes>,
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

/// Where reading starts for a file with identity `id` and size `size` (spec §5.3 plus the
/// identity check Promtail's positions cannot do).
pub(crate) fn start_offset(
    key: &str,
    saved: Option<SavedPosition>,
    id: FileIdentity,
    size: u64,
) -> u64 {
    match saved {
        None => 0,
        Some(SavedPosition {
            identity: Some(saved_id),
            offset,
        }) if saved_id != id => {
            tracing::info!(
                path = key,
                offset,
                "File was replaced while it was not tailed; reading it from the start."
            );
            0
        }
        Some(SavedPosition { offset, .. }) if size < offset => {
            tracing::info!(
                path = key,
                offset,
                size,
                "File is shorter than its saved position (truncated while not tailed); reading it from the start."
            );
            0
        }
        Some(SavedPosition { offset, .. }) => offset,
    }
}

impl OpenFile {
    /// Opens `path` (blocking) and attaches a new tracker to positions. `from_start` ignores the
    /// saved position (a file that replaced the one being read).
    pub(crate) fn open(
        path: &Path,
        key: &str,
        positions: &Positions,
        settings: &TailSettings,
        from_start: bool,
    ) -> io::Result<Self> {
        let file = File::open(path)?;
        Self::attach(file, key, positions, settings, from_start)
    }

    /// Starts reading an already open descriptor (a newer generation opened while the reader
    /// was still busy with an older one), attaching a new tracker to positions.
    pub(crate) fn attach(
        mut file: File,
        key: &str,
        positions: &Positions,
        settings: &TailSettings,
        from_start: bool,
    ) -> io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "file is a directory",
            ));
        }
        let identity = identity_of(&meta);
        let start = if from_start {
            0
        } else {
            start_offset(key, positions.get(key), identity, meta.len())
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start))?;
        }
        let tracker = Tracker::new(start);
        positions.track(key, identity, Arc::clone(&tracker));
        Ok(OpenFile {
            file,
            identity,
            pos: start,
            size: meta.len(),
            buffer: LineBuffer::new(settings.max_line_bytes, settings.long_line_action),
            tracker,
            lines: Vec::new(),
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
        self.size = self.file.metadata()?.len();
        if self.size < self.pos {
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
            let split = self.buffer.split_lines(&mut self.lines);
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

    /// Opens the file the path names now if it is none of `known` (blocking): a newer
    /// generation that appeared while this one is still being read. Held open, it can be read
    /// after this one even if it is rotated away in the meantime. `None` when the path names a
    /// known file, nothing, or something that cannot be opened (logged at debug level).
    pub(crate) fn open_newer(path: &Path, known: &[FileIdentity]) -> Option<(File, FileIdentity)> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || known.contains(&identity_of(&meta)) {
            return None;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "Opening a newer generation failed.");
                return None;
            }
        };
        // The path may have changed again between the stat and the open: trust the descriptor.
        let identity = identity_of(&file.metadata().ok()?);
        (!known.contains(&identity)).then_some((file, identity))
    }

    fn truncated(&self, prev_size: u64) -> Round {
        Round::Truncated {
            lost: prev_size.saturating_sub(self.pos) + self.buffer.pending_bytes(),
        }
    }

    /// Starts again at offset 0 of the same descriptor, with a new tracker (after truncation).
    pub(crate) fn restart(&mut self) -> io::Result<Arc<Tracker>> {
        self.file.seek(SeekFrom::Start(0))?;
        self.pos = 0;
        self.buffer.clear();
        self.tracker = Tracker::new(0);
        Ok(Arc::clone(&self.tracker))
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

    const ID: FileIdentity = FileIdentity { dev: 1, ino: 7 };

    #[test]
    fn start_offset_rules() {
        let saved = |offset, identity| Some(SavedPosition { offset, identity });
        let other = FileIdentity { dev: 1, ino: 8 };
        assert_eq!(start_offset("/f", None, ID, 100), 0, "new file: from 0");
        assert_eq!(start_offset("/f", saved(40, Some(ID)), ID, 100), 40);
        assert_eq!(
            start_offset("/f", saved(40, None), ID, 100),
            40,
            "Promtail positions have no identity"
        );
        assert_eq!(
            start_offset("/f", saved(40, Some(other)), ID, 100),
            0,
            "replaced while stopped"
        );
        assert_eq!(
            start_offset("/f", saved(400, Some(ID)), ID, 100),
            0,
            "truncated while stopped"
        );
        assert_eq!(start_offset("/f", saved(100, Some(ID)), ID, 100), 100);
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
            let positions = Positions::in_memory();
            let s = settings(cap, action, read);
            let mut of = OpenFile::open(&path, "k", &positions, &s, false).unwrap();
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
        let positions = Positions::in_memory();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open(&path, "k", &positions, &s, false).unwrap();
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
        let positions = Positions::in_memory();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open(&path, "k", &positions, &s, false).unwrap();
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
        of.restart().unwrap();
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
    fn open_newer_holds_only_a_generation_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"first\n").unwrap();
        let first = identity_of(&std::fs::metadata(&path).unwrap());
        assert!(OpenFile::open_newer(&path, &[first]).is_none(), "same file");
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        assert!(OpenFile::open_newer(&path, &[first]).is_none(), "path gone");
        std::fs::write(&path, b"second\n").unwrap();
        let (mut file, second) = OpenFile::open_newer(&path, &[first]).expect("newer one");
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
