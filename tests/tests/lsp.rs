//! The language server over real stdio: lifecycle, document sync, disk files, bad input.

use std::path::Path;

use acas_e2e::{LspClient, file_uri, is_progress};
use serde_json::{Value, json};

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.rs"), "fn ok() {}\n").unwrap();
    dir
}

/// [`workspace`] with the fake provider configured as `claude`.
fn workspace_with_provider(fake: &acas_e2e::fake_provider::FakeProvider) -> tempfile::TempDir {
    let dir = workspace();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), fake.provider_toml("claude", "claude-haiku-4-5"))
        .unwrap();
    dir
}

fn start(root: &Path) -> LspClient {
    let mut client = LspClient::start(&[]);
    let init = client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(init["result"]["capabilities"]["textDocumentSync"]["change"], 2);
    // Clients only ask for what is announced: quick fixes, hovers, and the commands they run.
    assert_eq!(init["result"]["capabilities"]["codeActionProvider"]["codeActionKinds"], json!(["quickfix"]));
    assert_eq!(init["result"]["capabilities"]["hoverProvider"], true);
    assert_eq!(
        init["result"]["capabilities"]["executeCommandProvider"]["commands"],
        json!([
            "acas.escalate",
            "acas.fixApplied",
            "acas.workflow.run",
            "acas.workflow.cancel",
            "acas.workflow.rerun",
            "acas.plan",
            "acas.cancel",
            "acas.runCheckers",
            "acas.task.fromProblem"
        ])
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "acas");
    wait_for_scan(&mut client);
    client
}

fn wait_for_scan(client: &mut LspClient) {
    client.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });
}

fn lines_of(diagnostics: &Value) -> Vec<u64> {
    diagnostics["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["range"]["start"]["line"].as_u64().unwrap())
        .collect()
}

fn change(client: &mut LspClient, uri: &str, version: i32, range: [[u32; 2]; 2], text: &str) {
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": uri, "version": version },
            "contentChanges": [{
                "range": {
                    "start": { "line": range[0][0], "character": range[0][1] },
                    "end": { "line": range[1][0], "character": range[1][1] },
                },
                "text": text,
            }],
        }),
    );
}

