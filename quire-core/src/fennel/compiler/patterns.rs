//! `match` and `case`: pattern matching; `case-try` and `match-try`, chains
//! of them.
//!
//! Each clause becomes a `do … end` block of nested `if`s: a test, then the
//! locals it lets the next test and the body see, and so on. A clause whose
//! body ran jumps past the others with `goto` (or returns, in tail position).
//! `(where (or p1 p2) guard)` is compiled as one clause per alternative.
//!
//! Symbols bind the value and refuse `nil` (unless `_x` / `?x`); a symbol
//! seen earlier in the same pattern must be equal to it; in `match` (not
//! `case`) a symbol that is already a local is compared, not bound.
//!
//! A `case-try` step is such a match, whose matching clause holds the next
//! step and whose other clauses are the `catch` clauses. Without a `catch`, a
//! failed step's values are the result, all of them: when there may be more
//! than a pattern looks at (a call), they are kept in a `table.pack`.

use std::collections::HashMap;

use super::emit;
use super::{Compiler, Dest, Expr, Form, FormKind, Kind, Result, join_exprs};

/// What is known while compiling one clause.
struct Clause {
    /// `match` pins existing locals; `case` doesn't.
    pins: bool,
    /// Fennel names bound so far in this clause -> Lua names.
    bound: HashMap<String, String>,
    /// Open `if`s to close.
    depth: usize,
}

/// What runs when a clause's pattern matches.
#[derive(Clone, Copy)]
enum Then<'f> {
    /// A body form: its values are the result.
    Body(&'f Form),
    /// The rest of a `case-try` / `match-try` chain: `value` is matched
    /// against `steps` (pattern/body pairs), failures go to `catch`.
    Steps {
        value: &'f Form,
        steps: &'f [Form],
        catch: Option<&'f [Form]>,
    },
}

/// What a match yields when no clause matches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Otherwise {
    /// `nil`.
    Nil,
    /// The values that were matched, all of them, unchanged.
    Values,
}

