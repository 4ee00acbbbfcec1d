//! `file_sd_configs` (spec §4.3): target groups read from JSON or YAML files, read again when
//! something changes in their directories and every `refresh_interval`, and published on a
//! watch channel.
//!
//! The behaviour is that of Prometheus 2.55's `discovery/file` (with `targetgroup` and
//! `common/model` for the parsing), as vendored by Promtail 3.4.6:
//! - patterns are Go `filepath.Glob` patterns (`*`, `?`, `[...]`, `[^...]`, `\x`; no `**`, no
//!   `{a,b}`), relative to the working directory (Promtail does not join them with the config
//!   file's directory); matches of a pattern with wildcards are cleaned as Go's `filepath.Join`
//!   does, a literal pattern is used as written. At load, [`check_config`] allows `*` in the
//!   last path segment only and requires a `.json`/`.yml`/`.yaml` name (all lower or all upper
//!   case); a malformed glob passes that check and then matches nothing;
//! - a file is a list of `{targets: [...], labels: {...}}`. JSON field names match without
//!   regard to case and unknown ones are refused; YAML is strict (unknown keys and duplicate
//!   keys refused) and takes any scalar as its text; a null scalar reads as `""`; label names
//!   follow the legacy rule `[a-zA-Z_][a-zA-Z0-9_]*`; a null group refuses the whole file; an
//!   empty (or null) YAML document is no groups, an empty JSON file an error;
//! - each group gets `__meta_filepath` = the file's path as the glob produced it, and the
//!   source `<path>:<index>`;
//! - a file that cannot be read or parsed keeps the groups it had (warned and counted every
//!   time); a file no longer matched drops them;
//! - groups without targets are not published (Prometheus' discovery manager drops them).
//!
//! Deliberate differences: a scan runs 100 ms after the first event of a burst and updates are
//! published at once (Prometheus scans at every event and its manager sends at most every
//! 5 s, which hides half-written files); the task ends when no receiver is left; a file that
//! vanishes between globbing and reading counts as gone, not as an error; a match that is not
//! a regular file is refused without being opened (a FIFO would block the scan for ever);
//! besides each pattern's directory, the directories of matched files are watched too (which
//! covers wildcards in directory names).
//!
//! Invariants: the published list is ordered by file path, then by index in the file; it is
//! published only when it differs from the current value, except after the first scan, which
//! always notifies (consumers then know that discovery has answered, even with nothing);
//! globbing and file I/O run in `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::str::Chars;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::TargetGroup;
use crate::entry::go_quote_into;
use crate::metrics::Metrics;
use crate::units::is_legacy_label_name;

/// The label naming the file a group came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// The shortest period between timed scans. Prometheus panics on a zero `refresh_interval`
/// (Go's ticker refuses it); a floor keeps a zero from turning into a busy loop instead.
const MIN_REFRESH: Duration = Duration::from_millis(10);

/// How long a burst of file system events may go on before the scan it triggers.
const SETTLE: Duration = Duration::from_millis(100);

/// A `file_sd_configs` entry or file that cannot be used. Each names the pattern or the file.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    /// `files` is empty (refused at load, as Prometheus does).
    #[error("file service discovery config must contain at least one path name")]
    NoFiles,
    /// A pattern Prometheus refuses at load.
    #[error(
        "path name {} is not valid for file discovery: it must end in .json, .yml or .yaml \
         (or .JSON, .YML, .YAML), with '*' only in its last path segment",
        quote(.pattern)
    )]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
    },
    /// A pattern that is not a valid Go glob (it matches nothing).
    #[error("file_sd glob {} is malformed: {reason}", quote(.pattern))]
    BadGlob {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The glob matched something that is not a regular file (a directory, a FIFO, ...).
    #[error("{path}: not a regular file")]
    NotRegular {
        /// The path.
        path: String,
    },
    /// Neither `.json` nor `.yml`/`.yaml` (in any case).
    #[error("{path}: unsupported file extension {}: file_sd files are .json, .yml or .yaml", quote(.ext))]
    Extension {
        /// The file.
        path: String,
        /// Its extension, with the dot (`""` when it has none).
        ext: String,
    },
    /// Not valid JSON, or not a list of target groups.
    #[error("{path}: invalid JSON target groups: {message}")]
    Json {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// Not valid YAML, or not a list of target groups.
    #[error("{path}: invalid YAML target groups: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's message (with line and column where known).
        message: String,
    },
    /// A list element is null.
    #[error("{path}: target group {index} is null")]
    NullGroup {
        /// The file.
        path: String,
        /// The element's index (from 0).
        index: usize,
    },
    /// A label name outside `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("{path}: target group {index}: {} is not a valid label name", quote(.name))]
    LabelName {
        /// The file.
        path: String,
        /// The group's index (from 0).
        index: usize,
        /// The refused name.
        name: String,
    },
}

/// `s` quoted as Go's `%q` does (the form Prometheus' messages use).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    go_quote_into(&mut out, s);
    out
}

/// Prometheus' load-time checks of one `file_sd_configs` entry's `files`: at least one
/// pattern, each valid (see [`check_pattern`]).
pub fn check_config(files: &[String]) -> Result<(), FileSdError> {
    if files.is_empty() {
        return Err(FileSdError::NoFiles);
    }
    files.iter().try_for_each(|f| check_pattern(f))
}

/// Prometheus' load-time check of one pattern: a `.json`, `.yml` or `.yaml` name (all lower or
/// all upper case), and no `*` before the last `/`. Other wildcards are not checked here, as in
/// Prometheus.
pub fn check_pattern(pattern: &str) -> Result<(), FileSdError> {
    const EXTS: [&str; 6] = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"];
    let ext_ok = EXTS.iter().any(|e| pattern.ends_with(e));
    let star_ok = pattern
        .find('*')
        .is_none_or(|i| !pattern[i..].contains('/'));
    if ext_ok && star_ok {
        Ok(())
    } else {
        Err(FileSdError::InvalidPattern {
            pattern: pattern.to_owned(),
        })
    }
}

