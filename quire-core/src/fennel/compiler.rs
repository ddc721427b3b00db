//! The compiler: forms -> Lua 5.4 source text, line-preserving.

use std::collections::HashSet;
use std::sync::Arc;

use super::error::FennelError;
use super::form::Form;

/// What the compiled program may see.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Global names the program may reference (strict names: any other global is an error).
    pub allowed_globals: HashSet<String>,
}

/// Compile the top-level forms of one file. The chunk returns the value of the last form.
pub fn compile(forms: &[Form], source: &Arc<str>, file: &str, options: &CompileOptions) -> Result<String, FennelError> {
    let _ = (forms, source, file, options);
    todo!("compiler")
}
