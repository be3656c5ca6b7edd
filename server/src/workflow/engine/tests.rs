use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, json};
use tokio::sync::mpsc;

use super::tests_support::{argv_step, workflow};
use super::*;
use crate::workflow::definition::{Concurrency, RetryPolicy, SkippedNeeds, Step, StepKind, Workflow};
use crate::workflow::planner::tests::{Scripted, reply};
use crate::workflow::state::StateDb;

/// How long a test waits for any one event.
const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    dir: tempfile::TempDir,
    engine: Engine,
    events: mpsc::UnboundedReceiver<RunEvent>,
}

/// Definitions are "parsed" back from a registry keyed by their source text.
fn registry() -> Arc<Mutex<HashMap<String, Workflow>>> {
    Arc::new(Mutex::new(HashMap::new()))
}

fn harness_with(registry: Arc<Mutex<HashMap<String, Workflow>>>, history: WorkflowHistory) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let parse: ParseFn = Arc::new(move |_: &Path, source: &str| {
        registry.lock().unwrap().get(source).cloned().ok_or_else(|| {
            WorkflowError::new(WorkflowErrorKind::Definition, format!("unknown definition {source}"))
        })
    });
    let mut options = EngineOptions::new(dir.path().to_owned(), parse);
    options.events = Some(tx);
    options.history = history;
    options.poll_interval = Duration::from_millis(20);
    let engine = Engine::open(options).unwrap();
    Harness { dir, engine, events }
}

fn manual() -> Trigger {
    Trigger::Manual { source: crate::workflow::triggers::ManualSource::Cli, agent: None, session: None }
}

fn harness() -> Harness {
    harness_with(registry(), WorkflowHistory::default())
}

impl Harness {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn run(&mut self, wf: &Workflow) -> (RunStatus, RunId) {
        let handle = self
            .engine
            .start(
                wf,
                &Trigger::FileChange { path: "a b;$(touch pwned)'.txt".into(), event: "modified".into() },
                &Map::new(),
            )
            .unwrap();
        let id = handle.id;
        (tokio::time::timeout(WAIT, handle.wait()).await.expect("the run ends"), id)
    }

    /// Waits for an event that `pick` accepts, skipping others.
    async fn wait_for(&mut self, what: &str, pick: impl Fn(&RunEvent) -> bool) -> RunEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) if pick(&event) => return event,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("no event: {what}"),
            }
        }
    }

    async fn wait_step(&mut self, step: &str, status: StepStatus) {
        self.wait_for(
            &format!("{step} {status:?}"),
            |e| matches!(e, RunEvent::Step { step: s, status: st, .. } if s == step && *st == status),
        )
        .await;
    }

    /// `id status outcome attempts` per step.
    fn steps(&self, run: RunId) -> Vec<String> {
        self.engine
            .db()
            .steps(run)
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {}",
                    s.step_id,
                    s.status.as_str(),
                    s.outcome.map_or("-", Outcome::as_str),
                    s.attempts
                )
            })
            .collect()
    }
}

/// A step that appends its id to `file` and prints `out`.
fn append(h: &Harness, id: &str, needs: &[&str], file: &str) -> Step {
    let file = h.path(file);
    argv_step(id, needs, &["sh", "-c", "echo \"$1\" >> \"$2\"; printf %s \"$1\"", "sh", id, &file])
}

fn with_if(mut step: Step, condition: &str) -> Step {
    step.condition = Some(condition.to_owned());
    step
}

fn failing(id: &str, needs: &[&str]) -> Step {
    argv_step(id, needs, &["sh", "-c", "echo broken >&2; exit 4"])
}

