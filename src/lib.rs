//! ferrotail: a drop-in, at-least-once replacement for Grafana Promtail.
//!
//! ```text
//!  static_configs, file_sd, kubernetes_sd (discovery) ─► relabel ─► file targets (watch)
//!                                                      ▼
//!                       file tailer (read-time stamps from saved marks) ──┐
//!                                                      │ Entry { labels, timestamp, line, ack }
//!                                                      ▼
//!  pipeline (per job: stages in order; may drop, rewrite, pick a tenant)
//!                                                      ▼
//!  client fan-out ─► per-client batcher (per tenant, per stream) ─► protobuf + snappy
//!                                                      ▼
//!                               sender (concurrent requests, retry, backoff)
//!                                                      ▼
//!  positions ◄── ack tracker (per file, ordered: advances only over a contiguous acked prefix)
//! ```
//!
//! Every entry carries the acknowledgement of the read chunk it came from; a file's position is
//! written only up to the end of the longest prefix of chunks whose entries every client has
//! acknowledged (or that were dropped on purpose and counted). The log file is the write-ahead
//! log: a crash re-sends what was in flight and loses nothing, and what it re-sends carries the
//! timestamps of its first send, so that Loki keeps it once (`positions::stamps`).

#![warn(missing_docs)]
// No unsafe code anywhere in the crate (docs/security.md): every low-level need is met by a
// reviewed dependency. `forbid` cannot be relaxed by an inner `allow`.
#![forbid(unsafe_code)]

pub mod ack;
pub mod app;
pub mod client;
pub mod config;
pub mod discovery;
pub mod entry;
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod positions;
pub mod redact;
pub mod server;
pub mod settings;
pub mod tail;
#[cfg(test)]
mod test_support;
