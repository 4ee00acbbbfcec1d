use super::*;

fn yaml(text: &str) -> serde_yaml::Mapping {
    serde_yaml::from_str(text).unwrap()
}

fn entry(fields: &[(&str, &[u8])]) -> JournalEntry {
    JournalEntry {
        cursor: "s=abc;i=1;b=b;m=1;t=628a78ff34c00;x=1".to_string(),
        realtime_us: 1_733_550_000_000_123,
        fields: fields
            .iter()
            .map(|(n, v)| (n.to_string(), Bytes::copy_from_slice(v)))
            .collect(),
        oversized: false,
    }
}

fn rules(text: &str) -> Vec<Rule> {
    let configs: Vec<crate::config::RelabelConfig> = serde_yaml::from_str(text).unwrap();
    crate::settings::relabel_rules(&configs)
}

#[test]
fn settings_follow_promtail() {
    let s = settings_from_yaml(&yaml(
        "{json: yes, max_age: 12h, path: /var/log/journal, matches: '_SYSTEMD_UNIT=ssh.service _TRANSPORT=kernel', labels: {job: systemd-journal}}",
    ))
    .unwrap();
    assert!(s.json);
    assert_eq!(s.max_age, Duration::from_secs(12 * 3600));
    assert_eq!(s.matches.len(), 2);
    assert_eq!(
        settings_from_yaml(&yaml("{}")).unwrap().max_age,
        Duration::from_secs(7 * 3600)
    );
    for bad in [
        "{max_age: 7d}",
        "{matches: 'A=b=c'}",
        "{matches: 'nofield'}",
        "{labels: {'a.b': x}}",
        "{unknown: 1}",
    ] {
        assert!(settings_from_yaml(&yaml(bad)).is_err(), "{bad} accepted");
    }
}

#[test]
fn labels_line_and_timestamp_as_promtail() {
    let s = settings_from_yaml(&yaml("{labels: {job: systemd-journal}}")).unwrap();
    let r = rules(
        "- source_labels: [__journal__systemd_unit]\n  target_label: unit\n- source_labels: [__journal_priority_keyword]\n  target_label: level\n",
    );
    let e = entry(&[
        ("MESSAGE", b"Accepted publickey for deploy"),
        ("PRIORITY", b"3"),
        ("_SYSTEMD_UNIT", b"ssh.service"),
        ("_HOSTNAME", b"h1"),
    ]);
    let (labels, line, ts) = to_entry(&e, &s, &r).unwrap().unwrap();
    assert_eq!(
        labels.stream_key(),
        r#"{job="systemd-journal", level="error", unit="ssh.service"}"#
    );
    assert_eq!(line.as_ref(), b"Accepted publickey for deploy");
    assert_eq!(ts, Timestamp(1_733_550_000_000_123_000));
}

#[test]
fn json_lines_hold_every_data_field_sorted_with_go_escapes() {
    let s = settings_from_yaml(&yaml("{json: true, labels: {job: j}}")).unwrap();
    let e = entry(&[
        ("MESSAGE", b"a <b> & c"),
        ("PRIORITY", b"6"),
        ("MESSAGE", b"last <wins>"),
        ("_PID", b"42"),
        // Binary data: encoding/json writes each invalid byte as \ufffd, \b and \f short.
        ("SYSLOG_RAW", b"\xff\xfe\x08k=\"v\"\t\x0c\x01\xe2\x80\xa8"),
    ]);
    let (_, line, _) = to_entry(&e, &s, &[]).unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&line).unwrap(),
        r#"{"MESSAGE":"last \u003cwins\u003e","PRIORITY":"6","SYSLOG_RAW":"\ufffd\ufffd\bk=\"v\"\t\f\u0001\u2028","_PID":"42"}"#
    );
}

#[test]
fn entries_without_message_or_labels_are_counted_reasons() {
    let s = settings_from_yaml(&yaml("{labels: {job: j}}")).unwrap();
    assert_eq!(
        to_entry(&entry(&[("PRIORITY", b"6")]), &s, &[]),
        Err("no_message")
    );
    let bare = settings_from_yaml(&yaml("{}")).unwrap();
    assert_eq!(
        to_entry(&entry(&[("MESSAGE", b"m")]), &bare, &[]),
        Err("empty_labels")
    );
    let drop = rules("- source_labels: [__journal__comm]\n  regex: cron\n  action: drop\n");
    assert_eq!(
        to_entry(&entry(&[("MESSAGE", b"m"), ("_COMM", b"cron")]), &s, &drop),
        Ok(None)
    );
}

#[test]
fn a_cursor_names_its_realtime() {
    assert_eq!(
        cursor_realtime_us("s=5072;i=2;b=6c7c;m=44c;t=628a78ff34c64;x=aa14"),
        Some(0x628a78ff34c64)
    );
    assert_eq!(cursor_realtime_us("garbage"), None);
}
