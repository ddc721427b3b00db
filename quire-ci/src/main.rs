//! quire-ci: run a CI pipeline written in Fennel against a local workspace.

mod cli;
mod columns;
mod commands;
mod reporter;
mod sink;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use miette::Diagnostic;

use cli::{Cli, Command};

/// Exit codes (design §6).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const RECORD: u8 = 3;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = cli.workspace.unwrap_or_else(|| PathBuf::from("."));
    let code = match cli.command {
        Command::Validate(args) => commands::validate::run(&workspace, &args),
        Command::Run(args) => commands::run::run(&workspace, &args),
        Command::Fennel(args) => commands::fennel::run(&args),
        Command::Completions(args) => commands::generate::completions(args.shell),
        Command::Man(args) => commands::generate::man(args.subcommand.as_deref()),
        Command::Report(args) => commands::report::run(&args),
    };
    ExitCode::from(code)
}

/// Show an error on stderr the way every quire-ci error looks: in the
/// parts and order of `run_finished.error`, in colour where stderr takes it.
pub fn report_error(diagnostic: impl Diagnostic) {
    // Wrap to the width of a terminal; never wrap into a log or a pipe, where
    // a message split over lines is harder to search.
    let handler = miette::MietteHandlerOpts::new()
        .wrap_lines(std::io::stderr().is_terminal())
        .build();
    for part in quire_core::diagnostic::parts(&diagnostic) {
        say(&format!("{:?}", Rendered(&handler, &part)));
    }
}

/// A diagnostic as `handler` draws it.
struct Rendered<'a>(&'a miette::MietteHandler, &'a dyn Diagnostic);

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        miette::ReportHandler::debug(self.0, self.1, f)
    }
}

/// A line for the person on stderr. A closed stderr is not worth dying for
/// (`eprintln!` would panic), so write errors are ignored.
pub fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Program output on stdout; a reader that went away (`| head`) ends it quietly.
pub fn output(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}
