//! The human reporter: progress and command output on stderr, then a summary.
//! It is one more observer of the run's events; it never touches stdout.
//!
//! Plain text when stderr is not a terminal (logs, CI), colour and a live
//! status line of the running jobs when it is (never with `NO_COLOR`).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::{self, IsTerminal, Write};
use std::rc::Rc;

use anstyle::{AnsiColor, Style};
use quire_core::ci::event::{Event, EventKind, JobOutcome, RunOutcome, now_ms};
use quire_core::ci::process::OutputStream;
use quire_core::ci::runtime::{Observer, RuntimeEvent};
use tokio::sync::Notify;

use crate::columns::{self, Pad};

/// Lines of output kept per job for the failure summary.
const TAIL_LINES: usize = 10;

/// Batched output is written out once this much is waiting.
const PENDING_MAX: usize = 64 * 1024;

/// The width of a terminal that does not tell its own.
const DEFAULT_COLUMNS: usize = 80;

/// Colours given to job prefixes in turn, so interleaved output stays readable.
const JOB_COLOURS: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Red,
];

/// How the reporter writes: plain for files and pipes; for a person at a
/// terminal, with the live status line, and colour unless `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Terminal,
    /// A terminal whose user asked for no colour (`NO_COLOR`).
    MonochromeTerminal,
}

impl Mode {
    pub fn detect() -> Mode {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        match (io::stderr().is_terminal(), no_color) {
            (false, _) => Mode::Plain,
            (true, false) => Mode::Terminal,
            (true, true) => Mode::MonochromeTerminal,
        }
    }
}

/// Where the live status line learns how wide the terminal is.
#[derive(Debug, Clone, Copy)]
enum Columns {
    /// Asked of stderr's terminal at each draw: it may have been resized.
    Stderr,
    Fixed(usize),
}

#[derive(Default)]
struct JobView {
    colour: usize,
    started_ms: Option<u64>,
    finished_ms: Option<u64>,
    outcome: Option<JobOutcome>,
    blocked_by: Option<String>,
    not_run: bool,
    last_cmd: Option<String>,
    last_exit: Option<i32>,
    error: Option<String>,
    /// The last lines of output, raw: most are never shown.
    tail: VecDeque<Vec<u8>>,
    /// What the job printed since its last whole line.
    printed: Vec<u8>,
}

impl JobView {
    /// The last lines of output, as shown, to follow the job's error: none
    /// when the error ends with them already, as ci.mirror's does (with
    /// git's stderr), or one raised as `(error (.. "why: " result.stderr))`.
    fn tail_beyond_error(&self) -> Vec<String> {
        let tail: Vec<String> = self.tail.iter().map(|line| shown(line).into_owned()).collect();
        let text = tail.join("\n");
        let text = text.trim_end();
        match &self.error {
            Some(error) if !text.is_empty() && error.trim_end().ends_with(text) => Vec::new(),
            _ => tail,
        }
    }
}

pub struct Reporter<W: Write> {
    out: W,
    mode: Mode,
    quiet: bool,
    /// Job ids in declaration order, for the summary; `jobs` is in the same order.
    order: Vec<String>,
    jobs: Vec<JobView>,
    index: HashMap<String, usize>,
    /// The job looked up last: output comes in runs of lines of one job.
    last: usize,
    /// Running jobs, in the order they started, for the live status line.
    running: Vec<String>,
    status_shown: bool,
    columns: Columns,
    /// The widest job id, in terminal columns: ids are padded to it.
    width: usize,
    run_started_ms: Option<u64>,
    /// Text not yet written to `out`: every write goes through it, so order is kept.
    pending: Vec<u8>,
    /// Something was written to `out`: the summary is set apart from it.
    wrote: bool,
    /// Set by [`Reporter::batch_output`]: lines of output wait here for a flush.
    flusher: Option<Rc<Notify>>,
}

