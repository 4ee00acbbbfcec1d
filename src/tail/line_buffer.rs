//! A rolling read buffer that splits on `\n` and caps line length while reading.
//!
//! Invariants:
//! - `buf` holds only the current unfinished line (or, once it passed the cap, the part of it
//!   that is kept) followed by bytes not yet scanned; complete lines leave it as `Bytes` that
//!   share the read allocation (`split_to` + `freeze`), so no line is copied or allocated alone;
//! - a line longer than `cap` is never held whole: once the unfinished line passes the cap, its
//!   bytes beyond the kept prefix are discarded as they arrive, so memory stays
//!   O(cap + one read) for a line of any length;
//! - [`LineBuffer::pending_bytes`] is exactly the number of file bytes read but not yet part of a
//!   complete line, kept or discarded, so `read offset - pending_bytes()` is the offset just after
//!   the last complete line (what a chunk may commit);
//! - only `\n` ends a line; it is removed, a `\r` before it is kept.

use std::io::{self, Read};

use bytes::{Bytes, BytesMut};

use super::LongLineAction;

/// Splits bytes read from a file into lines of at most `cap` bytes.
#[derive(Debug)]
pub struct LineBuffer {
    /// The unfinished line (its kept prefix once over the cap), then unscanned bytes.
    buf: BytesMut,
    /// `buf[..scanned]` is known to contain no `\n`, so it is not searched again.
    scanned: usize,
    /// Longest line kept, in bytes.
    cap: usize,
    action: LongLineAction,
    /// The unfinished line passed the cap: bytes of it beyond the kept prefix are discarded.
    overlong: bool,
    /// Bytes of the unfinished line already discarded.
    discarded: u64,
}

/// What one call to [`LineBuffer::split_lines`] completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Lines completed (emitted, truncated or dropped).
    pub lines: u64,
    /// File bytes of the completed lines, `\n` and discarded bytes included.
    pub consumed: u64,
    /// How many of the completed lines were longer than the cap.
    pub long_lines: u64,
}

impl LineBuffer {
    /// An empty buffer with line cap `cap` (at least 1).
    pub fn new(cap: usize, action: LongLineAction) -> Self {
        LineBuffer {
            buf: BytesMut::new(),
            scanned: 0,
            cap: cap.max(1),
            action,
            overlong: false,
            discarded: 0,
        }
    }

