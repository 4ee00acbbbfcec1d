//! Tests of the `cri` stage: Promtail's documented example, its stage tests (`TestNewCri`,
//! `TestCRI_tags`) and the edge cases of spec §7.2 (timeouts use injected instants).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{CriParts, split_cri};
use crate::ack::Tracker;
use crate::entry::{Entry, LabelSet, Timestamp};
use crate::pipeline::Pipeline;
use crate::pipeline::extracted::ValueRef;
use crate::pipeline::stages::testutil::*;

const T0: &str = "2019-01-01T01:00:00.000000001Z";
const T0_NS: i64 = 1_546_304_400_000_000_001;

fn feed(p: &mut Pipeline, entries: &[(&[(&str, &str)], &str)]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (labels, l) in entries {
        p.process(
            entry_with(labels, Bytes::copy_from_slice(l.as_bytes())),
            &mut out,
        );
    }
    out
}

fn sorted_lines(entries: &[Entry]) -> Vec<String> {
    let mut v: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn documented_example() {
    let pe = run_stages(
        "- cri: {}\n",
        &[],
        "2019-04-30T02:12:41.8443515Z stdout F message",
    )
    .unwrap();
    let get = |k: &str| match pe.extracted.get(k) {
        Some(ValueRef::Str(s)) => s.to_string(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(get("content"), "message");
    assert_eq!(get("stream"), "stdout");
    assert_eq!(get("flags"), "F");
    assert_eq!(get("time"), "2019-04-30T02:12:41.8443515Z");
    assert_eq!(line(&pe.entry), "message");
    assert_labels(&pe.entry, &[("stream", "stdout")]);
    assert_eq!(pe.entry.timestamp, Timestamp(1_556_590_361_844_351_500));
}

#[test]
fn promtail_new_cri_cases() {
    let mut p = pipeline("- cri: {}\n");
    let e = run_one(&mut p, &[], &format!("{T0} stderr F message"));
    assert_eq!(line(&e), "message");
    assert_labels(&e, &[("stream", "stderr")]);
    assert_eq!(e.timestamp, Timestamp(T0_NS));
    // Multi-line content passes whole ((?s)).
    let e = run_one(&mut p, &[], &format!("{T0} stderr F message\nmessage2"));
    assert_eq!(line(&e), "message\nmessage2");
    // An invalid timestamp keeps the read time (fudged from nothing known for the stream).
    let mut p = pipeline("- cri: {}\n");
    let e = run_one(&mut p, &[], "3242 stderr F message");
    assert_eq!(line(&e), "message");
    assert_labels(&e, &[("stream", "stderr")]);
    assert_eq!(e.timestamp, READ_TIME);
    // A line that is not CRI passes unchanged.
    let e = run_one(&mut p, &[], "i'm invalid!!!");
    assert_eq!(line(&e), "i'm invalid!!!");
    assert_labels(&e, &[]);
    assert_eq!(e.timestamp, READ_TIME);
}

#[test]
fn documented_format_examples() {
    assert!(split_cri(b"2019-01-01T01:00:00.000000001Z stderr P test\ngood").is_some());
    assert!(split_cri(b"2019-01-01 T01:00:00.000000001Z stderr testgood").is_none());
    assert!(split_cri(b"2019-01-01T01:00:00.000000001Z testgood").is_none());
}

#[test]
fn split_follows_the_regex() {
    assert_eq!(
        split_cri(b"t stdout F msg"),
        Some(CriParts {
            time: 0..1,
            stream: 2..8,
            flags: 9..10,
            content: 11..14
        })
    );
    // Empty content, CRLF kept in the content, several spaces in the content.
    assert_eq!(split_cri(b"t stdout F ").unwrap().content, 11..11);
    assert_eq!(split_cri(b"t stdout F a\r").unwrap().content, 11..13);
    assert_eq!(split_cri(b"t stderr P  a b").unwrap().content, 11..15);
    // Flags may be longer than one character.
    assert_eq!(split_cri(b"t stdout F:x y").unwrap().flags, 9..12);
    for bad in [
        &b"t stdout F"[..],
        b" t stdout F x",
        b"t  stdout F x",
        b"t stdin F x",
        b"t\tstdout F x",
        b"t stdout\tF x",
        b"t stdout F\tx",
        b"t stdoutF x",
        b"t stdout  x",
        b"",
    ] {
        assert!(
            split_cri(bad).is_none(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Non-ASCII and invalid UTF-8 bytes are `\S`.
    assert!(split_cri(b"\xff\xfe stdout F \xc3").is_some());
}

const TS1: &str = "2019-05-07T18:57:50.904275087+00:00";
const TS2: &str = "2019-05-07T18:57:55.904275087+00:00";

fn tags_case(yaml: &str, entries: &[(&[(&str, &str)], String)]) -> Vec<String> {
    let mut p = pipeline(yaml);
    let mut out = Vec::new();
    for (labels, l) in entries {
        out.extend(feed(&mut p, &[(labels, l.as_str())]));
    }
    sorted_lines(&out)
}

#[test]
fn promtail_tags_f() {
    let bar: &[(&str, &str)] = &[("foo", "bar")];
    let got = tags_case(
        "- cri: {}\n",
        &[
            (bar, format!("{TS1} stdout F some full line")),
            (bar, format!("{TS2} stdout F log")),
        ],
    );
    assert_eq!(got, ["log", "some full line"]);
}

#[test]
fn promtail_tags_p_multi_stream() {
    let bar: &[(&str, &str)] = &[("foo", "bar")];
    let bar2: &[(&str, &str)] = &[("foo", "bar2")];
    let got = tags_case(
        "- cri: {}\n",
        &[
            (bar, format!("{TS1} stdout P partial line 1 ")),
            (bar2, format!("{TS1} stdout P partial line 2 ")),
            (bar, format!("{TS2} stdout F log finished")),
            (bar2, format!("{TS2} stdout F another full log")),
        ],
    );
    assert_eq!(
        got,
        [
            "partial line 1 log finished",
            "partial line 2 another full log"
        ]
    );
}

#[test]
fn promtail_tags_max_partial_lines_exceeded() {
    let l12: &[(&str, &str)] = &[("label1", "val1"), ("label2", "val2")];
    let l1: &[(&str, &str)] = &[("label1", "val1")];
    let l3: &[(&str, &str)] = &[("label1", "val3")];
    let l4: &[(&str, &str)] = &[("label1", "val4")];
    let got = tags_case(
        "- cri: {max_partial_lines: 3}\n",
        &[
            (l12, format!("{TS1} stdout P partial line 1 ")),
            (l1, format!("{TS1} stdout P partial line 2 ")),
            (l12, format!("{TS1} stdout P partial line 3 ")),
            (l3, format!("{TS1} stdout P partial line 4 ")),
            // Three streams already hold a partial line: they all go on.
            (l4, format!("{TS1} stdout P partial line 5 ")),
            (l12, format!("{TS2} stdout F log finished")),
            (l3, format!("{TS2} stdout F another full log")),
            (l4, format!("{TS2} stdout F yet an another full log")),
        ],
    );
    let mut want = vec![
        "partial line 1 partial line 3 ",
        "partial line 2 ",
        "partial line 4 ",
        "log finished",
        "another full log",
        "partial line 5 yet an another full log",
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn promtail_tags_p_single_stream() {
    let bar: &[(&str, &str)] = &[("foo", "bar")];
    let got = tags_case(
        "- cri: {max_partial_lines: 3}\n",
        &[
            (bar, format!("{TS1} stdout P partial line 1 ")),
            (bar, format!("{TS1} stdout P partial line 2 ")),
            (bar, format!("{TS1} stdout P partial line 3 ")),
            // The limit counts streams, not fragments.
            (bar, format!("{TS1} stdout P partial line 4 ")),
            (bar, format!("{TS2} stdout F log finished")),
            (bar, format!("{TS2} stdout F another full log")),
        ],
    );
    assert_eq!(
        got,
        [
            "another full log",
            "partial line 1 partial line 2 partial line 3 partial line 4 log finished"
        ]
    );
}

#[test]
fn promtail_tags_truncation() {
    let bar: &[(&str, &str)] = &[("foo", "bar")];
    let bar2: &[(&str, &str)] = &[("foo", "bar2")];
    let got = tags_case(
        "- cri: {max_partial_line_size: 11, max_partial_line_size_truncate: true}\n",
        &[
            (bar, format!("{TS1} stdout P partial line 1 ")),
            (bar2, format!("{TS1} stdout P partial")),
            (bar, format!("{TS2} stdout F log finished")),
            (bar2, format!("{TS2} stdout F full")),
        ],
    );
    assert_eq!(got, ["partial lin", "partialfull"]);
}

#[test]
fn truncate_without_size_empties_partial_lines() {
    let got = tags_case(
        "- cri: {max_partial_line_size_truncate: 'true'}\n",
        &[
            (&[], format!("{TS1} stdout P abc")),
            (&[], format!("{TS2} stdout F def")),
            (&[], format!("{TS2} stdout F full lines are not cut")),
        ],
    );
    assert_eq!(got, ["", "full lines are not cut"]);
    // Without `truncate`, the size does nothing.
    let got = tags_case(
        "- cri: {max_partial_line_size: 2}\n",
        &[
            (&[], format!("{TS1} stdout P abc")),
            (&[], format!("{TS2} stdout F def")),
        ],
    );
    assert_eq!(got, ["abcdef"]);
}

#[test]
fn joined_line_has_the_last_fragment_timestamp_and_labels() {
    let mut p = pipeline("- cri: {}\n");
    let mut out = feed(
        &mut p,
        &[
            (&[("job", "k")], &format!("{TS1} stderr P a")),
            (&[("job", "k")], &format!("{T0} stderr F b")),
        ],
    );
    assert_eq!(out.len(), 1);
    let e = out.remove(0);
    assert_eq!(line(&e), "ab");
    assert_eq!(e.timestamp, Timestamp(T0_NS));
    assert_labels(&e, &[("job", "k"), ("stream", "stderr")]);
}

#[test]
fn stdout_and_stderr_of_one_file_are_separate_streams() {
    let f: &[(&str, &str)] = &[("filename", "/var/log/pods/x.log")];
    let mut p = pipeline("- cri: {}\n");
    let out = feed(
        &mut p,
        &[
            (f, &format!("{TS1} stdout P out1 ")),
            (f, &format!("{TS1} stderr P err1 ")),
            (f, &format!("{TS1} stdout F out2")),
            (f, &format!("{TS1} stderr F err2")),
        ],
    );
    assert_eq!(
        out.iter().map(line).collect::<Vec<_>>(),
        ["out1 out2", "err1 err2"]
    );
}

#[test]
fn held_partial_goes_on_alone_after_its_wait() {
    let mut p = pipeline("- cri: {}\n");
    assert!(feed(&mut p, &[(&[], &format!("{TS1} stdout P part"))]).is_empty());
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.flush(t0, &mut out);
    p.flush(t0 + Duration::from_millis(2999), &mut out);
    assert!(out.is_empty());
    p.flush(t0 + Duration::from_secs(3), &mut out);
    assert_eq!(out.iter().map(line).collect::<Vec<_>>(), ["part"]);
    // The next full line is not joined with it any more.
    assert_eq!(
        line(&run_one(&mut p, &[], &format!("{TS2} stdout F full"))),
        "full"
    );
}

#[test]
fn release_and_shutdown_send_held_partials() {
    let a: &[(&str, &str)] = &[("filename", "a.log")];
    let b: &[(&str, &str)] = &[("filename", "b.log")];
    let mut p = pipeline("- cri: {}\n");
    assert!(
        feed(
            &mut p,
            &[
                (a, &format!("{TS1} stdout P a1")),
                (b, &format!("{TS1} stdout P b1"))
            ]
        )
        .is_empty()
    );
    let mut out = Vec::new();
    // The held entries' streams have a `stream` label; release goes by the file's labels.
    p.flush_stream(&LabelSet::from_pairs(a.iter().copied()), &mut out);
    assert_eq!(out.iter().map(line).collect::<Vec<_>>(), ["a1"]);
    assert_labels(&out[0], &[("filename", "a.log"), ("stream", "stdout")]);
    out.clear();
    p.flush_all(&mut out);
    assert_eq!(out.iter().map(line).collect::<Vec<_>>(), ["b1"]);
}

#[test]
fn joined_line_is_acknowledged_with_all_its_fragments() {
    let mut p = pipeline("- cri: {}\n");
    let t = Tracker::new(0);
    let labels = LabelSet::from_pairs([("filename", "a.log")]);
    let mut out = Vec::new();
    for (l, end) in [("P a", 10), ("P b", 20), ("F c", 30)] {
        let ack = t.chunk(end, None);
        let text = format!("{TS1} stdout {l}");
        p.process(
            Entry::new(labels.clone(), READ_TIME, Bytes::from(text), ack),
            &mut out,
        );
        if end < 30 {
            assert!(out.is_empty());
            assert_eq!(t.committed(), 0);
        }
    }
    assert_eq!(out.iter().map(line).collect::<Vec<_>>(), ["abc"]);
    assert_eq!(t.committed(), 0);
    out.clear(); // delivered
    assert_eq!(t.committed(), 30);
}

#[test]
fn invalid_utf8_content_keeps_its_bytes() {
    let mut p = pipeline("- cri: {}\n");
    let mut out = Vec::new();
    let mut input = format!("{TS1} stdout F ").into_bytes();
    input.extend_from_slice(b"a\xffb");
    p.process(entry_with(&[], Bytes::from(input)), &mut out);
    assert_eq!(&out[0].line[..], b"a\xffb");
}

#[test]
fn a_tags_value_replaces_the_line_like_promtail() {
    // Promtail's base pipeline ends with `output: {source: tags}`; the extracted map is seeded
    // with the labels, so a `tags` label becomes the line.
    let mut p = pipeline("- cri: {}\n");
    let e = run_one(&mut p, &[("tags", "x")], &format!("{TS1} stdout F msg"));
    assert_eq!(line(&e), "x");
}

#[test]
fn options_are_weakly_decoded_and_checked() {
    let got = tags_case(
        "- cri: {max_partial_lines: '1'}\n",
        &[
            (&[("s", "1")], format!("{TS1} stdout P a")),
            (&[("s", "2")], format!("{TS1} stdout P b")),
            (&[("s", "2")], format!("{TS1} stdout F c")),
        ],
    );
    assert_eq!(got, ["a", "bc"]);
    assert!(pipeline_err("- cri: {max_partial_line_size: -1}\n").contains("max_partial_line_size"));
    assert!(pipeline_err("- cri: {max_partial_lines: many}\n").contains("max_partial_lines"));
    assert!(
        pipeline_err("- cri: {max_partial_line_size_truncate: maybe}\n")
            .contains("max_partial_line_size_truncate")
    );
}
