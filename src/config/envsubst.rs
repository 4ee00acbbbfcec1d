//! `-config.expand-env`: `${VAR}` expansion over the whole config text, with the semantics of the
//! drone/envsubst library Promtail uses (spec §2.3), written from its documented and observed
//! behaviour.
//!
//! - Only `${...}` is recognised; `$VAR` stays as it is. An unset or empty variable expands to "".
//! - `${V:-d}`, `${V:=d}`, `${V=d}`, `${V:?d}`, `${V:+d}`: `d` when V is empty (no assignment, no
//!   error); `d` may contain `${...}`. `${V-d}` and `${V+d}` are errors (missing closing brace).
//! - `${#V}` (byte length), `${V^}`, `${V^^}`, `${V,}`, `${V,,}`, `${V:pos}`, `${V:pos:len}`,
//!   `${V#pat}`, `${V##pat}`, `${V%pat}`, `${V%%pat}` (glob patterns), `${V/old/new}`,
//!   `${V//old/new}`, `${V/#old/new}`, `${V/%old/new}`.
//! - Outside `${...}`: `$$` is `$`, `\\` is `\`, `\/` is `/`; any other backslash is kept. So a
//!   regex written for expand-env as `\\d` reaches the YAML parser as `\d`.
//! - A malformed `${` anywhere, comments included, is an error that aborts loading.
//!
//! Invariant: the function is pure; variables come from the `lookup` closure only.

use std::fmt;

/// Why expansion failed; the messages are drone/envsubst's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpandErrorKind {
    /// `bad substitution`
    BadSubstitution,
    /// `missing closing brace`
    MissingClosingBrace,
    /// `unable to parse variable name`
    VariableName,
    /// `unable to parse substitution within function`
    FunctionArgument,
}

/// An env expansion error with the 1-based line where it was detected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} at line {line}", kind.message())]
pub struct ExpandError {
    /// What went wrong.
    pub kind: ExpandErrorKind,
    /// 1-based line of the config text.
    pub line: usize,
}

impl ExpandErrorKind {
    /// The library's message for this error.
    pub const fn message(self) -> &'static str {
        match self {
            ExpandErrorKind::BadSubstitution => "bad substitution",
            ExpandErrorKind::MissingClosingBrace => "missing closing brace",
            ExpandErrorKind::VariableName => "unable to parse variable name",
            ExpandErrorKind::FunctionArgument => "unable to parse substitution within function",
        }
    }
}

impl fmt::Display for ExpandErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Expands `${...}` references in `text`; `lookup` returns a variable's value (`None` = unset).
pub fn expand_env<F>(text: &str, lookup: F) -> Result<String, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    let mut ex = Expander {
        s: text,
        pos: 0,
        lookup: &lookup,
    };
    ex.top().map_err(|kind| ExpandError {
        kind,
        line: text[..ex.pos.min(text.len())].matches('\n').count() + 1,
    })
}

type Res<T> = Result<T, ExpandErrorKind>;

