//! quire-core: everything of quire-ci but the command line.
//!
//! Data flows one way: source -> forms -> Lua -> registrations -> pipeline ->
//! scheduler -> runtime events -> wire events -> sinks.

pub mod ci;
pub mod diagnostic;
pub mod fennel;
pub mod lua;
pub mod secret;

#[cfg(test)]
mod test_support;
