//! Prometheus relabeling at run time: [`process`] applies a list of [`Rule`]s, in order, to the
//! label set of one discovered target (spec §4.5). The semantics are those of
//! `model/relabel/relabel.go` in Prometheus 2.55, the version Promtail 3.4 vendors.
//!
//! Responsibilities and invariants:
//! - an empty value is an absent label, as in Prometheus' `labels.Builder`: input labels with an
//!   empty value are removed, a missing source label reads as `""`, and writing `""` (`replace`,
//!   `lowercase`, `uppercase`, `labelmap`) deletes the label;
//! - a dropped target (`keep`, `drop`, `keepequal`, `dropequal`) stops the rule list and leaves
//!   the label set empty, as Prometheus returns no labels for it;
//! - regexes are Go (RE2) patterns, fully anchored by [`anchored_regex`]; `$` templates expand as
//!   Go's `Regexp.Expand` does, not as the `regex` crate does (`$1x` names the group `1x`, `$01`
//!   names nothing);
//! - `lowercase`/`uppercase` map rune by rune with Go's simple case mapping (`ß` stays, `Σ` is
//!   always `σ`);
//! - labels are visited as Prometheus' builder visits them: the untouched input labels sorted by
//!   name, then the labels written by earlier rules in the order they were first written. Only
//!   `labelmap` can tell (when two labels map to one name, the later visit wins).
//!
//! Rules are built once, at load, from a validated config (`crate::settings::relabel_rules`);
//! nothing here re-validates or panics on a rule the validation would refuse.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use md5::{Digest, Md5};
use regex::{Captures, Regex};

/// What a [`Rule`] does with the joined source values (`value` below).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// If the regex matches `value`, sets the expanded `target_label` to the expanded
    /// `replacement` (deletes it when that is empty); skipped when the expanded name is invalid.
    Replace,
    /// Drops the target unless the regex matches `value`.
    Keep,
    /// Drops the target if the regex matches `value`.
    Drop,
    /// Drops the target unless `value` equals the value of `target_label`.
    KeepEqual,
    /// Drops the target if `value` equals the value of `target_label`.
    DropEqual,
    /// Sets `target_label` to the md5 of `value` (its last 8 bytes, big-endian) modulo `modulus`.
    HashMod,
    /// For every label whose name matches the regex, copies its value to the name obtained by
    /// replacing the matches in the name with `replacement`.
    LabelMap,
    /// Removes every label whose name matches the regex.
    LabelDrop,
    /// Removes every label whose name does not match the regex.
    LabelKeep,
    /// Sets `target_label` to `value` in lower case.
    Lowercase,
    /// Sets `target_label` to `value` in upper case.
    Uppercase,
}

/// Which names a `replace` may write; anything else makes the rule a no-op for that target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameScheme {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`: Prometheus 2.x, hence Promtail 3.4.
    #[default]
    Legacy,
    /// Any non-empty name: Prometheus 3.x with UTF-8 names (Promtail 3.5 and later).
    Utf8,
}

impl NameScheme {
    /// Whether `name` is a label name under this scheme.
    pub fn is_valid(self, name: &str) -> bool {
        match self {
            NameScheme::Legacy => crate::units::is_legacy_label_name(name),
            NameScheme::Utf8 => !name.is_empty(),
        }
    }
}

/// One relabel rule, ready to run (the runtime form of a `relabel_configs` element).
#[derive(Clone, Debug)]
pub struct Rule {
    /// Labels whose values, joined by `separator`, form the value the rule looks at.
    pub source_labels: Vec<String>,
    /// Joins the source values (may be empty).
    pub separator: String,
    /// The label written or compared; may hold `$` references for `replace`.
    pub target_label: String,
    /// The fully anchored regex (see [`anchored_regex`]).
    pub regex: Regex,
    /// Modulus of `hashmod` (non-zero after validation; zero leaves the labels unchanged).
    pub modulus: u64,
    /// Template of the written value (`replace`) or name (`labelmap`).
    pub replacement: String,
    /// What the rule does.
    pub action: Action,
    /// Names `replace` may write.
    pub names: NameScheme,
}

/// Compiles a relabel regex as Prometheus 2.x does: Go syntax, anchored as `^(?:<pattern>)$`
/// (without the `s` flag, so `.` does not match a newline; Prometheus 3.x anchors as
/// `^(?s:<pattern>)$`).
pub fn anchored_regex(pattern: &str) -> Result<Regex, String> {
    crate::pipeline::re2::compile(&format!("^(?:{pattern})$"))
}

/// Applies `rules` in order to `labels`. Returns false when a rule drops the target; `labels` is
/// then empty. Input labels with an empty value are removed, rules or not.
pub fn process(rules: &[Rule], labels: &mut BTreeMap<String, String>) -> bool {
    // Prometheus' builder starts by marking empty-valued labels deleted.
    labels.retain(|_, v| !v.is_empty());
    let mut builder = Builder {
        labels,
        written: Vec::new(),
    };
    for rule in rules {
        if !apply(rule, &mut builder) {
            builder.labels.clear();
            return false;
        }
    }
    true
}

