//! The body of a Heroku drain request: RFC 5424 syslog messages in octet-counted framing
//! (logplex), read as Promtail reads them (its `heroku/x` `logplex/encoding` drain scanner).
//!
//! Framing: `<length> <message>` repeated, with `<length>` the decimal byte count of the
//! message; a frame (length, space and message) longer than 10,240 bytes is an error, as in
//! the scanner. Each message is `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID MSG`:
//! every field up to MSGID is ended by one space, the rest is the line as it is (structured
//! data included, a trailing newline kept: the drain scanner does not look at it). The
//! timestamp is RFC 3339 (`Z` or `±hh:mm`, an optional fraction of any length).
//!
//! This is deliberately not a strict RFC 5424 parser: it accepts and refuses what Promtail's
//! does. The header field scan and the timestamp are the RFC 5424 pieces it shares with the
//! `syslog` source ([`crate::sources::rfc5424`], with Go's `time.Parse` rules); the framing,
//! the `<PRI>VERSION` match and the verbatim fields are the drain scanner's own and stay here.
//! Invariants: nothing here panics or allocates more than the body's size; the messages
//! before the first error are returned with the error.

use bytes::Bytes;

use crate::sources::rfc5424::{Cursor, GO_TIME_PARSE, timestamp};

/// Longest frame, length prefix included (the drain scanner's buffer).
pub const MAX_FRAME: usize = 10_240;

/// One drain message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainMessage {
    /// TIMESTAMP, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub application: String,
    /// PROCID.
    pub process: String,
    /// MSGID.
    pub id: String,
    /// The rest: the line.
    pub message: Bytes,
}

/// Why a body could not be read (to its end).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    /// The framing is broken.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// A frame is longer than [`MAX_FRAME`].
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    /// A field is missing (the message ended before its space).
    #[error("message ends before its {0} field")]
    Missing(&'static str),
    /// The `<PRI>VERSION` field is malformed.
    #[error("invalid pri-val")]
    PriVal,
    /// The timestamp is malformed.
    #[error("invalid timestamp {0:?}")]
    Timestamp(String),
}

