//! The lines of a Lua function's own tail calls, read from its bytecode.
//!
//! A tail call to a Lua function (`return f(x)`, what the last form of a
//! Fennel function compiles to) reuses the caller's frame, so a failure
//! beneath it finds no line of the caller on the stack. A job's run-fn is the
//! bottom of its coroutine: when its frame is gone, it made a tail call, and
//! if all its tail calls sit on one line, that line is where the failure came
//! from. Lua keeps no record of which tail call was made; the function's
//! bytecode says where its tail calls are.
//!
//! The bytecode is read from `lua_dump` of the function, in the format of the
//! Lua 5.4 the sandbox is built with (`ldump.c`). Anything unexpected gives
//! `None`, never a guess.

use std::ffi::c_void;
use std::os::raw::c_int;

use mlua::thread::ThreadStatus;
use mlua::{Function, Lua, Thread, ffi};

/// `OP_TAILCALL` in Lua 5.4's `lopcodes.h`.
const OP_TAILCALL: u32 = 69;
/// The `lineinfo` entry that says "see `abslineinfo`" (`ldebug.h`).
const ABSLINEINFO: i8 = -0x80;

/// The distinct lines, in order, of the tail calls `f` itself makes (not
/// those of functions defined inside it). `None` for a C function, or when
/// the bytecode cannot be read.
pub fn tail_call_lines(lua: &Lua, f: &Function) -> Option<Vec<usize>> {
    let bytes = dump(lua, f)?;
    let mut reader = Reader { bytes: &bytes, pos: 0 };
    reader.header()?;
    reader.byte()?; // the main closure's upvalue count
    let proto = reader.function()?;
    let mut lines = proto.tail_call_lines()?;
    lines.sort_unstable();
    lines.dedup();
    Some(lines)
}

/// Whether the function a coroutine that died of an error was started with
/// had made a tail call to a Lua function: its frame is gone, the bottom
/// frame of the coroutine's stack (which Lua leaves in place) is the callee's.
pub fn started_with_tail_call(thread: &Thread) -> bool {
    if thread.status() != ThreadStatus::Error {
        return false;
    }
    let state = thread.state();
    // SAFETY: `state` is a coroutine kept alive by `thread`, not running (it
    // died of an error) and on this thread, the VM's only one. lua_getstack
    // and lua_getinfo("t") only read its call records into `ar`; they push
    // nothing and do not allocate.
    let frame = |level: i32| unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        (ffi::lua_getstack(state, level, &mut ar) != 0).then_some(ar)
    };
    // The deepest level there is, found in O(log n) steps: each step walks
    // the stack, which may be a deep recursion's.
    if frame(0).is_none() {
        return false;
    }
    let mut high = 1;
    while frame(high).is_some() {
        if high > i32::MAX / 2 {
            return false;
        }
        high *= 2;
    }
    let mut low = high / 2; // exists; `high` does not
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if frame(mid).is_some() {
            low = mid;
        } else {
            high = mid;
        }
    }
    let Some(mut ar) = frame(low) else { return false };
    // SAFETY: as above; `ar` was filled by lua_getstack for this state.
    unsafe { ffi::lua_getinfo(state, c"t".as_ptr(), &mut ar) != 0 && ar.istailcall != 0 }
}

/// `lua_dump` of `f`, with its debug information (line numbers).
fn dump(lua: &Lua, f: &Function) -> Option<Vec<u8>> {
    unsafe extern "C-unwind" fn writer(
        _state: *mut ffi::lua_State,
        buf: *const c_void,
        len: usize,
        data: *mut c_void,
    ) -> c_int {
        if len > 0 {
            // SAFETY: `data` is the Vec passed to lua_dump below, alive for the
            // call; `buf` holds `len` bytes Lua hands over for this call only.
            unsafe {
                let data = &mut *(data as *mut Vec<u8>);
                data.extend_from_slice(std::slice::from_raw_parts(buf as *const u8, len));
            }
        }
        0
    }
    let mut bytes: Vec<u8> = Vec::new();
    let data = &mut bytes as *mut Vec<u8> as *mut c_void;
    let mut dumped = false;
    // SAFETY: the closure gets a stack holding `f` alone; lua_dump reads the
    // function on top and only calls `writer`, which appends to `bytes`
    // (alive until exec_raw returns). The stack is left empty: no results.
    let result = unsafe {
        lua.exec_raw::<()>(f.clone(), |state| {
            if ffi::lua_iscfunction(state, -1) == 0 {
                dumped = ffi::lua_dump(state, writer, data, 0) == 0;
            }
            ffi::lua_settop(state, 0);
        })
    };
    (result.is_ok() && dumped).then_some(bytes)
}

/// What is needed of one function prototype.
struct Proto {
    line_defined: usize,
    code: Vec<u32>,
    line_info: Vec<i8>,
    /// `(pc, line)` pairs, by pc.
    abs_line_info: Vec<(usize, usize)>,
}

