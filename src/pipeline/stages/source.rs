//! The input of the parsing stages (`regex`, `logfmt`): the log line, or the value of the
//! extracted key named by their `source` option, as shared text.
//!
//! Promtail's rule (spec §7.2): a missing `source` key, or a value `getString` cannot convert
//! (null), makes the stage a no-op. Lines that are not valid UTF-8 are read from a lossy copy
//! (Go matches an invalid byte as U+FFFD).

use crate::pipeline::extracted::{Text, Value, format_go_float};
use crate::pipeline::stage::PipelineEntry;

/// The text the stage parses, or `None` when it has nothing to do.
pub fn input(source: Option<&str>, pe: &PipelineEntry) -> Option<Text> {
    match source {
        None => {
            let line = &pe.entry.line;
            Some(match std::str::from_utf8(line) {
                Ok(s) => Text::slice_of(line, s),
                Err(_) => Text::from(String::from_utf8_lossy(line).into_owned()),
            })
        }
        Some(key) => match pe.extracted.get_value(key)? {
            Value::Str(t) => Some(t),
            Value::Num(n) => Some(Text::from(format_go_float(n))),
            Value::Bool(b) => Some(Text::from_static(if b { "true" } else { "false" })),
            Value::Null => None,
        },
    }
}
