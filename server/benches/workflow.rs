//! Workflow engine overhead: a 1,000-step DAG of no-op steps (the engine's own cost per step:
//! scheduling, two committed state changes with their audit rows, events), and the same DAG of
//! `true` commands against `make -j2` running the same commands. Prints a markdown table.
//!
//! Run with `cargo bench -p acas --bench workflow`.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acas::workflow::definition::{RetryPolicy, RunStatus, SkippedNeeds, Step, StepKind, Triggers, Workflow};
use acas::workflow::engine::{ActionFn, Engine, EngineOptions, ParseFn};
use acas::workflow::triggers::{ManualSource, Trigger};
use serde_json::{Map, Value};

const STEPS: usize = 1_000;
const ROUNDS: usize = 5;

/// The needs of step `i`: its predecessor and one further back, so that the DAG has both long
/// chains and fan-in, and a few steps are ready at once.
fn needs(i: usize) -> Vec<usize> {
    let mut needs = Vec::new();
    if i >= 4 {
        needs.push(i - 4);
    }
    if i >= 7 && i.is_multiple_of(3) {
        needs.push(i - 7);
    }
    needs
}

fn workflow(kind: impl Fn() -> StepKind, max_parallel: usize) -> Workflow {
    let steps = (0..STEPS)
        .map(|i| Step {
            id: format!("s{i}"),
            name: None,
            kind: kind(),
            needs: needs(i).iter().map(|n| format!("s{n}")).collect(),
            condition: None,
            retry: RetryPolicy::default(),
            timeout: None,
            continue_on_error: false,
            skipped_needs: SkippedNeeds::Skip,
            idempotent: true,
            runs_on: None,
            line: 1,
            column: 1,
        })
        .collect();
    Workflow {
        name: "bench".into(),
        file: PathBuf::from("/bench/.acas/workflows/bench.yaml"),
        hash: "0".repeat(64),
        source: String::new(),
        on: Triggers::default(),
        inputs: BTreeMap::new(),
        env: BTreeMap::new(),
        concurrency: None,
        timeout: None,
        max_parallel,
        runs_on: Vec::new(),
        steps,
    }
}

fn engine(dir: &Path) -> Engine {
    let parse: ParseFn = Arc::new(|_: &Path, _: &str| {
        Err(acas::workflow::error::WorkflowError::new(
            acas::workflow::error::WorkflowErrorKind::Definition,
            "not needed",
        ))
    });
    let noop: ActionFn = Arc::new(|_, _, _| Box::pin(async { Ok(Value::Null) }));
    let mut options = EngineOptions::new(dir.to_owned(), parse);
    options.actions = noop;
    Engine::open(options).expect("open the engine")
}

fn run(runtime: &tokio::runtime::Runtime, engine: &Engine, wf: &Workflow) -> Duration {
    runtime.block_on(async {
        let started = Instant::now();
        let handle = engine
            .start(
                wf,
                &Trigger::Manual { source: ManualSource::Cli, agent: None, session: None },
                &Map::new(),
            )
            .expect("start");
        assert_eq!(handle.wait().await, RunStatus::Succeeded);
        started.elapsed()
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn make(dir: &Path) -> Option<Duration> {
    let mut makefile = String::from(".PHONY: all");
    for i in 0..STEPS {
        makefile.push_str(&format!(" s{i}"));
    }
    makefile.push_str("\nall:");
    for i in 0..STEPS {
        makefile.push_str(&format!(" s{i}"));
    }
    makefile.push('\n');
    for i in 0..STEPS {
        let deps: Vec<String> = needs(i).iter().map(|n| format!("s{n}")).collect();
        makefile.push_str(&format!("s{i}: {}\n\t@true\n", deps.join(" ")));
    }
    std::fs::write(dir.join("Makefile"), makefile).expect("write the Makefile");
    let started = Instant::now();
    let status =
        std::process::Command::new("make").args(["-j2", "-s", "all"]).current_dir(dir).status().ok()?;
    status.success().then(|| started.elapsed())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = engine(dir.path());

    let noop = workflow(|| StepKind::Uses { action: "noop".into(), with: serde_json::Map::new() }, 4);
    run(&runtime, &engine, &noop); // warm-up
    let noop_times: Vec<Duration> = (0..ROUNDS).map(|_| run(&runtime, &engine, &noop)).collect();

    let truth = || StepKind::Argv { argv: vec!["true".into()], env: BTreeMap::new(), cwd: None };
    let commands = workflow(truth, 2);
    let command_times: Vec<Duration> = (0..ROUNDS).map(|_| run(&runtime, &engine, &commands)).collect();
    let make_times: Vec<Duration> = (0..ROUNDS).filter_map(|_| make(dir.path())).collect();

    let per_step = |d: Duration| d.as_secs_f64() * 1000.0 / STEPS as f64;
    println!("| run ({STEPS} steps, median of {ROUNDS}) | total | per step |");
    println!("|---|---|---|");
    let row = |name: &str, d: Duration| {
        println!("| {name} | {:.0} ms | {:.3} ms |", d.as_secs_f64() * 1000.0, per_step(d))
    };
    row("acas, no-op steps, max_parallel 4", median(noop_times));
    row("acas, `true` commands, max_parallel 2", median(command_times));
    if make_times.is_empty() {
        println!("| make -j2, `true` commands | (make not found) | |");
    } else {
        row("make -j2, `true` commands", median(make_times));
    }
    println!(
        "\nstate.db after {} runs: {} KiB",
        2 * ROUNDS + 1,
        std::fs::metadata(dir.path().join(".acas/state.db")).map_or(0, |m| m.len()) / 1024
    );
}
