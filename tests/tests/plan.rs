//! `acas plan` against the fake provider: an invalid plan is repaired, a duplicate task merged,
//! a cycle broken, the plan run as a workflow, and its progress sent, signed and in order, to a
//! webhook receiver on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use acas::workflow::signature;
use acas_e2e::acas_bin;
use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use serde_json::{Value, json};

const SECRET: &str = "plan-progress-secret";

/// A workspace whose only provider is the fake.
fn workspace(fake: &FakeProvider) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
    std::fs::write(
        dir.path().join(".acas/config.toml"),
        fake.provider_toml("primary", "gpt-4o-mini") + "timeout_secs = 30\n",
    )
    .unwrap();
    dir
}

fn acas(root: &Path, fake: &FakeProvider, args: &[&str]) -> (i32, Value, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(root)
        .env("ACAS_FAKE_KEY", fake.api_key())
        .env("PLAN_SECRET", SECRET)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, format!("{stdout}{stderr}"))
}

/// A task that appends `word` to `out.txt`.
fn append(id: &str, word: &str, needs: &[&str], priority: i64) -> Value {
    json!({"id": id, "name": format!("Write {word}"), "description": format!("Appends {word}"), "action": "run",
           "with": {"argv": ["sh", "-c", format!("echo {word} >> out.txt")]}, "needs": needs, "priority": priority})
}

/// One request the receiver got: its headers (names in lower case) and body.
type Received = (Vec<(String, String)>, String);

/// A webhook receiver on 127.0.0.1 that answers 200 to everything and records it; it stops when
/// dropped.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream
                        && let Some(request) = read_request(stream)
                    {
                        received.lock().unwrap().push(request);
                    }
                }
            })
        };
        Receiver { addr, received, stop, thread: Some(thread) }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_request(stream: TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").ok()?;
    Some((headers, String::from_utf8(body).ok()?))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
}

#[test]
fn a_repaired_plan_runs_once_approved_and_reports_its_progress() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&fake);
    let root = dir.path();
    // Invalid: `first` needs a task that does not exist.
    fake.push(Reply::text(&json!({"tasks": [append("first", "first", &["zero"], 3)]}).to_string()));
    // Valid, with `again` doing what `second` does, and second and third needing each other.
    fake.push(Reply::text(
        &json!({"tasks": [
            append("first", "first", &[], 3),
            append("second", "second", &["first", "third"], 2),
            append("third", "third", &["first", "second"], 1),
            append("again", "second", &["first"], 1),
            append("last", "last", &["again"], 0),
        ]})
        .to_string(),
    ));
    let receiver = Receiver::start();
    let url = format!("http://{}/progress", receiver.addr);

    let (code, out, log) = acas(
        root,
        &fake,
        &[
            "plan",
            "Write the words",
            "--yes",
            "--format",
            "json",
            "--webhook",
            &url,
            "--webhook-secret-env",
            "PLAN_SECRET",
        ],
    );
    assert_eq!(code, 0, "{log}");
    // Each task ran once, in dependency order: the cycle lost `third` needs `second`.
    assert_eq!(std::fs::read_to_string(root.join("out.txt")).unwrap(), "first\nthird\nsecond\nlast\n");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{log}");
    let repair = requests[1].body.to_string();
    assert!(repair.contains("It has these problems:\\n- task `first`: step `first` needs `zero`, which is not a step of this workflow"), "{repair}");
    assert_eq!(requests[0].body["response_format"]["json_schema"]["schema"]["required"], json!(["tasks"]));

    let plan = &out["plan"];
    let ids: Vec<&str> =
        plan["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["first", "second", "third", "last"]);
    assert_eq!(plan["tasks"][2]["needs"], json!(["first"]));
    assert_eq!(plan["tasks"][3]["needs"], json!(["second"]));
    let notes = plan["notes"].as_array().unwrap();
    let kinds: Vec<&str> = notes.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["repaired", "merged", "cycles"]);
    assert_eq!((notes[1]["kept"].as_str(), notes[1]["dropped"].as_str()), (Some("second"), Some("again")));
    assert_eq!(notes[2]["strategy"], "dropped_edges");
    assert_eq!(notes[2]["dropped"], json!([{"task": "third", "needs": "second"}]));
    assert_eq!(plan["calls"], 2);

    let name = out["workflow"].as_str().unwrap();
    assert!(root.join(format!(".acas/plans/{name}.json")).is_file());
    assert_eq!(out["run"]["status"], "succeeded");
    assert_eq!(out["run"]["workflow"], name);
    let steps: Vec<(&str, &str)> = out["run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("first", "succeeded"), ("second", "succeeded"), ("third", "succeeded"), ("last", "succeeded")]
    );

    // Every event arrived, signed, in the order things happened.
    assert_eq!(out["webhooks"], json!({"delivered": 10, "pending": 0, "failed": 0}), "{log}");
    let received = receiver.received();
    let mut seen = Vec::new();
    for (headers, body) in &received {
        let timestamp: i64 = header(headers, "x-acas-timestamp").parse().unwrap();
        assert!(signature::verify(
            SECRET.as_bytes(),
            timestamp,
            body.as_bytes(),
            header(headers, "x-acas-signature")
        ));
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(header(headers, "x-acas-event"), event["event"]);
        assert_eq!(event["plan"], name);
        seen.push(format!("{} {}", event["event"].as_str().unwrap(), event["task"].as_str().unwrap_or("")));
    }
    assert_eq!(
        seen,
        [
            "plan_generated ",
            "task_started first",
            "task_completed first",
            "task_started third",
            "task_completed third",
            "task_started second",
            "task_completed second",
            "task_started last",
            "task_completed last",
            "run_completed ",
        ]
    );
    let generated: Value = serde_json::from_str(&received[0].1).unwrap();
    assert_eq!(generated["tasks"].as_array().unwrap().len(), 4);
    let completed: Value = serde_json::from_str(&received[9].1).unwrap();
    assert_eq!(completed["status"], "succeeded");
}

