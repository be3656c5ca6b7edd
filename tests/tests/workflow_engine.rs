//! The workflow engine through the real binary: a run killed with SIGKILL at several points and
//! resumed with `acas workflow resume` finishes without running a completed step again, runs the
//! interrupted step again without counting it as a failed attempt, and fails a step that says it
//! must not run twice.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use acas_e2e::{TIMEOUT, acas_bin, run_acas};
use serde_json::Value;

/// Six steps in a chain. Each appends its id to `lines`, then waits until the test creates its
/// gate file, so the test decides at which step the process dies.
const CHAIN: &str = r#"name: chain
steps:
  - id: s1
    run: ["sh", "-c", "echo \"$1\" >> lines; while [ ! -e \"gate-$1\" ]; do sleep 0.01; done", "sh", "s1"]
    retry: { attempts: 3, delay: 10ms }
  - id: s2
    needs: [s1]
    run: ["sh", "-c", "echo \"$1\" >> lines; while [ ! -e \"gate-$1\" ]; do sleep 0.01; done", "sh", "s2"]
    retry: { attempts: 3, delay: 10ms }
  - id: s3
    needs: [s2]
    run: ["sh", "-c", "echo \"$1\" >> lines; while [ ! -e \"gate-$1\" ]; do sleep 0.01; done", "sh", "s3"]
    retry: { attempts: 3, delay: 10ms }
  - id: s4
    needs: [s3]
    run: ["sh", "-c", "echo \"$1\" >> lines; while [ ! -e \"gate-$1\" ]; do sleep 0.01; done", "sh", "s4"]
    retry: { attempts: 3, delay: 10ms }
  - id: s5
    needs: [s4]
    run: ["sh", "-c", "echo \"$1\" >> lines; while [ ! -e \"gate-$1\" ]; do sleep 0.01; done", "sh", "s5"]
    retry: { attempts: 3, delay: 10ms }
  - id: s6
    needs: [s5]
    run: ["sh", "-c", "echo \"$1\" >> lines; while [ ! -e \"gate-$1\" ]; do sleep 0.01; done", "sh", "s6"]
    retry: { attempts: 3, delay: 10ms }
"#;

fn start(args: &[&str], cwd: &Path) -> Child {
    Command::new(acas_bin())
        .args(args)
        .current_dir(cwd)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting acas")
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("lines")).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Waits (bounded) until step `id` has written its line `count` times in all.
fn wait_for_line(dir: &Path, id: &str, count: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while lines(dir).iter().filter(|l| *l == id).count() < count {
        assert!(Instant::now() < deadline, "{id} never wrote its line; lines: {:?}", lines(dir));
        std::thread::yield_now();
    }
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the killed process");
}

fn status(dir: &Path, run: i64) -> Value {
    let (code, stdout, stderr) = run_acas(&["workflow", "status", &run.to_string(), "--format", "json"], dir);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("status JSON")
}

/// `id status attempts` of every step.
fn steps(status: &Value) -> Vec<String> {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {} {}", s["id"].as_str().unwrap(), s["status"].as_str().unwrap(), s["attempts"]))
        .collect()
}

fn open_gates(dir: &Path, ids: &[&str]) {
    for id in ids {
        std::fs::write(dir.join(format!("gate-{id}")), "").unwrap();
    }
}

