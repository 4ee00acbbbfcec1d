//! The functions a Promtail template can call: Promtail's own (`ToLower`, `Hash`, ...) and the
//! sprig v3 functions that configs use (spec §7.3), with Go's argument rules.
//!
//! Arguments typed `string` in Go accept only strings here too: a number, a boolean or a
//! missing value (`<no value>`) is an execution error, which leaves the entry unchanged, as in
//! Promtail. Sprig's `interface{}` arguments convert the way sprig does (`strval`, `cast`).
//! Sprig functions not in [`func_map`] are refused at start by name (see [`ALL_SPRIG`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine as _;
use gotmpl::{FuncMap, TemplateError, Value};
use regex::Regex;
use sha2::Digest as _;

use crate::pipeline::re2;

type R = gotmpl::Result<Value>;

/// A function body, given its own name for error messages.
type Body = Box<dyn Fn(&'static str, &[Value]) -> R + Send + Sync>;

/// Go's builtin template functions (implemented by the `gotmpl` crate).
const BUILTINS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice", "print",
    "println", "printf", "html", "js", "urlquery", "call",
];

/// Every function of sprig v3's text function map that Promtail exposes (spec §7.3). Those not
/// in [`func_map`] are refused at start as "not supported by ferrotail yet".
pub const ALL_SPRIG: &[&str] = &[
    "hello",
    "ago",
    "date",
    "date_in_zone",
    "date_modify",
    "dateInZone",
    "dateModify",
    "duration",
    "durationRound",
    "htmlDate",
    "htmlDateInZone",
    "must_date_modify",
    "mustDateModify",
    "mustToDate",
    "now",
    "toDate",
    "unixEpoch",
    "abbrev",
    "abbrevboth",
    "trunc",
    "trim",
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "trimall",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "nospace",
    "initials",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "swapcase",
    "shuffle",
    "snakecase",
    "camelcase",
    "kebabcase",
    "wrap",
    "wrapWith",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "toString",
    "atoi",
    "int64",
    "int",
    "float64",
    "seq",
    "toDecimal",
    "split",
    "splitList",
    "splitn",
    "toStrings",
    "until",
    "untilStep",
    "add1",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "randInt",
    "add1f",
    "addf",
    "subf",
    "divf",
    "mulf",
    "biggest",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "join",
    "sortAlpha",
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "compact",
    "mustCompact",
    "fromJson",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "mustFromJson",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "ternary",
    "deepCopy",
    "mustDeepCopy",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    "env",
    "expandenv",
    "getHostByName",
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "tuple",
    "list",
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "values",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "mustPrepend",
    "first",
    "mustFirst",
    "rest",
    "mustRest",
    "last",
    "mustLast",
    "initial",
    "mustInitial",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "slice",
    "mustSlice",
    "concat",
    "dig",
    "chunk",
    "mustChunk",
    "bcrypt",
    "htpasswd",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "randBytes",
    "uuidv4",
    "semver",
    "semverCompare",
    "fail",
    "regexMatch",
    "mustRegexMatch",
    "regexFindAll",
    "mustRegexFindAll",
    "regexFind",
    "mustRegexFind",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    "urlParse",
    "urlJoin",
];

static DEFINED: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let mut s: BTreeSet<String> = func_map().into_keys().collect();
    s.extend(BUILTINS.iter().map(|b| b.to_string()));
    s
});

/// Whether a template may call `name`.
pub fn is_defined(name: &str) -> bool {
    DEFINED.contains(name)
}

/// Whether `name` is a sprig function that ferrotail does not implement.
pub fn is_sprig_not_implemented(name: &str) -> bool {
    ALL_SPRIG.contains(&name) && !is_defined(name)
}

/// The longest text a template may build: the result of a function that multiplies text by a
/// count (`repeat`, `indent`, `nindent`) and a whole render ([`super::GoTemplate::render`]).
/// Far above any log line (Loki refuses lines over 256 KiB by default), low enough that a count
/// written in a template cannot exhaust memory, on every line. Go has no such limit: it
/// allocates whatever is asked, and only an overflowing length is an error.
pub(crate) const MAX_TEXT_BYTES: usize = 16 << 20;

