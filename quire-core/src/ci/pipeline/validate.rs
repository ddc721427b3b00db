//! Registrations -> a validated `Pipeline`, or every problem found, each with
//! the place it was declared (design §4, "Validation collects every error").

use std::collections::{BTreeSet, HashMap};

use mlua::Value;

use super::register::{JobRegistration, Registry};
use super::{Job, Location, Pipeline, SOURCES, printable};

/// One thing wrong with the pipeline, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    pub message: String,
    pub help: Option<String>,
    pub location: Option<Location>,
    /// The argument of the `ci.job` call at `location` the error is about
    /// (from 1: the id, the inputs, the run-fn), to label rather than the
    /// whole call; `None` for the call.
    pub argument: Option<usize>,
}

/// [`PipelineError::argument`] of a job's id.
const ID: usize = 1;
/// [`PipelineError::argument`] of a job's inputs.
const INPUTS: usize = 2;
/// [`PipelineError::argument`] of a job's run-fn.
const RUN_FN: usize = 3;
/// [`PipelineError::argument`] of the first argument after the run-fn.
const EXTRA: usize = 4;

impl PipelineError {
    fn new(message: impl Into<String>, location: &Option<Location>) -> Self {
        PipelineError {
            message: message.into(),
            help: None,
            location: location.clone(),
            argument: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    fn on(mut self, argument: usize) -> Self {
        self.argument = Some(argument);
        self
    }
}

/// A registration whose fields have the right types (it may still be wrong in the graph).
struct Candidate<'a> {
    id: String,
    inputs: Vec<String>,
    registration: &'a JobRegistration,
    /// Has an error of its own; jobs downstream of it are not also called unreachable.
    broken: bool,
}

pub fn validate(registry: &Registry) -> Result<Pipeline, Vec<PipelineError>> {
    let mut errors = Vec::new();

    let mut image = None;
    for (i, reg) in registry.images.iter().enumerate() {
        match (&reg.name, i) {
            (Value::String(name), 0) if name.as_bytes().trim_ascii().is_empty() => {
                errors.push(PipelineError::new(
                    "ci.image expects the name of an image, got an empty string",
                    &reg.location,
                ));
            }
            (Value::String(name), 0) => image = Some(name.to_string_lossy()),
            (Value::String(_), _) => {
                let first = registry.images[0]
                    .location
                    .as_ref()
                    .map(|l| format!(" (first at {l})"))
                    .unwrap_or_default();
                errors.push(PipelineError::new(
                    format!("duplicate image: ci.image may be called once{first}"),
                    &reg.location,
                ));
            }
            (other, _) => errors.push(PipelineError::new(
                format!("ci.image expects a string naming the image, got {}", other.type_name()),
                &reg.location,
            )),
        }
    }

    let mut candidates: Vec<Candidate> = Vec::new();
    let mut run_fns = Vec::new();
    // Each job's place in `candidates`, by id: a search per job made validate quadratic.
    let mut index: HashMap<String, usize> = HashMap::new();
    for reg in &registry.jobs {
        let id = job_id(reg, &mut errors);
        // Keep checking a job whose id is wrong, so every mistake is reported at once.
        let name = id.clone().unwrap_or_else(|| match &reg.id {
            Value::String(s) => printable(&s.to_string_lossy()),
            _ => "?".to_string(),
        });
        let inputs = job_inputs(reg, &name, &mut errors);
        let run_fn = match &reg.run_fn {
            // A run-fn is called with one argument; a second parameter
            // would always be nil. `...` takes what it is given, and C
            // functions declare no parameters.
            Value::Function(f) => match f.info().num_params {
                0 | 1 => Some(f.clone()),
                n => {
                    errors.push(
                        PipelineError::new(
                            format!(
                                "job '{name}': run-fn takes {n} arguments, but it is called with one, the runtime table"
                            ),
                            &reg.location,
                        )
                        .on(RUN_FN)
                        .help("a run-fn takes the runtime table or nothing: (fn [runtime] …) or (fn [] …)"),
                    );
                    None
                }
            },
            other => {
                errors.push(
                    PipelineError::new(
                        format!("job '{name}': run-fn must be a function, got {}", other.type_name()),
                        &reg.location,
                    )
                    .on(RUN_FN),
                );
                None
            }
        };
        if reg.extra_arguments > 0 {
            errors.push(
                PipelineError::new(
                    format!(
                        "job '{name}': ci.job takes 3 arguments (id, inputs, run-fn), but it is given {}",
                        3 + reg.extra_arguments
                    ),
                    &reg.location,
                )
                .on(EXTRA)
                .help("a job has no options: give :timeout, :env and the like to each runtime.sh"),
            );
        }
        let Some(id) = id else { continue };
        if let Some(&first) = index.get(&id) {
            let first = candidates[first]
                .registration
                .location
                .as_ref()
                .map(|l| format!(" (first declared at {l})"))
                .unwrap_or_default();
            errors.push(PipelineError::new(
                format!("duplicate job '{id}'{first}"),
                &reg.location,
            ));
            continue;
        }
        let broken = inputs.is_none() || run_fn.is_none();
        index.insert(id.clone(), candidates.len());
        candidates.push(Candidate {
            id,
            inputs: inputs.unwrap_or_default(),
            registration: reg,
            broken,
        });
        run_fns.push(run_fn);
    }

    let mut broken: Vec<bool> = candidates.iter().map(|c| c.broken).collect();
    for (i, candidate) in candidates.iter().enumerate() {
        for input in &candidate.inputs {
            if index.contains_key(input.as_str()) || SOURCES.contains(&input.as_str()) {
                continue;
            }
            broken[i] = true;
            let mut error = PipelineError::new(
                format!(
                    "job '{}': input '{}' is neither a job nor a source",
                    candidate.id,
                    printable(input)
                ),
                &candidate.registration.location,
            )
            .on(INPUTS);
            let nearest = candidates
                .iter()
                .map(|c| c.id.as_str())
                .chain(SOURCES.iter().copied())
                .filter(|other| *other != candidate.id)
                .map(|other| (strsim::osa_distance(input, other), other))
                .min();
            // Suggest only a near miss (a typo or a swapped pair), not any short name.
            error = match nearest {
                Some((distance, other)) if distance <= (input.len() / 3).max(1) && distance < input.len() => {
                    error.help(format!("did you mean '{other}'?"))
                }
                _ => error.help(format!(
                    "inputs name jobs declared in the pipeline, or the source {}",
                    SOURCES.join(", ")
                )),
            };
            errors.push(error);
        }
    }

    let edges: Vec<Vec<usize>> = candidates
        .iter()
        .map(|c| {
            c.inputs
                .iter()
                .filter_map(|input| index.get(input.as_str()).copied())
                .collect()
        })
        .collect();
    let cycles = find_cycles(&edges);
    let mut in_cycle = vec![false; candidates.len()];
    for cycle in &cycles {
        for &i in cycle.path.iter().chain(&cycle.also) {
            in_cycle[i] = true;
        }
        let name = |i: &usize| candidates[*i].id.as_str();
        let path: Vec<&str> = cycle.path.iter().map(name).collect();
        let mut message = format!("cycle between jobs: {} -> {}", path.join(" -> "), path[0]);
        if !cycle.also.is_empty() {
            let also: Vec<&str> = cycle.also.iter().map(name).collect();
            message.push_str(&format!(" (and, through other cycles with them, {})", also.join(", ")));
        }
        errors.push(
            PipelineError::new(message, &candidates[cycle.path[0]].registration.location)
                .help("a job cannot depend on itself, directly or through other jobs"),
        );
    }

    // A job is rooted when some input is a source or a rooted job. Broken jobs count
    // as rooted so that one mistake is not reported again for every job below it.
    // Spread from the roots along the edges, once each (passes over every job
    // until nothing changed took one pass per job in a chain declared backwards).
    let mut rooted: Vec<bool> = broken.clone();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); candidates.len()];
    for (i, inputs) in edges.iter().enumerate() {
        for &p in inputs {
            dependents[p].push(i);
        }
    }
    let mut reached: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            !in_cycle[i]
                && (rooted[i]
                    || candidates[i]
                        .inputs
                        .iter()
                        .any(|input| SOURCES.contains(&input.as_str())))
        })
        .collect();
    for &i in &reached {
        rooted[i] = true;
    }
    while let Some(p) = reached.pop() {
        for &i in &dependents[p] {
            if !rooted[i] && !in_cycle[i] {
                rooted[i] = true;
                reached.push(i);
            }
        }
    }
    for (i, candidate) in candidates.iter().enumerate() {
        if !rooted[i] && !in_cycle[i] {
            errors.push(
                PipelineError::new(
                    format!(
                        "job '{}' is not reachable from a source: its inputs lead only to a cycle",
                        candidate.id
                    ),
                    &candidate.registration.location,
                )
                .help(format!(
                    "a job runs when its inputs finish; start the chain at {}",
                    SOURCES.join(", ")
                )),
            );
        }
    }

    if !errors.is_empty() {
        // In the order of the file, as a reader goes through it; errors found
        // in one pass over the same line keep the order they were found in.
        errors.sort_by_key(|e| {
            e.location
                .as_ref()
                .map_or((1, String::new(), 0), |l| (0, l.file.clone(), l.line))
        });
        return Err(errors);
    }
    let order = topological_order(&edges);
    let jobs = candidates
        .into_iter()
        .zip(run_fns)
        .map(|(c, run_fn)| Job {
            id: c.id,
            inputs: c.inputs,
            run_fn: run_fn.expect("checked above"),
            location: c.registration.location.clone(),
        })
        .collect();
    Ok(Pipeline::new(jobs, image, order))
}

