//! The runtime table a run-fn receives: `sh`, `jobs`, `secret`, `env`
//! (design §4, "Runtime primitives"), and the events a run produces.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, LightUserData, Lua, Table, Thread, Value, ffi};
use tokio::sync::watch;

use super::event::{Event, EventKind, RunOutcome, now_ms};
use super::pipeline::register::caller_location;
use super::pipeline::{Location, Pipeline, SOURCES, printable};
use super::process::{self, CommandLine, LogMade, OutputStream, ShError, ShOutput, ShRequest};
use super::schedule::Stop;
use crate::diagnostic::render_plain;
use crate::lua::{name_argument, text_name_argument};
use crate::secret::Redactor;

/// What a run tells its observers: every wire event, plus what only a person
/// watching needs (command output, the error that failed a job).
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    Wire(Event),
    /// One line (or a piece of an overlong line) of a command's output, secrets redacted.
    Output {
        job_id: String,
        stream: OutputStream,
        line: Vec<u8>,
    },
    /// Text pipeline code printed (`print`, `warn`), secrets redacted: by
    /// `job_id`'s code, or by top-level code (`None`). Usually whole lines,
    /// but masking may hand over a line in pieces (text held back as the
    /// possible start of a secret), and a masked secret may swallow a
    /// newline: a job's last line ends at its `job_finished`.
    Print {
        job_id: Option<String>,
        text: Vec<u8>,
    },
    /// Why a job failed, sent just before its `job_finished`.
    JobError {
        job_id: String,
        message: String,
    },
    /// Something a person should know that changes no outcome (git
    /// refusing the workspace's repository, so the push is read as outside one).
    Warning(String),
}

/// A consumer of runtime events: the events sink, the human reporter.
pub trait Observer {
    /// A failure stops the run: the record would be incomplete (exit 3).
    fn observe(&mut self, event: &RuntimeEvent) -> std::io::Result<()>;

    /// One line of command output: [`RuntimeEvent::Output`] without copying
    /// the job id and the line, as a loud command prints millions of lines.
    fn output(&mut self, job_id: &str, stream: OutputStream, line: &[u8]) -> std::io::Result<()> {
        self.observe(&RuntimeEvent::Output {
            job_id: job_id.to_string(),
            stream,
            line: line.to_vec(),
        })
    }
}

/// A shared observer, so its owner can still reach it during the run (the
/// reporter's flush and tick tasks).
impl<T: Observer> Observer for Rc<RefCell<T>> {
    fn observe(&mut self, event: &RuntimeEvent) -> std::io::Result<()> {
        self.borrow_mut().observe(event)
    }

    fn output(&mut self, job_id: &str, stream: OutputStream, line: &[u8]) -> std::io::Result<()> {
        self.borrow_mut().output(job_id, stream, line)
    }
}

/// The observer that failed, and why.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[diagnostic(code(quire::record))]
// The cause is in the message, not a `source`: a rendered diagnostic
// (`run_finished.error`) would show it twice.
pub enum RecordError {
    #[error("cannot write the run record: {0}")]
    Events(std::io::Error),
    #[error("cannot write log {path}: {cause}")]
    Log { path: PathBuf, cause: std::io::Error },
}

/// Fans events out to every observer; the first failure stops the run.
pub struct Emitter {
    observers: Vec<Box<dyn Observer>>,
    failure: Option<RecordError>,
    stop: watch::Sender<bool>,
}

impl Emitter {
    pub fn new(observers: Vec<Box<dyn Observer>>) -> Self {
        Emitter {
            observers,
            failure: None,
            stop: watch::Sender::new(false),
        }
    }

    pub fn emit(&mut self, event: RuntimeEvent) {
        let mut failure = None;
        for observer in &mut self.observers {
            if let Err(err) = observer.observe(&event) {
                failure.get_or_insert(err);
            }
        }
        if let Some(err) = failure {
            self.fail(RecordError::Events(err));
        }
    }

    /// One line of command output to every observer (see [`Observer::output`]).
    pub fn output(&mut self, job_id: &str, stream: OutputStream, line: &[u8]) {
        let mut failure = None;
        for observer in &mut self.observers {
            if let Err(err) = observer.output(job_id, stream, line) {
                failure.get_or_insert(err);
            }
        }
        if let Some(err) = failure {
            self.fail(RecordError::Events(err));
        }
    }

    pub fn wire(&mut self, kind: EventKind) {
        self.emit(RuntimeEvent::Wire(Event::now(kind)));
    }

