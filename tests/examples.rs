//! The shipped examples and every example in docs/pipeline.md run green.

mod common;

use std::path::Path;

use common::{Run, Workspace, cri_lines};

/// Copy an example workspace into a temporary one (runs must not dirty the repo).
fn copy_example(name: &str) -> Workspace {
    let ws = Workspace::empty();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    copy_dir(&root, ws.path());
    ws
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn job_outcomes(run: &Run) -> Vec<(String, String)> {
    run.events()
        .iter()
        .filter(|e| e["type"] == "job_finished")
        .map(|e| {
            (
                e["job_id"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn hello_example() {
    let ws = copy_example("hello");
    let run = ws.run_events(&[]);
    run.assert_code(0);
    assert_eq!(
        cri_lines(&ws.log("test-1.80", 1)),
        vec!["stdout F testing hello.bin on 1.80"]
    );
    assert!(run.stderr.contains("tested on 1.78\n") && run.stderr.contains("tested on 1.80\n"));
    assert!(job_outcomes(&run).contains(&("report".into(), "skipped".into())));
}

#[test]
fn matrix_example() {
    let ws = copy_example("matrix");
    let run = ws.run_events(&["-j", "4"]);
    run.assert_code(0);
    assert_eq!(job_outcomes(&run).len(), 7);
    assert_eq!(
        cri_lines(&ws.log("test-3.12-full", 1)),
        vec!["stdout F python 3.12 features=[json,tls]"]
    );
    assert_eq!(cri_lines(&ws.log("summary", 1)), vec!["stdout F 6/6 cells passed"]);
}

#[test]
fn fan_out_example() {
    let ws = copy_example("fan-out");
    let run = ws.run_events(&["-j", "3"]);
    run.assert_code(0);
    assert_eq!(
        cri_lines(&ws.log("shard-2", 1)),
        vec!["stdout F shard 2 b.txt:5 e.txt:5"]
    );
    assert_eq!(cri_lines(&ws.log("gather", 1)), vec!["stdout F gathered 7 results"]);
}

#[test]
fn rust_project_example() {
    let ws = copy_example("rust-project");
    let target = ws.path().join("out/target");
    let run = Run::from(
        ws.events_command(&[])
            .env("QUIRE_TARGET_DIR", &target)
            .output()
            .unwrap(),
    );
    run.assert_code(0);
    assert!(run.stderr.contains("tested greeter 0.1.0"), "{}", run.stderr);
    assert_eq!(job_outcomes(&run).len(), 4);
}

/// Every ```fennel block of docs/pipeline.md is a complete pipeline that runs green.
#[test]
fn every_example_in_the_pipeline_guide_runs() {
    let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/pipeline.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in guide.lines() {
        match (&mut current, line) {
            (None, "```fennel") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 6, "found {} examples", blocks.len());
    for block in blocks {
        let ws = Workspace::fennel(&block);
        let run = ws.run_events(&[]);
        assert_eq!(run.code, 0, "example failed:\n{block}\nstderr:\n{}", run.stderr);
    }
}
