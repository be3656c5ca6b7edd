//! The language server against a hostile or careless client: bad frames, messages sent before
//! the server answered `initialize`, roots that are not local directories, stale document
//! versions. Each test drives the real binary over stdio.

use std::path::Path;

use acas_e2e::{LspClient, file_uri, is_progress};
use serde_json::{Value, json};

fn frame(message: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(message).unwrap();
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// Progress and log messages, which any test may receive.
fn progress_or_log(message: &Value) -> bool {
    is_progress(message) || message["method"] == "window/logMessage"
}

/// A server initialized without a workspace folder, so that it reads and writes no files.
fn start_without_root() -> LspClient {
    let mut client = LspClient::start(&[]);
    client.initialize(None, json!({}));
    client
}

fn assert_serving(client: &mut LspClient, case: &str) {
    let response = client.request("acas/status", Value::Null);
    assert!(response.get("result").is_some(), "{case}: the request after the bad frame failed: {response}");
}

const BODY: &[u8] = br#"{"jsonrpc":"2.0","method":"$/noSuchNotification","params":{}}"#;

/// A frame with `header` in front of a notification's body.
fn with_body(header: &str) -> Vec<u8> {
    [header.as_bytes(), BODY].concat()
}

/// Sends `bad`, then a request: the request is answered, the bad bytes got one parse error and a
/// line in the log.
fn check_recovers_after(case: &str, bad: &[u8]) {
    let mut client = start_without_root();
    client.send_raw(bad);
    assert_serving(&mut client, case);
    let errors = client.take_all(|m| m["id"].is_null() && m["error"]["code"] == -32700);
    assert_eq!(errors.len(), 1, "{case}: one parse error expected: {errors:#?}");
    client.expect_log("malformed");
    assert_eq!(client.shutdown(), 0, "{case}");
    client.finish(progress_or_log);
}

#[test]
fn a_negative_length_is_skipped() {
    check_recovers_after("negative length", &with_body("Content-Length: -5\r\n\r\n"));
}

#[test]
fn a_length_that_is_not_a_number_is_skipped() {
    check_recovers_after("not a number", &with_body("Content-Length: five\r\n\r\n"));
}

#[test]
fn an_overflowing_length_is_skipped() {
    check_recovers_after("overflowing", &with_body("Content-Length: 184467440737095516160\r\n\r\n"));
}

#[test]
fn a_missing_length_is_skipped() {
    check_recovers_after(
        "missing length",
        &with_body("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"),
    );
}

#[test]
fn a_length_too_small_costs_one_message() {
    check_recovers_after("too small", &with_body("Content-Length: 10\r\n\r\n"));
}

#[test]
fn a_length_too_large_costs_one_message() {
    check_recovers_after("too large", &with_body(&format!("Content-Length: {}\r\n\r\n", BODY.len() + 40)));
}

#[test]
fn a_length_over_the_maximum_is_refused_without_reading_it() {
    check_recovers_after("over the maximum", &with_body("Content-Length: 4294967296\r\n\r\n"));
}

#[test]
fn a_header_without_the_empty_line_is_skipped() {
    check_recovers_after("no empty line", &with_body(&format!("Content-Length: {}\r\n", BODY.len())));
}

#[test]
fn garbage_between_frames_is_skipped() {
    check_recovers_after("garbage", b"\x00\xffthis is not LSP\r\n{\"oops\"\n");
}

#[test]
fn a_message_cut_by_the_end_of_input_stops_the_server_with_a_message() {
    let mut client = start_without_root();
    client.send_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\":\"2.0\"");
    assert_eq!(client.close_stdin(), 1);
    client.expect_log("the input ended inside a message: 16 of the 100 bytes");
    client.finish(progress_or_log);
}

#[test]
fn messages_sent_before_the_initialize_reply_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = LspClient::start(&[]);
    // As clients do: `initialized` and the first requests right behind `initialize`, in one write.
    let uri = file_uri(&dir.path().join("broken.rs"));
    let pipelined = [
        frame(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": null,
            "rootUri": file_uri(dir.path()),
            "capabilities": {},
        }})),
        frame(&json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} })),
        frame(&json!({ "jsonrpc": "2.0", "id": 2, "method": "acas/status" })),
        frame(&json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": "fn f( {}\n" },
        }})),
    ]
    .concat();
    client.send_raw(&pipelined);
    let init = client.expect("initialize result", |m| m["id"] == 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "acas", "{init}");
    let status = client.expect("status result", |m| m["id"] == 2);
    assert!(status.get("result").is_some(), "the request was not served: {status}");
    let diagnostics = client.expect_diagnostics(&uri, |p| p["version"] == 1);
    assert_ne!(diagnostics["diagnostics"], json!([]), "{diagnostics}");
    assert_eq!(client.shutdown(), 0);
    client.finish(progress_or_log);
}

/// Every entry under `dir`, recursively.
fn entries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(read) = std::fs::read_dir(dir) {
        for entry in read.flatten() {
            found.push(entry.path().display().to_string());
            found.extend(entries(&entry.path()));
        }
    }
    found
}

