//! What real editors showed about the seams between them and the server, against the real
//! binary over stdio: commands that wait on an AI or a person answer at once with a handle and
//! end with a notification (with `$/progress`, or messages for a client without it), empty
//! params in every shape clients send them, diagnostics sent back with columns in another
//! encoding, the language of a document by its path, where the log goes, and a run's progress
//! that only moves forward.

use std::path::Path;

use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use acas_e2e::{LspClient, file_uri, is_progress};
use serde_json::{Value, json};

/// No provider keys from the environment of whoever runs the tests.
const NO_KEYS: [(&str, &str); 3] =
    [("ANTHROPIC_API_KEY", ""), ("OPENAI_API_KEY", ""), ("GEMINI_API_KEY", "")];

fn workspace(config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.path().join(".acas/config.toml"), config).unwrap();
    }
    dir
}

/// Starts the server in `root` with the fake's key and `capabilities`, after its initial scan.
fn start(root: &Path, fake: Option<&FakeProvider>, capabilities: Value) -> LspClient {
    start_with(root, fake, capabilities, &[])
}

fn start_with(
    root: &Path,
    fake: Option<&FakeProvider>,
    capabilities: Value,
    env: &[(&str, &str)],
) -> LspClient {
    let key = fake.map(FakeProvider::api_key).unwrap_or_default();
    let mut all = NO_KEYS.to_vec();
    all.push(("ACAS_FAKE_KEY", key.as_str()));
    all.extend_from_slice(env);
    let mut client = LspClient::start(&all);
    client.initialize(Some(root), capabilities);
    // The end of the initial scan: a request is answered once the work before it is done.
    client.request("acas/status", Value::Null);
    client
}

fn open(client: &mut LspClient, root: &Path, name: &str, language_id: &str, text: &str) -> String {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    let uri = file_uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": language_id, "version": 1, "text": text } }),
    );
    uri
}

fn command(client: &mut LspClient, command: &str, argument: Value) -> Value {
    client.request("workspace/executeCommand", json!({ "command": command, "arguments": [argument] }))
}

fn quiet(m: &Value) -> bool {
    is_progress(m)
        || matches!(
            m["method"].as_str(),
            Some("textDocument/publishDiagnostics" | "window/logMessage" | "acas/workflowRun")
        )
}

const BROKEN_RUST: &str = "fn add(a: i32, b: i32 -> i32 {\n    a + b\n}\n";

/// Opens [`BROKEN_RUST`] as `add.rs`, waits for its diagnostic and asks to escalate it; returns
/// the document's URI and the escalation's handle, which the command answers with at once.
fn escalate_broken_rust(client: &mut LspClient, root: &Path) -> (String, u64) {
    let uri = open(client, root, "add.rs", "rust", BROKEN_RUST);
    client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    let response =
        command(client, "acas.escalate", json!({ "uri": uri, "position": { "line": 0, "character": 22 } }));
    let id =
        response["result"]["escalationId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
    (uri, id)
}

#[test]
fn an_escalation_answers_at_once_and_acas_cancel_ends_it() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    // The provider never answers: a command that waited for it would never be answered.
    fake.push(Reply::Hang);
    let mut client = start(dir.path(), Some(&fake), json!({ "window": { "workDoneProgress": true } }));
    let (uri, id) = escalate_broken_rust(&mut client, dir.path());
    client.expect("the progress of that escalation", |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == format!("acas/escalate/{id}")
            && m["params"]["value"]["kind"] == "begin"
    });
    // Meanwhile the server serves the editor.
    let status = client.request("acas/status", Value::Null);
    assert_eq!(status["result"]["openDocuments"], 1, "{status:#}");

    let cancelled = command(&mut client, "acas.cancel", json!({ "escalationId": id }));
    assert_eq!(cancelled["result"], json!({ "cancelled": true }), "{cancelled:#}");
    let done = client.expect("the end of the escalation", |m| {
        m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
    });
    assert_eq!(done["params"]["error"]["kind"], "cancelled", "{done:#}");
    assert_eq!(done["params"]["uri"], uri.as_str());
    client.expect("the progress ends", |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == format!("acas/escalate/{id}")
            && m["params"]["value"]["kind"] == "end"
    });
    // Cancelling what has ended is no error.
    let again = command(&mut client, "acas.cancel", json!({ "escalationId": id }));
    assert_eq!(again["result"], json!({ "cancelled": false }), "{again:#}");
    let neither = command(&mut client, "acas.cancel", json!({}));
    assert_eq!(neither["error"]["data"]["kind"], "invalidParams", "{neither:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn a_client_without_progress_hears_of_an_escalation_through_messages() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    let answer =
        json!({ "explanation": "The parameter list of `add` is never closed.\n\nAdd `)`.", "fix": null });
    fake.push(Reply::text(&answer.to_string()));
    // eglot 1.9 announces no `window.workDoneProgress`.
    let mut client = start(dir.path(), Some(&fake), json!({}));
    let (_, id) = escalate_broken_rust(&mut client, dir.path());
    let started = client.expect("the start, shown", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .is_some_and(|t| t.starts_with("ACAS: asking AI: about add.rs:1"))
    });
    assert_eq!(started["params"]["type"], 3, "{started:#}");
    let ended = client.expect("the end, shown", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("is never closed"))
    });
    assert_eq!(ended["params"]["type"], 3, "{ended:#}");
    let done = client.expect("the end of the escalation", |m| {
        m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
    });
    assert!(done["params"]["result"]["explanation"].as_str().unwrap().starts_with("The parameter list"));
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| {
        assert!(!is_progress(m), "no progress for a client that did not announce it: {m:#}");
        quiet(m)
    });
}