    /// The run's last event, `run_finished`. Once the record has failed
    /// (during the run, or on this very event at an earlier observer) the
    /// run ends `failed`, whatever it was going to say, with the failure
    /// (masked by `redactor`) in `error`, after any error it already had:
    /// its record is incomplete (exit 3). Each observer gets the end as it
    /// stands when the event reaches it, so one placed after the events
    /// sink (the human reporter) learns of a failure to write this event.
    pub fn run_finished(&mut self, outcome: RunOutcome, error: Option<String>, redactor: &Redactor) {
        let at_ms = now_ms();
        for i in 0..self.observers.len() {
            let kind = match &self.failure {
                None => EventKind::RunFinished {
                    outcome,
                    error: error.clone(),
                },
                Some(failure) => {
                    let failure = redactor.redact_str(&render_plain(failure));
                    EventKind::RunFinished {
                        outcome: RunOutcome::Failed,
                        error: Some(match &error {
                            Some(error) => format!("{error}\n\n{failure}"),
                            None => failure,
                        }),
                    }
                }
            };
            if let Err(err) = self.observers[i].observe(&RuntimeEvent::Wire(Event { at_ms, kind })) {
                self.fail(RecordError::Events(err));
            }
        }
    }

    /// Record a failure to keep the run record and ask the run to stop.
    pub fn fail(&mut self, error: RecordError) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
        self.stop.send_replace(true);
    }

    pub fn failure(&self) -> Option<&RecordError> {
        self.failure.as_ref()
    }

    pub fn take_failure(&mut self) -> Option<RecordError> {
        self.failure.take()
    }

    /// Becomes true when the record can no longer be written.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// What every job of one run shares.
pub struct RunContext {
    pub workspace: PathBuf,
    /// Logs go to `<out_dir>/jobs/<job_id>/sh-<n>.log`.
    pub out_dir: PathBuf,
    pub log_made: LogMade,
    pub secrets: BTreeMap<String, Vec<u8>>,
    pub redactor: Redactor,
    pub emitter: Rc<RefCell<Emitter>>,
    /// Set when the run is stopping: commands are terminated, none start.
    pub cancel: watch::Receiver<bool>,
    /// An outside request to stop, which holds before the scheduler has seen
    /// it and set `cancel`.
    pub stop: Stop,
    /// Bounds every command that sets no `:timeout`.
    pub default_timeout: Option<Duration>,
    pub kill_grace: Duration,
    /// Outputs of sources and finished jobs, by id (a skipped job has none).
    pub outputs: RefCell<HashMap<String, Value>>,
    /// Makes a job's runtime table into a read-only view of it (see [`read_only_view`]).
    pub read_only_view: Function,
    /// Copies an output for the job reading it (see [`output_copier`]).
    pub copy_output: Function,
}

impl RunContext {
    /// The run is stopping, or has been asked to (see [`Stop`]).
    pub fn cancelled(&self) -> bool {
        *self.cancel.borrow() || self.stop.requested().is_some()
    }
}

/// One job's view of the run.
pub struct JobContext {
    pub run: Rc<RunContext>,
    pub job_id: String,
    /// The graph the job sits in, which decides what `runtime.jobs` may read.
    pub pipeline: Rc<Pipeline>,
    /// This job's index in `pipeline.jobs`.
    pub index: usize,
    /// How many `sh` calls the job has made.
    pub sh_count: Cell<u32>,
    /// `<out_dir>/jobs/<job_id>/sh-`, the start of each command's log path.
    pub log_prefix: OsString,
    /// Why the command `runtime.sh` asked for failed, for it to raise.
    pub sh_failure: RefCell<Option<ShFailure>>,
}

/// Why a command asked for by `runtime.sh` failed (or never started).
pub enum ShFailure {
    /// A message to start with the caller's line, which only the coroutine's
    /// stack can tell.
    Located(String),
    /// An error to raise as it is.
    Error(mlua::Error),
}

impl JobContext {
    /// What [`JobContext::log_prefix`] holds: `<out_dir>/jobs/<job_id>/sh-`.
    pub fn log_prefix(out_dir: &Path, job_id: &str) -> OsString {
        out_dir.join("jobs").join(job_id).join("sh-").into_os_string()
    }

    /// The log of the job's `n`-th command, `<out_dir>/jobs/<job_id>/sh-<n>.log`.
    fn log_path(&self, n: u32) -> PathBuf {
        log_path(&self.log_prefix, n)
    }
}

/// `<prefix><n>.log`, the same path as joining `sh-<n>.log` to the directory
/// the prefix was made from, in one allocation.
fn log_path(prefix: &OsString, n: u32) -> PathBuf {
    use std::io::Write;
    // "4294967295.log" at most after the prefix.
    let mut path = Vec::with_capacity(prefix.len() + 14);
    path.extend_from_slice(prefix.as_bytes());
    // Writing to a Vec cannot fail.
    let _ = write!(path, "{n}.log");
    PathBuf::from(OsString::from_vec(path))
}

/// What the job's `runtime.sh` yields first, to ask the job's driver for a
/// command; the driver resumes it with the same value first. Pipeline code
/// cannot make a light userdata, so it can neither fake a request nor an
/// answer.
pub fn sh_token(job: &Rc<JobContext>) -> LightUserData {
    LightUserData(Rc::as_ptr(job) as *mut std::ffi::c_void)
}