/// Parses one SD file's content; the format follows the extension of `path` (`.json`, or
/// `.yml`/`.yaml`, in any case). Every group gets [`FILEPATH_LABEL`] = `path` and the source
/// `<path>:<index>`.
pub fn parse_groups(path: &Path, bytes: &[u8]) -> Result<Vec<TargetGroup>, FileSdError> {
    let name = path.to_string_lossy().into_owned();
    let ext = go_ext(&name).to_lowercase();
    let raw = match ext.as_str() {
        ".json" => parse_json(bytes).map_err(|message| FileSdError::Json {
            path: name.clone(),
            message,
        })?,
        ".yml" | ".yaml" => parse_yaml(bytes).map_err(|message| FileSdError::Yaml {
            path: name.clone(),
            message,
        })?,
        _ => {
            return Err(FileSdError::Extension {
                ext: go_ext(&name).to_owned(),
                path: name,
            });
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    for (index, group) in raw.into_iter().enumerate() {
        let Some(RawGroup {
            targets,
            mut labels,
        }) = group
        else {
            return Err(FileSdError::NullGroup { path: name, index });
        };
        if let Some(bad) = labels.keys().find(|n| !is_legacy_label_name(n)) {
            return Err(FileSdError::LabelName {
                name: bad.clone(),
                path: name,
                index,
            });
        }
        labels.insert(FILEPATH_LABEL.to_owned(), name.clone());
        out.push(TargetGroup {
            targets,
            labels,
            source: format!("{name}:{index}"),
        });
    }
    Ok(out)
}

/// Go's `filepath.Ext`: from the last `.` of the last path segment (`""` without one), so
/// that a file named `.json` is JSON.
fn go_ext(path: &str) -> &str {
    let base = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    base.rfind('.').map_or("", |i| &base[i..])
}

/// A group as the file spells it, before the checks that need its index.
#[derive(Default)]
struct RawGroup {
    targets: Vec<String>,
    labels: BTreeMap<String, String>,
}

fn parse_json(bytes: &[u8]) -> Result<Vec<Option<RawGroup>>, String> {
    // Go's decoder reads invalid UTF-8 in strings as U+FFFD instead of refusing it.
    let text = String::from_utf8_lossy(bytes);
    let groups: Option<Vec<Option<JsonGroup>>> =
        serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(groups
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.map(|g| g.0))
        .collect())
}

/// One JSON group, read as Go's `encoding/json` reads `targetgroup.Group`: keys in document
/// order, a later one replacing an earlier one, field names matched with Unicode simple case
/// folding, unknown fields refused, `null` as the zero value.
struct JsonGroup(RawGroup);

impl<'de> Deserialize<'de> for JsonGroup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(JsonGroupVisitor)
    }
}

struct JsonGroupVisitor;

impl<'de> Visitor<'de> for JsonGroupVisitor {
    type Value = JsonGroup;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a target group (an object with \"targets\" and \"labels\")")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonGroup, A::Error> {
        let mut group = RawGroup::default();
        while let Some(key) = map.next_key::<String>()? {
            if json_field_is(&key, "targets") {
                let targets: Option<Vec<Option<String>>> = map.next_value()?;
                group.targets = targets
                    .unwrap_or_default()
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect();
            } else if json_field_is(&key, "labels") {
                let labels: Option<BTreeMap<String, Option<String>>> = map.next_value()?;
                group.labels = labels
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect();
            } else {
                return Err(de::Error::custom(format!("unknown field {}", quote(&key))));
            }
        }
        Ok(JsonGroup(group))
    }
}

/// Whether a JSON key names `field` (lower-case ASCII) as Go's decoder sees it: equal under
/// simple case folding, where the only non-ASCII letter folding to one of `targets`/`labels`
/// is the long s (U+017F).
fn json_field_is(key: &str, field: &str) -> bool {
    let mut k = key.chars().map(|c| match c {
        '\u{17F}' => 's',
        c => c.to_ascii_lowercase(),
    });
    field.chars().all(|f| k.next() == Some(f)) && k.next().is_none()
}

fn parse_yaml(bytes: &[u8]) -> Result<Vec<Option<RawGroup>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    // Deep flow nesting would make serde_yaml take quadratic time before refusing it.
    crate::units::yaml_depth::check_flow_depth(text).map_err(|e| e.to_string())?;
    // First pass: syntax and duplicate keys at any depth, and merge keys (`<<`), which
    // yaml.v2 applies and serde_yaml's typed reading does not.
    let mut doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if doc.is_null() {
        // An empty document (or only comments, or `null`): yaml.v2 leaves the list nil.
        return Ok(Vec::new());
    }
    let merged;
    let source = if has_merge_keys(&doc) {
        doc.apply_merge().map_err(|e| e.to_string())?;
        merged = serde_yaml::to_string(&doc).map_err(|e| e.to_string())?;
        merged.as_str()
    } else {
        text
    };
    // Second pass: typed, reading scalars from their source text as yaml.v2 does.
    let groups: Vec<Option<YamlGroup>> = serde_yaml::from_str(source).map_err(|e| e.to_string())?;
    Ok(groups
        .into_iter()
        .map(|g| {
            g.map(|g| RawGroup {
                targets: g.targets,
                labels: g.labels,
            })
        })
        .collect())
}

