//! The server's log level and format, with Promtail's syntax; the duration and size types
//! live in [`crate::units`] (re-exported here).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::units::de::scalar_deserialize;
pub use crate::units::{ByteSize, GoDuration, PromDuration};

/// `server.log_level` / `-log.level`: `debug`, `info` (default), `warn` or `error`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// `debug`
    Debug,
    /// `info` (default)
    #[default]
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
}

impl LogLevel {
    /// Parses one of the four names (exact, lowercase, as dskit does).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            _ => Err(format!(
                "unrecognized log level {s:?} (valid levels: debug, info, warn, error)"
            )),
        }
    }

    /// The YAML/flag name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Promtail rejects a null log level ("Invalid log level"); we read it as the default.
scalar_deserialize!(LogLevel, LogLevel::parse, LogLevel::Info);

impl Serialize for LogLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `server.log_format` / `-log.format`: `logfmt` (default) or `json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `logfmt` (default)
    #[default]
    Logfmt,
    /// `json`
    Json,
}

impl LogFormat {
    /// Parses `logfmt` or `json`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "logfmt" => Ok(LogFormat::Logfmt),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "unrecognized log format {s:?} (valid formats: logfmt, json)"
            )),
        }
    }

    /// The YAML/flag name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogFormat::Logfmt => "logfmt",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

scalar_deserialize!(LogFormat, LogFormat::parse, LogFormat::Logfmt);

impl Serialize for LogFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
