//! What an AI answer becomes in an editor that goes on editing, against the real binary over
//! stdio: the note and its fix move with the text edited while the AI answers and after, an
//! answer about an error only an unsaved buffer had is not shown once the buffer is closed,
//! and closing a buffer brings back the problems the file on disk has.

use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use acas_e2e::{LspClient, file_uri, is_progress};
use serde_json::{Value, json};

/// No provider keys from the environment of whoever runs the tests.
const NO_KEYS: [(&str, &str); 3] =
    [("ANTHROPIC_API_KEY", ""), ("OPENAI_API_KEY", ""), ("GEMINI_API_KEY", "")];

/// The area of a circle whose `(` is never closed, on line 1 (zero-based).
const BROKEN: &str = "fn area(r: f64) -> f64 {\n    3.14 * (r * r\n}\n";
const FIXED: &str = "fn area(r: f64) -> f64 {\n    3.14 * (r * r)\n}\n";

fn answer() -> String {
    json!({
        "explanation": "The parenthesis opened before `r * r` is never closed.",
        "fix": { "description": "close it", "edits": [{ "old": "(r * r\n", "new": "(r * r)\n" }] }
    })
    .to_string()
}

/// A workspace whose `lib.rs` holds `on_disk`, with the fake as its provider, and the server
/// started on it after its initial scan.
fn start(fake: &FakeProvider, on_disk: &str) -> (tempfile::TempDir, LspClient, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), fake.provider_toml("fake", "gpt-4o-mini")).unwrap();
    std::fs::write(dir.path().join("lib.rs"), on_disk).unwrap();
    let key = fake.api_key();
    let mut env = NO_KEYS.to_vec();
    env.push(("ACAS_FAKE_KEY", key.as_str()));
    let mut client = LspClient::start(&env);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    client.request("acas/status", Value::Null);
    let uri = file_uri(&dir.path().join("lib.rs"));
    (dir, client, uri)
}

fn open(client: &mut LspClient, uri: &str, text: &str) {
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    client.expect_diagnostics(uri, |p| p["diagnostics"] != json!([]));
}

/// Asks to escalate the error on line 1 and returns the escalation's handle.
fn escalate(client: &mut LspClient, uri: &str) -> u64 {
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "position": { "line": 1, "character": 12 } }] }),
    );
    response["result"]["escalationId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"))
}

fn done(client: &mut LspClient, id: u64) -> Value {
    client.expect("the end of the escalation", |m| {
        m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
    })
}

/// The `acas-ai` diagnostics of a publication.
fn notes(published: &Value) -> Vec<Value> {
    published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["source"] == "acas-ai")
        .cloned()
        .collect()
}

/// The code actions offered at the start of `line`.
fn actions_at(client: &mut LspClient, uri: &str, line: u32) -> Vec<Value> {
    let here = json!({ "start": { "line": line, "character": 0 }, "end": { "line": line, "character": 0 } });
    let response = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": here, "context": { "diagnostics": [] } }),
    );
    response["result"].as_array().cloned().unwrap_or_default()
}

