//! A linear-time guard run on YAML text before serde_yaml sees it (the config file, the
//! positions file and its sidecar): flow collections (`[...]`, `{...}`) nested more than
//! [`MAX_FLOW_DEPTH`] deep are refused.
//!
//! Why: the libyaml scanner under serde_yaml (unsafe-libyaml) walks one saved simple key per open
//! flow level for every token it produces, so `[[[[...` costs O(n²): 32 KiB of `[` take seconds,
//! a megabyte hours (yaml/yaml-serde#1, serde-yaml-ng#16). libyaml upstream and Go's yaml.v2,
//! which Promtail uses, cap the nesting; serde_yaml 0.9 cannot be told to, and its own recursion
//! limit (128) only applies after the whole document has been scanned. Anything nested deeper
//! than 128 is refused by serde_yaml anyway, so the cap changes no outcome, only the time it
//! takes to reach it.
//!
//! How: a small scanner that follows libyaml's rules for where a token starts (comments, plain
//! scalars and their continuation lines, which depend on the block indentation, quoted and block
//! scalars, anchors, tags, aliases, directives and document markers) and counts the flow level
//! exactly as libyaml does. It only has to agree with libyaml on text that libyaml accepts: at
//! libyaml's first error, parsing stops, so whatever this scanner does after that point costs
//! nothing.
//!
//! Invariants: linear time and no allocation beyond the indentation stack; on text libyaml
//! scans without error up to a point, the depth counted here at that point is libyaml's flow
//! level there.

/// The deepest nesting of flow collections accepted (serde_yaml's own recursion limit).
pub const MAX_FLOW_DEPTH: usize = 128;

/// Text whose flow collections nest deeper than [`MAX_FLOW_DEPTH`], where it first does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based line of the bracket that went one level too deep.
    pub line: usize,
    /// 1-based column (in characters) of that bracket.
    pub column: usize,
}

impl TooDeep {
    /// What is wrong, without the position.
    pub const MESSAGE: &str = "flow collections ([...] or {...}) nested more than 128 deep";
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            Self::MESSAGE,
            self.line,
            self.column
        )
    }
}

/// Refuses `text` when its flow collections nest deeper than [`MAX_FLOW_DEPTH`].
pub fn check_flow_depth(text: &str) -> Result<(), TooDeep> {
    deepest_flow(text, MAX_FLOW_DEPTH).map(|_| ())
}

