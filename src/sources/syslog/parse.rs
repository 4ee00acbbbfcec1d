//! Syslog message parsers: RFC 5424 and RFC 3164 (BSD), as Promtail's `syslog_format` picks.
//!
//! Both take one framed message (no framing bytes, no trailing newline) and return its parts
//! as slices of the input, or a [`ParseError`] naming what is wrong and where. They never
//! panic and never allocate for a message without structured data.
//!
//! Behaviour, from Promtail 3.4 (go-syslog v4 in best-effort mode, where any error drops the
//! message and counts it):
//! - RFC 5424 is strict about the header (PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID,
//!   MSGID, STRUCTURED-DATA with the RFC's field lengths); `-` is a nil field. A message with
//!   no MSG part (or an empty one) parses, with `message: None` (Promtail counts those as
//!   empty messages).
//! - RFC 3164 wants `<PRI>`, a `Mmm dd hh:mm:ss` (or RFC 3339) timestamp and a hostname; the
//!   `TAG[PID]:` is optional (without it the rest is the message). The year, which RFC 3164
//!   timestamps lack, is the current one (the previous one for a date more than a month
//!   ahead); times are UTC.
//!
//! The cursor, the header field scan and the RFC 3339 timestamp are the RFC 5424 pieces this
//! shares with the Heroku drain ([`crate::sources::rfc5424`], with go-syslog's timestamp
//! rules); what is go-syslog's alone is here.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

pub use crate::sources::rfc5424::ParseError;
use crate::sources::rfc5424::{Cursor, GO_SYSLOG, timestamp, to_nanos};

/// Facility keywords by code (go-syslog's `FacilityLevel`: the syslog(3) keyword, or the
/// RFC's description where syslog(3) has none).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "clock daemon",
    "authpriv",
    "ftp",
    "NTP subsystem",
    "log audit",
    "log alert",
    "cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// One parsed message; text fields borrow from the input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message<'a> {
    /// PRI / 8.
    pub facility: u8,
    /// PRI % 8.
    pub severity: u8,
    /// The message's own time, nanoseconds since the Unix epoch; `None` for `-`.
    pub timestamp: Option<i64>,
    /// HOSTNAME.
    pub hostname: Option<&'a str>,
    /// APP-NAME (RFC 3164: the TAG).
    pub app_name: Option<&'a str>,
    /// PROCID (RFC 3164: the PID in brackets after the TAG).
    pub proc_id: Option<&'a str>,
    /// MSGID (RFC 5424 only).
    pub msg_id: Option<&'a str>,
    /// STRUCTURED-DATA: (SD-ID, [(PARAM-NAME, unescaped value)]), in message order.
    pub structured_data: Vec<(&'a str, Vec<(&'a str, String)>)>,
    /// MSG, raw bytes (may be any encoding); `None` when absent or empty.
    pub message: Option<&'a [u8]>,
    /// Where MSG starts in the input (its length when there is none).
    pub message_start: usize,
}

impl Message<'_> {
    /// The severity keyword (`informational`, ...).
    pub fn severity_keyword(&self) -> &'static str {
        crate::sources::SEVERITY_KEYWORDS[usize::from(self.severity & 7)]
    }

    /// The facility keyword (`daemon`, `local0`, ...).
    pub fn facility_keyword(&self) -> &'static str {
        FACILITIES
            .get(usize::from(self.facility))
            .copied()
            .unwrap_or("unknown")
    }
}

/// A header field as go-syslog reads it: 1 to `max` printable US-ASCII bytes (33..=126) up to
/// a space or the end. The error is on the first byte past the limit or not printable, where
/// go-syslog's state machine stops.
fn field<'a>(c: &mut Cursor<'a>, max: usize, problem: &'static str) -> Result<&'a str, ParseError> {
    let start = c.i;
    let token = c.token();
    let bad = token
        .iter()
        .position(|b| !(33..=126).contains(b))
        .map_or(max, |k| k.min(max))
        .min(token.len());
    if bad < token.len() || token.is_empty() {
        return Err(ParseError {
            problem,
            at: start + bad,
        });
    }
    // Printable ASCII only, so this cannot fail.
    std::str::from_utf8(token).or_else(|_| c.err(problem))
}

/// A header field where `-` is nil (go-syslog's `NILVALUE`).
fn nil_field<'a>(
    c: &mut Cursor<'a>,
    max: usize,
    problem: &'static str,
) -> Result<Option<&'a str>, ParseError> {
    let f = field(c, max, problem)?;
    Ok((f != "-").then_some(f))
}