#[test]
fn a_plan_answers_at_once_and_acas_cancel_ends_it() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(Some(&fake.provider_toml("primary", "gpt-4o-mini")));
    fake.push(Reply::Hang);
    let mut client = start(dir.path(), Some(&fake), json!({ "window": { "workDoneProgress": true } }));
    let response = command(&mut client, "acas.plan", json!({ "prompt": "write alpha then beta" }));
    let id = response["result"]["planId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
    client.expect("the planning's progress", |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == format!("acas/plan/{id}")
            && m["params"]["value"]["kind"] == "begin"
    });
    let cancelled = command(&mut client, "acas.cancel", json!({ "planId": id }));
    assert_eq!(cancelled["result"], json!({ "cancelled": true }), "{cancelled:#}");
    let ready =
        client.expect("the plan's end", |m| m["method"] == "acas/planReady" && m["params"]["planId"] == id);
    assert_eq!(ready["params"]["error"]["kind"], "cancelled", "{ready:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn a_cancel_that_crosses_a_plans_approval_either_stops_it_or_says_it_was_too_late() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(Some(&fake.provider_toml("primary", "gpt-4o-mini")));
    let plan = json!({ "tasks": [{ "id": "a", "name": "Write", "description": "Writes a word", "action": "run",
        "with": { "argv": ["sh", "-c", "echo word >> out.txt"] }, "needs": [], "priority": 1 }] });
    let mut client = start(dir.path(), Some(&fake), json!({ "window": { "workDoneProgress": true } }));
    client.never_answer("window/showMessageRequest");
    for round in 0..12 {
        fake.push(Reply::text(&plan.to_string()));
        let response =
            command(&mut client, "acas.plan", json!({ "prompt": format!("write a word, round {round}") }));
        let id = response["result"]["planId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
        let asked = client.expect("the approval request", |m| m["method"] == "window/showMessageRequest");
        // The approval and the cancel leave together, so the server sees them cross.
        let approve = json!({ "jsonrpc": "2.0", "id": asked["id"], "result": { "title": "Run plan" } });
        let cancel = json!({ "jsonrpc": "2.0", "id": 9000 + round, "method": "workspace/executeCommand",
            "params": { "command": "acas.cancel", "arguments": [{ "planId": id }] } });
        let mut bytes = Vec::new();
        for message in [approve, cancel] {
            let body = serde_json::to_vec(&message).unwrap();
            bytes.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
            bytes.extend(body);
        }
        client.send_raw(&bytes);
        let answered =
            client.expect("the cancel's answer", |m| m["id"] == 9000 + round && m.get("method").is_none());
        let cancelled = answered["result"]["cancelled"].as_bool().unwrap_or_else(|| panic!("{answered:#}"));
        let ready = client
            .expect("the plan's end", |m| m["method"] == "acas/planReady" && m["params"]["planId"] == id);
        let run = ready["params"]["result"]["runId"].as_i64();
        if cancelled {
            assert_eq!(ready["params"]["error"]["kind"], "cancelled", "a cancel that said true: {ready:#}");
            assert_eq!(run, None, "a cancelled plan started a run: {ready:#}");
        } else {
            let run =
                run.unwrap_or_else(|| panic!("a cancel that said false leaves the plan running: {ready:#}"));
            client.expect("the run's end", |m| {
                m["method"] == "acas/workflowRun"
                    && m["params"]["runId"] == run
                    && m["params"]["status"] == "succeeded"
            });
        }
    }
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| quiet(m) || m["method"] == "acas/workflowRun" || m["method"] == "window/showMessage");
}

