//! Large workflows: time and peak memory to validate a generated definition of N steps (parse and
//! every check, as `acas workflow validate` does), to plan it as `acas workflow run --dry-run`
//! does, and to run it (scheduling, rendering each
//! step's templated parameters, committing every state change; the action itself does nothing).
//! Each size runs in a process of its own so that its peak memory is its own. Prints a markdown
//! table.
//!
//! Run with `cargo bench -p acas --bench workflow_scale`.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acas::workflow::definition::RunStatus;
use acas::workflow::engine::{ActionFn, Engine, EngineOptions, ParseFn};
use acas::workflow::error::{WorkflowError, WorkflowErrorKind};
use acas::workflow::template::TemplateLimits;
use acas::workflow::triggers::{ManualSource, Trigger};
use acas::workflow::validate;
use serde_json::{Map, Value};

const SIZES: &[usize] = &[1_000, 10_000];

/// Step `i` needs the step before it and, every third step, one seven back, and reads the run
/// id in its parameters, so that every step is rendered.
fn definition(steps: usize) -> String {
    let mut text = String::from("name: big\nmax_parallel: 4\nsteps:\n");
    for i in 0..steps {
        text.push_str(&format!(
            "  - id: s{i}\n    uses: editor.notify\n    with: {{ message: \"step {i} of run {{{{ run.id }}}}\" }}\n"
        ));
        let mut needs = Vec::new();
        if i >= 1 {
            needs.push(format!("s{}", i - 1));
        }
        if i >= 7 && i.is_multiple_of(3) {
            needs.push(format!("s{}", i - 7));
        }
        if !needs.is_empty() {
            text.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
    }
    text
}

/// Peak resident memory of this process so far, in MiB (`VmHWM`).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn one(steps: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join(".acas/workflows/big.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let text = definition(steps);
    std::fs::write(&file, &text).unwrap();

    let started = Instant::now();
    let (workflow, problems) = validate::check(&file, &text);
    let validated = started.elapsed();
    let workflow = workflow.expect("the definition parses");
    assert!(problems.is_empty(), "{problems:?}");
    let after_validation = peak_mib();

    // The dry run: waves and every step's templates rendered against a sample trigger.
    let started = Instant::now();
    let trigger = acas::workflow::plan::sample_trigger(&workflow).to_value();
    let planned = acas::workflow::plan::plan(&workflow, &trigger, &Map::new(), TemplateLimits::default())
        .expect("the dry run plans");
    let dry_run = started.elapsed();
    assert_eq!(planned.len(), steps);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ran = runtime.block_on(async {
        let engine = engine(dir.path());
        let started = Instant::now();
        let handle = engine
            .start(
                &workflow,
                &Trigger::Manual { source: ManualSource::Cli, agent: None, session: None },
                &Map::new(),
            )
            .expect("start");
        assert_eq!(handle.wait().await, RunStatus::Succeeded);
        started.elapsed()
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {steps} | {} KiB | {:.0} ms | {after_validation:.0} MiB | {:.0} ms | {:.0} ms | {:.3} ms | {:.0} MiB |",
        text.len() / 1024,
        ms(validated),
        ms(dry_run),
        ms(ran),
        ms(ran) / steps as f64,
        peak_mib()
    );
}

fn engine(dir: &Path) -> Engine {
    let parse: ParseFn =
        Arc::new(|_: &Path, _: &str| Err(WorkflowError::new(WorkflowErrorKind::Definition, "not needed")));
    let noop: ActionFn = Arc::new(|_, _, _| Box::pin(async { Ok(Value::Null) }));
    let mut options = EngineOptions::new(dir.to_owned(), parse);
    options.actions = noop;
    Engine::open(options).expect("open the engine")
}

fn main() {
    if let Some(steps) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        one(steps);
        return;
    }
    println!(
        "| steps | file | validate | peak memory after validation | dry run | run | run per step | peak memory after the run |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("this bench's path");
    for steps in SIZES {
        let status = std::process::Command::new(&exe).arg(steps.to_string()).status().expect("run one size");
        assert!(status.success());
    }
}