#[test]
fn a_plan_is_only_shown_without_approval() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&fake);
    let root = dir.path();
    let plan = json!({"tasks": [append("only", "only", &[], 1)]}).to_string();
    fake.push(Reply::text(&plan));
    fake.push(Reply::text(&plan));

    let (code, _, log) = acas(root, &fake, &["plan", "Write one word", "--dry-run"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.starts_with("plan: 1 task for: Write one word\nwave 1:\n  only (Write only, priority 1): run: sh -c 'echo only >> out.txt'\n      Appends only\nplanning cost under $0.0001 over 1 call\n"), "{log}");

    // Stdin is not a terminal and --yes is missing: nothing runs.
    let (code, out, log) = acas(root, &fake, &["plan", "Write one word", "--format", "json"]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(
            "not running the plan: stdin is not a terminal to ask on; pass --yes to run it without asking"
        ),
        "{log}"
    );
    assert_eq!(out["run"], Value::Null);
    assert_eq!(out["plan"]["tasks"][0]["id"], "only");
    assert!(!root.join("out.txt").exists());
    assert!(!root.join(".acas/plans").exists());
}

#[test]
fn a_plan_is_never_written_through_a_link_planted_under_acas() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&fake);
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    // A cloned repository can carry `.acas/plans` as a link to anywhere.
    std::os::unix::fs::symlink(outside.path(), root.join(".acas/plans")).unwrap();
    fake.push(Reply::text(&json!({"tasks": [append("first", "first", &[], 0)]}).to_string()));

    let (code, _out, log) = acas(root, &fake, &["plan", "Write a word", "--yes", "--format", "json"]);
    assert_ne!(code, 0, "{log}");
    assert!(log.contains(".acas/plans is a symbolic link"), "{log}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "a plan was written outside: {log}");
    assert!(!root.join("out.txt").exists(), "the plan ran: {log}");
}

/// `--tasks`: an approved plan is not run; its tasks go to the agents' queue with their
/// dependencies, the first queued and the others blocked on what they need.
#[test]
fn an_approved_plan_becomes_tasks_for_agents() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&fake);
    let root = dir.path();
    let plan = json!({"tasks": [
        append("lexer", "lexer", &[], 3),
        append("parser", "parser", &["lexer"], 2),
        append("docs", "docs", &["lexer", "parser"], 1),
    ]})
    .to_string();
    fake.push(Reply::text(&plan));

    let (code, out, log) =
        acas(root, &fake, &["plan", "Build a parser", "--tasks", "--yes", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    let tasks = out["tasks"].as_array().unwrap_or_else(|| panic!("{out}"));
    let by_plan: std::collections::HashMap<&str, &Value> =
        tasks.iter().map(|t| (t["plan_task"].as_str().unwrap(), &t["task"])).collect();
    assert_eq!(by_plan.len(), 3, "{out}");
    let (lexer, parser, docs) = (by_plan["lexer"], by_plan["parser"], by_plan["docs"]);
    assert_eq!(lexer["state"], "queued");
    assert_eq!(lexer["title"], "Write lexer");
    assert_eq!(lexer["priority"], 3);
    assert_eq!(lexer["source"], "plan");
    assert!(lexer["description"].as_str().unwrap().starts_with("Appends lexer"), "{lexer}");
    assert_eq!(parser["state"], "blocked");
    assert_eq!(parser["needs"], json!([lexer["id"]]));
    assert_eq!(docs["needs"], json!([lexer["id"], parser["id"]]));
    assert_eq!(out["run"], Value::Null);
    assert!(!root.join("out.txt").exists(), "nothing ran");

    // The queue holds them: an agent is given the lexer, and only the lexer, first.
    let (code, claimed, log) = acas(root, &fake, &["task", "claim", "--agent", "a-1", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(claimed["task"]["id"], lexer["id"]);
    let (code, _, log) = acas(root, &fake, &["task", "claim", "--agent", "a-2", "--format", "json"]);
    assert_eq!(code, 5, "the others wait for the lexer: {log}");
}
