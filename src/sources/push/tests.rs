//! Unit tests of the push source: body decoding (protobuf and JSON, compressed or not, bad
//! bodies, budget limits), label strings, and the server end to end on loopback with a fake
//! pipeline (relabeling per stream, answers, budget, acknowledged mode, shutdown).

use std::io::Write as _;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::decode::{PushError, decode_push, parse_labels, raw_lines};
use super::*;
use crate::client::proto::{
    self, EntryAdapter, LabelPairAdapter, ProtoTimestamp, PushRequest, StreamAdapter,
};
use crate::positions::Positions;

const T0: i64 = 1_733_550_000_000_000_000;

fn unlimited() -> impl FnMut(usize) -> Result<(), PushError> {
    |_| Ok(())
}

fn request() -> PushRequest {
    let entry = |i: i64, line: &str, sm: &[(&str, &str)]| EntryAdapter {
        timestamp: Some(ProtoTimestamp {
            seconds: (T0 + i) / 1_000_000_000,
            nanos: ((T0 + i) % 1_000_000_000) as i32,
        }),
        line: Bytes::copy_from_slice(line.as_bytes()),
        structured_metadata: sm
            .iter()
            .map(|(n, v)| LabelPairAdapter {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
    };
    PushRequest {
        streams: vec![
            StreamAdapter {
                labels: r#"{app="web", level="info"}"#.into(),
                entries: vec![
                    entry(0, "GET /index.html 200", &[("trace_id", "abc")]),
                    entry(1, "GET /index.html 200", &[]),
                ],
            },
            StreamAdapter {
                labels: r#"{app="db", empty=""}"#.into(),
                entries: vec![entry(5, "slow query: 1.2s", &[])],
            },
        ],
    }
}

fn snappy_proto(req: &PushRequest) -> Bytes {
    proto::Encoder::new().encode(req).unwrap()
}

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn raw_deflate(data: &[u8]) -> Bytes {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn zlib(data: &[u8]) -> Bytes {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

const JSON: &str = r#"{"streams": [
  {"stream": {"app": "web", "level": "info"},
   "values": [["1733550000000000000", "GET /index.html 200", {"trace_id": "abc"}],
              ["1733550000000000001", "GET /index.html 200"]]},
  {"stream": {"app": "db", "empty": ""},
   "values": [["1733550000000000005", "slow query: 1.2s", {}, "ignored"]]}
]}"#;

/// The streams of `request()` as decoded: (labels, [(ts, line, metadata)]).
/// Each stream's labels and its entries' (timestamp, line, metadata).
type Summary = Vec<(String, Vec<(i64, String, Vec<(String, String)>)>)>;

fn summary(d: &Decoded) -> Summary {
    d.streams
        .iter()
        .map(|s| {
            (
                format!("{:?}", s.labels),
                s.entries
                    .iter()
                    .map(|e| {
                        (
                            e.timestamp,
                            String::from_utf8_lossy(&e.line).into_owned(),
                            e.structured_metadata.clone(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn expected() -> Summary {
    let sm = vec![("trace_id".to_owned(), "abc".to_owned())];
    vec![
        (
            r#"{"app": "web", "level": "info"}"#.to_owned(),
            vec![
                (T0, "GET /index.html 200".to_owned(), sm),
                (T0 + 1, "GET /index.html 200".to_owned(), vec![]),
            ],
        ),
        (
            r#"{"app": "db"}"#.to_owned(),
            vec![(T0 + 5, "slow query: 1.2s".to_owned(), vec![])],
        ),
    ]
}

#[test]
fn protobuf_bodies_decode_compressed_or_not() {
    let body = snappy_proto(&request());
    for (ct, ce, b) in [
        (Some("application/x-protobuf"), None, body.clone()),
        // Any type but JSON is protobuf, as in Loki.
        (Some("text/plain"), Some("snappy"), body.clone()),
        (Some("application/x-protobuf"), Some("gzip"), gzip(&body)),
        (
            Some("application/x-protobuf"),
            Some("deflate"),
            raw_deflate(&body),
        ),
        (Some("application/x-protobuf"), Some("deflate"), zlib(&body)),
    ] {
        let d = decode_push(b, ct, ce, &mut unlimited()).unwrap();
        assert_eq!(summary(&d), expected(), "{ct:?} {ce:?}");
    }
}

#[test]
fn json_bodies_decode_compressed_or_not() {
    for (ce, b) in [
        (None, Bytes::from_static(JSON.as_bytes())),
        (Some("gzip"), gzip(JSON.as_bytes())),
        (Some("deflate"), raw_deflate(JSON.as_bytes())),
    ] {
        let d = decode_push(
            b,
            Some("application/json; charset=utf-8"),
            ce,
            &mut unlimited(),
        )
        .unwrap();
        assert_eq!(summary(&d), expected(), "{ce:?}");
    }
    // Loki's leniencies: numbers as label values, null values, entries of one element.
    let d = decode_push(
        Bytes::from_static(br#"{"streams":[{"stream":{"n":1},"values":[null,["5"]]},{"stream":{"a":"b"},"values":null}]}"#),
        Some("application/json"),
        None,
        &mut unlimited(),
    )
    .unwrap();
    assert_eq!(d.streams[0].labels.get("n").map(String::as_str), Some("1"));
    assert_eq!(d.streams[0].entries.len(), 1);
    assert_eq!(d.streams[0].entries[0].timestamp, 5);
    assert!(d.streams[1].entries.is_empty());
}

#[test]
fn invalid_utf8_lines_pass_unchanged() {
    let mut req = request();
    req.streams[0].entries[0].line = Bytes::from_static(b"\xff\xfe bad \xc3\x28");
    let d = decode_push(
        snappy_proto(&req),
        Some("application/x-protobuf"),
        None,
        &mut unlimited(),
    )
    .unwrap();
    assert_eq!(&d.streams[0].entries[0].line[..], b"\xff\xfe bad \xc3\x28");
}

#[test]
fn bad_bodies_are_named() {
    let proto = snappy_proto(&request());
    let mut bad_labels = request();
    bad_labels.streams[1].labels = "{app=db}".into();
    for (body, ct, ce, want) in [
        (proto.clone(), None, None, "mime: no media type"),
        (proto.clone(), Some(""), None, "mime: no media type"),
        (
            proto.clone(),
            Some("application/x-protobuf"),
            Some("br"),
            "Content-Encoding \"br\" not supported",
        ),
        (
            Bytes::from_static(b"\xff\xff\xff\xff\xff"),
            Some("application/x-protobuf"),
            None,
            "snappy",
        ),
        (
            snap::raw::Encoder::new()
                .compress_vec(b"\xff\xff\xff")
                .unwrap()
                .into(),
            Some("application/x-protobuf"),
            None,
            "invalid protobuf",
        ),
        (
            snappy_proto(&bad_labels),
            Some("application/x-protobuf"),
            None,
            "couldn't parse labels",
        ),
        (
            proto.clone(),
            Some("application/x-protobuf"),
            Some("gzip"),
            "gzip",
        ),
        (
            Bytes::from_static(b"{\"streams\": ["),
            Some("application/json"),
            None,
            "invalid JSON push request",
        ),
        (
            Bytes::from_static(br#"{"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]}"#),
            Some("application/json"),
            None,
            "error reading entry timestamp",
        ),
        (
            Bytes::from_static(br#"{"streams":[{"stream":{"a":"b"},"values":[[1,"l"]]}]}"#),
            Some("application/json"),
            None,
            "invalid JSON",
        ),
        (
            Bytes::from_static(br#"{"streams":[{"stream":{"a.b":"c"},"values":[]}]}"#),
            Some("application/json"),
            None,
            "invalid label name",
        ),
        (
            Bytes::from_static(
                br#"{"streams":[{"stream":{"a":"b"},"values":[["1","l",{"k":1}]]}]}"#,
            ),
            Some("application/json"),
            None,
            "invalid JSON",
        ),
        (
            Bytes::from_static(br#"{"streams":[{"stream":{"a":"b"},"values":[["1","l",null]]}]}"#),
            Some("application/json"),
            None,
            "invalid JSON",
        ),
    ] {
        let e = decode_push(body, ct, ce, &mut unlimited()).unwrap_err();
        let PushError::BadRequest(msg) = &e else {
            panic!("{want}: {e:?}")
        };
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
}

#[test]
fn decompression_is_charged_before_it_is_held() {
    // A snappy block declaring 100 MB in a few bytes is refused before anything is allocated.
    let mut bomb = Vec::new();
    let mut n: u64 = 100_000_000;
    while n >= 0x80 {
        bomb.push((n as u8) | 0x80);
        n >>= 7;
    }
    bomb.push(n as u8);
    bomb.extend_from_slice(b"\x00");
    let mut charged = 0usize;
    let mut cap = |n: usize| {
        charged += n;
        if charged > 1 << 20 {
            Err(PushError::TooLarge("over".into()))
        } else {
            Ok(())
        }
    };
    let e = decode_push(bomb.into(), Some("application/x-protobuf"), None, &mut cap).unwrap_err();
    assert_eq!(e, PushError::TooLarge("over".into()));
    // A gzip bomb stops at the cap too.
    let zeros = gzip(&vec![0u8; 8 << 20]);
    let mut charged = 0usize;
    let mut cap = |n: usize| {
        charged += n;
        if charged > 1 << 20 {
            Err(PushError::Full("full".into()))
        } else {
            Ok(())
        }
    };
    let e = decode_push(zeros, Some("application/json"), Some("gzip"), &mut cap).unwrap_err();
    assert_eq!(e, PushError::Full("full".into()));
}

#[test]
fn label_strings_parse_like_promql() {
    let l = |s: &str| parse_labels(s).map(|m| format!("{m:?}"));
    assert_eq!(l(r#"{a="b", c="d"}"#).unwrap(), r#"{"a": "b", "c": "d"}"#);
    assert_eq!(
        l(r#" { c = "d" , a="b", } "#).unwrap(),
        r#"{"a": "b", "c": "d"}"#
    );
    assert_eq!(l("{}").unwrap(), "{}");
    assert_eq!(
        l(r#"up{job="x"}"#).unwrap(),
        r#"{"__name__": "up", "job": "x"}"#
    );
    assert_eq!(
        l(r#"{a="q\"\\\n\t\x41\101\u00e9\U0001F600", b='s\'q', c=`r\n`}"#).unwrap(),
        "{\"a\": \"q\\\"\\\\\\n\\tAAé😀\", \"b\": \"s'q\", \"c\": \"r\\\\n\"}"
    );
    assert_eq!(
        l(r#"{"quoted_name"="v"}"#).unwrap(),
        r#"{"quoted_name": "v"}"#
    );
    assert_eq!(l(r#"{a="", b="x"}"#).unwrap(), r#"{"b": "x"}"#);
    for bad in [
        "",
        "{",
        "{a}",
        "{a=b}",
        r#"{a="b""#,
        r#"{a="b" c="d"}"#,
        r#"{a="b", a="c"}"#,
        r#"{a="\q"}"#,
        r#"{a="\xff"}"#,
        r#"{a="\u12"}"#,
        r#"{a="\x+1"}"#,
        r#"{a="b"} x"#,
        "{1a=\"b\"}",
        r#"{"a.b"="c"}"#,
        "{a=\"b\nc\"}",
    ] {
        assert!(parse_labels(bad).is_err(), "{bad:?} parsed: {:?}", l(bad));
    }
}

#[test]
fn raw_lines_split_and_trim_like_promtail() {
    let body = Bytes::from_static(b"one\r\n\ntwo\n\r\nthree\r\r\nlast no newline");
    let lines = raw_lines(&body);
    let got: Vec<&[u8]> = lines.iter().map(|b| &b[..]).collect();
    assert_eq!(got, [&b"one"[..], b"two", b"three", b"last no newline"]);
    assert!(raw_lines(&Bytes::new()).is_empty());
}

// ---- the server, on loopback, with a fake pipeline ----

fn rules(yaml: &str) -> Vec<Rule> {
    let configs: Vec<crate::config::RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
    crate::settings::relabel_rules(&configs)
}

struct Running {
    base: String,
    rx: mpsc::Receiver<SourceEvent>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// What the topology abandons at the shutdown deadline.
    receipts: crate::ack::Receipts,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
}

async fn start(yaml: &str, rules: Vec<Rule>, budget: Budget) -> Running {
    let raw: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
    let mut settings = settings::parse(&raw).unwrap();
    settings.host = "127.0.0.1".into();
    let metrics = Arc::new(Metrics::new());
    let source = PushSource::bind("push", settings, rules, &metrics)
        .await
        .unwrap();
    let base = format!("http://{}", source.local_addr());
    let (tx, rx) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let receipts = crate::ack::Receipts::default();
    let ctx = SourceContext {
        outputs: Outputs::from([("push".to_owned(), tx)]),
        budget,
        positions: Positions::in_memory(),
        metrics: Arc::clone(&metrics),
        shutdown: stop.clone(),
        receipts: receipts.clone(),
    };
    let task = tokio::spawn(Box::new(source).run(ctx));
    Running {
        base,
        rx,
        stop,
        receipts,
        task,
        metrics,
        http: reqwest::Client::new(),
    }
}

use super::super::Outputs;

impl Running {
    async fn post(
        &self,
        path: &str,
        ct: Option<&str>,
        ce: Option<&str>,
        body: Bytes,
    ) -> reqwest::Response {
        let mut r = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        if let Some(ce) = ce {
            r = r.header("content-encoding", ce);
        }
        tokio::time::timeout(Duration::from_secs(30), r.send())
            .await
            .expect("the push server answers")
            .expect("the request goes through")
    }

    async fn next(&mut self) -> Vec<Entry> {
        match tokio::time::timeout(Duration::from_secs(30), self.rx.recv()).await {
            Ok(Some(SourceEvent::Entries(e))) => e,
            other => panic!("expected a batch of entries, got {other:?}"),
        }
    }
}

fn keys(entries: &[Entry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e.labels.stream_key(),
                String::from_utf8_lossy(&e.line).into_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_dropped_stream_does_not_skip_the_rest_of_the_request() {
    // Promtail answers 204 at the first dropped stream and forgets the others (spec §12 #9).
    let mut s = start(
        "labels: {pushserver: push1, app: overridden}",
        rules("[{source_labels: [level], regex: debug, action: drop}, {source_labels: [__name__], target_label: metric}]"),
        Budget::new(1 << 20),
    )
    .await;
    let req = PushRequest {
        streams: vec![
            StreamAdapter {
                labels: r#"{app="a", level="debug"}"#.into(),
                entries: request().streams[0].entries.clone(),
            },
            StreamAdapter {
                labels: r#"up{app="b", level="info"}"#.into(),
                entries: request().streams[1].entries.clone(),
            },
            StreamAdapter {
                labels: r#"{level="warn"}"#.into(),
                entries: request().streams[0].entries.clone(),
            },
        ],
    };
    let r = s
        .post(
            "/loki/api/v1/push",
            Some("application/x-protobuf"),
            None,
            snappy_proto(&req),
        )
        .await;
    assert_eq!(r.status(), 204);
    let got = s.next().await;
    assert_eq!(
        keys(&got),
        [
            (
                r#"{app="overridden", level="info", metric="up", pushserver="push1"}"#.to_owned(),
                "slow query: 1.2s".to_owned()
            ),
            (
                r#"{app="overridden", level="warn", pushserver="push1"}"#.to_owned(),
                "GET /index.html 200".to_owned()
            ),
            (
                r#"{app="overridden", level="warn", pushserver="push1"}"#.to_owned(),
                "GET /index.html 200".to_owned()
            ),
        ]
    );
    // Not `use_incoming_timestamp`: the time of receipt, which the stream clock may move.
    assert!(
        got.iter()
            .all(|e| e.stamp == Stamp::ReadTime && e.timestamp.0 > T0)
    );
    assert_eq!(
        got[1].structured_metadata,
        [("trace_id".to_owned(), "abc".to_owned())]
    );
    let text = s.metrics.render();
    assert!(
        text.contains(r#"ferrotail_push_dropped_entries_total{job="push",reason="relabel"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ferrotail_push_entries_total{job="push"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ferrotail_push_requests_total{code="204",endpoint="push",job="push"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn incoming_timestamps_json_and_raw_lines() {
    let mut s = start(
        "labels: {job: relay}\nuse_incoming_timestamp: true\nserver: {http_path_prefix: /p/}",
        Vec::new(),
        Budget::new(1 << 20),
    )
    .await;
    let r = s
        .post(
            "/p/loki/api/v1/push",
            Some("application/json"),
            Some("gzip"),
            gzip(JSON.as_bytes()),
        )
        .await;
    assert_eq!(r.status(), 204);
    let got = s.next().await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|e| e.stamp == Stamp::Given));
    assert_eq!(
        got.iter().map(|e| e.timestamp.0).collect::<Vec<_>>(),
        [T0, T0 + 1, T0 + 5]
    );
    assert_eq!(got[2].labels.stream_key(), r#"{app="db", job="relay"}"#);

    // Raw lines: exactly the configured labels, stamped now.
    let r = s
        .post(
            "/p/promtail/api/v1/raw",
            None,
            None,
            Bytes::from_static(b"{\"msg\":\"a\"}\r\n\n{\"msg\":\"b\"}"),
        )
        .await;
    assert_eq!(r.status(), 204);
    let got = s.next().await;
    assert_eq!(
        keys(&got),
        [
            (r#"{job="relay"}"#.to_owned(), r#"{"msg":"a"}"#.to_owned()),
            (r#"{job="relay"}"#.to_owned(), r#"{"msg":"b"}"#.to_owned()),
        ]
    );
    assert!(got.iter().all(|e| e.stamp == Stamp::ReadTime));

    let ready = s
        .http
        .get(format!("{}/p/ready", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
    let wrong = s
        .http
        .get(format!("{}/p/loki/api/v1/push", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
}

#[tokio::test]
async fn bad_bodies_get_400_and_nothing_is_handed_on() {
    let mut s = start("{}", Vec::new(), Budget::new(1 << 20)).await;
    let r = s
        .post("/loki/api/v1/push", None, None, snappy_proto(&request()))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "mime: no media type\n");
    let r = s
        .post(
            "/loki/api/v1/push",
            Some("application/json"),
            None,
            Bytes::from_static(b"{nope"),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("invalid JSON push request")
    );
    assert!(
        s.rx.try_recv().is_err(),
        "nothing of a refused body is handed on"
    );
    // The budget is whole again.
    let r = s
        .post(
            "/loki/api/v1/push",
            Some("application/json"),
            None,
            Bytes::from_static(JSON.as_bytes()),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(s.next().await.len(), 3);
}

#[tokio::test]
async fn a_full_budget_answers_429_with_retry_after_and_too_large_413() {
    let budget = Budget::new(64 * 1024);
    let mut s = start("{}", Vec::new(), budget.clone()).await;
    let hog = budget.try_acquire(64 * 1024 - 100).unwrap();
    let body = snappy_proto(&request());
    let r = s
        .post(
            "/loki/api/v1/push",
            Some("application/x-protobuf"),
            None,
            body.clone(),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("1")
    );
    assert!(r.text().await.unwrap().contains("byte budget is full"));
    assert!(s.rx.try_recv().is_err());
    drop(hog);
    let r = s
        .post(
            "/loki/api/v1/push",
            Some("application/x-protobuf"),
            None,
            body,
        )
        .await;
    assert_eq!(r.status(), 204);
    let got = s.next().await;
    assert!(budget.in_use() > 0, "the entries hold their bytes");
    drop(got);
    assert_eq!(budget.in_use(), 0, "finished entries return their bytes");
    let big = Bytes::from(vec![b'x'; 100 * 1024]);
    let r = s.post("/promtail/api/v1/raw", None, None, big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(budget.in_use(), 0);
}

#[tokio::test]
async fn acknowledged_mode_answers_after_delivery() {
    let mut s = start("ack_after_delivery: true", Vec::new(), Budget::new(1 << 20)).await;
    let (http, url) = (s.http.clone(), format!("{}/loki/api/v1/push", s.base));
    let body = Bytes::from_static(JSON.as_bytes());
    let answer = tokio::spawn(async move {
        http.post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let got = s.next().await;
    let mut got = got;
    let keep = got.pop();
    // Two of three entries finished: no answer yet.
    drop(got);
    tokio::task::yield_now().await;
    assert!(
        !answer.is_finished(),
        "answered before every entry was finished"
    );
    drop(keep);
    let status = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("answered once the entries are finished")
        .unwrap()
        .unwrap();
    assert_eq!(status, 204);
}

/// A push waiting for delivery when shutdown begins: the source returns and drops its sender,
/// and the pusher's answer then depends on what happens to the entries: delivered by the
/// shutdown flush → 204; dropped after the deadline abandoned the receipts → 503 (sent again).
async fn push_held_over_shutdown(deadline_first: bool) -> u16 {
    let mut s = start("ack_after_delivery: true", Vec::new(), Budget::new(1 << 20)).await;
    let (http, url) = (s.http.clone(), format!("{}/loki/api/v1/push", s.base));
    let answer = tokio::spawn(async move {
        http.post(url)
            .header("content-type", "application/json")
            .body(JSON)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let held = s.next().await;
    s.stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), &mut s.task)
        .await
        .expect("the source returns at shutdown")
        .unwrap();
    assert!(s.rx.recv().await.is_none(), "the source dropped its sender");
    let later = s
        .http
        .post(format!("{}/loki/api/v1/push", s.base))
        .header("content-type", "application/json")
        .body(JSON)
        .send()
        .await;
    assert!(
        later.is_err() || later.is_ok_and(|r| r.status() == 503),
        "a push after shutdown began is not taken"
    );
    if deadline_first {
        s.receipts.abandon_all();
    }
    drop(held);
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("answered")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_push_delivered_by_the_shutdown_flush_is_answered_204() {
    assert_eq!(push_held_over_shutdown(false).await, 204);
}

#[tokio::test]
async fn a_push_abandoned_at_the_shutdown_deadline_is_answered_503() {
    assert_eq!(push_held_over_shutdown(true).await, 503);
}

#[test]
fn the_saved_fuzz_seeds_decode_as_meant() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/push");
    let seed = |name: &str| Bytes::from(std::fs::read(dir.join(name)).unwrap()).slice(1..);
    for (name, ct, ce) in [
        ("proto", "application/x-protobuf", None),
        ("proto_gzip", "application/x-protobuf", Some("gzip")),
        ("proto_deflate", "application/x-protobuf", Some("deflate")),
        ("proto_zlib", "application/x-protobuf", Some("deflate")),
    ] {
        let d = decode_push(seed(name), Some(ct), ce, &mut unlimited()).unwrap();
        assert_eq!(d.streams.len(), 2, "{name}");
        assert_eq!(
            format!("{:?}", d.streams[1].labels),
            r#"{"__name__": "up", "env": "prod", "job": "x\"q\n"}"#,
            "{name}"
        );
        assert_eq!(&d.streams[1].entries[0].line[..], b"\xff\xfe invalid utf8");
    }
    for (name, ce) in [
        ("json", None),
        ("json_gzip", Some("gzip")),
        ("json_deflate", Some("deflate")),
    ] {
        let d = decode_push(seed(name), Some("application/json"), ce, &mut unlimited()).unwrap();
        assert_eq!(d.streams[0].entries.len(), 2, "{name}");
    }
}

#[test]
fn appendix_c_push_relay_needs_its_grpc_port_removed() {
    let yaml = |grpc: &str| {
        format!(
            "clients: [{{url: http://loki:3100/loki/api/v1/push}}]\nscrape_configs:\n- job_name: push1\n  loki_push_api:\n    server: {{http_listen_port: 3500{grpc}}}\n    labels: {{pushserver: push1}}\n"
        )
    };
    let check = |text: &str| {
        crate::settings::check(&crate::config::Config::parse_str(text, "test.yaml").unwrap())
    };
    let e = check(&yaml(", grpc_listen_port: 3600"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scrape_configs[0].loki_push_api: server.grpc_listen_port: 3600 is refused")
            && e.contains("set grpc_listen_port to 0"),
        "{e}"
    );
    assert!(check(&yaml(", grpc_listen_port: 0")).is_ok());
    assert!(check(&yaml("")).is_ok());
}
