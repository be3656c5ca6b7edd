//! Real `acas` processes sharing one PostgreSQL store (`ACAS_DATABASE_URL`), each in its own
//! clone of one repository: the team's budget holds across them.

use std::process::{Command, Stdio};

use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
use acas_e2e::postgres::PgCluster;
use acas_e2e::{LspClient, acas_bin};
use serde_json::json;

/// A clone of the team's repository: `src/shapes.rs` misses a `)` on line 6, the remote is
/// `remote` (one repository, written in different ways on different machines).
fn clone(config: &str, remote: &str, mark: usize) -> tempfile::TempDir {
    clone_as(config, remote, mark, "ada@example.com")
}

/// [`clone`], with `email` as git's `user.email`: the user ACAS writes as.
fn clone_as(config: &str, remote: &str, mark: usize, email: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config).unwrap();
    std::fs::write(root.join("src/square.rs"), "pub fn square(x: f64) -> f64 {\n    x * x\n}\n").unwrap();
    std::fs::write(
        root.join("src/shapes.rs"),
        format!(
            "use crate::square::square;\n\npub fn circle_area(r: f64) -> f64 {{\n    let _unused = {mark};\n\n    std::f64::consts::PI * (square(r)\n}}\n"
        ),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_AUTHOR_NAME", "Ada Lovelace")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Lovelace")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            // Clones hold the same commits.
            .env("GIT_AUTHOR_DATE", "2026-01-05T10:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-05T10:00:00Z")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", email]);
    git(&["remote", "add", "origin", remote]);
    git(&["add", "src"]);
    git(&["commit", "-q", "-m", "Compute circle areas"]);
    dir
}

fn reply() -> String {
    json!({
        "explanation": "The call to `square` opens a parenthesis that is never closed.",
        "fix": { "description": "Close the parenthesis", "edits": [{ "old": "(square(r)\n", "new": "(square(r))\n" }] }
    })
    .to_string()
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap().split('?').next().unwrap()
}

#[test]
fn racing_acas_processes_on_clones_never_pass_the_team_budget() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let fake = FakeProvider::start(Format::OpenAi);
    let processes = 6;
    for _ in 0..processes {
        // Billed at most what was reserved: few input tokens, the whole output allowance.
        let usage = FakeUsage { input_tokens: 10, output_tokens: 1024, cached_input_tokens: 0 };
        fake.push(Reply::Text { text: reply(), usage });
    }
    // About two worst-case requests fit in the team's day.
    let config = format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n\n[budget]\ndaily_usd = 0.0018\n",
        fake.base_url()
    );
    let remotes = ["https://github.com/acme/shapes.git", "git@github.com:acme/shapes.git"];
    // Each clone asks a question of its own, so that no answer comes from the shared cache.
    let clones: Vec<_> = (0..processes).map(|i| clone(&config, remotes[i % 2], i)).collect();
    let explain = |root: &std::path::Path| {
        Command::new(acas_bin())
            .args(["explain", "src/shapes.rs:6", "--format", "json"])
            .current_dir(root)
            .env("ACAS_DATABASE_URL", &url)
            .env("ACAS_FAKE_KEY", fake.api_key())
            .env("ACAS_LOG", "warn")
            .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("GEMINI_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = clones.iter().map(|dir| explain(dir.path())).collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    let logs: Vec<String> = outputs
        .iter()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        .collect();
    assert!(codes.iter().all(|&c| c == 0 || c == 2), "{codes:?}\n{}", logs.join("\n---\n"));

    let db = database_name(&url);
    let limit_micros = 1_800;
    let rows = cluster.psql(
        db,
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'refused'), \
         count(*) FILTER (WHERE status = 'cached'), \
         coalesce(sum(cost_micros) FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled')), 0) \
         + coalesce(sum(reserved_micros) FILTER (WHERE status = 'reserved'), 0), \
         count(DISTINCT repository), min(repository), min(user_name) FROM provider_call",
    );
    let fields: Vec<&str> = rows.split('|').collect();
    let (succeeded, refused, cached, spent): (usize, usize, usize, u64) = (
        fields[0].parse().unwrap(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        fields[3].parse().unwrap(),
    );
    assert!(spent <= limit_micros, "spent {spent} micros against a limit of {limit_micros}: {rows}");
    assert!(succeeded >= 1, "{rows}\n{}", logs.join("\n---\n"));
    assert_eq!((succeeded + refused, cached), (processes, 0), "{rows}");
    assert!(refused >= 1, "the limit was never reached: {rows}");
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), succeeded + cached, "{codes:?}");
    assert_eq!(fake.requests().len(), succeeded, "a refused or cached request was sent");
    assert_eq!(&fields[4..], &["1", "github.com/acme/shapes", "ada@example.com"], "{rows}");
    for log in &logs {
        assert!(!log.contains("postgres://"), "the URL is not shown when all is well: {log}");
    }

    // A reply one clone paid for answers the same question on another machine's clone, at no
    // cost, though the budget is spent.
    let paid = codes.iter().position(|&c| c == 0).unwrap();
    let another = clone(&config, remotes[(paid + 1) % 2], paid);
    let output = explain(another.path()).wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(fake.requests().len(), succeeded, "the cached answer was asked again");
    let cached = cluster.psql(db, "SELECT count(*) FROM provider_call WHERE status = 'cached'");
    assert_eq!(cached, "1");
}

