//! The pipeline: jobs registered by `.quire/ci.fnl` through `quire.ci`,
//! validated into a graph the scheduler can run.

pub mod register;
mod validate;

pub use register::{Registry, ci_module};
pub use validate::{PipelineError, validate};

use std::collections::HashMap;

use mlua::Function;

/// The sources a job may name as input. Their output is provided by the runner.
pub const SOURCES: &[&str] = &["quire/push"];

/// `text` with its control characters escaped (`\n`, `\0`, `\u{1b}`), to
/// quote a name that may hold them without breaking the message's lines.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

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

/// A validated pipeline: a DAG rooted in sources, indexed for the scheduler.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// In declaration order.
    pub jobs: Vec<Job>,
    pub image: Option<String>,
    /// Indices into `jobs`: inputs before the jobs that use them, ties in declaration order.
    pub order: Vec<usize>,
    index: HashMap<String, usize>,
    /// For each job, the distinct jobs among its inputs, in the order declared.
    input_jobs: Vec<Vec<usize>>,
    /// For each job, the jobs that name it as an input, in declaration order.
    dependents: Vec<Vec<usize>>,
}

impl Pipeline {
    /// Index `jobs` (already validated: inputs exist, no cycles).
    pub(crate) fn new(jobs: Vec<Job>, image: Option<String>, order: Vec<usize>) -> Pipeline {
        let index: HashMap<String, usize> = jobs.iter().enumerate().map(|(i, job)| (job.id.clone(), i)).collect();
        let mut input_jobs = vec![Vec::new(); jobs.len()];
        let mut dependents = vec![Vec::new(); jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            for input in &job.inputs {
                if let Some(&parent) = index.get(input)
                    && !input_jobs[i].contains(&parent)
                {
                    input_jobs[i].push(parent);
                    dependents[parent].push(i);
                }
            }
        }
        Pipeline {
            jobs,
            image,
            order,
            index,
            input_jobs,
            dependents,
        }
    }

    pub fn job_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The jobs among job `i`'s inputs (sources left out).
    pub fn input_jobs(&self, i: usize) -> &[usize] {
        &self.input_jobs[i]
    }

    /// The jobs that name job `i` as an input.
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// Whether job `ancestor` is an input of job `of`, directly or not.
    pub fn is_ancestor(&self, ancestor: usize, of: usize) -> bool {
        let mut seen = vec![false; self.jobs.len()];
        let mut stack = vec![of];
        while let Some(i) = stack.pop() {
            for &parent in &self.input_jobs[i] {
                if parent == ancestor {
                    return true;
                }
                if !std::mem::replace(&mut seen[parent], true) {
                    stack.push(parent);
                }
            }
        }
        false
    }

    /// Every job and source job `i` depends on, directly or not, sorted.
    pub fn ancestor_names(&self, i: usize) -> Vec<String> {
        let mut seen = vec![false; self.jobs.len()];
        let mut names: Vec<String> = Vec::new();
        let mut stack = vec![i];
        while let Some(i) = stack.pop() {
            for input in &self.jobs[i].inputs {
                match self.job_index(input) {
                    Some(parent) if !std::mem::replace(&mut seen[parent], true) => {
                        names.push(input.clone());
                        stack.push(parent);
                    }
                    Some(_) => {}
                    None if !names.contains(input) => names.push(input.clone()),
                    None => {}
                }
            }
        }
        names.sort();
        names
    }
}