struct Expander<'a, F> {
    s: &'a str,
    pos: usize,
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Expander<'_, F> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn at_open(&self) -> bool {
        self.rest().starts_with("${")
    }

    fn var(&self, name: &str) -> String {
        (self.lookup)(name).unwrap_or_default()
    }

    /// Consumes an escape pair (`$$`, `\\`, `\/`) and returns the literal it stands for.
    fn take_escape(&mut self) -> Option<char> {
        let lit = match (self.peek()?, self.peek2()?) {
            ('$', '$') => '$',
            ('\\', c @ ('\\' | '/')) => c,
            _ => return None,
        };
        self.pos += 2;
        Some(lit)
    }

    fn expect_close(&mut self) -> Res<()> {
        if self.peek() == Some('}') {
            self.pos += 1;
            Ok(())
        } else {
            Err(ExpandErrorKind::BadSubstitution)
        }
    }

    fn ident(&mut self) -> &str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    fn top(&mut self) -> Res<String> {
        let mut out = String::with_capacity(self.s.len());
        while self.pos < self.s.len() {
            if self.at_open() {
                self.pos += 2;
                let v = self.func()?;
                out.push_str(&v);
            } else if let Some(c) = self.take_escape() {
                out.push(c);
            } else if let Some(c) = self.bump() {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// One function argument: a nested `${...}` or a run of accepted characters.
    fn param(&mut self, accept: fn(char) -> bool, escapes: bool) -> Res<String> {
        if self.peek().is_none() {
            return Err(ExpandErrorKind::FunctionArgument);
        }
        if self.at_open() {
            self.pos += 2;
            return self.func();
        }
        let mut out = String::new();
        let mut first = true;
        loop {
            if self.peek().is_none() || (!first && self.at_open()) {
                break;
            }
            if escapes && let Some(c) = self.take_escape() {
                out.push(c);
                first = false;
                continue;
            }
            match self.peek() {
                Some(c) if accept(c) => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
                _ if first => return Err(ExpandErrorKind::FunctionArgument),
                _ => break,
            }
            first = false;
        }
        Ok(out)
    }

    /// Parses and evaluates what follows `${`, through the closing brace.
    fn func(&mut self) -> Res<String> {
        if self.peek() == Some('#') {
            self.pos += 1;
            let name = self.ident().to_owned();
            if name.is_empty() {
                return Err(ExpandErrorKind::BadSubstitution);
            }
            self.expect_close()?;
            return Ok(self.var(&name).len().to_string());
        }
        let name = self.ident().to_owned();
        if name.is_empty() {
            return Err(ExpandErrorKind::VariableName);
        }
        match self.peek() {
            Some(':') => match self.peek2() {
                // Two quirks of the library's scanner, kept so the same inputs fail.
                None => Err(ExpandErrorKind::BadSubstitution),
                Some(c) if !c.is_ascii() => Err(ExpandErrorKind::BadSubstitution),
                Some('=' | '-' | '?' | '+') => {
                    self.pos += 2;
                    self.default(&name)
                }
                Some(_) => {
                    self.pos += 1;
                    self.substr(&name)
                }
            },
            Some('=') => {
                self.pos += 1;
                self.default(&name)
            }
            Some(',' | '^') => self.casing(&name),
            Some('/') => self.replace(&name),
            Some(c @ ('#' | '%')) => self.remove(&name, c),
            Some('}') => {
                self.pos += 1;
                Ok(self.var(&name))
            }
            _ => Err(ExpandErrorKind::MissingClosingBrace),
        }
    }

    fn default(&mut self, name: &str) -> Res<String> {
        let mut alt = String::new();
        let mut has_alt = false;
        while self.peek() != Some('}') {
            alt.push_str(&self.param(|c| c != '}', false)?);
            has_alt = true;
        }
        self.pos += 1;
        let v = self.var(name);
        Ok(if v.is_empty() && has_alt { alt } else { v })
    }

    fn substr(&mut self, name: &str) -> Res<String> {
        let offset = self.param(|c| c != ':' && c != '}', false)?;
        let length = match self.peek() {
            Some('}') => None,
            Some(':') => {
                while self.peek() == Some(':') {
                    self.pos += 1;
                }
                Some(self.param(|c| c != '}', false)?)
            }
            _ => return Err(ExpandErrorKind::BadSubstitution),
        };
        self.expect_close()?;
        Ok(substring(&self.var(name), &offset, length.as_deref()))
    }

    fn remove(&mut self, name: &str, op: char) -> Res<String> {
        self.pos += 1;
        let longest = self.peek() == Some(op);
        if longest {
            self.pos += 1;
        }
        let pattern = self.param(|c| c != '}', false)?;
        self.expect_close()?;
        let v = self.var(name);
        Ok(match (op, longest) {
            ('#', false) => trim_prefix(&v, &pattern, false),
            ('#', true) => trim_prefix(&v, &pattern, true),
            (_, longest) => {
                // Suffix trimming is prefix trimming on the reversed strings, as the library does.
                let rv: String = v.chars().rev().collect();
                let rp: String = pattern.chars().rev().collect();
                trim_prefix(&rv, &rp, longest).chars().rev().collect()
            }
        })
    }

    fn casing(&mut self, name: &str) -> Res<String> {
        let start = self.pos;
        while self.pos - start < 2 && matches!(self.peek(), Some(',' | '^')) {
            self.pos += 1;
        }
        let op = self.s[start..self.pos].to_owned();
        self.expect_close()?;
        let v = self.var(name);
        let mut chars = v.chars();
        Ok(match op.as_str() {
            "," => chars
                .next()
                .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect()),
            "^" => chars
                .next()
                .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect()),
            ",," => v.to_lowercase(),
            "^^" => v.to_uppercase(),
            _ => v,
        })
    }

    fn replace(&mut self, name: &str) -> Res<String> {
        self.pos += 1;
        let mode = match self.peek() {
            Some(c @ ('/' | '#' | '%')) => {
                self.pos += 1;
                c
            }
            _ => ' ',
        };
        let old = self.param(|c| c != '/', true)?;
        if self.peek() != Some('/') {
            return Err(ExpandErrorKind::BadSubstitution);
        }
        while self.peek() == Some('/') {
            self.pos += 1;
        }
        let new = if self.peek() == Some('}') {
            None
        } else {
            Some(self.param(|c| c != '}', true)?)
        };
        self.expect_close()?;
        let v = self.var(name);
        Ok(match (mode, new) {
            (' ', new) => v.replacen(&old, new.as_deref().unwrap_or(""), 1),
            ('/', new) => v.replace(&old, new.as_deref().unwrap_or("")),
            ('#', Some(new)) if v.starts_with(&old) => v.replacen(&old, &new, 1),
            ('%', Some(new)) if v.ends_with(&old) => format!("{}{new}", &v[..v.len() - old.len()]),
            _ => v,
        })
    }
}