#[tokio::test]
async fn a_dag_runs_in_dependency_order_with_outputs_in_templates() {
    let mut h = harness();
    let wf = workflow(vec![
        append(&h, "a", &[], "log"),
        append(&h, "b", &["a"], "log"),
        append(&h, "c", &["a"], "log"),
        argv_step(
            "d",
            &["b", "c"],
            &[
                "sh",
                "-c",
                "printf '%s+%s' \"$1\" \"$2\"",
                "sh",
                "{{ steps.b.output.stdout }}",
                "{{ steps.c.output.stdout }}",
            ],
        ),
        // The trigger path reaches the program as one argument, and a shell script quoted.
        argv_step("argv", &[], &["printf", "%s", "{{ trigger.path }}"]),
        Step {
            kind: StepKind::Shell {
                script: "printf %s {{ trigger.path }}".into(),
                env: [("WHO".to_owned(), "{{ run.id }}".to_owned())].into(),
                cwd: None,
            },
            ..argv_step("shell", &[], &[])
        },
    ]);
    let (status, run) = h.run(&wf).await;
    assert_eq!(status, RunStatus::Succeeded);
    let lines = h.lines("log");
    assert_eq!(lines[0], "a");
    assert_eq!(lines.len(), 3);
    let steps = h.engine.db().steps(run).unwrap();
    assert_eq!(steps[3].output.as_ref().unwrap()["stdout"], "b+c");
    assert_eq!(steps[4].output.as_ref().unwrap()["stdout"], "a b;$(touch pwned)'.txt");
    assert_eq!(steps[5].output.as_ref().unwrap()["stdout"], "a b;$(touch pwned)'.txt");
    assert!(!h.dir.path().join("pwned").exists());
    let record = h.engine.db().existing_run(run).unwrap();
    assert_eq!(record.definition_hash, wf.hash);
    assert!(record.finished_ms.is_some() && record.control.is_none());
}

/// Runs `steps` and compares the run's and the steps' final states.
async fn check(steps: impl FnOnce(&Harness) -> Vec<Step>, expected_run: RunStatus, expected: &[&str]) {
    let mut h = harness();
    let wf = workflow(steps(&h));
    let (status, run) = h.run(&wf).await;
    assert_eq!(h.steps(run), expected, "steps");
    assert_eq!(status, expected_run, "run");
}

#[tokio::test]
async fn conditions_and_outcomes() {
    // A failed need skips its dependents unless they ask for always() or failure(); an
    // independent step still runs.
    check(
        |h| {
            vec![
                failing("bad", &[]),
                append(h, "after", &["bad"], "log"),
                with_if(append(h, "cleanup", &["bad"], "log"), "always()"),
                with_if(append(h, "report", &["bad"], "log"), "failure()"),
                with_if(append(h, "only_ok", &["bad"], "log"), "success()"),
                append(h, "other", &[], "log"),
                append(h, "after_after", &["after"], "log"),
            ]
        },
        RunStatus::Failed,
        &[
            "bad failed failure 1",
            "after skipped skipped 0",
            "cleanup succeeded success 1",
            "report succeeded success 1",
            "only_ok skipped skipped 0",
            "other succeeded success 1",
            "after_after skipped skipped 0",
        ],
    )
    .await;

    // continue_on_error: the step fails with outcome `failure`, the run succeeds, dependents run,
    // and a template condition on the outcome sees it.
    check(
        |h| {
            let mut lint = failing("lint", &[]);
            lint.continue_on_error = true;
            vec![
                lint,
                append(h, "next", &["lint"], "log"),
                with_if(append(h, "review", &["lint"], "log"), "{{ steps.lint.outcome == 'failure' }}"),
                with_if(append(h, "praise", &["lint"], "log"), "steps.lint.outcome == 'success'"),
                with_if(append(h, "code", &["lint"], "log"), "{{ steps.lint.output.exit_code == 4 }}"),
            ]
        },
        RunStatus::Succeeded,
        &[
            "lint failed failure 1",
            "next succeeded success 1",
            "review succeeded success 1",
            "praise skipped skipped 0",
            "code succeeded success 1",
        ],
    )
    .await;

    // A skipped need skips the dependent, unless skipped_needs says it counts as success.
    check(
        |h| {
            let mut lenient = append(h, "lenient", &["never"], "log");
            lenient.skipped_needs = SkippedNeeds::Success;
            vec![
                with_if(append(h, "never", &[], "log"), "{{ inputs | length > 0 }}"),
                append(h, "strict", &["never"], "log"),
                lenient,
            ]
        },
        RunStatus::Succeeded,
        &["never skipped skipped 0", "strict skipped skipped 0", "lenient succeeded success 1"],
    )
    .await;

    // A template that cannot render fails its step without running or retrying it.
    check(
        |_| {
            let mut step = argv_step("typo", &[], &["echo", "{{ inputs.nobody }}"]);
            step.retry.attempts = 3;
            vec![step, with_if(argv_step("bad_if", &[], &["true"]), "steps.nothing.outcome == 'x'")]
        },
        RunStatus::Failed,
        &["typo failed failure 1", "bad_if failed failure 1"],
    )
    .await;
}

