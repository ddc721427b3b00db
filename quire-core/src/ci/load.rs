//! Finding, compiling and executing `.quire/ci.fnl` (or `ci.lua`) into a
//! validated pipeline, with diagnostics on the pipeline source.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

use super::pipeline::{self, Location, Pipeline, PipelineError, Registry};
use super::runtime::RuntimeGlobal;
use super::stdlib;
use crate::fennel::error::line_column;
use crate::fennel::{FennelError, FormKind, Stage, reader};
use crate::lua::{BudgetOwner, Limits, LoadError, PrintTarget, Sandbox, SandboxOptions, fennel_error};
use crate::secret::Redactor;

/// A pipeline ready to run, with the VM its functions live in.
pub struct LoadedPipeline {
    pub sandbox: Sandbox,
    pub pipeline: Rc<Pipeline>,
    pub runtime_global: RuntimeGlobal,
    /// The pipeline file as shown to the user (`.quire/ci.fnl`).
    pub file: String,
}

/// Why there is no pipeline to run.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LoadFailure {
    /// Set-up problem: exit 2.
    #[error("no pipeline in {}: expected .quire/ci.fnl (or .quire/ci.lua)", .workspace.display())]
    #[diagnostic(
        code(quire::no_pipeline),
        help("create .quire/ci.fnl, or point -w at the workspace that has one")
    )]
    NoPipeline { workspace: PathBuf },

    #[error("cannot read {}: {error}", .path.display())]
    #[diagnostic(code(quire::io))]
    /// `error` is in the message, not a `source`: miette would print it a second time.
    Read { path: PathBuf, error: std::io::Error },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Fennel(Box<FennelError>),

    /// The pipeline code raised an error while registering jobs.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lua(Box<SourceDiagnostic>),

    #[error("invalid pipeline: {} error{}", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    #[diagnostic(code(quire::invalid_pipeline))]
    Invalid(#[related] Vec<SourceDiagnostic>),
}

impl LoadFailure {
    /// A set-up error (exit 2) rather than an invalid pipeline (exit 1).
    pub fn is_setup(&self) -> bool {
        matches!(self, LoadFailure::NoPipeline { .. } | LoadFailure::Read { .. })
    }

    /// Every problem, as plain text and numbers, for output a program reads:
    /// one per error of an invalid pipeline, in the order they are reported.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadFailure::NoPipeline { .. } | LoadFailure::Read { .. } => vec![Problem::unplaced(self)],
            LoadFailure::Fennel(err) => vec![Problem {
                message: format!(
                    "{} error: {}",
                    match err.stage {
                        Stage::Parse => "parse",
                        Stage::Compile => "compile",
                    },
                    err.message
                ),
                file: Some(err.file.clone()),
                line: Some(err.line),
                column: Some(err.column),
                help: err.help.clone(),
            }],
            LoadFailure::Lua(diagnostic) => vec![diagnostic.problem()],
            LoadFailure::Invalid(diagnostics) => diagnostics.iter().map(SourceDiagnostic::problem).collect(),
        }
    }
}

/// One problem of a [`LoadFailure`] without its rendering: the message
/// without the place it is at, which is in the other fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// The file the problem is in, as shown to the user (`.quire/ci.fnl`).
    pub file: Option<String>,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based, in characters, of the start of what the problem is about.
    pub column: Option<usize>,
    pub help: Option<String>,
}

impl Problem {
    /// A problem at no place in the code: its message and help.
    pub fn unplaced(diagnostic: &dyn Diagnostic) -> Problem {
        Problem {
            message: diagnostic.to_string(),
            file: None,
            line: None,
            column: None,
            help: diagnostic.help().map(|h| h.to_string()),
        }
    }
}

/// One message labelled on a line of pipeline code, when we know the line.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceDiagnostic {
    pub message: String,
    pub help: Option<String>,
    pub location: Option<Location>,
    code: Option<NamedSource<Arc<str>>>,
    span: Option<SourceSpan>,
}

impl Diagnostic for SourceDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.code.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_primary_with_span(
            None, span,
        ))))
    }
}

impl SourceDiagnostic {
    fn problem(&self) -> Problem {
        let Some(location) = &self.location else {
            return Problem::unplaced(self);
        };
        // A Lua error starts with its place (`.quire/ci.fnl:12: boom`), which the other fields hold.
        let message = self
            .message
            .strip_prefix(&format!("{location}:"))
            .map_or(self.message.as_str(), str::trim_start);
        let (line, column) = match (&self.code, self.span) {
            (Some(code), Some(span)) => {
                let (line, column) = line_column(code.inner(), span.offset());
                (line, Some(column))
            }
            _ => (location.line, None),
        };
        Problem {
            message: message.to_string(),
            file: Some(location.file.clone()),
            line: Some(line),
            column,
            help: self.help.clone(),
        }
    }

