//! The project's checkers in the editor, over real stdio: a `[[checkers]]` matcher checker
//! driven by a script, run on save and by `acas.runCheckers`; a stale run cancelled with its
//! process tree; a missing tool told once.

use std::path::Path;
use std::time::{Duration, Instant};

use acas_e2e::{LspClient, file_uri};
use serde_json::{Value, json};

/// A checker that prints `report.txt` (and, when `hold` exists, first starts a grandchild that
/// would outlive it, writes its pid to `sleeper`, and waits).
const CONFIG: &str = r#"
[[checkers]]
name = "lint"
command = "if [ -e hold ]; then rm hold; sleep 600 & echo $! > sleeper; wait; fi; cat report.txt"
pattern = '^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+):(?P<end_column>\d+): (?P<code>\w+) (?P<message>.+)$'
columns = "utf16"
on_start = false

[[checkers]]
name = "ghost"
command = ["acas-no-such-tool", "--check"]
pattern = '^(?P<file>[^:]+):(?P<line>\d+): (?P<message>.+)$'
on_start = false
files = ["*.ghost"]
"#;

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), CONFIG).unwrap();
    // "😀" is two UTF-16 units, four bytes: the tool's column 8 is `bad` in UTF-16.
    std::fs::write(dir.path().join("app.py"), "s = '😀'; bad = 1\n").unwrap();
    std::fs::write(dir.path().join("report.txt"), "./app.py:1:10:13: W42 name `bad` is bad\n").unwrap();
    dir
}

fn start(root: &Path) -> LspClient {
    let mut client = LspClient::start(&[]);
    client.trust_checkers();
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    // Answered as it is taken: "Trust and run".
    client.expect("the question whether to trust the workspace", |m| {
        m["method"] == "window/showMessageRequest"
    });
    client.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });
    client
}

