//! The compiler: forms -> Lua 5.4 source text, line-preserving.
//!
//! Every form is compiled towards a `Dest`: discarded (a statement), returned
//! (the tail of a function or chunk), assigned to Lua names, or handed back as
//! Lua expressions. Forms that are statements in Lua (`if`, `let`, loops …)
//! used where a value is wanted write their statements first and hand back a
//! temporary; forms that are expressions in Lua (calls, operators, literals)
//! are delivered to statement destinations by `Compiler::deliver`.
//!
//! Statements carry line markers (see `emit`) that the final pass turns into
//! newlines, so each Lua statement starts on the line of its Fennel form.
//!
//! Layout: this file holds the core (destinations, expressions, calls, tables,
//! symbols); `scope` the locals and name mangling; `emit` Lua literals and line
//! markers; `specials` operators, bindings and branches; `functions` fn/lambda/
//! hashfn; `destructure` binding patterns; `iter` loops; `patterns` match/case
//! and case-try/match-try;
//! `macros` the form-rewriting built-ins (`->`, `doto`, `partial`).

mod destructure;
mod emit;
mod functions;
mod iter;
mod macros;
mod patterns;
mod scope;
mod specials;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use super::error::{FennelError, Stage};
use super::form::{Form, FormKind, Span};
use emit::{first_code_char, line_mark};
use scope::Scope;

/// What the compiled program may see.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Global names the program may reference (strict names: any other global is an error).
    pub allowed_globals: HashSet<String>,
}

/// Compile the top-level forms of one file. The chunk returns the value of the last form.
///
/// The compiler recurses once per nesting level, and a level can take tens of
/// KiB of stack in unoptimised builds, so it runs on its own thread with a
/// generous stack; nesting is also capped (`MAX_NESTING`).
pub fn compile(forms: &[Form], source: &Arc<str>, file: &str, options: &CompileOptions) -> Result<String, FennelError> {
    let run = || {
        let mut compiler = Compiler::new(source, file, options);
        compiler.chunk(forms)?;
        Ok(compiler.finish())
    };
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("fennel-compiler".to_string())
            .stack_size(COMPILER_STACK_BYTES)
            .spawn_scoped(scope, run);
        match thread {
            Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: compile here, with the caller's stack.
            Err(_) => run(),
        }
    })
}

/// Stack for the compiler thread: address space only, pages are used as touched.
const COMPILER_STACK_BYTES: usize = 64 << 20;

type Result<T, E = FennelError> = std::result::Result<T, E>;

/// Where the value(s) of a form go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dest {
    /// Evaluate for effect only.
    Discard,
    /// Tail position: `return` the values.
    Return,
    /// Assign the values to these Lua names (declared already).
    Assign(Vec<String>),
    /// Hand the values back as expressions.
    Values(Want),
}

/// How many values an expression destination takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Only the first value (an operand, a non-last argument).
    One,
    /// All of them (the last argument of a call, the last item of a sequence).
    All,
}

/// A Lua expression and what the compiler needs to know to place it.
#[derive(Debug, Clone)]
struct Expr {
    code: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `nil`, `true`, numbers, strings: no effects, not callable as written.
    Literal,
    /// A local or global name.
    Name,
    /// `t.k`, `t[k]`.
    Index,
    /// `f(x)`, `o:m(x)`: may yield several values; a valid statement.
    Call,
    /// `...`: may yield several values.
    Varargs,
    /// A parenthesised operator expression: one value, indexable as is.
    Paren,
    /// `{…}` or `function … end`: one value, needs parentheses to be indexed or called.
    Constructor,
}

impl Expr {
    fn new(code: impl Into<String>, kind: Kind) -> Self {
        Expr {
            code: code.into(),
            kind,
        }
    }

    fn nil() -> Self {
        Expr::new("nil", Kind::Literal)
    }

    fn name(name: impl Into<String>) -> Self {
        Expr::new(name, Kind::Name)
    }

    /// Safe to evaluate twice or not at all.
    fn is_pure(&self) -> bool {
        matches!(self.kind, Kind::Literal | Kind::Name | Kind::Varargs)
    }

    fn is_multi(&self) -> bool {
        matches!(self.kind, Kind::Call | Kind::Varargs)
    }

