//! The consumer side of the event stream (design §3): a stream read back into
//! one run record — the run, one row per job, one row per sh call. This is
//! what an orchestrator ingests and what `quire-ci report` shows.
//!
//! The reader is strict about the contract, so a producer bug shows up as an
//! error naming the line instead of a quietly wrong record, and lenient where
//! the contract allows growth: unknown event types and unknown fields are
//! ignored. A stream whose producer died is still a record: it has no
//! `run_finished`, so its outcome is `interrupted` and whatever was running
//! stays unfinished; its last line may be torn, which is a warning.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use super::event::{EVENT_TYPES, Event, EventKind, JobOutcome, RunOutcome};

/// A line longer than this is malformed: no producer writes one, and reading
/// it whole would let a stray binary file exhaust memory.
pub const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything a stream says about one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: RunInfo,
    /// One per job of `run_started`, in declaration order.
    pub jobs: Vec<JobRecord>,
    /// One per sh call, in the order they started.
    pub sh: Vec<ShRecord>,
    /// Things the reader tolerated, e.g. a torn last line.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// From `run_started`; None when the stream has none (the pipeline did not load).
    pub sha: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub outcome: RunState,
    /// The rendered error of `run_finished`, when it has one.
    pub error: Option<String>,
    /// `at_ms` of the stream's first event: `run_started`, or the lone
    /// `run_finished` of a pipeline that did not load.
    pub started_ms: u64,
    /// `at_ms` of `run_finished`; None when the run was interrupted.
    pub finished_ms: Option<u64>,
}

/// How the run ended: the outcome of `run_finished`, or `interrupted` when
/// the stream has none (the producer died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Complete,
    Failed,
    Cancelled,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub state: JobState,
    /// `at_ms` of `job_started`; None for a job that never started.
    pub started_ms: Option<u64>,
    /// `at_ms` of `job_finished`; None unless the job finished.
    pub finished_ms: Option<u64>,
    /// For a `blocked` job: its direct input that did not complete, if any.
    pub blocked_by: Option<String>,
}

/// Where a job got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// The four outcomes of `job_finished`.
    Complete,
    Failed,
    Skipped,
    Cancelled,
    /// `job_skipped`: never started, because an input did not complete or the run stopped.
    Blocked,
    /// Started, and the stream ended (without `run_finished`) before it finished.
    Unfinished,
    /// Neither started nor skipped when the stream ended (without `run_finished`).
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShRecord {
    pub job_id: String,
    /// 1 for the job's first sh call, 2 for its second…
    pub n: u32,
    pub cmd: String,
    /// None when the stream ended while the command ran.
    pub exit_code: Option<i32>,
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
    /// The command's CRI log, relative to the run's `--out-dir`.
    pub log_path: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecordError {
    #[error("cannot read the event stream: {0}")]
    #[diagnostic(code(quire::record::read))]
    Read(#[source] std::io::Error),
    #[error("line {line} is not an event: {reason}")]
    #[diagnostic(
        code(quire::record::malformed),
        help("an event stream has one JSON event per line, as written by `quire-ci run --events FILE`")
    )]
    Malformed { line: u64, reason: String },
    #[error("line {line} breaks the event stream contract: {reason}")]
    #[diagnostic(code(quire::record::contract))]
    Contract { line: u64, reason: String },
    #[error("the stream holds no events")]
    #[diagnostic(
        code(quire::record::empty),
        help("a run writes at least run_finished; an empty file means the producer died at once")
    )]
    Empty,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Complete => "complete",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }
}

impl From<RunOutcome> for RunState {
    fn from(outcome: RunOutcome) -> Self {
        match outcome {
            RunOutcome::Complete => RunState::Complete,
            RunOutcome::Failed => RunState::Failed,
            RunOutcome::Cancelled => RunState::Cancelled,
        }
    }
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Complete => "complete",
            JobState::Failed => "failed",
            JobState::Skipped => "skipped",
            JobState::Cancelled => "cancelled",
            JobState::Blocked => "blocked",
            JobState::Unfinished => "unfinished",
            JobState::Pending => "pending",
        }
    }
}

