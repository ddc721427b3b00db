//! `quire-ci report EVENTS.jsonl`: read an event stream back into its run
//! record, show it as text or JSON, and optionally store it in SQLite.

mod sqlite;
mod text;

use std::io::{BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};

use quire_core::ci::record::{RecordError, RunRecord, read_record};

use crate::cli::{ReportArgs, ReportFormat};
use crate::{exit, report_error};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum ReportError {
    #[error("cannot read {}: {err}", .path.display())]
    #[diagnostic(code(quire::report::read))]
    Read { path: PathBuf, err: std::io::Error },
    // The reason is part of the message rather than a `source`, so miette
    // shows one line instead of a nested report; its code and help carry over.
    #[error("{} is not a valid quire-ci event stream: {reason}", .path.display())]
    #[diagnostic(forward(reason))]
    NotAStream { path: PathBuf, reason: RecordError },
    #[error("cannot write the run into {}: {reason}", .path.display())]
    #[diagnostic(forward(reason))]
    Sqlite { path: PathBuf, reason: sqlite::IngestError },
    #[error("cannot write the report: {0}")]
    #[diagnostic(code(quire::report::output))]
    Output(std::io::Error),
}

pub fn run(args: &ReportArgs) -> u8 {
    let record = match load(&args.events) {
        Ok(record) => record,
        Err(err) => {
            let code = match &err {
                ReportError::Read { .. } => exit::USAGE,
                _ => exit::FAILED,
            };
            report_error(err);
            return code;
        }
    };
    for warning in &record.warnings {
        eprintln!("warning: {}: {warning}", args.events.display());
    }
    if let Some(db) = &args.sqlite
        && let Err(reason) = sqlite::ingest(db, &record)
    {
        let code = if reason.is_setup() { exit::USAGE } else { exit::RECORD };
        report_error(ReportError::Sqlite {
            path: db.clone(),
            reason,
        });
        return code;
    }
    let output = match args.format {
        ReportFormat::Text => text::render(&record),
        ReportFormat::Json => json(&record),
    };
    match std::io::stdout().lock().write_all(output.as_bytes()) {
        Ok(()) => exit::OK,
        // A reader that stopped early (`| head`) is not our failure.
        Err(err) if err.kind() == ErrorKind::BrokenPipe => exit::OK,
        Err(err) => {
            report_error(ReportError::Output(err));
            exit::FAILED
        }
    }
}

fn json(record: &RunRecord) -> String {
    // Strings, integers and nulls only: serializing cannot fail.
    let mut text = serde_json::to_string_pretty(record).unwrap_or_default();
    text.push('\n');
    text
}

fn load(path: &Path) -> Result<RunRecord, ReportError> {
    let read_error = |err| ReportError::Read {
        path: path.to_path_buf(),
        err,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    read_record(BufReader::new(file)).map_err(|err| match err {
        RecordError::Read(err) => read_error(err),
        reason => ReportError::NotAStream {
            path: path.to_path_buf(),
            reason,
        },
    })
}