/// The label set being relabelled, with what Prometheus' `labels.Builder` needs for its visiting
/// order: the names written so far, in first-write order (a deletion forgets the write).
struct Builder<'a> {
    labels: &'a mut BTreeMap<String, String>,
    written: Vec<String>,
}

impl Builder<'_> {
    fn get(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    fn set(&mut self, name: &str, value: String) {
        if value.is_empty() {
            self.delete(name);
            return;
        }
        if !self.written.iter().any(|n| n == name) {
            self.written.push(name.to_owned());
        }
        self.labels.insert(name.to_owned(), value);
    }

    fn delete(&mut self, name: &str) {
        self.written.retain(|n| n != name);
        self.labels.remove(name);
    }

    /// The labels in Prometheus' visiting order, copied: rules visiting them also write.
    fn snapshot(&self) -> Vec<(String, String)> {
        let written = |name: &String| self.written.contains(name);
        let untouched = self.labels.iter().filter(|(n, _)| !written(n));
        let rewritten = self
            .written
            .iter()
            .filter_map(|n| self.labels.get_key_value(n));
        untouched
            .chain(rewritten)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}

/// Applies one rule; false drops the target.
fn apply(rule: &Rule, lb: &mut Builder) -> bool {
    let value = rule
        .source_labels
        .iter()
        .map(|n| lb.get(n))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    match rule.action {
        Action::Drop => return !rule.regex.is_match(&value),
        Action::Keep => return rule.regex.is_match(&value),
        Action::DropEqual => return lb.get(&rule.target_label) != value,
        Action::KeepEqual => return lb.get(&rule.target_label) == value,
        Action::Replace => {
            let Some(caps) = rule.regex.captures(&value) else {
                return true;
            };
            let mut target = String::new();
            expand(&mut target, &rule.target_label, &caps);
            if rule.names.is_valid(&target) {
                let mut res = String::new();
                expand(&mut res, &rule.replacement, &caps);
                lb.set(&target, res);
            }
        }
        Action::Lowercase => lb.set(&rule.target_label, value.chars().map(go_lower).collect()),
        Action::Uppercase => lb.set(&rule.target_label, value.chars().map(go_upper).collect()),
        Action::HashMod => {
            if let Some(n) = hash_mod(&value, rule.modulus) {
                lb.set(&rule.target_label, n.to_string());
            }
        }
        Action::LabelMap => {
            for (name, value) in lb.snapshot() {
                if rule.regex.is_match(&name) {
                    let mapped = replace_all(&rule.regex, &name, &rule.replacement);
                    // Prometheus does not check the mapped name; the load-time validation of
                    // `replacement` is all there is.
                    lb.set(&mapped, value);
                }
            }
        }
        Action::LabelDrop | Action::LabelKeep => {
            let keep_matching = rule.action == Action::LabelKeep;
            for (name, _) in lb.snapshot() {
                if rule.regex.is_match(&name) != keep_matching {
                    lb.delete(&name);
                }
            }
        }
    }
    true
}

/// md5 of `value`, its last 8 bytes as a big-endian integer, modulo `modulus` (Prometheus kept
/// those bytes so that hashes stay what older versions computed). None for a zero modulus.
fn hash_mod(value: &str, modulus: u64) -> Option<u64> {
    let digest = Md5::digest(value.as_bytes());
    let low: [u8; 8] = digest.get(8..16)?.try_into().ok()?;
    u64::from_be_bytes(low).checked_rem(modulus)
}

/// Go's `Regexp.ReplaceAllString`: every match of `re` in `src` replaced by the expanded
/// `template`. Go's rules for empty matches are kept: an empty match right after a match is not
/// replaced, and the search always moves on by at least one character.
fn replace_all(re: &Regex, src: &str, template: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last_end = 0;
    let mut pos = 0;
    while pos <= src.len() {
        let Some(caps) = re.captures_at(src, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else {
            break;
        };
        out.push_str(&src[last_end..m.start()]);
        if m.end() > last_end || m.start() == 0 {
            expand(&mut out, template, &caps);
        }
        last_end = m.end();
        let width = src[pos..].chars().next().map_or(0, char::len_utf8);
        pos = if pos + width > m.end() {
            pos + width
        } else if pos + 1 > m.end() {
            pos + 1
        } else {
            m.end()
        };
    }
    out.push_str(&src[last_end..]);
    out
}

/// Go's `Regexp.Expand`: appends `template` to `out` with `$name`/`${name}` replaced by the
/// group's text. `$$` is a `$`; a name is the longest run of Unicode letters, decimal digits and
/// `_` (so `$1x` is the group named `1x`); a number with a leading zero is a name; an unknown or
/// unmatched group is empty; a `$` not followed by a well-formed reference is kept as is.
fn expand(out: &mut String, template: &str, caps: &Captures) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = reference(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = if name.bytes().all(|b| b.is_ascii_digit()) {
            // Go refuses leading zeros (and numbers it would overflow on): such a name is
            // looked up as a name, and no group name starts with a digit.
            let numeric = name == "0" || !name.starts_with('0');
            numeric
                .then(|| name.parse::<usize>().ok())
                .flatten()
                .and_then(|i| caps.get(i))
        } else {
            caps.name(name)
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
}

/// The reference after a `$`: `name` or `{name}`, and the text after it.
fn reference(s: &str) -> Option<(&str, &str)> {
    static NAME: OnceLock<Regex> = OnceLock::new();
    // Go's unicode.IsLetter, unicode.IsDigit and `_`.
    let name_re = NAME.get_or_init(|| Regex::new(r"^[\p{L}\p{Nd}_]+").expect("constant regex"));
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len = name_re.find(body)?.end();
    let (name, after) = body.split_at(len);
    if braced {
        return after.strip_prefix('}').map(|a| (name, a));
    }
    Some((name, after))
}

/// Go's `unicode.ToLower`: the simple (one rune to one rune) mapping. Only `İ` has a longer full
/// mapping; its simple one is `i`.
fn go_lower(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// Go's `unicode.ToUpper`: the simple mapping. Where the full mapping is longer (`ß` → `SS`),
/// the simple one is the rune itself, except for the Greek letters with a subscript iota, whose
/// simple upper case is the matching letter with a subscript iota.
fn go_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => match u32::from(c) {
            0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => {
                char::from_u32(u32::from(c) + 8).unwrap_or(c)
            }
            0x1FB3 | 0x1FC3 | 0x1FF3 => char::from_u32(u32::from(c) + 9).unwrap_or(c),
            _ => c,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Expected values were cross-checked against Prometheus 2.55's `relabel.Process` (the
    //! vendored Go code run on the same cases) and, for `hashmod`, against Python's `hashlib`.

    use super::*;

    type Pairs = &'static [(&'static str, &'static str)];

    fn re(pattern: &str) -> Regex {
        anchored_regex(pattern).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A rule with Prometheus' defaults: no source labels, `;`, `(.*)`, `$1`.
    fn rule(action: Action) -> Rule {
        Rule {
            source_labels: Vec::new(),
            separator: ";".into(),
            target_label: String::new(),
            regex: re("(.*)"),
            modulus: 0,
            replacement: "$1".into(),
            action,
            names: NameScheme::Legacy,
        }
    }

    fn replace(sources: &[&str], regex: &str, target: &str, replacement: &str) -> Rule {
        Rule {
            source_labels: names(sources),
            regex: re(regex),
            target_label: target.into(),
            replacement: replacement.into(),
            ..rule(Action::Replace)
        }
    }

    fn with_regex(action: Action, regex: &str) -> Rule {
        Rule {
            regex: re(regex),
            ..rule(action)
        }
    }

    fn on(action: Action, sources: &[&str], regex: &str) -> Rule {
        Rule {
            source_labels: names(sources),
            ..with_regex(action, regex)
        }
    }

    fn equal(action: Action, sources: &[&str], target: &str) -> Rule {
        Rule {
            source_labels: names(sources),
            target_label: target.into(),
            ..rule(action)
        }
    }

    fn hashmod(sources: &[&str], separator: &str, modulus: u64) -> Rule {
        Rule {
            source_labels: names(sources),
            separator: separator.into(),
            target_label: "h".into(),
            modulus,
            ..rule(Action::HashMod)
        }
    }

    fn labelmap(regex: &str, replacement: &str) -> Rule {
        Rule {
            replacement: replacement.into(),
            ..with_regex(Action::LabelMap, regex)
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Runs `rules` on `input`; None when the target is dropped.
    fn run(rules: &[Rule], input: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        let mut labels = map(input);
        let kept = process(rules, &mut labels);
        if !kept {
            assert!(labels.is_empty(), "a dropped target keeps no labels");
        }
        kept.then_some(labels)
    }

    struct Case {
        name: &'static str,
        input: Pairs,
        rules: Vec<Rule>,
        /// None: dropped.
        want: Option<Pairs>,
    }

    fn check(cases: Vec<Case>) {
        for c in cases {
            assert_eq!(run(&c.rules, c.input), c.want.map(map), "case {:?}", c.name);
        }
    }

    const ABC: Pairs = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

    #[test]
    fn prometheus_own_cases() {
        check(vec![
            Case {
                name: "replace with ${1}",
                input: ABC,
                rules: vec![replace(&["a"], "f(.*)", "d", "ch${1}-ch${1}")],
                want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
            },
            Case {
                name: "a rule sees what the previous one wrote",
                input: ABC,
                rules: vec![
                    replace(&["a", "b"], "f(.*);(.*)r", "a", "b${1}${2}m"),
                    replace(&["c", "a"], "(b).*b(.*)ba(.*)", "d", "$1$2$2$3"),
                ],
                want: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
            },
            Case {
                name: "drop stops the list",
                input: &[("a", "foo")],
                rules: vec![
                    on(Action::Drop, &["a"], ".*o.*"),
                    replace(&["a"], "f(.*)", "d", "ch$1-ch$1"),
                ],
                want: None,
            },
            Case {
                name: "capture in the middle",
                input: &[("a", "abc")],
                rules: vec![replace(&["a"], ".*(b).*", "d", "$1")],
                want: Some(&[("a", "abc"), ("d", "b")]),
            },
            Case {
                name: "drop without a match",
                input: &[("a", "foo")],
                rules: vec![on(Action::Drop, &["a"], "no-match")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "alternation is anchored as a whole",
                input: &[("a", "foo")],
                rules: vec![on(Action::Drop, &["a"], "f|o")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "keep without a match",
                input: &[("a", "foo")],
                rules: vec![on(Action::Keep, &["a"], "no-match")],
                want: None,
            },
            Case {
                name: "keep with a match",
                input: &[("a", "foo")],
                rules: vec![on(Action::Keep, &["a"], "f.*")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "no match, no replacement",
                input: &[("a", "boo")],
                rules: vec![replace(&["a"], "f", "b", "bar")],
                want: Some(&[("a", "boo")]),
            },
            Case {
                name: "hashmod",
                input: ABC,
                rules: vec![Rule {
                    target_label: "d".into(),
                    ..hashmod(&["c"], ";", 1000)
                }],
                want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
            },
            Case {
                name: "hashmod of a multi-line value",
                input: &[("a", "foo\nbar")],
                rules: vec![Rule {
                    target_label: "b".into(),
                    ..hashmod(&["a"], ";", 1000)
                }],
                want: Some(&[("a", "foo\nbar"), ("b", "734")]),
            },
            Case {
                name: "labelmap",
                input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
                rules: vec![labelmap("(b.*)", "bar_${1}")],
                want: Some(&[
                    ("a", "foo"),
                    ("b1", "bar"),
                    ("b2", "baz"),
                    ("bar_b1", "bar"),
                    ("bar_b2", "baz"),
                ]),
            },
            Case {
                name: "labelmap of meta labels",
                input: &[
                    ("a", "foo"),
                    ("__meta_my_bar", "aaa"),
                    ("__meta_my_baz", "bbb"),
                    ("__meta_other", "ccc"),
                ],
                rules: vec![labelmap("__meta_(my.*)", "${1}")],
                want: Some(&[
                    ("a", "foo"),
                    ("__meta_my_bar", "aaa"),
                    ("__meta_my_baz", "bbb"),
                    ("__meta_other", "ccc"),
                    ("my_bar", "aaa"),
                    ("my_baz", "bbb"),
                ]),
            },
            Case {
                name: "target from a group",
                input: &[("a", "some-name-value")],
                rules: vec![replace(&["a"], "some-([^-]+)-([^,]+)", "${1}", "${2}")],
                want: Some(&[("a", "some-name-value"), ("name", "value")]),
            },
            Case {
                name: "empty replacement",
                input: &[("a", "some-name-value")],
                rules: vec![replace(&["a"], "some-([^-]+)-([^,]+)", "${1}", "${3}")],
                want: Some(&[("a", "some-name-value")]),
            },
            Case {
                name: "empty target name",
                input: &[("a", "some-name-0")],
                rules: vec![
                    replace(&["a"], "some-([^-]+)-([^,]+)", "${3}", "${1}"),
                    replace(&["a"], "some-([^-]+)(-[^,]+)", "${3}", "${1}"),
                ],
                want: Some(&[("a", "some-name-0")]),
            },
            Case {
                name: "tags parsed into labels",
                input: &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
                rules: vec![
                    replace(
                        &["__meta_sd_tags"],
                        "(?:.+,|^)path:(/[^,]+).*",
                        "__metrics_path__",
                        "${1}",
                    ),
                    replace(&["__meta_sd_tags"], "(?:.+,|^)job:([^,]+).*", "job", "${1}"),
                    replace(
                        &["__meta_sd_tags"],
                        "(?:.+,|^)label:([^=]+)=([^,]+).*",
                        "${1}",
                        "${2}",
                    ),
                ],
                want: Some(&[
                    ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
                    ("__metrics_path__", "/secret"),
                    ("foo", "bar"),
                    ("job", "some-job"),
                ]),
            },
            Case {
                name: "a dropped label can be set again (prometheus#12283)",
                input: &[
                    ("__meta_kubernetes_pod_container_port_name", "foo"),
                    ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
                ],
                rules: vec![
                    with_regex(
                        Action::LabelDrop,
                        "^__meta_kubernetes_pod_container_port_name$",
                    ),
                    replace(
                        &["__meta_kubernetes_pod_annotation_XXX_metrics_port"],
                        "(.+)",
                        "__meta_kubernetes_pod_container_port_name",
                        "metrics",
                    ),
                    on(
                        Action::Keep,
                        &["__meta_kubernetes_pod_container_port_name"],
                        "^metrics$",
                    ),
                ],
                want: Some(&[
                    ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
                    ("__meta_kubernetes_pod_container_port_name", "metrics"),
                ]),
            },
            Case {
                name: "labelkeep",
                input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
                rules: vec![with_regex(Action::LabelKeep, "(b.*)")],
                want: Some(&[("b1", "bar"), ("b2", "baz")]),
            },
            Case {
                name: "labeldrop",
                input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
                rules: vec![with_regex(Action::LabelDrop, "(b.*)")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "upper and lower case",
                input: &[("foo", "bAr123Foo")],
                rules: vec![
                    equal(Action::Uppercase, &["foo"], "foo_uppercase"),
                    equal(Action::Lowercase, &["foo"], "foo_lowercase"),
                ],
                want: Some(&[
                    ("foo", "bAr123Foo"),
                    ("foo_lowercase", "bar123foo"),
                    ("foo_uppercase", "BAR123FOO"),
                ]),
            },
        ]);
    }

    const PORTS: Pairs = &[
        ("__tmp_port", "1234"),
        ("__port1", "1234"),
        ("__port2", "5678"),
    ];

    #[test]
    fn keep_drop_and_their_equal_forms() {
        check(vec![
            Case {
                name: "keepequal, equal",
                input: PORTS,
                rules: vec![equal(Action::KeepEqual, &["__tmp_port"], "__port1")],
                want: Some(PORTS),
            },
            Case {
                name: "keepequal, different",
                input: PORTS,
                rules: vec![equal(Action::KeepEqual, &["__tmp_port"], "__port2")],
                want: None,
            },
            Case {
                name: "dropequal, equal",
                input: PORTS,
                rules: vec![equal(Action::DropEqual, &["__tmp_port"], "__port1")],
                want: None,
            },
            Case {
                name: "dropequal, different",
                input: PORTS,
                rules: vec![equal(Action::DropEqual, &["__tmp_port"], "__port2")],
                want: Some(PORTS),
            },
            Case {
                name: "a missing target equals an empty value",
                input: &[("a", "x")],
                rules: vec![equal(Action::KeepEqual, &["missing"], "also_missing")],
                want: Some(&[("a", "x")]),
            },
            Case {
                name: "keepequal compares the joined value",
                input: &[("a", "x"), ("b", "y"), ("t", "x;y")],
                rules: vec![equal(Action::KeepEqual, &["a", "b"], "t")],
                want: Some(&[("a", "x"), ("b", "y"), ("t", "x;y")]),
            },
            Case {
                name: "keep on a missing label: `.+` does not match the empty value",
                input: &[("a", "x")],
                rules: vec![on(Action::Keep, &["missing"], ".+")],
                want: None,
            },
            Case {
                name: "keep on a missing label: the default regex matches",
                input: &[("a", "x")],
                rules: vec![rule(Action::Keep)],
                want: Some(&[("a", "x")]),
            },
            Case {
                name: "the regex is anchored at both ends",
                input: &[("a", "foo")],
                rules: vec![on(Action::Keep, &["a"], "o")],
                want: None,
            },
            Case {
                name: "`.` does not match a newline (Prometheus 2.x anchoring)",
                input: &[("a", "foo\nbar")],
                rules: vec![on(Action::Keep, &["a"], "foo.bar")],
                want: None,
            },
            Case {
                name: "the `s` flag makes it match",
                input: &[("a", "foo\nbar")],
                rules: vec![on(Action::Keep, &["a"], "(?s)foo.bar")],
                want: Some(&[("a", "foo\nbar")]),
            },
            Case {
                name: "Go's \\d is ASCII",
                input: &[("a", "١٢")],
                rules: vec![on(Action::Keep, &["a"], r"\d+")],
                want: None,
            },
            Case {
                name: "Go's \\w is ASCII",
                input: &[("a", "héllo")],
                rules: vec![on(Action::Drop, &["a"], r"\w+")],
                want: Some(&[("a", "héllo")]),
            },
        ]);
    }

    #[test]
    fn replace_edge_cases() {
        let utf8 = |r: Rule| Rule {
            names: NameScheme::Utf8,
            ..r
        };
        check(vec![
            Case {
                name: "a missing source label is an empty value",
                input: &[("a", "foo")],
                rules: vec![replace(&["a", "missing", "a"], "(.*)", "t", "$1")],
                want: Some(&[("a", "foo"), ("t", "foo;;foo")]),
            },
            Case {
                name: "empty separator",
                input: &[("a", "foo"), ("b", "bar")],
                rules: vec![Rule {
                    separator: String::new(),
                    ..replace(&["a", "b"], "(.*)", "t", "$1")
                }],
                want: Some(&[("a", "foo"), ("b", "bar"), ("t", "foobar")]),
            },
            Case {
                name: "no match leaves the target alone",
                input: &[("a", "foo"), ("t", "old")],
                rules: vec![replace(&["a"], "bar(.*)", "t", "$1")],
                want: Some(&[("a", "foo"), ("t", "old")]),
            },
            Case {
                name: "a missing group expands to nothing, which deletes the target",
                input: &[("a", "foo"), ("t", "old")],
                rules: vec![replace(&["a"], "(f)(o+)", "t", "$5")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "an unmatched optional group is empty too",
                input: &[("a", "foo"), ("t", "old")],
                rules: vec![replace(&["a"], "(f)(x)?.*", "t", "$2")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "$1x is the group named 1x",
                input: &[("a", "foo")],
                rules: vec![replace(&["a"], "(f)oo", "t", "$1x")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "${1}x is group 1 then x",
                input: &[("a", "foo")],
                rules: vec![replace(&["a"], "(f)oo", "t", "${1}x")],
                want: Some(&[("a", "foo"), ("t", "fx")]),
            },
            Case {
                name: "no source labels: the default regex matches the empty value",
                input: &[("a", "foo")],
                rules: vec![replace(&[], "(.*)", "t", "static")],
                want: Some(&[("a", "foo"), ("t", "static")]),
            },
            Case {
                name: "an overwritten label keeps its name",
                input: &[("a", "foo")],
                rules: vec![replace(&["a"], "f(.*)", "a", "b$1")],
                want: Some(&[("a", "boo")]),
            },
            Case {
                name: "an invalid expanded target is skipped (legacy names)",
                input: &[("a", "1abc"), ("b", "x.y")],
                rules: vec![
                    replace(&["a"], "(.*)", "$1", "v"),
                    replace(&["b"], "(.*)", "$1", "v"),
                    replace(&["a"], "(.*)", "_${1}", "v"),
                ],
                want: Some(&[("_1abc", "v"), ("a", "1abc"), ("b", "x.y")]),
            },
            Case {
                name: "UTF-8 names accept what legacy names refuse",
                input: &[("a", "1abc"), ("b", "x.y")],
                rules: vec![
                    utf8(replace(&["a"], "(.*)", "$1", "v")),
                    utf8(replace(&["b"], "(.*)", "$1", "w")),
                ],
                want: Some(&[("1abc", "v"), ("a", "1abc"), ("b", "x.y"), ("x.y", "w")]),
            },
            Case {
                name: "an empty expanded target is skipped under both schemes",
                input: &[("a", "foo")],
                rules: vec![utf8(replace(&["a"], "(x)?foo", "$1", "v"))],
                want: Some(&[("a", "foo")]),
            },
        ]);
    }

    #[test]
    fn templates_expand_like_go() {
        // Regex `(?P<first>f)(o+)(x)?` on `foo`; None: empty (the target is not set).
        let cases: &[(&str, Option<&str>)] = &[
            ("$1", Some("f")),
            ("${1}", Some("f")),
            ("$1x", None),
            ("${1}x", Some("fx")),
            ("$2", Some("oo")),
            ("$3", None),
            ("$9", None),
            ("$0", Some("foo")),
            ("${0}", Some("foo")),
            ("$00", None),
            ("$01", None),
            ("$999999999", None),
            ("$12345678901", None),
            ("$first", Some("f")),
            ("${first}", Some("f")),
            ("$first_", None),
            ("$_", None),
            ("$$1", Some("$1")),
            ("$$$1", Some("$f")),
            ("x$$", Some("x$")),
            ("$", Some("$")),
            ("a$", Some("a$")),
            ("${1", Some("${1")),
            ("${}", Some("${}")),
            ("${ 1}", Some("${ 1}")),
            ("$-1", Some("$-1")),
            // Unicode letters and decimal digits continue a name; `²` is neither.
            ("$1é", None),
            ("$١", None),
            ("$1²", Some("f²")),
            ("$1.$2", Some("f.oo")),
            ("${first}-${2}", Some("f-oo")),
            ("${1}${2}${3}", Some("foo")),
        ];
        for (template, want) in cases {
            let rules = [replace(&["a"], "(?P<first>f)(o+)(x)?", "out", template)];
            let got = run(&rules, &[("a", "foo")]).unwrap();
            assert_eq!(
                got.get("out").map(String::as_str),
                *want,
                "template {template:?}"
            );
        }
    }

    #[test]
    fn hashmod_values() {
        // md5(value)[8..16] as a big-endian u64, modulo; computed independently with hashlib.
        let cases: &[(Pairs, &[&str], &str, u64, &str)] = &[
            (&[("c", "baz")], &["c"], ";", 1000, "976"),
            (&[("c", "foo\nbar")], &["c"], ";", 1000, "734"),
            (&[], &["c"], ";", 1000, "958"),
            (&[], &["c", "d"], ";", 1000, "393"),
            (&[("a", "a"), ("b", "b")], &["a", "b"], ";", 1000, "74"),
            (&[("a", "a"), ("b", "b")], &["a", "b"], ";", 10, "4"),
            (&[("a", "a"), ("b", "b")], &["a", "b"], "", 1000, "920"),
            (
                &[("u", "uid"), ("n", "container")],
                &["u", "n"],
                "/",
                1000,
                "826",
            ),
            (&[("c", "baz")], &["c"], ";", 1, "0"),
            (&[], &[], ";", u64::MAX, "16825458760271544958"),
        ];
        for (input, sources, separator, modulus, want) in cases {
            let got = run(&[hashmod(sources, separator, *modulus)], input).unwrap();
            assert_eq!(
                got.get("h").map(String::as_str),
                Some(*want),
                "{sources:?} {separator:?} % {modulus}"
            );
        }
        let unchanged = run(&[hashmod(&["c"], ";", 0)], &[("c", "baz")]).unwrap();
        assert_eq!(
            unchanged,
            map(&[("c", "baz")]),
            "a zero modulus does nothing"
        );
    }

    #[test]
    fn labelmap_edge_cases() {
        let ab: Pairs = &[("__meta_a_x", "1"), ("__meta_b_x", "2")];
        let both = || labelmap("__meta_[ab]_(.*)", "$1");
        check(vec![
            Case {
                name: "two labels map to one name: the later in name order wins",
                input: ab,
                rules: vec![both()],
                want: Some(&[("__meta_a_x", "1"), ("__meta_b_x", "2"), ("x", "2")]),
            },
            Case {
                name: "a label written by an earlier rule is visited after the untouched ones",
                input: ab,
                rules: vec![replace(&["__meta_b_x"], "(.*)", "__meta_a_x", "3"), both()],
                want: Some(&[("__meta_a_x", "3"), ("__meta_b_x", "2"), ("x", "3")]),
            },
            Case {
                name: "deleting forgets the write; writing again visits it last",
                input: ab,
                rules: vec![
                    replace(&["missing"], "(.*)", "__meta_b_x", "$1"),
                    replace(&[], "(.*)", "__meta_b_x", "7"),
                    replace(&["__meta_b_x"], "(.*)", "__meta_a_x", "3"),
                    both(),
                ],
                want: Some(&[("__meta_a_x", "3"), ("__meta_b_x", "7"), ("x", "3")]),
            },
            Case {
                name: "mapped labels are not mapped again in the same rule",
                input: &[("a", "1")],
                rules: vec![labelmap("(.*)", "x$1")],
                want: Some(&[("a", "1"), ("xa", "1")]),
            },
            Case {
                name: "the mapped name is not validated",
                input: &[("__meta_a-b", "1"), ("__meta_", "2")],
                rules: vec![labelmap("__meta_(.*)", "$1")],
                want: Some(&[
                    ("", "2"),
                    ("__meta_", "2"),
                    ("__meta_a-b", "1"),
                    ("a-b", "1"),
                ]),
            },
            Case {
                name: "an escaped anchor replaces every match, as Go's ReplaceAllString",
                input: &[("xy", "1")],
                rules: vec![labelmap("x)|(?:y", "Z")],
                want: Some(&[("ZZ", "1"), ("xy", "1")]),
            },
            Case {
                name: "Go's empty-match rules",
                input: &[("ab", "2"), ("aab", "3"), ("q", "8")],
                rules: vec![labelmap("a*)|(?:b*", "[$0]")],
                want: Some(&[
                    ("[]q[]", "8"),
                    ("[a][b]", "2"),
                    ("[aa][b]", "3"),
                    ("aab", "3"),
                    ("ab", "2"),
                    ("q", "8"),
                ]),
            },
        ]);
    }

    #[test]
    fn empty_values_are_absent_labels() {
        check(vec![
            Case {
                name: "empty input values are removed, even without rules",
                input: &[("a", ""), ("b", "x")],
                rules: vec![],
                want: Some(&[("b", "x")]),
            },
            Case {
                name: "mapping an empty value deletes the mapped label",
                input: &[("__meta_x", ""), ("x", "keep")],
                rules: vec![labelmap("__meta_(.+)", "$1")],
                want: Some(&[("x", "keep")]),
            },
            Case {
                name: "lower-casing a missing label deletes the target",
                input: &[("t", "old")],
                rules: vec![equal(Action::Lowercase, &["missing"], "t")],
                want: Some(&[]),
            },
            Case {
                name: "an empty replacement deletes the target",
                input: &[("a", "foo"), ("t", "old")],
                rules: vec![replace(&["a"], "(.*)", "t", "")],
                want: Some(&[("a", "foo")]),
            },
            Case {
                name: "labelkeep may empty the set, which is not a drop",
                input: &[("a", "foo")],
                rules: vec![with_regex(Action::LabelKeep, "b")],
                want: Some(&[]),
            },
        ]);
    }

    #[test]
    fn case_mapping_is_go_simple_mapping() {
        let cases = [
            ("straße", "STRAßE", "straße"),
            ("ΣΑΣ", "ΣΑΣ", "σασ"),
            ("İstanbul", "İSTANBUL", "istanbul"),
            ("ǅ", "Ǆ", "ǆ"),
            ("ᾳ ᾀ ﬀ", "ᾼ ᾈ ﬀ", "ᾳ ᾀ ﬀ"),
        ];
        for (value, upper, lower) in cases {
            let rules = [
                equal(Action::Uppercase, &["v"], "u"),
                equal(Action::Lowercase, &["v"], "l"),
            ];
            let got = run(&rules, &[("v", value)]).unwrap();
            assert_eq!(got["u"], upper, "upper of {value:?}");
            assert_eq!(got["l"], lower, "lower of {value:?}");
        }
    }

    #[test]
    fn kubernetes_examples_from_the_docs() {
        let pod: Pairs = &[
            ("__meta_kubernetes_namespace", "web"),
            ("__meta_kubernetes_pod_container_name", "nginx"),
            ("__meta_kubernetes_pod_label_app", "frontend"),
            ("__meta_kubernetes_pod_label_tier", "edge"),
            ("__meta_kubernetes_pod_uid", "8f6d2c1e-0b1a"),
        ];
        let rules = vec![
            on(
                Action::Keep,
                &["__meta_kubernetes_pod_label_app"],
                "frontend|api",
            ),
            labelmap("__meta_kubernetes_pod_label_(.+)", "$1"),
            replace(&["__meta_kubernetes_namespace"], "(.*)", "namespace", "$1"),
            Rule {
                separator: "/".into(),
                ..replace(
                    &[
                        "__meta_kubernetes_pod_uid",
                        "__meta_kubernetes_pod_container_name",
                    ],
                    "(.*)",
                    "__path__",
                    "/var/log/pods/*$1/*.log",
                )
            },
        ];
        let got = run(&rules, pod).unwrap();
        let mut want = map(pod);
        want.extend(map(&[
            ("app", "frontend"),
            ("tier", "edge"),
            ("namespace", "web"),
            ("__path__", "/var/log/pods/*8f6d2c1e-0b1a/nginx/*.log"),
        ]));
        assert_eq!(got, want);

        let other_app = [("__meta_kubernetes_pod_label_app", "batch")];
        assert_eq!(run(&rules, &other_app), None, "kept only for listed apps");
        assert_eq!(run(&rules, &[]), None, "no app label: dropped");
    }

    #[test]
    fn settings_convert_yaml_rules() {
        let yaml = r#"
- source_labels: [__meta_kubernetes_pod_label_app]
  regex: front.*
  action: KEEP
- action: labelmap
  regex: __meta_kubernetes_pod_label_(.+)
- source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name]
  separator: /
  target_label: __path__
  replacement: /var/log/pods/*$1/*.log
- source_labels: [__path__]
  target_label: shard
  modulus: 4
  action: hashmod
- source_labels: [note]
  regex: a.b
  action: drop
"#;
        let configs: Vec<crate::config::RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        let rules = crate::settings::relabel_rules(&configs);
        assert_eq!(rules.len(), 5);
        assert_eq!(rules[0].action, Action::Keep);
        assert_eq!(rules[2].separator, "/");
        assert!(rules[1].source_labels.is_empty());
        let pod = [
            ("__meta_kubernetes_pod_label_app", "frontend"),
            ("__meta_kubernetes_pod_uid", "u1"),
            ("__meta_kubernetes_pod_container_name", "c"),
            // The drop rule's `.` does not match a newline: the target is kept.
            ("note", "a\nb"),
        ];
        let got = run(&rules, &pod).unwrap();
        assert_eq!(got["app"], "frontend");
        assert_eq!(got["__path__"], "/var/log/pods/*u1/c/*.log");
        let shard: u64 = got["shard"].parse().unwrap();
        assert!(shard < 4);
        assert_eq!(
            run(&rules, &[("__meta_kubernetes_pod_label_app", "api")]),
            None
        );
    }
}
