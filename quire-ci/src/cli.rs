//! The command line (design §6).
//!
//! The doc comments are the `--help` text, written for a terminal: `<job>`
//! there is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use quire_core::ci::run::SecretSpec;
use quire_core::lua::{DEFAULT_INSTRUCTION_LIMIT, DEFAULT_MEMORY_LIMIT, Limits};

#[derive(Debug, Parser)]
#[command(
    name = "quire-ci",
    version,
    about = "Run a CI pipeline written in Fennel against a local workspace"
)]
pub struct Cli {
    /// The workspace: the directory holding .quire/ci.fnl [default: the current directory]
    #[arg(short = 'w', long = "workspace", value_name = "DIR", global = true)]
    pub workspace: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the pipeline and list its jobs in the order they can run
    #[command(
        after_help = "Examples:\n  quire-ci validate\n  quire-ci -w ../app validate --format json\n  quire-ci validate --format dot | dot -Tsvg > pipeline.svg"
    )]
    Validate(ValidateArgs),
    /// Run the pipeline
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Run a Fennel file in the sandbox, or print the Lua it compiles to
    #[command(after_help = "Examples:\n  quire-ci fennel script.fnl\n  quire-ci fennel --compile .quire/ci.fnl")]
    Fennel(FennelArgs),
    /// Read an event stream written by `run --events`: show it, or store it in SQLite
    #[command(
        after_help = "Examples:\n  quire-ci report run.jsonl\n  quire-ci report run.jsonl --format json | jq .jobs\n  quire-ci report run.jsonl --sqlite ci-history.db\n  quire-ci run --events stdout | quire-ci report -"
    )]
    Report(ReportArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  quire-ci completions bash > ~/.local/share/bash-completion/completions/quire-ci"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of quire-ci or of one subcommand
    #[command(after_help = "Examples:\n  quire-ci man > quire-ci.1\n  quire-ci man run > quire-ci-run.1")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand, for its own page
    pub subcommand: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

const RUN_EXAMPLES: &str = "\
Examples:
  quire-ci run
  quire-ci run --events stdout | jq -c 'select(.type == \"sh_finished\")'
  quire-ci run --events run.jsonl --out-dir ci-logs -j 4 --fail-fast
  quire-ci run --secret TOKEN=env:GITHUB_TOKEN --secret KEY=file:deploy.key
  quire-ci run --sha $(git rev-parse HEAD) --ref refs/heads/main --timeout 30m

Exit codes: 0 complete, 1 a job failed or the pipeline is invalid, 2 usage or
set-up error, 3 the run record or a log could not be written, 129/130/143
SIGHUP/SIGINT/SIGTERM.";

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,

    #[command(flatten)]
    pub limits: LuaLimitArgs,
}

/// Bounds on pipeline code, shared by every command that runs it.
#[derive(Debug, Clone, Args)]
pub struct LuaLimitArgs {
    /// Memory the Lua VM running pipeline code may use in all, e.g. 512MiB, 2GiB [default: 512MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_size, help_heading = "Limits on pipeline code")]
    pub lua_memory_limit: Option<usize>,

    /// Lua instructions the top-level code, and each job, may execute, e.g. 5000000000 or 5G [default: 1G, a billion]
    #[arg(long, value_name = "COUNT", value_parser = parse_instruction_count, help_heading = "Limits on pipeline code")]
    pub lua_instruction_limit: Option<u64>,
}

impl LuaLimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            memory: self.lua_memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
            instructions: self.lua_instruction_limit.unwrap_or(DEFAULT_INSTRUCTION_LIMIT),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// Jobs in topological order with their inputs
    Text,
    /// A JSON document for tools: the jobs, or every problem
    Json,
    /// A Graphviz graph (`dot -Tsvg`)
    Dot,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the JSONL event stream goes: `null` (drop it), `stdout`, or a file path (use ./null for a file named null)
    #[arg(long, value_name = "null|stdout|PATH", default_value = "null")]
    pub events: String,

    /// Keep command logs in DIR/jobs/<job>/sh-<n>.log [default: a temporary directory removed at exit]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Run up to N jobs at once [default: the number of CPUs]
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,

    /// Stop at the first failed job: cancel running jobs, start no more
    #[arg(long)]
    pub fail_fast: bool,

    /// The commit being built, 40 hex digits [default: the workspace's HEAD]
    #[arg(long, value_name = "SHA", value_parser = parse_sha)]
    pub sha: Option<String>,

    /// The ref being built, e.g. refs/heads/main, or HEAD [default: the workspace's current ref]
    #[arg(long = "ref", value_name = "REF", value_parser = parse_ref)]
    pub git_ref: Option<String>,

    /// Declare a secret for runtime.secret: NAME=env:VAR or NAME=file:PATH (repeatable)
    #[arg(long = "secret", value_name = "NAME=env:VAR|NAME=file:PATH")]
    pub secrets: Vec<SecretSpec>,

    /// Bound every command that sets no :timeout, e.g. 90s, 10m, 1h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Show only failures and the summary
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub limits: LuaLimitArgs,
}

