//! Workflows in `acas serve`: run from the editor with typed inputs and followed through
//! `acas/workflowRun` and `$/progress`, started by a file change, and resumed at start after the
//! process that ran them was killed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use acas_e2e::{LspClient, TIMEOUT, acas_bin, file_uri, is_progress};
use serde_json::{Value, json};

const HELLO: &str = r#"name: hello
on:
  manual:
    inputs:
      who: { type: string, required: true }
steps:
  - id: greet
    run: ["sh", "-c", "printf 'hello %s' \"$1\" > greeting.txt", "sh", "{{ inputs.who }}"]
  - id: tell
    needs: [greet]
    uses: editor.notify
    with: { message: "greeted {{ inputs.who }}" }
"#;

const ON_SAVE: &str = r#"name: on-save
on:
  file_change: { paths: ["src/**/*.txt"], events: [created, modified], debounce: 10ms }
steps:
  - id: record
    run: ["sh", "-c", "printf '%s\n' \"$1\" >> seen.log", "sh", "{{ trigger.path }}"]
"#;

fn workspace(workflows: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&folder).unwrap();
    for (name, text) in workflows {
        std::fs::write(folder.join(name), text).unwrap();
    }
    dir
}

/// `acas serve` on `root`, trusted to start its workflows by themselves.
fn start(root: &Path) -> LspClient {
    let mut client = LspClient::start_trusting(root, &[]);
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    client.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });
    client
}

/// Waits for the `acas/workflowRun` notification of `run` with a final status.
fn finished(client: &mut LspClient, workflow: &str) -> Value {
    client.expect(&format!("the end of a run of {workflow}"), |m| {
        m["method"] == "acas/workflowRun"
            && m["params"]["workflow"] == workflow
            && matches!(m["params"]["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
    })["params"]
        .clone()
}

fn allowed(m: &Value) -> bool {
    is_progress(m) || m["method"] == "acas/workflowRun" || m["method"] == "textDocument/publishDiagnostics"
}

#[test]
fn the_editor_runs_a_workflow_with_inputs_and_follows_it() {
    let dir = workspace(&[("hello.yaml", HELLO)]);
    let mut client = start(dir.path());

    let listed = client.request("acas/workflows", Value::Null)["result"].clone();
    let hello = &listed["workflows"][0];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["uri"], file_uri(&dir.path().join(".acas/workflows/hello.yaml")));
    assert_eq!(hello["triggers"], json!(["manual"]));
    assert_eq!(hello["inputs"], json!([{ "name": "who", "type": "string", "required": true }]));
    assert_eq!(listed["runs"], json!([]));

    // A missing required input is refused before anything runs.
    let refused = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "hello" }] }),
    );
    assert!(refused["error"]["message"].as_str().unwrap().contains("who"), "{refused:#}");
    assert_eq!(
        refused["error"]["data"],
        json!({ "kind": "invalidInputs", "input": "who", "reason": refused["error"]["message"] })
    );

    let started = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "hello", "inputs": { "who": "ada; rm -rf ~" } }] }),
    );
    let run = started["result"]["runId"].as_i64().expect("a run id");
    let done = finished(&mut client, "hello");
    assert_eq!(done["runId"], run);
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        done["steps"],
        json!([
            { "id": "greet", "status": "succeeded", "attempts": 1 },
            { "id": "tell", "status": "succeeded", "attempts": 1 },
        ])
    );
    // The input reached the command as one argument, never through a shell.
    assert_eq!(std::fs::read_to_string(dir.path().join("greeting.txt")).unwrap(), "hello ada; rm -rf ~");
    // editor.notify is a message in the editor.
    let shown = client.expect("the step's message", |m| m["method"] == "window/showMessage");
    assert_eq!(shown["params"]["message"], "greeted ada; rm -rf ~");
    // The run had a progress of its own, which ended with its status.
    let token = format!("acas/workflow/{run}");
    client.expect("the run's progress end", |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    });

    let listed = client.request("acas/workflows", Value::Null)["result"].clone();
    assert_eq!(
        (listed["runs"][0]["runId"].as_i64(), listed["runs"][0]["status"].as_str()),
        (Some(run), Some("succeeded"))
    );
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

