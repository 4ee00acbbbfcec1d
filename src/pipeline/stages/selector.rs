//! The LogQL stream selector of the `match` stage (spec §7.5): label matchers in braces followed
//! by optional line filters.
//!
//! ```text
//! {app="nginx", level=~"warn|error", env!="dev", host!~"test-.*"} |= "GET" != "health" |~ "5\\d\\d" !~ "x"
//! ```
//!
//! Grammar and lexing follow Promtail's own small LogQL parser (a yacc grammar over Go's
//! `text/scanner`): identifiers are Go identifiers (numbers, `'c'` and backquoted text lex as
//! identifiers too, so they are refused where a string is expected), strings are
//! double-quoted Go literals with Go escapes, whitespace and `//`/`/* */` comments are skipped.
//! Errors read like Promtail's: `parse error at line L, col C: syntax error: unexpected X,
//! expecting Y` (the first error; the column is the 1-based rune column of the offending token).
//!
//! Matching: regex matchers are anchored like Prometheus' (`^(?s:re)$`), a missing label is
//! `""`; line filters are substring tests (`|=`, `!=`) or unanchored Go regexes (`|~`, `!~`), all
//! of which must hold.
//!
//! Difference from Promtail: an invalid regex in a label matcher is a config error here
//! (Promtail panics at load).

use regex::Regex;

use crate::entry::LabelSet;
use crate::pipeline::re2;

/// How a label matcher compares.
#[derive(Debug)]
enum MatchOp {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

/// One label matcher.
#[derive(Debug)]
pub struct Matcher {
    name: String,
    op: MatchOp,
}

impl Matcher {
    /// Whether the label `name` of `labels` (`""` when missing) matches.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let v = labels.get(&self.name).unwrap_or("");
        match &self.op {
            MatchOp::Eq(s) => v == s,
            MatchOp::Ne(s) => v != s,
            MatchOp::Re(r) => r.is_match(v),
            MatchOp::NotRe(r) => !r.is_match(v),
        }
    }
}

/// One line filter.
#[derive(Debug)]
enum LineFilter {
    Contains(memchr::memmem::Finder<'static>),
    NotContains(memchr::memmem::Finder<'static>),
    Re(regex::bytes::Regex),
    NotRe(regex::bytes::Regex),
}

impl LineFilter {
    fn matches(&self, line: &[u8]) -> bool {
        match self {
            LineFilter::Contains(f) => f.find(line).is_some(),
            LineFilter::NotContains(f) => f.find(line).is_none(),
            LineFilter::Re(r) => r.is_match(line),
            LineFilter::NotRe(r) => !r.is_match(line),
        }
    }
}

/// A parsed selector.
#[derive(Debug)]
pub struct Selector {
    matchers: Vec<Matcher>,
    filters: Vec<LineFilter>,
}

/// Why a selector was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SelectorError {
    /// Syntax (Promtail: `parse error at line L, col C: msg`).
    Parse(String),
    /// A line filter's regex does not compile (Promtail reports it apart).
    Filter(String),
}

impl Selector {
    /// Parses `input`.
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        Parser::new(input).parse()
    }

    /// Whether `labels` match every matcher and `line` passes every line filter.
    pub fn matches(&self, labels: &LabelSet, line: &[u8]) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
            && self.filters.iter().all(|f| f.matches(line))
    }
}

/// A token of Promtail's lexer.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Eq,
    Ne,
    Re,
    Nre,
    Open,
    Close,
    Comma,
    Dot,
    PipeMatch,
    PipeExact,
    End,
}

impl Tok {
    /// The name yacc gives the token in errors.
    fn name(&self) -> &'static str {
        match self {
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Eq => "=",
            Tok::Ne => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Open => "{",
            Tok::Close => "}",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::PipeMatch => "|~",
            Tok::PipeExact => "|=",
            Tok::End => "$end",
        }
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
    /// Position of the last token.
    tok_line: usize,
    tok_col: usize,
    _input: &'a str,
}