fn has_merge_keys(v: &serde_yaml::Value) -> bool {
    match v {
        serde_yaml::Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_keys(v)),
        serde_yaml::Value::Sequence(s) => s.iter().any(has_merge_keys),
        serde_yaml::Value::Tagged(t) => has_merge_keys(&t.value),
        _ => false,
    }
}

/// One YAML group, read as yaml.v2's `UnmarshalStrict` reads `targetgroup.Group`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a target group (a map with `targets` and `labels`)"
)]
struct YamlGroup {
    #[serde(default, deserialize_with = "crate::units::de::text_list")]
    targets: Vec<String>,
    #[serde(default, deserialize_with = "yaml_labels")]
    labels: BTreeMap<String, String>,
}

/// A scalar as its source text (null is `""`), as yaml.v2 reads it into a string.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::units::de::text(d).map(Text)
    }
}

/// The `labels` map: keys and values as scalar text, null is empty. Two keys with the same
/// text are refused, as yaml.v2's strict mode compares keys after decoding them (`1` and
/// `"1"` collide there, while the first pass sees two different keys).
fn yaml_labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Labels;
    impl<'de> Visitor<'de> for Labels {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of label names to values")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(Labels)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(Text(name)) = map.next_key()? {
                let Text(value) = map.next_value()?;
                if out.contains_key(&name) {
                    let msg = format!("label {} is set twice", quote(&name));
                    return Err(de::Error::custom(msg));
                }
                out.insert(name, value);
            }
            Ok(out)
        }
    }
    d.deserialize_option(Labels)
}

// --- Go's filepath.Glob ---------------------------------------------------------------------

/// One element of a Go `filepath.Match` pattern segment.
#[derive(Debug)]
enum Token {
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: any one character but `/`.
    AnyChar,
    /// A literal character (also an escaped one).
    Char(char),
    /// `[...]` or `[^...]`: one character in (or, negated, outside) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Whether Go's `Glob` treats `s` as a pattern rather than a path (Unix rules).
fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Checks that every segment of `pattern` is a well-formed Go glob.
fn check_glob(pattern: &str) -> Result<(), FileSdError> {
    for segment in pattern.split('/') {
        parse_segment(segment).map_err(|reason| FileSdError::BadGlob {
            pattern: pattern.to_owned(),
            reason,
        })?;
    }
    Ok(())
}

/// Parses one path segment of a glob with Go's rules: in a class, `-` and `]` must be
/// escaped where they would be a bound, a class needs at least one range, and `\` escapes the
/// next character everywhere.
fn parse_segment(segment: &str) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut chars = segment.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => Token::Char(chars.next().ok_or("it ends with a lone backslash")?),
            '[' => parse_class(&mut chars)?,
            c => Token::Char(c),
        });
    }
    Ok(out)
}

