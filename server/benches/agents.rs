//! The agents' control plane: claim and heartbeat throughput with 1, 4 and 8 agents at once
//! (threads, each with its own connection, as separate processes would have), the audit log's
//! append rate (one transaction per event, and many events per transaction) and its verification
//! speed. On a real SQLite file in a temporary directory. Prints a markdown table.
//!
//! Run with `cargo bench -p acas --bench agents [-- --keep DIR]`; `--keep DIR` writes the audit
//! log into `DIR/.acas/state.db` and leaves it there (for timing `acas audit verify` on it).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acas::agents::{Claim, ClaimRequest, NewTask, SystemClock, TaskQueue};
use acas::store::audit::{self, AuditEvent, AuditKind, AuditLog};

const AGENTS: [usize; 3] = [1, 4, 8];
const TASKS: usize = 2_000;
const HEARTBEATS_PER_TASK: usize = 3;
const AUDIT_EVENTS: usize = 20_000;
const AUDIT_BATCHED: usize = 200_000;

fn main() {
    let mut rows: Vec<[String; 2]> = Vec::new();
    for agents in AGENTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        claims(dir.path(), agents, &mut rows);
    }

    let args: Vec<String> = std::env::args().collect();
    let keep =
        args.iter().position(|a| a == "--keep").and_then(|i| args.get(i + 1)).map(std::path::PathBuf::from);
    let temporary = tempfile::tempdir().expect("temporary directory");
    let dir = keep.unwrap_or_else(|| temporary.path().to_owned());
    std::fs::create_dir_all(&dir).expect("the audit log's directory");
    let mut log = AuditLog::open(&dir, Duration::from_secs(10)).expect("open the audit log");
    let started = Instant::now();
    for n in 0..AUDIT_EVENTS {
        log.append(&event(n)).expect("append");
    }
    let elapsed = started.elapsed();
    rows.push([
        format!("audit append, one transaction per event ({AUDIT_EVENTS} events)"),
        format!("{:.0} events/s", AUDIT_EVENTS as f64 / elapsed.as_secs_f64()),
    ]);

    let mut conn = rusqlite::Connection::open(dir.join(".acas/state.db")).expect("open");
    let started = Instant::now();
    let tx = conn.transaction().expect("transaction");
    for n in 0..AUDIT_BATCHED {
        audit::append(&tx, &event(n)).expect("append");
    }
    tx.commit().expect("commit");
    let elapsed = started.elapsed();
    rows.push([
        format!("audit append, one transaction ({AUDIT_BATCHED} events)"),
        format!("{:.0} events/s", AUDIT_BATCHED as f64 / elapsed.as_secs_f64()),
    ]);

    let started = Instant::now();
    let (result, _) = log.verify(None).expect("verify");
    let elapsed = started.elapsed();
    assert!(result.first_break.is_none());
    rows.push([
        format!("audit verify ({} records)", result.records),
        format!(
            "{:.0} records/s ({:.2} s)",
            result.records as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        ),
    ]);

    println!("| measure | result |\n| --- | --- |");
    for [what, result] in rows {
        println!("| {what} | {result} |");
    }
}

fn event(n: usize) -> AuditEvent<'static> {
    AuditEvent {
        at_ms: 1_800_000_000_000 + n as i64,
        kind: AuditKind::Task,
        actor: "agent-1",
        subject: "task 42",
        detail: serde_json::json!({ "event": "claimed", "lease_until_ms": 1_800_000_300_000i64, "paths": ["src/**"] }),
    }
}

/// `agents` agents take every task: claim, heartbeat a few times, done; each call its own
/// transaction.
fn claims(root: &Path, agents: usize, rows: &mut Vec<[String; 2]>) {
    let mut queue = TaskQueue::open(root, Arc::new(SystemClock)).expect("open the task queue");
    for n in 0..TASKS {
        let task = NewTask {
            paths: vec![format!("src/module{n}/**")],
            priority: (n % 7) as i64,
            ..NewTask::titled(&format!("task {n}"))
        };
        queue.create(&task).expect("create");
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..agents)
        .map(|a| {
            let root = root.to_owned();
            std::thread::spawn(move || {
                let mut queue = TaskQueue::open(&root, Arc::new(SystemClock)).expect("open the task queue");
                let agent = format!("agent-{a}");
                let request = ClaimRequest {
                    agent: agent.clone(),
                    labels: Vec::new(),
                    ttl: Duration::from_secs(300),
                    task: None,
                };
                let (mut claims, mut beats, mut claim_time) = (0usize, 0usize, Duration::ZERO);
                loop {
                    let t = Instant::now();
                    let claim = queue.claim(&request).expect("claim");
                    claim_time += t.elapsed();
                    let Claim::Claimed(task) = claim else { break };
                    claims += 1;
                    for _ in 0..HEARTBEATS_PER_TASK {
                        queue.heartbeat(task.id, &agent, Duration::from_secs(300)).expect("heartbeat");
                        beats += 1;
                    }
                    queue.done(task.id, &agent).expect("done");
                }
                (claims, beats, claim_time)
            })
        })
        .collect();
    let (mut claims, mut beats, mut claim_time) = (0, 0, Duration::ZERO);
    for t in threads {
        let (c, b, d) = t.join().expect("agent thread");
        claims += c;
        beats += b;
        claim_time += d;
    }
    let elapsed = started.elapsed();
    assert_eq!(claims, TASKS);
    let operations = claims * 2 + beats;
    rows.push([
        format!("{agents} agent(s): claim, {HEARTBEATS_PER_TASK} heartbeats, done ({TASKS} tasks with a path lock each)"),
        format!(
            "{:.0} operations/s: {:.0} claims/s, {:.0} heartbeats/s ({:.2} s)",
            operations as f64 / elapsed.as_secs_f64(),
            claims as f64 / elapsed.as_secs_f64(),
            beats as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        ),
    ]);
    rows.push([
        format!("{agents} agent(s): mean claim latency (waiting for the write lock included)"),
        format!("{:.2} ms", claim_time.as_secs_f64() * 1000.0 / claims as f64),
    ]);
}
