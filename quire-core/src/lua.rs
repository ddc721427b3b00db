//! The sandboxed Lua VM that runs pipeline code (design §4, "The sandbox").
//!
//! Pipeline code gets `string`, `table`, `math`, `utf8`, `coroutine`, the safe
//! base functions and `os.time`/`os.date`/`os.clock`. There is no `io`, no
//! `debug`, no binary chunks, no file loading: `runtime.sh` is the one way to
//! touch the host. `require` resolves the built-in `quire.*` modules and the
//! workspace's own modules under `.quire/`.
//!
//! Pipeline code is also bounded: an instruction count per budget (the
//! top-level code, each job) and a memory limit on the whole VM, so an
//! endless loop or a runaway allocation fails with a clear error instead of
//! hanging the run or exhausting the machine. `print` and `warn` output has
//! the run's secrets masked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::HashSet;
use std::ffi::CStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Thread, Value, VmState};

use crate::fennel::{self, CompileOptions, FennelError};
use crate::secret::{Redactor, StreamRedactor};

/// Where `print` writes. Never stdout during `run`: stdout belongs to the event stream.
#[derive(Clone, Default)]
pub enum PrintTarget {
    Stdout,
    #[default]
    Stderr,
    /// Handed to the host (during `run`, the reporter, which owns the terminal).
    Host(PrintHandler),
}

/// Takes what pipeline code prints, secrets already masked.
pub type PrintHandler = Rc<dyn Fn(&[u8])>;

impl std::fmt::Debug for PrintTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrintTarget::Stdout => "Stdout",
            PrintTarget::Stderr => "Stderr",
            PrintTarget::Host(_) => "Host",
        })
    }
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

/// Hardening applied to the base library, in Lua because it only rearranges
/// Lua values. `charge(n)` counts `n` instructions against the running budget:
/// library functions that loop in C on a count the caller picks would
/// otherwise run for as long as they like on one instruction.
const HARDEN: &str = r##"
local charge, out_of_memory, budget_spent, refuse_close = ...
local raw_load, select, type, error, tostring, tonumber = load, select, type, error, tostring, tonumber
local rawget, raw_rawset, getmetatable, raw_setmetatable = rawget, rawset, getmetatable, setmetatable
local pcall, format, gsub, tointeger = pcall, string.format, string.gsub, math.tointeger

-- A library function called by a wrapper below reports errors as if the
-- wrapper were not there: at the caller's line, under its own name (called
-- through pcall, it can only call itself '?'), a memory error still one.
local function raise(name, err)
  if err == "not enough memory" then out_of_memory() end
  if type(err) ~= "string" then error(err, 0) end
  error((gsub(err, "to '%?'", "to '" .. name .. "'", 1)), 3)
end
local function forward(name, ok, ...)
  if ok then return ... end
  raise(name, (...))
end
-- Always a tail call, so that level 3 of `raise` is the wrapper's caller.
local function call(name, f, ...)
  return forward(name, pcall(f, ...))
end