/// The runtime table for one job, whose run-fn runs in `thread`.
/// `sh_wrapper` is [`RuntimeGlobal::sh_wrapper`].
pub fn runtime_table(lua: &Lua, job: &Rc<JobContext>, thread: &Thread, sh_wrapper: &Function) -> mlua::Result<Table> {
    let table = lua.create_table()?;

    // Commands run from the job's own coroutine, checked in Lua (the
    // wrapper compares the running coroutine with `thread`). From a coroutine
    // it created, the command's wait would suspend only that coroutine and
    // the job would go on, running commands side by side (and could finish
    // with one still running), which breaks the pairing of its events; a
    // runtime table smuggled to another job (or kept past its job's end)
    // would record commands under the wrong job.
    let ctx = job.clone();
    let refuse = lua.create_function(move |lua, ()| -> mlua::Result<()> {
        Err(mlua::Error::runtime(format!(
            "{}runtime.sh: job '{}' runs commands from its run-fn only, not from a coroutine it created, \
             nor from another job or after it has finished",
            caller_prefix(lua),
            ctx.job_id
        )))
    })?;
    let ctx = job.clone();
    let raise = lua.create_function(move |lua, ()| -> mlua::Result<()> {
        Err(match ctx.sh_failure.take() {
            Some(ShFailure::Located(message)) => mlua::Error::runtime(format!("{}{message}", caller_prefix(lua))),
            Some(ShFailure::Error(error)) => error,
            None => mlua::Error::runtime("runtime.sh: no command failed"),
        })
    })?;
    let sh: Function = sh_wrapper.call((thread, sh_token(job), refuse, raise))?;
    table.set("sh", sh)?;

    let ctx = job.clone();
    let jobs = lua.create_function(move |lua, name: Value| {
        let name = text_name_argument(lua, name, "runtime.jobs", "a job id (a string)")
            .map_err(|message| mlua::Error::runtime(format!("{}{message}", caller_prefix(lua))))?;
        // Every job descends from a source, so sources are always readable.
        let readable = SOURCES.contains(&name.as_str())
            || ctx
                .pipeline
                .job_index(&name)
                .is_some_and(|j| ctx.pipeline.is_ancestor(j, ctx.index));
        if !readable {
            let allowed = ctx.pipeline.ancestor_names(ctx.index).join(", ");
            return Err(mlua::Error::runtime(format!(
                "{}runtime.jobs: '{name}' is not an input of job '{}' (directly or indirectly); it can read: {allowed}",
                caller_prefix(lua),
                ctx.job_id
            )));
        }
        // A copy: a job that changes what it read changes nothing for the
        // jobs reading it after (or beside) it.
        let output = ctx.run.outputs.borrow().get(&name).cloned().unwrap_or(Value::Nil);
        ctx.run.copy_output.call::<Value>(output)
    })?;
    table.set("jobs", jobs)?;

    let ctx = job.clone();
    let secret = lua.create_function(move |lua, name: Value| {
        let name = text_name_argument(lua, name, "runtime.secret", "a secret's name (a string)")
            .map_err(|message| mlua::Error::runtime(format!("{}{message}", caller_prefix(lua))))?;
        match ctx.run.secrets.get(&name) {
            Some(value) => lua.create_string(value),
            None => {
                let declared = if ctx.run.secrets.is_empty() {
                    "no secrets are declared (use --secret NAME=env:VAR or NAME=file:PATH)".to_string()
                } else {
                    format!(
                        "declared: {}",
                        ctx.run.secrets.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                Err(mlua::Error::runtime(format!(
                    "{}runtime.secret: unknown secret '{name}'; {declared}",
                    caller_prefix(lua)
                )))
            }
        }
    })?;
    table.set("secret", secret)?;

    let env = lua.create_function(|lua, name: Value| {
        let name = name_argument(lua, name, "runtime.env", "a variable's name (a string)")
            .map_err(|message| mlua::Error::runtime(format!("{}{message}", caller_prefix(lua))))?;
        // A name is bytes, as the environment's are.
        match std::env::var_os(std::ffi::OsStr::from_bytes(&name.as_bytes())) {
            Some(value) => Ok(Value::String(lua.create_string(value.as_encoded_bytes())?)),
            None => Ok(Value::Nil),
        }
    })?;
    table.set("env", env)?;

    // The job's code gets a view it cannot change (nor, through it, the global `runtime`).
    job.run.read_only_view.call(table)
}

/// `file:line: ` of the pipeline code calling the running runtime function,
/// to start its error messages with; empty when a tail call left no frame of
/// pipeline code on the stack. Read only for an error: `runtime.sh` reads it
/// when it raises one (from `refuse` or `raise`, called by its Lua wrapper,
/// the frame between them and the caller).
fn caller_prefix(lua: &Lua) -> CallerPrefix {
    CallerPrefix(caller_location(lua))
}

struct CallerPrefix(Option<Location>);

impl std::fmt::Display for CallerPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(location) => write!(f, "{location}: "),
            None => Ok(()),
        }
    }
}

