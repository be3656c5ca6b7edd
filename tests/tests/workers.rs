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
        idempotent: true,
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
    assert!(
        other_repository
            .claim_steps("elsewhere", &labels(&["linux", "gpu"]), 10, LEASE, 1_000)
            .unwrap()
            .is_empty()
    );
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
    assert!(
        matches!(driver.step_state(plain).unwrap(), AttemptState::Claimed { ref worker, claims: 2, .. } if worker == "w-late")
    );
    assert!(worker.finish_step(plain, "w-late", &ok(), 60_003).unwrap());
    assert_eq!(
        driver.step_state(plain).unwrap(),
        AttemptState::Done { result: ok(), worker: "w-late".into() }
    );
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

    // A step that must not run twice is failed, not claimed again, when its worker stops.
    let once =
        driver.enqueue_step(&StepJob { idempotent: false, ..job("run-2", "deploy", &[]) }, 3_000).unwrap();
    assert_eq!(worker.claim_steps("w-1", &[], 10, LEASE, 3_000).unwrap().len(), 1);
    driver.expire_step(once, 4_000).unwrap();
    assert!(
        matches!(driver.step_state(once).unwrap(), AttemptState::Claimed { .. }),
        "its lease still holds"
    );
    assert!(worker.claim_steps("w-2", &[], 10, LEASE, 90_000).unwrap().is_empty());
    match driver.step_state(once).unwrap() {
        AttemptState::Done { result, .. } => {
            assert!(!result.succeeded);
            assert!(result.error.unwrap().contains("idempotent: false"));
        }
        other => panic!("{other:?}"),
    }
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
    let mut queued: Vec<i64> = (0..steps)
        .map(|i| driver.enqueue_step(&job("run-9", &format!("s{i}"), &[]), 1_000).unwrap())
        .collect();
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

/// The database name of a cluster URL.
fn database_name(url: &str) -> &str {
    let path = url.rsplit('/').next().unwrap();
    path.split('?').next().unwrap()
}

#[test]
fn an_unreadable_queue_row_fails_its_attempt_and_never_stops_a_worker_or_a_driver() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let db = database_name(&url);
    let worker = store(&url, REPOSITORY);
    // Rows that another program (or another version) wrote: a NULL inside argv, an
    // environment that is not an object, and a worker whose labels hold a NULL.
    cluster.psql(
        db,
        &format!(
            "INSERT INTO step_attempt (repository, run_key, step_id, attempt, argv, env, cwd, timeout_ms, labels,
                 agent, idempotent, state, created_ms, updated_ms)
             VALUES ('{REPOSITORY}', 'evil', 'nullargv', 1, '{{NULL}}', '{{}}', '', 1000, '{{}}', 'cli', true, 'queued', 0, 0),
                    ('{REPOSITORY}', 'evil', 'badenv', 1, '{{true}}', '[1,2]', '', 1000, '{{}}', 'cli', true, 'queued', 0, 0);
             INSERT INTO step_worker (name, repository, labels, host, started_ms, heartbeat_ms, lease_until_ms)
             VALUES ('badrow', '{REPOSITORY}', '{{NULL}}', 'h', 0, 0, 9999999999999)"
        ),
    );
    let good = worker.enqueue_step(&job("run-1", "build", &[]), 1_000).unwrap();
    let claimed = worker.claim_steps("w-1", &[], 10, LEASE, 1_000).unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![good],
        "only the readable attempt runs"
    );
    for (step, column) in [("nullargv", "argv"), ("badenv", "env")] {
        let id: i64 = cluster
            .psql(db, &format!("SELECT id FROM step_attempt WHERE step_id = '{step}'"))
            .parse()
            .unwrap();
        match worker.step_state(id).unwrap() {
            AttemptState::Done { result, .. } => {
                assert!(!result.succeeded);
                let error = result.error.unwrap();
                assert!(error.contains(&format!("column {column}")), "{error}");
            }
            other => panic!("{step}: {other:?}"),
        }
    }
    assert!(worker.finish_step(good, "w-1", &ok(), 1_001).unwrap());
    // Failed, they are never claimed again, whatever the lease.
    assert!(worker.claim_steps("w-2", &[], 10, LEASE, 999_999).unwrap().is_empty());
    // A driver asking which workers are connected skips the unreadable one.
    worker.worker_heartbeat("good:1", &labels(&["linux"]), "good", LEASE, 1_000).unwrap();
    let names: Vec<String> = worker.connected_workers(2_000).unwrap().into_iter().map(|w| w.name).collect();
    assert_eq!(names, vec!["good:1"]);
}