-- Text chunks only: a binary chunk can break the VM's memory safety. And no
-- to-be-closed variables (see refuse_close), so the text is read whole first.
local concat = table.concat
load = function(chunk, name, mode, ...)
  if type(chunk) == "function" then
    local parts = {}
    while true do
      local piece = chunk()
      if piece == nil or piece == "" then break end
      if type(piece) ~= "string" then return nil, "reader function must return a string" end
      parts[#parts + 1] = piece
    end
    chunk = concat(parts)
  end
  if type(chunk) == "string" then
    local refusal = refuse_close(chunk, name)
    if refusal then return nil, refusal end
  end
  if select("#", ...) > 0 then return call("load", raw_load, chunk, name, "t", ...) end
  return call("load", raw_load, chunk, name, "t")
end

local raw_collect = collectgarbage
local allowed = { collect = true, count = true, step = true, isrunning = true }
-- Stopping or retuning the collector would let a pipeline defeat the memory
-- limit. A collection takes time in proportion to the heap, so it is charged
-- one instruction per byte in use.
collectgarbage = function(opt, ...)
  opt = opt or "collect"
  if not allowed[opt] then
    error("collectgarbage: option '" .. tostring(opt) .. "' is not allowed in the sandbox", 2)
  end
  if opt == "collect" or opt == "step" then charge(raw_collect("count") * 1024) end
  return call("collectgarbage", raw_collect, opt, ...)
end

-- Lua calls a message handler where the error is raised: for an error the
-- instruction hook raises, inside the hook, where hooks are off, so an
-- endless handler could never be stopped. Once the budget is spent the
-- error passes through unhandled.
local raw_xpcall = xpcall
xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then return call("xpcall", raw_xpcall, f, handler, ...) end
  return raw_xpcall(f, function(e)
    if budget_spent() then return e end
    return handler(e)
  end, ...)
end

-- Finalizers run with the instruction hook switched off, so an endless __gc
-- could never be stopped. An object gets one only through setmetatable.
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  return call("setmetatable", raw_setmetatable, t, mt)
end

-- A table whose metatable is locked as "read-only" (the global `runtime`)
-- refuses writes, rawset's too.
rawset = function(t, k, v)
  if getmetatable(t) == "read-only" then error("the table is read-only", 2) end
  return call("rawset", raw_rawset, t, k, v)
end

-- string.rep("", 2^62) copies nothing 2^62 times, in C. (Copying something
-- needs memory first, which the memory limit bounds.)
local raw_rep = string.rep
string.rep = function(s, n, sep)
  if s == "" and (sep == nil or sep == "") and tointeger(n) then return "" end
  return call("rep", raw_rep, s, n, sep)
end

-- table.move loops over the range it is given, in C.
local raw_move = table.move
table.move = function(a1, f, e, t, a2)
  local first, last = tonumber(f), tonumber(e)
  if first and last and last >= first then charge((last + 0.0) - first + 1) end
  return call("move", raw_move, a1, f, e, t, a2)
end

-- table.insert and table.remove shift elements up to #t in C, and #t can be
-- huge for a table of a few elements (or whatever __len says): here, in Lua,
-- every shift is counted.
local function bad_argument(n, fname, why)
  error(format("bad argument #%d to '%s' (%s)", n, fname, why), 3)
end
local function check_table(t, fname)
  if type(t) ~= "table" then bad_argument(1, fname, "table expected, got " .. type(t)) end
end
local function check_integer(v, n, fname)
  local i = tointeger(v)
  if i == nil then
    bad_argument(n, fname, type(v) == "number" and "number has no integer representation"
      or "number expected, got " .. type(v))
  end
  return i
end
local function length(t)
  local n = #t
  if tointeger(n) == nil then error("object length is not an integer", 3) end
  return tointeger(n)
end
table.insert = function(t, ...)
  check_table(t, "insert")
  local e = length(t) + 1
  local nargs = select("#", ...)
  if nargs == 1 then
    t[e] = ...
    return
  elseif nargs ~= 2 then
    error("wrong number of arguments to 'insert'", 2)
  end
  local pos, value = ...
  pos = check_integer(pos, 2, "insert")
  if pos < 1 or pos > e then bad_argument(2, "insert", "position out of bounds") end
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = value
end
table.remove = function(t, pos)
  check_table(t, "remove")
  local size = length(t)
  if pos == nil then
    pos = size
  else
    pos = check_integer(pos, 2, "remove")
    if pos ~= size and (pos < 1 or pos > size + 1) then
      bad_argument(2, "remove", "position out of bounds")
    end
  end
  local value = t[pos]
  for i = pos, size - 1 do t[i] = t[i + 1] end
  t[pos < size and size or pos] = nil
  return value
end

dofile, loadfile = nil, nil
string.dump = nil
os = { time = os.time, date = os.date, clock = os.clock }
-- The string metatable is shared by every string; keep pipeline code from replacing it.
getmetatable("").__metatable = false
"##;

/// A module the host provides to `require` under a fixed name.
pub type ModuleLoader = Box<dyn Fn(&Lua) -> mlua::Result<Value>>;

/// How much pipeline code may consume. The defaults are far above what a
/// pipeline needs and far below what would hurt the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes the whole VM may allocate (every job shares it).
    pub memory: usize,
    /// Instructions each budget may execute: the top-level code, and each job.
    pub instructions: u64,
}