fn parse_class(chars: &mut Peekable<Chars<'_>>) -> Result<Token, &'static str> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_bound(chars)?;
        let hi = if chars.next_if_eq(&'-').is_some() {
            class_bound(chars)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// One bound of a class range; something (at least the closing `]`) must follow it.
fn class_bound(chars: &mut Peekable<Chars<'_>>) -> Result<char, &'static str> {
    const UNCLOSED: &str = "a character class is not closed";
    let c = match chars.next() {
        None => return Err(UNCLOSED),
        Some('-' | ']') => {
            return Err("a character class is empty or has an unescaped '-' or ']' as a bound");
        }
        Some('\\') => chars.next().ok_or(UNCLOSED)?,
        Some(c) => c,
    };
    if chars.peek().is_none() {
        return Err(UNCLOSED);
    }
    Ok(c)
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Star => true,
        Token::AnyChar => c != '/',
        Token::Char(x) => *x == c,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Whether `name` matches the whole token list. Every token but `*` takes one character, so
/// backtracking only ever needs to let the latest `*` take one more character.
fn segment_matches(tokens: &[Token], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(token) = tokens.get(t) {
            if matches!(token, Token::Star) {
                star = Some((t, n));
                t += 1;
                continue;
            }
            if chars.get(n).is_some_and(|&c| token_matches(token, c)) {
                t += 1;
                n += 1;
                continue;
            }
        } else if n == chars.len() {
            return true;
        }
        match star {
            Some((st, sn)) if chars.get(sn).is_some_and(|&c| c != '/') => {
                star = Some((st, sn + 1));
                t = st + 1;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

/// Go's `filepath.Glob` for a pattern [`check_glob`] accepted: a pattern without wildcards is
/// returned as it is when something is there; otherwise the directory part is expanded (when
/// it has wildcards itself) and listed, names sorted, matches joined and cleaned. I/O errors
/// read as "nothing there", as in Go. Names that are not UTF-8 are skipped.
fn expand(pattern: &str) -> Vec<String> {
    if !has_meta(pattern) {
        return match std::fs::symlink_metadata(pattern) {
            Ok(_) => vec![pattern.to_owned()],
            Err(_) => Vec::new(),
        };
    }
    let (dir, file) = pattern.split_at(pattern.rfind('/').map_or(0, |i| i + 1));
    let dir = match dir {
        "" => ".",
        "/" => "/",
        d => &d[..d.len() - 1],
    };
    let Ok(tokens) = parse_segment(file) else {
        return Vec::new();
    };
    let dirs = if has_meta(dir) {
        expand(dir)
    } else {
        vec![dir.to_owned()]
    };
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort_unstable();
        for name in names {
            if segment_matches(&tokens, &name) {
                out.push(go_clean(&format!("{d}/{name}")));
            }
        }
    }
    out
}

/// Go's `filepath.Clean` (Unix): no empty or `.` segments, `..` removes the segment before it
/// (at the root it is dropped), `.` for nothing.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&p) if p != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_owned()
    } else {
        body
    }
}

// --- the task -------------------------------------------------------------------------------

/// The discoverer of one `file_sd_configs` entry.
pub struct FileSd {
    files: Vec<String>,
    refresh_interval: Duration,
    metrics: Arc<Metrics>,
}

/// What one scan found for one file.
enum Outcome {
    Groups(Vec<TargetGroup>),
    /// It vanished between globbing and reading.
    Gone,
    Failed(FileSdError),
}

/// What one scan found: every matched file (sorted, each once) and their directories.
struct Scan {
    files: Vec<(String, Outcome)>,
    dirs: BTreeSet<PathBuf>,
}

impl FileSd {
    /// A discoverer for the patterns `files` (validated at load with [`check_config`]), read
    /// again every `refresh_interval` and on file system events. Read errors are counted in
    /// `metrics`.
    pub fn new(files: Vec<String>, refresh_interval: Duration, metrics: Arc<Metrics>) -> Self {
        FileSd {
            files,
            refresh_interval,
            metrics,
        }
    }

    /// Publishes the groups of every matched file on `out` (see the module doc) until
    /// `shutdown`, or until every receiver of `out` is gone.
    pub async fn run(mut self, out: watch::Sender<Vec<TargetGroup>>, shutdown: CancellationToken) {
        // A malformed glob can never match; say so once rather than at every scan.
        let mut patterns = Vec::new();
        for p in std::mem::take(&mut self.files) {
            match check_glob(&p) {
                Ok(()) => patterns.push(p),
                Err(e) => tracing::error!(error = %e, "This file_sd pattern matches nothing."),
            }
        }
        let base_dirs = pattern_dirs(&patterns);
        let patterns = Arc::new(patterns);
        let (wake_tx, mut wake) = mpsc::channel(1);
        let mut watcher = make_watcher(wake_tx);
        let mut watched: HashSet<PathBuf> = HashSet::new();
        // Watched before the first scan, so that nothing written after the scan looked goes
        // unnoticed until the next refresh.
        update_watches(&mut watcher, &mut watched, base_dirs.clone());
        let mut groups: BTreeMap<String, Vec<TargetGroup>> = BTreeMap::new();
        let mut first = true;
        let mut ticker = tokio::time::interval(self.refresh_interval.max(MIN_REFRESH));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: the first scan runs at once.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = out.closed() => return,
                _ = ticker.tick() => {}
                Some(()) = wake.recv() => {
                    // A writer that truncates and then writes sends several events; reading at
                    // the first would often find the file empty (valid YAML: no groups) and drop
                    // its targets for a moment. (Promtail hides this behind the discovery
                    // manager's 5 s throttle.) Let the burst settle, then scan once for it.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(SETTLE) => {}
                    }
                    while wake.try_recv().is_ok() {}
                }
            }
            let patterns = Arc::clone(&patterns);
            let scan = tokio::task::spawn_blocking(move || scan(&patterns));
            let scan = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                scan = scan => scan,
            };
            let scan = match scan {
                Ok(scan) => scan,
                Err(e) => {
                    tracing::error!(error = %e, "A file_sd scan failed; it runs again at the next refresh.");
                    continue;
                }
            };
            // Watches first: a consumer that reacts to the update by writing a file is heard.
            let mut dirs = scan.dirs;
            dirs.extend(base_dirs.iter().cloned());
            update_watches(&mut watcher, &mut watched, dirs);
            let list = self.apply(&mut groups, scan.files);
            publish(&out, list, first);
            first = false;
        }
    }

    /// Folds one scan into the groups per file and returns the list to publish.
    fn apply(
        &self,
        groups: &mut BTreeMap<String, Vec<TargetGroup>>,
        files: Vec<(String, Outcome)>,
    ) -> Vec<TargetGroup> {
        let mut next = BTreeMap::new();
        for (path, outcome) in files {
            match outcome {
                Outcome::Groups(g) => {
                    next.insert(path, g);
                }
                Outcome::Gone => {}
                Outcome::Failed(e) => {
                    tracing::warn!(file = %path, error = %e, "Cannot use this file_sd file; the target groups it had are kept.");
                    self.metrics.sd_file_read_errors.inc();
                    if let Some(previous) = groups.remove(&path) {
                        next.insert(path, previous);
                    }
                }
            }
        }
        for path in groups.keys().filter(|p| !next.contains_key(*p)) {
            tracing::debug!(file = %path, "file_sd file no longer matched; its target groups are dropped.");
        }
        *groups = next;
        groups
            .values()
            .flatten()
            .filter(|g| !g.targets.is_empty())
            .cloned()
            .collect()
    }
}

/// Sets `out` to `list` when it differs (or when `force`), notifying receivers only then.
fn publish(out: &watch::Sender<Vec<TargetGroup>>, list: Vec<TargetGroup>, force: bool) -> bool {
    out.send_if_modified(|current| {
        if !force && *current == list {
            return false;
        }
        *current = list;
        true
    })
}

/// Each pattern's own directory, which Prometheus watches (when it is a plain path).
fn pattern_dirs(patterns: &[String]) -> BTreeSet<PathBuf> {
    patterns
        .iter()
        .map(|p| &p[..p.rfind('/').map_or(0, |i| i + 1)])
        .filter(|dir| !has_meta(dir))
        .map(|dir| PathBuf::from(if dir.is_empty() { "." } else { dir }))
        .collect()
}

/// Globs every pattern and reads every match (blocking).
fn scan(patterns: &[String]) -> Scan {
    let mut paths = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for p in patterns {
        paths.extend(expand(p));
    }
    let files = paths
        .into_iter()
        .map(|path| {
            let parent = Path::new(&path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty());
            dirs.insert(parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf));
            let outcome = read_one(&path);
            (path, outcome)
        })
        .collect();
    Scan { files, dirs }
}