#[test]
fn a_result_holding_nul_bytes_is_recorded() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let worker = store(&url, REPOSITORY);
    let id = worker.enqueue_step(&job("run-1", "binary", &[]), 1_000).unwrap();
    assert_eq!(worker.claim_steps("w-1", &[], 10, LEASE, 1_000).unwrap().len(), 1);
    let result = StepResult {
        succeeded: false,
        exit_code: Some(3),
        output: Some("bad\0byte".to_owned()),
        error: Some("exited with code 3: bad\0byte".to_owned()),
    };
    assert!(worker.finish_step(id, "w-1", &result, 2_000).unwrap());
    match worker.step_state(id).unwrap() {
        AttemptState::Done { result, .. } => {
            assert_eq!(result.exit_code, Some(3));
            assert_eq!(result.error.as_deref(), Some("exited with code 3: bad\u{FFFD}byte"));
            assert_eq!(result.output.as_deref(), Some("bad\u{FFFD}byte"));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Real processes: `acas worker` in clones, `acas workflow run` in another.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use acas_e2e::{TIMEOUT, acas_bin};

/// A clone of the team's repository (remote `remote`) holding `workflows` (name, text).
fn clone(remote: &str, workflows: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    for (name, text) in workflows {
        std::fs::write(root.join(format!(".acas/workflows/{name}.yaml")), text).unwrap();
    }
    std::fs::write(root.join("README.md"), "shapes\n").unwrap();
    acas_e2e::git(root, &["init", "-q"]);
    acas_e2e::git(root, &["config", "user.email", "ada@example.com"]);
    acas_e2e::git(root, &["remote", "add", "origin", remote]);
    acas_e2e::git(root, &["add", "."]);
    acas_e2e::git(root, &["commit", "-q", "-m", "Start"]);
    dir
}

fn acas(root: &Path, url: Option<&str>) -> Command {
    let mut command = Command::new(acas_bin());
    command
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env("XDG_CACHE_HOME", acas_e2e::tests_cache_home())
        .env_remove("ACAS_DATABASE_URL");
    if let Some(url) = url {
        command.env("ACAS_DATABASE_URL", url);
    }
    command
}

/// A running process whose stdout and stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Running { child, lines, seen: Vec::new() }
    }

    /// Waits (at most [`TIMEOUT`]) for a line that holds `needle`.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with `{needle}` came; seen:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the process to end; returns its exit code and every line it printed.
    fn finish(mut self) -> (i32, Vec<String>) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), self.seen)
    }

    fn stop(mut self) -> (i32, Vec<String>) {
        // SIGTERM: a clean stop.
        signal(self.child.id(), "-TERM");
        let _ = &mut self.child;
        self.finish()
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// `acas worker` in `root` with `labels`, once it is connected.
fn worker(cluster: &PgCluster, url: &str, root: &Path, labels: &str, extra: &[&str]) -> Running {
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    // The schema is made by the first connection.
    drop(store(url, REPOSITORY));
    let before: usize = cluster.psql(&db, "SELECT count(*) FROM step_worker").parse().unwrap_or(0);
    let mut command = acas(root, Some(url));
    command.args(["worker", "--labels", labels]).args(extra);
    let mut running = Running::start(command);
    running.expect("worker ");
    // Connected once its row is there.
    let deadline = Instant::now() + TIMEOUT;
    while cluster.psql(&db, "SELECT count(*) FROM step_worker").parse::<usize>().unwrap() <= before {
        assert!(Instant::now() < deadline, "the worker never registered");
    }
    running
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The run's stdout without its duration (`run 1 succeeded in 0.2s`).
fn without_times(stdout: &str) -> String {
    stdout
        .lines()
        .map(|l| match l.find(" succeeded in ") {
            Some(at) => &l[..at + " succeeded".len()],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const BUILD: &str = r#"name: build
steps:
  - id: mark
    run:
      shell: "echo built > where.txt; printf '%s\n' \"$GREETING\""
      env: { GREETING: "hello from {{ workflow.name }}" }
  - id: after
    needs: [mark]
    run: ["printf", "%s", "{{ steps.mark.output.stdout }}"]
"#;

#[test]
fn a_worker_in_another_clone_runs_the_steps_of_a_cli_run_and_prints_the_same() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("build", BUILD)]);
    let server = clone("git@github.com:acme/shapes.git", &[("build", BUILD)]);
    let alone = clone("https://github.com/acme/shapes.git", &[("build", BUILD)]);

    // With no worker connected, a run with a shared store runs here, as without one.
    let local = acas(alone.path(), None).args(["workflow", "run", "build"]).output().unwrap();
    assert_eq!(local.status.code(), Some(0), "{}", String::from_utf8_lossy(&local.stderr));
    let shared_alone = acas(alone.path(), Some(&url)).args(["workflow", "run", "build"]).output().unwrap();
    assert_eq!(shared_alone.status.code(), Some(0), "{}", String::from_utf8_lossy(&shared_alone.stderr));
    assert_eq!(lines_of(&alone.path().join("where.txt")), vec!["built"]);
    let local = String::from_utf8_lossy(&local.stdout).into_owned();
    assert!(local.contains("succeeded  after (1 attempt): hello from build"), "{local}");

    let w = worker(&cluster, &url, server.path(), "linux", &[]);
    let remote = acas(laptop.path(), Some(&url)).args(["workflow", "run", "build"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert_eq!(remote.status.code(), Some(0), "{stderr}");
    let remote_stdout = String::from_utf8_lossy(&remote.stdout).into_owned();
    assert_eq!(without_times(&remote_stdout), without_times(&local), "the same result as a local run");
    // The side effect is in the worker's clone, not in the clone that started the run.
    assert_eq!(lines_of(&server.path().join("where.txt")), vec!["built"]);
    assert!(!laptop.path().join("where.txt").exists());
    let (code, lines) = w.stop();
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("succeeded  mark (attempt 1)")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("worker stopped")), "{lines:?}");
    // `--local` runs here though a worker is connected.
    let w = worker(&cluster, &url, server.path(), "linux", &[]);
    let forced =
        acas(laptop.path(), Some(&url)).args(["workflow", "run", "build", "--local"]).output().unwrap();
    assert_eq!(forced.status.code(), Some(0));
    assert_eq!(lines_of(&laptop.path().join("where.txt")), vec!["built"]);
    assert_eq!(lines_of(&server.path().join("where.txt")), vec!["built"], "the worker did not run it");
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert_eq!(
        cluster.psql(db, "SELECT count(*), sum(claims) FROM step_attempt WHERE state = 'done'"),
        "2|2"
    );
    drop(w.stop());
}

#[test]
fn a_worker_refuses_a_clone_without_a_remote_or_a_shared_store() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    acas_e2e::git(dir.path(), &["init", "-q"]);
    let out = acas(dir.path(), Some(&url)).args(["worker"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no remote"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = acas(dir.path(), None).args(["worker"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ACAS_DATABASE_URL"));
}

const ROUTED: &str = r#"name: routed
runs_on: [linux]
steps:
  - id: anywhere
    run: { shell: "echo anywhere > ran-anywhere.txt" }
  - id: train
    needs: [anywhere]
    runs_on: [gpu, linux]
    run: { shell: "echo trained > ran-train.txt" }
"#;

#[test]
fn steps_go_only_to_workers_with_their_labels_and_wait_for_one() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("routed", ROUTED)]);
    let cpu = clone("https://github.com/acme/shapes.git", &[("routed", ROUTED)]);
    let gpu = clone("https://github.com/acme/shapes.git", &[("routed", ROUTED)]);

    let cpu_worker = worker(&cluster, &url, cpu.path(), "linux", &[]);
    let mut command = acas(laptop.path(), Some(&url));
    command.args(["workflow", "run", "routed"]);
    let mut run = Running::start(command);
    // The linux worker runs the first step; the gpu step waits, and the run says so.
    let waiting = run.expect("waiting    train");
    assert!(waiting.contains("labels gpu, linux"), "{waiting}");
    assert_eq!(lines_of(&cpu.path().join("ran-anywhere.txt")), vec!["anywhere"]);
    let gpu_worker = worker(&cluster, &url, gpu.path(), "linux,gpu", &["--concurrency", "2"]);
    let (code, lines) = run.finish();
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines_of(&gpu.path().join("ran-train.txt")), vec!["trained"]);
    assert!(!cpu.path().join("ran-train.txt").exists(), "the gpu step went to a worker without `gpu`");
    assert!(!laptop.path().join("ran-train.txt").exists());
    assert!(!laptop.path().join("ran-anywhere.txt").exists());
    drop(cpu_worker.stop());
    drop(gpu_worker.stop());
}

