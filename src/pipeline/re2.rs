//! Go (RE2) regular expressions on the `regex` crate: every stage that takes a pattern from a
//! Promtail config (`regex`, `replace`, `multiline`, `drop`, `match`, template functions)
//! compiles it here, once, at load.
//!
//! The two syntaxes are nearly the same; what differs and is rewritten here:
//! - Go's Perl classes `\d \w \s` (and their negations) and `\b \B` are ASCII-only, the crate's
//!   are Unicode: `\d` becomes `[0-9]`, `\w` `[0-9A-Za-z_]`, `\s` Go's `[\t\n\f\r ]` (no `\v`),
//!   `\b` `(?-u:\b)`; inside a bracket class the same sets are spliced in (nested classes);
//! - `\Q...\E` (literal text) becomes the escaped text;
//! - escaped ASCII punctuation that is not a meta character of the crate (`\<`, `\>`, `\/`,
//!   `\"`, `\ `, ...) is the literal character, as in Go (the crate reads `\<`/`\>` as word
//!   boundaries);
//! - Go's octal escapes `\0`, `\012`, `\123` become `\x{..}`;
//! - a `{` or `}` that does not form a repetition `{n}`, `{n,}`, `{n,m}` is a literal in Go and is
//!   escaped for the crate (which refuses it).
//!
//! Everything else is passed through; what the crate refuses is an error naming the pattern.

use regex::Regex;

/// Compiles a Go pattern for `&str` haystacks.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern)).map_err(|e| describe(pattern, &e))
}

/// Compiles a Go pattern for byte haystacks (lines that may not be UTF-8).
pub fn compile_bytes(pattern: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(&translate(pattern)).map_err(|e| describe(pattern, &e))
}

fn describe(pattern: &str, e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => format!("error parsing regexp `{pattern}`: {s}"),
        other => format!("error parsing regexp `{pattern}`: {other}"),
    }
}

/// ASCII sets of Go's Perl classes, as class contents (without brackets).
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    Some(match c {
        'd' => ("0-9", false),
        'D' => ("0-9", true),
        'w' => ("0-9A-Za-z_", false),
        'W' => ("0-9A-Za-z_", true),
        's' => ("\\t\\n\\f\\r ", false),
        'S' => ("\\t\\n\\f\\r ", true),
        _ => return None,
    })
}

/// The characters the crate treats as meta characters (they stay escaped).
fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// A Go octal escape after the backslash (`0`, `0N`, `0NN`, `[1-7]N`, `[1-7]NN`): its code and
/// how many characters it used. A lone `\1`..`\7` is a back-reference, not an octal escape.
fn octal_escape(rest: &[char]) -> Option<(u32, usize)> {
    let first = *rest.first()?;
    let is_oct = |c: &char| ('0'..='7').contains(c);
    match first {
        '0' => {}
        '1'..='7' if rest.get(1).is_some_and(is_oct) => {}
        _ => return None,
    }
    let used = rest.iter().take(3).take_while(|c| is_oct(c)).count();
    let code = rest[..used]
        .iter()
        .fold(0u32, |acc, c| acc * 8 + c.to_digit(8).unwrap_or(0));
    Some((code, used))
}

/// Length of a valid Go repetition `{n}`, `{n,}` or `{n,m}` at the start of `s`, or 0.
fn repeat_len(s: &[char]) -> usize {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return 0;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    if s.get(i) == Some(&'}') { i + 1 } else { 0 }
}