impl From<JobOutcome> for JobState {
    fn from(outcome: JobOutcome) -> Self {
        match outcome {
            JobOutcome::Complete => JobState::Complete,
            JobOutcome::Failed => JobState::Failed,
            JobOutcome::Skipped => JobState::Skipped,
            JobOutcome::Cancelled => JobState::Cancelled,
        }
    }
}

impl RunInfo {
    /// Milliseconds from the first event to `run_finished`, if it came.
    pub fn duration_ms(&self) -> Option<u64> {
        self.finished_ms.map(|end| end.saturating_sub(self.started_ms))
    }
}

impl JobRecord {
    /// Milliseconds from `job_started` to `job_finished`, if both came.
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.finished_ms?.saturating_sub(self.started_ms?))
    }
}

impl RunRecord {
    /// The sh calls of one job, in order.
    pub fn sh_of<'a>(&'a self, job_id: &'a str) -> impl Iterator<Item = &'a ShRecord> + 'a {
        self.sh.iter().filter(move |sh| sh.job_id == job_id)
    }
}

/// Read a whole stream into its record.
pub fn read_record(reader: impl BufRead) -> Result<RunRecord, RecordError> {
    read_record_limited(reader, MAX_LINE_BYTES)
}

fn read_record_limited(mut reader: impl BufRead, max_line_bytes: u64) -> Result<RunRecord, RecordError> {
    let mut assembler = Assembler::default();
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    loop {
        buf.clear();
        // One byte past the limit tells an over-long line from one exactly at it.
        let read = reader
            .by_ref()
            .take(max_line_bytes + 1)
            .read_until(b'\n', &mut buf)
            .map_err(RecordError::Read)?;
        if read == 0 {
            break;
        }
        line += 1;
        let has_newline = buf.last() == Some(&b'\n');
        let text = if has_newline { &buf[..buf.len() - 1] } else { &buf[..] };
        if text.len() as u64 > max_line_bytes {
            return Err(RecordError::Malformed {
                line,
                reason: format!("it is longer than {max_line_bytes} bytes"),
            });
        }
        match parse_line(text) {
            Ok(Some(event)) => assembler
                .push(event)
                .map_err(|reason| RecordError::Contract { line, reason })?,
            Ok(None) => {}
            // Without a newline this is the last line: the producer died mid-write.
            Err(_) if !has_newline => assembler.warnings.push(format!(
                "line {line} has no newline and is not valid JSON: skipped as cut short (the producer likely died while writing it)"
            )),
            Err(reason) => return Err(RecordError::Malformed { line, reason }),
        }
    }
    assembler.finish()
}

/// One line as an event; None for an event type this version does not know.
fn parse_line(bytes: &[u8]) -> Result<Option<Event>, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        // serde_json's position says "line 1"; only the column means anything here.
        let text = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let what = text.strip_suffix(&suffix).unwrap_or(&text);
        format!("not JSON ({what} at column {})", err.column())
    })?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let kind = match object.get("type") {
        Some(serde_json::Value::String(kind)) => kind.clone(),
        Some(_) => return Err("its `type` is not a string".into()),
        None => return Err("it has no `type`".into()),
    };
    // Lines of any other type are skipped, so that a newer producer's additions don't break us.
    if !EVENT_TYPES.contains(&kind.as_str()) {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|err| format!("invalid {kind} event: {err}"))
}

/// Per-job progress that the record itself does not keep.
#[derive(Default)]
struct JobProgress {
    sh_count: u32,
    /// Index in `Assembler::sh` of the sh call that has started and not finished.
    open_sh: Option<usize>,
}

/// Builds the record one event at a time, checking the contract as it goes.
#[derive(Default)]
struct Assembler {
    run_started: Option<(String, String)>,
    first_at_ms: Option<u64>,
    finished: Option<(RunOutcome, Option<String>, u64)>,
    jobs: Vec<JobRecord>,
    progress: Vec<JobProgress>,
    index: HashMap<String, usize>,
    sh: Vec<ShRecord>,
    warnings: Vec<String>,
}