#[test]
fn edits_that_break_and_fix_a_document_publish_versioned_diagnostics() {
    let dir = workspace();
    let path = dir.path().join("lib.rs");
    let text = "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
    std::fs::write(&path, text).unwrap();
    let uri = file_uri(&path);
    let mut client = start(dir.path());

    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 1);
    assert_eq!(published["diagnostics"], json!([]));

    // Delete the `)` after `b: i32`: an unclosed parameter list.
    change(&mut client, &uri, 2, [[0, 21], [0, 22]], "");
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 2);
    let diagnostics = published["diagnostics"].as_array().unwrap();
    assert!(!diagnostics.is_empty() && diagnostics.len() <= 2, "{published:#}");
    assert_eq!(lines_of(&published)[0], 0, "{published:#}");
    for d in diagnostics {
        assert_eq!(d["source"], "acas");
        assert_eq!(d["severity"], 1);
        assert_eq!(d["code"], "syntax");
        assert_eq!(d["data"]["category"], "syntax");
        assert_eq!(d["data"]["symbol"], "add");
        assert!(d["data"]["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    }

    // Put it back: the diagnostics clear.
    change(&mut client, &uri, 3, [[0, 21], [0, 21]], ")");
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 3);
    assert_eq!(published["diagnostics"], json!([]));

    // A full replacement with a broken body, then a fix.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 4 }, "contentChanges": [{ "text": "fn f() {\n    let x = (1 + 2;\n}\n" }] }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 4);
    assert_eq!(lines_of(&published)[0], 1, "{published:#}");
    client.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    // Closing falls back to the file on disk, which is valid.
    let published = client.expect_diagnostics(&uri, |p| p["version"].is_null());
    assert_eq!(published["diagnostics"], json!([]));

    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}

#[test]
fn ranges_are_exact_in_utf16_and_utf8() {
    for (encodings, expected_encoding) in
        [(json!(["utf-16"]), "utf-16"), (json!(["utf-8", "utf-16"]), "utf-8")]
    {
        let dir = workspace();
        let mut client = LspClient::start(&[]);
        let init = client.initialize(
            Some(dir.path()),
            json!({ "general": { "positionEncodings": encodings }, "window": { "workDoneProgress": true } }),
        );
        assert_eq!(init["result"]["capabilities"]["positionEncoding"], expected_encoding);
        wait_for_scan(&mut client);
        let path = dir.path().join("emoji.py");
        let uri = file_uri(&path);
        let line = "x = \"😀é\"";
        let text = format!("{line}\ny = 1\n");
        client.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": text } }),
        );
        client.expect_diagnostics(&uri, |p| p["version"] == 1 && p["diagnostics"] == json!([]));
        // Append ` + (1` after the closing quote: an unclosed parenthesis after the emoji.
        let width =
            |s: &str| if expected_encoding == "utf-8" { s.len() } else { s.encode_utf16().count() } as u32;
        let end = width(line);
        change(&mut client, &uri, 2, [[0, end], [0, end]], " + (1");
        let published = client.expect_diagnostics(&uri, |p| p["version"] == 2);
        let first = &published["diagnostics"][0];
        assert_eq!(first["range"]["start"]["line"], 0, "{published:#}");
        // The diagnostic sits on the `(`, on the token after it, or at the end of the line:
        // each is a different column in UTF-8 and in UTF-16, and the emoji makes them differ.
        let after = format!("{line} + (1");
        let paren = width(&after[..after.find('(').unwrap()]);
        let column = first["range"]["start"]["character"].as_u64().unwrap() as u32;
        assert!([paren, paren + 1, paren + 2].contains(&column), "{expected_encoding}: {published:#}");
        // Editing after the emoji, in the client's encoding, lands where the client meant.
        change(&mut client, &uri, 3, [[0, end], [0, end + 5]], "");
        client.expect_diagnostics(&uri, |p| p["version"] == 3 && p["diagnostics"] == json!([]));
        assert_eq!(client.shutdown(), 0);
        client.finish(is_progress);
    }
}

#[test]
fn files_on_disk_are_checked_at_start_and_when_they_change() {
    let dir = workspace();
    let broken = dir.path().join("broken.go");
    std::fs::write(&broken, "package main\n\nfunc main() {\n\tprintln(\"hi\"\n}\n").unwrap();
    std::fs::write(dir.path().join(".gitignore"), "ignored/\n").unwrap();
    std::fs::create_dir(dir.path().join("ignored")).unwrap();
    std::fs::write(dir.path().join("ignored/bad.rs"), "fn (").unwrap();

    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    let published = client.expect_diagnostics(&file_uri(&broken), |_| true);
    assert_eq!(lines_of(&published)[0], 3, "{published:#}");
    wait_for_scan(&mut client);

    // Create an unopened broken file.
    let created = dir.path().join("new.ts");
    std::fs::write(&created, "const a = [1, 2;\n").unwrap();
    let published = client.expect_diagnostics(&file_uri(&created), |p| p["diagnostics"] != json!([]));
    assert_eq!(lines_of(&published)[0], 0);

    // Fix it on disk.
    std::fs::write(&created, "const a = [1, 2];\n").unwrap();
    client.expect_diagnostics(&file_uri(&created), |p| p["diagnostics"] == json!([]));

    // Break it again and delete it: its diagnostics are cleared.
    std::fs::write(&created, "const a = [1, 2;\n").unwrap();
    client.expect_diagnostics(&file_uri(&created), |p| p["diagnostics"] != json!([]));
    std::fs::remove_file(&created).unwrap();
    client.expect_diagnostics(&file_uri(&created), |p| p["diagnostics"] == json!([]));

    // A new directory with a broken file inside is picked up.
    std::fs::create_dir_all(dir.path().join("pkg/deep")).unwrap();
    let deep = dir.path().join("pkg/deep/mod.py");
    std::fs::write(&deep, "def f(:\n    pass\n").unwrap();
    client.expect_diagnostics(&file_uri(&deep), |p| p["diagnostics"] != json!([]));

    assert_eq!(client.shutdown(), 0);
    // Nothing was ever published for the ignored file.
    client.finish(is_progress);
}

