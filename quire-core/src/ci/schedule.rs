//! The DAG executor: runs each job's run-fn as a coroutine of the one VM,
//! up to `parallelism` at once, in declaration order among ready jobs.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use mlua::thread::ThreadStatus;
use mlua::{IntoLuaMulti, Lua, Table, Thread, Value};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::event::{EventKind, JobOutcome};
use super::pipeline::Pipeline;
use super::runtime::{JobContext, RunContext, RuntimeEvent, RuntimeGlobal, run_sh, runtime_table, sh_token};
use super::site::locate_job_error;
use crate::lua::{Budget, BudgetOwner, InstructionMeter, Printer, Sandbox, describe_error};

/// Why the run stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT, SIGTERM or SIGHUP (the signal number).
    Signal(i32),
}

/// An outside request to stop the run (a signal), shared by whoever asks
/// and the run.
///
/// Asking has two halves. [`Stop::request`] records it: one atomic
/// operation, safe in a signal handler, so the request holds from the moment
/// the signal arrives, even while pipeline code keeps the one thread busy
/// (the load, a job's code) and no task can run. The run looks at it before
/// it starts any job or command. [`Stop::wake`], from a task, makes a
/// scheduler that is waiting on running jobs look at once.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// The signal of the first request; 0 while there is none.
    signal: Arc<AtomicI32>,
    wake: Arc<Notify>,
}

impl Stop {
    /// Ask the run to stop because of `signal`. The first request is the one
    /// that counts. Async-signal-safe.
    pub fn request(&self, signal: i32) {
        let _ = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Have a waiting scheduler look at the request now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The request, if there is one.
    pub fn requested(&self) -> Option<StopReason> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(StopReason::Signal(signal)),
        }
    }

    async fn woken(&self) {
        self.wake.notified().await;
    }
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

/// The bookkeeping of one run over the graph: what each job is doing and
/// which jobs may start. Every update is proportional to the jobs it touches,
/// so large pipelines schedule in near-linear time.
struct Board {
    states: Vec<JobState>,
    /// For each job, how many of its input jobs have not finished well yet.
    waiting: Vec<usize>,
    /// Pending jobs whose inputs all finished well, by declaration index.
    ready: BTreeSet<usize>,
    /// Each job's position in the topological order.
    topo_position: Vec<usize>,
}

impl Board {
    fn new(pipeline: &Pipeline) -> Board {
        let n = pipeline.jobs.len();
        let waiting: Vec<usize> = (0..n).map(|i| pipeline.input_jobs(i).len()).collect();
        let ready = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut topo_position = vec![0; n];
        for (position, &i) in pipeline.order.iter().enumerate() {
            topo_position[i] = position;
        }
        Board {
            states: vec![JobState::Pending; n],
            waiting,
            ready,
            topo_position,
        }
    }

    fn finish(&mut self, pipeline: &Pipeline, run: &RunContext, i: usize, outcome: JobOutcome) {
        self.states[i] = JobState::Finished(outcome);
        if matches!(outcome, JobOutcome::Complete | JobOutcome::Skipped) {
            for &d in pipeline.dependents(i) {
                self.waiting[d] -= 1;
                if self.waiting[d] == 0 && self.states[d] == JobState::Pending {
                    self.ready.insert(d);
                }
            }
        } else {
            self.block_descendants(pipeline, run, i);
        }
    }

    /// Give `job_skipped` to every pending job below `failed`, in topological
    /// order so each names an input that is already accounted for.
    fn block_descendants(&mut self, pipeline: &Pipeline, run: &RunContext, failed: usize) {
        let mut blocked = Vec::new();
        let mut stack = vec![failed];
        while let Some(i) = stack.pop() {
            for &d in pipeline.dependents(i) {
                if self.states[d] == JobState::Pending {
                    self.states[d] = JobState::NotRun;
                    self.ready.remove(&d);
                    blocked.push(d);
                    stack.push(d);
                }
            }
        }
        blocked.sort_by_key(|&d| self.topo_position[d]);
        for d in blocked {
            let blocked_by = self.blocking_input(pipeline, d);
            run.emitter.borrow_mut().wire(EventKind::JobSkipped {
                job_id: pipeline.jobs[d].id.clone(),
                blocked_by,
            });
        }
    }

    /// The first direct input (in declaration order) that did not complete.
    fn blocking_input(&self, pipeline: &Pipeline, i: usize) -> Option<String> {
        pipeline.input_jobs(i).iter().find_map(|&p| {
            matches!(
                self.states[p],
                JobState::NotRun | JobState::Finished(JobOutcome::Failed | JobOutcome::Cancelled)
            )
            .then(|| pipeline.jobs[p].id.clone())
        })
    }

