//! Scenario 0 of the data-loss issue: lines that repeat. Loki keeps one entry per (stream,
//! timestamp, line) and the mock keeps that rule, so these only pass when identical lines of
//! one stream are shipped with distinct timestamps.

use super::*;

/// `n` lines cycling through a few messages, as a noisy service logs them.
pub(crate) fn repeated_lines(n: usize) -> Vec<Bytes> {
    const MESSAGES: [&str; 5] = [
        "level=warn msg=\"connection reset by peer\" peer=10.0.3.7:443",
        "level=info msg=\"retrying request\" attempt=1",
        "level=info msg=\"retrying request\" attempt=2",
        "level=error msg=\"upstream unavailable\" status=503",
        "level=info msg=\"GET /health 200\"",
    ];
    (0..n)
        .map(|i| Bytes::from_static(MESSAGES[i % MESSAGES.len()].as_bytes()))
        .collect()
}

/// Waits until the mock holds at least `n` entries.
async fn wait_count(mock: &MockLoki, n: usize, ft: &Ferrotail) {
    mock.wait_for_entries(n, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\nferrotail stderr:\n{}", ft.stderr()));
}

/// In each stream, timestamps strictly increase in the order the entries were pushed.
fn assert_increasing_per_stream(mock: &MockLoki) {
    let mut last: HashMap<String, i64> = HashMap::new();
    for e in mock.entries() {
        if let Some(prev) = last.insert(e.labels.clone(), e.timestamp_ns) {
            assert!(
                e.timestamp_ns > prev,
                "stream {}: {} after {prev}",
                e.labels,
                e.timestamp_ns
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_lines_are_all_kept() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = repeated_lines(5000);
    // In bursts, as a service writes them: several read chunks, each of many equal lines.
    for burst in lines.chunks(700) {
        append_bytes(&log, burst);
    }
    let cfg = Cfg::new(dir.path(), mock.url().as_str(), &log.display().to_string()).write();
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_count(&mock, lines.len(), &ft).await;
    assert!(ft.stop().success());
    let t = Tally::of("repeated_lines_one_file", &lines, &mock.entries());
    t.assert_exactly_once();
    assert_eq!(mock.merged(), 0, "nothing was sent twice");
    assert_increasing_per_stream(&mock);
    assert_promtail_can_read(&dir.path().join("positions.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_lines_of_two_files_in_one_stream_are_all_kept() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let lines = repeated_lines(2500);
    // Interleaved bursts: both files are read at the same moments.
    for burst in lines.chunks(500) {
        append_bytes(&a, burst);
        append_bytes(&b, burst);
    }
    let cfg = Cfg::new(
        dir.path(),
        mock.url().as_str(),
        &dir.path().join("*.log").display().to_string(),
    )
    .stages("- labeldrop: [filename]")
    .write();
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_count(&mock, 2 * lines.len(), &ft).await;
    assert!(ft.stop().success());
    let streams: HashSet<String> = mock.entries().into_iter().map(|e| e.labels).collect();
    assert_eq!(streams.len(), 1, "one stream: {streams:?}");
    let written = [lines.clone(), lines].concat();
    Tally::of(
        "repeated_lines_two_files_one_stream",
        &written,
        &mock.entries(),
    )
    .assert_exactly_once();
    assert_increasing_per_stream(&mock);
    assert_promtail_can_read(&dir.path().join("positions.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_from_a_timestamp_stage_are_shipped_as_parsed() {
    // Promtail's behaviour is kept: a parsed timestamp is not moved, so two identical lines
    // with the same parsed time are one entry in Loki, as they are with Promtail.
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines: Vec<Bytes> = [
        "ts=2026-12-04T05:00:00Z msg=\"cache miss\"",
        "ts=2026-12-04T05:00:00Z msg=\"cache miss\"",
        "ts=2026-12-04T05:00:01Z msg=\"cache miss\"",
        "no timestamp here",
        "no timestamp here",
    ]
    .into_iter()
    .map(|l| Bytes::from_static(l.as_bytes()))
    .collect();
    append_bytes(&log, &lines);
    let cfg = Cfg::new(dir.path(), mock.url().as_str(), &log.display().to_string())
        .stages(
            "- regex: {expression: '^ts=(?P<ts>\\S+)'}\n\
             - timestamp: {source: ts, format: RFC3339, action_on_failure: skip}",
        )
        .write();
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_count(&mock, 4, &ft).await;
    wait_until(WAIT, "the merged duplicate", || mock.merged() == 1);
    assert!(ft.stop().success());
    let mut parsed: Vec<i64> = mock
        .entries()
        .iter()
        .filter(|e| e.line.starts_with(b"ts="))
        .map(|e| e.timestamp_ns)
        .collect();
    parsed.sort_unstable();
    let second = 1_796_360_400_000_000_000; // 2026-12-04T05:00:00Z
    assert_eq!(parsed, [second, second + 1_000_000_000]);
    // The read-time lines still get a timestamp each.
    let read_time = mock
        .entries()
        .iter()
        .filter(|e| e.line.starts_with(b"no"))
        .count();
    assert_eq!(read_time, 2);
}