#[tokio::test]
async fn retries_back_off_and_count_attempts() {
    let mut h = harness();
    let counter = h.path("count");
    // Fails until its third attempt.
    let flaky = |id: &str, attempts: u32| {
        let mut step = argv_step(
            id,
            &[],
            &[
                "sh",
                "-c",
                "n=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$1\"; [ $n -ge 3 ]",
                "sh",
                &counter,
            ],
        );
        step.retry = RetryPolicy { attempts, delay: Duration::from_millis(10), ..RetryPolicy::default() };
        step
    };
    let (status, run) = h.run(&workflow(vec![flaky("flaky", 3)])).await;
    assert_eq!((status, h.steps(run)), (RunStatus::Succeeded, vec!["flaky succeeded success 3".to_owned()]));
    let retries: Vec<String> = h
        .engine
        .db()
        .audit(run)
        .unwrap()
        .iter()
        .filter(|a| a.step_id.is_some())
        .map(|a| format!("{} {}", a.status, a.attempt.unwrap()))
        .collect();
    assert_eq!(
        retries,
        ["pending 0", "running 1", "pending 1", "running 2", "pending 2", "running 3", "succeeded 3"]
    );

    std::fs::remove_file(&counter).unwrap();
    let (status, run) = h.run(&workflow(vec![flaky("flaky", 2)])).await;
    assert_eq!((status, h.steps(run)), (RunStatus::Failed, vec!["flaky failed failure 2".to_owned()]));
    let error = h.engine.db().existing_run(run).unwrap().error.unwrap();
    assert_eq!(error, "step `flaky` failed: `sh` exited with code 1");
}

#[tokio::test]
async fn step_and_run_timeouts() {
    let mut h = harness();
    let mut slow = argv_step("slow", &[], &["sleep", "30"]);
    slow.timeout = Some(Duration::from_millis(200));
    let (status, run) = h.run(&workflow(vec![slow])).await;
    assert_eq!(status, RunStatus::Failed);
    let step = &h.engine.db().steps(run).unwrap()[0];
    assert_eq!(step.error.as_deref(), Some("timed out after 200ms"));

    let mut wf =
        workflow(vec![argv_step("slow", &[], &["sleep", "30"]), argv_step("next", &["slow"], &["true"])]);
    wf.timeout = Some(Duration::from_millis(300));
    let (status, run) = h.run(&wf).await;
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(h.steps(run), ["slow cancelled cancelled 1", "next cancelled cancelled 0"]);
    assert_eq!(
        h.engine.db().existing_run(run).unwrap().error.as_deref(),
        Some("the run timed out after 300ms")
    );
}

#[tokio::test]
async fn cancel_kills_running_steps_and_runs_always_steps() {
    let mut h = harness();
    let wf = workflow(vec![
        argv_step("long", &[], &["sleep", "30"]),
        append(&h, "next", &["long"], "log"),
        with_if(append(&h, "cleanup", &["long"], "log"), "always()"),
        with_if(append(&h, "on_cancel", &["long"], "log"), "cancelled()"),
    ]);
    let handle = h.engine.start(&wf, &manual(), &Map::new()).unwrap();
    h.wait_step("long", StepStatus::Running).await;
    h.engine.cancel(handle.id).unwrap();
    let id = handle.id;
    assert_eq!(tokio::time::timeout(WAIT, handle.wait()).await.unwrap(), RunStatus::Cancelled);
    assert_eq!(
        h.steps(id),
        [
            "long cancelled cancelled 1",
            "next cancelled cancelled 0",
            "cleanup succeeded success 1",
            "on_cancel succeeded success 1"
        ]
    );
    assert!(h.engine.cancel(id).is_err(), "a finished run cannot be cancelled");
}