/// The longest job id: the name of its log directory.
const MAX_ID_BYTES: usize = 255;

/// A job id names the job in events, on the terminal and in the path of
/// its logs, `jobs/<id>/`: a string without `/`, nor control characters, nor
/// one that names a directory already (`.` and `..`).
fn job_id(reg: &JobRegistration, errors: &mut Vec<PipelineError>) -> Option<String> {
    let id = match &reg.id {
        Value::String(s) => match s.to_str() {
            Ok(id) => id.to_string(),
            // Made into text with U+FFFD, two different ids could be one.
            Err(_) => {
                errors.push(
                    PipelineError::new(
                        format!("job id '{}' is not valid UTF-8", s.as_bytes().escape_ascii()),
                        &reg.location,
                    )
                    .on(ID)
                    .help("a job id is shown on the terminal, in the events and in log paths: use UTF-8 text"),
                );
                return None;
            }
        },
        other => {
            errors.push(
                PipelineError::new(
                    format!(
                        "ci.job expects a job id (a string or keyword), got {}",
                        other.type_name()
                    ),
                    &reg.location,
                )
                .on(ID),
            );
            return None;
        }
    };
    if id.is_empty() {
        errors.push(PipelineError::new("job id is empty", &reg.location).on(ID));
        return None;
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        errors.push(
            PipelineError::new(
                format!(
                    "job id '{}' contains a control character ('{}')",
                    printable(&id),
                    c.escape_debug()
                ),
                &reg.location,
            )
            .on(ID)
            .help("a job id is shown on the terminal, in the events and in log paths: use printable characters"),
        );
        return None;
    }
    if id == "." || id == ".." {
        errors.push(
            PipelineError::new(format!("job id '{id}' is not allowed"), &reg.location)
                .on(ID)
                .help(format!(
                    "a job's logs go to jobs/<id>/, and '{id}' would put them outside it; name the job with a word"
                )),
        );
        return None;
    }
    // A path component holds at most 255 bytes on Linux's file systems.
    if id.len() > MAX_ID_BYTES {
        errors.push(
            PipelineError::new(
                format!("job id '{}…' is {} bytes long", printable(&id.chars().take(20).collect::<String>()), id.len()),
                &reg.location,
            )
            .on(ID)
            .help(format!(
                "a job's logs go to jobs/<id>/, and a directory name holds at most {MAX_ID_BYTES} bytes: use a shorter id"
            )),
        );
        return None;
    }
    if id.contains('/') && !reg.builtin {
        errors.push(
            PipelineError::new(format!("job id '{id}' contains '/'"), &reg.location)
                .on(ID)
                .help("'/' is reserved for sources such as quire/push"),
        );
        return None;
    }
    Some(id)
}

