//! The `journal` source (spec §10): the systemd journal read through `journalctl -o export`
//! subprocesses, one job at a time, with the cursor committed after acknowledgement.
//!
//! Why a subprocess: no C library is linked (Promtail's cgo journal reader is why its
//! official binaries often lack the journal), journalctl's reading of the on-disk format
//! (rotation, vacuuming, compression, several directories) is the reference, and its cursors
//! are the sd-journal cursors Promtail stores, so a positions file goes back and forth
//! between them. The pure-Rust readers available today (`sdjournal` 0.1, `systemd-journal-sdk`)
//! are young and their cursors are not shown to be sd-journal's (docs/compatibility.md). The
//! cost: journalctl must be installed where ferrotail runs (in a container, with the host's
//! journal and `/etc/machine-id` mounted).
//!
//! Why runs rather than `--follow`: journalctl 252's `--follow` misses the first entry of a
//! journal file created while it follows (checked with systemd-journal-remote's files: a
//! rotation loses one entry). So journalctl runs to the end of the journal and exits; the next
//! run starts after the last entry read, at once while there was a backlog, else after
//! [`POLL`]. Each run opens the journal anew and sees every file.
//!
//! Start position (`cursor-<job>` in the positions file): none → `now − max_age`; a cursor
//! older than `max_age` → `now − max_age`; a cursor journalctl no longer finds (rotated or
//! vacuumed away) → `now − max_age`, warned and counted in
//! `ferrotail_journal_cursor_lost_total`; else the entry after it (Promtail re-sends the
//! entry at the cursor; it was acknowledged, so it is not sent again here).
//!
//! Invariants:
//! - the committed cursor is that of the last entry of the longest acknowledged prefix
//!   ([`crate::ack::Cursor`]): a crash re-reads what was in flight, never skips it;
//! - what is read takes budget permits before more is read (a slow Loki pauses journalctl
//!   through its pipe, memory stays bounded);
//! - a run that fails (journalctl missing, killed, journal unreadable) is logged with its
//!   stderr and counted in `ferrotail_journal_errors_total`, and the next one starts after the
//!   last entry read, with back-off (1 s to 30 s);
//! - at shutdown the run is killed and what was read is handed on.

pub mod export;
mod settings;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

pub use self::export::{ExportParser, JournalEntry};
pub use self::settings::{JournalSettings, check, settings_from_yaml};
use super::{Source, SourceContext, SourceEvent};
use crate::ack::Cursor;
use crate::discovery::relabel::{Rule, process};
use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::metrics::Metrics;
use crate::pipeline::jsonx::{GoEncoder, write_go_bytes_body_as, write_go_str_body_as};

/// The program run; found on `PATH`.
const JOURNALCTL: &str = "journalctl";
/// Bytes read from journalctl at once (one batch of entries at most this big, plus one).
const READ_CHUNK: usize = 64 * 1024;
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The wait after a run that found nothing new: the latency of an idle journal, and the cost
/// of one journalctl start (it opens every journal file) per period.
pub const POLL: Duration = Duration::from_millis(500);

/// The journal source of one job.
pub struct JournalSource {
    job: String,
    settings: JournalSettings,
    rules: Vec<Rule>,
    program: String,
}

impl JournalSource {
    /// The source of job `job` reading with `settings` and relabeling with `rules`.
    pub fn new(job: &str, settings: JournalSettings, rules: Vec<Rule>) -> Self {
        JournalSource {
            job: job.to_string(),
            settings,
            rules,
            program: JOURNALCTL.to_string(),
        }
    }

