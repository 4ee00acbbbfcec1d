//! Table tests of both parsers with messages as real senders write them (rsyslog, syslog-ng,
//! BSD syslogd, network gear), and with bad input.

#![allow(clippy::unwrap_used)]

use chrono::TimeZone;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap()
}

fn nanos(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

#[test]
fn rfc5424_messages() {
    struct Case {
        input: &'static str,
        facility: &'static str,
        severity: &'static str,
        timestamp: Option<i64>,
        hostname: Option<&'static str>,
        app: Option<&'static str>,
        proc_id: Option<&'static str>,
        msg_id: Option<&'static str>,
        message: Option<&'static str>,
    }
    let cases = [
        // RFC 5424 §6.5 example 1.
        Case {
            input: "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
            facility: "auth",
            severity: "critical",
            timestamp: Some(nanos(2003, 10, 11, 22, 14, 15) + 3_000_000),
            hostname: Some("mymachine.example.com"),
            app: Some("su"),
            proc_id: None,
            msg_id: Some("ID47"),
            message: Some("'su root' failed for lonvick on /dev/pts/8"),
        },
        // RFC 5424 §6.5 example 2: an offset, microseconds.
        Case {
            input: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            facility: "local4",
            severity: "notice",
            timestamp: Some(nanos(2003, 8, 24, 12, 14, 15) + 3_000),
            hostname: Some("192.0.2.1"),
            app: Some("myproc"),
            proc_id: Some("8710"),
            msg_id: None,
            message: Some("%% It's time to make the do-nuts."),
        },
        // rsyslog's RSYSLOG_SyslogProtocol23Format.
        Case {
            input: "<30>1 2026-12-07T07:59:58.123456+01:00 web-01 systemd 1 - - Started Session 42 of user root.",
            facility: "daemon",
            severity: "informational",
            timestamp: Some(nanos(2026, 12, 7, 6, 59, 58) + 123_456_000),
            hostname: Some("web-01"),
            app: Some("systemd"),
            proc_id: Some("1"),
            msg_id: None,
            message: Some("Started Session 42 of user root."),
        },
        // syslog-ng with structured data (meta sequenceId) and a nil timestamp.
        Case {
            input: "<13>1 - db-2 postgres 977 - [meta sequenceId=\"3\"][origin ip=\"10.0.0.2\"] LOG:  checkpoint starting: time",
            facility: "user",
            severity: "notice",
            timestamp: None,
            hostname: Some("db-2"),
            app: Some("postgres"),
            proc_id: Some("977"),
            msg_id: None,
            message: Some("LOG:  checkpoint starting: time"),
        },
        // No MSG: parses, counted as empty by the source.
        Case {
            input: "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]",
            facility: "local4",
            severity: "notice",
            timestamp: Some(nanos(2003, 10, 11, 22, 14, 15) + 3_000_000),
            hostname: Some("mymachine.example.com"),
            app: Some("evntslog"),
            proc_id: None,
            msg_id: Some("ID47"),
            message: None,
        },
        // Every header field nil; PRI 0 (kern.emergency).
        Case {
            input: "<0>1 - - - - - - kernel panic",
            facility: "kern",
            severity: "emergency",
            timestamp: None,
            hostname: None,
            app: None,
            proc_id: None,
            msg_id: None,
            message: Some("kernel panic"),
        },
        // A trailing space and nothing else is no MSG.
        Case {
            input: "<191>1 - - - - - - ",
            facility: "local7",
            severity: "debug",
            timestamp: None,
            hostname: None,
            app: None,
            proc_id: None,
            msg_id: None,
            message: None,
        },
    ];
    for c in cases {
        let m = parse_rfc5424(c.input.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", c.input));
        assert_eq!(m.facility_keyword(), c.facility, "{}", c.input);
        assert_eq!(m.severity_keyword(), c.severity, "{}", c.input);
        assert_eq!(m.timestamp, c.timestamp, "{}", c.input);
        assert_eq!(m.hostname, c.hostname, "{}", c.input);
        assert_eq!(m.app_name, c.app, "{}", c.input);
        assert_eq!(m.proc_id, c.proc_id, "{}", c.input);
        assert_eq!(m.msg_id, c.msg_id, "{}", c.input);
        assert_eq!(text(m.message).as_deref(), c.message, "{}", c.input);
    }
}

#[test]
fn rfc5424_structured_data() {
    let m = parse_rfc5424(
        br#"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 iut="3" eventSource="App \"x\" \] \\ \n"][examplePriority@32473 class="high"] msg"#,
    )
    .unwrap();
    assert_eq!(
        m.structured_data,
        vec![
            (
                "exampleSDID@32473",
                vec![
                    ("iut", "3".to_owned()),
                    ("eventSource", r#"App "x" ] \ \n"#.to_owned())
                ]
            ),
            ("examplePriority@32473", vec![("class", "high".to_owned())]),
        ]
    );
    assert_eq!(text(m.message).as_deref(), Some("msg"));
    // An element without parameters.
    let m = parse_rfc5424(b"<13>1 - - - - - [empty] x").unwrap();
    assert_eq!(m.structured_data, vec![("empty", vec![])]);
}

#[test]
fn rfc5424_keeps_non_utf8_messages_as_bytes() {
    let m = parse_rfc5424(b"<13>1 - - - - - - \xff\xfe binary").unwrap();
    assert_eq!(m.message, Some(&b"\xff\xfe binary"[..]));
}

#[test]
fn rfc5424_bad_input() {
    for input in [
        "",
        "hello",
        "<>1 - - - - - - x",
        "<192>1 - - - - - - x",
        "<013>1 - - - - - - x",
        "<1234>1 - - - - - - x",
        "<13 - - - - - - x",
        "<13>0 - - - - - - x",
        "<13>1000 - - - - - - x",
        "<13> - - - - - - x",
        "<13>1 2003-13-11T22:14:15Z - - - - - x",
        "<13>1 2003-02-30T22:14:15Z - - - - - x",
        "<13>1 2003-10-11T25:14:15Z - - - - - x",
        "<13>1 2003-10-11 22:14:15Z - - - - - x",
        "<13>1 2003-10-11T22:14:15 - - - - - x",
        "<13>1 2003-10-11T22:14:15.1234567Z - - - - - x",
        "<13>1 2003-10-11T22:14:15.Z - - - - - x",
        "<13>1 - - - - -",
        "<13>1 - - - - - [unterminated x",
        "<13>1 - - - - - [id k=\"v] x",
        "<13>1 - - - - - [id k=v] x",
        "<13>1 - - - - - [id k=\"a]b\"] x",
        "<13>1 - - - - - nosd x",
        "<13>1 - - - - - -x",
        // RFC 3164 sent to an RFC 5424 listener.
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
    ] {
        assert!(parse_rfc5424(input.as_bytes()).is_err(), "{input:?} parsed");
    }
    // Field length limits (APP-NAME at most 48).
    let long_app = format!("<13>1 - - {} - - - x", "a".repeat(49));
    assert!(parse_rfc5424(long_app.as_bytes()).is_err());
    let ok_app = format!("<13>1 - - {} - - - x", "a".repeat(48));
    assert!(parse_rfc5424(ok_app.as_bytes()).is_ok());
}

#[test]
fn rfc3164_messages() {
    struct Case {
        input: &'static str,
        facility: &'static str,
        severity: &'static str,
        timestamp: i64,
        hostname: &'static str,
        app: Option<&'static str>,
        proc_id: Option<&'static str>,
        message: Option<&'static str>,
    }
    let cases = [
        // RFC 3164 §5.4 example 1.
        Case {
            input: "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            facility: "auth",
            severity: "critical",
            timestamp: nanos(2026, 10, 11, 22, 14, 15),
            hostname: "mymachine",
            app: Some("su"),
            proc_id: None,
            message: Some("'su root' failed for lonvick on /dev/pts/8"),
        },
        // rsyslog's default forwarding format, space-padded day, a PID.
        Case {
            input: "<86>Dec  7 07:59:01 web-01 sshd[2231]: Accepted publickey for deploy from 10.1.2.3 port 52114 ssh2",
            facility: "authpriv",
            severity: "informational",
            timestamp: nanos(2026, 12, 7, 7, 59, 1),
            hostname: "web-01",
            app: Some("sshd"),
            proc_id: Some("2231"),
            message: Some("Accepted publickey for deploy from 10.1.2.3 port 52114 ssh2"),
        },
        // December read in January would be last year; here a date more than a month ahead
        // of "now" (Dec 2026) cannot happen, but one from late December is this year.
        Case {
            input: "<78>Dec 31 23:59:59 cronhost CRON[99]: (root) CMD (run-parts /etc/cron.hourly)",
            // Linux's LOG_CRON is 9, which go-syslog (so Promtail) calls "clock daemon".
            facility: "clock daemon",
            severity: "informational",
            timestamp: nanos(2026, 12, 31, 23, 59, 59),
            hostname: "cronhost",
            app: Some("CRON"),
            proc_id: Some("99"),
            message: Some("(root) CMD (run-parts /etc/cron.hourly)"),
        },
        // rsyslog RSYSLOG_ForwardFormat: an RFC 3339 timestamp.
        Case {
            input: "<13>2026-12-07T07:00:00.5+00:00 host tag: hi",
            facility: "user",
            severity: "notice",
            timestamp: nanos(2026, 12, 7, 7, 0, 0) + 500_000_000,
            hostname: "host",
            app: Some("tag"),
            proc_id: None,
            message: Some("hi"),
        },
        // Network gear without a tag: the rest is the message.
        Case {
            input: "<190>Jan  5 10:00:00 switch-3 %LINK-3-UPDOWN Interface Gi0/1, changed state to up",
            facility: "local7",
            severity: "informational",
            timestamp: nanos(2026, 1, 5, 10, 0, 0),
            hostname: "switch-3",
            app: None,
            proc_id: None,
            message: Some("%LINK-3-UPDOWN Interface Gi0/1, changed state to up"),
        },
        // No message at all.
        Case {
            input: "<13>Feb 05 17:32:18 host",
            facility: "user",
            severity: "notice",
            timestamp: nanos(2026, 2, 5, 17, 32, 18),
            hostname: "host",
            app: None,
            proc_id: None,
            message: None,
        },
    ];
    for c in cases {
        let m =
            parse_rfc3164(c.input.as_bytes(), now()).unwrap_or_else(|e| panic!("{}: {e}", c.input));
        assert_eq!(m.facility_keyword(), c.facility, "{}", c.input);
        assert_eq!(m.severity_keyword(), c.severity, "{}", c.input);
        assert_eq!(m.timestamp, Some(c.timestamp), "{}", c.input);
        assert_eq!(m.hostname, Some(c.hostname), "{}", c.input);
        assert_eq!(m.app_name, c.app, "{}", c.input);
        assert_eq!(m.proc_id, c.proc_id, "{}", c.input);
        assert_eq!(m.msg_id, None);
        assert_eq!(text(m.message).as_deref(), c.message, "{}", c.input);
    }
}

#[test]
fn rfc3164_year_rolls_back_for_dates_ahead() {
    let january = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 5).unwrap();
    let m = parse_rfc3164(b"<13>Dec 31 23:59:59 h t: late", january).unwrap();
    assert_eq!(m.timestamp, Some(nanos(2026, 12, 31, 23, 59, 59)));
    // Feb 29 in a year that has none: the last year that had... the previous year is tried.
    let m = parse_rfc3164(
        b"<13>Feb 29 12:00:00 h t: leap",
        Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap(),
    );
    assert!(m.is_err() || m.unwrap().timestamp.is_some());
}

#[test]
fn rfc3164_bad_input() {
    for input in [
        "",
        "Oct 11 22:14:15 host su: x",
        "<34>",
        "<34>Foo 11 22:14:15 host su: x",
        "<34>Oct 32 22:14:15 host su: x",
        "<34>Oct 11 25:14:15 host su: x",
        "<34>Oct 11 22:14 host su: x",
        "<34>Oct 11 22:14:15",
        "<34>Oct 11 22:14:15 ",
        "<34>Oct 11 22:14:15host",
        "<300>Oct 11 22:14:15 host su: x",
    ] {
        assert!(
            parse_rfc3164(input.as_bytes(), now()).is_err(),
            "{input:?} parsed"
        );
    }
}

#[test]
fn rfc5424_errors_name_the_problem_and_column() {
    const HOST: &str =
        "expecting an hostname (from 1 to max 255 US-ASCII characters) or a nil value";
    const APP: &str = "expecting an app-name (from 1 to max 48 US-ASCII characters) or a nil value";
    const TS: &str = "expecting a RFC3339MICRO timestamp or a nil value";
    let long_app = format!("<13>1 - - {} - - - x", "a".repeat(49));
    for (input, problem, at) in [
        // A control byte inside a field: where go-syslog's machine stops.
        ("<13>1 - h\x01st a - - - x", HOST, 9),
        // An empty field (two spaces).
        ("<13>1 -  a - - - x", HOST, 8),
        // The 49th byte of an APP-NAME.
        (long_app.as_str(), APP, 58),
        // The seventh fraction digit.
        ("<13>1 2003-10-11T22:14:15.1234567Z - - - - - x", TS, 32),
        // No space (and no STRUCTURED-DATA) after MSGID.
        ("<13>1 - - - - -", "parsing error", 15),
    ] {
        let err = parse_rfc5424(input.as_bytes()).unwrap_err();
        assert_eq!(err, ParseError { problem, at }, "{input:?}");
        assert_eq!(err.to_string(), format!("{problem} [col {at}]"));
    }
}
