//! Built-in macros that rewrite forms before compiling them: the threading
//! macros `->` `->>` `-?>` `-?>>`, `doto` and `partial`.

use super::{Compiler, Form, FormKind, Result, Span};

fn sym(name: &str, span: Span) -> Form {
    Form::new(FormKind::Sym(name.to_string()), span)
}

fn list(items: Vec<Form>, span: Span) -> Form {
    Form::new(FormKind::List(items), span)
}

impl Compiler<'_> {
    /// `(-> x (f a) g)` -> `(g (f x a))`; `->>` puts `x` last; the `?` forms
    /// stop at the first nil.
    pub(super) fn thread(&mut self, form: &Form, args: &[Form], name: &str) -> Result<Form> {
        let Some((first, steps)) = args.split_first() else {
            return Err(self.error(form.span, format!("expected a value to thread: ({name} x ...)")));
        };
        let last = name.ends_with(">>");
        if name.starts_with("-?") {
            return Ok(self.thread_nil_safe(first, steps, last));
        }
        let mut acc = first.clone();
        for step in steps {
            acc = insert_arg(step, acc, last);
        }
        Ok(acc)
    }

    /// `(-?> x f g)` -> `(let [t x] (if (not= t nil) (-?> (f t) g)))`.
    fn thread_nil_safe(&mut self, value: &Form, steps: &[Form], last: bool) -> Form {
        let Some((step, rest)) = steps.split_first() else {
            return value.clone();
        };
        let span = value.span;
        let temp = self.gensym("thread", span);
        let next = insert_arg(step, temp.clone(), last);
        let inner = self.thread_nil_safe(&next, rest, last);
        let test = list(
            vec![sym("not=", span), temp.clone(), Form::new(FormKind::Nil, span)],
            span,
        );
        let body = list(vec![sym("if", span), test, inner], span);
        let bindings = Form::new(FormKind::Seq(vec![temp, value.clone()]), span);
        list(vec![sym("let", span), bindings, body], span)
    }

    /// `(doto x (f a) (g))` -> `(let [t x] (f t a) (g t) t)`.
    pub(super) fn doto(&mut self, form: &Form, args: &[Form]) -> Result<Form> {
        let Some((value, calls)) = args.split_first() else {
            return Err(self.error(form.span, "expected a value: (doto x ...)"));
        };
        let temp = self.gensym("doto", value.span);
        let mut items = vec![
            sym("let", form.span),
            Form::new(FormKind::Seq(vec![temp.clone(), value.clone()]), value.span),
        ];
        items.extend(calls.iter().map(|call| insert_arg(call, temp.clone(), false)));
        items.push(temp);
        Ok(list(items, form.span))
    }

    /// `(partial f a b)` -> `(let [t1 a t2 b] (fn [...] (f t1 t2 ...)))`, so the
    /// arguments are evaluated once, when the partial is made.
    pub(super) fn partial(&mut self, form: &Form, args: &[Form]) -> Result<Form> {
        let Some((function, fixed)) = args.split_first() else {
            return Err(self.error(form.span, "expected a function: (partial f args...)"));
        };
        let span = form.span;
        let mut bindings = Vec::new();
        let mut call = Vec::new();
        for arg in std::iter::once(function).chain(fixed) {
            // Symbols (including operators like `+`) and literals are used as
            // they are; `...` is saved, or it would mean the new function's.
            let stable = matches!(
                arg.kind,
                FormKind::Sym(_)
                    | FormKind::Nil
                    | FormKind::Bool(_)
                    | FormKind::Int(_)
                    | FormKind::Float(_)
                    | FormKind::Str(_)
            );
            if stable && !arg.is_sym("...") {
                call.push(arg.clone());
            } else {
                let temp = self.gensym("partial", arg.span);
                bindings.push(temp.clone());
                bindings.push(arg.clone());
                call.push(temp);
            }
        }
        call.push(sym("...", span));
        let function = list(
            vec![
                sym("fn", span),
                Form::new(FormKind::Seq(vec![sym("...", span)]), span),
                list(call, span),
            ],
            span,
        );
        if bindings.is_empty() {
            return Ok(function);
        }
        Ok(list(
            vec![sym("let", span), Form::new(FormKind::Seq(bindings), span), function],
            span,
        ))
    }
}

/// Put `arg` into `step`: `(f a)` -> `(f arg a)` (or `(f a arg)`), `f` -> `(f arg)`.
fn insert_arg(step: &Form, arg: Form, last: bool) -> Form {
    match &step.kind {
        FormKind::List(items) if !items.is_empty() => {
            let mut items = items.clone();
            if last {
                items.push(arg);
            } else {
                items.insert(1, arg);
            }
            Form::new(FormKind::List(items), step.span)
        }
        _ => Form::new(FormKind::List(vec![step.clone(), arg]), step.span),
    }
}

/// Whether a statement-like form may produce more than one value in tail
/// position (a call, `...` or `values`), so that all of them must be kept.
pub(super) fn may_yield_many(form: &Form) -> bool {
    let FormKind::List(items) = &form.kind else {
        return form.is_sym("...");
    };
    let Some(head) = items.first() else {
        return false;
    };
    let tails: &[Form] = match head.as_sym() {
        Some("values") => return items.len() != 2 || may_yield_many(&items[1]),
        Some("do" | "let" | "when") => items.last().map(std::slice::from_ref).unwrap_or_default(),
        Some("if") => &items[2..],
        Some("match-try" | "case-try") => return try_may_yield_many(&items[1..]),
        Some("match" | "case") => {
            return items
                .get(2..)
                .unwrap_or_default()
                .iter()
                .skip(1)
                .step_by(2)
                .any(may_yield_many);
        }
        Some(
            "fn" | "lambda" | "λ" | "hashfn" | "local" | "var" | "set" | "tset" | "each" | "for" | "while" | "collect"
            | "icollect" | "fcollect" | "accumulate" | "faccumulate" | "." | "?." | ".." | "and" | "or" | "not" | "="
            | "not=" | "~=" | "<" | ">" | "<=" | ">=" | "+" | "-" | "*" | "/" | "//" | "%" | "^" | "length" | "#"
            | "band" | "bor" | "bxor" | "bnot" | "lshift" | "rshift" | "comment" | "quote",
        ) => return false,
        _ => return true,
    };
    // `if`: every other item from the first branch on, plus the else.
    if head.is_sym("if") {
        return tails
            .iter()
            .enumerate()
            .any(|(i, f)| (i % 2 == 0 || i + 1 == tails.len()) && may_yield_many(f));
    }
    tails.iter().any(may_yield_many)
}

/// [`may_yield_many`] for the arguments of `case-try` / `match-try`: the last
/// body, and the catch bodies or (without a catch) every step's value.
fn try_may_yield_many(args: &[Form]) -> bool {
    let (rest, catch) = match args.split_last() {
        Some((last, rest)) if super::patterns::is_catch(last) => (rest, last.as_list().map(|items| &items[1..])),
        _ => (args, None),
    };
    let Some((value, steps)) = rest.split_first() else {
        return false;
    };
    match catch {
        // Each step's value (the first and every body but the last) may be returned.
        None => may_yield_many(value) || steps.iter().skip(1).step_by(2).any(may_yield_many),
        Some(clauses) => {
            steps.last().is_some_and(may_yield_many)
                || steps.is_empty() && may_yield_many(value)
                || clauses.iter().skip(1).step_by(2).any(may_yield_many)
        }
    }
}
