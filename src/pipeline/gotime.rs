//! Go's `time.Parse` / `time.ParseInLocation` with reference layouts (`2006-01-02 15:04:05`),
//! reimplemented from Go's documented and observable behaviour (spec §7.4 `timestamp`).
//!
//! A layout is split once into literal runs and layout elements ([`GoLayout::new`]); parsing
//! walks that list without allocating. Behaviour kept from Go, because configs depend on it:
//! - a space in the layout matches one or more spaces in the value; month and day names match
//!   ignoring ASCII case; `_2` accepts a leading space; `1`, `2`, `3`, `4`, `5`, `15` accept one
//!   or two digits, `01`…`05` exactly two;
//! - a fractional second right after the seconds is accepted even when the layout has none;
//!   `.000` wants exactly that many digits, `.999` any number (or none);
//! - `Z07:00` and friends accept `Z` for UTC; numeric offsets may be up to 24h;
//! - a zone abbreviation (`MST`) resolves in the "local" zone (the location for
//!   `ParseInLocation`, the machine's zone for `Parse`); an unknown abbreviation yields a fake
//!   zone whose instant is the wall clock read as UTC (Go does exactly that);
//! - a wall clock in a location is turned into an instant with Go's `time.Date` rule for gaps
//!   and overlaps (offset looked up at the wall clock read as UTC, then re-checked once).
//!
//! Not reproduced: Go's historical zone list for abbreviations (we probe the zone's
//! abbreviations over the year around the date instead), and instants outside what
//! [`crate::entry::Timestamp`] holds (years 1678–2262), which are errors.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::{OffsetName, Tz};

/// A time zone used to interpret wall clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// UTC.
    Utc,
    /// An IANA zone.
    Tz(Tz),
}

impl Zone {
    /// Loads an IANA zone the way Go's `time.LoadLocation` names them: `""` and `"UTC"` are UTC,
    /// `"Local"` is the machine's zone.
    pub fn load(name: &str) -> Result<Zone, String> {
        match name {
            "" | "UTC" => Ok(Zone::Utc),
            "Local" => Ok(local_zone()),
            _ => name
                .parse::<Tz>()
                .map(Zone::Tz)
                .map_err(|_| format!("unknown time zone {name}")),
        }
    }

    fn offset_name_at(self, unix: i64) -> (i32, Option<String>) {
        match self {
            Zone::Utc => (0, Some("UTC".to_string())),
            Zone::Tz(tz) => match DateTime::from_timestamp(unix, 0) {
                Some(dt) => {
                    let off = tz.offset_from_utc_datetime(&dt.naive_utc());
                    (
                        off.fix().local_minus_utc(),
                        off.abbreviation().map(str::to_string),
                    )
                }
                None => (0, None),
            },
        }
    }

    /// Seconds east of UTC in effect at the instant `unix`.
    pub fn offset_at(self, unix: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Tz(tz) => DateTime::from_timestamp(unix, 0)
                .map(|dt| {
                    tz.offset_from_utc_datetime(&dt.naive_utc())
                        .fix()
                        .local_minus_utc()
                })
                .unwrap_or(0),
        }
    }

    /// The instant of wall clock `local` (seconds since the epoch, read as if UTC) in this zone,
    /// resolving gaps and overlaps like Go's `time.Date`.
    pub fn wall_to_unix(self, local: i64) -> i64 {
        let guess = self.offset_at(local);
        local - i64::from(self.offset_at(local - i64::from(guess)))
    }

    /// The offset of the zone abbreviation `name` around the instant `unix` (Go's
    /// `Location.lookupName`): the abbreviation in effect at the date if it matches, else the
    /// first match over the surrounding year.
    fn lookup_name(self, name: &str, unix: i64) -> Option<i32> {
        if let Zone::Utc = self {
            return (name == "UTC").then_some(0);
        }
        const MONTH: i64 = 30 * 86_400;
        let (off, _) = self.offset_name_at(unix);
        let at = unix - i64::from(off);
        std::iter::once(0)
            .chain((1..=6).flat_map(|k| [k * MONTH, -k * MONTH]))
            .find_map(|delta| {
                let (o, n) = self.offset_name_at(at + delta);
                (n.as_deref() == Some(name)).then_some(o)
            })
    }
}