#[test]
fn a_plan_without_a_provider_is_refused_at_once() {
    let dir = workspace(None);
    let mut client = start(dir.path(), None, json!({ "window": { "workDoneProgress": true } }));
    let response = command(&mut client, "acas.plan", json!({ "prompt": "anything" }));
    assert_eq!(response["error"]["data"]["kind"], "noProvider", "{response:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn an_approved_plan_shows_progress_over_all_its_steps_that_never_goes_back() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(Some(&fake.provider_toml("primary", "gpt-4o-mini")));
    let task = |id: &str, word: &str, needs: &[&str]| {
        json!({ "id": id, "name": format!("Write {word}"), "description": format!("Appends {word}"), "action": "run",
                "with": { "argv": ["sh", "-c", format!("echo {word} >> out.txt")] }, "needs": needs, "priority": 1 })
    };
    let plan =
        json!({ "tasks": [task("a", "alpha", &[]), task("b", "beta", &["a"]), task("c", "gamma", &["b"])] });
    fake.push(Reply::text(&plan.to_string()));
    let mut client = start(dir.path(), Some(&fake), json!({ "window": { "workDoneProgress": true } }));
    client.answer("window/showMessageRequest", json!({ "title": "Run plan" }));
    let response = command(&mut client, "acas.plan", json!({ "prompt": "write three words" }));
    let id = response["result"]["planId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
    let ready =
        client.expect("the plan's end", |m| m["method"] == "acas/planReady" && m["params"]["planId"] == id);
    let result = &ready["params"]["result"];
    assert_eq!((result["approved"].as_bool(), result["tasks"].as_u64()), (Some(true), Some(3)), "{ready:#}");
    let run = result["runId"].as_i64().expect("the approved plan runs");
    let token = format!("acas/workflow/{run}");
    client.expect("the run's success", |m| {
        m["method"] == "acas/workflowRun"
            && m["params"]["runId"] == run
            && m["params"]["status"] == "succeeded"
    });
    client.expect("the run's progress ends", |m| {
        m["method"] == "$/progress" && m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
    });
    let values: Vec<Value> = client
        .take_all(|m| m["method"] == "$/progress" && m["params"]["token"] == token)
        .into_iter()
        .map(|m| m["params"]["value"].clone())
        .filter(|v| v["kind"] != "end")
        .collect();
    assert!(!values.is_empty());
    let mut last = 0;
    for value in &values {
        let message = value["message"].as_str().unwrap();
        assert!(message.contains("/3 steps done"), "every report counts all three steps: {values:#?}");
        let percentage = value["percentage"].as_u64().unwrap();
        assert!(percentage >= last, "the percentage never goes down: {values:#?}");
        last = percentage;
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "alpha\nbeta\ngamma\n");
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| quiet(m) || m["method"] == "window/showMessageRequest");
}

#[test]
fn empty_params_are_accepted_in_every_shape_clients_send() {
    let dir = workspace(None);
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(
        dir.path().join(".acas/workflows/hello.yaml"),
        "name: hello\non:\n  manual: {}\nsteps:\n  - id: greet\n    run: [\"true\"]\n",
    )
    .unwrap();
    let mut client = LspClient::start(&NO_KEYS);
    let init = client.request(
        "initialize",
        // Lua's empty table, as Neovim sends it.
        json!({ "processId": null, "rootUri": file_uri(dir.path()), "capabilities": {}, "initializationOptions": [] }),
    );
    assert!(init.get("error").is_none(), "{init:#}");
    client.notify("initialized", json!({}));
    for params in [json!({}), json!([]), Value::Null] {
        for method in ["acas/status", "acas/spend", "acas/workflows"] {
            let response = client.request(method, params.clone());
            assert!(response.get("error").is_none(), "{method} with {params}: {response:#}");
        }
        let problems = client.request("acas/problems", params.clone());
        assert!(problems["result"].is_array(), "acas/problems with {params}: {problems:#}");
    }
    // No `params` at all.
    let id = 9000;
    client.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "acas/problems" }));
    let response = client.expect("problems without params", |m| m["id"] == id && m.get("method").is_none());
    assert!(response["result"].is_array(), "{response:#}");
    // Something in params of a request that takes none is still refused.
    let response = client.request("acas/status", json!({ "verbose": true }));
    assert_eq!(response["error"]["code"], -32602, "{response:#}");

    let started = command(&mut client, "acas.workflow.run", json!({ "workflow": "hello", "inputs": [] }));
    let run = started["result"]["runId"].as_i64().unwrap_or_else(|| panic!("a run id in {started:#}"));
    client.expect("the run's success", |m| {
        m["method"] == "acas/workflowRun"
            && m["params"]["runId"] == run
            && m["params"]["status"] == "succeeded"
    });
    client.notify("workspace/didChangeConfiguration", json!({ "settings": { "acas": [] } }));
    let status = client.request("acas/status", json!([]));
    assert!(status.get("error").is_none(), "{status:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| quiet(m) && m["method"] != "window/showMessage");
}

