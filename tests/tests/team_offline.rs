//! Team mode while PostgreSQL cannot be reached: real `acas` processes keep escalating on a
//! share of the budgets, queue what must be shared in the workspace's SQLite, say so in
//! `acas status` and the editor, and send it once the database is back, exactly once, also
//! when a sync is killed midway.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
use acas_e2e::postgres::PgCluster;
use acas_e2e::{LspClient, acas_bin};
use serde_json::{Value, json};

/// A clone of the team's repository whose `src/shapes.rs` misses a `)` on line 6.
fn clone(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config).unwrap();
    question(root, 0);
    let git = |args: &[&str]| {
        let status = Command::new("git").args(args).current_dir(root).stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "ada@example.com"]);
    git(&["remote", "add", "origin", "https://github.com/acme/shapes.git"]);
    dir
}

/// Writes the broken file with `mark` in it: each mark is a question of its own, which no
/// cached reply answers.
fn question(root: &Path, mark: usize) {
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/shapes.rs"),
        format!(
            "pub fn square(x: f64) -> f64 {{ x * x }}\n\npub fn circle_area(r: f64) -> f64 {{\n    let _unused = {mark};\n\n    std::f64::consts::PI * (square(r)\n}}\n"
        ),
    )
    .unwrap();
}

fn reply() -> String {
    json!({ "explanation": "The call to `square` opens a parenthesis that is never closed.", "fix": null })
        .to_string()
}

