//! The wire contract: one JSON object per line, `at_ms` and `type` first,
//! the payload flattened beside them (design §3).
//!
//! These types are what a producer writes and what a consumer (an orchestrator,
//! `quire-ci report`) reads back, so both ends share one definition.

use serde::{Deserialize, Serialize};

/// One line of the event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Producer wall clock, milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        sha: String,
        #[serde(rename = "ref")]
        git_ref: String,
        /// Every job of the pipeline, in declaration order.
        jobs: Vec<String>,
    },
    JobStarted {
        job_id: String,
    },
    ShStarted {
        job_id: String,
        cmd: String,
    },
    ShFinished {
        job_id: String,
        exit_code: i32,
    },
    JobFinished {
        job_id: String,
        outcome: JobOutcome,
    },
    /// A job that never started. `blocked_by` names its direct input that did
    /// not complete; it is absent when every input completed but the run
    /// stopped first (interrupted, or `--fail-fast`).
    JobSkipped {
        job_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocked_by: Option<String>,
    },
    RunFinished {
        outcome: RunOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    Complete,
    Failed,
    /// The run-fn returned nil and ran no command.
    Skipped,
    /// The run was stopped while the job ran.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    #[test]
    fn at_ms_is_recent_wall_clock() {
        // 2020-01-01 in ms; guards against seconds or nanoseconds by mistake.
        let at = Event::now(EventKind::JobStarted { job_id: "x".into() }).at_ms;
        assert!(at > 1_577_836_800_000 && at < 4_102_444_800_000, "{at}");
    }
}
