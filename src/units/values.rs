//! Value types with Promtail's exact syntax (spec §2.4): Go durations, Prometheus durations
//! and byte sizes.
//!
//! Each parses the scalar's source text (so a bare YAML integer keeps its Go meaning) and
//! serializes back to a canonical text that parses to the same value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::de::scalar_deserialize;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A Go `time.Duration` (nanoseconds, may be negative).
///
/// Syntax: `[-+]` then one or more `<number>[.<fraction>]<unit>` with units `ns`, `us`/`µs`/`μs`,
/// `ms`, `s`, `m`, `h` (`1.5h`, `2h45m`, `-3s`), or `0`. A bare integer (YAML int) is
/// nanoseconds, as in Promtail (`sync_period: 10` is 10ns). Serializes as Go prints it (`1h0m0s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// Zero.
    pub const ZERO: GoDuration = GoDuration(0);

    /// From whole seconds.
    pub const fn from_secs(s: i64) -> Self {
        GoDuration(s * NANOS_PER_SEC as i64)
    }

    /// From milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        GoDuration(ms * 1_000_000)
    }

    /// The value in nanoseconds (negative allowed).
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whether the value is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// As a `std::time::Duration`; negative values become zero.
    pub fn as_std(self) -> Duration {
        Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }

    /// Parses Go `time.ParseDuration` syntax; a string of digits only is nanoseconds.
    pub fn parse(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<i64>()
                .map(GoDuration)
                .map_err(|_| format!("time: invalid duration {s:?}"));
        }
        parse_go_duration(s).map(GoDuration)
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl FromStr for GoDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        GoDuration::parse(s)
    }
}

/// Go's `time.ParseDuration`, written from its documented behaviour.
fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let (neg, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..int_len] {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        // Fraction part: digits past what fits are ignored, as Go does.
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for c in rest[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = frac * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = next;
                scale *= 10.0;
            }
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit_name = &s[..unit_len];
        if unit_name.is_empty() {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit: u64 = match unit_name {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            _ => {
                return Err(format!(
                    "time: unknown unit {unit_name:?} in duration {orig:?}"
                ));
            }
        };
        s = &s[unit_len..];
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Float arithmetic, exactly as Go does it, so fractions round the same way.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        // Each part is at most 2^63, so two of them can overflow a u64 (Go's uint64 wraps there
        // and accepts `9223372036854775808ns9223372036854775808ns` as 0; we refuse it).
        total = match total.checked_add(v) {
            Some(t) if t <= LIMIT => t,
            _ => return Err(invalid()),
        };
    }
    if neg {
        Ok((-(total as i128)) as i64)
    } else if total > LIMIT - 1 {
        Err(invalid())
    } else {
        Ok(total as i64)
    }
}

/// Writes `v / 10^prec` with its fraction trimmed of trailing zeros (Go's `fmtFrac`+`fmtInt`).
fn write_frac(out: &mut String, v: u64, prec: u32) {
    let div = 10u64.pow(prec);
    out.push_str(&(v / div).to_string());
    let frac = v % div;
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = prec as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut out = String::new();
        if self.0 < 0 {
            out.push('-');
        }
        let u = self.0.unsigned_abs();
        if u < NANOS_PER_SEC {
            if u < 1_000 {
                out.push_str(&format!("{u}ns"));
            } else if u < 1_000_000 {
                write_frac(&mut out, u, 3);
                out.push_str("\u{b5}s");
            } else {
                write_frac(&mut out, u, 6);
                out.push_str("ms");
            }
        } else {
            let secs = u / NANOS_PER_SEC;
            let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
            if h > 0 {
                out.push_str(&format!("{h}h{m}m"));
            } else if m > 0 {
                out.push_str(&format!("{m}m"));
            }
            write_frac(&mut out, s * NANOS_PER_SEC + u % NANOS_PER_SEC, 9);
            out.push('s');
        }
        f.write_str(&out)
    }
}