/// The machine's zone (Go's `time.Local`): `$TZ`, else `/etc/timezone`, else the target of the
/// `/etc/localtime` link; UTC when none names a known zone.
pub fn local_zone() -> Zone {
    fn named(s: &str) -> Option<Zone> {
        let s = s.trim().trim_start_matches(':');
        match s {
            "" => None,
            "UTC" | "Etc/UTC" => Some(Zone::Utc),
            _ => s.parse::<Tz>().ok().map(Zone::Tz),
        }
    }
    if let Ok(tz) = std::env::var("TZ") {
        return named(&tz).unwrap_or(Zone::Utc);
    }
    if let Some(z) = std::fs::read_to_string("/etc/timezone")
        .ok()
        .and_then(|s| named(&s))
    {
        return z;
    }
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| {
            let p = p.to_string_lossy().into_owned();
            p.split_once("zoneinfo/").and_then(|(_, name)| named(name))
        })
        .unwrap_or(Zone::Utc)
}

/// One layout element (Go's `std*` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PmUpper,
    PmLower,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// `.000`: exactly this many digits.
    FracSecond0(usize),
    /// `.999`: any number of digits, or none.
    FracSecond9,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Lit(Box<[u8]>),
    Std(Std),
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

fn starts_with_lower(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the first layout element of `l` as (start, element, length).
fn next_std_chunk(l: &[u8]) -> Option<(usize, Std, usize)> {
    let at = |i: usize, s: &str| l[i..].starts_with(s.as_bytes());
    for i in 0..l.len() {
        let found = match l[i] {
            b'J' if at(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if at(i, "Jan") && !starts_with_lower(&l[i + 3..]) => Some((Std::Month, 3)),
            b'M' if at(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if at(i, "Mon") && !starts_with_lower(&l[i + 3..]) => Some((Std::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if matches!(l.get(i + 1), Some(b'1'..=b'6')) => Some((
                [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][usize::from(l[i + 1] - b'1')],
                2,
            )),
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            // `_2006` is a literal `_` followed by the year.
            b'_' if at(i, "_2006") => return Some((i + 1, Std::LongYear, 4)),
            b'_' if at(i, "_2") => Some((Std::UnderDay, 2)),
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::PmUpper, 2)),
            b'p' if at(i, "pm") => Some((Std::PmLower, 2)),
            b'-' if at(i, "-070000") => Some((Std::NumSecondsTz, 7)),
            b'-' if at(i, "-07:00:00") => Some((Std::NumColonSecondsTz, 9)),
            b'-' if at(i, "-0700") => Some((Std::NumTz, 5)),
            b'-' if at(i, "-07:00") => Some((Std::NumColonTz, 6)),
            b'-' if at(i, "-07") => Some((Std::NumShortTz, 3)),
            b'Z' if at(i, "Z070000") => Some((Std::Iso8601SecondsTz, 7)),
            b'Z' if at(i, "Z07:00:00") => Some((Std::Iso8601ColonSecondsTz, 9)),
            b'Z' if at(i, "Z0700") => Some((Std::Iso8601Tz, 5)),
            b'Z' if at(i, "Z07:00") => Some((Std::Iso8601ColonTz, 6)),
            b'Z' if at(i, "Z07") => Some((Std::Iso8601ShortTz, 3)),
            b'.' | b',' if matches!(l.get(i + 1), Some(b'0' | b'9')) => {
                let ch = l[i + 1];
                let mut j = i + 1;
                while l.get(j) == Some(&ch) {
                    j += 1;
                }
                // Only a fractional second if the run of digits ends here.
                if is_digit(l, j) {
                    None
                } else if ch == b'0' {
                    Some((Std::FracSecond0(j - i - 1), j - i))
                } else {
                    Some((Std::FracSecond9, j - i))
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return Some((i, std, len));
        }
    }
    None
}

/// A zone found in the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParsedZone<'v> {
    /// No zone in the value: the default location applies.
    None,
    /// `Z` or `UTC`.
    Utc,
    /// A numeric offset in seconds east of UTC.
    Offset(i32),
    /// A zone abbreviation such as `CEST` or `GMT+2`.
    Name(&'v str),
}

/// The fields of a parsed value, before they become an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed<'v> {
    /// The year (0 when the layout has none).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month (validated against `year`).
    pub day: i64,
    /// Hour, 0–23.
    pub hour: i64,
    /// Minute.
    pub min: i64,
    /// Second.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: i64,
    /// The zone the value named, if any.
    pub zone: ParsedZone<'v>,
}

/// Days from 1970-01-01 to the given proleptic Gregorian date; `day` may overflow the month
/// (`Feb 29` of a common year is `Mar 1`, like Go's `time.Date`).
pub fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month) of a day count from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(month: u32, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Parsed<'_> {
    /// The wall clock as seconds since the epoch, read as UTC, with `year` instead of the parsed
    /// one (used for year-less layouts).
    fn wall(&self, year: i64) -> i64 {
        days_from_civil(year, self.month, self.day) * 86_400
            + self.hour * 3600
            + self.min * 60
            + self.sec
    }

    /// The instant in Unix nanoseconds, taking the year from `year`, a zone from the value if it
    /// has one, else `default`; abbreviations are looked up in `local` (Go's rules, see module
    /// docs). Errors when the instant does not fit an `i64` of nanoseconds.
    pub fn to_unix_nanos(
        &self,
        year: i64,
        default: Zone,
        local: Zone,
    ) -> Result<i64, &'static str> {
        let wall = self.wall(year);
        let unix = match self.zone {
            ParsedZone::Utc => wall,
            ParsedZone::Offset(off) => wall - i64::from(off),
            ParsedZone::Name(name) => match local.lookup_name(name, wall) {
                Some(off) => wall - i64::from(off),
                // Go keeps the wall clock as UTC under a fake zone here.
                None => wall,
            },
            ParsedZone::None => default.wall_to_unix(wall),
        };
        unix.checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(self.nsec))
            .ok_or("timestamp out of range")
    }
}

/// A compiled Go reference-time layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoLayout {
    items: Vec<Item>,
}

