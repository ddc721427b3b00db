//! `report --sqlite DB`: store a run record in the tables an orchestrator
//! queries for history. docs/events.md documents this schema for consumers
//! (a test keeps the two in step).

use std::path::Path;
use std::time::Duration;

use quire_core::ci::record::{RunRecord, RunState};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Bumped when the tables change, so an older quire-ci refuses a newer database.
const SCHEMA_VERSION: i64 = 1;

/// How long to wait for another writer (another `report --sqlite`) to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    sha         TEXT,              -- NULL when the stream has no run_started
    ref         TEXT,              -- NULL when the stream has no run_started
    outcome     TEXT NOT NULL,     -- complete | failed | cancelled | interrupted
    error       TEXT,              -- run_finished's error, if any
    started_ms  INTEGER NOT NULL,  -- at_ms of the stream's first event
    finished_ms INTEGER            -- at_ms of run_finished; NULL when interrupted
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_key ON runs (sha, ref, started_ms);
CREATE TABLE IF NOT EXISTS jobs (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    job_id      TEXT NOT NULL,
    position    INTEGER NOT NULL,  -- declaration order, from 1
    state       TEXT NOT NULL,     -- complete | failed | skipped | cancelled | blocked | unfinished | pending
    started_ms  INTEGER,           -- NULL when the job never started
    finished_ms INTEGER,           -- NULL unless the job finished
    blocked_by  TEXT,              -- for blocked jobs: the input that did not complete
    PRIMARY KEY (run_id, job_id)
);
CREATE TABLE IF NOT EXISTS sh_events (
    run_id      INTEGER NOT NULL,
    job_id      TEXT NOT NULL,
    n           INTEGER NOT NULL,  -- 1 for the job's first sh call
    cmd         TEXT NOT NULL,
    exit_code   INTEGER,           -- NULL when the stream ended while it ran
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER,           -- NULL when the stream ended while it ran
    log_path    TEXT NOT NULL,     -- jobs/<job_id>/sh-<n>.log, relative to --out-dir
    PRIMARY KEY (run_id, job_id, n),
    FOREIGN KEY (run_id, job_id) REFERENCES jobs (run_id, job_id)
);
";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum IngestError {
    #[error("cannot open it: {0}")]
    #[diagnostic(code(quire::report::sqlite))]
    Open(rusqlite::Error),
    #[error("cannot create the tables: {0}")]
    #[diagnostic(
        code(quire::report::sqlite),
        help("DB must be a SQLite database whose runs, jobs and sh_events tables, if any, were made by quire-ci")
    )]
    Schema(rusqlite::Error),
    #[error("it was made by a newer quire-ci (schema version {found}; this one writes version {SCHEMA_VERSION})")]
    #[diagnostic(code(quire::report::sqlite))]
    NewerSchema { found: i64 },
    #[error("{0}")]
    #[diagnostic(code(quire::report::sqlite))]
    Write(rusqlite::Error),
}

impl IngestError {
    /// The database could not be used at all, as opposed to failing mid-write.
    pub fn is_setup(&self) -> bool {
        !matches!(self, IngestError::Write(_))
    }
}

/// What became of a run given to [`ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored (new, or in place of the same run's rows), with this id.
    Stored(i64),
    /// The database already holds this run, finished, and the stream ends
    /// before its end (a copy taken mid-run, or torn): the finished run is
    /// kept, with this id.
    KeptFinished(i64),
}

/// Store the record. Re-ingesting the same run (same sha, ref and
/// started_ms) replaces its rows and keeps its id, unless that would put an
/// unfinished stream in place of a finished one.
pub fn ingest(db: &Path, record: &RunRecord) -> Result<Ingested, IngestError> {
    let mut conn = Connection::open(db).map_err(IngestError::Open)?;
    prepare(&conn)?;
    write_run(&mut conn, record).map_err(IngestError::Write)
}

fn prepare(conn: &Connection) -> Result<(), IngestError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
        .map_err(IngestError::Open)?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(IngestError::Schema)?;
    if found > SCHEMA_VERSION {
        return Err(IngestError::NewerSchema { found });
    }
    conn.execute_batch(SCHEMA)
        .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION))
        .map_err(IngestError::Schema)
}

