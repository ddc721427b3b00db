//! `quire-ci report EVENTS.jsonl`: read an event stream back into its run
//! record, show it as text or JSON, and optionally store it in SQLite.
//! `quire-ci report -` reads the stream from stdin.

mod sqlite;
mod text;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};

use quire_core::ci::record::{RecordError, RunRecord, read_record};

use crate::cli::{ReportArgs, ReportFormat};
use crate::{exit, report_error};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum ReportError {
    #[error("cannot read {name}: {err}")]
    #[diagnostic(code(quire::report::read))]
    Read { name: String, err: std::io::Error },
    // The reason is part of the message rather than a `source`, so miette
    // shows one line instead of a nested report; its code and help carry over.
    #[error("{name} is not a valid quire-ci event stream: {reason}")]
    #[diagnostic(forward(reason))]
    NotAStream { name: String, reason: RecordError },
    #[error("cannot write the run into {}: {reason}", .path.display())]
    #[diagnostic(forward(reason))]
    Sqlite { path: PathBuf, reason: sqlite::IngestError },
    #[error("cannot write the report: {0}")]
    #[diagnostic(code(quire::report::output))]
    Output(std::io::Error),
}

/// Where the stream is read from: `-` is stdin, anything else a file
/// (`./-` for a file named `-`).
enum Source<'a> {
    Stdin,
    File(&'a Path),
}

impl<'a> Source<'a> {
    fn of(events: &'a Path) -> Source<'a> {
        if events == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(events)
        }
    }

    /// How errors and warnings name it.
    fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_string(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

pub fn run(args: &ReportArgs) -> u8 {
    let source = Source::of(&args.events);
    let record = match load(&source) {
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
        crate::say(&format!("warning: {}: {warning}", source.name()));
    }
    if let Some(db) = &args.sqlite {
        match sqlite::ingest(db, &record) {
            Ok(sqlite::Ingested::Stored(_)) => {}
            Ok(sqlite::Ingested::KeptFinished(id)) => crate::say(&format!(
                "warning: {}: the stream ends before its run_finished, and {} already holds this run finished (id {id}); kept that",
                source.name(),
                db.display()
            )),
            Err(reason) => {
                let code = if reason.is_setup() { exit::USAGE } else { exit::RECORD };
                report_error(ReportError::Sqlite {
                    path: db.clone(),
                    reason,
                });
                return code;
            }
        }
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

fn load(source: &Source) -> Result<RunRecord, ReportError> {
    let read_error = |err| ReportError::Read {
        name: source.name(),
        err,
    };
    let reader: Box<dyn BufRead> = match source {
        Source::Stdin => Box::new(std::io::stdin().lock()),
        Source::File(path) => Box::new(BufReader::new(std::fs::File::open(path).map_err(read_error)?)),
    };
    read_record(reader).map_err(|err| match err {
        RecordError::Read(err) => read_error(err),
        reason => ReportError::NotAStream {
            name: source.name(),
            reason,
        },
    })
}
