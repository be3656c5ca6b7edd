//! `ai.ask` and `ai.review` through the real escalation providers (`EscalatorAi` over
//! `Escalator::ask`) against the fake provider on 127.0.0.1: a budget refuses before anything is
//! sent, the actual cost is recorded in a real store, replies are cached, secrets are redacted,
//! JSON is asked for with the provider's own mechanism, and cancelling a run stops the request.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use acas::config::Escalation;
use acas::escalate::config::{HttpProviderConfig, ProviderConfig};
use acas::escalate::cost::PriceTable;
use acas::escalate::engine::Escalator;
use acas::store::{CostRow, Store, StoreOptions};
use acas::workflow::actions::{self, ActionContext, Editor, EscalatorAi};
use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Bound on any wait; never reached when the code under test works.
const BOUND: Duration = Duration::from_secs(30);
const SECRET: &str = "sk-ant-api03-Zq8xP1mNw4TvY7uBc2LdK9eRf5GhJ3sAa0";

struct NoEditor;

impl Editor for NoEditor {
    fn notify(&self, _: &str, _: &str) {}
    fn diagnostic(&self, _: &str, _: u32, _: u32, _: &str, _: &str) {}
}

/// A workspace with a store, and the fake as its only provider, under a workspace daily budget
/// in micro-dollars when given.
fn setup(fake: &FakeProvider, daily: Option<u64>) -> (tempfile::TempDir, Store, ActionContext) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_workspace(dir.path(), StoreOptions::default()).unwrap();
    let mut config = Escalation {
        providers: vec![ProviderConfig::Openai(HttpProviderConfig {
            name: "primary".into(),
            base_url: Some(fake.base_url()),
            model: Some("gpt-4o-mini".into()),
            api_key_env: Some("ACAS_FAKE_KEY".into()),
            timeout_secs: Some(30),
            idle_timeout_secs: None,
        })],
        ..Escalation::default()
    };
    config.budget.workspace.daily = daily;
    let key = fake.api_key();
    let env = move |name: &str| (name == "ACAS_FAKE_KEY").then(|| key.clone());
    let escalator = Escalator::new(&config, &env, Some(store.clone()), None).unwrap();
    let ctx = ActionContext {
        workspace: dir.path().to_path_buf(),
        run_id: "run".into(),
        step_id: "step".into(),
        cancel: CancellationToken::new(),
        editor: Arc::new(NoEditor),
        ai: Some(Arc::new(EscalatorAi(Arc::new(escalator)))),
        planner: Arc::new(acas::workflow::planner::PlanAction),
        templates: acas::workflow::template::TemplateLimits::default(),
        hosts: None,
    };
    (dir, store, ctx)
}

async fn run(ctx: &ActionContext, action: &str, with: Value) -> Result<Value, String> {
    let with = with.as_object().unwrap().clone();
    actions::run(action, &with, ctx).await.map_err(|e| e.message)
}

fn costs(store: &Store) -> Vec<CostRow> {
    store.flush().unwrap();
    store.cost_report(0).unwrap()
}

#[tokio::test]
async fn the_budget_refuses_before_anything_is_sent() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::text("never sent"));
    let (_dir, store, ctx) = setup(&fake, Some(1));
    let error = run(&ctx, "ai.ask", json!({"prompt": "Why is the build slow?"})).await.unwrap_err();
    assert!(
        error.starts_with(
            "no provider could answer: primary: the workspace daily budget of $0.000001 would be exceeded"
        ),
        "{error}"
    );
    assert!(fake.requests().is_empty());
    let rows = costs(&store);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].refused, rows[0].calls, rows[0].cost_micros), (1, 0, 0));
    assert_eq!(rows[0].category, "workflow");
    assert_eq!(store.spend_since(0, None).unwrap(), 0);
}