fn job_inputs(reg: &JobRegistration, id: &str, errors: &mut Vec<PipelineError>) -> Option<Vec<String>> {
    let table = match &reg.inputs {
        Value::Table(t) => t,
        other => {
            errors.push(PipelineError::new(
                format!(
                    "job '{id}': inputs must be a sequence of job ids or sources, got {}",
                    other.type_name()
                ),
                &reg.location,
            ));
            return None;
        }
    };
    let mut inputs = Vec::new();
    for value in table.sequence_values::<Value>() {
        match value {
            Ok(Value::String(s)) => inputs.push(s.to_string_lossy()),
            Ok(other) => {
                errors.push(PipelineError::new(
                    format!("job '{id}': each input must be a string, got {}", other.type_name()),
                    &reg.location,
                ));
                return None;
            }
            Err(e) => {
                errors.push(PipelineError::new(
                    format!("job '{id}': cannot read inputs: {e}"),
                    &reg.location,
                ));
                return None;
            }
        }
    }
    if inputs.is_empty() {
        errors.push(
            PipelineError::new(format!("job '{id}' has no inputs"), &reg.location)
                .help("name the jobs it follows, or [:quire/push] to run on every push"),
        );
        return None;
    }
    Some(inputs)
}

/// Jobs that depend on each other: a strongly connected component with more
/// than one job, or a job that names itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cycle {
    /// A shortest cycle through the component's first-declared job, in edge
    /// order (each job depends on the next, the last on the first).
    path: Vec<usize>,
    /// The component's other jobs, in declaration order: they are in cycles
    /// with the path's jobs, but not on this one.
    also: Vec<usize>,
}