/// A Lua function making a read-only view of a table: reads go through (the
/// view's `__index` is the table itself, so `runtime.sh` costs one lookup
/// more and no call); writes, `rawset` (the sandbox's refuses a metatable
/// locked as "read-only") and `setmetatable` are refused. A job's code gets
/// this view of its runtime table, so it cannot swap `runtime.sh` for its
/// own function and have the global `runtime` call that.
pub fn read_only_view(lua: &Lua) -> mlua::Result<Function> {
    let error: Function = lua.globals().get("error")?;
    lua.load(
        "local error, setmetatable = ...\n\
         return function(t) return setmetatable({}, {\n\
           __index = t,\n\
           __newindex = function() error(\"runtime is read-only\", 2) end,\n\
           __metatable = \"read-only\",\n\
         }) end",
    )
    .set_name("=runtime")
    .call((error, lua.globals().get::<Function>("setmetatable")?))
}

/// A Lua function copying a job's output (or the push's) for a job that reads
/// it, tables all the way down (shared and cyclic ones copied once, as
/// shared and cyclic), with their metatables where those are not locked;
/// functions and other values as they are. Outputs are small, and each read
/// is charged to the reader's instruction budget like any code of its own.
pub fn output_copier(lua: &Lua) -> mlua::Result<Function> {
    lua.load(
        r#"local next, type, getmetatable, setmetatable = ...
local function copy(value, seen)
  if type(value) ~= "table" then return value end
  local done = seen[value]
  if done then return done end
  local t = {}
  seen[value] = t
  for k, v in next, value do t[copy(k, seen)] = copy(v, seen) end
  local meta = getmetatable(value)
  if type(meta) == "table" then setmetatable(t, meta) end
  return t
end
return function(value) return copy(value, {}) end"#,
    )
    .set_name("=runtime.jobs")
    .call((
        lua.globals().get::<Function>("next")?,
        lua.globals().get::<Function>("type")?,
        lua.globals().get::<Function>("getmetatable")?,
        lua.globals().get::<Function>("setmetatable")?,
    ))
}

/// `runtime.sh`'s result, `{exit, cmd, stdout, stderr}` (without the two
/// streams when `streams` is `None`), made in one protected call: through
/// mlua, making each string and setting each field is a protected call of
/// its own.
fn sh_result(lua: &Lua, exit: i32, cmd: &str, streams: Option<(&[u8], &[u8])>) -> mlua::Result<Table> {
    // SAFETY: the closure runs in a protected call with a stack of its own
    // (no arguments) and room for the 2 values it pushes at most. Every call
    // below may only fail to allocate, which raises a Lua error that the
    // protected call turns into an Err; the closure holds nothing to drop.
    // The fields are set on a new table without a metatable, so no
    // metamethod runs. The table is left on top, the one result.
    unsafe {
        lua.exec_raw::<Table>((), |state| {
            ffi::lua_createtable(state, 0, 4);
            ffi::lua_pushinteger(state, exit.into());
            ffi::lua_setfield(state, -2, c"exit".as_ptr());
            ffi::lua_pushlstring(state, cmd.as_ptr().cast(), cmd.len());
            ffi::lua_setfield(state, -2, c"cmd".as_ptr());
            if let Some((stdout, stderr)) = streams {
                ffi::lua_pushlstring(state, stdout.as_ptr().cast(), stdout.len());
                ffi::lua_setfield(state, -2, c"stdout".as_ptr());
                ffi::lua_pushlstring(state, stderr.as_ptr().cast(), stderr.len());
                ffi::lua_setfield(state, -2, c"stderr".as_ptr());
            }
        })
    }
}

/// Captured output past this size (both streams) becomes Lua strings only
/// when read; below it, at once (a metatable would cost more than the copy).
const LAZY_CAPTURE: usize = 64 * 1024;

/// The metatable that makes `stdout` and `stderr` of an sh result into Lua
/// strings when the pipeline first reads them. A Lua string is always a copy,
/// so a loud command's capture (up to 16 MiB a stream) would otherwise be held
/// twice, in Rust and in Lua, even when nothing reads it.
///
/// The bytes stay with the metatable, not with the first table that reads
/// them: a job's output is copied for each job that reads it (see
/// [`output_copier`]), and the copies share this metatable.
fn captured_output(lua: &Lua, stdout: Vec<u8>, stderr: Vec<u8>) -> mlua::Result<Table> {
    let captured = [stdout, stderr];
    let index = lua.create_function(move |lua, (result, key): (Table, Value)| {
        let bytes = match &key {
            Value::String(name) if name.as_bytes().as_ref() == b"stdout" => &captured[0],
            Value::String(name) if name.as_bytes().as_ref() == b"stderr" => &captured[1],
            _ => return Ok(Value::Nil),
        };
        let text = Value::String(lua.create_string(bytes)?);
        result.raw_set(key, text.clone())?;
        Ok(text)
    })?;
    let meta = lua.create_table()?;
    meta.set("__index", index)?;
    Ok(meta)
}