/// `text` with the edits of a workspace edit for `uri` applied (UTF-16 columns of ASCII text).
fn apply(text: &str, edit: &Value, uri: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        lines[..line].iter().map(|l| l.len() + 1).sum::<usize>() + p["character"].as_u64().unwrap() as usize
    };
    let mut edits: Vec<(usize, usize, String)> = edit["changes"][uri]
        .as_array()
        .unwrap_or_else(|| panic!("edits of {uri} in {edit:#}"))
        .iter()
        .map(|e| {
            (
                offset(&e["range"]["start"]),
                offset(&e["range"]["end"]),
                e["newText"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut text = text.to_owned();
    for (start, end, new) in edits {
        text.replace_range(start..end, &new);
    }
    text
}

/// The AI fix offered at `line`, applied to `text`.
fn fixed_at(client: &mut LspClient, uri: &str, line: u32, text: &str) -> String {
    let actions = actions_at(client, uri, line);
    let fix = actions
        .iter()
        .find(|a| a["title"].as_str().is_some_and(|t| t.starts_with("Apply AI fix")))
        .unwrap_or_else(|| panic!("an AI fix offered on line {line}: {actions:#?}"));
    apply(text, &fix["edit"], uri)
}

fn quiet(m: &Value) -> bool {
    is_progress(m)
        || matches!(m["method"].as_str(), Some("textDocument/publishDiagnostics" | "window/logMessage"))
}

#[test]
fn an_ai_note_moves_with_lines_inserted_while_the_ai_answers() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::Held(answer()));
    let (_dir, mut client, uri) = start(&fake, BROKEN);
    open(&mut client, &uri, BROKEN);
    let id = escalate(&mut client, &uri);
    fake.wait_for_requests(1);
    // While the AI answers, three lines go in above the error.
    let edited = format!("// one\n// two\n// three\n{BROKEN}");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": edited }] }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 2);
    fake.open_gate();
    let done = done(&mut client, id);
    assert!(done["params"]["result"]["fixId"].is_string(), "{done:#}");
    let published = client.expect_diagnostics(&uri, |p| !notes(p).is_empty());
    assert_eq!(published["version"], 2, "{published:#}");
    assert_eq!(
        notes(&published)[0]["range"]["start"]["line"],
        4,
        "the note is on the error's line: {published:#}"
    );

    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": 4, "character": 16 } }),
    );
    assert!(hover["result"]["contents"].to_string().contains("never closed"), "{hover:#}");
    assert_eq!(fixed_at(&mut client, &uri, 4, &edited), format!("// one\n// two\n// three\n{FIXED}"));
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn an_ai_note_and_its_fix_move_with_edits_made_after_the_answer() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::text(&answer()));
    let (_dir, mut client, uri) = start(&fake, BROKEN);
    open(&mut client, &uri, BROKEN);
    let id = escalate(&mut client, &uri);
    done(&mut client, id);
    client.expect_diagnostics(&uri, |p| !notes(p).is_empty());
    // Two lines typed in above it, and text before the error on its own line, as edits of
    // ranges.
    let insert = |line: u32, character: u32, text: &str| {
        let at = json!({ "line": line, "character": character });
        json!({ "range": { "start": at, "end": at }, "text": text })
    };
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [
            insert(0, 0, "// one\n// two\n"),
            insert(3, 4, "let z = 1; "),
        ] }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 2);
    let note = &notes(&published)[0];
    let error = published["diagnostics"].as_array().unwrap().iter().find(|d| d["source"] == "acas").unwrap();
    assert_eq!(note["range"], error["range"], "the note stays on its error: {published:#}");
    let edited = "// one\n// two\nfn area(r: f64) -> f64 {\n    let z = 1; 3.14 * (r * r\n}\n";
    assert_eq!(
        fixed_at(&mut client, &uri, 3, edited),
        "// one\n// two\nfn area(r: f64) -> f64 {\n    let z = 1; 3.14 * (r * r)\n}\n"
    );
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn an_answer_about_an_error_only_a_closed_buffer_had_is_not_shown() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::Held(answer()));
    // The file on disk is clean; only the editor's buffer has the error.
    let (_dir, mut client, uri) = start(&fake, FIXED);
    open(&mut client, &uri, BROKEN);
    let id = escalate(&mut client, &uri);
    fake.wait_for_requests(1);
    client.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    client.expect_diagnostics(&uri, |p| p["diagnostics"] == json!([]));
    fake.open_gate();
    let done = done(&mut client, id);
    assert_eq!(done["params"]["result"]["fixId"], Value::Null, "no fix is offered: {done:#}");
    // Everything the answer caused is out before a request that follows it is answered.
    client.request("acas/status", Value::Null);
    let shown: Vec<Value> = client
        .take_all(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri)
        .into_iter()
        .filter(|m| m["params"]["diagnostics"] != json!([]))
        .collect();
    assert!(shown.is_empty(), "nothing is shown on the clean file: {shown:#?}");
    let actions = actions_at(&mut client, &uri, 1);
    assert!(actions.is_empty(), "{actions:#?}");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn closing_an_unsaved_buffer_brings_back_the_problems_of_the_file_on_disk() {
    let fake = FakeProvider::start(Format::OpenAi);
    let (_dir, mut client, uri) = start(&fake, FIXED);
    open(&mut client, &uri, BROKEN);
    let problems = |client: &mut LspClient| {
        let response = client.request("acas/problems", Value::Null);
        response["result"].as_array().cloned().unwrap_or_else(|| panic!("{response:#}"))
    };
    assert_eq!(problems(&mut client).len(), 1, "the buffer's error is a problem while it is open");
    client.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    client.expect_diagnostics(&uri, |p| p["diagnostics"] == json!([]));
    assert_eq!(problems(&mut client), Vec::<Value>::new(), "the file on disk has none");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}

