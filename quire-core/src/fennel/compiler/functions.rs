//! `fn`, `lambda`/`λ` and hashfns `#(…)`.

use super::destructure::Binding;
use super::emit;
use super::{Compiler, Dest, Expr, Form, FormKind, Kind, Result, split_method, split_multisym};

/// How a function's name is used.
enum FnName<'f> {
    Anonymous,
    /// `(fn name …)`: a new local, visible in its own body for recursion.
    Local(&'f str),
    /// `(fn t.a.b …)` / `(fn t.a:b …)`: stored in a table (`:` adds `self`).
    Field {
        place: &'f str,
        method: bool,
    },
}

impl Compiler<'_> {
    pub(super) fn function(&mut self, form: &Form, args: &[Form], dest: &Dest, lambda: bool) -> Result<Vec<Expr>> {
        let line = self.line(form.span);
        let (name, params, body) = match args {
            [first, params, body @ ..] => match (&first.kind, &params.kind) {
                (FormKind::Sym(name), FormKind::Seq(params)) => (self.function_name(name, first)?, params, body),
                (FormKind::Seq(params), _) => (FnName::Anonymous, params, &args[1..]),
                _ => return Err(self.error(form.span, "expected parameters table")),
            },
            [first] => match &first.kind {
                FormKind::Seq(params) => (FnName::Anonymous, params, &[][..]),
                _ => return Err(self.error(form.span, "expected parameters table")),
            },
            [] => return Err(self.error(form.span, "expected parameters table")),
        };
        // A leading string in a longer body is a docstring, not a statement.
        let body = match body {
            [doc, rest @ ..] if !rest.is_empty() && matches!(doc.kind, FormKind::Str(_)) => rest,
            _ => body,
        };
        match name {
            FnName::Anonymous => {
                let (header, code) = self.capture(|c| c.function_body(form, params, body, lambda, false))?;
                let code = format!("function({header}){code} end");
                Ok(self.deliver(vec![Expr::new(code, Kind::Constructor)], dest, Some(line)))
            }
            FnName::Local(name) => {
                let lua = self.scope.declare(name, false);
                let (header, code) = self.capture(|c| c.function_body(form, params, body, lambda, false))?;
                self.emit(line, &format!("local function {lua}({header}){code} end"));
                Ok(self.deliver_defined(Expr::name(lua), dest, line))
            }
            FnName::Field { place, method } => {
                let (object, key) = if method {
                    split_method(place).unwrap_or((place, ""))
                } else {
                    place.rsplit_once('.').unwrap_or((place, ""))
                };
                let object_form = Form::new(FormKind::Sym(object.to_string()), args[0].span);
                let object = self.expr(&object_form)?;
                let target = emit::index_by_string(&object.prefix(), key.as_bytes());
                let (header, code) = self.capture(|c| c.function_body(form, params, body, lambda, method))?;
                self.emit(line, &format!("{target} = function({header}){code} end"));
                Ok(self.deliver_defined(Expr::new(target, Kind::Index), dest, line))
            }
        }
    }

    fn function_name<'f>(&self, name: &'f str, at: &Form) -> Result<FnName<'f>> {
        Ok(if split_multisym(name).is_some() {
            FnName::Field {
                place: name,
                method: false,
            }
        } else if split_method(name).is_some() {
            FnName::Field {
                place: name,
                method: true,
            }
        } else {
            self.check_binding_name(name, at)?;
            FnName::Local(name)
        })
    }

    /// A definition statement was written; its value is the defined function.
    fn deliver_defined(&mut self, value: Expr, dest: &Dest, line: usize) -> Vec<Expr> {
        match dest {
            Dest::Discard => Vec::new(),
            _ => self.deliver(vec![value], dest, Some(line)),
        }
    }

    /// Compile parameters and body in a new function scope. Writes the body
    /// statements and returns the Lua parameter list.
    fn function_body(
        &mut self,
        form: &Form,
        params: &[Form],
        body: &[Form],
        lambda: bool,
        method: bool,
    ) -> Result<String> {
        let vararg = params.iter().any(|p| p.is_sym("&") || p.is_sym("..."));
        self.in_function(vararg, |c| {
            let mut lua_params = Vec::new();
            if method {
                lua_params.push(c.scope.declare("self", false));
            }
            // Parameters that are patterns get a temporary; destructured after.
            let mut patterns = Vec::new();
            let mut checks = Vec::new();
            let mut i = 0;
            while i < params.len() {
                let param = &params[i];
                match &param.kind {
                    FormKind::Sym(name) if name == "&" => {
                        let (Some(rest), None) = (params.get(i + 1), params.get(i + 2)) else {
                            let at = params.get(i + 2).unwrap_or(param);
                            return Err(c.error(at.span, "expected rest argument before last parameter"));
                        };
                        lua_params.push("...".to_string());
                        patterns.push((rest, Expr::new("{...}", Kind::Constructor)));
                        i += 2;
                        continue;
                    }
                    FormKind::Sym(name) if name == "..." => {
                        if i + 1 != params.len() {
                            return Err(c.error(param.span, "expected rest argument before last parameter"));
                        }
                        lua_params.push("...".to_string());
                    }
                    FormKind::Sym(name) => {
                        c.check_binding_name(name, param)?;
                        let lua = c.scope.declare(name, false);
                        if lambda && !name.starts_with('?') && !name.starts_with('_') {
                            checks.push((name.clone(), lua.clone(), c.line(param.span)));
                        }
                        lua_params.push(lua);
                    }
                    FormKind::Seq(_) | FormKind::Table(_) => {
                        let temp = c.scope.temp("arg");
                        patterns.push((param, Expr::name(temp.clone())));
                        lua_params.push(temp);
                    }
                    _ => {
                        return Err(c.error(param.span, "expected a symbol or a pattern as parameter"));
                    }
                }
                i += 1;
            }
            let line = c.line(form.span);
            for (name, lua, _) in checks {
                let message = emit::lua_string(format!("Missing argument {name} on {}:{line}", c.file).as_bytes());
                c.emit(line, &format!("if (nil == {lua}) then error({message}, 0) end"));
            }
            for (pattern, value) in patterns {
                c.bind_pattern(pattern, value, Binding::Local { mutable: false })?;
            }
            c.body(body, &Dest::Return)?;
            Ok(lua_params.join(", "))
        })
    }

    /// `#(+ $1 $2)`: a function whose parameters are the `$N` it mentions.
    pub(super) fn hashfn(&mut self, form: &Form, args: &[Form], dest: &Dest) -> Result<Vec<Expr>> {
        let [body] = args else {
            return Err(self.error(form.span, "expected one form after #"));
        };
        let mut usage = HashfnArgs::default();
        usage.scan(body);
        if usage.varargs && (usage.max_index > 0 || usage.bare_dollar) {
            return Err(self
                .error(form.span, "$ and $... in hashfn are mutually exclusive")
                .with_help("name arguments and take the rest with a fn instead: (fn [a ...] …)"));
        }
        let line = self.line(form.span);
        let count = usage.max_index.max(usize::from(usage.bare_dollar));
        let (header, code) = self.capture(|c| {
            c.in_function(usage.varargs, |c| {
                let mut params = Vec::new();
                for n in 1..=count {
                    let lua = c.scope.declare(&format!("${n}"), false);
                    if n == 1 {
                        c.scope.alias("$", &lua);
                    }
                    params.push(lua);
                }
                if usage.varargs {
                    c.scope.alias("$...", "...");
                    params.push("...".to_string());
                }
                c.body(std::slice::from_ref(body), &Dest::Return)?;
                Ok(params.join(", "))
            })
        })?;
        let code = format!("function({header}){code} end");
        Ok(self.deliver(vec![Expr::new(code, Kind::Constructor)], dest, Some(line)))
    }
}

