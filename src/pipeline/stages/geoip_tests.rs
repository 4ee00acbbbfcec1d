//! Tests of the `geoip` stage on small MaxMind databases written here ([`Mmdb`]), with the
//! examples of Promtail's docs.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::go_sprint_float;
use crate::pipeline::stages::testutil::*;

/// A MaxMind DB data-section value.
enum D {
    Str(&'static str),
    Double(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, D)>),
    Array(Vec<D>),
}

/// Writes a control byte (and the extended type and size bytes) of MaxMind DB format 2.0.
fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (first, ext) = if ty <= 7 {
        (ty, None)
    } else {
        (0, Some(ty - 7))
    };
    assert!(size < 29 + 256, "test values are small");
    if size < 29 {
        out.push(first << 5 | size as u8);
    } else {
        out.push(first << 5 | 29);
    }
    if let Some(e) = ext {
        out.push(e);
    }
    if size >= 29 {
        out.push((size - 29) as u8);
    }
}

fn uint(out: &mut Vec<u8>, ty: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(out, ty, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(out: &mut Vec<u8>, v: &D) {
    match v {
        D::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        D::Double(f) => {
            control(out, 3, 8);
            out.extend_from_slice(&f.to_be_bytes());
        }
        D::U16(n) => uint(out, 5, u64::from(*n)),
        D::U32(n) => uint(out, 6, u64::from(*n)),
        D::U64(n) => uint(out, 9, *n),
        D::Map(pairs) => {
            control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(out, &D::Str(k));
                encode(out, v);
            }
        }
        D::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
    }
}

/// A record of the search tree while it is built.
#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// A tiny IPv4-only MaxMind DB writer (24-bit records), for tests.
struct Mmdb {
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
}

impl Mmdb {
    fn new() -> Self {
        Mmdb {
            nodes: vec![[Rec::Empty; 2]],
            data: Vec::new(),
        }
    }

    /// Maps the network `ip/prefix` to `value`.
    fn insert(&mut self, ip: Ipv4Addr, prefix: u32, value: D) {
        let offset = self.data.len();
        encode(&mut self.data, &value);
        let bits = u32::from(ip);
        let mut node = 0;
        for i in 0..prefix {
            let bit = ((bits >> (31 - i)) & 1) as usize;
            if i + 1 == prefix {
                self.nodes[node][bit] = Rec::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Rec::Node(n) => n,
                _ => {
                    self.nodes.push([Rec::Empty; 2]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][bit] = Rec::Node(n);
                    n
                }
            };
        }
    }

    /// The database file, in a temporary directory.
    fn write(&self, dir: &tempfile::TempDir, name: &str, database_type: &'static str) -> PathBuf {
        let count = self.nodes.len();
        let mut out = Vec::new();
        for node in &self.nodes {
            for rec in node {
                let v = match *rec {
                    Rec::Empty => count,
                    Rec::Node(n) => n,
                    Rec::Data(off) => count + 16 + off,
                };
                out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
        let meta = D::Map(vec![
            ("binary_format_major_version", D::U16(2)),
            ("binary_format_minor_version", D::U16(0)),
            ("build_epoch", D::U64(1_700_000_000)),
            ("database_type", D::Str(database_type)),
            ("description", D::Map(vec![("en", D::Str("test"))])),
            ("ip_version", D::U16(4)),
            ("languages", D::Array(vec![D::Str("en")])),
            ("node_count", D::U32(count as u32)),
            ("record_size", D::U16(24)),
        ]);
        encode(&mut out, &meta);
        let path = dir.path().join(name);
        std::fs::write(&path, out).unwrap();
        path
    }
}

fn names(en: &'static str) -> D {
    D::Map(vec![("de", D::Str("x")), ("en", D::Str(en))])
}

/// A city database with Promtail's documented record for 34.120.177.0/24.
fn city_db(dir: &tempfile::TempDir) -> PathBuf {
    let mut db = Mmdb::new();
    db.insert(
        Ipv4Addr::new(34, 120, 177, 0),
        24,
        D::Map(vec![
            (
                "city",
                D::Map(vec![
                    ("geoname_id", D::U32(4393217)),
                    ("names", names("Kansas City")),
                ]),
            ),
            (
                "continent",
                D::Map(vec![
                    ("code", D::Str("NA")),
                    ("names", names("North America")),
                ]),
            ),
            (
                "country",
                D::Map(vec![
                    ("iso_code", D::Str("US")),
                    ("names", names("United States")),
                ]),
            ),
            (
                "location",
                D::Map(vec![
                    ("latitude", D::Double(39.1027)),
                    ("longitude", D::Double(-94.5778)),
                    ("time_zone", D::Str("America/Chicago")),
                ]),
            ),
            ("postal", D::Map(vec![("code", D::Str("64184"))])),
            (
                "subdivisions",
                D::Array(vec![
                    D::Map(vec![("iso_code", D::Str("XX")), ("names", names("Outer"))]),
                    D::Map(vec![
                        ("iso_code", D::Str("MO")),
                        ("names", names("Missouri")),
                    ]),
                ]),
            ),
        ]),
    );
    // A sparse record: only a country, and a location without longitude.
    db.insert(
        Ipv4Addr::new(10, 0, 0, 0),
        8,
        D::Map(vec![
            ("country", D::Map(vec![("names", names("Nowhere"))])),
            ("location", D::Map(vec![("latitude", D::Double(1.5))])),
            ("city", D::Map(vec![("names", names(""))])),
        ]),
    );
    db.write(dir, "city.mmdb", "GeoIP2-City")
}

fn asn_db(dir: &tempfile::TempDir) -> PathBuf {
    let mut db = Mmdb::new();
    db.insert(
        Ipv4Addr::new(34, 120, 0, 0),
        16,
        D::Map(vec![
            ("autonomous_system_number", D::U32(396982)),
            (
                "autonomous_system_organization",
                D::Str("GOOGLE-CLOUD-PLATFORM"),
            ),
        ]),
    );
    db.insert(
        Ipv4Addr::new(10, 0, 0, 0),
        8,
        D::Map(vec![("autonomous_system_number", D::U32(0))]),
    );
    db.write(dir, "asn.mmdb", "GeoLite2-ASN")
}

const DOC_LINE: &str = r#"34.120.177.193 - "POST /loki/api/push/ HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#;

fn stages(db: &std::path::Path, db_type: &str, after: &str) -> String {
    format!(
        "- regex:\n    expression: \"^(?P<ip>\\\\S+) .*\"\n- geoip:\n    db: \"{}\"\n    source: \"ip\"\n    db_type: \"{db_type}\"\n{after}",
        db.display()
    )
}

#[test]
fn documented_city_example() {
    let dir = tempfile::tempdir().unwrap();
    let db = city_db(&dir);
    let mut p = pipeline(&stages(&db, "city", ""));
    let out = run_one(&mut p, &[("job", "j")], DOC_LINE);
    assert_labels(
        &out,
        &[
            ("geoip_city_name", "Kansas City"),
            ("geoip_continent_code", "NA"),
            ("geoip_continent_name", "North America"),
            ("geoip_country_name", "United States"),
            ("geoip_location_latitude", "39.1027"),
            ("geoip_location_longitude", "-94.5778"),
            ("geoip_postal_code", "64184"),
            ("geoip_subdivision_code", "MO"),
            ("geoip_subdivision_name", "Missouri"),
            ("geoip_timezone", "America/Chicago"),
            ("job", "j"),
        ],
    );
    // The documented line starts with a quote: the captured `"34.120.177.193` is not an IP,
    // so nothing is set (Promtail the same).
    let out = run_one(&mut p, &[("job", "j")], &format!("\"{DOC_LINE}"));
    assert_labels(&out, &[("job", "j")]);
}

#[test]
fn documented_labelallow_and_labeldrop_examples() {
    let dir = tempfile::tempdir().unwrap();
    let db = city_db(&dir);
    let mut p = pipeline(&stages(
        &db,
        "city",
        "- labelallow:\n  - geoip_city_name\n  - geoip_country_name\n  - geoip_location_latitude\n  - geoip_location_longitude\n",
    ));
    let out = run_one(&mut p, &[("job", "j")], DOC_LINE);
    assert_labels(
        &out,
        &[
            ("geoip_city_name", "Kansas City"),
            ("geoip_country_name", "United States"),
            ("geoip_location_latitude", "39.1027"),
            ("geoip_location_longitude", "-94.5778"),
        ],
    );
    let mut p = pipeline(&stages(
        &db,
        "city",
        "- labeldrop:\n  - geoip_postal_code\n  - geoip_subdivision_code\n",
    ));
    let out = run_one(&mut p, &[], DOC_LINE);
    assert_eq!(out.labels.len(), 8);
    assert!(!out.labels.contains("geoip_postal_code"));
}

#[test]
fn documented_asn_example() {
    let dir = tempfile::tempdir().unwrap();
    let db = asn_db(&dir);
    let mut p = pipeline(&stages(&db, "asn", ""));
    let out = run_one(&mut p, &[], DOC_LINE);
    assert_labels(
        &out,
        &[
            ("geoip_autonomous_system_number", "396982"),
            (
                "geoip_autonomous_system_organization",
                "GOOGLE-CLOUD-PLATFORM",
            ),
        ],
    );
    // ASN 0 and no organisation: nothing.
    let out = run_one(&mut p, &[], "10.1.2.3 x");
    assert_labels(&out, &[]);
}

#[test]
fn sparse_records_missing_addresses_and_bad_ips() {
    let dir = tempfile::tempdir().unwrap();
    let db = city_db(&dir);
    let mut p = pipeline(&stages(&db, "city", ""));
    // Empty names and a half location are not set.
    let out = run_one(&mut p, &[], "10.9.9.9 x");
    assert_labels(&out, &[("geoip_country_name", "Nowhere")]);
    // IPv4-mapped IPv6 is looked up as IPv4.
    let out = run_one(&mut p, &[], "::ffff:34.120.177.1 x");
    assert_eq!(out.labels.get("geoip_city_name"), Some("Kansas City"));
    for input in [
        "8.8.8.8 x",       // not in the database
        "2001:db8::1 x",   // IPv6 in an IPv4-only database
        "not-an-ip x",     // not an address
        "034.120.177.1 x", // leading zeros (Go refuses them too)
        "fe80::1%eth0 x",  // zones are refused by net.ParseIP
    ] {
        let out = run_one(&mut p, &[("job", "j")], input);
        assert_labels(&out, &[("job", "j")]);
    }
    // Source missing or null: nothing.
    let yaml = format!(
        "- json:\n    expressions:\n      ip:\n- geoip:\n    db: \"{}\"\n    source: ip\n    db_type: city\n",
        db.display()
    );
    let mut p = pipeline(&yaml);
    for input in [r#"{"x":1}"#, r#"{"ip":null}"#, "plain"] {
        assert_labels(&run_one(&mut p, &[], input), &[]);
    }
    assert_eq!(
        run_one(&mut p, &[], r#"{"ip":"34.120.177.9"}"#)
            .labels
            .get("geoip_postal_code"),
        Some("64184")
    );
}

#[test]
fn unknown_db_type_and_no_source_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = city_db(&dir);
    let mut p = pipeline(&stages(&db, "country", ""));
    assert_labels(&run_one(&mut p, &[], DOC_LINE), &[]);
    let mut p = pipeline(&format!(
        "- geoip: {{db: \"{}\", db_type: city}}",
        db.display()
    ));
    assert_labels(
        &run_one(&mut p, &[("ip", "34.120.177.1")], "x"),
        &[("ip", "34.120.177.1")],
    );
}

#[test]
fn config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = city_db(&dir);
    let db = db.display();
    for (yaml, want) in [
        ("- geoip:".to_string(), "db path cannot be empty"),
        (
            "- geoip: {source: ip, db_type: city}".to_string(),
            "db path cannot be empty",
        ),
        (
            format!("- geoip: {{db: \"{db}\", source: '', db_type: city}}"),
            "source cannot be empty",
        ),
        (
            format!("- geoip: {{db: \"{db}\", source: ip}}"),
            "db type should be either city or asn",
        ),
    ] {
        assert_eq!(
            pipeline_err(&yaml),
            format!("p[0].geoip: invalid geoip stage config: {want}"),
            "{yaml}"
        );
    }
    let missing = dir.path().join("missing.mmdb");
    let err = pipeline_err(&format!(
        "- geoip: {{db: \"{}\", source: ip, db_type: city}}",
        missing.display()
    ));
    assert!(
        err.starts_with(&format!(
            "p[0].geoip: invalid geoip stage config: open {}: ",
            missing.display()
        )),
        "{err}"
    );
    // Not a MaxMind database.
    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a database").unwrap();
    assert!(
        pipeline_err(&format!(
            "- geoip: {{db: \"{}\", source: ip, db_type: asn}}",
            junk.display()
        ))
        .contains("invalid geoip stage config")
    );
}

#[test]
fn go_float_formatting_of_coordinates() {
    for (f, s) in [
        (39.1027, "39.1027"),
        (-94.5778, "-94.5778"),
        (0.0, "0"),
        (51.0, "51"),
        (0.00001, "1e-05"),
        (-0.000012, "-1.2e-05"),
        (0.0001, "0.0001"),
    ] {
        assert_eq!(go_sprint_float(f), s);
    }
}
