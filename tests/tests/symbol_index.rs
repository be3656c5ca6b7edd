//! The editor's symbol index, against the real binary over stdio: `acas serve` loads each
//! language's index from the store once its initial scan is done, parsing again only the files
//! that changed since they were stored, so that the first escalation after a start parses
//! nothing and still sends the current definition.

use std::path::Path;

use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use acas_e2e::{LspClient, file_uri};
use serde_json::{Value, json};

/// No provider keys from the environment of whoever runs the tests.
const NO_KEYS: [(&str, &str); 3] =
    [("ANTHROPIC_API_KEY", ""), ("OPENAI_API_KEY", ""), ("GEMINI_API_KEY", "")];

/// Modules besides the two the error involves.
const FILLERS: usize = 20;

/// A crate whose `src/shapes.rs` calls `square`, defined in `src/square.rs`, on a line whose
/// `(` is never closed (zero-based line 3), and twenty other modules.
fn workspace(fake: &FakeProvider) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), fake.provider_toml("fake", "gpt-4o-mini")).unwrap();
    std::fs::write(
        root.join("src/square.rs"),
        "/// The square of a length.\npub fn square(x: f64) -> f64 {\n    x * x\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/shapes.rs"),
        "use crate::square::square;\n\npub fn circle_area(r: f64) -> f64 {\n    std::f64::consts::PI * (square(r)\n}\n",
    )
    .unwrap();
    for m in 0..FILLERS {
        std::fs::write(
            root.join(format!("src/m{m}.rs")),
            format!("pub fn filler_{m}(x: u32) -> u32 {{\n    x + {m}\n}}\n"),
        )
        .unwrap();
    }
    dir
}

fn serve(root: &Path, fake: &FakeProvider) -> LspClient {
    let key = fake.api_key();
    let mut env = NO_KEYS.to_vec();
    env.push(("ACAS_FAKE_KEY", key.as_str()));
    let mut client = LspClient::start(&env);
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    client
}

/// What the status says of the symbol indexes.
fn symbols(client: &mut LspClient) -> (String, String) {
    let status = client.request("acas/status", Value::Null)["result"].clone();
    let symbols = status["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "symbols")
        .unwrap_or_else(|| panic!("a symbols subsystem in {status:#}"))
        .clone();
    (symbols["state"].as_str().unwrap().to_owned(), symbols["detail"].as_str().unwrap_or("").to_owned())
}

/// Escalates the error of `src/shapes.rs` and waits for its end; returns the prompt sent.
fn escalate(client: &mut LspClient, root: &Path, fake: &FakeProvider, asked_before: usize) -> String {
    let answer = json!({ "explanation": "The `(` before `square` is never closed." }).to_string();
    fake.push(Reply::text(&answer));
    let uri = file_uri(&root.join("src/shapes.rs"));
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "position": { "line": 3, "character": 28 } }] }),
    );
    let done = client.escalation_done(&response);
    assert!(done["error"].is_null(), "{done:#}");
    let requests = fake.wait_for_requests(asked_before + 1);
    requests[asked_before].body.to_string()
}

#[test]
fn the_first_escalation_after_a_start_uses_the_stored_symbol_index() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&fake);
    let root = dir.path().canonicalize().unwrap();
    let files = FILLERS + 2;

    // A first start has nothing stored: every file is parsed once, when the scan is done, and
    // the escalation parses none.
    let mut client = serve(&root, &fake);
    client.expect_log("symbol index of rust loaded");
    let sent = escalate(&mut client, &root, &fake, 0);
    assert!(sent.contains("pub fn square(x: f64) -> f64"), "the definition is sent: {sent}");
    assert_eq!(
        symbols(&mut client),
        (
            "ok".to_owned(),
            format!(
                "rust: {files} files, 0 from the store and {files} parsed at start, 0 parsed by the last escalation"
            )
        )
    );
    assert_eq!(client.shutdown(), 0);

    // While the editor is closed, one file changes.
    std::fs::write(
        root.join("src/square.rs"),
        "/// The square, in single precision.\npub fn square(x: f32) -> f32 {\n    x * x\n}\n",
    )
    .unwrap();

    // The next start parses that file only, and the first escalation none, with the new
    // definition in what it sends.
    let mut client = serve(&root, &fake);
    let log = client.expect_log("symbol index of rust loaded");
    assert!(log.contains(&format!("{} files from the store, 1 parsed", files - 1)), "{log}");
    let sent = escalate(&mut client, &root, &fake, 1);
    assert!(sent.contains("pub fn square(x: f32) -> f32"), "the current definition is sent: {sent}");
    assert!(!sent.contains("x: f64) -> f64 {\\n    x * x"), "the old definition is not sent: {sent}");
    assert_eq!(
        symbols(&mut client),
        (
            "ok".to_owned(),
            format!(
                "rust: {files} files, {} from the store and 1 parsed at start, 0 parsed by the last escalation",
                files - 1
            )
        )
    );
    assert_eq!(client.shutdown(), 0);
}
