//! Workflow steps on workers: the step queue on a real PostgreSQL cluster
//! (`acas_e2e::postgres`), then real `acas worker` processes in clones of one repository
//! running the steps of runs started by `acas workflow run` in another clone.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use acas::store::postgres::steps::{AttemptState, StepJob, StepResult};
use acas::store::{DatabaseUrl, Identity, PgOptions, PgStore};
use acas_e2e::postgres::PgCluster;

const REPOSITORY: &str = "github.com/acme/shapes";
const LEASE: Duration = Duration::from_secs(30);

fn store(url: &str, repository: &str) -> PgStore {
    let identity = Identity { repository: repository.to_owned(), user: "ada@example.com".to_owned() };
    PgStore::connect(&DatabaseUrl::parse(url).unwrap(), identity, &PgOptions::default()).unwrap()
}

fn job(run: &str, step: &str, labels: &[&str]) -> StepJob {
    StepJob {
        run_key: run.to_owned(),
        step_id: step.to_owned(),
        attempt: 1,
        argv: vec!["true".to_owned()],
        env: BTreeMap::from([("A".to_owned(), "b".to_owned())]),
        cwd: String::new(),
        timeout_ms: Some(5_000),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        agent: "cli".to_owned(),
    }
}

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn ok() -> StepResult {
    StepResult { succeeded: true, exit_code: Some(0), output: Some("{}".to_owned()), error: None }
}

#[test]
fn step_queue_routes_by_labels_and_repository_and_reclaims_ended_leases_once() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let driver = store(&url, REPOSITORY);
    let worker = store(&url, REPOSITORY);
    let other_repository = store(&url, "github.com/acme/other");

    let plain = driver.enqueue_step(&job("run-1", "build", &[]), 1_000).unwrap();
    let gpu = driver.enqueue_step(&job("run-1", "train", &["linux", "gpu"]), 1_000).unwrap();
    // Queuing the same attempt again (a driver that restarted) finds the one queued.
    assert_eq!(driver.enqueue_step(&job("run-1", "build", &[]), 1_001).unwrap(), plain);

    // Another repository's worker sees none of them.
    assert!(other_repository.claim_steps("elsewhere", &labels(&["linux", "gpu"]), 10, LEASE, 1_000).unwrap().is_empty());
    // A linux worker takes the plain step only: `gpu` is not among its labels.
    let claimed = worker.claim_steps("w-linux", &labels(&["linux"]), 10, LEASE, 1_000).unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![plain]);
    assert_eq!(claimed[0].job, job("run-1", "build", &[]), "the job travels whole");
    assert_eq!(claimed[0].claims, 1);
    // The gpu step goes to a worker that has both labels (and more).
    let claimed = worker.claim_steps("w-gpu", &labels(&["gpu", "linux", "cuda"]), 10, LEASE, 1_000).unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![gpu]);

    // Heartbeats extend the lease: at 20 s past its first lease the step is still held.
    assert!(worker.heartbeat_step(plain, "w-linux", LEASE, 25_000).unwrap());
    assert!(worker.claim_steps("w-late", &labels(&["linux"]), 10, LEASE, 40_000).unwrap().is_empty());
    // Without heartbeats the lease runs out: another worker claims the attempt, whose number
    // stays the driver's; the first holder can no longer heartbeat or report.
    let again = worker.claim_steps("w-late", &labels(&["linux"]), 10, LEASE, 60_000).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].job.attempt, again[0].claims), (plain, 1, 2));
    assert!(!worker.heartbeat_step(plain, "w-linux", LEASE, 60_001).unwrap());
    assert!(!worker.finish_step(plain, "w-linux", &ok(), 60_002).unwrap());
    assert!(matches!(driver.step_state(plain).unwrap(), AttemptState::Claimed { ref worker, claims: 2, .. } if worker == "w-late"));
    assert!(worker.finish_step(plain, "w-late", &ok(), 60_003).unwrap());
    assert_eq!(driver.step_state(plain).unwrap(), AttemptState::Done { result: ok(), worker: "w-late".into() });
    // A finished attempt is never claimed again, and its result is recorded once.
    assert!(worker.claim_steps("w-late", &labels(&["linux"]), 10, LEASE, 999_999).unwrap().is_empty());
    assert!(!worker.finish_step(plain, "w-late", &StepResult { succeeded: false, ..ok() }, 60_004).unwrap());
    assert_eq!(driver.enqueue_step(&job("run-1", "build", &[]), 70_000).unwrap(), plain);
    assert!(matches!(driver.step_state(plain).unwrap(), AttemptState::Done { .. }));

    // A released attempt goes back to the queue; a cancelled one is out of it, and its holder
    // hears so at its next heartbeat.
    assert!(worker.release_step(gpu, "w-gpu", 2_000).unwrap());
    assert_eq!(driver.step_state(gpu).unwrap(), AttemptState::Queued);
    let claimed = worker.claim_steps("w-gpu", &labels(&["gpu", "linux"]), 10, LEASE, 2_000).unwrap();
    assert_eq!(claimed.len(), 1);
    driver.cancel_step(gpu, 2_001).unwrap();
    assert!(!worker.heartbeat_step(gpu, "w-gpu", LEASE, 2_002).unwrap());
    assert_eq!(driver.step_state(gpu).unwrap(), AttemptState::Cancelled);
    assert_eq!(driver.step_state(987_654).unwrap(), AttemptState::Missing);
}

