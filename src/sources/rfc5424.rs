//! The RFC 5424 header grammar that the `syslog` and `heroku_drain` sources both read: a byte
//! `Cursor` whose errors name a byte offset ([`ParseError`]), the header field scan
//! (`Cursor::token`) and the RFC 3339 TIMESTAMP (`timestamp`) down to Unix nanoseconds
//! (`to_nanos`). Only the error type is public (`syslog::parse` re-exports it).
//!
//! Promtail reads these messages with two different Go libraries, and each source must keep
//! accepting and refusing exactly what its library does, so nothing here decides a dialect on
//! its own: where the libraries differ the caller says which one to copy (`TimestampRules`),
//! and what only one of them has stays with its source — go-syslog's strict PRI and VERSION,
//! field lengths, `-` as nil and structured data in `syslog::parse`; the drain scanner's
//! `<PRI>VERSION` match, verbatim fields and framing in `heroku::parse`.
//!
//! Invariants: nothing here panics or allocates, whatever the input; a function that fails
//! leaves the cursor on the byte its [`ParseError`] names, and one that succeeds leaves it on
//! the first byte it did not read, so the caller checks what must follow (a space, the end).

use std::fmt;

use chrono::NaiveDate;

/// Why input does not parse: what was expected, at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What was expected or is wrong.
    pub problem: &'static str,
    /// Byte offset in the message.
    pub at: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [col {}]", self.problem, self.at)
    }
}

impl std::error::Error for ParseError {}

/// A position in one message. The fields are open because the sources' own grammars (PRI,
/// structured data, RFC 3164) step through the same bytes with their own rules.
pub(crate) struct Cursor<'a> {
    /// The whole message: error offsets count from its start.
    pub(crate) s: &'a [u8],
    /// The next byte to read.
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `s`.
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Cursor { s, i: 0 }
    }

    /// An error at the current byte.
    pub(crate) fn err<T>(&self, problem: &'static str) -> Result<T, ParseError> {
        Err(ParseError {
            problem,
            at: self.i,
        })
    }

    /// The next byte, `None` at the end.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Steps over `b`, or fails on the byte that is there instead.
    pub(crate) fn eat(&mut self, b: u8, problem: &'static str) -> Result<(), ParseError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            self.err(problem)
        }
    }

    /// `min` to `max` ASCII digits as a number; the error is on the first missing digit.
    pub(crate) fn digits(
        &mut self,
        min: usize,
        max: usize,
        problem: &'static str,
    ) -> Result<u32, ParseError> {
        let mut v = 0u32;
        let mut n = 0;
        while n < max {
            let Some(d @ b'0'..=b'9') = self.peek() else {
                break;
            };
            // Saturating: callers read at most 4 digits, but a wrong `max` must not panic.
            v = v.saturating_mul(10).saturating_add(u32::from(d - b'0'));
            self.i += 1;
            n += 1;
        }
        if n < min {
            return self.err(problem);
        }
        Ok(v)
    }

    /// A header field as RFC 5424 delimits it: the bytes up to the next space or the end,
    /// possibly none, with the space left unread. What a field may contain (and whether `-`
    /// means nil) is the caller's rule: go-syslog and the drain scanner disagree on both.
    pub(crate) fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        let len = self.s[start..]
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(self.s.len() - start);
        self.i += len;
        &self.s[start..self.i]
    }
}

/// How one of Promtail's Go libraries reads an RFC 3339 TIMESTAMP. Both read
/// `YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)` with an upper-case `T` and `Z`, and refuse
/// a date or time that does not exist; they differ only in what these fields say.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimestampRules {
    /// Fewest hour digits: go-syslog wants 2, Go's `time.Parse` (layout `15`) takes 1 or 2.
    pub(crate) hour_min_digits: usize,
    /// Most fraction digits before the timestamp is refused, or `None` for any number of
    /// which the first nine count (Go's `time.Parse`).
    pub(crate) max_fraction_digits: Option<u32>,
    /// Whether `,` may start the fraction as well as `.` (Go's `time.Parse` takes both).
    pub(crate) comma_fraction: bool,
    /// Largest offset hours and minutes accepted. Go's `time.Parse` only refuses above 24 and
    /// 60; go-syslog keeps to a real clock.
    pub(crate) max_offset: (u32, u32),
    /// The problem every error names (one message for the whole field, as go-syslog says it).
    pub(crate) problem: &'static str,
}

/// go-syslog v4's RFC5424 TIMESTAMP (Promtail's `syslog` target): RFC 3339 as RFC 5424 §6.2.3
/// restricts it, at most microseconds (`RFC3339MICRO`). Its RFC 3164 parser reads RFC 3339
/// timestamps with the same rules.
pub(crate) const GO_SYSLOG: TimestampRules = TimestampRules {
    hour_min_digits: 2,
    max_fraction_digits: Some(6),
    comma_fraction: false,
    max_offset: (23, 59),
    problem: "expecting a RFC3339MICRO timestamp or a nil value",
};