scalar_deserialize!(GoDuration, GoDuration::parse, GoDuration::ZERO);

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A Prometheus `model.Duration`: `<n>y<n>w<n>d<n>h<n>m<n>s<n>ms` (each part optional, in this
/// order, integers only; `y` = 365d), or `0`. Used by `refresh_interval`s and `pull_range`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// As a `std::time::Duration`.
    pub const fn as_std(self) -> Duration {
        self.0
    }

    /// Parses Prometheus duration syntax.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        if s.is_empty() {
            return Err("empty duration string".to_owned());
        }
        let invalid = || format!("not a valid duration string: {s:?}");
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        let mut rest = s;
        let mut next_unit = 0;
        let mut total_ms: u64 = 0;
        let out_of_range = || "duration out of range".to_owned();
        while !rest.is_empty() {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return Err(invalid());
            }
            let value: u64 = rest[..n].parse().map_err(|_| invalid())?;
            rest = &rest[n..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            if unit.is_empty() {
                return Err(invalid());
            }
            let idx = UNITS
                .iter()
                .position(|(name, _)| *name == unit)
                .ok_or_else(|| format!("unknown unit {unit:?} in duration {s:?}"))?;
            // Units go from the biggest to the smallest, each at most once.
            if idx < next_unit {
                return Err(invalid());
            }
            next_unit = idx + 1;
            let ms = value.checked_mul(UNITS[idx].1).ok_or_else(out_of_range)?;
            total_ms = total_ms.checked_add(ms).ok_or_else(out_of_range)?;
        }
        if total_ms > (i64::MAX as u64) / 1_000_000 {
            return Err(out_of_range());
        }
        Ok(PromDuration(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        // Years and weeks only when they divide evenly: `90d` reads better than `12w6d`.
        const UNITS: [(&str, u64, bool); 7] = [
            ("y", 365 * 86_400_000, true),
            ("w", 7 * 86_400_000, true),
            ("d", 86_400_000, false),
            ("h", 3_600_000, false),
            ("m", 60_000, false),
            ("s", 1_000, false),
            ("ms", 1, false),
        ];
        for (name, mult, exact) in UNITS {
            if exact && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{name}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

scalar_deserialize!(PromDuration, PromDuration::parse, PromDuration::default());

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A byte size: an integer plus an optional binary unit, case-insensitive: `b`/`byte`,
/// `k`/`kb`/`kilo`/`kilobyte(s)`, `m`/`mb`/`mega...`, `g`, `t`, `p`, `e` (1 KB = 1024). No
/// decimals, no sign; a plain YAML integer is bytes; `""` is 0. Serializes as `256KB`, `1MB`, `0B`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses the byte-size syntax above.
    pub fn parse(s: &str) -> Result<Self, String> {
        let invalid = || format!("invalid byte size {s:?}");
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 && !s.is_empty() {
            return Err(invalid());
        }
        let value: u64 = if n == 0 {
            0
        } else {
            s[..n]
                .parse()
                .map_err(|_| format!("byte size {s:?} is out of range"))?
        };
        let unit = s[n..].trim().to_ascii_lowercase();
        let shift = match unit.as_str() {
            "" | "b" | "byte" => 0,
            "k" | "kb" | "kilo" | "kilobyte" | "kilobytes" => 10,
            "m" | "mb" | "mega" | "megabyte" | "megabytes" => 20,
            "g" | "gb" | "giga" | "gigabyte" | "gigabytes" => 30,
            "t" | "tb" | "tera" | "terabyte" | "terabytes" => 40,
            "p" | "pb" | "peta" | "petabyte" | "petabytes" => 50,
            "e" | "eb" => 60,
            _ => return Err(invalid()),
        };
        value
            .checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("byte size {s:?} is out of range"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let b = self.0;
        if b == 0 {
            return f.write_str("0B");
        }
        for (shift, unit) in [
            (60, "EB"),
            (50, "PB"),
            (40, "TB"),
            (30, "GB"),
            (20, "MB"),
            (10, "KB"),
        ] {
            if b.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", b >> shift);
            }
        }
        write!(f, "{b}B")
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ByteSize::parse(s)
    }
}

scalar_deserialize!(ByteSize, ByteSize::parse, ByteSize(0));

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