/// `acas explain` on line 6 of `src/shapes.rs` in `root`, against the shared store at `url`.
fn explain_in(root: &std::path::Path, url: &str, fake: &FakeProvider) -> std::process::Child {
    Command::new(acas_bin())
        .args(["explain", "src/shapes.rs:6", "--format", "json"])
        .current_dir(root)
        .env("ACAS_DATABASE_URL", url)
        .env("ACAS_FAKE_KEY", fake.api_key())
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_users_racing_on_clones_each_stop_at_their_own_limit() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let fake = FakeProvider::start(Format::OpenAi);
    let per_user = 4;
    let users = ["ana@example.com", "bo@example.com"];
    for _ in 0..per_user * users.len() {
        let usage = FakeUsage { input_tokens: 10, output_tokens: 1024, cached_input_tokens: 0 };
        fake.push(Reply::Text { text: reply(), usage });
    }
    // About two worst-case requests fit in each user's day; the team has no limit.
    let config = format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n\n[budget.per_user]\ndaily_usd = 0.0018\n",
        fake.base_url()
    );
    // Each clone asks a question of its own, so that no answer comes from the shared cache.
    let clones: Vec<(&str, tempfile::TempDir)> = (0..per_user * users.len())
        .map(|i| {
            let user = users[i % users.len()];
            (user, clone_as(&config, "https://github.com/acme/shapes.git", i, user))
        })
        .collect();
    let children: Vec<_> = clones.iter().map(|(_, dir)| explain_in(dir.path(), &url, &fake)).collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let db = database_name(&url);
    for (i, user) in users.iter().enumerate() {
        let runs: Vec<_> = clones
            .iter()
            .zip(&outputs)
            .filter(|((u, _), _)| u == user)
            .map(|(_, o)| {
                let log =
                    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                (o.status.code().unwrap_or(-1), log)
            })
            .collect();
        let logs = runs.iter().map(|(_, log)| log.as_str()).collect::<Vec<_>>().join("\n---\n");
        let rows = cluster.psql(
            db,
            &format!(
                "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'refused'), \
                 coalesce(sum(cost_micros) FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled')), 0) \
                 + coalesce(sum(reserved_micros) FILTER (WHERE status = 'reserved'), 0) \
                 FROM provider_call WHERE user_name = '{user}'"
            ),
        );
        let fields: Vec<u64> = rows.split('|').map(|f| f.parse().unwrap()).collect();
        let (succeeded, refused, spent) = (fields[0], fields[1], fields[2]);
        assert!(spent <= 1_800, "user {i} spent {spent} micros against a limit of 1800: {rows}\n{logs}");
        // Each user got their own share: the other's spend did not count against them.
        assert!(succeeded >= 1, "{user}: {rows}\n{logs}");
        assert!(refused >= 1, "{user}'s limit was never reached: {rows}");
        assert_eq!((succeeded + refused) as usize, per_user, "{rows}");
        assert_eq!(runs.iter().filter(|(code, _)| *code == 0).count() as u64, succeeded, "{logs}");
        // A refusal names the user's limit, its value, the spend and how to change it.
        let refusal = runs.iter().find(|(code, _)| *code != 0).map(|(_, log)| log.clone()).unwrap();
        assert!(
            refusal.contains(&format!("the user {user} daily budget of $0.0018 would be exceeded"))
                && refusal.contains("spent or reserved")
                && refusal.contains("raise `[budget.per_user] daily_usd`"),
            "{refusal}"
        );
    }
    assert_eq!(fake.requests().len(), outputs.iter().filter(|o| o.status.code() == Some(0)).count());
}