/// Reads and parses one matched file (blocking).
fn read_one(path: &str) -> Outcome {
    let read_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Outcome::Gone
        } else {
            Outcome::Failed(FileSdError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    match std::fs::metadata(path) {
        Err(e) => return read_error(e),
        Ok(m) if !m.is_file() => {
            return Outcome::Failed(FileSdError::NotRegular {
                path: path.to_owned(),
            });
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => match parse_groups(Path::new(path), &bytes) {
            Ok(groups) => Outcome::Groups(groups),
            Err(e) => Outcome::Failed(e),
        },
        Err(e) => read_error(e),
    }
}

/// Watches `want` (non-recursively) and nothing else. Every directory is added again at each
/// scan, as Prometheus does: one removed and created again has lost its watch.
fn update_watches(
    watcher: &mut Option<RecommendedWatcher>,
    watched: &mut HashSet<PathBuf>,
    want: BTreeSet<PathBuf>,
) {
    let Some(watcher) = watcher.as_mut() else {
        return;
    };
    watched.retain(|dir| {
        if want.contains(dir) {
            return true;
        }
        // The directory may be gone already, which also ended its watch.
        let _ = watcher.unwatch(dir);
        false
    });
    for dir in want {
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir);
            }
            // Usually the directory does not exist (yet); timed scans still run.
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "Cannot watch this file_sd directory.")
            }
        }
    }
}

/// Whether an event may mean a changed SD file. Prometheus re-reads on anything but a chmod
/// (fsnotify reports no opens or closes); notify also reports opens and closes, and the scan's
/// own reads would then wake it again for ever. A close after writing does count: the writer
/// is done.
fn may_change_files(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    }
}

