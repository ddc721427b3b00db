//! Where in the pipeline code a job failed, when its error does not say.
//!
//! Lua starts an error message with the line that raised it, and the runtime
//! functions start theirs with the line that called them, both read from the
//! stack. A call in tail position (the last form of a Fennel function,
//! `return f(x)` in Lua) to a Lua function has replaced its caller's frame by
//! then; `runtime.sh` is such a function (a Lua wrapper that yields the
//! command to the job's driver), and so are the sandbox's hardened library functions and the
//! pipeline's own. When the run-fn itself made the tail call, nothing on the
//! job's stack is left to name its line, and the error may name none:
//! `runtime.sh` finds no caller, `(error msg 2)` blames a frame that is gone.
//!
//! The job's failure then names the line of that tail call, read from the
//! run-fn's bytecode, when all its tail calls are on one line. Otherwise it
//! names the line that declared the job, and says so.
//!
//! An error raised with a value that is not a message (`(error {:code 1})`),
//! or at level 0, names no line either, though its frame is there: the dead
//! coroutine's stack gives it. And a run-fn that returns something other than
//! a table or nil is named by the line that declared its job.

use mlua::{Lua, Thread};

use super::load::error_location;
use super::pipeline::Job;
use crate::lua::{error_site, started_with_tail_call, tail_call_lines};

/// `message`, the error that ended `job`'s coroutine `thread`, with a line of
/// the pipeline code in front when it names none: where the error was
/// raised, or where the run-fn's frame was replaced by a tail call.
pub fn locate_job_error(lua: &Lua, job: &Job, thread: &Thread, message: String) -> String {
    if error_location(&message).is_some() {
        return message;
    }
    // Not for a tail call: an error blaming the caller (`(error msg 2)`) of
    // a helper the run-fn tail-called would be put on the helper's line.
    if !started_with_tail_call(thread) {
        return match error_site(thread) {
            Some(site) => format!("{site}: {message}"),
            None => message,
        };
    }
    match job_site(lua, job) {
        Some(site) => format!("{site}: {message}"),
        None => message,
    }
}

/// The line a failure whose frames are all gone came from: the run-fn's tail
/// call, or the job's declaration.
fn job_site(lua: &Lua, job: &Job) -> Option<String> {
    let source = job.run_fn.info().source;
    if let Some(file) = source.as_deref().and_then(|s| s.strip_prefix('@'))
        && let Some([line]) = tail_call_lines(lua, &job.run_fn).as_deref()
    {
        return Some(format!("{file}:{line}"));
    }
    let declared = job.location.as_ref()?;
    Some(format!("{declared} (in job '{}', declared here)", job.id))
}
