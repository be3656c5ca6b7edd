//! What a workflow run cannot do for itself, against the real binary: answer the approval it
//! waits for (with `acas approve`, even from a double-forked child, or by writing the row into
//! `state.db`), trust its own workspace, or start another run as `cli`; and the user's policy
//! holding against the workspace's, each file's verdict shown by `acas policy explain`.

use std::path::{Path, PathBuf};
use std::process::Command;

use acas_e2e::{acas_bin, run_acas, write_files};
use serde_json::Value;

/// A workspace with `files` written into it.
fn workspace(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write_files(&root, files);
    (dir, root)
}

/// Every record of the workspace's audit log (verification not asked).
fn records(root: &Path) -> Vec<Value> {
    let (code, stdout, stderr) =
        run_acas(&["audit", "--workspace", ".", "--format", "json", "--limit", "1000"], root);
    assert_eq!(code, 0, "{stderr}");
    let all: Value = serde_json::from_str(&stdout).unwrap();
    all["records"].as_array().unwrap().clone()
}

fn answered_approved(records: &[Value]) -> bool {
    records.iter().any(|r| r["kind"] == "policy_decision" && r["detail"]["answer"] == "approved")
}

const GATED_POLICY: &str = "\
approval_timeout: 3s
defaults:
  approve:
    commands: [\"touch\"]
";

#[test]
fn a_step_cannot_answer_the_approval_its_run_waits_for() {
    let acas = acas_bin();
    // The helper asks `acas approve 1` again and again from a double-forked child (re-parented
    // away from the step's shell), with the word hidden from the step's own command line.
    let helper = format!(
        "i=0\nwhile [ $i -lt 25 ]; do\n  ( '{}' $(echo approve) 1 >> approve.log 2>&1 & )\n  i=$((i+1))\n  sleep 0.2\ndone\n",
        acas.display()
    );
    let (_dir, root) = workspace(&[
        (".acas/policy.yaml", GATED_POLICY),
        ("helper.sh", &helper),
        (
            ".acas/workflows/selfapprove.yaml",
            "name: selfapprove\nsteps:\n  - id: helper\n    run: [\"sh\", \"helper.sh\"]\n  - id: gated\n    run: [\"touch\", \"gated\"]\n",
        ),
    ]);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "selfapprove", "--workspace", "."], &root);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(!root.join("gated").exists(), "the run approved its own step: {stdout}{stderr}");
    let log = std::fs::read_to_string(root.join("approve.log")).unwrap_or_default();
    assert!(log.contains("a workflow run cannot answer approvals"), "{log}");
    assert!(log.contains("workflow run 1 (acting for cli)"), "{log}");
    assert!(!answered_approved(&records(&root)));
}