fn hold_workflow(control: &Path) -> String {
    let c = control.display();
    format!(
        r#"name: hold
steps:
  - id: before
    run: {{ shell: "echo once >> {c}/before" }}
  - id: hold
    needs: [before]
    run:
      shell: "echo $$ >> {c}/started; while [ ! -e {c}/release ]; do sleep 0.02; done; echo done >> {c}/finished"
"#
    )
}

#[test]
fn a_step_whose_worker_is_killed_is_reclaimed_and_no_completed_step_runs_twice() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let control = tempfile::tempdir().unwrap();
    let text = hold_workflow(control.path());
    let laptop = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);
    let first = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);
    let second = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);

    let mut doomed = worker(&cluster, &url, first.path(), "linux", &["--lease", "2s"]);
    let mut command = acas(laptop.path(), Some(&url));
    command.args(["workflow", "run", "hold"]);
    let run = Running::start(command);
    let started = control.path().join("started");
    let wait_lines = |path: &PathBuf, n: usize| {
        let deadline = Instant::now() + TIMEOUT;
        while lines_of(path).len() < n {
            assert!(Instant::now() < deadline, "{} never had {n} lines", path.display());
            std::thread::yield_now();
        }
    };
    wait_lines(&started, 1);
    doomed.expect("started    hold");
    doomed.child.kill().unwrap(); // SIGKILL
    doomed.child.wait().unwrap();

    // Another worker takes the attempt once the dead one's lease has run out.
    let mut rescuer = worker(&cluster, &url, second.path(), "linux", &["--lease", "2s"]);
    let line = rescuer.expect("started    hold");
    assert!(line.contains("attempt 1, claim 2"), "{line}");
    wait_lines(&started, 2);
    std::fs::write(control.path().join("release"), "").unwrap();
    let (code, lines) = run.finish();
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("succeeded  hold (1 attempt)")), "{lines:?}");
    assert_eq!(lines_of(&control.path().join("before")), vec!["once"], "a completed step ran again");
    assert_eq!(lines_of(&control.path().join("finished")), vec!["done"], "the step completed once");
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert_eq!(
        cluster.psql(db, "SELECT step_id, attempt, claims, state FROM step_attempt ORDER BY id"),
        "before|1|1|done\nhold|1|2|done"
    );
    drop(rescuer.stop());
}