#[tokio::test]
async fn answers_are_budgeted_recorded_cached_and_redacted() {
    let fake = FakeProvider::start(Format::OpenAi);
    let usage = FakeUsage { input_tokens: 1000, output_tokens: 200, cached_input_tokens: 0 };
    fake.push(Reply::Text { text: "Cache the dependency build.".into(), usage });
    // A daily budget of $1 leaves room for this request.
    let (_dir, store, ctx) = setup(&fake, Some(1_000_000));
    let prompt = format!("Why is the build slow? token = {SECRET}");
    let first = run(&ctx, "ai.ask", json!({"prompt": prompt})).await.unwrap();
    let price = PriceTable::shipped().lookup("gpt-4o-mini", None).price();
    let micros = price.cost(1000, 0, 200);
    assert!(micros > 0);
    assert_eq!(
        first,
        json!({
            "text": "Cache the dependency build.", "json": null, "provider": "primary", "model": "gpt-4o-mini",
            "input_tokens": 1000, "output_tokens": 200, "cost_usd": micros as f64 / 1e6, "cached": false,
        })
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    assert!(!sent.contains(SECRET), "{sent}");
    assert!(sent.contains("[REDACTED:anthropic]"), "{sent}");
    assert_eq!(store.spend_since(0, None).unwrap(), micros);

    // The same question again: from the cache, free, nothing sent.
    let again = run(&ctx, "ai.ask", json!({"prompt": prompt})).await.unwrap();
    assert_eq!(
        (again["text"].clone(), again["cached"].clone(), again["cost_usd"].clone()),
        (first["text"].clone(), json!(true), json!(0.0))
    );
    assert_eq!(fake.requests().len(), 1);
    let rows = costs(&store);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].calls, rows[0].cached, rows[0].cost_micros), (1, 1, micros));
    assert_eq!((rows[0].input_tokens, rows[0].output_tokens), (1000, 200));
}

#[tokio::test]
async fn json_and_reviews_go_through_the_providers() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::text(r#"{"risky": false}"#));
    fake.push(Reply::text("The loop never ends when n is 0."));
    let (dir, _store, ctx) = setup(&fake, None);
    let schema =
        json!({"type": "object", "properties": {"risky": {"type": "boolean"}}, "required": ["risky"]});
    let got = run(&ctx, "ai.ask", json!({"prompt": "Is this risky?", "json": schema})).await.unwrap();
    assert_eq!(got["json"], json!({"risky": false}));
    assert_eq!(fake.requests()[0].body["response_format"]["json_schema"]["schema"], schema);

    write(dir.path(), "src/count.py", "while n != 0:\n    n -= 2\n");
    write(dir.path(), ".env", &format!("KEY={SECRET}\n"));
    let got = run(&ctx, "ai.review", json!({"path": "src/count.py"})).await.unwrap();
    assert_eq!(
        (got["text"].clone(), got["path"].clone()),
        (json!("The loop never ends when n is 0."), json!("src/count.py"))
    );
    assert!(fake.requests()[1].body.to_string().contains("n -= 2"));
    let refused = run(&ctx, "ai.review", json!({"path": ".env"})).await.unwrap_err();
    assert_eq!(refused, "`.env` matches the no_egress globs, so nothing from it is sent");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn cancelling_the_run_stops_a_request_in_flight() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::Hang);
    let (_dir, store, ctx) = setup(&fake, None);
    let cancel = ctx.cancel.clone();
    let asking = tokio::spawn(async move { run(&ctx, "ai.ask", json!({"prompt": "Take your time"})).await });
    // Wait, within the bound, for the request to reach the fake, then cancel.
    let deadline = tokio::time::Instant::now() + BOUND;
    while fake.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let got = tokio::time::timeout(BOUND, asking).await.unwrap().unwrap();
    assert_eq!(got.unwrap_err(), "cancelled");
    // The reservation ends as a cancelled call: nothing stays reserved against the budgets.
    let rows = costs(&store);
    assert_eq!((rows[0].calls, rows[0].cost_micros), (1, 0), "{rows:?}");
    assert_eq!(store.spend_since(0, None).unwrap(), 0);
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn text_read_from_a_no_egress_file_is_not_sent_whatever_way_it_came() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::text("never sent"));
    let (dir, _store, ctx) = setup(&fake, None);
    write(dir.path(), ".env", "DB_PASSWORD=hunter2hunter2\nAPP_SEED=Qm7vT3kLp9Xz\nSIGNING=Hy4nB8cVq2Wm5Rt\n");
    // What `file.read` of `.env` gives a later step's template.
    let read = run(&ctx, "file.read", json!({"path": ".env"})).await.unwrap();
    let content = read["content"].as_str().unwrap().to_owned();
    let prompt = format!("Review:\n{content}");
    for (action, with) in [
        ("ai.ask", json!({"prompt": prompt})),
        ("ai.review", json!({"content": content})),
        ("ai.ask", json!({"prompt": "Is this seed fine: Qm7vT3kLp9Xz"})),
    ] {
        let error = run(&ctx, action, with).await.unwrap_err();
        assert!(
            error.contains("holds text of `.env`, which matches the no_egress globs"),
            "{action}: {error}"
        );
    }
    assert!(fake.requests().is_empty(), "nothing reached the provider");
    // Text that is not the file's still goes.
    fake.push(Reply::text("fine"));
    run(&ctx, "ai.ask", json!({"prompt": "Why is the build slow?"})).await.unwrap();
}
