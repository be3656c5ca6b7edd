//! Tests of the task queue on real SQLite files in temporary directories, with the clock driven
//! by hand: leases run out because the test moves the clock, never because it waits.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::store::audit::AuditLog;

const START: i64 = 1_800_000_000_000;
const MINUTE: Duration = Duration::from_secs(60);

fn queue(root: &Path, clock: &ManualClock) -> TaskQueue {
    TaskQueue::open(root, Arc::new(clock.clone())).unwrap()
}

fn setup() -> (tempfile::TempDir, ManualClock, TaskQueue) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(START);
    let q = queue(dir.path(), &clock);
    (dir, clock, q)
}

fn task(title: &str, paths: &[&str]) -> NewTask {
    NewTask { paths: paths.iter().map(|p| (*p).to_owned()).collect(), ..NewTask::titled(title) }
}

fn claim(q: &mut TaskQueue, agent: &str, ttl: Duration) -> Claim {
    q.claim(&ClaimRequest { agent: agent.to_owned(), labels: Vec::new(), ttl, task: None }).unwrap()
}

fn claimed(claim: Claim) -> Task {
    match claim {
        Claim::Claimed(task) => *task,
        Claim::Nothing(why) => panic!("nothing claimed: {why:?}"),
    }
}

fn nothing(claim: Claim) -> Vec<Unavailable> {
    match claim {
        Claim::Claimed(task) => panic!("claimed #{} {}", task.id, task.title),
        Claim::Nothing(why) => why,
    }
}

fn verify_audit(root: &Path) {
    let result = AuditLog::open(root, Duration::from_secs(5)).unwrap().verify(None).unwrap().0;
    assert_eq!(result.first_break, None);
    assert!(result.records > 0);
}

#[test]
fn a_silent_agent_loses_its_task_and_locks() {
    let (dir, clock, mut q) = setup();
    let t = q.create(&task("parser", &["src/parser/**"])).unwrap();
    let a = claimed(claim(&mut q, "a", MINUTE));
    assert_eq!((a.id, a.state, a.locks.len()), (t.id, TaskState::Claimed, 1));

    // A heartbeat within the lease extends it and marks the task running.
    clock.advance(50_000);
    let beat = q.heartbeat(t.id, "a", MINUTE).unwrap();
    assert_eq!((beat.state, beat.lease_until_ms), (TaskState::Running, Some(START + 50_000 + 60_000)));
    clock.advance(50_000);
    assert_eq!(nothing(claim(&mut q, "b", MINUTE)), Vec::new(), "a's lease still runs");

    // Then a stops: once the lease has run out the task is b's, with its locks.
    clock.advance(10_001);
    let b = claimed(claim(&mut q, "b", MINUTE));
    assert_eq!((b.id, b.agent.as_deref(), b.attempts), (t.id, Some("b"), 0));
    assert_eq!(q.locks().unwrap().iter().map(|l| l.agent.as_str()).collect::<Vec<_>>(), ["b"]);
    let late = q.heartbeat(t.id, "a", MINUTE).unwrap_err();
    assert_eq!(late.kind, TaskErrorKind::NotHolder, "{late}");
    assert!(late.message.contains("held by b"), "{late}");
    assert_eq!(q.done(t.id, "a").unwrap_err().kind, TaskErrorKind::NotHolder);

    // An expired lease with nobody waiting returns the task to the queue.
    clock.advance(60_000);
    let back = q.get(t.id).unwrap();
    assert_eq!((back.state, back.agent, back.locks.len()), (TaskState::Queued, None, 0));
    verify_audit(dir.path());
}

#[test]
fn a_dependency_done_unblocks_the_next_task() {
    let (dir, _clock, mut q) = setup();
    let first = q.create(&task("first", &[])).unwrap();
    let second = q.create(&NewTask { needs: vec![first.id], priority: 9, ..task("second", &[]) }).unwrap();
    assert_eq!(second.state, TaskState::Blocked);

    let a = claimed(claim(&mut q, "a", MINUTE));
    assert_eq!(a.id, first.id, "the higher priority of a blocked task does not count");
    let why = nothing(claim(&mut q, "b", MINUTE));
    assert!(
        why.iter().any(|u| u.task == second.id && u.reason.contains(&format!("#{}", first.id))),
        "{why:?}"
    );

    let (done, unblocked) = q.done(first.id, "a").unwrap();
    assert_eq!((done.state, unblocked), (TaskState::Done, vec![second.id]));
    assert_eq!(claimed(claim(&mut q, "b", MINUTE)).id, second.id);
    verify_audit(dir.path());
}

