//! Workspace trust, against the real binary: a cloned workspace's `[[checkers]]` and the tools
//! detected in it run nothing until the user trusts it (`acas trust`, or "Trust and run" in the
//! editor), and a changed `[[checkers]]` section asks again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use acas_e2e::{LspClient, acas_bin, file_uri};
use serde_json::{Value, json};

/// A workspace whose checker leaves `pwned` behind when it runs, and whose project carries its own
/// `mypy` (`.venv/bin/mypy`) that leaves `probed` behind when detection asks its version.
fn hostile_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cloned");
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::create_dir_all(root.join(".venv/bin")).unwrap();
    std::fs::write(
        root.join(".acas/config.toml"),
        "[[checkers]]\nname = \"lint\"\ncommand = \"touch pwned; echo app.py:1:1: ran\"\npattern = '^(?P<file>[^:]+):(?P<line>\\d+):(?P<column>\\d+): (?P<message>.+)$'\n",
    )
    .unwrap();
    std::fs::write(root.join("app.py"), "x = 1\n").unwrap();
    std::fs::write(root.join("pyproject.toml"), "[tool.mypy]\n").unwrap();
    let mypy = root.join(".venv/bin/mypy");
    std::fs::write(
        &mypy,
        format!("#!/bin/sh\ntouch '{}'\necho 'mypy 1.19.0'\n", root.join("probed").display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&mypy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = root.canonicalize().unwrap();
    (dir, root)
}

/// Runs `acas ARGS` in `root` with the user's configuration (and trust list) in `config_home`.
fn acas(args: &[&str], root: &Path, config_home: &Path) -> (i32, String, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .expect("running acas");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_cli_runs_no_checker_of_an_untrusted_workspace_and_asks_again_when_its_checkers_change() {
    let (dir, root) = hostile_workspace();
    let home = dir.path().join("config");

    let (code, stdout, _) = acas(&["checkers"], &root, &home);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("Trust: not trusted"), "{stdout}");
    assert!(stdout.contains(&format!("acas trust {}", root.display())), "{stdout}");
    let (_, json_out, _) = acas(&["checkers", "--format", "json"], &root, &home);
    let list: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(list["trust"], "untrusted", "{list}");
    assert!(!root.join("probed").exists(), "detection ran the project's own mypy in an untrusted workspace");

    let (code, _, stderr) = acas(&["check", "--checkers"], &root, &home);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("you have not trusted it"), "{stderr}");
    assert!(stderr.contains(&format!("run `acas trust {}`", root.display())), "{stderr}");
    assert!(!root.join("pwned").exists(), "the untrusted workspace's checker ran");

    let (code, stdout, stderr) = acas(&["trust"], &root, &home);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("is trusted"), "{stdout}");
    let (_, stdout, _) = acas(&["checkers"], &root, &home);
    assert!(stdout.contains("Trust: trusted"), "{stdout}");
    let (code, stdout, stderr) = acas(&["check", "--checkers=lint"], &root, &home);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("ran"), "{stdout}");
    assert!(root.join("pwned").exists());
    std::fs::remove_file(root.join("pwned")).unwrap();

    // The repository changes its checker (a pull): trusted no more.
    let config = root.join(".acas/config.toml");
    let changed = std::fs::read_to_string(&config).unwrap().replace("touch pwned", "touch pwned; touch more");
    std::fs::write(&config, changed).unwrap();
    let (code, _, stderr) = acas(&["check", "--checkers"], &root, &home);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("changed since you trusted it"), "{stderr}");
    let (_, stdout, _) = acas(&["checkers", "--format", "json"], &root, &home);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["trust"], "changed");
    assert!(!root.join("pwned").exists());

    // Trusted again, then revoked.
    assert_eq!(acas(&["trust", "."], &root, &home).0, 0);
    assert_eq!(acas(&["check", "--checkers"], &root, &home).0, 1);
    assert!(root.join("pwned").exists());
    std::fs::remove_file(root.join("pwned")).unwrap();
    let (code, stdout, _) = acas(&["trust", "--revoke", "."], &root, &home);
    assert_eq!(code, 0);
    assert!(stdout.contains("no longer trusted"), "{stdout}");
    assert_eq!(acas(&["check", "--checkers"], &root, &home).0, 2);
    assert!(!root.join("pwned").exists());
}

fn is_trust_question(m: &Value) -> bool {
    m["method"] == "window/showMessageRequest"
        && m["params"]["actions"].as_array().is_some_and(|a| a.iter().any(|a| a["title"] == "Trust and run"))
}

/// Waits, bounded, until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_editor_asks_once_runs_nothing_until_trusted_and_trust_and_run_runs_the_checkers() {
    let (dir, root) = hostile_workspace();
    let home = dir.path().join("config");
    let env = [("XDG_CONFIG_HOME", home.to_str().unwrap())];
    let uri = file_uri(&root.join("app.py"));

    // "Not now" (the question dismissed): nothing runs, on start or on save, and it is asked once.
    let mut client = LspClient::start(&env);
    client.initialize(Some(&root), json!({}));
    let asked = client.expect("the trust question", is_trust_question);
    let text = asked["params"]["message"].as_str().unwrap();
    assert!(text.contains("lint") && text.contains("acas trust"), "{text}");
    assert_eq!(asked["params"]["actions"][1]["title"], "Not now");
    client.expect_log("the workspace is not trusted: its checkers do not run");
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    // The save has the trust list read again by a new detection; it is still untrusted.
    wait_until("the save's detection", || client.stderr().matches("checker `lint` (on)").count() >= 2);
    let status = client.request("acas/status", Value::Null)["result"].clone();
    let checkers =
        status["subsystems"].as_array().unwrap().iter().find(|s| s["name"] == "checkers").unwrap().clone();
    assert_eq!(checkers["state"], "off", "{status}");
    assert!(checkers["detail"].as_str().unwrap_or("").contains("not trusted"), "{checkers}");
    let refused = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.runCheckers", "arguments": [{ "names": ["lint"] }] }),
    );
    assert_eq!(refused["error"]["data"]["kind"], "workspaceUntrusted", "{refused}");
    // Asked for explicitly, it asks again.
    client.expect("the trust question again", is_trust_question);
    assert_eq!(client.shutdown(), 0);
    assert!(!root.join("pwned").exists(), "an untrusted workspace's checker ran");
    assert!(!root.join("probed").exists(), "detection ran the project's own mypy in an untrusted workspace");
    let asked_more = client.take_all(is_trust_question);
    assert!(asked_more.is_empty(), "asked more than once: {asked_more:#?}");

    // "Trust and run": the checker runs and its problem is published; the trust is kept.
    let mut client = LspClient::start(&env);
    client.trust_checkers();
    client.initialize(Some(&root), json!({}));
    client.expect("the trust question", is_trust_question);
    client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().any(|d| d["source"] == "lint" && d["message"] == "ran")
    });
    assert!(root.join("pwned").exists());
    assert_eq!(client.shutdown(), 0);
    let (_, stdout, _) = acas(&["checkers"], &root, &home);
    assert!(stdout.contains("Trust: trusted"), "{stdout}");
}
