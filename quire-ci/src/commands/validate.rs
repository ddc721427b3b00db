//! `quire-ci validate`: load the pipeline and show its jobs.

use std::path::Path;

use quire_core::ci::load::{self, LoadOptions, Problem};
use quire_core::ci::pipeline::Pipeline;
use quire_core::lua::PrintTarget;
use serde_json::json;

use super::resolve_workspace;
use crate::cli::{ValidateArgs, ValidateFormat};
use crate::columns::{self, Pad};
use crate::{exit, report_error};

pub fn run(workspace: &Path, args: &ValidateArgs) -> u8 {
    let json_output = matches!(args.format, ValidateFormat::Json);
    let workspace = match resolve_workspace(workspace) {
        Ok(dir) => dir,
        Err(err) => {
            if json_output {
                crate::output(&failure_json(None, &[Problem::unplaced(&err)]));
            }
            report_error(err);
            return exit::USAGE;
        }
    };
    let options = LoadOptions {
        print: PrintTarget::Stderr,
        limits: args.limits.limits(),
        ..LoadOptions::default()
    };
    let loaded = match load::load(&workspace, options) {
        Ok(loaded) => loaded,
        Err(err) => {
            let code = if err.is_setup() { exit::USAGE } else { exit::FAILED };
            if json_output {
                let file = load::pipeline_path(&workspace).map(|path| load::shown_path(&workspace, &path));
                crate::output(&failure_json(file.as_deref(), &err.problems()));
            }
            report_error(err);
            return code;
        }
    };
    let text = match args.format {
        ValidateFormat::Text => text(&loaded.pipeline, &loaded.file),
        ValidateFormat::Json => json(&loaded.pipeline, &loaded.file),
        ValidateFormat::Dot => dot(&loaded.pipeline),
    };
    crate::output(&text);
    exit::OK
}

fn text(pipeline: &Pipeline, file: &str) -> String {
    let n = pipeline.jobs.len();
    let mut out = format!("{file}: {n} job{}\n", if n == 1 { "" } else { "s" });
    if let Some(image) = &pipeline.image {
        out.push_str(&format!("image: {image}\n"));
    }
    let width = pipeline.jobs.iter().map(|j| columns::width(&j.id)).max().unwrap_or(0);
    for &i in &pipeline.order {
        let job = &pipeline.jobs[i];
        out.push_str(&format!("{}  <- {}\n", Pad(&job.id, width), job.inputs.join(", ")));
    }
    out
}

fn json(pipeline: &Pipeline, file: &str) -> String {
    let jobs: Vec<_> = pipeline
        .order
        .iter()
        .map(|&i| {
            let job = &pipeline.jobs[i];
            json!({
                "id": job.id,
                "inputs": job.inputs,
                "line": job.location.as_ref().map(|l| l.line),
            })
        })
        .collect();
    let doc = json!({ "file": file, "valid": true, "errors": [], "image": pipeline.image, "jobs": jobs });
    pretty(&doc)
}

/// The document of a pipeline that is invalid or did not load, or of a
/// workspace without one (`file` null): what is wrong, one entry a problem.
fn failure_json(file: Option<&str>, problems: &[Problem]) -> String {
    let errors: Vec<_> = problems
        .iter()
        .map(|p| {
            json!({
                "message": p.message,
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "help": p.help,
            })
        })
        .collect();
    pretty(&json!({ "file": file, "valid": false, "errors": errors }))
}

fn pretty(doc: &serde_json::Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(doc).expect("plain JSON"))
}

fn dot(pipeline: &Pipeline) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
    let mut sources: Vec<&str> = Vec::new();
    for &i in &pipeline.order {
        for input in &pipeline.jobs[i].inputs {
            if pipeline.job_index(input).is_none() && !sources.contains(&input.as_str()) {
                sources.push(input);
            }
        }
    }
    for source in sources {
        out.push_str(&format!("  {} [shape=ellipse];\n", quote(source)));
    }
    for &i in &pipeline.order {
        let job = &pipeline.jobs[i];
        out.push_str(&format!("  {};\n", quote(&job.id)));
        for input in &job.inputs {
            out.push_str(&format!("  {} -> {};\n", quote(input), quote(&job.id)));
        }
    }
    out.push_str("}\n");
    out
}