/// The global `runtime`: a read-only view of the runtime of whichever job is
/// running. Jobs are coroutines of one VM, run (polled) one at a time, so
/// the running job is the one being polled, whatever coroutine of its own
/// (`coroutine.create`, `coroutine.wrap`) it is in.
#[derive(Clone)]
pub struct RuntimeGlobal {
    current: Rc<RefCell<Option<Table>>>,
    /// Makes a job's `runtime.sh` (see `SH_WRAPPER`).
    pub sh_wrapper: Function,
}

/// `runtime.sh` is a Lua function that yields the job's coroutine with a
/// request: the job's driver (`schedule::drive`) runs the command and
/// resumes the coroutine with the result table, or with `false`, and then
/// the wrapper raises the failure the driver left with `raise`. A call in
/// tail position replaces the caller's frame, as with any Lua function. The
/// caller's line is read (for an error) in `refuse` and `raise`, which the
/// wrapper calls: the caller is the frame below the wrapper's. Made before
/// any pipeline code runs, with the coroutine functions as they are then.
///
/// Only the job's coroutine may ask: the wrapper compares it with the
/// running one. A coroutine is never handed to another job's run-fn while
/// its object lives: mlua reuses only the threads of its async calls
/// (`Function::call_async`), which nothing here makes.
const SH_WRAPPER: &str = r#"
local running, yield, setmetatable = ...
return function(thread, token, refuse, raise)
  -- Weak: a runtime kept past its job (in a global) keeps no coroutine, and
  -- so no stack of a failed job, alive.
  local job = setmetatable({thread}, {__mode = "v"})
  return function(cmd, opts)
    if running() ~= job[1] then refuse() end
    local from, result = yield(token, cmd, opts)
    -- Resumed by other code (coroutine.resume of the job's coroutine) while
    -- the command runs: wait on, giving it nothing.
    while from ~= token do from, result = yield() end
    if result then return result end
    raise()
  end
end
"#;

const RUNTIME_GLOBAL: &str = r#"
local current, error = ...
runtime = setmetatable({}, {
  __index = function(_, key)
    local rt = current()
    if rt == nil then error("runtime is only available while a job runs", 2) end
    return rt[key]
  end,
  __newindex = function() error("runtime is read-only", 2) end,
  -- Locked, and marked for the sandbox's rawset, which would otherwise write
  -- into the view itself, shadowing a field of every job's runtime.
  __metatable = "read-only",
})
"#;

impl RuntimeGlobal {
    pub fn install(lua: &Lua) -> mlua::Result<RuntimeGlobal> {
        let coroutine: Table = lua.globals().get("coroutine")?;
        let sh_wrapper = lua.load(SH_WRAPPER).set_name("=runtime.sh").call((
            coroutine.get::<Function>("running")?,
            coroutine.get::<Function>("yield")?,
            lua.globals().get::<Function>("setmetatable")?,
        ))?;
        let global = RuntimeGlobal {
            current: Rc::default(),
            sh_wrapper,
        };
        let current = global.current.clone();
        let lookup = lua.create_function(move |_, ()| Ok(current.borrow().clone()))?;
        let error: mlua::Function = lua.globals().get("error")?;
        lua.load(RUNTIME_GLOBAL)
            .set_name("=runtime")
            .call::<()>((lookup, error))?;
        Ok(global)
    }

    /// Run `f` as the job whose runtime table is `runtime`.
    pub fn run_as<R>(&self, runtime: &Table, f: impl FnOnce() -> R) -> R {
        /// Puts the previous runtime back even if `f` unwinds.
        struct Restore<'a>(&'a RefCell<Option<Table>>, Option<Table>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                *self.0.borrow_mut() = self.1.take();
            }
        }
        let previous = self.current.replace(Some(runtime.clone()));
        let _restore = Restore(&self.current, previous);
        f()
    }
}