fn write_run(conn: &mut Connection, record: &RunRecord) -> rusqlite::Result<Ingested> {
    let run = &record.run;
    // Immediate: take the write lock first, so two ingests of one run can't interleave.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // `IS` rather than `=`: a run that never started has NULL sha and ref.
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, outcome FROM runs WHERE sha IS ?1 AND ref IS ?2 AND started_ms = ?3",
            params![run.sha, run.git_ref, run.started_ms],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let interrupted = RunState::Interrupted.as_str();
    if let Some((id, outcome)) = &existing
        && outcome != interrupted
        && run.outcome == RunState::Interrupted
    {
        return Ok(Ingested::KeptFinished(*id));
    }
    let existing = existing.map(|(id, _)| id);
    if let Some(id) = existing {
        tx.execute("DELETE FROM sh_events WHERE run_id = ?1", [id])?;
        tx.execute("DELETE FROM jobs WHERE run_id = ?1", [id])?;
        tx.execute("DELETE FROM runs WHERE id = ?1", [id])?;
    }
    tx.execute(
        "INSERT INTO runs (id, sha, ref, outcome, error, started_ms, finished_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            existing,
            run.sha,
            run.git_ref,
            run.outcome.as_str(),
            run.error,
            run.started_ms,
            run.finished_ms,
        ],
    )?;
    let run_id = existing.unwrap_or_else(|| tx.last_insert_rowid());
    {
        let mut insert_job = tx.prepare(
            "INSERT INTO jobs (run_id, job_id, position, state, started_ms, finished_ms, blocked_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (position, job) in (1u64..).zip(&record.jobs) {
            insert_job.execute(params![
                run_id,
                job.job_id,
                position,
                job.state.as_str(),
                job.started_ms,
                job.finished_ms,
                job.blocked_by,
            ])?;
        }
        let mut insert_sh = tx.prepare(
            "INSERT INTO sh_events (run_id, job_id, n, cmd, exit_code, started_ms, finished_ms, log_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for sh in &record.sh {
            insert_sh.execute(params![
                run_id,
                sh.job_id,
                sh.n,
                sh.cmd,
                sh.exit_code,
                sh.started_ms,
                sh.finished_ms,
                sh.log_path,
            ])?;
        }
    }
    tx.commit()?;
    Ok(Ingested::Stored(run_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_core::ci::record::read_record;

    fn record(lines: &[&str]) -> RunRecord {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        read_record(text.as_bytes()).unwrap()
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn the_documented_schema_is_the_one_we_create() {
        let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md")).unwrap();
        assert!(
            docs.contains(SCHEMA),
            "docs/events.md must show the SQLite schema exactly as in {}",
            file!()
        );
    }

    #[test]
    fn a_run_that_never_started_is_stored_and_replaced_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let failed = record(&[r#"{"at_ms":7,"type":"run_finished","outcome":"failed","error":"bad"}"#]);
        let Ingested::Stored(first) = ingest(&db, &failed).unwrap() else {
            panic!("stored")
        };
        assert_eq!(ingest(&db, &failed).unwrap(), Ingested::Stored(first));
        let other = record(&[r#"{"at_ms":8,"type":"run_finished","outcome":"failed"}"#]);
        assert_ne!(ingest(&db, &other).unwrap(), Ingested::Stored(first));
        let conn = Connection::open(&db).unwrap();
        assert_eq!(count(&conn, "runs"), 2);
        let (sha, error): (Option<String>, Option<String>) = conn
            .query_row("SELECT sha, error FROM runs WHERE id = ?1", [first], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((sha, error.as_deref()), (None, Some("bad")));
    }

    #[test]
    fn an_unfinished_copy_does_not_replace_the_finished_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let started = r#"{"at_ms":1,"type":"run_started","sha":"0000000000000000000000000000000000000000","ref":"HEAD","jobs":["a"]}"#;
        let job = r#"{"at_ms":2,"type":"job_started","job_id":"a"}"#;
        let partial = record(&[started, job]);
        let finished = record(&[
            started,
            job,
            r#"{"at_ms":3,"type":"job_finished","job_id":"a","outcome":"complete"}"#,
            r#"{"at_ms":4,"type":"run_finished","outcome":"complete"}"#,
        ]);
        // Mid-run, then finished: the finished run replaces the partial one.
        let Ingested::Stored(id) = ingest(&db, &partial).unwrap() else {
            panic!("stored")
        };
        assert_eq!(ingest(&db, &finished).unwrap(), Ingested::Stored(id));
        // A torn or early copy afterwards keeps the finished run as it is.
        assert_eq!(ingest(&db, &partial).unwrap(), Ingested::KeptFinished(id));
        let conn = Connection::open(&db).unwrap();
        let outcome: String = conn
            .query_row("SELECT outcome FROM runs WHERE id = ?1", [id], |row| row.get(0))
            .unwrap();
        assert_eq!(outcome, "complete");
        let state: String = conn
            .query_row("SELECT state FROM jobs WHERE run_id = ?1", [id], |row| row.get(0))
            .unwrap();
        assert_eq!(state, "complete");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        Connection::open(&db)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let run = record(&[r#"{"at_ms":7,"type":"run_finished","outcome":"complete"}"#]);
        let err = ingest(&db, &run).unwrap_err();
        assert!(matches!(err, IngestError::NewerSchema { found: 2 }), "{err}");
        assert!(err.is_setup());
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_setup_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("notes.txt");
        std::fs::write(&db, "these are not the tables you are looking for\n".repeat(100)).unwrap();
        let run = record(&[r#"{"at_ms":7,"type":"run_finished","outcome":"complete"}"#]);
        let err = ingest(&db, &run).unwrap_err();
        assert!(err.is_setup(), "{err}");
    }

    #[test]
    fn times_beyond_sqlite_integers_fail_the_write_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let run = record(&[&format!(
            r#"{{"at_ms":{},"type":"run_finished","outcome":"complete"}}"#,
            u64::MAX
        )]);
        let err = ingest(&db, &run).unwrap_err();
        assert!(!err.is_setup(), "{err}");
        let conn = Connection::open(&db).unwrap();
        assert_eq!(count(&conn, "runs"), 0, "the transaction rolled back");
    }
}