const GPU_ONLY: &str = r#"name: gpu-only
steps:
  - id: train
    runs_on: gpu
    timeout: 1s
    run: { shell: "echo trained > ran-train.txt" }
"#;

#[test]
fn a_step_no_connected_worker_can_take_fails_at_its_timeout_and_leaves_the_queue() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("gpu-only", GPU_ONLY)]);
    let cpu = clone("https://github.com/acme/shapes.git", &[("gpu-only", GPU_ONLY)]);
    let cpu_worker = worker(&cluster, &url, cpu.path(), "linux", &[]);
    let out = acas(laptop.path(), Some(&url)).args(["workflow", "run", "gpu-only"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("waiting    train: waiting for a worker with labels gpu"), "{stderr}");
    assert!(stdout.contains("failed     train (1 attempt): timed out after 1s"), "{stdout}");
    assert!(!laptop.path().join("ran-train.txt").exists() && !cpu.path().join("ran-train.txt").exists());
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert_eq!(cluster.psql(db, "SELECT state FROM step_attempt"), "cancelled");
    drop(cpu_worker.stop());
}

const ON_CHANGE: &str = r#"name: on-change
on:
  file_change: { paths: ["src/*.txt"], events: [created], debounce: 10ms }
steps:
  - id: record
    run: ["sh", "-c", "printf '%s\n' \"$1\" >> seen.log", "sh", "{{ trigger.path }}"]
"#;

#[test]
fn a_run_started_by_a_trigger_in_acas_watch_sends_its_step_to_a_worker() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("on-change", ON_CHANGE)]);
    let server = clone("https://github.com/acme/shapes.git", &[("on-change", ON_CHANGE)]);
    std::fs::create_dir_all(laptop.path().join("src")).unwrap();
    let w = worker(&cluster, &url, server.path(), "", &[]);
    let home = acas_e2e::trusting_config_home();
    acas_e2e::trust(laptop.path(), &home);
    let mut command = acas(laptop.path(), Some(&url));
    command.args(["watch", "--format", "json", "."]).env("XDG_CONFIG_HOME", &home).env("ACAS_LOG", "info");
    let mut watch = Running::start(command);
    watch.expect("\"scan\"");
    std::fs::write(laptop.path().join("src/new.txt"), "hi\n").unwrap();
    let seen = server.path().join("seen.log");
    let deadline = Instant::now() + TIMEOUT;
    while lines_of(&seen).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the worker never ran the triggered step; watch said:\n{}",
            watch.seen.join("\n")
        );
        std::thread::yield_now();
    }
    assert_eq!(lines_of(&seen), vec!["src/new.txt"]);
    assert!(!laptop.path().join("seen.log").exists(), "the step ran in the clone that watched");
    // The run, in the watching clone's history, succeeded.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let out =
            acas(laptop.path(), None).args(["workflow", "history", "--format", "json"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("\"succeeded\"") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never succeeded: {text}");
    }
    let _ = watch.child.kill();
    let _ = watch.child.wait();
    drop(w.stop());
}