impl Assembler {
    /// Apply one event; the error says how it breaks the contract.
    fn push(&mut self, event: Event) -> Result<(), String> {
        let kind_name = type_name(&event.kind);
        if self.finished.is_some() {
            return Err(format!("{kind_name} after run_finished"));
        }
        let at = event.at_ms;
        match event.kind {
            EventKind::RunStarted { sha, git_ref, jobs } => {
                if self.run_started.is_some() {
                    return Err("a second run_started".into());
                }
                for job_id in jobs {
                    if self.index.contains_key(&job_id) {
                        return Err(format!("run_started lists job `{job_id}` twice"));
                    }
                    self.index.insert(job_id.clone(), self.jobs.len());
                    self.jobs.push(JobRecord {
                        job_id,
                        state: JobState::Pending,
                        started_ms: None,
                        finished_ms: None,
                        blocked_by: None,
                    });
                    self.progress.push(JobProgress::default());
                }
                self.run_started = Some((sha, git_ref));
            }
            EventKind::JobStarted { job_id } => {
                let i = self.job_index(&job_id, kind_name)?;
                let job = &mut self.jobs[i];
                if job.state != JobState::Pending {
                    return Err(format!(
                        "job_started for job `{job_id}`, which is already {}",
                        job.state.as_str()
                    ));
                }
                job.state = JobState::Unfinished;
                job.started_ms = Some(at);
            }
            EventKind::ShStarted { job_id, cmd } => {
                let i = self.running_job(&job_id, kind_name)?;
                let progress = &mut self.progress[i];
                if let Some(open) = progress.open_sh {
                    return Err(format!(
                        "sh_started in job `{job_id}` while its sh call {} has not finished",
                        self.sh[open].n
                    ));
                }
                progress.sh_count += 1;
                let n = progress.sh_count;
                progress.open_sh = Some(self.sh.len());
                self.sh.push(ShRecord {
                    log_path: format!("jobs/{job_id}/sh-{n}.log"),
                    job_id,
                    n,
                    cmd,
                    exit_code: None,
                    started_ms: at,
                    finished_ms: None,
                });
            }
            EventKind::ShFinished { job_id, exit_code } => {
                let i = self.running_job(&job_id, kind_name)?;
                let Some(open) = self.progress[i].open_sh.take() else {
                    return Err(format!("sh_finished in job `{job_id}` without a matching sh_started"));
                };
                let sh = &mut self.sh[open];
                sh.exit_code = Some(exit_code);
                sh.finished_ms = Some(at);
            }
            EventKind::JobFinished { job_id, outcome } => {
                let i = self.running_job(&job_id, kind_name)?;
                if let Some(open) = self.progress[i].open_sh {
                    return Err(format!(
                        "job_finished for job `{job_id}` while its sh call {} has not finished",
                        self.sh[open].n
                    ));
                }
                let job = &mut self.jobs[i];
                job.state = outcome.into();
                job.finished_ms = Some(at);
            }
            EventKind::JobSkipped { job_id, blocked_by } => {
                let i = self.job_index(&job_id, kind_name)?;
                let job = &mut self.jobs[i];
                if job.state != JobState::Pending {
                    return Err(format!(
                        "job_skipped for job `{job_id}`, which is already {}",
                        job.state.as_str()
                    ));
                }
                job.state = JobState::Blocked;
                job.blocked_by = blocked_by;
            }
            EventKind::RunFinished { outcome, error } => {
                if let Some(job) = self
                    .jobs
                    .iter()
                    .find(|job| matches!(job.state, JobState::Pending | JobState::Unfinished))
                {
                    let what = if job.state == JobState::Pending {
                        "never started nor got job_skipped"
                    } else {
                        "has not finished"
                    };
                    return Err(format!("run_finished, but job `{}` {what}", job.job_id));
                }
                self.finished = Some((outcome, error, at));
            }
        }
        self.first_at_ms.get_or_insert(at);
        Ok(())
    }

    /// The index of a job named by an event; it must be one of run_started's.
    fn job_index(&self, job_id: &str, kind_name: &str) -> Result<usize, String> {
        if self.run_started.is_none() {
            return Err(format!("{kind_name} before run_started"));
        }
        self.index
            .get(job_id)
            .copied()
            .ok_or_else(|| format!("{kind_name} for job `{job_id}`, which run_started does not list"))
    }

