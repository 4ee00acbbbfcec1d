//! Go `text/template` for the `template` and `replace` stages (spec §7.3), on the `gotmpl` crate.
//!
//! Responsibility: parse a template once at start with Promtail's function set, refuse at start
//! a function that ferrotail does not implement (naming it), and render it per entry against
//! the extracted map.
//!
//! Invariants:
//! - a template is parsed and checked once, at build time; rendering never parses;
//! - every function a template names is known at build time: Go's builtins, Promtail's own
//!   functions and the sprig functions of [`funcs`]. A sprig function that ferrotail lacks is
//!   a start-up error (`function "dateModify" of sprig is not supported by ferrotail yet`),
//!   never a silent empty result; an unknown name is Go's error (`function "x" not defined`);
//! - the data of a render holds only the extracted keys the template can reach: when it only
//!   names fields (`.level`, `$.app`), only those are converted; a template that uses dot or
//!   `$` as a whole (`index . "k"`, `range .`) gets every key.

pub(crate) mod funcs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gotmpl::parse::{BranchNode, Expr, ListNode, Node, PipeNode};
use gotmpl::{Template, Value};

use super::extracted::Extracted;

/// A parsed, checked Go template.
pub struct GoTemplate {
    template: Template,
    /// Top-level fields the template names; `None` when it may read any key.
    fields: Option<BTreeSet<Arc<str>>>,
}

impl std::fmt::Debug for GoTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoTemplate")
            .field("fields", &self.fields)
            .finish()
    }
}

impl GoTemplate {
    /// Parses `source` (named `name` in error messages, as Go does) and checks its functions.
    pub fn parse(name: &str, source: &str) -> Result<Self, String> {
        let template = Template::new(name)
            .funcs(funcs::func_map())
            .parse(source)
            .map_err(|e| e.to_string())?;
        let mut walk = Walk {
            fields: BTreeSet::new(),
            needs_all: false,
            bad_function: None,
        };
        for t in template.templates() {
            if let Some(list) = template.lookup(t) {
                walk.list(list);
            }
        }
        if let Some(f) = walk.bad_function {
            return Err(if funcs::is_sprig_not_implemented(&f) {
                format!(
                    "template: {name}: function \"{f}\" of sprig is not supported by ferrotail yet"
                )
            } else {
                format!("template: {name}: function \"{f}\" not defined")
            });
        }
        let fields = (!walk.needs_all).then_some(walk.fields);
        Ok(GoTemplate { template, fields })
    }

    /// Promtail's template data: every extracted value that can be a string under its own key
    /// (only those the template can reach), then the `extra` pairs (`Value`, `Entry`), which
    /// win over extracted keys of the same name.
    pub fn data(&self, extracted: &Extracted, extra: &[(&str, &str)]) -> Value {
        let mut map: BTreeMap<Arc<str>, Value> = BTreeMap::new();
        match &self.fields {
            Some(fields) => {
                for f in fields {
                    if let Some(s) = extracted.get(f).and_then(|v| v.to_text()) {
                        map.insert(f.clone(), Value::String(Arc::from(s.as_ref())));
                    }
                }
            }
            None => {
                for (k, v) in extracted.iter() {
                    if let Some(s) = v.to_text() {
                        map.insert(Arc::from(k), Value::String(Arc::from(s.as_ref())));
                    }
                }
            }
        }
        for (k, v) in extra {
            map.insert(Arc::from(*k), Value::String(Arc::from(*v)));
        }
        Value::Map(Arc::new(map))
    }

    /// Renders the template with `data`; an execution error names what failed. A render that
    /// would be longer than [`funcs::MAX_TEXT_BYTES`] is an error (a `range` can repeat its
    /// body up to gotmpl's 10,000,000 iterations per render).
    pub fn render(&self, data: &Value) -> Result<String, String> {
        let mut out = BoundedText::default();
        match self.template.execute_fmt(&mut out, data) {
            Ok(()) => Ok(out.text),
            Err(_) if out.overflowed => Err(format!(
                "template: {}: output longer than {} bytes",
                self.template.name(),
                funcs::MAX_TEXT_BYTES
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A render's output, refusing to grow past [`funcs::MAX_TEXT_BYTES`].
#[derive(Default)]
struct BoundedText {
    text: String,
    overflowed: bool,
}

impl std::fmt::Write for BoundedText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > funcs::MAX_TEXT_BYTES {
            self.overflowed = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// Collects the fields a parse tree names and the first function it names that is not there.
struct Walk {
    fields: BTreeSet<Arc<str>>,
    needs_all: bool,
    bad_function: Option<String>,
}

impl Walk {
    fn list(&mut self, list: &ListNode) {
        for node in &list.nodes {
            self.node(node);
        }
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::List(l) => self.list(l),
            Node::Action(a) => self.pipe(&a.pipe),
            Node::If(b) | Node::Range(b) | Node::With(b) => self.branch(b),
            Node::Template(t) => {
                if let Some(p) = &t.pipe {
                    self.pipe(p);
                }
            }
            Node::Define(d) => self.list(&d.body),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }

    fn branch(&mut self, b: &BranchNode) {
        self.pipe(&b.pipe);
        self.list(&b.body);
        if let Some(e) = &b.else_body {
            self.list(e);
        }
    }

    fn pipe(&mut self, p: &PipeNode) {
        for c in &p.commands {
            for e in &c.args {
                self.expr(e);
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Identifier(_, name) => {
                if self.bad_function.is_none() && !funcs::is_defined(name) {
                    self.bad_function = Some(name.to_string());
                }
            }
            Expr::Field(_, chain) => {
                if let Some(first) = chain.first() {
                    self.fields.insert(Arc::from(first.as_str()));
                }
            }
            // `$.app` reads the root's `app`; a bare `$` or `$x` may be the root as a whole.
            Expr::Variable(_, name, chain) if name == "$" => match chain.first() {
                Some(first) => {
                    self.fields.insert(Arc::from(first.as_str()));
                }
                None => self.needs_all = true,
            },
            Expr::Dot(_) => self.needs_all = true,
            // Other variables hold what a pipeline computed from dot, `$` or fields, seen there.
            Expr::Variable(..) => {}
            Expr::Pipe(_, p) => self.pipe(p),
            Expr::Chain(_, inner, _) => self.expr(inner),
            Expr::String(..) | Expr::Number(..) | Expr::Bool(..) | Expr::Nil(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