/// The request for the process layer, and whether a non-zero exit is allowed.
fn parse_sh_args(ctx: &JobContext, cmd: Value, opts: Value) -> Result<(ShRequest, bool), String> {
    let command = match cmd {
        Value::String(s) => CommandLine::Shell(s.to_str().map_err(|_| "the command is not valid UTF-8")?.to_string()),
        Value::Table(t) => {
            let mut argv = Vec::new();
            for word in t.sequence_values::<Value>() {
                match word.map_err(|e| e.to_string())? {
                    Value::String(s) => {
                        argv.push(s.to_str().map_err(|_| "an argument is not valid UTF-8")?.to_string())
                    }
                    Value::Integer(i) => argv.push(i.to_string()),
                    Value::Number(n) => argv.push(n.to_string()),
                    other => {
                        return Err(format!(
                            "each word of an argv sequence must be a string, got {}",
                            other.type_name()
                        ));
                    }
                }
            }
            if argv.is_empty() {
                return Err("the argv sequence is empty".to_string());
            }
            CommandLine::Argv(argv)
        }
        other => {
            return Err(format!(
                "expected a command string or an argv sequence, got {}",
                other.type_name()
            ));
        }
    };
    let mut request = ShRequest {
        command,
        cwd: ctx.run.workspace.clone(),
        env: Vec::new(),
        timeout: ctx.run.default_timeout,
        kill_grace: ctx.run.kill_grace,
        log_path: PathBuf::new(),
        log_made: ctx.run.log_made,
    };
    let opts = match opts {
        Value::Nil => return Ok((request, false)),
        Value::Table(t) => t,
        other => {
            return Err(format!("options must be a table, got {}", other.type_name()));
        }
    };
    let mut allow_failure = false;
    for pair in opts.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| e.to_string())?;
        let key = match &key {
            Value::String(s) => s.to_string_lossy(),
            other => {
                return Err(format!("option keys are names like :env, got {}", other.type_name()));
            }
        };
        match (key.as_str(), value) {
            ("env", Value::Table(env)) => {
                for pair in env.pairs::<Value, Value>() {
                    let (name, value) = pair.map_err(|e| format!(":env: {e}"))?;
                    let name = env_name(&name)?;
                    let shown = printable(&name);
                    let value = match value {
                        Value::String(s) => s
                            .to_str()
                            .map_err(|_| format!(":env {shown} is not valid UTF-8"))?
                            .to_string(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        Value::Boolean(b) => b.to_string(),
                        other => {
                            return Err(format!(
                                ":env {shown} must be a string, a number or a boolean, got {}",
                                other.type_name()
                            ));
                        }
                    };
                    if value.contains('\0') {
                        return Err(format!(
                            ":env {shown} contains a NUL byte, which cannot be in a variable's value"
                        ));
                    }
                    request.env.push((name, value));
                }
                request.env.sort();
            }
            ("cwd", Value::String(dir)) => {
                request.cwd = confine(&ctx.run.workspace, &dir.to_string_lossy())?;
            }
            ("timeout", Value::Integer(secs)) if secs > 0 => request.timeout = Some(Duration::from_secs(secs as u64)),
            // Past what a Duration holds (`math.huge` included) no command
            // can run: no timeout, overriding `--timeout`. The process layer
            // treats one the clock cannot count the same way.
            ("timeout", Value::Number(secs)) if secs > 0.0 => {
                request.timeout = Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
            }
            ("timeout", other) => {
                return Err(format!(
                    ":timeout must be a positive number of seconds, got {}",
                    show(&other)
                ));
            }
            ("allow-failure", Value::Boolean(allowed)) => allow_failure = allowed,
            ("env" | "cwd" | "allow-failure", other) => {
                let wanted = match key.as_str() {
                    "env" => r#"a table of variables, as in {:NAME "value"}"#,
                    "cwd" => "a directory of the workspace, as a string",
                    _ => "true or false",
                };
                return Err(format!(":{key} must be {wanted}, got {}", other.type_name()));
            }
            (other, _) => {
                return Err(format!(
                    "unknown option :{other} (known: :env :cwd :timeout :allow-failure)"
                ));
            }
        }
    }
    Ok((request, allow_failure))
}

/// A key of `:env`, if it can name an environment variable: a non-empty
/// string without `=` (the environment's `NAME=value` would split at the
/// first one, setting another variable) or NUL.
fn env_name(key: &Value) -> Result<String, String> {
    let name = match key {
        Value::String(s) => s
            .to_str()
            .map_err(|_| ":env has a name that is not valid UTF-8".to_string())?,
        other => {
            let got = match other {
                Value::Integer(_) | Value::Number(_) => format!("the number {}", show(other)),
                other => other.type_name().to_string(),
            };
            return Err(format!(
                ":env names must be strings, got {got} (:env maps names to values, as in {{:NAME \"value\"}})"
            ));
        }
    };
    if name.is_empty() {
        Err(":env has an empty name".to_string())
    } else if name.contains('=') {
        Err(format!(
            ":env name '{}' contains '=', which cannot be in a variable's name",
            printable(&name)
        ))
    } else if name.contains('\0') {
        Err(format!(
            ":env name '{}' contains a NUL byte, which cannot be in a variable's name",
            printable(&name)
        ))
    } else {
        Ok(name.to_string())
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => show_number(*n),
        other => other.type_name().to_string(),
    }
}

/// A float the way a person wrote it: `-1e300`, not three hundred digits.
fn show_number(n: f64) -> String {
    if n.is_nan() {
        "nan".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if n == 0.0 || (1e-4..1e15).contains(&n.abs()) {
        n.to_string()
    } else {
        format!("{n:e}")
    }
}

/// `:cwd` is relative to the workspace and must stay inside it.
fn confine(workspace: &Path, dir: &str) -> Result<PathBuf, String> {
    let relative = Path::new(dir);
    if relative.is_absolute() {
        return Err(format!(":cwd must be relative to the workspace, got {dir}"));
    }
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => return Err(format!(":cwd {dir} leaves the workspace")),
        }
    }
    let joined = workspace.join(relative);
    // Symlinks could still lead out; check where the directory really is.
    if let (Ok(real), Ok(root)) = (joined.canonicalize(), workspace.canonicalize())
        && !real.starts_with(&root)
    {
        return Err(format!(":cwd {dir} leaves the workspace (through a symbolic link)"));
    }
    Ok(joined)
}