impl Reporter<io::Stderr> {
    pub fn stderr(quiet: bool) -> Self {
        Reporter {
            columns: Columns::Stderr,
            ..Reporter::new(io::stderr(), Mode::detect(), quiet)
        }
    }
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, mode: Mode, quiet: bool) -> Self {
        Reporter {
            out,
            mode,
            quiet,
            order: Vec::new(),
            jobs: Vec::new(),
            index: HashMap::new(),
            last: 0,
            running: Vec::new(),
            status_shown: false,
            columns: Columns::Fixed(DEFAULT_COLUMNS),
            width: 0,
            run_started_ms: None,
            pending: Vec::new(),
            wrote: false,
            flusher: None,
        }
    }

    /// Let lines of command output wait, and ask `flusher` to have
    /// [`Reporter::flush`] called soon: a task that waits on it runs once the
    /// job yields, so each read of output is one write to stderr, not one
    /// (or four, stderr being unbuffered) per line. Anything else is written at once.
    pub fn batch_output(&mut self, flusher: Rc<Notify>) {
        self.flusher = Some(flusher);
    }

    /// Write out what is waiting, with the live status line under it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.draw_status()?;
        if !self.pending.is_empty() {
            let written = self.out.write_all(&self.pending);
            self.pending.clear();
            self.wrote = true;
            written?;
        }
        self.out.flush()
    }

    /// A line of quire-ci's own (a signal heard, a warning), shown at once, even with
    /// -q, on a line of its own rather than after the live status line.
    pub fn notice(&mut self, text: &str) {
        self.clear_status();
        let _ = writeln!(self.pending, "{text}");
        let _ = self.flush();
    }

    /// Redraw the live status line (durations move on between events).
    pub fn tick(&mut self) {
        let _ = self.flush();
    }

    fn paint(&self, style: Style, text: &str) -> String {
        match self.mode {
            Mode::Plain | Mode::MonochromeTerminal => text.to_string(),
            Mode::Terminal => format!("{style}{text}{style:#}"),
        }
    }

    fn job_index(&mut self, id: &str) -> usize {
        if self.order.get(self.last).is_some_and(|last| last == id) {
            return self.last;
        }
        let i = match self.index.get(id) {
            Some(&i) => i,
            None => {
                let i = self.order.len();
                self.order.push(id.to_string());
                self.index.insert(id.to_string(), i);
                self.width = self.width.max(columns::width(id));
                self.jobs.push(JobView {
                    colour: i % JOB_COLOURS.len(),
                    ..JobView::default()
                });
                i
            }
        };
        self.last = i;
        i
    }

    fn job(&mut self, id: &str) -> &mut JobView {
        let i = self.job_index(id);
        &mut self.jobs[i]
    }

    fn view(&self, id: &str) -> Option<&JobView> {
        self.index.get(id).map(|&i| &self.jobs[i])
    }

    /// Take the status line off the screen before printing above it.
    fn clear_status(&mut self) {
        if self.status_shown {
            self.pending.extend_from_slice(b"\r\x1b[2K");
            self.status_shown = false;
        }
    }

    fn draw_status(&mut self) -> io::Result<()> {
        if self.mode == Mode::Plain || self.quiet {
            return Ok(());
        }
        self.clear_status();
        if self.running.len() < 2 {
            return Ok(());
        }
        let now = now_ms();
        let parts: Vec<String> = self
            .running
            .iter()
            .map(|id| format!("{id} {}", duration(self.view(id).and_then(|j| j.started_ms), Some(now))))
            .collect();
        let columns = match self.columns {
            Columns::Stderr => stderr_columns().unwrap_or(DEFAULT_COLUMNS),
            Columns::Fixed(columns) => columns,
        };
        // `\r\x1b[2K` clears one row: a status line that wraps leaves its
        // first rows on the screen at every redraw. The last column stays
        // free, as some terminals wrap as soon as it is written.
        let text = status_text(&parts, columns.saturating_sub(1));
        if text.is_empty() {
            return Ok(());
        }
        let text = self.paint(Style::new().dimmed(), &text);
        self.pending.extend_from_slice(text.as_bytes());
        self.status_shown = true;
        Ok(())
    }

    /// One line about a job, prefixed by its id (aligned, coloured per job);
    /// text of several lines (an error naming a command of several lines)
    /// gets the prefix on each.
    fn line(&mut self, job_id: &str, text: &str) -> io::Result<()> {
        self.clear_status();
        let colour = self.job(job_id).colour;
        let width = self.width;
        for text in text.split('\n') {
            // Writing to a Vec cannot fail.
            let _ = match self.mode {
                Mode::Plain | Mode::MonochromeTerminal => writeln!(self.pending, "{} | {text}", Pad(job_id, width)),
                Mode::Terminal => {
                    let style = Style::new().fg_color(Some(JOB_COLOURS[colour].into()));
                    writeln!(self.pending, "{style}{} |{style:#} {text}", Pad(job_id, width))
                }
            };
        }
        Ok(())
    }

    /// Text a job's code printed: each whole line is a line of its output;
    /// the rest waits for the line's end.
    fn printed(&mut self, job_id: &str, text: &[u8]) -> io::Result<()> {
        let mut printed = std::mem::take(&mut self.job(job_id).printed);
        printed.extend_from_slice(text);
        let mut start = 0;
        while let Some(end) = printed[start..].iter().position(|&b| b == b'\n') {
            self.output_line(job_id, &printed[start..start + end])?;
            start += end + 1;
        }
        printed.drain(..start);
        self.job(job_id).printed = printed;
        Ok(())
    }

    /// The end of what a job printed, when it did not end its last line.
    fn printed_rest(&mut self, job_id: &str) -> io::Result<()> {
        let rest = std::mem::take(&mut self.job(job_id).printed);
        if rest.is_empty() {
            return Ok(());
        }
        self.output_line(job_id, &rest)
    }

    /// A line of command output (or printed by the job's code): kept for the
    /// failure summary, shown unless quiet.
    fn output_line(&mut self, job_id: &str, line: &[u8]) -> io::Result<()> {
        let job = self.job(job_id);
        // Reuse the oldest line's buffer: a loud command prints millions.
        let mut kept = if job.tail.len() == TAIL_LINES {
            job.tail.pop_front().unwrap_or_default()
        } else {
            Vec::new()
        };
        kept.clear();
        kept.extend_from_slice(line);
        job.tail.push_back(kept);
        if self.quiet {
            return Ok(());
        }
        self.line(job_id, &shown(line))
    }

    fn outcome_style(outcome: &str) -> Style {
        let colour = match outcome {
            "complete" => AnsiColor::Green,
            "failed" | "cancelled" => AnsiColor::Red,
            _ => AnsiColor::Yellow,
        };
        Style::new().fg_color(Some(colour.into())).bold()
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
                    let short: String = sha.chars().take(12).collect();
                    let count = jobs.len();
                    writeln!(self.pending, "run {short} {git_ref}: {count} job{}", plural(count))?;
                }
            }
            EventKind::JobStarted { job_id } => {
                self.job(job_id).started_ms = Some(at);
                self.running.push(job_id.clone());
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
                    // A command of several lines: each under the job's prefix,
                    // the later ones indented past the `$ `.
                    for (i, part) in cmd.split('\n').enumerate() {
                        let shown = if i == 0 {
                            format!("$ {part}")
                        } else {
                            format!("  {part}")
                        };
                        let text = self.paint(Style::new().bold(), &shown);
                        self.line(job_id, &text)?;
                    }
                }
            }
            EventKind::ShFinished { job_id, exit_code } => {
                self.job(job_id).last_exit = Some(*exit_code);
            }
            EventKind::JobFinished { job_id, outcome } => {
                self.printed_rest(job_id)?;
                self.running.retain(|id| id != job_id);
                let quiet = self.quiet;
                let job = self.job(job_id);
                job.finished_ms = Some(at);
                job.outcome = Some(*outcome);
                let took = duration(job.started_ms, Some(at));
                let error = job.error.clone();
                let tail = if quiet { job.tail_beyond_error() } else { Vec::new() };
                let word = self.paint(Self::outcome_style(outcome.as_str()), outcome.as_str());
                if *outcome == JobOutcome::Failed {
                    let why = error.map(|e| format!(": {e}")).unwrap_or_default();
                    self.line(job_id, &format!("{word} in {took}{why}"))?;
                    // Quiet mode showed no output; show what led to the failure.
                    if self.quiet {
                        for text in tail {
                            self.line(job_id, &text)?;
                        }
                    }
                } else if !self.quiet {
                    self.line(job_id, &format!("{word} in {took}"))?;
                }
            }
            EventKind::JobSkipped { job_id, blocked_by } => {
                let job = self.job(job_id);
                job.not_run = true;
                job.blocked_by = blocked_by.clone();
                if !self.quiet {
                    let word = self.paint(Self::outcome_style("not run"), "not run");
                    let why = match blocked_by {
                        Some(input) => format!("{word}: blocked by {input}"),
                        None => format!("{word}: the run stopped first"),
                    };
                    self.line(job_id, &why)?;
                }
            }
            EventKind::RunFinished { outcome, error } => {
                self.clear_status();
                if let Some(error) = error {
                    writeln!(self.pending, "{error}")?;
                }
                self.summary(at, *outcome)?;
            }
        }
        Ok(())
    }

    fn summary(&mut self, at: u64, outcome: RunOutcome) -> io::Result<()> {
        let run_word = self.paint(Self::outcome_style(outcome.as_str()), outcome.as_str());
        if self.order.is_empty() || self.run_started_ms.is_none() {
            return writeln!(self.pending, "run {run_word}");
        }
        let width = self.width.max(3);
        // Below what the run showed; at the top when it showed nothing (-q).
        if self.wrote || !self.pending.is_empty() {
            writeln!(self.pending)?;
        }
        let header = format!("{:<width$}  {:<9}  duration", "job", "outcome");
        writeln!(self.pending, "{}", self.paint(Style::new().bold(), &header))?;
        let mut counts: Vec<(&str, usize)> = Vec::new();
        let mut rows = Vec::new();
        for id in &self.order {
            let job = &self.jobs[self.index[id]];
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
            rows.push((id.clone(), state, detail));
            match counts.iter_mut().find(|(s, _)| *s == state) {
                Some((_, n)) => *n += 1,
                None => counts.push((state, 1)),
            }
        }
        for (id, state, detail) in rows {
            let padded = format!("{state:<9}");
            writeln!(
                self.pending,
                "{}  {}  {detail}",
                Pad(&id, width),
                self.paint(Self::outcome_style(state), &padded)
            )?;
        }
        // What failed and why, gathered under the table: the output ran
        // between other jobs'. Not with -q: a failed job's line showed it,
        // and it is all that was shown.
        for id in self.order.iter().filter(|_| !self.quiet) {
            let job = &self.jobs[self.index[id]];
            if job.outcome != Some(JobOutcome::Failed) {
                continue;
            }
            writeln!(self.pending)?;
            // The job's error says what failed (a command, or the run-fn itself).
            let headline = match (&job.error, &job.last_cmd, job.last_exit) {
                (Some(error), _, _) => format!("{id}: {error}"),
                (None, Some(cmd), Some(code)) if code != 0 => format!("{id}: `{cmd}` exited with code {code}"),
                _ => format!("{id}: failed"),
            };
            // Its later lines (a command's stderr, a diagnostic) indented
            // under the first, like the output after them: the next job's
            // starts at the margin.
            let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
            for (i, text) in headline.split('\n').enumerate() {
                match (i, text) {
                    (0, text) => writeln!(self.pending, "{}", self.paint(red, text))?,
                    (_, "") => writeln!(self.pending)?,
                    (_, text) => writeln!(self.pending, "  {}", self.paint(red, text))?,
                }
            }
            for text in job.tail_beyond_error() {
                writeln!(self.pending, "  {text}")?;
            }
        }
        let counts: Vec<String> = counts.iter().map(|(state, n)| format!("{n} {state}")).collect();
        let total = duration(self.run_started_ms, Some(at));
        writeln!(self.pending, "\nrun {run_word} in {total}: {}", counts.join(", "))
    }
}