    async fn follow(self, ctx: SourceContext) {
        let Some(output) = ctx.output(&self.job, "journal") else {
            return;
        };
        let cursor = ctx.positions.attach_cursor(&format!("cursor-{}", self.job));
        let mut from = self
            .start_point(cursor.committed().as_deref(), &ctx.metrics)
            .await;
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut child = match self.spawn(&from) {
                Ok(c) => c,
                Err(e) => {
                    ctx.metrics.journal_errors.inc();
                    tracing::error!(job = %self.job, error = %e, program = %self.program, "Cannot run journalctl; the journal is not read until it can be.");
                    if !wait_or_stop(&ctx, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let mut last_read = None;
            let run = self
                .read(&mut child, &ctx, &cursor, &output, &from, &mut last_read)
                .await;
            if run == Run::Stopped {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return;
            }
            let status = child.wait().await;
            // Nothing new unless the run got past where it started (journalctl may hand back
            // the entry at the cursor it starts after).
            let read_some = last_read
                .as_ref()
                .is_some_and(|c| from != StartFrom::After(c.clone()));
            if let Some(c) = last_read {
                from = StartFrom::After(c);
            }
            let pause = match status {
                Ok(s) if s.success() && run == Run::Ended => {
                    backoff = MIN_BACKOFF;
                    if read_some { Duration::ZERO } else { POLL }
                }
                other => {
                    ctx.metrics.journal_errors.inc();
                    tracing::warn!(job = %self.job, status = ?other.ok(), "journalctl failed; trying again after the last entry read.");
                    let b = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    b
                }
            };
            if !wait_or_stop(&ctx, pause).await {
                return;
            }
        }
    }

    /// Reads one run's output until it ends or shutdown.
    async fn read(
        &self,
        child: &mut Child,
        ctx: &SourceContext,
        cursor: &Cursor<String>,
        output: &tokio::sync::mpsc::Sender<SourceEvent>,
        from: &StartFrom,
        last_read: &mut Option<String>,
    ) -> Run {
        let Some(mut stdout) = child.stdout.take() else {
            return Run::Failed;
        };
        if let Some(stderr) = child.stderr.take() {
            let job = self.job.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(job = %job, "journalctl: {line}");
                }
            });
        }
        let mut parser = ExportParser::default();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut entries = Vec::new();
        loop {
            let n = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Run::Stopped,
                r = stdout.read(&mut buf) => match r {
                    Ok(0) => return Run::Ended,
                    Ok(n) => n,
                    Err(_) => return Run::Failed,
                },
            };
            entries.clear();
            if let Err(e) = parser.feed(&buf[..n], &mut entries) {
                tracing::error!(job = %self.job, error = %e, "Unreadable journalctl output; starting it again.");
                return Run::Failed;
            }
            if let StartFrom::After(c) = from {
                // The entry at the start cursor was handed on by an earlier run.
                entries.retain(|e| e.cursor != *c);
            }
            let Some(last) = entries.last() else { continue };
            let bytes: usize = entries
                .iter()
                .map(|e| e.fields.iter().map(|(_, v)| v.len()).sum::<usize>())
                .sum();
            let permit = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Run::Stopped,
                p = ctx.budget.acquire(bytes) => p,
            };
            let ack = cursor.chunk(last.cursor.clone(), permit);
            *last_read = Some(last.cursor.clone());
            let mut batch = Vec::with_capacity(entries.len());
            for e in entries.drain(..) {
                match to_entry(&e, &self.settings, &self.rules) {
                    Ok(Some((labels, line, ts))) => {
                        let mut entry = Entry::new(labels, ts, line, ack.clone());
                        entry.stamp = Stamp::Given;
                        batch.push(entry);
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        ctx.metrics
                            .journal_parsing_errors
                            .with_label_values(&[reason])
                            .inc();
                    }
                }
            }
            drop(ack);
            ctx.metrics.journal_lines.inc_by(batch.len() as u64);
            if !batch.is_empty() && output.send(SourceEvent::Entries(batch)).await.is_err() {
                return Run::Stopped;
            }
        }
    }

    /// Where journalctl starts, from the cursor (see the module doc).
    async fn start_point(&self, saved: Option<&str>, metrics: &Metrics) -> StartFrom {
        let since = StartFrom::Since(since_secs(self.settings.max_age));
        let Some(cursor) = saved else {
            return since;
        };
        if cursor_realtime_us(cursor)
            .is_some_and(|t| t / 1_000_000 < since_secs(self.settings.max_age))
        {
            tracing::info!(job = %self.job, "The saved journal cursor is older than max_age; reading from max_age.");
            return since;
        }
        match self.cursor_exists(cursor).await {
            Ok(true) => StartFrom::After(cursor.to_string()),
            Ok(false) => {
                metrics.journal_cursor_lost.inc();
                tracing::warn!(job = %self.job, cursor, "The saved journal cursor is no longer in the journal (rotated or vacuumed); reading from max_age.");
                since
            }
            Err(e) => {
                tracing::warn!(job = %self.job, error = %e, "Cannot check the saved journal cursor; reading after it.");
                StartFrom::After(cursor.to_string())
            }
        }
    }

    /// Whether journalctl finds the entry at `cursor` (its first entry from there is it).
    async fn cursor_exists(&self, cursor: &str) -> std::io::Result<bool> {
        let mut cmd = Command::new(&self.program);
        cmd.args(self.common_args())
            .arg(format!("--cursor={cursor}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let Some(stdout) = child.stdout.take() else {
            return Ok(false);
        };
        let mut parser = ExportParser::default();
        let mut out = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut buf = vec![0u8; READ_CHUNK];
        let found = loop {
            let n = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buf))
                .await
                .map_err(|_| std::io::Error::other("journalctl did not answer within 30 s"))??;
            if n == 0 {
                break None;
            }
            if parser.feed(&buf[..n], &mut out).is_err() {
                break None;
            }
            if let Some(first) = out.first() {
                break Some(first.cursor == cursor);
            }
        };
        let _ = child.start_kill();
        let _ = child.wait().await;
        Ok(found.unwrap_or(false))
    }

    fn common_args(&self) -> Vec<String> {
        let mut args = vec![
            "-o".to_string(),
            "export".to_string(),
            "--no-pager".to_string(),
        ];
        if let Some(dir) = &self.settings.path {
            args.push(format!("--directory={}", dir.display()));
        }
        args
    }

    fn spawn(&self, from: &StartFrom) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.program);
        cmd.args(self.common_args());
        match from {
            StartFrom::Since(secs) => cmd.arg(format!("--since=@{secs}")),
            StartFrom::After(c) => cmd.arg(format!("--after-cursor={c}")),
        };
        for (field, value) in &self.settings.matches {
            cmd.arg(format!("{field}={value}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn()
    }
}

impl Source for JournalSource {
    fn describe(&self) -> String {
        format!("journal job={}", self.job)
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.follow(ctx))
    }
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum Run {
    /// Its output ended.
    Ended,
    /// It could not be read.
    Failed,
    /// The source was told to stop.
    Stopped,
}

/// Where a journalctl run starts.
#[derive(Debug, PartialEq, Eq)]
enum StartFrom {
    /// At this Unix second.
    Since(i64),
    /// After this cursor.
    After(String),
}

fn since_secs(max_age: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    i64::try_from(now.saturating_sub(max_age.as_secs())).unwrap_or(0)
}

/// The realtime timestamp (`t=`, hex microseconds) of an sd-journal cursor.
fn cursor_realtime_us(cursor: &str) -> Option<i64> {
    cursor
        .split(';')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
}

/// Waits `d` unless the source is told to stop first (false).
async fn wait_or_stop(ctx: &SourceContext, d: Duration) -> bool {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Promtail's keyword for a `PRIORITY` value.
fn priority_keyword(p: &str) -> &str {
    match p {
        "0" => "emerg",
        "1" => "alert",
        "2" => "crit",
        "3" => "error",
        "4" => "warning",
        "5" => "notice",
        "6" => "info",
        "7" => "debug",
        other => other,
    }
}

/// One journal entry as a ferrotail entry (spec §10.3): its labels after relabeling, its
/// line and its timestamp. `Ok(None)`: dropped by a rule; `Err(reason)`: dropped and counted
/// with that `error` label.
pub fn to_entry(
    e: &JournalEntry,
    s: &JournalSettings,
    rules: &[Rule],
) -> Result<Option<(LabelSet, Bytes, Timestamp)>, &'static str> {
    if e.oversized {
        return Err("oversized");
    }
    let line = if s.json {
        Bytes::from(json_line(e))
    } else {
        match e.field("MESSAGE") {
            Some(m) => m.clone(),
            None => return Err("no_message"),
        }
    };
    let mut labels = BTreeMap::new();
    for (name, value) in &e.fields {
        labels.insert(
            format!("__journal_{}", name.to_lowercase()),
            String::from_utf8_lossy(value).into_owned(),
        );
    }
    if let Some(p) = labels.get("__journal_priority") {
        let keyword = priority_keyword(p).to_string();
        labels.insert("__journal_priority_keyword".to_string(), keyword);
    }
    labels.extend(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !process(rules, &mut labels) {
        return Ok(None);
    }
    labels.retain(|k, _| !k.starts_with("__"));
    if labels.is_empty() {
        return Err("empty_labels");
    }
    let ts = Timestamp(e.realtime_us.saturating_mul(1000));
    Ok(Some((LabelSet::from_pairs(labels), line, ts)))
}

/// The `json: true` line: every data field (the last of a repeated one), keys sorted, written
/// as Promtail's journal target writes it (Go's `encoding/json`: HTML-safe escapes, each byte
/// that is not valid UTF-8 as `\ufffd`).
fn json_line(e: &JournalEntry) -> String {
    let mut fields = BTreeMap::new();
    for (name, value) in &e.fields {
        fields.insert(name.as_str(), value);
    }
    let mut out = String::with_capacity(64 + fields.values().map(|v| v.len() + 8).sum::<usize>());
    out.push('{');
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        write_go_str_body_as(name, &mut out, GoEncoder::Std);
        out.push_str("\":\"");
        write_go_bytes_body_as(value, &mut out, GoEncoder::Std);
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
