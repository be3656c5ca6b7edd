//! Workflow runs in the shared store: runs started by real `acas` processes in one clone of a
//! repository are seen, with their steps, by `acas workflow status` and by `acas serve` in
//! another clone, through a real PostgreSQL cluster (`acas_e2e::postgres`); the database
//! stopped mid-run; secrets in output; rows written by someone else.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use acas::store::postgres::runs::{SharedRun, SharedStep};
use acas::store::{DatabaseUrl, Identity, PgOptions, PgStore, RunBoard, Store, StoreOptions};
use acas_e2e::postgres::PgCluster;
use acas_e2e::{LspClient, TIMEOUT, acas_bin};
use serde_json::{Value, json};

const REPOSITORY: &str = "github.com/acme/shapes";

/// A GitHub token, made at run time so that no file of the test holds it whole.
fn secret() -> String {
    format!("ghp_{}", "Zq7".repeat(13))
}

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

fn acas(root: &Path, url: &str) -> Command {
    let mut command = Command::new(acas_bin());
    command
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env("XDG_CACHE_HOME", acas_e2e::tests_cache_home())
        .env("ACAS_DATABASE_URL", url)
        .env("DEPLOY_TOKEN", secret());
    command
}

/// Runs `acas ARGS` in `root` to its end: (exit code, stdout, stderr).
fn run(root: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let output = acas(root, url).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn database(url: &str) -> &str {
    url.rsplit('/').next().unwrap().split('?').next().unwrap()
}

/// `sql`'s unaligned answer on the database at `url`; `None` when psql fails (the tables are
/// not made yet).
fn try_psql(url: &str, sql: &str) -> Option<String> {
    let psql = acas_e2e::postgres::pg_bin().expect("PostgreSQL's binaries").join("psql");
    let output = Command::new(psql)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Waits (at most [`TIMEOUT`]) until `sql` answers `expected`.
fn until_psql(url: &str, sql: &str, expected: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let answer = try_psql(url, sql).unwrap_or_default();
        if answer == expected {
            return;
        }
        assert!(Instant::now() < deadline, "`{sql}` answered {answer:?}, not {expected:?}");
        std::thread::yield_now();
    }
}

const BUILD: &str = r#"name: build
steps:
  - id: compile
    run: ["sh", "-c", "echo compiled; echo token=$DEPLOY_TOKEN; printf 'bin\\000ary\\n' >&2"]
  - id: test
    needs: [compile]
    run: ["sh", "-c", "echo tested with $DEPLOY_TOKEN >&2; exit 3"]
"#;

#[test]
fn a_run_started_in_one_clone_is_listed_with_its_steps_in_another_without_its_secrets() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("build", BUILD)]);
    let desktop = clone("git@github.com:acme/shapes.git", &[("build", BUILD)]);

    let (code, _, stderr) = run(laptop.path(), &url, &["workflow", "run", "build"]);
    assert_eq!(code, 1, "the test step fails: {stderr}");

    // The desktop lists the laptop's run, with its steps, and says who ran it where.
    let (code, stdout, stderr) = run(desktop.path(), &url, &["workflow", "status", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let listed = json_of(&stdout);
    assert_eq!(listed["shared"], true);
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{listed}");
    let laptop_run = &runs[0];
    assert_eq!(laptop_run["workflow"], "build");
    assert_eq!(laptop_run["status"], "failed");
    assert_eq!(laptop_run["run_id"], 1);
    assert_eq!(laptop_run["user"], "ada@example.com");
    assert_eq!(laptop_run["trigger"], "manual");
    let laptop_root = std::fs::canonicalize(laptop.path()).unwrap();
    assert_eq!(laptop_run["clone"], laptop_root.display().to_string());
    let steps: Vec<(&str, &str, i64)> = laptop_run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap(), s["attempts"].as_i64().unwrap()))
        .collect();
    assert_eq!(steps, [("compile", "succeeded", 1), ("test", "failed", 1)]);
    assert_eq!(laptop_run["steps"][1]["exit_code"], 3);
    let tail = laptop_run["steps"][0]["output_tail"].as_str().unwrap();
    assert!(tail.starts_with("compiled\ntoken="), "{tail}");
    assert!(tail.contains("[stderr]\nbin\u{FFFD}ary"), "a NUL is stored as U+FFFD: {tail}");

    // The run's shared id shows it in detail anywhere; the history lists it.
    let id = laptop_run["id"].as_str().unwrap().to_owned();
    let (code, stdout, stderr) = run(desktop.path(), &url, &["workflow", "status", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("run {id} of build: failed, by ada@example.com on ")), "{stdout}");
    assert!(stdout.contains(&format!("in {} (run 1 there)", laptop_root.display())), "{stdout}");
    assert!(
        stdout.contains("\n  succeeded  compile (1 attempts)\n  failed     test (1 attempts)"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(desktop.path(), &url, &["workflow", "history"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.lines().nth(1).is_some_and(|l| l.starts_with(&id) && l.contains("failed")), "{stdout}");
    // A run of this clone goes beside it; an id nobody has is said so.
    let (code, _, stderr) = run(desktop.path(), &url, &["workflow", "run", "build"]);
    assert_eq!(code, 1, "{stderr}");
    let (_, stdout, _) = run(laptop.path(), &url, &["workflow", "history", "--format", "json"]);
    let clones: Vec<String> = json_of(&stdout)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["clone"].as_str().unwrap().to_owned())
        .collect();
    let desktop_root = std::fs::canonicalize(desktop.path()).unwrap().display().to_string();
    assert_eq!(clones, [desktop_root, laptop_root.display().to_string()]);
    let (code, _, stderr) = run(desktop.path(), &url, &["workflow", "status", "00000000000000ff"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("there is no workflow run 00000000000000ff in the team's store"), "{stderr}");

    // The secret the steps printed, and the variable's value, are nowhere in the database.
    let dump = cluster.psql(
        database(&url),
        "SELECT string_agg(coalesce(output_tail, '') || coalesce(error, ''), '|') FROM workflow_run_step",
    );
    assert!(dump.contains("token="), "{dump}");
    assert!(!dump.contains(&secret()), "{dump}");
    let runs_text =
        cluster.psql(database(&url), "SELECT string_agg(coalesce(error, ''), '|') FROM workflow_run");
    assert!(!runs_text.contains(&secret()), "{runs_text}");
    // Each run is one row, each step one, whatever was written in between.
    assert_eq!(cluster.psql(database(&url), "SELECT count(*) FROM workflow_run"), "2");
    assert_eq!(cluster.psql(database(&url), "SELECT count(*) FROM workflow_run_step"), "4");
    assert_eq!(
        cluster.psql(database(&url), "SELECT count(*), min(name) FROM workflow_definition"),
        "1|build"
    );
}

fn hold_workflow(control: &Path) -> String {
    let c = control.display();
    format!(
        r#"name: hold
steps:
  - id: before
    run: {{ shell: "echo before" }}
  - id: hold
    needs: [before]
    run:
      shell: "touch {c}/held; while [ ! -e {c}/release ]; do sleep 0.02; done; echo held"
  - id: after
    needs: [hold]
    run:
      shell: "touch {c}/waiting; while [ ! -e {c}/release-after ]; do sleep 0.02; done; echo after"
"#
    )
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
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return;
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
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + TIMEOUT;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::yield_now();
    }
}

#[test]
fn a_run_that_goes_on_while_the_database_is_down_reaches_it_once_in_its_final_state() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let control = tempfile::tempdir().unwrap();
    let laptop = clone("https://github.com/acme/shapes.git", &[("hold", &hold_workflow(control.path()))]);
    let mut command = acas(laptop.path(), &url);
    command.args(["workflow", "run", "hold"]);
    let mut running = Running::start(command);
    wait_for_file(&control.path().join("held"));
    until_psql(
        &url,
        "SELECT string_agg(step_id || '=' || status, ',' ORDER BY position) FROM workflow_run_step",
        "before=succeeded,hold=running,after=pending",
    );
    let before_outage: i64 =
        cluster.psql(database(&url), "SELECT version FROM workflow_run").parse().unwrap();

    // The database goes away; the step ends meanwhile, and the run goes on to the next.
    cluster.stop();
    std::fs::write(control.path().join("release"), "").unwrap();
    wait_for_file(&control.path().join("waiting"));
    running.expect("workflow runs are kept here until the shared store can be reached again");
    cluster.start_again();
    // What the run owed is written once the database is back, while the run still goes on.
    until_psql(
        &url,
        "SELECT string_agg(step_id || '=' || status, ',' ORDER BY position) FROM workflow_run_step",
        "before=succeeded,hold=succeeded,after=running",
    );
    std::fs::write(control.path().join("release-after"), "").unwrap();
    let (code, lines) = running.finish();
    assert_eq!(code, 0, "{lines:?}");

    let db = database(&url);
    assert_eq!(cluster.psql(db, "SELECT count(*), min(status) FROM workflow_run"), "1|succeeded");
    assert_eq!(
        cluster.psql(
            db,
            "SELECT string_agg(step_id || '=' || status || '/' || attempts, ',' ORDER BY position) FROM workflow_run_step"
        ),
        "before=succeeded/1,hold=succeeded/1,after=succeeded/1"
    );
    let after: i64 = cluster.psql(db, "SELECT version FROM workflow_run").parse().unwrap();
    assert!(after > before_outage, "the run's version grew: {before_outage} then {after}");
    let said =
        lines.iter().filter(|l| l.contains("workflow runs are kept here until the shared store")).count();
    assert_eq!(said, 1, "the outage is said once: {lines:?}");
}