/// The length of `count` copies of `unit` bytes plus `extra`, if it is within
/// [`MAX_TEXT_BYTES`].
fn text_len(name: &str, unit: usize, count: usize, extra: usize) -> gotmpl::Result<usize> {
    unit.checked_mul(count)
        .and_then(|n| n.checked_add(extra))
        .filter(|&n| n <= MAX_TEXT_BYTES)
        .ok_or_else(|| {
            fail(
                name,
                format_args!("result longer than {MAX_TEXT_BYTES} bytes"),
            )
        })
}

fn fail(name: &str, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("error calling {name}: {msg}"))
}

fn arity(name: &str, args: &[Value], n: usize) -> gotmpl::Result<()> {
    if args.len() != n {
        return Err(TemplateError::ArgCount {
            name: name.to_string(),
            expected: n,
            got: args.len(),
        });
    }
    Ok(())
}

fn min_arity(name: &str, args: &[Value], n: usize) -> gotmpl::Result<()> {
    if args.len() < n {
        return Err(TemplateError::ArgCount {
            name: name.to_string(),
            expected: n,
            got: args.len(),
        });
    }
    Ok(())
}

/// A Go `string` parameter.
fn s<'a>(name: &str, v: &'a Value) -> gotmpl::Result<&'a str> {
    match v {
        Value::String(s) => Ok(s),
        Value::Nil => Err(fail(name, "invalid value; expected string")),
        other => Err(fail(
            name,
            format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            ),
        )),
    }
}

/// A Go `int` parameter.
fn int(name: &str, v: &Value) -> gotmpl::Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => i64::try_from(*u).map_err(|_| fail(name, "integer overflow")),
        Value::Nil => Err(fail(name, "invalid value; expected int")),
        other => Err(fail(
            name,
            format!(
                "wrong type for value; expected int; got {}",
                other.type_name()
            ),
        )),
    }
}

/// A Go `bool` parameter.
fn boolean(name: &str, v: &Value) -> gotmpl::Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(fail(
            name,
            format!(
                "wrong type for value; expected bool; got {}",
                other.type_name()
            ),
        )),
    }
}

/// Sprig's `strval`: strings as they are, anything else as Go's `%v`.
fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// `cast.ToInt64` (what sprig's math uses): numbers truncate, strings parse (0 when they do
/// not), booleans are 1/0, anything else 0.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

/// `cast.ToFloat64`.
fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// `strconv.ParseInt(s, 0, 64)`: an optional sign, then decimal, `0x`, `0o`, `0b` or a leading
/// `0` for octal, `_` allowed between digits only with a prefix.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let digits = if prefixed {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Sprig's `empty`: nil, zero numbers, `false`, and empty strings, lists and maps.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    }
}

fn string(s: impl Into<Arc<str>>) -> Value {
    Value::String(s.into())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Go's `strconv.Quote` (what `%q` and sprig's `quote` print).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// sprig's `indent`: `width` spaces before every line of `v` (a negative width is none).
fn indent(name: &str, width: i64, v: &str) -> gotmpl::Result<String> {
    let width = usize::try_from(width).unwrap_or(0);
    let lines = v.bytes().filter(|&b| b == b'\n').count() + 1;
    text_len(name, width, lines, v.len() + 1)?;
    let pad = " ".repeat(width);
    Ok(format!("{pad}{}", v.replace('\n', &format!("\n{pad}"))))
}

/// Go's `regexp.QuoteMeta`: escapes exactly `\.+*?()|[]{}^$`.
pub(crate) fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `strings.Title`: the first letter of every word upper-cased.
fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

/// Go's `path.Clean`.
fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn go_path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `path.Dir`.
fn go_path_dir(p: &str) -> String {
    let cut = p.rfind('/').map_or(0, |i| i + 1);
    go_path_clean(&p[..cut])
}

/// Go's `path.Ext`.
fn go_path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        match c {
            '/' => break,
            '.' => return p[i..].to_string(),
            _ => {}
        }
    }
    String::new()
}

