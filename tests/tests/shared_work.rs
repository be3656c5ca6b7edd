//! Several ACAS processes on one workspace: exactly one of them (the holder of the workspace
//! lease) runs triggers and records file events; when it is killed, or exits cleanly, another
//! takes over. Counted in the real `state.db`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use acas_e2e::{LspClient, TIMEOUT, acas_bin, is_progress};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Value, json};

const ON_CHANGE: &str = r#"name: on-change
on:
  file_change: { paths: ["src/**/*.txt"], events: [created], debounce: 10ms }
steps:
  - id: record
    run: ["sh", "-c", "printf '%s\n' \"$1\" >> seen.log", "sh", "{{ trigger.path }}"]
"#;

/// Heartbeats are short here so that takeovers are quick; the expiry is long, so that only a
/// dead pid or a release can explain a takeover.
const CONFIG: &str = "[lease]\nheartbeat_ms = 100\nexpiry_ms = 60000\n";

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join(".acas/workflows/on-change.yaml"), ON_CHANGE).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), CONFIG).unwrap();
    dir
}

/// `acas watch --format json` on `root`, once its initial scan is done.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    log: Arc<Mutex<String>>,
}

impl Watch {
    fn start(root: &Path) -> Watch {
        Watch::start_with(root, &[])
    }