impl<W: Write> Observer for Reporter<W> {
    fn observe(&mut self, event: &RuntimeEvent) -> io::Result<()> {
        let result = match event {
            RuntimeEvent::Wire(event) => self.on_wire(event),
            RuntimeEvent::Output { job_id, stream, line } => return self.output(job_id, *stream, line),
            RuntimeEvent::JobError { job_id, message } => {
                // One that ends with a command's stderr ends with a newline:
                // no empty last line, under the job's prefix or in the summary.
                self.job(job_id).error = Some(message.trim_end().to_string());
                Ok(())
            }
            // Shown even with -q: it explains figures in the run's record.
            RuntimeEvent::Warning(message) => {
                self.notice(&format!("warning: {message}"));
                Ok(())
            }
            // Top-level code's text is the pipeline's own: shown as is, above the status line.
            RuntimeEvent::Print { job_id: None, text } => {
                if !self.quiet {
                    self.clear_status();
                    self.pending.extend_from_slice(text);
                }
                Ok(())
            }
            // A job's is output of the job, like its commands'.
            RuntimeEvent::Print {
                job_id: Some(job_id),
                text,
            } => self.printed(job_id, text),
        };
        // The reporter is for a person: a closed stderr must not stop the run.
        let _ = result.and_then(|()| self.flush());
        Ok(())
    }