/// 512 MiB: room for every command's captured output many times over.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 * 1024 * 1024;
/// A billion instructions: seconds of pure Lua, where a pipeline needs thousands.
pub const DEFAULT_INSTRUCTION_LIMIT: u64 = 1_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY_LIMIT,
            instructions: DEFAULT_INSTRUCTION_LIMIT,
        }
    }
}

/// The flag that raises each limit, named in the errors.
pub const MEMORY_LIMIT_FLAG: &str = "--lua-memory-limit";
pub const INSTRUCTION_LIMIT_FLAG: &str = "--lua-instruction-limit";

/// How often (in instructions) the hook counts. Small enough that a budget
/// is not overrun by much, large enough to cost nothing measurable.
const HOOK_INTERVAL: u32 = 1000;

/// Everything a sandbox is made from.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// The workspace's `.quire` directory, where `(require :lib.x)` looks.
    pub module_dir: Option<PathBuf>,
    /// How paths are shown, relative to this directory (the workspace) when possible.
    /// Modules must also resolve inside it (or inside `module_dir` without one).
    pub display_root: Option<PathBuf>,
    pub print: PrintTarget,
    /// Secrets to mask in `print` and `warn` output.
    pub redactor: Redactor,
    pub limits: Limits,
}

/// The pipeline's VM and how it finds code.
pub struct Sandbox {
    lua: Lua,
    limits: Limits,
    meter: InstructionMeter,
    output: Rc<RefCell<PrintOutput>>,
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
    /// A fresh VM, hardened and bounded.
    pub fn new(options: SandboxOptions) -> mlua::Result<Sandbox> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH | StdLib::COROUTINE | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        let meter = InstructionMeter::new(options.limits.instructions);
        let charge_meter = meter.clone();
        let charge = lua.create_function(move |lua, n: f64| charge_meter.charge(lua, n))?;
        let out_of_memory =
            lua.create_function(|_, ()| Err::<(), _>(mlua::Error::MemoryError("not enough memory".into())))?;
        let spent_meter = meter.clone();
        let budget_spent = lua.create_function(move |_, ()| Ok(spent_meter.spent()))?;
        let refuse_close = lua.create_function(|_, (chunk, name): (mlua::LuaString, Option<String>)| {
            Ok(close_attribute_line(&chunk.as_bytes())
                .map(|line| close_refusal(name.as_deref().unwrap_or("chunk"), line)))
        })?;
        lua.load(HARDEN)
            .set_name("=sandbox")
            .call::<()>((charge, out_of_memory, budget_spent, refuse_close))?;
        let output = Rc::new(RefCell::new(PrintOutput {
            target: options.print,
            redact: StreamRedactor::new(options.redactor),
            scratch: Vec::new(),
        }));
        install_output(&lua, &output)?;
        let resolver = Rc::new(RefCell::new(Resolver {
            module_dir: options.module_dir,
            display_root: options.display_root,
            builtins: HashMap::new(),
            loaded: HashMap::new(),
            loading: Vec::new(),
        }));
        lua.set_app_data(resolver.clone());
        let require = lua.create_function(move |lua, name: String| require(lua, &resolver, &name))?;
        lua.globals().set("require", require)?;

        let hook_meter = meter.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INTERVAL),
            move |lua, _| hook_meter.on_hook(lua, u64::from(HOOK_INTERVAL)),
        )?;
        lua.set_memory_limit(options.limits.memory)?;
        Ok(Sandbox {
            lua,
            limits: options.limits,
            meter,
            output,
        })
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The meter every budget of this VM is counted by.
    pub fn meter(&self) -> &InstructionMeter {
        &self.meter
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

    /// Run a loaded chunk to its end as `owner`, on a thread of its own so
    /// that an error leaves its stack to be read for the line. Errors come
    /// back as messages, with the limits explained.
    pub fn run_chunk(&self, chunk: Function, owner: BudgetOwner) -> Result<(), ChunkFailure> {
        let thread = self.lua.create_thread(chunk).map_err(|error| ChunkFailure {
            message: self.describe_error(&error, None),
            error,
        })?;
        let mut budget = self.meter.budget(owner);
        let result = self.meter.run(&mut budget, || thread.resume::<MultiValue>(()));
        match result {
            Err(error) => Err(ChunkFailure {
                message: self.describe_error(&error, Some(&thread)),
                error,
            }),
            // A yield outside any coroutine of its own would leave the code half run.
            Ok(_) if thread.status() == ThreadStatus::Resumable => {
                let message = "coroutine.yield was called outside a coroutine: top-level code cannot yield";
                Err(ChunkFailure {
                    error: mlua::Error::runtime(message),
                    message: message.to_string(),
                })
            }
            Ok(_) => Ok(()),
        }
    }

    /// The message for an error that ended pipeline code. `thread` is the
    /// coroutine it ended, to find the line of an out-of-memory error (which
    /// carries none).
    pub fn describe_error(&self, err: &mlua::Error, thread: Option<&Thread>) -> String {
        describe_error(self.limits, err, thread)
    }

    /// Write out `print` output held back because it could be the start of a secret.
    pub fn flush_output(&self) {
        self.output.borrow_mut().flush();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.flush_output();
    }
}