#[test]
fn an_open_document_wins_over_the_file_on_disk() {
    let dir = workspace();
    let path = dir.path().join("main.js");
    std::fs::write(&path, "function f() {\n  return [1, 2;\n}\n").unwrap();
    let uri = file_uri(&path);
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    wait_for_scan(&mut client);

    let fixed = "function f() {\n  return [1, 2];\n}\n";
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "javascript", "version": 7, "text": fixed } }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 7 && p["diagnostics"] == json!([]));

    // The disk copy changes, still broken: nothing is published over the open document.
    std::fs::write(&path, "function f() {\n  return [1, 2, 3;\n}\n").unwrap();
    // A later edit of the document is the next thing published for it.
    change(&mut client, &uri, 8, [[1, 2], [1, 2]], "  ");
    let published = client.expect_diagnostics(&uri, |_| true);
    assert_eq!(published["version"], 8);
    assert_eq!(published["diagnostics"], json!([]));
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}

#[test]
fn malformed_messages_get_errors_and_the_server_keeps_serving() {
    let dir = workspace();
    let mut client = start(dir.path());

    // Not JSON at all.
    client.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    let error = client.expect("parse error", |m| m["error"]["code"] == -32700);
    assert_eq!(error["id"], Value::Null);

    // Invalid UTF-8 in the body.
    client.send_raw(b"Content-Length: 4\r\n\r\n\xff\xfe\xfd\xfc");
    client.expect("parse error for invalid UTF-8", |m| m["error"]["code"] == -32700);

    // A request for a method that does not exist.
    let response = client.request("acas/noSuchMethod", json!({}));
    assert_eq!(response["error"]["code"], -32601);

    // Params of the wrong shape.
    let id = client.request_async("textDocument/hover", json!({ "textDocument": 5 }));
    let response = client.expect("invalid params", |m| m["id"] == id);
    assert!(response["error"]["code"].is_i64(), "{response}");

    // Still serving: a document opens and is checked.
    let uri = file_uri(&dir.path().join("x.json"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "json", "version": 1, "text": "{\"a\": }" } }),
    );
    client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}