#[test]
fn a_dependency_cycle_is_refused_and_named() {
    let (_dir, _clock, mut q) = setup();
    let one = q.create(&task("one", &[])).unwrap();
    let two = q.create(&NewTask { needs: vec![one.id], ..task("two", &[]) }).unwrap();
    let three = q.create(&NewTask { needs: vec![two.id], ..task("three", &[]) }).unwrap();
    let error = q.add_needs(one.id, &[three.id], "user").unwrap_err();
    assert_eq!(error.kind, TaskErrorKind::Cycle);
    assert!(error.message.contains("#1 -> #3 -> #2 -> #1"), "{error}");
    assert_eq!(q.add_needs(one.id, &[one.id], "user").unwrap_err().kind, TaskErrorKind::Cycle);
    assert!(q.get(one.id).unwrap().needs.is_empty(), "a refused dependency leaves nothing behind");
    assert_eq!(q.add_needs(three.id, &[99], "user").unwrap_err().kind, TaskErrorKind::NotFound);
}

#[test]
fn failures_retry_after_a_backoff_then_fail() {
    let (_dir, clock, mut q) = setup();
    let t = q.create(&NewTask { max_attempts: Some(2), ..task("flaky", &["src/**"]) }).unwrap();
    claimed(claim(&mut q, "a", MINUTE));
    let failed = q.fail(t.id, "a", "tests failed").unwrap();
    assert_eq!((failed.state, failed.attempts, failed.locks.len()), (TaskState::Queued, 1, 0));
    assert_eq!(failed.retry_at_ms, Some(START + 30_000));

    let why = nothing(claim(&mut q, "b", MINUTE));
    assert!(why[0].reason.contains("retries after") && why[0].reason.contains("tests failed"), "{why:?}");
    clock.advance(30_000);
    claimed(claim(&mut q, "b", MINUTE));
    let gone = q.fail(t.id, "b", "still failing").unwrap();
    assert_eq!((gone.state, gone.attempts), (TaskState::Failed, 2));
    assert!(nothing(claim(&mut q, "c", MINUTE)).is_empty());
}

#[test]
fn claims_follow_priority_labels_and_locks() {
    let (_dir, _clock, mut q) = setup();
    let low = q.create(&task("low", &["docs/**"])).unwrap();
    let high = q.create(&NewTask { priority: 5, ..task("high", &["src/**"]) }).unwrap();
    let rust =
        q.create(&NewTask { priority: 9, labels: vec!["rust".to_owned()], ..task("rust", &[]) }).unwrap();
    let inside = q.create(&NewTask { priority: 4, ..task("inside", &["src/lib.rs"]) }).unwrap();

    assert_eq!(claimed(claim(&mut q, "a", MINUTE)).id, high.id, "a has no rust label");
    // b may not take `inside`: its path lies under a's lock.
    let b = claimed(claim(&mut q, "b", MINUTE));
    assert_eq!(b.id, low.id);
    let why = nothing(claim(&mut q, "b", MINUTE));
    let blocked = why.iter().find(|u| u.task == inside.id).unwrap();
    assert!(blocked.reason.contains("locked by a") && blocked.reason.contains("high"), "{why:?}");
    // a may: the lock is its own.
    assert_eq!(claimed(claim(&mut q, "a", MINUTE)).id, inside.id);
    let with_label = q
        .claim(&ClaimRequest {
            agent: "c".to_owned(),
            labels: vec!["rust".to_owned()],
            ttl: MINUTE,
            task: None,
        })
        .unwrap();
    assert_eq!(claimed(with_label).id, rust.id);

    // An explicit lock over another agent's path is refused, naming holder, task and lease.
    let error = q.lock(low.id, "b", &["src/parser/mod.rs".to_owned()]).unwrap_err();
    assert_eq!(error.kind, TaskErrorKind::Conflict);
    for part in ["locked by a", &format!("#{}", high.id), "until 2027-01-15"] {
        assert!(error.message.contains(part), "{part} missing from: {error}");
    }
    assert_eq!(q.lock(low.id, "b", &["README.md".to_owned()]).unwrap().locks.len(), 2);
    assert_eq!(q.lock(high.id, "b", &["x".to_owned()]).unwrap_err().kind, TaskErrorKind::NotHolder);
}

#[test]
fn inputs_over_the_limits_are_refused() {
    let (_dir, _clock, mut q) = setup();
    for bad in [
        NewTask::titled(""),
        NewTask::titled(&"x".repeat(tasks::MAX_TITLE_CHARS + 1)),
        task("abs", &["/etc/passwd"]),
        task("up", &["../outside"]),
        NewTask { labels: vec!["has space".to_owned()], ..NewTask::titled("label") },
        NewTask { max_attempts: Some(0), ..NewTask::titled("attempts") },
    ] {
        assert_eq!(q.create(&bad).unwrap_err().kind, TaskErrorKind::Invalid, "{bad:?}");
    }
    let ttl = q.claim(&ClaimRequest {
        agent: "a".to_owned(),
        labels: Vec::new(),
        ttl: Duration::from_secs(2 * 24 * 3600),
        task: None,
    });
    assert_eq!(ttl.unwrap_err().kind, TaskErrorKind::Invalid);
}