    /// The code in a form that can be indexed or called: `x`, `f()`, `(1 + 2)`, `("s")`.
    fn prefix(&self) -> String {
        match self.kind {
            Kind::Name | Kind::Index | Kind::Call | Kind::Paren => self.code.clone(),
            Kind::Literal | Kind::Varargs | Kind::Constructor => format!("({})", self.code),
        }
    }

    /// The code as a single value (parentheses truncate multiple values).
    fn single(&self) -> String {
        if self.is_multi() {
            format!("({})", self.code)
        } else {
            self.code.clone()
        }
    }
}

/// Lua code for a list of expressions, e.g. call arguments.
fn join_exprs(exprs: &[Expr]) -> String {
    exprs.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", ")
}

struct Helper {
    lua_name: String,
    value: &'static str,
    used: bool,
}

/// Library functions generated code uses: (name hint, Lua value).
const HELPERS: &[(&str, &str)] = &[("unpack", "table.unpack"), ("type", "type"), ("pack", "table.pack")];

/// The largest nesting the compiler follows before refusing (keeps recursion bounded).
const MAX_NESTING: usize = 256;

struct Compiler<'a> {
    source: &'a Arc<str>,
    file: &'a str,
    /// Byte offset of the start of each line, for span -> line.
    line_starts: Vec<usize>,
    scope: Scope,
    /// The marked-up code being written (see [`emit`]).
    out: String,
    /// Number of enclosing Lua functions (0: the chunk itself).
    function_depth: usize,
    /// In a function the compiler made to return a statement form's values
    /// (see [`Self::statement_value`]): `Dest::Return` is not the tail of a
    /// function of the program, so `tail!` is refused there.
    in_value_function: bool,
    /// Current recursion depth over nested forms.
    nesting: usize,
    /// Chunk-level aliases of library functions the generated code calls, so
    /// a program's own `table` or `type` can't break it.
    helpers: Vec<Helper>,
    gensyms: usize,
}