/// `<PRI>`: 1 to 3 digits, no leading zero, at most 191.
fn pri(c: &mut Cursor<'_>) -> Result<(u8, u8), ParseError> {
    c.eat(b'<', "expecting a priority value within angle brackets")?;
    let start = c.i;
    let mut v = 0u32;
    while let Some(d @ b'0'..=b'9') = c.peek() {
        if c.i - start == 3 || (c.i > start && v == 0) {
            return c.err("expecting a priority value in the range 1-191 or equal to 0");
        }
        v = v * 10 + u32::from(d - b'0');
        c.i += 1;
    }
    if c.i == start || v > 191 {
        return c.err("expecting a priority value in the range 1-191 or equal to 0");
    }
    c.eat(b'>', "expecting a priority value within angle brackets")?;
    // v <= 191, so both fit.
    Ok(((v / 8) as u8, (v % 8) as u8))
}

/// SD-NAME: 1 to 32 printable ASCII bytes other than `=`, space, `]` and `"`.
fn sd_name<'a>(c: &mut Cursor<'a>, problem: &'static str) -> Result<&'a str, ParseError> {
    let start = c.i;
    while let Some(b) = c.peek() {
        if !(33..=126).contains(&b) || matches!(b, b'=' | b']' | b'"') {
            break;
        }
        if c.i - start == 32 {
            return c.err(problem);
        }
        c.i += 1;
    }
    if c.i == start {
        return c.err(problem);
    }
    std::str::from_utf8(&c.s[start..c.i]).or_else(|_| c.err(problem))
}

