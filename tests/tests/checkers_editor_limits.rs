//! The project's checkers in the editor, over real stdio, against what a checker can do to the
//! server: write files it then sees changed, report a problem twice, report thousands of problems
//! in one file.

use std::path::Path;

use acas_e2e::{LspClient, file_uri};
use serde_json::{Value, json};

const PATTERN: &str = "pattern = '^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$'\n";

fn workspace(command: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    let config = format!("[[checkers]]\nname = \"lint\"\ncommand = '''{command}'''\n{PATTERN}");
    std::fs::write(dir.path().join(".acas/config.toml"), config).unwrap();
    std::fs::write(dir.path().join("a.py"), "x = 1\ny = 2\n").unwrap();
    dir
}

/// A client that trusts the workspace at `root` to run its checkers when asked.
fn start(root: &Path) -> LspClient {
    let mut client = LspClient::start(&[]);
    client.trust_checkers();
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    client.expect("the question whether to trust the workspace", |m| {
        m["method"] == "window/showMessageRequest"
    });
    client
}

fn lint(params: &Value) -> Vec<Value> {
    params["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "lint").cloned().collect()
}

#[test]
fn a_checker_that_writes_a_source_file_does_not_run_itself_again_and_again() {
    // Like `jest --outputFile`, a coverage report or a code generator: each run writes a file
    // ACAS watches, with different content each time.
    let dir = workspace("echo run >> runs.log; echo \"stamp = $(date +%s%N)\" > gen.py; echo 'a.py:1: ran'");
    let root = dir.path().canonicalize().unwrap();
    let client = start(&root);
    client.expect_log("checker `lint`: not run again; only files it writes itself changed");
    let runs = std::fs::read_to_string(root.join("runs.log")).unwrap();
    assert!(runs.lines().count() <= 3, "{runs}");
}

#[test]
fn a_problem_the_tool_prints_twice_is_published_once() {
    // cargo checks a library once per target with `--all-targets` and prints its problems twice.
    let dir = workspace("echo 'a.py:2: twice'; echo 'a.py:2: twice'; echo 'a.py:1: once'");
    let root = dir.path().canonicalize().unwrap();
    let mut client = start(&root);
    let uri = file_uri(&root.join("a.py"));
    let published = client.expect_diagnostics(&uri, |p| lint(p).len() >= 2);
    let messages: Vec<String> =
        lint(&published).iter().map(|d| d["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(messages.iter().filter(|m| *m == "twice").count(), 1, "{messages:?}");
}

#[test]
fn thousands_of_problems_in_one_file_are_capped_with_a_message_and_requests_are_answered() {
    let dir = workspace("seq 1 5000 | sed 's/^/a.py:1: problem /'");
    let root = dir.path().canonicalize().unwrap();
    let mut client = start(&root);
    let told = client.expect("the cap told", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("more than 1000 problems in a.py"))
    });
    assert_eq!(told["params"]["type"], 2, "{told:#}");
    let status = client.request("acas/status", Value::Null);
    assert!(status.get("result").is_some(), "{status:#}");
    let uri = file_uri(&root.join("a.py"));
    let published = client.expect_diagnostics(&uri, |p| !lint(p).is_empty());
    assert!(lint(&published).len() <= 1000);
}
