//! Units and syntax rules shared by the config and the runtime: Go and Prometheus durations,
//! byte sizes, yaml.v2's reading of scalars, the YAML nesting guard and the label-name rule.
//!
//! A leaf module: it imports nothing of the crate, so runtime modules use these types without
//! depending on [`crate::config`] (which re-exports them for its own sections).

pub mod de;
mod labels;
mod values;
pub mod yaml_depth;

pub use labels::is_legacy_label_name;
pub use values::{ByteSize, GoDuration, PromDuration};
