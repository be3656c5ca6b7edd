//! Agents sharing a workspace through the real `acas` binary: several processes claim tasks at
//! once, path locks keep them apart, a finished dependency unblocks the next task, and the audit
//! log detects rows edited, deleted or reordered behind ACAS's back (with the sqlite3 library,
//! as a person with the sqlite3 tool would).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use acas_e2e::{acas_bin, run_acas};
use serde_json::Value;

fn acas(root: &Path, args: &[&str]) -> (i32, Value, String) {
    let (code, stdout, stderr) = run_acas(args, root);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (code, json, stderr)
}

fn create(root: &Path, title: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["task", "create", title, "--format", "json"];
    args.extend_from_slice(extra);
    let (code, json, stderr) = acas(root, &args);
    assert_eq!(code, 0, "{stderr}");
    json["task"]["id"].as_i64().unwrap()
}

fn spawn_claim(root: &Path, agent: &str) -> Child {
    Command::new(acas_bin())
        .args(["task", "claim", "--agent", agent, "--ttl", "10m", "--format", "json"])
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a claim process: its exit code and the task it got, if any.
fn finish(child: Child) -> (i32, Option<Value>) {
    let output = child.wait_with_output().unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let task = json.get("task").cloned();
    (output.status.code().unwrap_or(-1), task)
}

#[test]
fn two_agents_in_two_processes_get_different_tasks_and_keep_off_each_others_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let parser = create(root, "Fix the parser", &["--path", "src/parser/**", "--priority", "2"]);
    let docs = create(root, "Document the parser", &["--path", "docs/**"]);

    let (a, b) = (spawn_claim(root, "agent-a"), spawn_claim(root, "agent-b"));
    let (a, b) = (finish(a), finish(b));
    assert_eq!((a.0, b.0), (0, 0));
    let (a, b) = (a.1.unwrap(), b.1.unwrap());
    let mut ids = [a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap()];
    ids.sort_unstable();
    assert_eq!(ids, [parser, docs]);
    let holder = |id: i64| if a["id"] == id { "agent-a" } else { "agent-b" };
    let (parser_holder, docs_holder) = (holder(parser), holder(docs));

    // The docs agent may not lock a file under the parser agent's lock: refused (exit 4),
    // naming the holder, its task and when its lease ends.
    let (code, _, stderr) =
        acas(root, &["lock", "add", &docs.to_string(), "--agent", docs_holder, "src/parser/lex.rs"]);
    assert_eq!(code, 4, "{stderr}");
    for part in [
        format!("locked by {parser_holder}"),
        format!("#{parser}"),
        "Fix the parser".to_owned(),
        "until 20".to_owned(),
    ] {
        assert!(stderr.contains(&part), "{part} missing from {stderr}");
    }
    let (code, json, stderr) = acas(
        root,
        &["lock", "add", &docs.to_string(), "--agent", docs_holder, "README.md", "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["locks"].as_array().unwrap().len(), 2);

    // Nor may it act on the other's task.
    let (code, _, stderr) = acas(root, &["task", "done", &parser.to_string(), "--agent", docs_holder]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains(&format!("held by {parser_holder}")), "{stderr}");

    let (code, json, _) = acas(root, &["lock", "list", "--format", "json"]);
    assert_eq!(code, 0);
    let locks: Vec<(String, String)> = json["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["glob"].as_str().unwrap().to_owned(), l["agent"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        locks,
        [
            ("README.md".to_owned(), docs_holder.to_owned()),
            ("docs/**".to_owned(), docs_holder.to_owned()),
            ("src/parser/**".to_owned(), parser_holder.to_owned()),
        ]
    );

    // A third agent finds nothing: exit 5, with the reason.
    let (code, _, stderr) = acas(root, &["task", "claim", "--agent", "agent-c"]);
    assert_eq!(code, 5, "{stderr}");
    let (code, _, stderr) = acas(root, &["task", "release", &parser.to_string(), "--agent", parser_holder]);
    assert_eq!(code, 0, "{stderr}");
    let (code, json, stderr) = acas(root, &["task", "claim", "--agent", "agent-c", "--format", "json"]);
    assert_eq!((code, json["task"]["id"].as_i64()), (0, Some(parser)), "{stderr}");
}

#[test]
fn a_finished_dependency_unblocks_the_next_task() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let schema = create(root, "Add the schema", &[]);
    let api = create(root, "Serve the API", &["--needs", &schema.to_string(), "--priority", "5"]);
    let (code, json, _) = acas(root, &["task", "show", &api.to_string(), "--format", "json"]);
    assert_eq!((code, json["task"]["state"].as_str()), (0, Some("blocked")));

    // A dependency that would close a cycle is refused, the cycle named.
    let (code, _, stderr) = acas(root, &["task", "needs", &schema.to_string(), "--on", &api.to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("#{schema} -> #{api} -> #{schema}")), "{stderr}");

    let (code, json, _) = acas(root, &["task", "claim", "--agent", "a", "--format", "json"]);
    assert_eq!((code, json["task"]["id"].as_i64()), (0, Some(schema)));
    let (code, _, stderr) = acas(root, &["task", "claim", "--agent", "b"]);
    assert_eq!(code, 5);
    assert!(stderr.contains(&format!("waits for #{schema}")), "{stderr}");

    let (code, json, _) =
        acas(root, &["task", "heartbeat", &schema.to_string(), "--agent", "a", "--format", "json"]);
    assert_eq!((code, json["task"]["state"].as_str()), (0, Some("running")));
    let (code, json, _) =
        acas(root, &["task", "done", &schema.to_string(), "--agent", "a", "--format", "json"]);
    assert_eq!((code, json["unblocked"].clone()), (0, serde_json::json!([api])));
    let (code, json, _) = acas(root, &["task", "claim", "--agent", "b", "--format", "json"]);
    assert_eq!((code, json["task"]["id"].as_i64()), (0, Some(api)));
    let (code, json, _) = acas(
        root,
        &["task", "fail", &api.to_string(), "--agent", "b", "--error", "port taken", "--format", "json"],
    );
    assert_eq!(
        (code, json["task"]["state"].as_str(), json["task"]["attempts"].as_i64()),
        (0, Some("queued"), Some(1))
    );

    let (code, json, _) = acas(root, &["audit", "--format", "json"]);
    assert_eq!(code, 0);
    let events: Vec<&str> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detail"]["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(events, ["created", "created", "claimed", "running", "done", "unblocked", "claimed", "retry"]);
}

#[test]
fn claims_from_many_processes_never_share_a_task_or_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Eight tasks over four areas: two per area, so at most one of each pair can be held by
    // another agent than the one holding its twin.
    for area in ["src/a/**", "src/b/**", "docs/**", "tests/**"] {
        create(root, &format!("first in {area}"), &["--path", area]);
        create(root, &format!("second in {area}"), &["--path", area]);
    }
    let children: Vec<(String, Child)> = (0..8)
        .map(|n| format!("agent-{n}"))
        .map(|agent| (agent.clone(), spawn_claim(root, &agent)))
        .collect();
    let mut held: Vec<(String, i64, String)> = Vec::new();
    for (agent, child) in children {
        let (code, task) = finish(child);
        match code {
            0 => {
                let task = task.unwrap();
                let path = task["paths"][0].as_str().unwrap().to_owned();
                held.push((agent, task["id"].as_i64().unwrap(), path));
            }
            5 => {}
            other => panic!("{agent} exited {other}"),
        }
    }
    // Each agent claims once, so every area is held by exactly one agent.
    assert_eq!(held.len(), 4, "{held:?}");
    let mut ids: Vec<i64> = held.iter().map(|h| h.1).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "a task was given twice: {held:?}");
    let mut paths: Vec<&str> = held.iter().map(|h| h.2.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["docs/**", "src/a/**", "src/b/**", "tests/**"], "a path was given twice: {held:?}");
    let (code, _, stderr) = acas(root, &["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
}

/// Makes a workspace with a few audit records and returns it.
fn audited() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..5 {
        create(dir.path(), &format!("task {n}"), &[]);
    }
    let (code, json, _) = acas(dir.path(), &["audit", "verify", "--format", "json"]);
    assert_eq!((code, json["intact"].as_bool(), json["records"].as_u64()), (0, Some(true), Some(5)));
    dir
}

