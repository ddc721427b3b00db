//! `quire-ci completions SHELL` and `quire-ci man`: generated from the clap
//! definitions, so they cannot drift from the real flags.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::{exit, report_error};

pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "quire-ci", &mut script);
    let _ = std::io::stdout().write_all(&script);
    exit::OK
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no subcommand '{0}'")]
#[diagnostic(help("subcommands: {1}"))]
struct UnknownSubcommand(String, String);

/// The page of quire-ci, or of `subcommand` (as `quire-ci-<subcommand>`).
pub fn man(subcommand: Option<&str>) -> u8 {
    let command = Cli::command();
    let page = match subcommand {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            // Subcommand pages are named like git's: quire-ci-run(1), and
            // carry the version as the tool's page does (clap gives
            // subcommands none).
            Some(sub) => sub
                .clone()
                .name(format!("quire-ci-{name}"))
                .version(env!("CARGO_PKG_VERSION")),
            None => {
                let names: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
                report_error(UnknownSubcommand(name.to_string(), names.join(", ")));
                return exit::USAGE;
            }
        },
    };
    let mut roff = Vec::new();
    if clap_mangen::Man::new(page).render(&mut roff).is_err() || std::io::stdout().write_all(&roff).is_err() {
        return exit::FAILED;
    }
    exit::OK
}