    /// [`Watch::start`] with more environment variables.
    /// The user trusts the workspace, so that its workflows start by themselves.
    fn start_with(root: &Path, env: &[(&str, &str)]) -> Watch {
        acas_e2e::trust(root, &acas_e2e::trusting_config_home());
        let mut child = Command::new(acas_bin())
            .args(["watch", "--format", "json"])
            .arg(root)
            .envs(env.iter().copied())
            .env("ACAS_LOG", "info")
            .env("XDG_CONFIG_HOME", acas_e2e::trusting_config_home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting acas watch");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                writer.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        let watch = Watch { child, lines, log };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match watch.lines.recv_timeout(left) {
                Ok(line) if line["event"] == "scan" => break,
                Ok(_) => {}
                Err(error) => {
                    panic!("acas watch never finished its scan: {error}; log:\n{}", watch.log())
                }
            }
        }
        watch
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn db(root: &Path) -> PathBuf {
    root.join(".acas/state.db")
}

fn read<T>(root: &Path, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> T {
    let conn = Connection::open_with_flags(db(root), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    f(&conn).unwrap()
}

/// Polls the store until `f` answers, for at most [`TIMEOUT`].
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_or(what, f, String::new)
}

/// [`wait_for`], with what to show when it times out.
fn wait_or<T>(what: &str, mut f: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(answer) = f() {
            return answer;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", context());
        // The poll interval of a bounded wait on rows, not a synchronisation.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The owner pids of the finished runs started by a change of `path`, once there is one.
fn runs_of(root: &Path, path: &str) -> Vec<u32> {
    read(root, |c| {
        let mut statement = c.prepare(
            "SELECT owner_pid FROM workflow_run WHERE json_extract(trigger, '$.path') = ?1 \
             AND status IN ('succeeded', 'failed', 'cancelled') ORDER BY id",
        )?;
        statement.query_map([path], |r| r.get(0))?.collect()
    })
}

/// Creates `src/NAME` and waits until a run for it has finished; returns its owner pids.
fn change(root: &Path, name: &str) -> Vec<u32> {
    let path = format!("src/{name}");
    std::fs::write(root.join(&path), "x\n").unwrap();
    wait_for(&format!("a finished run for {path}"), || {
        let runs = runs_of(root, &path);
        (!runs.is_empty()).then_some(runs)
    })
}

/// How many times each file event of `path` is in `activity`, by action.
fn recorded(root: &Path, path: &str) -> Vec<(String, i64)> {
    read(root, |c| {
        let mut statement = c.prepare(
            "SELECT action, count(*) FROM activity WHERE kind = 'file' AND path = ?1 \
             GROUP BY action ORDER BY action",
        )?;
        statement.query_map([path], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
    })
}

/// What a process logs once it has started the shared work.
const TOOK_OVER: &str = "this process runs the workspace's triggers, webhooks and outbox";

fn holder_pid(root: &Path) -> Option<u32> {
    read(root, |c| c.query_row("SELECT pid FROM lease", [], |r| r.get(0)).optional())
}

fn allowed(m: &Value) -> bool {
    is_progress(m)
        || m["method"] == "acas/workflowRun"
        || m["method"] == "textDocument/publishDiagnostics"
        || m["method"] == "window/showMessage"
}

#[test]
fn one_process_runs_the_shared_work_and_another_takes_over() {
    let dir = workspace();
    let root = dir.path();
    let mut first = Watch::start(root);
    let mut editor = LspClient::start_trusting(root, &[]);
    editor.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    editor.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });

    // One change, one run, one row per file event: the second process did neither. A later
    // change's run has finished before counting, so a duplicate would have finished too.
    assert_eq!(change(root, "one.txt"), [first.pid()]);
    change(root, "two.txt");
    assert_eq!(runs_of(root, "src/one.txt"), [first.pid()], "one change ran once");
    let events = recorded(root, "src/one.txt");
    assert!(!events.is_empty() && events.iter().all(|(_, n)| *n == 1), "{events:?}");
    assert_eq!(holder_pid(root), Some(first.pid()), "the first process took the lease");

    // The holder is killed: the waiting editor's server takes over and runs the next change.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let editor_pid = wait_for("the editor's server to take the lease", || {
        holder_pid(root).filter(|pid| *pid != first.pid())
    });
    // Changes are fed to the triggers from the moment the new holder has started them.
    wait_for("the editor's server to start the shared work", || {
        editor.stderr().contains(TOOK_OVER).then_some(())
    });
    assert_eq!(change(root, "three.txt"), [editor_pid]);
    change(root, "four.txt");
    assert_eq!(runs_of(root, "src/three.txt"), [editor_pid]);
    let events = recorded(root, "src/three.txt");
    assert!(!events.is_empty() && events.iter().all(|(_, n)| *n == 1), "{events:?}");

    // A clean exit releases the lease: the process that waited takes over at its next heartbeat.
    let last = Watch::start(root);
    assert_eq!(holder_pid(root), Some(editor_pid));
    assert_eq!(editor.shutdown(), 0);
    editor.finish(allowed);
    wait_or(
        "the last process to take the lease",
        || holder_pid(root).filter(|pid| *pid == last.pid()),
        || format!("holder {:?}, last {}, log:\n{}", holder_pid(root), last.pid(), last.log()),
    );
    wait_for("the last process to start the shared work", || last.log().contains(TOOK_OVER).then_some(()));
    assert_eq!(change(root, "five.txt"), [last.pid()]);
    change(root, "six.txt");
    assert_eq!(runs_of(root, "src/five.txt"), [last.pid()]);
    assert_eq!(
        std::fs::read_to_string(root.join("seen.log")).unwrap(),
        "src/one.txt\nsrc/two.txt\nsrc/three.txt\nsrc/four.txt\nsrc/five.txt\nsrc/six.txt\n"
    );
}

/// What a holder logs when it stopped the shared work because it could not renew the lease.
const FENCED: &str = "could not renew the workspace lease within [lease] expiry_ms";

#[test]
fn a_holder_that_cannot_renew_in_time_stops_the_shared_work_itself() {
    let dir = workspace();
    let root = dir.path();
    std::fs::write(root.join(".acas/config.toml"), "[lease]\nheartbeat_ms = 100\nexpiry_ms = 600\n").unwrap();
    let holder = Watch::start(root);
    wait_for("the process to start the shared work", || holder.log().contains(TOOK_OVER).then_some(()));

    // Another program keeps the store's write lock for longer than the expiry: the holder cannot
    // renew, so it must stop before any other process may take the lease over.
    let mut blocker = Connection::open(db(root)).unwrap();
    let lock = blocker.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    wait_or(
        "the holder to stop the shared work",
        || holder.log().contains(FENCED).then_some(()),
        || holder.log(),
    );
    lock.rollback().unwrap();

    // Renewed again: it runs the shared work again.
    wait_or(
        "the holder to start the shared work again",
        || (holder.log().matches(TOOK_OVER).count() >= 2).then_some(()),
        || holder.log(),
    );
    assert_eq!(change(root, "after.txt"), [holder.pid()]);
}

#[test]
fn a_webhook_accepted_by_a_process_killed_before_its_run_is_run_by_the_next_holder() {
    let dir = workspace();
    let root = dir.path();
    let first = Watch::start(root);
    wait_for("the process to start the shared work", || first.log().contains(TOOK_OVER).then_some(()));
    drop(first);
    // What a webhook server leaves in the store when its process is killed right after it
    // answered 202: the accepted request, not yet a run.
    let conn = Connection::open(db(root)).unwrap();
    conn.execute(
        "INSERT INTO webhook_inbox (workflow, trigger, inputs, at_ms) VALUES ('on-change', ?1, '{}', 1)",
        [json!({"kind": "webhook", "path": "src/hook.txt", "body": {}, "headers": {}}).to_string()],
    )
    .unwrap();
    drop(conn);

    let next = Watch::start(root);
    let runs = wait_or(
        "the accepted webhook's run",
        || {
            let runs = runs_of(root, "src/hook.txt");
            (!runs.is_empty()).then_some(runs)
        },
        || next.log(),
    );
    assert_eq!(runs, [next.pid()]);
    let left: i64 = read(root, |c| c.query_row("SELECT count(*) FROM webhook_inbox", [], |r| r.get(0)));
    assert_eq!(left, 0);
}

/// Sends `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// What a process that lost the lease logs when a trigger it fired before noticing is refused.
const NOT_STARTED: &str = "workflow `on-change` was not started";

#[test]
fn a_holder_paused_past_the_expiry_neither_starts_runs_nor_records_events_when_it_resumes() {
    let dir = workspace();
    let root = dir.path();
    // The expiry is long enough for the test to pause the holder before the holder, unable to
    // renew while the test keeps the store locked, stops the shared work itself.
    std::fs::write(root.join(".acas/config.toml"), "[lease]\nheartbeat_ms = 100\nexpiry_ms = 3000\n")
        .unwrap();
    let paused = Watch::start(root);
    wait_for("the first process to start the shared work", || paused.log().contains(TOOK_OVER).then_some(()));
    let next = Watch::start(root);
    assert_eq!(change(root, "one.txt"), [paused.pid()]);
    let triggered = |watch: &Watch| watch.log().matches("workflow triggered").count();
    assert_eq!(triggered(&paused), 1);

    // The holder decides to start a run and record the file's event, but its writes wait for a
    // lock another program holds; it is paused right then, for longer than the expiry.
    let mut blocker = Connection::open(db(root)).unwrap();
    let lock = blocker.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    std::fs::write(root.join("src/two.txt"), "x\n").unwrap();
    wait_or("the holder to fire the trigger", || (triggered(&paused) == 2).then_some(()), || paused.log());
    signal(paused.pid(), "STOP");
    lock.rollback().unwrap();
    drop(blocker);

    // The other process takes the lease over once the paused one has not renewed it in time.
    wait_or(
        "the other process to take the lease",
        || holder_pid(root).filter(|pid| *pid == next.pid()),
        || next.log(),
    );
    wait_for("the other process to start the shared work", || next.log().contains(TOOK_OVER).then_some(()));

    // Resumed, the old holder goes on with the writes it had decided on: the store refuses them.
    signal(paused.pid(), "CONT");
    wait_or(
        "the resumed process to start its run or be refused",
        || (paused.log().contains(NOT_STARTED) || !runs_of(root, "src/two.txt").is_empty()).then_some(()),
        || paused.log(),
    );
    assert_eq!(
        runs_of(root, "src/two.txt"),
        Vec::<u32>::new(),
        "a process that lost the lease ran a workflow"
    );

    // Every change from now on runs exactly once, by the new holder, and is recorded once.
    assert_eq!(
        change(root, "three.txt"),
        [next.pid()],
        "paused {}:\n{}\nnext {}:\n{}",
        paused.pid(),
        paused.log(),
        next.pid(),
        next.log()
    );
    change(root, "four.txt");
    assert_eq!(runs_of(root, "src/three.txt"), [next.pid()]);
    let events = recorded(root, "src/three.txt");
    assert!(!events.is_empty() && events.iter().all(|(_, n)| *n == 1), "{events:?}");
    assert_eq!(
        recorded(root, "src/two.txt"),
        Vec::<(String, i64)>::new(),
        "a process that lost the lease recorded file events; log:\n{}",
        paused.log()
    );
    assert_eq!(
        std::fs::read_to_string(root.join("seen.log")).unwrap(),
        "src/one.txt\nsrc/three.txt\nsrc/four.txt\n"
    );
}

const HOOKED: &str = r#"name: hooked
on:
  webhook: { path: /hooks/github, secret_env: TAKEOVER_SECRET, scheme: github }
steps:
  - id: mark
    run: ["sh", "-c", "echo \"$1\" >> hooked.log", "sh", "{{ trigger.body.n }}"]
"#;

const HOOK_SECRET: &str = "takeover-secret";

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// Sends delivery `n` as GitHub does, on a connection already open, and returns the status line
/// of the answer, or why there was none.
fn deliver(mut stream: std::net::TcpStream, n: usize) -> Result<String, String> {
    use std::io::Write;
    let body = format!(r#"{{"n":{n}}}"#);
    let signature = acas::workflow::signature::sign_body(HOOK_SECRET.as_bytes(), body.as_bytes());
    let request = format!(
        "POST /hooks/github HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: GitHub-Hookshot/test\r\n\
         content-type: application/json\r\nx-github-event: push\r\nx-github-delivery: delivery-{n}\r\n\
         x-hub-signature-256: {signature}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).map_err(|e| format!("no answer: {e}"))?;
    if status.is_empty() {
        return Err("the connection was closed without an answer".into());
    }
    Ok(status.trim_end().to_owned())
}

/// The owner pid of each finished run of `hooked`, by the delivery's number.
fn hooked_runs(root: &Path) -> Vec<(i64, u32)> {
    read(root, |c| {
        let mut statement = c.prepare(
            "SELECT json_extract(trigger, '$.body.n'), owner_pid FROM workflow_run WHERE workflow = 'hooked' \
             AND status IN ('succeeded', 'failed', 'cancelled') ORDER BY 1",
        )?;
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
    })
}

/// What the process that took the lease logs while the old holder still has the webhook port.
const PORT_IN_USE: &str = "the port is in use; trying again until it is free";

#[test]
fn webhooks_queued_on_a_paused_holder_are_answered_and_run_once_when_it_resumes() {
    let dir = workspace();
    let root = dir.path();
    let port = free_port();
    std::fs::write(root.join(".acas/workflows/hooked.yaml"), HOOKED).unwrap();
    std::fs::write(
        root.join(".acas/config.toml"),
        format!("[lease]\nheartbeat_ms = 100\nexpiry_ms = 1000\n\n[webhooks]\nport = {port}\n"),
    )
    .unwrap();
    let env = [("TAKEOVER_SECRET", HOOK_SECRET)];
    let paused = Watch::start_with(root, &env);
    wait_or(
        "the first process to serve webhooks",
        || paused.log().contains("webhooks listen on").then_some(()),
        || paused.log(),
    );
    let next = Watch::start_with(root, &env);

    // The holder is stopped; senders connect (the kernel completes the handshakes on its
    // listening socket) and send their deliveries, which wait in its queue.
    signal(paused.pid(), "STOP");
    const SENT: usize = 5;
    let senders: Vec<_> = (0..SENT)
        .map(|n| {
            let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting");
            std::thread::spawn(move || deliver(stream, n))
        })
        .collect();

    // The other process takes the lease over, and waits for the port.
    wait_or(
        "the other process to take the lease",
        || holder_pid(root).filter(|pid| *pid == next.pid()),
        || next.log(),
    );
    wait_or(
        "the other process to wait for the port",
        || next.log().contains(PORT_IN_USE).then_some(()),
        || next.log(),
    );

    // Resumed, the old holder finds it lost the lease and stops its webhook server: every
    // delivery that waited in its queue is answered, and runs once, started by the new holder.
    signal(paused.pid(), "CONT");
    let answers: Vec<Result<String, String>> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    for answer in &answers {
        assert_eq!(
            answer.as_deref(),
            Ok("HTTP/1.1 202 Accepted"),
            "{answers:?}\npaused:\n{}\nnext:\n{}",
            paused.log(),
            next.log()
        );
    }
    let runs = wait_or(
        "a run for each delivery",
        || {
            let runs = hooked_runs(root);
            (runs.len() >= SENT).then_some(runs)
        },
        || format!("runs {:?}\npaused:\n{}\nnext:\n{}", hooked_runs(root), paused.log(), next.log()),
    );
    let expected: Vec<(i64, u32)> = (0..SENT as i64).map(|n| (n, next.pid())).collect();
    assert_eq!(runs, expected);

    // The new holder serves the port from now on.
    wait_or(
        "the new holder to serve webhooks",
        || next.log().contains("webhooks listen on").then_some(()),
        || next.log(),
    );
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(deliver(stream, SENT).as_deref(), Ok("HTTP/1.1 202 Accepted"));
    wait_for("the run of the delivery sent to the new holder", || {
        (hooked_runs(root).len() > SENT).then_some(())
    });
    let left: i64 = read(root, |c| c.query_row("SELECT count(*) FROM webhook_inbox", [], |r| r.get(0)));
    assert_eq!(left, 0);
    assert_eq!(std::fs::read_to_string(root.join("hooked.log")).unwrap().lines().count(), SENT + 1);
}
