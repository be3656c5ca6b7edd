//! Workflow definitions in the editor: live diagnostics while typing and on disk, and the hover
//! of a `cron:` value.

use acas_e2e::{LspClient, file_uri, is_progress};
use serde_json::{Value, json};

const BROKEN: &str = r#"name: review
on:
  schedule: { cron: "0 9 * * 1-5", timezone: "Europe/Berln" }
steps:
  - id: read
    uses: file.reed
  - id: tell
    needs: [raed]
    uses: editor.notify
    with: { message: "{{ steps.read.output.content }}" }
"#;

const FIXED: &str = r#"name: review
on:
  schedule: { cron: "0 9 * * 1-5", timezone: "Europe/Berlin" }
steps:
  - id: read
    uses: file.read
  - id: tell
    needs: [read]
    uses: editor.notify
    with: { message: "{{ steps.read.output.content }}" }
"#;

/// The 0-based line and UTF-16 column where `needle` starts in `text`.
fn find(text: &str, needle: &str) -> (u64, u64) {
    let offset = text.find(needle).unwrap_or_else(|| panic!("`{needle}` is not in the text"));
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column = before.rsplit('\n').next().unwrap().encode_utf16().count();
    (line as u64, column as u64)
}

/// (line, character, message) of each diagnostic, after checking its source and severity.
fn located(published: &Value) -> Vec<(u64, u64, String)> {
    published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["source"], "acas-workflow", "{d:#}");
            assert_eq!(d["severity"], 1, "{d:#}");
            let start = &d["range"]["start"];
            (
                start["line"].as_u64().unwrap(),
                start["character"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_workflow_file_gets_live_diagnostics_and_cron_hovers() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let on_disk = workflows.join("nightly.yml");
    std::fs::write(&on_disk, "name: nightly\nsteps:\n  - id: a\n    run: echo hi\n").unwrap();
    let edited = workflows.join("review.yaml");
    std::fs::write(&edited, FIXED).unwrap();

    let mut client = LspClient::start(&[]);
    let init = client.initialize(Some(dir.path()), json!({ "window": { "workDoneProgress": true } }));
    assert_eq!(init["result"]["capabilities"]["hoverProvider"], true);

    // A broken file on disk is reported at the start; the valid one is not.
    let published = client.expect_diagnostics(&file_uri(&on_disk), |_| true);
    assert_eq!(
        located(&published),
        [(
            3,
            9,
            "`run` takes a list of arguments and never a shell; write `run: [\"echo\", \"hi\"]`, or `run: {shell: \"...\"}` for `sh -c`"
                .to_owned()
        )]
    );
    client.expect("end of the initial scan", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });

    // Typing mistakes into the open file shows each where it is.
    let uri = file_uri(&edited);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "yaml", "version": 1, "text": FIXED } }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 1 && p["diagnostics"] == json!([]));
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": BROKEN }] }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 2);
    let at = |needle: &str| find(BROKEN, needle);
    let expected = [
        (at("\"Europe/Berln\""), "unknown time zone `Europe/Berln`; did you mean `Europe/Berlin`?"),
        (at("file.reed"), "unknown action `file.reed`; did you mean `file.read`?"),
        (at("raed"), "step `tell` needs `raed`, which is not a step; did you mean `read`?"),
        (
            at("\"{{ steps"),
            "step `tell` reads `steps.read` but does not depend on it; add `read` to its `needs`",
        ),
    ];
    let expected: Vec<(u64, u64, String)> =
        expected.into_iter().map(|((line, column), message)| (line, column, message.to_owned())).collect();
    assert_eq!(located(&published), expected);
    let range = &published["diagnostics"][1]["range"];
    assert_eq!(range["end"], json!({ "line": 5, "character": 19 }), "{published:#}");

    // Fixing one character at a time: an incremental edit of `raed` leaves three, then the rest.
    let (line, column) = at("raed");
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": uri, "version": 3 },
            "contentChanges": [{
                "range": { "start": { "line": line, "character": column }, "end": { "line": line, "character": column + 4 } },
                "text": "read",
            }],
        }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["version"] == 3);
    assert_eq!(located(&published).len(), 2, "{published:#}");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 4 }, "contentChanges": [{ "text": FIXED }] }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 4 && p["diagnostics"] == json!([]));

    // Hovering the cron expression shows its next three runs, in its time zone and in UTC.
    let (line, column) = find(FIXED, "\"0 9 * * 1-5\"");
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": column + 3 } }),
    );
    let result = &hover["result"];
    assert_eq!(result["contents"]["kind"], "markdown", "{hover:#}");
    assert_eq!(result["range"]["start"], json!({ "line": line, "character": column }));
    assert_eq!(result["range"]["end"], json!({ "line": line, "character": column + 13 }));
    let text = result["contents"]["value"].as_str().unwrap();
    assert!(text.starts_with("**Schedule** `0 9 * * 1-5`: next runs (Europe/Berlin)"), "{text}");
    let runs: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(runs.len(), 3, "{text}");
    for run in runs {
        assert!(run.contains(" 09:00:00 CE"), "{run}");
        assert!(run.ends_with(" UTC)"), "{run}");
    }
    // Anywhere else, no hover.
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 2 } }),
    );
    assert_eq!(hover["result"], Value::Null, "{hover:#}");

    // Fixing the file on disk clears its diagnostics.
    std::fs::write(&on_disk, "name: nightly\nsteps:\n  - id: a\n    run: [echo, hi]\n").unwrap();
    client.expect_diagnostics(&file_uri(&on_disk), |p| p["diagnostics"] == json!([]));
    // Breaking a closed file on disk shows it again.
    client.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    std::fs::write(&edited, BROKEN).unwrap();
    let published =
        client.expect_diagnostics(&uri, |p| p["diagnostics"].as_array().is_some_and(|d| d.len() == 4));
    assert_eq!(published["version"], Value::Null);

    assert_eq!(client.shutdown(), 0);
    client.finish(is_progress);
}
