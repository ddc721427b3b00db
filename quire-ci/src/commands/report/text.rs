//! The text form of a run record: who ran, a table of jobs, the commands of
//! every job that did not complete, and how the run ended.

use quire_core::ci::record::{JobRecord, JobState, RunRecord, RunState, ShRecord};

use crate::columns::{self, Pad};
use crate::reporter::format_duration;

/// The whole report, blocks separated by blank lines, ending in a newline.
pub fn render(record: &RunRecord) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let run = &record.run;
    if let (Some(sha), Some(git_ref)) = (&run.sha, &run.git_ref) {
        // By chars, not bytes: the stream may carry any text here.
        let short: String = sha.chars().take(12).collect();
        blocks.push(format!("run {short} {git_ref}\n"));
    }
    if !record.jobs.is_empty() {
        blocks.push(job_table(&record.jobs));
    }
    for job in &record.jobs {
        if needs_its_commands(job.state) {
            let commands: Vec<&ShRecord> = record.sh_of(&job.job_id).collect();
            blocks.push(command_list(job, &commands));
        }
    }
    blocks.push(ending(record));
    blocks.join("\n")
}

/// Jobs whose commands say what went wrong or how far they got.
fn needs_its_commands(state: JobState) -> bool {
    matches!(state, JobState::Failed | JobState::Cancelled | JobState::Unfinished)
}

