//! The two on-disk formats: Promtail's positions YAML and ferrotail's identity sidecar.
//!
//! Reading follows Promtail (`yaml.UnmarshalStrict` into `{positions: map[string]string}`, spec
//! §6.1): a single top-level key `positions`; any scalar is taken as its text (`123` and `"123"`
//! both give `"123"`); explicit keys (`? key`) are fine; unknown top-level keys, non-scalar
//! values and duplicate keys are errors; an empty document or `positions:` with no value is an
//! empty map. Flow collections nested deeper than serde_yaml accepts are refused before it
//! scans them ([`crate::units::yaml_depth`]).
//!
//! Writing produces YAML that Go Promtail (yaml.v2, i.e. libyaml) reads back into the same map,
//! so a user can roll back without losing positions: keys sorted, two-space indentation, values
//! always double-quoted, keys plain only when they are unmistakably plain strings (otherwise
//! double-quoted with escapes), keys over [`LONG_KEY_BYTES`] in explicit-key form because
//! libyaml refuses simple keys over 1024 characters, and an empty map as `positions: {}`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::units::yaml_depth::check_flow_depth;

/// Keys longer than this many bytes are written as explicit keys (`? key` / `: value`), like
/// yaml.v2 does; libyaml rejects simple keys longer than 1024 characters.
pub(super) const LONG_KEY_BYTES: usize = 128;

/// The sidecar format version this code reads and writes.
pub(super) const SIDECAR_VERSION: u32 = 3;

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionsDoc {
    #[serde(default)]
    positions: Option<StrictStringMap>,
}

/// A string-to-string map that refuses duplicate keys (yaml.v2's strict mode does too) and
/// takes any scalar as its text (serde_yaml hands the raw scalar to `deserialize_str`).
struct StrictStringMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StrictStringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StrictMapVisitor)
    }
}

struct StrictMapVisitor;

impl<'de> Visitor<'de> for StrictMapVisitor {
    type Value = StrictStringMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<String>()?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "key {key:?} already set in map"
                )));
            }
            out.insert(key, value);
        }
        Ok(StrictStringMap(out))
    }
}

/// Parses a positions file. The error text is serde_yaml's (with line and column); the caller
/// wraps it in Promtail's `invalid yaml positions file [<path>]: <err>`.
pub(crate) fn parse_positions(text: &str) -> Result<BTreeMap<String, String>, String> {
    check_flow_depth(text).map_err(|e| e.to_string())?;
    let doc: PositionsDoc = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    Ok(doc.positions.map(|m| m.0).unwrap_or_default())
}

/// One generation of a file in the sidecar: identity, fingerprint of its first bytes
/// (`head` bytes hashed to `hash`; 0 = unknown), committed offset and size; since version 3
/// the stamps of its lines handed on past the offset (`marks` as `[offset, ns]` pairs, valid
/// below `through`, see `stamps.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SidecarGeneration {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub head: u32,
    #[serde(default)]
    pub hash: u64,
    /// Its content was truncated away in place (copytruncate); only a copy can hold it.
    #[serde(default)]
    pub copied: bool,
    #[serde(default)]
    pub through: u64,
    #[serde(default)]
    pub marks: Vec<(u64, i64)>,
}

/// One path in the sidecar: the generation at the path, with the offset it was saved with (it
/// is only trusted when that offset equals the positions file's value for the key, i.e. when
/// both files were written by the same save, see `file.rs`), and the older generations that
/// still had lines to read or acknowledge, oldest first. Version 1 had only `dev`, `ino` and
/// `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SidecarEntry {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub head: u32,
    #[serde(default)]
    pub hash: u64,
    #[serde(default)]
    pub older: Vec<SidecarGeneration>,
    #[serde(default)]
    pub through: u64,
    #[serde(default)]
    pub marks: Vec<(u64, i64)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarDoc {
    version: u32,
    #[serde(default)]
    files: Option<BTreeMap<String, SidecarEntry>>,
}