#[tokio::test]
async fn pause_lets_running_steps_finish_and_starts_nothing_until_resumed() {
    let mut h = harness();
    let gate = h.path("gate");
    let wf = workflow(vec![
        argv_step("first", &[], &["sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.01; done", "sh", &gate]),
        append(&h, "second", &["first"], "log"),
    ]);
    let handle = h.engine.start(&wf, &manual(), &Map::new()).unwrap();
    h.wait_step("first", StepStatus::Running).await;
    h.engine.pause(handle.id).unwrap();
    h.wait_for("paused", |e| matches!(e, RunEvent::Run { status: RunStatus::Paused, .. })).await;
    std::fs::write(&gate, "").unwrap();
    h.wait_step("first", StepStatus::Succeeded).await;
    assert_eq!(h.engine.db().existing_run(handle.id).unwrap().status, RunStatus::Paused);
    assert_eq!(h.steps(handle.id)[1], "second pending - 0");
    assert!(matches!(h.engine.resume(handle.id).unwrap(), Resumed::Continued { .. }));
    let id = handle.id;
    assert_eq!(tokio::time::timeout(WAIT, handle.wait()).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(h.steps(id)[1], "second succeeded success 1");
}

/// A run left behind by a killed process: `done` steps succeeded, `interrupted` left running.
fn orphan(db: &StateDb, wf: &Workflow, done: &[&str], interrupted: &str) -> RunId {
    let steps = wf
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut record = StepRecord::pending(&s.id, i);
            if done.contains(&s.id.as_str()) {
                record.status = StepStatus::Succeeded;
                record.outcome = Some(Outcome::Success);
                record.attempts = 1;
                record.output = Some(json!({"stdout": s.id}));
            } else if s.id == interrupted {
                record.status = StepStatus::Running;
                record.attempts = 1;
            }
            record
        })
        .collect();
    let new = NewRun {
        workflow: &wf.name,
        file: &wf.file,
        definition_hash: &wf.hash,
        definition: &wf.source,
        trigger: &json!({}),
        inputs: &json!({}),
        status: RunStatus::Running,
        concurrency_group: None,
        rerun_of: None,
        // A live pid, but a heartbeat long stale: the owner is gone.
        owner_pid: std::process::id() + 1,
        steps,
        fence: None,
        inbox: None,
    };
    db.create_run(&new, 1).unwrap()
}

#[tokio::test]
async fn interrupted_runs_resume_without_repeating_finished_steps() {
    let registry = registry();
    let mut h = harness_with(registry.clone(), WorkflowHistory::default());
    // One attempt only: running it again after the crash must not count as a retry.
    let b = append(&h, "b", &["a"], "log");
    let mut wf = workflow(vec![append(&h, "a", &[], "log"), b, append(&h, "c", &["b"], "log")]);
    wf.source = "idempotent".into();
    registry.lock().unwrap().insert(wf.source.clone(), wf.clone());
    let id = orphan(h.engine.db(), &wf, &["a"], "b");

    let mut single = wf.clone();
    single.source = "not idempotent".into();
    single.steps[1].idempotent = false;
    single.steps[1].retry = RetryPolicy { attempts: 3, ..RetryPolicy::default() };
    registry.lock().unwrap().insert(single.source.clone(), single.clone());
    let exhausted = orphan(h.engine.db(), &single, &["a"], "b");

    let handles = h.engine.resume_interrupted().unwrap();
    assert_eq!(handles.iter().map(|h| h.id).collect::<Vec<_>>(), [id, exhausted]);
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(tokio::time::timeout(WAIT, handle.wait()).await.unwrap());
    }
    assert_eq!(statuses, [RunStatus::Succeeded, RunStatus::Failed]);
    assert_eq!(h.steps(id), ["a succeeded success 1", "b succeeded success 1", "c succeeded success 1"]);
    assert_eq!(h.steps(exhausted), ["a succeeded success 1", "b failed failure 1", "c skipped skipped 0"]);
    let b = &h.engine.db().steps(exhausted).unwrap()[1];
    let error = b.error.as_deref().unwrap();
    assert!(error.starts_with("interrupted: the process running this step stopped"), "{error}");
    assert!(error.contains("`idempotent: false`"), "{error}");
    // `a` ran in neither: only b and c of the first run wrote.
    assert_eq!(h.lines("log"), ["b", "c"]);
    assert_eq!(h.engine.db().existing_run(id).unwrap().owner_pid, Some(std::process::id()));
    assert!(h.engine.resume_interrupted().unwrap().is_empty());
    let _ = &mut h;
}