/// [`Sandbox::describe_error`], for code that holds the limits but not the sandbox.
pub fn describe_error(limits: Limits, err: &mlua::Error, thread: Option<&Thread>) -> String {
    if !is_memory_error(err) {
        return error_message(err);
    }
    let site = thread
        .and_then(error_site)
        .map(|s| format!("{s}: "))
        .unwrap_or_default();
    format!(
        "{site}pipeline code ran out of memory: the Lua VM may use at most {} (raise it with {MEMORY_LIMIT_FLAG})",
        format_bytes(limits.memory)
    )
}

/// Why a chunk run by [`Sandbox::run_chunk`] did not finish.
#[derive(Debug)]
pub struct ChunkFailure {
    pub error: mlua::Error,
    /// What to tell the user (see [`Sandbox::describe_error`]).
    pub message: String,
}

/// `1024` -> `1 KiB`, `536870912` -> `512 MiB`; other sizes in bytes.
pub fn format_bytes(bytes: usize) -> String {
    for (unit, size) in [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// Whose instructions a budget counts, as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetOwner {
    /// The pipeline file's top-level code (registering jobs).
    TopLevel,
    Job(Rc<str>),
    /// A file run by `quire-ci fennel`.
    Script,
}

impl std::fmt::Display for BudgetOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetOwner::TopLevel => f.write_str("the pipeline's top-level code"),
            BudgetOwner::Job(id) => write!(f, "job '{id}'"),
            BudgetOwner::Script => f.write_str("the script"),
        }
    }
}

/// The instructions one owner has spent.
#[derive(Debug, Clone)]
pub struct Budget {
    owner: BudgetOwner,
    spent: u64,
}

/// Counts the instructions pipeline code runs against the budget being
/// spent. Only one budget is spent at a time: jobs are coroutines of one
/// VM, and each is run (polled) in turn, so "the running job" is whichever
/// is being polled, and the time a job waits on `runtime.sh` costs nothing.
/// Cheap to clone; clones share the count.
#[derive(Clone)]
pub struct InstructionMeter(Rc<MeterState>);

struct MeterState {
    limit: u64,
    current: RefCell<Option<Budget>>,
}

/// Raised in pipeline code that ran past its instruction budget.
#[derive(Debug, thiserror::Error)]
#[error("{site}{owner} ran more than {limit} Lua instructions, the limit (raise it with {INSTRUCTION_LIMIT_FLAG})")]
pub struct InstructionLimitExceeded {
    /// `file:line: ` of the pipeline code that was running, when known.
    site: String,
    owner: BudgetOwner,
    limit: u64,
}

impl InstructionMeter {
    fn new(limit: u64) -> Self {
        InstructionMeter(Rc::new(MeterState {
            limit,
            current: RefCell::new(None),
        }))
    }

    /// A fresh budget for `owner`.
    pub fn budget(&self, owner: BudgetOwner) -> Budget {
        Budget { owner, spent: 0 }
    }