type Res<T> = Result<T, &'static str>;

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Res<(i64, &[u8])> {
    if !is_digit(s, 0) {
        return Err("bad number");
    }
    if !is_digit(s, 1) {
        if fixed {
            return Err("bad number");
        }
        return Ok((i64::from(s[0] - b'0'), &s[1..]));
    }
    Ok((
        i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'),
        &s[2..],
    ))
}

/// Go's `getnum3`: one to three digits (exactly three when `fixed`).
fn getnum3(s: &[u8], fixed: bool) -> Res<(i64, &[u8])> {
    let mut n = 0;
    let mut i = 0;
    while i < 3 && is_digit(s, i) {
        n = n * 10 + i64::from(s[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return Err("bad number");
    }
    Ok((n, &s[i..]))
}

/// Go's `atoi` (an optional sign, then only digits; empty digits are 0).
fn atoi(s: &[u8]) -> Res<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut x: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err("bad number");
        }
        x = x
            .checked_mul(10)
            .and_then(|x| x.checked_add(i64::from(c - b'0')))
            .ok_or("number out of range")?;
    }
    Ok(if neg { -x } else { x })
}

/// Go's `parseNanoseconds`: `value[0]` is the separator, `n` the bytes including it.
fn parse_nanos(value: &[u8], n: usize) -> Res<i64> {
    if !matches!(value.first(), Some(b'.' | b',')) {
        return Err("bad fractional second");
    }
    let n = n.min(10);
    let ns = atoi(&value[1..n])?;
    if ns < 0 {
        return Err("fractional second out of range");
    }
    Ok(ns * 10_i64.pow((10 - n) as u32))
}

