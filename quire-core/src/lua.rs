//! The sandboxed Lua VM that runs pipeline code (design §4, "The sandbox").
//!
//! Pipeline code gets `string`, `table`, `math`, `utf8`, `coroutine`, the safe
//! base functions and `os.time`/`os.date`/`os.clock`. There is no `io`, no
//! `debug`, no binary chunks, no file loading: `runtime.sh` is the one way to
//! touch the host. `require` resolves the built-in `quire.*` modules and the
//! workspace's own modules under `.quire/`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Value};

use crate::fennel::{self, CompileOptions, FennelError};

/// Where `print` writes. Never stdout during `run`: stdout belongs to the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintTarget {
    Stdout,
    Stderr,
}

/// The sandbox's global names, beside which pipeline code sees only its locals.
/// `runtime` is set while a job runs.
pub const GLOBALS: &[&str] = &[
    "_G",
    "_VERSION",
    "assert",
    "collectgarbage",
    "coroutine",
    "error",
    "getmetatable",
    "ipairs",
    "load",
    "math",
    "next",
    "os",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "require",
    "runtime",
    "select",
    "setmetatable",
    "string",
    "table",
    "tonumber",
    "tostring",
    "type",
    "utf8",
    "warn",
    "xpcall",
];

/// Hardening applied to the base library, in Lua because it only rearranges Lua values.
const HARDEN: &str = r##"
local raw_load, select, type, error = load, select, type, error
-- Text chunks only: a binary chunk can break the VM's memory safety.
load = function(chunk, name, mode, ...)
  if select("#", ...) > 0 then return raw_load(chunk, name, "t", ...) end
  return raw_load(chunk, name, "t")
end
local raw_collect = collectgarbage
local allowed = { collect = true, count = true, step = true, isrunning = true }
-- Stopping or retuning the collector would let a pipeline defeat the memory limit.
collectgarbage = function(opt, ...)
  opt = opt or "collect"
  if not allowed[opt] then
    error("collectgarbage: option '" .. tostring(opt) .. "' is not allowed in the sandbox", 2)
  end
  return raw_collect(opt, ...)
end
dofile, loadfile = nil, nil
string.dump = nil
os = { time = os.time, date = os.date, clock = os.clock }
-- The string metatable is shared by every string; keep pipeline code from replacing it.
getmetatable("").__metatable = false
"##;

/// A module the host provides to `require` under a fixed name.
pub type ModuleLoader = Box<dyn Fn(&Lua) -> mlua::Result<Value>>;

/// The pipeline's VM and how it finds code.
pub struct Sandbox {
    lua: Lua,
}

struct Resolver {
    /// The workspace's `.quire` directory, where `(require :lib.x)` looks.
    module_dir: Option<PathBuf>,
    /// How paths are shown to the user, relative to the workspace when possible.
    display_root: Option<PathBuf>,
    builtins: HashMap<String, ModuleLoader>,
    loaded: HashMap<String, Value>,
    /// Modules being loaded right now, to refuse cycles with a clear message.
    loading: Vec<String>,
}

impl Sandbox {
    /// A fresh VM. `module_dir` is the workspace's `.quire` directory, if any.
    pub fn new(
        module_dir: Option<PathBuf>,
        display_root: Option<PathBuf>,
        print: PrintTarget,
    ) -> mlua::Result<Sandbox> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH | StdLib::COROUTINE | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        lua.load(HARDEN).set_name("=sandbox").exec()?;
        install_print(&lua, print)?;
        let resolver = Rc::new(RefCell::new(Resolver {
            module_dir,
            display_root,
            builtins: HashMap::new(),
            loaded: HashMap::new(),
            loading: Vec::new(),
        }));
        lua.set_app_data(resolver.clone());
        let require = lua.create_function(move |lua, name: String| require(lua, &resolver, &name))?;
        lua.globals().set("require", require)?;
        Ok(Sandbox { lua })
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Make `require(name)` return what `loader` builds (called once, on first require).
    pub fn register_module(&self, name: &str, loader: ModuleLoader) {
        if let Some(resolver) = self.lua.app_data_ref::<Rc<RefCell<Resolver>>>() {
            resolver.borrow_mut().builtins.insert(name.to_string(), loader);
        }
    }

    /// The compile options that match this sandbox: only its globals are known.
    pub fn compile_options() -> CompileOptions {
        CompileOptions {
            allowed_globals: GLOBALS.iter().map(|s| s.to_string()).collect::<HashSet<_>>(),
        }
    }

    /// Load a pipeline or script file (Fennel by its `.fnl` extension, Lua otherwise)
    /// as a function, without running it.
    pub fn load_file(&self, path: &Path, display: &str) -> Result<Function, LoadError> {
        let source = fs_err::read_to_string(path).map_err(LoadError::Read)?;
        load_source(&self.lua, &source, path, display)
    }
}