#[derive(Debug, Args)]
pub struct FennelArgs {
    /// Print the compiled Lua instead of running it
    #[arg(long)]
    pub compile: bool,

    /// The Fennel file
    pub file: PathBuf,

    #[command(flatten)]
    pub limits: LuaLimitArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The event stream (JSONL) written by `quire-ci run --events PATH`, or `-` to read it from stdin
    #[arg(value_name = "EVENTS.jsonl")]
    pub events: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Also write the run into the SQLite database DB (tables runs, jobs, sh_events; created if missing)
    #[arg(long, value_name = "DB")]
    pub sqlite: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A table of jobs, the commands of jobs that did not complete, the run's outcome
    Text,
    /// The run record as JSON
    Json,
}

/// `90`, `1.5`, `10m`, `1h30m`: positive. One longer than a `Duration`
/// holds (`1e300`, `inf`) is `Duration::MAX`, which no command outlives: the
/// same as no timeout, as for a `:timeout` that large.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration '{text}': expected e.g. 30s, 10m, 1h30m or a number of seconds");
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_nan() || secs <= 0.0 {
            return Err(invalid());
        }
        return match Duration::try_from_secs_f64(secs) {
            Ok(d) if d.is_zero() => Err(invalid()),
            Ok(d) => Ok(d),
            Err(_) => Ok(Duration::MAX),
        };
    }
    let signed: jiff::SignedDuration = text.parse().map_err(|_| invalid())?;
    Duration::try_from(signed)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(invalid)
}

/// A commit id as the event stream carries it (`run_started.sha`): 40 hex
/// digits, written in lower case as git does.
fn parse_sha(text: &str) -> Result<String, String> {
    if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "invalid sha '{text}': expected the 40 hex digits of a commit, e.g. --sha $(git rev-parse HEAD)"
        ))
    }
}

/// A ref as the event stream carries it (`run_started.ref`): a full ref name
/// (`refs/heads/main`, `refs/tags/v1`) or `HEAD`, as git writes them; the
/// push's `branch` and `tag` are read from its prefix.
fn parse_ref(text: &str) -> Result<String, String> {
    // git check-ref-format's rules for a full name, and no part starting
    // with '-' (git refuses such branch names, and they read as options).
    let part_ok = |part: &str| !part.is_empty() && !part.starts_with(['.', '-']) && !part.ends_with(".lock");
    let full = text
        .strip_prefix("refs/")
        .is_some_and(|rest| !rest.is_empty() && rest.split('/').all(part_ok));
    let allowed = !text.chars().any(|c| c.is_control() || " ~^:?*[\\".contains(c))
        && !text.contains("..")
        && !text.contains("@{")
        && !text.ends_with('.');
    if (full && allowed) || text == "HEAD" {
        Ok(text.to_string())
    } else {
        Err(format!(
            "invalid ref {text:?}: expected a full ref name such as refs/heads/main or refs/tags/v1.0, or HEAD"
        ))
    }
}

/// The Lua VM needs about this much to start; a smaller limit could not run anything.
const MIN_MEMORY_LIMIT: usize = 1 << 20;

/// `512MiB`, `2G`, `1048576`: binary units (K, M, G with or without `iB`/`B`), bytes without one.
fn parse_memory_size(text: &str) -> Result<usize, String> {
    let invalid = || format!("invalid size '{text}': expected e.g. 512MiB, 2GiB or a number of bytes");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(invalid()),
    };
    let number: usize = digits.replace('_', "").parse().map_err(|_| invalid())?;
    let bytes = number.checked_mul(1usize << shift).ok_or_else(invalid)?;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!("size '{text}' is too small: the Lua VM needs at least 1MiB"));
    }
    Ok(bytes)
}

