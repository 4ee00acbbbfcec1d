//! Splits a syslog byte stream into messages: octet counting (RFC 6587 §3.4.1, `LEN SP MSG`)
//! and non-transparent newline framing (`MSG LF`), chosen per message from its first byte as
//! Promtail does per connection (`<`: newline framing; a digit: octet counting; anything
//! else ends the stream with `invalid or unsupported framing`).
//!
//! Invariants:
//! - memory is bounded by `max` whatever the input: a message longer than `max` bytes is cut
//!   there (the frame says so) and the rest of it is skipped without being kept;
//! - input may arrive in pieces of any size (a length prefix or a message split across reads
//!   frames exactly as if it came in one read);
//! - a newline-framed message is complete at its `\n` (a `\r` before it is dropped), or when the
//!   stream ends; empty lines between messages are skipped;
//! - after an error the framer stays failed: the caller closes the connection.

use bytes::{Bytes, BytesMut};

/// Most digits of an octet count (up to 9,999,999,999 bytes, far beyond any `max`).
const MAX_LEN_DIGITS: u32 = 10;

/// One framed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message bytes (at most `max`).
    pub data: Bytes,
    /// Whether the message was longer than `max` and cut.
    pub truncated: bool,
}

/// Why the stream cannot be framed any further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A message starts with neither `<` nor a digit.
    #[error("invalid or unsupported framing. first byte: {0:?}")]
    Unsupported(char),
    /// An octet count that is not `NONZERO-DIGIT *DIGIT SP`.
    #[error("invalid octet count: {0}")]
    BadLength(&'static str),
    /// The stream ended inside an octet-counted message.
    #[error("stream ended after {got} of {want} octets of a message")]
    Incomplete {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages.
    Start,
    /// In a newline-framed message (bytes go to `buf`).
    Line,
    /// Skipping the rest of a newline-framed message longer than `max`.
    SkipLine,
    /// Reading an octet count (`len` so far, `digits` read).
    Length { len: u64, digits: u32 },
    /// Reading an octet-counted message: `want` bytes in all, the first `max` kept.
    Counted { want: usize },
    /// Failed: nothing more is framed.
    Failed,
}

/// The framing state of one stream (a TCP connection, a UDP datagram).
#[derive(Debug)]
pub struct Framer {
    max: usize,
    state: State,
    buf: BytesMut,
    /// Bytes of the current octet-counted message seen (kept or skipped).
    seen: usize,
}

impl Framer {
    /// A framer cutting messages at `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        Framer {
            max: max.max(1),
            state: State::Start,
            buf: BytesMut::new(),
            seen: 0,
        }
    }

    /// Bytes held for an incomplete message (at most `max`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, truncated: bool) -> Frame {
        Frame {
            data: self.buf.split().freeze(),
            truncated,
        }
    }

    /// Frames `data`, appending complete messages to `out`. On an error, the messages framed
    /// before it are in `out` and the stream must be closed.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Frame>) -> Result<(), FramingError> {
        while !data.is_empty() {
            match self.state {
                State::Failed => return Ok(()),
                State::Start => {
                    let b = data[0];
                    match b {
                        b'\n' | b'\r' => data = &data[1..],
                        b'<' => self.state = State::Line,
                        b'1'..=b'9' => self.state = State::Length { len: 0, digits: 0 },
                        _ => {
                            self.state = State::Failed;
                            return Err(FramingError::Unsupported(char::from(b)));
                        }
                    }
                }
                State::Line => {
                    let room = self.max - self.buf.len();
                    match memchr::memchr(b'\n', &data[..data.len().min(room + 1)]) {
                        Some(n) if n <= room => {
                            self.buf.extend_from_slice(&data[..n]);
                            if self.buf.last() == Some(&b'\r') {
                                self.buf.truncate(self.buf.len() - 1);
                            }
                            out.push(self.take(false));
                            data = &data[n + 1..];
                            self.state = State::Start;
                        }
                        _ if data.len() <= room => {
                            self.buf.extend_from_slice(data);
                            data = &[];
                        }
                        _ => {
                            // More than `max` bytes before the newline: cut, skip the rest.
                            self.buf.extend_from_slice(&data[..room]);
                            out.push(self.take(true));
                            data = &data[room..];
                            self.state = State::SkipLine;
                        }
                    }
                }
                State::SkipLine => match memchr::memchr(b'\n', data) {
                    Some(n) => {
                        data = &data[n + 1..];
                        self.state = State::Start;
                    }
                    None => data = &[],
                },
                State::Length { len, digits } => {
                    let b = data[0];
                    data = &data[1..];
                    match b {
                        b'0'..=b'9' if digits < MAX_LEN_DIGITS => {
                            self.state = State::Length {
                                len: len * 10 + u64::from(b - b'0'),
                                digits: digits + 1,
                            };
                        }
                        b'0'..=b'9' => {
                            self.state = State::Failed;
                            return Err(FramingError::BadLength("too many digits"));
                        }
                        b' ' => {
                            let want = usize::try_from(len).unwrap_or(usize::MAX);
                            self.seen = 0;
                            self.state = State::Counted { want };
                        }
                        _ => {
                            self.state = State::Failed;
                            return Err(FramingError::BadLength(
                                "expecting a space after the message length",
                            ));
                        }
                    }
                }
                State::Counted { want } => {
                    let n = (want - self.seen).min(data.len());
                    let keep = n.min(self.max.saturating_sub(self.seen));
                    self.buf.extend_from_slice(&data[..keep]);
                    self.seen += n;
                    data = &data[n..];
                    if self.seen == want {
                        out.push(self.take(want > self.max));
                        self.state = State::Start;
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream ended: completes a newline-framed message in progress, or reports an
    /// octet-counted one that is incomplete.
    pub fn finish(&mut self, out: &mut Vec<Frame>) -> Result<(), FramingError> {
        let state = std::mem::replace(&mut self.state, State::Start);
        match state {
            State::Line if !self.buf.is_empty() => {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.truncate(self.buf.len() - 1);
                }
                out.push(self.take(false));
                Ok(())
            }
            State::Length { .. } => Err(FramingError::BadLength(
                "stream ended inside the message length",
            )),
            State::Counted { want } => {
                self.buf.clear();
                Err(FramingError::Incomplete {
                    got: self.seen,
                    want,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame_all(chunks: &[&[u8]], max: usize) -> (Vec<(String, bool)>, Result<(), FramingError>) {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        let mut result = Ok(());
        for c in chunks {
            result = f.push(c, &mut out);
            if result.is_err() {
                break;
            }
            assert!(f.buffered() <= max);
        }
        if result.is_ok() {
            result = f.finish(&mut out);
        }
        let frames = out
            .into_iter()
            .map(|fr| (String::from_utf8_lossy(&fr.data).into_owned(), fr.truncated))
            .collect();
        (frames, result)
    }

    fn ok(s: &str) -> (String, bool) {
        (s.to_owned(), false)
    }

    #[test]
    fn newline_framing() {
        let (frames, r) = frame_all(
            &[b"<13>1 - - - - - - a\n<13>1 - - - - - - b\r\n\n<14>c"],
            100,
        );
        assert_eq!(r, Ok(()));
        assert_eq!(
            frames,
            vec![
                ok("<13>1 - - - - - - a"),
                ok("<13>1 - - - - - - b"),
                ok("<14>c")
            ]
        );
    }

    #[test]
    fn octet_counting_split_across_reads_at_every_byte() {
        let stream = b"11 <13>1 - - x5 <1>ab17 <13>1 - - - - - -";
        let want = vec![ok("<13>1 - - x"), ok("<1>ab"), ok("<13>1 - - - - - -")];
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            let (frames, r) = frame_all(&[a, b], 100);
            assert_eq!(r, Ok(()), "split at {split}");
            assert_eq!(frames, want, "split at {split}");
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frame_all(&bytes, 100).0, want);
    }

    #[test]
    fn framing_is_chosen_per_message() {
        let (frames, r) = frame_all(&[b"<1>line one\n6 <2>two<3>three\n"], 100);
        assert_eq!(r, Ok(()));
        assert_eq!(
            frames,
            vec![ok("<1>line one"), ok("<2>two"), ok("<3>three")]
        );
    }

    #[test]
    fn oversized_messages_are_cut_and_the_rest_skipped() {
        let long = format!("<1>{}\n<2>next\n", "x".repeat(50));
        for split in [1, 5, 10, 20, 53, 54] {
            let (a, b) = long.as_bytes().split_at(split);
            let (frames, r) = frame_all(&[a, b], 10);
            assert_eq!(r, Ok(()));
            assert_eq!(
                frames,
                vec![("<1>xxxxxxx".to_owned(), true), ok("<2>next")],
                "split {split}"
            );
        }
        // Exactly max bytes is not cut.
        assert_eq!(frame_all(&[b"<1>4567890\n"], 10).0, vec![ok("<1>4567890")]);
        // Octet counting.
        let counted = format!("53 <1>{}7 <2>next", "y".repeat(50));
        let chunks: Vec<&[u8]> = counted.as_bytes().chunks(7).collect();
        let (frames, r) = frame_all(&chunks, 10);
        assert_eq!(r, Ok(()));
        assert_eq!(frames, vec![("<1>yyyyyyy".to_owned(), true), ok("<2>next")]);
    }

    #[test]
    fn bad_framing_ends_the_stream() {
        let (frames, r) = frame_all(&[b"<1>ok\nhello\n<2>never\n"], 100);
        assert_eq!(frames, vec![ok("<1>ok")]);
        assert_eq!(r, Err(FramingError::Unsupported('h')));
        assert!(matches!(
            frame_all(&[b"12x"], 100).1,
            Err(FramingError::BadLength(_))
        ));
        assert!(matches!(
            frame_all(&[b"99999999999 x"], 100).1,
            Err(FramingError::BadLength(_))
        ));
        assert_eq!(
            frame_all(&[b"10 <1>ab"], 100).1,
            Err(FramingError::Incomplete { got: 5, want: 10 })
        );
        assert!(matches!(
            frame_all(&[b"10"], 100).1,
            Err(FramingError::BadLength(_))
        ));
    }

    #[test]
    fn huge_octet_count_is_bounded() {
        let mut f = Framer::new(16);
        let mut out = Vec::new();
        f.push(b"9999999999 <1>", &mut out).unwrap();
        for _ in 0..1000 {
            f.push(&[b'z'; 1000], &mut out).unwrap();
            assert!(f.buffered() <= 16);
        }
        assert!(out.is_empty());
    }
}