    /// The index of a job that must be running (started, not finished).
    fn running_job(&self, job_id: &str, kind_name: &str) -> Result<usize, String> {
        let i = self.job_index(job_id, kind_name)?;
        match self.jobs[i].state {
            JobState::Unfinished => Ok(i),
            JobState::Pending => Err(format!("{kind_name} for job `{job_id}`, which has not started")),
            done => Err(format!(
                "{kind_name} for job `{job_id}`, which is already {}",
                done.as_str()
            )),
        }
    }

    fn finish(self) -> Result<RunRecord, RecordError> {
        let started_ms = self.first_at_ms.ok_or(RecordError::Empty)?;
        let (sha, git_ref) = self.run_started.unzip();
        let (outcome, error, finished_ms) = match self.finished {
            Some((outcome, error, at)) => (outcome.into(), error, Some(at)),
            None => (RunState::Interrupted, None, None),
        };
        Ok(RunRecord {
            run: RunInfo {
                sha,
                git_ref,
                outcome,
                error,
                started_ms,
                finished_ms,
            },
            jobs: self.jobs,
            sh: self.sh,
            warnings: self.warnings,
        })
    }
}

fn type_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::RunStarted { .. } => "run_started",
        EventKind::JobStarted { .. } => "job_started",
        EventKind::ShStarted { .. } => "sh_started",
        EventKind::ShFinished { .. } => "sh_finished",
        EventKind::JobFinished { .. } => "job_finished",
        EventKind::JobSkipped { .. } => "job_skipped",
        EventKind::RunFinished { .. } => "run_finished",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn read(text: &str) -> Result<RunRecord, RecordError> {
        read_record(text.as_bytes())
    }

    fn record(text: &str) -> RunRecord {
        read(text).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Lines joined with newlines, each ending in one.
    fn stream(lines: &[&str]) -> String {
        lines.iter().map(|line| format!("{line}\n")).collect()
    }

    fn run_started(jobs: &str) -> String {
        format!(r#"{{"at_ms":1000,"type":"run_started","sha":"{SHA}","ref":"refs/heads/main","jobs":{jobs}}}"#)
    }

    fn contract_error(text: &str) -> (u64, String) {
        match read(text) {
            Err(RecordError::Contract { line, reason }) => (line, reason),
            other => panic!("expected a contract error, got {other:?}"),
        }
    }

    fn malformed_error(text: &str) -> (u64, String) {
        match read(text) {
            Err(RecordError::Malformed { line, reason }) => (line, reason),
            other => panic!("expected a malformed line, got {other:?}"),
        }
    }

    fn job(id: &str, state: JobState, started: Option<u64>, finished: Option<u64>) -> JobRecord {
        JobRecord {
            job_id: id.into(),
            state,
            started_ms: started,
            finished_ms: finished,
            blocked_by: None,
        }
    }

    #[test]
    fn a_complete_run_gives_every_row() {
        let text = stream(&[
            &run_started(r#"["build","test"]"#),
            r#"{"at_ms":1010,"type":"job_started","job_id":"build"}"#,
            r#"{"at_ms":1020,"type":"sh_started","job_id":"build","cmd":"cargo build"}"#,
            r#"{"at_ms":1090,"type":"sh_finished","job_id":"build","exit_code":0}"#,
            r#"{"at_ms":1100,"type":"job_finished","job_id":"build","outcome":"complete"}"#,
            r#"{"at_ms":1110,"type":"job_started","job_id":"test"}"#,
            r#"{"at_ms":1120,"type":"job_finished","job_id":"test","outcome":"skipped"}"#,
            r#"{"at_ms":1130,"type":"run_finished","outcome":"complete"}"#,
        ]);
        let record = record(&text);
        assert_eq!(
            record,
            RunRecord {
                run: RunInfo {
                    sha: Some(SHA.into()),
                    git_ref: Some("refs/heads/main".into()),
                    outcome: RunState::Complete,
                    error: None,
                    started_ms: 1000,
                    finished_ms: Some(1130),
                },
                jobs: vec![
                    job("build", JobState::Complete, Some(1010), Some(1100)),
                    job("test", JobState::Skipped, Some(1110), Some(1120)),
                ],
                sh: vec![ShRecord {
                    job_id: "build".into(),
                    n: 1,
                    cmd: "cargo build".into(),
                    exit_code: Some(0),
                    started_ms: 1020,
                    finished_ms: Some(1090),
                    log_path: "jobs/build/sh-1.log".into(),
                }],
                warnings: vec![],
            }
        );
        assert_eq!(record.run.duration_ms(), Some(130));
        assert_eq!(record.jobs[0].duration_ms(), Some(90));
    }

    #[test]
    fn the_nth_sh_started_of_a_job_pairs_with_its_nth_sh_finished() {
        // Two jobs running at once, their sh calls interleaved.
        let text = stream(&[
            &run_started(r#"["a","b"]"#),
            r#"{"at_ms":1001,"type":"job_started","job_id":"a"}"#,
            r#"{"at_ms":1002,"type":"job_started","job_id":"b"}"#,
            r#"{"at_ms":1003,"type":"sh_started","job_id":"a","cmd":"a1"}"#,
            r#"{"at_ms":1004,"type":"sh_started","job_id":"b","cmd":"b1"}"#,
            r#"{"at_ms":1005,"type":"sh_finished","job_id":"b","exit_code":0}"#,
            r#"{"at_ms":1006,"type":"sh_started","job_id":"b","cmd":"b2"}"#,
            r#"{"at_ms":1007,"type":"sh_finished","job_id":"a","exit_code":7}"#,
            r#"{"at_ms":1008,"type":"sh_finished","job_id":"b","exit_code":3}"#,
            r#"{"at_ms":1009,"type":"job_finished","job_id":"a","outcome":"failed"}"#,
            r#"{"at_ms":1010,"type":"job_finished","job_id":"b","outcome":"failed"}"#,
            r#"{"at_ms":1011,"type":"run_finished","outcome":"failed"}"#,
        ]);
        let record = record(&text);
        let rows: Vec<_> = record
            .sh
            .iter()
            .map(|sh| {
                (
                    sh.job_id.as_str(),
                    sh.n,
                    sh.cmd.as_str(),
                    sh.exit_code,
                    sh.started_ms,
                    sh.finished_ms,
                    sh.log_path.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("a", 1, "a1", Some(7), 1003, Some(1007), "jobs/a/sh-1.log"),
                ("b", 1, "b1", Some(0), 1004, Some(1005), "jobs/b/sh-1.log"),
                ("b", 2, "b2", Some(3), 1006, Some(1008), "jobs/b/sh-2.log"),
            ]
        );
        assert_eq!(record.sh_of("b").count(), 2);
        assert_eq!(record.run.outcome, RunState::Failed);
    }

    #[test]
    fn skipped_jobs_are_blocked_with_or_without_an_input_to_blame() {
        let text = stream(&[
            &run_started(r#"["test","deploy","docs"]"#),
            r#"{"at_ms":1001,"type":"job_started","job_id":"test"}"#,
            r#"{"at_ms":1002,"type":"job_finished","job_id":"test","outcome":"cancelled"}"#,
            r#"{"at_ms":1003,"type":"job_skipped","job_id":"deploy","blocked_by":"test"}"#,
            r#"{"at_ms":1004,"type":"job_skipped","job_id":"docs"}"#,
            r#"{"at_ms":1005,"type":"run_finished","outcome":"cancelled"}"#,
        ]);
        let record = record(&text);
        assert_eq!(record.run.outcome, RunState::Cancelled);
        let mut deploy = job("deploy", JobState::Blocked, None, None);
        deploy.blocked_by = Some("test".into());
        assert_eq!(
            record.jobs,
            vec![
                job("test", JobState::Cancelled, Some(1001), Some(1002)),
                deploy,
                job("docs", JobState::Blocked, None, None),
            ]
        );
    }

    #[test]
    fn a_pipeline_that_did_not_load_is_a_run_with_no_jobs() {
        let record = record(&stream(&[
            r#"{"at_ms":500,"type":"run_finished","outcome":"failed","error":"syntax error\nat line 2"}"#,
        ]));
        assert_eq!(
            record.run,
            RunInfo {
                sha: None,
                git_ref: None,
                outcome: RunState::Failed,
                error: Some("syntax error\nat line 2".into()),
                started_ms: 500,
                finished_ms: Some(500),
            }
        );
        assert!(record.jobs.is_empty() && record.sh.is_empty());
    }

    #[test]
    fn a_stream_without_run_finished_is_interrupted_with_open_work_unfinished() {
        let text = stream(&[
            &run_started(r#"["build","test","deploy"]"#),
            r#"{"at_ms":1001,"type":"job_started","job_id":"build"}"#,
            r#"{"at_ms":1002,"type":"job_finished","job_id":"build","outcome":"complete"}"#,
            r#"{"at_ms":1003,"type":"job_started","job_id":"test"}"#,
            r#"{"at_ms":1004,"type":"sh_started","job_id":"test","cmd":"cargo test"}"#,
        ]);
        let record = record(&text);
        assert_eq!(record.run.outcome, RunState::Interrupted);
        assert_eq!(record.run.finished_ms, None);
        assert_eq!(record.run.duration_ms(), None);
        assert_eq!(
            record.jobs,
            vec![
                job("build", JobState::Complete, Some(1001), Some(1002)),
                job("test", JobState::Unfinished, Some(1003), None),
                job("deploy", JobState::Pending, None, None),
            ]
        );
        assert_eq!(record.sh[0].exit_code, None);
        assert_eq!(record.sh[0].finished_ms, None);
        assert!(record.warnings.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_a_warning_and_skipped() {
        let mut text = stream(&[
            &run_started(r#"["build"]"#),
            r#"{"at_ms":1001,"type":"job_started","job_id":"build"}"#,
        ]);
        text.push_str(r#"{"at_ms":1002,"type":"job_fin"#);
        let record = record(&text);
        assert_eq!(record.run.outcome, RunState::Interrupted);
        assert_eq!(record.jobs[0].state, JobState::Unfinished);
        assert_eq!(record.warnings.len(), 1);
        assert!(
            record.warnings[0].starts_with("line 3 has no newline and is not valid JSON"),
            "{:?}",
            record.warnings
        );
    }

    #[test]
    fn a_complete_last_line_without_a_newline_is_read() {
        let text = r#"{"at_ms":1,"type":"run_finished","outcome":"complete"}"#;
        let record = record(text);
        assert_eq!(record.run.outcome, RunState::Complete);
        assert!(record.warnings.is_empty());
    }

    #[test]
    fn unknown_event_types_and_fields_are_ignored() {
        let text = stream(&[
            r#"{"at_ms":999,"type":"producer_hello","version":7}"#,
            &run_started(r#"["build"]"#),
            r#"{"at_ms":1001,"type":"job_started","job_id":"build","runner":"r1"}"#,
            r#"{"at_ms":1002,"type":"job_heartbeat","job_id":"build"}"#,
            r#"{"at_ms":1003,"type":"artifact","job_id":"nowhere","path":{"nested":[1,2]}}"#,
            r#"{"at_ms":1004,"type":"job_finished","job_id":"build","outcome":"complete"}"#,
            r#"{"at_ms":1005,"type":"run_finished","outcome":"complete"}"#,
            r#"{"at_ms":1006,"type":"run_uploaded"}"#,
        ]);
        let record = record(&text);
        assert_eq!(record.run.started_ms, 1000, "unknown events don't start the run");
        assert_eq!(
            record.jobs,
            vec![job("build", JobState::Complete, Some(1001), Some(1004))]
        );
        assert_eq!(record.run.outcome, RunState::Complete);
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let first = run_started(r#"["build"]"#);
        let cases = [
            ("hello there", "not JSON (expected value at column 1)"),
            ("[1,2]", "not a JSON object"),
            (r#"{"at_ms":1}"#, "it has no `type`"),
            (r#"{"at_ms":1,"type":5}"#, "its `type` is not a string"),
            (
                r#"{"at_ms":1,"type":"job_started"}"#,
                "invalid job_started event: missing field `job_id`",
            ),
            (
                r#"{"at_ms":-1,"type":"job_started","job_id":"build"}"#,
                "invalid job_started event:",
            ),
            (
                r#"{"at_ms":1,"type":"job_finished","job_id":"build","outcome":"great"}"#,
                "invalid job_finished event: unknown variant `great`",
            ),
            ("", "not JSON (EOF while parsing a value at column 0)"),
        ];
        for (bad, expected) in cases {
            let text = stream(&[&first, bad, r#"{"at_ms":2,"type":"run_finished"}"#]);
            let (line, reason) = malformed_error(&text);
            assert_eq!(line, 2, "{bad}");
            assert!(reason.starts_with(expected), "{bad}: {reason}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_stream_fails_on_its_first_line() {
        let (line, _) = malformed_error("# My project\n\nSome text.\n");
        assert_eq!(line, 1);
        let (line, _) = malformed_error("\u{0}\u{1}binary\u{ff}garbage\n");
        assert_eq!(line, 1);
        let bytes: &[u8] = b"\xff\xfe{\n";
        assert!(matches!(
            read_record(bytes),
            Err(RecordError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn an_empty_stream_is_an_error() {
        assert!(matches!(read(""), Err(RecordError::Empty)));
        assert!(matches!(
            read(&stream(&[r#"{"at_ms":1,"type":"hello"}"#])),
            Err(RecordError::Empty)
        ));
        // A torn first line is all a producer killed at once may leave.
        assert!(matches!(read(r#"{"at_ms":1,"ty"#), Err(RecordError::Empty)));
    }

    #[test]
    fn an_over_long_line_is_malformed() {
        let text = stream(&[r#"{"at_ms":1,"type":"run_finished","outcome":"complete"}"#]);
        assert!(read_record_limited(text.as_bytes(), 100).is_ok());
        assert!(matches!(
            read_record_limited(text.as_bytes(), 20),
            Err(RecordError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn events_that_break_the_contract_are_errors_naming_the_line() {
        let start = run_started(r#"["a","b"]"#);
        let a_started = r#"{"at_ms":1001,"type":"job_started","job_id":"a"}"#;
        let sh_started = r#"{"at_ms":1002,"type":"sh_started","job_id":"a","cmd":"x"}"#;
        let sh_finished = r#"{"at_ms":1003,"type":"sh_finished","job_id":"a","exit_code":0}"#;
        let a_finished = r#"{"at_ms":1004,"type":"job_finished","job_id":"a","outcome":"complete"}"#;
        let b_skipped = r#"{"at_ms":1005,"type":"job_skipped","job_id":"b"}"#;
        let run_finished = r#"{"at_ms":1006,"type":"run_finished","outcome":"complete"}"#;
        let cases: Vec<(Vec<&str>, u64, &str)> = vec![
            (vec![a_started], 1, "job_started before run_started"),
            (vec![&start, &start], 2, "a second run_started"),
            (
                vec![&start, a_started, sh_finished],
                3,
                "sh_finished in job `a` without a matching sh_started",
            ),
            (
                vec![&start, a_started, sh_started, sh_started],
                4,
                "sh_started in job `a` while its sh call 1 has not finished",
            ),
            (
                vec![&start, a_started, sh_started, a_finished],
                4,
                "job_finished for job `a` while its sh call 1 has not finished",
            ),
            (
                vec![&start, a_started, a_finished, a_finished],
                4,
                "job_finished for job `a`, which is already complete",
            ),
            (
                vec![&start, a_started, a_started],
                3,
                "job_started for job `a`, which is already unfinished",
            ),
            (
                vec![&start, a_finished],
                2,
                "job_finished for job `a`, which has not started",
            ),
            (
                vec![&start, sh_started],
                2,
                "sh_started for job `a`, which has not started",
            ),
            (
                vec![&start, a_started, a_finished, sh_started],
                4,
                "sh_started for job `a`, which is already complete",
            ),
            (
                vec![&start, b_skipped, b_skipped],
                3,
                "job_skipped for job `b`, which is already blocked",
            ),
            (
                vec![&start, a_started, r#"{"at_ms":1,"type":"job_skipped","job_id":"a"}"#],
                3,
                "job_skipped for job `a`, which is already unfinished",
            ),
            (
                vec![&start, r#"{"at_ms":1,"type":"job_started","job_id":"zzz"}"#],
                2,
                "job_started for job `zzz`, which run_started does not list",
            ),
            (
                vec![&start, a_started, run_finished],
                3,
                "run_finished, but job `a` has not finished",
            ),
            (
                vec![&start, a_started, a_finished, run_finished],
                4,
                "run_finished, but job `b` never started nor got job_skipped",
            ),
            (vec![run_finished, run_finished], 2, "run_finished after run_finished"),
            (vec![run_finished, &start], 2, "run_started after run_finished"),
            (
                vec![r#"{"at_ms":1,"type":"run_started","sha":"","ref":"","jobs":["x","x"]}"#],
                1,
                "run_started lists job `x` twice",
            ),
        ];
        for (lines, expected_line, expected) in cases {
            let (line, reason) = contract_error(&stream(&lines));
            assert_eq!((line, reason.as_str()), (expected_line, expected), "{lines:#?}");
        }
    }

    #[test]
    fn the_record_serializes_with_the_wire_names() {
        let record = record(&stream(&[
            &run_started(r#"["a"]"#),
            r#"{"at_ms":1001,"type":"job_skipped","job_id":"a","blocked_by":"x"}"#,
        ]));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["run"]["ref"], "refs/heads/main");
        assert_eq!(json["run"]["outcome"], "interrupted");
        assert_eq!(json["run"]["finished_ms"], serde_json::Value::Null);
        assert_eq!(json["jobs"][0]["state"], "blocked");
        assert_eq!(json["jobs"][0]["blocked_by"], "x");
        let back: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn every_event_type_is_known() {
        // A new EventKind variant must be added to EVENT_TYPES, or it would be ignored.
        let kinds = [
            EventKind::RunStarted {
                sha: String::new(),
                git_ref: String::new(),
                jobs: vec![],
            },
            EventKind::JobStarted { job_id: "a".into() },
            EventKind::ShStarted {
                job_id: "a".into(),
                cmd: String::new(),
            },
            EventKind::ShFinished {
                job_id: "a".into(),
                exit_code: 0,
            },
            EventKind::JobFinished {
                job_id: "a".into(),
                outcome: JobOutcome::Complete,
            },
            EventKind::JobSkipped {
                job_id: "a".into(),
                blocked_by: None,
            },
            EventKind::RunFinished {
                outcome: RunOutcome::Complete,
                error: None,
            },
        ];
        for kind in kinds {
            let name = type_name(&kind);
            let json = serde_json::to_value(Event { at_ms: 0, kind }).unwrap();
            assert_eq!(json["type"], name);
            assert!(EVENT_TYPES.contains(&name), "{name}");
        }
    }

    mod no_panic {
        use super::*;
        use proptest::prelude::*;

        /// Lines that are often valid events, so the contract checks get exercised too.
        fn plausible_line() -> impl Strategy<Value = String> {
            let job = prop::sample::select(vec!["a", "b", "zzz"]);
            prop_oneof![
                Just(run_started(r#"["a","b"]"#)),
                job.clone()
                    .prop_map(|j| format!(r#"{{"at_ms":5,"type":"job_started","job_id":"{j}"}}"#)),
                job.clone()
                    .prop_map(|j| format!(r#"{{"at_ms":6,"type":"sh_started","job_id":"{j}","cmd":"c"}}"#)),
                job.clone()
                    .prop_map(|j| format!(r#"{{"at_ms":7,"type":"sh_finished","job_id":"{j}","exit_code":1}}"#)),
                job.clone()
                    .prop_map(|j| format!(r#"{{"at_ms":8,"type":"job_finished","job_id":"{j}","outcome":"failed"}}"#)),
                job.prop_map(|j| format!(r#"{{"at_ms":9,"type":"job_skipped","job_id":"{j}"}}"#)),
                Just(r#"{"at_ms":10,"type":"run_finished","outcome":"failed"}"#.to_string()),
                Just(r#"{"at_ms":11,"type":"mystery"}"#.to_string()),
                "[ -~]{0,20}",
            ]
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                let _ = read_record(bytes.as_slice());
            }

            #[test]
            fn shuffled_events_never_panic(
                lines in prop::collection::vec(plausible_line(), 0..12),
                cut in 0usize..40,
            ) {
                let mut bytes = stream(&lines.iter().map(String::as_str).collect::<Vec<_>>())
                    .into_bytes();
                // Sometimes tear the last line.
                bytes.truncate(bytes.len().saturating_sub(cut % 3 * cut));
                let _ = read_record(bytes.as_slice());
            }
        }
    }
}
