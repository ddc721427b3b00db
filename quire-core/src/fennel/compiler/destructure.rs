//! Destructuring: binding names from sequences `[a b & rest]`, tables
//! `{:key pattern : x &as whole}`, and multiple values `(a b)`, nested freely.
//! Used by `local`/`var`/`let`, `set`, function parameters and loop bindings.

use super::emit;
use super::specials;
use super::{Compiler, Expr, Form, FormKind, Kind, Result, join_exprs, split_method, split_multisym};

/// What a binding does with the names of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Binding {
    /// Declare new locals (`var` ones may be `set` later).
    Local { mutable: bool },
    /// Assign existing `var`s or table fields.
    Set,
}

impl Compiler<'_> {
    /// Compile `value` and bind `pattern` to it.
    pub(super) fn bind_local(&mut self, pattern: &Form, value: &Form, mode: Binding) -> Result<()> {
        match &pattern.kind {
            FormKind::Sym(_) => {
                let e = self.expr(value)?;
                self.bind_pattern(pattern, e, mode)
            }
            FormKind::List(targets) => {
                if targets.is_empty() {
                    return Err(self.error(pattern.span, "expected names to bind multiple values to"));
                }
                let exprs = self.exprs(value)?;
                self.bind_values(pattern, targets, exprs, mode)
            }
            FormKind::Seq(_) | FormKind::Table(_) => {
                let e = self.expr(value)?;
                self.bind_pattern(pattern, e, mode)
            }
            _ => Err(self.error(pattern.span, "expected a name or a destructuring pattern")),
        }
    }

    /// `(a b [c d])` bound to several values at once.
    fn bind_values(&mut self, pattern: &Form, targets: &[Form], exprs: Vec<Expr>, mode: Binding) -> Result<()> {
        let line = self.line(pattern.span);
        let values = if exprs.is_empty() {
            "nil".to_string()
        } else {
            join_exprs(&exprs)
        };
        let mut names = Vec::with_capacity(targets.len());
        let mut nested = Vec::new();
        let mut declared = Vec::new();
        for target in targets {
            match &target.kind {
                FormKind::Sym(name) if mode != Binding::Set || is_plain(name) => {
                    self.check_binding_name(name, target)?;
                    match mode {
                        Binding::Local { mutable } => declared.push((name.clone(), mutable, names.len())),
                        Binding::Set => {
                            let lua = self.settable_local(name, target)?;
                            names.push(lua);
                            continue;
                        }
                    }
                    names.push(String::new());
                }
                FormKind::Sym(_) => {
                    let place = self.expr(target)?;
                    names.push(place.code);
                }
                FormKind::Seq(_) | FormKind::Table(_) => {
                    let temp = self.scope.temp("d");
                    nested.push((target, temp.clone()));
                    names.push(temp);
                }
                _ => {
                    return Err(self.error(target.span, "expected a name or a destructuring pattern"));
                }
            }
        }
        // New names come into scope only after the values are computed.
        for (name, mutable, index) in declared {
            names[index] = self.scope.declare(&name, mutable);
        }
        let keyword = match mode {
            Binding::Local { .. } => "local ",
            Binding::Set if nested.is_empty() => "",
            Binding::Set => {
                // Temporaries for nested patterns need declaring even in `set`.
                let temps: Vec<&str> = nested.iter().map(|(_, t)| t.as_str()).collect();
                self.emit(line, &format!("local {}", temps.join(", ")));
                ""
            }
        };
        self.emit(line, &format!("{keyword}{} = {values}", names.join(", ")));
        for (target, temp) in nested {
            self.bind_pattern(target, Expr::name(temp), mode)?;
        }
        Ok(())
    }

    /// Bind `pattern` to an already compiled value.
    pub(super) fn bind_pattern(&mut self, pattern: &Form, value: Expr, mode: Binding) -> Result<()> {
        let line = self.line(pattern.span);
        match &pattern.kind {
            FormKind::Sym(name) => self.bind_symbol(name, pattern, value, mode),
            FormKind::Seq(items) => {
                let source = self.private_copy(line, value);
                let mut index = 1;
                let mut i = 0;
                while i < items.len() {
                    let item = &items[i];
                    if item.is_sym("&") {
                        let Some(rest) = items.get(i + 1) else {
                            return Err(self.error(item.span, "expected a pattern after &"));
                        };
                        if let Some(extra) = items.get(i + 2).filter(|f| !f.is_sym("&as")) {
                            return Err(self.error(extra.span, "expected rest argument before last parameter"));
                        }
                        let unpack = self.unpack_fn();
                        let rest_value = Expr::new(format!("{{{unpack}({source}, {index})}}"), Kind::Constructor);
                        self.bind_pattern(rest, rest_value, mode)?;
                        i += 2;
                    } else if item.is_sym("&as") {
                        let Some(whole) = items.get(i + 1) else {
                            return Err(self.error(item.span, "expected a name after &as"));
                        };
                        self.bind_pattern(whole, Expr::name(source.clone()), mode)?;
                        i += 2;
                    } else {
                        self.bind_pattern(item, Expr::new(format!("{source}[{index}]"), Kind::Index), mode)?;
                        index += 1;
                        i += 1;
                    }
                }
                Ok(())
            }
            FormKind::Table(pairs) => {
                let source = self.private_copy(line, value);
                for (key, target) in pairs {
                    if key.is_sym("&as") {
                        self.bind_pattern(target, Expr::name(source.clone()), mode)?;
                        continue;
                    }
                    let index = match &key.kind {
                        FormKind::Str(bytes) => emit::index_by_string(&source, bytes),
                        _ => {
                            let key = self.expr(key)?;
                            format!("{source}[{}]", key.code)
                        }
                    };
                    self.bind_pattern(target, Expr::new(index, Kind::Index), mode)?;
                }
                Ok(())
            }
            FormKind::List(_) => Err(self.error(
                pattern.span,
                "multiple values can only be bound at the top of a binding",
            )),
            _ => Err(self.error(pattern.span, "expected a name or a destructuring pattern")),
        }
    }

    fn bind_symbol(&mut self, name: &str, at: &Form, value: Expr, mode: Binding) -> Result<()> {
        let line = self.line(at.span);
        match mode {
            Binding::Local { mutable } => {
                self.check_binding_name(name, at)?;
                let lua = self.scope.declare(name, mutable);
                self.emit(line, &format!("local {lua} = {}", value.code));
            }
            Binding::Set if is_plain(name) => {
                let lua = self.settable_local(name, at)?;
                self.emit(line, &format!("{lua} = {}", value.code));
            }
            Binding::Set => {
                let place = self.expr(at)?;
                self.emit(line, &format!("{} = {}", place.code, value.code));
            }
        }
        Ok(())
    }

    /// Names a binding may introduce: plain symbols only.
    pub(super) fn check_binding_name(&self, name: &str, at: &Form) -> Result<()> {
        if split_multisym(name).is_some() || split_method(name).is_some() {
            return Err(self.error(at.span, format!("unexpected multi symbol {name}")));
        }
        if matches!(name, "&" | "&as" | "..." | "&until" | "&into") {
            return Err(self.error(at.span, format!("unexpected {name} in a binding")));
        }
        if specials::is_reserved(name) {
            return Err(self
                .error(
                    at.span,
                    format!("local {name} was overshadowed by a special form or macro"),
                )
                .with_help(format!(
                    "{name} is a special form or macro of Fennel: give the local another name"
                )));
        }
        Ok(())
    }

    /// A local holding `value` that no later binding can shadow.
    fn private_copy(&mut self, line: usize, value: Expr) -> String {
        if value.kind == Kind::Name && self.scope.is_temp(&value.code) {
            return value.code;
        }
        self.save_in_local(line, value, "d").code
    }
}

fn is_plain(name: &str) -> bool {
    split_multisym(name).is_none() && split_method(name).is_none()
}
