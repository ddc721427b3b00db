//! Lexical scopes: which Fennel names are locals, and the Lua name each one got.
//!
//! Fennel names (`empty?`, `a-b`, `end`) are mangled into Lua names, and every
//! new Lua name is checked against the names visible at that point, so two
//! different Fennel names can never end up meaning the same Lua variable.
//! Compiler temporaries are locals too (under names the reader can't produce),
//! so they go through the same check.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use super::emit::LUA_KEYWORDS;

/// A local as the compiler sees it.
#[derive(Debug, Clone)]
pub struct Local {
    pub lua: String,
    /// `var` locals may be `set`; `local`/`let`/params may not.
    pub mutable: bool,
}

#[derive(Debug, Default)]
struct Frame {
    /// Fennel name -> local.
    locals: HashMap<String, Local>,
    /// Lua name -> the Fennel name it stands for in this frame.
    lua_names: HashMap<String, String>,
    /// Keys in the order they were bound, and whether each is a temporary.
    order: Vec<(String, bool)>,
    /// Whether this frame is the body of a Lua function (or the chunk).
    function: bool,
    /// For function frames: whether `...` is available.
    vararg: bool,
}

/// A position in the innermost frame's bindings.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    frames: usize,
    bound: usize,
}

/// The stack of scopes at the current point of compilation.
#[derive(Debug)]
pub struct Scope {
    frames: Vec<Frame>,
    /// Global names the program may read; a local that mangles to one of these
    /// must not hide it from code that means the global.
    globals: HashSet<String>,
    counter: usize,
    /// Per base name, the suffix to try next when the base is taken: keeps
    /// name picking cheap in deeply nested code.
    next_suffix: HashMap<String, usize>,
}

impl Scope {
    pub fn new(globals: HashSet<String>) -> Self {
        let chunk = Frame {
            function: true,
            vararg: true,
            ..Frame::default()
        };
        Scope {
            frames: vec![chunk],
            globals,
            counter: 0,
            next_suffix: HashMap::new(),
        }
    }

    pub fn push_block(&mut self) {
        self.frames.push(Frame::default());
    }

    pub fn push_function(&mut self, vararg: bool) {
        self.frames.push(Frame {
            function: true,
            vararg,
            ..Frame::default()
        });
    }

    pub fn pop(&mut self) {
        if self.frames.len() > 1 {
            self.frames.pop();
        }
    }

    pub fn is_global(&self, name: &str) -> bool {
        self.globals.contains(name)
    }

    pub fn lookup(&self, name: &str) -> Option<&Local> {
        self.frames.iter().rev().find_map(|f| f.locals.get(name))
    }

    /// Whether `lua` is the name of a compiler temporary in scope.
    pub fn is_temp(&self, lua: &str) -> bool {
        self.frames
            .iter()
            .rev()
            .find_map(|f| f.lua_names.get(lua))
            .is_some_and(|owner| owner.starts_with('\u{0}'))
    }

    /// Whether `...` may be used here (the innermost function takes varargs).
    pub fn has_varargs(&self) -> bool {
        self.frames.iter().rev().find(|f| f.function).is_some_and(|f| f.vararg)
    }

    /// Declare a Fennel local and return its Lua name.
    pub fn declare(&mut self, name: &str, mutable: bool) -> String {
        // Shadowing a name reuses its Lua name (plain Lua shadowing) when possible.
        let existing = self
            .lookup(name)
            .map(|l| l.lua.clone())
            .filter(|lua| self.is_free(name, lua) && lua != "...");
        let lua = existing.unwrap_or_else(|| self.pick_lua_name(name, &mangle(name)));
        self.bind(
            name,
            Local {
                lua: lua.clone(),
                mutable,
            },
        );
        lua
    }

    /// Make `name` another Fennel name for an existing Lua local (`$` and `$1`).
    /// The alias doesn't own the Lua name, so a later local of the same
    /// Fennel name gets a new Lua name instead of shadowing the original.
    pub fn alias(&mut self, name: &str, lua: &str) {
        let frame = self.frames.last_mut().expect("the chunk frame is never popped");
        frame.order.push((name.to_string(), false));
        let local = Local {
            lua: lua.to_string(),
            mutable: false,
        };
        frame.locals.insert(name.to_string(), local);
    }

    /// A fresh compiler temporary, invisible to Fennel code. `hint` shapes its name.
    pub fn temp(&mut self, hint: &str) -> String {
        self.counter += 1;
        let key = format!("\u{0}{}", self.counter);
        let lua = self.pick_lua_name(&key, &format!("_{hint}"));
        self.bind(
            &key,
            Local {
                lua: lua.clone(),
                mutable: true,
            },
        );
        lua
    }

