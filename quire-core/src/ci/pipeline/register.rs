//! `quire.ci`: the registration API pipeline code calls.
//!
//! Registration records what it was given, however wrong, with the line that
//! gave it; `validate` then reports every problem at once.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use super::Location;

/// One `(ci.job id inputs run-fn)` call, as given.
#[derive(Debug, Clone)]
pub struct JobRegistration {
    pub id: Value,
    pub inputs: Value,
    pub run_fn: Value,
    /// How many arguments came after the run-fn, up to the last that is not
    /// nil: a job takes no options (they go to each `runtime.sh`), so any
    /// is a mistake to report.
    pub extra_arguments: usize,
    pub location: Option<Location>,
    /// Registered by quire itself (`ci.mirror`), so its id may use the reserved `quire/`.
    pub builtin: bool,
}

/// One `(ci.image name)` call, as given.
#[derive(Debug, Clone)]
pub struct ImageRegistration {
    pub name: Value,
    pub location: Option<Location>,
}

/// Everything pipeline code registered, in call order.
#[derive(Debug, Default)]
pub struct Registry {
    pub jobs: Vec<JobRegistration>,
    pub images: Vec<ImageRegistration>,
    /// The top-level code has run: the pipeline is what it registered, and
    /// a registration now (from a run-fn) would change nothing, so it raises.
    pub closed: bool,
}

impl Registry {
    /// An error for `ci.<function>` called after the pipeline loaded, if it was.
    fn refuse_late(&self, lua: &Lua, function: &str) -> mlua::Result<()> {
        if !self.closed {
            return Ok(());
        }
        let at = caller_location(lua).map(|l| format!("{l}: ")).unwrap_or_default();
        Err(mlua::Error::runtime(format!(
            "{at}ci.{function} is called from a job's run-fn, after the pipeline was loaded: \
             it would change nothing; call it from the top level of the pipeline"
        )))
    }
}

/// The id of the job `ci.mirror` registers.
pub const MIRROR_JOB_ID: &str = "quire/mirror";

/// Makes the run-fn of the mirror job: the stdlib helper, bound to its
/// arguments; or nil and what is wrong with them, found now rather than
/// when the job runs.
const MIRROR_JOB: &str = r#"
return function(url, opts)
  local stdlib = require("quire.stdlib")
  local problem = stdlib.mirror_problem(url, opts)
  if problem then return nil, problem end
  return function(runtime) return stdlib.mirror(runtime, url, opts) end
end
"#;

/// Build the `quire.ci` module table, recording into `registry`.
pub fn ci_module(lua: &Lua, registry: Rc<RefCell<Registry>>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let jobs = registry.clone();
    module.set(
        "job",
        lua.create_function(
            move |lua, (id, inputs, run_fn, extra): (Value, Value, Value, mlua::Variadic<Value>)| {
                jobs.borrow().refuse_late(lua, "job")?;
                let location = caller_location(lua);
                jobs.borrow_mut().jobs.push(JobRegistration {
                    id,
                    inputs,
                    run_fn,
                    // A nil passed on (`(ci.job id inputs f nil)`) gives nothing.
                    extra_arguments: extra.iter().rposition(|v| !v.is_nil()).map_or(0, |last| last + 1),
                    location,
                    builtin: false,
                });
                Ok(())
            },
        )?,
    )?;
    let mirrors = registry.clone();
    let mirror_job: Function = lua.load(MIRROR_JOB).set_name("=quire.ci").eval()?;
    module.set(
        "mirror",
        lua.create_function(move |lua, (url, opts): (Value, Value)| {
            mirrors.borrow().refuse_late(lua, "mirror")?;
            let location = caller_location(lua);
            let (run_fn, problem) = mirror_job.call::<(Value, Option<String>)>((url, opts.clone()))?;
            if let Some(problem) = problem {
                let at = location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
                return Err(mlua::Error::runtime(format!("{at}ci.mirror: {problem}")));
            }
            // The mirror runs after `:after` (default: on every push).
            let inputs = match &opts {
                Value::Table(t) => t.get::<Value>("after")?,
                _ => Value::Nil,
            };
            let inputs = match inputs {
                Value::Nil => Value::Table(lua.create_sequence_from(["quire/push"])?),
                after => after,
            };
            let id = Value::String(lua.create_string(MIRROR_JOB_ID)?);
            mirrors.borrow_mut().jobs.push(JobRegistration {
                id,
                inputs,
                run_fn,
                extra_arguments: 0,
                location,
                builtin: true,
            });
            Ok(())
        })?,
    )?;
    module.set(
        "image",
        lua.create_function(move |lua, name: Value| {
            registry.borrow().refuse_late(lua, "image")?;
            let location = caller_location(lua);
            registry.borrow_mut().images.push(ImageRegistration { name, location });
            Ok(())
        })?,
    )?;
    Ok(module)
}

/// The file and line of the pipeline code that called the running Rust
/// function (see [`crate::lua::caller_site`]).
pub fn caller_location(lua: &Lua) -> Option<Location> {
    crate::lua::caller_site(lua).map(|(file, line)| Location { file, line })
}