#[test]
fn a_cancel_says_true_only_when_no_answer_is_shown() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::Held(answer()));
    fake.push(Reply::text(&answer()));
    let (_dir, mut client, uri) = start(&fake, BROKEN);
    open(&mut client, &uri, BROKEN);
    let cancel = |client: &mut LspClient, id: u64| {
        let response = client.request(
            "workspace/executeCommand",
            json!({ "command": "acas.cancel", "arguments": [{ "escalationId": id }] }),
        );
        response["result"]["cancelled"].as_bool().unwrap_or_else(|| panic!("{response:#}"))
    };
    // Cancelled while the provider answers: nothing is shown, whatever the provider says later.
    let id = escalate(&mut client, &uri);
    fake.wait_for_requests(1);
    assert!(cancel(&mut client, id));
    fake.open_gate();
    let ended = done(&mut client, id);
    assert_eq!(ended["params"]["error"]["kind"], "cancelled", "{ended:#}");
    client.request("acas/status", Value::Null);
    let shown = client
        .take_all(|m| m["method"] == "textDocument/publishDiagnostics" && !notes(&m["params"]).is_empty());
    assert!(shown.is_empty(), "{shown:#?}");

    // The answer is shown before the escalation has ended (its progress waits for a client
    // that does not answer): a cancel then is too late, and says so.
    client.never_answer("window/workDoneProgress/create");
    let id = escalate(&mut client, &uri);
    client.expect_diagnostics(&uri, |p| !notes(p).is_empty());
    assert!(!cancel(&mut client, id), "an answer already shown is not cancelled");
    let ended = done(&mut client, id);
    assert!(ended["params"]["result"]["fixId"].is_string(), "{ended:#}");
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| quiet(m) || m["method"] == "window/showMessage");
}

#[test]
fn an_escalation_does_not_wait_for_a_client_that_never_creates_its_progress() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::text(&answer()));
    let (_dir, mut client, uri) = start(&fake, BROKEN);
    open(&mut client, &uri, BROKEN);
    // The client announced `window.workDoneProgress` and never answers the token's creation.
    client.never_answer("window/workDoneProgress/create");
    let id = escalate(&mut client, &uri);
    fake.wait_for_requests(1);
    let done = done(&mut client, id);
    assert!(done["params"]["result"]["fixId"].is_string(), "{done:#}");
    let said = client.expect("the reason progress is not shown", |m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("window/workDoneProgress/create"))
    });
    assert_eq!(said["params"]["type"], 2, "a warning: {said:#}");
    client.expect("the end, shown as a message", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("never closed"))
    });
    assert_eq!(client.shutdown(), 0);
    client.finish(|m| quiet(m) || m["method"] == "window/showMessage");
}

#[test]
fn the_progress_of_an_answer_counts_characters_not_bytes() {
    let fake = FakeProvider::start(Format::OpenAi);
    let reply = json!({ "explanation": "😀".repeat(300), "fix": null }).to_string();
    let sent = reply.chars().count();
    fake.push(Reply::text(&reply));
    let (_dir, mut client, uri) = start(&fake, BROKEN);
    open(&mut client, &uri, BROKEN);
    let id = escalate(&mut client, &uri);
    done(&mut client, id);
    let token = format!("acas/escalate/{id}");
    let counts: Vec<usize> = client
        .take_all(|m| m["method"] == "$/progress" && m["params"]["token"] == token.as_str())
        .iter()
        .filter_map(|m| {
            m["params"]["value"]["message"]
                .as_str()?
                .strip_suffix(" characters received")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(!counts.is_empty(), "the characters received are reported");
    assert!(counts.iter().all(|&n| n <= sent), "{counts:?} of a reply of {sent} characters");
    assert_eq!(client.shutdown(), 0);
    client.finish(quiet);
}
