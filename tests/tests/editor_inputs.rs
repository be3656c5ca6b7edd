//! What editors send that ACAS must bound or read generously, against the real binary over
//! stdio: client text in log lines, the language of files with no extension, `null` for an
//! optional map.

use acas_e2e::{LspClient, file_uri};
use serde_json::{Value, json};

#[test]
fn a_megabyte_uri_does_not_make_megabyte_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
    let cap = 100_000;
    let mut client = LspClient::start(&[("ACAS_LOG_MAX_BYTES", &cap.to_string())]);
    client.initialize(Some(dir.path()), json!({}));
    let uri = format!("{}/{}.py", file_uri(dir.path()), "Z".repeat(1_000_000));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 5, "text": "x = 1\n" } }),
    );
    // Stale changes are logged as warnings, naming the document.
    for _ in 0..3 {
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": 1 }, "contentChanges": [{ "text": "y" }] }),
        );
    }
    client.request("acas/status", Value::Null);
    client.expect_log("ignored a change");
    assert_eq!(client.shutdown(), 0);
    let stderr = client.stderr();
    let longest = stderr.lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 8 * 1024, "a log line of {longest} bytes on stderr");
    assert!(
        stderr.lines().any(|l| l.contains("ignored a change") && l.ends_with("bytes cut]")),
        "{}",
        &stderr[..2000]
    );
    for name in ["serve.log", "serve.log.1"] {
        let size = std::fs::metadata(dir.path().join(".acas/logs").join(name)).map_or(0, |m| m.len());
        assert!(size <= cap, "{name} has {size} bytes, over its cap of {cap}");
    }
}
