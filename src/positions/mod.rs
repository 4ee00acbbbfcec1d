//! Positions: the Promtail-format positions file and the acknowledgement trackers that decide
//! what may be written to it.
//!
//! - `store.rs`: the in-memory map ([`Positions`]); a tracked file's value is its tracker's
//!   committed offset, never the read one.
//! - `file.rs`: reading, atomic writing and cleanup of the positions file and of the identity
//!   sidecar beside it ([`PositionsSettings`], [`PositionsError`]).
//! - `yaml.rs`: the two on-disk formats.
//! - `writer.rs`: the periodic save task ([`PositionsWriter`]).
//! - `acks.rs`: the per-source acknowledgement trackers.

pub mod acks;
pub(crate) mod file;
pub mod store;
mod writer;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

pub use file::{PositionsError, PositionsSettings};
pub use store::{FileIdentity, Positions, SavedPosition};
pub use writer::{MIN_SYNC_PERIOD, PositionsWriter};
