//! Positions: the Promtail-format positions file and the acknowledgement trackers that decide
//! what may be written to it.

pub mod acks;
pub mod store;

pub use store::{FileIdentity, Positions, SavedPosition};