    fn bind(&mut self, name: &str, local: Local) {
        let frame = self.frames.last_mut().expect("the chunk frame is never popped");
        frame.order.push((name.to_string(), name.starts_with('\u{0}')));
        frame.lua_names.insert(local.lua.clone(), name.to_string());
        frame.locals.insert(name.to_string(), local);
    }

    /// A point to come back to with [`Self::only_temps_since`] / [`Self::forget_since`].
    pub fn mark(&self) -> Mark {
        Mark {
            frames: self.frames.len(),
            bound: self.frames.last().map_or(0, |f| f.order.len()),
        }
    }

    /// Whether the innermost frame gained temporaries, and nothing else, since `mark`.
    pub fn only_temps_since(&self, mark: Mark) -> bool {
        let Some(frame) = self.frames.last() else {
            return false;
        };
        self.frames.len() == mark.frames
            && frame.order.len() > mark.bound
            && frame.order[mark.bound..].iter().all(|(_, temp)| *temp)
    }

    /// Drop the temporaries bound since `mark` (their Lua block has ended).
    pub fn forget_since(&mut self, mark: Mark) {
        if self.frames.len() != mark.frames {
            return;
        }
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        if frame.order.len() < mark.bound {
            return;
        }
        for (key, _) in frame.order.split_off(mark.bound) {
            if let Some(local) = frame.locals.remove(&key) {
                frame.lua_names.remove(&local.lua);
            }
        }
    }

    /// `base`, or `base_N`, whichever first is free for `name`: not a keyword,
    /// not a global that some other name means, and not visible as the Lua
    /// name of a different Fennel name.
    fn pick_lua_name(&mut self, name: &str, base: &str) -> String {
        if self.is_free(name, base) {
            return base.to_string();
        }
        let mut n = self.next_suffix.get(base).copied().unwrap_or(2);
        let mut candidate = format!("{base}_{n}");
        while !self.is_free(name, &candidate) {
            n += 1;
            candidate = format!("{base}_{n}");
        }
        self.next_suffix.insert(base.to_string(), n + 1);
        candidate
    }

    fn is_free(&self, name: &str, lua: &str) -> bool {
        if LUA_KEYWORDS.contains(&lua) || lua == "_ENV" {
            return false;
        }
        if self.globals.contains(lua) && name != lua {
            return false;
        }
        // Reusing the Lua name of the *same* Fennel name is plain shadowing, but
        // only if that Fennel name still resolves to it (not to something newer).
        for frame in self.frames.iter().rev() {
            if let Some(owner) = frame.lua_names.get(lua) {
                let still_meant = self.lookup(owner).is_some_and(|l| l.lua == lua);
                return owner == name || !still_meant;
            }
        }
        true
    }
}

/// A Lua-friendly spelling of a Fennel name: `a-b` -> `a_b`, `empty?` ->
/// `empty_3f`, `end` -> `_end`. Not unique on its own; [`Scope`] makes it so.
pub fn mangle(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, b) in name.bytes().enumerate() {
        match b {
            // Compiler-made symbols start with NUL: give them a plain `_hint` name.
            0 if i == 0 => out.push('_'),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => out.push(b as char),
            b'0'..=b'9' if i > 0 => out.push(b as char),
            b'-' if i > 0 => out.push('_'),
            _ => {
                let _ = write!(out, "_{b:02x}");
            }
        }
    }
    if out.is_empty() || LUA_KEYWORDS.contains(&out.as_str()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangles_into_identifiers() {
        assert_eq!(mangle("a-b"), "a_b");
        assert_eq!(mangle("empty?"), "empty_3f");
        assert_eq!(mangle("*debug*"), "_2adebug_2a");
        assert_eq!(mangle("end"), "_end");
        assert_eq!(mangle("string->list"), "string__3elist");
        assert_eq!(mangle("$1"), "_241");
    }

    #[test]
    fn different_names_never_share_a_lua_name() {
        let mut scope = Scope::new(HashSet::new());
        let a = scope.declare("a-b", false);
        scope.push_block();
        let b = scope.declare("a_b", false);
        assert_ne!(a, b);
        // Same name again: plain shadowing may reuse the Lua name.
        let c = scope.declare("a_b", false);
        assert_eq!(b, c);
        scope.pop();
        assert_eq!(scope.lookup("a-b").map(|l| l.lua.clone()), Some(a));
    }

    #[test]
    fn locals_do_not_hide_globals_other_names_mean() {
        let mut scope = Scope::new(["print".to_string()].into_iter().collect());
        // A Fennel local named `print` means to shadow; `_G`-style clashes don't.
        assert_eq!(scope.declare("print", false), "print");
        let t = scope.temp("print");
        assert_ne!(t, "print");
    }
}