#[test]
fn a_file_change_starts_a_workflow() {
    let dir = workspace(&[("on-save.yaml", ON_SAVE)]);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let mut client = start(dir.path());

    std::fs::write(dir.path().join("src/notes.txt"), "one\n").unwrap();
    let done = finished(&mut client, "on-save");
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join("seen.log")).unwrap(), "src/notes.txt\n");
    // A path outside the globs starts nothing: the next run is for the matching file only.
    std::fs::write(dir.path().join("other.txt"), "x\n").unwrap();
    std::fs::write(dir.path().join("src/more.txt"), "two\n").unwrap();
    let done = finished(&mut client, "on-save");
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("seen.log")).unwrap(),
        "src/notes.txt\nsrc/more.txt\n"
    );
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

const GATED: &str = r#"name: gated
steps:
  - id: first
    run: ["sh", "-c", "echo first >> lines"]
  - id: second
    needs: [first]
    run: ["sh", "-c", "echo second >> lines; while [ ! -e gate ]; do sleep 0.01; done"]
    retry: { attempts: 2, delay: 10ms }
  - id: third
    needs: [second]
    run: ["sh", "-c", "echo third >> lines"]
"#;

/// Starts `gated` from the command line in `root` and kills it with SIGKILL while its second
/// step waits, then opens the gate: the run is left interrupted.
fn interrupt_gated(root: &Path) {
    let lines = || std::fs::read_to_string(root.join("lines")).unwrap_or_default();
    let mut child = Command::new(acas_bin())
        .args(["workflow", "run", "gated"])
        .current_dir(root)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !lines().contains("second") {
        assert!(Instant::now() < deadline, "the second step never started: {}", lines());
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(root.join("gate"), "").unwrap();
}

/// A cloned repository can carry a state with an interrupted run: in a workspace the user never
/// trusted, the editor's server does not resume it by itself, and says so.
#[test]
fn serve_does_not_resume_a_run_in_an_untrusted_workspace() {
    let dir = workspace(&[("gated.yaml", GATED)]);
    interrupt_gated(dir.path());
    let config = tempfile::tempdir().unwrap();
    let mut client = LspClient::start(&[("XDG_CONFIG_HOME", config.path().to_str().unwrap())]);
    client.initialize(Some(dir.path()), json!({}));
    let said = client.expect("the editor told that runs wait", |m| {
        m["method"].as_str().is_some_and(|m| m.starts_with("window/"))
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("interrupted workflow runs wait"))
    });
    assert!(said["params"]["message"].as_str().unwrap().contains("acas trust"), "{said}");
    assert_eq!(client.shutdown(), 0);
    let lines = std::fs::read_to_string(dir.path().join("lines")).unwrap();
    assert_eq!(lines, "first\nsecond\n", "the run was resumed in an untrusted workspace");
}

#[test]
fn serve_resumes_a_run_whose_process_was_killed() {
    let dir = workspace(&[("gated.yaml", GATED)]);
    let lines = || std::fs::read_to_string(dir.path().join("lines")).unwrap_or_default();
    interrupt_gated(dir.path());

    // The editor's server takes the run over at start and finishes it.
    let mut client = start(dir.path());
    let done = finished(&mut client, "gated");
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let steps: Vec<(&str, &str)> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("first", "succeeded"), ("second", "succeeded"), ("third", "succeeded")],
        "the step finished before the kill is told as succeeded too: {done:#}"
    );
    assert_eq!(
        lines(),
        "first\nsecond\nsecond\nthird\n",
        "the completed step ran once, the interrupted one again"
    );
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

/// A gated first step, then a step whose template would spin for hours without its fuel limit.
const HOSTILE: &str = r#"name: hostile
steps:
  - id: gate
    run: ["sh", "-c", "echo started >> started; while [ ! -e gate ]; do sleep 0.01; done"]
    retry: { attempts: 2, delay: 10ms }
  - id: spin
    needs: [gate]
    run: ["echo", "{% for a in 'x' * 99999 %}{% for b in 'x' * 99999 %}{% endfor %}{% endfor %}"]
