//! Positions: the Promtail-format positions file and the acknowledgement trackers that decide
//! what may be written to it.
//!
//! - `store.rs`: the in-memory map ([`Positions`]); a tracked file's value is its tracker's
//!   committed offset, never the read one.
//! - `file.rs`: reading, atomic writing and cleanup of the positions file and of the identity
//!   sidecar beside it ([`PositionsSettings`], [`PositionsError`]).
//! - `yaml.rs`: the two on-disk formats.
//! - `writer.rs`: the periodic save task ([`PositionsWriter`]).
//! - `stamps.rs`: read-time stamps a restart gives again, so that Loki merges what a crash
//!   re-sends.
//! - `generations.rs`: the generations of one path its committed state covers (rotated files
//!   with lines in flight, newer ones held open), fingerprints, and what a reader resumes.

pub(crate) mod file;
pub mod generations;
pub mod stamps;
pub mod store;
mod writer;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

pub use file::{Positions, PositionsError, PositionsSettings};
pub use generations::{
    FINGERPRINT_BYTES, Fingerprint, GenHandle, PathState, Phase, ResumePlan, SavedGeneration,
};
pub use stamps::{MAX_LAG, Mark, Stamps};
pub use store::{FileIdentity, PositionMap, SavedPath, SavedPosition, Snapshot};
pub use writer::{MIN_SAVE_GAP, MIN_SYNC_PERIOD, PositionsWriter};