#[test]
fn a_panic_in_a_handler_is_answered_with_an_error() {
    let dir = workspace();
    let mut client = LspClient::start(&[("ACAS_ENABLE_TEST_COMMANDS", "1")]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan(&mut client);
    let response =
        client.request("workspace/executeCommand", json!({ "command": "acas.test.panic", "arguments": [] }));
    assert_eq!(response["error"]["code"], -32603, "{response}");
    assert!(client.stderr().contains("panicked"), "{}", client.stderr());

    let uri = file_uri(&dir.path().join("after.rs"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": "fn f( {}" } }),
    );
    client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}

#[test]
fn a_client_that_disappears_ends_the_server_and_activity_is_kept() {
    let dir = workspace();
    let mut client = start(dir.path());
    let path = dir.path().join("kept.rs");
    let uri = file_uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": "fn kept() {}" } }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 1);
    // No shutdown, no exit: the editor crashed.
    assert_eq!(client.close_stdin(), 1);
    client.finish(is_progress);

    let (code, stdout, stderr) = acas_e2e::run_acas(&["activity", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let activity: Value = serde_json::from_str(&stdout).unwrap();
    let opened = activity["activity"]
        .as_array()
        .unwrap()
        .iter()
        .any(|row| row["kind"] == "editor" && row["action"] == "open" && row["path"] == "kept.rs");
    assert!(opened, "{activity:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join(".acas/.gitignore")).unwrap().trim(), "state.db*");
}

#[test]
fn external_diagnostics_are_classified_recorded_and_not_republished() {
    let dir = workspace();
    let ts = dir.path().join("app.ts");
    std::fs::write(
        &ts,
        "export function total(n: number): number {\n  const x: number = \"a\";\n  return x + n;\n}\n",
    )
    .unwrap();
    let py = dir.path().join("job.py");
    std::fs::write(&py, "class Job:\n    def run(self):\n        return foo\n").unwrap();
    let mut client = start(dir.path());

    let range = |line: u32, from: u32, to: u32| json!({ "start": { "line": line, "character": from }, "end": { "line": line, "character": to } });
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": file_uri(&ts), "source": "ts", "diagnostics": [{
            "range": range(1, 8, 9), "severity": 1, "code": 2322,
            "message": "Type 'string' is not assignable to type 'number'." }] }),
    );
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": file_uri(&py), "source": "Pylance", "diagnostics": [{
            "range": range(2, 15, 18), "severity": 1, "code": "reportUndefinedVariable",
            "message": "\"foo\" is not defined" }] }),
    );
    let problems = client.request("acas/problems", json!({}))["result"].clone();
    let problems = problems.as_array().unwrap();
    let find = |category: &str| problems.iter().find(|p| p["category"] == category).cloned();
    let type_error = find("type").unwrap_or_else(|| panic!("{problems:#?}"));
    assert_eq!(type_error["source"], "ts");
    assert_eq!(type_error["symbol"], "total");
    assert_eq!(type_error["occurrences"], 1);
    assert_eq!(type_error["locations"][0]["uri"], file_uri(&ts));
    assert_eq!(type_error["locations"][0]["range"]["start"], json!({ "line": 1, "character": 8 }));
    let name_error = find("name").unwrap_or_else(|| panic!("{problems:#?}"));
    assert_eq!(name_error["source"], "Pylance");
    assert_eq!(name_error["symbol"], "Job.run");
    assert_eq!(name_error["severity"], "error");
    assert_ne!(name_error["fingerprint"], type_error["fingerprint"]);

    // Filters, then a source that clears its diagnostics resolves them.
    let only_names = client.request("acas/problems", json!({ "category": "name" }))["result"].clone();
    assert_eq!(only_names.as_array().unwrap().len(), 1);
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": file_uri(&py), "source": "Pylance", "diagnostics": [] }),
    );
    let remaining = client.request("acas/problems", json!({ "category": "name" }))["result"].clone();
    assert_eq!(remaining, json!([]));

    let status = client.request("acas/status", Value::Null)["result"].clone();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["workspaceRoot"], dir.path().display().to_string());
    assert_eq!(status["filesWatched"], 3);
    let states: Vec<(&str, &str)> = status["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    // The symbol indexes load once the scan is done: they may still be loading.
    let (before, symbols) = states.split_at(5);
    assert_eq!(
        before,
        [("store", "ok"), ("watcher", "ok"), ("config", "ok"), ("scan", "ok"), ("checkers", "off")]
    );
    assert!(matches!(symbols, [("symbols", "ok" | "busy")]), "{states:?}");

    assert_eq!(client.shutdown(), 0);
    // Nothing was published for the forwarded diagnostics.
    client.finish(is_progress);
}

