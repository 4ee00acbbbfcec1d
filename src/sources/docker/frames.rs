//! Docker log frames: turns the byte stream of `GET /containers/{id}/logs` (with
//! `timestamps=true`) into timestamped lines, as Promtail 3.4.6's Docker target does
//! (`pkg/framedstdcopy` for the framing, `Target.process` for the lines).
//!
//! Framing:
//! - a container without a TTY answers with Docker's multiplexed stream: frames of an 8-byte
//!   header (stream type: 0 stdin and 1 stdout are read as stdout, 2 is stderr, 3 is an error
//!   from the daemon that ends the stream with its text; three bytes ignored; big-endian u32
//!   payload length) and the payload. Any other stream type ends the stream with an error;
//! - a container with a TTY answers with the raw stream; everything is stdout, and a frame ends
//!   after the first `\n` or after 16 415 bytes (16 KiB plus room for a timestamp: Docker's
//!   longest message), as Promtail cuts it.
//!
//! Lines, per stream (stdout and stderr each keep their own state):
//! - a frame's payload starts with an RFC 3339 timestamp (`2024-05-01T10:00:00.123456789Z`)
//!   and a space; a frame without a parsable one is skipped and counted
//!   ([`Decoder::take_parse_errors`], Promtail's `promtail_docker_target_parsing_errors_total`),
//!   except while a line is being joined: then it is a continuation, whole, with the line's
//!   timestamp;
//! - the trailing `\r` and `\n` of each frame are removed; frames are joined until one ends with
//!   `\n` (Docker splits lines longer than 16 KiB into several frames with the same
//!   timestamp); a frame with another timestamp first emits what was being joined;
//! - when a joined line is longer than the line limit (`max_line`, or 256 KiB when 0), it is
//!   emitted at the end of that frame and the rest of the line (frames up to one ending in `\n`,
//!   or one with another timestamp) is discarded. A line that fits in one frame is never cut.
//!
//! Invariants: the decoder is incremental — input may be cut anywhere (inside a header, a
//! timestamp, a payload) and gives the same lines, errors and counts as in one piece; memory is
//! bounded by the line limit plus 32 KiB per stream, whatever the input (a frame header
//! announcing 4 GiB included); it never panics on any input. Lines are `Bytes` slices of the
//! input where a line is one frame that arrived in one piece (no copy), copies otherwise.
//!
//! Deliberate differences from Promtail: at the end of the stream ([`Decoder::finish`]) a line
//! still being joined is emitted, and so is a TTY stream's last frame without `\n` (Promtail
//! drops both, losing a container's last unterminated output); a frame payload longer than the
//! limit plus 32 KiB (Docker never sends one) is cut there; a timestamp is looked for in the
//! first 64 bytes only (Docker's are 30 to 35 bytes long); the message of a daemon error frame
//! is kept to its first 4 KiB.

use bytes::{Bytes, BytesMut};

/// The line limit when none is given (Promtail's, for `limits_config.max_line_size: 0`).
pub const DEFAULT_MAX_LINE: usize = 256 * 1024;

/// The longest frame of a TTY stream (Promtail's `maxFrameLen`).
pub const TTY_FRAME_MAX: usize = 16384 + 31;

/// How much of a frame's payload may be kept beyond the line limit: a line is emitted at the end
/// of the frame that makes it too long, as Promtail does, so one frame's worth (16 KiB from
/// Docker) must fit on top of the limit.
const FRAME_SLACK: usize = 32 * 1024;

/// How many bytes of a frame are searched for the space that ends the timestamp.
const TS_PREFIX_MAX: usize = 64;

/// How much of a daemon error frame is kept for its message.
const DAEMON_MESSAGE_MAX: usize = 4096;

/// The length of a multiplexed frame header.
const HEADER_LEN: usize = 8;

/// Which output of the container a line comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output (and stdin frames, and everything of a TTY container).
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// The value of `__meta_docker_container_log_stream`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One log line of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Where it was written.
    pub stream: LogStream,
    /// Docker's timestamp, in Unix nanoseconds.
    pub timestamp_ns: i64,
    /// The line, without its trailing `\r`/`\n`.
    pub line: Bytes,
}

/// Why a log stream cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The daemon reported an error inside the stream (stream type 3).
    #[error("error from the Docker daemon in the log stream: {0}")]
    Daemon(String),
    /// A frame header with a stream type Docker does not use.
    #[error("unrecognized stream type {0} in a log frame header")]
    UnknownStream(u8),
}