/// The deepest flow level libyaml reaches in `text` (up to its first error), or where it first
/// passes `cap`.
fn deepest_flow(text: &str, cap: usize) -> Result<usize, TooDeep> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        col: 0,
        line: 0,
        flow: 0,
        deepest: 0,
        cap,
        indents: Vec::new(),
        key_allowed: true,
        key: None,
    };
    s.run()?;
    Ok(s.deepest)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// Column of `i` in characters.
    col: usize,
    line: usize,
    /// libyaml's `flow_level`.
    flow: usize,
    deepest: usize,
    cap: usize,
    /// libyaml's block indentation stack (`parser.indent` is the top, -1 when empty).
    indents: Vec<usize>,
    /// libyaml's `simple_key_allowed`.
    key_allowed: bool,
    /// (line, column) of the saved simple key, if one is possible.
    key: Option<(usize, usize)>,
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// Characters of an anchor or alias name (libyaml's `IS_ALPHA`).
fn is_anchor_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Characters of a tag handle or shorthand suffix (libyaml's URI characters, without the flow
/// indicators that only a verbatim `!<...>` tag may hold).
fn is_tag_char(c: u8) -> bool {
    is_anchor_char(c) || b";/?:@&=+$.%!~*'()".contains(&c)
}

impl Scanner<'_> {
    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    /// Length of the line break at `i + k` (`\r\n`, `\r`, `\n`, NEL, LS, PS), 0 if none.
    fn break_len(&self, k: usize) -> usize {
        match &self.b[(self.i + k).min(self.b.len())..] {
            [b'\r', b'\n', ..] => 2,
            [b'\r' | b'\n', ..] => 1,
            [0xC2, 0x85, ..] => 2,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        }
    }

    /// Blank, line break or end of input at `i + k` (libyaml's `IS_BLANKZ_AT`).
    fn blankz(&self, k: usize) -> bool {
        self.at(k).is_none_or(is_blank) || self.break_len(k) > 0
    }

    fn indent(&self) -> isize {
        self.indents.last().map_or(-1, |&i| i as isize)
    }

    /// Moves over one character (a line break counts as one and starts a new line).
    fn advance(&mut self) {
        let n = self.break_len(0);
        if n > 0 {
            self.i += n;
            self.line += 1;
            self.col = 0;
            return;
        }
        self.i += 1;
        // Continuation bytes of a UTF-8 character do not start a column.
        while self.at(0).is_some_and(|c| c & 0xC0 == 0x80) {
            self.i += 1;
        }
        self.col += 1;
    }

    fn roll_indent(&mut self, column: usize) {
        if self.flow == 0 && self.indent() < column as isize {
            self.indents.push(column);
        }
    }

    fn unroll_indent(&mut self, column: isize) {
        if self.flow == 0 {
            while self.indent() > column {
                self.indents.pop();
            }
        }
    }

    fn save_key(&mut self) {
        if self.key_allowed {
            self.key = Some((self.line, self.col));
        }
    }

    fn run(&mut self) -> Result<(), TooDeep> {
        if self.b.starts_with("\u{feff}".as_bytes()) {
            self.i = 3;
        }
        loop {
            self.skip_to_next_token();
            let Some(c) = self.at(0) else {
                return Ok(());
            };
            // A simple key only survives on its own line (libyaml's stale keys).
            if self.key.is_some_and(|(line, _)| line != self.line) {
                self.key = None;
            }
            self.unroll_indent(self.col as isize);
            let col = self.col;
            if col == 0 && c == b'%' {
                self.skip_line();
                self.key_allowed = false;
                continue;
            }
            if col == 0
                && (self.b[self.i..].starts_with(b"---") || self.b[self.i..].starts_with(b"..."))
                && self.blankz(3)
            {
                self.unroll_indent(-1);
                self.key = None;
                self.key_allowed = false;
                self.i += 3;
                self.col += 3;
                continue;
            }
            match c {
                b'[' | b'{' => {
                    self.save_key();
                    self.flow += 1;
                    if self.flow > self.cap {
                        return Err(TooDeep {
                            line: self.line + 1,
                            column: col + 1,
                        });
                    }
                    self.deepest = self.deepest.max(self.flow);
                    self.key_allowed = true;
                    self.advance();
                }
                b']' | b'}' => {
                    self.key = None;
                    self.flow = self.flow.saturating_sub(1);
                    self.key_allowed = false;
                    self.advance();
                }
                b',' => {
                    self.key = None;
                    self.key_allowed = true;
                    self.advance();
                }
                b'-' if self.blankz(1) => {
                    self.roll_indent(col);
                    self.key = None;
                    self.key_allowed = true;
                    self.advance();
                }
                b'?' if self.flow > 0 || self.blankz(1) => {
                    self.roll_indent(col);
                    self.key = None;
                    self.key_allowed = self.flow == 0;
                    self.advance();
                }
                b':' if self.flow > 0 || self.blankz(1) => {
                    match self.key.take() {
                        Some((_, key_col)) => self.roll_indent(key_col),
                        None => self.roll_indent(col),
                    }
                    self.key_allowed = self.flow == 0;
                    self.advance();
                }
                b'*' | b'&' => {
                    self.save_key();
                    self.key_allowed = false;
                    self.advance();
                    while self.at(0).is_some_and(is_anchor_char) {
                        self.advance();
                    }
                }
                b'!' => {
                    self.save_key();
                    self.key_allowed = false;
                    self.skip_tag();
                }
                b'|' | b'>' if self.flow == 0 => {
                    self.key = None;
                    self.key_allowed = true;
                    self.skip_block_scalar();
                }
                b'\'' | b'"' => {
                    self.save_key();
                    self.key_allowed = false;
                    self.skip_quoted(c);
                }
                _ if self.plain_start(c) => {
                    self.save_key();
                    self.key_allowed = false;
                    self.skip_plain();
                }
                // A character that cannot start a token: libyaml stops here.
                _ => return Ok(()),
            }
        }
    }

    /// libyaml's `scan_to_next_token`: blanks, comments and line breaks.
    fn skip_to_next_token(&mut self) {
        loop {
            while self
                .at(0)
                .is_some_and(|c| c == b' ' || (c == b'\t' && (self.flow > 0 || !self.key_allowed)))
            {
                self.advance();
            }
            if self.at(0) == Some(b'#') {
                self.skip_line();
            }
            if self.break_len(0) == 0 {
                return;
            }
            self.advance();
            if self.flow == 0 {
                self.key_allowed = true;
            }
        }
    }

    /// Skips to the line break (not over it).
    fn skip_line(&mut self) {
        while self.at(0).is_some() && self.break_len(0) == 0 {
            self.advance();
        }
    }

    fn plain_start(&self, c: u8) -> bool {
        let indicator = b"-?:,[]{}#&*!|>'\"%@`".contains(&c) || is_blank(c);
        !indicator
            || (c == b'-' && !self.at(1).is_some_and(is_blank))
            || (self.flow == 0 && (c == b'?' || c == b':') && !self.blankz(1))
    }

    fn skip_tag(&mut self) {
        self.advance();
        if self.at(0) == Some(b'<') {
            while self.at(0).is_some_and(|c| c != b'>') && self.break_len(0) == 0 {
                self.advance();
            }
            if self.at(0) == Some(b'>') {
                self.advance();
            }
            return;
        }
        while self.at(0).is_some_and(is_tag_char) {
            self.advance();
        }
    }

    fn skip_quoted(&mut self, quote: u8) {
        self.advance();
        while let Some(c) = self.at(0) {
            if c == quote {
                if quote == b'\'' && self.at(1) == Some(b'\'') {
                    self.advance();
                    self.advance();
                    continue;
                }
                self.advance();
                return;
            }
            if c == b'\\' && quote == b'"' {
                self.advance();
                if self.at(0).is_none() {
                    return;
                }
            }
            self.advance();
        }
    }

    /// libyaml's `scan_plain_scalar`, up to where the scalar ends.
    fn skip_plain(&mut self) {
        let indent = self.indent() + 1;
        loop {
            if self.col == 0
                && (self.b[self.i..].starts_with(b"---") || self.b[self.i..].starts_with(b"..."))
                && self.blankz(3)
            {
                return;
            }
            if self.at(0) == Some(b'#') {
                return;
            }
            while !self.blankz(0) {
                let c = self.b[self.i];
                if (c == b':' && self.blankz(1)) || (self.flow > 0 && is_flow_indicator(c)) {
                    return;
                }
                // `:` before a flow indicator in flow context is an error: libyaml stops.
                self.advance();
            }
            if self.at(0).is_none() {
                return;
            }
            let mut leading_break = false;
            while let Some(c) = self.at(0) {
                if is_blank(c) {
                    self.advance();
                } else if self.break_len(0) > 0 {
                    self.advance();
                    leading_break = true;
                } else {
                    break;
                }
            }
            if leading_break {
                self.key_allowed = true;
            }
            if self.flow == 0 && (self.col as isize) < indent {
                return;
            }
        }
    }

    /// libyaml's `scan_block_scalar`: the header line, then every line indented at least as
    /// much as the content (or blank).
    fn skip_block_scalar(&mut self) {
        self.advance();
        let mut increment = 0;
        for _ in 0..2 {
            match self.at(0) {
                Some(b'+' | b'-') => self.advance(),
                Some(d @ b'1'..=b'9') => {
                    increment = usize::from(d - b'0');
                    self.advance();
                }
                _ => {}
            }
        }
        while self.at(0).is_some_and(is_blank) {
            self.advance();
        }
        if self.at(0) == Some(b'#') {
            self.skip_line();
        }
        if self.break_len(0) == 0 {
            return; // libyaml: "did not find expected comment or line break"
        }
        self.advance();
        let parent = self.indent();
        let mut indent = match increment {
            0 => 0,
            n if parent >= 0 => parent as usize + n,
            n => n,
        };
        self.block_scalar_breaks(&mut indent, parent);
        while self.col == indent && self.at(0).is_some() {
            self.skip_line();
            if self.at(0).is_none() {
                return;
            }
            self.advance();
            self.block_scalar_breaks(&mut indent, parent);
        }
    }

    /// libyaml's `scan_block_scalar_breaks`: leading spaces and empty lines; fixes the content
    /// indentation when it was not given.
    fn block_scalar_breaks(&mut self, indent: &mut usize, parent: isize) {
        let mut max_indent = 0;
        loop {
            while (*indent == 0 || self.col < *indent) && self.at(0) == Some(b' ') {
                self.advance();
            }
            max_indent = max_indent.max(self.col);
            if (*indent == 0 || self.col < *indent) && self.at(0) == Some(b'\t') {
                return; // libyaml: a tab where indentation is expected is an error
            }
            if self.break_len(0) == 0 {
                break;
            }
            self.advance();
        }
        if *indent == 0 {
            *indent = max_indent.max((parent + 1) as usize).max(1);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "yaml_depth_tests.rs"]
mod tests;