    /// Account for every job that never started, in topological order.
    fn skip_the_rest(&mut self, pipeline: &Pipeline, run: &RunContext) {
        for &i in &pipeline.order {
            if self.states[i] == JobState::Pending {
                self.states[i] = JobState::NotRun;
                let blocked_by = self.blocking_input(pipeline, i);
                run.emitter.borrow_mut().wire(EventKind::JobSkipped {
                    job_id: pipeline.jobs[i].id.clone(),
                    blocked_by,
                });
            }
        }
        self.ready.clear();
    }
}

/// Run every job of `pipeline`. `stop` carries an outside request to stop
/// (a signal); `cancel` is the sender every command watches.
pub async fn execute(
    sandbox: &Sandbox,
    pipeline: &Rc<Pipeline>,
    runtime_global: &RuntimeGlobal,
    run: &Rc<RunContext>,
    cancel: &watch::Sender<bool>,
    stop: &Stop,
    options: ScheduleOptions,
) -> ScheduleSummary {
    let mut board = Board::new(pipeline);
    let mut running: JoinSet<(usize, JobOutcome)> = JoinSet::new();
    let mut stopped_by = None;
    let mut record_failed = run.emitter.borrow().stop_signal();
    let parallelism = options.parallelism.max(1);

    loop {
        // The request itself, not a task's word of it: a signal that came
        // while pipeline code held the thread (the load, before any job) has
        // been recorded, but no task has run since. No job starts after it.
        if stopped_by.is_none()
            && let Some(reason) = stop.requested()
        {
            stopped_by = Some(reason);
            cancel.send_replace(true);
        }
        // A record that can no longer be written stops the run at once, even
        // before its watch is seen below: no job may start after it.
        if run.emitter.borrow().failure().is_some() {
            cancel.send_replace(true);
        }
        while !*cancel.borrow() && running.len() < parallelism {
            let Some(i) = board.ready.pop_first() else { break };
            board.states[i] = JobState::Running;
            match start_job(sandbox, pipeline, runtime_global, run, i) {
                Ok(future) => {
                    running.spawn_local(future);
                }
                Err(err) => {
                    let message = run.redactor.redact_str(&sandbox.describe_error(&err, None));
                    finish_unstarted(run, &pipeline.jobs[i].id, &message);
                    board.finish(pipeline, run, i, JobOutcome::Failed);
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
                board.finish(pipeline, run, i, outcome);
                if outcome == JobOutcome::Failed && options.fail_fast {
                    cancel.send_replace(true);
                }
            }
            // Seen at the top of the loop.
            () = stop.woken(), if stopped_by.is_none() => {}
            Ok(()) = record_failed.changed() => {
                if *record_failed.borrow() {
                    cancel.send_replace(true);
                }
            }
        }
    }

    board.skip_the_rest(pipeline, run);
    ScheduleSummary {
        states: board.states,
        stopped_by,
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
    sandbox: &Sandbox,
    pipeline: &Rc<Pipeline>,
    runtime_global: &RuntimeGlobal,
    run: &Rc<RunContext>,
    index: usize,
) -> mlua::Result<JobFuture> {
    let lua = sandbox.lua();
    let job = &pipeline.jobs[index];
    let thread = lua.create_thread(job.run_fn.clone())?;
    let ctx = Rc::new(JobContext {
        run: run.clone(),
        job_id: job.id.clone(),
        pipeline: pipeline.clone(),
        index,
        sh_count: Cell::new(0),
        log_prefix: JobContext::log_prefix(&run.out_dir, &job.id),
        sh_failure: RefCell::new(None),
    });
    let runtime = runtime_table(lua, &ctx, &thread, &runtime_global.sh_wrapper)?;
    run.emitter
        .borrow_mut()
        .wire(EventKind::JobStarted { job_id: job.id.clone() });
    let name: Rc<str> = job.id.as_str().into();
    let driver = Driver {
        thread: thread.clone(),
        name: name.clone(),
        printer: sandbox.printer(),
        runtime_global: runtime_global.clone(),
        runtime,
        meter: sandbox.meter().clone(),
        budget: sandbox.meter().budget(BudgetOwner::Job(name)),
    };
    let driven = drive(driver, lua.clone(), ctx.clone());
    let printer = sandbox.printer();
    let limits = sandbox.limits();
    let lua = lua.clone();
    Ok(Box::pin(async move {
        let result = driven.await;
        // What the job printed comes out whole before the job's last words.
        printer.end_job(&ctx.job_id);
        let run = &ctx.run;
        let (outcome, error) = match result {
            // The run was told to stop while this job ran: cancelled, whatever
            // the run-fn made of it (a stopped command it allowed to fail, or
            // caught with pcall, does not raise). A run-fn that returned before
            // the stop had its outcome decided then, in the poll it returned in.
            _ if run.cancelled() => (JobOutcome::Cancelled, None),
            Err(err) => {
                let message = describe_error(limits, &err, Some(&thread));
                let job = &ctx.pipeline.jobs[index];
                (JobOutcome::Failed, Some(locate_job_error(&lua, job, &thread, message)))
            }
            Ok(value) => match value {
                Value::Nil if ctx.sh_count.get() == 0 => (JobOutcome::Skipped, None),
                Value::Nil => (JobOutcome::Complete, None),
                Value::Table(output) => {
                    run.outputs
                        .borrow_mut()
                        .insert(ctx.job_id.clone(), Value::Table(output));
                    (JobOutcome::Complete, None)
                }
                other => {
                    let declared = ctx.pipeline.jobs[index]
                        .location
                        .as_ref()
                        .map(|l| format!("{l}: "))
                        .unwrap_or_default();
                    (
                        JobOutcome::Failed,
                        Some(format!(
                            "{declared}the run-fn of job '{}' returned {}; it must return a table (the job's output) or nil",
                            ctx.job_id,
                            with_article(other.type_name())
                        )),
                    )
                }
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

/// What runs a job's coroutine.
struct Driver {
    thread: Thread,
    name: Rc<str>,
    printer: Printer,
    runtime_global: RuntimeGlobal,
    runtime: Table,
    meter: InstructionMeter,
    budget: Budget,
}

impl Driver {
    /// Resume the job's code with `args` until it yields or ends: as this job
    /// (for the global `runtime`, and for what it prints), spending this
    /// job's instruction budget. The first three values it yields or returns.
    fn resume(&mut self, args: impl IntoLuaMulti) -> mlua::Result<(Value, Value, Value)> {
        let Driver {
            thread,
            name,
            printer,
            runtime_global,
            runtime,
            meter,
            budget,
        } = self;
        printer.as_job(name, || {
            runtime_global.run_as(runtime, || meter.run(budget, || thread.resume(args)))
        })
    }
}

/// Run a job's coroutine to its end, and each command it asks for on the
/// way: `runtime.sh` yields a request with the job's token (see
/// [`sh_token`]), and is resumed with the token and the result table, or
/// `false` when the command failed (then the failure is in the job's
/// context, for `runtime.sh` to raise). The run-fn's first return value.
async fn drive(mut driver: Driver, lua: Lua, ctx: Rc<JobContext>) -> mlua::Result<Value> {
    let token = sh_token(&ctx);
    let runtime = driver.runtime.clone();
    let mut yielded = driver.resume(runtime)?;
    loop {
        if driver.thread.status() != ThreadStatus::Resumable {
            return Ok(yielded.0);
        }
        yielded = match yielded {
            (Value::LightUserData(from), cmd, opts) if from == token => {
                let answer = match run_sh(&lua, &ctx, cmd, opts).await {
                    Ok(result) => Value::Table(result),
                    Err(failure) => {
                        *ctx.sh_failure.borrow_mut() = Some(failure);
                        Value::Boolean(false)
                    }
                };
                driver.resume((token, answer))?
            }
            // The run-fn's own coroutine.yield: it gets nothing back, and
            // other tasks run first.
            _ => {
                tokio::task::yield_now().await;
                driver.resume(())?
            }
        };
    }
}

/// "a boolean", "an integer".
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

#[cfg(test)]
mod tests {
    //! Property: for random DAGs with random failures, the stream keeps the
    //! contract of design §3 whatever the parallelism or failure policy.

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::Stop;
    use crate::ci::event::{Event, EventKind, JobOutcome, RunOutcome};
    use crate::ci::run::{RunRequest, run};
    use crate::ci::runtime::{Emitter, Observer, RuntimeEvent};

    #[derive(Debug, Clone, Copy)]
    enum Behaviour {
        Succeed,
        FailCommand,
        RaiseError,
        ReturnNil,
    }

    #[derive(Debug, Clone)]
    struct Spec {
        /// For job i: its inputs among jobs 0..i (none means quire/push), and what it does.
        jobs: Vec<(Vec<usize>, Behaviour)>,
        parallelism: usize,
        fail_fast: bool,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let behaviour = prop_oneof![
            4 => Just(Behaviour::Succeed),
            1 => Just(Behaviour::FailCommand),
            1 => Just(Behaviour::RaiseError),
            1 => Just(Behaviour::ReturnNil),
        ];
        (1usize..10)
            .prop_flat_map(move |n| {
                let jobs = (0..n)
                    .map(|i| {
                        (
                            proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(3)),
                            behaviour.clone(),
                        )
                    })
                    .collect::<Vec<_>>();
                (jobs, 1usize..4, any::<bool>())
            })
            .prop_map(|(jobs, parallelism, fail_fast)| Spec {
                jobs,
                parallelism,
                fail_fast,
            })
    }

    fn pipeline_source(spec: &Spec) -> String {
        let mut lua = String::from("local ci = require('quire.ci')\n");
        for (i, (inputs, behaviour)) in spec.jobs.iter().enumerate() {
            let inputs = if inputs.is_empty() {
                "'quire/push'".to_string()
            } else {
                inputs.iter().map(|p| format!("'j{p}'")).collect::<Vec<_>>().join(", ")
            };
            let body = match behaviour {
                Behaviour::Succeed => "rt.sh('true'); return {}",
                Behaviour::FailCommand => "rt.sh('exit 1')",
                Behaviour::RaiseError => "error('boom')",
                Behaviour::ReturnNil => "return nil",
            };
            lua.push_str(&format!("ci.job('j{i}', {{{inputs}}}, function(rt) {body} end)\n"));
        }
        lua
    }

    struct Collect(Rc<RefCell<Vec<Event>>>);

    impl Observer for Collect {
        fn observe(&mut self, event: &RuntimeEvent) -> std::io::Result<()> {
            if let RuntimeEvent::Wire(event) = event {
                self.0.borrow_mut().push(event.clone());
            }
            Ok(())
        }
    }

    fn run_spec(spec: &Spec) -> Vec<Event> {
        run_spec_until(spec, &Stop::default())
    }

    fn run_spec_until(spec: &Spec, stop: &Stop) -> Vec<Event> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".quire")).unwrap();
        std::fs::write(dir.path().join(".quire/ci.lua"), pipeline_source(spec)).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let emitter = Rc::new(RefCell::new(Emitter::new(vec![Box::new(Collect(events.clone()))])));
        let request = RunRequest {
            workspace: dir.path().to_path_buf(),
            out_dir: dir.path().join("out"),
            out_dir_is_temporary: false,
            parallelism: spec.parallelism,
            fail_fast: spec.fail_fast,
            sha: None,
            git_ref: None,
            secrets: Vec::new(),
            default_timeout: None,
            kill_grace: Duration::from_secs(1),
            limits: crate::lua::Limits::default(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, run(request, emitter, stop.clone()));
        events.take()
    }

    fn check(spec: &Spec, events: &[Event]) -> Result<(), TestCaseError> {
        let n = spec.jobs.len();
        let first_is_run_started = matches!(events.first().map(|e| &e.kind), Some(EventKind::RunStarted { .. }));
        prop_assert!(first_is_run_started, "run_started is not first");
        let Some(EventKind::RunFinished {
            outcome: run_outcome, ..
        }) = events.last().map(|e| &e.kind)
        else {
            return Err(TestCaseError::fail("run_finished is not last"));
        };
        prop_assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::RunFinished { .. }))
                .count(),
            1
        );

        // Per job: started, (sh_started sh_finished)*, finished; or one job_skipped.
        #[derive(Default, Debug)]
        struct Seen {
            started: usize,
            finished: Option<JobOutcome>,
            skipped: usize,
            sh_open: bool,
            blocked_by: Option<String>,
        }
        let mut seen: HashMap<String, Seen> = HashMap::new();
        let mut finished_at: HashMap<String, usize> = HashMap::new();
        for (pos, event) in events.iter().enumerate() {
            match &event.kind {
                EventKind::JobStarted { job_id } => {
                    let s = seen.entry(job_id.clone()).or_default();
                    prop_assert_eq!(s.started, 0);
                    s.started += 1;
                    // Its inputs all finished before it started, and none failed.
                    let i: usize = job_id[1..].parse().unwrap();
                    for p in &spec.jobs[i].0 {
                        let parent = format!("j{p}");
                        prop_assert!(finished_at.get(&parent).is_some_and(|&at| at < pos));
                        let parent_ok =
                            matches!(seen[&parent].finished, Some(JobOutcome::Complete | JobOutcome::Skipped));
                        prop_assert!(parent_ok, "{} started after input {} did not complete", job_id, parent);
                    }
                }
                EventKind::ShStarted { job_id, .. } => {
                    let s = seen.get_mut(job_id).expect("sh of a started job");
                    prop_assert!(s.started == 1 && s.finished.is_none() && !s.sh_open);
                    s.sh_open = true;
                }
                EventKind::ShFinished { job_id, .. } => {
                    let s = seen.get_mut(job_id).expect("sh of a started job");
                    prop_assert!(s.sh_open);
                    s.sh_open = false;
                }
                EventKind::JobFinished { job_id, outcome } => {
                    let s = seen.get_mut(job_id).expect("finish of a started job");
                    prop_assert!(s.started == 1 && s.finished.is_none() && !s.sh_open);
                    s.finished = Some(*outcome);
                    finished_at.insert(job_id.clone(), pos);
                }
                EventKind::JobSkipped { job_id, blocked_by } => {
                    let s = seen.entry(job_id.clone()).or_default();
                    prop_assert!(s.started == 0 && s.skipped == 0);
                    s.skipped += 1;
                    s.blocked_by = blocked_by.clone();
                }
                EventKind::RunStarted { .. } | EventKind::RunFinished { .. } => {}
            }
        }
        // Every job accounted for exactly once.
        prop_assert_eq!(seen.len(), n);
        for (i, (inputs, behaviour)) in spec.jobs.iter().enumerate() {
            let s = &seen[&format!("j{i}")];
            prop_assert_eq!(s.started + s.skipped, 1);
            if let Some(blocked_by) = &s.blocked_by {
                let p: usize = blocked_by[1..].parse().unwrap();
                prop_assert!(inputs.contains(&p), "blocked_by names a direct input");
                let parent = &seen[blocked_by];
                let parent_blocks =
                    parent.skipped == 1 || matches!(parent.finished, Some(JobOutcome::Failed | JobOutcome::Cancelled));
                prop_assert!(parent_blocks, "blocked_by {} did complete", blocked_by);
            }
            if !spec.fail_fast {
                // Without fail-fast, every job whose inputs completed runs, with the outcome its behaviour gives.
                let expected = match behaviour {
                    Behaviour::Succeed => JobOutcome::Complete,
                    Behaviour::FailCommand | Behaviour::RaiseError => JobOutcome::Failed,
                    Behaviour::ReturnNil => JobOutcome::Skipped,
                };
                if s.started == 1 {
                    prop_assert_eq!(s.finished, Some(expected));
                } else {
                    prop_assert!(s.blocked_by.is_some());
                }
            }
        }
        let any_failed = seen
            .values()
            .any(|s| matches!(s.finished, Some(JobOutcome::Failed | JobOutcome::Cancelled)));
        prop_assert_eq!(
            *run_outcome,
            if any_failed {
                RunOutcome::Failed
            } else {
                RunOutcome::Complete
            }
        );
        Ok(())
    }

    #[test]
    fn a_stop_requested_before_any_job_starts_skips_every_job_and_cancels_the_run() {
        // As when a signal comes while the pipeline loads: recorded, but no
        // task has run since.
        let spec = Spec {
            jobs: vec![
                (vec![], Behaviour::Succeed),
                (vec![], Behaviour::Succeed),
                (vec![0], Behaviour::Succeed),
            ],
            parallelism: 2,
            fail_fast: false,
        };
        let stop = Stop::default();
        stop.request(libc::SIGINT);
        let kinds: Vec<EventKind> = run_spec_until(&spec, &stop).into_iter().map(|e| e.kind).collect();
        let skipped = |job: &str, blocked_by: Option<&str>| EventKind::JobSkipped {
            job_id: job.to_string(),
            blocked_by: blocked_by.map(str::to_string),
        };
        assert!(matches!(kinds[0], EventKind::RunStarted { .. }), "{kinds:?}");
        assert_eq!(
            kinds[1..],
            [
                skipped("j0", None),
                skipped("j1", None),
                // Its input never ran.
                skipped("j2", Some("j0")),
                EventKind::RunFinished {
                    outcome: RunOutcome::Cancelled,
                    error: None
                },
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn random_dags_keep_the_stream_contract(spec in spec()) {
            let events = run_spec(&spec);
            check(&spec, &events)?;
        }
    }
}