/// `${V:offset[:length]}` on bytes; an unparsable number leaves the value unchanged.
fn substring(v: &str, offset: &str, length: Option<&str>) -> String {
    let bytes = v.as_bytes();
    let len = bytes.len() as i128;
    let Ok(mut pos) = offset.parse::<i64>().map(i128::from) else {
        return v.to_owned();
    };
    if pos < 0 {
        pos = (len + pos).max(0);
    }
    let tail = |pos: i128| {
        if pos < len {
            String::from_utf8_lossy(&bytes[pos as usize..]).into_owned()
        } else {
            String::new()
        }
    };
    let Some(length) = length else {
        return tail(pos);
    };
    let Ok(length) = length.parse::<i64>().map(i128::from) else {
        return v.to_owned();
    };
    if pos + length >= len {
        return tail(pos);
    }
    if length < 0 {
        // The library would panic here (slice end before start); an empty string is kinder.
        return String::new();
    }
    String::from_utf8_lossy(&bytes[pos as usize..(pos + length) as usize]).into_owned()
}

/// Removes the shortest (or longest) prefix of `v` matching the glob `pattern`; a malformed
/// pattern leaves `v` unchanged. Candidate prefixes are byte slices, as in the library.
fn trim_prefix(v: &str, pattern: &str, longest: bool) -> String {
    let b = v.as_bytes();
    let mut cut = 0;
    for i in 0..b.len() {
        let cand = &b[..b.len() - i];
        match glob_match(pattern.as_bytes(), cand) {
            Err(()) => return v.to_owned(),
            Ok(true) => {
                cut = cand.len();
                if longest {
                    break;
                }
            }
            Ok(false) => {}
        }
    }
    String::from_utf8_lossy(&b[cut..]).into_owned()
}

/// Decodes one UTF-8 character; invalid input is U+FFFD of length 1.
fn decode_rune(b: &[u8]) -> (char, usize) {
    for n in 1..=b.len().min(4) {
        if let Ok(s) = std::str::from_utf8(&b[..n])
            && let Some(c) = s.chars().next()
        {
            return (c, n);
        }
    }
    (char::REPLACEMENT_CHARACTER, 1)
}

/// The library's glob: Go's `path.Match` except that `*` and `?` also match `/`.
fn glob_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(true);
        }
        let first = match_chunk(chunk, name);
        if let Ok(Some(t)) = first
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        first?;
        if star {
            for i in 0..name.len() {
                match match_chunk(chunk, &name[i + 1..])? {
                    Some(t) if pattern.is_empty() && !t.is_empty() => continue,
                    Some(t) => {
                        name = t;
                        continue 'chunks;
                    }
                    None => {}
                }
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the next run of stars and the literal chunk after it.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches a star-free chunk at the start of `s`; returns what is left of `s`.
fn match_chunk<'s>(mut chunk: &[u8], mut s: &'s [u8]) -> Result<Option<&'s [u8]>, ()> {
    while !chunk.is_empty() {
        if s.is_empty() {
            return Ok(None);
        }
        match chunk[0] {
            b'[' => {
                let (r, n) = decode_rune(s);
                s = &s[n..];
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = class_char(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    return Ok(None);
                }
            }
            b'?' => {
                let (_, n) = decode_rune(s);
                s = &s[n..];
                chunk = &chunk[1..];
            }
            c => {
                let lit = if c == b'\\' {
                    chunk = &chunk[1..];
                    *chunk.first().ok_or(())?
                } else {
                    c
                };
                if lit != s[0] {
                    return Ok(None);
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
        }
    }
    Ok(Some(s))
}

/// One possibly-escaped character of a `[...]` class; the class must continue after it.
fn class_char(mut chunk: &[u8]) -> Result<(char, &[u8]), ()> {
    match chunk.first() {
        None | Some(b'-' | b']') => return Err(()),
        Some(b'\\') => chunk = &chunk[1..],
        Some(_) => {}
    }
    if chunk.is_empty() {
        return Err(());
    }
    let (r, n) = decode_rune(chunk);
    let rest = &chunk[n..];
    if (r == char::REPLACEMENT_CHARACTER && n == 1) || rest.is_empty() {
        return Err(());
    }
    Ok((r, rest))
}