/// Reads every frame of `body`: the messages up to the first error, and that error.
pub fn parse_body(body: &Bytes) -> (Vec<DrainMessage>, Option<DrainError>) {
    let mut out = Vec::new();
    let mut rest = body.clone();
    while !rest.is_empty() {
        let frame = match next_frame(&rest) {
            Ok((frame, used)) => {
                let f = rest.slice(frame);
                rest = rest.slice(used..);
                f
            }
            Err(e) => return (out, Some(e)),
        };
        match parse_message(&frame) {
            Ok(m) => out.push(m),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// The range of the next message in `data` and the bytes its frame takes.
fn next_frame(data: &[u8]) -> Result<(std::ops::Range<usize>, usize), DrainError> {
    let window = &data[..data.len().min(MAX_FRAME)];
    let Some(sp) = window.iter().position(|&b| b == b' ') else {
        return Err(if data.len() >= MAX_FRAME {
            DrainError::TooLong
        } else {
            DrainError::BadFrame("missing frame length".into())
        });
    };
    if sp == 0 {
        return Err(DrainError::BadFrame("invalid frame length".into()));
    }
    let len: usize = std::str::from_utf8(&data[..sp])
        .ok()
        .map(|s| s.strip_prefix('+').unwrap_or(s))
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DrainError::BadFrame("couldn't parse frame length".into()))?;
    let end = sp
        .checked_add(1)
        .and_then(|s| s.checked_add(len))
        .ok_or(DrainError::TooLong)?;
    if end > MAX_FRAME {
        return Err(DrainError::TooLong);
    }
    if end > data.len() {
        return Err(DrainError::BadFrame(format!(
            "message boundary ({end}) not respected length ({})",
            data.len()
        )));
    }
    Ok((sp + 1..end, end))
}

/// Reads one message (see the module doc).
pub fn parse_message(frame: &Bytes) -> Result<DrainMessage, DrainError> {
    let mut c = Cursor::new(frame);
    // The drain scanner cuts the header at single spaces before it looks at any field, so a
    // field may be empty or hold any byte, `-` stays `-` (no nil), and a field without its
    // space is missing, whatever it holds.
    let mut field = |name: &'static str| -> Result<&[u8], DrainError> {
        let f = c.token();
        c.eat(b' ', name).map_err(|_| DrainError::Missing(name))?;
        Ok(f)
    };
    let pri = field("PRI")?;
    check_pri_version(pri)?;
    let ts = field("TIMESTAMP")?;
    let timestamp_ns = parse_timestamp(ts)
        .ok_or_else(|| DrainError::Timestamp(String::from_utf8_lossy(ts).into_owned()))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let hostname = text(field("HOSTNAME")?);
    let application = text(field("APP-NAME")?);
    let process = text(field("PROCID")?);
    let id = text(field("MSGID")?);
    // The rest, structured data and trailing newline included: the scanner never parses it.
    Ok(DrainMessage {
        timestamp_ns,
        hostname,
        application,
        process,
        id,
        message: frame.slice(c.i..),
    })
}

/// The scanner's check of `<PRI>VERSION`: exactly one match of `<(\d+)>(\d)` in the field,
/// with a priority that fits a byte.
fn check_pri_version(field: &[u8]) -> Result<(), DrainError> {
    let mut matches = 0;
    let mut priority = None;
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'<' {
            let digits = field[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let close = i + 1 + digits;
            if digits > 0
                && field.get(close) == Some(&b'>')
                && field.get(close + 1).is_some_and(u8::is_ascii_digit)
            {
                matches += 1;
                priority = std::str::from_utf8(&field[i + 1..close])
                    .ok()
                    .and_then(|s| s.parse::<u8>().ok());
                i = close + 2;
                continue;
            }
        }
        i += 1;
    }
    if matches != 1 || priority.is_none() {
        return Err(DrainError::PriVal);
    }
    Ok(())
}

/// Go's `time.Parse("2006-01-02T15:04:05.999999Z07:00", s)` as Unix nanoseconds: the whole
/// field must be the timestamp, where go-syslog would stop at its end.
pub fn parse_timestamp(s: &[u8]) -> Option<i64> {
    let mut c = Cursor::new(s);
    let t = timestamp(&mut c, &GO_TIME_PARSE).ok()?;
    (c.i == s.len()).then_some(t)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frame(msg: &str) -> String {
        format!("{} {msg}", msg.len())
    }

    const ROUTER: &str = "<158>1 2012-11-30T06:45:29.123456+00:00 host heroku router - at=info method=GET path=\"/\" status=200\n";
    const WEB: &str =
        "<190>1 2019-07-20T17:50:10.879238Z shuttle app web.1 - State changed from starting to up";

    #[test]
    fn frames_and_fields() {
        let body = Bytes::from(format!("{}{}", frame(ROUTER), frame(WEB)));
        let (msgs, err) = parse_body(&body);
        assert_eq!(err, None);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].hostname, "host");
        assert_eq!(msgs[0].application, "heroku");
        assert_eq!(msgs[0].process, "router");
        assert_eq!(msgs[0].id, "-");
        assert_eq!(
            &msgs[0].message[..],
            b"at=info method=GET path=\"/\" status=200\n"
        );
        assert_eq!(msgs[0].timestamp_ns, 1_354_257_929_123_456_000);
        assert_eq!(msgs[1].process, "web.1");
        assert_eq!(&msgs[1].message[..], b"State changed from starting to up");
        assert_eq!(msgs[1].timestamp_ns, 1_563_645_010_879_238_000);
    }

    #[test]
    fn errors_keep_the_messages_before_them() {
        // Raw tails, then messages framed with their right length.
        let framed = |m: &str| frame(m);
        for (tail, want) in [
            ("10 ---".to_string(), "bad frame"),
            (" 65 x".to_string(), "invalid frame length"),
            ("xx".to_string(), "missing frame length"),
            ("-5 abc".to_string(), "couldn't parse"),
            (framed("<1>1"), "message ends before its PRI"),
            (framed("<1>1 2020-01-01T00:00:00Z h a"), "APP-NAME"),
            (framed("1 2020-01-01T00:00:00Z h a p id m"), "pri-val"),
            (
                framed("<1>1<2>1 2020-01-01T00:00:00Z h a p id m"),
                "pri-val",
            ),
            (framed("<999>1 2020-01-01T00:00:00Z h a p id m"), "pri-val"),
            (
                framed("<1>1 2020-02-30T00:00:00Z h a p i m"),
                "invalid timestamp",
            ),
        ] {
            let body = Bytes::from(format!("{}{tail}", frame(WEB)));
            let (msgs, err) = parse_body(&body);
            assert_eq!(msgs.len(), 1, "{tail}");
            let err = err.unwrap().to_string();
            assert!(err.contains(want), "{tail}: {err}");
        }
    }

    #[test]
    fn long_frames_are_refused() {
        let long = format!(
            "<1>1 2020-01-01T00:00:00Z h a p i {}",
            "x".repeat(MAX_FRAME)
        );
        let (msgs, err) = parse_body(&Bytes::from(frame(&long)));
        assert!(msgs.is_empty());
        assert_eq!(err, Some(DrainError::TooLong));
        let (_, err) = parse_body(&Bytes::from("1".repeat(MAX_FRAME + 5)));
        assert_eq!(err, Some(DrainError::TooLong));
    }

    #[test]
    fn empty_fields_and_empty_message() {
        let (msgs, err) = parse_body(&Bytes::from(frame("<1>1 2020-01-01T00:00:00Z  a p i ")));
        assert_eq!(err, None);
        assert_eq!(msgs[0].hostname, "");
        assert!(msgs[0].message.is_empty());
    }

    #[test]
    fn nil_fields_and_structured_data_stay_as_sent() {
        // The drain scanner knows no nil and parses no structured data: both are text.
        let msg = r#"<134>1 2019-07-20T17:50:10.879238+02:00 - app - - [origin ip="10.0.0.2" note="a \"b\" \]"] up"#;
        let (msgs, err) = parse_body(&Bytes::from(format!("{}{}", frame(msg), frame(msg))));
        assert_eq!(err, None);
        assert_eq!(msgs.len(), 2);
        for m in msgs {
            assert_eq!(
                (m.hostname.as_str(), m.process.as_str(), m.id.as_str()),
                ("-", "-", "-")
            );
            assert_eq!(
                &m.message[..],
                br#"[origin ip="10.0.0.2" note="a \"b\" \]"] up"#
            );
            assert_eq!(
                m.timestamp_ns,
                1_563_645_010_879_238_000 - 7_200_000_000_000
            );
        }
    }

    #[test]
    fn timestamps_like_go() {
        let ts = |s: &str| parse_timestamp(s.as_bytes());
        assert_eq!(ts("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ts("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(ts("1970-01-01T0:00:01Z"), Some(1_000_000_000));
        assert_eq!(ts("1970-01-01T00:00:00.1234567891Z"), Some(123_456_789));
        assert_eq!(ts("1970-01-01T00:00:00,5Z"), Some(500_000_000));
        assert_eq!(ts("2024-02-29T00:00:00Z"), Some(1_709_164_800_000_000_000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2020-01-01T24:00:00Z",
            "2020-01-01T00:00:60Z",
            "2020-01-01T00:00:00",
            "2020-01-01T00:00:00z",
            "2020-01-01 00:00:00Z",
            "2020-01-01T00:00:00.Z",
            "2020-1-01T00:00:00Z",
            "2020-01-01T00:00:00Zx",
        ] {
            assert_eq!(ts(bad), None, "{bad}");
        }
    }
}