/// Every cycle of the job graph, one per tangle of jobs.
fn find_cycles(edges: &[Vec<usize>]) -> Vec<Cycle> {
    let n = edges.len();
    // Tarjan's algorithm, iterative so deep chains cannot overflow the stack.
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let self_loop = component.len() == 1 && edges[v].contains(&v);
                if component.len() > 1 || self_loop {
                    components.push(component);
                }
            }
        }
    }
    components
        .into_iter()
        .map(|component| order_cycle(&component, edges))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A shortest way from the component's first-declared job back to itself
/// along input edges, so the message reads as a path (`a -> b -> a`) that
/// really is one; the component's other jobs are listed beside it.
fn order_cycle(component: &[usize], edges: &[Vec<usize>]) -> Cycle {
    let start = *component.iter().min().expect("non-empty");
    // Breadth first inside the component; every job of it reaches `start`.
    let mut came_from: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = None;
    'search: while let Some(v) = queue.pop_front() {
        for &w in &edges[v] {
            if w == start {
                last = Some(v);
                break 'search;
            }
            if component.contains(&w) && !came_from.contains_key(&w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut path = Vec::new();
    let mut v = last.expect("a component of a cycle leads back to its start");
    while v != start {
        path.push(v);
        v = came_from[&v];
    }
    path.push(start);
    path.reverse();
    let mut also: Vec<usize> = component.iter().copied().filter(|w| !path.contains(w)).collect();
    also.sort();
    Cycle { path, also }
}

/// Kahn's algorithm over `edges` (job -> its input jobs), picking the
/// first-declared ready job each time.
fn topological_order(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut waiting: Vec<usize> = edges
        .iter()
        .map(|inputs| inputs.iter().collect::<BTreeSet<_>>().len())
        .collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, inputs) in edges.iter().enumerate() {
        for &p in inputs.iter().collect::<BTreeSet<_>>() {
            dependents[p].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::{Function, Lua};

    /// `(ci.job id [input] run-fn)`, from no place in particular.
    fn job(lua: &Lua, id: impl AsRef<[u8]>, input: &str, run_fn: Function) -> JobRegistration {
        JobRegistration {
            id: Value::String(lua.create_string(id).unwrap()),
            inputs: Value::Table(lua.create_sequence_from([input]).unwrap()),
            run_fn: Value::Function(run_fn),
            extra_arguments: 0,
            location: None,
            builtin: false,
        }
    }

    /// What pipeline code registered: `jobs`, and no image.
    fn registry(jobs: Vec<JobRegistration>) -> Registry {
        Registry {
            jobs,
            ..Registry::default()
        }
    }

    #[test]
    fn topological_order_keeps_declaration_order_for_ties() {
        // 0: build, 1: lint, 2: test <- build, 3: deploy <- test, lint
        let edges = vec![vec![], vec![], vec![0], vec![2, 1]];
        assert_eq!(topological_order(&edges), vec![0, 1, 2, 3]);
        // Declared in reverse: deploy first.
        let edges = vec![vec![1, 2], vec![3], vec![], vec![]];
        assert_eq!(topological_order(&edges), vec![2, 3, 1, 0]);
    }

    #[test]
    fn cycles_are_found_and_walked_as_paths() {
        let edges = vec![vec![2], vec![0], vec![1], vec![3], vec![]];
        let cycle = |path: Vec<usize>, also: Vec<usize>| Cycle { path, also };
        assert_eq!(
            find_cycles(&edges),
            vec![cycle(vec![0, 2, 1], vec![]), cycle(vec![3], vec![])]
        );
        // Two cycles sharing a job (a -> c -> b -> a and c -> e -> c): one
        // tangle, shown by a real cycle, not a walk through every job.
        let edges = vec![vec![2], vec![0], vec![1, 3], vec![2]];
        assert_eq!(find_cycles(&edges), vec![cycle(vec![0, 2, 1], vec![3])]);
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        let lua = mlua::Lua::new();
        let f = lua.create_function(|_, ()| Ok(())).unwrap();
        let job = |id: &str, input: &str| job(&lua, id, input, f.clone());
        let registry = registry(vec![
            job("build", "quire/push"),
            job("a", "quire/push"),
            job("t", "biuld"),
            job("u", "zz"),
        ]);
        let errors = validate(&registry).unwrap_err();
        assert_eq!(errors[0].help.as_deref(), Some("did you mean 'build'?"));
        assert!(
            errors[1]
                .help
                .as_deref()
                .unwrap()
                .starts_with("inputs name jobs declared")
        );
    }

    #[test]
    fn an_id_that_is_not_utf8_is_rejected_not_made_into_text() {
        let lua = mlua::Lua::new();
        let f = lua.create_function(|_, ()| Ok(())).unwrap();
        let job = |id: &[u8]| job(&lua, id, "quire/push", f.clone());
        // Two ids that the replacement character would have made one.
        let errors = validate(&registry(vec![job(b"a\xff"), job(b"a\xfe")])).unwrap_err();
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "job id 'a\\xff' is not valid UTF-8",
                "job id 'a\\xfe' is not valid UTF-8"
            ]
        );
        assert!(errors.iter().all(|e| e.argument == Some(ID)));
    }

    #[test]
    fn ids_that_are_not_names_are_rejected_on_the_id() {
        let lua = mlua::Lua::new();
        let f = lua.create_function(|_, ()| Ok(())).unwrap();
        let job = |id: &str| job(&lua, id, "quire/push", f.clone());
        let rejected = |id: &str| {
            let errors = validate(&registry(vec![job(id)])).unwrap_err();
            assert_eq!(errors.len(), 1, "{id:?}: {errors:?}");
            assert_eq!(errors[0].argument, Some(ID), "{id:?}");
            errors[0].message.clone()
        };
        assert_eq!(rejected("."), "job id '.' is not allowed");
        assert_eq!(rejected(".."), "job id '..' is not allowed");
        assert_eq!(
            rejected(&"j".repeat(256)),
            format!("job id '{}…' is 256 bytes long", "j".repeat(20))
        );
        assert_eq!(
            rejected(&"é".repeat(128)),
            format!("job id '{}…' is 256 bytes long", "é".repeat(20))
        );
        let longest = "j".repeat(255);
        assert!(validate(&registry(vec![job(&longest)])).is_ok());
        assert_eq!(rejected(""), "job id is empty");
        assert_eq!(rejected("a/b"), "job id 'a/b' contains '/'");
        assert_eq!(rejected("x\0y"), "job id 'x\\0y' contains a control character ('\\0')");
        assert_eq!(
            rejected("two\nlines"),
            "job id 'two\\nlines' contains a control character ('\\n')"
        );
        assert_eq!(
            rejected("\x1b[31mred"),
            "job id '\\u{1b}[31mred' contains a control character ('\\u{1b}')"
        );
        assert_eq!(
            rejected("del\x7f"),
            "job id 'del\\u{7f}' contains a control character ('\\u{7f}')"
        );
        // Everything else the design allows is a name.
        let ids = [
            "...",
            ".hidden",
            "a.b",
            " spaced ",
            "é-ü",
            "odd \"name\"",
            "build:release",
        ];
        let pipeline = validate(&registry(ids.iter().map(|id| job(id)).collect())).unwrap();
        assert_eq!(pipeline.jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn a_run_fn_takes_at_most_one_argument() {
        let lua = mlua::Lua::new();
        let job = |id: &str, run_fn: &str| job(&lua, id, "quire/push", lua.load(run_fn).eval().unwrap());
        let errors = validate(&registry(vec![
            job("none", "function() end"),
            job("one", "function(runtime) end"),
            job("vararg", "function(...) end"),
            job("one-and-vararg", "function(runtime, ...) end"),
            job("two", "function(runtime, extra) end"),
            job("three-and-vararg", "function(a, b, c, ...) end"),
            job("after", "function() end"),
        ]))
        .unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "job 'two': run-fn takes 2 arguments, but it is called with one, the runtime table",
                "job 'three-and-vararg': run-fn takes 3 arguments, but it is called with one, the runtime table",
            ]
        );
        assert!(errors.iter().all(|e| e.argument == Some(RUN_FN)));

        // A C function (a built-in) declares no parameters: it is taken.
        let print: Function = lua.globals().get("print").unwrap();
        assert!(validate(&registry(vec![self::job(&lua, "c", "quire/push", print)])).is_ok());
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let n = 100_000;
        let edges: Vec<Vec<usize>> = (0..n).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        assert!(find_cycles(&edges).is_empty());
        assert_eq!(topological_order(&edges).len(), n);
    }
}