fn job_table(jobs: &[JobRecord]) -> String {
    let rows: Vec<(&str, &str, String)> = jobs
        .iter()
        .map(|job| (job.job_id.as_str(), job.state.as_str(), job_detail(job)))
        .collect();
    let id_width = column_width("job", rows.iter().map(|row| row.0));
    let state_width = column_width("outcome", rows.iter().map(|row| row.1));
    let mut out = String::new();
    let mut push_row = |id: &str, state: &str, detail: &str| {
        let line = format!("{}  {state:<state_width$}  {detail}", Pad(id, id_width));
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row("job", "outcome", "duration");
    for (id, state, detail) in &rows {
        push_row(id, state, detail);
    }
    out
}

/// The duration of a job that ran, or why there is none.
fn job_detail(job: &JobRecord) -> String {
    if let Some(ms) = job.duration_ms() {
        return format_duration(ms);
    }
    match (job.state, &job.blocked_by) {
        (JobState::Blocked, Some(input)) => format!("(blocked by {input})"),
        (JobState::Blocked, None) => "(the run stopped first)".into(),
        (JobState::Unfinished, _) => "(still running when the stream ended)".into(),
        (JobState::Pending, _) => "(never started)".into(),
        _ => String::new(),
    }
}

fn command_list(job: &JobRecord, commands: &[&ShRecord]) -> String {
    let mut out = format!("{} {}:\n", job.job_id, job.state.as_str());
    if commands.is_empty() {
        out.push_str("  no commands\n");
        return out;
    }
    let rows: Vec<(String, String, &str)> = commands
        .iter()
        .map(|sh| {
            let status = match sh.exit_code {
                Some(code) => format!("exit {code}"),
                None => "running".into(),
            };
            (format!("sh-{}", sh.n), status, first_line(&sh.cmd))
        })
        .collect();
    let n_width = column_width("", rows.iter().map(|row| row.0.as_str()));
    let status_width = column_width("", rows.iter().map(|row| row.1.as_str()));
    for (n, status, cmd) in rows {
        out.push_str(&format!("  {n:<n_width$}  {status:<status_width$}  {cmd}\n"));
    }
    out
}

/// A multi-line script shows as its first line; the JSON form has all of it.
fn first_line(cmd: &str) -> &str {
    cmd.lines().next().unwrap_or("")
}

fn ending(record: &RunRecord) -> String {
    let run = &record.run;
    let outcome = run.outcome.as_str();
    let mut line = if run.outcome == RunState::Interrupted {
        format!("run {outcome} (the stream ends without run_finished)")
    } else if run.sha.is_none() {
        format!("run {outcome} before it started")
    } else {
        let took = run.duration_ms().map(format_duration).unwrap_or_default();
        format!("run {outcome} in {took}")
    };
    let counts = state_counts(&record.jobs);
    if !counts.is_empty() {
        line.push_str(": ");
        line.push_str(&counts);
    }
    line.push('\n');
    if let Some(error) = &run.error {
        line.push_str("error:\n");
        for text in error.lines() {
            line.push_str(format!("  {text}").trim_end());
            line.push('\n');
        }
    }
    line
}

/// `2 complete, 1 failed`, states in the order the table first shows them.
fn state_counts(jobs: &[JobRecord]) -> String {
    let mut counts: Vec<(JobState, usize)> = Vec::new();
    for job in jobs {
        match counts.iter_mut().find(|(state, _)| *state == job.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((job.state, 1)),
        }
    }
    counts
        .iter()
        .map(|(state, n)| format!("{n} {}", state.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The widest of `title` and `cells`, in terminal columns.
fn column_width<'a>(title: &str, cells: impl Iterator<Item = &'a str>) -> usize {
    cells
        .map(columns::width)
        .chain([columns::width(title)])
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_core::ci::record::read_record;

    fn render_stream(lines: &[&str]) -> String {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        render(&read_record(text.as_bytes()).unwrap())
    }

    const START: &str = r#"{"at_ms":1000,"type":"run_started","sha":"0123456789abcdef0123456789abcdef01234567","ref":"refs/heads/main","jobs":["build","test","package","lint"]}"#;

    #[test]
    fn a_failed_run_shows_the_failed_jobs_commands() {
        let text = render_stream(&[
            START,
            r#"{"at_ms":1000,"type":"job_started","job_id":"build"}"#,
            r#"{"at_ms":1010,"type":"sh_started","job_id":"build","cmd":"cargo build"}"#,
            r#"{"at_ms":2200,"type":"sh_finished","job_id":"build","exit_code":0}"#,
            r#"{"at_ms":2250,"type":"job_finished","job_id":"build","outcome":"complete"}"#,
            r#"{"at_ms":2300,"type":"job_started","job_id":"test"}"#,
            r#"{"at_ms":2310,"type":"sh_started","job_id":"test","cmd":"echo testing\necho more"}"#,
            r#"{"at_ms":2320,"type":"sh_finished","job_id":"test","exit_code":0}"#,
            r#"{"at_ms":2330,"type":"sh_started","job_id":"test","cmd":"exit 3"}"#,
            r#"{"at_ms":2340,"type":"sh_finished","job_id":"test","exit_code":3}"#,
            r#"{"at_ms":2350,"type":"job_finished","job_id":"test","outcome":"failed"}"#,
            r#"{"at_ms":2350,"type":"job_skipped","job_id":"package","blocked_by":"test"}"#,
            r#"{"at_ms":2360,"type":"job_started","job_id":"lint"}"#,
            r#"{"at_ms":2360,"type":"job_finished","job_id":"lint","outcome":"skipped"}"#,
            r#"{"at_ms":62400,"type":"run_finished","outcome":"failed"}"#,
        ]);
        assert_eq!(
            text,
            "\
run 0123456789ab refs/heads/main

job      outcome   duration
build    complete  1.25s
test     failed    0.05s
package  blocked   (blocked by test)
lint     skipped   0.00s

test failed:
  sh-1  exit 0  echo testing
  sh-2  exit 3  exit 3

run failed in 1m01s: 1 complete, 1 failed, 1 blocked, 1 skipped
"
        );
    }

    #[test]
    fn ids_of_wide_characters_are_aligned_by_the_columns_they_take() {
        let text = render_stream(&[
            r#"{"at_ms":0,"type":"run_started","sha":"0","ref":"HEAD","jobs":["テスト","café-🎉","go"]}"#,
            r#"{"at_ms":0,"type":"job_started","job_id":"テスト"}"#,
            r#"{"at_ms":10,"type":"job_finished","job_id":"テスト","outcome":"complete"}"#,
            r#"{"at_ms":0,"type":"job_started","job_id":"café-🎉"}"#,
            r#"{"at_ms":20,"type":"job_finished","job_id":"café-🎉","outcome":"complete"}"#,
            r#"{"at_ms":20,"type":"job_skipped","job_id":"go","blocked_by":"café-🎉"}"#,
            r#"{"at_ms":20,"type":"run_finished","outcome":"complete"}"#,
        ]);
        assert_eq!(
            text,
            "\
run 0 HEAD

job      outcome   duration
テスト   complete  0.01s
café-🎉  complete  0.02s
go       blocked   (blocked by café-🎉)

run complete in 0.02s: 2 complete, 1 blocked
"
        );
    }

    #[test]
    fn a_pipeline_that_did_not_load_shows_its_error() {
        let text = render_stream(&[
            r#"{"at_ms":5,"type":"run_finished","outcome":"failed","error":"× bad pipeline\n\n  help: fix it"}"#,
        ]);
        assert_eq!(
            text,
            "run failed before it started\nerror:\n  × bad pipeline\n\n    help: fix it\n"
        );
    }

    #[test]
    fn an_interrupted_run_shows_where_it_stopped() {
        let text = render_stream(&[
            START,
            r#"{"at_ms":1000,"type":"job_started","job_id":"build"}"#,
            r#"{"at_ms":1010,"type":"sh_started","job_id":"build","cmd":"cargo build"}"#,
            r#"{"at_ms":1020,"type":"sh_finished","job_id":"build","exit_code":0}"#,
            r#"{"at_ms":1030,"type":"sh_started","job_id":"build","cmd":"cargo doc"}"#,
            r#"{"at_ms":1040,"type":"job_skipped","job_id":"lint"}"#,
        ]);
        assert_eq!(
            text,
            "\
run 0123456789ab refs/heads/main

job      outcome     duration
build    unfinished  (still running when the stream ended)
test     pending     (never started)
package  pending     (never started)
lint     blocked     (the run stopped first)

build unfinished:
  sh-1  exit 0   cargo build
  sh-2  running  cargo doc

run interrupted (the stream ends without run_finished): 1 unfinished, 2 pending, 1 blocked
"
        );
    }

    #[test]
    fn a_failed_job_without_commands_says_so() {
        let text = render_stream(&[
            r#"{"at_ms":0,"type":"run_started","sha":"é","ref":"HEAD","jobs":["x"]}"#,
            r#"{"at_ms":0,"type":"job_started","job_id":"x"}"#,
            r#"{"at_ms":0,"type":"job_finished","job_id":"x","outcome":"failed"}"#,
            r#"{"at_ms":0,"type":"run_finished","outcome":"failed"}"#,
        ]);
        assert_eq!(
            text,
            "\
run é HEAD

job  outcome  duration
x    failed   0.00s

x failed:
  no commands

run failed in 0.00s: 1 failed
"
        );
    }
}
