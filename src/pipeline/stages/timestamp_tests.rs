//! Tests of the `timestamp` stage: every named format, Go layouts, locations, year-less
//! layouts, fallback formats and the fudge/skip failure actions.

use super::TimeParser;
use crate::entry::{Ack, Entry, LabelSet, Timestamp};
use crate::pipeline::gotime::{Zone, days_from_civil};
use crate::pipeline::stages::testutil::*;

const NS: i64 = 1_000_000_000;

/// Unix nanoseconds of a UTC wall clock.
fn utc(y: i64, mo: u32, d: i64, h: i64, mi: i64, s: i64, ns: i64) -> i64 {
    (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * NS + ns
}

fn zone(name: &str) -> Zone {
    Zone::load(name).unwrap()
}

/// A parser like the stage's, with UTC as the machine's zone (tests must not depend on it).
fn parser(format: &str) -> TimeParser {
    TimeParser::new(format, &[], None, Zone::Utc)
}

fn parser_in(format: &str, location: &str) -> TimeParser {
    TimeParser::new(format, &[], Some(zone(location)), Zone::Utc)
}

/// A "now" in the middle of 2019 for year-less layouts.
const NOW_2019_07: i64 = 1_563_062_400; // 2019-07-14T00:00:00Z

fn ok(p: &TimeParser, value: &str) -> i64 {
    p.parse(value, NOW_2019_07)
        .unwrap_or_else(|e| panic!("{value:?} refused: {e}"))
}

fn refused(p: &TimeParser, value: &str) {
    assert!(p.parse(value, NOW_2019_07).is_err(), "{value:?} accepted");
}

#[test]
fn named_formats() {
    let t = utc(2006, 1, 2, 15, 4, 5, 0);
    let t_minus7 = utc(2006, 1, 2, 22, 4, 5, 0);
    assert_eq!(ok(&parser("ANSIC"), "Mon Jan  2 15:04:05 2006"), t);
    assert_eq!(
        ok(&parser("ANSIC"), "Tue Feb 14 08:30:00 2023"),
        utc(2023, 2, 14, 8, 30, 0, 0)
    );
    assert_eq!(ok(&parser("UnixDate"), "Mon Jan  2 15:04:05 UTC 2006"), t);
    assert_eq!(
        ok(&parser("RubyDate"), "Mon Jan 02 15:04:05 -0700 2006"),
        t_minus7
    );
    assert_eq!(
        ok(&parser("RFC822"), "02 Jan 06 15:04 UTC"),
        utc(2006, 1, 2, 15, 4, 0, 0)
    );
    assert_eq!(
        ok(&parser("RFC822Z"), "02 Jan 06 15:04 -0700"),
        utc(2006, 1, 2, 22, 4, 0, 0)
    );
    assert_eq!(ok(&parser("RFC850"), "Monday, 02-Jan-06 15:04:05 UTC"), t);
    assert_eq!(ok(&parser("RFC1123"), "Mon, 02 Jan 2006 15:04:05 UTC"), t);
    assert_eq!(
        ok(&parser("RFC1123Z"), "Mon, 02 Jan 2006 15:04:05 -0700"),
        t_minus7
    );
    assert_eq!(ok(&parser("RFC3339"), "2006-01-02T15:04:05Z"), t);
    assert_eq!(
        ok(&parser("RFC3339"), "2006-01-02T15:04:05-07:00"),
        t_minus7
    );
    // RFC3339 accepts a fractional second too.
    assert_eq!(
        ok(&parser("RFC3339"), "2006-01-02T17:04:05.123+02:00"),
        utc(2006, 1, 2, 15, 4, 5, 123_000_000)
    );
    assert_eq!(
        ok(&parser("RFC3339Nano"), "2019-10-01T01:02:03.400000000Z"),
        utc(2019, 10, 1, 1, 2, 3, 400_000_000)
    );
    assert_eq!(
        ok(
            &parser("RFC3339Nano"),
            "2006-01-02T15:04:05.999999999-07:00"
        ),
        t_minus7 + 999_999_999
    );
    assert_eq!(ok(&parser("RFC3339Nano"), "2006-01-02T15:04:05Z"), t);
    refused(&parser("RFC3339"), "2006-01-02 15:04:05Z");
    refused(&parser("RFC3339"), "2006-01-02T15:04:05");
    refused(&parser("ANSIC"), "Mon Jan  2 15:04:05 2006 extra");
}

#[test]
fn zone_abbreviations() {
    // Unknown in the machine's zone: Go keeps the wall clock as UTC under a fake zone.
    assert_eq!(
        ok(&parser("UnixDate"), "Mon Jan  2 15:04:05 MST 2006"),
        utc(2006, 1, 2, 15, 4, 5, 0)
    );
    assert_eq!(
        ok(&parser("RFC1123"), "Mon, 02 Jan 2006 15:04:05 GMT"),
        utc(2006, 1, 2, 15, 4, 5, 0)
    );
    // Known in the machine's zone: resolved with its offset, summer or winter.
    let london = TimeParser::new("RFC1123", &[], None, zone("Europe/London"));
    assert_eq!(
        ok(&london, "Mon, 03 Jul 2006 15:04:05 BST"),
        utc(2006, 7, 3, 14, 4, 5, 0)
    );
    assert_eq!(
        ok(&london, "Mon, 02 Jan 2006 15:04:05 GMT"),
        utc(2006, 1, 2, 15, 4, 5, 0)
    );
    // In a custom layout with a location, the location resolves the abbreviation.
    let ny = parser_in("2006-01-02 15:04:05 MST", "America/New_York");
    assert_eq!(
        ok(&ny, "2019-07-22 20:29:32 EDT"),
        utc(2019, 7, 23, 0, 29, 32, 0)
    );
    assert_eq!(
        ok(&ny, "2019-01-22 20:29:32 EST"),
        utc(2019, 1, 23, 1, 29, 32, 0)
    );
    // Named formats ignore the location: EST stays unknown (machine zone UTC).
    let named = TimeParser::new("RFC822", &[], Some(zone("America/New_York")), Zone::Utc);
    assert_eq!(
        ok(&named, "02 Jan 06 15:04 EST"),
        utc(2006, 1, 2, 15, 4, 0, 0)
    );
    refused(&parser("RFC822"), "02 Jan 06 15:04 Xy");
}

#[test]
fn unix_formats() {
    let p = parser("Unix");
    assert_eq!(ok(&p, "1562708916"), 1_562_708_916 * NS);
    assert_eq!(
        ok(&p, "1562708916.414123"),
        1_562_708_916 * NS + 414_123_000
    );
    assert_eq!(ok(&p, "1562708916.000000123"), 1_562_708_916 * NS + 123);
    assert_eq!(ok(&p, "1562708916.414"), 1_562_708_916 * NS + 414_000_000);
    // More than nine digits are truncated, like Go's float arithmetic does.
    assert_eq!(ok(&p, "1.1234567891"), NS + 123_456_789);
    assert_eq!(ok(&p, "-1.5"), -NS / 2);
    assert_eq!(ok(&p, "0"), 0);
    for bad in [
        "",
        "1.2.3",
        "1.",
        "abc",
        "1e9",
        " 1",
        "99999999999999999999",
    ] {
        refused(&p, bad);
    }
    assert_eq!(
        ok(&parser("UnixMs"), "1562708916414"),
        utc(2019, 7, 9, 21, 48, 36, 414_000_000)
    );
    assert_eq!(
        ok(&parser("UnixUs"), "1562708916414123"),
        utc(2019, 7, 9, 21, 48, 36, 414_123_000)
    );
    assert_eq!(
        ok(&parser("UnixNs"), "1562708916000000123"),
        utc(2019, 7, 9, 21, 48, 36, 123)
    );
    assert_eq!(ok(&parser("UnixMs"), "-1000"), -NS);
    refused(&parser("UnixMs"), "1562708916414.5");
    refused(&parser("UnixMs"), "9223372036854775807");
}

#[test]
fn go_layouts() {
    let cases: &[(&str, &str, i64)] = &[
        ("2006-01-02", "2009-01-01", utc(2009, 1, 1, 0, 0, 0, 0)),
        (
            "02/Jan/2006:15:04:05 -0700",
            "25/Jan/2000:14:00:01 -0500",
            utc(2000, 1, 25, 19, 0, 1, 0),
        ),
        (
            "2006-01-02T15:04:05.000Z07:00",
            "2021-03-04T05:06:07.089+01:00",
            utc(2021, 3, 4, 4, 6, 7, 89_000_000),
        ),
        (
            "2006-01-02T15:04:05.000Z07:00",
            "2021-03-04T05:06:07.089Z",
            utc(2021, 3, 4, 5, 6, 7, 89_000_000),
        ),
        (
            "2006-01-02 15:04:05.000",
            "2021-03-04 05:06:07.123",
            utc(2021, 3, 4, 5, 6, 7, 123_000_000),
        ),
        (
            "2006-01-02 15:04:05,000",
            "2021-03-04 05:06:07,123",
            utc(2021, 3, 4, 5, 6, 7, 123_000_000),
        ),
        // A fractional second the layout does not mention is accepted.
        (
            "2006-01-02 15:04:05",
            "2021-03-04 05:06:07.123456",
            utc(2021, 3, 4, 5, 6, 7, 123_456_000),
        ),
        (
            "2006-01-02 15:04:05.999",
            "2021-03-04 05:06:07",
            utc(2021, 3, 4, 5, 6, 7, 0),
        ),
        (
            "2006-01-02 15:04:05.999",
            "2021-03-04 05:06:07.5",
            utc(2021, 3, 4, 5, 6, 7, 500_000_000),
        ),
        (
            "06 Jan 02 15:04:05",
            "19 Jul 15 01:02:03",
            utc(2019, 7, 15, 1, 2, 3, 0),
        ),
        (
            "06 Jan 02 15:04:05",
            "68 Jul 15 01:02:03",
            utc(2068, 7, 15, 1, 2, 3, 0),
        ),
        (
            "06 Jan 02 15:04:05",
            "69 Jul 15 01:02:03",
            utc(1969, 7, 15, 1, 2, 3, 0),
        ),
        (
            "2006 Jan 02 15:04:05",
            "2019 Jul 15 01:02:03",
            utc(2019, 7, 15, 1, 2, 3, 0),
        ),
        ("2006 January 2", "2019 july 5", utc(2019, 7, 5, 0, 0, 0, 0)),
        ("2006 Jan 02", "2019 JUL 05", utc(2019, 7, 5, 0, 0, 0, 0)),
        (
            "3:04:05 PM 2006-01-02",
            "1:02:03 PM 2020-02-03",
            utc(2020, 2, 3, 13, 2, 3, 0),
        ),
        (
            "03:04:05pm 2006-01-02",
            "12:00:00am 2020-02-03",
            utc(2020, 2, 3, 0, 0, 0, 0),
        ),
        (
            "03:04:05 PM 2006-01-02",
            "12:30:00 PM 2020-02-03",
            utc(2020, 2, 3, 12, 30, 0, 0),
        ),
        (
            "Monday, January 2, 2006 15:04:05",
            "Tuesday, March 3, 2020 10:11:12",
            utc(2020, 3, 3, 10, 11, 12, 0),
        ),
        (
            "2006-002 15:04",
            "2020-060 10:00",
            utc(2020, 2, 29, 10, 0, 0, 0),
        ),
        (
            "2006-002 15:04",
            "2019-060 10:00",
            utc(2019, 3, 1, 10, 0, 0, 0),
        ),
        ("2006 __2", "2019  32", utc(2019, 2, 1, 0, 0, 0, 0)),
        (
            "20060102150405",
            "20210304050607",
            utc(2021, 3, 4, 5, 6, 7, 0),
        ),
        (
            "2006-01-02T15:04:05Z0700",
            "2021-03-04T05:06:07+0130",
            utc(2021, 3, 4, 3, 36, 7, 0),
        ),
        (
            "2006-01-02T15:04:05Z0700",
            "2021-03-04T05:06:07Z",
            utc(2021, 3, 4, 5, 6, 7, 0),
        ),
        (
            "2006-01-02 15:04:05 -07",
            "2021-03-04 05:06:07 -03",
            utc(2021, 3, 4, 8, 6, 7, 0),
        ),
        (
            "2006-01-02 15:04:05 Z07:00:00",
            "2021-03-04 05:06:07 +01:00:30",
            utc(2021, 3, 4, 4, 5, 37, 0),
        ),
        (
            "2006-01-02 15:04:05 -070000",
            "2021-03-04 05:06:07 -000030",
            utc(2021, 3, 4, 5, 6, 37, 0),
        ),
        ("2006-01-_2", "2021-03- 4", utc(2021, 3, 4, 0, 0, 0, 0)),
        ("2006_2006", "2021_2022", utc(2022, 1, 1, 0, 0, 0, 0)),
        (
            "1/2/2006 3:4:5",
            "3/4/2021 5:6:7",
            utc(2021, 3, 4, 5, 6, 7, 0),
        ),
        // A space in the layout matches a run of spaces.
        (
            "2006-01-02 15:04",
            "2021-03-04    05:06",
            utc(2021, 3, 4, 5, 6, 0, 0),
        ),
    ];
    for (layout, value, want) in cases {
        assert_eq!(ok(&parser(layout), value), *want, "{layout} / {value}");
    }
}

#[test]
fn go_layout_errors() {
    let cases: &[(&str, &str)] = &[
        ("2006-01-02 15:04:05.000", "2021-03-04 05:06:07"),
        ("2006-01-02 15:04:05.000", "2021-03-04 05:06:07.12"),
        ("2006-01-02", "2021-13-04"),
        ("2006-01-02", "2021-04-31"),
        ("2006-01-02", "2019-02-29"),
        ("2006-01-02", "2021-3-04"),
        ("15:04 2006", "24:00 2021"),
        ("15:04:05 2006", "10:60:00 2021"),
        ("2006-01-02", "2021-03-04 extra"),
        ("2006-01-02", "2021-03"),
        ("2006-01-02", "21-03-04"),
        ("Jan 2006", "Foo 2021"),
        ("Mon 2006", "Xyz 2021"),
        ("3 PM 2006", "3 XM 2021"),
        ("2006 -0700", "2021 +07"),
        ("2006 -0700", "2021 *0700"),
        ("2006 Z07:00", "2021 +25:00"),
        ("2006-002", "2021-366"),
        ("2006-002 Jan", "2021-032 Mar"),
    ];
    for (layout, value) in cases {
        refused(&parser(layout), value);
    }
}

#[test]
fn location_applies_to_custom_layouts_without_offset() {
    let p = parser_in("2006-01-02 15:04:05", "America/New_York");
    assert_eq!(ok(&p, "2009-07-01 03:30:20"), utc(2009, 7, 1, 7, 30, 20, 0));
    assert_eq!(
        ok(&p, "2019-07-22 20:29:32"),
        utc(2019, 7, 23, 0, 29, 32, 0)
    );
    assert_eq!(ok(&p, "2009-01-01 03:30:20"), utc(2009, 1, 1, 8, 30, 20, 0));
    // In the spring gap Go moves forward (02:30 EST does not exist: 01:30 EST = 06:30Z)...
    assert_eq!(ok(&p, "2019-03-10 02:30:00"), utc(2019, 3, 10, 6, 30, 0, 0));
    // ... and in the autumn overlap it takes the first (daylight-saving) reading.
    assert_eq!(ok(&p, "2019-11-03 01:30:00"), utc(2019, 11, 3, 5, 30, 0, 0));
    // An explicit offset wins over the location.
    let p = parser_in("2006-01-02 15:04:05 -0700", "America/New_York");
    assert_eq!(
        ok(&p, "2019-07-22 20:29:32 +0000"),
        utc(2019, 7, 22, 20, 29, 32, 0)
    );
    // Short-year layouts too (Promtail's test).
    let p = parser_in("06 Jan 02 15:04:05", "America/New_York");
    assert_eq!(ok(&p, "19 Jul 15 01:02:03"), utc(2019, 7, 15, 5, 2, 3, 0));
    // Named and Unix formats ignore the location.
    let p = parser_in("Unix", "Europe/Berlin");
    assert_eq!(ok(&p, "10"), 10 * NS);
    // UTC and the empty name are UTC.
    assert_eq!(zone(""), Zone::Utc);
    assert_eq!(zone("UTC"), Zone::Utc);
}

#[test]
fn year_less_layouts() {
    let p = parser("Jan 02 15:04:05");
    let at = |value: &str, now: i64| p.parse(value, now).unwrap();
    let now_2019_07_14 = utc(2019, 7, 14, 0, 0, 0, 0) / NS;
    assert_eq!(
        at("Jul 15 01:02:03", now_2019_07_14),
        utc(2019, 7, 15, 1, 2, 3, 0)
    );
    // December value while it is January: last year.
    let now_2019_01_01 = utc(2019, 1, 1, 0, 0, 0, 0) / NS;
    assert_eq!(
        at("Dec 31 23:59:59", now_2019_01_01),
        utc(2018, 12, 31, 23, 59, 59, 0)
    );
    // January value while it is December: next year.
    let now_2018_12_31 = utc(2018, 12, 31, 23, 59, 59, 0) / NS;
    assert_eq!(
        at("Jan 01 01:02:03", now_2018_12_31),
        utc(2019, 1, 1, 1, 2, 3, 0)
    );
    // Feb 29 is accepted (year 0 is a leap year) and becomes Mar 1 in a common year.
    let now_2021_06 = utc(2021, 6, 1, 0, 0, 0, 0) / NS;
    assert_eq!(
        at("Feb 29 10:00:00", now_2021_06),
        utc(2021, 3, 1, 10, 0, 0, 0)
    );
    // Space-padded day (syslog).
    let p = parser("Jan _2 15:04:05");
    assert_eq!(
        p.parse("Jul  5 01:02:03", now_2019_07_14).unwrap(),
        utc(2019, 7, 5, 1, 2, 3, 0)
    );
    assert_eq!(
        p.parse("Jul 15 01:02:03", now_2019_07_14).unwrap(),
        utc(2019, 7, 15, 1, 2, 3, 0)
    );
    // With a location, in and out of daylight saving time.
    let p = parser_in("Jan 02 15:04:05", "America/New_York");
    assert_eq!(
        p.parse("Jul 15 01:02:03", now_2019_07_14).unwrap(),
        utc(2019, 7, 15, 5, 2, 3, 0)
    );
    assert_eq!(
        p.parse("Jan 15 01:02:03", now_2019_07_14).unwrap(),
        utc(2019, 1, 15, 6, 2, 3, 0)
    );
    // An offset in a year-less value.
    let p = parser("Jan _2 15:04:05 -0700");
    assert_eq!(
        p.parse("Jul  5 01:02:03 +0200", now_2019_07_14).unwrap(),
        utc(2019, 7, 4, 23, 2, 3, 0)
    );
}

#[test]
fn fallback_formats() {
    let p = TimeParser::new(
        "UnixMs",
        &[
            "2006-01-02 03:04:05.000000000 +0000 UTC".to_string(),
            "RFC3339".to_string(),
        ],
        None,
        Zone::Utc,
    );
    assert_eq!(
        ok(&p, "2012-11-01T22:08:41-04:00"),
        utc(2012, 11, 2, 2, 8, 41, 0)
    );
    assert_eq!(ok(&p, "1000"), NS);
    refused(&p, "nope");
}

#[test]
fn pipeline_sets_the_timestamp_from_json() {
    let mut p = pipeline(
        "- json:\n    expressions:\n      ts: time\n- timestamp:\n    source: ts\n    format: RFC3339\n",
    );
    let out = run_one(
        &mut p,
        &[],
        r#"{"time":"2012-11-01T22:08:41-04:00","app":"loki"}"#,
    );
    assert_eq!(out.timestamp, Timestamp(utc(2012, 11, 2, 2, 8, 41, 0)));
    // Numbers work through their string form.
    let mut p = pipeline(
        "- json:\n    expressions:\n      ts:\n- timestamp:\n    source: ts\n    format: Unix\n",
    );
    let out = run_one(&mut p, &[], r#"{"ts":1562708916.414}"#);
    assert_eq!(out.timestamp, Timestamp(1_562_708_916 * NS + 414_000_000));
    // Documented example.
    let mut p = pipeline(
        "- json:\n    expressions:\n      time:\n- timestamp:\n    source: time\n    format: RFC3339Nano\n",
    );
    let out = run_one(
        &mut p,
        &[],
        r#"{"time":"2006-01-02T15:04:05.999999999-07:00"}"#,
    );
    assert_eq!(
        out.timestamp,
        Timestamp(utc(2006, 1, 2, 22, 4, 5, 999_999_999))
    );
}

fn entry(labels: &[(&str, &str)], time: Option<&str>) -> Entry {
    let line = match time {
        Some(t) => format!(r#"{{"time":"{t}"}}"#),
        None => "{}".to_string(),
    };
    Entry::new(
        LabelSet::from_pairs(labels.iter().copied()),
        Timestamp(NS),
        bytes::Bytes::from(line),
        Ack::none(),
    )
}

/// Label pairs of a test entry and the `time` field of its line (`None`: no field).
type Step<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

fn run_sequence(action: &str, input: &[Step<'_>]) -> Vec<i64> {
    let mut p = pipeline(&format!(
        "- json:\n    expressions:\n      time:\n- timestamp:\n    source: time\n    format: RFC3339Nano\n    action_on_failure: {action}\n"
    ));
    input
        .iter()
        .map(|(labels, time)| {
            let out = run_entry(&mut p, entry(labels, *time));
            assert_eq!(out.len(), 1);
            out[0].timestamp.0
        })
        .collect()
}

const T4: &str = "2019-10-01T01:02:03.400000000Z";
const T5: &str = "2019-10-01T01:02:03.500000000Z";
const T8: &str = "2019-10-01T01:02:03.800000000Z";

fn t(ms: i64) -> i64 {
    utc(2019, 10, 1, 1, 2, 3, ms * 1_000_000)
}

#[test]
fn fudge_keeps_parsed_timestamps() {
    let got = run_sequence("fudge", &[(&[], Some(T4)), (&[], Some(T5))]);
    assert_eq!(got, [t(400), t(500)]);
}

#[test]
fn fudge_adds_a_nanosecond_per_failure() {
    let got = run_sequence("fudge", &[(&[], Some(T4)), (&[], None), (&[], None)]);
    assert_eq!(got, [t(400), t(400) + 1, t(400) + 2]);
    // A value that does not parse is a failure too.
    let got = run_sequence("fudge", &[(&[], Some(T4)), (&[], Some("garbage"))]);
    assert_eq!(got, [t(400), t(400) + 1]);
}

#[test]
fn fudge_is_per_label_set() {
    let f1: &[(&str, &str)] = &[("filename", "/1.log")];
    let f2: &[(&str, &str)] = &[("filename", "/2.log")];
    let got = run_sequence(
        "fudge",
        &[
            (f1, Some(T4)),
            (f2, Some(T8)),
            (f1, None),
            (f2, None),
            (f1, None),
        ],
    );
    assert_eq!(got, [t(400), t(800), t(400) + 1, t(800) + 1, t(400) + 2]);
    // Label sets Promtail once confused through colliding fingerprints stay independent.
    let a: &[(&str, &str)] = &[("app", "m"), ("uniq0", "1"), ("uniq1", "1")];
    let b: &[(&str, &str)] = &[("app", "l"), ("uniq0", "0"), ("uniq1", "1")];
    let got = run_sequence(
        "fudge",
        &[
            (a, Some(T4)),
            (b, Some(T8)),
            (a, None),
            (b, None),
            (a, None),
            (b, None),
        ],
    );
    assert_eq!(
        got,
        [
            t(400),
            t(800),
            t(400) + 1,
            t(800) + 1,
            t(400) + 2,
            t(800) + 2
        ]
    );
}

#[test]
fn fudge_without_a_known_timestamp_keeps_the_read_time() {
    let got = run_sequence(
        "fudge",
        &[
            (&[("filename", "/1.log")], Some(T4)),
            (&[("filename", "/2.log")], None),
        ],
    );
    assert_eq!(got, [t(400), NS]);
}

#[test]
fn skip_keeps_the_read_time() {
    let got = run_sequence("skip", &[(&[], Some(T4)), (&[], None)]);
    assert_eq!(got, [t(400), NS]);
}

#[test]
fn default_action_is_fudge() {
    let mut p = pipeline(
        "- json:\n    expressions:\n      time:\n- timestamp:\n    source: time\n    format: RFC3339Nano\n",
    );
    assert_eq!(
        run_entry(&mut p, entry(&[], Some(T4)))[0].timestamp.0,
        t(400)
    );
    assert_eq!(
        run_entry(&mut p, entry(&[], None))[0].timestamp.0,
        t(400) + 1
    );
}

#[test]
fn config_errors() {
    let invalid =
        |reason: &str| format!("p[0].timestamp: invalid timestamp stage config: {reason}");
    assert_eq!(
        pipeline_err("- timestamp:"),
        invalid("timestamp source value is required if timestamp is specified")
    );
    assert_eq!(
        pipeline_err("- timestamp: {format: RFC3339}"),
        invalid("timestamp source value is required if timestamp is specified")
    );
    assert_eq!(
        pipeline_err("- timestamp: {source: ts}"),
        invalid("timestamp format is required")
    );
    assert_eq!(
        pipeline_err("- timestamp: {source: ts, format: '2006-01-02', location: America/Canada}"),
        invalid("invalid location specified: unknown time zone America/Canada")
    );
    assert_eq!(
        pipeline_err("- timestamp: {source: ts, format: RFC3339, action_on_failure: foo}"),
        invalid("invalid action on failure (supported values are [skip fudge])")
    );
    assert!(
        pipeline_err("- timestamp: {source: ts, format: RFC3339, fallback_formats: Unix}")
            .contains("must be an array")
    );
    assert_eq!(
        pipeline("- timestamp: {source: ts, format: '2006-01-02', location: Europe/Berlin}").len(),
        1
    );
}
