//! `quire.stdlib`: helpers for run-fns, in Lua because they only use the
//! public runtime API (`runtime.sh`, `runtime.jobs`, `runtime.secret`).

use mlua::{Lua, Table};

const SOURCE: &str = include_str!("stdlib.lua");

/// Build the `quire.stdlib` module table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    lua.load(SOURCE).set_name("=quire.stdlib").call(())
}