#[test]
fn a_second_acas_serve_hears_the_run_of_another_clone_and_lists_it() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("build", BUILD)]);
    let desktop = clone("https://github.com/Acme/shapes", &[("build", BUILD)]);
    let mut editor = LspClient::start_in(desktop.path(), &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(desktop.path()), json!({}));
    editor.expect_log("hearing the shared store's changes");

    let (code, _, stderr) = run(laptop.path(), &url, &["workflow", "run", "build"]);
    assert_eq!(code, 1, "{stderr}");
    editor.expect("acas/runsChanged from the laptop", |m| m["method"] == "acas/runsChanged");
    let listed = editor.request("acas/workflows", json!(null));
    let team = listed["result"]["teamRuns"].as_array().unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(team.len(), 1, "{listed}");
    assert_eq!(team[0]["workflow"], "build");
    assert_eq!(team[0]["status"], "failed");
    assert_eq!(team[0]["runId"], 1);
    let step = &team[0]["steps"][1];
    assert_eq!(
        (&step["id"], &step["status"], &step["attempts"], &step["exitCode"]),
        (&json!("test"), &json!("failed"), &json!(1), &json!(3))
    );
    assert!(listed["result"]["runs"].as_array().unwrap().is_empty(), "the desktop ran nothing itself");
    assert_eq!(editor.shutdown(), 0);
}

