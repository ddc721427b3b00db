//! One module per subcommand; each returns the process exit code.

pub mod fennel;
pub mod generate;
pub mod report;
pub mod run;
pub mod validate;

use std::path::{Path, PathBuf};

use miette::Diagnostic;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum WorkspaceError {
    #[error("workspace {} does not exist", .0.display())]
    #[diagnostic(code(quire::workspace), help("pass the directory holding .quire/ci.fnl with -w DIR"))]
    Missing(PathBuf),
    #[error("workspace {} is not a directory", .0.display())]
    #[diagnostic(code(quire::workspace))]
    NotADirectory(PathBuf),
}

/// The workspace as an absolute path, so logs and `:cwd` don't depend on where we are.
pub fn resolve_workspace(dir: &Path) -> Result<PathBuf, WorkspaceError> {
    if !dir.exists() {
        return Err(WorkspaceError::Missing(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(WorkspaceError::NotADirectory(dir.to_path_buf()));
    }
    std::path::absolute(dir).map_err(|_| WorkspaceError::Missing(dir.to_path_buf()))
}