/// Rewrites a Go pattern into the `regex` crate's syntax (see the module doc).
pub fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Depth of bracket classes (the crate nests them; Go does not, but what we splice in does).
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            if n == 'Q' {
                // Literal text up to `\E` or the end.
                let mut j = i + 2;
                while j < chars.len() && !(chars[j] == '\\' && chars.get(j + 1) == Some(&'E')) {
                    let mut buf = [0u8; 4];
                    let lit = chars[j].encode_utf8(&mut buf);
                    if in_class {
                        // Inside a class only these are special.
                        if matches!(chars[j], '\\' | ']' | '[' | '^' | '-' | '&' | '~') {
                            out.push('\\');
                        }
                        out.push(chars[j]);
                    } else {
                        out.push_str(&regex::escape(lit));
                    }
                    j += 1;
                }
                i = if j < chars.len() { j + 2 } else { j };
                continue;
            }
            if let Some((set, negated)) = perl_class(n) {
                match (in_class, negated) {
                    (false, false) => {
                        out.push('[');
                        out.push_str(set);
                        out.push(']');
                    }
                    (false, true) | (true, true) => {
                        out.push_str("[^");
                        out.push_str(set);
                        out.push(']');
                    }
                    (true, false) => out.push_str(set),
                }
                i += 2;
                continue;
            }
            if let Some((code, used)) = octal_escape(&chars[i + 1..]) {
                // Go's octal escapes (`\0`, `\012`, `\123`); the crate has none by default.
                out.push_str(&format!("\\x{{{code:x}}}"));
                i += 1 + used;
                continue;
            }
            if n.is_ascii() && !n.is_ascii_alphanumeric() && !regex_syntax_meta(n) {
                // Go reads any escaped ASCII punctuation as the literal; the crate gives some of
                // them a meaning (`\<`, `\>` are word boundaries there) or refuses them.
                out.push(n);
                i += 2;
                continue;
            }
            if !in_class && (n == 'b' || n == 'B') {
                out.push_str("(?-u:\\");
                out.push(n);
                out.push(')');
                i += 2;
                continue;
            }
            if matches!(n, 'x' | 'p' | 'P') && chars.get(i + 2) == Some(&'{') {
                // `\x{200B}`, `\p{Greek}`: the braces belong to the escape, copy it whole.
                if let Some(close) = chars[i + 2..].iter().position(|&ch| ch == '}') {
                    let end = i + 2 + close + 1;
                    out.extend(&chars[i..end]);
                    i = end;
                    continue;
                }
            }
            out.push(c);
            out.push(n);
            i += 2;
            continue;
        }
        if in_class {
            if c == '[' && chars.get(i + 1) == Some(&':') {
                // A POSIX class `[:alpha:]`: copy through its closing `:]`.
                let mut j = i + 2;
                while j + 1 < chars.len() && !(chars[j] == ':' && chars[j + 1] == ']') {
                    j += 1;
                }
                let end = (j + 2).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            if c == '[' {
                // A literal `[` in a Go class; the crate would read a nested class.
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '{' || c == '}' {
            // Go reads a brace that does not make a valid `{n}`, `{n,}`, `{n,m}` as a literal;
            // the crate refuses it.
            let len = if c == '{' { repeat_len(&chars[i..]) } else { 0 };
            if len > 0 {
                out.extend(&chars[i..i + len]);
                i += len;
            } else {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push('[');
            i += 1;
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            // A `]` first in the class is a literal.
            if chars.get(i) == Some(&']') {
                out.push_str("\\]");
                i += 1;
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_like_go() {
        let re = compile(r"^\d+$").unwrap();
        assert!(re.is_match("123"));
        assert!(!re.is_match("١٢٣"), "Arabic-Indic digits are not \\d in Go");
        let re = compile(r"^\w+$").unwrap();
        assert!(!re.is_match("é"));
        let re = compile(r"^[\w-]+$").unwrap();
        assert!(re.is_match("a-b_c"));
        assert!(!re.is_match("a b"));
        let re = compile(r"^[^\s]+$").unwrap();
        assert!(re.is_match("ab"));
        assert!(!re.is_match("a b"));
        let re = compile(r"^\s$").unwrap();
        assert!(!re.is_match("\u{b}"), "Go's \\s has no vertical tab");
        let re = compile(r"^[\S]+$").unwrap();
        assert!(re.is_match("ab"));
        assert!(!re.is_match("a b"));
        let re = compile(r"\bé").unwrap();
        assert!(
            re.is_match("xé"),
            "x then é is an ASCII word boundary in Go"
        );
    }

    #[test]
    fn quoted_literals_and_brackets() {
        let re = compile(r"\Qa.b[c]\E+").unwrap();
        assert!(re.is_match("a.b[c]]"));
        assert!(!re.is_match("axb[c]"));
        let re = compile(r"[]a]").unwrap();
        assert!(re.is_match("]"));
        let re = compile(r"[[:alpha:]]+").unwrap();
        assert!(re.is_match("abc"));
        let re = compile(r"[a[]").unwrap();
        assert!(re.is_match("["));
        let re = compile(r"(?P<level>\w+)|(?<x>y)").unwrap();
        assert_eq!(
            re.capture_names().flatten().collect::<Vec<_>>(),
            ["level", "x"]
        );
    }

    #[test]
    fn go_escapes_and_literal_braces() {
        // `\<` and `\>` are literals in Go, word boundaries in the crate.
        let re = compile(r"\<(?P<tag>\w+)\>").unwrap();
        assert_eq!(&re.captures("x <b> y").unwrap()["tag"], "b");
        let re = compile(r#"^\/\"\'\:\@\%\,\=\!\_\ $"#).unwrap();
        assert!(re.is_match("/\"':@%,=!_ "));
        // Octal escapes.
        let re = compile(r"^\0\101\12$").unwrap();
        assert!(re.is_match("\0A\n"));
        assert!(
            compile(r"(a)\1").is_err(),
            "back-references are refused, as in Go"
        );
        // Braces that are not a repetition are literals.
        let re = compile(r"^(?P<j>{.*})$").unwrap();
        assert!(re.is_match(r#"{"a":1}"#));
        let re = compile(r"^a{2}b{1,}c{1,2}x{y}z{,3}$").unwrap();
        assert!(re.is_match("aabccx{y}z{,3}"));
        let re = compile(r"^[{}]+$").unwrap();
        assert!(re.is_match("{}"));
        // Escaped meta characters stay escaped.
        let re = compile(r"^\.\{\}\-\#$").unwrap();
        assert!(re.is_match(".{}-#"));
        // Braces of `\x{..}` and `\p{..}` belong to the escape.
        let re = compile(r"^\x{200B}\[\p{Greek}+\P{L}$").unwrap();
        assert!(re.is_match("\u{200B}[αβ1"));
    }

    #[test]
    fn bad_patterns_name_the_pattern() {
        let e = compile("(unclosed").unwrap_err();
        assert!(e.contains("`(unclosed`"), "{e}");
        assert!(compile_bytes(r"\d").unwrap().is_match(b"\xff7"));
    }
}
