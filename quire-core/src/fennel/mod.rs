//! The Fennel front-end: source text -> forms (reader) -> Lua text (compiler).
//!
//! The compiler is line-preserving: each Lua statement starts on the line of the
//! Fennel form it came from, so Lua error messages and tracebacks name ci.fnl lines.

// `FennelError` (returned by value in the reader/compiler contract) carries the file
// name and source so it renders on its own; it is big, but made once per failed read.
#![allow(clippy::result_large_err)]

pub mod compiler;
pub mod error;
pub mod form;
pub mod reader;

pub use compiler::CompileOptions;
pub use error::{FennelError, Stage};
pub use form::{Form, FormKind, Span};

/// Read and compile a whole Fennel source file to Lua text.
pub fn compile_source(source: &str, file: &str, options: &CompileOptions) -> Result<String, FennelError> {
    let source: std::sync::Arc<str> = source.into();
    let forms = reader::read_all(&source, file)?;
    compiler::compile(&forms, &source, file, options)
}