#[test]
fn a_problem_becomes_a_fix_task_once() {
    let (dir, _clock, mut q) = setup();
    let conn = rusqlite::Connection::open(dir.path().join(".acas/state.db")).unwrap();
    conn.execute(
        "INSERT INTO problem (fingerprint, category, severity, message, source, symbol, occurrences, \
         first_seen_ms, last_seen_ms, appeared_ms, last_path) \
         VALUES ('abcdef0123456789', 'syntax', 'error', 'expected `;`', 'acas', 'main', 1, 1, 1, 1, ?1)",
        [dir.path().join("src/main.rs").to_str().unwrap()],
    )
    .unwrap();
    let (t, created) = q.from_problem("abcdef01", dir.path(), &NewTask::titled("x")).unwrap();
    assert!(created);
    assert_eq!(
        (t.kind, t.source, t.paths.clone()),
        (TaskType::Fix, TaskSource::Problem, vec!["src/main.rs".to_owned()])
    );
    assert_eq!(t.title, "Fix syntax: expected `;`");
    let (again, created) = q.from_problem("abcdef0123456789", dir.path(), &NewTask::titled("x")).unwrap();
    assert_eq!((again.id, created), (t.id, false));
    assert_eq!(
        q.from_problem("ffffff", dir.path(), &NewTask::titled("x")).unwrap_err().kind,
        TaskErrorKind::NotFound
    );
}

/// Concrete files the property test's globs are checked against.
const FILES: &[&str] =
    &["src/a.rs", "src/b.rs", "src/x/c.rs", "docs/a.md", "docs/b.md", "README.md", "tests/t.rs"];
const GLOBS: &[&str] = &[
    "src/**",
    "src/*.rs",
    "src/a.rs",
    "src/x/**",
    "docs/**",
    "docs/*.md",
    "*.md",
    "README.md",
    "tests/**",
    "**/*.rs",
];

fn touches(glob: &str, file: &str) -> bool {
    globset::GlobBuilder::new(glob).literal_separator(true).build().unwrap().compile_matcher().is_match(file)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Agents on threads of their own, each with its own connection, claim until nothing is
    /// left for them: no task is given twice, and no file lies under the paths of tasks held by
    /// two different agents.
    #[test]
    fn concurrent_claims_never_share_a_task_or_a_path(
        tasks in prop::collection::vec(prop::collection::vec(0..GLOBS.len(), 0..3), 1..12),
        agents in 2usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::starting_at(START);
        let mut q = queue(dir.path(), &clock);
        for (i, paths) in tasks.iter().enumerate() {
            let globs: Vec<&str> = paths.iter().map(|&g| GLOBS[g]).collect();
            q.create(&task(&format!("t{i}"), &globs)).unwrap();
        }
        let threads: Vec<_> = (0..agents)
            .map(|n| {
                let (root, clock) = (dir.path().to_owned(), clock.clone());
                std::thread::spawn(move || {
                    let mut q = queue(&root, &clock);
                    let agent = format!("agent-{n}");
                    let mut held = Vec::new();
                    while let Claim::Claimed(task) = claim(&mut q, &agent, MINUTE) {
                        held.push((agent.clone(), *task));
                    }
                    held
                })
            })
            .collect();
        let held: Vec<(String, Task)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let mut ids: Vec<i64> = held.iter().map(|(_, t)| t.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        prop_assert_eq!(before, ids.len(), "a task was given twice");
        for (i, (agent_a, a)) in held.iter().enumerate() {
            for (agent_b, b) in &held[i + 1..] {
                if agent_a == agent_b {
                    continue;
                }
                for file in FILES {
                    let shared = a.paths.iter().any(|g| touches(g, file)) && b.paths.iter().any(|g| touches(g, file));
                    prop_assert!(!shared, "{} is under #{} ({}) and #{} ({})", file, a.id, agent_a, b.id, agent_b);
                }
            }
        }
        // Every task left unclaimed is unclaimable for each agent: it overlaps someone else's.
        let left = q.list(&TaskFilter { state: Some(TaskState::Queued), ..TaskFilter::default() }).unwrap();
        for t in left {
            prop_assert!(!t.paths.is_empty(), "#{} with no paths was left in the queue", t.id);
        }
        verify_audit(dir.path());
    }
}
