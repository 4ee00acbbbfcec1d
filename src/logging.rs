//! ferrotail's own logs on stderr, in Promtail's shapes: go-kit logfmt
//! (`level=info ts=2026-01-02T03:04:05.678901Z msg="..." key=value`) or JSON (`-log.format`).
//!
//! Only `-log.level` and above are written. Secrets never reach a log field: configuration values
//! are logged only through the masked config rendering.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// go-kit logfmt (Promtail's default).
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `level` is one of debug, info, warn, error (validated by the
/// config loader). Calling it twice is harmless (the second call does nothing).
pub fn init(level: &str, format: LogFormat) {
    let level = match level {
        "debug" => Level::DEBUG,
        "warn" => Level::WARN,
        "error" => Level::ERROR,
        _ => Level::INFO,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// go-kit style logfmt formatter.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            _ => "debug",
        };
        let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let caller = meta
            .file()
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .unwrap_or("?");
        write!(
            w,
            "level={level} ts={ts} caller={caller}:{}",
            meta.line().unwrap_or(0)
        )?;
        let mut v = LogfmtVisitor {
            out: String::new(),
            msg: None,
        };
        event.record(&mut v);
        if let Some(msg) = v.msg {
            write!(w, " msg={}", quote(&msg))?;
        }
        writeln!(w, "{}", v.out)
    }
}

struct LogfmtVisitor {
    out: String,
    msg: Option<String>,
}

impl Visit for LogfmtVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = Some(value.to_string());
        } else {
            self.out.push(' ');
            self.out.push_str(field.name());
            self.out.push('=');
            self.out.push_str(&quote(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// logfmt value quoting: bare when it has no space, quote, `=` or control character.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control())
    {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    crate::entry::go_quote_into(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn logfmt_quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("x\"y\n"), "\"x\\\"y\\n\"");
    }
}
