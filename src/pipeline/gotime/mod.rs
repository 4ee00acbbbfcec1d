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

mod layout;

pub use layout::GoLayout;

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

pub(crate) fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(crate) fn days_in(month: u32, year: i64) -> i64 {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
