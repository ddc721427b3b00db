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
//! the run's secrets masked, and says which job printed it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Thread, Value};

use crate::fennel::{self, CompileOptions, FennelError};
use crate::secret::{Redactor, StreamRedactor};

mod close;
mod limits;
mod parser_limit;
mod tailcall;

use close::{close_attribute_line, close_refusal};
use limits::HOOK_INTERVAL;
pub use limits::{
    Budget, BudgetOwner, DEFAULT_INSTRUCTION_LIMIT, DEFAULT_MEMORY_LIMIT, INSTRUCTION_LIMIT_FLAG,
    InstructionLimitExceeded, InstructionMeter, Limits, MEMORY_LIMIT_FLAG, error_site, format_bytes,
};
pub use tailcall::{started_with_tail_call, tail_call_lines};

/// Where `print` writes. Never stdout during `run`: stdout belongs to the event stream.
#[derive(Clone, Default)]
pub enum PrintTarget {
    Stdout,
    #[default]
    Stderr,
    /// Handed to the host (during `run`, the reporter, which owns the terminal).
    Host(PrintHandler),
}

/// Takes what pipeline code prints, secrets already masked, with the job
/// whose code printed it (`None` for top-level code, see [`Printer::as_job`]).
pub type PrintHandler = Rc<dyn Fn(Option<&str>, &[u8])>;

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
const HARDEN: &str = include_str!("harden.lua");

/// The modules a pipeline's sandbox provides (registered by `ci::load`).
/// Elsewhere (`quire-ci fennel`) requiring one says that it is for pipelines.
pub const PIPELINE_MODULES: &[&str] = &["quire.ci", "quire.runtime", "quire.stdlib"];

/// A module the host provides to `require` under a fixed name.
pub type ModuleLoader = Box<dyn Fn(&Lua) -> mlua::Result<Value>>;

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
        let plain = lua.create_function(|lua, value: Value| match value {
            Value::Error(err) => Ok(Value::String(lua.create_string(error_message(&err))?)),
            other => Ok(other),
        })?;
        lua.load(HARDEN)
            .set_name("=sandbox")
            .call::<()>((charge, out_of_memory, budget_spent, refuse_close, plain))?;
        let output = Rc::new(RefCell::new(PrintOutput::new(options.print, options.redactor)));
        install_output(&lua, &output)?;
        let resolver = Rc::new(RefCell::new(Resolver {
            module_dir: options.module_dir,
            display_root: options.display_root,
            builtins: HashMap::new(),
            loaded: HashMap::new(),
            loading: Vec::new(),
        }));
        lua.set_app_data(resolver.clone());
        let require = lua.create_function(move |lua, name: Value| {
            let name = text_name_argument(lua, name, "require", "a module name (a string)")
                .map_err(|message| require_error(lua, message))?;
            require(lua, &resolver, &name)
        })?;
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
        let source = read_source(path, display)?;
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
        self.output.borrow_mut().flush_all();
    }

    /// The handle that tells `print` which job is printing.
    pub fn printer(&self) -> Printer {
        Printer(self.output.clone())
    }
}

/// Tells `print` and `warn` whose code is running, so each job's output is
/// its own stream: attributed to the job, and masked apart from the others.
#[derive(Clone)]
pub struct Printer(Rc<RefCell<PrintOutput>>);