/// Parses a Docker log timestamp (RFC 3339 with optional fraction, as Go's `RFC3339Nano`
/// layout reads) to Unix nanoseconds; `None` when it is not one or is outside the range of
/// `i64` nanoseconds (years 1678 to 2262).
pub fn parse_timestamp(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// The incremental decoder of one container's log stream.
pub struct Decoder {
    framing: Framing,
    stdout: Joiner,
    stderr: Joiner,
    parse_errors: u64,
    /// Set once the stream reported an error: nothing more is read.
    failed: bool,
}

enum Framing {
    /// Docker's multiplexed stream.
    Mux(MuxState),
    /// The raw stream of a TTY container; `in_frame` bytes of the current frame seen so far.
    Tty { in_frame: usize },
}

enum MuxState {
    /// Reading a header (`have` of its bytes so far).
    Header { buf: [u8; HEADER_LEN], have: usize },
    /// Inside the payload of a stdout or stderr frame.
    Payload { stream: LogStream, remaining: usize },
    /// Inside a daemon error frame: its text so far.
    Daemon { message: Vec<u8>, remaining: usize },
}

impl Decoder {
    /// A decoder for a container with (`tty`) or without a TTY; `max_line` is the line limit
    /// (0: [`DEFAULT_MAX_LINE`]).
    pub fn new(tty: bool, max_line: usize) -> Self {
        let limit = if max_line == 0 {
            DEFAULT_MAX_LINE
        } else {
            max_line
        };
        Decoder {
            framing: if tty {
                Framing::Tty { in_frame: 0 }
            } else {
                Framing::Mux(MuxState::Header {
                    buf: [0; HEADER_LEN],
                    have: 0,
                })
            },
            stdout: Joiner::new(LogStream::Stdout, limit),
            stderr: Joiner::new(LogStream::Stderr, limit),
            parse_errors: 0,
            failed: false,
        }
    }

    /// Reads the next piece of the stream, appending the lines it completes to `out`. After an
    /// error, the stream is over: later input is ignored.
    pub fn feed(&mut self, chunk: Bytes, out: &mut Vec<LogLine>) -> Result<(), FrameError> {
        if self.failed {
            return Ok(());
        }
        let result = match self.framing {
            Framing::Mux(_) => self.feed_mux(chunk, out),
            Framing::Tty { .. } => {
                self.feed_tty(chunk, out);
                Ok(())
            }
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// The stream ended cleanly: emits what is still held (see the module doc). A multiplexed
    /// frame cut short by the end is dropped, as Promtail drops it.
    pub fn finish(&mut self, out: &mut Vec<LogLine>) {
        if self.failed {
            return;
        }
        match &mut self.framing {
            Framing::Mux(state) => {
                let cut = match state {
                    MuxState::Payload { stream, .. } => Some(*stream),
                    _ => None,
                };
                self.set_header();
                if let Some(stream) = cut {
                    self.joiner(stream).abandon_frame();
                }
            }
            Framing::Tty { in_frame } => {
                if *in_frame > 0 {
                    *in_frame = 0;
                    self.parse_errors += self.stdout.piece(Bytes::new(), true, out);
                }
            }
        }
        self.stdout.flush(out);
        self.stderr.flush(out);
    }

    /// Frames skipped for want of a timestamp since the last call.
    pub fn take_parse_errors(&mut self) -> u64 {
        std::mem::take(&mut self.parse_errors)
    }

    fn joiner(&mut self, stream: LogStream) -> &mut Joiner {
        match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        }
    }

    fn feed_mux(&mut self, mut data: Bytes, out: &mut Vec<LogLine>) -> Result<(), FrameError> {
        while !data.is_empty() {
            let Framing::Mux(state) = &mut self.framing else {
                return Ok(());
            };
            match state {
                MuxState::Header { buf, have } => {
                    let n = (HEADER_LEN - *have).min(data.len());
                    buf[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = data.slice(n..);
                    if *have < HEADER_LEN {
                        continue;
                    }
                    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
                    let stream = match buf[0] {
                        0 | 1 => LogStream::Stdout,
                        2 => LogStream::Stderr,
                        3 => {
                            *state = MuxState::Daemon {
                                message: Vec::new(),
                                remaining: len,
                            };
                            if len == 0 {
                                return Err(FrameError::Daemon(String::new()));
                            }
                            continue;
                        }
                        other => return Err(FrameError::UnknownStream(other)),
                    };
                    *state = MuxState::Payload {
                        stream,
                        remaining: len,
                    };
                    self.joiner(stream).frame_start();
                    if len == 0 {
                        self.set_header();
                        self.parse_errors += self.joiner(stream).piece(Bytes::new(), true, out);
                    }
                }
                MuxState::Payload { stream, remaining } => {
                    let stream = *stream;
                    let n = (*remaining).min(data.len());
                    *remaining -= n;
                    let end = *remaining == 0;
                    let piece = data.split_to(n);
                    if end {
                        self.set_header();
                    }
                    self.parse_errors += self.joiner(stream).piece(piece, end, out);
                }
                MuxState::Daemon { message, remaining } => {
                    let n = (*remaining).min(data.len());
                    let keep = n.min(DAEMON_MESSAGE_MAX.saturating_sub(message.len()));
                    message.extend_from_slice(&data[..keep]);
                    *remaining -= n;
                    data = data.slice(n..);
                    if *remaining == 0 {
                        let text = String::from_utf8_lossy(message).into_owned();
                        return Err(FrameError::Daemon(text));
                    }
                }
            }
        }
        Ok(())
    }

    fn set_header(&mut self) {
        self.framing = Framing::Mux(MuxState::Header {
            buf: [0; HEADER_LEN],
            have: 0,
        });
    }

    fn feed_tty(&mut self, mut data: Bytes, out: &mut Vec<LogLine>) {
        while !data.is_empty() {
            let Framing::Tty { in_frame } = &mut self.framing else {
                return;
            };
            if *in_frame == 0 {
                self.stdout.frame_start();
            }
            let window = (TTY_FRAME_MAX - *in_frame).min(data.len());
            let (take, end) = match memchr::memchr(b'\n', &data[..window]) {
                Some(i) => (i + 1, true),
                None => (window, *in_frame + window == TTY_FRAME_MAX),
            };
            *in_frame = if end { 0 } else { *in_frame + take };
            let piece = data.split_to(take);
            self.parse_errors += self.stdout.piece(piece, end, out);
        }
    }
}

/// Joins the frames of one stream into lines (Promtail's `Target.process`).
struct Joiner {
    stream: LogStream,
    limit: usize,
    /// The line being joined.
    acc: BytesMut,
    /// The timestamp of the last frame added to `acc` (Promtail's `curTs`).
    cur_ts: Option<i64>,
    /// Discarding the rest of a line that was too long.
    discard: bool,
    frame: Frame,
}

/// Where the joiner is within the current frame.
enum Frame {
    /// Between frames.
    Idle,
    /// Reading the timestamp: the frame's first bytes (the space included, once found).
    Prefix {
        buf: [u8; TS_PREFIX_MAX + 1],
        len: usize,
    },
    /// Adding the payload to `acc`, which held `start` bytes before this frame.
    Keep {
        ts: i64,
        start: usize,
        last: Option<u8>,
    },
    /// Skipping the payload; `discarding`: the frame belongs to a line being discarded (its end
    /// decides whether discarding goes on).
    Skip { discarding: bool, last: Option<u8> },
}

impl Joiner {
    fn new(stream: LogStream, limit: usize) -> Self {
        Joiner {
            stream,
            limit,
            acc: BytesMut::new(),
            cur_ts: None,
            discard: false,
            frame: Frame::Idle,
        }
    }

    fn cap(&self) -> usize {
        self.limit.saturating_add(FRAME_SLACK)
    }

    fn frame_start(&mut self) {
        self.frame = Frame::Prefix {
            buf: [0; TS_PREFIX_MAX + 1],
            len: 0,
        };
    }

    /// Drops what the current, unfinished frame added.
    fn abandon_frame(&mut self) {
        if let Frame::Keep { start, .. } = self.frame {
            self.acc.truncate(start);
        }
        self.frame = Frame::Idle;
    }

    /// Emits the line being joined, if any.
    fn flush(&mut self, out: &mut Vec<LogLine>) {
        if let (false, Some(ts)) = (self.acc.is_empty(), self.cur_ts) {
            let line = self.acc.split().freeze();
            self.emit(ts, line, out);
        }
        self.acc.clear();
    }

    fn emit(&self, ts: i64, line: Bytes, out: &mut Vec<LogLine>) {
        out.push(LogLine {
            stream: self.stream,
            timestamp_ns: ts,
            line,
        });
    }

    /// The next piece of the current frame's payload; `end`: it is the frame's last. Returns
    /// the number of frames skipped for want of a timestamp (0 or 1).
    fn piece(&mut self, mut data: Bytes, end: bool, out: &mut Vec<LogLine>) -> u64 {
        let mut errors = 0;
        if let Frame::Prefix { buf, len } = &mut self.frame {
            let room = TS_PREFIX_MAX + 1 - *len;
            let window = room.min(data.len());
            let space = memchr::memchr(b' ', &data[..window]);
            let take = space.map_or(window, |i| i + 1);
            buf[*len..*len + take].copy_from_slice(&data[..take]);
            *len += take;
            data = data.slice(take..);
            let full = *len == TS_PREFIX_MAX + 1;
            if space.is_none() && !full && !end {
                return 0;
            }
            // A copy of the (small, fixed-size) buffer, so that the frame state can change.
            let (buf, len) = (*buf, *len);
            let prefix = &buf[..len];
            let ts = match space {
                Some(_) => parse_timestamp(&prefix[..len - 1]),
                None => None,
            };
            errors = self.start_payload(ts, prefix, out);
        }
        match &mut self.frame {
            Frame::Idle | Frame::Prefix { .. } => {}
            Frame::Skip { last, .. } => {
                if let Some(b) = data.last() {
                    *last = Some(*b);
                }
            }
            Frame::Keep { ts, start, last } => {
                let ts = *ts;
                // A whole one-frame line that arrived in one piece: hand it on without a copy.
                if end && *start == 0 && self.acc.is_empty() && data.last() == Some(&b'\n') {
                    self.frame = Frame::Idle;
                    let line = data.slice(..trimmed_len(&data));
                    self.emit(ts, line, out);
                    return errors;
                }
                if let Some(b) = data.last() {
                    *last = Some(*b);
                }
                let room = self.cap().saturating_sub(self.acc.len());
                self.acc.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
        if end {
            self.end_frame(out);
        }
        errors
    }

    /// The timestamp is known (or known to be missing): decide what the frame is. `prefix` is
    /// what was read of the frame so far (the space included). Returns 1 when the frame is
    /// skipped as unparsable.
    fn start_payload(&mut self, ts: Option<i64>, prefix: &[u8], out: &mut Vec<LogLine>) -> u64 {
        let (ts, continuation) = match (ts, self.cur_ts) {
            (Some(ts), _) => (ts, false),
            // Inside a joined line, a frame without a timestamp continues it, whole.
            (None, Some(cur)) if !self.acc.is_empty() => (cur, true),
            (None, _) => {
                self.frame = Frame::Skip {
                    discarding: false,
                    last: None,
                };
                return 1;
            }
        };
        if Some(ts) != self.cur_ts {
            // Another event: whatever was joined so far is a line of its own.
            self.discard = false;
            self.flush(out);
        }
        if self.discard {
            self.frame = Frame::Skip {
                discarding: true,
                last: prefix.last().copied().filter(|_| continuation),
            };
            return 0;
        }
        let start = self.acc.len();
        if continuation {
            let room = self.cap().saturating_sub(self.acc.len());
            self.acc
                .extend_from_slice(&prefix[..room.min(prefix.len())]);
        }
        self.frame = Frame::Keep {
            ts,
            start,
            last: prefix.last().copied().filter(|_| continuation),
        };
        0
    }

    fn end_frame(&mut self, out: &mut Vec<LogLine>) {
        match std::mem::replace(&mut self.frame, Frame::Idle) {
            Frame::Idle | Frame::Prefix { .. } => {}
            Frame::Skip { discarding, last } => {
                if discarding {
                    self.discard = last != Some(b'\n');
                }
            }
            Frame::Keep { ts, start, last } => {
                let eol = last == Some(b'\n');
                let keep = start + trimmed_len(&self.acc[start..]);
                self.acc.truncate(keep);
                if start == 0 && eol {
                    // One frame, one line: Promtail's fast path leaves `curTs` as it was.
                    let line = self.acc.split().freeze();
                    self.emit(ts, line, out);
                    return;
                }
                self.cur_ts = Some(ts);
                if eol || self.acc.len() > self.limit {
                    self.discard = !eol;
                    let line = self.acc.split().freeze();
                    self.emit(ts, line, out);
                }
            }
        }
    }
}

/// The length of `data` without its trailing `\r` and `\n` bytes.
fn trimmed_len(data: &[u8]) -> usize {
    data.iter()
        .rposition(|b| *b != b'\n' && *b != b'\r')
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