    /// Attach the source line `location` points at, reading the file from the workspace.
    fn new(message: String, help: Option<String>, location: Option<Location>, workspace: &Path) -> Self {
        Self::on_argument(message, help, location, None, workspace)
    }

    /// [`SourceDiagnostic::new`], labelled on argument `argument` (from 1)
    /// of the `ci.job` call at `location` when there is one.
    fn on_argument(
        message: String,
        help: Option<String>,
        location: Option<Location>,
        argument: Option<usize>,
        workspace: &Path,
    ) -> Self {
        let mut diagnostic = SourceDiagnostic {
            message,
            help,
            location: location.clone(),
            code: None,
            span: None,
        };
        if let Some(location) = location
            && let Ok(text) = std::fs::read_to_string(workspace.join(&location.file))
        {
            let text: Arc<str> = text.into();
            diagnostic.span = span_of_line(&text, &location, location.file.ends_with(".fnl"), argument);
            diagnostic.code = Some(NamedSource::new(&location.file, text));
        }
        diagnostic
    }
}

/// How to load a pipeline.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Where pipeline code's `print` goes.
    pub print: PrintTarget,
    /// Secrets masked in what pipeline code prints.
    pub redactor: Redactor,
    pub limits: Limits,
}

/// Load the workspace's pipeline: compile it and run its top-level code.
pub fn load(workspace: &Path, options: LoadOptions) -> Result<LoadedPipeline, LoadFailure> {
    let quire_dir = workspace.join(".quire");
    let path = pipeline_path(workspace).ok_or_else(|| LoadFailure::NoPipeline {
        workspace: workspace.to_path_buf(),
    })?;
    let file = shown_path(workspace, &path);

    let sandbox = Sandbox::new(SandboxOptions {
        module_dir: Some(quire_dir),
        display_root: Some(workspace.to_path_buf()),
        print: options.print,
        redactor: options.redactor,
        limits: options.limits,
    })
    .map_err(|e| lua_failure(e, workspace))?;
    let registry = Rc::new(RefCell::new(Registry::default()));
    let module_registry = registry.clone();
    sandbox.register_module(
        "quire.ci",
        Box::new(move |lua| Ok(mlua::Value::Table(pipeline::ci_module(lua, module_registry.clone())?))),
    );
    sandbox.register_module("quire.runtime", Box::new(|lua| lua.globals().get("runtime")));
    sandbox.register_module(
        "quire.stdlib",
        Box::new(|lua| Ok(mlua::Value::Table(stdlib::module(lua)?))),
    );
    let runtime_global = RuntimeGlobal::install(sandbox.lua()).map_err(|e| lua_failure(e, workspace))?;

    let chunk = sandbox.load_file(&path, &file).map_err(|e| match e {
        LoadError::Read(error) => LoadFailure::Read {
            path: path.clone(),
            error,
        },
        LoadError::Fennel(err) => LoadFailure::Fennel(err),
        LoadError::Lua(err) => lua_failure(err, workspace),
    })?;
    sandbox
        .run_chunk(chunk, BudgetOwner::TopLevel)
        .map_err(|failure| match fennel_error(&failure.error) {
            Some(fennel) => LoadFailure::Fennel(Box::new(fennel.clone())),
            None => source_failure(failure.message, workspace),
        })?;
    registry.borrow_mut().closed = true;

    let pipeline = pipeline::validate(&registry.borrow()).map_err(|errors| {
        LoadFailure::Invalid(
            errors
                .into_iter()
                .map(
                    |PipelineError {
                         message,
                         help,
                         location,
                         argument,
                     }| {
                        SourceDiagnostic::on_argument(message, help, location, argument, workspace)
                    },
                )
                .collect(),
        )
    })?;
    Ok(LoadedPipeline {
        sandbox,
        pipeline: Rc::new(pipeline),
        runtime_global,
        file,
    })
}

/// The workspace's pipeline file, `.quire/ci.fnl` or else `.quire/ci.lua`, if it has one.
pub fn pipeline_path(workspace: &Path) -> Option<PathBuf> {
    ["ci.fnl", "ci.lua"]
        .iter()
        .map(|name| workspace.join(".quire").join(name))
        // Whatever is there, not only a file: a directory named ci.fnl is a
        // pipeline that cannot be read, not a missing one.
        .find(|p| p.exists())
}