/// `1000000`, `1_000_000`, `5G`: decimal units (k, M, G, T), a plain count without one.
fn parse_instruction_count(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("invalid count '{text}': expected a positive number, e.g. 5000000000, 5_000_000_000 or 5G");
    let trimmed = text.trim();
    let (digits, multiplier) = match trimmed.char_indices().last() {
        Some((i, 'k' | 'K')) => (&trimmed[..i], 1_000),
        Some((i, 'M')) => (&trimmed[..i], 1_000_000),
        Some((i, 'G')) => (&trimmed[..i], 1_000_000_000),
        Some((i, 'T')) => (&trimmed[..i], 1_000_000_000_000),
        _ => (trimmed, 1),
    };
    let number: u64 = digits.replace('_', "").parse().map_err(|_| invalid())?;
    number.checked_mul(multiplier).filter(|&n| n > 0).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
        // Too short to count, or not a number of seconds at all.
        for text in ["1e-10", "-1", "-0", "nan", "NaN", "-inf"] {
            assert_eq!(
                parse_duration(text),
                Err(format!(
                    "invalid duration '{text}': expected e.g. 30s, 10m, 1h30m or a number of seconds"
                ))
            );
        }
        // Longer than anything runs: no timeout.
        for text in ["1e300", "inf", "18446744073709551616"] {
            assert_eq!(parse_duration(text), Ok(Duration::MAX), "{text}");
        }
        // It fits a Duration, not the clock: the process layer makes it none.
        assert_eq!(
            parse_duration("1e19"),
            Ok(Duration::from_secs(10_000_000_000_000_000_000))
        );
    }

    #[test]
    fn refs() {
        for good in ["refs/heads/main", "refs/tags/v1.0", "refs/heads/feature/x", "HEAD"] {
            assert_eq!(parse_ref(good), Ok(good.to_string()));
        }
        for bad in [
            "",
            "main",
            "refs/",
            "refs//x",
            "refs/heads/",
            "refs/heads/a b",
            "refs/heads/a\nb",
            "head",
            "refs/heads/a..b",
            "refs/heads/-x",
            "refs/x.lock",
            "refs/heads/x~1",
            "refs/heads/x:y",
            "refs/heads/x.",
            "refs/heads/.x",
            "refs/heads/x@{1}",
            "refs/heads/x\\y",
        ] {
            assert_eq!(
                parse_ref(bad),
                Err(format!(
                    "invalid ref {bad:?}: expected a full ref name such as refs/heads/main or refs/tags/v1.0, or HEAD"
                )),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn shas() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(parse_sha(sha), Ok(sha.to_string()));
        assert_eq!(parse_sha(&sha.to_ascii_uppercase()), Ok(sha.to_string()));
        for bad in [
            "",
            "abc",
            &sha[1..],
            &format!("{sha}8"),
            &sha.replace('a', "g"),
            &format!("{} ", &sha[..39]),
        ] {
            assert_eq!(
                parse_sha(bad),
                Err(format!(
                    "invalid sha '{bad}': expected the 40 hex digits of a commit, e.g. --sha $(git rev-parse HEAD)"
                ))
            );
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory_size("2G"), Ok(2 << 30));
        assert_eq!(parse_memory_size("64 mb"), Ok(64 << 20));
        assert_eq!(parse_memory_size("1_048_576"), Ok(1 << 20));
        assert_eq!(parse_memory_size("4096k"), Ok(4 << 20));
        assert!(parse_memory_size("100").unwrap_err().contains("at least 1MiB"));
        assert!(parse_memory_size("0").is_err());
        assert!(parse_memory_size("lots").is_err());
        assert!(parse_memory_size("1.5G").is_err());
        assert!(parse_memory_size("-1G").is_err());
        assert!(parse_memory_size("99999999999T").is_err());
    }

    #[test]
    fn instruction_counts() {
        assert_eq!(parse_instruction_count("1000"), Ok(1000));
        assert_eq!(parse_instruction_count("5_000_000"), Ok(5_000_000));
        assert_eq!(parse_instruction_count("5G"), Ok(5_000_000_000));
        assert_eq!(parse_instruction_count("20k"), Ok(20_000));
        assert!(parse_instruction_count("0").is_err());
        assert!(parse_instruction_count("-5").is_err());
        assert!(parse_instruction_count("1e9").is_err());
        assert!(parse_instruction_count("99999999T").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
