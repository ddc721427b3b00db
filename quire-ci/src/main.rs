//! quire-ci: run a CI pipeline written in Fennel against a local workspace.

mod cli;
mod columns;
mod commands;
mod reporter;
mod sink;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Exit codes (design §6).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const RECORD: u8 = 3;
}

fn main() -> ExitCode {
    // Wrap diagnostics to the width of a terminal; never wrap them into a log or a pipe,
    // where a message split over lines is harder to search.
    let on_terminal = std::io::stderr().is_terminal();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(on_terminal).build())
    }));
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

/// Show an error on stderr the way every quire-ci error looks.
pub fn report_error(diagnostic: impl miette::Diagnostic + Send + Sync + 'static) {
    say(&format!("{:?}", miette::Report::new(diagnostic)));
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
