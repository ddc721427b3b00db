//! `match` and `case`: pattern matching.
//!
//! Each clause becomes a `do … end` block of nested `if`s: a test, then the
//! locals it lets the next test and the body see, and so on. A clause whose
//! body ran jumps past the others with `goto` (or returns, in tail position).
//! `(where (or p1 p2) guard)` is compiled as one clause per alternative.
//!
//! Symbols bind the value and refuse `nil` (unless `_x` / `?x`); a symbol
//! seen earlier in the same pattern must be equal to it; in `match` (not
//! `case`) a symbol that is already a local is compared, not bound.

use std::collections::HashMap;

use super::emit;
use super::{Compiler, Dest, Expr, Form, FormKind, Result};

/// What is known while compiling one clause.
struct Clause {
    /// `match` pins existing locals; `case` doesn't.
    pins: bool,
    /// Fennel names bound so far in this clause -> Lua names.
    bound: HashMap<String, String>,
    /// Open `if`s to close.
    depth: usize,
}

impl Compiler<'_> {
    pub(super) fn match_form(&mut self, form: &Form, args: &[Form], dest: &Dest, pins: bool) -> Result<Vec<Expr>> {
        let what = if pins { "match" } else { "case" };
        let Some((value, clauses)) = args.split_first() else {
            return Err(self.error(
                form.span,
                format!("expected a value and pattern/body pairs: ({what} x pattern body ...)"),
            ));
        };
        if clauses.len() % 2 != 0 {
            let last = clauses.last().unwrap_or(form);
            return Err(self.error(last.span, format!("expected a body for this {what} pattern")));
        }
        let clauses: Vec<(&Form, &Form)> = clauses.chunks(2).map(|c| (&c[0], &c[1])).collect();
        let mut expanded = Vec::new();
        for (pattern, body) in &clauses {
            let (alternatives, guards) = self.alternatives(pattern)?;
            for alternative in alternatives {
                expanded.push((alternative, guards, *body));
            }
        }
        let count = expanded
            .iter()
            .map(|(p, _, _)| value_count(p))
            .max()
            .unwrap_or(1)
            .max(1);
        let line = self.line(form.span);
        self.statement_value(form, dest, |c, dest| {
            let values = c.exprs(value)?;
            c.emit(line, "do");
            c.in_block(|c| {
                let temps: Vec<String> = (0..count).map(|_| c.scope.temp("m")).collect();
                let init = if values.is_empty() {
                    "nil".to_string()
                } else {
                    super::join_exprs(&values)
                };
                c.emit(line, &format!("local {} = {init}", temps.join(", ")));
                let label = c.scope.temp("done");
                for (pattern, guards, body) in &expanded {
                    c.match_clause(pattern, guards, body, &temps, dest, &label, pins)?;
                }
                if *dest != Dest::Discard {
                    c.deliver(vec![Expr::nil()], dest, None);
                }
                if *dest != Dest::Return {
                    c.emit_word(&format!("::{label}::"));
                }
                Ok(())
            })?;
            c.emit_word("end");
            Ok(())
        })
    }

    /// `(where (or a b) g…)` -> ([a, b], [g…]); `(where a)` -> ([a], []); `a` -> ([a], []).
    fn alternatives<'f>(&self, pattern: &'f Form) -> Result<(Vec<&'f Form>, &'f [Form])> {
        let Some(items) = pattern.as_list() else {
            return Ok((vec![pattern], &[]));
        };
        let (inner, guards) = match items.first().and_then(Form::as_sym) {
            Some("where") => match &items[1..] {
                [inner, guards @ ..] => (inner, guards),
                [] => return Err(self.error(pattern.span, "expected a pattern after where")),
            },
            _ => (pattern, &[][..]),
        };
        match inner.as_list() {
            Some([head, alternatives @ ..]) if head.is_sym("or") => {
                if alternatives.is_empty() {
                    return Err(self.error(inner.span, "expected patterns after or"));
                }
                Ok((alternatives.iter().collect(), guards))
            }
            _ => Ok((vec![inner], guards)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn match_clause(
        &mut self,
        pattern: &Form,
        guards: &[Form],
        body: &Form,
        values: &[String],
        dest: &Dest,
        label: &str,
        pins: bool,
    ) -> Result<()> {
        let line = self.line(pattern.span);
        self.emit(line, "do");
        self.in_block(|c| {
            let mut clause = Clause {
                pins,
                bound: HashMap::new(),
                depth: 0,
            };
            match pattern.as_list() {
                Some(items) if !is_pin(pattern) => {
                    for (item, value) in items.iter().zip(values) {
                        c.pattern(item, value, &mut clause)?;
                    }
                }
                _ => c.pattern(pattern, &values[0], &mut clause)?,
            }
            for guard in guards {
                let test = c.expr(guard)?;
                c.emit(c.line(guard.span), &format!("if {} then", test.code));
                clause.depth += 1;
            }
            c.in_block(|c| c.body(std::slice::from_ref(body), dest))?;
            if *dest != Dest::Return {
                c.emit_word(&format!("goto {label}"));
            }
            for _ in 0..clause.depth {
                c.emit_word("end");
            }
            Ok(())
        })?;
        self.emit_word("end");
        Ok(())
    }

    /// Test `value` (a Lua name or index expression without effects) against
    /// `pattern`, opening `if`s and binding locals as needed.
    fn pattern(&mut self, pattern: &Form, value: &str, clause: &mut Clause) -> Result<()> {
        let line = self.line(pattern.span);
        match &pattern.kind {
            FormKind::Sym(name) if name == "_" => Ok(()),
            FormKind::Sym(name) => self.symbol_pattern(pattern, name, value, clause),
            FormKind::Nil => self.test(line, &format!("{value} == nil"), clause),
            FormKind::Bool(_) | FormKind::Int(_) | FormKind::Float(_) | FormKind::Str(_) => {
                let literal = self.expr(pattern)?;
                self.test(line, &format!("{value} == {}", literal.code), clause)
            }
            FormKind::Seq(items) => {
                let type_fn = self.type_fn();
                self.test(line, &format!("{type_fn}({value}) == \"table\""), clause)?;
                let mut index = 1;
                let mut i = 0;
                while i < items.len() {
                    let item = &items[i];
                    if item.is_sym("&") || item.is_sym("&as") {
                        let Some(target) = items.get(i + 1) else {
                            return Err(self.error(item.span, "expected a pattern after this"));
                        };
                        let whole = if item.is_sym("&") {
                            let unpack = self.unpack_fn();
                            let temp = self.scope.temp("rest");
                            self.emit(line, &format!("local {temp} = {{{unpack}({value}, {index})}}"));
                            temp
                        } else {
                            value.to_string()
                        };
                        self.pattern(target, &whole, clause)?;
                        i += 2;
                        continue;
                    }
                    let element = format!("{value}[{index}]");
                    self.sub_pattern(item, &element, clause)?;
                    index += 1;
                    i += 1;
                }
                Ok(())
            }
            FormKind::Table(pairs) => {
                let type_fn = self.type_fn();
                self.test(line, &format!("{type_fn}({value}) == \"table\""), clause)?;
                for (key, target) in pairs {
                    if key.is_sym("&as") {
                        self.pattern(target, value, clause)?;
                        continue;
                    }
                    let element = match &key.kind {
                        FormKind::Str(bytes) => emit::index_by_string(value, bytes),
                        FormKind::Int(_) | FormKind::Float(_) | FormKind::Bool(_) => {
                            format!("{value}[{}]", self.expr(key)?.code)
                        }
                        _ => return Err(self.error(key.span, "expected a literal key in a table pattern")),
                    };
                    self.sub_pattern(target, &element, clause)?;
                }
                Ok(())
            }
            FormKind::List(items) => match items.as_slice() {
                [head, pinned] if head.is_sym("=") => {
                    let expected = self.expr(pinned)?;
                    self.test(line, &format!("{value} == {}", expected.code), clause)
                }
                _ => Err(self.error(
                    pattern.span,
                    "unexpected list in pattern: only (where …), (or …), (= name) and multiple values at the top",
                )),
            },
        }
    }

    /// A nested pattern: tables get their own local so the tests below read it once.
    fn sub_pattern(&mut self, pattern: &Form, element: &str, clause: &mut Clause) -> Result<()> {
        match &pattern.kind {
            FormKind::Seq(_) | FormKind::Table(_) => {
                let temp = self.scope.temp("m");
                self.emit(self.line(pattern.span), &format!("local {temp} = {element}"));
                self.pattern(pattern, &temp, clause)
            }
            _ => self.pattern(pattern, element, clause),
        }
    }

    fn symbol_pattern(&mut self, at: &Form, name: &str, value: &str, clause: &mut Clause) -> Result<()> {
        let line = self.line(at.span);
        if let Some(lua) = clause.bound.get(name) {
            let test = format!("{value} == {lua}");
            return self.test(line, &test, clause);
        }
        let plain = !name.contains(['.', ':']);
        if clause.pins && (!plain || self.scope.lookup(name).is_some()) {
            let expected = self.expr(at)?;
            return self.test(line, &format!("{value} == {}", expected.code), clause);
        }
        self.check_binding_name(name, at)?;
        if !name.starts_with('_') && !name.starts_with('?') {
            self.test(line, &format!("{value} ~= nil"), clause)?;
        }
        let lua = self.scope.declare(name, false);
        self.emit(line, &format!("local {lua} = {value}"));
        clause.bound.insert(name.to_string(), lua);
        Ok(())
    }

    fn test(&mut self, line: usize, condition: &str, clause: &mut Clause) -> Result<()> {
        self.emit(line, &format!("if {condition} then"));
        clause.depth += 1;
        Ok(())
    }
}

/// `(= name)`: compare with an existing value (a pin).
fn is_pin(pattern: &Form) -> bool {
    matches!(pattern.as_list(), Some([head, _]) if head.is_sym("="))
}

/// How many values a top-level pattern looks at.
fn value_count(pattern: &Form) -> usize {
    match pattern.as_list() {
        Some(items) if !is_pin(pattern) => items.len(),
        _ => 1,
    }
}
