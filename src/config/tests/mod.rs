//! Unit tests of the config module, one file per concern.
#![allow(clippy::unwrap_used)] // tests may unwrap (style guide)

mod envsubst;
mod flags;
mod load;
mod types;
mod validate;

use super::{Config, ConfigError, ParseError};

/// Parses `text`, panicking with the error if it fails.
pub(super) fn parse(text: &str) -> Config {
    match Config::parse_str(text, "test.yaml") {
        Ok(c) => c,
        Err(e) => panic!("config did not parse: {e}\n---\n{text}"),
    }
}

/// Parses `text`, expecting a parse error.
pub(super) fn parse_err(text: &str) -> ParseError {
    match Config::parse_str(text, "test.yaml") {
        Ok(_) => panic!("config parsed but should not:\n{text}"),
        Err(ConfigError::Parse(p)) => p,
        Err(other) => panic!("expected a parse error, got {other:?}"),
    }
}

/// Validates, expecting problems; returns them.
pub(super) fn problems(cfg: &Config) -> Vec<String> {
    match cfg.validate_with(&crate::settings::Runtime) {
        Ok(w) => panic!("config validated but should not (warnings: {w:?})"),
        Err(ConfigError::Invalid(p)) => p,
        Err(other) => panic!("expected validation problems, got {other:?}"),
    }
}
