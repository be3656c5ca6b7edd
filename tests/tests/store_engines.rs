//! The shared store against its two engines: one behavioural suite, run on the workspace's
//! SQLite and on a real PostgreSQL cluster started for the test (`acas_e2e::postgres`).
//!
//! Each case is a function over an [`Engine`]; `both_engines!` makes a test of each case on
//! SQLite, and one test that runs every case on PostgreSQL, each in a fresh database of one
//! cluster, so that the binary starts one cluster for the whole suite (two more are started by
//! the tests that stop theirs). Handles opened by separate threads stand for separate
//! processes: each has its own connection (SQLite) or pool (PostgreSQL).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use acas::agents::postgres::PgTaskQueue;
use acas::agents::{Claim, ClaimRequest, ManualClock, NewTask, TaskErrorKind, TaskQueue, TaskState, Tasks};
use acas::store::{
    CacheEntry, CallStatus, DatabaseUrl, FixLog, FixOutcome, Identity, Ledger, Outcome, PgOptions, PgStore,
    ProviderCall, SpendTotals, Spending, Store, StoreOptions,
};
use acas_e2e::postgres::PgCluster;

/// Where a case's state lives; each [`Engine::ledger`] or [`Engine::tasks`] is a new handle
/// with connections of its own.
enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres { url: String },
}

const REPOSITORY: &str = "github.com/acme/app";

impl Engine {
    fn sqlite() -> Engine {
        Engine::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh database on `cluster`.
    fn postgres(cluster: &PgCluster) -> Engine {
        Engine::Postgres { url: cluster.database() }
    }

    fn ledger(&self) -> Box<dyn Ledger> {
        match self {
            Engine::Sqlite(dir) => {
                Box::new(Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap())
            }
            Engine::Postgres { .. } => Box::new(self.pg(REPOSITORY)),
        }
    }

    fn fixes(&self) -> Box<dyn FixLog> {
        match self {
            Engine::Sqlite(dir) => {
                Box::new(Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap())
            }
            Engine::Postgres { .. } => Box::new(self.pg(REPOSITORY)),
        }
    }

    fn tasks(&self, clock: &ManualClock) -> Box<dyn Tasks> {
        match self {
            Engine::Sqlite(dir) => Box::new(TaskQueue::open(dir.path(), Arc::new(clock.clone())).unwrap()),
            Engine::Postgres { .. } => {
                Box::new(PgTaskQueue::new(self.pg(REPOSITORY), Arc::new(clock.clone())))
            }
        }
    }

    fn pg(&self, repository: &str) -> PgStore {
        let Engine::Postgres { url, .. } = self else { panic!("not PostgreSQL") };
        let identity = Identity { repository: repository.to_owned(), user: "ana@example.com".to_owned() };
        PgStore::connect(&DatabaseUrl::parse(url).unwrap(), identity, &PgOptions::default()).unwrap()
    }
}

macro_rules! both_engines {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $case() { super::$case(&super::Engine::sqlite()) })*
        }
        #[test]
        fn every_case_on_postgres() {
            let cluster = PgCluster::start();
            $(
                eprintln!("case {}", stringify!($case));
                $case(&Engine::postgres(&cluster));
            )*
            clones_of_one_repository_share_a_queue_and_other_repositories_do_not_see_it(&cluster);
            migrating_twice_changes_nothing_and_a_newer_schema_is_refused(&cluster);
            a_presence_never_outlives_its_cap_whatever_expiry_it_asks(&cluster);
            a_repository_too_long_for_a_notification_still_writes_and_is_heard(&cluster);
            fix_outcomes_are_shared_by_clones_and_not_across_repositories(&cluster);
        }
    };
}

both_engines!(
    a_reservation_counts_until_the_call_ends_with_its_actual_cost,
    a_refused_reservation_is_recorded_and_costs_nothing,
    a_reservation_sees_the_spend_by_period_and_provider,
    the_answer_cache_keeps_and_replaces_replies,
    racing_reservations_from_separate_handles_never_pass_the_limit,
    racing_users_each_stop_at_their_own_limit,
    tasks_are_claimed_by_priority_then_age_and_only_with_their_labels,
    a_task_waits_for_its_needs_and_is_queued_when_they_are_done,
    a_lease_that_ends_returns_the_task_and_its_holder_loses_it,
    a_failure_retries_after_a_backoff_then_fails_for_good,
    overlapping_paths_are_never_held_by_two_agents,
    racing_claims_from_separate_handles_give_each_task_once,
    a_negative_or_future_dated_row_never_moves_the_spend,
    two_reservations_never_share_one_call_row,
    a_need_that_closes_a_cycle_is_refused_naming_it,
    a_dropped_need_unblocks_and_a_failed_task_is_retried_afresh,
    added_locks_are_all_or_none_and_never_overlap_another_agents,
    fix_outcomes_from_one_handle_teach_another,
);

