//! Unit tests of the Go layout machinery (the stage-level tests are in `stages/timestamp`).

use proptest::prelude::*;

use super::*;
use crate::test_support::proptest_config;

#[test]
fn civil_dates_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
    assert_eq!(days_from_civil(0, 1, 1), -719_528);
    // Day overflow normalises like Go's time.Date.
    assert_eq!(days_from_civil(2021, 2, 29), days_from_civil(2021, 3, 1));
    assert_eq!(civil_from_days(0), (1970, 1));
    assert_eq!(civil_from_days(-1), (1969, 12));
    assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2));
}

proptest! {
    #![proptest_config(proptest_config(256))]
    #[test]
    fn civil_from_days_inverts_days_from_civil(y in -3000i64..3000, m in 1u32..=12, d in 1i64..=28) {
        prop_assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m));
    }
}

#[test]
fn zones_load_like_go() {
    assert_eq!(Zone::load("").unwrap(), Zone::Utc);
    assert_eq!(Zone::load("UTC").unwrap(), Zone::Utc);
    assert!(matches!(Zone::load("Europe/Berlin").unwrap(), Zone::Tz(_)));
    assert_eq!(
        Zone::load("Mars/Olympus").unwrap_err(),
        "unknown time zone Mars/Olympus"
    );
    let berlin = Zone::load("Europe/Berlin").unwrap();
    // 2021-07-01T12:00:00Z is CEST (+2), 2021-01-01T12:00:00Z is CET (+1).
    assert_eq!(berlin.offset_at(1_625_140_800), 7200);
    assert_eq!(berlin.offset_at(1_609_502_400), 3600);
}

#[test]
fn parsed_fields() {
    let l = GoLayout::new("Mon Jan _2 15:04:05.000 MST 2006");
    let p = l.parse("Tue Feb  3 04:05:06.789 CET 2015").unwrap();
    assert_eq!(
        (p.year, p.month, p.day, p.hour, p.min, p.sec, p.nsec),
        (2015, 2, 3, 4, 5, 6, 789_000_000)
    );
    assert_eq!(p.zone, ParsedZone::Name("CET"));
    let p = GoLayout::new("2006-01-02T15:04:05Z07:00")
        .parse("2015-02-03T04:05:06-01:30")
        .unwrap();
    assert_eq!(p.zone, ParsedZone::Offset(-5400));
    let p = GoLayout::new("2006-01-02 MST")
        .parse("2015-02-03 UTC")
        .unwrap();
    assert_eq!(p.zone, ParsedZone::Utc);
    let p = GoLayout::new("2006-01-02 MST")
        .parse("2015-02-03 GMT+3")
        .unwrap();
    assert_eq!(p.zone, ParsedZone::Name("GMT+3"));
    let p = GoLayout::new("2006-01-02 MST")
        .parse("2015-02-03 ChST")
        .unwrap();
    assert_eq!(p.zone, ParsedZone::Name("ChST"));
    assert!(
        GoLayout::new("2006-01-02 MST")
            .parse("2015-02-03 AB")
            .is_err()
    );
    assert!(
        GoLayout::new("2006-01-02 MST")
            .parse("2015-02-03 ABCDEF")
            .is_err()
    );
    // Layout text that is not an element is literal: "Janx" is not a month.
    assert!(GoLayout::new("Janx 2006").parse("Janx 2015").is_ok());
    assert!(GoLayout::new("Janx 2006").parse("Feb 2015").is_err());
}
