//! Workflow steps on workers, on a PostgreSQL cluster started for the run
//! (`acas_e2e::postgres`).
//!
//! Run with `ACAS_BIN=target/debug/acas cargo bench --profile dev -p acas-e2e --bench workers`
//! after `cargo build -p acas --bin acas` (or with a release binary and `cargo bench`). Prints
//! markdown tables.
//!
//! 1. Steps per second: `acas workflow run` of a workflow of STEPS independent `true` steps
//!    (`max_parallel` 8) in one clone, run by 1, 2 and 4 `acas worker` processes (one clone
//!    each, `--concurrency 2`), from the start of the command to its end; and the same run
//!    with no worker (every step in the run's own process) for comparison.
//! 2. Claims: ATTEMPTS queued no-op attempts, H handles (threads with pools of their own, as
//!    separate workers would have) claiming one at a time and recording a result until the
//!    queue is empty; printed are attempts per second and the latency of a claim, p50 and p95.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use acas::store::postgres::steps::{StepJob, StepResult};
use acas::store::{DatabaseUrl, Identity, PgOptions, PgStore};
use acas_e2e::acas_bin;
use acas_e2e::postgres::PgCluster;

const STEPS: usize = 200;
const ATTEMPTS: usize = 1000;
const REMOTE: &str = "https://github.com/acme/bench.git";

fn main() {
    let cluster = PgCluster::start();
    println!("# Workers benchmarks\n");
    println!("## No-op steps through workers ({STEPS} `true` steps, max_parallel 8)\n");
    println!("| workers | steps/s | run time |");
    println!("| --- | ---: | ---: |");
    steps_per_second(&cluster, 0);
    for workers in [1, 2, 4] {
        steps_per_second(&cluster, workers);
    }
    println!("\n## Claims of queued attempts ({ATTEMPTS} attempts, claim one then record its result)\n");
    println!("| handles | attempts/s | claim p50 | claim p95 |");
    println!("| ---: | ---: | ---: | ---: |");
    for handles in [1, 2, 4] {
        claims(&cluster.database(), handles);
    }
}

fn clone(workflow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(dir.path().join(".acas/workflows/noop.yaml"), workflow).unwrap();
    acas_e2e::git(dir.path(), &["init", "-q"]);
    acas_e2e::git(dir.path(), &["remote", "add", "origin", REMOTE]);
    dir
}

fn acas(root: &Path, url: &str) -> Command {
    let mut command = Command::new(acas_bin());
    command
        .current_dir(root)
        .env("ACAS_LOG", "error")
        .env("ACAS_DATABASE_URL", url)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"));
    command
}

fn steps_per_second(cluster: &PgCluster, workers: usize) {
    let mut workflow = String::from("name: noop\nmax_parallel: 8\nsteps:\n");
    for i in 0..STEPS {
        workflow.push_str(&format!("  - id: s{i}\n    run: [\"true\"]\n"));
    }
    let url = cluster.database();
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let driver = clone(&workflow);
    let clones: Vec<_> = (0..workers).map(|_| clone(&workflow)).collect();
    // The schema, before the workers count themselves in.
    drop(store(&url));
    let mut children: Vec<Child> = clones
        .iter()
        .map(|c| {
            acas(c.path(), &url)
                .args(["worker", "--concurrency", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    while cluster.psql(&db, "SELECT count(*) FROM step_worker").parse::<usize>().unwrap() < workers {
        std::thread::yield_now();
    }
    let start = Instant::now();
    let out = acas(driver.path(), &url).args(["workflow", "run", "noop"]).output().unwrap();
    let elapsed = start.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let remote: usize =
        cluster.psql(&db, "SELECT count(*) FROM step_attempt WHERE state = 'done'").parse().unwrap();
    assert_eq!(remote, if workers == 0 { 0 } else { STEPS }, "steps ran where they should");
    for child in &mut children {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    let label = if workers == 0 { "none (in the run's process)".to_owned() } else { workers.to_string() };
    println!("| {label} | {:.0} | {:.2} s |", STEPS as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64());
}

fn store(url: &str) -> PgStore {
    let identity = Identity { repository: "github.com/acme/bench".to_owned(), user: "bench".to_owned() };
    PgStore::connect(&DatabaseUrl::parse(url).unwrap(), identity, &PgOptions::default()).unwrap()
}

fn claims(url: &str, handles: usize) {
    let driver = store(url);
    for i in 0..ATTEMPTS {
        let job = StepJob {
            run_key: "bench".to_owned(),
            step_id: format!("s{i}"),
            attempt: 1,
            argv: vec!["true".to_owned()],
            env: BTreeMap::new(),
            cwd: String::new(),
            timeout_ms: None,
            labels: Vec::new(),
            agent: "cli".to_owned(),
            idempotent: true,
        };
        driver.enqueue_step(&job, 1_000).unwrap();
    }
    let barrier = Arc::new(Barrier::new(handles + 1));
    let threads: Vec<_> = (0..handles)
        .map(|h| {
            let store = store(url);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let name = format!("w{h}");
                let done = StepResult { succeeded: true, exit_code: Some(0), output: None, error: None };
                let mut latencies = Vec::new();
                barrier.wait();
                loop {
                    let start = Instant::now();
                    let claimed = store.claim_steps(&name, &[], 1, Duration::from_secs(30), 2_000).unwrap();
                    latencies.push(start.elapsed());
                    let Some(claim) = claimed.first() else { return latencies };
                    assert!(store.finish_step(claim.id, &name, &done, 2_001).unwrap());
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut latencies: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "| {handles} | {:.0} | {:.2} ms | {:.2} ms |",
        ATTEMPTS as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0
    );
}
