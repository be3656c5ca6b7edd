//! Every error the server answers a request or command with carries `data.kind`, the
//! protocol's `ErrorKind`, so that clients decide on it and never on the message. One test per
//! kind a client acts on, against the real binary over stdio.

use std::path::Path;

use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use acas_e2e::{LspClient, file_uri, is_progress};
use serde_json::{Value, json};

/// No provider keys from the environment of whoever runs the tests.
const NO_KEYS: [(&str, &str); 3] =
    [("ANTHROPIC_API_KEY", ""), ("OPENAI_API_KEY", ""), ("GEMINI_API_KEY", "")];

const HELLO: &str = r#"name: hello
on:
  manual:
    inputs:
      who: { type: string, required: true }
      times: { type: number, default: 1 }
steps:
  - id: greet
    run: ["true"]
"#;

fn workspace(config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(dir.path().join(".acas/workflows/hello.yaml"), HELLO).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.path().join(".acas/config.toml"), config).unwrap();
    }
    dir
}

fn start(root: Option<&Path>, env: &[(&str, &str)]) -> LspClient {
    let mut env = env.to_vec();
    env.extend(NO_KEYS);
    let mut client = LspClient::start(&env);
    client.initialize(root, json!({ "window": { "workDoneProgress": true } }));
    if root.is_some() {
        client.expect("end of the initial scan", |m| {
            m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
        });
    }
    client
}

fn command(client: &mut LspClient, command: &str, argument: Value) -> Value {
    client.request("workspace/executeCommand", json!({ "command": command, "arguments": [argument] }))
}

/// The error's `data.kind`, after checking that the response is an error with a message.
fn kind(response: &Value) -> &str {
    assert!(response["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{response:#}");
    response["error"]["data"]["kind"].as_str().unwrap_or_else(|| panic!("no data.kind in {response:#}"))
}

/// The `kind` of the error an escalation ended with, after checking that it has a message and
/// no result.
fn failure_kind(done: &Value) -> &str {
    assert!(done.get("result").is_none(), "{done:#}");
    assert!(done["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{done:#}");
    done["error"]["kind"].as_str().unwrap_or_else(|| panic!("no error.kind in {done:#}"))
}

/// Opens `name` with `text` (written to disk too) and waits for its diagnostics.
fn open(client: &mut LspClient, root: &Path, name: &str, text: &str) -> String {
    let path = root.join(name);
    std::fs::write(&path, text).unwrap();
    let uri = file_uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 1);
    uri
}

fn done(mut client: LspClient) {
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| {
        is_progress(m)
            || m["method"] == "textDocument/publishDiagnostics"
            || m["method"] == "acas/workflowRun"
            || m["method"] == "window/logMessage"
    });
}

#[test]
fn a_request_between_initialize_and_initialized_is_not_initialized() {
    let dir = workspace(None);
    let mut client = LspClient::start(&NO_KEYS);
    client.request(
        "initialize",
        json!({ "processId": null, "rootUri": file_uri(dir.path()), "capabilities": {} }),
    );
    let response = client.request("acas/status", Value::Null);
    assert_eq!(kind(&response), "notInitialized");
    assert_eq!(response["error"]["code"], -32002);
    client.notify("initialized", json!({}));
    done(client);
}

/// The LSP library's own refusals carry the kind too: a request before `initialize`, a second
/// `initialize`, a request after `shutdown`.
#[test]
fn requests_out_of_order_carry_their_kind() {
    let dir = workspace(None);
    let mut client = LspClient::start(&NO_KEYS);
    let response = client.request("acas/status", Value::Null);
    assert_eq!(
        (kind(&response), &response["error"]["code"]),
        ("notInitialized", &json!(-32002)),
        "{response}"
    );
    client.request(
        "initialize",
        json!({ "processId": null, "rootUri": file_uri(dir.path()), "capabilities": {} }),
    );
    client.notify("initialized", json!({}));
    let again =
        client.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    assert_eq!((kind(&again), &again["error"]["code"]), ("invalidRequest", &json!(-32600)), "{again}");
    let odd = client.request("acas/status", json!({ "a": 1 }));
    assert_eq!((kind(&odd), &odd["error"]["code"]), ("invalidParams", &json!(-32602)), "{odd}");
    assert!(client.request("shutdown", Value::Null).get("result").is_some());
    let after = client.request("acas/status", Value::Null);
    assert_eq!((kind(&after), &after["error"]["code"]), ("invalidRequest", &json!(-32600)), "{after}");
    client.notify("exit", Value::Null);
}

