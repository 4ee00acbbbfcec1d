//! `-stdin` mode (spec §4.12): each line of standard input becomes an entry of the first
//! scrape config's job, with the union of its `static_configs` labels (`{job="stdin",
//! hostname=<host>}` without scrape configs), timestamped when read; at end of input the
//! source returns and the process flushes and exits.
//!
//! Invariants: a trailing `\r\n`/`\n` is removed and empty lines are skipped, as Promtail
//! does; every line takes budget permits before the next is read (a slow Loki stops the
//! reading, and so the writer of the pipe, instead of growing memory); nothing is saved in
//! the positions file (standard input cannot be read again).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::{Source, SourceContext, SourceEvent};
use crate::ack;
use crate::entry::{Entry, LabelSet, Timestamp};

/// Lines handed on together (one channel message) when input comes faster than it is sent.
const MAX_BATCH: usize = 512;

/// Most bytes kept of one line (longer lines are cut there, as files are cut at read time).
const MAX_LINE: usize = 256 * 1024;

/// Standard input, or any buffered reader in tests.
pub struct StdinSource {
    job: String,
    labels: LabelSet,
    input: Box<dyn AsyncBufRead + Send + Unpin>,
}

impl StdinSource {
    /// Reads the process' standard input for `job`, with `labels` on every entry.
    pub fn new(job: &str, labels: LabelSet) -> Self {
        Self::with_reader(job, labels, Box::new(BufReader::new(tokio::io::stdin())))
    }

    /// Reads `input` instead of standard input.
    pub fn with_reader(
        job: &str,
        labels: LabelSet,
        input: Box<dyn AsyncBufRead + Send + Unpin>,
    ) -> Self {
        StdinSource {
            job: job.to_string(),
            labels,
            input,
        }
    }

    async fn read(mut self, ctx: SourceContext) {
        let Some(output) = ctx.outputs.get(&self.job).cloned() else {
            tracing::error!(job = %self.job, "No pipeline for standard input.");
            return;
        };
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                r = read_line(&mut self.input, &mut buf) => r,
            };
            let eof = match read {
                Ok(n) => n == 0,
                Err(e) => {
                    tracing::warn!(error = %e, "Error reading standard input; stopping.");
                    true
                }
            };
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if !buf.is_empty() {
                let permit = tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    p = ctx.budget.acquire(buf.len()) => p,
                };
                // Nothing to replay from: the ack only carries the budget permit.
                let (ack, _) = ack::receipt(permit);
                batch.push(Entry::new(
                    self.labels.clone(),
                    Timestamp::now(),
                    Bytes::copy_from_slice(&buf),
                    ack,
                ));
            }
            // Hand on at once when no more input is buffered, so a slow trickle is not held.
            if eof || batch.len() >= MAX_BATCH || !more_ready(&mut self.input) {
                if !batch.is_empty()
                    && output
                        .send(SourceEvent::Entries(std::mem::take(&mut batch)))
                        .await
                        .is_err()
                {
                    return;
                }
                if eof {
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = output.send(SourceEvent::Entries(batch)).await;
        }
        let _ = output.send(SourceEvent::Released(self.labels)).await;
    }
}

/// Whether more input can be read without waiting.
fn more_ready(input: &mut (dyn AsyncBufRead + Send + Unpin)) -> bool {
    use futures_util::FutureExt;
    matches!(input.fill_buf().now_or_never(), Some(Ok(b)) if !b.is_empty())
}

/// Reads one line into `out` (its `\n` included), keeping at most [`MAX_LINE`] bytes of it;
/// returns the bytes consumed (0 at end of input).
async fn read_line(
    input: &mut (dyn AsyncBufRead + Send + Unpin),
    out: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = MAX_LINE.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        input.consume(n);
        consumed += n;
        if done {
            return Ok(consumed);
        }
    }
}

impl Source for StdinSource {
    fn describe(&self) -> String {
        "stdin".to_string()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.read(ctx))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::metrics::Metrics;
    use crate::positions::Positions;
    use crate::sources::Budget;

    #[tokio::test]
    async fn lines_become_entries_until_end_of_input() {
        let input = b"GET /health 200\r\n\nGET /health 200\nlast line without newline".to_vec();
        let labels = LabelSet::from_pairs([("job", "stdin")]);
        let source =
            StdinSource::with_reader("j", labels.clone(), Box::new(std::io::Cursor::new(input)));
        let (tx, mut rx) = mpsc::channel(8);
        let budget = Budget::new(1024);
        let ctx = SourceContext {
            outputs: HashMap::from([("j".to_string(), tx)]),
            budget: budget.clone(),
            positions: Positions::in_memory(),
            metrics: Arc::new(Metrics::new()),
            shutdown: CancellationToken::new(),
            receipts: Default::default(),
        };
        Box::new(source).run(ctx).await;
        let mut lines = Vec::new();
        let mut released = false;
        while let Some(ev) = rx.recv().await {
            match ev {
                SourceEvent::Entries(v) => lines.extend(v.into_iter().map(|e| {
                    assert_eq!(e.labels, labels);
                    String::from_utf8(e.line.to_vec()).unwrap()
                })),
                SourceEvent::Released(l) => {
                    assert_eq!(l, labels);
                    released = true;
                }
            }
        }
        assert_eq!(
            lines,
            [
                "GET /health 200",
                "GET /health 200",
                "last line without newline"
            ]
        );
        assert!(released);
        assert_eq!(
            budget.in_use(),
            0,
            "the entries are gone: every permit is back"
        );
    }

    #[tokio::test]
    async fn a_long_line_is_cut_and_the_next_one_is_whole() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\n");
        let mut reader = &input[..];
        let mut out = Vec::new();
        let n = read_line(&mut reader, &mut out).await.unwrap();
        assert_eq!(n, MAX_LINE + 11);
        assert_eq!(out.len(), MAX_LINE);
        out.clear();
        read_line(&mut reader, &mut out).await.unwrap();
        assert_eq!(out, b"next\n");
    }
}