fn call(id: &str, provider: &str, at_ms: i64, reserved: u64) -> ProviderCall {
    ProviderCall {
        id: id.to_owned(),
        at_ms,
        provider: provider.to_owned(),
        model: "m".to_owned(),
        fingerprint: None,
        category: None,
        status: CallStatus::Reserved,
        reserved_micros: reserved,
        input_tokens: 0,
        output_tokens: 0,
        cached_input_tokens: 0,
        cost_micros: 0,
        latency_ms: None,
        error: None,
        user: Some("ana@example.com".to_owned()),
        agent: None,
    }
}

fn allow_all() -> acas::store::Allow {
    Box::new(|_| Ok(()))
}

fn a_reservation_counts_until_the_call_ends_with_its_actual_cost(engine: &Engine) {
    let ledger = engine.ledger();
    assert_eq!(ledger.reserve(call("c1", "claude", 1_000, 500), 0, 0, allow_all()).unwrap(), Ok(()));
    assert_eq!(ledger.spend_since(0, None).unwrap(), 500);
    let mut ended = call("c1", "claude", 1_000, 500);
    ended.status = CallStatus::Succeeded;
    ended.cost_micros = 120;
    ledger.finish(ended).unwrap();
    assert_eq!(ledger.spend_since(0, None).unwrap(), 120);
    // A late `reserved` does not bring an ended call back.
    ledger.finish(call("c1", "claude", 1_000, 500)).unwrap();
    assert_eq!(ledger.spend_since(0, None).unwrap(), 120);
    assert_eq!(ledger.spend_since(0, Some("claude")).unwrap(), 120);
    assert_eq!(ledger.spend_since(0, Some("openai")).unwrap(), 0);
    assert_eq!(ledger.spend_since(1_001, None).unwrap(), 0);
    // Another handle on the same store reads the same.
    assert_eq!(engine.ledger().spend_since(0, None).unwrap(), 120);
}

fn a_refused_reservation_is_recorded_and_costs_nothing(engine: &Engine) {
    let ledger = engine.ledger();
    let verdict = ledger
        .reserve(
            call("c1", "claude", 1_000, 500),
            0,
            0,
            Box::new(|_| Err("over the daily budget".to_owned())),
        )
        .unwrap();
    assert_eq!(verdict, Err("over the daily budget".to_owned()));
    assert_eq!(ledger.spend_since(0, None).unwrap(), 0);
}

fn a_reservation_sees_the_spend_by_period_and_provider(engine: &Engine) {
    let ledger = engine.ledger();
    let (month, day) = (1_000, 5_000);
    ledger.reserve(call("old", "claude", 500, 1), day, month, allow_all()).unwrap().unwrap();
    ledger.reserve(call("month", "claude", 2_000, 10), day, month, allow_all()).unwrap().unwrap();
    ledger.reserve(call("day", "claude", 6_000, 100), day, month, allow_all()).unwrap().unwrap();
    ledger.reserve(call("other", "openai", 7_000, 1_000), day, month, allow_all()).unwrap().unwrap();
    let (seen, answer) = std::sync::mpsc::channel();
    ledger
        .reserve(
            call("next", "claude", 8_000, 5),
            day,
            month,
            Box::new(move |totals| {
                seen.send(totals).unwrap();
                Ok(())
            }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        answer.recv().unwrap(),
        Spending::Recorded(SpendTotals {
            workspace_day: 1_100,
            workspace_month: 1_110,
            user_day: 1_100,
            user_month: 1_110,
            provider_day: 100,
            provider_month: 110
        })
    );
}

/// Ledger rows written around the store (a crafted database, a copy of one): a negative cost
/// would offset everyone's spend, a row dated in the future would count in every period.
fn a_negative_or_future_dated_row_never_moves_the_spend(engine: &Engine) {
    let ledger = engine.ledger();
    let now = acas::time::now_ms();
    let mut real = call("real", "claude", now, 500);
    real.status = CallStatus::Succeeded;
    real.cost_micros = 300;
    ledger.finish(real).unwrap();
    let far = now + 365 * 86_400_000;
    let rows = [("negative", now, -50_000_000i64), ("future", far, 100_000_000)];
    for (id, at_ms, cost) in rows {
        let values =
            format!("'{id}', {at_ms}, 'claude', 'm', 'succeeded', 0, 0, 0, 0, {cost}, 'ana@example.com'");
        let columns = "id, at_ms, provider, model, status, reserved_micros, input_tokens, output_tokens, \
                       cached_input_tokens, cost_micros, user_name";
        match engine {
            Engine::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
                conn.execute(&format!("INSERT INTO provider_call ({columns}) VALUES ({values})"), [])
                    .unwrap();
            }
            Engine::Postgres { url } => {
                acas_e2e::postgres::psql_url(
                    url,
                    &format!(
                        "INSERT INTO provider_call (repository, {columns}) VALUES ('{REPOSITORY}', {values})"
                    ),
                );
            }
        }
    }
    assert_eq!(ledger.spend_since(0, None).unwrap(), 300);
    assert_eq!(ledger.spend_since(0, Some("claude")).unwrap(), 300);
    let (seen, answer) = std::sync::mpsc::channel();
    ledger
        .reserve(
            call("next", "claude", now, 5),
            0,
            0,
            Box::new(move |totals| {
                seen.send(totals).unwrap();
                Ok(())
            }),
        )
        .unwrap()
        .unwrap();
    let Spending::Recorded(totals) = answer.recv().unwrap() else { panic!("judged as offline") };
    assert_eq!(
        [totals.workspace_day, totals.workspace_month, totals.user_day, totals.provider_month],
        [300, 300, 300, 300],
        "{totals:?}"
    );
}