"#;

#[test]
fn resumed_runs_with_hostile_templates_do_not_stall_the_server() {
    let dir = workspace(&[("hostile.yaml", HOSTILE)]);
    let started = || std::fs::read_to_string(dir.path().join("started")).unwrap_or_default();
    // Two runs interrupted by SIGKILL while their first step waits: one per runtime worker.
    for n in 1..=2 {
        let mut child = Command::new(acas_bin())
            .args(["workflow", "run", "hostile"])
            .current_dir(dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join(".no-user-config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while started().lines().count() < n {
            assert!(Instant::now() < deadline, "run {n} never started");
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    std::fs::write(dir.path().join("gate"), "").unwrap();

    // The server resumes both at start, and still answers: `initialize`, then a request.
    let mut client = start(dir.path());
    let status = client.request("acas/status", json!(null));
    assert!(status.get("error").is_none(), "{status:#}");
    for _ in 0..2 {
        let done = finished(&mut client, "hostile");
        assert_eq!(done["status"], "failed", "{done:#}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(error.contains("template_fuel"), "{error}");
    }
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

#[test]
fn ai_steps_of_a_cli_run_use_the_configured_provider_and_its_budget() {
    use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&[(
        "ask.yaml",
        "name: ask\nsteps:\n  - id: q\n    uses: ai.ask\n    with: { prompt: \"Name one prime number\" }\n",
    )]);
    std::fs::write(dir.path().join(".acas/config.toml"), fake.provider_toml("primary", "gpt-4o-mini"))
        .unwrap();
    fake.push(Reply::Text {
        text: "Seven.".into(),
        usage: FakeUsage { input_tokens: 1000, output_tokens: 10, cached_input_tokens: 0 },
    });
    let output = Command::new(acas_bin())
        .args(["workflow", "run", "ask", "--format", "json"])
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join(".no-user-config"))
        .env("ACAS_FAKE_KEY", fake.api_key())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let run: Value = serde_json::from_str(&stdout).unwrap();
    let step = &run["steps"][0];
    assert_eq!(
        (step["status"].as_str(), step["output"]["text"].as_str()),
        (Some("succeeded"), Some("Seven."))
    );
    assert!(fake.requests()[0].body.to_string().contains("Name one prime number"));

    // The call is in the cost report, under the workflow category.
    let (code, stdout, stderr) = acas_e2e::run_acas(&["cost", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let cost: Value = serde_json::from_str(&stdout).unwrap();
    assert!(stdout.contains("workflow"), "{cost:#}");
    // gpt-4o-mini: $0.15/M input, $0.60/M output.
    let expected = (1000.0 * 0.15 + 10.0 * 0.60) / 1e6;
    assert!((cost["total_usd"].as_f64().unwrap_or(-1.0) - expected).abs() < 1e-9, "{cost:#}");
}

#[test]
fn a_persisting_type_error_starts_workflows_by_trigger_and_by_rule() {
    let on_type = r#"name: on-type
on:
  diagnostic: { category: type, severity: error, persists: 0s }
steps:
  - id: note
    run: ["sh", "-c", "printf '%s:%s\n' \"$1\" \"$2\" >> triggered.log", "sh", "{{ trigger.path }}", "{{ trigger.line }}"]
"#;
    let by_rule = r#"name: by-rule
steps:
  - id: note
    run: ["sh", "-c", "printf '%s %s\n' \"$1\" \"$2\" >> ruled.log", "sh", "{{ trigger.kind }}", "{{ trigger.path }}"]
"#;
    let dir = workspace(&[("on-type.yaml", on_type), ("by-rule.yaml", by_rule)]);
    std::fs::write(
        dir.path().join(".acas/config.toml"),
        "[[rules]]\ncategory = \"type\"\npersists = \"0s\"\nidle = \"0s\"\naction = \"workflow\"\nworkflow = \"by-rule\"\n",
    )
    .unwrap();
    let ts = dir.path().join("cart.ts");
    std::fs::write(&ts, "export function total(): number {\n  return \"12\";\n}\n").unwrap();
    let mut client = start(dir.path());
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": file_uri(&ts), "source": "ts", "diagnostics": [{
            "range": { "start": { "line": 1, "character": 2 }, "end": { "line": 1, "character": 8 } },
            "severity": 1, "code": 2322, "message": "Type 'string' is not assignable to type 'number'." }] }),
    );
    let mut ended: Vec<String> = Vec::new();
    while ended.len() < 2 {
        let done = client.expect("a run's end", |m| {
            m["method"] == "acas/workflowRun"
                && matches!(m["params"]["status"].as_str(), Some("succeeded" | "failed"))
        });
        assert_eq!(done["params"]["status"], "succeeded", "{done:#}");
        ended.push(done["params"]["workflow"].as_str().unwrap().to_owned());
    }
    ended.sort();
    assert_eq!(ended, ["by-rule", "on-type"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("triggered.log")).unwrap(), "cart.ts:2\n");
    assert_eq!(std::fs::read_to_string(dir.path().join("ruled.log")).unwrap(), "rule cart.ts\n");
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

#[test]
fn a_failed_step_that_names_a_file_shows_on_that_file_until_the_workflow_passes() {
    let lint = r#"name: lint
on:
  manual:
    inputs:
      fail: { type: boolean, default: true }
steps:
  - id: check
    run: ["sh", "-c", "if [ \"$1\" = true ]; then echo 'src/app.py:2:5: F401 `os` imported but unused' >&2; exit 1; fi", "sh", "{{ inputs.fail }}"]
"#;
    let dir = workspace(&[("lint.yaml", lint)]);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let app = dir.path().join("src/app.py");
    std::fs::write(&app, "print('hi')\nimport os\n").unwrap();
    let mut client = start(dir.path());
    let run = |client: &mut LspClient, fail: bool| {
        let started = client.request(
            "workspace/executeCommand",
            json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "lint", "inputs": { "fail": fail } }] }),
        );
        assert!(started["result"]["runId"].is_i64(), "{started:#}");
        finished(client, "lint")
    };
    assert_eq!(run(&mut client, true)["status"], "failed");
    let published = client.expect_diagnostics(&file_uri(&app), |p| p["diagnostics"] != json!([]));
    let d = &published["diagnostics"][0];
    assert_eq!(d["source"], "acas-workflow-run");
    assert_eq!(d["range"]["start"], json!({ "line": 1, "character": 4 }));
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .starts_with("F401 `os` imported but unused (workflow `lint`, step `check`"),
        "{d:#}"
    );

    // The next run clears it, and it stays clear when that run passes.
    assert_eq!(run(&mut client, false)["status"], "succeeded");
    client.expect_diagnostics(&file_uri(&app), |p| p["diagnostics"] == json!([]));
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