/// Go's `time.Parse("2006-01-02T15:04:05.999999Z07:00", …)`, which heroku/x's drain scanner
/// (Promtail's `heroku_drain` target) applies to the TIMESTAMP field.
pub(crate) const GO_TIME_PARSE: TimestampRules = TimestampRules {
    hour_min_digits: 1,
    max_fraction_digits: None,
    comma_fraction: true,
    max_offset: (24, 60),
    problem: "expecting an RFC 3339 timestamp",
};

/// Reads a TIMESTAMP (not the nil `-`, which only go-syslog allows) as Unix nanoseconds and
/// stops after its offset. A timestamp outside `i64` nanoseconds (before 1677 or after 2262)
/// is refused: neither source can carry it.
pub(crate) fn timestamp(c: &mut Cursor<'_>, rules: &TimestampRules) -> Result<i64, ParseError> {
    let bad = rules.problem;
    let year = c.digits(4, 4, bad)?;
    c.eat(b'-', bad)?;
    let month = c.digits(2, 2, bad)?;
    c.eat(b'-', bad)?;
    let day = c.digits(2, 2, bad)?;
    c.eat(b'T', bad)?;
    let h = c.digits(rules.hour_min_digits, 2, bad)?;
    c.eat(b':', bad)?;
    let m = c.digits(2, 2, bad)?;
    c.eat(b':', bad)?;
    let s = c.digits(2, 2, bad)?;
    let mut nanos = 0u32;
    if c.peek() == Some(b'.') || (rules.comma_fraction && c.peek() == Some(b',')) {
        c.i += 1;
        let mut n = 0u32;
        while let Some(d @ b'0'..=b'9') = c.peek() {
            if Some(n) == rules.max_fraction_digits {
                return c.err(bad);
            }
            // Go drops the digits past nanoseconds instead of rounding.
            if n < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            n += 1;
            c.i += 1;
        }
        // A separator without digits is no fraction, and then no offset either.
        if n == 0 {
            return c.err(bad);
        }
        nanos *= 10u32.pow(9 - n.min(9));
    }
    let offset = match c.peek() {
        Some(b'Z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2, 2, bad)?;
            c.eat(b':', bad)?;
            let om = c.digits(2, 2, bad)?;
            if oh > rules.max_offset.0 || om > rules.max_offset.1 {
                return c.err(bad);
            }
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -o } else { o }
        }
        _ => return c.err(bad),
    };
    if h > 23 || m > 59 || s > 59 {
        return c.err(bad);
    }
    let at = c.i;
    i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
        .and_then(|date| to_nanos(date, h, m, s, nanos, offset))
        .ok_or(ParseError { problem: bad, at })
}