#[test]
fn a_killed_run_resumes_without_repeating_completed_steps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/chain.yaml"), CHAIN).unwrap();

    // Killed while the first step runs.
    let child = start(&["workflow", "run", "chain", "--format", "json"], root);
    wait_for_line(root, "s1", 1);
    kill(child);
    let (code, history, stderr) = run_acas(&["workflow", "history", "chain", "--format", "json"], root);
    assert_eq!(code, 0, "{stderr}");
    let history: Value = serde_json::from_str(&history).unwrap();
    let run = history["runs"][0]["run_id"].as_i64().unwrap();
    let seen = status(root, run);
    assert_eq!(seen["status"], "running");
    assert_eq!(
        steps(&seen),
        ["s1 running 1", "s2 pending 0", "s3 pending 0", "s4 pending 0", "s5 pending 0", "s6 pending 0"]
    );

    // Resumed: s1 runs again (its interrupted attempt does not count), then killed during s3.
    open_gates(root, &["s1", "s2"]);
    let child = start(&["workflow", "resume", &run.to_string(), "--format", "json"], root);
    wait_for_line(root, "s3", 1);
    kill(child);
    let seen = status(root, run);
    assert_eq!(
        steps(&seen),
        ["s1 succeeded 1", "s2 succeeded 1", "s3 running 1", "s4 pending 0", "s5 pending 0", "s6 pending 0"]
    );

    // Resumed again, killed during the last step.
    open_gates(root, &["s3", "s4", "s5"]);
    let child = start(&["workflow", "resume", &run.to_string(), "--format", "json"], root);
    wait_for_line(root, "s6", 1);
    kill(child);
    let seen = status(root, run);
    assert_eq!(
        steps(&seen),
        [
            "s1 succeeded 1",
            "s2 succeeded 1",
            "s3 succeeded 1",
            "s4 succeeded 1",
            "s5 succeeded 1",
            "s6 running 1"
        ]
    );

    // Resumed to the end.
    open_gates(root, &["s6"]);
    let (code, stdout, stderr) =
        run_acas(&["workflow", "resume", &run.to_string(), "--format", "json"], root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["run_id"], run);
    assert_eq!(
        steps(&done),
        [
            "s1 succeeded 1",
            "s2 succeeded 1",
            "s3 succeeded 1",
            "s4 succeeded 1",
            "s5 succeeded 1",
            "s6 succeeded 1"
        ]
    );

    // Each step that had completed when the process died wrote exactly once; the three steps
    // that were interrupted wrote once more when they ran again.
    let written = lines(root);
    let count = |id: &str| written.iter().filter(|l| *l == id).count();
    let counts: Vec<usize> = ["s1", "s2", "s3", "s4", "s5", "s6"].iter().map(|id| count(id)).collect();
    assert_eq!(counts, [2, 1, 2, 1, 1, 2], "lines: {written:?}");

    // A finished run cannot be resumed; it says how to run it again.
    let (code, _, stderr) = run_acas(&["workflow", "resume", &run.to_string()], root);
    assert_eq!(code, 2);
    assert!(stderr.contains("already succeeded"), "{stderr}");
}

/// One step with a single attempt, interrupted by SIGKILL: `idempotent` says whether it may
/// run again.
fn once(idempotent: bool) -> String {
    format!(
        r#"name: once
steps:
  - id: deploy
    idempotent: {idempotent}
    run: ["sh", "-c", "echo deploy >> lines; while [ ! -e gate-deploy ]; do sleep 0.01; done"]
"#
    )
}

#[test]
fn an_interrupted_step_runs_again_without_using_up_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/once.yaml"), once(true)).unwrap();
    let child = start(&["workflow", "run", "once", "--format", "json"], root);
    wait_for_line(root, "deploy", 1);
    kill(child);
    open_gates(root, &["deploy"]);
    let (code, stdout, stderr) = run_acas(&["workflow", "resume", "1", "--format", "json"], root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(steps(&done), ["deploy succeeded 1"]);
    assert_eq!(lines(root), ["deploy", "deploy"], "at least once: the interrupted step ran again");
}

#[test]
fn a_step_that_is_not_idempotent_fails_on_resume_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/once.yaml"), once(false)).unwrap();
    let child = start(&["workflow", "run", "once", "--format", "json"], root);
    wait_for_line(root, "deploy", 1);
    kill(child);
    open_gates(root, &["deploy"]);
    let (code, stdout, stderr) = run_acas(&["workflow", "resume", "1", "--format", "json"], root);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let done: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(steps(&done), ["deploy failed 1"]);
    let error = done["steps"][0]["error"].as_str().unwrap();
    assert!(error.contains("`idempotent: false`") && error.contains("acas workflow rerun 1"), "{error}");
    assert_eq!(lines(root), ["deploy"], "the step did not run again");
}