impl<'a> Compiler<'a> {
    fn new(source: &'a Arc<str>, file: &'a str, options: &CompileOptions) -> Self {
        let line_starts = std::iter::once(0)
            .chain(
                source
                    .bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let mut scope = Scope::new(options.allowed_globals.clone());
        // Reserved up front so no program name can take them; emitted only if used.
        let helpers = HELPERS
            .iter()
            .map(|&(hint, value)| Helper {
                lua_name: scope.temp(hint),
                value,
                used: false,
            })
            .collect();
        Compiler {
            source,
            file,
            line_starts,
            scope,
            out: String::new(),
            function_depth: 0,
            in_value_function: false,
            nesting: 0,
            helpers,
            gensyms: 0,
        }
    }

    fn chunk(&mut self, forms: &[Form]) -> Result<()> {
        self.body(forms, &Dest::Return)?;
        Ok(())
    }

    fn finish(self) -> String {
        let mut code = self.out;
        let used: Vec<&Helper> = self.helpers.iter().filter(|h| h.used).collect();
        if !used.is_empty() {
            // On line 1, before everything: a program can't shadow `table` yet.
            let names: Vec<&str> = used.iter().map(|h| h.lua_name.as_str()).collect();
            let values: Vec<&str> = used.iter().map(|h| h.value).collect();
            code.insert_str(0, &format!("local {} = {} ", names.join(", "), values.join(", ")));
        }
        emit::resolve_lines(&code)
    }

    // ---- errors and positions ------------------------------------------------

    fn error(&self, span: Span, message: impl Into<String>) -> FennelError {
        FennelError::new(Stage::Compile, message, span, self.file, self.source)
    }

    fn line(&self, span: Span) -> usize {
        match self.line_starts.binary_search(&span.start) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The Lua name of a helper from [`HELPERS`], by index.
    fn helper(&mut self, index: usize) -> String {
        let helper = &mut self.helpers[index];
        helper.used = true;
        helper.lua_name.clone()
    }

    /// `table.unpack`.
    fn unpack_fn(&mut self) -> String {
        self.helper(0)
    }

    /// `type`.
    fn type_fn(&mut self) -> String {
        self.helper(1)
    }

    /// `table.pack`.
    fn pack_fn(&mut self) -> String {
        self.helper(2)
    }

    /// A symbol no program can write, for forms the compiler builds itself.
    fn gensym(&mut self, hint: &str, span: Span) -> Form {
        self.gensyms += 1;
        Form::new(FormKind::Sym(format!("\u{0}{hint}{}", self.gensyms)), span)
    }

    // ---- writing statements --------------------------------------------------

    /// Write one statement that starts on `line`.
    fn emit(&mut self, line: usize, code: &str) {
        self.out.push_str(&line_mark(line));
        // `a = b` followed by `(f)(x)` would read as the call `b(f)(x)`.
        if first_code_char(code) == Some('(') {
            self.out.push(';');
        }
        self.out.push_str(code);
    }

    /// Write a keyword that continues the current statement (`end`, `else`).
    fn emit_word(&mut self, word: &str) {
        self.out.push(' ');
        self.out.push_str(word);
    }

    /// Run `f` with a fresh statement buffer and return what it wrote.
    fn capture<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<(T, String)> {
        let saved = std::mem::take(&mut self.out);
        let result = f(self);
        let written = std::mem::replace(&mut self.out, saved);
        Ok((result?, written))
    }

    /// Bind an expression to a fresh local, so it is evaluated exactly once.
    fn save_in_local(&mut self, line: usize, expr: Expr, hint: &str) -> Expr {
        let name = self.scope.temp(hint);
        self.emit(line, &format!("local {name} = {}", expr.code));
        Expr::name(name)
    }

    /// Like [`Self::save_in_local`], but leaves pure expressions alone.
    fn once(&mut self, line: usize, expr: Expr, hint: &str) -> Expr {
        if expr.is_pure() && !expr.is_multi() {
            expr
        } else {
            self.save_in_local(line, expr, hint)
        }
    }

    // ---- the core ----------------------------------------------------------------

    /// Compile a sequence of forms as a body: all but the last for effect.
    /// An empty body yields `nil` (or no values at all, in tail position).
    fn body(&mut self, forms: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((last, init)) = forms.split_last() else {
            return Ok(match dest {
                Dest::Return => Vec::new(),
                _ => self.deliver(vec![Expr::nil()], dest, None),
            });
        };
        for form in init {
            self.statement(form, &Dest::Discard)?;
        }
        self.statement(last, dest)
    }

    /// Compile a form in statement position. Temporaries it needed are closed
    /// in a `do … end` so they don't pile up against Lua's 200-locals limit.
    fn statement(&mut self, form: &Form, dest: &Dest) -> Result<Vec<Expr>> {
        if matches!(dest, Dest::Values(_)) {
            return self.compile(form, dest);
        }
        let mark = self.scope.mark();
        let start = self.out.len();
        let result = self.compile(form, dest)?;
        if self.scope.only_temps_since(mark) {
            self.scope.forget_since(mark);
            let text = self.out.split_off(start);
            // Keep the statement's own line marker first, so `do` sits on its line.
            let (marker, rest) = match text.find('\u{2}') {
                Some(i) if text.starts_with('\u{1}') => text.split_at(i + 1),
                _ => ("", text.as_str()),
            };
            self.out.push_str(marker);
            self.out.push_str("do ");
            self.out.push_str(rest);
            self.out.push_str(" end");
        }
        Ok(result)
    }

    /// Compile `form` towards `dest`. Only `Dest::Values` returns expressions.
    fn compile(&mut self, form: &Form, dest: &Dest) -> Result<Vec<Expr>> {
        self.nested(form.span, |c| c.compile_inner(form, dest))
    }

    /// Run `f` one nesting level deeper, refusing past [`MAX_NESTING`] with
    /// an error on `span`: every recursion of the compiler goes through here.
    fn nested<T>(&mut self, span: Span, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.nesting >= MAX_NESTING {
            return Err(self.error(
                span,
                format!("forms nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        self.nesting += 1;
        let result = f(self);
        self.nesting -= 1;
        result
    }

    fn compile_inner(&mut self, form: &Form, dest: &Dest) -> Result<Vec<Expr>> {
        let line = self.line(form.span);
        let exprs = match &form.kind {
            FormKind::Nil => vec![Expr::nil()],
            FormKind::Bool(b) => vec![Expr::new(b.to_string(), Kind::Literal)],
            FormKind::Int(n) => vec![Expr::new(emit::lua_integer(*n), Kind::Literal)],
            FormKind::Float(x) => vec![Expr::new(emit::lua_float(*x), Kind::Literal)],
            FormKind::Str(bytes) => vec![Expr::new(emit::lua_string(bytes), Kind::Literal)],
            FormKind::Sym(name) => vec![self.symbol(name, form.span)?],
            FormKind::Seq(items) => vec![self.sequence(items)?],
            FormKind::Table(pairs) => vec![self.table(pairs)?],
            FormKind::List(items) => return self.list(form, items, dest),
        };
        Ok(self.deliver(exprs, dest, Some(line)))
    }

    /// Compile to exactly one expression (extra values are evaluated for effect).
    fn expr(&mut self, form: &Form) -> Result<Expr> {
        let mut exprs = self.compile(form, &Dest::Values(Want::One))?;
        if exprs.is_empty() {
            return Ok(Expr::nil());
        }
        let first = exprs.remove(0);
        if exprs.iter().any(|e| !e.is_pure()) {
            let first = self.once(self.line(form.span), first, "v");
            self.deliver(exprs, &Dest::Discard, Some(self.line(form.span)));
            return Ok(first);
        }
        Ok(first)
    }

    /// Compile to all the values the form yields.
    fn exprs(&mut self, form: &Form) -> Result<Vec<Expr>> {
        self.compile(form, &Dest::Values(Want::All))
    }

    /// Compile several forms left to right, as for call arguments: each to one
    /// value, the last to all of its values when `last_all`. If a later form
    /// needs statements first, earlier effectful values are saved in locals so
    /// the order of evaluation stays left to right.
    fn exprs_in_order(&mut self, forms: &[Form], last_all: bool) -> Result<Vec<Expr>> {
        let mut results: Vec<Expr> = Vec::with_capacity(forms.len());
        for (i, form) in forms.iter().enumerate() {
            let all = last_all && i + 1 == forms.len();
            let (exprs, pre) = self.capture(|c| if all { c.exprs(form) } else { Ok(vec![c.expr(form)?]) })?;
            if !pre.is_empty() {
                let line = self.line(form.span);
                for r in results.iter_mut() {
                    if !r.is_pure() {
                        *r = self.save_in_local(line, r.clone(), "arg");
                    }
                }
                self.out.push_str(&pre);
            }
            results.extend(exprs);
        }
        Ok(results)
    }

    /// Send expressions to a destination.
    fn deliver(&mut self, exprs: Vec<Expr>, dest: &Dest, line: Option<usize>) -> Vec<Expr> {
        match dest {
            Dest::Values(_) => return exprs,
            Dest::Discard => {
                for e in exprs {
                    match e.kind {
                        Kind::Call => self.write_stmt(line, &e.code),
                        _ if e.is_pure() => {}
                        _ => self.write_stmt(line, &format!("do local _ = {} end", e.code)),
                    }
                }
            }
            Dest::Return => {
                let code = if self.function_depth == 0 && exprs.len() == 1 && exprs[0].kind == Kind::Call {
                    // The chunk's value: no tail call, so the chunk stays in tracebacks.
                    format!("return {}", exprs[0].single())
                } else if exprs.is_empty() {
                    "return".to_string()
                } else {
                    format!("return {}", join_exprs(&exprs))
                };
                self.write_stmt(line, &code);
            }
            Dest::Assign(names) => {
                let values = if exprs.is_empty() {
                    "nil".to_string()
                } else {
                    join_exprs(&exprs)
                };
                self.write_stmt(line, &format!("{} = {values}", names.join(", ")));
            }
        }
        Vec::new()
    }

    fn write_stmt(&mut self, line: Option<usize>, code: &str) {
        match line {
            Some(line) => self.emit(line, code),
            None => {
                self.out.push(' ');
                if first_code_char(code) == Some('(') {
                    self.out.push(';');
                }
                self.out.push_str(code);
            }
        }
    }

    /// A statement-like form (if, let, match …) in any destination. Statement
    /// destinations go straight to `f`; for values, `f` assigns a temporary, or
    /// returns from a local function when all of several values are wanted.
    fn statement_value(
        &mut self,
        form: &Form,
        dest: &Dest,
        f: impl FnOnce(&mut Self, &Dest) -> Result<()>,
    ) -> Result<Vec<Expr>> {
        let line = self.line(form.span);
        match dest {
            Dest::Values(Want::All) if macros::may_yield_many(form) => {
                let name = self.scope.temp("fn");
                let vararg = self.scope.has_varargs();
                let params = if vararg { "..." } else { "" };
                self.emit(line, &format!("local function {name}({params})"));
                self.in_function(vararg, |c| {
                    c.in_value_function = true;
                    f(c, &Dest::Return)
                })?;
                self.emit_word("end");
                Ok(vec![Expr::new(format!("{name}({params})"), Kind::Call)])
            }
            Dest::Values(_) => {
                let name = self.scope.temp("v");
                self.emit(line, &format!("local {name}"));
                f(self, &Dest::Assign(vec![name.clone()]))?;
                Ok(vec![Expr::name(name)])
            }
            _ => {
                f(self, dest)?;
                Ok(Vec::new())
            }
        }
    }

    /// Whether `Dest::Return` is the tail of the chunk or of a function of the program.
    fn in_tail_position(&self, dest: &Dest) -> bool {
        *dest == Dest::Return && !self.in_value_function
    }

    /// Compile inside a new Lua function scope.
    fn in_function<T>(&mut self, vararg: bool, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.scope.push_function(vararg);
        self.function_depth += 1;
        let in_value_function = std::mem::replace(&mut self.in_value_function, false);
        let result = f(self);
        self.in_value_function = in_value_function;
        self.function_depth -= 1;
        self.scope.pop();
        result
    }

    /// Compile inside a new block scope (Lua's `do`/`then`/loop bodies).
    fn in_block<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.scope.push_block();
        let result = f(self);
        self.scope.pop();
        result
    }

    // ---- symbols, tables, calls ------------------------------------------------

    fn symbol(&mut self, name: &str, span: Span) -> Result<Expr> {
        if name == "..." {
            return self.varargs(span);
        }
        if let Some(local) = self.scope.lookup(name) {
            if local.lua == "..." {
                // `$...` in a hashfn: only where `...` itself would be allowed.
                return self.varargs(span);
            }
            return Ok(Expr::name(local.lua.clone()));
        }
        if split_method(name).is_some() {
            return Err(self.error(
                span,
                format!("method call syntax is only allowed in call position: {name}"),
            ));
        }
        if let Some(parts) = split_multisym(name) {
            let mut expr = self.symbol(parts[0], span)?;
            for key in &parts[1..] {
                expr = Expr::new(emit::index_by_string(&expr.prefix(), key.as_bytes()), Kind::Index);
            }
            return Ok(expr);
        }
        if self.scope.is_global(name) {
            let code = if emit::is_lua_identifier(name) {
                name.to_string()
            } else {
                emit::index_by_string("_ENV", name.as_bytes())
            };
            return Ok(Expr::name(code));
        }
        if specials::is_special(name) {
            return Err(self.error(span, format!("tried to reference a special form: {name}")));
        }
        Err(self.error(span, format!("unknown identifier: {name}")))
    }

    fn varargs(&mut self, span: Span) -> Result<Expr> {
        if self.scope.has_varargs() {
            Ok(Expr::new("...", Kind::Varargs))
        } else {
            Err(self.error(span, "unexpected vararg: this function takes no ..."))
        }
    }

    fn sequence(&mut self, items: &[Form]) -> Result<Expr> {
        let exprs = self.exprs_in_order(items, true)?;
        let marked: Vec<String> = items
            .iter()
            .zip(&exprs)
            .map(|(f, e)| format!("{}{}", line_mark(self.line(f.span)), e.code))
            .collect();
        // `values` may add expressions beyond the items; keep them.
        let extra = exprs.iter().skip(items.len()).map(|e| e.code.clone());
        let all: Vec<String> = marked.into_iter().chain(extra).collect();
        Ok(Expr::new(format!("{{{}}}", all.join(", ")), Kind::Constructor))
    }

    fn table(&mut self, pairs: &[(Form, Form)]) -> Result<Expr> {
        let flat: Vec<Form> = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
        let exprs = self.exprs_in_order(&flat, false)?;
        let mut fields = Vec::with_capacity(pairs.len());
        for ((key_form, value_form), kv) in pairs.iter().zip(exprs.chunks(2)) {
            let value = &kv[1];
            let mark = line_mark(self.line(value_form.span));
            let field = match &key_form.kind {
                FormKind::Str(bytes) if std::str::from_utf8(bytes).is_ok_and(emit::is_lua_identifier) => {
                    format!("{}{} = {}", mark, String::from_utf8_lossy(bytes), value.code)
                }
                _ => format!("{}[{}] = {}", mark, kv[0].code, value.code),
            };
            fields.push(field);
        }
        Ok(Expr::new(format!("{{{}}}", fields.join(", ")), Kind::Constructor))
    }

    fn list(&mut self, form: &Form, items: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let Some((head, args)) = items.split_first() else {
            return Err(self.error(form.span, "expected a function, macro, or special to call"));
        };
        if let Some(name) = head.as_sym() {
            if self.scope.lookup(name).is_none()
                && let Some(result) = self.special(name, form, args, dest)?
            {
                return Ok(result);
            }
            if let Some((object, method)) = split_method(name) {
                let object = Form::new(FormKind::Sym(object.to_string()), head.span);
                let method = Form::new(FormKind::Str(method.as_bytes().to_vec()), head.span);
                let call = self.method_call(form, &object, &method, args)?;
                return Ok(self.deliver(vec![call], dest, Some(self.line(form.span))));
            }
        }
        let mut forms = Vec::with_capacity(items.len());
        forms.extend_from_slice(items);
        // Only the last argument spreads its values; a callee is one value even
        // with no arguments (`((values))` calls nil, it does not vanish).
        let mut exprs = self.exprs_in_order(&forms, forms.len() > 1)?;
        let callee = exprs.remove(0);
        let line = self.line(form.span);
        let code = format!("{}{}({})", line_mark(line), callee.prefix(), join_exprs(&exprs));
        Ok(self.deliver(vec![Expr::new(code, Kind::Call)], dest, Some(line)))
    }

    /// `(: object method args…)` and `(object:method args…)`.
    fn method_call(&mut self, form: &Form, object: &Form, method: &Form, args: &[Form]) -> Result<Expr> {
        let line = self.line(form.span);
        let mut forms = vec![object.clone(), method.clone()];
        forms.extend_from_slice(args);
        let mut exprs = self.exprs_in_order(&forms, true)?;
        let rest = exprs.split_off(2);
        let method_expr = exprs.pop().unwrap_or_else(Expr::nil);
        let object = exprs.pop().unwrap_or_else(Expr::nil);
        let args = join_exprs(&rest);
        if let FormKind::Str(bytes) = &method.kind
            && let Ok(name) = std::str::from_utf8(bytes)
            && emit::is_lua_identifier(name)
        {
            return Ok(Expr::new(
                format!("{}{}:{name}({args})", line_mark(line), object.prefix()),
                Kind::Call,
            ));
        }
        // A method name that is not a Lua name: look it up on a saved object.
        let object = self.once(line, object, "self");
        let sep = if rest.is_empty() { "" } else { ", " };
        Ok(Expr::new(
            format!(
                "{}{}[{}]({}{sep}{args})",
                line_mark(line),
                object.prefix(),
                method_expr.code,
                object.code
            ),
            Kind::Call,
        ))
    }
}

/// `a.b.c` -> `["a", "b", "c"]`; `None` for plain names and odd shapes.
fn split_multisym(name: &str) -> Option<Vec<&str>> {
    if !name.contains('.') || name.starts_with('.') || name.ends_with('.') || name == "..." {
        return None;
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        None
    } else {
        Some(parts)
    }
}

/// `a.b:c` -> `("a.b", "c")`.
fn split_method(name: &str) -> Option<(&str, &str)> {
    let (object, method) = name.rsplit_once(':')?;
    if object.is_empty() || method.is_empty() || method.contains('.') || object.contains(':') {
        return None;
    }
    Some((object, method))
}
