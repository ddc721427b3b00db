//! The DAG executor: runs each job's run-fn as a coroutine of the one VM,
//! up to `parallelism` at once, in declaration order among ready jobs.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::event::{EventKind, JobOutcome};
use super::load::lua_error_message;
use super::pipeline::{Pipeline, SOURCES};
use super::runtime::{JobContext, RunContext, RuntimeEvent, RuntimeGlobal, runtime_table};

/// Why the run stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM (the signal number).
    Signal(i32),
}

#[derive(Debug, Clone, Copy)]
pub struct ScheduleOptions {
    pub parallelism: usize,
    pub fail_fast: bool,
}

/// Where each job ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Finished(JobOutcome),
    /// Never started (`job_skipped`).
    NotRun,
}

#[derive(Debug)]
pub struct ScheduleSummary {
    pub states: Vec<JobState>,
    /// Set when a stop request ended the run early.
    pub stopped_by: Option<StopReason>,
}

/// Run every job of `pipeline`. `stop` carries an outside request to stop
/// (a signal); `cancel` is the sender every command watches.
pub async fn execute(
    lua: &Lua,
    pipeline: &Pipeline,
    runtime_global: &RuntimeGlobal,
    run: &Rc<RunContext>,
    cancel: &watch::Sender<bool>,
    mut stop: watch::Receiver<Option<StopReason>>,
    options: ScheduleOptions,
) -> ScheduleSummary {
    let n = pipeline.jobs.len();
    let mut states = vec![JobState::Pending; n];
    let mut running: JoinSet<(usize, JobOutcome)> = JoinSet::new();
    let mut stopped_by = None;
    let mut record_failed = run.emitter.borrow().stop_signal();
    let parallelism = options.parallelism.max(1);

    loop {
        let stopping = *cancel.borrow();
        if !stopping {
            for &i in &pipeline.order {
                if running.len() >= parallelism {
                    break;
                }
                if states[i] == JobState::Pending && inputs_done(pipeline, &states, i) {
                    states[i] = JobState::Running;
                    match start_job(lua, pipeline, runtime_global, run, i) {
                        Ok(future) => {
                            running.spawn_local(future);
                        }
                        Err(err) => {
                            finish_unstarted(run, &pipeline.jobs[i].id, &lua_error_message(&err));
                            states[i] = JobState::Finished(JobOutcome::Failed);
                            skip_blocked(pipeline, &mut states, run);
                        }
                    }
                }
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (i, outcome) = joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
                states[i] = JobState::Finished(outcome);
                if outcome == JobOutcome::Failed && options.fail_fast {
                    cancel.send_replace(true);
                }
                skip_blocked(pipeline, &mut states, run);
            }
            Ok(()) = stop.changed(), if stopped_by.is_none() => {
                if let Some(reason) = *stop.borrow() {
                    stopped_by = Some(reason);
                    cancel.send_replace(true);
                }
            }
            Ok(()) = record_failed.changed() => {
                if *record_failed.borrow() {
                    cancel.send_replace(true);
                }
            }
        }
    }

    // Whatever never started is accounted for, in declaration order.
    for i in 0..n {
        if states[i] == JobState::Pending {
            let blocked_by = blocking_input(pipeline, &states, i);
            run.emitter.borrow_mut().wire(EventKind::JobSkipped {
                job_id: pipeline.jobs[i].id.clone(),
                blocked_by,
            });
            states[i] = JobState::NotRun;
        }
    }
    ScheduleSummary { states, stopped_by }
}

/// Every input finished in a way that lets its dependents run.
fn inputs_done(pipeline: &Pipeline, states: &[JobState], i: usize) -> bool {
    pipeline.jobs[i].inputs.iter().all(|input| {
        SOURCES.contains(&input.as_str())
            || pipeline.job_index(input).is_some_and(|p| {
                matches!(
                    states[p],
                    JobState::Finished(JobOutcome::Complete | JobOutcome::Skipped)
                )
            })
    })
}

