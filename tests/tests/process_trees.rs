//! A step's or a command provider's processes end with it: on a timeout, on a cancel, when the
//! command exits while something it started holds its output open, and when `acas` itself is
//! killed with SIGKILL, including descendants that left the process group with `setsid`.
//!
//! Processes are found by a marker unique to the test in their argv (a `sleep` of a fractional
//! number of seconds no other test uses), through `/proc`. Waiting is a bounded poll of `/proc`.

#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acas::escalate::command::{CommandProvider, CommandSettings};
use acas::escalate::provider::{CompletionRequest, Provider, ProviderErrorKind, StreamEvent};
use acas_e2e::{TIMEOUT, acas_bin, run_acas};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A `sleep` argument of about 1000 s that no other test or run uses: its text is the marker.
fn marker(test: u32) -> String {
    format!("1000.{}{test:02}", std::process::id())
}

/// Pids of live processes whose argv holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    processes_where(|argv| argv.iter().any(|arg| arg.contains(marker)))
}

/// Pids of live `sleep MARKER` processes.
fn sleeps_with(marker: &str) -> Vec<u32> {
    processes_where(|argv| argv.first().is_some_and(|a| a == "sleep") && argv.iter().any(|a| a == marker))
}

fn processes_where(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // A zombie has an empty command line: it is gone but for its exit status.
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let argv: Vec<String> = String::from_utf8_lossy(&cmdline).split('\0').map(str::to_owned).collect();
        if matches(&argv) {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` runs (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `done` until it holds, for at most [`TIMEOUT`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills every process with its marker when dropped, so that a failing test leaves nothing
/// behind.
struct CleanUp<'a>(&'a str);

impl Drop for CleanUp<'_> {
    fn drop(&mut self) {
        for pid in processes_with(self.0) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn workspace(name: &str, workflow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(format!("{name}.yaml")), workflow).unwrap();
    dir
}

fn spawn_run(root: &Path, name: &str) -> Child {
    Command::new(acas_bin())
        .args(["workflow", "run", name, "--format", "json"])
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits, bounded, for `child` to exit; kills it and fails when it does not.
fn exit_of(child: &mut Child, what: &str) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{what} did not end within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn last_run(root: &Path) -> Value {
    let (code, stdout, stderr) = run_acas(&["workflow", "history", "--format", "json"], root);
    assert_eq!(code, 0, "{stderr}");
    let history: Value = serde_json::from_str(&stdout).unwrap();
    history["runs"].as_array().and_then(|r| r.first()).cloned().unwrap_or_else(|| panic!("no run: {stdout}"))
}

/// The step ends although a process it started keeps stdout open: what the command left running
/// gets a moment, then is killed, and the run finishes.
#[test]
fn a_background_process_holding_stdout_does_not_keep_the_step_running() {
    let mark = marker(1);
    let _clean_up = CleanUp(&mark);
    let workflow = format!(
        "name: lingering\nsteps:\n  - id: start\n    timeout: 5s\n    run: [\"sh\", \"-c\", \"sleep {mark} & echo $! > bg.pid; echo started\"]\n"
    );
    let dir = workspace("lingering", &workflow);
    let mut run = spawn_run(dir.path(), "lingering");
    let code = exit_of(&mut run, "a run whose step left a process holding stdout");
    let leftover = processes_with(&mark);
    assert_eq!(code, 0, "the step succeeded: it exited with 0");
    let record = last_run(dir.path());
    assert_eq!(record["status"], "succeeded", "{record:#}");
    let pid: u32 = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap().trim().parse().unwrap();
    wait_for(&format!("the background sleep {pid} to end"), || !alive(pid));
    assert!(leftover.iter().all(|p| !alive(*p)), "left running: {leftover:?}");
}

/// A step that times out: its whole tree ends, the process in a new session that holds stdout
/// too, and the run fails with the timeout.
#[test]
fn a_step_that_times_out_ends_its_whole_tree() {
    let mark = marker(6);
    let _clean_up = CleanUp(&mark);
    let workflow = format!(
        "name: slow\nsteps:\n  - id: slow\n    timeout: 1s\n    run: [\"sh\", \"-c\", \"setsid sleep {mark} & sleep {mark}; :\"]\n"
    );
    let dir = workspace("slow", &workflow);
    let mut run = spawn_run(dir.path(), "slow");
    let code = exit_of(&mut run, "a run whose step timed out");
    let deadline = Instant::now() + TIMEOUT;
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let leftover = processes_with(&mark);
    assert_eq!(code, 1, "the run failed");
    let record = last_run(dir.path());
    assert_eq!(record["status"], "failed", "{record:#}");
    assert!(leftover.is_empty(), "still running after the timeout: {leftover:?}");
}

/// A step that kills its own supervisor (its parent) to escape: what it started is still found,
/// by the mark in its environment, and killed, and the run ends.
#[test]
fn a_step_that_kills_its_supervisor_does_not_escape() {
    let mark = marker(7);
    let _clean_up = CleanUp(&mark);
    let workflow = format!(
        "name: escape\nsteps:\n  - id: escape\n    run: [\"sh\", \"-c\", \"setsid sleep {mark} & sleep {mark} & kill -9 $PPID; sleep {mark}; :\"]\n"
    );
    let dir = workspace("escape", &workflow);
    let mut run = spawn_run(dir.path(), "escape");
    let code = exit_of(&mut run, "a run whose step killed its supervisor");
    let deadline = Instant::now() + TIMEOUT;
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let leftover = processes_with(&mark);
    assert_eq!(code, 1, "the run failed");
    assert!(leftover.is_empty(), "still running after the step's supervisor was killed: {leftover:?}");
}

/// A step that stops its supervisor (`kill -STOP $PPID`), before or after the supervisor said
/// that the command started: the step's timeout still ends the run and the whole tree. The
/// second case waits a little in the step, which makes the later order likely; the test holds
/// in either order.
#[test]
fn a_step_that_stops_its_supervisor_still_times_out() {
    for (test, before) in [(13, ""), (14, "sleep 0.5; ")] {
        let mark = marker(test);
        let _clean_up = CleanUp(&mark);
        let workflow = format!(
            "name: frozen\nsteps:\n  - id: frozen\n    timeout: 1s\n    run: [\"sh\", \"-c\", \"{before}kill -STOP $PPID; setsid sleep {mark} & sleep {mark}\"]\n"
        );
        let dir = workspace("frozen", &workflow);
        let mut run = spawn_run(dir.path(), "frozen");
        let code = exit_of(&mut run, "a run whose step stopped its supervisor");
        wait_for("the step's processes to end", || processes_with(&mark).is_empty());
        assert_eq!(code, 1, "the run failed");
        let record = last_run(dir.path());
        let (_, stdout, _) =
            run_acas(&["workflow", "status", &record["run_id"].to_string(), "--format", "json"], dir.path());
        assert!(stdout.contains("timed out after 1s"), "{stdout}");
    }
}

/// A workflow whose step starts two sleeps, one of them in a new session, writes `ready` and
/// waits on a third.
fn tree_workflow(name: &str, mark: &str) -> String {
    format!(
        "name: {name}\nsteps:\n  - id: tree\n    run: [\"sh\", \"-c\", \"sleep {mark} & setsid sleep {mark} & echo ready > ready; sleep {mark}; :\"]\n"
    )
}

/// `kill -9` of `acas workflow run`: the step's shell, its children and the one that left the
/// process group all end.
#[test]
fn killing_acas_with_sigkill_ends_every_process_of_its_step() {
    let mark = marker(2);
    let _clean_up = CleanUp(&mark);
    let dir = workspace("tree", &tree_workflow("tree", &mark));
    let mut run = spawn_run(dir.path(), "tree");
    wait_for("the three sleeps of the step", || {
        dir.path().join("ready").exists() && sleeps_with(&mark).len() == 3
    });
    run.kill().unwrap();
    run.wait().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let leftover = processes_with(&mark);
    assert!(leftover.is_empty(), "still running after acas was killed: {leftover:?}");
}

/// `acas workflow cancel` from another process: every process of the running step ends, the one
/// in its own session too, and the run ends `cancelled`.
#[test]
fn cancelling_a_run_ends_every_process_of_its_step() {
    let mark = marker(3);
    let _clean_up = CleanUp(&mark);
    let dir = workspace("tree", &tree_workflow("tree", &mark));
    let mut run = spawn_run(dir.path(), "tree");
    wait_for("the three sleeps of the step", || {
        dir.path().join("ready").exists() && sleeps_with(&mark).len() == 3
    });
    let id = last_run(dir.path())["run_id"].to_string();
    let (code, _, stderr) = run_acas(&["workflow", "cancel", &id], dir.path());
    let cancelled_code = exit_of(&mut run, "the cancelled run");
    let deadline = Instant::now() + TIMEOUT;
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let leftover = processes_with(&mark);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(cancelled_code, 1);
    assert_eq!(last_run(dir.path())["status"], "cancelled");
    assert!(leftover.is_empty(), "still running after the cancel: {leftover:?}");
}

fn command_provider(argv: &[&str], timeout: Duration) -> CommandProvider {
    // Commands start under the real binary as their supervisor, as in `acas`.
    acas::process_tree::use_supervisor(acas_bin());
    CommandProvider::new(CommandSettings {
        name: "agent".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        timeout,
        grace: Duration::from_millis(200),
    })
    .unwrap()
}

fn request() -> CompletionRequest {
    CompletionRequest {
        system: "system".into(),
        prompt: "prompt".into(),
        max_tokens: 100,
        temperature: None,
        json_schema: None,
    }
}

async fn complete(provider: &CommandProvider) -> Result<String, ProviderErrorKind> {
    let mut events = |_: StreamEvent| {};
    provider
        .complete(&request(), &mut events, &CancellationToken::new())
        .await
        .map(|c| c.text)
        .map_err(|e| e.kind)
}

/// A command provider that answers and leaves a process running in a new session: the answer
/// arrives and the process ends.
#[tokio::test]
async fn a_command_provider_leaves_nothing_running_when_it_answers() {
    let mark = marker(4);
    let _clean_up = CleanUp(&mark);
    let script =
        format!("cat > /dev/null; setsid sleep {mark} > /dev/null 2>&1 & sleep {mark} & echo answer");
    let provider = command_provider(&["sh", "-c", &script], TIMEOUT);
    let answer = complete(&provider).await;
    let deadline = Instant::now() + TIMEOUT;
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leftover = processes_with(&mark);
    assert_eq!(answer, Ok("answer\n".to_owned()));
    assert!(leftover.is_empty(), "still running after the answer: {leftover:?}");
}

/// A command provider that times out: its whole tree ends, the part in a new session too, although
/// every process ignores SIGTERM.
#[tokio::test]
async fn a_command_provider_that_times_out_leaves_nothing_running() {
    let mark = marker(5);
    let _clean_up = CleanUp(&mark);
    let script = format!("trap '' TERM; setsid sleep {mark} > /dev/null 2>&1 & sleep {mark}; :");
    let provider = command_provider(&["sh", "-c", &script], Duration::from_secs(1));
    let result = complete(&provider).await;
    let deadline = Instant::now() + TIMEOUT;
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leftover = processes_with(&mark);
    assert_eq!(result, Err(ProviderErrorKind::Timeout));
    assert!(leftover.is_empty(), "still running after the timeout: {leftover:?}");
}

/// A program that cannot be started is reported as such through the supervisor, by the command
/// provider and by a workflow step alike.
#[tokio::test]
async fn a_program_that_cannot_start_is_reported_as_not_started() {
    let provider = command_provider(&["/nonexistent/acas-agent"], TIMEOUT);
    let mut events = |_: StreamEvent| {};
    let error = provider.complete(&request(), &mut events, &CancellationToken::new()).await.unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Spawn);
    assert!(
        error
            .message
            .starts_with("agent: could not start `/nonexistent/acas-agent`: No such file or directory"),
        "{}",
        error.message
    );

    let dir =
        workspace("missing", "name: missing\nsteps:\n  - id: run\n    run: [\"/nonexistent/acas-tool\"]\n");
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "missing", "--format", "json"], dir.path());
    assert_eq!(code, 1, "{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap();
    let message = run["steps"][0]["error"].as_str().unwrap_or_default();
    assert!(message.starts_with("cannot start `/nonexistent/acas-tool` in "), "{run:#}");
    assert!(message.ends_with("No such file or directory (os error 2)"), "{run:#}");
}

/// Whether any thread of `pid` still runs (a process whose main thread exited shows as a
/// zombie while its other threads run).
fn threads_alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .is_ok_and(|stat| !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
    })
}

/// A step that stays in its supervisor's process group but removes the mark from its
/// environment and kills its supervisor: ACAS kills the group, and says the supervisor was
/// killed rather than that the command was.
#[test]
fn a_process_that_unsets_the_mark_and_kills_its_supervisor_does_not_escape() {
    let mark = marker(8);
    let _clean_up = CleanUp(&mark);
    let workflow = format!(
        "name: unmark\nsteps:\n  - id: unmark\n    run: [\"sh\", \"-c\", \"env -u ACAS_TREE sh -c 'echo $$ > bg.pid; exec sleep {mark}' & until [ -s bg.pid ]; do :; done; kill -9 $PPID; sleep {mark}\"]\n"
    );
    let dir = workspace("unmark", &workflow);
    let mut run = spawn_run(dir.path(), "unmark");
    let code = exit_of(&mut run, "a run whose step killed its supervisor");
    let pid: u32 = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap().trim().parse().unwrap();
    wait_for(&format!("the unmarked sleep {pid} to end"), || !alive(pid));
    assert_eq!(code, 1, "the run failed");
    let record = last_run(dir.path());
    let (_, stdout, _) =
        run_acas(&["workflow", "status", &record["run_id"].to_string(), "--format", "json"], dir.path());
    assert!(stdout.contains("the supervisor of `sh` was killed by signal 9"), "{stdout}");
    assert!(!stdout.contains("`sh` was killed by a signal"), "{stdout}");
}

/// A process whose main thread exited, in a new session, after killing its supervisor: its
/// environment is only readable through its threads, and the mark there is found.
#[test]
fn a_process_whose_main_thread_exited_is_still_found_by_its_mark() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("zl.py"),
        "import ctypes, os, threading, time\nthreading.Thread(target=lambda: time.sleep(1000)).start()\nopen('zl.pid', 'w').write(str(os.getpid()))\nctypes.CDLL(None).pthread_exit(None)\n",
    )
    .unwrap();
    let folder = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("zombie.yaml"),
        "name: zombie\nsteps:\n  - id: zombie\n    run: [\"sh\", \"-c\", \"setsid python3 zl.py </dev/null >/dev/null 2>&1 & until [ -s zl.pid ]; do :; done; kill -9 $PPID\"]\n",
    )
    .unwrap();
    let mut run = spawn_run(dir.path(), "zombie");
    let code = exit_of(&mut run, "a run whose step killed its supervisor");
    let pid: u32 = std::fs::read_to_string(dir.path().join("zl.pid")).unwrap().trim().parse().unwrap();
    let clean_up = || {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    };
    let deadline = Instant::now() + TIMEOUT;
    while threads_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = threads_alive(pid);
    clean_up();
    assert_eq!(code, 1, "the run failed");
    assert!(!survived, "process {pid}, whose main thread exited, still runs");
}

/// `acas` and the step's supervisor killed together leave the step running; the next
/// `acas workflow run`, in any workspace, finds the tree by its mark naming an owner that is
/// gone, and kills it.
#[test]
fn a_tree_left_by_a_killed_acas_is_ended_when_acas_starts_again() {
    let mark = marker(10);
    let _clean_up = CleanUp(&mark);
    orphan_and_restart("tree", &tree_workflow("tree", &mark), &mark);
}

/// As above, with every process of the step in a new session and with an empty environment, so
/// that neither the process group nor the mark finds it: the tree's control group does.
#[test]
fn a_hidden_tree_left_by_a_killed_acas_is_ended_when_acas_starts_again() {
    let mark = marker(12);
    let _clean_up = CleanUp(&mark);
    let workflow = format!(
        "name: hidden\nsteps:\n  - id: tree\n    run: [\"sh\", \"-c\", \"setsid env -i sleep {mark} & setsid env -i sleep {mark} & echo ready > ready; exec env -i sleep {mark}\"]\n"
    );
    orphan_and_restart("hidden", &workflow, &mark);
}

/// Runs `workflow`, whose step starts three `sleep MARK`, kills `acas` and the step's supervisor
/// so that neither can end the step, and checks that the next `acas workflow run` does.
fn orphan_and_restart(name: &str, workflow: &str, mark: &str) {
    let dir = workspace(name, workflow);
    let mut run = spawn_run(dir.path(), name);
    wait_for("the three sleeps of the step", || {
        dir.path().join("ready").exists() && sleeps_with(mark).len() == 3
    });
    let acas = run.id().to_string();
    let supervisor = processes_where(|argv| argv.get(1).is_some_and(|a| a == "__acas-supervise"))
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)) == Some(&acas)
            })
        })
        .expect("the step's supervisor");
    // Stopped, ACAS cannot act on its supervisor's death; then both die.
    let signal = |signal: &str, pid: &str| Command::new("kill").args([signal, pid]).status().unwrap();
    signal("-STOP", &acas);
    signal("-9", &supervisor.to_string());
    wait_for("the supervisor to die", || !alive(supervisor));
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(sleeps_with(mark).len(), 3, "the step's processes run on, with no owner");

    let other = workspace("hello", "name: hello\nsteps:\n  - id: a\n    run: [\"true\"]\n");
    let (code, _, stderr) = run_acas(&["workflow", "run", "hello"], other.path());
    assert_eq!(code, 0, "{stderr}");
    wait_for("the orphaned tree to end", || sleeps_with(mark).is_empty());
}

/// A command provider whose command kills its supervisor: the error says the supervisor was
/// killed, and what it started in the process group is killed.
#[tokio::test]
async fn a_command_provider_that_kills_its_supervisor_is_reported_as_such() {
    let mark = marker(11);
    let _clean_up = CleanUp(&mark);
    let script = format!(
        "cat > /dev/null; env -u ACAS_TREE sleep {mark} > /dev/null 2>&1 & exec > /dev/null 2>&1; kill -9 $PPID; sleep {mark}"
    );
    let provider = command_provider(&["sh", "-c", &script], TIMEOUT);
    let mut events = |_: StreamEvent| {};
    let error = provider.complete(&request(), &mut events, &CancellationToken::new()).await.unwrap_err();
    let deadline = Instant::now() + TIMEOUT;
    while !sleeps_with(&mark).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(error.message.contains("the supervisor of `sh -c"), "{}", error.message);
    assert!(sleeps_with(&mark).is_empty(), "still running: {:?}", sleeps_with(&mark));
}