#[test]
fn escalation_in_the_editor_explains_offers_a_verified_quick_fix_and_learns_the_outcome() {
    use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace_with_provider(&fake);
    let reply = json!({
        "explanation": "The parameter list of `add` is never closed. Add `)` after `b: i32`.",
        "fix": { "description": "Close the parameter list", "edits": [{ "old": "b: i32 ->", "new": "b: i32) ->" }] }
    });
    fake.push(Reply::Text {
        text: reply.to_string(),
        usage: FakeUsage { input_tokens: 900, output_tokens: 80, cached_input_tokens: 0 },
    });

    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan(&mut client);
    let path = dir.path().join("add.rs");
    let uri = file_uri(&path);
    let text = "fn add(a: i32, b: i32 -> i32 {\n    a + b\n}\n";
    std::fs::write(&path, text).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 1 && p["diagnostics"] != json!([]));
    let syntax = published["diagnostics"][0].clone();
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": uri, "source": "rust-analyzer", "diagnostics": [{
            "range": { "start": { "line": 0, "character": 22 }, "end": { "line": 0, "character": 24 } },
            "severity": 1, "message": "expected one of `)` or `,`, found `->`" }] }),
    );

    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": syntax["range"] }] }),
    );
    let done = client.escalation_done(&response);
    assert_eq!(done["uri"], uri.as_str());
    let result = &done["result"];
    assert!(result["explanation"].as_str().unwrap().starts_with("The parameter list"), "{done:#}");
    assert_eq!((result["provider"].as_str(), result["cached"].as_bool()), (Some("claude"), Some(false)));
    let fix_id = result["fixId"].as_str().expect("a verified fix").to_owned();
    let sent = fake.requests()[0].body.to_string();
    assert!(sent.contains("function add") && sent.contains("missing `)`"), "{sent}");
    assert!(sent.contains("Also reported on these lines: rust-analyzer: expected one of"), "{sent}");

    // The answer is shown as an acas-ai diagnostic next to the syntax error.
    let published = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().any(|d| d["source"] == "acas-ai")
    });
    let ai = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "acas-ai")
        .unwrap()
        .clone();
    assert_eq!(ai["message"], "The parameter list of `add` is never closed.");
    assert_eq!(ai["data"]["fixId"], fix_id.as_str());

    // Hover has the whole explanation; the quick fix applies a workspace edit.
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": ai["range"]["start"] }),
    );
    assert!(
        hover["result"]["contents"]["value"].as_str().unwrap().contains("Add `)` after `b: i32`"),
        "{hover:#}"
    );
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": syntax["range"], "context": { "diagnostics": [syntax, ai] } }),
    )["result"]
        .clone();
    let titles: Vec<&str> =
        actions.as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Apply AI fix: Close the parameter list (reparsed clean)",
            "Explain and fix with AI",
            "Create a task for agents from this problem"
        ]
    );
    // A task for agents from the problem, as `acas task from-problem` makes it; asked again,
    // the same open task.
    let task_command = actions[2]["command"].clone();
    assert_eq!(task_command["command"], "acas.task.fromProblem");
    assert_eq!(task_command["arguments"][0]["fingerprint"], syntax["data"]["fingerprint"]);
    let made = client.request("workspace/executeCommand", task_command.clone())["result"].clone();
    assert_eq!(
        (made["created"].as_bool(), made["task"]["type"].as_str()),
        (Some(true), Some("fix")),
        "{made:#}"
    );
    assert_eq!(made["task"]["state"], "queued", "{made:#}");
    let again = client.request("workspace/executeCommand", task_command)["result"].clone();
    assert_eq!(
        (again["created"].as_bool(), &again["task"]["id"]),
        (Some(false), &made["task"]["id"]),
        "{again:#}"
    );
    let fix = &actions[0];
    let edit = &fix["edit"]["changes"][uri.as_str()][0];
    assert_eq!(edit["newText"], "b: i32) ->");
    assert_eq!(fix["command"]["command"], "acas.fixApplied");

    // The editor applies it and runs its command; the error goes away, and so does the note.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "range": edit["range"], "text": edit["newText"] }] }),
    );
    let applied = client
        .request("workspace/executeCommand", json!({ "command": "acas.fixApplied", "arguments": [fix_id] }));
    assert!(applied.get("error").is_none(), "{applied:#}");
    client.expect_diagnostics(&uri, |p| p["version"] == 2 && p["diagnostics"] == json!([]));

    let spend = client.request("acas/spend", Value::Null)["result"].clone();
    // claude-haiku-4-5: $1/M input, $5/M output.
    assert!(
        (spend["todayUsd"].as_f64().unwrap() - (900.0 * 1.0 + 80.0 * 5.0) / 1e6).abs() < 1e-9,
        "{spend:#}"
    );
    assert_eq!(spend["providers"], json!(["claude"]));

    // The developer undoes it: the error is back, and the fix counts as reverted.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": text }] }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 3 && p["diagnostics"] != json!([]));
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);

    // What became of the fix is recorded: offered, applied, it resolved the error, and was undone.
    let (code, stdout, stderr) = acas_e2e::run_acas(&["stats", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let stats: Value = serde_json::from_str(&stdout).unwrap();
    let row = &stats["fixes"][0];
    assert_eq!(
        (row["provider"].as_str(), row["category"].as_str()),
        (Some("claude"), Some("syntax")),
        "{stats:#}"
    );
    assert_eq!(
        (
            row["offered"].as_u64(),
            row["applied"].as_u64(),
            row["resolved"].as_u64(),
            row["reverted"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(1))
    );
}

#[test]
fn a_broken_config_is_a_diagnostic_in_the_file_until_it_is_fixed() {
    let dir = workspace();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    let config = dir.path().join(".acas/config.toml");
    std::fs::write(&config, "[budget]\ndaily_usd = 2.0\n\n[[rules]]\npersists = \"soon\"\n").unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    let message = client.expect("a message about the configuration", |m| m["method"] == "window/showMessage");
    assert!(message["params"]["message"].as_str().unwrap().contains("rule 1: `persists`"), "{message:#}");
    let published = client.expect_diagnostics(&file_uri(&config), |p| p["diagnostics"] != json!([]));
    let d = &published["diagnostics"][0];
    assert_eq!(d["range"]["start"], json!({ "line": 3, "character": 0 }));
    assert!(d["message"].as_str().unwrap().starts_with("rule 1: `persists`: `soon` is not a duration"));
    wait_for_scan(&mut client);

    std::fs::write(&config, "[budget]\ndaily_usd = 2.0\n\n[[rules]]\npersists = \"30s\"\n").unwrap();
    client.expect_diagnostics(&file_uri(&config), |p| p["diagnostics"] == json!([]));
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}

#[test]
fn rules_escalate_a_persisting_type_error_without_being_asked() {
    use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
    let fake = FakeProvider::start(Format::Gemini);
    let dir = workspace();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    std::fs::write(
        dir.path().join(".acas/config.toml"),
        fake.provider_toml("gemini", "gemini-2.5-flash") + "\n\
             [[rules]]\ncategory = \"syntax\"\naction = \"ignore\"\n\n[[rules]]\ncategory = \"type\"\npersists = \"0s\"\nidle = \"0s\"\n",
    )
    .unwrap();
    let explanation = "`total` returns a string where a number is expected. Parse it first.";
    fake.push(Reply::text(&json!({ "explanation": explanation, "fix": null }).to_string()));
    let ts = dir.path().join("cart.ts");
    std::fs::write(&ts, "export function total(): number {\n  return \"12\";\n}\n").unwrap();
    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan(&mut client);

    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": file_uri(&ts), "source": "ts", "diagnostics": [{
            "range": { "start": { "line": 1, "character": 2 }, "end": { "line": 1, "character": 8 } },
            "severity": 1, "code": 2322, "message": "Type 'string' is not assignable to type 'number'." }] }),
    );
    // No request from the client: the rule decides, and the answer appears on the file.
    let published = client.expect_diagnostics(&file_uri(&ts), |p| p["diagnostics"] != json!([]));
    let ai = &published["diagnostics"][0];
    assert_eq!(ai["source"], "acas-ai");
    assert_eq!(ai["message"], "`total` returns a string where a number is expected.");
    assert_eq!(ai["range"]["start"], json!({ "line": 1, "character": 2 }));
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.to_string().contains("is not assignable to type"), "{:?}", sent[0].body);
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}