#[test]
fn a_failed_step_that_prints_a_traceback_shows_on_its_innermost_frame_in_the_workspace() {
    let crash = "name: crash\non:\n  manual: {}\nsteps:\n  - id: test\n    run: [\"sh\", \"crash.sh\"]\n";
    let dir = workspace(&[("crash.yaml", crash)]);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    // A Python traceback whose innermost frame is src/lib.py, line 2.
    let traceback = "Traceback (most recent call last):\n  File \"src/main.py\", line 3, in <module>\n    run()\n  File \"src/lib.py\", line 2, in run\n    raise ValueError(\"bad input\")\nValueError: bad input\n";
    std::fs::write(dir.path().join("crash.sh"), format!("cat >&2 <<'END'\n{traceback}END\nexit 1\n"))
        .unwrap();
    let lib = dir.path().join("src/lib.py");
    std::fs::write(&lib, "def run():\n    raise ValueError(\"bad input\")\n").unwrap();
    std::fs::write(dir.path().join("src/main.py"), "from lib import run\n\nrun()\n").unwrap();
    let mut client = start(dir.path());
    let started = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "crash" }] }),
    );
    assert!(started["result"]["runId"].is_i64(), "{started:#}");
    assert_eq!(finished(&mut client, "crash")["status"], "failed");
    let published = client.expect_diagnostics(&file_uri(&lib), |p| p["diagnostics"] != json!([]));
    let d = &published["diagnostics"][0];
    assert_eq!(d["source"], "acas-workflow-run");
    assert_eq!(d["range"]["start"]["line"], 1, "{d:#}");
    assert_eq!(d["data"]["category"], "runtime", "{d:#}");
    assert!(d["message"].as_str().unwrap().contains("bad input"), "{d:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

#[test]
fn the_editor_shows_a_plan_for_approval_and_runs_it() {
    use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&[]);
    std::fs::write(dir.path().join(".acas/config.toml"), fake.provider_toml("primary", "gpt-4o-mini"))
        .unwrap();
    let task = |id: &str, word: &str, needs: &[&str]| {
        json!({ "id": id, "name": format!("Write {word}"), "description": format!("Appends {word}"), "action": "run",
                "with": { "argv": ["sh", "-c", format!("echo {word} >> out.txt")] }, "needs": needs, "priority": 1 })
    };
    let plan = json!({ "tasks": [task("a", "alpha", &[]), task("b", "beta", &["a"])] }).to_string();
    fake.push(Reply::text(&plan));
    fake.push(Reply::text(&plan));
    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));

    // Declined: nothing runs.
    client.answer("window/showMessageRequest", json!({ "title": "Cancel" }));
    let declined = plan_ready(&mut client, "write alpha then beta")["result"].clone();
    assert_eq!(
        (declined["approved"].as_bool(), declined["tasks"].as_u64()),
        (Some(false), Some(2)),
        "{declined:#}"
    );
    assert!(declined.get("runId").is_none());
    let shown = client.expect("the plan shown for approval", |m| m["method"] == "window/showMessageRequest");
    let message = shown["params"]["message"].as_str().unwrap();
    assert!(message.contains("write alpha then beta") && message.contains("Write alpha"), "{message}");
    assert_eq!(shown["params"]["actions"], json!([{ "title": "Run plan" }, { "title": "Cancel" }]));
    assert!(!dir.path().join("out.txt").exists());

    // Approved: the plan runs as a workflow, in order.
    client.answer("window/showMessageRequest", json!({ "title": "Run plan" }));
    let approved = plan_ready(&mut client, "write alpha then beta")["result"].clone();
    let run = approved["runId"].as_i64().expect("the approved plan runs");
    let done = client.expect("the plan's run end", |m| {
        m["method"] == "acas/workflowRun"
            && m["params"]["runId"] == run
            && m["params"]["status"] == "succeeded"
    });
    assert_eq!(done["params"]["steps"].as_array().unwrap().len(), 2, "{done:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "alpha\nbeta\n");
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| allowed(m) || m["method"] == "window/showMessageRequest");
}