/// Which `$` arguments a hashfn body uses.
#[derive(Default)]
struct HashfnArgs {
    max_index: usize,
    bare_dollar: bool,
    varargs: bool,
}

impl HashfnArgs {
    fn scan(&mut self, form: &Form) {
        match &form.kind {
            FormKind::Sym(name) => {
                // `$1.field` and `$:method` count as `$1` / `$`.
                let root = name.split(['.', ':']).next().unwrap_or(name);
                let root = if name.starts_with("$...") { "$..." } else { root };
                match root {
                    "$" => self.bare_dollar = true,
                    "$..." => self.varargs = true,
                    _ => {
                        if let Some(n) = root.strip_prefix('$').and_then(|d| d.parse::<usize>().ok())
                            && (1..=9).contains(&n)
                        {
                            self.max_index = self.max_index.max(n);
                        }
                    }
                }
            }
            FormKind::List(items) => {
                // A nested hashfn has its own arguments.
                if items.first().is_some_and(|h| h.is_sym("hashfn")) {
                    return;
                }
                items.iter().for_each(|i| self.scan(i));
            }
            FormKind::Seq(items) => items.iter().for_each(|i| self.scan(i)),
            FormKind::Table(pairs) => pairs.iter().for_each(|(k, v)| {
                self.scan(k);
                self.scan(v);
            }),
            _ => {}
        }
    }
}