impl Proto {
    /// The line of each `OP_TAILCALL`, as `luaG_getfuncline` computes it.
    fn tail_call_lines(&self) -> Option<Vec<usize>> {
        if self.line_info.len() != self.code.len() {
            return None; // stripped of debug information
        }
        let mut lines = Vec::new();
        let mut line = self.line_defined as i64;
        for (pc, (&instruction, &delta)) in self.code.iter().zip(&self.line_info).enumerate() {
            if delta == ABSLINEINFO {
                let &(_, abs) = self.abs_line_info.iter().find(|&&(at, _)| at == pc)?;
                line = abs as i64;
            } else {
                line += i64::from(delta);
            }
            if instruction & 0x7f == OP_TAILCALL {
                lines.push(usize::try_from(line).ok()?);
            }
        }
        Some(lines)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let taken = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// `dumpSize`: 7 bits a byte, most significant first, the last byte marked by 0x80.
    fn size(&mut self) -> Option<usize> {
        let mut value: usize = 0;
        loop {
            let b = self.byte()?;
            value = value.checked_mul(128)? | usize::from(b & 0x7f);
            if b & 0x80 != 0 {
                return Some(value);
            }
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        match self.size()? {
            0 => Some(()),
            n => self.take(n - 1).map(|_| ()),
        }
    }

    /// `dumpHeader`, for the Lua this VM is: 5.4, official format, 4-byte
    /// instructions, 8-byte integers and floats.
    fn header(&mut self) -> Option<()> {
        let expected: &[u8] = b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
        (self.take(expected.len())? == expected).then_some(())?;
        (self.take(8)? == 0x5678i64.to_ne_bytes()).then_some(())?;
        (self.take(8)? == 370.5f64.to_ne_bytes()).then_some(())
    }

    /// `dumpFunction`.
    fn function(&mut self) -> Option<Proto> {
        self.skip_string()?; // source
        let line_defined = self.size()?;
        self.size()?; // lastlinedefined
        self.take(3)?; // numparams, is_vararg, maxstacksize
        let n = self.size()?;
        let code = self
            .take(n.checked_mul(4)?)?
            .chunks_exact(4)
            .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        for _ in 0..self.size()? {
            // Constants, by type tag (`lobject.h`).
            match self.byte()? {
                0 | 1 | 17 => {} // nil, false, true
                3 | 19 => {
                    self.take(8)?; // integer, float
                }
                4 | 20 => self.skip_string()?, // short, long string
                _ => return None,
            }
        }
        let upvalues = self.size()?;
        self.take(upvalues.checked_mul(3)?)?;
        for _ in 0..self.size()? {
            self.function()?; // nested functions: their tail calls are their own
        }
        let n = self.size()?;
        let line_info = self.take(n)?.iter().map(|&b| b as i8).collect();
        let mut abs_line_info = Vec::new();
        for _ in 0..self.size()? {
            abs_line_info.push((self.size()?, self.size()?));
        }
        for _ in 0..self.size()? {
            self.skip_string()?; // local variable name
            self.size()?;
            self.size()?;
        }
        for _ in 0..self.size()? {
            self.skip_string()?; // upvalue name
        }
        Some(Proto {
            line_defined,
            code,
            line_info,
            abs_line_info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(source: &str) -> Option<Vec<usize>> {
        let lua = Lua::new();
        let f: Function = lua.load(source).set_name("@test.lua").eval().unwrap();
        tail_call_lines(&lua, &f)
    }

    #[test]
    fn finds_the_line_of_each_tail_call() {
        assert_eq!(
            lines("return function(rt)\n  rt.sh('a')\n  return rt.sh('b') end"),
            Some(vec![3])
        );
        assert_eq!(
            lines(
                "return function(rt, x)\n  if x then\n    return rt.sh('a')\n  else\n    return rt.sh('b')\n  end\nend"
            ),
            Some(vec![3, 5])
        );
        // A call whose value is returned in parentheses, or not at all, is no tail call.
        assert_eq!(
            lines("return function(rt)\n  rt.sh('a')\n  return (rt.sh('b'))\nend"),
            Some(vec![])
        );
        // Two on one line are one line.
        assert_eq!(
            lines("return function(rt, x) if x then return rt.sh('a') else return rt.sh('b') end end"),
            Some(vec![1])
        );
    }

    #[test]
    fn tail_calls_of_nested_functions_are_theirs() {
        let source = "return function(rt)\n  local function f() return rt.sh('a') end\n  f()\n  return g(function() return 1 end, 'x', 1.5, 2, true, nil)\nend";
        assert_eq!(lines(source), Some(vec![4]));
    }

    #[test]
    fn lines_far_apart_and_long_functions_are_followed() {
        // A jump of more than 127 lines, and more than 128 instructions,
        // both of which Lua records as absolute lines.
        let mut source = String::from("return function(rt)\n");
        for i in 0..300 {
            source.push_str(&format!("  rt.sh('{i}')\n"));
        }
        source.push_str(&"\n".repeat(200));
        source.push_str("  return rt.sh('last')\nend");
        assert_eq!(lines(&source), Some(vec![502]));
    }

    #[test]
    fn a_coroutine_whose_first_function_tail_called_is_told_apart() {
        let lua = Lua::new();
        let died = |source: &str| {
            let f: Function = lua.load(source).eval().unwrap();
            let thread = lua.create_thread(f).unwrap();
            assert!(thread.resume::<()>(()).is_err());
            started_with_tail_call(&thread)
        };
        let fail = "local function fail() error('x') end\n";
        assert!(died(&format!("{fail}return function() return fail() end")));
        assert!(!died(&format!("{fail}return function() fail() end")));
        // A C function called in tail position leaves the caller's frame.
        assert!(!died("return function() return error('x') end"));
        // Deep below the first function, the bottom frame is still found.
        let deep = "local function down(n) if n == 0 then error('x') end down(n - 1) end\n";
        assert!(died(&format!("{deep}return function() return down(1000) end")));
        assert!(!died(&format!("{deep}return function() down(1000) end")));
        // Only a coroutine that died of an error has a stack to read.
        let done = lua
            .create_thread(lua.load("return function() end").eval().unwrap())
            .unwrap();
        done.resume::<()>(()).unwrap();
        assert!(!started_with_tail_call(&done));
    }

    #[test]
    fn a_c_function_has_none() {
        let lua = Lua::new();
        let print: Function = lua.globals().get("print").unwrap();
        assert_eq!(tail_call_lines(&lua, &print), None);
    }
}
