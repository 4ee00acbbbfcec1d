//! Go layouts: splitting a layout into elements once (`nextStdChunk`) and parsing values
//! against it (`time.parse`), up to the fields and the zone the value names.

use super::{Parsed, ParsedZone, Zone, days_in, is_leap};

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