#[test]
fn closing_the_progress_cancels_an_escalation() {
    use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace_with_provider(&fake);
    fake.push(Reply::StallAfterText);
    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan(&mut client);
    let path = dir.path().join("add.rs");
    let uri = file_uri(&path);
    let text = "fn add(a: i32, b: i32 -> i32 {\n    a + b\n}\n";
    std::fs::write(&path, text).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    let range = published["diagnostics"][0]["range"].clone();
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": range }] }),
    );
    let id =
        response["result"]["escalationId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));

    // The progress is cancellable, and shows the first streamed text as soon as it arrives.
    let begin = client.expect("a cancellable progress", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["title"] == "ACAS: asking AI"
    });
    assert_eq!(begin["params"]["value"]["cancellable"], true, "{begin:#}");
    let token = begin["params"]["token"].clone();
    assert_eq!(token, format!("acas/escalate/{id}"));
    client.expect("progress on the first streamed text", |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token
            && m["params"]["value"]["message"].as_str().is_some_and(|s| s.contains("characters received"))
    });

    // The user closes it: the escalation ends as cancelled, and nothing is shown on the file.
    client.notify("window/workDoneProgress/cancel", json!({ "token": token }));
    let done = client.expect("the cancelled escalation", |m| {
        m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
    });
    assert_eq!(done["params"]["error"]["kind"], "cancelled", "{done:#}");
    assert!(done["params"].get("result").is_none(), "{done:#}");
    client.expect("the progress ends", |m| {
        m["method"] == "$/progress" && m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
    });
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| is_progress(m) || m["method"] == "textDocument/publishDiagnostics");
}