/// `acas ARGS` in `root` against the shared store at `url`: exit code, stdout, stderr.
fn acas(root: &Path, url: &str, fake: Option<&FakeProvider>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(acas_bin());
    command
        .args(args)
        .current_dir(root)
        .env("ACAS_DATABASE_URL", url)
        .env("ACAS_LOG", "info")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY");
    if let Some(fake) = fake {
        command.env("ACAS_FAKE_KEY", fake.api_key());
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn status(root: &Path, url: &str) -> Value {
    let (code, stdout, stderr) = acas(root, url, None, &["status", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap().split('?').next().unwrap()
}

fn sqlite(root: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(root.join(".acas/state.db")).unwrap()
}

#[test]
fn offline_escalations_spend_a_share_of_the_budget_and_reach_the_database_once_it_is_back() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let fake = FakeProvider::start(Format::OpenAi);
    for _ in 0..20 {
        let usage = FakeUsage { input_tokens: 10, output_tokens: 1024, cached_input_tokens: 0 };
        fake.push(Reply::Text { text: reply(), usage });
    }
    let limit = 20_000u64;
    let config = format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n\n[budget]\ndaily_usd = 0.02\n\n[store]\noffline_share = 0.2\n",
        fake.base_url()
    );
    let dir = clone(&config);
    let root = dir.path();

    // Online once: the team's spend is seen.
    let (code, _, stderr) =
        acas(root, &url, Some(&fake), &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status(root, &url)["online"], true);

    cluster.stop();
    let mut succeeded = 0;
    let refusal = loop {
        assert!(succeeded < 15, "the offline share never refused");
        question(root, succeeded + 1);
        let (code, stdout, stderr) =
            acas(root, &url, Some(&fake), &["explain", "src/shapes.rs:6", "--format", "json"]);
        match code {
            0 => succeeded += 1,
            _ => break format!("{stdout}{stderr}"),
        }
    };
    assert!(succeeded >= 2, "{succeeded} offline escalations before the refusal: {refusal}");
    assert!(
        refusal.contains("the shared store is offline: this machine's share of the team daily budget")
            && refusal.contains("20% of the $")
            && refusal.contains("`[store] offline_share`"),
        "{refusal}"
    );
    assert!(!refusal.contains("postgres://acas@"), "no URL in a refusal: {refusal}");
    // What was spent offline fits in the share of what the team had left when last seen.
    let db = sqlite(root);
    let seen: i64 =
        db.query_row("SELECT day_micros FROM shared_seen WHERE scope = 'team'", [], |r| r.get(0)).unwrap();
    let offline: i64 = db
        .query_row(
            "SELECT sum(cost_micros) FROM provider_call WHERE id IN (SELECT key FROM shared_outbox)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let share = ((limit as i64 - seen) as f64 * 0.2).floor() as i64;
    assert!(offline > 0 && offline <= share, "spent {offline} offline against a share of {share}");
    assert_eq!(fake.requests().len(), 1 + succeeded, "a refused request was sent");

    let state = status(root, &url);
    assert_eq!(state["online"], false, "{state}");
    assert!(state["offline_since_ms"].as_i64().is_some(), "{state}");
    // Each call queued three times (reserved, ended, its reply cached), the refused one once.
    assert_eq!(state["waiting"], json!(3 * succeeded + 1), "{state}");
    let (_, text, _) = acas(root, &url, None, &["status"]);
    assert!(text.contains("offline since") && text.contains("changes waiting"), "{text}");

    cluster.start_again();
    let (code, stdout, stderr) = acas(root, &url, None, &["store", "sync", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let synced: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(synced["sent"], json!(3 * succeeded + 1), "{synced}");
    let state = status(root, &url);
    assert_eq!((state["online"].clone(), state["waiting"].clone()), (json!(true), json!(0)), "{state}");
    // Syncing again sends nothing.
    let (_, stdout, _) = acas(root, &url, None, &["store", "sync", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["sent"], 0);

    // Every call is in PostgreSQL once, as it is in the workspace, and `acas cost` agrees.
    let pg = cluster.psql(
        database_name(&url),
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'refused'), \
         sum(cost_micros) FROM provider_call",
    );
    let local: (i64, i64) = db
        .query_row("SELECT count(*), sum(cost_micros) FROM provider_call", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(pg, format!("{}|{}|1|{}", local.0, 1 + succeeded, local.1), "PostgreSQL against SQLite");
    let (code, stdout, stderr) = acas(root, &url, None, &["cost", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let cost: Value = serde_json::from_str(&stdout).unwrap();
    let total = cost["total_usd"].as_f64().unwrap();
    assert_eq!((total * 1_000_000.0).round() as i64, local.1, "acas cost: {cost}");
}

/// Writes `calls` offline calls (each queued reserved and ended) and `entries` cached replies
/// into the workspace's outbox, as an offline hour would.
fn queue_offline(root: &Path, calls: usize, entries: usize) {
    let mut db = sqlite(root);
    let tx = db.transaction().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for i in 0..calls {
        let id = format!("offline-{i}");
        tx.execute(
            "INSERT INTO provider_call (id, at_ms, provider, model, category, status, reserved_micros,
                 input_tokens, output_tokens, cached_input_tokens, cost_micros, latency_ms, user_name)
             VALUES (?1, ?2, 'primary', 'gpt-4o-mini', 'explain', 'succeeded', 800, 900, 400, 0, 375, 900, 'ada@example.com')",
            rusqlite::params![id, now - 3_600_000 + i as i64],
        )
        .unwrap();
        for _ in 0..2 {
            tx.execute(
                "INSERT INTO shared_outbox (kind, key, queued_ms) VALUES ('call', ?1, ?2)",
                rusqlite::params![id, now],
            )
            .unwrap();
        }
    }
    for i in 0..entries {
        let key = format!("key-{i}");
        tx.execute(
            "INSERT INTO cache_entry (key, at_ms, fingerprint, model, provider, reply)
             VALUES (?1, ?2, 'fp', 'gpt-4o-mini', 'primary', ?3)",
            rusqlite::params![key, now, "x".repeat(2000)],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO shared_outbox (kind, key, queued_ms) VALUES ('cache', ?1, ?2)",
            rusqlite::params![key, now],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn a_sync_killed_midway_and_run_again_writes_every_change_once() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let dir = clone("");
    let root = dir.path();
    // The workspace's state, made by a first look at the store.
    assert_eq!(status(root, &url)["online"], true);
    let (calls, entries) = (3000, 1000);
    queue_offline(root, calls, entries);
    // Rows PostgreSQL cannot take as they are: a reply with a NUL byte is kept with U+FFFD in
    // its place; a call whose id is too long for its index is refused and set aside, and does
    // not hold back the others.
    let db = sqlite(root);
    db.execute("UPDATE cache_entry SET reply = 'a' || char(0) || 'b' WHERE key = 'key-7'", []).unwrap();
    // Random enough that PostgreSQL cannot compress it under its index's limit (about 2.7 KB).
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let long: String = (0..1_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            format!("{seed:016x}")
        })
        .collect();
    db.execute(
        "INSERT INTO provider_call (id, at_ms, provider, model, status, reserved_micros, input_tokens,
             output_tokens, cached_input_tokens, cost_micros) VALUES (?1, 1, 'p', 'm', 'succeeded', 0, 0, 0, 0, 5)",
        [&long],
    )
    .unwrap();
    db.execute(
        "INSERT INTO shared_outbox (kind, key, queued_ms) VALUES ('call', ?1, unixepoch() * 1000)",
        [&long],
    )
    .unwrap();

    let mut child = Command::new(acas_bin())
        .args(["store", "sync"])
        .current_dir(root)
        .env("ACAS_DATABASE_URL", &url)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once its first batch is committed, while the next ones are on their way.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a line of progress").unwrap();
    assert!(first.starts_with("sent 500 changes"), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();

    // As if every batch had been committed but none marked sent: the next sync sends them all
    // again.
    sqlite(root).execute("UPDATE shared_outbox SET sent_ms = NULL", []).unwrap();
    let (code, stdout, stderr) = acas(root, &url, None, &["store", "sync", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let synced: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(synced["sent"], json!(2 * calls + entries + 1), "{synced}");
    assert_eq!(synced["refused"], 1, "{synced}");
    let refused: String = db
        .query_row("SELECT refused FROM shared_outbox WHERE refused IS NOT NULL", [], |r| r.get(0))
        .unwrap();
    assert!(refused.contains("could not write the changes made offline"), "{refused}");

    let pg = database_name(&url);
    assert_eq!(
        cluster.psql(pg, "SELECT count(*), count(DISTINCT id), sum(cost_micros) FROM provider_call"),
        format!("{calls}|{calls}|{}", calls * 375)
    );
    assert_eq!(cluster.psql(pg, "SELECT count(*) FROM cache_entry"), entries.to_string());
    assert_eq!(cluster.psql(pg, "SELECT reply FROM cache_entry WHERE key = 'key-7'"), "a\u{FFFD}b");
    assert_eq!(status(root, &url)["waiting"], 0);
}

#[test]
fn the_editor_is_told_when_the_shared_store_goes_offline_and_comes_back() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let dir = clone("");
    let root = dir.path();
    let mut editor = LspClient::start_in(root, &[("ACAS_DATABASE_URL", url.as_str())]);
    editor.initialize(Some(root), json!({}));
    let is_status =
        |online: bool| move |m: &Value| m["method"] == "acas/storeStatus" && m["params"]["online"] == online;
    let first = editor.expect("acas/storeStatus online", is_status(true));
    assert_eq!(first["params"]["waiting"], 0, "{first}");
    assert!(!first.to_string().contains("SECRET"));

    cluster.stop();
    let offline = editor.expect("acas/storeStatus offline", is_status(false));
    assert!(offline["params"]["offlineSinceMs"].as_i64().is_some(), "{offline}");
    editor.expect_log("the shared store cannot be reached");

    cluster.start_again();
    editor.expect("acas/storeStatus online again", is_status(true));
    editor.expect_log("the shared store can be reached again");
    let log = editor.stderr();
    assert_eq!(log.matches("the shared store cannot be reached;").count(), 1, "said once: {log}");
    assert_eq!(editor.shutdown(), 0);
}