/// Parses an identity sidecar (version 1 or 2).
pub(crate) fn parse_sidecar(text: &str) -> Result<BTreeMap<String, SidecarEntry>, String> {
    check_flow_depth(text).map_err(|e| e.to_string())?;
    let doc: SidecarDoc = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if !(1..=SIDECAR_VERSION).contains(&doc.version) {
        return Err(format!(
            "unsupported version {} (this ferrotail reads versions 1 to {SIDECAR_VERSION})",
            doc.version
        ));
    }
    Ok(doc.files.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Renders the positions map in Promtail's format.
pub(crate) fn render_positions(values: &BTreeMap<String, String>) -> String {
    if values.is_empty() {
        return "positions: {}\n".to_string();
    }
    let mut out = String::with_capacity(16 + values.len() * 64);
    out.push_str("positions:\n");
    for (key, value) in values {
        push_entry(&mut out, key, |out| push_double_quoted(out, value));
    }
    out
}

/// Renders the identity sidecar; `positions_name` only goes into the leading comment.
pub(crate) fn render_sidecar(
    positions_name: &str,
    entries: &BTreeMap<String, SidecarEntry>,
) -> String {
    let mut out = String::with_capacity(128 + entries.len() * 96);
    out.push_str("# Written by ferrotail beside ");
    // A comment ends at the line break, so keep the name on one line.
    out.extend(
        positions_name
            .chars()
            .map(|c| if c.is_control() { '?' } else { c }),
    );
    out.push_str(
        ": the (device, inode) of each file and its older generations, which Promtail's format cannot hold.\n",
    );
    out.push_str("version: 3\n");
    if entries.is_empty() {
        out.push_str("files: {}\n");
        return out;
    }
    out.push_str("files:\n");
    for (key, e) in entries {
        push_entry(&mut out, key, |out| {
            out.push_str(&format!(
                "{{dev: {}, ino: {}, offset: {}, size: {}, head: {}, hash: {}",
                e.dev, e.ino, e.offset, e.size, e.head, e.hash
            ));
            push_marks(out, e.through, &e.marks);
            if !e.older.is_empty() {
                out.push_str(", older: [");
                for (i, g) in e.older.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&format!(
                        "{{dev: {}, ino: {}, offset: {}, size: {}, head: {}, hash: {}, copied: {}",
                        g.dev, g.ino, g.offset, g.size, g.head, g.hash, g.copied
                    ));
                    push_marks(out, g.through, &g.marks);
                    out.push('}');
                }
                out.push(']');
            }
            out.push('}');
        });
    }
    out
}

/// Appends `, through: N, marks: [[o, t], ...]` when there are stamps to replay.
fn push_marks(out: &mut String, through: u64, marks: &[(u64, i64)]) {
    if through == 0 || marks.is_empty() {
        return;
    }
    out.push_str(&format!(", through: {through}, marks: ["));
    for (i, (o, t)) in marks.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("[{o}, {t}]"));
    }
    out.push(']');
}

/// Appends one two-space indented mapping entry; long keys use the explicit-key form.
fn push_entry(out: &mut String, key: &str, value: impl FnOnce(&mut String)) {
    if key.len() > LONG_KEY_BYTES {
        out.push_str("  ? ");
        push_key(out, key);
        out.push_str("\n  : ");
    } else {
        out.push_str("  ");
        push_key(out, key);
        out.push_str(": ");
    }
    value(out);
    out.push('\n');
}

fn push_key(out: &mut String, key: &str) {
    if is_safe_plain(key) {
        out.push_str(key);
    } else {
        push_double_quoted(out, key);
    }
}

/// True when `s` can be written as a plain scalar and is read back as exactly this string by
/// any YAML 1.1 or 1.2 reader. Deliberately narrower than YAML allows: ASCII only, no spaces,
/// no indicator characters, starting with a letter, `/` or `_` (so it cannot look like a number),
/// and not a word that resolves to a bool or null.
fn is_safe_plain(s: &str) -> bool {
    let Some(first) = s.bytes().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'/' || first == b'_') {
        return false;
    }
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'.' | b'_' | b'-' | b'+' | b'@' | b'=' | b',' | b';' | b'~' | b'%'
            )
    };
    if !s.bytes().all(allowed) {
        return false;
    }
    const WORDS: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

/// Appends `s` as a YAML double-quoted scalar. Everything outside YAML's printable set, and the
/// characters that libyaml would fold or treat specially, is escaped.
fn push_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_yaml_printable(c) => out.push(c),
            c => {
                let n = u32::from(c);
                if n <= 0xFF {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xFFFF {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
        }
    }
    out.push('"');
}