/// How a file of the workspace is named to the user: relative to the workspace.
pub fn shown_path(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace).unwrap_or(path).display().to_string()
}

fn lua_failure(err: mlua::Error, workspace: &Path) -> LoadFailure {
    if let Some(fennel) = fennel_error(&err) {
        return LoadFailure::Fennel(Box::new(fennel.clone()));
    }
    source_failure(lua_error_message(&err), workspace)
}

/// A failure labelled on the pipeline line its message names, if it names one.
fn source_failure(message: String, workspace: &Path) -> LoadFailure {
    let location = error_location(&message);
    LoadFailure::Lua(Box::new(SourceDiagnostic::new(message, None, location, workspace)))
}

pub use crate::lua::error_message as lua_error_message;

/// `.quire/ci.fnl:12: boom` -> the file and line it names, if it names one.
pub fn error_location(message: &str) -> Option<Location> {
    let mut parts = message.splitn(3, ':');
    let file = parts.next()?;
    let line = parts.next()?.trim().parse().ok()?;
    (file.ends_with(".fnl") || file.ends_with(".lua")).then(|| Location {
        file: file.to_string(),
        line,
    })
}

/// The span to label for something declared at `location`: in Fennel, the
/// list form that starts on that line (the `(ci.job …)` call when there is
/// one, or its argument `argument`, from 1, when asked for and given);
/// otherwise the line itself.
fn span_of_line(source: &Arc<str>, location: &Location, fennel: bool, argument: Option<usize>) -> Option<SourceSpan> {
    let line_start = source
        .split_inclusive('\n')
        .take(location.line.checked_sub(1)?)
        .map(str::len)
        .sum::<usize>();
    if line_start > source.len() {
        return None;
    }
    let line_text = source[line_start..].split('\n').next().unwrap_or("");
    let line_end = line_start + line_text.len();
    if fennel && let Ok(forms) = reader::read_all(source, &location.file) {
        let mut best = None;
        let mut stack: Vec<&crate::fennel::Form> = forms.iter().collect();
        while let Some(form) = stack.pop() {
            if form.span.end <= line_start || form.span.start > line_end {
                continue;
            }
            if let FormKind::List(items) | FormKind::Seq(items) = &form.kind {
                if (line_start..=line_end).contains(&form.span.start) {
                    let head = items.first().and_then(|h| h.as_sym()).unwrap_or("");
                    let is_registration =
                        head.ends_with(".job") || head.ends_with(".image") || head.ends_with(".mirror");
                    // Prefer a registration call, then the form that starts first (the outermost).
                    let candidate = (!is_registration, form.span.start, form.span.end);
                    if best.is_none_or(|(b, _)| candidate < b) {
                        let part = argument.filter(|_| head.ends_with(".job")).and_then(|n| items.get(n));
                        best = Some((candidate, part.map(|p| p.span)));
                    }
                }
                stack.extend(items.iter());
            }
        }
        if let Some(((_, start, end), part)) = best {
            return Some(match part {
                Some(part) => (part.start, part.end - part.start).into(),
                None => (start, end - start).into(),
            });
        }
    }
    let indent = line_text.len() - line_text.trim_start().len();
    Some((line_start + indent, line_text.trim().len()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(source: &str, line: usize, argument: Option<usize>) -> &str {
        let text: Arc<str> = source.into();
        let location = Location {
            file: ".quire/ci.fnl".into(),
            line,
        };
        let span = span_of_line(&text, &location, true, argument).expect("a span");
        &source[span.offset()..span.offset() + span.len()]
    }

    #[test]
    fn an_argument_of_a_job_call_is_labelled_alone() {
        let source = "(local ci (require :quire.ci))\n  (ci.job :a [:quire/push] 42)\n(ci.mirror \"url\" {})\n";
        assert_eq!(labelled(source, 2, None), "(ci.job :a [:quire/push] 42)");
        assert_eq!(labelled(source, 2, Some(1)), ":a");
        assert_eq!(labelled(source, 2, Some(3)), "42");
        // An argument the call does not have: the call.
        assert_eq!(labelled(source, 2, Some(4)), "(ci.job :a [:quire/push] 42)");
        // Arguments are those of ci.job only.
        assert_eq!(labelled(source, 3, Some(1)), "(ci.mirror \"url\" {})");
    }
}