#[test]
fn a_diagnostic_sent_back_with_byte_columns_is_found_by_its_line() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    let reply = json!({
        "explanation": "The addition has no right operand.",
        "fix": { "description": "Add the operand", "edits": [{ "old": "1 +;", "new": "1 + 1;" }] }
    });
    fake.push(Reply::text(&reply.to_string()));
    // Neovim 0.7 offers no position encodings: UTF-16 is negotiated, and it sends bytes anyway.
    let mut client = start(dir.path(), Some(&fake), json!({ "window": { "workDoneProgress": true } }));
    let text = format!(
        "fn main() {{\n    let s = \"{}\"; let n = 1 +; let padding_padding_padding_padding_padding_padding_padding_padding = 2;\n}}\n",
        "é".repeat(60)
    );
    let text = text.as_str();
    let uri = open(&mut client, dir.path(), "utf.rs", "rust", text);
    let published = client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    let own = published["diagnostics"][0].clone();
    let line = own["range"]["start"]["line"].as_u64().unwrap() as usize;
    assert_eq!(line, 1, "{published:#}");
    // What Neovim 0.7 sends back: the same line, columns counted in bytes.
    let line_text = text.lines().nth(line).unwrap();
    let bytes = |utf16: u64| {
        let mut units = 0;
        for (i, ch) in line_text.char_indices() {
            if units >= utf16 {
                return i as u64;
            }
            units += ch.len_utf16() as u64;
        }
        line_text.len() as u64
    };
    let mut sent = own.clone();
    for end in ["start", "end"] {
        let utf16 = own["range"][end]["character"].as_u64().unwrap();
        sent["range"][end]["character"] = json!(bytes(utf16));
    }
    assert_ne!(sent["range"], own["range"]);
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": sent["range"], "context": { "diagnostics": [sent] } }),
    )["result"]
        .clone();
    let explain =
        actions.as_array().unwrap().iter().find(|a| a["title"] == "Explain and fix with AI").unwrap();
    let response = client.request("workspace/executeCommand", explain["command"].clone());
    let id =
        response["result"]["escalationId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
    let done = client.expect("the end of the escalation", |m| {
        m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
    });
    assert!(done["params"]["result"]["fixId"].is_string(), "{done:#}");
    let request = fake.requests()[0].body.to_string();
    assert!(request.contains(own["message"].as_str().unwrap()), "the diagnostic meant is sent: {request}");

    // The verified fix is offered for the same byte range, titled with how it was verified.
    let ai = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().any(|d| d["source"] == "acas-ai")
    });
    let ai = ai["diagnostics"].as_array().unwrap().iter().find(|d| d["source"] == "acas-ai").unwrap().clone();
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": sent["range"], "context": { "diagnostics": [sent, ai] } }),
    )["result"]
        .clone();
    assert_eq!(actions[0]["title"], "Apply AI fix: Add the operand (reparsed clean)", "{actions:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn the_path_decides_the_language_before_the_editor_language_id() {
    let dir = workspace(None);
    let mut client = start(dir.path(), None, json!({ "window": { "workDoneProgress": true } }));
    // Kakoune sends `python` for every file.
    let workflow = open(
        &mut client,
        dir.path(),
        ".acas/workflows/ci.yaml",
        "python",
        "name: ci\non:\n  manual: {}\nsteps:\n  - id: a\n    run: [\"true\"]\n    bogus: 1\n",
    );
    let published = client.expect_diagnostics(&workflow, |p| p["diagnostics"] != json!([]));
    let sources: Vec<&str> =
        published["diagnostics"].as_array().unwrap().iter().map(|d| d["source"].as_str().unwrap()).collect();
    assert!(
        sources.iter().all(|s| *s == "acas-workflow"),
        "checked as a workflow, not as Python: {published:#}"
    );
    open(&mut client, dir.path(), "README.md", "python", "# Title\n\nSome *text* (with a paren.\n");
    let rust = open(&mut client, dir.path(), "lib.rs", "python", "fn main() {}\n");
    let script =
        open(&mut client, dir.path(), "bin/tool", "python", "#!/usr/bin/env python3\ndef f(:\n    pass\n");
    let published = client.expect_diagnostics(&script, |p| p["diagnostics"] != json!([]));
    assert_eq!(published["diagnostics"][0]["source"], "acas");
    client.expect_diagnostics(&rust, |p| p["diagnostics"] == json!([]));
    let status = client.request("acas/status", Value::Null);
    // lib.rs as Rust and bin/tool as Python; README.md and the workflow are not parsed as code.
    assert_eq!(status["result"]["openDocuments"], 2, "{status:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn the_server_logs_to_its_file_and_only_warnings_to_stderr() {
    let dir = workspace(None);
    // The default of stderr, not the whole log the other tests read there.
    let mut client = start_with(
        dir.path(),
        None,
        json!({ "window": { "workDoneProgress": true } }),
        &[("ACAS_LOG_STDERR", ""), ("ACAS_LOG", "info")],
    );
    assert_eq!(client.shutdown(), 0);
    let stderr = client.stderr();
    assert!(!stderr.contains(" INFO "), "only warnings and errors on stderr:\n{stderr}");
    let log = std::fs::read_to_string(dir.path().join(".acas/logs/serve.log")).unwrap();
    assert!(log.contains(" INFO ") && log.contains("workspace "), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".acas/logs/.gitignore")).unwrap().lines().last(),
        Some("*")
    );
    client.finish(quiet);
}

