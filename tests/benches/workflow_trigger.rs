//! Trigger latency: from a file's save to the start of the step of the workflow it triggers.
//!
//! Run with `cargo build --release -p acas && cargo bench -p acas-e2e --bench workflow_trigger`.
//! `acas watch --format json` (release build) watches a workspace with a `file_change` workflow;
//! each round writes a new file under `src/` and measures the time until `acas watch` prints the
//! run's step as `running` (the engine prints it once the state is committed, just before the
//! command starts). Both debounces are part of the path: the watcher's (`[watch] debounce_ms`)
//! and the trigger's (`debounce`); they are set low here and reported with the figures.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const ROUNDS: usize = 40;

fn main() {
    println!("# Workflow trigger latency\n");
    println!("| watcher debounce | trigger debounce | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|");
    for (watch_ms, trigger_ms) in [(10, 10), (50, 500)] {
        let latencies = measure(watch_ms, trigger_ms);
        println!(
            "| {watch_ms} ms | {trigger_ms} ms | {:.1} | {:.1} | {:.1} |",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            percentile(&latencies, 1.0)
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn measure(watch_ms: u64, trigger_ms: u64) -> Vec<Duration> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), format!("[watch]\ndebounce_ms = {watch_ms}\n")).unwrap();
    std::fs::write(
        root.join(".acas/workflows/on-save.yaml"),
        format!(
            "name: on-save\non:\n  file_change: {{ paths: [\"src/**\"], debounce: {trigger_ms}ms }}\nsteps:\n  - id: touch\n    run: [\"true\"]\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(acas_e2e::acas_bin())
        .args(["watch", "--format", "json"])
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting acas watch");
    let (tx, rx) = mpsc::channel::<(Instant, Value)>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line)
                && tx.send((Instant::now(), value)).is_err()
            {
                break;
            }
        }
    });
    let wait = |what: &str, predicate: &dyn Fn(&Value) -> bool| -> Instant {
        loop {
            let (at, value) =
                rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no {what}"));
            if predicate(&value) {
                return at;
            }
        }
    };
    wait("scan", &|v| v["event"] == "scan");
    let mut latencies = Vec::new();
    for round in 0..ROUNDS + 5 {
        let saved = Instant::now();
        std::fs::write(root.join(format!("src/f{round}.txt")), "x\n").unwrap();
        let started =
            wait("step start", &|v| v["event"] == "workflow_run" && v["steps"][0]["status"] == "running");
        wait("run end", &|v| v["event"] == "workflow_run" && v["status"] == "succeeded");
        if round >= 5 {
            latencies.push(started.duration_since(saved));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    latencies
}
