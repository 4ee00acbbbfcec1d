//! `geoip`: sets labels from a MaxMind database lookup of an IP address (spec §7.2).
//!
//! ```yaml
//! geoip:
//!   db: /path/GeoLite2-City.mmdb   # required; opened (read into memory) at load
//!   source: ip                     # extracted key holding the IP; without it nothing happens
//!   db_type: city                  # required: city | asn
//! ```
//!
//! `city` sets, when non-empty, `geoip_city_name`, `geoip_country_name`,
//! `geoip_continent_name`, `geoip_continent_code`, `geoip_location_latitude` and
//! `geoip_location_longitude` (both or neither, Go's `%v` float format), `geoip_postal_code`,
//! `geoip_timezone`, and `geoip_subdivision_name` / `geoip_subdivision_code` of the most
//! specific (last) subdivision; English names only. `asn` sets
//! `geoip_autonomous_system_number` (when not 0) and `geoip_autonomous_system_organization`.
//! These are stream labels, set without validation, as in Promtail.
//!
//! A missing or null source, a value that is not an IP address (Go's `net.ParseIP` rules: no
//! zone, no leading zeros), an address the database does not hold, or a lookup error leaves
//! the entry as it is (errors are logged at debug level).
//!
//! Differences from Promtail:
//! - a `db_type` other than `city`/`asn` is accepted as Promtail does, but warned about once at
//!   load instead of logging an error for every entry;
//! - an IPv4 address (also written IPv4-mapped, `::ffff:1.2.3.4`) is looked up as IPv4, so it
//!   works in IPv4-only databases too (Promtail looks it up as an IPv4-mapped IPv6 address, which
//!   an IPv4-only database refuses).

use std::net::IpAddr;

use serde_yaml::Value as Yaml;

use crate::entry::LabelSet;
use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{ValueRef, format_go_float, write_go_float_exp};
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

#[derive(Clone, Copy, Debug, PartialEq)]
enum DbType {
    City,
    Asn,
    Unknown,
}

/// The `geoip` stage.
pub struct GeoIpStage {
    reader: maxminddb::Reader<Vec<u8>>,
    source: Option<String>,
    db_type: DbType,
}

impl GeoIpStage {
    /// Builds the stage from its YAML body (opens the database).
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["db", "source", "db_type"], &cx.path)?;
        let db = f.string("db")?.unwrap_or_default();
        let source = f.string("source")?;
        let db_type = f.string("db_type")?.unwrap_or_default();
        if db.is_empty() {
            return Err("db path cannot be empty".into());
        }
        if source.as_deref() == Some("") {
            return Err("source cannot be empty".into());
        }
        if db_type.is_empty() {
            return Err("db type should be either city or asn".into());
        }
        let reader =
            maxminddb::Reader::open_readfile(&db).map_err(|e| format!("open {db}: {e}"))?;
        let db_type = match db_type.as_str() {
            "city" => DbType::City,
            "asn" => DbType::Asn,
            other => {
                tracing::warn!(stage = %cx.path, db_type = other, "unknown database type: the geoip stage will do nothing (db_type should be city or asn)");
                DbType::Unknown
            }
        };
        if source.is_none() {
            tracing::warn!(stage = %cx.path, "geoip stage without source does nothing");
        }
        Ok(GeoIpStage {
            reader,
            source,
            db_type,
        })
    }
}

/// Go's `fmt.Sprint` of a float64 (`%v`: shortest digits, exponent below 1e-4 or from 1e21).
fn go_sprint_float(f: f64) -> String {
    let abs = f.abs();
    if f == 0.0 || !f.is_finite() || (1e-4..1e21).contains(&abs) {
        return format_go_float(f);
    }
    let mut s = String::new();
    write_go_float_exp(f, &mut s);
    s
}

/// Parses an IP like Go's `net.ParseIP`, IPv4-mapped IPv6 addresses as IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    Some(ip.to_canonical())
}

fn set(labels: &mut LabelSet, name: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        labels.insert(name, v);
    }
}

impl GeoIpStage {
    fn lookup(&self, ip: IpAddr, labels: &mut LabelSet) -> Result<(), maxminddb::MaxMindDbError> {
        let result = self.reader.lookup(ip)?;
        match self.db_type {
            DbType::City => {
                let Some(r) = result.decode::<maxminddb::geoip2::City<'_>>()? else {
                    return Ok(());
                };
                set(labels, "geoip_city_name", r.city.names.english);
                set(labels, "geoip_country_name", r.country.names.english);
                set(labels, "geoip_continent_name", r.continent.names.english);
                set(labels, "geoip_continent_code", r.continent.code);
                if let (Some(lat), Some(lon)) = (r.location.latitude, r.location.longitude) {
                    labels.insert("geoip_location_latitude", go_sprint_float(lat));
                    labels.insert("geoip_location_longitude", go_sprint_float(lon));
                }
                set(labels, "geoip_postal_code", r.postal.code);
                set(labels, "geoip_timezone", r.location.time_zone);
                if let Some(sub) = r.subdivisions.last() {
                    set(labels, "geoip_subdivision_name", sub.names.english);
                    set(labels, "geoip_subdivision_code", sub.iso_code);
                }
            }
            DbType::Asn => {
                let Some(r) = result.decode::<maxminddb::geoip2::Asn<'_>>()? else {
                    return Ok(());
                };
                if let Some(n) = r.autonomous_system_number.filter(|&n| n != 0) {
                    labels.insert("geoip_autonomous_system_number", n.to_string());
                }
                set(
                    labels,
                    "geoip_autonomous_system_organization",
                    r.autonomous_system_organization,
                );
            }
            DbType::Unknown => {}
        }
        Ok(())
    }
}

impl Stage for GeoIpStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        if self.db_type == DbType::Unknown {
            return Outcome::Keep;
        }
        let Some(source) = &self.source else {
            return Outcome::Keep;
        };
        let Some(text) = pe.extracted.get(source).and_then(ValueRef::to_text) else {
            return Outcome::Keep;
        };
        let Some(ip) = parse_ip(&text) else {
            tracing::debug!(source = %source, value = %text, "failed to parse IP address");
            return Outcome::Keep;
        };
        if let Err(e) = self.lookup(ip, &mut pe.entry.labels) {
            tracing::debug!(%ip, error = %e, "geoip lookup failed");
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "geoip_tests.rs"]
mod tests;
