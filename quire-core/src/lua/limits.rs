//! How far pipeline code may go: an instruction budget per owner (the
//! top-level code, each job) counted by a hook, and a memory limit on the VM.

use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{HookTriggers, Lua, Thread, VmState};

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
pub(super) const HOOK_INTERVAL: u32 = 1000;

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
    pub(super) fn new(limit: u64) -> Self {
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
    pub(super) fn spent(&self) -> bool {
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

    pub(super) fn on_hook(&self, lua: &Lua, n: u64) -> mlua::Result<VmState> {
        if self.spend(n) {
            return Err(self.stop(lua));
        }
        Ok(VmState::Continue)
    }

    /// `charge(n)` from the hardened library functions.
    pub(super) fn charge(&self, lua: &Lua, n: f64) -> mlua::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_their_largest_whole_unit() {
        assert_eq!(format_bytes(512 << 20), "512 MiB");
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes(1536 << 10), "1536 KiB");
        assert_eq!(format_bytes(1000), "1000 bytes");
    }
}