/// STRUCTURED-DATA: `-` or one or more `[SD-ID *(SP PARAM-NAME="value")]`.
#[allow(clippy::type_complexity)]
fn structured_data<'a>(
    c: &mut Cursor<'a>,
) -> Result<Vec<(&'a str, Vec<(&'a str, String)>)>, ParseError> {
    if c.peek() == Some(b'-') {
        c.i += 1;
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    if c.peek() != Some(b'[') {
        return c.err("expecting a structured data section containing one or more elements (`[id( key=\"value\")*]+`) or a nil value");
    }
    while c.peek() == Some(b'[') {
        c.i += 1;
        let id = sd_name(c, "expecting a structured data element id")?;
        let mut params = Vec::new();
        while c.peek() == Some(b' ') {
            c.i += 1;
            let name = sd_name(c, "expecting a structured data parameter name")?;
            c.eat(
                b'=',
                "expecting a '=' after a structured data parameter name",
            )?;
            c.eat(
                b'"',
                "expecting a structured data parameter value within double quotes",
            )?;
            let mut value = Vec::new();
            loop {
                match c.peek() {
                    None => return c.err("unterminated structured data parameter value"),
                    Some(b'"') => {
                        c.i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        // `\"`, `\\` and `\]` are escapes; any other backslash is literal.
                        match c.s.get(c.i + 1) {
                            Some(&e @ (b'"' | b'\\' | b']')) => {
                                value.push(e);
                                c.i += 2;
                            }
                            _ => {
                                value.push(b'\\');
                                c.i += 1;
                            }
                        }
                    }
                    // An unescaped `]` is not allowed inside a value.
                    Some(b']') => {
                        return c.err("expecting an escaped ']' inside a parameter value");
                    }
                    Some(b) => {
                        value.push(b);
                        c.i += 1;
                    }
                }
            }
            let value = String::from_utf8(value)
                .or_else(|_| c.err("expecting a structured data parameter value in UTF-8"))?;
            params.push((name, value));
        }
        c.eat(b']', "expecting a ']' closing the structured data element")?;
        out.push((id, params));
    }
    Ok(out)
}

/// Parses one RFC 5424 message.
pub fn parse_rfc5424(input: &[u8]) -> Result<Message<'_>, ParseError> {
    let mut c = Cursor::new(input);
    let (facility, severity) = pri(&mut c)?;
    // VERSION: a non-zero digit and up to two more.
    let start = c.i;
    match c.peek() {
        Some(b'1'..=b'9') => c.i += 1,
        _ => return c.err("expecting a version value in the range 1-999"),
    }
    while let Some(b'0'..=b'9') = c.peek() {
        if c.i - start == 3 {
            return c.err("expecting a version value in the range 1-999");
        }
        c.i += 1;
    }
    c.eat(b' ', "parsing error")?;
    let timestamp = if c.peek() == Some(b'-') {
        c.i += 1;
        None
    } else {
        Some(timestamp(&mut c, &GO_SYSLOG)?)
    };
    c.eat(b' ', "parsing error")?;
    let hostname = nil_field(
        &mut c,
        255,
        "expecting an hostname (from 1 to max 255 US-ASCII characters) or a nil value",
    )?;
    c.eat(b' ', "parsing error")?;
    let app_name = nil_field(
        &mut c,
        48,
        "expecting an app-name (from 1 to max 48 US-ASCII characters) or a nil value",
    )?;
    c.eat(b' ', "parsing error")?;
    let proc_id = nil_field(
        &mut c,
        128,
        "expecting a procid (from 1 to max 128 US-ASCII characters) or a nil value",
    )?;
    c.eat(b' ', "parsing error")?;
    let msg_id = nil_field(
        &mut c,
        32,
        "expecting a msgid (from 1 to max 32 US-ASCII characters) or a nil value",
    )?;
    c.eat(b' ', "parsing error")?;
    let structured_data = structured_data(&mut c)?;
    let message = match c.peek() {
        None => None,
        Some(b' ') => {
            c.i += 1;
            Some(&input[c.i..]).filter(|m| !m.is_empty())
        }
        Some(_) => return c.err("expecting a space or the end after the structured data"),
    };
    Ok(Message {
        facility,
        severity,
        timestamp,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        message,
        message_start: c.i,
    })
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Mmm dd hh:mm:ss` (day space-padded or zero-padded), in the year that puts it closest
/// before `now` (at most a month ahead), UTC.
fn bsd_timestamp(c: &mut Cursor<'_>, now: DateTime<Utc>) -> Result<i64, ParseError> {
    const BAD: &str = "expecting a Stamp timestamp";
    let Some(month) =
        c.s.get(c.i..c.i + 3)
            .and_then(|m| MONTHS.iter().position(|n| &n[..] == m))
    else {
        return c.err(BAD);
    };
    c.i += 3;
    c.eat(b' ', BAD)?;
    if c.peek() == Some(b' ') {
        c.i += 1;
    }
    let start = c.i;
    let mut day = 0u32;
    while let Some(d @ b'0'..=b'9') = c.peek() {
        if c.i - start == 2 {
            return c.err(BAD);
        }
        day = day * 10 + u32::from(d - b'0');
        c.i += 1;
    }
    if c.i == start {
        return c.err(BAD);
    }
    c.eat(b' ', BAD)?;
    let h = c.digits(2, 2, BAD)?;
    c.eat(b':', BAD)?;
    let m = c.digits(2, 2, BAD)?;
    c.eat(b':', BAD)?;
    let s = c.digits(2, 2, BAD)?;
    if h > 23 || m > 59 || s > 59 {
        return c.err(BAD);
    }
    let month = month as u32 + 1;
    let this_year = now.year();
    let at = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, day).and_then(|d| to_nanos(d, h, m, s, 0, 0))
    };
    let month_ahead = now
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
        .saturating_add(31 * 86_400 * 1_000_000_000);
    match at(this_year) {
        Some(t) if t <= month_ahead => Ok(t),
        // December's messages read in January, or Feb 29 of a leap year.
        _ => at(this_year - 1).ok_or(ParseError {
            problem: BAD,
            at: c.i,
        }),
    }
}

/// Parses one RFC 3164 message; `now` gives the year.
pub fn parse_rfc3164(input: &[u8], now: DateTime<Utc>) -> Result<Message<'_>, ParseError> {
    let mut c = Cursor::new(input);
    let (facility, severity) = pri(&mut c)?;
    let timestamp = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        // rsyslog's RSYSLOG_ForwardFormat; go-syslog reads it as in RFC 5424.
        timestamp(&mut c, &GO_SYSLOG)?
    } else {
        bsd_timestamp(&mut c, now)?
    };
    c.eat(b' ', "parsing error")?;
    let hostname = field(
        &mut c,
        255,
        "expecting an hostname (from 1 to max 255 US-ASCII characters)",
    )?;
    let mut app_name = None;
    let mut proc_id = None;
    let mut message_start = input.len();
    if c.peek() == Some(b' ') {
        c.i += 1;
        message_start = c.i;
        // TAG[PID]: — optional; without it the rest is the message.
        let rest = &input[c.i..];
        let tag_len = rest
            .iter()
            .take(48)
            .position(|&b| matches!(b, b'[' | b':' | b' ') || !(33..=126).contains(&b));
        if let Some(n) = tag_len.filter(|&n| n > 0) {
            let mut j = n;
            let mut pid = None;
            if rest[j] == b'[' {
                if let Some(close) = rest[j + 1..].iter().take(129).position(|&b| b == b']') {
                    let p = &rest[j + 1..j + 1 + close];
                    if !p.is_empty() && p.iter().all(|b| (33..=126).contains(b)) {
                        pid = Some(j + 1..j + 1 + close);
                        j += close + 2;
                    } else {
                        j = usize::MAX;
                    }
                } else {
                    j = usize::MAX;
                }
            }
            if j != usize::MAX && rest.get(j) == Some(&b':') {
                app_name = std::str::from_utf8(&rest[..n]).ok();
                proc_id = pid.and_then(|r| std::str::from_utf8(&rest[r]).ok());
                j += 1;
                if rest.get(j) == Some(&b' ') {
                    j += 1;
                }
                message_start = c.i + j;
            }
        }
    } else if c.peek().is_some() {
        return c.err("parsing error");
    }
    let message = Some(&input[message_start.min(input.len())..]).filter(|m| !m.is_empty());
    Ok(Message {
        facility,
        severity,
        timestamp: Some(timestamp),
        hostname: Some(hostname),
        app_name,
        proc_id,
        msg_id: None,
        structured_data: Vec::new(),
        message,
        message_start,
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