fn is_letter(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            chars: input.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
            tok_line: 1,
            tok_col: 1,
            _input: input,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, msg: impl std::fmt::Display) -> SelectorError {
        SelectorError::Parse(format!(
            "parse error at line {}, col {}: {msg}",
            self.tok_line, self.tok_col
        ))
    }

    /// Skips whitespace and comments.
    fn skip(&mut self) -> Result<(), SelectorError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\n' | '\r') => {
                    self.bump();
                }
                Some('/') if self.chars.get(self.pos + 1) == Some(&'/') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                Some('/') if self.chars.get(self.pos + 1) == Some(&'*') => {
                    self.tok_line = self.line;
                    self.tok_col = self.col;
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.err("comment not terminated")),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next token.
    fn next(&mut self) -> Result<Tok, SelectorError> {
        self.skip()?;
        self.tok_line = self.line;
        self.tok_col = self.col;
        let Some(c) = self.bump() else {
            return Ok(Tok::End);
        };
        let two = |p: &mut Self, second: char, tok: Tok| -> Option<Tok> {
            if p.peek() == Some(second) {
                p.bump();
                Some(tok)
            } else {
                None
            }
        };
        Ok(match c {
            '"' => Tok::Str(self.string()?),
            '`' | '\'' => {
                // Raw strings and char literals: identifiers to Promtail's lexer.
                let mut text = String::from(c);
                loop {
                    match self.bump() {
                        None => return Err(self.err("literal not terminated")),
                        Some('\n') if c == '\'' => {
                            return Err(self.err("literal not terminated"));
                        }
                        Some(x) if x == c => {
                            text.push(x);
                            break;
                        }
                        Some(x) => text.push(x),
                    }
                }
                Tok::Ident(text)
            }
            c if is_letter(c) || c.is_ascii_digit() => {
                let mut text = String::from(c);
                while let Some(n) = self.peek() {
                    let ok = if c.is_ascii_digit() {
                        n.is_ascii_alphanumeric() || n == '.' || n == '_'
                    } else {
                        is_letter(n) || n.is_numeric()
                    };
                    if !ok {
                        break;
                    }
                    text.push(n);
                    self.bump();
                }
                Tok::Ident(text)
            }
            '=' => two(self, '~', Tok::Re).unwrap_or(Tok::Eq),
            '!' => match two(self, '=', Tok::Ne) {
                Some(t) => t,
                None => two(self, '~', Tok::Nre).unwrap_or(Tok::Ident("!".into())),
            },
            '|' => match two(self, '=', Tok::PipeExact) {
                Some(t) => t,
                None => two(self, '~', Tok::PipeMatch).unwrap_or(Tok::Ident("|".into())),
            },
            '{' => Tok::Open,
            '}' => Tok::Close,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            other => Tok::Ident(other.to_string()),
        })
    }

    /// A double-quoted Go string literal (the opening quote is consumed), unquoted.
    fn string(&mut self) -> Result<String, SelectorError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.err("literal not terminated")),
                Some('"') => return Ok(out),
                Some('\\') => self.escape(&mut out)?,
                Some(c) => out.push(c),
            }
        }
    }

    fn hex_digits(&mut self, n: usize, radix: u32) -> Result<u32, SelectorError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(radix))
                .ok_or_else(|| self.err("invalid char escape"))?;
            self.bump();
            v = v.wrapping_mul(radix).wrapping_add(d);
        }
        Ok(v)
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SelectorError> {
        let bad = |p: &Self| p.err("invalid char escape");
        let Some(c) = self.bump() else {
            return Err(self.err("literal not terminated"));
        };
        let ch = match c {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            '"' => '"',
            '0'..='7' => {
                let rest = self.hex_digits(2, 8)?;
                let v = c.to_digit(8).unwrap_or(0) * 64 + rest;
                if v > 255 {
                    return Err(bad(self));
                }
                // A byte value; Go strings may hold any byte, ours are UTF-8: use the code point.
                char::from_u32(v).ok_or_else(|| bad(self))?
            }
            'x' => {
                let v = self.hex_digits(2, 16)?;
                char::from_u32(v).ok_or_else(|| bad(self))?
            }
            'u' => {
                let v = self.hex_digits(4, 16)?;
                char::from_u32(v).ok_or_else(|| bad(self))?
            }
            'U' => {
                let v = self.hex_digits(8, 16)?;
                char::from_u32(v).ok_or_else(|| bad(self))?
            }
            _ => return Err(bad(self)),
        };
        out.push(ch);
        Ok(())
    }

    fn unexpected(&self, got: &Tok, expecting: &str) -> SelectorError {
        self.err(format!(
            "syntax error: unexpected {}, expecting {expecting}",
            got.name()
        ))
    }

    fn parse(mut self) -> Result<Selector, SelectorError> {
        let t = self.next()?;
        if t != Tok::Open {
            return Err(self.unexpected(&t, "{"));
        }
        let mut matchers = Vec::new();
        loop {
            let t = self.next()?;
            let Tok::Ident(name) = t else {
                return Err(self.unexpected(&t, "IDENTIFIER"));
            };
            let op = self.next()?;
            if !matches!(op, Tok::Eq | Tok::Ne | Tok::Re | Tok::Nre) {
                return Err(self.unexpected(&op, "= or != or =~ or !~"));
            }
            let t = self.next()?;
            let Tok::Str(value) = t else {
                return Err(self.unexpected(&t, "STRING"));
            };
            let anchored = |v: &str| {
                re2::compile(&format!("^(?s:{v})$")).map_err(|e| {
                    SelectorError::Parse(format!("invalid regex in matcher {name}: {e}"))
                })
            };
            let op = match op {
                Tok::Eq => MatchOp::Eq(value),
                Tok::Ne => MatchOp::Ne(value),
                Tok::Re => MatchOp::Re(anchored(&value)?),
                _ => MatchOp::NotRe(anchored(&value)?),
            };
            matchers.push(Matcher { name, op });
            let t = self.next()?;
            match t {
                Tok::Comma => {}
                Tok::Close => break,
                other => return Err(self.unexpected(&other, "} or ,")),
            }
        }
        let mut filters = Vec::new();
        loop {
            let op = self.next()?;
            if op == Tok::End {
                break;
            }
            if !matches!(op, Tok::Ne | Tok::Nre | Tok::PipeMatch | Tok::PipeExact) {
                return Err(self.unexpected(&op, "!= or !~ or |~ or |="));
            }
            let t = self.next()?;
            let Tok::Str(s) = t else {
                return Err(self.unexpected(&t, "STRING"));
            };
            let compile = |s: &str| re2::compile_bytes(s).map_err(SelectorError::Filter);
            let finder = |s: String| memchr::memmem::Finder::new(s.as_bytes()).into_owned();
            filters.push(match op {
                Tok::PipeExact => LineFilter::Contains(finder(s)),
                Tok::Ne => LineFilter::NotContains(finder(s)),
                Tok::PipeMatch => LineFilter::Re(compile(&s)?),
                _ => LineFilter::NotRe(compile(&s)?),
            });
        }
        Ok(Selector { matchers, filters })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        LabelSet::from_pairs(pairs.iter().copied())
    }

    fn m(sel: &str, l: &[(&str, &str)], line: &str) -> bool {
        Selector::parse(sel)
            .unwrap_or_else(|e| panic!("{sel}: {e:?}"))
            .matches(&labels(l), line.as_bytes())
    }

    fn err(sel: &str) -> String {
        match Selector::parse(sel) {
            Err(SelectorError::Parse(e) | SelectorError::Filter(e)) => e,
            Ok(s) => panic!("{sel} accepted: {s:?}"),
        }
    }

    #[test]
    fn label_matchers() {
        assert!(m(r#"{foo="bar"}"#, &[("foo", "bar")], ""));
        assert!(m(r#"{ foo = "bar" }"#, &[("foo", "bar")], ""));
        assert!(!m(r#"{foo="bar"}"#, &[("foo", "baz")], ""));
        assert!(m(r#"{ foo != "bar" }"#, &[("foo", "baz")], ""));
        assert!(m(r#"{ foo != "bar" }"#, &[], ""));
        assert!(m(r#"{ foo =~ "ba." }"#, &[("foo", "bar")], ""));
        // Anchored.
        assert!(!m(r#"{ foo =~ "ba" }"#, &[("foo", "bar")], ""));
        assert!(!m(r#"{ foo =~ "ar" }"#, &[("foo", "bar")], ""));
        assert!(m(r#"{ foo !~ "ba" }"#, &[("foo", "bar")], ""));
        assert!(m(r#"{ foo =~ "a|bar" }"#, &[("foo", "bar")], ""));
        // Missing label is "".
        assert!(m(r#"{ foo =~ ".*" }"#, &[], ""));
        assert!(m(r#"{ foo = "" }"#, &[], ""));
        assert!(!m(r#"{ foo =~ ".+" }"#, &[], ""));
        let sel = r#"{ foo = "bar", bar != "baz" }"#;
        assert!(m(sel, &[("foo", "bar")], ""));
        assert!(!m(sel, &[("foo", "bar"), ("bar", "baz")], ""));
        // Escapes.
        assert!(m(r#"{ foo = "ba\"r" }"#, &[("foo", "ba\"r")], ""));
        assert!(m(r#"{ foo = "a\tb\u00e9\x41" }"#, &[("foo", "a\tbéA")], ""));
        assert!(m(r#"{ foo =~ "\\d+" }"#, &[("foo", "123")], ""));
        // Unicode identifiers, comments, newlines.
        assert!(m("{ é = \"x\" /* c */ }\n// c\n", &[("é", "x")], ""));
    }

    #[test]
    fn line_filters() {
        let sel = r#"{foo="bar"} |= "baz" |~ "bl.p" != "flip" !~ "fl[a]p""#;
        let l = &[("foo", "bar")];
        assert!(m(sel, l, "baz blip"));
        assert!(!m(sel, l, "baz"));
        assert!(!m(sel, l, "baz blip flip"));
        assert!(!m(sel, l, "baz blip flap"));
        assert!(!m(sel, &[], "baz blip"));
        // Unanchored regex.
        assert!(m(r#"{a="b"} |~ "err""#, &[("a", "b")], "an error here"));
        assert!(m(r#"{a="b"} != "x""#, &[("a", "b")], "abc"));
    }

    #[test]
    fn promtail_parse_errors() {
        assert_eq!(
            err(r#"{foo="bar}"#),
            "parse error at line 1, col 6: literal not terminated"
        );
        assert_eq!(
            err(r#"{foo="bar""#),
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"
        );
        assert_eq!(
            err(r#"{foo="bar"} |~"#),
            "parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING"
        );
        assert_eq!(
            err(r#"{foo="bar"} "foo""#),
            "parse error at line 1, col 13: syntax error: unexpected STRING, expecting != or !~ or |~ or |="
        );
        assert_eq!(
            err(r#"{foo="bar"} foo"#),
            "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER, expecting != or !~ or |~ or |="
        );
        assert_eq!(
            err("{}"),
            "parse error at line 1, col 2: syntax error: unexpected }, expecting IDENTIFIER"
        );
        assert_eq!(
            err("foo"),
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER, expecting {"
        );
        assert_eq!(
            err("{foo `bar`}"),
            "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting = or != or =~ or !~"
        );
        assert_eq!(
            err("{foo=`bar`}"),
            "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING"
        );
        assert_eq!(
            err("{foo=1}"),
            "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING"
        );
        assert!(err(r#"{foo="\q"}"#).contains("invalid char escape"));
        assert!(err("{foo=\"a\nb\"}").contains("literal not terminated"));
        assert!(err(r#"{foo="bar"} | json"#).contains("unexpected IDENTIFIER"));
        assert!(err(r#"{foo=~"("}"#).contains("invalid regex"));
        assert!(err(r#"{foo="a"} |~ "(""#).contains("error parsing regexp"));
        assert_eq!(
            err("{a=\"b\",\n c}"),
            "parse error at line 2, col 3: syntax error: unexpected }, expecting = or != or =~ or !~"
        );
    }
}