/// YAML 1.1's printable characters, minus line breaks and the byte order mark (which readers
/// may strip), which must therefore be escaped.
fn is_yaml_printable(c: char) -> bool {
    matches!(u32::from(c),
        0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_appendix_b() {
        let text = "positions:\n  /var/log/auth.log: \"5120\"\n  /var/log/syslog: \"1048576\"\n  \
                    cursor-journal: s=0123456789abcdef0123456789abcdef;i=1a2b;b=fedcba9876543210fedcba9876543210;m=3c4d;t=5e6f7a8b9c0d1;x=1122334455667788\n";
        let m = parse_positions(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["/var/log/auth.log"], "5120");
        assert_eq!(m["/var/log/syslog"], "1048576");
        assert!(m["cursor-journal"].starts_with("s=0123456789abcdef"));
        assert!(m["cursor-journal"].ends_with(";x=1122334455667788"));
    }

    #[test]
    fn reads_promtail_variants() {
        let m = parse_positions(
            "positions:\n  /a: 123\n  /b: \"456\"\n  /c: '7'\n  \
             ? /var/log/pods/monitoring_very-long-pod-name-7d9f8c6b5-abcde_0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e/some-container/0.log\n  \
             : \"1048576\"\n  journal-varlogs: s=abc;i=1\n",
        )
        .unwrap();
        assert_eq!(m["/a"], "123");
        assert_eq!(m["/b"], "456");
        assert_eq!(m["/c"], "7");
        assert_eq!(m["journal-varlogs"], "s=abc;i=1");
        assert_eq!(
            m["/var/log/pods/monitoring_very-long-pod-name-7d9f8c6b5-abcde_0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e/some-container/0.log"],
            "1048576"
        );
    }

    #[test]
    fn empty_forms_are_empty_maps() {
        for text in [
            "",
            "\n",
            "# nothing\n",
            "positions:\n",
            "positions: {}\n",
            "positions: ~\n",
        ] {
            assert_eq!(parse_positions(text), Ok(BTreeMap::new()), "{text:?}");
        }
    }

    #[test]
    fn strict_errors() {
        for text in [
            "other: 1\n",
            "positions: {}\nsomething: 1\n",
            "positions:\n  /a: [1, 2]\n",
            "positions:\n  /a: {x: 1}\n",
            "positions:\n  /a: \"1\"\n  /a: \"2\"\n",
            "positions: 5\n",
            "- positions\n",
            "positions:\n  /a: \"1\n",
        ] {
            assert!(parse_positions(text).is_err(), "{text:?} must be refused");
        }
    }

    #[test]
    fn renders_promtail_shape() {
        assert_eq!(render_positions(&BTreeMap::new()), "positions: {}\n");
        let m = map(&[
            ("/var/log/syslog", "1048576"),
            ("/var/log/auth.log", "5120"),
            ("cursor-journal", "s=1;i=2"),
        ]);
        assert_eq!(
            render_positions(&m),
            "positions:\n  /var/log/auth.log: \"5120\"\n  /var/log/syslog: \"1048576\"\n  \
             cursor-journal: \"s=1;i=2\"\n"
        );
    }

    #[test]
    fn long_keys_are_explicit() {
        let key = format!("/var/log/pods/{}/0.log", "x".repeat(300));
        let text = render_positions(&map(&[(&key, "9")]));
        assert_eq!(text, format!("positions:\n  ? {key}\n  : \"9\"\n"));
        let key = "/".to_string() + &"a".repeat(LONG_KEY_BYTES - 1);
        assert!(render_positions(&map(&[(&key, "9")])).contains(&format!("  {key}: \"9\"")));
    }

    fn nasty_keys() -> Vec<String> {
        let mut keys: Vec<String> = [
            "/var/log/a b.log",
            "/var/log/a: b.log",
            "/var/log/a:b.log",
            "/var/log/#x.log",
            "/var/log/a #x.log",
            "#comment",
            "\"quoted\"",
            "'single'",
            "back\\slash",
            "/var/log/ünïcödé/日本語.log",
            "emoji 🦀",
            "123",
            "0x1F",
            "1e3",
            "-5",
            ".inf",
            "true",
            "False",
            "yes",
            "no",
            "on",
            "null",
            "~",
            "",
            " leading space",
            "trailing space ",
            "- dash",
            "-",
            "?",
            "? q",
            ":",
            "[a]",
            "{b}",
            "*alias",
            "&anchor",
            "!tag",
            "|literal",
            ">folded",
            "%directive",
            "@at",
            "`tick",
            "tab\there",
            "new\nline",
            "cr\rreturn",
            "nul\0byte",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}\u{9b}",
            "nbsp\u{a0}x",
            "ls\u{2028}ps\u{2029}",
            "bom\u{feff}",
            "nonchar\u{fffe}\u{ffff}",
            "astral\u{1F600}",
            "---",
            "...",
            "cursor-abc",
            "journal-varlogs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        keys.push(format!(
            "/var/log/pods/{}/0.log",
            "long-pod-name_".repeat(22)
        ));
        keys.push(format!(
            "/var/log/with space/{}: x #y \"z\"",
            "é".repeat(200)
        ));
        keys.push("k".repeat(1500));
        keys
    }

    #[test]
    fn nasty_keys_round_trip() {
        let keys = nasty_keys();
        let values = [
            "0",
            "12345",
            "s=a;b=c",
            "\"q\" \\ \n",
            "true",
            "",
            "~",
            "1e3",
        ];
        let m: BTreeMap<String, String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), values[i % values.len()].to_string()))
            .collect();
        assert_eq!(m.len(), keys.len(), "test keys must be distinct");
        let text = render_positions(&m);
        // Every line is short of libyaml's simple-key limit or uses the explicit form.
        for line in text.lines() {
            if line.len() > 1024 {
                assert!(line.starts_with("  ? "), "overlong simple key line");
            }
        }
        assert_eq!(parse_positions(&text), Ok(m.clone()), "text was:\n{text}");
        // And a generic YAML reader sees the same strings (no type resolution on any of them).
        let generic: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let inner = generic.get("positions").unwrap().as_mapping().unwrap();
        assert_eq!(inner.len(), m.len());
        for (k, v) in inner {
            let (k, v) = (k.as_str().unwrap(), v.as_str().unwrap());
            assert_eq!(m.get(k).map(String::as_str), Some(v), "key {k:?}");
        }
    }

    #[test]
    fn sidecar_round_trip() {
        let mut entries = BTreeMap::new();
        for (i, k) in nasty_keys().into_iter().enumerate() {
            let i = i as u64;
            let older = (0..i % 3)
                .map(|j| SidecarGeneration {
                    dev: i,
                    ino: j,
                    offset: j * 7,
                    size: j * 70,
                    head: 256,
                    hash: u64::MAX - j,
                    copied: j == 1,
                    through: if j == 1 { 900 } else { 0 },
                    marks: if j == 1 {
                        vec![(7, 1_733_000_000_000_000_000), (300, -5)]
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            entries.insert(
                k,
                SidecarEntry {
                    dev: i,
                    ino: u64::MAX - i,
                    offset: i * 1000,
                    size: i * 2000,
                    head: u32::try_from(i).unwrap(),
                    hash: i * 31,
                    older,
                    through: if i.is_multiple_of(4) { 0 } else { i * 1000 + i },
                    marks: (0..i % 4)
                        .map(|j| (i * 1000 + j, i64::MAX - j as i64))
                        .collect(),
                },
            );
        }
        let text = render_sidecar("/var/lib/ferrotail/positions.yaml\n# evil", &entries);
        assert_eq!(parse_sidecar(&text), Ok(entries), "text was:\n{text}");
        let empty = render_sidecar("p", &BTreeMap::new());
        assert_eq!(parse_sidecar(&empty), Ok(BTreeMap::new()));
    }

    #[test]
    fn sidecar_reads_version_1() {
        let m = parse_sidecar("version: 1\nfiles:\n  /a: {dev: 1, ino: 2, offset: 3}\n").unwrap();
        let e = &m["/a"];
        assert_eq!((e.dev, e.ino, e.offset, e.head), (1, 2, 3, 0));
        assert!(e.older.is_empty());
    }

    #[test]
    fn sidecar_refuses_other_versions_and_junk() {
        assert!(parse_sidecar("version: 4\nfiles: {}\n").is_err());
        assert!(parse_sidecar("version: 0\nfiles: {}\n").is_err());
        assert!(parse_sidecar("files: {}\n").is_err());
        assert!(parse_sidecar("version: 1\nfiles:\n  /a: {dev: 1}\n").is_err());
        assert!(parse_sidecar("\0\u{1}garbage: [").is_err());
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_serde_yaml_scans_it() {
        // A corrupt positions file must not stall the start for minutes (see
        // `config::yaml_depth`); it is an invalid positions file like any other.
        let text = format!("positions: {}", "{a: ".repeat(20_000));
        let e = parse_positions(&text).unwrap_err();
        assert!(e.starts_with("flow collections"), "{e}");
        assert!(parse_sidecar(&format!("files: {}", "[".repeat(20_000))).is_err());
    }
}