const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `lookup`: the first name that prefixes `val`, ignoring ASCII case.
fn lookup<'a>(tab: &[&str], val: &'a [u8]) -> Res<(usize, &'a [u8])> {
    tab.iter()
        .position(|name| {
            val.len() >= name.len() && val[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        })
        .map(|i| (i, &val[tab[i].len()..]))
        .ok_or("bad name")
}

fn cutspace(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ').count();
    &s[n..]
}

/// Go's `skip`: matches a literal; a space matches a run of spaces.
fn skip<'a>(mut value: &'a [u8], mut prefix: &[u8]) -> Res<&'a [u8]> {
    while let Some(&p) = prefix.first() {
        if p == b' ' {
            if value.first().is_some_and(|&c| c != b' ') {
                return Err("literal mismatch");
            }
            prefix = cutspace(prefix);
            value = cutspace(value);
            continue;
        }
        if value.first() != Some(&p) {
            return Err("literal mismatch");
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Ok(value)
}

/// Go's `parseSignedOffset`: the length of `+hh`/`-h` (hours ≤ 23), 0 if none.
fn parse_signed_offset(value: &[u8]) -> usize {
    if !matches!(value.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let digits = value[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return 0;
    }
    match atoi(&value[1..1 + digits]) {
        Ok(x) if x <= 23 => 1 + digits,
        _ => 0,
    }
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `value`.
fn parse_time_zone(value: &[u8]) -> Option<usize> {
    if value.len() < 3 {
        return None;
    }
    if value.starts_with(b"ChST") || value.starts_with(b"MeST") {
        return Some(4);
    }
    if value.starts_with(b"GMT") {
        return Some(3 + parse_signed_offset(&value[3..]));
    }
    if matches!(value[0], b'+' | b'-') {
        let n = parse_signed_offset(value);
        return (n > 0).then_some(n);
    }
    let upper = value
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if value[3] == b'T' || value.starts_with(b"WITA") => Some(4),
        5 if value[4] == b'T' => Some(5),
        _ => None,
    }
}

impl GoLayout {
    /// Splits `layout` into literals and elements (never fails: anything unknown is literal).
    pub fn new(layout: &str) -> Self {
        let mut items = Vec::new();
        let mut rest = layout.as_bytes();
        while let Some((start, std, len)) = next_std_chunk(rest) {
            if start > 0 {
                items.push(Item::Lit(rest[..start].into()));
            }
            items.push(Item::Std(std));
            rest = &rest[start + len..];
        }
        if !rest.is_empty() {
            items.push(Item::Lit(rest.into()));
        }
        GoLayout { items }
    }

    /// Parses `value` into its fields (Go's `time.parse` up to, not including, choosing the
    /// zone).
    pub fn parse<'v>(&self, value: &'v str) -> Res<Parsed<'v>> {
        let mut v = value.as_bytes();
        let (mut year, mut month, mut day, mut yday) = (0_i64, -1_i64, -1_i64, -1_i64);
        let (mut hour, mut min, mut sec, mut nsec) = (0_i64, 0_i64, 0_i64, 0_i64);
        let (mut am, mut pm) = (false, false);
        let mut zone = ParsedZone::None;
        let mut utc = false;
        let mut offset: Option<i32> = None;
        let mut name: Option<&'v str> = None;
        for (idx, item) in self.items.iter().enumerate() {
            let std = match item {
                Item::Lit(l) => {
                    v = skip(v, l)?;
                    continue;
                }
                Item::Std(std) => *std,
            };
            match std {
                Std::Year => {
                    if v.len() < 2 {
                        return Err("bad year");
                    }
                    let y = atoi(&v[..2])?;
                    v = &v[2..];
                    year = if y >= 69 { y + 1900 } else { y + 2000 };
                }
                Std::LongYear => {
                    if v.len() < 4 || !is_digit(v, 0) {
                        return Err("bad year");
                    }
                    year = atoi(&v[..4])?;
                    v = &v[4..];
                }
                Std::Month | Std::LongMonth => {
                    let tab: &[&str] = if std == Std::Month {
                        &SHORT_MONTHS
                    } else {
                        &LONG_MONTHS
                    };
                    let (m, rest) = lookup(tab, v)?;
                    month = m as i64 + 1;
                    v = rest;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, rest) = getnum(v, std == Std::ZeroMonth)?;
                    if !(1..=12).contains(&m) {
                        return Err("month out of range");
                    }
                    month = m;
                    v = rest;
                }
                Std::WeekDay => v = lookup(&SHORT_DAYS, v)?.1,
                Std::LongWeekDay => v = lookup(&LONG_DAYS, v)?.1,
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && v.first() == Some(&b' ') {
                        v = &v[1..];
                    }
                    let (d, rest) = getnum(v, std == Std::ZeroDay)?;
                    day = d;
                    v = rest;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    for _ in 0..2 {
                        if std == Std::UnderYearDay && v.first() == Some(&b' ') {
                            v = &v[1..];
                        }
                    }
                    let (d, rest) = getnum3(v, std == Std::ZeroYearDay)?;
                    yday = d;
                    v = rest;
                }
                Std::Hour => {
                    let (h, rest) = getnum(v, false)?;
                    if !(0..24).contains(&h) {
                        return Err("hour out of range");
                    }
                    hour = h;
                    v = rest;
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, rest) = getnum(v, std == Std::ZeroHour12)?;
                    if !(0..=12).contains(&h) {
                        return Err("hour out of range");
                    }
                    hour = h;
                    v = rest;
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, rest) = getnum(v, std == Std::ZeroMinute)?;
                    if !(0..60).contains(&m) {
                        return Err("minute out of range");
                    }
                    min = m;
                    v = rest;
                }
                Std::Second | Std::ZeroSecond => {
                    let (s, rest) = getnum(v, std == Std::ZeroSecond)?;
                    if !(0..60).contains(&s) {
                        return Err("second out of range");
                    }
                    sec = s;
                    v = rest;
                    // A fractional second the layout does not ask for is accepted too, unless
                    // the layout's next element is the fractional second itself.
                    if v.len() >= 2 && matches!(v[0], b'.' | b',') && is_digit(v, 1) {
                        let next = self.items[idx + 1..].iter().find_map(|i| match i {
                            Item::Std(s) => Some(*s),
                            Item::Lit(_) => None,
                        });
                        if !matches!(next, Some(Std::FracSecond0(_) | Std::FracSecond9)) {
                            let n = 2 + v[2..].iter().take_while(|c| c.is_ascii_digit()).count();
                            nsec = parse_nanos(v, n)?;
                            v = &v[n..];
                        }
                    }
                }
                Std::PmUpper | Std::PmLower => {
                    if v.len() < 2 {
                        return Err("bad AM/PM");
                    }
                    let (am_s, pm_s): (&[u8], &[u8]) = if std == Std::PmUpper {
                        (b"AM", b"PM")
                    } else {
                        (b"am", b"pm")
                    };
                    match &v[..2] {
                        p if p == pm_s => pm = true,
                        p if p == am_s => am = true,
                        _ => return Err("bad AM/PM"),
                    }
                    v = &v[2..];
                }
                Std::Iso8601Tz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ColonSecondsTz
                    if v.first() == Some(&b'Z') =>
                {
                    v = &v[1..];
                    utc = true;
                }
                Std::Iso8601Tz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ColonSecondsTz
                | Std::NumTz
                | Std::NumShortTz
                | Std::NumColonTz
                | Std::NumSecondsTz
                | Std::NumColonSecondsTz => {
                    let (sign, hh, mm, ss, rest): (u8, &[u8], &[u8], &[u8], &[u8]) = match std {
                        Std::Iso8601ColonTz | Std::NumColonTz => {
                            if v.len() < 6 || v[3] != b':' {
                                return Err("bad zone offset");
                            }
                            (v[0], &v[1..3], &v[4..6], b"00", &v[6..])
                        }
                        Std::Iso8601ShortTz | Std::NumShortTz => {
                            if v.len() < 3 {
                                return Err("bad zone offset");
                            }
                            (v[0], &v[1..3], b"00", b"00", &v[3..])
                        }
                        Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
                            if v.len() < 9 || v[3] != b':' || v[6] != b':' {
                                return Err("bad zone offset");
                            }
                            (v[0], &v[1..3], &v[4..6], &v[7..9], &v[9..])
                        }
                        Std::Iso8601SecondsTz | Std::NumSecondsTz => {
                            if v.len() < 7 {
                                return Err("bad zone offset");
                            }
                            (v[0], &v[1..3], &v[3..5], &v[5..7], &v[7..])
                        }
                        _ => {
                            if v.len() < 5 {
                                return Err("bad zone offset");
                            }
                            (v[0], &v[1..3], &v[3..5], b"00", &v[5..])
                        }
                    };
                    let hr = getnum(hh, true)?.0;
                    let mi = getnum(mm, true)?.0;
                    let se = getnum(ss, true)?.0;
                    // Go compares with `>`: offsets of 24 hours or 60 minutes are accepted.
                    if hr > 24 || mi > 60 || se > 60 {
                        return Err("zone offset out of range");
                    }
                    let off = ((hr * 60 + mi) * 60 + se) as i32;
                    offset = Some(match sign {
                        b'+' => off,
                        b'-' => -off,
                        _ => return Err("bad zone offset"),
                    });
                    v = rest;
                }
                Std::Tz => {
                    if v.starts_with(b"UTC") {
                        utc = true;
                        v = &v[3..];
                    } else {
                        let n = parse_time_zone(v).ok_or("bad zone name")?;
                        // Zone names are ASCII by construction.
                        name = Some(std::str::from_utf8(&v[..n]).map_err(|_| "bad zone name")?);
                        v = &v[n..];
                    }
                }
                Std::FracSecond0(digits) => {
                    let n = 1 + digits;
                    if v.len() < n {
                        return Err("bad fractional second");
                    }
                    nsec = parse_nanos(v, n)?;
                    v = &v[n..];
                }
                Std::FracSecond9 => {
                    if v.len() < 2 || !matches!(v[0], b'.' | b',') || !v[1].is_ascii_digit() {
                        // Omitted fractional second.
                        continue;
                    }
                    let n = 1 + v[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nsec = parse_nanos(v, n)?;
                    v = &v[n..];
                }
            }
        }
        if !v.is_empty() {
            return Err("extra text after the timestamp");
        }
        if pm && hour < 12 {
            hour += 12;
        } else if am && hour == 12 {
            hour = 0;
        }
        if yday >= 0 {
            let mut yd = yday;
            let mut m = 0;
            let mut d = 0;
            if is_leap(year) {
                if yd == 31 + 29 {
                    m = 2;
                    d = 29;
                } else if yd > 31 + 29 {
                    yd -= 1;
                }
            }
            if !(1..=365).contains(&yd) {
                return Err("day-of-year out of range");
            }
            if m == 0 {
                // Cumulative days before each month of a common year.
                const BEFORE: [i64; 13] =
                    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
                m = (yd - 1) / 31 + 1;
                if BEFORE[m as usize] < yd {
                    m += 1;
                }
                d = yd - BEFORE[m as usize - 1];
            }
            if month >= 0 && month != m {
                return Err("day-of-year does not match month");
            }
            month = m;
            if day >= 0 && day != d {
                return Err("day-of-year does not match day");
            }
            day = d;
        } else {
            if month < 0 {
                month = 1;
            }
            if day < 0 {
                day = 1;
            }
        }
        let month = month as u32;
        if day < 1 || day > days_in(month, year) {
            return Err("day out of range");
        }
        if utc {
            zone = ParsedZone::Utc;
        } else if let Some(off) = offset {
            zone = ParsedZone::Offset(off);
        } else if let Some(n) = name {
            zone = ParsedZone::Name(n);
        }
        Ok(Parsed {
            year,
            month,
            day,
            hour,
            min,
            sec,
            nsec,
            zone,
        })
    }

    /// Go's `time.ParseInLocation(layout, value, zone)` (`time.Parse` is `zone` = UTC with the
    /// machine's zone as `local`), as Unix nanoseconds.
    pub fn parse_unix_nanos(&self, value: &str, default: Zone, local: Zone) -> Res<i64> {
        let p = self.parse(value)?;
        p.to_unix_nanos(p.year, default, local)
    }
}