#[tokio::test]
async fn a_failed_run_reruns_from_its_failed_step() {
    let registry = registry();
    let mut h = harness_with(registry.clone(), WorkflowHistory::default());
    let flag = h.path("fixed");
    let mut wf = workflow(vec![
        append(&h, "a", &[], "log"),
        argv_step("b", &["a"], &["test", "-e", &flag]),
        append(&h, "c", &["b"], "log"),
    ]);
    wf.source = "rerun".into();
    registry.lock().unwrap().insert(wf.source.clone(), wf.clone());
    let (status, first) = h.run(&wf).await;
    assert_eq!(status, RunStatus::Failed);
    std::fs::write(&flag, "").unwrap();
    let handle = h.engine.rerun(first).unwrap();
    let second = handle.id;
    assert_eq!(tokio::time::timeout(WAIT, handle.wait()).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(h.steps(second), ["a succeeded success 1", "b succeeded success 1", "c succeeded success 1"]);
    assert_eq!(h.lines("log"), ["a", "c"], "a was copied, not run again");
    assert_eq!(h.engine.db().existing_run(second).unwrap().rerun_of, Some(first));
    assert_eq!(h.engine.rerun(second).unwrap_err().kind, WorkflowErrorKind::State);
}

#[tokio::test]
async fn concurrency_groups_queue_or_cancel() {
    for cancel_in_progress in [false, true] {
        let mut h = harness();
        let gate = h.path("gate");
        let mut first = workflow(vec![argv_step(
            "wait",
            &[],
            &["sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.01; done", "sh", &gate],
        )]);
        first.concurrency =
            Some(Concurrency { group: "deploy-{{ trigger.body.env }}".into(), cancel_in_progress });
        let mut second = workflow(vec![append(&h, "after", &[], "log")]);
        second.concurrency = first.concurrency.clone();
        let hook = |env: &str| Trigger::Webhook {
            path: "/deploy".into(),
            body: json!({ "env": env }),
            headers: json!({}),
            event: None,
        };
        let trigger = hook("prod");
        let one = h.engine.start(&first, &trigger, &Map::new()).unwrap();
        h.wait_step("wait", StepStatus::Running).await;
        // Another group does not wait.
        let other = h.engine.start(&second, &hook("test"), &Map::new()).unwrap();
        assert_eq!(tokio::time::timeout(WAIT, other.wait()).await.unwrap(), RunStatus::Succeeded);
        let two = h.engine.start(&second, &trigger, &Map::new()).unwrap();
        let (one_id, two_id) = (one.id, two.id);
        if cancel_in_progress {
            assert_eq!(tokio::time::timeout(WAIT, one.wait()).await.unwrap(), RunStatus::Cancelled);
            assert_eq!(tokio::time::timeout(WAIT, two.wait()).await.unwrap(), RunStatus::Succeeded);
        } else {
            h.wait_for(
                "second run queued",
                |e| matches!(e, RunEvent::Run { run, status: RunStatus::Queued, .. } if *run == two_id),
            )
            .await;
            assert_eq!(h.engine.db().existing_run(two_id).unwrap().status, RunStatus::Queued);
            assert_eq!(h.lines("log"), ["after"], "only the other group's run wrote");
            std::fs::write(&gate, "").unwrap();
            assert_eq!(tokio::time::timeout(WAIT, one.wait()).await.unwrap(), RunStatus::Succeeded);
            assert_eq!(tokio::time::timeout(WAIT, two.wait()).await.unwrap(), RunStatus::Succeeded);
            let one_end = h.engine.db().existing_run(one_id).unwrap().finished_ms.unwrap();
            let two_start = h.engine.db().existing_run(two_id).unwrap().started_ms.unwrap();
            assert!(two_start >= one_end, "the queued run started after the first ended");
        }
        assert_eq!(h.lines("log"), ["after", "after"]);
    }
}

#[tokio::test]
async fn inputs_are_checked_and_history_is_pruned() {
    let mut h = harness_with(registry(), WorkflowHistory { keep_runs: 2, ..WorkflowHistory::default() });
    let mut wf = workflow(vec![argv_step("x", &[], &["echo", "{{ inputs.n }}"])]);
    wf.inputs.insert(
        "n".into(),
        crate::workflow::definition::InputSpec {
            kind: crate::workflow::definition::InputType::Number,
            description: None,
            default: None,
            required: true,
            options: vec![],
        },
    );
    let error = h.engine.start(&wf, &manual(), &Map::new()).err().unwrap();
    assert_eq!(error.kind, WorkflowErrorKind::Input);
    let inputs = json!({"n": 7}).as_object().unwrap().clone();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let handle = h.engine.start(&wf, &manual(), &inputs).unwrap();
        ids.push(handle.id);
        assert_eq!(tokio::time::timeout(WAIT, handle.wait()).await.unwrap(), RunStatus::Succeeded);
    }
    let kept: Vec<RunId> = h.engine.db().history(Some("test"), 10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(kept, [ids[2], ids[1]]);
    assert_eq!(h.engine.db().steps(ids[2]).unwrap()[0].output.as_ref().unwrap()["stdout"], "7\n");
    let _ = &mut h;
}

/// A planned run left running by a process that was killed after its first task: the engine of
/// the next process reads the stored definition back, and finishes without running it again.
#[tokio::test]
async fn a_planned_run_resumes_after_its_process_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, _) = {
        let ai = Scripted::new(vec![reply(&[
            json!({"id": "one", "name": "One", "description": "", "action": "run",
                   "with": {"argv": ["sh", "-c", "echo one >> log.txt"]}, "needs": [], "priority": 1}),
            json!({"id": "two", "name": "Two", "description": "", "action": "file.append",
                   "with": {"path": "log.txt", "content": "two\n"}, "needs": ["one"], "priority": 1}),
        ])]);
        (crate::workflow::planner::generate(&ai, "log twice", &CancellationToken::new()).await.unwrap(), ai)
    };
    let workflow = plan.to_workflow(dir.path(), "plan-resume").unwrap();
    std::fs::write(dir.path().join("log.txt"), "one\n").unwrap();

    let engine = Engine::open(EngineOptions::new(dir.path().to_owned(), definition_parser())).unwrap();
    let mut done = StepRecord::pending("one", 0);
    done.status = StepStatus::Succeeded;
    done.outcome = Some(Outcome::Success);
    done.attempts = 1;
    let new = NewRun {
        workflow: &workflow.name,
        file: &workflow.file,
        definition_hash: &workflow.hash,
        definition: &workflow.source,
        trigger: &json!({"type": "manual"}),
        inputs: &json!({}),
        status: RunStatus::Running,
        concurrency_group: None,
        rerun_of: None,
        owner_pid: std::process::id() + 1,
        steps: vec![done, StepRecord::pending("two", 1)],
        fence: None,
        inbox: None,
    };
    let id = engine.db().create_run(&new, 1).unwrap();
    let handles = engine.resume_interrupted().unwrap();
    assert_eq!(handles.iter().map(|h| h.id).collect::<Vec<_>>(), [id]);
    let status = tokio::time::timeout(Duration::from_secs(20), handles.into_iter().next().unwrap().wait())
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Succeeded);
    assert_eq!(std::fs::read_to_string(dir.path().join("log.txt")).unwrap(), "one\ntwo\n");
    let steps: Vec<(String, u32)> =
        engine.db().steps(id).unwrap().into_iter().map(|s| (s.step_id, s.attempts)).collect();
    assert_eq!(steps, [("one".to_owned(), 1), ("two".to_owned(), 1)]);
}