#[test]
fn a_root_that_is_not_a_local_directory_gets_no_state_anywhere() {
    let sandbox = tempfile::tempdir().unwrap();
    let cwd = sandbox.path().join("cwd");
    let docs = sandbox.path().join("docs");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&docs).unwrap();
    let missing = sandbox.path().join("missing");
    let web = format!("http://localhost{}", sandbox.path().join("web").display());
    let roots: Vec<(&str, Option<String>)> = vec![
        ("http", Some(web)),
        ("missing directory", Some(file_uri(&missing))),
        ("untitled", Some("untitled:Untitled-1".to_owned())),
        ("a file", Some(file_uri(&docs.join("file.rs")))),
        ("none", None),
    ];
    std::fs::write(docs.join("file.rs"), "fn on_disk() {}\n").unwrap();
    for (case, root) in roots {
        let mut client = LspClient::start_in(&cwd, &[]);
        let folders = root.as_ref().map(|uri| json!([{ "uri": uri, "name": "ws" }]));
        let init = client.request(
            "initialize",
            json!({ "processId": null, "rootUri": root, "workspaceFolders": folders, "capabilities": {} }),
        );
        assert!(init.get("result").is_some(), "{case}: {init}");
        client.notify("initialized", json!({}));
        let said = client.expect("the message that nothing is recorded", |m| {
            matches!(m["method"].as_str(), Some("window/showMessage" | "window/logMessage"))
                && m["params"]["message"].as_str().is_some_and(|t| t.contains("nothing is recorded"))
        });
        if case != "none" {
            assert_eq!(said["method"], "window/showMessage", "{case}: {said}");
        }
        // Open documents are still checked.
        let uri = file_uri(&docs.join("open.rs"));
        client.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": "fn f( {}\n" } }),
        );
        let diagnostics = client.expect_diagnostics(&uri, |p| p["version"] == 1);
        assert_ne!(diagnostics["diagnostics"], json!([]), "{case}: {diagnostics}");
        client.notify("workspace/didChangeConfiguration", json!({ "settings": { "maxFileSize": 1000 } }));
        assert_eq!(client.shutdown(), 0, "{case}");
        let again = client
            .take_all(|m| m["params"]["message"].as_str().is_some_and(|t| t.contains("nothing is recorded")));
        assert_eq!(again, Vec::<Value>::new(), "{case}: said more than once");
        client.finish(progress_or_log);
        assert_eq!(entries(&cwd), Vec::<String>::new(), "{case}: written in the working directory");
        assert_eq!(entries(&docs), vec![docs.join("file.rs").display().to_string()], "{case}");
        assert!(!missing.exists(), "{case}: the missing root was created");
        assert!(!sandbox.path().join("web").exists(), "{case}: the path of the http URI was created");
    }
}

#[test]
fn a_change_with_a_stale_version_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({}));
    let uri = file_uri(&dir.path().join("doc.rs"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 5, "text": "fn ok() {}\n" } }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 5);
    // Older than the open text: must not be applied.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": "fn broken( {}\n" }] }),
    );
    // The same version again: must not be applied either.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 5 }, "contentChanges": [{ "text": "fn broken( {}\n" }] }),
    );
    // A newer one, an insertion whose result depends on the text it applies to.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": uri, "version": 6 },
            "contentChanges": [{
                "range": { "start": { "line": 1, "character": 0 }, "end": { "line": 1, "character": 0 } },
                "text": "fn two() {}\n",
            }],
        }),
    );
    let diagnostics = client.expect_diagnostics(&uri, |p| p["version"] == 6);
    assert_eq!(diagnostics["diagnostics"], json!([]), "a stale change was applied: {diagnostics}");
    let stale = client.take_all(|m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["version"].as_i64().is_some_and(|v| v < 5)
    });
    assert_eq!(stale, Vec::<Value>::new());
    client.expect_log("ignored a change");
    assert_eq!(client.shutdown(), 0);
    client.finish(progress_or_log);
}

#[test]
fn an_open_document_over_the_size_limit_is_not_parsed_and_the_user_is_told_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), "[files]\nmax_size = 1000\n").unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({}));
    let big = file_uri(&dir.path().join("big.rs"));
    let small = file_uri(&dir.path().join("small.rs"));
    let broken = "fn broken( {}\n".repeat(400);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": big, "languageId": "rust", "version": 1, "text": broken } }),
    );
    let told = client.expect("a message about the size limit", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("more than the 1000 bytes"))
    });
    assert!(told["params"]["message"].as_str().unwrap().contains("max_size"), "{told}");
    // Edits to it cost nothing and publish nothing; a second open does not repeat the message.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": big, "version": 2 }, "contentChanges": [{ "text": "fn x( {}\n".repeat(300) }] }),
    );
    client.notify("textDocument/didClose", json!({ "textDocument": { "uri": big } }));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": big, "languageId": "rust", "version": 3, "text": "fn y( {}\n".repeat(300) } }),
    );
    // A document under the limit is still checked, after everything above was handled.
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": small, "languageId": "rust", "version": 1, "text": "fn broken( {}\n" } }),
    );
    let diagnostics = client.expect_diagnostics(&small, |p| p["version"] == 1);
    assert_ne!(diagnostics["diagnostics"], json!([]), "{diagnostics}");
    let about_big = client.take_all(|m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == big
            || m["method"] == "window/showMessage"
    });
    // Closing may clear what the disk scan published for the path: never a diagnostic of it.
    assert!(
        about_big
            .iter()
            .all(|m| m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["diagnostics"] == json!([])),
        "{about_big:?}"
    );
    assert_eq!(client.shutdown(), 0);
    client.finish(progress_or_log);
}