impl Printer {
    /// Run `f` with what it prints attributed to `job`.
    pub fn as_job<R>(&self, job: &Rc<str>, f: impl FnOnce() -> R) -> R {
        /// Puts the previous job back even if `f` unwinds.
        struct Restore<'a>(&'a RefCell<PrintOutput>, Option<Rc<str>>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().job = self.1.take();
            }
        }
        let previous = self.0.borrow_mut().job.replace(job.clone());
        let _restore = Restore(&self.0, previous);
        f()
    }

    /// `job` has ended: write out what its stream held back as a possible
    /// start of a secret, and forget the stream.
    pub fn end_job(&self, job: &str) {
        self.0.borrow_mut().end_job(job);
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
    /// Without the path, which every caller names in its own words.
    #[error(transparent)]
    Read(std::io::Error),
    #[error(transparent)]
    Fennel(#[from] Box<FennelError>),
    #[error("{0}")]
    Lua(mlua::Error),
}

/// A source file's text. Bytes that are not UTF-8 are an error at their
/// line, as a syntax error is, rather than an I/O error about the file.
pub fn read_source(path: &Path, display: &str) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(LoadError::Read)?;
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        let message = format!(
            "the file is not UTF-8 text: byte 0x{:02x} is not part of a character",
            err.as_bytes()[at]
        );
        // Up to the bad byte, the replaced text is the file's; the byte is one U+FFFD.
        let text: std::sync::Arc<str> = String::from_utf8_lossy(err.as_bytes()).into();
        if path.extension().is_some_and(|e| e == "fnl") {
            let span = fennel::Span::new(at, at + char::REPLACEMENT_CHARACTER.len_utf8());
            LoadError::Fennel(Box::new(
                FennelError::new(fennel::Stage::Parse, message, span, display, &text)
                    .with_help("save the file as UTF-8"),
            ))
        } else {
            let (line, _) = fennel::error::line_column(&text, at);
            LoadError::Lua(mlua::Error::SyntaxError {
                message: format!("{display}:{line}: {message}"),
                incomplete_input: false,
            })
        }
    })
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
    lua.load(&text)
        .set_name(format!("@{display}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()
        .map_err(|err| {
            let limit = is_fennel
                .then(|| parser_limit::parser_limit_error(lua, source, &text, display, &error_message(&err)))
                .flatten();
            match limit {
                Some(limit) => LoadError::Fennel(Box::new(limit)),
                None => LoadError::Lua(err),
            }
        })
}

/// Where `print` and `warn` write, with the run's secrets masked. A secret
/// may be printed in pieces (or span lines), so the output of each printer
/// (top-level code, each job) is redacted as one stream: only text that could
/// be the start of a secret is held back, until that printer's next print or
/// its end.
struct PrintOutput {
    target: PrintTarget,
    redactor: Rc<Redactor>,
    /// The job whose code is running (see [`Printer::as_job`]); `None` at top level.
    job: Option<Rc<str>>,
    top_level: StreamRedactor<Rc<Redactor>>,
    /// One stream per job that has printed and not ended.
    jobs: HashMap<Rc<str>, StreamRedactor<Rc<Redactor>>>,
    scratch: Vec<u8>,
}

impl PrintOutput {
    fn new(target: PrintTarget, redactor: Redactor) -> PrintOutput {
        let redactor = Rc::new(redactor);
        PrintOutput {
            target,
            top_level: StreamRedactor::new(redactor.clone()),
            redactor,
            job: None,
            jobs: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    fn write(&mut self, text: &[u8]) {
        let redact = match &self.job {
            None => &mut self.top_level,
            Some(job) => self
                .jobs
                .entry(job.clone())
                .or_insert_with(|| StreamRedactor::new(self.redactor.clone())),
        };
        let redacted = redact.push(text, &mut self.scratch);
        write_to(&self.target, self.job.as_deref(), redacted);
    }

    fn end_job(&mut self, job: &str) {
        if let Some(mut redact) = self.jobs.remove(job) {
            write_to(&self.target, Some(job), &redact.finish());
        }
    }

    fn flush_all(&mut self) {
        let mut jobs: Vec<Rc<str>> = self.jobs.keys().cloned().collect();
        jobs.sort();
        for job in jobs {
            self.end_job(&job);
        }
        let tail = self.top_level.finish();
        write_to(&self.target, None, &tail);
    }
}

fn write_to(target: &PrintTarget, job: Option<&str>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // A closed stdout/stderr is not the pipeline's fault; drop the text.
    let _ = match target {
        PrintTarget::Stdout => std::io::stdout().lock().write_all(bytes),
        PrintTarget::Stderr => std::io::stderr().lock().write_all(bytes),
        PrintTarget::Host(write) => {
            write(job, bytes);
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
    let warn = lua.create_function(move |lua, values: mlua::Variadic<Value>| {
        if values.is_empty() {
            return Err(mlua::Error::runtime(
                "bad argument #1 to 'warn' (string expected, got no value)",
            ));
        }
        // Strings, and numbers as Lua coerces them; the words of Lua's own
        // `warn` for anything else, rather than mlua's about a conversion.
        let mut parts = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let got = value.type_name();
            let part = match value {
                Value::String(s) => Some(s),
                Value::Integer(_) | Value::Number(_) => lua.coerce_string(value)?,
                _ => None,
            };
            parts.push(part.ok_or_else(|| {
                mlua::Error::runtime(format!(
                    "bad argument #{} to 'warn' (string expected, got {got})",
                    i + 1
                ))
            })?);
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

/// The file and line of the code that called the running Rust function: the
/// nearest frame of a file's code (`runtime.sh` raises its errors from
/// Rust functions its Lua wrapper calls, one frame further). Compiled Fennel keeps its lines, so the line is
/// the Fennel line.
pub fn caller_site(lua: &Lua) -> Option<(String, usize)> {
    (1..8).find_map(|level| {
        lua.inspect_stack(level, |debug| {
            let source = debug.source().source?.into_owned();
            let file = source.strip_prefix('@')?.to_string();
            Some((file, debug.current_line()?))
        })
        .flatten()
    })
}

/// The name a sandbox function was given (`require`, `runtime.jobs` …): a
/// string, or a number as Lua coerces it. Anything else is a message saying
/// which function expected what, where mlua's conversion to `String` would
/// say neither ("bad argument #1: error converting Lua nil to String").
pub fn name_argument(lua: &Lua, value: Value, function: &str, expected: &str) -> Result<mlua::LuaString, String> {
    let got = value.type_name();
    match value {
        Value::String(name) => Ok(name),
        Value::Integer(_) | Value::Number(_) => lua.coerce_string(value).ok().flatten().ok_or_else(|| got.to_string()),
        _ => Err(got.to_string()),
    }
    .map_err(|got| format!("{function} expects {expected}, got {got}"))
}

/// [`name_argument`], as UTF-8 text.
pub fn text_name_argument(lua: &Lua, value: Value, function: &str, expected: &str) -> Result<String, String> {
    let name = name_argument(lua, value, function, expected)?;
    name.to_str()
        .map(|name| name.to_string())
        .map_err(|_| format!("{function} expects {expected}, got a string that is not valid UTF-8"))
}

/// An error of `require` itself, starting with the `file:line: ` of the
/// code that called it (read now, while its frame is on the stack).
fn require_error(lua: &Lua, message: impl std::fmt::Display) -> mlua::Error {
    match caller_site(lua) {
        Some((file, line)) => mlua::Error::runtime(format!("{file}:{line}: {message}")),
        None => mlua::Error::runtime(message.to_string()),
    }
}

fn require(lua: &Lua, resolver: &Rc<RefCell<Resolver>>, name: &str) -> mlua::Result<Value> {
    if let Some(value) = resolver.borrow().loaded.get(name) {
        return Ok(value.clone());
    }
    let cycle = {
        let resolver = resolver.borrow();
        resolver.loading.iter().position(|n| n == name).map(|start| {
            let mut chain = resolver.loading[start..].to_vec();
            chain.push(name.to_string());
            chain.join(" -> ")
        })
    };
    if let Some(chain) = cycle {
        return Err(require_error(
            lua,
            format!("module '{name}' requires itself (a require cycle: {chain})"),
        ));
    }
    let builtin = resolver.borrow_mut().builtins.remove(name);
    let value = if let Some(loader) = builtin {
        let value = loader(lua)?;
        resolver.borrow_mut().builtins.insert(name.to_string(), loader);
        value
    } else {
        let found = find_module(&resolver.borrow(), name);
        let (path, display) = found.map_err(|message| require_error(lua, message))?;
        let function = read_source(&path, &display)
            .and_then(|source| load_source(lua, &source, &path, &display))
            .map_err(|e| match e {
                LoadError::Read(err) => require_error(lua, format!("cannot read {display}: {err}")),
                // Unboxed, so that `fennel_error` finds the diagnostic again.
                LoadError::Fennel(err) => mlua::Error::external(*err),
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
fn find_module(resolver: &Resolver, name: &str) -> Result<(PathBuf, String), String> {
    if PIPELINE_MODULES.contains(&name) {
        // Not registered: this sandbox runs a script, not a pipeline.
        return Err(format!(
            "module '{name}' is only available to pipelines (.quire/ci.fnl, as loaded by \
             `quire-ci validate` and `quire-ci run`), not to files run by `quire-ci fennel`"
        ));
    }
    let builtins = if resolver.builtins.is_empty() {
        String::new()
    } else {
        let mut names: Vec<&str> = resolver.builtins.keys().map(String::as_str).collect();
        names.sort();
        format!("; built-in modules: {}", names.join(", "))
    };
    let valid = !name.is_empty()
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if !valid {
        // Where names resolve: `.quire/` for a pipeline, the file's directory for `quire-ci fennel`.
        let under = match &resolver.module_dir {
            Some(dir) => {
                let shown = match &resolver.display_root {
                    Some(root) => dir.strip_prefix(root).unwrap_or(dir),
                    None => dir,
                };
                format!(", resolved under {}/", shown.display())
            }
            None => String::new(),
        };
        return Err(format!(
            "module '{name}' not found: module names are dot-separated words (letters, digits, _ and -){under}{builtins}"
        ));
    }
    let Some(dir) = &resolver.module_dir else {
        return Err(format!("module '{name}' not found{builtins}"));
    };
    let relative: PathBuf = name.split('.').collect();
    let mut tried = Vec::new();
    for ext in ["fnl", "lua"] {
        let path = dir.join(&relative).with_extension(ext);
        let display = match &resolver.display_root {
            Some(root) => path.strip_prefix(root).unwrap_or(&path).display().to_string(),
            None => path.display().to_string(),
        };
        // Whatever is there: a directory named x.fnl is a module that
        // cannot be read, not a missing one.
        if path.exists() {
            confine_module(resolver, name, dir, &path, &display)?;
            return Ok((path, display));
        }
        tried.push(display);
    }
    Err(format!(
        "module '{name}' not found: tried {}{builtins}",
        tried.join(", ")
    ))
}

/// A module is the workspace's own code: refuse one that a symbolic link
/// takes outside the workspace (or outside the module directory when there
/// is no workspace).
fn confine_module(resolver: &Resolver, name: &str, dir: &Path, path: &Path, display: &str) -> Result<(), String> {
    let root = resolver.display_root.as_deref().unwrap_or(dir);
    let inside = match (path.canonicalize(), root.canonicalize()) {
        (Ok(real), Ok(root)) => real.starts_with(root),
        _ => false,
    };
    if inside {
        Ok(())
    } else {
        Err(format!(
            "module '{name}': {display} leads outside {} (through a symbolic link); modules must be files of the workspace",
            if resolver.display_root.is_some() {
                "the workspace"
            } else {
                "the module directory"
            }
        ))
    }
}

/// The Fennel diagnostic inside a Lua error, if the error came from compiling a module.
pub fn fennel_error(err: &mlua::Error) -> Option<&FennelError> {
    err.chain().find_map(|e| e.downcast_ref::<FennelError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Printed = Rc<RefCell<Vec<(Option<String>, String)>>>;

    /// A sandbox whose prints land in the returned list, with "ab\ncd" a secret.
    fn sandbox() -> (Sandbox, Printed) {
        let printed: Printed = Rc::default();
        let into = printed.clone();
        let handler = move |job: Option<&str>, text: &[u8]| {
            into.borrow_mut()
                .push((job.map(str::to_string), String::from_utf8_lossy(text).into_owned()))
        };
        let sandbox = Sandbox::new(SandboxOptions {
            print: PrintTarget::Host(Rc::new(handler)),
            redactor: Redactor::for_secrets([b"ab\ncd".to_vec()]),
            ..SandboxOptions::default()
        })
        .unwrap();
        (sandbox, printed)
    }

    fn print(sandbox: &Sandbox, text: &str) {
        let print: Function = sandbox.lua().globals().get("print").unwrap();
        print.call::<()>(text).unwrap();
    }

    #[test]
    fn each_job_prints_its_own_masked_stream_let_go_when_it_ends() {
        let (sandbox, printed) = sandbox();
        let printer = sandbox.printer();
        let (a, b): (Rc<str>, Rc<str>) = ("a".into(), "b".into());
        print(&sandbox, "top");
        // "ab\n" could start the secret: each job's is held back on its own.
        printer.as_job(&a, || print(&sandbox, "ab"));
        printer.as_job(&b, || print(&sandbox, "ab"));
        printer.as_job(&a, || print(&sandbox, "cd"));
        printer.end_job("a");
        printer.end_job("b");
        let expected = [(None, "top\n"), (Some("a"), "***\n"), (Some("b"), "ab\n")];
        let expected: Vec<_> = expected
            .iter()
            .map(|(job, text)| (job.map(str::to_string), text.to_string()))
            .collect();
        assert_eq!(*printed.borrow(), expected);
    }

    #[test]
    fn warn_takes_strings_and_numbers_and_names_anything_else_as_lua_does() {
        let (sandbox, printed) = sandbox();
        let warn = |code: &str| sandbox.lua().load(code).exec().map_err(|e| error_message(&e));
        assert_eq!(warn("warn('cache ', 'cold: ', 3)"), Ok(()));
        assert_eq!(printed.borrow()[0].1, "Lua warning: cache cold: 3\n");
        let refused = warn("warn('a', {})").unwrap_err();
        assert!(
            refused.contains("bad argument #2 to 'warn' (string expected, got table)"),
            "{refused}"
        );
        let refused = warn("warn()").unwrap_err();
        assert!(refused.contains("(string expected, got no value)"), "{refused}");
    }
}