fn lint_diagnostics(params: &Value) -> Vec<Value> {
    params["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "lint").cloned().collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
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
fn a_checker_runs_on_save_with_its_source_code_and_utf16_range_and_on_demand() {
    let dir = workspace();
    let root = dir.path().canonicalize().unwrap();
    let mut client = start(&root);
    let uri = file_uri(&root.join("app.py"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": "s = '😀'; bad = 1\n" } }),
    );
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    let published = client.expect_diagnostics(&uri, |p| !lint_diagnostics(p).is_empty());
    let d = &lint_diagnostics(&published)[0];
    assert_eq!(
        d["range"],
        json!({ "start": { "line": 0, "character": 9 }, "end": { "line": 0, "character": 12 } })
    );
    assert_eq!(d["code"], "W42");
    assert_eq!(d["message"], "name `bad` is bad");
    assert_eq!(published["version"], 1);

    // On demand: the report changed, the command runs the checker, and the file is cleared.
    std::fs::write(root.join("report.txt"), "").unwrap();
    let answer = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.runCheckers", "arguments": [{ "names": ["lint"] }] }),
    );
    assert_eq!(answer["result"], json!({ "started": ["lint"] }), "{answer}");
    client.expect_diagnostics(&uri, |p| lint_diagnostics(p).is_empty());
    // A name repeated (a buggy client) starts one run, not one per repetition.
    let repeated = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.runCheckers", "arguments": [{ "names": vec!["lint"; 2000] }] }),
    );
    assert_eq!(repeated["result"], json!({ "started": ["lint"] }), "one run for a name asked 2,000 times");
    let unknown = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.runCheckers", "arguments": [{ "names": ["nope"] }] }),
    );
    assert_eq!(unknown["error"]["data"]["kind"], "checkerNotFound", "{unknown}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn a_newer_save_cancels_a_stale_run_and_its_process_tree() {
    let dir = workspace();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("hold"), "").unwrap();
    let mut client = start(&root);
    let uri = file_uri(&root.join("app.py"));
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    // The first run holds, with a grandchild.
    let sleeper = root.join("sleeper");
    wait_until("the first run started its grandchild", || {
        std::fs::read_to_string(&sleeper).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    let pid: i32 = std::fs::read_to_string(&sleeper).unwrap().trim().parse().unwrap();
    assert!(alive(pid));
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    // The second run reports; the first one's tree is gone.
    let published = client.expect_diagnostics(&uri, |p| !lint_diagnostics(p).is_empty());
    assert_eq!(lint_diagnostics(&published).len(), 1);
    wait_until("the stale run's grandchild ended", || !alive(pid));
    client.expect_log("cancels the run in progress");
    assert_eq!(client.shutdown(), 0);
}

/// A storm of saves: the first starts a run at once, the others cancel it with its process tree
/// (one stale-cancel) and give one more run, for the last content.
#[test]
fn a_storm_of_saves_cancels_the_stale_run_once_and_runs_once_more_for_the_last_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".acas")).unwrap();
    // The checker reports what the file says; its first run starts a grandchild and never ends by
    // itself. The window is long enough for the whole storm to fall in it.
    std::fs::write(
        root.join(".acas/config.toml"),
        r#"
[watch]
debounce_ms = 5000

[[checkers]]
name = "lint"
command = "if [ -e hold ]; then rm hold; sleep 600 & echo $! > sleeper; wait; fi; sed -n 's/^# report: //p' app.py"
pattern = '^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$'
on_start = false
"#,
    )
    .unwrap();
    std::fs::write(root.join("hold"), "").unwrap();
    let content = |n: usize| format!("# report: app.py:1:1: content {n}\n");
    std::fs::write(root.join("app.py"), content(0)).unwrap();
    let mut client = start(&root);
    let uri = file_uri(&root.join("app.py"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 0, "text": content(0) } }),
    );
    let save = |client: &mut LspClient, n: usize| {
        let text = content(n);
        std::fs::write(root.join("app.py"), &text).unwrap();
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": n }, "contentChanges": [{ "text": text }] }),
        );
        client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    };
    // The first save runs the checker at once: it holds.
    save(&mut client, 1);
    let sleeper = root.join("sleeper");
    wait_until("the first run started its grandchild", || {
        std::fs::read_to_string(&sleeper).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    let pid: i32 = std::fs::read_to_string(&sleeper).unwrap().trim().parse().unwrap();
    const SAVES: usize = 20;
    for n in 2..=SAVES {
        save(&mut client, n);
    }
    let published = client.expect_diagnostics(&uri, |p| !lint_diagnostics(p).is_empty());
    let shown: Vec<Value> = lint_diagnostics(&published).iter().map(|d| d["message"].clone()).collect();
    assert_eq!(shown, vec![json!(format!("content {SAVES}"))]);
    wait_until("the stale run's grandchild ended", || !alive(pid));
    wait_until("the last run ended", || client.stderr().contains("checker `lint`: 1 problems"));
    let log = client.stderr();
    assert_eq!(log.matches("checker `lint`: running").count(), 2, "{log}");
    assert_eq!(log.matches("cancels the run in progress").count(), 1, "{log}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn a_missing_tool_is_told_once() {
    let dir = workspace();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("x.ghost"), "boo\n").unwrap();
    let mut client = start(&root);
    let uri = file_uri(&root.join("x.ghost"));
    let is_told = |m: &Value| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .is_some_and(|t| t.contains("`acas-no-such-tool` was not found"))
    };
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    let told = client.expect("the missing tool told", is_told);
    assert!(told["params"]["message"].as_str().unwrap().contains("enabled = false"), "{told}");
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    client.expect_log("checker `ghost`: `acas-no-such-tool` was not found");
    let status = client.request("acas/status", Value::Null)["result"].clone();
    let checkers =
        status["subsystems"].as_array().unwrap().iter().find(|s| s["name"] == "checkers").unwrap().clone();
    assert_eq!(checkers["state"], "degraded", "{status}");
    // Wait for the second failure to be logged, then check nothing more was told.
    wait_until("the second run failed", || {
        client.stderr().matches("checker `ghost`: `acas-no-such-tool` was not found").count() >= 2
    });
    assert_eq!(client.shutdown(), 0);
    // Anything but a second telling.
    client.finish(|m| !is_told(m));
}

