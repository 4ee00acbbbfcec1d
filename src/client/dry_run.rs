//! `-dry-run`: entries are printed instead of sent, like Promtail's client logger, and then
//! dropped (which acknowledges them).
//!
//! Each entry is one line `<timestamp>\t<labels>\t<line>\n`: the timestamp in local time as Go's
//! `2006-01-02T15:04:05.999999999-0700` (trailing zeros of the fraction dropped), the labels as
//! `{a="b", c="d"}` with every label (reserved ones included), the line as its raw bytes.
//! Timestamp and labels are blue and yellow when colours are on (stdout is a terminal).
//!
//! Promtail does not print structured metadata; ferrotail adds it to the labels field, as
//! ` structured_metadata={k="v"}`, only when the entry has some, so output without it is
//! byte-for-byte Promtail's and the line stays the last tab-separated field.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use chrono::{DateTime, Local};

use crate::entry::{Entry, go_quote_into};

const BLUE: &str = "\x1b[34m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// Prints entries to a writer (stdout for `-dry-run`).
pub struct DryRunPrinter {
    out: Mutex<Box<dyn Write + Send>>,
    colour: bool,
}

impl std::fmt::Debug for DryRunPrinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRunPrinter")
            .field("colour", &self.colour)
            .finish()
    }
}

impl DryRunPrinter {
    /// Prints to stdout, in colour when stdout is a terminal.
    pub fn stdout() -> Self {
        let colour = std::io::stdout().is_terminal();
        Self::new(Box::new(std::io::stdout()), colour)
    }

    /// Prints to `out`.
    pub fn new(out: Box<dyn Write + Send>, colour: bool) -> Self {
        DryRunPrinter {
            out: Mutex::new(out),
            colour,
        }
    }

    /// Prints the entries, then drops them.
    pub async fn send(&self, entries: Vec<Entry>) {
        let mut buf = Vec::with_capacity(entries.len() * 128);
        let mut text = String::new();
        for e in &entries {
            text.clear();
            if self.colour {
                text.push_str(BLUE);
            }
            format_timestamp(&mut text, e.timestamp.0);
            if self.colour {
                text.push_str(RESET);
            }
            text.push('\t');
            if self.colour {
                text.push_str(YELLOW);
            }
            format_labels(&mut text, e.labels.iter());
            if !e.structured_metadata.is_empty() {
                text.push_str(" structured_metadata=");
                format_labels(
                    &mut text,
                    e.structured_metadata
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
            }
            if self.colour {
                text.push_str(RESET);
            }
            text.push('\t');
            buf.extend_from_slice(text.as_bytes());
            buf.extend_from_slice(&e.line);
            buf.push(b'\n');
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
            tracing::error!(error = %e, "Writing dry-run output failed.");
        }
    }

    /// Flushes the output.
    pub async fn shutdown(self) {
        let mut out = self.out.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "Flushing dry-run output failed.");
        }
    }
}

/// Go's `2006-01-02T15:04:05.999999999-0700` in local time.
fn format_timestamp(out: &mut String, unix_nanos: i64) {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000) as u32;
    let Some(utc) = DateTime::from_timestamp(secs, nanos) else {
        let _ = write!(out, "{unix_nanos}");
        return;
    };
    format_in(out, &utc.with_timezone(&Local));
}

fn format_in<Tz: chrono::TimeZone>(out: &mut String, t: &DateTime<Tz>)
where
    Tz::Offset: std::fmt::Display,
{
    use chrono::Timelike as _;
    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S"));
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let _ = write!(out, "{}", t.format("%z"));
}

/// Pairs as `{a="b", c="d"}` (Prometheus' `LabelSet.String()` when given a sorted label set).
fn format_labels<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        go_quote_into(out, v);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::Tracker;
    use crate::entry::{Ack, LabelSet, Timestamp};
    use bytes::Bytes;
    use chrono::FixedOffset;
    use std::sync::Arc;

    #[test]
    fn timestamps_are_formatted_like_go() {
        let tz = FixedOffset::west_opt(7 * 3600).unwrap();
        let t = |nanos: i64| {
            let mut s = String::new();
            let utc = DateTime::from_timestamp(
                nanos.div_euclid(1_000_000_000),
                nanos.rem_euclid(1_000_000_000) as u32,
            )
            .unwrap();
            format_in(&mut s, &utc.with_timezone(&tz));
            s
        };
        assert_eq!(t(1_700_000_000_000_000_000), "2023-11-14T15:13:20-0700");
        assert_eq!(t(1_700_000_000_120_000_000), "2023-11-14T15:13:20.12-0700");
        assert_eq!(
            t(1_700_000_000_000_000_005),
            "2023-11-14T15:13:20.000000005-0700"
        );
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn prints_then_acknowledges() {
        let out = Shared::default();
        let p = DryRunPrinter::new(Box::new(out.clone()), false);
        let tracker = Tracker::new(0);
        let e = Entry::new(
            LabelSet::from_pairs([("job", "a"), ("__tenant_id__", "t"), ("path", "x\"y")]),
            Timestamp(1_700_000_000_000_000_000),
            Bytes::from_static(b"raw \xff line"),
            tracker.chunk(9, None),
        );
        p.send(vec![e]).await;
        assert_eq!(tracker.committed(), 9);
        p.shutdown().await;
        let text = out.0.lock().unwrap().clone();
        let fields: Vec<&[u8]> = text.split(|&b| b == b'\t').collect();
        assert_eq!(fields.len(), 3);
        assert!(
            fields[0].starts_with(b"2023-11-1"),
            "{:?}",
            String::from_utf8_lossy(fields[0])
        );
        assert_eq!(fields[1], br#"{__tenant_id__="t", job="a", path="x\"y"}"#);
        assert_eq!(fields[2], b"raw \xff line\n");
        assert!(!text.contains(&0x1b), "no colour codes when colour is off");
    }

    #[tokio::test]
    async fn colours_when_asked() {
        let out = Shared::default();
        let p = DryRunPrinter::new(Box::new(out.clone()), true);
        p.send(vec![Entry::new(
            LabelSet::from_pairs([("a", "b")]),
            Timestamp(0),
            Bytes::from_static(b"l"),
            Ack::none(),
        )])
        .await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.starts_with(BLUE) && text.contains(YELLOW) && text.ends_with("\tl\n"),
            "{text:?}"
        );
    }

    #[tokio::test]
    async fn structured_metadata_is_shown_only_when_present() {
        let out = Shared::default();
        let p = DryRunPrinter::new(Box::new(out.clone()), false);
        let mut e = Entry::new(
            LabelSet::from_pairs([("job", "a")]),
            Timestamp(0),
            Bytes::from_static(b"with\ttab"),
            Ack::none(),
        );
        e.structured_metadata = vec![
            ("trace_id".to_owned(), "abc".to_owned()),
            ("pod".to_owned(), "p\"1".to_owned()),
        ];
        p.send(vec![e]).await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let fields: Vec<&str> = text.splitn(3, '\t').collect();
        assert_eq!(
            fields[1],
            r#"{job="a"} structured_metadata={trace_id="abc", pod="p\"1"}"#
        );
        assert_eq!(fields[2], "with\ttab\n");
    }
}