#[test]
fn hostile_rows_in_the_shared_store_do_not_stop_a_reader() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("https://github.com/acme/shapes.git", &[("build", BUILD)]);
    let (code, _, stderr) = run(laptop.path(), &url, &["workflow", "run", "build"]);
    assert_eq!(code, 1, "{stderr}");
    let db = database(&url);
    // Another program writes what ACAS never would: an unknown status, escape sequences, a huge
    // output, a step of a status nobody knows.
    cluster.psql(
        db,
        "UPDATE workflow_run SET status = 'exploded', workflow = E'evil\\x1b[2J', error = repeat('e', 5000000)",
    );
    cluster.psql(
        db,
        "UPDATE workflow_run_step SET status = 'sideways', output_tail = repeat('o', 20000000) WHERE step_id = 'test'",
    );
    cluster.psql(
        db,
        &format!(
            "INSERT INTO workflow_run (id, repository, local_id, user_name, host, clone, workflow, definition_hash,
                 trigger, status, created_ms, version, updated_ms)
             VALUES ('zz', '{REPOSITORY}', -5, E'\\x07', 'h', 'c', 'w', 'x', 't', 'running', 1, 1, 1)"
        ),
    );
    // A run claiming more steps than any listing shows: a reader holds only what it lists.
    cluster.psql(
        db,
        "INSERT INTO workflow_run_step (run_id, step_id, position, status, attempts, output_tail, version)
         SELECT 'zz', 's' || n, n, 'succeeded', 1, repeat('x', 8192), 1 FROM generate_series(1, 5000) AS n",
    );
    let (code, stdout, stderr) = run(laptop.path(), &url, &["workflow", "status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("of evil\\u{1b}[2J: unknown (exploded), by ada@example.com"), "{stdout}");
    assert!(stdout.contains("unknown (sideways) test"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "no control character reaches the terminal"
    );
    assert!(stdout.len() < 100_000, "long text is cut: {} bytes", stdout.len());
    let (code, stdout, stderr) = run(laptop.path(), &url, &["workflow", "status", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let listed = json_of(&stdout);
    assert_eq!(listed["runs"].as_array().unwrap().len(), 2, "{stdout:.400}");
    let many = listed["runs"].as_array().unwrap().iter().find(|r| r["run_id"] == -5).unwrap();
    assert_eq!(many["steps"].as_array().unwrap().len(), acas::store::postgres::runs::MAX_LISTED_STEPS);

    let mut editor = LspClient::start_in(laptop.path(), &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(laptop.path()), json!({}));
    let listed = editor.request("acas/workflows", json!(null));
    let team = listed["result"]["teamRuns"].as_array().unwrap_or_else(|| panic!("{listed:.400}"));
    let evil = team.iter().find(|r| r["runId"] == 1).unwrap();
    assert!(evil.get("status").is_none(), "an unknown status is left out: {evil:.300}");
    assert!(evil["steps"][1].get("status").is_none());
    assert_eq!(editor.shutdown(), 0);
}

fn pg(url: &str) -> PgStore {
    let identity = Identity { repository: REPOSITORY.to_owned(), user: "ada@example.com".to_owned() };
    PgStore::connect(&DatabaseUrl::parse(url).unwrap(), identity, &PgOptions::default()).unwrap()
}

fn shared_run(version: i64, status: &str, step_status: &str) -> SharedRun {
    SharedRun {
        id: "0123456789abcdef".to_owned(),
        local_id: 7,
        user: "ada@example.com".to_owned(),
        host: "laptop".to_owned(),
        clone: "/src/shapes".to_owned(),
        workflow: "build".to_owned(),
        definition_hash: "h".to_owned(),
        trigger: "manual".to_owned(),
        status: status.to_owned(),
        error: None,
        created_ms: 1,
        started_ms: Some(2),
        finished_ms: None,
        version,
        steps: vec![SharedStep {
            step_id: "compile".to_owned(),
            position: 0,
            status: step_status.to_owned(),
            attempts: 1,
            started_ms: Some(2),
            finished_ms: None,
            exit_code: None,
            error: None,
            output_tail: Some("a\0b".to_owned()),
        }],
    }
}

#[test]
fn publishing_a_run_is_idempotent_and_never_moves_it_backwards_on_either_engine() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
    let boards: [Box<dyn RunBoard>; 2] = [Box::new(pg(&url)), Box::new(sqlite)];
    for (i, board) in boards.iter().enumerate() {
        let shared = i == 0;
        assert_eq!(board.publish_run(&shared_run(5, "running", "running"), None, 10).unwrap(), shared);
        // The same state again, and an older one arriving late, change nothing.
        assert!(!board.publish_run(&shared_run(5, "running", "running"), None, 11).unwrap());
        assert!(!board.publish_run(&shared_run(3, "queued", "pending"), None, 12).unwrap());
        assert_eq!(board.publish_run(&shared_run(6, "succeeded", "succeeded"), None, 13).unwrap(), shared);
        let listed = board.team_runs(10).unwrap();
        if !shared {
            // The workspace's SQLite holds its runs in its own tables: nothing is mirrored.
            assert!(listed.is_empty());
            assert_eq!(board.team_run("0123456789abcdef").unwrap(), None);
            continue;
        }
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].status.as_str(), listed[0].version), ("succeeded", 6));
        assert_eq!(listed[0].steps[0].status, "succeeded");
        assert_eq!(listed[0].steps[0].output_tail.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(board.team_run("0123456789abcdef").unwrap().as_ref(), listed.first());
    }
    // Racing writers of every version leave the highest.
    let writers: Vec<_> = (7..15)
        .map(|version| {
            let url = url.clone();
            std::thread::spawn(move || {
                pg(&url).publish_run(&shared_run(version, "running", "running"), None, 20)
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap().unwrap();
    }
    assert_eq!(cluster.psql(database(&url), "SELECT version FROM workflow_run"), "14");
    assert_eq!(cluster.psql(database(&url), "SELECT version FROM workflow_run_step"), "14");
}