/// Nanoseconds since the epoch of a civil time and its offset east of UTC in seconds; `None`
/// for a time chrono cannot hold or `i64` nanoseconds cannot count.
pub(crate) fn to_nanos(
    date: NaiveDate,
    h: u32,
    m: u32,
    s: u32,
    nanos: u32,
    offset_secs: i64,
) -> Option<i64> {
    let t = date.and_hms_nano_opt(h, m, s, nanos)?.and_utc();
    let secs = t.timestamp().checked_sub(offset_secs)?;
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

#[cfg(test)]
mod tests {
    //! Table tests with headers as rsyslog, syslog-ng and Heroku's logplex write them, read
    //! under both sets of rules where they differ.

    use super::*;

    /// The rest of the message after the header, or why the header stopped.
    type Rest<'a> = Result<&'a [u8], ParseError>;

    /// A message, its header fields and its rest.
    type HeaderCase = (&'static [u8], &'static [&'static [u8]], Rest<'static>);

    /// Nanoseconds, or the offset of the error.
    type Want = Result<i64, usize>;

    /// The six header fields as both sources cut them (token, then its space), and the rest.
    fn header(line: &[u8]) -> (Vec<&[u8]>, Rest<'_>) {
        let mut c = Cursor::new(line);
        let mut fields = Vec::new();
        for _ in 0..6 {
            fields.push(c.token());
            if let Err(e) = c.eat(b' ', "expecting a space after a header field") {
                return (fields, Err(e));
            }
        }
        (fields, Ok(&line[c.i..]))
    }

    #[test]
    fn header_fields_end_at_single_spaces() {
        let cases: [HeaderCase; 6] = [
            // RFC 5424 §6.5 example 1: nil PROCID and STRUCTURED-DATA stay `-` here.
            (
                b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
                &[
                    b"<34>1",
                    b"2003-10-11T22:14:15.003Z",
                    b"mymachine.example.com",
                    b"su",
                    b"-",
                    b"ID47",
                ],
                Ok(b"- 'su root' failed"),
            ),
            // Heroku's router: the structured data, its escaped quote and `]`, and the
            // trailing newline are all after the header.
            (
                b"<158>1 2012-11-30T06:45:29.123456+00:00 host heroku router - [meta x=\"a \\\"b\\\" \\]\"] at=info status=200\n",
                &[
                    b"<158>1",
                    b"2012-11-30T06:45:29.123456+00:00",
                    b"host",
                    b"heroku",
                    b"router",
                    b"-",
                ],
                Ok(b"[meta x=\"a \\\"b\\\" \\]\"] at=info status=200\n"),
            ),
            // Two spaces make an empty field; a space at the end an empty MSG.
            (
                b"<1>1 2020-01-01T00:00:00Z  a p i ",
                &[b"<1>1", b"2020-01-01T00:00:00Z", b"", b"a", b"p", b"i"],
                Ok(b""),
            ),
            // Any byte is part of a field; only the space ends it (a newline does not).
            (
                b"<13>1 - h\xc3\xa9\nst app\x7f 42 - msg",
                &[b"<13>1", b"-", b"h\xc3\xa9\nst", b"app\x7f", b"42", b"-"],
                Ok(b"msg"),
            ),
            // The message ends inside the header: the error is where the space should be.
            (
                b"<1>1 2020-01-01T00:00:00Z h a",
                &[b"<1>1", b"2020-01-01T00:00:00Z", b"h", b"a"],
                Err(ParseError {
                    problem: "expecting a space after a header field",
                    at: 29,
                }),
            ),
            (
                b"",
                &[b""],
                Err(ParseError {
                    problem: "expecting a space after a header field",
                    at: 0,
                }),
            ),
        ];
        for (line, fields, rest) in cases {
            let shown = String::from_utf8_lossy(line);
            assert_eq!(header(line), (fields.to_vec(), rest), "{shown}");
        }
    }

    #[test]
    fn repeated_messages_read_the_same() {
        // A logplex body repeats the same message; each frame gets its own cursor, so offsets
        // count from the message's start however far into the body it is.
        let msg = b"<190>1 2019-07-20T17:50:10.879238Z shuttle app web.1 - State changed\n";
        let body = msg.repeat(3);
        for k in 0..3 {
            let frame = &body[k * msg.len()..(k + 1) * msg.len()];
            let (fields, rest) = header(frame);
            assert_eq!(fields[2], b"shuttle");
            assert_eq!(rest, Ok(&b"State changed\n"[..]));
            let mut c = Cursor::new(frame);
            c.token();
            c.eat(b' ', "space").ok();
            assert_eq!(
                timestamp(&mut c, &GO_TIME_PARSE),
                Ok(1_563_645_010_879_238_000)
            );
            assert_eq!(c.i, 34, "the cursor stops on the space after the timestamp");
        }
    }

    #[test]
    fn timestamps_under_both_rules() {
        const SYSLOG_BAD: &str = "expecting a RFC3339MICRO timestamp or a nil value";
        const GO_BAD: &str = "expecting an RFC 3339 timestamp";
        // (input, go-syslog, Go's time.Parse): Ok(nanoseconds) or Err(offset of the error).
        let cases: [(&str, Want, Want); 22] = [
            // RFC 5424 §6.5's examples.
            (
                "2003-10-11T22:14:15.003Z",
                Ok(1_065_910_455_003_000_000),
                Ok(1_065_910_455_003_000_000),
            ),
            (
                "2003-08-24T05:14:15.000003-07:00",
                Ok(1_061_727_255_000_003_000),
                Ok(1_061_727_255_000_003_000),
            ),
            // Heroku's router.
            (
                "2012-11-30T06:45:29.123456+00:00",
                Ok(1_354_257_929_123_456_000),
                Ok(1_354_257_929_123_456_000),
            ),
            (
                "2024-02-29T00:00:00Z",
                Ok(1_709_164_800_000_000_000),
                Ok(1_709_164_800_000_000_000),
            ),
            ("1969-12-31T23:59:59.5Z", Ok(-500_000_000), Ok(-500_000_000)),
            // Where the libraries differ: a one-digit hour,
            ("1970-01-01T0:00:01Z", Err(12), Ok(1_000_000_000)),
            // more than microseconds (Go keeps nanoseconds and drops the rest),
            ("1970-01-01T00:00:00.1234567Z", Err(26), Ok(123_456_700)),
            ("1970-01-01T00:00:00.1234567891Z", Err(26), Ok(123_456_789)),
            // a comma before the fraction,
            ("1970-01-01T00:00:00,5Z", Err(19), Ok(500_000_000)),
            // an offset of 24 hours or 60 minutes.
            ("1970-01-02T00:00:00+24:00", Err(25), Ok(0)),
            ("1970-01-01T01:00:00+00:60", Err(25), Ok(0)),
            // Refused by both.
            ("1970-01-01T00:00:00+25:00", Err(25), Err(25)),
            ("1970-01-01T00:00:00.Z", Err(20), Err(20)),
            ("2023-02-29T00:00:00Z", Err(20), Err(20)),
            ("2020-01-01T24:00:00Z", Err(20), Err(20)),
            ("2020-01-01T00:00:60Z", Err(20), Err(20)),
            ("2020-01-01T00:00:00", Err(19), Err(19)),
            ("2020-01-01T00:00:00z", Err(19), Err(19)),
            ("2020-01-01 00:00:00Z", Err(10), Err(10)),
            ("2020-1-01T00:00:00Z", Err(6), Err(6)),
            // Outside i64 nanoseconds.
            ("1677-01-01T00:00:00Z", Err(20), Err(20)),
            ("9999-12-31T23:59:59Z", Err(20), Err(20)),
        ];
        for (input, syslog, go) in cases {
            for (rules, want, bad) in [
                (&GO_SYSLOG, syslog, SYSLOG_BAD),
                (&GO_TIME_PARSE, go, GO_BAD),
            ] {
                let mut c = Cursor::new(input.as_bytes());
                let got = timestamp(&mut c, rules);
                let want = want.map_err(|at| ParseError { problem: bad, at });
                assert_eq!(got, want, "{input} ({bad})");
                if got.is_ok() {
                    assert_eq!(c.i, input.len(), "{input}: stops after the offset");
                }
            }
        }
    }

    #[test]
    fn timestamp_stops_at_its_end() {
        // go-syslog's RFC 3164 reader goes on with the hostname; the drain checks the end.
        let line = b"2026-12-07T07:00:00.5+00:00 host tag: hi";
        let mut c = Cursor::new(line);
        assert_eq!(timestamp(&mut c, &GO_SYSLOG), Ok(1_796_626_800_500_000_000));
        assert_eq!(&line[c.i..], b" host tag: hi");
    }

    #[test]
    fn errors_say_what_and_where() {
        let mut c = Cursor::new(b"1970-01-01T0:00:01Z");
        let e = timestamp(&mut c, &GO_SYSLOG).unwrap_err();
        assert_eq!(
            e.to_string(),
            "expecting a RFC3339MICRO timestamp or a nil value [col 12]"
        );
        let mut c = Cursor::new(b"<13");
        c.i = 1;
        assert_eq!(c.digits(1, 3, "a priority"), Ok(13));
        assert_eq!(
            c.eat(b'>', "expecting '>'").map_err(|e| e.to_string()),
            Err("expecting '>' [col 3]".to_owned())
        );
    }

    #[test]
    fn digits_read_min_to_max() {
        for (input, min, max, want) in [
            (&b"7:"[..], 1, 2, Ok((7, 1))),
            (b"07:", 2, 2, Ok((7, 2))),
            (b"7:", 2, 2, Err(1)),
            (b"20261", 4, 4, Ok((2026, 4))),
            (b"", 1, 2, Err(0)),
            (b"x", 0, 2, Ok((0, 0))),
            (b"99999999999999999999", 1, 20, Ok((u32::MAX, 20))),
        ] {
            let mut c = Cursor::new(input);
            let got = c.digits(min, max, "digits").map(|v| (v, c.i));
            assert_eq!(
                got,
                want.map_err(|at| ParseError {
                    problem: "digits",
                    at
                })
            );
        }
    }

    #[test]
    fn civil_time_to_nanos() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(to_nanos(date(1970, 1, 1), 0, 0, 0, 0, 0), Some(0));
        assert_eq!(to_nanos(date(1970, 1, 1), 1, 0, 0, 5, 3600), Some(5));
        assert_eq!(
            to_nanos(date(2262, 4, 11), 23, 47, 16, 854_775_807, 0),
            Some(i64::MAX)
        );
        assert_eq!(
            to_nanos(date(2262, 4, 11), 23, 47, 16, 854_775_808, 0),
            None
        );
        // The seconds are scaled before the fraction is added, so the part of i64's first
        // second that precedes a whole second is refused (as both sources always did).
        assert_eq!(to_nanos(date(1677, 9, 21), 0, 12, 43, 145_224_192, 0), None);
        assert_eq!(
            to_nanos(date(1677, 9, 21), 0, 12, 44, 0, 0),
            Some(-9_223_372_036_000_000_000)
        );
        assert_eq!(to_nanos(date(2020, 1, 1), 24, 0, 0, 0, 0), None);
    }
}
