//! The wire contract: one JSON object per line, `at_ms` and `type` first,
//! the payload flattened beside them (design §3).
//!
//! These types are what a producer writes and what a consumer (an orchestrator,
//! `quire-ci report`) reads back, so both ends share one definition.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `type` of every event this version writes, one per `EventKind` variant.
pub const EVENT_TYPES: [&str; 7] = [
    "run_started",
    "job_started",
    "sh_started",
    "sh_finished",
    "job_finished",
    "job_skipped",
    "run_finished",
];

/// One line of the quire-ci event stream (JSONL): `at_ms`, `type`, and the
/// fields of that type beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "quire-ci event")]
pub struct Event {
    /// Producer wall clock, milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The first event of a run whose pipeline loaded.
    RunStarted {
        /// The commit being built (forty zeros outside a git repository).
        sha: String,
        /// The ref being built, e.g. `refs/heads/main`.
        #[serde(rename = "ref")]
        git_ref: String,
        /// Every job of the pipeline, in declaration order.
        jobs: Vec<String>,
    },
    /// A job began; exactly one `job_finished` with the same `job_id` follows.
    JobStarted { job_id: String },
    /// A command of a job began. The n-th `sh_started` of a job pairs with its
    /// n-th `sh_finished`; its output is in `jobs/<job_id>/sh-<n>.log`.
    ShStarted {
        job_id: String,
        /// The command as given, or an argv joined with spaces (quoted where
        /// needed). Secrets are redacted.
        cmd: String,
    },
    /// A command of a job ended.
    ShFinished {
        job_id: String,
        /// The process's code; 128+N when killed by signal N; 124 when it ran
        /// past its timeout; 127 when it could not be started.
        exit_code: i32,
    },
    /// A job ended.
    JobFinished { job_id: String, outcome: JobOutcome },
    /// A job that never started. `blocked_by` names its direct input that did
    /// not complete; it is absent when every input completed but the run
    /// stopped first (interrupted, or `--fail-fast`).
    JobSkipped {
        job_id: String,
        // Absent rather than null when there is none; the schema says so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "String")]
        blocked_by: Option<String>,
    },
    /// The last event of every run whose producer was not killed outright.
    RunFinished {
        outcome: RunOutcome,
        /// The rendered diagnostic when the run failed before or outside its
        /// jobs: the pipeline did not load, a set-up error, or a log (or the
        /// record) could not be written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "String")]
        error: Option<String>,
    },
}

/// How a job that started ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    /// The run-fn returned a table, or nil after running a command.
    Complete,
    /// The run-fn raised (a failing command raises) or returned something
    /// other than nil or a table.
    Failed,
    /// The run-fn returned nil and ran no command.
    Skipped,
    /// The run was stopped while the job ran.
    Cancelled,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Complete,
    Failed,
    Cancelled,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Complete => "complete",
            JobOutcome::Failed => "failed",
            JobOutcome::Skipped => "skipped",
            JobOutcome::Cancelled => "cancelled",
        }
    }
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Complete => "complete",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

impl Event {
    /// An event stamped with the current wall clock.
    pub fn now(kind: EventKind) -> Event {
        Event { at_ms: now_ms(), kind }
    }

    /// The event as one JSON line, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Serializing these plain types cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self).expect("event serializes")
    }
}