#[test]
fn a_result_that_ends_while_the_store_is_down_is_recorded_once_it_is_back() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let control = tempfile::tempdir().unwrap();
    let text = hold_workflow(control.path());
    let laptop = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);
    let box_ = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);
    let mut w = worker(&cluster, &url, box_.path(), "linux", &["--lease", "10s"]);
    let mut command = acas(laptop.path(), Some(&url));
    command.args(["workflow", "run", "hold"]);
    let run = Running::start(command);
    w.expect("started    hold");
    // The step ends while the database is down: its result cannot be recorded yet.
    cluster.stop();
    std::fs::write(control.path().join("release"), "").unwrap();
    let finished = control.path().join("finished");
    let deadline = Instant::now() + TIMEOUT;
    while lines_of(&finished).is_empty() {
        assert!(Instant::now() < deadline, "the step never ended");
        std::thread::yield_now();
    }
    cluster.start_again();
    let (code, lines) = run.finish();
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("succeeded  hold (1 attempt)")), "{lines:?}");
    assert_eq!(lines_of(&finished), vec!["done"], "the step ran again");
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert_eq!(
        cluster.psql(db, "SELECT step_id, claims, state FROM step_attempt ORDER BY id"),
        "before|1|done\nhold|1|done"
    );
    drop(w.stop());
}

const LEAK: &str = r#"name: leak
steps:
  - id: env
    run: ["sh", "-c", "echo \"store=[$ACAS_DATABASE_URL]\""]
"#;

#[test]
fn a_step_on_a_worker_does_not_get_the_workers_store_url() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("leak", LEAK)]);
    let box_ = clone("https://github.com/acme/shapes.git", &[("leak", LEAK)]);
    let w = worker(&cluster, &url, box_.path(), "", &[]);
    let out = acas(laptop.path(), Some(&url)).args(["workflow", "run", "leak"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("store=[]"), "{stdout}");
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let stored = cluster.psql(db, "SELECT output FROM step_attempt");
    assert!(stored.contains("store=[]") && !stored.contains("postgres://"), "{stored}");
    drop(w.stop());
}

#[test]
fn a_worker_refuses_a_concurrency_of_zero_or_past_its_limit() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let box_ = clone("https://github.com/acme/shapes.git", &[]);
    for n in ["0", "10000"] {
        let out = acas(box_.path(), Some(&url)).args(["worker", "--concurrency", n]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("`--concurrency` must be between 1 and 256"), "{stderr}");
    }
}

#[test]
fn a_run_whose_cli_is_terminated_cancels_its_step_on_the_worker() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let control = tempfile::tempdir().unwrap();
    let text = hold_workflow(control.path());
    let laptop = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);
    let builder = clone("https://github.com/acme/shapes.git", &[("hold", &text)]);
    let mut remote = worker(&cluster, &url, builder.path(), "linux", &[]);
    let mut command = acas(laptop.path(), Some(&url));
    command.args(["workflow", "run", "hold"]);
    let run = Running::start(command);
    remote.expect("started    hold");
    let started = control.path().join("started");
    let deadline = Instant::now() + TIMEOUT;
    while lines_of(&started).is_empty() {
        assert!(Instant::now() < deadline, "the step never wrote its pid");
        std::thread::yield_now();
    }
    // As `timeout`, `kill` or a CI's cancel would: SIGTERM, not Ctrl-C.
    let (code, lines) = run.stop();
    assert_ne!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("cancelling run")), "{lines:?}");
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert_eq!(
        cluster.psql(db, "SELECT step_id, state FROM step_attempt ORDER BY id"),
        "before|done\nhold|cancelled",
        "the attempt is taken off the queue"
    );
    // The worker ends the command it ran for the cancelled attempt.
    let pid = lines_of(&started).first().cloned().expect("the step wrote its pid");
    let deadline = Instant::now() + TIMEOUT;
    while Path::new("/proc").join(&pid).exists() {
        assert!(Instant::now() < deadline, "the step's shell {pid} still runs after its run was cancelled");
        std::thread::yield_now();
    }
    std::fs::write(control.path().join("release"), "").unwrap();
    drop(remote.stop());
    assert!(
        lines_of(&control.path().join("finished")).is_empty(),
        "the step ran on after the run was cancelled"
    );
}