#[test]
fn run_prints_json_and_exits_with_the_run_status() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(
        root.join(".acas/workflows/w.yaml"),
        r#"name: w
inputs:
  n: { type: number, required: true }
steps:
  - id: count
    run: ["sh", "-c", "echo \"$1\"", "sh", "{{ inputs.n }}"]
  - id: fail
    needs: [count]
    run: ["sh", "-c", "exit 5"]
  - id: never
    needs: [fail]
    run: ["true"]
"#,
    )
    .unwrap();
    let (code, stdout, stderr) =
        run_acas(&["workflow", "run", "w", "--input", "n=7", "--format", "json"], root);
    assert_eq!(code, 1, "{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["workflow"], "w");
    assert_eq!(run["status"], "failed");
    assert_eq!(steps(&run), ["count succeeded 1", "fail failed 1", "never skipped 0"]);
    assert_eq!(run["steps"][0]["output"]["stdout"], "7\n");
    assert_eq!(run["steps"][1]["output"]["exit_code"], 5);

    let (code, _, stderr) = run_acas(&["workflow", "run", "w", "--input", "n=seven"], root);
    assert_eq!((code, stderr.trim()), (2, "acas workflow run: input `n`: `seven` is not a number"));

    // A dry run renders and prints the plan and runs nothing.
    let (code, stdout, stderr) =
        run_acas(&["workflow", "run", "w", "--input", "n=3", "--dry-run", "--format", "json"], root);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["steps"][0]["rendered"], serde_json::json!(["sh", "-c", "echo \"$1\"", "sh", "3"]));
    assert_eq!(plan["steps"][2]["wave"], 3);
    let (_, history, _) = run_acas(&["workflow", "history", "--format", "json"], root);
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["runs"].as_array().unwrap().len(), 1, "the dry run left no run behind");

    // Cancelling a finished run is refused.
    let id = run["run_id"].to_string();
    let (code, _, stderr) = run_acas(&["workflow", "cancel", &id], root);
    assert_eq!(code, 2);
    assert!(stderr.contains("already failed"), "{stderr}");
}

#[test]
fn a_paused_run_starts_no_new_step_until_it_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(
        dir.path().join(".acas/workflows/chain.yaml"),
        CHAIN.lines().take(9).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let child = start(&["workflow", "run", "chain"], dir.path());
    wait_for_line(dir.path(), "s1", 1);

    // Paused while s1 runs: s1 may finish, s2 does not start.
    let (code, stdout, stderr) = run_acas(&["workflow", "pause", "1"], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "run 1 paused");
    open_gates(dir.path(), &["s1"]);
    let deadline = Instant::now() + TIMEOUT;
    while !steps(&status(dir.path(), 1)).contains(&"s1 succeeded 1".to_owned()) {
        assert!(Instant::now() < deadline, "s1 never finished: {:?}", status(dir.path(), 1));
        std::thread::yield_now();
    }
    assert_eq!(status(dir.path(), 1)["status"], "paused");
    assert_eq!(lines(dir.path()), ["s1"]);

    // Resumed: the process that runs it goes on with s2.
    let (code, stdout, stderr) = run_acas(&["workflow", "resume", "1"], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    wait_for_line(dir.path(), "s2", 1);
    open_gates(dir.path(), &["s2"]);
    let deadline = Instant::now() + TIMEOUT;
    while status(dir.path(), 1)["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "the run never ended: {:?}", status(dir.path(), 1));
        std::thread::yield_now();
    }
    assert_eq!(lines(dir.path()), ["s1", "s2"]);
    kill(child);
}

#[test]
fn a_run_from_the_command_line_sees_the_same_trigger_as_from_the_editor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(
        root.join(".acas/workflows/by-hand.yaml"),
        r#"name: by-hand
steps:
  - id: only-by-hand
    if: trigger.kind == 'manual' and trigger.source == 'cli'
    run: ["sh", "-c", "echo by-hand >> lines"]
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "by-hand", "--format", "json"], root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(steps(&done), ["only-by-hand succeeded 1"]);
    assert_eq!(done["trigger"], serde_json::json!({"kind": "manual", "source": "cli"}));
    assert_eq!(lines(root), ["by-hand"]);

    // The dry run's sample is the same type, with the same fields.
    let (code, stdout, stderr) =
        run_acas(&["workflow", "run", "by-hand", "--dry-run", "--format", "json"], root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["trigger"], serde_json::json!({"kind": "manual", "source": "cli"}), "{plan:#}");
}