/// Requests that wait on a locked store do not hold up the editor: with eight workflow starts
/// waiting for the lock, a document opened after them still gets its diagnostics first. The LSP
/// library handled four messages at once, so the fifth (the `didOpen`) waited for a start.
#[test]
fn requests_waiting_on_a_locked_store_do_not_hold_up_diagnostics() {
    let dir = workspace(&[("hello.yaml", HELLO)]);
    let mut client = start(dir.path());
    let db = rusqlite::Connection::open(dir.path().join(".acas/state.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let starts: Vec<i64> = (0..8)
        .map(|_| {
            client.request_async(
                "workspace/executeCommand",
                json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "hello", "inputs": { "who": "x" } }] }),
            )
        })
        .collect();
    let broken = dir.path().join("broken.rs");
    let uri = file_uri(&broken);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": "fn main() {\n    let x = (1;\n}\n" } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 1);
    assert_eq!(published["diagnostics"].as_array().unwrap().len(), 1, "{published:#}");
    let answered = client.take_all(|m| m["id"].as_i64().is_some_and(|id| starts.contains(&id)));
    assert!(answered.is_empty(), "the starts were answered before the diagnostics: {answered:#?}");
    db.execute_batch("ROLLBACK").unwrap();
    for id in starts {
        client.expect("a start's answer", |m| m["id"] == id && m.get("method").is_none());
    }
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| allowed(m) || m["method"] == "window/showMessage");
}