#[test]
fn malformed_arguments_and_unknown_commands_are_invalid_params() {
    let dir = workspace(None);
    let mut client = start(Some(dir.path()), &[]);
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": "untitled:Untitled-1", "position": { "line": 0, "character": 0 } }),
    );
    assert_eq!(kind(&response), "invalidParams");
    assert_eq!(response["error"]["code"], -32602);
    let response =
        command(&mut client, "acas.escalate", json!({ "uri": file_uri(&dir.path().join("a.rs")) }));
    assert_eq!(kind(&response), "invalidParams");
    let response = command(&mut client, "acas.nothing", json!({}));
    assert_eq!(kind(&response), "invalidParams");
    done(client);
}

#[test]
fn escalating_with_no_provider_is_no_provider() {
    let dir = workspace(None);
    let mut client = start(Some(dir.path()), &[]);
    let uri = open(&mut client, dir.path(), "add.rs", "fn add(a: i32 -> i32 {\n    a\n}\n");
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 14 } }),
    );
    assert_eq!(kind(&response), "noProvider", "{response:#}");
    done(client);
}

#[test]
fn a_position_with_no_diagnostic_is_no_diagnostic() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    let uri = open(&mut client, dir.path(), "ok.rs", "fn ok() {}\n");
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 3 } }),
    );
    assert_eq!(kind(&response), "noDiagnostic", "{response:#}");
    assert!(fake.requests().is_empty());
    done(client);
}

#[test]
fn a_file_acas_does_not_parse_is_unsupported_file() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    let uri = file_uri(&dir.path().join("notes.txt"));
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 0 } }),
    );
    assert_eq!(kind(&response), "unsupportedFile", "{response:#}");
    done(client);
}

#[test]
fn a_budget_that_refuses_every_provider_is_budget_exceeded() {
    let fake = FakeProvider::start(Format::Anthropic);
    let config =
        format!("[budget]\ndaily_usd = 0.0000001\n\n{}", fake.provider_toml("claude", "claude-haiku-4-5"));
    let dir = workspace(Some(&config));
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    let uri = open(&mut client, dir.path(), "add.rs", "fn add(a: i32 -> i32 {\n    a\n}\n");
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 14 } }),
    );
    let ended = client.escalation_done(&response);
    assert_eq!(failure_kind(&ended), "budgetExceeded", "{ended:#}");
    assert!(fake.requests().is_empty(), "a refused request is never sent");
    done(client);
}

#[test]
fn a_provider_that_fails_is_provider_failed() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    fake.push(Reply::Status {
        code: 400,
        headers: Vec::new(),
        body: "{\"error\":\"bad request\"}".to_owned(),
    });
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    let uri = open(&mut client, dir.path(), "add.rs", "fn add(a: i32 -> i32 {\n    a\n}\n");
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 14 } }),
    );
    let ended = client.escalation_done(&response);
    assert_eq!(failure_kind(&ended), "providerFailed", "{ended:#}");
    done(client);
}

#[test]
fn an_unknown_fix_is_fix_not_found() {
    let dir = workspace(None);
    let mut client = start(Some(dir.path()), &[]);
    let response = command(&mut client, "acas.fixApplied", json!("no-such-fix"));
    assert_eq!(kind(&response), "fixNotFound", "{response:#}");
    done(client);
}

#[test]
fn workflow_commands_say_what_is_wrong_by_kind() {
    let dir = workspace(None);
    let mut client = start(Some(dir.path()), &[]);

    let response = command(&mut client, "acas.workflow.run", json!({ "workflow": "nope" }));
    assert_eq!(kind(&response), "workflowNotFound", "{response:#}");

    // The input at fault and why, to show next to it in a form.
    let response = command(&mut client, "acas.workflow.run", json!({ "workflow": "hello" }));
    assert_eq!(kind(&response), "invalidInputs", "{response:#}");
    assert_eq!(response["error"]["data"]["input"], "who");
    assert!(response["error"]["data"]["reason"].as_str().unwrap().contains("required"), "{response:#}");
    let response = command(
        &mut client,
        "acas.workflow.run",
        json!({ "workflow": "hello", "inputs": { "who": "ada", "times": "many" } }),
    );
    assert_eq!(kind(&response), "invalidInputs", "{response:#}");
    assert_eq!(response["error"]["data"]["input"], "times");
    assert!(response["error"]["data"]["reason"].as_str().unwrap().contains("a number"), "{response:#}");

    let response = command(&mut client, "acas.workflow.cancel", json!({ "runId": 4242 }));
    assert_eq!(kind(&response), "runNotFound", "{response:#}");
    let response = command(&mut client, "acas.workflow.rerun", json!({ "runId": 4242 }));
    assert_eq!(kind(&response), "runNotFound", "{response:#}");
    done(client);
}

