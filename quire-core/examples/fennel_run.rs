//! Dev harness: compile a .fnl file and run it in a plain Lua 5.4 VM.
//!
//! usage: fennel_run FILE.fnl
//! A compile error prints `FILE:LINE:COL: message` on stderr; a Lua error
//! prints its message. Both exit with status 1.

use std::process::ExitCode;

use quire_core::fennel::{CompileOptions, compile_source};

const LUA_GLOBALS: &[&str] = &[
    "_G",
    "_VERSION",
    "assert",
    "collectgarbage",
    "coroutine",
    "dofile",
    "error",
    "getmetatable",
    "io",
    "ipairs",
    "load",
    "loadfile",
    "math",
    "next",
    "os",
    "package",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "require",
    "select",
    "setmetatable",
    "string",
    "table",
    "tonumber",
    "tostring",
    "type",
    "utf8",
    "xpcall",
    "warn",
];

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: fennel_run FILE.fnl");
        return ExitCode::from(2);
    };
    let source = match std::fs::read_to_string(&path) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = CompileOptions {
        allowed_globals: LUA_GLOBALS.iter().map(|g| g.to_string()).collect(),
    };
    let lua_code = match compile_source(&source, &path, &options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os("FENNEL_RUN_SHOW_LUA").is_some() {
        eprintln!("{lua_code}");
    }
    let lua = mlua::Lua::new();
    match lua.load(&lua_code).set_name(format!("@{path}")).exec() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
