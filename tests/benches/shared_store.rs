//! Shared-store benchmarks: budget reservations and task claims under contention, on the
//! workspace's SQLite and on a PostgreSQL cluster started for the run (`acas_e2e::postgres`).
//!
//! Run with `cargo bench -p acas-e2e --bench shared_store`. Prints markdown tables.
//!
//! 1. Reservations: H handles (threads, each with its own connection or pool, as separate
//!    processes would have) reserve 300 micros each against a limit of 100,000 micros (333 reservations) until
//!    each has made 200 attempts; printed are the reservations per second, the committed spend
//!    against the limit and the number refused.
//! 2. Claims: 500 no-op tasks, H handles each claiming and finishing tasks until the queue is
//!    empty; printed are tasks per second and the claim latency p50 and p95.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use acas::agents::postgres::PgTaskQueue;
use acas::agents::{Claim, ClaimRequest, ManualClock, NewTask, TaskQueue, Tasks};
use acas::store::{
    CallStatus, DatabaseUrl, Identity, Ledger, PgOptions, PgStore, ProviderCall, Store, StoreOptions,
};
use acas_e2e::postgres::PgCluster;

const LIMIT: u64 = 100_000;
const COST: u64 = 300;
const ATTEMPTS: usize = 200;
const TASKS: usize = 500;

enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite(_) => "SQLite",
            Engine::Postgres(_) => "PostgreSQL",
        }
    }

    fn ledger(&self) -> Box<dyn Ledger> {
        match self {
            Engine::Sqlite(dir) => {
                Box::new(Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap())
            }
            Engine::Postgres(url) => Box::new(pg(url)),
        }
    }

    fn tasks(&self, clock: &ManualClock) -> Box<dyn Tasks> {
        match self {
            Engine::Sqlite(dir) => Box::new(TaskQueue::open(dir.path(), Arc::new(clock.clone())).unwrap()),
            Engine::Postgres(url) => Box::new(PgTaskQueue::new(pg(url), Arc::new(clock.clone()))),
        }
    }
}

fn pg(url: &str) -> PgStore {
    let identity = Identity { repository: "github.com/acme/bench".to_owned(), user: "bench".to_owned() };
    PgStore::connect(&DatabaseUrl::parse(url).unwrap(), identity, &PgOptions::default()).unwrap()
}

fn main() {
    let cluster = PgCluster::start();
    println!("# Shared-store benchmarks\n");
    println!(
        "## Budget reservations under contention (limit {LIMIT} micros, {COST} per reservation, {ATTEMPTS} attempts per handle)\n"
    );
    println!("| engine | handles | reservations/s | committed spend | limit | allowed | refused |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for handles in [1, 2, 4, 8] {
        for engine in [Engine::Sqlite(tempfile::tempdir().unwrap()), Engine::Postgres(cluster.database())] {
            reservations(&engine, handles);
        }
    }
    println!("\n## No-op task claims ({TASKS} tasks, claim then done)\n");
    println!("| engine | handles | tasks/s | claim p50 | claim p95 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for handles in [1, 2, 4] {
        for engine in [Engine::Sqlite(tempfile::tempdir().unwrap()), Engine::Postgres(cluster.database())] {
            claims(&engine, handles);
        }
    }
}

fn reservations(engine: &Engine, handles: usize) {
    let barrier = Arc::new(Barrier::new(handles + 1));
    let workers: Vec<_> = (0..handles)
        .map(|h| {
            let ledger = engine.ledger();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut allowed = 0;
                for i in 0..ATTEMPTS {
                    let call = ProviderCall {
                        id: format!("{h}-{i}"),
                        at_ms: 1_000,
                        provider: "p".to_owned(),
                        model: "m".to_owned(),
                        fingerprint: None,
                        category: None,
                        status: CallStatus::Reserved,
                        reserved_micros: COST,
                        input_tokens: 0,
                        output_tokens: 0,
                        cached_input_tokens: 0,
                        cost_micros: 0,
                        latency_ms: None,
                        error: None,
                        user: None,
                        agent: None,
                    };
                    let allow: acas::store::Allow = Box::new(|spending: acas::store::Spending| {
                        let acas::store::Spending::Recorded(spent) = spending else {
                            return Err("offline".into());
                        };
                        if spent.workspace_day + COST > LIMIT { Err("over".to_owned()) } else { Ok(()) }
                    });
                    allowed += usize::from(ledger.reserve(call, 0, 0, allow).unwrap().is_ok());
                }
                allowed
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let allowed: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = start.elapsed();
    let spent = engine.ledger().spend_since(0, None).unwrap();
    let attempts = handles * ATTEMPTS;
    println!(
        "| {} | {handles} | {:.0} | {spent} | {LIMIT} | {allowed} | {} |",
        engine.name(),
        attempts as f64 / elapsed.as_secs_f64(),
        attempts - allowed
    );
    assert!(spent <= LIMIT, "the limit was passed");
}

fn claims(engine: &Engine, handles: usize) {
    let clock = ManualClock::starting_at(1_000_000);
    {
        let mut queue = engine.tasks(&clock);
        for i in 0..TASKS {
            queue.create(&NewTask::titled(&format!("t{i}"))).unwrap();
        }
    }
    let barrier = Arc::new(Barrier::new(handles + 1));
    let workers: Vec<_> = (0..handles)
        .map(|h| {
            let mut queue = engine.tasks(&clock);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let agent = format!("worker-{h}");
                let request = ClaimRequest {
                    agent: agent.clone(),
                    labels: Vec::new(),
                    ttl: Duration::from_secs(60),
                    task: None,
                };
                let mut latencies = Vec::new();
                barrier.wait();
                loop {
                    let start = Instant::now();
                    let claim = queue.claim(&request).unwrap();
                    latencies.push(start.elapsed());
                    let Claim::Claimed(task) = claim else { return latencies };
                    queue.done(task.id, &agent).unwrap();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut latencies: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "| {} | {handles} | {:.0} | {:.2} ms | {:.2} ms |",
        engine.name(),
        TASKS as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0
    );
}