    /// Run `f` with `budget` as the one being spent.
    pub fn run<R>(&self, budget: &mut Budget, f: impl FnOnce() -> R) -> R {
        /// Puts the budget back even if `f` unwinds.
        struct Restore<'a> {
            meter: &'a MeterState,
            budget: &'a mut Budget,
            previous: Option<Budget>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                if let Some(spent) = self.meter.current.replace(self.previous.take()) {
                    *self.budget = spent;
                }
            }
        }
        let previous = self.0.current.replace(Some(budget.clone()));
        let _restore = Restore {
            meter: &self.0,
            budget,
            previous,
        };
        f()
    }

    /// True when the running budget is over.
    fn spent(&self) -> bool {
        self.0
            .current
            .borrow()
            .as_ref()
            .is_some_and(|budget| budget.spent > self.0.limit)
    }

    /// Spend `n` instructions; true when the running budget is now over.
    fn spend(&self, n: u64) -> bool {
        match self.0.current.borrow_mut().as_mut() {
            Some(budget) => {
                budget.spent = budget.spent.saturating_add(n);
                budget.spent > self.0.limit
            }
            None => false,
        }
    }

    fn on_hook(&self, lua: &Lua, n: u64) -> mlua::Result<VmState> {
        if self.spend(n) {
            return Err(self.stop(lua));
        }
        Ok(VmState::Continue)
    }

    /// `charge(n)` from the hardened library functions.
    fn charge(&self, lua: &Lua, n: f64) -> mlua::Result<()> {
        // NaN and negative counts cost nothing; `as` saturates huge ones.
        if n > 0.0 && self.spend(n.ceil() as u64) {
            return Err(self.stop(lua));
        }
        Ok(())
    }

    /// The budget is spent: make the running coroutine raise at every
    /// instruction from now on, so that no `pcall` can catch the error and
    /// go on (the instruction after the `pcall` raises again), and return
    /// the error to raise now.
    fn stop(&self, lua: &Lua) -> mlua::Error {
        let meter = self.clone();
        // Failing to set it only means the error can be caught; it is still raised.
        let _ = lua
            .current_thread()
            .set_hook(HookTriggers::new().every_nth_instruction(1), move |lua, _| {
                meter.on_hook(lua, 1)
            });
        let owner = self
            .0
            .current
            .borrow()
            .as_ref()
            .map_or(BudgetOwner::TopLevel, |b| b.owner.clone());
        mlua::Error::external(InstructionLimitExceeded {
            site: running_site(lua).map(|s| format!("{s}: ")).unwrap_or_default(),
            owner,
            limit: self.0.limit,
        })
    }
}

/// `file:line` of the innermost pipeline code on the running stack (skipping
/// the sandbox's own Lua and any C functions).
fn running_site(lua: &Lua) -> Option<String> {
    (0..32).find_map(|level| {
        lua.inspect_stack(level, |debug| {
            let source = debug.source().source?.into_owned();
            let file = source.strip_prefix('@')?.to_string();
            Some(format!("{file}:{}", debug.current_line()?))
        })
        .flatten()
    })
}

/// `file:line` of the innermost pipeline code in a coroutine that died of an
/// error: Lua leaves such a coroutine's stack in place.
pub fn error_site(thread: &Thread) -> Option<String> {
    if thread.status() != ThreadStatus::Error {
        return None;
    }
    let state = thread.state();
    for level in 0..32 {
        // SAFETY: `state` is a coroutine kept alive by `thread`, not running
        // (it died of an error) and on this thread, the VM's only one.
        // lua_getstack and lua_getinfo("Sl") only read its call records into
        // `ar`; they push nothing and do not allocate.
        unsafe {
            let mut ar: mlua::ffi::lua_Debug = std::mem::zeroed();
            if mlua::ffi::lua_getstack(state, level, &mut ar) == 0 {
                return None;
            }
            if mlua::ffi::lua_getinfo(state, c"Sl".as_ptr(), &mut ar) == 0 || ar.source.is_null() {
                continue;
            }
            let source = CStr::from_ptr(ar.source).to_string_lossy();
            if let Some(file) = source.strip_prefix('@')
                && ar.currentline > 0
            {
                return Some(format!("{file}:{}", ar.currentline));
            }
        }
    }
    None
}

/// The VM refused an allocation (the memory limit).
pub fn is_memory_error(err: &mlua::Error) -> bool {
    match err {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        _ => false,
    }
}

