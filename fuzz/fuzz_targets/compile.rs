//! Arbitrary UTF-8 through the whole front-end (reader + compiler): errors are
//! fine, panics are not, and whatever compiles must load as valid Lua.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use quire_core::fennel::{CompileOptions, compile_source};

/// Lua's standard globals, so programs get past strict-name checks.
static OPTIONS: LazyLock<CompileOptions> = LazyLock::new(|| CompileOptions {
    allowed_globals: [
        "_G", "assert", "error", "getmetatable", "ipairs", "math", "next", "pairs", "pcall", "print", "select",
        "setmetatable", "string", "table", "tonumber", "tostring", "type", "x", "y", "f",
    ]
    .iter()
    .map(|g| g.to_string())
    .collect(),
});

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = compile_source(text, "fuzz.fnl", &OPTIONS) {
            let lua = mlua::Lua::new();
            if let Err(e) = lua.load(&code).into_function() {
                // Lua's own limits (nesting, locals, registers) on absurd programs are
                // load errors the user sees with a line; anything else is our bug.
                if e.to_string().contains("too many") || e.to_string().contains("overflow") {
                    return;
                }
                panic!("compiled to invalid Lua: {e}\n--- fennel ---\n{text}\n--- lua ---\n{code}");
            }
        }
    }
});