/// A watcher whose events wake the task (the channel holds one wake-up at most: more events
/// before the scan add nothing).
fn make_watcher(wake: mpsc::Sender<()>) -> Option<RecommendedWatcher> {
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(event) => {
            if event.need_rescan() || may_change_files(&event.kind) {
                let _ = wake.try_send(());
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "File system watcher error; file_sd files are read again at the next refresh_interval.");
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot create a file system watcher; file_sd files are read every refresh_interval only.");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn group(path: &str, index: usize, targets: &[&str], l: &[(&str, &str)]) -> TargetGroup {
        let mut labels = labels(l);
        labels.insert(FILEPATH_LABEL.into(), path.into());
        TargetGroup {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            labels,
            source: format!("{path}:{index}"),
        }
    }

    fn parse(path: &str, text: &str) -> Result<Vec<TargetGroup>, FileSdError> {
        parse_groups(Path::new(path), text.as_bytes())
    }

    fn parse_err(path: &str, text: &str) -> String {
        match parse(path, text) {
            Ok(g) => panic!("{path} should be refused, got {g:?}"),
            Err(e) => e.to_string(),
        }
    }

    // The shapes of Prometheus' discovery/file fixtures (valid.json, valid.yml, valid2.yml).
    const VALID_JSON: &str = r#"[
        {
            "targets": ["localhost:9090", "example.org:443"],
            "labels": { "foo": "bar", "__path__": "/var/log/app/*.log" }
        },
        { "targets": ["my.domain"] }
    ]"#;

    const VALID_YAML: &str = "\
- targets: ['localhost:9090', 'example.org:443']
  labels:
    foo: bar
    __path__: /var/log/app/*.log

- targets: [\"my.domain\"]
";

    #[test]
    fn parses_json_groups() {
        let got = parse("/etc/sd/apps.json", VALID_JSON).unwrap();
        let path = "/etc/sd/apps.json";
        assert_eq!(
            got,
            vec![
                group(
                    path,
                    0,
                    &["localhost:9090", "example.org:443"],
                    &[("foo", "bar"), ("__path__", "/var/log/app/*.log")]
                ),
                group(path, 1, &["my.domain"], &[]),
            ]
        );
        assert_eq!(got[0].source, "/etc/sd/apps.json:0");
        assert_eq!(got[1].labels[FILEPATH_LABEL], "/etc/sd/apps.json");
    }

    #[test]
    fn parses_yaml_groups() {
        for path in ["sd/apps.yml", "sd/apps.yaml", "sd/APPS.YML", "sd/apps.Yaml"] {
            let got = parse(path, VALID_YAML).unwrap();
            assert_eq!(
                got,
                vec![
                    group(
                        path,
                        0,
                        &["localhost:9090", "example.org:443"],
                        &[("foo", "bar"), ("__path__", "/var/log/app/*.log")]
                    ),
                    group(path, 1, &["my.domain"], &[]),
                ],
                "{path}"
            );
        }
        // valid2.yml's shape: three groups, some with several labels.
        let text = "\
- targets: ['my.domain']
- targets: ['localhost:9090']
  labels:
    foo: bar
    fred: baz
- targets: ['example.org:443']
  labels:
    scheme: https
";
        let got = parse("/sd/v2.yml", text).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1],
            group(
                "/sd/v2.yml",
                1,
                &["localhost:9090"],
                &[("foo", "bar"), ("fred", "baz")]
            )
        );
        assert_eq!(got[2].source, "/sd/v2.yml:2");
    }

    #[test]
    fn the_filepath_label_is_set_even_over_the_file_s_own() {
        let got = parse(
            "/a/b.yml",
            "- targets: [x]\n  labels: {__meta_filepath: other}\n",
        )
        .unwrap();
        assert_eq!(got[0].labels[FILEPATH_LABEL], "/a/b.yml");
    }

    #[test]
    fn yaml_reads_scalars_as_their_text_and_null_as_empty() {
        let text = "\
- targets: [10.0.0.1:80, 8080, ~, 0x1F]
  labels:
    port: 9090
    enabled: yes
    ratio: 1.50
    empty: ~
    blank:
    true: t
";
        let got = parse("s.yaml", text).unwrap();
        assert_eq!(got[0].targets, ["10.0.0.1:80", "8080", "", "0x1F"]);
        let l = &got[0].labels;
        assert_eq!(l["port"], "9090");
        assert_eq!(l["enabled"], "yes");
        assert_eq!(l["ratio"], "1.50");
        assert_eq!(l["empty"], "");
        assert_eq!(l["blank"], "");
        assert_eq!(l["true"], "t");
    }

    #[test]
    fn yaml_merge_keys_apply() {
        let text = "\
- targets: [a]
  labels: &common
    env: prod
- targets: [b]
  labels:
    <<: *common
    app: web
";
        let got = parse("m.yml", text).unwrap();
        assert_eq!(got[1].labels["env"], "prod");
        assert_eq!(got[1].labels["app"], "web");
    }

    #[test]
    fn json_reads_null_as_empty_and_field_names_without_case() {
        let text = r#"[{"TARGETS": ["a", null], "Labels": {"x": null}, "targetſ": ["b"]}]"#;
        let got = parse("j.json", text).unwrap();
        // The last spelling of a field wins, as in Go.
        assert_eq!(got[0].targets, ["b"]);
        assert_eq!(got[0].labels["x"], "");
    }

    #[test]
    fn groups_without_targets_or_labels_parse() {
        let got = parse("e.yml", "- labels: {a: b}\n- {}\n- targets:\n").unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|g| g.targets.is_empty()));
        let got = parse("e.json", r#"[{}, {"targets": null, "labels": null}]"#).unwrap();
        assert_eq!(
            got,
            vec![group("e.json", 0, &[], &[]), group("e.json", 1, &[], &[])]
        );
    }

    #[test]
    fn empty_files() {
        // yaml.v2 leaves the list nil for an empty document; encoding/json refuses no input.
        for text in ["", "\n", "# nothing yet\n", "null\n", "~"] {
            assert_eq!(parse("e.yml", text).unwrap(), vec![], "{text:?}");
        }
        assert_eq!(parse("e.yml", "[]").unwrap(), vec![]);
        assert_eq!(parse("e.json", "[]").unwrap(), vec![]);
        assert_eq!(parse("e.json", "null").unwrap(), vec![]);
        let msg = parse_err("/sd/e.json", "");
        assert!(
            msg.starts_with("/sd/e.json: invalid JSON target groups: EOF"),
            "{msg}"
        );
        let msg = parse_err("/sd/e.json", "  \n");
        assert!(msg.contains("invalid JSON"), "{msg}");
    }

    #[test]
    fn a_null_group_refuses_the_file() {
        // Prometheus' invalid_nil fixtures.
        let yaml = "- targets: ['localhost:9090']\n  labels:\n    foo: bar\n\n- null\n";
        assert_eq!(
            parse_err("/sd/n.yml", yaml),
            "/sd/n.yml: target group 1 is null"
        );
        let json = r#"[{"targets": ["localhost:9090"], "labels": {"foo": "bar"}}, null]"#;
        assert_eq!(
            parse_err("/sd/n.json", json),
            "/sd/n.json: target group 1 is null"
        );
        assert_eq!(parse_err("n.yml", "-\n"), "n.yml: target group 0 is null");
    }

    #[test]
    fn invalid_label_names_are_refused() {
        for name in ["1abc", "foo.bar", "foo-bar", "", "é"] {
            let json = format!(r#"[{{"targets": ["a"], "labels": {{"{name}": "x"}}}}]"#);
            let msg = parse_err("/sd/l.json", &json);
            let want = format!(
                "/sd/l.json: target group 0: {} is not a valid label name",
                quote(name)
            );
            assert_eq!(msg, want);
            let yaml = format!("- targets: [a]\n- targets: [b]\n  labels: {{'{name}': x}}\n");
            let msg = parse_err("/sd/l.yml", &yaml);
            let want = format!(
                "/sd/l.yml: target group 1: {} is not a valid label name",
                quote(name)
            );
            assert_eq!(msg, want);
        }
        // A null key is the empty name.
        let msg = parse_err("l.yml", "- labels: {~: x}\n");
        assert_eq!(msg, "l.yml: target group 0: \"\" is not a valid label name");
    }

    #[test]
    fn unknown_fields_and_wrong_shapes_are_refused() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "u.json",
                r#"[{"targets": ["a"], "label": {}}]"#,
                "unknown field \"label\"",
            ),
            (
                "u.yml",
                "- targets: [a]\n  label: {}\n",
                "unknown field `label`",
            ),
            // YAML keys are case-sensitive (yaml.v2), unlike JSON's.
            ("u.yml", "- Targets: [a]\n", "unknown field `Targets`"),
            ("u.json", r#"{"targets": ["a"]}"#, "invalid type: map"),
            ("u.yml", "targets: [a]\n", "invalid type: map"),
            ("u.json", r#"[{"targets": [1]}]"#, "invalid type: integer"),
            ("u.json", r#"[{"targets": "a"}]"#, "invalid type: string"),
            (
                "u.json",
                r#"[{"labels": {"a": true}}]"#,
                "invalid type: boolean",
            ),
            ("u.json", r#"["a"]"#, "expected a target group"),
            ("u.yml", "- targets: [[a]]\n", "invalid type: sequence"),
            ("u.yml", "- labels: {a: [b]}\n", "invalid type: sequence"),
            ("u.yml", "- targets\n", "expected a target group"),
            ("u.yml", "- labels: {a: b, a: c}\n", "duplicate"),
            (
                "u.yml",
                "- labels: {1: b, '1': c}\n",
                "label \"1\" is set twice",
            ),
            ("u.yml", "- targets: [a]\n  targets: [b]\n", "duplicate"),
            ("u.yml", "]gibberish\n][", "invalid YAML"),
            (
                "u.json",
                "[{\"targets\": [\"a\"]}] x",
                "trailing characters",
            ),
        ];
        for (path, text, want) in cases {
            let msg = parse_err(path, text);
            assert!(msg.starts_with(&format!("{path}: ")), "{msg}");
            assert!(
                msg.contains(want),
                "{path} {text:?}: {msg:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn other_extensions_are_refused() {
        for (path, ext) in [("/sd/t.txt", ".txt"), ("/sd/t", ""), ("/sd.d/t", "")] {
            assert_eq!(
                parse_err(path, "[]"),
                format!(
                    "{path}: unsupported file extension {}: file_sd files are .json, .yml or .yaml",
                    quote(ext)
                )
            );
        }
        // Go's filepath.Ext: a file named `.json` is JSON.
        assert_eq!(parse("/sd/.json", "[]").unwrap(), vec![]);
    }

    #[test]
    fn deep_yaml_is_refused_quickly() {
        let text = "[".repeat(100_000);
        let msg = parse_err("d.yml", &text);
        assert!(msg.contains("nested more than 128 deep"), "{msg}");
    }

    #[test]
    fn invalid_utf8() {
        let msg = parse_groups(Path::new("b.yml"), b"- targets: [\xff]\n").unwrap_err();
        assert!(msg.to_string().contains("not UTF-8"), "{msg}");
        // encoding/json reads it as U+FFFD.
        let got = parse_groups(Path::new("b.json"), b"[{\"targets\": [\"a\xffb\"]}]").unwrap();
        assert_eq!(got[0].targets, ["a\u{FFFD}b"]);
    }

    #[test]
    fn config_checks_follow_prometheus() {
        for ok in [
            "/etc/sd/*.json",
            "/etc/sd/targets.yml",
            "sd/*-prod*.yaml",
            "*.YAML",
            ".json",
            "/etc/s?d/[ab]/*.JSON",
        ] {
            check_pattern(ok).unwrap();
        }
        for bad in [
            "/etc/*/x.json",
            "/etc/sd/*.txt",
            "/etc/sd/*.Json",
            "/etc/sd/x.json.bak",
            "*/",
        ] {
            let msg = check_pattern(bad).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!(
                    "path name {} is not valid for file discovery",
                    quote(bad)
                )),
                "{msg}"
            );
        }
        assert_eq!(
            check_config(&[]).unwrap_err().to_string(),
            "file service discovery config must contain at least one path name"
        );
        check_config(&["a.yml".into(), "b/*.json".into()]).unwrap();
        assert!(check_config(&["a.yml".into(), "b/*/c.json".into()]).is_err());
    }

    fn go_match(pattern: &str, name: &str) -> Result<bool, &'static str> {
        parse_segment(pattern).map(|t| segment_matches(&t, name))
    }

    #[test]
    fn glob_segments_match_as_go_does() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.json", "a.json", true),
            ("*.json", ".hidden.json", true),
            ("*.json", "a.json.bak", false),
            ("*", "", true),
            ("a*", "a", true),
            ("a*b*c", "abxbyc", true),
            ("a*b*c", "abxbycd", false),
            ("*x*", "yyxyy", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("[ab].yml", "b.yml", true),
            ("[ab].yml", "c.yml", false),
            ("[^ab].yml", "c.yml", true),
            ("[^ab].yml", "a.yml", false),
            ("[!a].yml", "!.yml", true),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[\\]]", "]", true),
            ("[\\-]", "-", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("{a,b}.json", "{a,b}.json", true),
            ("{a,b}.json", "a.json", false),
            ("**.json", "x.json", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(go_match(p, n), Ok(*want), "{p:?} against {n:?}");
        }
        for bad in [
            "[", "[]", "[]a]", "[^]", "[a", "[a-", "[a-]", "[-a]", "[a-b-c]", "a\\", "[\\",
        ] {
            assert!(go_match(bad, "a").is_err(), "{bad:?} should be malformed");
        }
        assert!(check_glob("/etc/sd/[.json").is_err());
        assert!(check_glob("/etc/[x/*.json").is_err());
        check_glob("/etc/[xy]/*.json").unwrap();
    }

    #[test]
    fn go_clean_cases() {
        for (input, want) in [
            ("./a/b", "a/b"),
            ("a//b/", "a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("../a/../../b", "../../b"),
            ("a/..", "."),
            ("", "."),
            ("/", "/"),
        ] {
            assert_eq!(go_clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn globs_expand_as_go_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        for f in [
            "b.yml",
            "a.yml",
            "c.json",
            "sub1/x.yml",
            "sub2/y.yml",
            "sub2/z.txt",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "[]").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.yml")).unwrap();
        assert_eq!(
            expand(&format!("{root}/*.yml")),
            [
                format!("{root}/a.yml"),
                format!("{root}/b.yml"),
                format!("{root}/d.yml")
            ]
        );
        // Wildcards in directories are expanded too (Prometheus only refuses `*` there).
        assert_eq!(
            expand(&format!("{root}/sub?/*.yml")),
            [format!("{root}/sub1/x.yml"), format!("{root}/sub2/y.yml")]
        );
        // Matches are cleaned; a literal pattern is kept as written.
        assert_eq!(
            expand(&format!("{root}//./[c].json")),
            [format!("{root}/c.json")]
        );
        assert_eq!(
            expand(&format!("{root}//c.json")),
            [format!("{root}//c.json")]
        );
        assert!(expand(&format!("{root}/missing/*.yml")).is_empty());
        assert!(expand(&format!("{root}/nothing.yml")).is_empty());
    }

    #[test]
    fn unchanged_lists_are_not_published_again() {
        let (tx, mut rx) = watch::channel(Vec::new());
        assert!(publish(&tx, vec![], true), "the first scan always notifies");
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        let list = vec![group("a.yml", 0, &["x"], &[])];
        assert!(publish(&tx, list.clone(), false));
        rx.mark_unchanged();
        assert!(!publish(&tx, list, false));
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn apply_keeps_groups_of_failed_files_and_drops_empty_groups() {
        let metrics = Arc::new(Metrics::new());
        let sd = FileSd::new(vec![], Duration::from_secs(1), Arc::clone(&metrics));
        let mut state = BTreeMap::new();
        let a = vec![
            group("a.yml", 0, &["x"], &[]),
            group("a.yml", 1, &[], &[("k", "v")]),
        ];
        let b = vec![group("b.yml", 0, &["y"], &[])];
        let list = sd.apply(
            &mut state,
            vec![
                ("a.yml".into(), Outcome::Groups(a.clone())),
                ("b.yml".into(), Outcome::Groups(b.clone())),
            ],
        );
        assert_eq!(list, vec![a[0].clone(), b[0].clone()]);
        let failed = FileSdError::NullGroup {
            path: "a.yml".into(),
            index: 0,
        };
        let list = sd.apply(
            &mut state,
            vec![
                ("a.yml".into(), Outcome::Failed(failed)),
                ("b.yml".into(), Outcome::Gone),
            ],
        );
        assert_eq!(list, vec![a[0].clone()]);
        assert_eq!(metrics.sd_file_read_errors.get(), 1);
        // A file that failed on its first read has nothing to keep.
        let failed = FileSdError::NullGroup {
            path: "c.yml".into(),
            index: 0,
        };
        let list = sd.apply(&mut state, vec![("c.yml".into(), Outcome::Failed(failed))]);
        assert_eq!(list, vec![]);
    }

    /// Waits (at most 30 s) until the published groups equal `want`.
    async fn wait_for(
        rx: &mut watch::Receiver<Vec<TargetGroup>>,
        want: &[TargetGroup],
        what: &str,
    ) {
        let waited = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|g| g == want))
            .await
            .map(|r| r.is_ok());
        match waited {
            Ok(true) => {}
            Ok(false) => panic!("{what}: the discoverer stopped"),
            Err(_) => panic!(
                "{what}: not published within 30 s; last published: {:?}",
                *rx.borrow()
            ),
        }
    }

    /// Replaces `path` at once (write elsewhere, then rename), so that no scan sees half a file.
    fn write_atomically(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_task_follows_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        let metrics = Arc::new(Metrics::new());
        // Events drive the updates; the short refresh is only a fallback for lost events.
        let sd = FileSd::new(
            vec![format!("{root}/*.yml"), format!("{root}/*.json")],
            Duration::from_millis(500),
            Arc::clone(&metrics),
        );
        let (tx, mut rx) = watch::channel(Vec::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(sd.run(tx, shutdown.clone()));

        // Nothing there yet: the first scan still notifies.
        tokio::time::timeout(Duration::from_secs(30), rx.changed())
            .await
            .expect("the first scan is published within 30 s")
            .unwrap();
        assert!(rx.borrow_and_update().is_empty());

        let a = format!("{root}/a.yml");
        write_atomically(Path::new(&a), VALID_YAML);
        let a_groups = parse(&a, VALID_YAML).unwrap();
        wait_for(&mut rx, &a_groups, "a new file").await;

        let changed = "- targets: [new.host]\n  labels: {env: prod}\n";
        write_atomically(Path::new(&a), changed);
        let a_changed = vec![group(&a, 0, &["new.host"], &[("env", "prod")])];
        wait_for(&mut rx, &a_changed, "a changed file").await;

        // Written in place (truncated, then written): whatever a scan sees in between, the
        // complete file wins.
        let in_place = "- targets: [other.host]\n";
        std::fs::write(&a, in_place).unwrap();
        let a_in_place = vec![group(&a, 0, &["other.host"], &[])];
        wait_for(&mut rx, &a_in_place, "a file written in place").await;
        write_atomically(Path::new(&a), changed);
        wait_for(&mut rx, &a_changed, "a changed file again").await;

        // A broken version keeps the previous groups. A second file written after it proves
        // that a scan has read the broken one: any scan that sees b.json sees the broken a.yml.
        write_atomically(Path::new(&a), "- targets: [x]\n  labelz: {}\n");
        let b = format!("{root}/b.json");
        write_atomically(Path::new(&b), r#"[{"targets": ["b.host"]}]"#);
        let mut both = a_changed.clone();
        both.push(group(&b, 0, &["b.host"], &[]));
        wait_for(&mut rx, &both, "a broken file next to a new one").await;
        assert!(metrics.sd_file_read_errors.get() >= 1);

        // Sorted by path: a.yml comes before b.json again once it is valid.
        write_atomically(Path::new(&a), changed);
        std::fs::remove_file(&b).unwrap();
        wait_for(&mut rx, &a_changed, "a removed file").await;

        std::fs::remove_file(&a).unwrap();
        wait_for(&mut rx, &[], "every file removed").await;

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the task stops within 30 s of shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn the_task_ends_when_nobody_listens() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = format!("{}/*.yml", dir.path().to_str().unwrap());
        let sd = FileSd::new(
            vec![pattern],
            Duration::from_secs(300),
            Arc::new(Metrics::new()),
        );
        let (tx, rx) = watch::channel(Vec::new());
        drop(rx);
        tokio::time::timeout(
            Duration::from_secs(30),
            sd.run(tx, CancellationToken::new()),
        )
        .await
        .expect("the task ends without receivers");
    }
}