/// The message of a Lua error, without mlua's wrapping ("runtime error: ", tracebacks).
pub fn error_message(err: &mlua::Error) -> String {
    match err {
        mlua::Error::RuntimeError(message) => match message.split_once("\nstack traceback:") {
            Some((message, _traceback)) => message.to_string(),
            None => message.clone(),
        },
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(message) => format!("out of memory: {message}"),
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::WithContext { context, cause } => {
            format!("{context}: {}", error_message(cause))
        }
        mlua::Error::ExternalError(inner) => inner.to_string(),
        other => other.to_string(),
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
        if let Some(line) = close_attribute_line(source.as_bytes()) {
            return Err(LoadError::Lua(mlua::Error::SyntaxError {
                message: close_refusal(display, line),
                incomplete_input: false,
            }));
        }
        source.to_string()
    };
    lua.load(text)
        .set_name(format!("@{display}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()
        .map_err(LoadError::Lua)
}

fn close_refusal(chunk: &str, line: usize) -> String {
    format!(
        "{chunk}:{line}: to-be-closed variables (<close>) are not allowed in the sandbox: \
         their __close can run where the instruction limit cannot stop it"
    )
}

/// The line of the first `<close>` attribute in Lua source, outside comments
/// and strings. A `__close` handler of a coroutine that the instruction limit
/// stopped runs with Lua's hooks off (the error was raised inside the hook,
/// and a dead coroutine keeps that state), so an endless one would hang the
/// run; refusing the attribute is the one reliable cut, since a metatable can
/// gain `__close` after `setmetatable`. (`< close >` used as two comparisons
/// is refused too; no pipeline needs that.)
fn close_attribute_line(source: &[u8]) -> Option<usize> {
    let is_name = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
    let skip_space = |mut i: usize| {
        while source.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut line = 1;
    let mut i = 0;
    while i < source.len() {
        match source[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'-' if source.get(i + 1) == Some(&b'-') => {
                i += 2;
                if let Some(end) = long_bracket_end(source, i) {
                    line += source[i..end].iter().filter(|&&b| b == b'\n').count();
                    i = end;
                } else {
                    while i < source.len() && source[i] != b'\n' {
                        i += 1;
                    }
                }
            }
            b'[' if long_bracket_end(source, i).is_some() => {
                let end = long_bracket_end(source, i).unwrap_or(source.len());
                line += source[i..end].iter().filter(|&&b| b == b'\n').count();
                i = end;
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < source.len() && source[i] != quote {
                    if source[i] == b'\\' {
                        i += 1;
                    }
                    if source.get(i) == Some(&b'\n') {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'<' => {
                let name = skip_space(i + 1);
                if source[name..].starts_with(b"close") && !is_name(source.get(name + 5)) {
                    let close = skip_space(name + 5);
                    if source.get(close) == Some(&b'>') {
                        return Some(line);
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Where a long bracket (`[[`, `[==[`) opening at `source[at..]` ends, just
/// past its closing bracket (or at the end of the source); None when there is
/// no long bracket at `at`.
fn long_bracket_end(source: &[u8], at: usize) -> Option<usize> {
    if source.get(at) != Some(&b'[') {
        return None;
    }
    let level = source[at + 1..].iter().take_while(|&&b| b == b'=').count();
    if source.get(at + 1 + level) != Some(&b'[') {
        return None;
    }
    let mut closing = vec![b']'];
    closing.extend(std::iter::repeat_n(b'=', level));
    closing.push(b']');
    let body = at + 2 + level;
    Some(
        source[body..]
            .windows(closing.len())
            .position(|w| w == closing.as_slice())
            .map_or(source.len(), |p| body + p + closing.len()),
    )
}

/// Where `print` and `warn` write, with the run's secrets masked. A secret
/// may be printed in pieces (or span lines), so the output is redacted as one
/// stream: only text that could be the start of a secret is held back, until
/// the next print or the end of the run.
struct PrintOutput {
    target: PrintTarget,
    redact: StreamRedactor<Redactor>,
    scratch: Vec<u8>,
}

impl PrintOutput {
    fn write(&mut self, text: &[u8]) {
        let redacted = self.redact.push(text, &mut self.scratch);
        write_to(&self.target, redacted);
    }

    fn flush(&mut self) {
        let tail = self.redact.finish();
        write_to(&self.target, &tail);
    }
}

fn write_to(target: &PrintTarget, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // A closed stdout/stderr is not the pipeline's fault; drop the text.
    let _ = match target {
        PrintTarget::Stdout => std::io::stdout().lock().write_all(bytes),
        PrintTarget::Stderr => std::io::stderr().lock().write_all(bytes),
        PrintTarget::Host(write) => {
            write(bytes);
            Ok(())
        }
    };
}

fn install_output(lua: &Lua, output: &Rc<RefCell<PrintOutput>>) -> mlua::Result<()> {
    let tostring: Function = lua.globals().get("tostring")?;
    let print_output = output.clone();
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
        print_output.borrow_mut().write(&line);
        Ok(())
    })?;
    lua.globals().set("print", print)?;

    // Lua's own `warn` writes to stderr behind our back (and would not
    // redact); this one is always on and goes where print goes.
    let warn_output = output.clone();
    let warn = lua.create_function(move |_, parts: mlua::Variadic<mlua::LuaString>| {
        if parts.is_empty() {
            return Err(mlua::Error::runtime(
                "bad argument #1 to 'warn' (string expected, got no value)",
            ));
        }
        let mut message: Vec<u8> = parts.iter().flat_map(|p| p.as_bytes().to_vec()).collect();
        // "@on" / "@off" switch Lua's warnings; these are always on.
        if parts.len() == 1 && message.starts_with(b"@") {
            return Ok(());
        }
        let mut line = b"Lua warning: ".to_vec();
        line.append(&mut message);
        line.push(b'\n');
        warn_output.borrow_mut().write(&line);
        Ok(())
    })?;
    lua.globals().set("warn", warn)
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
            confine_module(resolver, name, dir, &path, &display)?;
            return Ok((path, display));
        }
        tried.push(display);
    }
    Err(mlua::Error::runtime(format!(
        "module '{name}' not found: tried {}; built-in modules: {builtins}",
        tried.join(", ")
    )))
}

/// A module is the workspace's own code: refuse one that a symbolic link
/// takes outside the workspace (or outside the module directory when there
/// is no workspace).
fn confine_module(resolver: &Resolver, name: &str, dir: &Path, path: &Path, display: &str) -> mlua::Result<()> {
    let root = resolver.display_root.as_deref().unwrap_or(dir);
    let inside = match (path.canonicalize(), root.canonicalize()) {
        (Ok(real), Ok(root)) => real.starts_with(root),
        _ => false,
    };
    if inside {
        Ok(())
    } else {
        Err(mlua::Error::runtime(format!(
            "module '{name}': {display} leads outside {} (through a symbolic link); modules must be files of the workspace",
            if resolver.display_root.is_some() {
                "the workspace"
            } else {
                "the module directory"
            }
        )))
    }
}

/// The Fennel diagnostic inside a Lua error, if the error came from compiling a module.
pub fn fennel_error(err: &mlua::Error) -> Option<&FennelError> {
    err.chain().find_map(|e| e.downcast_ref::<FennelError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_attributes_are_found_outside_comments_and_strings() {
        let found = |src: &str| close_attribute_line(src.as_bytes());
        assert_eq!(found("local x <close> = f()"), Some(1));
        assert_eq!(found("\nlocal a, b < close\n > = f()"), Some(2));
        assert_eq!(found("local x <const> = 1"), None);
        assert_eq!(found("local x <closed> = 1"), None);
        assert_eq!(found("-- local x <close> = f()\nprint(1)"), None);
        assert_eq!(found("--[==[ <close> ]] still ]==] print(1)"), None);
        assert_eq!(
            found("s = '<close>' .. \"<close>\" .. [[<close>]] .. [=[\n<close>]=]"),
            None
        );
        assert_eq!(found("s = 'it\\'s <close>'"), None);
        assert_eq!(found("s = [[\n\n]] local x <close> = y"), Some(3));
        assert_eq!(found("x = 'unterminated <close>"), None);
        assert_eq!(found("x = [[unterminated <close>"), None);
    }

    #[test]
    fn sizes_read_in_their_largest_whole_unit() {
        assert_eq!(format_bytes(512 << 20), "512 MiB");
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes(1536 << 10), "1536 KiB");
        assert_eq!(format_bytes(1000), "1000 bytes");
    }
}
