//! `decolorize`: strips ANSI escape sequences (colours, styles, OSC titles) from the line
//! (spec §7.2).
//!
//! ```yaml
//! decolorize:        # no options; a body is ignored
//! ```
//!
//! Uses the pattern of Loki's `decolorize` (LogQL and Promtail share it), compiled once:
//! `ESC` or `CSI` (U+009B), optional `[]()#;?` characters, then either a BEL-terminated sequence
//! or up to four digits with `;`-separated parameters and one final character. Like Go's, the
//! final character may be a letter of the text when a sequence is malformed (`ESC[0;32http`
//! loses the `h`). Lines that are not valid UTF-8 are matched byte-wise (invalid bytes never
//! match) and otherwise left as they are; a line without escapes is not copied.

use bytes::Bytes;
use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::re2;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// Loki's `ansiPattern`.
const ANSI: &str = "[\u{1b}\u{9b}][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u{7})|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))";

/// The `decolorize` stage.
pub struct DecolorizeStage {
    re: regex::bytes::Regex,
}

impl DecolorizeStage {
    /// Builds the stage (no options).
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        if body.is_mapping() {
            Fields::new(body, &[], &cx.path)?;
        }
        Ok(DecolorizeStage {
            re: re2::compile_bytes(ANSI)?,
        })
    }
}

impl Stage for DecolorizeStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        // Cheap pre-check: both introducers contain a byte 0x1b or 0x9b.
        if !pe.entry.line.iter().any(|&b| b == 0x1b || b == 0x9b) {
            return Outcome::Keep;
        }
        if let std::borrow::Cow::Owned(stripped) = self.re.replace_all(&pe.entry.line, &b""[..]) {
            pe.entry.line = Bytes::from(stripped);
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::pipeline::stages::testutil::*;

    fn decolorize(input: &[u8]) -> Vec<u8> {
        let mut p = pipeline("- decolorize:");
        let out = run_entry(
            &mut p,
            entry_with(&[], bytes::Bytes::copy_from_slice(input)),
        );
        out[0].line.to_vec()
    }

    #[test]
    fn documented_example() {
        // The documented line has `\033[0;32` with no final `m`: Loki's pattern (and so
        // Promtail) then takes the `h` of `http` as the final character.
        assert_eq!(
            decolorize(b"[2022-11-04 22:17:57.811] \x1b[0;32http\x1b[0m: GET /_health (0 ms) 204"),
            b"[2022-11-04 22:17:57.811] ttp: GET /_health (0 ms) 204"
        );
        // With the intended `m` the text stays whole.
        assert_eq!(
            decolorize(b"[2022-11-04 22:17:57.811] \x1b[0;32mhttp\x1b[0m: GET /_health (0 ms) 204"),
            b"[2022-11-04 22:17:57.811] http: GET /_health (0 ms) 204"
        );
    }

    #[test]
    fn loki_decolorizer_cases() {
        for (input, want) in [
            (&b"\x1b[0;32mHello\x1b[0m"[..], &b"Hello"[..]),
            (b"\x1b[1m\x1b[4mbold underline\x1b[0m", b"bold underline"),
            (b"\x1b[38;5;208morange\x1b[39m", b"orange"),
            (b"\x1b]0;title\x07text", b"text"),
            (b"\xc2\x9b31mcsi\xc2\x9b0m", b"csi"),
            (b"\x1b[2K\x1b[1Gprogress", b"progress"),
            (b"no colours here", b"no colours here"),
            (b"", b""),
            // Invalid UTF-8 stays as it is around the removed escape.
            (b"\xff\x1b[31mred\x1b[0m\xfe", b"\xffred\xfe"),
        ] {
            assert_eq!(
                decolorize(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn unchanged_lines_are_not_copied() {
        let mut p = pipeline("- decolorize: {}");
        let input = bytes::Bytes::from_static(b"plain \x1b text");
        let out = run_entry(&mut p, entry_with(&[], input.clone()));
        assert_eq!(out[0].line.as_ptr(), input.as_ptr());
    }
}
