//! Escalation benchmarks: the time ACAS adds to a provider request, and the time to build an
//! error's context.
//!
//! Run with `cargo bench -p acas-e2e --bench escalate`. Prints markdown tables.
//!
//! 1. Overhead: the same prepared request sent 200 times through `Escalator::run` (budget
//!    check and reservation in the store, the provider chain, streaming, parsing the reply,
//!    verifying the fix, recording the cost) and 200 times as a bare HTTP request of the same
//!    body to the same local fake provider, read to the end. The difference is what ACAS adds.
//! 2. First streamed text to the editor: `acas serve` over stdio escalates an error while the
//!    fake provider streams the first text event of its reply and stalls; measured is the time
//!    from the fake flushing that event to the client reading the `$/progress` report that shows
//!    it. Each round is then cancelled by closing the progress.
//! 3. Context: building the symbol index of a workspace and the context of one error in it, on
//!    this repository and on a large real code base (the cargo registry's sources).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use acas::classify::{Document, Language};
use acas::config::Escalation;
use acas::escalate::ProviderConfig;
use acas::escalate::config::HttpProviderConfig;
use acas::escalate::context::{self, Budget, Problem, Site};
use acas::escalate::engine::Escalator;
use acas::escalate::symbols::SymbolIndex;
use acas::store::{Store, StoreOptions};
use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 200;

fn main() {
    println!("# Escalation benchmarks\n");
    // `cargo bench ... -- NAME` runs only the sections whose name contains NAME.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let sections: [(&str, fn()); 3] =
        [("overhead", overhead), ("first_text", first_text_to_progress), ("contexts", contexts)];
    for (name, section) in sections {
        if filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())) {
            section();
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn overhead() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    std::fs::write(root.join("lib.rs"), "fn area(r: f64) -> f64 {\n    3.14 * (r * r\n}\n").unwrap();
    let fake = FakeProvider::start(Format::OpenAi);
    let key = fake.api_key();
    let config = Escalation {
        providers: vec![ProviderConfig::Openai(HttpProviderConfig {
            name: "fake".into(),
            base_url: Some(fake.base_url()),
            model: Some("gpt-4o-mini".into()),
            api_key_env: Some("KEY".into()),
            timeout_secs: Some(30),
            idle_timeout_secs: None,
        })],
        ..Escalation::default()
    };
    let store = Store::open_workspace(root, StoreOptions::default()).expect("the store opens");
    let env = move |name: &str| (name == "KEY").then(|| key.clone());
    let escalator = Escalator::new(&config, &env, Some(store), None).expect("the escalator builds");
    let text = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let doc = Document::new(Language::Rust, text.clone());
    let d = doc.diagnostics()[0].clone();
    let site = Site {
        root,
        path: "lib.rs",
        language: Language::Rust,
        text: &text,
        tree: doc.tree(),
        range: d.range.clone(),
    };
    let problem = Problem {
        message: d.message.clone(),
        category: "syntax".into(),
        severity: "error".into(),
        source: "acas".into(),
        fingerprint: d.fingerprint.clone(),
        ..Default::default()
    };
    let reply = serde_json::json!({
        "explanation": "The parenthesis is not closed.",
        "fix": { "description": "close it", "edits": [{ "old": "(r * r\n", "new": "(r * r)\n" }] }
    })
    .to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();

    let mut through_acas = Vec::new();
    let mut bare = Vec::new();
    for round in 0..ROUNDS + 20 {
        // A distinct context each time, so the cache never answers.
        let problem = Problem { fingerprint: format!("{}-{round}", problem.fingerprint), ..problem.clone() };
        let context = context::build(
            &site,
            problem,
            &SymbolIndex::default(),
            escalator.redactor(),
            &read,
            vec![],
            Budget::default(),
        );
        let prepared = escalator.prepare(&context).expect("prepared");
        fake.push(Reply::text(&reply));
        let started = Instant::now();
        let result = runtime.block_on(escalator.run(
            &prepared,
            "lib.rs",
            &read,
            &mut |_, _| {},
            &CancellationToken::new(),
        ));
        let elapsed = started.elapsed();
        assert!(result.expect("an answer").fix.is_some());
        // The same body, sent by hand and read to the end.
        let body = fake.requests().last().expect("a request").raw.clone();
        fake.push(Reply::text(&reply));
        let started = Instant::now();
        raw_exchange(&fake.base_url(), body.as_bytes());
        let raw = started.elapsed();
        if round >= 20 {
            through_acas.push(elapsed);
            bare.push(raw);
        }
    }
    through_acas.sort();
    bare.sort();
    let mut added: Vec<Duration> =
        through_acas.iter().zip(&bare).map(|(a, b)| a.saturating_sub(*b)).collect();
    added.sort();
    println!("## Time ACAS adds to a request ({ROUNDS} requests, local fake provider)\n");
    println!("| measure | p50 ms | p95 ms | max ms |\n|---|---|---|---|");
    for (name, values) in
        [("through ACAS (run)", &through_acas), ("bare HTTP exchange", &bare), ("added by ACAS", &added)]
    {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            percentile(values, 0.5),
            percentile(values, 0.95),
            percentile(values, 1.0)
        );
    }
    println!();
}

