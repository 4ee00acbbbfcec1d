//! ferrotail: a drop-in, at-least-once replacement for Grafana Promtail.
//!
//! ```text
//!  static_configs, file_sd, kubernetes_sd (discovery) ─► relabel ─► file targets (watch)
//!  docker_sd (discovery) ─────────────────────────────────────────► containers
//!                                                      ▼
//!  sources: file tailer (read-time stamps from saved marks), Docker container logs
//!                                                      │ SourceEvent: Entry { labels,
//!                                                      ▼   timestamp, line, ack }
//!  pipeline (per job: stages in order; may drop, rewrite, pick a tenant)
//!                                                      ▼
//!  client fan-out ─► per-client batcher (per tenant, per stream) ─► protobuf + snappy
//!                                                      ▼
//!                               sender (concurrent requests, retry, backoff)
//!                                                      ▼
//!  positions ◄── ack trackers (per file generation, per cursor: advance only over a
//!                contiguous prefix of finished chunks)
//! ```
//!
//! Every entry carries the acknowledgement of the read chunk it came from; a source's position
//! (a file offset, a container's log time) is written only up to the end of the longest
//! prefix of chunks whose entries every client has acknowledged (or that were dropped on
//! purpose and counted). The source is the write-ahead log: a crash re-sends what was in
//! flight and loses nothing, and what it re-sends carries the timestamps of its first send, so
//! that Loki keeps it once (`positions::stamps` for files; Docker's own timestamps).
//!
//! Layers: [`units`] and [`ack`] are leaves; [`config`] mirrors Promtail's YAML and
//! [`settings`] turns it into the runtime types every other module takes; [`topology`] owns
//! what runs (per job: a pipeline; per source kind: a [`sources::Source`]; per client: a
//! sender) and [`app`] runs it until a signal.

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
pub mod sources;
pub mod tail;
#[cfg(test)]
mod test_support;
pub mod topology;
pub mod units;