    fn output(&mut self, job_id: &str, _stream: OutputStream, line: &[u8]) -> io::Result<()> {
        let was_empty = self.pending.is_empty();
        let _ = self.output_line(job_id, line);
        if self.pending.is_empty() {
            return Ok(()); // quiet
        }
        match &self.flusher {
            Some(flusher) if self.pending.len() < PENDING_MAX => {
                if was_empty {
                    flusher.notify_one();
                }
            }
            // The reporter is for a person: a closed stderr must not stop the run.
            _ => drop(self.flush()),
        }
        Ok(())
    }
}

/// Output as text: borrowed when it is UTF-8 (checked the fast way), U+FFFD for what is not.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// A line of output as a reader expects to see it: a line that redraws
/// itself with `\r` (a progress bar) as the terminal is left showing, the
/// text after the last `\r`, rather than a `\r` that would send the cursor
/// back over the `job |` prefix. A `\r` that ends the line (CRLF) redraws
/// nothing. The logs keep every byte; this is only what the reporter shows.
fn shown(line: &[u8]) -> Cow<'_, str> {
    // memchr: a loud command prints millions of lines, most without a `\r`.
    let Some(mut cr) = memchr::memrchr(b'\r', line) else {
        return lossy(line);
    };
    let mut end = line.len();
    while cr + 1 == end {
        end = cr;
        match memchr::memrchr(b'\r', &line[..end]) {
            Some(before) => cr = before,
            None => return lossy(&line[..end]),
        }
    }
    lossy(&line[cr + 1..end])
}

/// `running: a 0.50s, b 1.20s`, within `max` columns: as many jobs as fit
/// whole, then how many more there are; `running: 6 jobs` if none fits;
/// on a terminal too narrow even for that, as much of it as fits.
fn status_text(parts: &[String], max: usize) -> String {
    const HEAD: &str = "running: ";
    let full = format!("{HEAD}{}", parts.join(", "));
    if columns::width(&full) <= max {
        return full;
    }
    let mut used = HEAD.len();
    let mut fits = 0;
    for (shown, part) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
        used += columns::width(part) + if shown > 0 { 2 } else { 0 };
        if used > max {
            break;
        }
        let more = format!(", … +{} more", parts.len() - shown - 1);
        if used + columns::width(&more) <= max {
            fits = shown + 1;
        }
    }
    if fits > 0 {
        return format!("{HEAD}{}, … +{} more", parts[..fits].join(", "), parts.len() - fits);
    }
    let count = format!("{HEAD}{} jobs", parts.len());
    match max {
        _ if columns::width(&count) <= max => count,
        0 => String::new(),
        _ => format!("{}…", columns::cut(&count, max - 1)),
    }
}