fn first_text_to_progress() {
    use acas_e2e::LspClient;
    use serde_json::json;
    const ROUNDS: usize = 50;
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    let fake = FakeProvider::start(Format::Anthropic);
    std::fs::create_dir(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), fake.provider_toml("claude", "claude-haiku-4-5")).unwrap();
    let text = "fn area(r: f64) -> f64 {\n    3.14 * (r * r\n}\n";
    let path = root.join("lib.rs");
    std::fs::write(&path, text).unwrap();
    let uri = acas_e2e::file_uri(&path);
    let key = fake.api_key();
    let mut client = LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| p["diagnostics"] != json!([]));
    let range = published["diagnostics"][0]["range"].clone();
    let mut latencies = Vec::new();
    let mut previous = None;
    for _ in 0..ROUNDS + 5 {
        fake.push(Reply::StallAfterText);
        let response = client.request(
            "workspace/executeCommand",
            json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": range }] }),
        );
        let id = response["result"]["escalationId"].clone();
        let report = client.expect("progress showing the first text", |m| {
            m["method"] == "$/progress"
                && m["params"]["value"]["message"].as_str().is_some_and(|s| s.contains("characters received"))
        });
        let received = Instant::now();
        // The fake notes the flush right after it returns; wait for this round's note.
        let sent = loop {
            match fake.first_text_sent() {
                Some(at) if Some(at) != previous => break at,
                _ => std::thread::yield_now(),
            }
        };
        previous = Some(sent);
        latencies.push(received.saturating_duration_since(sent));
        client.notify("window/workDoneProgress/cancel", json!({ "token": report["params"]["token"] }));
        client.expect("the cancelled escalation", |m| {
            m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
        });
    }
    let mut latencies = latencies.split_off(5);
    latencies.sort();
    println!(
        "## First streamed text to the editor's progress ({ROUNDS} escalations, acas serve over stdio)\n"
    );
    println!("| measure | p50 ms | p95 ms | max ms |\n|---|---|---|---|");
    println!(
        "| provider flushes first text event → client reads `$/progress` | {:.3} | {:.3} | {:.3} |\n",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 1.0)
    );
    drop(client);
}

/// Sends a recorded request as it was, reads the whole streamed answer.
fn raw_exchange(base_url: &str, raw: &[u8]) {
    let address = base_url.trim_start_matches("http://").split('/').next().unwrap();
    let mut stream = TcpStream::connect(address).expect("the fake accepts");
    stream.write_all(raw).expect("the request is written");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
}

fn contexts() {
    println!("## Building an error's context\n");
    println!(
        "| code base | files indexed | definitions | index build ms | context build ms |\n|---|---|---|---|---|"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    measure("this repository (Rust)", &repo, &repo.join("server/src/workspace.rs"));
    if let Some(registry) = registry() {
        let target = std::fs::read_dir(&registry).ok().and_then(|mut entries| {
            entries.find_map(|e| {
                let p = e.ok()?.path().join("src/lib.rs");
                p.exists().then_some(p)
            })
        });
        if let Some(target) = target {
            measure("the cargo registry's sources (Rust)", &registry, &target);
        }
    }
    println!();
}

fn registry() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    std::fs::read_dir(home.join("registry/src")).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).next()
}

fn measure(name: &str, root: &Path, file: &Path) {
    let files = Mutex::new(Vec::new());
    let rules = std::sync::Arc::new(acas::watch::IgnoreRules::new(root, &[]));
    acas::watch::walk(
        &rules,
        root,
        &|f| {
            if f.extension().is_some_and(|e| e == "rs") {
                files.lock().unwrap().push(f);
            }
        },
        &|_| {},
    );
    let files = files.into_inner().unwrap();
    let started = Instant::now();
    let index = SymbolIndex::build(root, &files, 2 * 1024 * 1024);
    let index_ms = started.elapsed().as_secs_f64() * 1000.0;
    let text = std::fs::read_to_string(file).unwrap();
    let mut broken = text.clone();
    let at = broken.find("(").unwrap_or(0);
    broken.insert(at + 1, '(');
    let doc = Document::new(Language::Rust, broken.clone());
    let range = doc.diagnostics().first().map_or(at..at + 1, |d| d.range.clone());
    let rel = acas::workspace::relative(root, file);
    let redactor = acas::escalate::redact::Redactor::new(&[]).unwrap();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
    let mut times = Vec::new();
    for _ in 0..20 {
        let site = Site {
            root,
            path: &rel,
            language: Language::Rust,
            text: &broken,
            tree: doc.tree(),
            range: range.clone(),
        };
        let started = Instant::now();
        let context =
            context::build(&site, Problem::default(), &index, &redactor, &read, vec![], Budget::default());
        let _ = context::render(&context, &redactor);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "| {name} | {} | {} | {index_ms:.0} | {:.1} (p50 of 20) |",
        index.files(),
        index.definitions(),
        percentile(&times, 0.5)
    );
}
