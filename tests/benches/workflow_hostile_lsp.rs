//! The language server's answer time while a hostile workflow runs in it.
//!
//! Run with `cargo build --release -p acas && cargo bench -p acas-e2e --bench workflow_hostile_lsp`.
//! `acas serve` (release build) opens a workspace whose workflow has 400 steps, four at a time,
//! each rendering a template that loops until it runs out of fuel, beside a step that keeps a
//! core busy with a shell loop. The bench times `acas/status` round trips through stdio, one at a
//! time: first with nothing running, then while that run goes on.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use acas_e2e::LspClient;
use serde_json::json;

const STEPS: usize = 400;
const REQUESTS: usize = 200;

fn hostile() -> String {
    let mut text = String::from(
        "name: hostile\nmax_parallel: 4\nsteps:\n  - id: busy\n    run: [\"sh\", \"-c\", \"while :; do :; done\"]\n    timeout: 15s\n    continue_on_error: true\n",
    );
    for i in 0..STEPS {
        text.push_str(&format!(
            "  - id: spin{i}\n    run: [\"echo\", \"{{% for a in 'x' * 99999 %}}{{% for b in 'x' * 99999 %}}{{% endfor %}}{{% endfor %}}\"]\n    continue_on_error: true\n"
        ));
    }
    text
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn round_trips(client: &mut LspClient) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..REQUESTS)
        .map(|_| {
            let started = Instant::now();
            let answer = client.request("acas/status", json!(null));
            assert!(answer.get("result").is_some(), "{answer}");
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/hostile.yaml"), hostile()).unwrap();

    let mut client = LspClient::start(&[("ACAS_LOG", "warn")]);
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    client.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });
    let idle = round_trips(&mut client);

    let started = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "hostile", "inputs": {} }] }),
    );
    assert!(started.get("result").is_some(), "{started}");
    // Round trips one after another for as long as the run goes on.
    let begun = Instant::now();
    let mut busy = Vec::new();
    let done = loop {
        let ended = client.take_all(|m| {
            m["method"] == "acas/workflowRun"
                && matches!(m["params"]["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
        });
        if let Some(done) = ended.into_iter().next() {
            break done;
        }
        let started = Instant::now();
        let answer = client.request("acas/status", json!(null));
        assert!(answer.get("result").is_some(), "{answer}");
        busy.push(started.elapsed());
        assert!(begun.elapsed() < Duration::from_secs(120), "the hostile run never ended");
    };
    busy.sort();
    let run_took = begun.elapsed();
    let failed_by_fuel = done["params"]["steps"].as_array().map_or(0, |s| {
        s.iter().filter(|s| s["error"].as_str().is_some_and(|e| e.contains("template_fuel"))).count()
    });

    println!("| while | requests | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|");
    for (name, times) in [("nothing runs", &idle), ("the hostile run goes on", &busy)] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            times.len(),
            percentile(times, 0.5),
            percentile(times, 0.95),
            percentile(times, 0.99),
            percentile(times, 1.0)
        );
    }
    println!(
        "\nThe run ended after {:.1} s, {failed_by_fuel} of its {STEPS} template steps stopped by `template_fuel`.",
        run_took.as_secs_f64()
    );
    let _ = client.shutdown();
}