#[test]
fn the_symbol_index_follows_changed_files_between_escalations() {
    use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), fake.provider_toml("gpt", "gpt-4o-mini")).unwrap();
    let helper = dir.path().join("helper.rs");
    std::fs::write(&helper, "pub fn scale(n: i32) -> i32 {\n    n + 1\n}\n").unwrap();
    let main = dir.path().join("main.rs");
    let text = "fn main() {\n    let x = scale(1;\n}\n";
    std::fs::write(&main, text).unwrap();
    let answer = json!({ "explanation": "The call to `scale` is not closed.", "fix": null }).to_string();

    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan(&mut client);
    let uri = file_uri(&main);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    let range = published["diagnostics"][0]["range"].clone();
    let escalate = |client: &mut LspClient| {
        let response = client.request(
            "workspace/executeCommand",
            json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": range }] }),
        );
        let done = client.escalation_done(&response);
        assert!(done["result"]["explanation"].is_string(), "{done:#}");
    };
    fake.push(Reply::text(&answer));
    escalate(&mut client);
    let first = fake.requests()[0].body.to_string();
    assert!(first.contains("n + 1"), "the definition of `scale` is sent: {first}");

    // `scale` changes on disk (with a syntax error elsewhere, so that its diagnostics show when
    // the server has taken the change in).
    std::fs::write(&helper, "pub fn scale(n: i32) -> i32 {\n    n * 41\n}\nfn broken( {}\n").unwrap();
    client.expect_diagnostics(&file_uri(&helper), |p| p["diagnostics"] != json!([]));
    fake.push(Reply::text(&answer));
    escalate(&mut client);
    let second = fake.requests()[1].body.to_string();
    assert!(second.contains("n * 41") && !second.contains("n + 1"), "the new definition is sent: {second}");

    assert_eq!(client.shutdown(), 0);
    client.finish(|m| is_progress(m) || m["method"] == "textDocument/publishDiagnostics");
}

#[test]
fn escalating_with_a_provider_that_is_not_configured_is_refused_before_anything_is_sent() {
    use acas_e2e::fake_provider::{FakeProvider, Format};
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace_with_provider(&fake);
    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan(&mut client);
    let path = dir.path().join("add.rs");
    let uri = file_uri(&path);
    let text = "fn add(a: i32, b: i32 -> i32 {\n    a + b\n}\n";
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 1 && p["diagnostics"] != json!([]));
    let syntax = published["diagnostics"][0].clone();

    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": syntax["range"], "provider": "nope" }] }),
    );
    assert_eq!(response["error"]["code"], -32001, "{response:#}");
    assert_eq!(response["error"]["data"]["kind"], "invalidConfig", "{response:#}");
    assert_eq!(response["error"]["message"], "no provider is named `nope`", "{response:#}");
    assert!(fake.requests().is_empty(), "nothing is sent");
    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}
