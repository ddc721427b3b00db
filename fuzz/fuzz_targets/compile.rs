//! Arbitrary UTF-8 through the whole front-end (reader + compiler), with the
//! sandbox's globals as pipelines get them: errors are fine, panics (and stack
//! overflows) are not, and whatever compiles must load as valid Lua.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quire_core::fennel::compile_source;
use quire_core::lua::Sandbox;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = compile_source(text, "fuzz.fnl", &Sandbox::compile_options()) {
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