/// The width of the terminal on stderr, if it is one that tells it: an
/// ioctl, cheap next to the write of the status line that follows it.
fn stderr_columns() -> Option<usize> {
    // SAFETY: a winsize is plain integers; zeroes are a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize to the pointer it is given, and
    // `size` is one; on a descriptor that is not a terminal it fails.
    let told = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (told && size.ws_col > 0).then_some(usize::from(size.ws_col))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(at_ms: u64, kind: EventKind) -> RuntimeEvent {
        RuntimeEvent::Wire(Event { at_ms, kind })
    }

    fn output(job: &str, line: &str) -> RuntimeEvent {
        RuntimeEvent::Output {
            job_id: job.into(),
            stream: quire_core::ci::process::OutputStream::Stdout,
            line: line.as_bytes().to_vec(),
        }
    }

    /// A run with a complete job, a failed one and a blocked one, at fixed times.
    fn failing_run() -> Vec<RuntimeEvent> {
        vec![
            wire(
                1000,
                EventKind::RunStarted {
                    sha: "ab".repeat(20),
                    git_ref: "refs/heads/main".into(),
                    jobs: vec!["build".into(), "test".into(), "deploy".into()],
                },
            ),
            wire(1000, EventKind::JobStarted { job_id: "build".into() }),
            wire(
                1010,
                EventKind::ShStarted {
                    job_id: "build".into(),
                    cmd: "make".into(),
                },
            ),
            output("build", "compiled"),
            wire(
                2250,
                EventKind::ShFinished {
                    job_id: "build".into(),
                    exit_code: 0,
                },
            ),
            wire(
                2250,
                EventKind::JobFinished {
                    job_id: "build".into(),
                    outcome: JobOutcome::Complete,
                },
            ),
            wire(2260, EventKind::JobStarted { job_id: "test".into() }),
            wire(
                2260,
                EventKind::ShStarted {
                    job_id: "test".into(),
                    cmd: "make check".into(),
                },
            ),
            output("test", "1 test failed"),
            wire(
                2760,
                EventKind::ShFinished {
                    job_id: "test".into(),
                    exit_code: 2,
                },
            ),
            RuntimeEvent::JobError {
                job_id: "test".into(),
                message: ".quire/ci.fnl:7: command `make check` exited with code 2".into(),
            },
            wire(
                2760,
                EventKind::JobFinished {
                    job_id: "test".into(),
                    outcome: JobOutcome::Failed,
                },
            ),
            wire(
                2760,
                EventKind::JobSkipped {
                    job_id: "deploy".into(),
                    blocked_by: Some("test".into()),
                },
            ),
            wire(
                2770,
                EventKind::RunFinished {
                    outcome: RunOutcome::Failed,
                    error: None,
                },
            ),
        ]
    }

    /// A run whose jobs `a` and `b` have both started, so the status line shows.
    fn two_jobs_running() -> Vec<RuntimeEvent> {
        vec![
            wire(
                0,
                EventKind::RunStarted {
                    sha: "0".repeat(40),
                    git_ref: "HEAD".into(),
                    jobs: vec!["a".into(), "b".into()],
                },
            ),
            wire(0, EventKind::JobStarted { job_id: "a".into() }),
            wire(0, EventKind::JobStarted { job_id: "b".into() }),
        ]
    }

    fn render(events: &[RuntimeEvent], mode: Mode, quiet: bool) -> String {
        let mut reporter = Reporter::new(Vec::new(), mode, quiet);
        for event in events {
            reporter.observe(event).unwrap();
        }
        String::from_utf8(reporter.out).unwrap()
    }

    #[test]
    fn plain_failing_run() {
        assert_eq!(
            render(&failing_run(), Mode::Plain, false),
            "\
run abababababab refs/heads/main: 3 jobs
build  | started
build  | $ make
build  | compiled
build  | complete in 1.25s
test   | started
test   | $ make check
test   | 1 test failed
test   | failed in 0.50s: .quire/ci.fnl:7: command `make check` exited with code 2
deploy | not run: blocked by test

job     outcome    duration
build   complete   1.25s
test    failed     0.50s
deploy  not run    (blocked by test)

test: .quire/ci.fnl:7: command `make check` exited with code 2
  1 test failed

run failed in 1.77s: 1 complete, 1 failed, 1 not run
"
        );
    }

    #[test]
    fn ids_of_wide_characters_are_aligned_by_the_columns_they_take() {
        // テスト takes 6 columns (9 bytes), café-🎉 7 (10 bytes): padding by
        // bytes or chars would push the `|` and the table's columns apart.
        let mut events = vec![wire(
            0,
            EventKind::RunStarted {
                sha: "0".repeat(40),
                git_ref: "HEAD".into(),
                jobs: vec!["テスト".into(), "café-🎉".into(), "go".into()],
            },
        )];
        for id in ["テスト", "café-🎉", "go"] {
            events.push(wire(0, EventKind::JobStarted { job_id: id.into() }));
            events.push(output(id, "hi"));
            events.push(wire(
                10,
                EventKind::JobFinished {
                    job_id: id.into(),
                    outcome: JobOutcome::Complete,
                },
            ));
        }
        events.push(wire(
            10,
            EventKind::RunFinished {
                outcome: RunOutcome::Complete,
                error: None,
            },
        ));
        assert_eq!(
            render(&events, Mode::Plain, false),
            "\
run 000000000000 HEAD: 3 jobs
テスト  | started
テスト  | hi
テスト  | complete in 0.01s
café-🎉 | started
café-🎉 | hi
café-🎉 | complete in 0.01s
go      | started
go      | hi
go      | complete in 0.01s

job      outcome    duration
テスト   complete   0.01s
café-🎉  complete   0.01s
go       complete   0.01s

run complete in 0.01s: 3 complete
"
        );
    }

    #[test]
    fn a_command_of_several_lines_keeps_the_prefix_on_each() {
        let cmd = "echo one\necho two";
        let events = vec![
            wire(0, EventKind::JobStarted { job_id: "a".into() }),
            wire(
                0,
                EventKind::ShStarted {
                    job_id: "a".into(),
                    cmd: cmd.into(),
                },
            ),
            wire(
                10,
                EventKind::ShFinished {
                    job_id: "a".into(),
                    exit_code: 1,
                },
            ),
            RuntimeEvent::JobError {
                job_id: "a".into(),
                message: format!("command `{cmd}` exited with code 1"),
            },
            wire(
                10,
                EventKind::JobFinished {
                    job_id: "a".into(),
                    outcome: JobOutcome::Failed,
                },
            ),
        ];
        let text = render(&events, Mode::Plain, false);
        assert!(
            text.starts_with(
                "a | started\na | $ echo one\na |   echo two\na | failed in 0.01s: command `echo one\na | echo two` exited with code 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn quiet_with_nothing_failed_shows_the_summary_alone() {
        let events = [
            wire(
                0,
                EventKind::RunStarted {
                    sha: "0".repeat(40),
                    git_ref: "HEAD".into(),
                    jobs: vec!["a".into()],
                },
            ),
            wire(0, EventKind::JobStarted { job_id: "a".into() }),
            output("a", "hidden by -q"),
            wire(
                1500,
                EventKind::JobFinished {
                    job_id: "a".into(),
                    outcome: JobOutcome::Complete,
                },
            ),
            wire(
                1500,
                EventKind::RunFinished {
                    outcome: RunOutcome::Complete,
                    error: None,
                },
            ),
        ];
        // No blank line above the table: nothing was shown before it.
        assert_eq!(
            render(&events, Mode::Plain, true),
            "job  outcome    duration\na    complete   1.50s\n\nrun complete in 1.50s: 1 complete\n"
        );
    }

    #[test]
    fn quiet_shows_only_failures_and_the_summary() {
        let text = render(&failing_run(), Mode::Plain, true);
        assert!(text.starts_with(
            "test   | failed in 0.50s: .quire/ci.fnl:7: command `make check` exited with code 2\ntest   | 1 test failed\n\njob"
        ), "{text}");
        assert!(!text.contains("compiled"));
        // Once each: the failure's line was all that -q showed of the job.
        assert_eq!(text.matches("exited with code 2").count(), 1, "{text}");
        assert_eq!(text.matches("1 test failed").count(), 1, "{text}");
    }

    /// Job `push` fails as ci.mirror does: its error ends with the stderr
    /// of its last command, which is all that command printed.
    fn mirror_failing() -> Vec<RuntimeEvent> {
        let mut events = vec![
            wire(
                0,
                EventKind::RunStarted {
                    sha: "0".repeat(40),
                    git_ref: "HEAD".into(),
                    jobs: vec!["push".into()],
                },
            ),
            wire(0, EventKind::JobStarted { job_id: "push".into() }),
            wire(
                0,
                EventKind::ShStarted {
                    job_id: "push".into(),
                    cmd: "git push /no/repo.git refs/heads/main".into(),
                },
            ),
        ];
        let stderr = "fatal: '/no/repo.git' does not appear to be a git repository\n\
                      fatal: Could not read from remote repository.\n";
        for line in stderr.lines() {
            events.push(output("push", line));
        }
        events.extend([
            wire(
                10,
                EventKind::ShFinished {
                    job_id: "push".into(),
                    exit_code: 128,
                },
            ),
            RuntimeEvent::JobError {
                job_id: "push".into(),
                message: format!("mirror: git push to /no/repo.git failed (exit code 128): {stderr}"),
            },
            wire(
                10,
                EventKind::JobFinished {
                    job_id: "push".into(),
                    outcome: JobOutcome::Failed,
                },
            ),
            wire(
                10,
                EventKind::RunFinished {
                    outcome: RunOutcome::Failed,
                    error: None,
                },
            ),
        ]);
        events
    }

    #[test]
    fn output_that_the_error_ends_with_is_not_shown_again_under_it() {
        assert_eq!(
            render(&mirror_failing(), Mode::Plain, true),
            "\
push | failed in 0.01s: mirror: git push to /no/repo.git failed (exit code 128): fatal: '/no/repo.git' does not appear to be a git repository
push | fatal: Could not read from remote repository.

job   outcome    duration
push  failed     0.01s

run failed in 0.01s: 1 failed
"
        );
        // Without -q the output was shown as it came; the summary's error
        // has it again, gathered, but only once.
        assert_eq!(
            render(&mirror_failing(), Mode::Plain, false),
            "\
run 000000000000 HEAD: 1 job
push | started
push | $ git push /no/repo.git refs/heads/main
push | fatal: '/no/repo.git' does not appear to be a git repository
push | fatal: Could not read from remote repository.
push | failed in 0.01s: mirror: git push to /no/repo.git failed (exit code 128): fatal: '/no/repo.git' does not appear to be a git repository
push | fatal: Could not read from remote repository.

job   outcome    duration
push  failed     0.01s

push: mirror: git push to /no/repo.git failed (exit code 128): fatal: '/no/repo.git' does not appear to be a git repository
  fatal: Could not read from remote repository.

run failed in 0.01s: 1 failed
"
        );
    }

    #[test]
    fn output_is_shown_under_an_error_that_does_not_end_with_all_of_it() {
        let job = |error: &str, tail: &[&str]| JobView {
            error: Some(error.into()),
            tail: tail.iter().map(|line| line.as_bytes().to_vec()).collect(),
            ..JobView::default()
        };
        let tail = |job: JobView| job.tail_beyond_error();
        // The command's text names `boom`: the error does not give its output.
        assert_eq!(
            tail(job("command `echo boom >&2; exit 1` exited with code 1", &["boom"])),
            ["boom"]
        );
        // The error ends with the stderr, but stdout came between its lines.
        assert_eq!(tail(job("failed: e1\ne2\n", &["e1", "out", "e2"])), ["e1", "out", "e2"]);
        assert_eq!(tail(job("failed: e1\ne2\n", &["e1", "e2"])), Vec::<String>::new());
        // As shown: the error ends with what the redrawn line shows.
        assert_eq!(tail(job("failed: 100%", &["10%\r100%"])), Vec::<String>::new());
        assert_eq!(tail(job("failed", &[])), Vec::<String>::new());
    }

    #[test]
    fn batched_output_waits_for_a_flush_and_keeps_its_order() {
        let mut reporter = Reporter::new(Vec::new(), Mode::Plain, false);
        reporter.batch_output(Rc::new(Notify::new()));
        reporter
            .observe(&wire(0, EventKind::JobStarted { job_id: "a".into() }))
            .unwrap();
        reporter.observe(&output("a", "one")).unwrap();
        reporter.output("a", OutputStream::Stderr, b"t\xffwo").unwrap();
        assert_eq!(String::from_utf8_lossy(&reporter.out), "a | started\n");
        reporter.flush().unwrap();
        reporter.output("a", OutputStream::Stdout, b"three").unwrap();
        let finished = EventKind::JobFinished {
            job_id: "a".into(),
            outcome: JobOutcome::Complete,
        };
        reporter.observe(&wire(10, finished)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&reporter.out),
            "a | started\na | one\na | t\u{FFFD}wo\na | three\na | complete in 0.01s\n"
        );
    }

    #[test]
    fn a_line_that_redraws_itself_shows_as_its_last_drawing() {
        assert_eq!(shown(b"plain"), "plain");
        assert_eq!(shown(b"fetching 10%\rfetching 60%\rfetching 100%"), "fetching 100%");
        assert_eq!(shown(b"crlf\r"), "crlf");
        assert_eq!(shown(b"10%\r100%\r\r"), "100%");
        assert_eq!(shown(b"\r"), "");
        assert_eq!(shown(b"half\rt\xffwo"), "t\u{FFFD}wo");
    }

    #[test]
    fn a_carriage_return_in_output_never_overwrites_the_job_prefix() {
        let mut events = two_jobs_running();
        events.remove(2);
        events.push(output("a", "fetching 10%\rfetching 100%"));
        events.push(output("a", "windows line\r"));
        events.push(wire(
            10,
            EventKind::ShFinished {
                job_id: "a".into(),
                exit_code: 1,
            },
        ));
        events.push(wire(
            10,
            EventKind::JobFinished {
                job_id: "a".into(),
                outcome: JobOutcome::Failed,
            },
        ));
        events.push(wire(
            10,
            EventKind::RunFinished {
                outcome: RunOutcome::Failed,
                error: None,
            },
        ));
        let shown = "a | fetching 100%\na | windows line\n";
        for mode in [Mode::Plain, Mode::MonochromeTerminal] {
            let text = render(&events, mode, false);
            assert!(text.contains(shown), "{mode:?}: {text:?}");
            assert!(!text.contains('\r'), "{mode:?}: {text:?}");
            // The failure summary shows the lines the same way.
            assert!(text.contains("\n  fetching 100%\n  windows line\n"), "{text:?}");
        }
        let quiet = render(&events, Mode::Plain, true);
        assert!(
            quiet.starts_with("a | failed in 0.01s\na | fetching 100%\na | windows line\n"),
            "{quiet:?}"
        );
    }

    #[test]
    fn terminal_mode_colours_and_plain_mode_does_not() {
        assert!(render(&failing_run(), Mode::Terminal, false).contains("\x1b["));
        assert!(!render(&failing_run(), Mode::Plain, false).contains('\x1b'));
    }

    #[test]
    fn live_status_lists_running_jobs_and_is_cleared_before_output() {
        let mut events = two_jobs_running();
        events.push(output("a", "hello"));
        let text = render(&events, Mode::Terminal, false);
        assert!(text.contains("running: a "), "{text:?}");
        // The status is erased before the output line is written.
        let status = text.find("running: a").unwrap();
        let hello = text.find("hello").unwrap();
        assert!(text[status..hello].contains("\r\x1b[2K"), "{text:?}");
    }

    #[test]
    fn a_notice_clears_the_live_status_line_first() {
        let mut reporter = Reporter::new(Vec::new(), Mode::Terminal, false);
        for event in two_jobs_running() {
            reporter.observe(&event).unwrap();
        }
        reporter.notice("quire-ci: stopping (signal 2); send it again to exit at once");
        let text = String::from_utf8(reporter.out).unwrap();
        assert!(text.contains("running: a "), "{text:?}");
        // Cleared, the notice on a line of its own, then the status drawn again.
        assert!(
            text.contains("\r\x1b[2Kquire-ci: stopping (signal 2); send it again to exit at once\n\x1b[2mrunning: a"),
            "{text:?}"
        );
    }

    fn parts(list: &[&str]) -> Vec<String> {
        list.iter().map(|part| part.to_string()).collect()
    }

    #[test]
    fn the_status_line_lists_what_fits_then_how_many_more_run() {
        let running = parts(&["a 0.50s", "b 1.20s", "c 3.00s", "d 0.01s", "e 0.02s"]);
        let all = "running: a 0.50s, b 1.20s, c 3.00s, d 0.01s, e 0.02s";
        assert_eq!(status_text(&running, 79), all);
        assert_eq!(status_text(&running, all.len()), all);
        // One column short: `, … +N more` takes the room of the last two.
        assert_eq!(
            status_text(&running, all.len() - 1),
            "running: a 0.50s, b 1.20s, c 3.00s, … +2 more"
        );
        assert_eq!(status_text(&running, 36), "running: a 0.50s, b 1.20s, … +3 more");
        assert_eq!(status_text(&running, 35), "running: a 0.50s, … +4 more");
        // Not one whole: the count.
        assert_eq!(status_text(&running, 26), "running: 5 jobs");
        assert_eq!(status_text(&running, 15), "running: 5 jobs");
        // A terminal narrower still: what fits of it.
        assert_eq!(status_text(&running, 14), "running: 5 jo…");
        assert_eq!(status_text(&running, 1), "…");
        assert_eq!(status_text(&running, 0), "");
    }

    #[test]
    fn the_status_line_is_cut_by_columns_and_never_inside_a_character() {
        // テスト takes 6 columns but 9 bytes, 🎉 2 columns but 4 bytes.
        let running = parts(&["テスト 0.50s", "🎉🎉🎉 1.20s", "x 0.01s"]);
        let all = "running: テスト 0.50s, 🎉🎉🎉 1.20s, x 0.01s";
        assert_eq!((all.len(), columns::width(all)), (53, 44));
        assert_eq!(status_text(&running, 44), all);
        assert_eq!(status_text(&running, 43), "running: テスト 0.50s, … +2 more");
        for max in 0..60 {
            let text = status_text(&running, max);
            assert!(columns::width(&text) <= max, "{max}: {text}");
        }
    }

    #[test]
    fn the_status_line_fits_the_terminal_however_long_the_ids() {
        // Six jobs of 40-character ids, on 80 columns: the line once took
        // four rows, and each redraw cleared only the last.
        let ids: Vec<String> = (1..=6).map(|i| format!("job-{i}-{}", "x".repeat(34))).collect();
        let mut events = vec![wire(
            0,
            EventKind::RunStarted {
                sha: "0".repeat(40),
                git_ref: "HEAD".into(),
                jobs: ids.clone(),
            },
        )];
        let now = now_ms();
        for id in &ids {
            events.push(wire(now, EventKind::JobStarted { job_id: id.clone() }));
        }
        for columns in [80, 40, 10] {
            let mut reporter = Reporter::new(Vec::new(), Mode::MonochromeTerminal, false);
            reporter.columns = Columns::Fixed(columns);
            for event in &events {
                reporter.observe(event).unwrap();
            }
            let text = String::from_utf8(reporter.out).unwrap();
            // Each status line is written last, and cleared before what follows.
            let statuses: Vec<&str> = text
                .split("\r\x1b[2K")
                .filter_map(|chunk| chunk.rsplit('\n').next())
                .filter(|last| !last.is_empty())
                .collect();
            assert_eq!(statuses.len(), 5, "{text:?}");
            for status in statuses {
                assert!(columns::width(status) < columns, "{columns}: {status:?}");
            }
        }
    }

    #[test]
    fn printed_text_is_shown_above_the_status_line_and_hidden_when_quiet() {
        let mut events = two_jobs_running();
        events.push(RuntimeEvent::Print {
            job_id: None,
            text: b"from the pipeline\n".to_vec(),
        });
        let text = render(&events, Mode::Terminal, false);
        let status = text.find("running: a").unwrap();
        let printed = text.find("from the pipeline\n").unwrap();
        assert!(text[status..printed].contains("\r\x1b[2K"), "{text:?}");
        assert!(!render(&events, Mode::Plain, true).contains("from the pipeline"));
    }

    fn print(job: Option<&str>, text: &str) -> RuntimeEvent {
        RuntimeEvent::Print {
            job_id: job.map(str::to_string),
            text: text.as_bytes().to_vec(),
        }
    }

    /// Top-level code prints, then job `build` prints around a command and
    /// ends with `outcome` (failed: with the error `boom`).
    fn printing_run(outcome: JobOutcome) -> Vec<RuntimeEvent> {
        let mut events = vec![
            print(None, "loading\n"),
            wire(
                0,
                EventKind::RunStarted {
                    sha: "0".repeat(40),
                    git_ref: "HEAD".into(),
                    jobs: vec!["build".into(), "lint".into()],
                },
            ),
            wire(0, EventKind::JobStarted { job_id: "build".into() }),
            print(Some("build"), "hello\tworld\n"),
            wire(
                0,
                EventKind::ShStarted {
                    job_id: "build".into(),
                    cmd: "make".into(),
                },
            ),
            output("build", "compiled"),
            wire(
                0,
                EventKind::ShFinished {
                    job_id: "build".into(),
                    exit_code: 0,
                },
            ),
            // Masking may hand a line over in pieces, or several lines at once.
            print(Some("build"), "made "),
            print(Some("build"), "***\ntwo\nlines\n"),
            // A masked secret may have swallowed the last newline.
            print(Some("build"), "no newline ***"),
        ];
        if outcome == JobOutcome::Failed {
            events.push(RuntimeEvent::JobError {
                job_id: "build".into(),
                message: "boom".into(),
            });
        }
        let run_outcome = match outcome {
            JobOutcome::Failed => RunOutcome::Failed,
            _ => RunOutcome::Complete,
        };
        events.extend([
            wire(
                10,
                EventKind::JobFinished {
                    job_id: "build".into(),
                    outcome,
                },
            ),
            wire(
                10,
                EventKind::JobSkipped {
                    job_id: "lint".into(),
                    blocked_by: None,
                },
            ),
            wire(
                10,
                EventKind::RunFinished {
                    outcome: run_outcome,
                    error: None,
                },
            ),
        ]);
        events
    }

    #[test]
    fn plain_job_prints_are_prefixed_like_command_output_and_top_level_ones_are_not() {
        assert_eq!(
            render(&printing_run(JobOutcome::Complete), Mode::Plain, false),
            "\
loading
run 000000000000 HEAD: 2 jobs
build | started
build | hello\tworld
build | $ make
build | compiled
build | made ***
build | two
build | lines
build | no newline ***
build | complete in 0.01s
lint  | not run: the run stopped first

job    outcome    duration
build  complete   0.01s
lint   not run    (run stopped)

run complete in 0.01s: 1 complete, 1 not run
"
        );
    }

    #[test]
    fn quiet_hides_prints_but_a_failed_job_shows_them_with_its_output() {
        // As with command output: the lines since the job's last command.
        assert_eq!(
            render(&printing_run(JobOutcome::Failed), Mode::Plain, true),
            "\
build | failed in 0.01s: boom
build | compiled
build | made ***
build | two
build | lines
build | no newline ***

job    outcome    duration
build  failed     0.01s
lint   not run    (run stopped)

run failed in 0.01s: 1 failed, 1 not run
"
        );
    }

    #[test]
    fn a_printed_line_looks_like_a_line_of_output_in_every_mode() {
        // One job running: no live status line, whose durations move on between renders.
        let mut started = two_jobs_running();
        started.remove(1);
        for mode in [Mode::Plain, Mode::Terminal, Mode::MonochromeTerminal] {
            let mut printed = started.clone();
            printed.push(print(Some("b"), "same\n"));
            let mut output_line = started.clone();
            output_line.push(output("b", "same"));
            assert_eq!(
                render(&printed, mode, false),
                render(&output_line, mode, false),
                "{mode:?}"
            );
        }
        // On a terminal, that is in the job's colour.
        let mut printed = started;
        printed.push(print(Some("b"), "same\n"));
        assert!(
            render(&printed, Mode::Terminal, false).ends_with("\x1b[35mb |\x1b[0m same\n"),
            "{:?}",
            render(&printed, Mode::Terminal, false)
        );
    }

    #[test]
    fn a_monochrome_terminal_has_the_status_line_but_no_colour() {
        let mut events = two_jobs_running();
        events.push(output("a", "hello"));
        let text = render(&events, Mode::MonochromeTerminal, false);
        assert!(text.contains("running: a "), "{text:?}");
        // The only escape is the one that clears the status line.
        assert_eq!(
            text.matches('\x1b').count(),
            text.matches("\x1b[2K").count(),
            "{text:?}"
        );
    }
}
