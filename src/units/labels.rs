//! The label-name rule Promtail 3.4.6 applies (Prometheus 2.55's legacy names).

/// Prometheus' legacy label-name rule, `[a-zA-Z_][a-zA-Z0-9_]*`: what Promtail 3.4 accepts for
/// the labels its stages and relabel rules create (checked at load).
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}