/// Why a file could not be turned into a Lua function.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Read(std::io::Error),
    #[error(transparent)]
    Fennel(#[from] Box<FennelError>),
    #[error("{0}")]
    Lua(mlua::Error),
}

fn load_source(lua: &Lua, source: &str, path: &Path, display: &str) -> Result<Function, LoadError> {
    let is_fennel = path.extension().is_some_and(|e| e == "fnl");
    let text = if is_fennel {
        fennel::compile_source(source, display, &Sandbox::compile_options()).map_err(Box::new)?
    } else {
        source.to_string()
    };
    lua.load(text)
        .set_name(format!("@{display}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()
        .map_err(LoadError::Lua)
}

fn install_print(lua: &Lua, target: PrintTarget) -> mlua::Result<()> {
    let tostring: Function = lua.globals().get("tostring")?;
    let print = lua.create_function(move |_, args: MultiValue| {
        let mut line = Vec::new();
        for (i, value) in args.into_iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            let text: mlua::LuaString = tostring.call(value)?;
            line.extend_from_slice(&text.as_bytes());
        }
        line.push(b'\n');
        // A closed stdout/stderr is not the pipeline's fault; drop the text.
        let _ = match target {
            PrintTarget::Stdout => std::io::stdout().lock().write_all(&line),
            PrintTarget::Stderr => std::io::stderr().lock().write_all(&line),
        };
        Ok(())
    })?;
    lua.globals().set("print", print)
}

fn require(lua: &Lua, resolver: &Rc<RefCell<Resolver>>, name: &str) -> mlua::Result<Value> {
    if let Some(value) = resolver.borrow().loaded.get(name) {
        return Ok(value.clone());
    }
    if resolver.borrow().loading.iter().any(|n| n == name) {
        return Err(mlua::Error::runtime(format!(
            "module '{name}' requires itself (a require cycle)"
        )));
    }
    let builtin = resolver.borrow_mut().builtins.remove(name);
    let value = if let Some(loader) = builtin {
        let value = loader(lua)?;
        resolver.borrow_mut().builtins.insert(name.to_string(), loader);
        value
    } else {
        let (path, display) = find_module(&resolver.borrow(), name)?;
        let source = fs_err::read_to_string(&path).map_err(mlua::Error::external)?;
        let function = load_source(lua, &source, &path, &display).map_err(|e| match e {
            LoadError::Fennel(err) => mlua::Error::external(err),
            LoadError::Read(err) => mlua::Error::external(err),
            LoadError::Lua(err) => err,
        })?;
        resolver.borrow_mut().loading.push(name.to_string());
        let result = function.call::<Value>(name);
        resolver.borrow_mut().loading.pop();
        match result? {
            Value::Nil => Value::Boolean(true),
            value => value,
        }
    };
    resolver.borrow_mut().loaded.insert(name.to_string(), value.clone());
    Ok(value)
}

/// `lib.util` -> `.quire/lib/util.fnl` (or `.lua`), refusing names that could leave `.quire/`.
fn find_module(resolver: &Resolver, name: &str) -> mlua::Result<(PathBuf, String)> {
    let builtins = {
        let mut names: Vec<&str> = resolver.builtins.keys().map(String::as_str).collect();
        names.sort();
        names.join(", ")
    };
    let valid = !name.is_empty()
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if !valid {
        return Err(mlua::Error::runtime(format!(
            "module '{name}' not found: module names are dot-separated words (letters, digits, _ and -), \
             resolved under .quire/; built-in modules: {builtins}"
        )));
    }
    let Some(dir) = &resolver.module_dir else {
        return Err(mlua::Error::runtime(format!(
            "module '{name}' not found; built-in modules: {builtins}"
        )));
    };
    let relative: PathBuf = name.split('.').collect();
    let mut tried = Vec::new();
    for ext in ["fnl", "lua"] {
        let path = dir.join(&relative).with_extension(ext);
        let display = match &resolver.display_root {
            Some(root) => path.strip_prefix(root).unwrap_or(&path).display().to_string(),
            None => path.display().to_string(),
        };
        if path.is_file() {
            return Ok((path, display));
        }
        tried.push(display);
    }
    Err(mlua::Error::runtime(format!(
        "module '{name}' not found: tried {}; built-in modules: {builtins}",
        tried.join(", ")
    )))
}

/// The Fennel diagnostic inside a Lua error, if the error came from compiling a module.
pub fn fennel_error(err: &mlua::Error) -> Option<&FennelError> {
    err.chain().find_map(|e| e.downcast_ref::<FennelError>())
}