/// Two calls given one id (by instances on other machines or containers): the second
/// reservation fails instead of taking over the first one's row and its spend.
fn two_reservations_never_share_one_call_row(engine: &Engine) {
    let ledger = engine.ledger();
    ledger.reserve(call("same", "claude", 1_000, 500), 0, 0, allow_all()).unwrap().unwrap();
    let other = engine.ledger().reserve(call("same", "claude", 1_000, 70), 0, 0, allow_all());
    let err = other.expect_err("a second reservation of one id is refused");
    assert!(err.to_string().contains("already recorded"), "{err}");
    assert_eq!(ledger.spend_since(0, None).unwrap(), 500);
    // An ended call's id cannot be reserved again either.
    let mut ended = call("same", "claude", 1_000, 500);
    ended.status = CallStatus::Succeeded;
    ended.cost_micros = 200;
    ledger.finish(ended).unwrap();
    assert!(ledger.reserve(call("same", "claude", 1_000, 70), 0, 0, allow_all()).is_err());
    assert_eq!(ledger.spend_since(0, None).unwrap(), 200);
}

/// Two users reserve at once from separate handles against a per-user limit: neither passes
/// it, and one user's spend never counts against the other.
fn racing_users_each_stop_at_their_own_limit(engine: &Engine) {
    const LIMIT: u64 = 3_000;
    const COST: u64 = 400;
    let handles = 6;
    let barrier = Arc::new(Barrier::new(handles));
    let allowed: Vec<(String, usize)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..handles)
            .map(|h| {
                let barrier = barrier.clone();
                let user = if h % 2 == 0 { "ana@example.com" } else { "bo@example.com" };
                // Opened before the threads start: a thread whose open failed would never reach
                // the barrier, and the others would wait at it for ever.
                let ledger = engine.ledger();
                scope.spawn(move || {
                    barrier.wait();
                    let mut allowed = 0;
                    for i in 0..10 {
                        let mut call = call(&format!("{h}-{i}"), "claude", 1_000, COST);
                        call.user = Some(user.to_owned());
                        let verdict = ledger
                            .reserve(
                                call,
                                0,
                                0,
                                Box::new(|spending| {
                                    let Spending::Recorded(spent) = spending else {
                                        return Err("offline".into());
                                    };
                                    if spent.user_day + COST > LIMIT { Err("over".into()) } else { Ok(()) }
                                }),
                            )
                            .unwrap();
                        allowed += usize::from(verdict.is_ok());
                    }
                    (user.to_owned(), allowed)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for user in ["ana@example.com", "bo@example.com"] {
        let count: usize = allowed.iter().filter(|(u, _)| u == user).map(|(_, n)| n).sum();
        assert_eq!(count as u64, LIMIT / COST, "{user}: {allowed:?}");
    }
    assert_eq!(engine.ledger().spend_since(0, None).unwrap(), 2 * (LIMIT / COST) * COST);
}

fn the_answer_cache_keeps_and_replaces_replies(engine: &Engine) {
    let ledger = engine.ledger();
    assert_eq!(ledger.cache_get("k").unwrap(), None);
    let entry = |reply: &str| CacheEntry {
        key: "k".to_owned(),
        at_ms: 1,
        fingerprint: "fp".to_owned(),
        model: "m".to_owned(),
        provider: "claude".to_owned(),
        reply: reply.to_owned(),
    };
    ledger.cache_put(entry("{\"fix\":1}")).unwrap();
    assert_eq!(engine.ledger().cache_get("k").unwrap(), Some(entry("{\"fix\":1}")));
    ledger.cache_put(entry("{\"fix\":2}")).unwrap();
    assert_eq!(ledger.cache_get("k").unwrap(), Some(entry("{\"fix\":2}")));
}

fn racing_reservations_from_separate_handles_never_pass_the_limit(engine: &Engine) {
    const LIMIT: u64 = 10_000;
    const COST: u64 = 300;
    let handles = 8;
    let barrier = Arc::new(Barrier::new(handles));
    let allowed: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..handles)
            .map(|h| {
                let ledger = engine.ledger();
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    (0..6)
                        .filter(|i| {
                            let allow: acas::store::Allow = Box::new(|spending: Spending| {
                                let Spending::Recorded(spent) = spending else {
                                    return Err("offline".into());
                                };
                                if spent.workspace_day + COST > LIMIT {
                                    Err("over".to_owned())
                                } else {
                                    Ok(())
                                }
                            });
                            ledger
                                .reserve(call(&format!("{h}-{i}"), "p", 1_000, COST), 0, 0, allow)
                                .unwrap()
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let spent = engine.ledger().spend_since(0, None).unwrap();
    assert_eq!(allowed as u64, LIMIT / COST, "reservations allowed");
    assert_eq!(spent, allowed as u64 * COST);
    assert!(spent <= LIMIT);
}

fn claim(queue: &mut dyn Tasks, agent: &str, labels: &[&str]) -> Option<acas::agents::Task> {
    let request = ClaimRequest {
        agent: agent.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        ttl: Duration::from_secs(60),
        task: None,
    };
    match queue.claim(&request).unwrap() {
        Claim::Claimed(task) => Some(*task),
        Claim::Nothing(_) => None,
    }
}

fn task(title: &str, priority: i64, labels: &[&str]) -> NewTask {
    NewTask { priority, labels: labels.iter().map(|l| (*l).to_owned()).collect(), ..NewTask::titled(title) }
}

fn tasks_are_claimed_by_priority_then_age_and_only_with_their_labels(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let low = queue.create(&task("low", 0, &[])).unwrap();
    let high_old = queue.create(&task("high old", 5, &[])).unwrap();
    let high_new = queue.create(&task("high new", 5, &[])).unwrap();
    let gpu = queue.create(&task("gpu", 9, &["gpu"])).unwrap();
    let order: Vec<i64> = (0..3).map(|i| claim(&mut *queue, &format!("a{i}"), &[]).unwrap().id).collect();
    assert_eq!(order, vec![high_old.id, high_new.id, low.id]);
    assert_eq!(claim(&mut *queue, "a3", &[]), None, "the gpu task needs the gpu label");
    let taken = claim(&mut *queue, "a4", &["gpu", "linux"]).unwrap();
    assert_eq!((taken.id, taken.state, taken.agent.as_deref()), (gpu.id, TaskState::Claimed, Some("a4")));
}

fn a_task_waits_for_its_needs_and_is_queued_when_they_are_done(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let first = queue.create(&task("first", 0, &[])).unwrap();
    let mut then = task("then", 9, &[]);
    then.needs = vec![first.id];
    let then = queue.create(&then).unwrap();
    assert_eq!(then.state, TaskState::Blocked);
    assert_eq!(then.needs, vec![first.id]);
    let taken = claim(&mut *queue, "a", &[]).unwrap();
    assert_eq!(taken.id, first.id, "the blocked task is not given, whatever its priority");
    assert_eq!(claim(&mut *queue, "b", &[]), None);
    let (done, unblocked) = queue.done(first.id, "a").unwrap();
    assert_eq!(done.state, TaskState::Done);
    assert_eq!(unblocked, vec![then.id]);
    assert_eq!(queue.get(then.id).unwrap().state, TaskState::Queued);
    assert_eq!(claim(&mut *queue, "b", &[]).unwrap().id, then.id);
}

fn a_lease_that_ends_returns_the_task_and_its_holder_loses_it(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let created = queue.create(&task("t", 0, &[])).unwrap();
    claim(&mut *queue, "a", &[]).unwrap();
    let running = queue.heartbeat(created.id, "a", Duration::from_secs(60)).unwrap();
    assert_eq!(running.state, TaskState::Running);
    assert_eq!(
        queue.heartbeat(created.id, "b", Duration::from_secs(60)).unwrap_err().kind,
        TaskErrorKind::NotHolder
    );
    clock.advance(61_000);
    let again = claim(&mut *queue, "b", &[]).unwrap();
    assert_eq!((again.id, again.agent.as_deref(), again.attempts), (created.id, Some("b"), 0));
    assert_eq!(queue.done(created.id, "a").unwrap_err().kind, TaskErrorKind::NotHolder);
    assert_eq!(queue.release(created.id, "b").unwrap().state, TaskState::Queued);
}

fn a_failure_retries_after_a_backoff_then_fails_for_good(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let mut new = task("flaky", 0, &[]);
    new.max_attempts = Some(2);
    let created = queue.create(&new).unwrap();
    claim(&mut *queue, "a", &[]).unwrap();
    let retried = queue.fail(created.id, "a", "exit 1").unwrap();
    assert_eq!((retried.state, retried.attempts), (TaskState::Queued, 1));
    assert_eq!(retried.retry_at_ms, Some(1_000_000 + 30_000));
    assert_eq!(claim(&mut *queue, "a", &[]), None, "not before the backoff ends");
    clock.advance(30_000);
    claim(&mut *queue, "a", &[]).unwrap();
    let failed = queue.fail(created.id, "a", "exit 2").unwrap();
    assert_eq!(
        (failed.state, failed.attempts, failed.last_error.as_deref()),
        (TaskState::Failed, 2, Some("exit 2"))
    );
}

fn overlapping_paths_are_never_held_by_two_agents(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let mut wide = task("wide", 5, &[]);
    wide.paths = vec!["src/**".to_owned()];
    let wide = queue.create(&wide).unwrap();
    let mut narrow = task("narrow", 1, &[]);
    narrow.paths = vec!["src/lib.rs".to_owned()];
    queue.create(&narrow).unwrap();
    let mut elsewhere = task("elsewhere", 0, &[]);
    elsewhere.paths = vec!["docs/*.md".to_owned()];
    let elsewhere = queue.create(&elsewhere).unwrap();
    assert_eq!(claim(&mut *queue, "a", &[]).unwrap().id, wide.id);
    assert_eq!(claim(&mut *queue, "b", &[]).unwrap().id, elsewhere.id, "src/lib.rs is under a's lock");
    let locks: Vec<(String, String)> =
        queue.locks().unwrap().into_iter().map(|l| (l.glob, l.agent)).collect();
    assert_eq!(locks, vec![("docs/*.md".to_owned(), "b".to_owned()), ("src/**".to_owned(), "a".to_owned())]);
    queue.done(wide.id, "a").unwrap();
    assert_eq!(claim(&mut *queue, "c", &[]).unwrap().title, "narrow");
}

fn a_need_that_closes_a_cycle_is_refused_naming_it(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let a = queue.create(&task("a", 0, &[])).unwrap();
    let b = queue.create(&task("b", 0, &[])).unwrap();
    let c = queue.create(&task("c", 0, &[])).unwrap();
    let b_needs_a = queue.add_needs(b.id, &[a.id], "user").unwrap();
    assert_eq!((b_needs_a.state, b_needs_a.needs.clone()), (TaskState::Blocked, vec![a.id]));
    queue.add_needs(c.id, &[b.id], "user").unwrap();
    let refused = queue.add_needs(a.id, &[c.id], "user").unwrap_err();
    assert_eq!(refused.kind, TaskErrorKind::Cycle);
    let cycle = format!("#{} -> #{} -> #{} -> #{}", a.id, c.id, b.id, a.id);
    assert!(refused.message.contains(&cycle), "{refused}");
    assert_eq!(queue.add_needs(a.id, &[a.id], "user").unwrap_err().kind, TaskErrorKind::Cycle);
    let a_now = queue.get(a.id).unwrap();
    assert_eq!((a_now.state, a_now.needs), (TaskState::Queued, vec![]), "a refused need changes nothing");
    assert_eq!(queue.add_needs(a.id, &[999_999], "user").unwrap_err().kind, TaskErrorKind::NotFound);
    assert_eq!(queue.waiting_on(c.id).unwrap(), vec![(b.id, TaskState::Blocked)]);
    claim(&mut *queue, "x", &[]).unwrap();
    assert_eq!(queue.add_needs(a.id, &[c.id], "user").unwrap_err().kind, TaskErrorKind::WrongState);
}

fn a_dropped_need_unblocks_and_a_failed_task_is_retried_afresh(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let mut flaky = task("flaky", 0, &[]);
    flaky.max_attempts = Some(1);
    let flaky = queue.create(&flaky).unwrap();
    let mut after = task("after", 0, &[]);
    after.needs = vec![flaky.id];
    let after = queue.create(&after).unwrap();
    assert_eq!(queue.retry(flaky.id, "user").unwrap_err().kind, TaskErrorKind::WrongState);
    claim(&mut *queue, "a", &[]).unwrap();
    assert_eq!(queue.fail(flaky.id, "a", "exit 1").unwrap().state, TaskState::Failed);
    assert_eq!(queue.waiting_on(after.id).unwrap(), vec![(flaky.id, TaskState::Failed)]);
    let retried = queue.retry(flaky.id, "user").unwrap();
    assert_eq!(
        (retried.state, retried.attempts, retried.agent, retried.last_error.as_deref()),
        (TaskState::Queued, 0, None, Some("exit 1"))
    );
    assert_eq!(claim(&mut *queue, "b", &[]).unwrap().id, flaky.id, "claimable at once, no backoff");
    assert_eq!(queue.drop_need(after.id, 12345, "user").unwrap_err().kind, TaskErrorKind::Invalid);
    let freed = queue.drop_need(after.id, flaky.id, "user").unwrap();
    assert_eq!((freed.state, freed.needs), (TaskState::Queued, vec![]));
    assert_eq!(claim(&mut *queue, "c", &[]).unwrap().id, after.id);
    assert_eq!(queue.drop_need(after.id, flaky.id, "user").unwrap_err().kind, TaskErrorKind::WrongState);
}

fn added_locks_are_all_or_none_and_never_overlap_another_agents(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let mut queue = engine.tasks(&clock);
    let mut first = task("first", 5, &[]);
    first.paths = vec!["src/**".to_owned()];
    let first = queue.create(&first).unwrap();
    let second = queue.create(&task("second", 0, &[])).unwrap();
    claim(&mut *queue, "a", &[]).unwrap();
    claim(&mut *queue, "b", &[]).unwrap();
    let globs = |l: &[&str]| l.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>();
    let refused = queue.lock(second.id, "b", &globs(&["docs/**", "src/lib.rs"])).unwrap_err();
    assert_eq!(refused.kind, TaskErrorKind::Conflict);
    assert!(refused.message.contains("src/lib.rs") && refused.message.contains('a'), "{refused}");
    assert!(queue.get(second.id).unwrap().locks.is_empty(), "none of the globs was locked");
    let locked = queue.lock(second.id, "b", &globs(&["docs/**"])).unwrap();
    assert_eq!(locked.locks.iter().map(|l| l.glob.as_str()).collect::<Vec<_>>(), ["docs/**"]);
    let more = queue.lock(first.id, "a", &globs(&["src/**", "tests/**"])).unwrap();
    assert_eq!(more.locks.len(), 2, "a glob held already is not locked twice");
    assert_eq!(queue.lock(first.id, "b", &globs(&["x/**"])).unwrap_err().kind, TaskErrorKind::NotHolder);
    assert_eq!(queue.lock(first.id, "a", &globs(&[""])).unwrap_err().kind, TaskErrorKind::Invalid);
    queue.done(first.id, "a").unwrap();
    assert_eq!(queue.locks().unwrap().len(), 1, "a finished task's locks are gone");
}

fn racing_claims_from_separate_handles_give_each_task_once(engine: &Engine) {
    let clock = ManualClock::starting_at(1_000_000);
    let tasks = 40;
    {
        let mut queue = engine.tasks(&clock);
        for i in 0..tasks {
            queue.create(&task(&format!("t{i}"), 0, &[])).unwrap();
        }
    }
    let agents = 6;
    let barrier = Arc::new(Barrier::new(agents));
    let mut claimed: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..agents)
            .map(|a| {
                let mut queue = engine.tasks(&clock);
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::new();
                    while let Some(task) = claim(&mut *queue, &format!("agent-{a}"), &[]) {
                        queue.done(task.id, &format!("agent-{a}")).unwrap();
                        mine.push(task.id);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "a task was given twice");
    assert_eq!(claimed.len(), tasks);
}

#[test]
fn the_test_cluster_starts_gives_fresh_databases_and_stops_on_drop() {
    let cluster = PgCluster::start();
    let port = cluster.port();
    let first = cluster.database();
    let second = cluster.database();
    assert_ne!(first, second);
    let name = |url: &str| url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    cluster.psql(&name(&first), "CREATE TABLE only_here (x int)");
    let seen = cluster.psql(&name(&second), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'");
    assert_eq!(seen, "0", "a fresh database does not see another's tables");
    drop(cluster);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server still listens after the cluster was dropped"
    );
}

fn clones_of_one_repository_share_a_queue_and_other_repositories_do_not_see_it(cluster: &PgCluster) {
    let engine = Engine::postgres(cluster);
    let clock = ManualClock::starting_at(1_000_000);
    let mut laptop = PgTaskQueue::new(engine.pg(REPOSITORY), Arc::new(clock.clone()));
    let mut desktop = PgTaskQueue::new(engine.pg(REPOSITORY), Arc::new(clock.clone()));
    let mut other = PgTaskQueue::new(engine.pg("github.com/acme/other"), Arc::new(clock.clone()));
    let created = laptop.create(&task("shared", 0, &[])).unwrap();
    assert_eq!(claim(&mut other, "x", &[]), None);
    assert_eq!(other.get(created.id).unwrap_err().kind, TaskErrorKind::NotFound);
    assert_eq!(claim(&mut desktop, "desk", &[]).unwrap().id, created.id);
    assert_eq!(laptop.get(created.id).unwrap().agent.as_deref(), Some("desk"));
}

/// A repository identity longer than a notification's payload can hold: its writes succeed,
/// and its listeners still hear them (the payload carries the identity's hash).
fn a_repository_too_long_for_a_notification_still_writes_and_is_heard(cluster: &PgCluster) {
    use acas::store::postgres::listen::ChangeKind;
    let engine = Engine::postgres(cluster);
    let repository = format!("github.com/acme/{}", "a".repeat(9_000));
    let store = engine.pg(&repository);
    let other = engine.pg(&format!("github.com/acme/{}", "b".repeat(9_000)));
    let mut changes = store.listen();
    let mut others = other.listen();
    let (heard, hearing) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Some(change) = changes.blocking_recv() {
            if heard.send(change).is_err() {
                break;
            }
        }
    });
    // The listener may not listen yet: write until a change is heard, a bounded number of times.
    let mut got = None;
    for attempt in 0..50 {
        let verdict = store.reserve(call(&format!("long-{attempt}"), "claude", 1_000, 5), 0, 0, allow_all());
        assert_eq!(verdict.unwrap(), Ok(()));
        if let Ok(change) = hearing.recv_timeout(Duration::from_millis(200)) {
            got = Some(change);
            break;
        }
    }
    assert_eq!(got, Some(ChangeKind::Spend));
    // Another long repository's listener hears nothing of it.
    assert!(others.try_recv().is_err());
}

/// An instance configured with a lease expiry of decades (or killed with such a row): its
/// presence counts for at most 10 minutes after its last announcement.
fn a_presence_never_outlives_its_cap_whatever_expiry_it_asks(cluster: &PgCluster) {
    use acas::store::postgres::presence::Presence;
    let store = Engine::postgres(cluster).pg(REPOSITORY);
    let now = acas::time::now_ms();
    let presence = |instance: &str, seen_ms: i64| Presence {
        instance: instance.to_owned(),
        user: "ana@example.com".to_owned(),
        host: "vm".to_owned(),
        repository: REPOSITORY.to_owned(),
        branch: None,
        started_ms: seen_ms,
        seen_ms,
        expires_ms: seen_ms + 999_999_999_999,
    };
    let minute = 60_000;
    store.announce(presence("ghost", now - 11 * minute)).unwrap();
    store.announce(presence("live", now)).unwrap();
    let listed =
        |at: i64| -> Vec<String> { store.present(at).unwrap().into_iter().map(|p| p.instance).collect() };
    assert_eq!(listed(now), ["live"]);
    assert_eq!(listed(now + 9 * minute), ["live"]);
    assert!(listed(now + 11 * minute).is_empty());
}

fn migrating_twice_changes_nothing_and_a_newer_schema_is_refused(cluster: &PgCluster) {
    let engine = Engine::postgres(cluster);
    let store = engine.pg(REPOSITORY);
    let version = store.schema_version().unwrap();
    assert_eq!(version, acas::store::postgres::SCHEMA_VERSION);
    let again = engine.pg(REPOSITORY);
    assert_eq!(again.schema_version().unwrap(), version);
    let Engine::Postgres { url } = &engine else { unreachable!() };
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    cluster.psql(name, &format!("INSERT INTO schema_version (version) VALUES ({})", version + 1));
    let identity = Identity { repository: REPOSITORY.to_owned(), user: "u".to_owned() };
    let refused =
        PgStore::connect(&DatabaseUrl::parse(url).unwrap(), identity, &PgOptions::default()).err().unwrap();
    assert_eq!(refused.kind(), acas::store::StoreErrorKind::NewerSchema);
    assert!(refused.to_string().contains("upgrade ACAS"), "{refused}");
}

#[test]
fn a_stopped_server_is_told_as_unreachable_without_the_password() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let with_password =
        format!("postgres://acas:Battery-Staple@127.0.0.1:{}/{name}?sslmode=disable", cluster.port());
    let url = DatabaseUrl::parse(&with_password).unwrap();
    let identity = Identity { repository: REPOSITORY.to_owned(), user: "u".to_owned() };
    let options = PgOptions { connect_timeout: Duration::from_secs(2), ..PgOptions::default() };
    let store = PgStore::connect(&url, identity.clone(), &options).unwrap();
    cluster.stop();
    let error = store.spend_since(0, None).unwrap_err();
    assert_eq!(error.kind(), acas::store::StoreErrorKind::Unreachable, "{error}");
    let error = PgStore::connect(&url, identity, &options).err().unwrap();
    assert_eq!(error.kind(), acas::store::StoreErrorKind::Unreachable, "{error}");
    let text = error.to_string();
    assert!(!text.contains("Battery-Staple"), "{text}");
    assert!(text.contains("acas:***@127.0.0.1"), "{text}");
}

fn fix(fix_id: &str, at_ms: i64, outcome: Outcome) -> FixOutcome {
    FixOutcome {
        fix_id: fix_id.to_owned(),
        at_ms,
        fingerprint: "fp1".to_owned(),
        category: "type".to_owned(),
        provider: "anthropic".to_owned(),
        model: "sonnet".to_owned(),
        outcome,
        description: Some(format!("fix {fix_id}")),
        old: Some(format!("old {fix_id}")),
        new: Some(format!("new {fix_id}")),
        verified: Some("parses".to_owned()),
    }
}

/// What learning reads: fixes counted once per outcome, accepted edits newest first, a
/// reverted fix never an example; written by one handle, read by another.
fn fix_outcomes_from_one_handle_teach_another(engine: &Engine) {
    let writer = engine.fixes();
    let no_edit = |f: FixOutcome| FixOutcome { old: None, new: None, ..f };
    let other_model = |f: FixOutcome| FixOutcome { model: "haiku".to_owned(), ..f };
    for f in [
        fix("a", 10, Outcome::Offered),
        fix("a", 11, Outcome::Applied),
        no_edit(fix("a", 12, Outcome::Resolved)),
        fix("b", 20, Outcome::Applied),
        fix("b", 21, Outcome::Reverted),
        fix("c", 30, Outcome::Offered),
        fix("c", 31, Outcome::Dismissed),
        fix("c", 32, Outcome::Offered),
        fix("d", 40, Outcome::Applied),
        fix("d", 41, Outcome::Resolved),
        other_model(fix("e", 50, Outcome::Offered)),
    ] {
        writer.record_fix(f).unwrap();
    }
    let reader = engine.fixes();
    let stats: Vec<String> = reader
        .fix_stats()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}: offered {} applied {} resolved {} reverted {} dismissed {}",
                r.provider, r.model, r.category, r.offered, r.applied, r.resolved, r.reverted, r.dismissed
            )
        })
        .collect();
    assert_eq!(
        stats,
        [
            "anthropic haiku type: offered 1 applied 0 resolved 0 reverted 0 dismissed 0",
            "anthropic sonnet type: offered 2 applied 3 resolved 2 reverted 1 dismissed 1",
        ]
    );
    let past: Vec<(String, i64, Outcome)> =
        reader.past_fixes("fp1", 10).unwrap().into_iter().map(|f| (f.fix_id, f.at_ms, f.outcome)).collect();
    assert_eq!(past, [("d".to_owned(), 41, Outcome::Resolved), ("a".to_owned(), 11, Outcome::Applied)]);
    assert_eq!(reader.past_fixes("fp1", 1).unwrap(), vec![fix("d", 41, Outcome::Resolved)]);
    assert!(reader.past_fixes("unknown", 10).unwrap().is_empty());
}

/// Two clones of one repository (two handles with its identity) learn from each other's fixes;
/// another repository on the same database sees none of them.
fn fix_outcomes_are_shared_by_clones_and_not_across_repositories(cluster: &PgCluster) {
    let engine = Engine::postgres(cluster);
    let clone_a = engine.pg(REPOSITORY);
    let clone_b = engine.pg(REPOSITORY);
    let other = engine.pg("github.com/acme/other");
    clone_a.record_fix(fix("a", 1, Outcome::Applied)).unwrap();
    clone_a.record_fix(fix("a", 2, Outcome::Resolved)).unwrap();
    assert_eq!(clone_b.past_fixes("fp1", 5).unwrap(), vec![fix("a", 2, Outcome::Resolved)]);
    assert_eq!(FixLog::fix_stats(&clone_b).unwrap().len(), 1);
    assert!(other.past_fixes("fp1", 5).unwrap().is_empty());
    assert!(FixLog::fix_stats(&other).unwrap().is_empty());
}
