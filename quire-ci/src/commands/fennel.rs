//! `quire-ci fennel FILE`: run a Fennel file in the sandbox (its `print` to
//! stdout), or with `--compile` print the Lua it compiles to.

use quire_core::ci::load::lua_error_message;
use quire_core::fennel::{FennelError, compile_source};
use quire_core::lua::{BudgetOwner, LoadError, PrintTarget, Sandbox, SandboxOptions, fennel_error, read_source};

use crate::cli::FennelArgs;
use crate::{exit, report_error};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum FennelCommandError {
    /// `error` is in the message, not a `source`: miette would print it a second time.
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fennel(Box<FennelError>),
    /// A Lua error at run time; its message names the file and line.
    #[error("{0}")]
    Lua(String),
}

impl FennelCommandError {
    fn from_lua(err: &mlua::Error) -> Self {
        match fennel_error(err) {
            Some(fennel) => FennelCommandError::Fennel(Box::new(fennel.clone())),
            None => FennelCommandError::Lua(lua_error_message(err)),
        }
    }
}

pub fn run(args: &FennelArgs) -> u8 {
    match execute(args) {
        Ok(()) => exit::OK,
        Err(err) => {
            let code = if matches!(err, FennelCommandError::Read { .. }) {
                exit::USAGE
            } else {
                exit::FAILED
            };
            report_error(err);
            code
        }
    }
}

fn execute(args: &FennelArgs) -> Result<(), FennelCommandError> {
    let display = args.file.display().to_string();
    let load_error = |error| match error {
        LoadError::Read(error) => FennelCommandError::Read {
            path: display.clone(),
            error,
        },
        LoadError::Fennel(err) => FennelCommandError::Fennel(err),
        LoadError::Lua(err) => FennelCommandError::from_lua(&err),
    };
    if args.compile {
        let source = read_source(&args.file, &display).map_err(load_error)?;
        let lua = compile_source(&source, &display, &Sandbox::compile_options())
            .map_err(|e| FennelCommandError::Fennel(Box::new(e)))?;
        crate::output(&lua);
        // A file ends its last line, as the compiled Lua does not.
        if !lua.ends_with('\n') {
            crate::output("\n");
        }
        return Ok(());
    }
    // `require` finds modules beside the file.
    let module_dir = match args.file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => ".".into(),
    };
    let sandbox = Sandbox::new(SandboxOptions {
        module_dir: Some(module_dir),
        print: PrintTarget::Stdout,
        limits: args.limits.limits(),
        ..SandboxOptions::default()
    })
    .map_err(|e| FennelCommandError::from_lua(&e))?;
    let chunk = sandbox.load_file(&args.file, &display).map_err(load_error)?;
    sandbox
        .run_chunk(chunk, BudgetOwner::Script)
        .map_err(|failure| match fennel_error(&failure.error) {
            Some(fennel) => FennelCommandError::Fennel(Box::new(fennel.clone())),
            None => FennelCommandError::Lua(failure.message),
        })
}