/// A clause after `(or …)` expansion: one alternative, its guards, what runs.
type Arm<'f> = (&'f Form, &'f [Form], Then<'f>);

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
        let mut arms = Vec::new();
        for clause in clauses.chunks(2) {
            self.add_arms(&mut arms, &clause[0], Then::Body(&clause[1]))?;
        }
        let line = self.line(form.span);
        self.statement_value(form, dest, |c, dest| {
            let values = c.exprs(value)?;
            c.match_values(line, values, &arms, Otherwise::Nil, dest, pins)
        })
    }

    /// `(case-try x pattern body … (catch pattern body …))` and `match-try`:
    /// each body runs when the value before it matches its pattern, with the
    /// pattern's locals in scope; the last body's values are the result. The
    /// first value(s) that fail to match go to the `catch` clauses (nil when
    /// none matches), or, without a `catch`, are the result as they are.
    ///
    /// Each step is a match whose matching clause holds the next step, and
    /// whose other clauses are the `catch` clauses, compiled where that step
    /// is (as Fennel expands it): what a catch sees is what the failed step saw.
    pub(super) fn match_try(&mut self, form: &Form, args: &[Form], dest: &Dest, pins: bool) -> Result<Vec<Expr>> {
        let what = if pins { "match-try" } else { "case-try" };
        let Some((value, rest)) = args.split_first() else {
            return Err(self.error(
                form.span,
                format!(
                    "expected a value and pattern/body pairs: ({what} x pattern body ... (catch pattern body ...))"
                ),
            ));
        };
        let (steps, catch) = match rest.split_last() {
            Some((last, steps)) if is_catch(last) => {
                let clauses = last.as_list().map(|items| &items[1..]).unwrap_or_default();
                if clauses.len() % 2 != 0 {
                    let pattern = clauses.last().unwrap_or(last);
                    return Err(self.error(pattern.span, "expected every catch pattern to have a body"));
                }
                (steps, Some(clauses))
            }
            _ => (rest, None),
        };
        if steps.len() % 2 != 0 {
            let pattern = steps.last().unwrap_or(form);
            return Err(self.error(pattern.span, "expected every pattern to have a body"));
        }
        if steps.is_empty() {
            // Nothing to match: the value is the result (the catch never runs).
            return self.compile(value, dest);
        }
        let line = self.line(form.span);
        self.statement_value(form, dest, |c, dest| c.try_step(line, value, steps, catch, dest, pins))
    }

    /// One step of a `case-try`: match the values of `value` against the first
    /// pattern of `steps`, its statements starting on `line`; on a match, go
    /// on with the next step.
    fn try_step(
        &mut self,
        line: usize,
        value: &Form,
        steps: &[Form],
        catch: Option<&[Form]>,
        dest: &Dest,
        pins: bool,
    ) -> Result<()> {
        // Each step nests the next one: count it, so a long chain is bounded too.
        self.nested(value.span, |c| c.try_step_inner(line, value, steps, catch, dest, pins))
    }

    fn try_step_inner(
        &mut self,
        line: usize,
        value: &Form,
        steps: &[Form],
        catch: Option<&[Form]>,
        dest: &Dest,
        pins: bool,
    ) -> Result<()> {
        let [pattern, body, rest @ ..] = steps else {
            return Ok(());
        };
        let then = if rest.is_empty() {
            Then::Body(body)
        } else {
            Then::Steps {
                value: body,
                steps: rest,
                catch,
            }
        };
        let mut arms = Vec::new();
        self.add_arms(&mut arms, pattern, then)?;
        for clause in catch.unwrap_or_default().chunks(2) {
            self.add_arms(&mut arms, &clause[0], Then::Body(&clause[1]))?;
        }
        let otherwise = if catch.is_some() {
            Otherwise::Nil
        } else {
            Otherwise::Values
        };
        let values = self.exprs(value)?;
        self.match_values(line, values, &arms, otherwise, dest, pins)
    }

    /// Add the arms of one clause: one per `(or …)` alternative.
    fn add_arms<'f>(&self, arms: &mut Vec<Arm<'f>>, pattern: &'f Form, then: Then<'f>) -> Result<()> {
        let (alternatives, guards) = self.alternatives(pattern)?;
        for alternative in alternatives {
            arms.push((alternative, guards, then));
        }
        Ok(())
    }

    /// Match `values` against the arms, in a `do … end` block, delivering to a
    /// statement destination.
    fn match_values(
        &mut self,
        line: usize,
        values: Vec<Expr>,
        arms: &[Arm<'_>],
        otherwise: Otherwise,
        dest: &Dest,
        pins: bool,
    ) -> Result<()> {
        let count = arms.iter().map(|(p, _, _)| value_count(p)).max().unwrap_or(1).max(1);
        self.emit(line, "do");
        self.in_block(|c| {
            // Without a catch, every value is kept: several when known, all of a call's in a table.
            let keep_all = otherwise == Otherwise::Values;
            let packed = keep_all && values.last().is_some_and(Expr::is_multi);
            let count = if keep_all && !packed {
                count.max(values.len())
            } else {
                count
            };
            let temps: Vec<String> = (0..count).map(|_| c.scope.temp("m")).collect();
            let mut unchanged: Vec<Expr> = temps.iter().take(values.len()).map(|t| Expr::name(t.clone())).collect();
            if packed {
                let pack = c.pack_fn();
                let unpack = c.unpack_fn();
                let table = c.scope.temp("values");
                c.emit(line, &format!("local {table} = {pack}({})", join_exprs(&values)));
                let items: Vec<String> = (1..=count).map(|i| format!("{table}[{i}]")).collect();
                c.emit(line, &format!("local {} = {}", temps.join(", "), items.join(", ")));
                unchanged = vec![Expr::new(format!("{unpack}({table}, 1, {table}.n)"), Kind::Call)];
            } else {
                let init = if values.is_empty() {
                    "nil".to_string()
                } else {
                    join_exprs(&values)
                };
                c.emit(line, &format!("local {} = {init}", temps.join(", ")));
            }
            let label = c.scope.temp("done");
            for (pattern, guards, then) in arms {
                c.match_clause(pattern, guards, *then, &temps, dest, &label, pins)?;
            }
            match (otherwise, dest) {
                (_, Dest::Discard) => {}
                (Otherwise::Nil, _) => {
                    c.deliver(vec![Expr::nil()], dest, None);
                }
                (Otherwise::Values, _) => {
                    c.deliver(unchanged, dest, None);
                }
            }
            if *dest != Dest::Return {
                c.emit_word(&format!("::{label}::"));
            }
            Ok(())
        })?;
        self.emit_word("end");
        Ok(())
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
        then: Then<'_>,
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
            c.in_block(|c| match then {
                Then::Body(body) => c.body(std::slice::from_ref(body), dest).map(drop),
                Then::Steps { value, steps, catch } => c.try_step(c.line(value.span), value, steps, catch, dest, pins),
            })?;
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

/// `(catch pattern body …)`, the last form of a `case-try`.
pub(super) fn is_catch(form: &Form) -> bool {
    form.as_list()
        .and_then(<[Form]>::first)
        .is_some_and(|head| head.is_sym("catch"))
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