/// The JSON Schema of one line of the stream, as committed in
/// `docs/events.schema.json` (a test keeps the two equal).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Event);
    // A schema built from our own types is plain JSON.
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let ms = jiff::Timestamp::now().as_millisecond();
    u64::try_from(ms).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: EventKind, json: &str) {
        let event = Event { at_ms: 42, kind };
        assert_eq!(event.to_json_line(), json);
        let back: Event = serde_json::from_str(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn run_started() {
        check(
            EventKind::RunStarted {
                sha: "0".repeat(40),
                git_ref: "refs/heads/main".into(),
                jobs: vec!["build".into(), "test".into()],
            },
            r#"{"at_ms":42,"type":"run_started","sha":"0000000000000000000000000000000000000000","ref":"refs/heads/main","jobs":["build","test"]}"#,
        );
    }

    #[test]
    fn job_started() {
        check(
            EventKind::JobStarted { job_id: "build".into() },
            r#"{"at_ms":42,"type":"job_started","job_id":"build"}"#,
        );
    }

    #[test]
    fn sh_started() {
        check(
            EventKind::ShStarted {
                job_id: "build".into(),
                cmd: "cargo build".into(),
            },
            r#"{"at_ms":42,"type":"sh_started","job_id":"build","cmd":"cargo build"}"#,
        );
    }

    #[test]
    fn sh_finished() {
        check(
            EventKind::ShFinished {
                job_id: "build".into(),
                exit_code: 0,
            },
            r#"{"at_ms":42,"type":"sh_finished","job_id":"build","exit_code":0}"#,
        );
        check(
            EventKind::ShFinished {
                job_id: "t".into(),
                exit_code: -1,
            },
            r#"{"at_ms":42,"type":"sh_finished","job_id":"t","exit_code":-1}"#,
        );
    }

    #[test]
    fn job_finished_every_outcome() {
        for (outcome, text) in [
            (JobOutcome::Complete, "complete"),
            (JobOutcome::Failed, "failed"),
            (JobOutcome::Skipped, "skipped"),
            (JobOutcome::Cancelled, "cancelled"),
        ] {
            check(
                EventKind::JobFinished {
                    job_id: "build".into(),
                    outcome,
                },
                &format!(r#"{{"at_ms":42,"type":"job_finished","job_id":"build","outcome":"{text}"}}"#),
            );
            assert_eq!(outcome.as_str(), text);
        }
    }

    #[test]
    fn job_skipped() {
        check(
            EventKind::JobSkipped {
                job_id: "deploy".into(),
                blocked_by: Some("test".into()),
            },
            r#"{"at_ms":42,"type":"job_skipped","job_id":"deploy","blocked_by":"test"}"#,
        );
        check(
            EventKind::JobSkipped {
                job_id: "deploy".into(),
                blocked_by: None,
            },
            r#"{"at_ms":42,"type":"job_skipped","job_id":"deploy"}"#,
        );
    }

    #[test]
    fn run_finished() {
        check(
            EventKind::RunFinished {
                outcome: RunOutcome::Complete,
                error: None,
            },
            r#"{"at_ms":42,"type":"run_finished","outcome":"complete"}"#,
        );
        check(
            EventKind::RunFinished {
                outcome: RunOutcome::Failed,
                error: Some("boom\nat line 2".into()),
            },
            r#"{"at_ms":42,"type":"run_finished","outcome":"failed","error":"boom\nat line 2"}"#,
        );
        check(
            EventKind::RunFinished {
                outcome: RunOutcome::Cancelled,
                error: None,
            },
            r#"{"at_ms":42,"type":"run_finished","outcome":"cancelled"}"#,
        );
    }

    fn docs_path(file: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(file)
    }

    #[test]
    fn the_committed_json_schema_is_up_to_date() {
        let path = docs_path("events.schema.json");
        let fresh = json_schema();
        if std::env::var_os("QUIRE_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "docs/events.schema.json does not match the event types in quire-core/src/ci/event.rs.\n\
             Regenerate it and commit the result:\n\n    \
             QUIRE_BLESS=1 cargo test -p quire-core --lib the_committed_json_schema_is_up_to_date\n"
        );
    }

    #[test]
    fn the_schema_describes_every_event_type() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        let text = schema.to_string();
        for name in EVENT_TYPES {
            assert!(text.contains(&format!("\"{name}\"")), "{name} missing");
        }
    }

    #[test]
    fn every_example_line_in_the_docs_is_an_event_written_as_we_write_it() {
        let docs = std::fs::read_to_string(docs_path("events.md")).unwrap();
        let examples: Vec<&str> = docs
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("{\"at_ms\""))
            .collect();
        assert!(examples.len() >= 7, "docs/events.md shows each event type");
        for line in examples {
            let event: Event = serde_json::from_str(line).unwrap_or_else(|e| panic!("docs/events.md: {e}: {line}"));
            assert_eq!(event.to_json_line(), line, "key order or spelling differs");
        }
    }

    #[test]
    fn at_ms_is_recent_wall_clock() {
        // 2020-01-01 in ms; guards against seconds or nanoseconds by mistake.
        let at = Event::now(EventKind::JobStarted { job_id: "x".into() }).at_ms;
        assert!(at > 1_577_836_800_000 && at < 4_102_444_800_000, "{at}");
    }
}