    /// Reads at most `max` bytes from `src`, appending them. Returns how many were read (0 at end
    /// of file).
    pub fn read_from<R: Read>(&mut self, src: &mut R, max: usize) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        let len = self.buf.len();
        if self.buf.capacity() - len < max {
            // Allocate exactly this read (plus the unfinished line) instead of letting BytesMut
            // grow geometrically: the allocation stays alive until every line sliced from it is
            // acknowledged, so its size is the memory an in-flight chunk really costs.
            let mut fresh = BytesMut::with_capacity(len + max);
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
        self.buf.resize(len + max, 0);
        let read = loop {
            match src.read(&mut self.buf[len..]) {
                Ok(n) => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        let n = *read.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        read
    }

    /// Appends `data` as if it had been read (tests and benchmarks).
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Moves every complete line into `out` (without its `\n`; truncated to the cap, or left out
    /// when the action is `Drop`), and where each of them starts into `starts` (bytes from the
    /// start of this split, i.e. from the end of the last complete line before it), then
    /// applies the cap to the unfinished line.
    pub fn split_lines(&mut self, out: &mut Vec<Bytes>, starts: &mut Vec<u64>) -> Split {
        let mut split = Split::default();
        while let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            let nl = self.scanned + i;
            let mut line = self.buf.split_to(nl + 1);
            let start = split.consumed;
            split.lines += 1;
            split.consumed += self.discarded + nl as u64 + 1;
            if self.overlong || nl > self.cap {
                split.long_lines += 1;
                if self.action == LongLineAction::Truncate {
                    line.truncate(self.cap.min(nl));
                    out.push(line.freeze());
                    starts.push(start);
                }
            } else {
                line.truncate(nl);
                out.push(line.freeze());
                starts.push(start);
            }
            self.overlong = false;
            self.discarded = 0;
            self.scanned = 0;
        }
        self.scanned = self.buf.len();
        if self.overlong || self.buf.len() > self.cap {
            self.overlong = true;
            let keep = match self.action {
                LongLineAction::Truncate => self.cap,
                LongLineAction::Drop => 0,
            };
            if self.buf.len() > keep {
                self.discarded += (self.buf.len() - keep) as u64;
                self.buf.truncate(keep);
            }
            self.scanned = self.buf.len();
        }
        split
    }

    /// File bytes read but not yet part of a complete line (held or discarded).
    pub fn pending_bytes(&self) -> u64 {
        self.buf.len() as u64 + self.discarded
    }

    /// Forgets the unfinished line (the file was truncated or replaced under it).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.scanned = 0;
        self.overlong = false;
        self.discarded = 0;
    }

    /// Bytes allocated for the buffer (what a long line can make it hold).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::proptest_config;
    use proptest::prelude::*;

    /// Reads its data in the given piece sizes, like a file that grows by `pieces`.
    struct Pieces<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let want = self
                .sizes
                .get(self.next)
                .copied()
                .unwrap_or(usize::MAX)
                .max(1);
            self.next += 1;
            let n = want.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// The reference: split on `\n`, drop the unterminated rest, apply the cap. Also where
    /// each kept line starts.
    fn reference(
        data: &[u8],
        cap: usize,
        action: LongLineAction,
    ) -> (Vec<Vec<u8>>, u64, u64, Vec<u64>) {
        let mut lines = Vec::new();
        let mut starts = Vec::new();
        let mut long = 0;
        let mut consumed = 0;
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..i];
            let start = consumed;
            consumed += i as u64 + 1;
            if line.len() > cap {
                long += 1;
                if action == LongLineAction::Truncate {
                    lines.push(line[..cap].to_vec());
                    starts.push(start);
                }
            } else {
                lines.push(line.to_vec());
                starts.push(start);
            }
            rest = &rest[i + 1..];
        }
        (lines, consumed, long, starts)
    }

    /// Where the lines start when read in `sizes` pieces, as the reader computes it.
    fn starts_read_in_pieces(
        data: &[u8],
        sizes: Vec<usize>,
        max_read: usize,
        cap: usize,
        action: LongLineAction,
    ) -> Vec<u64> {
        let mut src = Pieces {
            data,
            sizes,
            next: 0,
        };
        let mut lb = LineBuffer::new(cap, action);
        let (mut out, mut starts, mut all) = (Vec::new(), Vec::new(), Vec::new());
        let mut line_end = 0;
        while lb.read_from(&mut src, max_read).unwrap() > 0 {
            starts.clear();
            let split = lb.split_lines(&mut out, &mut starts);
            all.extend(starts.iter().map(|s| line_end + s));
            line_end += split.consumed;
        }
        all
    }

    fn run(
        data: &[u8],
        sizes: Vec<usize>,
        max_read: usize,
        cap: usize,
        action: LongLineAction,
    ) -> (Vec<Vec<u8>>, u64, u64, LineBuffer, usize) {
        let mut src = Pieces {
            data,
            sizes,
            next: 0,
        };
        let mut lb = LineBuffer::new(cap, action);
        let mut out = Vec::new();
        let (mut consumed, mut long, mut max_cap) = (0, 0, 0);
        loop {
            let n = lb.read_from(&mut src, max_read).unwrap();
            if n == 0 {
                break;
            }
            let split = lb.split_lines(&mut out, &mut Vec::new());
            consumed += split.consumed;
            long += split.long_lines;
            max_cap = max_cap.max(lb.capacity());
        }
        let lines = out.iter().map(|b| b.to_vec()).collect();
        (lines, consumed, long, lb, max_cap)
    }

    #[test]
    fn keeps_cr_and_holds_back_the_unterminated_line() {
        let mut lb = LineBuffer::new(100, LongLineAction::Truncate);
        let mut out = Vec::new();
        lb.extend(b"a\r\nb\n\npart");
        let split = lb.split_lines(&mut out, &mut Vec::new());
        assert_eq!(out, vec![&b"a\r"[..], &b"b"[..], &b""[..]]);
        assert_eq!(split.consumed, 6);
        assert_eq!(lb.pending_bytes(), 4);
        out.clear();
        lb.extend(b"ial\n");
        let split = lb.split_lines(&mut out, &mut Vec::new());
        assert_eq!(out, vec![&b"partial"[..]]);
        assert_eq!(split.consumed, 8);
        assert_eq!(lb.pending_bytes(), 0);
    }

    #[test]
    fn invalid_utf8_passes_unchanged() {
        let mut lb = LineBuffer::new(100, LongLineAction::Truncate);
        let mut out = Vec::new();
        lb.extend(b"\xff\xfe ok \xc3\n");
        lb.split_lines(&mut out, &mut Vec::new());
        assert_eq!(out, vec![&b"\xff\xfe ok \xc3"[..]]);
    }

    #[test]
    fn long_line_truncated_or_dropped_while_it_streams_in() {
        for action in [LongLineAction::Truncate, LongLineAction::Drop] {
            let mut lb = LineBuffer::new(4, action);
            let mut out = Vec::new();
            lb.extend(b"ok\n0123");
            lb.split_lines(&mut out, &mut Vec::new());
            lb.extend(b"456789");
            let s = lb.split_lines(&mut out, &mut Vec::new());
            assert_eq!(s, Split::default());
            assert_eq!(lb.pending_bytes(), 10, "discarded bytes still count");
            assert!(lb.buf.len() <= 4);
            lb.extend(b"abc\nnext\n");
            let s = lb.split_lines(&mut out, &mut Vec::new());
            assert_eq!(s.consumed, 14 + 5);
            assert_eq!(s.lines, 2);
            assert_eq!(s.long_lines, 1);
            let want: Vec<&[u8]> = match action {
                LongLineAction::Truncate => vec![b"ok", b"0123", b"next"],
                LongLineAction::Drop => vec![b"ok", b"next"],
            };
            assert_eq!(out, want);
        }
    }

    #[test]
    fn huge_line_keeps_memory_bounded() {
        let cap = 1024;
        let read = 4096;
        let mut data = vec![b'x'; 5 * 1024 * 1024];
        data.extend_from_slice(b"\nafter\n");
        let (lines, consumed, long, lb, max_cap) =
            run(&data, vec![], read, cap, LongLineAction::Truncate);
        assert_eq!(lines, vec![vec![b'x'; cap], b"after".to_vec()]);
        assert_eq!(consumed, data.len() as u64);
        assert_eq!(long, 1);
        assert_eq!(lb.pending_bytes(), 0);
        assert!(
            max_cap <= 2 * (cap + read),
            "buffer grew to {max_cap} bytes for a 5 MiB line"
        );
    }

    fn arb_data() -> impl Strategy<Value = Vec<u8>> {
        // Few distinct bytes so that newlines, `\r` and long runs are all common.
        prop::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(0xff_u8)],
            0..400,
        )
    }

    proptest! {
        #![proptest_config(proptest_config(256))]
        #[test]
        fn any_chunking_gives_the_reference_lines(
            data in arb_data(),
            sizes in prop::collection::vec(1usize..50, 0..40),
            max_read in 1usize..64,
            cap in 1usize..40,
            drop in any::<bool>(),
        ) {
            let action = if drop { LongLineAction::Drop } else { LongLineAction::Truncate };
            let (want, want_consumed, want_long, want_starts) = reference(&data, cap, action);
            let starts = starts_read_in_pieces(&data, sizes.clone(), max_read, cap, action);
            prop_assert_eq!(&starts, &want_starts);
            let (got, consumed, long, lb, max_cap) = run(&data, sizes, max_read, cap, action);
            prop_assert_eq!(got.iter().filter(|l| l.len() > cap).count(), 0);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(consumed, want_consumed);
            prop_assert_eq!(long, want_long);
            prop_assert_eq!(consumed + lb.pending_bytes(), data.len() as u64);
            prop_assert!(max_cap <= 2 * (cap + max_read) + 64, "capacity {}", max_cap);
        }
    }
}
