//! The pipeline: jobs registered by `.quire/ci.fnl` through `quire.ci`,
//! validated into a graph the scheduler can run.

pub mod register;
mod validate;

pub use register::{Registry, ci_module};
pub use validate::{PipelineError, validate};

use mlua::Function;

/// The sources a job may name as input. Their output is provided by the runner.
pub const SOURCES: &[&str] = &["quire/push"];

/// Where in the pipeline code something was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as the user knows it, e.g. `.quire/ci.fnl`.
    pub file: String,
    /// 1-based.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// Job ids and sources, as declared.
    pub inputs: Vec<String>,
    pub run_fn: Function,
    pub location: Option<Location>,
}

/// A validated pipeline: a DAG rooted in sources.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// In declaration order.
    pub jobs: Vec<Job>,
    pub image: Option<String>,
    /// Indices into `jobs`: inputs before the jobs that use them, ties in declaration order.
    pub order: Vec<usize>,
}

impl Pipeline {
    pub fn job_index(&self, id: &str) -> Option<usize> {
        self.jobs.iter().position(|job| job.id == id)
    }

    /// For each job, the indices of the jobs that name it as an input.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut dependents = vec![Vec::new(); self.jobs.len()];
        for (i, job) in self.jobs.iter().enumerate() {
            for input in &job.inputs {
                if let Some(parent) = self.job_index(input) {
                    dependents[parent].push(i);
                }
            }
        }
        dependents
    }

    /// For each job, every job and source it (transitively) depends on.
    pub fn ancestors(&self, index: usize) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut stack = vec![index];
        while let Some(i) = stack.pop() {
            for input in &self.jobs[i].inputs {
                if !seen.contains(input) {
                    seen.push(input.clone());
                    if let Some(parent) = self.job_index(input) {
                        stack.push(parent);
                    }
                }
            }
        }
        seen.sort();
        seen
    }
}
