//! The language server's transport against a hostile client: repeated keys, a client that stops
//! reading, a request with a null id, `shutdown` and `exit` sent
//! together. Each test drives the real binary over stdio.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use acas_e2e::{LspClient, acas_bin, file_uri, is_progress};
use serde_json::{Value, json};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn frame_json(message: &Value) -> Vec<u8> {
    frame(&serde_json::to_vec(message).unwrap())
}

fn progress_or_log(message: &Value) -> bool {
    is_progress(message) || message["method"] == "window/logMessage"
}

fn start_without_root() -> LspClient {
    let mut client = LspClient::start(&[]);
    client.initialize(None, json!({}));
    client
}

#[test]
fn a_repeated_top_level_key_is_refused_and_the_server_keeps_serving() {
    let mut client = start_without_root();
    client.send_raw(&frame(br#"{"jsonrpc":"2.0","id":2,"id":3,"method":"shutdown"}"#));
    let refused = client.expect("error for the repeated key", |m| m["error"]["code"] == -32600);
    assert!(refused["error"]["message"].as_str().unwrap().contains("more than once"), "{refused}");
    let status = client.request("acas/status", Value::Null);
    assert!(status.get("result").is_some(), "the server stopped serving: {status}");
    assert_eq!(client.shutdown(), 0);
    client.finish(progress_or_log);
}

#[test]
fn deeply_nested_params_are_refused_and_the_server_keeps_serving() {
    let mut client = start_without_root();
    // 127 levels passed the first JSON check, then ended the process when the LSP library read
    // the message again into its own types, past serde_json's recursion limit.
    for depth in [100, 127, 500] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{depth},"method":"acas/status","params":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        client.send_raw(&frame(body.as_bytes()));
        let refused = client.expect("error for the deep message", |m| m["id"] == depth);
        assert_eq!(refused["error"]["code"], -32600, "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("levels deep"), "{refused}");
    }
    let status = client.request("acas/status", Value::Null);
    assert!(status.get("result").is_some(), "the server stopped serving: {status}");
    assert_eq!(client.shutdown(), 0);
    client.finish(progress_or_log);
}

#[test]
fn a_client_that_does_not_read_its_errors_is_not_buffered_for() {
    // A server whose output nobody reads yet.
    let mut child = Command::new(acas_bin())
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", std::env::temp_dir().join("acas-tests-no-user-config"))
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Invalid requests, each answered with an error that echoes its kilobyte-long id.
    let invalid = frame(format!(r#"{{"jsonrpc":"2.0","id":"{}","x":1}}"#, "a".repeat(1000)).as_bytes());
    let batch = invalid.repeat(1000);
    let (done_tx, done) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        // 64 MB of input, answered with as much output: far more than pipes and queues hold.
        for _ in 0..64 {
            if stdin.write_all(&batch).is_err() {
                return;
            }
        }
        let _ = done_tx.send(());
        // Closing stdin ends the server once it has answered everything.
    });
    // While nothing is read, the server stops reading too: the writer cannot get rid of its input.
    let finished_unread = done.recv_timeout(Duration::from_secs(10)).is_ok();
    // Reading the output lets everything through: the server still serves.
    let mut output = Vec::new();
    stdout.read_to_end(&mut output).unwrap();
    writer.join().unwrap();
    child.wait().unwrap();
    assert!(!finished_unread, "the server read 64 MB of input while its answers were not read");
    // Every invalid message was answered: nothing was dropped to keep memory bounded.
    let output = String::from_utf8_lossy(&output);
    assert_eq!(output.matches("\"code\":-32600").count(), 64_000);
}

#[test]
fn initialized_right_behind_an_initialize_with_a_null_id_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = LspClient::start(&[]);
    let uri = file_uri(&dir.path().join("broken.rs"));
    let pipelined = [
        frame_json(&json!({ "jsonrpc": "2.0", "id": null, "method": "initialize", "params": {
            "processId": null,
            "rootUri": file_uri(dir.path()),
            "capabilities": {},
        }})),
        frame_json(&json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} })),
        frame_json(&json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": "fn f( {}\n" },
        }})),
    ]
    .concat();
    client.send_raw(&pipelined);
    let init = client
        .expect("initialize result", |m| m.get("id") == Some(&Value::Null) && m.get("result").is_some());
    assert_eq!(init["result"]["serverInfo"]["name"], "acas", "{init}");
    // The workspace starts on `initialized`: diagnostics prove it was not dropped.
    let diagnostics = client.expect_diagnostics(&uri, |p| p["version"] == 1);
    assert_ne!(diagnostics["diagnostics"], json!([]), "{diagnostics}");
    assert_eq!(client.shutdown(), 0);
    client.finish(progress_or_log);
}

#[test]
fn shutdown_and_exit_sent_together_end_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({}));
    client.send_raw(
        &[
            frame_json(&json!({ "jsonrpc": "2.0", "id": 99, "method": "shutdown" })),
            frame_json(&json!({ "jsonrpc": "2.0", "method": "exit" })),
        ]
        .concat(),
    );
    let answer = client.expect("shutdown answer", |m| m["id"] == 99);
    assert_eq!(answer.get("result"), Some(&Value::Null), "{answer}");
    assert_eq!(client.close_stdin(), 0);
    client.finish(progress_or_log);
}
