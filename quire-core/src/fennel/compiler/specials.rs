//! Special forms: the built-in operators, bindings, functions and branches.
//! Loops live in `iter`, `match`/`case` and `case-try`/`match-try` in
//! `patterns`, form-rewriting macros (`->`, `doto`, `partial`, hashfns) in
//! `macros`.

use super::destructure::Binding;
use super::emit;
use super::{Compiler, Dest, Expr, Form, FormKind, Kind, Result, join_exprs, split_method, split_multisym};

/// Every name the compiler handles itself (no local may take one, see [`is_reserved`]).
pub(super) const SPECIALS: &[&str] = &[
    "fn",
    "lambda",
    "λ",
    "hashfn",
    "let",
    "local",
    "var",
    "set",
    "tset",
    "if",
    "when",
    "do",
    "each",
    "for",
    "while",
    "collect",
    "icollect",
    "accumulate",
    "fcollect",
    "faccumulate",
    "values",
    "pick-values",
    ".",
    "?.",
    ":",
    "..",
    "and",
    "or",
    "not",
    "=",
    "not=",
    "~=",
    "<",
    ">",
    "<=",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "^",
    "length",
    "#",
    "band",
    "bor",
    "bxor",
    "bnot",
    "lshift",
    "rshift",
    "match",
    "case",
    "match-try",
    "case-try",
    "tail!",
    "->",
    "->>",
    "-?>",
    "-?>>",
    "doto",
    "partial",
    "comment",
    "quote",
    "macro",
    "macros",
    "import-macros",
    "require-macros",
    "eval-compiler",
    "macrodebug",
    "unquote",
];

pub(super) fn is_special(name: &str) -> bool {
    SPECIALS.contains(&name)
}

/// Fennel's other special forms and built-in macros, which this compiler
/// does not implement: no local may take their names either, as in Fennel.
const OTHER_FENNEL_FORMS: &[&str] = &[
    "lua",
    "doc",
    "global",
    "set-forcibly!",
    "include",
    "with-open",
    "assert-repl",
];

/// Whether `name` is a special form or built-in macro of Fennel, a name no
/// local may take ("local when was overshadowed by a special form or macro").
pub(super) fn is_reserved(name: &str) -> bool {
    is_special(name) || OTHER_FENNEL_FORMS.contains(&name)
}

/// Lua operators of the arithmetic and bitwise specials, with the value of the
/// empty call and whether one operand means `identity op x`.
struct Arith {
    op: &'static str,
    empty: Option<&'static str>,
    /// For one operand: `Some(x)` means `x op operand`, `None` means the operand itself.
    unary_left: Option<&'static str>,
}

fn arith(name: &str) -> Option<Arith> {
    let (op, empty, unary_left) = match name {
        "+" => ("+", Some("0"), None),
        "*" => ("*", Some("1"), None),
        "-" => ("-", Some("0"), Some("")),
        "/" => ("/", None, Some("1")),
        "//" => ("//", None, Some("1")),
        "%" => ("%", None, None),
        "^" => ("^", None, None),
        "band" => ("&", Some("-1"), None),
        "bor" => ("|", Some("0"), None),
        "bxor" => ("~", Some("0"), None),
        "lshift" => ("<<", None, None),
        "rshift" => (">>", None, None),
        _ => return None,
    };
    Some(Arith { op, empty, unary_left })
}

