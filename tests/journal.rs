//! The `journal` source through the `ferrotail` binary, on real journal files written by
//! `systemd-journal-remote` from the journal export format (`.ci/run` installs it): entries,
//! labels and timestamps; entries appended while it follows; a new journal file (rotation);
//! journald's rotation (the file archived, a new one begun); a restart from the saved cursor
//! with nothing lost or repeated; a cursor whose journal was vacuumed away (read again from `max_age`,
//! counted). Every wait is bounded and says what it waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::config::ConfigFile;
use common::mock_loki::{MockLoki, ReceivedEntry, arrivals};
use common::process::{Ferrotail, metric};

const WAIT: Duration = Duration::from_secs(60);
const BOOT: &str = "6c7c6013a8b34d4e8d6e2e4a1f1a1a1a";
const MESSAGES: [(&str, &str, &str); 4] = [
    (
        "ssh.service",
        "6",
        "Accepted publickey for deploy from 10.0.0.7 port 52144",
    ),
    (
        "cron.service",
        "6",
        "(root) CMD (run-parts /etc/cron.hourly)",
    ),
    (
        "ssh.service",
        "3",
        "error: kex_exchange_identification: Connection closed",
    ),
    (
        "systemd-logind.service",
        "6",
        "New session 42 of user deploy.",
    ),
];

fn journal_remote() -> PathBuf {
    for p in [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "systemd-journal-remote is needed to build journal files for these tests \
         (Debian: apt-get install systemd-journal-remote; .ci/run installs it)"
    );
}

/// Now, in Unix microseconds.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// When the journal's boot began (an hour before the test started): monotonic timestamps
/// must follow realtime within a boot, as journald writes them (journalctl seeks by them).
fn boot_time_us() -> i64 {
    static BOOT_TIME: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BOOT_TIME.get_or_init(|| now_us() - 3_600_000_000)
}

/// What was written: (timestamp in ns, unit, level keyword, message).
type Written = Vec<(i64, String, String, String)>;

/// Appends `n` entries (repeated messages, 1 ms apart from `t0_us`) to `file` (created if
/// missing) through systemd-journal-remote.
fn write_journal(file: &Path, t0_us: i64, n: usize, out: &mut Written) {
    let mut export = String::new();
    for i in 0..n {
        let (unit, prio, msg) = MESSAGES[i % MESSAGES.len()];
        let t = t0_us + i as i64 * 1000;
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={BOOT}\n\
             _HOSTNAME=web-1\n_SYSTEMD_UNIT={unit}\nPRIORITY={prio}\nMESSAGE={msg}\n\n",
            t - boot_time_us()
        ));
        let level = if prio == "3" { "error" } else { "info" };
        out.push((
            t * 1000,
            unit.to_string(),
            level.to_string(),
            msg.to_string(),
        ));
    }
    let input = file.with_extension("export");
    std::fs::write(&input, export).unwrap();
    let status = Command::new(journal_remote())
        .arg(format!("--output={}", file.display()))
        .arg(&input)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "systemd-journal-remote failed for {}",
        file.display()
    );
    std::fs::remove_file(&input).unwrap();
}

/// One job, `journal`, reading the journal files in `journal` back to an hour: the unit,
/// priority keyword and host as labels.
fn write_config(dir: &Path, journal: &Path, loki: &str) -> PathBuf {
    ConfigFile::new(dir, loki)
        .positions_sync("100ms")
        .backoff("20ms", "200ms")
        .scrape(&format!(
            r#"  - job_name: journal
    journal:
      path: {journal}
      max_age: 1h
      labels:
        job: systemd-journal
    relabel_configs:
      - source_labels: [__journal__systemd_unit]
        target_label: unit
      - source_labels: [__journal_priority_keyword]
        target_label: level
      - source_labels: [__journal__hostname]
        target_label: host
"#,
            journal = journal.display(),
        ))
        .write()
}

/// Every written entry arrived exactly once, with its labels and the journal's timestamp.
fn check_exactly_once(entries: &[ReceivedEntry], written: &Written) {
    let got = arrivals(entries);
    for (t, unit, level, msg) in written {
        assert_eq!(
            got.get(&(*t, msg.clone())).copied().unwrap_or(0),
            1,
            "entry at {t} ({msg}) arrived a wrong number of times"
        );
        let e = entries
            .iter()
            .find(|e| e.timestamp_ns == *t && e.line_str() == *msg)
            .unwrap();
        assert_eq!(
            e.labels,
            format!(r#"{{host="web-1", job="systemd-journal", level="{level}", unit="{unit}"}}"#)
        );
    }
    assert_eq!(
        entries.len(),
        written.len(),
        "entries that were never written"
    );
}

fn saved_cursor(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("positions.yaml")).ok()?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    v.get("positions")?
        .get("cursor-journal")?
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_follow_rotation_and_resume_from_the_cursor_exactly_once() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let cfg = write_config(dir.path(), &journal, loki.url().as_ref());
    let t0 = now_us() - 600_000_000;
    let mut written = Written::new();
    write_journal(&journal.join("system.journal"), t0, 300, &mut written);

    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    loki.wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    // Appended while it follows, then a new journal file (journald's rotation).
    write_journal(
        &journal.join("system.journal"),
        t0 + 1_000_000,
        100,
        &mut written,
    );
    write_journal(
        &journal.join("user-1000.journal"),
        t0 + 2_000_000,
        100,
        &mut written,
    );
    loki.wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));

    // journald's rotation: the file is archived and a new one begins.
    std::fs::rename(
        journal.join("system.journal"),
        journal.join("system@0005072e401fb6b4-0000000000000001.journal"),
    )
    .unwrap();
    write_journal(
        &journal.join("system.journal"),
        t0 + 3_000_000,
        50,
        &mut written,
    );
    loki.wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    ft.wait_until(WAIT, "the cursor to be saved", || {
        saved_cursor(dir.path()).is_some()
    });
    assert_eq!(ft.stop().code(), Some(0));

    // Written while stopped: read after the saved cursor, nothing repeated.
    write_journal(
        &journal.join("system.journal"),
        t0 + 4_000_000,
        80,
        &mut written,
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    loki.wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    // Let anything sent twice arrive before counting.
    ft.wait_until(WAIT, "every entry to be counted", || {
        metric(&ft, "promtail_journal_target_lines_total", &[]).unwrap_or(0.0) >= 80.0
    });
    assert_eq!(ft.stop().code(), Some(0));
    check_exactly_once(&loki.entries(), &written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vacuumed_cursor_restarts_from_max_age_and_is_counted() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let cfg = write_config(dir.path(), &journal, loki.url().as_ref());
    let t0 = now_us() - 600_000_000;
    let mut written = Written::new();
    write_journal(&journal.join("system.journal"), t0, 40, &mut written);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    loki.wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    ft.wait_until(WAIT, "the cursor to be saved", || {
        saved_cursor(dir.path()).is_some()
    });
    assert_eq!(ft.stop().code(), Some(0));

    // The journal is vacuumed away and a new one begins (a new sequence number id).
    std::fs::remove_file(journal.join("system.journal")).unwrap();
    write_journal(
        &journal.join("system.journal"),
        t0 + 1_000_000,
        60,
        &mut written,
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    loki.wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert_eq!(
        metric(&ft, "ferrotail_journal_cursor_lost_total", &[]),
        Some(1.0),
        "{}",
        ft.stderr()
    );
    assert_eq!(ft.stop().code(), Some(0));
    check_exactly_once(&loki.entries(), &written);
}