/// A re-run keeps the steps that succeeded: the editor is told so, not `pending`, and a list of
/// runs made afterwards says the same.
#[test]
fn a_rerun_tells_the_editor_of_the_steps_it_kept() {
    let flaky = r#"name: flaky
on: { manual: {} }
steps:
  - id: a
    run: ["true"]
  - id: b
    needs: [a]
    run: ["sh", "-c", "test -e marker"]
"#;
    let dir = workspace(&[("flaky.yaml", flaky)]);
    let mut client = start(dir.path());
    let run = |client: &mut LspClient, command: &str, arg: Value| {
        let answer =
            client.request("workspace/executeCommand", json!({ "command": command, "arguments": [arg] }));
        answer["result"]["runId"].as_i64().unwrap_or_else(|| panic!("{command}: {answer:#}"))
    };
    let first = run(&mut client, "acas.workflow.run", json!({ "workflow": "flaky" }));
    let failed = finished(&mut client, "flaky");
    assert_eq!((failed["runId"].as_i64(), failed["status"].as_str()), (Some(first), Some("failed")));
    std::fs::write(dir.path().join("marker"), "").unwrap();
    let second = run(&mut client, "acas.workflow.rerun", json!({ "runId": first }));
    let done = finished(&mut client, "flaky");
    assert_eq!(done["runId"].as_i64(), Some(second), "{done:#}");
    let steps = |state: &Value| -> Vec<String> {
        state["steps"].as_array().unwrap().iter().map(|s| format!("{} {}", s["id"], s["status"])).collect()
    };
    assert_eq!(steps(&done), ["\"a\" \"succeeded\"", "\"b\" \"succeeded\""], "{done:#}");
    let listed = client.request("acas/workflows", Value::Null)["result"].clone();
    let run =
        listed["runs"].as_array().unwrap().iter().find(|r| r["runId"].as_i64() == Some(second)).unwrap();
    assert_eq!(steps(run), steps(&done));
    assert!(listed["seq"].as_u64() > done["seq"].as_u64(), "a list is ordered after what was told before it");
    assert_eq!(client.shutdown(), 0);
    client.finish(allowed);
}

/// Runs `acas.plan` with `prompt`, which answers at once with a handle, and waits for the
/// `acas/planReady` of that handle: its params.
fn plan_ready(client: &mut LspClient, prompt: &str) -> Value {
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.plan", "arguments": [{ "prompt": prompt }] }),
    );
    let id = response["result"]["planId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
    client.expect("the plan's end", |m| m["method"] == "acas/planReady" && m["params"]["planId"] == id)["params"]
        .clone()
}

/// A cloned repository's workflow does not start by itself until the user trusts the
/// workspace: a file change starts nothing and the editor is told how to trust it; once
/// trusted, the next change runs it.
#[test]
fn an_untrusted_workspace_starts_no_workflow_by_itself() {
    let dir = workspace(&[("on-save.yaml", ON_SAVE)]);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let config = tempfile::tempdir().unwrap();
    let mut client = LspClient::start(&[("XDG_CONFIG_HOME", config.path().to_str().unwrap())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    client.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });

    std::fs::write(dir.path().join("src/notes.txt"), "one\n").unwrap();
    let said = client.expect("the editor told why nothing started", |m| {
        m["method"].as_str().is_some_and(|m| m.starts_with("window/"))
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("only once you trust it"))
    });
    assert!(said["params"]["message"].as_str().unwrap().contains("acas trust"), "{said}");
    client.expect_log("workflow `on-save` did not start by itself");
    assert!(!dir.path().join("seen.log").exists(), "the workflow ran in an untrusted workspace");

    acas_e2e::trust(dir.path(), config.path());
    std::fs::write(dir.path().join("src/more.txt"), "two\n").unwrap();
    let done = finished(&mut client, "on-save");
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join("seen.log")).unwrap(), "src/more.txt\n");
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| allowed(m) || m["method"].as_str().is_some_and(|m| m.starts_with("window/")));
}