fn tamper(root: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn audit_verify_names_the_first_record_edited_deleted_or_reordered() {
    let cases = [
        ("UPDATE audit_log SET detail = replace(detail, 'task 2', 'task X') WHERE seq = 3", 3, "changed", "was changed"),
        ("DELETE FROM audit_log WHERE seq = 2", 2, "removed", "record 2 was removed"),
        (
            "CREATE TEMP TABLE t AS SELECT * FROM audit_log WHERE seq IN (2, 4);
             UPDATE audit_log SET (at_ms, kind, actor, subject, detail, prev_hash, hash) =
               (SELECT at_ms, kind, actor, subject, detail, prev_hash, hash FROM t WHERE t.seq = 6 - audit_log.seq)
             WHERE seq IN (2, 4);",
            2,
            "out_of_order",
            "does not follow record 1",
        ),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "truncated", "removed from the end"),
    ];
    for (sql, seq, kind, text) in cases {
        let dir = audited();
        tamper(dir.path(), sql);
        let (code, stdout, _) = run_acas(&["audit", "verify"], dir.path());
        assert_eq!(code, 1, "{sql}: {stdout}");
        assert!(
            stdout.contains(&format!("broken at record {seq}")) && stdout.contains(text),
            "{sql}: {stdout}"
        );
        let (code, json, _) = acas(dir.path(), &["audit", "verify", "--format", "json"]);
        assert_eq!(code, 1);
        assert_eq!(
            (json["first_break"]["seq"].as_i64(), json["first_break"]["kind"].as_str()),
            (Some(seq), Some(kind))
        );
    }
}