/// `acas watch --format json`, its lines as they come.
struct Watch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Watch {
    fn start(root: &Path) -> Watch {
        use std::io::BufRead;
        let config_home = acas_e2e::trusting_config_home();
        acas_e2e::trust(root, &config_home);
        let mut child = std::process::Command::new(acas_e2e::acas_bin())
            .args(["watch", ".", "--format", "json"])
            .current_dir(root)
            .env("ACAS_LOG", "warn")
            .env("XDG_CONFIG_HOME", &config_home)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).expect("watch prints JSON lines");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    fn expect(&mut self, what: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if predicate(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("acas watch did not print {what}"),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

#[test]
fn acas_watch_runs_the_checkers_at_start_and_when_a_file_changes_and_prints_their_problems() {
    let dir = workspace();
    let root = dir.path().canonicalize().unwrap();
    let config = CONFIG.replacen("on_start = false", "on_start = true", 1);
    std::fs::write(root.join(".acas/config.toml"), config).unwrap();
    let mut watch = Watch::start(&root);
    let lint = |l: &Value, message: &str| {
        l["event"] == "diagnostics"
            && l["path"] == "app.py"
            && l["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["source"] == "lint" && d["message"] == message)
    };
    watch.expect("the start run's problem", |l| lint(l, "name `bad` is bad"));
    // Another program changes a source file: the checker runs again.
    std::fs::write(root.join("report.txt"), "app.py:1:1:2: W1 changed\n").unwrap();
    std::fs::write(root.join("app.py"), "s = 1\n").unwrap();
    watch.expect("the problem after the change", |l| lint(l, "changed"));
}

/// A real `cargo check` on a crate made here: its warning is published with rustc as source, and
/// rustc's machine-applicable suggestion is a quick fix without AI that applies.
#[test]
fn cargo_check_warnings_are_published_and_rustcs_suggestion_is_a_quick_fix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    let text = "pub fn f() -> u32 {\n    let unused = 1;\n    2\n}\n";
    std::fs::write(root.join("src/lib.rs"), text).unwrap();
    std::fs::write(
        root.join(".acas/config.toml"),
        "[[checkers]]\nname = \"check\"\ncommand = [\"cargo\", \"check\", \"--message-format=json\"]\nformat = \"cargo\"\non_start = false\n",
    )
    .unwrap();
    let mut client = start(&root);
    let uri = file_uri(&root.join("src/lib.rs"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    let published = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().any(|d| d["source"] == "rustc")
    });
    let d =
        published["diagnostics"].as_array().unwrap().iter().find(|d| d["source"] == "rustc").unwrap().clone();
    assert_eq!(d["range"]["start"], json!({ "line": 1, "character": 8 }), "{d:#}");
    assert!(d["message"].as_str().unwrap().contains("unused variable"), "{d:#}");
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": d["range"], "context": { "diagnostics": [d] } }),
    );
    let fix = actions["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().is_some_and(|t| t.starts_with("Fix: ") && t.ends_with("(rustc)")))
        .unwrap_or_else(|| panic!("a tool's fix among {actions:#}"))
        .clone();
    assert!(fix.get("command").is_none() || fix["command"].is_null(), "{fix:#}");
    let edits = fix["edit"]["changes"][&uri].as_array().unwrap();
    assert_eq!(edits.len(), 1, "{fix:#}");
    // Applied, the edit names the variable as intentionally unused.
    let edit = &edits[0];
    assert_eq!(edit["range"]["start"], json!({ "line": 1, "character": 8 }));
    assert_eq!(edit["newText"], "_unused");
    assert_eq!(client.shutdown(), 0);
}