/// Run the command `runtime.sh` asked for with `cmd` and `opts`: its result
/// table, or why it failed (see [`ShFailure`]).
pub async fn run_sh(lua: &Lua, ctx: &Rc<JobContext>, cmd: Value, opts: Value) -> Result<Table, ShFailure> {
    let (request, allow_failure) =
        parse_sh_args(ctx, cmd, opts).map_err(|e| ShFailure::Located(format!("runtime.sh: {e}")))?;
    sh(lua, ctx, request, allow_failure).await
}

async fn sh(lua: &Lua, ctx: &Rc<JobContext>, mut request: ShRequest, allow_failure: bool) -> Result<Table, ShFailure> {
    let run = &ctx.run;
    if run.cancelled() {
        return Err(ShFailure::Error(mlua::Error::runtime(
            "runtime.sh: the run is stopping; no new commands start",
        )));
    }
    let n = ctx.sh_count.get() + 1;
    ctx.sh_count.set(n);
    request.log_path = ctx.log_path(n);
    let display = request.command.display_redacted(&run.redactor);
    run.emitter.borrow_mut().wire(EventKind::ShStarted {
        job_id: ctx.job_id.clone(),
        cmd: display.clone(),
    });

    let mut on_line = |stream: OutputStream, line: &[u8]| run.emitter.borrow_mut().output(&ctx.job_id, stream, line);
    let mut cancel = run.cancel.clone();
    let result = process::run(&request, &run.redactor, &mut on_line, &mut cancel).await;
    let output = match result {
        Ok(output) => output,
        Err(ShError::Log {
            path,
            source,
            exit_code,
        }) => {
            let message = format!("cannot write log {}: {source}", path.display());
            run.emitter.borrow_mut().fail(RecordError::Log { path, cause: source });
            // A command whose log could not be made was not started.
            run.emitter.borrow_mut().wire(EventKind::ShFinished {
                job_id: ctx.job_id.clone(),
                exit_code: exit_code.unwrap_or(process::EXIT_CANNOT_RUN),
            });
            return Err(ShFailure::Located(message));
        }
    };
    run.emitter.borrow_mut().wire(EventKind::ShFinished {
        job_id: ctx.job_id.clone(),
        exit_code: output.exit_code,
    });

    if output.exit_code != 0 && !allow_failure {
        let why = if output.timed_out {
            let secs = request.timeout.map(|t| t.as_secs_f64()).unwrap_or_default();
            format!("timed out after {secs}s (exit code 124)")
        } else if output.cancelled {
            format!(
                "was stopped because the run is stopping (exit code {})",
                output.exit_code
            )
        } else if let Some(reason) = &output.not_started {
            format!("could not be started (exit code 127): {reason}")
        } else {
            format!("exited with code {}", output.exit_code)
        };
        return Err(ShFailure::Located(format!("command `{display}` {why}")));
    }
    result_table(lua, output, &display).map_err(ShFailure::Error)
}

