//! `acas mcp` driven by a real MCP client: the official Python SDK (`mcp` from PyPI), over
//! stdio and over streamable HTTP, against a real workspace (a git repository with a syntax
//! error, a workflow, a secret to redact). `tests/mcp/drive.py` is the agent; it asserts what a
//! client must see and reports it, and these tests check the report.
//!
//! The SDK is installed by `scripts/install-checker-tools.sh` (which `.ci/run` runs) into the
//! tools' venv that `cargo xtask test` puts first on PATH. A test fails when it is absent.

use std::path::Path;
use std::process::Command;

use acas_e2e::{LspClient, acas_bin, file_uri};
use serde_json::{Value, json};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .status()
        .expect("running git");
    assert!(status.success(), "git {args:?} failed");
}

/// A git repository with a committed clean file, an uncommitted broken one (holding a secret)
/// and a workflow with an input.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("good.py"), "def f():\n    return 1\n").unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "good.py"]);
    git(root, &["commit", "-q", "-m", "Add f"]);
    std::fs::write(root.join("good.py"), "def f():\n    return 1\n# rotated\n").unwrap();
    git(root, &["commit", "-q", "-am", "rotate db password to Zq8rT2mLw9vBn4Ks"]);
    std::fs::write(root.join("leak.py"), "key = 1 AKIAIOSFODNN7EXAMPLE\n").unwrap();
    std::fs::write(
        root.join("broken.py"),
        "def g(:\n    key = \"sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA_2O76UMFxFkM\"\n    return key\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(
        root.join(".acas/workflows/hello.yaml"),
        "name: hello\non:\n  manual: { inputs: { who: { type: string, default: \"world\" } } }\nsteps:\n  - id: greet\n    run: [\"echo\", \"hello {{ inputs.who }}\"]\n",
    )
    .unwrap();
    dir
}

/// Runs the agent's scenario and returns its report.
fn drive(scenario: &str) -> Value {
    run_script("drive.py", scenario, &workspace())
}

/// Runs `tests/mcp/SCRIPT SCENARIO ACAS WORKSPACE` and returns the report it printed last.
fn run_script(script: &str, scenario: &str, workspace: &tempfile::TempDir) -> Value {
    let python = acas_e2e::python_with("mcp, httpx2");
    let config = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join(script);
    let output = Command::new(python)
        .arg(&script)
        .arg(scenario)
        .arg(acas_bin())
        .arg(workspace.path().canonicalize().unwrap())
        .env("XDG_CONFIG_HOME", config.path())
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .expect("running the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the MCP client failed ({}):\n{stderr}\n{stdout}", output.status);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("the client's report is not JSON ({e}): {stdout}"))
}

fn check_report(report: &Value) {
    let tools: Vec<&str> = report["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(
        tools,
        [
            "activity",
            "check",
            "context",
            "explain",
            "lock_add",
            "lock_list",
            "problems",
            "run_status",
            "run_workflow",
            "task_claim",
            "task_create",
            "task_done",
            "task_fail",
            "task_heartbeat",
            "task_list",
            "task_release",
            "task_show",
            "workflows"
        ]
    );
    assert!(report["check_errors"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["problems"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["context_tokens"].as_u64().unwrap() <= 400, "{report}");
    assert!(report["explain_error"].as_str().unwrap().contains("no AI provider is configured"), "{report}");
    assert_eq!(report["run"], "succeeded");
    assert_eq!(report["subscription"], "fired");
    assert!(report["agent_rows"].as_u64().unwrap() >= 5, "{report}");
    assert_eq!(report["bad_arguments"], 13);
    assert_eq!(report["secrets_handed"], 0);
}

#[test]
fn an_agent_uses_every_tool_over_stdio() {
    let report = drive("stdio");
    check_report(&report);
}

#[test]
fn an_agent_uses_every_tool_over_http_with_the_token_only() {
    let report = drive("http");
    check_report(&report);
    assert_eq!(report["unauthorized"], 401);
}

/// Two agents, each its own `acas mcp` process, on one repository: different tasks, a lock
/// refused naming its holder, a silent agent's task back in the queue, a dependency unblocking the
/// next task, every call in the audit log's hash chain.
#[test]
fn two_agents_share_one_queue() {
    let report = run_script("agents.py", "two_agents", &workspace());
    assert_eq!(report["claimed"].as_array().unwrap().len(), 2, "{report}");
    assert_ne!(report["claimed"][0], report["claimed"][1], "{report}");
    assert!(report["lock_refused"].as_str().unwrap().contains("agent-a/"), "{report}");
    assert_eq!(report["returned"], "queued");
    assert!(report["tool_call_records"].as_u64().unwrap() >= 15, "{report}");
}

/// Four agents claiming at once from their own processes: no task given twice, no path locked
/// by two agents; two clients of one name are two holders.
#[test]
fn agents_racing_for_claims_never_share_a_task_or_a_path() {
    let report = run_script("agents.py", "race", &workspace());
    assert!(report["claimed"].as_u64().unwrap() >= 4, "{report}");
    assert_ne!(report["twins"][0], report["twins"][1], "{report}");
}

/// `acas serve` (an editor over stdio) and `acas mcp` (an agent, through the Python SDK) on one
/// workspace see one truth: the problem of a buffer open in the editor (not on disk) is in the
/// agent's `problems`; the task the agent makes of it is in the editor's `acas/tasks`, and the
/// editor is told with `acas/tasksChanged`.
#[test]
fn the_editor_and_an_agent_see_one_truth() {
    let workspace = workspace();
    let root = workspace.path().canonicalize().unwrap();
    let mut editor = LspClient::start_in(&root, &[]);
    editor.initialize(Some(&root), json!({}));
    let before = editor.request("acas/tasks", json!({}));
    assert_eq!(before["result"]["tasks"], json!([]), "{before}");
    let uri = file_uri(&root.join("editor.py"));
    editor.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": "def e(:\n    pass\n" } }),
    );
    editor.expect_diagnostics(&uri, |p| !p["diagnostics"].as_array().unwrap().is_empty());

    let report = run_script("agents.py", "editor", &workspace);

    editor.expect("acas/tasksChanged", |m| m["method"] == "acas/tasksChanged");
    let after = editor.request("acas/tasks", json!({}));
    let tasks = after["result"]["tasks"].as_array().unwrap();
    let task = tasks.iter().find(|t| t["id"] == report["task"]).unwrap_or_else(|| panic!("{after}"));
    assert_eq!(task["state"], "queued");
    assert_eq!(task["source"], "problem");
    assert_eq!(task["createdBy"], report["agent"]);
    assert!(task["createdBy"].as_str().unwrap().starts_with("editor-agent/"), "{task}");
    assert_eq!(task["paths"], json!(["editor.py"]));
    assert_eq!(editor.shutdown(), 0);
}