/// A step that makes namespaces of its own (a new user, PID and mount namespace with its own
/// `/proc`, and the tree's mark dropped) finds no supervisor above it in `/proc`, but still
/// cannot answer the approval its run waits for: it is not in the namespaces of the ACAS that
/// asked.
#[test]
fn a_step_in_namespaces_of_its_own_cannot_answer_the_approval_its_run_waits_for() {
    let probe = Command::new("unshare").args(["-Urpf", "--mount-proc", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare -Urpf --mount-proc` (util-linux, user namespaces allowed)"
    );
    let acas = acas_bin();
    // Tries until the approval is there and an answer (accepted or refused) came back.
    let helper = format!(
        "i=0\nwhile [ $i -lt 100 ]; do\n  unshare -Urpf --mount-proc env -u ACAS_TREE '{}' approve 1 >> approve.log 2>&1 && exit 0\n  grep -q 'namespaces' approve.log && exit 0\n  i=$((i+1))\n  sleep 0.1\ndone\n",
        acas.display()
    );
    let (_dir, root) = workspace(&[
        (".acas/policy.yaml", GATED_POLICY),
        ("helper.sh", &helper),
        (
            ".acas/workflows/selfapprove.yaml",
            "name: selfapprove\nsteps:\n  - id: gated\n    run: [\"touch\", \"gated\"]\n  - id: helper\n    run: [\"sh\", \"helper.sh\"]\n",
        ),
    ]);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "selfapprove", "--workspace", "."], &root);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        !root.join("gated").exists(),
        "a step in namespaces of its own approved its run: {stdout}{stderr}"
    );
    let log = std::fs::read_to_string(root.join("approve.log")).unwrap_or_default();
    assert!(log.contains("approval 1 was asked by an ACAS in other namespaces"), "{log}");
    assert!(!answered_approved(&records(&root)));
}

#[test]
fn an_approval_written_into_the_database_does_not_count() {
    let (_dir, root) = workspace(&[
        (".acas/policy.yaml", GATED_POLICY),
        (
            ".acas/workflows/gated.yaml",
            "name: gated\nsteps:\n  - id: gated\n    run: [\"touch\", \"gated\"]\n",
        ),
    ]);
    let mut run = acas_e2e::start_workflow_run(&root, "gated", false);
    // Another process flips the pending row, as a step with sqlite3 could.
    let db = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let deadline = std::time::Instant::now() + acas_e2e::TIMEOUT;
    loop {
        let flipped = db
            .execute(
                "UPDATE policy_approval SET state = 'approved', answered_by = 'editor', answered_ms = 1 \
                 WHERE state = 'pending'",
                [],
            )
            .unwrap_or(0);
        if flipped > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no approval became pending");
        std::thread::yield_now();
    }
    let status = run.wait().unwrap();
    assert!(!status.success());
    assert!(!root.join("gated").exists(), "a row written into the database approved the step");
    let (code, stdout, stderr) = run_acas(&["audit", "verify", "--workspace", "."], &root);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("approval 1 was marked approved by editor in the database"), "{stdout}");
}

#[test]
fn a_step_cannot_trust_its_own_workspace() {
    let (_dir, root) = workspace(&[(
        ".acas/workflows/build.yaml",
        &format!(
            "name: build\nsteps:\n  - id: s\n    run: [\"{}\", \"trust\", \".\"]\n    continue_on_error: true\n",
            acas_bin().display()
        ),
    )]);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "build", "--workspace", "."], &root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let list = std::fs::read_to_string(root.join(".no-user-config/acas/trusted.json")).unwrap_or_default();
    assert!(!list.contains(&*root.to_string_lossy()), "the run trusted its workspace: {list}");
    let (_, stdout, _) = run_acas(&["checkers", "."], &root);
    assert!(stdout.contains("Trust: not trusted"), "{stdout}");
}

#[test]
fn a_run_started_by_a_step_acts_for_the_agent_of_the_enclosing_run() {
    let acas = acas_bin();
    let (_dir, root) = workspace(&[
        (
            ".acas/policy.yaml",
            "agents:\n  nested-agent:\n    workflows:\n      allow: [\"outer\"]\n    commands:\n      deny: [\"touch\"]\n",
        ),
        (
            ".acas/workflows/outer.yaml",
            &format!(
                "name: outer\nsteps:\n  - id: nested\n    run: [\"{}\", \"workflow\", \"run\", \"inner\"]\n",
                acas.display()
            ),
        ),
        (
            ".acas/workflows/inner.yaml",
            "name: inner\nsteps:\n  - id: t\n    run: [\"touch\", \"laundered\"]\n",
        ),
    ]);
    let config = tempfile::tempdir().unwrap();
    acas_e2e::trust(&root, config.path());
    let state = nested_run(&acas, &root, config.path());
    assert_eq!(state["status"], "failed", "{state:#}");
    assert!(!root.join("laundered").exists(), "the nested run acted as someone else");

    // The nested start was judged for the agent, and every record names it with its session.
    let decisions: Vec<Value> =
        records(&root).into_iter().filter(|r| r["kind"] == "policy_decision").collect();
    let nested = decisions
        .iter()
        .find(|r| r["subject"] == "workflow inner")
        .unwrap_or_else(|| panic!("no decision on starting inner: {decisions:#?}"));
    assert_eq!(nested["detail"]["outcome"], "deny", "{nested:#}");
    for record in &decisions {
        let actor = record["actor"].as_str().unwrap();
        let session = actor.strip_prefix("nested-agent/").unwrap_or_else(|| panic!("{record:#}"));
        assert!(session.len() == 8 && session.bytes().all(|b| b.is_ascii_hexdigit()), "{record:#}");
        assert_eq!(record["detail"]["agent"], actor, "{record:#}");
    }
}

#[test]
fn the_users_policy_holds_against_the_workspaces_and_explain_shows_both() {
    let (_dir, root) = workspace(&[
        (
            ".no-user-config/acas/policy.yaml",
            "defaults:\n  commands:\n    allow: [\"cargo test\"]\n  approve:\n    commands: [\"git push\"]\n  hosts:\n    allow: [\"api.github.com\"]\n",
        ),
        (
            ".acas/policy.yaml",
            "agents:\n  \"*\":\n    commands:\n      allow: [\"*\"]\n    hosts:\n      allow: [\"*\"]\n",
        ),
    ]);
    let explain = |args: &[&str]| {
        let mut all = vec!["policy", "explain", "--workspace", ".", "--format", "json"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run_acas(&all, &root);
        let answer: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        (code, answer)
    };
    let (code, push) = explain(&["run", "git push --force"]);
    assert_eq!((code, push["outcome"].as_str()), (1, Some("needs_approval")), "{push:#}");
    let verdicts = push["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2, "{push:#}");
    assert_eq!(verdicts[0]["outcome"], "allow", "{push:#}");
    assert_eq!(verdicts[1]["outcome"], "needs_approval", "{push:#}");
    assert_eq!(explain(&["run", "python3 x.py"]).1["outcome"], "deny");
    assert_eq!(explain(&["http", "evil.example"]).1["outcome"], "deny");
    assert_eq!(explain(&["run", "cargo test"]).1["outcome"], "allow");
}

#[test]
fn a_half_written_policy_denies_and_says_which_file() {
    let (_dir, root) = workspace(&[(".acas/policy.yaml", "")]);
    for text in ["", "# nothing yet\n", "just a string\n"] {
        std::fs::write(root.join(".acas/policy.yaml"), text).unwrap();
        let (code, stdout, stderr) =
            run_acas(&["policy", "explain", "--workspace", ".", "run", "curl x"], &root);
        assert_eq!(code, 1, "{text:?}: {stdout}{stderr}");
        assert!(stdout.starts_with("deny:") && stdout.contains(".acas/policy.yaml"), "{text:?}: {stdout}");
        let (code, stdout, _) = run_acas(&["policy", "check", "--workspace", "."], &root);
        assert_eq!(code, 1, "{text:?}: {stdout}");
    }
}

#[test]
fn a_policy_of_thousands_of_globs_does_not_hold_up_the_editor() {
    let globs: Vec<String> = (0..8_260).map(|i| format!("\"src/**/[a-z]*{{a,b,c}}{i}*.rs\"")).collect();
    let text = format!("defaults:\n  paths:\n    deny: [{}]\n", globs.join(","));
    let (_dir, root) = workspace(&[(".acas/policy.yaml", &text)]);
    let mut client = acas_e2e::LspClient::start(&[]);
    client.initialize(Some(&root), serde_json::json!({}));
    let uri = acas_e2e::file_uri(&root.join(".acas/policy.yaml"));
    client.notify(
        "textDocument/didOpen",
        serde_json::json!({ "textDocument": { "uri": uri, "languageId": "yaml", "version": 1, "text": text } }),
    );
    // Typing: each version is the whole file again, the last with a mistake at its end.
    for version in 2..=7 {
        let typed =
            if version == 7 { format!("{text}  pahts: {{}}\n") } else { format!("{text}# {version}\n") };
        client.notify(
            "textDocument/didChange",
            serde_json::json!({ "textDocument": { "uri": uri, "version": version },
                "contentChanges": [{ "text": typed }] }),
        );
    }
    let shown = client.expect_diagnostics(&uri, |p| {
        p["version"] == 7 && p["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    assert!(shown["diagnostics"][0]["message"].as_str().unwrap().contains("pahts"), "{shown}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn an_mcp_server_a_step_starts_acts_for_the_agent_of_the_enclosing_run() {
    let acas = acas_bin();
    let python = acas_e2e::python_with("mcp");
    let inner_client = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("inner_client.py");
    let (_dir, root) = workspace(&[
        (
            ".acas/policy.yaml",
            "agents:\n  nested-agent:\n    workflows:\n      allow: [\"outer\"]\n  trusted-bot:\n    workflows:\n      allow: [\"*\"]\n",
        ),
        (
            ".acas/workflows/outer.yaml",
            &format!(
                "name: outer\nsteps:\n  - id: agent\n    run: [\"{}\", \"{}\", \"{}\", \".\"]\n",
                python.display(),
                inner_client.display(),
                acas.display()
            ),
        ),
        (
            ".acas/workflows/inner.yaml",
            "name: inner\nsteps:\n  - id: t\n    run: [\"touch\", \"laundered\"]\n",
        ),
    ]);
    let (code, stdout, stderr) = run_acas(&["task", "create", "a task", "--workspace", "."], &root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let config = tempfile::tempdir().unwrap();
    acas_e2e::trust(&root, config.path());
    let state = nested_run(&acas, &root, config.path());
    assert_eq!(state["status"], "succeeded", "{state:#}");
    assert!(!root.join("laundered").exists(), "the step's MCP client started a run as another agent");

    let all = records(&root);
    let outer_session = all
        .iter()
        .find(|r| r["kind"] == "policy_decision" && r["subject"] == "workflow outer")
        .and_then(|r| r["actor"].as_str()?.strip_prefix("nested-agent/").map(str::to_owned))
        .unwrap_or_else(|| panic!("no decision on starting outer: {all:#?}"));
    let inner = all
        .iter()
        .find(|r| r["kind"] == "policy_decision" && r["subject"] == "workflow inner")
        .unwrap_or_else(|| panic!("no decision on starting inner: {all:#?}"));
    assert_eq!(inner["detail"]["outcome"], "deny", "{inner:#}");
    assert_eq!(inner["actor"], format!("nested-agent/{outer_session}"), "{inner:#}");
    // Its tool calls and its claim are the run's agent's, in the run's session.
    let claims: Vec<&Value> = all
        .iter()
        .filter(|r| (r["kind"] == "task" && r["actor"] != "user") || r["subject"] == "tool task_claim")
        .collect();
    assert_eq!(claims.len(), 2, "the claim and its tool call: {all:#?}");
    for record in all.iter().filter(|r| r["kind"] != "policy_decision") {
        let actor = record["actor"].as_str().unwrap_or_default();
        assert!(!actor.contains("trusted-bot"), "recorded as the name the client gave: {record:#}");
    }
    for record in &claims {
        assert_eq!(record["actor"], format!("nested-agent/{outer_session}"), "{record:#}");
    }
}

/// Runs `tests/mcp/nested.py` (the official MCP SDK): a client of `acas mcp` whose workflow's
/// step starts a run of its own as agent `outer`; the state of that run, as the client saw it.
fn nested_run(acas: &Path, root: &Path, config: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("nested.py");
    let output = Command::new(acas_e2e::python_with("mcp"))
        .arg(&script)
        .arg(acas)
        .arg(root)
        .arg("outer")
        .env("XDG_CONFIG_HOME", config)
        .output()
        .expect("running the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the MCP client failed ({}):\n{stderr}\n{stdout}", output.status);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}
