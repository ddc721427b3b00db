//! The human reporter: progress and command output on stderr, then a summary.
//! It is one more observer of the run's events; it never touches stdout.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};

use quire_core::ci::event::{Event, EventKind, JobOutcome, RunOutcome};
use quire_core::ci::runtime::{Observer, RuntimeEvent};

/// Lines of output kept per job for the failure summary.
const TAIL_LINES: usize = 10;

#[derive(Default)]
struct JobView {
    started_ms: Option<u64>,
    finished_ms: Option<u64>,
    outcome: Option<JobOutcome>,
    blocked_by: Option<String>,
    not_run: bool,
    last_cmd: Option<String>,
    last_exit: Option<i32>,
    error: Option<String>,
    tail: VecDeque<String>,
}

pub struct Reporter<W: Write> {
    out: W,
    quiet: bool,
    /// Job ids in declaration order, for the summary.
    order: Vec<String>,
    jobs: HashMap<String, JobView>,
    width: usize,
    run_started_ms: Option<u64>,
}

impl Reporter<io::Stderr> {
    pub fn stderr(quiet: bool) -> Self {
        Reporter::new(io::stderr(), quiet)
    }
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, quiet: bool) -> Self {
        Reporter {
            out,
            quiet,
            order: Vec::new(),
            jobs: HashMap::new(),
            width: 0,
            run_started_ms: None,
        }
    }

    fn job(&mut self, id: &str) -> &mut JobView {
        if !self.jobs.contains_key(id) {
            self.order.push(id.to_string());
            self.width = self.width.max(id.len());
        }
        self.jobs.entry(id.to_string()).or_default()
    }

    fn line(&mut self, job_id: &str, text: &str) -> io::Result<()> {
        writeln!(self.out, "{job_id:<width$} | {text}", width = self.width)
    }

    fn on_wire(&mut self, event: &Event) -> io::Result<()> {
        let at = event.at_ms;
        match &event.kind {
            EventKind::RunStarted { sha, git_ref, jobs } => {
                self.run_started_ms = Some(at);
                for id in jobs {
                    self.job(id);
                }
                if !self.quiet {
                    let short = &sha[..sha.len().min(12)];
                    let count = jobs.len();
                    writeln!(
                        self.out,
                        "run {short} {git_ref}: {count} job{}",
                        plural(count)
                    )?;
                }
            }
            EventKind::JobStarted { job_id } => {
                self.job(job_id).started_ms = Some(at);
                if !self.quiet {
                    self.line(job_id, "started")?;
                }
            }
            EventKind::ShStarted { job_id, cmd } => {
                let job = self.job(job_id);
                job.last_cmd = Some(cmd.clone());
                job.last_exit = None;
                job.tail.clear();
                if !self.quiet {
                    self.line(job_id, &format!("$ {cmd}"))?;
                }
            }
            EventKind::ShFinished { job_id, exit_code } => {
                self.job(job_id).last_exit = Some(*exit_code);
            }
            EventKind::JobFinished { job_id, outcome } => {
                let job = self.job(job_id);
                job.finished_ms = Some(at);
                job.outcome = Some(*outcome);
                let took = duration(job.started_ms, Some(at));
                let error = job.error.clone();
                let tail: Vec<String> = job.tail.iter().cloned().collect();
                match outcome {
                    JobOutcome::Failed => {
                        let why = error.map(|e| format!(": {e}")).unwrap_or_default();
                        self.line(job_id, &format!("failed in {took}{why}"))?;
                        if self.quiet && !tail.is_empty() {
                            for text in tail {
                                self.line(job_id, &text)?;
                            }
                        }
                    }
                    other if !self.quiet => {
                        self.line(job_id, &format!("{} in {took}", other.as_str()))?
                    }
                    _ => {}
                }
            }
            EventKind::JobSkipped { job_id, blocked_by } => {
                let job = self.job(job_id);
                job.not_run = true;
                job.blocked_by = blocked_by.clone();
                if !self.quiet {
                    let why = match blocked_by {
                        Some(input) => format!("not run: blocked by {input}"),
                        None => "not run: the run stopped first".to_string(),
                    };
                    self.line(job_id, &why)?;
                }
            }
            EventKind::RunFinished { outcome, error } => {
                if let Some(error) = error {
                    writeln!(self.out, "{error}")?;
                }
                self.summary(at, *outcome)?;
            }
        }
        Ok(())
    }

    fn summary(&mut self, at: u64, outcome: RunOutcome) -> io::Result<()> {
        if self.order.is_empty() || self.run_started_ms.is_none() {
            return writeln!(self.out, "run {}", outcome.as_str());
        }
        let width = self.width.max(3);
        writeln!(self.out)?;
        writeln!(self.out, "{:<width$}  {:<9}  duration", "job", "outcome")?;
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for id in &self.order {
            let job = &self.jobs[id];
            let (state, detail) = match (job.outcome, job.not_run) {
                (Some(outcome), _) => (outcome.as_str(), duration(job.started_ms, job.finished_ms)),
                (None, true) => (
                    "not run",
                    job.blocked_by
                        .as_ref()
                        .map(|b| format!("(blocked by {b})"))
                        .unwrap_or_else(|| "(run stopped)".into()),
                ),
                (None, false) => ("unfinished", String::new()),
            };
            writeln!(self.out, "{id:<width$}  {state:<9}  {detail}")?;
            match counts.iter_mut().find(|(s, _)| *s == state) {
                Some((_, n)) => *n += 1,
                None => counts.push((state, 1)),
            }
        }
        for id in &self.order {
            let job = &self.jobs[id];
            if job.outcome != Some(JobOutcome::Failed) {
                continue;
            }
            writeln!(self.out)?;
            match (&job.last_cmd, job.last_exit) {
                (Some(cmd), Some(code)) if code != 0 => {
                    writeln!(self.out, "{id}: `{cmd}` exited with code {code}")?
                }
                _ => writeln!(
                    self.out,
                    "{id}: {}",
                    job.error.as_deref().unwrap_or("failed")
                )?,
            }
            for text in &job.tail {
                writeln!(self.out, "  {text}")?;
            }
        }
        let counts: Vec<String> = counts
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        writeln!(
            self.out,
            "\nrun {} in {}: {}",
            outcome.as_str(),
            duration(self.run_started_ms, Some(at)),
            counts.join(", ")
        )
    }
}

impl<W: Write> Observer for Reporter<W> {
    fn observe(&mut self, event: &RuntimeEvent) -> io::Result<()> {
        // The reporter is for a person: a closed stderr must not stop the run.
        let _ = match event {
            RuntimeEvent::Wire(event) => self.on_wire(event),
            RuntimeEvent::Output { job_id, line, .. } => {
                let text = String::from_utf8_lossy(line).into_owned();
                let job = self.job(job_id);
                if job.tail.len() == TAIL_LINES {
                    job.tail.pop_front();
                }
                job.tail.push_back(text.clone());
                if self.quiet {
                    Ok(())
                } else {
                    self.line(job_id, &text)
                }
            }
            RuntimeEvent::JobError { job_id, message } => {
                self.job(job_id).error = Some(message.clone());
                Ok(())
            }
        };
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn duration(start: Option<u64>, end: Option<u64>) -> String {
    match (start, end) {
        (Some(start), Some(end)) => format_duration(end.saturating_sub(start)),
        _ => String::new(),
    }
}

/// `1.25s` under a minute, `2m05s` from there; `report` shows durations the same way.
pub fn format_duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