#[test]
fn workers_are_connected_while_their_lease_holds() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let a = store(&url, REPOSITORY);
    let elsewhere = store(&url, "github.com/acme/other");
    a.worker_heartbeat("laptop:1", &labels(&["linux"]), "laptop", LEASE, 1_000).unwrap();
    a.worker_heartbeat("gpu-box:7", &labels(&["linux", "gpu"]), "gpu-box", LEASE, 20_000).unwrap();
    elsewhere.worker_heartbeat("other:1", &labels(&["linux"]), "other", LEASE, 20_000).unwrap();
    let names = |now| a.connected_workers(now).unwrap().into_iter().map(|w| w.name).collect::<Vec<_>>();
    assert_eq!(names(2_000), vec!["gpu-box:7", "laptop:1"]);
    assert_eq!(names(31_000), vec!["gpu-box:7"], "the laptop's lease ran out");
    a.worker_heartbeat("laptop:1", &labels(&["linux"]), "laptop", LEASE, 31_000).unwrap();
    assert_eq!(names(31_001), vec!["gpu-box:7", "laptop:1"], "a heartbeat connects it again");
    let gpu = a.connected_workers(31_001).unwrap().remove(0);
    assert_eq!((gpu.labels, gpu.host), (labels(&["linux", "gpu"]), "gpu-box".to_owned()));
    a.worker_gone("gpu-box:7").unwrap();
    assert_eq!(names(31_002), vec!["laptop:1"]);
}

#[test]
fn racing_workers_claim_each_attempt_once() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let driver = store(&url, REPOSITORY);
    let steps = 200;
    let mut queued: Vec<i64> =
        (0..steps).map(|i| driver.enqueue_step(&job("run-9", &format!("s{i}"), &[]), 1_000).unwrap()).collect();
    let workers = 6;
    let start = Arc::new(Barrier::new(workers));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let url = url.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let store = store(&url, REPOSITORY);
                let name = format!("w{w}");
                let mut mine = Vec::new();
                start.wait();
                loop {
                    let claimed = store.claim_steps(&name, &[], 3, LEASE, 1_000).unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    for c in claimed {
                        assert!(store.finish_step(c.id, &name, &ok(), 1_001).unwrap());
                        mine.push(c.id);
                    }
                }
            })
        })
        .collect();
    let mut done: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    done.sort();
    queued.sort();
    assert_eq!(done, queued, "every attempt was claimed and finished exactly once");
}