/// Byte-slices `s` like Go's `s[a:b]`, keeping the text valid UTF-8.
fn byte_slice(s: &str, a: usize, b: usize) -> String {
    String::from_utf8_lossy(&s.as_bytes()[a..b]).into_owned()
}

/// Regexes given to the regex functions, compiled once per distinct pattern. Go compiles them on
/// every call; the cache is bounded so a template fed patterns from log lines cannot grow it.
#[derive(Default)]
struct RegexCache(Mutex<HashMap<String, Arc<Regex>>>);

impl RegexCache {
    const MAX: usize = 64;

    fn get(&self, name: &str, pattern: &str) -> gotmpl::Result<Arc<Regex>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(re) = map.get(pattern) {
            return Ok(re.clone());
        }
        let re = Arc::new(re2::compile(pattern).map_err(|e| fail(name, e))?);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(pattern.to_string(), re.clone());
        Ok(re)
    }
}

/// A list of strings.
fn regex_list(items: impl Iterator<Item = String>) -> Value {
    Value::List(items.map(string).collect::<Vec<_>>().into())
}

/// Sprig's `strslice`: a list's items as strings (nil items skipped), anything else as one.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l
            .iter()
            .filter(|i| !matches!(i, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn split_map(parts: impl Iterator<Item = String>) -> Value {
    let mut m = BTreeMap::new();
    for (i, p) in parts.enumerate() {
        m.insert(Arc::from(format!("_{i}")), string(p));
    }
    Value::Map(Arc::new(m))
}

/// Go's `strings.Replace(s, old, new, n)`: `n < 0` replaces every occurrence.
fn go_replace(s: &str, old: &str, new: &str, n: i64) -> String {
    match usize::try_from(n) {
        Ok(n) => s.replacen(old, new, n),
        Err(_) => s.replace(old, new),
    }
}

/// Builds the function map given to every template.
pub fn func_map() -> FuncMap {
    let mut m = FuncMap::new();
    let mut add = |name: &'static str, f: Body| {
        m.insert(
            name.to_string(),
            Arc::new(move |args: &[Value]| f(name, args)),
        );
    };
    macro_rules! f {
        ($name:literal, |$n:ident, $a:ident| $body:expr) => {
            add(
                $name,
                Box::new(|$n: &'static str, $a: &[Value]| -> R { $body }),
            )
        };
    }

    // Promtail's own functions (they win over sprig's of the same name).
    f!("ToLower", |n, a| {
        arity(n, a, 1)?;
        Ok(string(s(n, &a[0])?.to_lowercase()))
    });
    f!("ToUpper", |n, a| {
        arity(n, a, 1)?;
        Ok(string(s(n, &a[0])?.to_uppercase()))
    });
    f!("TrimSpace", |n, a| {
        arity(n, a, 1)?;
        Ok(string(s(n, &a[0])?.trim()))
    });
    f!("Replace", |n, a| {
        arity(n, a, 4)?;
        Ok(string(go_replace(
            s(n, &a[0])?,
            s(n, &a[1])?,
            s(n, &a[2])?,
            int(n, &a[3])?,
        )))
    });
    f!("Trim", |n, a| {
        arity(n, a, 2)?;
        let cut = s(n, &a[1])?;
        Ok(string(s(n, &a[0])?.trim_matches(|c| cut.contains(c))))
    });
    f!("TrimLeft", |n, a| {
        arity(n, a, 2)?;
        let cut = s(n, &a[1])?;
        Ok(string(s(n, &a[0])?.trim_start_matches(|c| cut.contains(c))))
    });
    f!("TrimRight", |n, a| {
        arity(n, a, 2)?;
        let cut = s(n, &a[1])?;
        Ok(string(s(n, &a[0])?.trim_end_matches(|c| cut.contains(c))))
    });
    f!("TrimPrefix", |n, a| {
        arity(n, a, 2)?;
        let v = s(n, &a[0])?;
        Ok(string(v.strip_prefix(s(n, &a[1])?).unwrap_or(v)))
    });
    f!("TrimSuffix", |n, a| {
        arity(n, a, 2)?;
        let v = s(n, &a[0])?;
        Ok(string(v.strip_suffix(s(n, &a[1])?).unwrap_or(v)))
    });
    f!("Hash", |n, a| {
        arity(n, a, 2)?;
        let mut h = sha3::Sha3_256::new();
        h.update(s(n, &a[0])?.as_bytes());
        h.update(s(n, &a[1])?.as_bytes());
        Ok(string(hex(&h.finalize())))
    });
    f!("Sha2Hash", |n, a| {
        arity(n, a, 2)?;
        let mut h = sha2::Sha256::new();
        h.update(s(n, &a[0])?.as_bytes());
        h.update(s(n, &a[1])?.as_bytes());
        Ok(string(hex(&h.finalize())))
    });

    // Regular expressions (Go's RE2 syntax; a bad pattern fails the render).
    let cache = Arc::new(RegexCache::default());
    let c = cache.clone();
    add(
        "regexReplaceAll",
        Box::new(move |n, a| {
            arity(n, a, 3)?;
            let re = c.get(n, s(n, &a[0])?)?;
            // Go's `Expand` syntax (`$1`, `${name}`, `$$`) is the crate's too.
            Ok(string(re.replace_all(s(n, &a[1])?, s(n, &a[2])?).as_ref()))
        }),
    );
    let c = cache.clone();
    add(
        "regexReplaceAllLiteral",
        Box::new(move |n, a| {
            arity(n, a, 3)?;
            let re = c.get(n, s(n, &a[0])?)?;
            let repl = s(n, &a[2])?;
            Ok(string(
                re.replace_all(s(n, &a[1])?, regex::NoExpand(repl)).as_ref(),
            ))
        }),
    );
    let c = cache.clone();
    add(
        "regexMatch",
        Box::new(move |n, a| {
            arity(n, a, 2)?;
            Ok(Value::Bool(c.get(n, s(n, &a[0])?)?.is_match(s(n, &a[1])?)))
        }),
    );
    let c = cache.clone();
    add(
        "regexFind",
        Box::new(move |n, a| {
            arity(n, a, 2)?;
            let re = c.get(n, s(n, &a[0])?)?;
            Ok(string(re.find(s(n, &a[1])?).map_or("", |m| m.as_str())))
        }),
    );
    let c = cache.clone();
    add(
        "regexFindAll",
        Box::new(move |n, a| {
            arity(n, a, 3)?;
            let re = c.get(n, s(n, &a[0])?)?;
            let limit = usize::try_from(int(n, &a[2])?).unwrap_or(usize::MAX);
            Ok(regex_list(
                re.find_iter(s(n, &a[1])?)
                    .take(limit)
                    .map(|m| m.as_str().to_string()),
            ))
        }),
    );
    let c = cache;
    add(
        "regexSplit",
        Box::new(move |n, a| {
            arity(n, a, 3)?;
            let re = c.get(n, s(n, &a[0])?)?;
            let text = s(n, &a[1])?;
            Ok(match int(n, &a[2])? {
                0 => regex_list(std::iter::empty()),
                k if k < 0 => regex_list(re.split(text).map(str::to_string)),
                k => regex_list(re.splitn(text, k as usize).map(str::to_string)),
            })
        }),
    );
    f!("regexQuoteMeta", |n, a| {
        arity(n, a, 1)?;
        Ok(string(quote_meta(s(n, &a[0])?)))
    });

    // Strings.
    f!("upper", |n, a| {
        arity(n, a, 1)?;
        Ok(string(s(n, &a[0])?.to_uppercase()))
    });
    f!("lower", |n, a| {
        arity(n, a, 1)?;
        Ok(string(s(n, &a[0])?.to_lowercase()))
    });
    f!("title", |n, a| {
        arity(n, a, 1)?;
        Ok(string(go_title(s(n, &a[0])?)))
    });
    f!("trim", |n, a| {
        arity(n, a, 1)?;
        Ok(string(s(n, &a[0])?.trim()))
    });
    f!("trimAll", |n, a| {
        arity(n, a, 2)?;
        let cut = s(n, &a[0])?;
        Ok(string(s(n, &a[1])?.trim_matches(|c| cut.contains(c))))
    });
    f!("trimPrefix", |n, a| {
        arity(n, a, 2)?;
        let v = s(n, &a[1])?;
        Ok(string(v.strip_prefix(s(n, &a[0])?).unwrap_or(v)))
    });
    f!("trimSuffix", |n, a| {
        arity(n, a, 2)?;
        let v = s(n, &a[1])?;
        Ok(string(v.strip_suffix(s(n, &a[0])?).unwrap_or(v)))
    });
    f!("contains", |n, a| {
        arity(n, a, 2)?;
        Ok(Value::Bool(s(n, &a[1])?.contains(s(n, &a[0])?)))
    });
    f!("hasPrefix", |n, a| {
        arity(n, a, 2)?;
        Ok(Value::Bool(s(n, &a[1])?.starts_with(s(n, &a[0])?)))
    });
    f!("hasSuffix", |n, a| {
        arity(n, a, 2)?;
        Ok(Value::Bool(s(n, &a[1])?.ends_with(s(n, &a[0])?)))
    });
    f!("replace", |n, a| {
        arity(n, a, 3)?;
        Ok(string(s(n, &a[2])?.replace(s(n, &a[0])?, s(n, &a[1])?)))
    });
    f!("repeat", |n, a| {
        arity(n, a, 2)?;
        let count = usize::try_from(int(n, &a[0])?).map_err(|_| fail(n, "negative count"))?;
        let v = s(n, &a[1])?;
        text_len(n, v.len(), count, 0)?;
        Ok(string(v.repeat(count)))
    });
    f!("nospace", |n, a| {
        arity(n, a, 1)?;
        Ok(string(
            s(n, &a[0])?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
        ))
    });
    f!("trunc", |n, a| {
        arity(n, a, 2)?;
        let c = int(n, &a[0])?;
        let v = s(n, &a[1])?;
        let len = v.len() as i64;
        Ok(string(if c >= 0 && len > c {
            byte_slice(v, 0, c as usize)
        } else if c < 0 && len + c > 0 {
            byte_slice(v, (len + c) as usize, v.len())
        } else {
            v.to_string()
        }))
    });
    f!("substr", |n, a| {
        arity(n, a, 3)?;
        let (start, end, v) = (int(n, &a[0])?, int(n, &a[1])?, s(n, &a[2])?);
        let len = v.len() as i64;
        Ok(string(if start < 0 {
            byte_slice(v, 0, end.clamp(0, len) as usize)
        } else if end < 0 || end > len {
            byte_slice(v, start.min(len) as usize, v.len())
        } else {
            byte_slice(v, start.min(end) as usize, end as usize)
        }))
    });
    f!("quote", |_n, a| {
        Ok(string(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| go_quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ))
    });
    f!("squote", |_n, a| {
        Ok(string(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| format!("'{}'", strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ))
    });
    f!("cat", |_n, a| {
        Ok(string(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(strval)
                .collect::<Vec<_>>()
                .join(" "),
        ))
    });
    f!("indent", |n, a| {
        arity(n, a, 2)?;
        Ok(string(indent(n, int(n, &a[0])?, s(n, &a[1])?)?))
    });
    f!("nindent", |n, a| {
        arity(n, a, 2)?;
        Ok(string(format!(
            "\n{}",
            indent(n, int(n, &a[0])?, s(n, &a[1])?)?
        )))
    });
    f!("plural", |n, a| {
        arity(n, a, 3)?;
        let (one, many) = (s(n, &a[0])?, s(n, &a[1])?);
        Ok(string(if int(n, &a[2])? == 1 { one } else { many }))
    });
    f!("toString", |n, a| {
        arity(n, a, 1)?;
        Ok(string(strval(&a[0])))
    });
    f!("split", |n, a| {
        arity(n, a, 2)?;
        let (sep, v) = (s(n, &a[0])?, s(n, &a[1])?);
        Ok(split_map(v.split(sep).map(str::to_string)))
    });
    f!("splitn", |n, a| {
        arity(n, a, 3)?;
        let (sep, k, v) = (s(n, &a[0])?, int(n, &a[1])?, s(n, &a[2])?);
        Ok(match k {
            0 => split_map(std::iter::empty()),
            k if k < 0 => split_map(v.split(sep).map(str::to_string)),
            k => split_map(v.splitn(k as usize, sep).map(str::to_string)),
        })
    });
    f!("splitList", |n, a| {
        arity(n, a, 2)?;
        let (sep, v) = (s(n, &a[0])?, s(n, &a[1])?);
        Ok(regex_list(v.split(sep).map(str::to_string)))
    });
    f!("join", |n, a| {
        arity(n, a, 2)?;
        Ok(string(strslice(&a[1]).join(s(n, &a[0])?)))
    });

    // Numbers (sprig converts any value with `cast`; strings that are not numbers are 0).
    f!("atoi", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Int(s(n, &a[0])?.parse().unwrap_or(0)))
    });
    f!("int", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Int(to_i64(&a[0])))
    });
    f!("int64", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Int(to_i64(&a[0])))
    });
    f!("float64", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Float(to_f64(&a[0])))
    });
    f!("add", |_n, a| {
        Ok(Value::Int(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        ))
    });
    f!("add1", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Int(to_i64(&a[0]).wrapping_add(1)))
    });
    f!("sub", |n, a| {
        arity(n, a, 2)?;
        Ok(Value::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
    });
    f!("mul", |n, a| {
        min_arity(n, a, 1)?;
        Ok(Value::Int(
            a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        ))
    });
    f!("div", |n, a| {
        arity(n, a, 2)?;
        to_i64(&a[0])
            .checked_div(to_i64(&a[1]))
            .map(Value::Int)
            .ok_or_else(|| fail(n, "runtime error: integer divide by zero"))
    });
    f!("mod", |n, a| {
        arity(n, a, 2)?;
        to_i64(&a[0])
            .checked_rem(to_i64(&a[1]))
            .map(Value::Int)
            .ok_or_else(|| fail(n, "runtime error: integer divide by zero"))
    });
    f!("max", |n, a| {
        min_arity(n, a, 1)?;
        Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
    });
    f!("min", |n, a| {
        min_arity(n, a, 1)?;
        Ok(Value::Int(a.iter().map(to_i64).min().unwrap_or(0)))
    });

    // Defaults and flow.
    f!("default", |n, a| {
        min_arity(n, a, 1)?;
        Ok(match a.get(1) {
            Some(given) if !is_empty(given) => given.clone(),
            _ => a[0].clone(),
        })
    });
    f!("empty", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Bool(is_empty(&a[0])))
    });
    f!("coalesce", |_n, a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    f!("ternary", |n, a| {
        arity(n, a, 3)?;
        Ok(if boolean(n, &a[2])? {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });

    // Encodings and hashes.
    f!("b64enc", |n, a| {
        arity(n, a, 1)?;
        Ok(string(
            base64::engine::general_purpose::STANDARD.encode(s(n, &a[0])?),
        ))
    });
    f!("b64dec", |n, a| {
        arity(n, a, 1)?;
        // Sprig returns the decoder's error text as the result, not an error.
        Ok(
            match base64::engine::general_purpose::STANDARD.decode(s(n, &a[0])?) {
                Ok(bytes) => string(String::from_utf8_lossy(&bytes).as_ref()),
                Err(e) => string(b64_error(&e)),
            },
        )
    });
    f!("sha256sum", |n, a| {
        arity(n, a, 1)?;
        Ok(string(hex(&sha2::Sha256::digest(s(n, &a[0])?.as_bytes()))))
    });

    // Lists and dictionaries.
    f!("list", |_n, a| Ok(Value::List(a.to_vec().into())));
    f!("first", |n, a| {
        arity(n, a, 1)?;
        Ok(match &a[0] {
            Value::List(l) => l.first().cloned().unwrap_or(Value::Nil),
            _ => Value::Nil,
        })
    });
    f!("last", |n, a| {
        arity(n, a, 1)?;
        Ok(match &a[0] {
            Value::List(l) => l.last().cloned().unwrap_or(Value::Nil),
            _ => Value::Nil,
        })
    });
    f!("dict", |_n, a| {
        let mut m = BTreeMap::new();
        for pair in a.chunks(2) {
            let v = pair.get(1).cloned().unwrap_or_else(|| string(""));
            m.insert(Arc::from(strval(&pair[0])), v);
        }
        Ok(Value::Map(Arc::new(m)))
    });
    f!("get", |n, a| {
        arity(n, a, 2)?;
        let key = s(n, &a[1])?;
        Ok(match &a[0] {
            Value::Map(m) => m.get(key).cloned().unwrap_or_else(|| string("")),
            _ => string(""),
        })
    });
    f!("hasKey", |n, a| {
        arity(n, a, 2)?;
        let key = s(n, &a[1])?;
        Ok(Value::Bool(
            matches!(&a[0], Value::Map(m) if m.contains_key(key)),
        ))
    });

    // Paths (Go's `path`, forward slashes).
    f!("base", |n, a| {
        arity(n, a, 1)?;
        Ok(string(go_path_base(s(n, &a[0])?)))
    });
    f!("dir", |n, a| {
        arity(n, a, 1)?;
        Ok(string(go_path_dir(s(n, &a[0])?)))
    });
    f!("clean", |n, a| {
        arity(n, a, 1)?;
        Ok(string(go_path_clean(s(n, &a[0])?)))
    });
    f!("ext", |n, a| {
        arity(n, a, 1)?;
        Ok(string(go_path_ext(s(n, &a[0])?)))
    });
    f!("isAbs", |n, a| {
        arity(n, a, 1)?;
        Ok(Value::Bool(s(n, &a[0])?.starts_with('/')))
    });
    m
}

/// Go's `base64.CorruptInputError` text for a decoding failure.
fn b64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        base64::DecodeError::InvalidLength(len) => *len,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sprig_name_is_known_and_ours_are_sprig_or_promtail() {
        for name in func_map().keys() {
            let promtail = [
                "ToLower",
                "ToUpper",
                "TrimSpace",
                "Replace",
                "Trim",
                "TrimLeft",
                "TrimRight",
                "TrimPrefix",
                "TrimSuffix",
                "Hash",
                "Sha2Hash",
            ];
            assert!(
                promtail.contains(&name.as_str()) || ALL_SPRIG.contains(&name.as_str()),
                "{name} is neither Promtail's nor sprig's"
            );
        }
        assert!(is_sprig_not_implemented("dateModify"));
        assert!(!is_sprig_not_implemented("upper"));
        assert!(!is_sprig_not_implemented("nosuch"));
    }

    #[test]
    fn go_helpers() {
        assert_eq!(parse_go_int("0x1F"), Some(31));
        assert_eq!(parse_go_int("-017"), Some(-15));
        assert_eq!(parse_go_int("08"), None);
        assert_eq!(parse_go_int("42"), Some(42));
        assert_eq!(parse_go_int(""), None);
        assert_eq!(go_quote("a\"b\\\n\u{1}é"), r#""a\"b\\\n\x01é""#);
        assert_eq!(quote_meta("a.b*c#-"), r"a\.b\*c#-");
        assert_eq!(go_title("hello wORLD-foo_bar"), "Hello WORLD-Foo_bar");
        assert_eq!(go_path_clean("a//b/./../c/"), "a/c");
        assert_eq!(go_path_clean("/../x"), "/x");
        assert_eq!(go_path_clean("../../x"), "../../x");
        assert_eq!(go_path_base("/var/log/app.log"), "app.log");
        assert_eq!(go_path_base("/var/log/"), "log");
        assert_eq!(go_path_base("///"), "/");
        assert_eq!(go_path_dir("/var/log/app.log"), "/var/log");
        assert_eq!(go_path_dir("app.log"), ".");
        assert_eq!(go_path_ext("/a.b/c.tar.gz"), ".gz");
        assert_eq!(go_path_ext("/a.b/c"), "");
    }
}
