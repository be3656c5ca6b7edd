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

#[test]
fn files_that_are_not_source_are_not_parsed_whatever_language_the_editor_says() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({}));
    client.request("acas/status", Value::Null);
    // Kakoune sends `python` for every file.
    let files = [
        ("Makefile", "all:\n\techo ok\n"),
        ("LICENSE", "MIT License\n\nCopyright (c) 2026\n"),
        (".gitignore", "/target\n*.log\n"),
        ("Dockerfile", "FROM debian:stable\nRUN apt-get update\n"),
        (".env", "KEY='unterminated\n"),
        ("CODEOWNERS", "* @someone\n"),
        ("notes", "a note, not a script: def (\n"),
    ];
    let mut uris = Vec::new();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let uri = file_uri(&path);
        client.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": text } }),
        );
        uris.push(uri);
    }
    // A script whose first line says Python is.
    let script = dir.path().join("tool");
    let text = "#!/usr/bin/env python3\ndef f(:\n    pass\n";
    std::fs::write(&script, text).unwrap();
    let script = file_uri(&script);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": script, "languageId": "python", "version": 1, "text": text } }),
    );
    client.expect_diagnostics(&script, |p| p["diagnostics"] != json!([]));
    client.request("acas/status", Value::Null);
    let published = client.take_all(|m| {
        m["method"] == "textDocument/publishDiagnostics"
            && uris.iter().any(|u| m["params"]["uri"] == u.as_str())
            && m["params"]["diagnostics"] != json!([])
    });
    assert!(published.is_empty(), "{published:#?}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn null_inputs_of_a_workflow_run_are_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(
        dir.path().join(".acas/workflows/hello.yaml"),
        "name: hello\non:\n  manual: {}\nsteps:\n  - id: greet\n    run: [\"true\"]\n",
    )
    .unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({}));
    // Lua's `vim.NIL`, Emacs's `nil`.
    let started = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "hello", "inputs": null }] }),
    );
    let run = started["result"]["runId"].as_i64().unwrap_or_else(|| panic!("a run id in {started:#}"));
    client.expect("the run's success", |m| {
        m["method"] == "acas/workflowRun"
            && m["params"]["runId"] == run
            && m["params"]["status"] == "succeeded"
    });
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn a_run_with_skipped_steps_and_allowed_failures_reports_all_its_steps_done_before_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(
        dir.path().join(".acas/workflows/mixed.yaml"),
        "name: mixed\non:\n  manual: {}\nsteps:\n  - id: a\n    run: [\"true\"]\n  - id: b\n    needs: [a]\n    run: [\"false\"]\n    continue_on_error: true\n  - id: c\n    needs: [a]\n    run: [\"true\"]\n  - id: d\n    needs: [b, c]\n    if: \"{{ failure() }}\"\n    run: [\"true\"]\n  - id: e\n    needs: [d]\n    run: [\"true\"]\n",
    )
    .unwrap();
    let mut client = LspClient::start(&[]);
    client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    for round in 0..3 {
        let started = client.request(
            "workspace/executeCommand",
            json!({ "command": "acas.workflow.run", "arguments": [{ "workflow": "mixed" }] }),
        );
        let run = started["result"]["runId"].as_i64().unwrap_or_else(|| panic!("a run id in {started:#}"));
        let token = format!("acas/workflow/{run}");
        client.expect("the run's end", |m| {
            m["method"] == "acas/workflowRun"
                && m["params"]["runId"] == run
                && m["params"]["status"] != "running"
                && m["params"]["status"] != "pending"
        });
        client.expect("its progress ends", |m| {
            m["method"] == "$/progress"
                && m["params"]["token"] == token
                && m["params"]["value"]["kind"] == "end"
        });
        let values: Vec<Value> = client
            .take_all(|m| m["method"] == "$/progress" && m["params"]["token"] == token)
            .into_iter()
            .map(|m| m["params"]["value"].clone())
            .collect();
        let last =
            values.iter().rev().find(|v| v["kind"] == "report").unwrap_or_else(|| panic!("{values:#?}"));
        assert_eq!(
            (last["message"].as_str(), last["percentage"].as_u64()),
            (Some("5/5 steps done"), Some(100)),
            "round {round}: {values:#?}"
        );
    }
    assert_eq!(client.shutdown(), 0);
}