/// A cancel that finds a run between its commit and the start of its driver used to take it for
/// an orphan and cancel its steps in the store; the driver then found nothing to run and
/// recorded a success with a cancelled step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_the_start_of_a_run_never_records_a_success_with_cancelled_steps() {
    let h = harness();
    let wf = workflow(vec![argv_step("only", &[], &["true"])]);
    for _ in 0..40 {
        let next = h.engine.db().history(None, 1).unwrap().first().map_or(1, |r| r.id + 1);
        let canceller = {
            let engine = h.engine.clone();
            std::thread::spawn(move || {
                // Until the run exists: then one cancel, accepted or refused as already ended.
                for _ in 0..1_000_000 {
                    match engine.cancel(next) {
                        Err(e) if e.kind == WorkflowErrorKind::NotFound => std::hint::spin_loop(),
                        _ => return,
                    }
                }
            })
        };
        let handle = h.engine.start(&wf, &manual(), &Map::new()).unwrap();
        assert_eq!(handle.id, next);
        let status = tokio::time::timeout(WAIT, handle.wait()).await.expect("the run ends");
        canceller.join().unwrap();
        let steps = h.steps(next);
        match status {
            RunStatus::Succeeded => assert_eq!(steps, ["only succeeded success 1"], "run {next}"),
            RunStatus::Cancelled => {}
            other => panic!("run {next} ended {other:?}: {steps:?}"),
        }
    }
}