/// The first direct input (in declaration order) that did not complete.
fn blocking_input(pipeline: &Pipeline, states: &[JobState], i: usize) -> Option<String> {
    pipeline.jobs[i]
        .inputs
        .iter()
        .find(|input| {
            pipeline.job_index(input).is_some_and(|p| {
                matches!(
                    states[p],
                    JobState::NotRun
                        | JobState::Finished(JobOutcome::Failed | JobOutcome::Cancelled)
                )
            })
        })
        .cloned()
}

/// Give `job_skipped` to every pending job that can no longer run, walking
/// in topological order so blocks propagate down the graph in one pass.
fn skip_blocked(pipeline: &Pipeline, states: &mut [JobState], run: &RunContext) {
    for &i in &pipeline.order {
        if states[i] != JobState::Pending {
            continue;
        }
        if let Some(blocked_by) = blocking_input(pipeline, states, i) {
            states[i] = JobState::NotRun;
            run.emitter.borrow_mut().wire(EventKind::JobSkipped {
                job_id: pipeline.jobs[i].id.clone(),
                blocked_by: Some(blocked_by),
            });
        }
    }
}

/// A job whose coroutine could not even be created still gets a started/finished pair.
fn finish_unstarted(run: &RunContext, job_id: &str, message: &str) {
    let mut emitter = run.emitter.borrow_mut();
    emitter.wire(EventKind::JobStarted {
        job_id: job_id.to_string(),
    });
    emitter.emit(RuntimeEvent::JobError {
        job_id: job_id.to_string(),
        message: message.to_string(),
    });
    emitter.wire(EventKind::JobFinished {
        job_id: job_id.to_string(),
        outcome: JobOutcome::Failed,
    });
}

type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = (usize, JobOutcome)>>>;

fn start_job(
    lua: &Lua,
    pipeline: &Pipeline,
    runtime_global: &RuntimeGlobal,
    run: &Rc<RunContext>,
    index: usize,
) -> mlua::Result<JobFuture> {
    let job = &pipeline.jobs[index];
    let ctx = Rc::new(JobContext {
        run: run.clone(),
        job_id: job.id.clone(),
        visible: pipeline.ancestors(index),
        sh_count: Cell::new(0),
    });
    let runtime = runtime_table(lua, &ctx)?;
    let thread = lua.create_thread(job.run_fn.clone())?;
    runtime_global.bind(&thread, &runtime)?;
    run.emitter.borrow_mut().wire(EventKind::JobStarted {
        job_id: job.id.clone(),
    });
    let call = thread.into_async::<MultiValue>(runtime)?;
    Ok(Box::pin(async move {
        let result = call.await;
        let run = &ctx.run;
        let (outcome, error) = match result {
            Err(_) if run.cancelled() => (JobOutcome::Cancelled, None),
            Err(err) => (JobOutcome::Failed, Some(lua_error_message(&err))),
            Ok(values) => match values.into_iter().next().unwrap_or(Value::Nil) {
                Value::Nil if ctx.sh_count.get() == 0 => (JobOutcome::Skipped, None),
                Value::Nil => (JobOutcome::Complete, None),
                Value::Table(output) => {
                    run.outputs
                        .borrow_mut()
                        .insert(ctx.job_id.clone(), Value::Table(output));
                    (JobOutcome::Complete, None)
                }
                other => (
                    JobOutcome::Failed,
                    Some(format!(
                        "the run-fn of job '{}' returned a {}; it must return a table (the job's output) or nil",
                        ctx.job_id,
                        other.type_name()
                    )),
                ),
            },
        };
        let mut emitter = run.emitter.borrow_mut();
        if let Some(message) = error {
            emitter.emit(RuntimeEvent::JobError {
                job_id: ctx.job_id.clone(),
                message: run.redactor.redact_str(&message),
            });
        }
        emitter.wire(EventKind::JobFinished {
            job_id: ctx.job_id.clone(),
            outcome,
        });
        (index, outcome)
    }))
}
