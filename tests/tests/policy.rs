//! Policy end to end: `.acas/policy.yaml` judged for an agent driving `acas mcp` with the official
//! Python SDK (`tests/mcp/policy.py`), for workflow steps (paths, commands, hosts) and for
//! starting workflows; approvals answered by `acas approve` from another process and by the
//! editor through `window/showMessageRequest`; every decision left in the audit log.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use acas_e2e::{LspClient, acas_bin, file_uri, run_acas};
use serde_json::{Value, json};

const POLICY: &str = "\
approval_timeout: 60s
defaults:
  paths:
    deny: [\".env\"]
  approve:
    paths: [\"src/approve.txt\"]
agents:
  policy-agent:
    workflows:
      deny: [\"nuke\"]
    approve:
      workflows: [\"ship\"]
      paths: [\"src/approve.txt\"]
      commands: [\"touch\"]
      hosts: [\"localhost\"]
    paths:
      allow: [\"src/**\"]
    commands:
      allow: [\"echo\"]
      deny: [\"rm\"]
    hosts:
      allow: [\"127.0.0.1\"]
";

fn workflow(name: &str, step: &str) -> (String, String) {
    (format!("{name}.yaml"), format!("name: {name}\non:\n  manual: {{}}\nsteps:\n  - id: only\n{step}"))
}

/// A workspace with the policy above and one workflow per case; HTTP actions go to `port`.
fn workspace(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join(".acas/policy.yaml"), POLICY).unwrap();
    let file =
        |path: &str| format!("    uses: file.write\n    with: {{ path: \"{path}\", content: \"x\" }}\n");
    let shell = |script: &str| format!("    run: {{ shell: \"{script}\" }}\n");
    let http =
        |host: &str| format!("    uses: http.request\n    with: {{ url: \"http://{host}:{port}/\" }}\n");
    let workflows = [
        workflow("write-ok", &file("src/ok.txt")),
        workflow("write-denied", &file("README.md")),
        workflow("write-approve", &file("src/approve.txt")),
        workflow("write-env", &file("config/.env")),
        workflow("cmd-ok", &shell("echo fine")),
        workflow("cmd-denied", &shell("echo fine; rm -f nothing")),
        workflow("cmd-approve", &shell("touch src/touched")),
        workflow("host-ok", &http("127.0.0.1")),
        workflow("host-denied", &http("evil.example")),
        workflow("host-approve", &http("localhost")),
        workflow("ship", &shell("echo shipped")),
        workflow("nuke", &shell("echo boom")),
    ];
    for (name, text) in workflows {
        std::fs::write(root.join(".acas/workflows").join(name), text).unwrap();
    }
    dir
}

/// A local HTTP server that answers `count` requests with 200 and stops.
fn http_server(count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    port
}

/// The policy decision records of the workspace's audit log, after `acas audit verify` passed.
/// Whether a record of `actor` (an agent in any session when it ends with `/`) about `subject`
/// said `outcome` (and answered `answer`, when given).
fn has(records: &[Value], actor: &str, subject: &str, outcome: &str, answer: Option<&str>) -> bool {
    records.iter().any(|r| {
        (r["actor"] == actor
            || actor.ends_with('/') && r["actor"].as_str().is_some_and(|a| a.starts_with(actor)))
            && r["subject"].as_str().is_some_and(|s| s.contains(subject))
            && r["detail"]["outcome"] == outcome
            && answer.is_none_or(|a| r["detail"]["answer"] == a)
    })
}

#[test]
fn an_agent_is_allowed_denied_and_asked_through_the_mcp_server_and_its_runs() {
    let port = http_server(2);
    let dir = workspace(port);
    let root = dir.path().canonicalize().unwrap();
    let config = tempfile::tempdir().unwrap();
    // The user trusts the workspace: an agent may start its workflows, under the policy.
    acas_e2e::trust(&root, config.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("policy.py");
    let output = Command::new(acas_e2e::python_with("mcp"))
        .arg(&script)
        .arg(acas_bin())
        .arg(&root)
        .env("XDG_CONFIG_HOME", config.path())
        .output()
        .expect("running the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the MCP client failed ({}):\n{stderr}\n{stdout}", output.status);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the client's report is not JSON ({e}): {stdout}"));

    let nuke = seen["nuke"].as_str().unwrap();
    assert!(nuke.contains("policy denies workflow nuke") && nuke.contains("policy.yaml:10"), "{nuke}");
    assert_eq!(seen["write_ok"], "succeeded", "{seen:#}");
    assert_eq!(std::fs::read_to_string(root.join("src/ok.txt")).unwrap(), "x");
    let denied = seen["write_denied"][1].as_str().unwrap();
    assert_eq!(seen["write_denied"][0], "failed");
    assert!(
        denied.contains("policy denies write README.md") && denied.contains("policy.yaml:17"),
        "{denied}"
    );
    assert!(!root.join("README.md").exists());
    assert_eq!(seen["write_approve"][0], "write src/approve.txt");
    assert_eq!(seen["write_approve"][1], "failed");
    assert!(seen["write_approve"][2].as_str().unwrap().contains("was denied by cli"), "{seen:#}");
    assert!(!root.join("src/approve.txt").exists());

    assert_eq!(seen["cmd_ok"], "succeeded", "{seen:#}");
    let denied = seen["cmd_denied"][1].as_str().unwrap();
    assert!(denied.contains("deny rule `rm`") && denied.contains("policy.yaml:20"), "{denied}");
    assert_eq!(seen["cmd_approve"], json!(["run `touch src/touched`", "succeeded"]));
    assert!(root.join("src/touched").exists());

    assert_eq!(seen["host_ok"], "succeeded", "{seen:#}");
    let denied = seen["host_denied"][1].as_str().unwrap();
    assert!(
        denied.contains("policy denies http evil.example") && denied.contains("policy.yaml:22"),
        "{denied}"
    );
    assert_eq!(seen["host_approve"][0], "http localhost");
    assert!(seen["host_approve"][2].as_str().unwrap().contains("was denied by cli"), "{seen:#}");
    assert_eq!(seen["ship"], json!(["workflow ship", "succeeded"]));

    let records = acas_e2e::policy_decisions(&root);
    // Every record names the agent with its session, as its MCP call records do.
    let agent = "policy-agent/";
    for (subject, outcome) in [
        ("workflow nuke", "deny"),
        ("workflow write-ok", "allow"),
        ("write src/ok.txt", "allow"),
        ("write README.md", "deny"),
        ("write src/approve.txt", "needs_approval"),
        ("run `echo fine`", "allow"),
        ("run `echo fine; rm -f nothing`", "deny"),
        ("run `touch src/touched`", "needs_approval"),
        ("http 127.0.0.1", "allow"),
        ("http evil.example", "deny"),
        ("http localhost", "needs_approval"),
        ("workflow ship", "needs_approval"),
    ] {
        assert!(
            has(&records, agent, subject, outcome, None),
            "no {outcome} record of {subject}: {records:#?}"
        );
    }
    let cli = std::env::var("USER")
        .map_or("cli".to_owned(), |u| if u.is_empty() { "cli".to_owned() } else { format!("cli:{u}") });
    assert!(has(&records, &cli, "write src/approve.txt", "deny", Some("denied")), "{records:#?}");
    assert!(has(&records, &cli, "run `touch src/touched`", "allow", Some("approved")), "{records:#?}");
    assert!(has(&records, &cli, "workflow ship", "allow", Some("approved")), "{records:#?}");
    let rule = records
        .iter()
        .find(|r| r["subject"] == "write README.md")
        .map(|r| r["detail"]["rule"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(rule.ends_with("policy.yaml:17: allow: [\"src/**\"]"), "{rule}");
}

#[test]
fn runs_started_from_the_command_line_are_judged_as_cli() {
    let dir = workspace(1);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "write-env", "--workspace", "."], dir.path());
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("policy denies write config/.env to cli"),
        "{stdout}{stderr}"
    );
    assert!(!dir.path().join("config/.env").exists());
    let records = acas_e2e::policy_decisions(dir.path());
    assert!(has(&records, "cli", "write config/.env", "deny", None), "{records:#?}");
}

#[test]
fn policy_explain_names_the_rule_and_check_names_the_line() {
    let dir = workspace(1);
    let explain = |args: &[&str]| {
        let mut all = vec!["policy", "explain", "--workspace", "."];
        all.extend_from_slice(args);
        run_acas(&all, dir.path())
    };
    let (code, stdout, _) = explain(&["--agent", "policy-agent", "write", "src/main.rs"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("allow: write src/main.rs for policy-agent"), "{stdout}");
    assert!(stdout.contains("policy.yaml:17: allow: [\"src/**\"]"), "{stdout}");
    let (code, stdout, _) = explain(&["--agent", "Policy-Agent", "run", "cargo test"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("policy.yaml:19") && stdout.contains("no rule of the commands allow list"),
        "{stdout}"
    );
    let (code, stdout, _) = explain(&["--agent", "policy-agent", "http", "localhost"]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with("needs_approval") && stdout.contains("policy.yaml:15"), "{stdout}");
    let (code, stdout, _) = explain(&["--agent", "policy-agent", "workflow", "nuke", "--format", "json"]);
    assert_eq!(code, 1);
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((answer["outcome"].as_str(), answer["rule"]["line"].as_u64()), (Some("deny"), Some(10)));

    let (code, stdout, _) = run_acas(&["policy", "check", "--workspace", "."], dir.path());
    assert_eq!(code, 0, "{stdout}");
    std::fs::write(dir.path().join(".acas/policy.yaml"), "defaults:\n  paths:\n    deny: [\"../outside\"]\n")
        .unwrap();
    let (code, stdout, _) = run_acas(&["policy", "check", "--workspace", "."], dir.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("policy.yaml:3:12: error: deny: `../outside` has `..`"), "{stdout}");
    // An invalid file denies everything until it is fixed.
    let (code, stdout, _) = explain(&["write", "src/main.rs"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("everything is denied until it is fixed"), "{stdout}");
}

#[test]
fn the_editor_asks_about_an_approval_another_process_waits_for() {
    let dir = workspace(1);
    let root = dir.path().canonicalize().unwrap();
    let mut client = LspClient::start(&[]);
    client.answer("window/showMessageRequest", json!({ "title": "Allow" }));
    client.initialize(Some(&root), json!({ "window": { "workDoneProgress": true } }));
    // A run from the command line waits for approval of `src/approve.txt` (a defaults rule).
    let run = acas_e2e::start_workflow_run(&root, "write-approve", true);
    let asked = client.expect("the approval asked", |m| m["method"] == "window/showMessageRequest");
    let message = asked["params"]["message"].as_str().unwrap();
    assert!(
        message.contains("cli asks to write src/approve.txt") && message.contains("policy.yaml:6"),
        "{message}"
    );
    assert_eq!(asked["params"]["actions"], json!([{ "title": "Allow" }, { "title": "Deny" }]));
    let run = run.wait_with_output().expect("running acas workflow run");
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read_to_string(root.join("src/approve.txt")).unwrap(), "x");
    let records = acas_e2e::policy_decisions(&root);
    assert!(has(&records, "cli", "write src/approve.txt", "needs_approval", None), "{records:#?}");
    assert!(has(&records, "editor", "write src/approve.txt", "allow", Some("approved")), "{records:#?}");

    // The policy file is checked as it is typed.
    let uri = file_uri(&root.join(".acas/policy.yaml"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "yaml", "version": 1,
            "text": "defaults:\n  pahts:\n    deny: [x]\n" } }),
    );
    let shown = client.expect_diagnostics(&uri, |p| !p["diagnostics"].as_array().unwrap().is_empty());
    let first = &shown["diagnostics"][0];
    assert_eq!(
        (first["source"].as_str(), first["range"]["start"]["line"].as_u64()),
        (Some("acas-policy"), Some(1))
    );
    assert!(first["message"].as_str().unwrap().contains("pahts"), "{first}");
    assert_eq!(client.shutdown(), 0);
}

/// A command waiting for approval is listed with the escape codes it carries shown, not obeyed:
/// a run cannot rewrite the terminal line to make `git push --force` look like `git status`.
#[test]
fn acas_approve_shows_what_waits_with_its_escape_codes_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(
        root.join(".acas/policy.yaml"),
        "approval_timeout: 60s\ndefaults:\n  approve:\n    commands: [\"git push\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join(".acas/workflows/spoof.yaml"),
        "name: spoof\nsteps:\n  - id: s\n    run: [\"git\", \"push\", \"--force\", \"main\\u001b[1A\\u001b[2K\\rrun `git status`\"]\n    continue_on_error: true\n",
    )
    .unwrap();
    let run = acas_e2e::start_workflow_run(&root, "spoof", false);
    let listed = acas_e2e::wait_for_approval(&root, "git push");
    assert!(!listed.contains('\u{1b}') && !listed.contains('\r'), "raw control characters: {listed:?}");
    assert!(listed.contains("\\u{1b}[1A"), "{listed}");
    let id = listed.split_whitespace().next().unwrap().to_owned();
    let (code, stdout, stderr) = run_acas(&["approve", &id, "--deny", "--workspace", "."], &root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    let mut run = run;
    run.wait().unwrap();
}
