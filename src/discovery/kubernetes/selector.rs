//! Syntax checks of the pod role's selectors, as Prometheus runs them at load through
//! apimachinery's `fields.ParseSelector` and `labels.Parse`: a selector that passes here is
//! one the API server can parse (the server remains the judge of which fields it supports).

/// apimachinery's `fields.ParseSelector`: comma-separated `key=value`, `key==value` or
/// `key!=value` terms (empty terms skipped); in values, `\`, `,` and `=` are escaped by `\`.
pub fn check_field_selector(selector: &str) -> Result<(), String> {
    for term in split_unescaped_commas(selector) {
        if term.is_empty() {
            continue;
        }
        let Some((_, value)) = split_field_term(term) else {
            return Err(format!(
                "invalid selector: '{selector}'; can't understand '{term}'"
            ));
        };
        check_field_value(value)?;
    }
    Ok(())
}

/// Splits at commas not preceded by an escaping backslash.
fn split_unescaped_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The key and value of a field term, split at its first unescaped operator.
fn split_field_term(term: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], &term[i + op.len()..]));
            }
        }
    }
    None
}

fn check_field_value(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\' | ',' | '=') => {}
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence in {value:?}"
                    ));
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped special character in {value:?}"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One token of a label selector (apimachinery's `labels` lexer).
#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Op(&'static str),
    Comma,
    Open,
    Close,
}

fn label_tokens(s: &str) -> Result<Vec<Tok<'_>>, String> {
    const OPS: [&str; 6] = ["==", "!=", "=", "!", ">", "<"];
    let mut out = Vec::new();
    let mut i = 0;
    let special = |c: char| "=!(),<>".contains(c);
    while i < s.len() {
        let rest = &s[i..];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            i += c.len_utf8();
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            out.push(Tok::Op(op));
            i += op.len();
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || special(c))
                .unwrap_or(rest.len());
            out.push(Tok::Ident(&rest[..end]));
            i += end;
        }
    }
    Ok(out)
}

/// apimachinery's `labels.Parse`: comma-separated requirements `key`, `!key`, `key=v`,
/// `key==v`, `key!=v`, `key in (v,...)`, `key notin (v,...)`, `key>n`, `key<n`, with keys
/// qualified names and values label values.
pub fn check_label_selector(selector: &str) -> Result<(), String> {
    let bad = |why: &str| format!("unable to parse label selector {selector:?}: {why}");
    let toks = label_tokens(selector)?;
    let mut it = toks.iter().peekable();
    if it.peek().is_none() {
        return Ok(());
    }
    loop {
        // One requirement.
        let negated = matches!(it.peek(), Some(Tok::Op("!")));
        if negated {
            it.next();
        }
        let Some(Tok::Ident(key)) = it.next() else {
            return Err(bad("expected a label key"));
        };
        check_qualified_name(key).map_err(|e| bad(&e))?;
        if !negated {
            match it.peek() {
                None | Some(Tok::Comma) => {}
                Some(Tok::Op(op @ ("=" | "==" | "!=" | ">" | "<"))) => {
                    let op = *op;
                    it.next();
                    let value = match it.peek() {
                        Some(Tok::Ident(v)) => {
                            it.next();
                            *v
                        }
                        // `key=` means an empty value, allowed for equality operators.
                        None | Some(Tok::Comma) if matches!(op, "=" | "==" | "!=") => "",
                        _ => return Err(bad("expected a value")),
                    };
                    if matches!(op, ">" | "<") {
                        value.parse::<i64>().map_err(|_| {
                            bad(&format!(
                                "for 'Gt', 'Lt' operators, the value must be an integer: {value:?}"
                            ))
                        })?;
                    } else {
                        check_label_value(value).map_err(|e| bad(&e))?;
                    }
                }
                Some(Tok::Ident("in" | "notin")) => {
                    it.next();
                    if it.next() != Some(&Tok::Open) {
                        return Err(bad("expected '(' after in/notin"));
                    }
                    loop {
                        match it.next() {
                            Some(Tok::Ident(v)) => {
                                check_label_value(v).map_err(|e| bad(&e))?;
                                match it.next() {
                                    Some(Tok::Comma) => {}
                                    Some(Tok::Close) => break,
                                    _ => return Err(bad("expected ',' or ')' in a value set")),
                                }
                            }
                            // An empty set element (`in (a,)`) is an empty value.
                            Some(Tok::Comma) => {}
                            Some(Tok::Close) => break,
                            _ => return Err(bad("unterminated value set")),
                        }
                    }
                }
                _ => return Err(bad("expected an operator")),
            }
        }
        match it.next() {
            None => return Ok(()),
            Some(Tok::Comma) if it.peek().is_some() => {}
            _ => return Err(bad("expected ',' between requirements")),
        }
    }
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends with `-`, `_`, `.` inside.
fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            return Err(format!("invalid label key prefix {p:?}"));
        }
    }
    if name.is_empty() || !is_label_value(name) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(())
}

fn check_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_label_value(v) {
        Ok(())
    } else {
        Err(format!("invalid label value: {v:?}"))
    }
}

/// At most 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn is_label_value(v: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    v.len() <= 63
        && v.chars().all(inner)
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
}