/// What `runtime.sh` returns for a command that ran: its code, its command
/// line and its output (see [`sh_result`], [`captured_output`]).
fn result_table(lua: &Lua, output: ShOutput, display: &str) -> mlua::Result<Table> {
    let result = if output.stdout.len() + output.stderr.len() <= LAZY_CAPTURE {
        sh_result(lua, output.exit_code, display, Some((&output.stdout, &output.stderr)))?
    } else {
        let result = sh_result(lua, output.exit_code, display, None)?;
        result.set_metatable(Some(captured_output(lua, output.stdout, output.stderr)?))?;
        result
    };
    if output.stdout_truncated {
        result.raw_set("stdout-truncated", true)?;
    }
    if output.stderr_truncated {
        result.raw_set("stderr-truncated", true)?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_strings_that_can_name_a_variable() {
        let lua = Lua::new();
        let string = |s: &str| Value::String(lua.create_string(s).unwrap());
        for name in ["PATH", "lower_case", "with.dot", "with-dash", "é", "A B"] {
            assert_eq!(env_name(&string(name)), Ok(name.to_string()));
        }
        assert_eq!(
            env_name(&string("A=B")),
            Err(":env name 'A=B' contains '=', which cannot be in a variable's name".into())
        );
        assert_eq!(
            env_name(&string("A\0B")),
            Err(r":env name 'A\0B' contains a NUL byte, which cannot be in a variable's name".into())
        );
        assert_eq!(env_name(&string("")), Err(":env has an empty name".into()));
        let hint = r#"(:env maps names to values, as in {:NAME "value"})"#;
        assert_eq!(
            env_name(&Value::Integer(1)),
            Err(format!(":env names must be strings, got the number 1 {hint}"))
        );
        assert_eq!(
            env_name(&Value::Number(-1e300)),
            Err(format!(":env names must be strings, got the number -1e300 {hint}"))
        );
        assert_eq!(
            env_name(&Value::Table(lua.create_table().unwrap())),
            Err(format!(":env names must be strings, got table {hint}"))
        );
        assert_eq!(
            env_name(&Value::String(lua.create_string(b"\xff").unwrap())),
            Err(":env has a name that is not valid UTF-8".into())
        );
    }

    #[test]
    fn log_paths_are_the_joined_paths() {
        for out_dir in ["out", "out/", "/tmp/x/out", "./out//", ""] {
            for job in ["build", "a.b-c_d", "é"] {
                let prefix = JobContext::log_prefix(Path::new(out_dir), job);
                for n in [1, 9, 10, 99, 100, 4_000_000_000, u32::MAX] {
                    let joined = Path::new(out_dir).join("jobs").join(job).join(format!("sh-{n}.log"));
                    assert_eq!(log_path(&prefix, n), joined);
                    assert_eq!(log_path(&prefix, n).as_os_str(), joined.as_os_str());
                }
            }
        }
    }

    #[test]
    fn numbers_in_messages_read_as_written() {
        assert_eq!(show_number(-1e300), "-1e300");
        assert_eq!(show_number(1.5), "1.5");
        assert_eq!(show_number(0.0), "0");
        assert_eq!(show_number(f64::NAN), "nan");
        assert_eq!(show_number(f64::NEG_INFINITY), "-inf");
        assert_eq!(show_number(1e-7), "1e-7");
    }

    /// Keeps the wire events it sees; fails from the `fail_at`-th on (1-based).
    struct Sink {
        seen: Rc<RefCell<Vec<EventKind>>>,
        fail_at: Option<usize>,
    }

    impl Observer for Sink {
        fn observe(&mut self, event: &RuntimeEvent) -> std::io::Result<()> {
            let RuntimeEvent::Wire(event) = event else {
                return Ok(());
            };
            let mut seen = self.seen.borrow_mut();
            seen.push(event.kind.clone());
            match self.fail_at {
                Some(n) if seen.len() >= n => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
                _ => Ok(()),
            }
        }
    }

    type Seen = Rc<RefCell<Vec<EventKind>>>;

    /// An emitter with a sink failing from its `fail_at`-th event, then an
    /// observer that never fails; and what each saw.
    fn emitter(fail_at: Option<usize>) -> (Emitter, Seen, Seen) {
        let (sink, after) = (Rc::default(), Rc::default());
        let observers: Vec<Box<dyn Observer>> = vec![
            Box::new(Sink {
                seen: Rc::clone(&sink),
                fail_at,
            }),
            Box::new(Sink {
                seen: Rc::clone(&after),
                fail_at: None,
            }),
        ];
        (Emitter::new(observers), sink, after)
    }

    fn finished(outcome: RunOutcome, error: Option<&str>) -> EventKind {
        EventKind::RunFinished {
            outcome,
            error: error.map(str::to_string),
        }
    }

    const NO_SPACE: &str = "quire::record\n\n  × cannot write the run record: No space left on device (os error 28)";

    #[test]
    fn run_finished_says_what_the_run_says_while_the_record_holds() {
        let (mut emitter, sink, after) = emitter(None);
        emitter.run_finished(RunOutcome::Complete, None, &Redactor::default());
        assert_eq!(*sink.borrow(), [finished(RunOutcome::Complete, None)]);
        assert_eq!(*after.borrow(), [finished(RunOutcome::Complete, None)]);
        assert!(emitter.take_failure().is_none());
    }

    #[test]
    fn a_run_whose_record_failed_ends_failed_with_the_failure_after_its_own_error() {
        let (mut emitter, sink, after) = emitter(None);
        emitter.fail(RecordError::Log {
            path: "out/jobs/a/sh-1.log".into(),
            cause: std::io::Error::other("gone, with s3cret"),
        });
        emitter.run_finished(
            RunOutcome::Cancelled,
            Some("why".into()),
            &Redactor::new([b"s3cret".to_vec()]),
        );
        let want = finished(
            RunOutcome::Failed,
            Some("why\n\nquire::record\n\n  × cannot write log out/jobs/a/sh-1.log: gone, with ***"),
        );
        assert_eq!(*sink.borrow(), *after.borrow());
        assert_eq!(*after.borrow(), [want]);
    }

    #[test]
    fn observers_after_the_sink_learn_that_it_could_not_write_run_finished() {
        let (mut emitter, sink, after) = emitter(Some(1));
        emitter.run_finished(RunOutcome::Complete, None, &Redactor::default());
        assert_eq!(*sink.borrow(), [finished(RunOutcome::Complete, None)]);
        assert_eq!(*after.borrow(), [finished(RunOutcome::Failed, Some(NO_SPACE))]);
        assert!(matches!(emitter.take_failure(), Some(RecordError::Events(_))));
    }
}