impl Compiler<'_> {
    /// Compile `form` if its head names a special form; `None` if it doesn't.
    pub(super) fn special(&mut self, name: &str, form: &Form, args: &[Form], dest: &Dest) -> Result<Option<Vec<Expr>>> {
        let line = self.line(form.span);
        let result = match name {
            "fn" => self.function(form, args, dest, false)?,
            "lambda" | "λ" => self.function(form, args, dest, true)?,
            "hashfn" => self.hashfn(form, args, dest)?,
            "let" => self.let_form(form, args, dest)?,
            "local" | "var" => self.local_form(form, args, dest, name == "var")?,
            "set" => self.set_form(form, args, dest)?,
            "tset" => self.tset(form, args, dest)?,
            "if" => self.if_form(form, args, dest)?,
            "when" => self.when_form(form, args, dest)?,
            "do" if args.len() == 1 && !declares_local(&args[0]) => self.compile(&args[0], dest)?,
            "do" => self.statement_value(form, dest, |c, dest| {
                c.emit(line, "do");
                c.in_block(|c| c.body(args, dest))?;
                c.emit_word("end");
                Ok(())
            })?,
            "each" => self.each(form, args, dest)?,
            "for" => self.numeric_for(form, args, dest)?,
            "while" => self.while_form(form, args, dest)?,
            "collect" | "icollect" => self.collect(form, args, dest, name == "icollect")?,
            "fcollect" => self.fcollect(form, args, dest)?,
            "accumulate" => self.accumulate(form, args, dest)?,
            "faccumulate" => self.faccumulate(form, args, dest)?,
            "values" => {
                let exprs = self.exprs_in_order(args, true)?;
                self.deliver(exprs, dest, Some(line))
            }
            "pick-values" => self.pick_values(form, args, dest)?,
            "." => {
                let expr = self.dot(form, args)?;
                self.deliver(vec![expr], dest, Some(line))
            }
            "?." => self.safe_dot(form, args, dest)?,
            ":" => {
                let [object, method, rest @ ..] = args else {
                    return Err(self.error(
                        form.span,
                        "expected an object and a method name: (: obj :method args...)",
                    ));
                };
                let call = self.method_call(form, object, method, rest)?;
                self.deliver(vec![call], dest, Some(line))
            }
            ".." => {
                let expr = match args {
                    [] => Expr::new("\"\"", Kind::Literal),
                    _ => self.operator_chain(args, "..")?,
                };
                self.deliver(vec![expr], dest, Some(line))
            }
            "and" | "or" => self.and_or(form, args, dest, name)?,
            "not" => {
                let [operand] = args else {
                    return Err(self.error(form.span, "expected one argument: (not x)"));
                };
                let e = self.expr(operand)?;
                self.deliver(
                    vec![Expr::new(format!("(not {})", e.code), Kind::Paren)],
                    dest,
                    Some(line),
                )
            }
            "=" | "not=" | "~=" | "<" | ">" | "<=" | ">=" => {
                let expr = self.comparison(form, args, name)?;
                self.deliver(vec![expr], dest, Some(line))
            }
            "length" | "#" => {
                let [operand] = args else {
                    return Err(self.error(form.span, format!("expected one argument: ({name} x)")));
                };
                let e = self.expr(operand)?;
                self.deliver(
                    vec![Expr::new(format!("(#{})", e.prefix()), Kind::Paren)],
                    dest,
                    Some(line),
                )
            }
            "bnot" => {
                let [operand] = args else {
                    return Err(self.error(form.span, "expected one argument: (bnot x)"));
                };
                let e = self.expr(operand)?;
                self.deliver(
                    vec![Expr::new(format!("(~ {})", e.code), Kind::Paren)],
                    dest,
                    Some(line),
                )
            }
            "match" | "case" => self.match_form(form, args, dest, name == "match")?,
            "match-try" | "case-try" => self.match_try(form, args, dest, name == "match-try")?,
            "tail!" => self.tail_call(form, args, dest)?,
            "->" | "->>" | "-?>" | "-?>>" => {
                let expanded = self.thread(form, args, name)?;
                self.compile(&expanded, dest)?
            }
            "doto" => {
                let expanded = self.doto(form, args)?;
                self.compile(&expanded, dest)?
            }
            "partial" => {
                let expanded = self.partial(form, args)?;
                self.compile(&expanded, dest)?
            }
            "comment" => self.deliver(vec![Expr::nil()], dest, None),
            "quote" => {
                let [quoted] = args else {
                    return Err(self.error(form.span, "expected one form to quote"));
                };
                let expr = self.quoted(quoted)?;
                self.deliver(vec![expr], dest, Some(line))
            }
            "macro" | "macros" | "import-macros" | "require-macros" | "eval-compiler" | "macrodebug" => {
                return Err(self.error(form.span, format!("user macros are not supported yet ({name})")));
            }
            "unquote" => {
                return Err(self.error(form.span, "unquote (,) is only allowed inside a quasiquote"));
            }
            _ => {
                let Some(op) = arith(name) else {
                    return Ok(None);
                };
                let expr = self.arithmetic(form, args, name, &op)?;
                self.deliver(vec![expr], dest, Some(line))
            }
        };
        Ok(Some(result))
    }

    /// `(tail! (f x))`: the call, which must be a tail call of the program.
    fn tail_call(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let [arg] = args else {
            return Err(self.error(form.span, "expected one argument: (tail! (f ...))"));
        };
        // `->` and `->>` are macros in Fennel: what they expand to is what counts.
        let mut call = arg.clone();
        while let Some([head, rest @ ..]) = call.as_list()
            && let Some(name @ ("->" | "->>")) = head.as_sym()
            && self.scope.lookup(name).is_none()
        {
            call = self.thread(&call, rest, name)?;
        }
        let is_call = match call.as_list() {
            Some([head, ..]) => match head.as_sym() {
                Some(name) => !is_special(name) || self.scope.lookup(name).is_some(),
                None => true,
            },
            _ => false,
        };
        if !is_call {
            return Err(self.error(form.span, "expected a function call as the argument of tail!"));
        }
        if !self.in_tail_position(dest) {
            return Err(self.error(form.span, "tail! must be in tail position"));
        }
        self.compile(&call, dest)
    }

    // ---- operators ---------------------------------------------------------

    /// `(a op b op c)` with every operand evaluated once, left to right.
    fn operator_chain(&mut self, args: &[Form], op: &str) -> Result<Expr> {
        let exprs = self.exprs_in_order(args, false)?;
        let parts: Vec<String> = exprs.iter().map(|e| e.code.clone()).collect();
        Ok(Expr::new(format!("({})", parts.join(&format!(" {op} "))), Kind::Paren))
    }

    fn arithmetic(&mut self, form: &Form, args: &[Form], name: &str, op: &Arith) -> Result<Expr> {
        match args {
            [] => match op.empty {
                Some(value) => Ok(Expr::new(value, Kind::Literal)),
                None => Err(self.error(form.span, format!("expected at least one argument to {name}"))),
            },
            [operand] => {
                let e = self.expr(operand)?;
                match (op.unary_left, name) {
                    (Some(""), _) => Ok(Expr::new(format!("(- {})", e.code), Kind::Paren)),
                    (Some(left), _) => Ok(Expr::new(format!("({left} {} {})", op.op, e.code), Kind::Paren)),
                    (None, "%" | "^" | "lshift" | "rshift") => {
                        Err(self.error(form.span, format!("expected at least two arguments to {name}")))
                    }
                    (None, _) => Ok(Expr::new(format!("({})", e.code), Kind::Paren)),
                }
            }
            _ => self.operator_chain(args, op.op),
        }
    }

    /// `(< a b c)` is `a < b and b < c`, with `b` evaluated once.
    fn comparison(&mut self, form: &Form, args: &[Form], name: &str) -> Result<Expr> {
        let op = match name {
            "=" => "==",
            "not=" | "~=" => "~=",
            other => other,
        };
        if args.is_empty() {
            return Err(self.error(form.span, format!("expected at least one argument to {name}")));
        }
        let mut exprs = self.exprs_in_order(args, false)?;
        if exprs.len() == 1 {
            // Fennel: a single operand compares true (but is still evaluated).
            let line = self.line(form.span);
            self.deliver(exprs, &Dest::Discard, Some(line));
            return Ok(Expr::new("true", Kind::Literal));
        }
        if exprs.len() > 2 {
            let line = self.line(form.span);
            let last = exprs.len() - 1;
            for e in &mut exprs[1..last] {
                *e = self.once(line, e.clone(), "cmp");
            }
        }
        let (op, negate) = if op == "~=" && exprs.len() > 2 {
            ("==", true)
        } else {
            (op, false)
        };
        let tests: Vec<String> = exprs
            .windows(2)
            .map(|pair| format!("({} {op} {})", pair[0].code, pair[1].code))
            .collect();
        let joined = tests.join(" and ");
        let code = if negate {
            format!("(not ({joined}))")
        } else if tests.len() == 1 {
            joined
        } else {
            format!("({joined})")
        };
        Ok(Expr::new(code, Kind::Paren))
    }

    /// `and`/`or` short-circuit: when a later operand needs statements, fall
    /// back to a temporary and nested `if`s.
    fn and_or(&mut self, form: &Form, args: &[Form], dest: &Dest, op: &str) -> Result<Vec<Expr>> {
        let line = self.line(form.span);
        if args.is_empty() {
            let value = if op == "and" { "true" } else { "false" };
            return Ok(self.deliver(vec![Expr::new(value, Kind::Literal)], dest, Some(line)));
        }
        let mut compiled = Vec::with_capacity(args.len());
        for arg in args {
            compiled.push(self.capture(|c| c.expr(arg))?);
        }
        let (first, first_pre) = compiled.remove(0);
        self.out.push_str(&first_pre);
        if compiled.iter().all(|(_, pre)| pre.is_empty()) {
            let code = std::iter::once(first.code.clone())
                .chain(compiled.iter().map(|(e, _)| e.code.clone()))
                .collect::<Vec<_>>()
                .join(&format!(" {op} "));
            let expr = if args.len() == 1 {
                first
            } else {
                Expr::new(format!("({code})"), Kind::Paren)
            };
            return Ok(self.deliver(vec![expr], dest, Some(line)));
        }
        // A later operand needs statements: evaluate it only when reached.
        let result = self.scope.temp("v");
        self.emit(line, &format!("local {result} = {}", first.code));
        let test = if op == "and" {
            result.clone()
        } else {
            format!("not {result}")
        };
        for ((e, pre), arg) in compiled.iter().zip(&args[1..]) {
            self.emit(self.line(arg.span), &format!("if {test} then"));
            self.out.push_str(pre);
            self.emit(self.line(arg.span), &format!("{result} = {}", e.code));
        }
        for _ in 1..args.len() {
            self.emit_word("end");
        }
        Ok(self.deliver(vec![Expr::name(result)], dest, Some(line)))
    }

    // ---- tables --------------------------------------------------------------

    /// `(. t k1 k2 …)`.
    fn dot(&mut self, form: &Form, args: &[Form]) -> Result<Expr> {
        if args.is_empty() {
            return Err(self.error(form.span, "expected a table and keys: (. t k ...)"));
        }
        let exprs = self.exprs_in_order(args, false)?;
        let mut iter = exprs.into_iter();
        let mut result = iter.next().unwrap_or_else(Expr::nil);
        for (key, key_form) in iter.zip(&args[1..]) {
            result = Expr::new(index_code(&result.prefix(), &key, key_form), Kind::Index);
        }
        Ok(result)
    }

    /// `(?. t k1 k2 …)`: stops at the first nil.
    fn safe_dot(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((table, keys)) = args.split_first() else {
            return Err(self.error(form.span, "expected a table and keys: (?. t k ...)"));
        };
        let line = self.line(form.span);
        let start = self.expr(table)?;
        let result = self.scope.temp("v");
        self.emit(line, &format!("local {result} = {}", start.code));
        for key_form in keys {
            let key = self.expr(key_form)?;
            let index = index_code(&result, &key, key_form);
            self.emit(
                self.line(key_form.span),
                &format!("if {result} ~= nil then {result} = {index} end"),
            );
        }
        Ok(self.deliver(vec![Expr::name(result)], dest, Some(line)))
    }

    fn tset(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        if args.len() < 3 {
            return Err(self.error(form.span, "expected a table, keys and a value: (tset t k v)"));
        }
        let line = self.line(form.span);
        let exprs = self.exprs_in_order(args, false)?;
        // One expression per argument, so there are at least three.
        let Some((value, [table, keys @ ..])) = exprs.split_last() else {
            return Err(self.error(form.span, "expected a table, keys and a value: (tset t k v)"));
        };
        let mut target = table.prefix();
        for (key, key_form) in keys.iter().zip(&args[1..]) {
            target = index_code(&target, key, key_form);
        }
        self.emit(line, &format!("{target} = {}", value.code));
        Ok(self.deliver_nil_after_statement(dest, line))
    }

    /// Statement forms that have no value: `nil` for whoever wants one (in
    /// tail position they return nothing, like a Lua function falling off its end).
    pub(super) fn deliver_nil_after_statement(&mut self, dest: &Dest, line: usize) -> Vec<Expr> {
        match dest {
            Dest::Discard | Dest::Return => Vec::new(),
            _ => self.deliver(vec![Expr::nil()], dest, Some(line)),
        }
    }

    fn pick_values(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((count, rest)) = args.split_first() else {
            return Err(self.error(form.span, "expected a count and values: (pick-values n ...)"));
        };
        let FormKind::Int(n @ 0..=200) = count.kind else {
            return Err(self.error(count.span, "expected a literal count from 0 to 200"));
        };
        let line = self.line(form.span);
        let exprs = self.exprs_in_order(rest, true)?;
        if n == 0 {
            self.deliver(exprs, &Dest::Discard, Some(line));
            return Ok(self.deliver(Vec::new(), dest, Some(line)));
        }
        let names: Vec<String> = (0..n).map(|_| self.scope.temp("pick")).collect();
        let values = if exprs.is_empty() {
            "nil".to_string()
        } else {
            join_exprs(&exprs)
        };
        self.emit(line, &format!("local {} = {values}", names.join(", ")));
        Ok(self.deliver(names.into_iter().map(Expr::name).collect(), dest, Some(line)))
    }

    fn quoted(&mut self, form: &Form) -> Result<Expr> {
        match &form.kind {
            FormKind::Sym(_) | FormKind::List(_) => Err(self.error(
                form.span,
                "quoting symbols and lists needs macros, which are not supported yet",
            )),
            FormKind::Seq(items) => {
                let parts = items
                    .iter()
                    .map(|i| self.quoted(i).map(|e| e.code))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Expr::new(format!("{{{}}}", parts.join(", ")), Kind::Constructor))
            }
            FormKind::Table(pairs) => {
                let mut parts = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (self.quoted(k)?, self.quoted(v)?);
                    parts.push(format!("[{}] = {}", k.code, v.code));
                }
                Ok(Expr::new(format!("{{{}}}", parts.join(", ")), Kind::Constructor))
            }
            _ => self.expr(form),
        }
    }

    // ---- branches --------------------------------------------------------------

    fn if_form(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        if args.is_empty() {
            return Err(self.error(form.span, "expected a condition and a body: (if cond then else)"));
        }
        self.statement_value(form, dest, |c, dest| c.if_chain(form, args, dest))
    }

    fn when_form(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((condition, body)) = args.split_first() else {
            return Err(self.error(form.span, "expected a condition and a body: (when cond ...)"));
        };
        self.statement_value(form, dest, |c, dest| {
            let line = c.line(form.span);
            let test = c.expr(condition)?;
            c.emit(line, &format!("if {} then", test.code));
            c.in_block(|c| c.body(body, dest))?;
            if *dest != Dest::Discard {
                c.emit_word("else");
                c.deliver(vec![Expr::nil()], dest, None);
            }
            c.emit_word("end");
            Ok(())
        })
    }

    /// `if c1 then … elseif c2 then … else … end`; a condition that needs
    /// statements first opens a nested `if` in the `else` branch instead.
    fn if_chain(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<()> {
        let mut closers = 1;
        let mut first = true;
        let mut rest = args;
        loop {
            match rest {
                [condition, then, more @ ..] => {
                    let (test, pre) = self.capture(|c| c.expr(condition))?;
                    let line = if first {
                        self.line(form.span)
                    } else {
                        self.line(condition.span)
                    };
                    if first {
                        self.out.push_str(&pre);
                        self.emit(line, &format!("if {} then", test.code));
                    } else if pre.is_empty() {
                        self.emit(line, &format!("elseif {} then", test.code));
                    } else {
                        self.emit_word("else");
                        self.out.push_str(&pre);
                        self.emit(line, &format!("if {} then", test.code));
                        closers += 1;
                    }
                    first = false;
                    self.in_block(|c| c.body(std::slice::from_ref(then), dest))?;
                    rest = more;
                }
                [otherwise] => {
                    if first {
                        // `(if x)`: just the value of x.
                        self.statement(otherwise, dest)?;
                        return Ok(());
                    }
                    self.emit_word("else");
                    self.in_block(|c| c.body(std::slice::from_ref(otherwise), dest))?;
                    break;
                }
                [] => {
                    if *dest != Dest::Discard {
                        self.emit_word("else");
                        self.deliver(vec![Expr::nil()], dest, None);
                    }
                    break;
                }
            }
        }
        for _ in 0..closers {
            self.emit_word("end");
        }
        Ok(())
    }

    // ---- bindings --------------------------------------------------------------

    fn let_form(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((bindings, body)) = args.split_first() else {
            return Err(self.error(
                form.span,
                "expected a binding sequence and a body: (let [name value] ...)",
            ));
        };
        let FormKind::Seq(pairs) = &bindings.kind else {
            return Err(self.error(bindings.span, "expected a binding sequence: (let [name value] ...)"));
        };
        if pairs.len() % 2 != 0 {
            return Err(self.error(bindings.span, "expected an even number of forms: names and values"));
        }
        let line = self.line(form.span);
        self.statement_value(form, dest, |c, dest| {
            c.emit(line, "do");
            c.in_block(|c| {
                for pair in pairs.chunks(2) {
                    c.bind_local(&pair[0], &pair[1], Binding::Local { mutable: false })?;
                }
                c.body(body, dest)
            })?;
            c.emit_word("end");
            Ok(())
        })
    }

    fn local_form(&mut self, form: &Form, args: &[Form], dest: &Dest, mutable: bool) -> Result<Vec<Expr>> {
        if matches!(dest, Dest::Values(_) | Dest::Assign(_)) {
            return Err(self.error(form.span, "can't introduce local here"));
        }
        let [pattern, value] = args else {
            return Err(self.error(form.span, "expected a name and a value"));
        };
        self.bind_local(pattern, value, Binding::Local { mutable })?;
        Ok(Vec::new())
    }

    fn set_form(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let [target, value] = args else {
            return Err(self.error(form.span, "expected a target and a value: (set name value)"));
        };
        let line = self.line(form.span);
        match &target.kind {
            FormKind::Sym(name) if split_multisym(name).is_none() && split_method(name).is_none() => {
                let lua = self.settable_local(name, target)?;
                self.compile(value, &Dest::Assign(vec![lua]))?;
            }
            FormKind::Sym(_) => {
                let place = self.expr(target)?;
                let value = self.expr(value)?;
                self.emit(line, &format!("{} = {}", place.code, value.code));
            }
            FormKind::List(items) if items.first().is_some_and(|h| h.is_sym(".")) => {
                let place = self.dot(target, &items[1..])?;
                if place.kind != Kind::Index {
                    return Err(self.error(target.span, "expected a table and keys: (set (. t k) v)"));
                }
                let value = self.expr(value)?;
                self.emit(line, &format!("{} = {}", place.code, value.code));
            }
            _ => self.bind_local(target, value, Binding::Set)?,
        }
        Ok(self.deliver_nil_after_statement(dest, line))
    }

    /// The Lua name of a `var` that `set` may assign.
    pub(super) fn settable_local(&mut self, name: &str, at: &Form) -> Result<String> {
        match self.scope.lookup(name) {
            Some(local) if local.mutable => Ok(local.lua.clone()),
            Some(_) => Err(self.error(at.span, format!("expected var {name}"))),
            None => Err(self.error(at.span, format!("expected local {name}"))),
        }
    }
}

/// Whether `form` introduces a local into the scope it is compiled in.
fn declares_local(form: &Form) -> bool {
    match form.as_list() {
        Some([head, ..]) => matches!(head.as_sym(), Some("local" | "var" | "fn" | "lambda" | "λ")),
        _ => false,
    }
}

/// `base.key` or `base[key]` for an index expression.
fn index_code(base: &str, key: &Expr, key_form: &Form) -> String {
    match &key_form.kind {
        FormKind::Str(bytes) => emit::index_by_string(base, bytes),
        _ => format!("{base}[{}]", key.code),
    }
}
