//! Loops: `each`, `for`, `while`, and the loops that build a value:
//! `collect`, `icollect`, `fcollect`, `accumulate`, `faccumulate`.

use super::destructure::Binding;
use super::{Compiler, Dest, Expr, Form, FormKind, Result, join_exprs};

/// The parsed binding sequence of a loop.
struct LoopHead<'f> {
    /// Binding patterns (`each`) or the single counter name (`for`).
    patterns: &'f [Form],
    /// The iterator (`each`) or the range `start stop [step]` (`for`).
    source: &'f [Form],
    until: Option<&'f Form>,
    into: Option<&'f Form>,
}

/// The clauses a loop's bindings may end with.
enum Clause {
    Until,
    Into,
}

/// `&until` / `&into`, or their older spellings `:until` / `:into`, which
/// Fennel still accepts.
fn loop_clause(form: &Form) -> Option<Clause> {
    match &form.kind {
        FormKind::Sym(name) if name == "&until" => Some(Clause::Until),
        FormKind::Sym(name) if name == "&into" => Some(Clause::Into),
        FormKind::Str(bytes) if bytes == b"until" => Some(Clause::Until),
        FormKind::Str(bytes) if bytes == b"into" => Some(Clause::Into),
        _ => None,
    }
}

impl Compiler<'_> {
    /// Split `[pat… iterator &until cond &into tbl]` (`&into` for the
    /// collecting loops only). `counted`: numeric loops have one name and
    /// two or three range forms.
    fn loop_head<'f>(
        &self,
        form: &Form,
        bindings: Option<&'f Form>,
        what: &str,
        counted: bool,
    ) -> Result<LoopHead<'f>> {
        let Some(bindings) = bindings else {
            return Err(self.error(form.span, format!("expected a binding sequence: ({what} [...] ...)")));
        };
        let FormKind::Seq(items) = &bindings.kind else {
            return Err(self.error(
                bindings.span,
                format!("expected a binding sequence: ({what} [...] ...)"),
            ));
        };
        let mut until = None;
        let mut into = None;
        let mut end = items.len();
        // Options come in pairs at the end: `&until cond`, `&into table`.
        while end >= 2 {
            let keyword = &items[end - 2];
            let (slot, name) = match loop_clause(keyword) {
                Some(Clause::Until) => (&mut until, "&until"),
                Some(Clause::Into) if matches!(what, "collect" | "icollect" | "fcollect") => (&mut into, "&into"),
                Some(Clause::Into) => {
                    return Err(self.error(
                        keyword.span,
                        "an &into clause is only for collect, icollect and fcollect",
                    ));
                }
                None => break,
            };
            if slot.is_some() {
                return Err(self.error(keyword.span, format!("expected only one {name} clause")));
            }
            *slot = Some(&items[end - 1]);
            end -= 2;
        }
        let items = &items[..end];
        let (patterns, source) = if counted {
            if !(3..=4).contains(&items.len()) {
                return Err(self.error(
                    bindings.span,
                    format!("expected a name, a start, a stop and maybe a step: ({what} [i 1 10] ...)"),
                ));
            }
            items.split_at(1)
        } else {
            if items.len() < 2 {
                return Err(self.error(
                    bindings.span,
                    format!("expected names and an iterator: ({what} [k v (pairs t)] ...)"),
                ));
            }
            items.split_at(items.len() - 1)
        };
        Ok(LoopHead {
            patterns,
            source,
            until,
            into,
        })
    }

    /// Write `for … do` with the loop variables in a new scope, then `body`, then `end`.
    fn write_loop(
        &mut self,
        form: &Form,
        head: &LoopHead,
        counted: bool,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let line = self.line(form.span);
        let sources = self.exprs_in_order(head.source, !counted)?;
        let sources = join_exprs(&sources);
        self.in_block(|c| {
            let mut names = Vec::new();
            let mut patterns = Vec::new();
            for pattern in head.patterns {
                match &pattern.kind {
                    FormKind::Sym(name) => {
                        c.check_binding_name(name, pattern)?;
                        names.push(c.scope.declare(name, false));
                    }
                    FormKind::Seq(_) | FormKind::Table(_) if !counted => {
                        let temp = c.scope.temp("e");
                        names.push(temp.clone());
                        patterns.push((pattern, temp));
                    }
                    _ => {
                        return Err(c.error(pattern.span, "expected a name or a destructuring pattern"));
                    }
                }
            }
            if counted {
                c.emit(line, &format!("for {} = {sources} do", names.join(", ")));
            } else {
                c.emit(line, &format!("for {} in {sources} do", names.join(", ")));
            }
            for (pattern, temp) in patterns {
                c.bind_pattern(pattern, Expr::name(temp), Binding::Local { mutable: false })?;
            }
            if let Some(until) = head.until {
                let test = c.expr(until)?;
                c.emit(c.line(until.span), &format!("if {} then break end", test.code));
            }
            body(c)?;
            c.emit_word("end");
            Ok(())
        })
    }

    pub(super) fn each(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let head = self.loop_head(form, args.first(), "each", false)?;
        self.write_loop(form, &head, false, |c| c.body_for_effect(&args[1..]))?;
        Ok(self.deliver_nil_after_statement(dest, self.line(form.span)))
    }

    pub(super) fn numeric_for(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let head = self.loop_head(form, args.first(), "for", true)?;
        self.write_loop(form, &head, true, |c| c.body_for_effect(&args[1..]))?;
        Ok(self.deliver_nil_after_statement(dest, self.line(form.span)))
    }

    pub(super) fn while_form(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((condition, body)) = args.split_first() else {
            return Err(self.error(form.span, "expected a condition and a body: (while cond ...)"));
        };
        let line = self.line(form.span);
        let (test, pre) = self.capture(|c| c.in_block(|c| c.expr(condition)))?;
        if pre.is_empty() {
            self.emit(line, &format!("while {} do", test.code));
        } else {
            // The condition needs statements: evaluate it inside the loop.
            self.emit(line, "while true do");
            self.out.push_str(&pre);
            self.emit(line, &format!("if not {} then break end", test.code));
        }
        self.in_block(|c| c.body_for_effect(body))?;
        self.emit_word("end");
        Ok(self.deliver_nil_after_statement(dest, line))
    }

    fn body_for_effect(&mut self, body: &[Form]) -> Result<()> {
        for form in body {
            self.statement(form, &Dest::Discard)?;
        }
        Ok(())
    }

    /// `(icollect [_ x (ipairs xs)] (f x))` -> a sequence of the non-nil values;
    /// `(collect [k v (pairs t)] k2 v2)` -> a table of the non-nil pairs.
    pub(super) fn collect(&mut self, form: &Form, args: &[Form], dest: &Dest, sequence: bool) -> Result<Vec<Expr>> {
        let what = if sequence { "icollect" } else { "collect" };
        let head = self.loop_head(form, args.first(), what, false)?;
        let body = &args[1..];
        self.collect_into(form, &head, body, false, sequence, dest)
    }

    /// `(fcollect [i 1 10] (* i i))`.
    pub(super) fn fcollect(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let head = self.loop_head(form, args.first(), "fcollect", true)?;
        self.collect_into(form, &head, &args[1..], true, true, dest)
    }

    fn collect_into(
        &mut self,
        form: &Form,
        head: &LoopHead,
        body: &[Form],
        counted: bool,
        sequence: bool,
        dest: &Dest,
    ) -> Result<Vec<Expr>> {
        let line = self.line(form.span);
        let initial = match head.into {
            Some(into) => self.expr(into)?,
            None => Expr::new("{}", super::Kind::Constructor),
        };
        let table = self.scope.temp("tbl");
        self.emit(line, &format!("local {table} = {}", initial.code));
        let count = sequence.then(|| self.scope.temp("n"));
        if let Some(count) = &count {
            self.emit(line, &format!("local {count} = #{table}"));
        }
        self.write_loop(form, head, counted, |c| {
            if let Some(count) = &count {
                let value = c.scope.temp("val");
                c.emit(line, &format!("local {value}"));
                c.in_block(|c| c.body(body, &Dest::Assign(vec![value.clone()])))?;
                c.emit(
                    line,
                    &format!("if {value} ~= nil then {count} = {count} + 1 {table}[{count}] = {value} end"),
                );
            } else {
                let key = c.scope.temp("k");
                let value = c.scope.temp("val");
                match body {
                    [k, v] => {
                        let exprs = c.exprs_in_order(&[k.clone(), v.clone()], false)?;
                        c.emit(line, &format!("local {key}, {value} = {}", join_exprs(&exprs)));
                    }
                    _ => {
                        c.emit(line, &format!("local {key}, {value}"));
                        c.in_block(|c| c.body(body, &Dest::Assign(vec![key.clone(), value.clone()])))?;
                    }
                }
                c.emit(
                    line,
                    &format!("if {key} ~= nil and {value} ~= nil then {table}[{key}] = {value} end"),
                );
            }
            Ok(())
        })?;
        Ok(self.deliver(vec![Expr::name(table)], dest, Some(line)))
    }

    /// `(accumulate [acc init k v (pairs t)] body)`: acc takes the body's value each time.
    pub(super) fn accumulate(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        self.accumulate_loop(form, args, dest, false)
    }

    /// `(faccumulate [acc init i 1 10] body)`.
    pub(super) fn faccumulate(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        self.accumulate_loop(form, args, dest, true)
    }

    fn accumulate_loop(&mut self, form: &Form, args: &[Form], dest: &Dest, counted: bool) -> Result<Vec<Expr>> {
        let what = if counted { "faccumulate" } else { "accumulate" };
        let usage = || format!("expected an accumulator, its initial value and a loop: ({what} [acc init ...] ...)");
        let Some(bindings) = args.first() else {
            return Err(self.error(form.span, usage()));
        };
        let FormKind::Seq(items) = &bindings.kind else {
            return Err(self.error(bindings.span, usage()));
        };
        let [acc, init, rest @ ..] = items.as_slice() else {
            return Err(self.error(bindings.span, usage()));
        };
        let Some(acc_name) = acc.as_sym() else {
            return Err(self.error(acc.span, "expected a name for the accumulator"));
        };
        self.check_binding_name(acc_name, acc)?;
        let line = self.line(form.span);
        let initial = self.expr(init)?;
        // The result lives in a temporary; the accumulator's name is visible
        // only inside the loop.
        let result = self.scope.temp("acc");
        self.emit(line, &format!("local {result} = {}", initial.code));
        let loop_bindings = Form::new(FormKind::Seq(rest.to_vec()), bindings.span);
        let head = self.loop_head(form, Some(&loop_bindings), what, counted)?;
        let body = &args[1..];
        self.in_block(|c| {
            c.scope.alias(acc_name, &result);
            c.write_loop(form, &head, counted, |c| {
                c.in_block(|c| c.body(body, &Dest::Assign(vec![result.clone()])))
                    .map(|_| ())
            })
        })?;
        Ok(self.deliver(vec![Expr::name(result)], dest, Some(line)))
    }
}