#[test]
fn workflows_without_a_workspace_folder_are_no_workspace() {
    let mut client = start(None, &[]);
    let response = command(&mut client, "acas.workflow.run", json!({ "workflow": "hello" }));
    assert_eq!(kind(&response), "noWorkspace", "{response:#}");
    done(client);
}

#[test]
fn with_a_position_only_the_server_chooses_the_diagnostic_to_explain() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    fake.push(Reply::text(&json!({ "explanation": "`x` is a string, not a number." }).to_string()));
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    // No syntax error of ACAS's own: the only diagnostics are another tool's.
    let uri = open(&mut client, dir.path(), "main.rs", "fn main() {\n    let n: i32 = \"x\";\n}\n");
    let line = |severity: u8, from: u32, to: u32, message: &str| {
        json!({ "range": { "start": { "line": 1, "character": from }, "end": { "line": 1, "character": to } },
                "severity": severity, "message": message })
    };
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": uri, "source": "rust-analyzer", "diagnostics": [
            line(2, 4, 22, "unused variable: `n`"),
            line(1, 17, 20, "mismatched types: expected `i32`, found `&str`"),
        ] }),
    );
    // Whatever the client sent before is handled before the next request.
    client.request("acas/problems", json!({}));
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 1, "character": 18 } }),
    );
    let ended = client.escalation_done(&response);
    assert!(ended["result"]["explanation"].as_str().is_some(), "{ended:#}");
    let sent = fake.requests()[0].body.to_string();
    assert!(sent.contains("mismatched types: expected `i32`"), "the error, not the warning: {sent}");
    done(client);
}

#[test]
fn a_provider_that_is_not_configured_is_invalid_config() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    let uri = open(&mut client, dir.path(), "add.rs", "fn add(a: i32 -> i32 {\n    a\n}\n");
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 14 }, "provider": "nope" }),
    );
    assert_eq!(kind(&response), "invalidConfig", "{response:#}");
    done(client);
}

#[test]
fn a_file_that_must_not_leave_the_machine_is_no_egress() {
    let fake = FakeProvider::start(Format::Anthropic);
    let config = format!(
        "[escalation]\nno_egress = [\"*.rs\"]\n\n{}",
        fake.provider_toml("claude", "claude-haiku-4-5")
    );
    let dir = workspace(Some(&config));
    let key = fake.api_key();
    let mut client = start(Some(dir.path()), &[("ACAS_FAKE_KEY", key.as_str())]);
    let uri = open(&mut client, dir.path(), "add.rs", "fn add(a: i32 -> i32 {\n    a\n}\n");
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "position": { "line": 0, "character": 14 } }),
    );
    let ended = client.escalation_done(&response);
    assert_eq!(failure_kind(&ended), "noEgress", "{ended:#}");
    assert!(fake.requests().is_empty(), "nothing was sent");
    done(client);
}

#[test]
fn re_running_a_successful_run_is_run_state() {
    let dir = workspace(None);
    let mut client = start(Some(dir.path()), &[]);
    let started =
        command(&mut client, "acas.workflow.run", json!({ "workflow": "hello", "inputs": { "who": "ada" } }));
    let run = started["result"]["runId"].as_i64().unwrap_or_else(|| panic!("a run id in {started:#}"));
    client.expect("the run's success", |m| {
        m["method"] == "acas/workflowRun"
            && m["params"]["runId"] == run
            && m["params"]["status"] == "succeeded"
    });
    let response = command(&mut client, "acas.workflow.rerun", json!({ "runId": run }));
    assert_eq!(kind(&response), "runState", "{response:#}");
    done(client);
}

/// A workspace whose store cannot be opened says so when a workflow is asked to run, rather than
/// that there is no workspace.
#[test]
fn a_workflow_run_without_a_usable_store_is_store_failed() {
    let dir = workspace(None);
    std::fs::create_dir_all(dir.path().join(".acas/state.db")).unwrap();
    let mut client = start(Some(dir.path()), &[]);
    let response =
        command(&mut client, "acas.workflow.run", json!({ "workflow": "hello", "inputs": { "who": "x" } }));
    assert_eq!(kind(&response), "storeFailed", "{response:#}");
    assert!(response["error"]["message"].as_str().unwrap().contains("state.db"), "{response:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| {
        is_progress(m)
            || m["method"] == "textDocument/publishDiagnostics"
            || m["method"] == "window/logMessage"
            || m["method"] == "window/showMessage"
    });
}