#[test]
fn without_a_workspace_the_log_goes_under_the_user_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let mut client = LspClient::start(&[("XDG_STATE_HOME", state_dir), ("ACAS_LOG_STDERR", "")]);
    client.initialize(None, json!({}));
    assert_eq!(client.shutdown(), 0);
    let log = std::fs::read_to_string(state.path().join("acas/serve.log")).unwrap();
    assert!(log.contains("no workspace folder is open"), "{log}");
    client.finish(quiet);
}

#[test]
fn the_log_goes_to_the_editor_when_it_asks() {
    let dir = workspace(None);
    let mut client = LspClient::start(&NO_KEYS);
    client.request(
        "initialize",
        json!({ "processId": null, "rootUri": file_uri(dir.path()), "capabilities": {},
                "initializationOptions": { "logToClient": true, "logLevel": "debug" } }),
    );
    client.notify("initialized", json!({}));
    let logged = client.expect("the log as window/logMessage", |m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.starts_with("log file "))
    });
    assert_eq!(logged["params"]["type"], 3, "{logged:#}");
    client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "acas": { "logToClient": false } } }),
    );
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn another_tools_diagnostic_sent_back_with_byte_columns_is_explained_where_it_was_reported() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = workspace(Some(&fake.provider_toml("claude", "claude-haiku-4-5")));
    fake.push(Reply::text(&json!({ "explanation": "`n` is a string, not a number." }).to_string()));
    let mut client = start(dir.path(), Some(&fake), json!({ "window": { "workDoneProgress": true } }));
    let text = "fn main() {\n    let s = \"éééééééééééééééééééé\"; let n: i32 = \"x\";\n}\n";
    let uri = open(&mut client, dir.path(), "main.rs", "rust", text);
    client.expect_diagnostics(&uri, |p| p["version"] == 1);
    // The extension of another tool forwards its diagnostic in the negotiated UTF-16 columns...
    let line = text.lines().nth(1).unwrap();
    let at = line.find("\"x\"").unwrap();
    let utf16 = line[..at].encode_utf16().count() as u64;
    let range = |start: u64| json!({ "start": { "line": 1, "character": start }, "end": { "line": 1, "character": start + 3 } });
    let message = "mismatched types: expected `i32`, found `&str`";
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": uri, "source": "rust-analyzer", "diagnostics": [{ "range": range(utf16), "severity": 1, "message": message }] }),
    );
    client.request("acas/problems", json!({}));
    // ...and the editor sends it back counted in bytes.
    let sent =
        json!({ "range": range(at as u64), "severity": 1, "source": "rust-analyzer", "message": message });
    let response = command(
        &mut client,
        "acas.escalate",
        json!({ "uri": uri, "range": range(at as u64), "diagnostic": sent }),
    );
    let id =
        response["result"]["escalationId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
    client.expect("the end of the escalation", |m| {
        m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
    });
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
    assert_eq!(ai["range"], range(utf16), "the note is where the tool reported the error: {published:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}