/// `acas ARGS` in `root` against the shared store at `url`: (exit code, JSON on stdout, stderr).
fn acas_shared(root: &std::path::Path, url: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(root)
        .env("ACAS_DATABASE_URL", url)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn task_commands_in_two_clones_share_one_queue_and_racing_claims_take_each_task_once() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("", "https://github.com/acme/shapes.git", 0);
    let desktop = clone("", "git@github.com:Acme/shapes.git", 0);
    let elsewhere = clone("", "https://github.com/acme/other.git", 0);

    let tasks = 8;
    let mut created = Vec::new();
    for i in 0..tasks {
        let (code, json, stderr) =
            acas_shared(laptop.path(), &url, &["task", "create", &format!("t{i}"), "--format", "json"]);
        assert_eq!(code, 0, "{stderr}");
        created.push(json["task"]["id"].as_i64().unwrap());
    }
    let (code, json, stderr) = acas_shared(desktop.path(), &url, &["task", "list", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["tasks"].as_array().unwrap().len(), tasks, "the other clone sees the team's queue");
    let (_, json, _) = acas_shared(elsewhere.path(), &url, &["task", "list", "--format", "json"]);
    assert_eq!(json["tasks"].as_array().unwrap().len(), 0, "another repository's queue is its own");
    // Nothing was put in the workspaces' own queues.
    let (code, json, stderr) = acas_local(laptop.path(), &["task", "list", "--all", "--format", "json"]);
    assert_eq!((code, json["tasks"].as_array().map(Vec::len)), (0, Some(0)), "{json} {stderr}");

    // Agents in both clones claim at once, each until the queue is empty.
    let claimers: Vec<_> = (0..4)
        .map(|a| {
            let root = if a % 2 == 0 { laptop.path().to_owned() } else { desktop.path().to_owned() };
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = format!("agent-{a}");
                let mut mine = Vec::new();
                loop {
                    let (code, json, stderr) =
                        acas_shared(&root, &url, &["task", "claim", "--agent", &agent, "--format", "json"]);
                    if code != 0 {
                        assert!(json["claimed"].is_null(), "{code}: {json} {stderr}");
                        return mine;
                    }
                    let id = json["task"]["id"].as_i64().unwrap();
                    let (code, _, stderr) =
                        acas_shared(&root, &url, &["task", "done", &id.to_string(), "--agent", &agent]);
                    assert_eq!(code, 0, "{stderr}");
                    mine.push(id);
                }
            })
        })
        .collect();
    let mut claimed: Vec<i64> = claimers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    claimed.sort();
    assert_eq!(claimed, created, "every task was claimed exactly once");

    // Needs, retry, unblock and lock add act on the team's queue, whichever clone runs them.
    let run = |root: &std::path::Path, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        acas_shared(root, &url, &all)
    };
    let ok = |root: &std::path::Path, args: &[&str]| {
        let (code, json, stderr) = run(root, args);
        assert_eq!(code, 0, "{args:?}: {json} {stderr}");
        json
    };
    let flaky = ok(laptop.path(), &["task", "create", "flaky", "--max-attempts", "1", "--path", "src/**"]);
    let flaky = flaky["task"]["id"].as_i64().unwrap().to_string();
    let after = ok(desktop.path(), &["task", "create", "after"])["task"]["id"].as_i64().unwrap().to_string();
    let needs = ok(desktop.path(), &["task", "needs", &after, "--on", &flaky]);
    assert_eq!(needs["task"]["state"], "blocked", "{needs}");
    let (code, json, _) = run(laptop.path(), &["task", "needs", &flaky, "--on", &after]);
    assert_eq!((code, json["error"]["kind"].as_str()), (2, Some("cycle")), "{json}");
    ok(desktop.path(), &["task", "claim", "--agent", "bo", "--task", &flaky]);
    let locked = ok(desktop.path(), &["lock", "add", &flaky, "--agent", "bo", "docs/**"]);
    assert_eq!(locked["locks"].as_array().unwrap().len(), 2, "{locked}");
    let (code, json, _) = run(laptop.path(), &["lock", "add", &flaky, "--agent", "ana", "tests/**"]);
    assert_eq!((code, json["error"]["kind"].as_str()), (4, Some("not_holder")), "{json}");
    let (_, json, _) = run(laptop.path(), &["lock", "list"]);
    assert_eq!(json["locks"].as_array().unwrap().len(), 2, "the other clone sees bo's locks: {json}");
    ok(desktop.path(), &["task", "fail", &flaky, "--agent", "bo", "--error", "exit 1"]);
    let retried = ok(laptop.path(), &["task", "retry", &flaky]);
    assert_eq!(
        (retried["task"]["state"].as_str(), retried["task"]["attempts"].as_i64()),
        (Some("queued"), Some(0))
    );
    let unblocked = ok(laptop.path(), &["task", "unblock", &after, "--drop-dep", &flaky]);
    assert_eq!(unblocked["task"]["state"], "queued", "{unblocked}");
    // A task from a problem reads the problem where it is recorded: in the workspace.
    let (code, _, stderr) = acas_shared(laptop.path(), &url, &["task", "from-problem", "abcdef123"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no recorded problem has the fingerprint abcdef123"), "{stderr}");
}

/// `acas ARGS` in `root` on the workspace's own store (no shared store in the environment).
fn acas_local(root: &std::path::Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(root)
        .env_remove("ACAS_DATABASE_URL")
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A crafted workspace database: a call with a negative cost (credit for the team), one dated
/// in 2100 (it would count in every day's window), one recorded for a teammate (charging them).
/// The migrate copies only the sane call and says why it left each other one out.
#[test]
fn store_migrate_skips_negative_future_dated_and_other_users_calls_and_says_why() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let workspace = clone("", "https://github.com/acme/shapes.git", 0);
    let (code, _, stderr) =
        acas_local(workspace.path(), &["task", "create", "Make the database", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let conn = rusqlite::Connection::open(workspace.path().join(".acas/state.db")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for (id, at_ms, cost, user) in [
        ("sane", now, 1_000i64, "ada@example.com"),
        ("negative", now, -50_000_000, "ada@example.com"),
        ("future", 4_102_444_800_000, 100_000_000, "ada@example.com"),
        ("spoofed", now, 5_000_000, "bo@example.com"),
    ] {
        conn.execute(
            "INSERT INTO provider_call (id, at_ms, provider, model, status, reserved_micros, input_tokens,
                 output_tokens, cached_input_tokens, cost_micros, user_name)
             VALUES (?1, ?2, 'openai', 'gpt', 'succeeded', 0, 0, 0, 0, ?3, ?4)",
            rusqlite::params![id, at_ms, cost, user],
        )
        .unwrap();
    }
    drop(conn);

    let (code, json, stderr) =
        acas_local(workspace.path(), &["store", "migrate", "--to", &url, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(copied(&json)["provider_call"], [4, 1, 0, 3], "{json}");
    let calls = json["copied"].as_array().unwrap().iter().find(|c| c["table"] == "provider_call").unwrap();
    let why = calls["skipped_why"].as_str().unwrap_or_default();
    for reason in ["negative", "future", "another user"] {
        assert!(why.contains(reason), "{reason} in {why}");
    }
    let db = database_name(&url);
    assert_eq!(
        cluster.psql(db, "SELECT string_agg(id || ':' || cost_micros, ',') FROM provider_call"),
        "sane:1000"
    );
}

/// Text PostgreSQL cannot hold (a NUL, bytes that are not UTF-8) in a workspace's tasks and
/// calls: the migrate copies every row, with those characters replaced, and never stops half-way.
#[test]
fn store_migrate_copies_rows_with_nul_and_invalid_utf8_text() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let workspace = clone("", "https://github.com/acme/shapes.git", 0);
    let (code, _, stderr) =
        acas_local(workspace.path(), &["task", "create", "Plain task", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let conn = rusqlite::Connection::open(workspace.path().join(".acas/state.db")).unwrap();
    conn.execute(
        "INSERT INTO task (title, description, type, priority, labels, paths, state, source, created_by,
             attempts, max_attempts, created_ms, updated_ms)
         SELECT ?1, CAST(?2 AS TEXT), type, priority, labels, paths, state, source,
             created_by, attempts, max_attempts, created_ms, updated_ms FROM task WHERE title = 'Plain task'",
        rusqlite::params!["nul\u{0}title", b"d\xffes".to_vec()],
    )
    .unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    conn.execute(
        "INSERT INTO provider_call (id, at_ms, provider, model, status, reserved_micros, input_tokens,
             output_tokens, cached_input_tokens, cost_micros, user_name, error)
         VALUES ('call-1', ?1, 'openai', 'gpt', 'failed', 0, 0, 0, 0, 10, 'ada@example.com', ?2)",
        rusqlite::params![now, "bad\u{0}reply"],
    )
    .unwrap();
    // An id too long for PostgreSQL's index (and not compressible): that one row is refused.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let long_id: String = (0..12_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'!' + (seed % 90) as u8)
        })
        .collect();
    conn.execute(
        "INSERT INTO provider_call (id, at_ms, provider, model, status, reserved_micros, input_tokens,
             output_tokens, cached_input_tokens, cost_micros, user_name)
         VALUES (?1, ?2, 'openai', 'gpt', 'failed', 0, 0, 0, 0, 10, 'ada@example.com')",
        rusqlite::params![long_id, now],
    )
    .unwrap();
    drop(conn);

    let (code, json, stderr) =
        acas_local(workspace.path(), &["store", "migrate", "--to", &url, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let tables = copied(&json);
    assert_eq!(tables["task"], [2, 2, 0, 0], "{json}");
    assert_eq!(tables["provider_call"], [2, 1, 0, 1], "{json}");
    let calls = json["copied"].as_array().unwrap().iter().find(|c| c["table"] == "provider_call").unwrap();
    let failed = calls["failed"][0].as_str().unwrap_or_default();
    assert!(failed.starts_with("provider_call: ") && failed.contains(&long_id[..40]), "{json}");
    let db = database_name(&url);
    assert_eq!(
        cluster.psql(db, "SELECT title || '|' || description FROM task WHERE title LIKE 'nul%'"),
        "nul\u{FFFD}title|d\u{FFFD}es"
    );
}

/// A burst of thousands of changes (a script writing the shared queue in a loop): the editor
/// is told once per burst, not once per change.
#[test]
fn a_burst_of_team_changes_reaches_the_editor_as_one_notification() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("", "https://github.com/acme/shapes.git", 0);
    let mut editor = LspClient::start_in(laptop.path(), &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(laptop.path()), json!({}));
    editor.expect_log("hearing the shared store's changes");
    // Distinct payloads (PostgreSQL folds equal ones of a transaction), all sent at its commit.
    cluster.psql(
        database_name(&url),
        "SELECT count(pg_notify('acas_changes', json_build_object('repository', 'github.com/acme/shapes', \
         'kind', 'tasks', 'n', i)::text)) FROM generate_series(1, 5000) AS i",
    );
    editor.expect("acas/tasksChanged of the burst", |m| m["method"] == "acas/tasksChanged");
    // Everything heard before the connection is lost is handed on before it: stopping and
    // starting the database marks the end of the burst with one more notification.
    cluster.stop();
    editor.expect_log("lost the connection that hears the shared store's changes");
    cluster.start_again();
    editor.expect_log("hearing the shared store's changes again");
    editor.expect("acas/tasksChanged after listening again", |m| m["method"] == "acas/tasksChanged");
    let more = editor.take_all(|m| m["method"] == "acas/tasksChanged").len();
    assert!(more <= 1, "{} notifications for one burst", more + 2);
    assert_eq!(editor.shutdown(), 0);
}

/// Per table of `acas store migrate --format json`: (read, copied, already, skipped).
fn copied(json: &serde_json::Value) -> std::collections::BTreeMap<String, [u64; 4]> {
    json["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let n = |k: &str| c[k].as_u64().unwrap();
            (c["table"].as_str().unwrap().to_owned(), [n("read"), n("copied"), n("already"), n("skipped")])
        })
        .collect()
}

#[test]
fn store_migrate_copies_a_workspace_history_once_and_keeps_every_workspace() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let db = database_name(&url);
    // The test cluster trusts local connections: the password is never checked, only carried.
    let with_password = url.replacen("acas@", "acas:s3cr3t-pw@", 1);
    let fake = FakeProvider::start(Format::OpenAi);
    let usage = FakeUsage { input_tokens: 10, output_tokens: 20, cached_input_tokens: 0 };
    fake.push(Reply::Text { text: reply(), usage });
    let config = format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n",
        fake.base_url()
    );
    let laptop = clone(&config, "https://github.com/acme/shapes.git", 0);
    let desktop = clone(&config, "git@github.com:acme/shapes.git", 1);

    // The laptop's own history: one AI call and its cached reply, three tasks (one needs
    // another, one claimed with a path lock).
    let output = Command::new(acas_bin())
        .args(["explain", "src/shapes.rs:6", "--format", "json"])
        .current_dir(laptop.path())
        .env_remove("ACAS_DATABASE_URL")
        .env("ACAS_FAKE_KEY", fake.api_key())
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", laptop.path().join(".no-user-config"))
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let create = |root: &std::path::Path, args: &[&str]| {
        let mut all = vec!["task", "create"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let (code, json, stderr) = acas_local(root, &all);
        assert_eq!(code, 0, "{stderr}");
        json["task"]["id"].as_i64().unwrap().to_string()
    };
    let first = create(laptop.path(), &["Split the module"]);
    create(laptop.path(), &["Document it", "--needs", &first]);
    let locked = create(laptop.path(), &["Fix the parser", "--path", "src/**", "--priority", "5"]);
    let (code, _, stderr) = acas_local(
        laptop.path(),
        &["task", "claim", "--agent", "ana", "--task", &locked, "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    create(desktop.path(), &["Desktop task one"]);
    create(desktop.path(), &["Desktop task two"]);

    let migrate = |root: &std::path::Path| {
        let (code, json, stderr) =
            acas_local(root, &["store", "migrate", "--to", &with_password, "--format", "json"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(!stderr.contains("s3cr3t-pw") && !json.to_string().contains("s3cr3t-pw"), "{stderr}{json}");
        assert!(stderr.contains("acas:***@127.0.0.1"), "the store is named, masked: {stderr}");
        assert!(stderr.contains("task: 3/3 rows") || stderr.contains("task: 2/2 rows"), "progress: {stderr}");
        json
    };
    let counts = || {
        cluster.psql(
            db,
            "SELECT (SELECT count(*) FROM provider_call) || ',' || (SELECT count(*) FROM cache_entry) || ',' || \
             (SELECT count(*) FROM task) || ',' || (SELECT count(*) FROM task_need) || ',' || \
             (SELECT count(*) FROM task_lock)",
        )
    };

    let json = migrate(laptop.path());
    let tables = copied(&json);
    assert_eq!(tables["provider_call"], [1, 1, 0, 0], "{json}");
    assert_eq!(tables["cache_entry"], [1, 1, 0, 0], "{json}");
    assert_eq!(tables["task"], [3, 3, 0, 0], "{json}");
    assert_eq!(tables["task_need"], [1, 1, 0, 0], "{json}");
    assert_eq!(tables["task_lock"], [1, 1, 0, 0], "{json}");
    assert!(json["not_copied"].as_array().unwrap().iter().any(|n| n["table"] == "fix_outcome"), "{json}");
    assert_eq!(counts(), "1,1,3,1,1");

    // Again: nothing new, the same rows.
    let json = migrate(laptop.path());
    let tables = copied(&json);
    assert_eq!(tables["provider_call"], [1, 0, 1, 0], "{json}");
    assert_eq!(tables["task"], [3, 0, 3, 0], "{json}");
    assert_eq!(tables["task_need"], [1, 0, 1, 0], "{json}");
    assert_eq!(counts(), "1,1,3,1,1");

    // Another clone of the repository, migrated into the same store: both are kept, in one queue.
    let json = migrate(desktop.path());
    assert_eq!(copied(&json)["task"], [2, 2, 0, 0], "{json}");
    assert_eq!(counts(), "1,1,5,1,1");
    let (code, json, stderr) = acas_shared(desktop.path(), &url, &["task", "list", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let mut titles: Vec<&str> =
        json["tasks"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(
        titles,
        ["Desktop task one", "Desktop task two", "Document it", "Fix the parser", "Split the module"]
    );
    // The copied dependency and lock hold in the shared queue.
    let (_, json, _) = acas_shared(laptop.path(), &url, &["lock", "list", "--format", "json"]);
    assert!(json.to_string().contains("src/**"), "{json}");
    let held = cluster.psql(db, "SELECT state || ',' || agent FROM task WHERE title = 'Fix the parser'");
    assert_eq!(held, "claimed,ana");
    let blocked = cluster.psql(db, "SELECT state FROM task WHERE title = 'Document it'");
    assert_eq!(blocked, "blocked");
    // A dependency that would close a cycle through the copied rows is refused.
    let id_of = |title: &str| cluster.psql(db, &format!("SELECT id FROM task WHERE title = '{title}'"));
    let (split, document) = (id_of("Split the module"), id_of("Document it"));
    let (code, json, stderr) =
        acas_shared(laptop.path(), &url, &["task", "needs", &split, "--on", &document, "--format", "json"]);
    assert_eq!((code, json["error"]["kind"].as_str()), (2, Some("cycle")), "{json} {stderr}");
    let cycle = format!("#{split} -> #{document} -> #{split}");
    assert!(json["error"]["message"].as_str().unwrap().contains(&cycle), "{json}");
}

#[test]
fn a_task_made_in_one_clone_reaches_the_editor_of_another_clone() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("", "https://github.com/acme/shapes.git", 0);
    let desktop = clone("", "git@github.com:acme/shapes.git", 0);
    let env = [("ACAS_DATABASE_URL", url.as_str())];
    let mut editors: Vec<LspClient> = [&laptop, &desktop]
        .iter()
        .map(|clone| {
            let mut editor = LspClient::start_in(clone.path(), &env);
            editor.initialize(Some(clone.path()), json!({}));
            editor
        })
        .collect();
    for editor in &editors {
        editor.expect_log("hearing the shared store's changes");
    }

    // A task made by the CLI in the laptop's clone reaches the desktop's editor...
    let (code, json, stderr) =
        acas_shared(laptop.path(), &url, &["task", "create", "Review the parser", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let id = json["task"]["id"].as_i64().unwrap().to_string();
    editors[1].expect("acas/tasksChanged from the laptop", |m| m["method"] == "acas/tasksChanged");
    // ...and the desktop's claim of it, with a path lock, reaches the laptop's.
    editors[0].expect("acas/tasksChanged of the creation", |m| m["method"] == "acas/tasksChanged");
    let (code, _, stderr) = acas_shared(
        desktop.path(),
        &url,
        &["task", "claim", "--agent", "bo", "--task", &id, "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    editors[0].expect("acas/tasksChanged from the desktop", |m| m["method"] == "acas/tasksChanged");

    // The database restarts: an editor that has been told nothing yet (a third clone's) says so
    // once, listens again, is told to read the tasks again, since changes made meanwhile were
    // not heard, and then hears the next change.
    let tablet = clone("", "https://github.com/Acme/shapes", 0);
    let mut editor = LspClient::start_in(tablet.path(), &env);
    editor.initialize(Some(tablet.path()), json!({}));
    editor.expect_log("hearing the shared store's changes");
    cluster.stop();
    editor.expect_log("lost the connection that hears the shared store's changes");
    cluster.start_again();
    editor.expect_log("hearing the shared store's changes again");
    editor.expect("acas/tasksChanged after listening again", |m| m["method"] == "acas/tasksChanged");
    let (code, _, stderr) = acas_shared(laptop.path(), &url, &["task", "create", "After the restart"]);
    assert_eq!(code, 0, "{stderr}");
    editor.expect("acas/tasksChanged after the restart", |m| m["method"] == "acas/tasksChanged");
    let log = editor.stderr();
    assert_eq!(log.matches("lost the connection that hears").count(), 1, "said once: {log}");
    editors.push(editor);
    for editor in &mut editors {
        assert_eq!(editor.shutdown(), 0);
    }
}

#[test]
fn acas_team_lists_who_is_connected_and_an_instance_that_stopped_expires() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let config = "[lease]\nheartbeat_ms = 100\nexpiry_ms = 300\n";
    let laptop = clone(config, "https://github.com/acme/shapes.git", 0);
    let desktop = clone(config, "git@github.com:acme/shapes.git", 0);
    let branch =
        Command::new("git").args(["branch", "--show-current"]).current_dir(laptop.path()).output().unwrap();
    let branch = String::from_utf8_lossy(&branch.stdout).trim().to_owned();

    let (code, json, _) = acas_shared(desktop.path(), &url, &["team", "--format", "json"]);
    assert_eq!((code, json["instances"].as_array().unwrap().len()), (0, 0), "{json}");

    let mut editor = LspClient::start_in(laptop.path(), &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(laptop.path()), json!({}));
    editor.expect_log("announced this instance to the team");
    let (code, json, stderr) =
        acas_shared(desktop.path(), &url, &["task", "create", "Fix the parser", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let id = json["task"]["id"].as_i64().unwrap().to_string();
    let (code, _, stderr) =
        acas_shared(desktop.path(), &url, &["task", "claim", "--agent", "bo", "--task", &id]);
    assert_eq!(code, 0, "{stderr}");

    let (code, json, stderr) = acas_shared(desktop.path(), &url, &["team", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let instances = json["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{json}");
    assert_eq!(instances[0]["user"], "ada@example.com", "{json}");
    assert_eq!(instances[0]["repository"], "github.com/acme/shapes", "{json}");
    assert_eq!(instances[0]["branch"], branch.as_str(), "{json}");
    assert!(!instances[0]["host"].as_str().unwrap().is_empty(), "{json}");
    assert_eq!(json["held"][0]["agent"], "bo", "{json}");
    assert_eq!(json["held"][0]["title"], "Fix the parser", "{json}");
    let (code, _, _) = acas_shared(desktop.path(), &url, &["team"]);
    assert_eq!(code, 0);

    // Killed, it says nothing: its row expires by itself.
    editor.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, json, _) = acas_shared(desktop.path(), &url, &["team", "--format", "json"]);
        if json["instances"].as_array().is_some_and(|i| i.is_empty()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the killed instance never expired: {json}");
    }
}

/// An agent over MCP in one clone claims the task the CLI of another clone made; the editor of
/// that other clone is told and shows it claimed; the agent's clone's audit log records the claim.
#[test]
fn an_agent_in_one_clone_claims_a_task_the_other_clone_made_and_its_editor_shows_it() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let laptop = clone("", "https://github.com/acme/shapes.git", 0);
    let desktop = clone("", "git@github.com:acme/shapes.git", 0);
    let (code, json, stderr) =
        acas_shared(desktop.path(), &url, &["task", "create", "Review the parser", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let id = json["task"]["id"].clone();
    let root = desktop.path().canonicalize().unwrap();
    let mut editor = LspClient::start_in(&root, &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(&root), json!({}));
    editor.expect_log("hearing the shared store's changes");
    let before = editor.request("acas/tasks", json!({}));
    assert_eq!(before["result"]["tasks"][0]["id"], id, "the editor reads the team's queue: {before}");
    assert_eq!(before["result"]["tasks"][0]["state"], "queued", "{before}");

    let python = acas_e2e::python_with("mcp, httpx2");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("agents.py");
    let output = Command::new(python)
        .arg(&script)
        .arg("shared")
        .arg(acas_bin())
        .arg(laptop.path().canonicalize().unwrap())
        .env("ACAS_DATABASE_URL", &url)
        .env("XDG_CONFIG_HOME", laptop.path().join(".no-user-config"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["task"], id, "{report}");
    let agent = report["agent"].as_str().unwrap().to_owned();
    assert!(agent.starts_with("shared-agent/"), "{report}");

    editor.expect("acas/tasksChanged", |m| m["method"] == "acas/tasksChanged");
    let after = editor.request("acas/tasks", json!({}));
    let task = &after["result"]["tasks"][0];
    assert_eq!(
        (task["id"].clone(), task["state"].as_str(), task["agent"].as_str()),
        (id.clone(), Some("claimed"), Some(agent.as_str())),
        "{after}"
    );
    assert!(after["result"]["locks"].to_string().contains("docs/**"), "{after}");
    assert_eq!(editor.shutdown(), 0);

    // The agent's clone records its claim of the team's task, marked as made on the shared store.
    let (code, json, stderr) = acas_local(laptop.path(), &["audit", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let records = json["records"].as_array().unwrap();
    let claimed = records
        .iter()
        .find(|r| r["kind"] == "task" && r["detail"]["event"] == "claimed")
        .unwrap_or_else(|| panic!("no claim in the audit log: {json}"));
    assert_eq!(
        (claimed["actor"].as_str(), claimed["detail"]["store"].as_str()),
        (Some(agent.as_str()), Some("shared")),
        "{claimed}"
    );
    assert_eq!(claimed["subject"], format!("task {id}"), "{claimed}");
    assert!(records.iter().any(|r| r["kind"] == "lock" && r["detail"]["event"] == "locked"), "{json}");
    let (code, _, stderr) = acas_local(laptop.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "the chain holds: {stderr}");
}

/// An AI call made in one clone reaches the editor of another clone as `acas/spendChanged`, and
/// that editor's `acas/spend` then counts it: the team's spend, which the budgets count.
#[test]
fn spend_made_in_one_clone_reaches_the_editor_of_another_clone() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let fake = FakeProvider::start(Format::OpenAi);
    let usage = FakeUsage { input_tokens: 10, output_tokens: 20, cached_input_tokens: 0 };
    fake.push(Reply::Text { text: reply(), usage });
    let config = format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n",
        fake.base_url()
    );
    let laptop = clone(&config, "https://github.com/acme/shapes.git", 0);
    let desktop = clone(&config, "git@github.com:acme/shapes.git", 1);
    let root = desktop.path().canonicalize().unwrap();
    let mut editor = LspClient::start_in(&root, &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(&root), json!({}));
    editor.expect_log("hearing the shared store's changes");
    let before = editor.request("acas/spend", json!(null));
    assert_eq!(before["result"]["todayUsd"], 0.0, "{before}");

    let output = explain_in(laptop.path(), &url, &fake).wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    editor.expect("acas/spendChanged", |m| m["method"] == "acas/spendChanged");
    let after = editor.request("acas/spend", json!(null));
    assert!(after["result"]["todayUsd"].as_f64().unwrap() > 0.0, "the laptop's call is counted: {after}");
    assert_eq!(editor.shutdown(), 0);
}
