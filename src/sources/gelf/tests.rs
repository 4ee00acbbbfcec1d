#![allow(clippy::unwrap_used)]

use super::*;

fn mapping(yaml: &str) -> serde_yaml::Mapping {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn settings_defaults_and_keys() {
    let s = settings(&mapping("{}")).unwrap();
    assert_eq!(s.listen_address, ":12201");
    assert!(!s.use_incoming_timestamp);
    let s = settings(&mapping(
        "listen_address: 127.0.0.1:0\nlabels: {job: gelf, n: 1}\nuse_incoming_timestamp: yes\n",
    ))
    .unwrap();
    assert_eq!(s.listen_address, "127.0.0.1:0");
    assert_eq!(s.labels.get("n").map(String::as_str), Some("1"));
    assert!(s.use_incoming_timestamp);
}

#[test]
fn bad_settings_are_named() {
    for (yaml, want) in [
        ("listen_adress: x", "unknown field `listen_adress`"),
        ("listen_address: localhost", "missing port"),
        ("listen_address: ':http'", "invalid port"),
        ("listen_address: '::1:5'", "too many colons"),
        ("labels: {'bad-name': x}", "not a valid label name"),
        ("use_incoming_timestamp: maybe", "boolean"),
    ] {
        let e = check(&mapping(yaml)).unwrap_err();
        assert!(e.contains(want), "{yaml}: {e}");
    }
}

#[test]
fn host_port() {
    assert_eq!(
        split_host_port(":12201").unwrap(),
        ("0.0.0.0".into(), 12201)
    );
    assert_eq!(split_host_port("[::1]:5").unwrap(), ("::1".into(), 5));
    assert_eq!(
        split_host_port("localhost:5").unwrap(),
        ("localhost".into(), 5)
    );
}

fn rules(yaml: &str) -> Vec<Rule> {
    let configs: Vec<crate::config::RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
    crate::settings::relabel_rules(&configs)
}

#[test]
fn entry_labels_line_and_timestamp() {
    let msg = decode::parse_message(
        br#"{"version":"1.1","host":"web-1","short_message":"hi","timestamp":1700000000.5,"level":3,"facility":"app"}"#,
    )
    .unwrap();
    let s = GelfSettings {
        listen_address: ":0".into(),
        labels: [("job".to_string(), "gelf".to_string())].into(),
        use_incoming_timestamp: true,
    };
    let r = rules(
        r#"
- source_labels: [__gelf_message_level]
  target_label: level
- source_labels: [__gelf_message_host]
  target_label: host
- source_labels: [__gelf_message_facility]
  regex: drop-me
  action: drop
"#,
    );
    let e = entry(&s, &r, &msg).unwrap();
    assert_eq!(
        e.labels.stream_key(),
        r#"{host="web-1", job="gelf", level="error"}"#
    );
    assert_eq!(e.timestamp, Timestamp(1_700_000_000_500_000_000));
    assert_eq!(e.stamp, Stamp::Given);
    assert_eq!(&e.line[..], msg.to_json().as_bytes());

    // Without use_incoming_timestamp: read time.
    let s2 = GelfSettings {
        use_incoming_timestamp: false,
        ..s.clone()
    };
    let before = Timestamp::now();
    let e = entry(&s2, &r, &msg).unwrap();
    assert!(e.timestamp >= before);
    assert_eq!(e.stamp, Stamp::ReadTime);

    // A relabel drop drops the entry.
    let dropped = decode::parse_message(br#"{"facility":"drop-me"}"#).unwrap();
    assert!(entry(&s, &r, &dropped).is_none());

    // No incoming timestamp (0): read time even with use_incoming_timestamp.
    let untimed = decode::parse_message(br#"{"short_message":"x"}"#).unwrap();
    assert_eq!(entry(&s, &r, &untimed).unwrap().stamp, Stamp::ReadTime);
}
