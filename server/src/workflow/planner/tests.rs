use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::workflow::actions::{AiAnswer, AiError, AiErrorKind};
use crate::workflow::definition::StepKind;

/// Answers from a script, in order, and remembers every prompt. It stands in for the providers
/// only to drive the planner's branches; the providers themselves are tested against the fake
/// provider server (`tests/tests/plan.rs` runs the planner through them).
pub(crate) struct Scripted {
    replies: Mutex<VecDeque<Result<String, String>>>,
    asked: Mutex<Vec<(String, Option<Value>)>>,
}

impl Scripted {
    pub(crate) fn new(replies: Vec<Result<String, String>>) -> Scripted {
        Scripted { replies: Mutex::new(replies.into()), asked: Mutex::new(Vec::new()) }
    }

    fn prompts(&self) -> Vec<String> {
        self.asked.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }
}

impl Ai for Scripted {
    fn ask<'a>(
        &'a self,
        _system: &'a str,
        prompt: &'a str,
        json_schema: Option<Value>,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<AiAnswer, AiError>> {
        self.asked.lock().unwrap().push((prompt.to_owned(), json_schema));
        let reply = self.replies.lock().unwrap().pop_front().unwrap_or_else(|| Err("no more replies".into()));
        Box::pin(async move {
            reply.map_err(|message| AiError::new(AiErrorKind::Failed, message)).map(|text| AiAnswer {
                text,
                provider: "p".into(),
                model: "m".into(),
                input_tokens: 10,
                output_tokens: 20,
                cost_usd: 0.25,
                cached: false,
            })
        })
    }
}

/// A `run` task echoing its id.
fn echo(id: &str, needs: &[&str], priority: i64) -> Value {
    json!({"id": id, "name": format!("Task {id}"), "description": "", "action": "run",
           "with": {"argv": ["echo", id]}, "needs": needs, "priority": priority})
}

pub(crate) fn reply(tasks: &[Value]) -> Result<String, String> {
    Ok(json!({ "tasks": tasks }).to_string())
}

fn plan_with(
    replies: Vec<Result<String, String>>,
    options: PlanOptions,
) -> (Result<Plan, PlanError>, Scripted) {
    let ai = Scripted::new(replies);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let plan = runtime.block_on(generate_with(&ai, "do the work", options, &CancellationToken::new()));
    (plan, ai)
}

fn plan(replies: Vec<Result<String, String>>) -> (Result<Plan, PlanError>, Scripted) {
    plan_with(replies, PlanOptions::default())
}

/// `id: needs` of each task.
fn shape(plan: &Plan) -> Vec<String> {
    plan.tasks.iter().map(|t| format!("{}: {}", t.id, t.needs.join(","))).collect()
}

#[test]
fn replies_are_checked_against_the_schema_and_the_workflow_rules() {
    let task = |id: &str, action: &str, with: Value, needs: &[&str]| json!({"id": id, "name": id, "description": "", "action": action, "with": with, "needs": needs, "priority": 1});
    let cases: Vec<Value> = vec![
        json!("not json {"),
        json!({"steps": []}),
        json!({"tasks": [task("a", "file.reed", json!({}), &[])]}),
        json!({"tasks": [task("a", "run", json!({"cmd": "ls"}), &[])]}),
        json!({"tasks": [{"id": "1a", "name": "A", "description": "", "action": "git.status", "with": {}, "needs": []}]}),
        json!({"tasks": [echo("a", &[], 1), echo("a", &[], 2)]}),
        json!({"tasks": [echo("a", &["zz"], 1)]}),
        json!({"tasks": [echo("a", &[], 1), task("b", "file.read", json!({"paht": "x"}), &["a"])]}),
        json!({"tasks": [echo("a", &[], 1),
                         task("b", "file.write", json!({"path": "x", "content": "{{ steps.a.output.stdout }}"}), &[])]}),
        json!({"tasks": [task("a", "git.status", json!({}), &[]), task("b", "ai.plan", json!({"prompt": "more"}), &[])]}),
    ];
    let mut got = String::new();
    for reply in cases {
        let text = reply.as_str().map_or_else(|| reply.to_string(), str::to_owned);
        got.push_str(&format!("{}\n", &text[..text.len().min(60)]));
        for problem in check::check(&text).expect_err(&text) {
            got.push_str(&format!("  {problem}\n"));
        }
    }
    expect_test::expect![[r#"
        not json {
          the reply is not JSON: expected ident at line 1 column 2
        {"steps":[]}
          the plan: Additional properties are not allowed ('steps' was unexpected)
          the plan: "tasks" is a required property
        {"tasks":[{"action":"file.reed","description":"","id":"a","n
          `/tasks/0/action`: "file.reed" is not one of "file.read", "file.write" or 19 other candidates
        {"tasks":[{"action":"run","description":"","id":"a","name":"
          `/tasks/0/with`: Additional properties are not allowed ('cmd' was unexpected)
          `/tasks/0/with`: "argv" is a required property
        {"tasks":[{"action":"git.status","description":"","id":"1a",
          `/tasks/0`: "priority" is a required property
          `/tasks/0/id`: "1a" does not match "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
        {"tasks":[{"action":"run","description":"","id":"a","name":"
          task id `a` is used more than once; give every task an id of its own
        {"tasks":[{"action":"run","description":"","id":"a","name":"
          task `a`: step `a` needs `zz`, which is not a step of this workflow
        {"tasks":[{"action":"run","description":"","id":"a","name":"
          task `b`: `file.read` needs `path`
          task `b`: `file.read` has no parameter `paht`; did you mean `path`?
        {"tasks":[{"action":"run","description":"","id":"a","name":"
          task `b`: step `b` reads `steps.a` but does not depend on it; add `a` to its `needs`
        {"tasks":[{"action":"git.status","description":"","id":"a","
          `/tasks/1/action`: "ai.plan" is not one of "file.read", "file.write" or 19 other candidates
    "#]]
    .assert_eq(&got);
    // A cycle is not a problem of the reply: the planner breaks it.
    let cyclic = json!({"tasks": [echo("a", &["b"], 1), echo("b", &["a"], 1)]}).to_string();
    assert_eq!(check::check(&format!("```json\n{cyclic}\n```")).unwrap().len(), 2);
}

#[test]
fn an_invalid_reply_is_repaired_once_with_its_problems() {
    let invalid = reply(&[echo("a", &["nothing"], 1)]);
    let valid = reply(&[echo("a", &[], 1), echo("b", &["a"], 2)]);
    let (plan, ai) = plan(vec![invalid.clone(), valid]);
    let plan = plan.unwrap();
    assert_eq!(shape(&plan), ["a: ", "b: a"]);
    let problem = "task `a`: step `a` needs `nothing`, which is not a step of this workflow";
    assert_eq!(plan.notes, [Note::Repaired { problems: vec![problem.into()] }]);
    assert_eq!((plan.calls, plan.cost_usd), (2, 0.5));
    let prompts = ai.prompts();
    assert!(prompts[0].contains("The work:\ndo the work"), "{}", prompts[0]);
    assert!(prompts[1].contains(&format!("It has these problems:\n- {problem}")), "{}", prompts[1]);
    assert!(prompts[1].contains(invalid.as_ref().unwrap()));
    assert!(ai.asked.lock().unwrap().iter().all(|(_, s)| s.as_ref() == Some(&schema())));

    let (error, _) = self::plan(vec![Ok("nope".into()), reply(&[echo("a", &["a", "zz"], 1)])]);
    let error = error.unwrap_err();
    assert_eq!(error.kind, PlanErrorKind::Invalid);
    assert_eq!(error.problems, ["task `a`: step `a` needs `zz`, which is not a step of this workflow"]);
    assert!(
        error
            .to_string()
            .starts_with("the plan is still invalid after asking the model to repair it\n  - task `a`"),
        "{error}"
    );

    let (error, _) = self::plan(vec![Err("no provider could answer: p: down".into())]);
    let error = error.unwrap_err();
    assert_eq!(
        (error.kind, error.message.as_str()),
        (PlanErrorKind::Provider, "asking for a plan: no provider could answer: p: down")
    );
}

#[test]
fn identical_tasks_are_merged_and_their_dependents_follow() {
    let write = |id: &str, needs: &[&str], priority: i64, with: Value| {
        json!({"id": id, "name": id, "description": "", "action": "file.append", "with": with,
               "needs": needs, "priority": priority})
    };
    let (plan, _) = plan(vec![reply(&[
        echo("setup", &[], 1),
        write("log", &[], 1, json!({"path": "log.txt", "content": "x"})),
        echo("other", &[], 1),
        // Same action and inputs as `log`, keys in another order.
        write("log2", &["other", "setup"], 5, json!({"content": "x", "path": "log.txt"})),
        {
            let mut t = echo("after", &["log2"], 1);
            t["with"]["argv"] = json!(["echo", "{{ steps.log2.output.path }}"]);
            t
        },
    ])]);
    let plan = plan.unwrap();
    assert_eq!(shape(&plan), ["setup: ", "log: other,setup", "other: ", "after: log"]);
    assert_eq!(plan.tasks[1].priority, 5);
    assert_eq!(plan.tasks[3].with["argv"][1], "{{ steps.log.output.path }}");
    let print = fingerprint(&plan.tasks[1]);
    assert_eq!(print.len(), 16);
    assert_eq!(plan.notes, [Note::Merged { kept: "log".into(), dropped: "log2".into(), fingerprint: print }]);
    assert_eq!(
        plan.notes[0].to_string(),
        "`log2` does what `log` does (same action and inputs): merged into `log`"
    );
}

/// a needs b and d, b needs c, c needs a, d needs c: dropping the lowest-priority edge of the
/// one cycle a depth-first search meets (a -> b -> c -> a, where b is lowest) leaves
/// a -> d -> c -> a.
fn tangled() -> Result<String, String> {
    reply(&[echo("a", &["b", "d"], 5), echo("b", &["c"], 1), echo("c", &["a"], 4), echo("d", &["c"], 3)])
}

#[test]
fn a_cycle_is_broken_at_its_lowest_priority_edge() {
    let (plan, ai) = plan(vec![reply(&[echo("a", &[], 3), echo("b", &["a", "c"], 2), echo("c", &["b"], 1)])]);
    let plan = plan.unwrap();
    assert_eq!(shape(&plan), ["a: ", "b: a,c", "c: "]);
    assert_eq!(
        plan.notes,
        [Note::Cycles {
            strategy: CycleStrategy::DroppedEdges,
            cycles: vec!["b -> c -> b".into()],
            dropped: vec![Edge { task: "c".into(), needs: "b".into() }],
            tried: vec![],
        }]
    );
    assert_eq!(
        plan.notes[0].to_string(),
        "dependency cycles b -> c -> b: dropped the lowest-priority edge of each cycle; removed `c` needs `b`"
    );
    assert_eq!(ai.prompts().len(), 1);
}

#[test]
fn when_dropping_edges_is_not_enough_the_model_is_asked() {
    let acyclic =
        reply(&[echo("a", &["b", "d"], 5), echo("b", &["c"], 1), echo("c", &[], 4), echo("d", &["c"], 3)]);
    let (plan, ai) = plan(vec![tangled(), acyclic]);
    let plan = plan.unwrap();
    assert_eq!(shape(&plan), ["a: b,d", "b: c", "c: ", "d: c"]);
    assert_eq!(
        plan.notes,
        [Note::Cycles {
            strategy: CycleStrategy::AskedModel,
            cycles: vec!["a -> b -> c -> a".into()],
            dropped: vec![Edge { task: "c".into(), needs: "a".into() }],
            tried: vec![
                "dropping the lowest-priority edge of each cycle left the cycles a -> d -> c -> a".into()
            ],
        }]
    );
    let prompts = ai.prompts();
    assert!(prompts[1].contains("This plan has dependency cycles (a -> b -> c -> a;"), "{}", prompts[1]);
}

#[test]
fn when_the_model_cannot_remove_the_cycles_priority_order_decides() {
    let expected = |tried: Vec<String>| {
        vec![Note::Cycles {
            strategy: CycleStrategy::PriorityOrder,
            cycles: vec!["a -> b -> c -> a".into()],
            dropped: vec![
                Edge { task: "a".into(), needs: "b".into() },
                Edge { task: "a".into(), needs: "d".into() },
            ],
            tried,
        }]
    };
    let left = "dropping the lowest-priority edge of each cycle left the cycles a -> d -> c -> a".to_owned();
    // The model answers with the same cycles.
    let (plan, _) = plan(vec![tangled(), tangled()]);
    let plan = plan.unwrap();
    assert_eq!(shape(&plan), ["a: ", "b: c", "c: a", "d: c"]);
    assert_eq!(
        plan.notes,
        expected(vec![
            left.clone(),
            "the model's plan without cycles could not be used: it still has the cycles a -> b -> c -> a"
                .into()
        ])
    );
    // The model fails.
    let (plan, _) = self::plan(vec![tangled(), Err("no provider could answer".into())]);
    let tried = &plan.unwrap().notes[0];
    assert!(
        matches!(tried, Note::Cycles { tried, .. } if tried[1].ends_with("asking for a plan: no provider could answer"))
    );
    // Asking is switched off, and so is dropping edges: priority order at once.
    let (plan, ai) = plan_with(vec![tangled()], PlanOptions { drop_edges: false, ask_model: false });
    assert_eq!(plan.unwrap().notes, expected(vec![]));
    assert_eq!(ai.prompts().len(), 1);
}

fn planned() -> Plan {
    let (plan, _) = plan(vec![reply(&[
        echo("first", &[], 2),
        json!({"id": "second", "name": "Append", "description": "Writes the log", "action": "file.append",
               "with": {"path": "log.txt", "content": "{{ steps.first.output.stdout }}"}, "needs": ["first"], "priority": 1}),
    ])]);
    plan.unwrap()
}

#[test]
fn a_plan_becomes_a_workflow_that_reads_back_from_its_text() {
    let plan = planned();
    let root = Path::new("/work/space");
    let workflow = plan.to_workflow(root, "plan-1").unwrap();
    assert_eq!(workflow.name, "plan-1");
    assert_eq!(workflow.file, root.join(".acas/plans/plan-1.json"));
    assert_eq!(workflow.source, plan.definition("plan-1"));
    assert_eq!(workflow.hash, crate::workflow::parse::hash(workflow.source.as_bytes()));
    assert_eq!(
        workflow.steps[0].kind,
        StepKind::Argv { argv: vec!["echo".into(), "first".into()], env: Default::default(), cwd: None }
    );
    assert_eq!(workflow.steps[0].name.as_deref(), Some("Task first"));
    let StepKind::Uses { action, with } = &workflow.steps[1].kind else { panic!("{:?}", workflow.steps[1]) };
    assert_eq!(
        (action.as_str(), Value::Object(with.clone())),
        ("file.append", json!({"path": "log.txt", "content": "{{ steps.first.output.stdout }}"}))
    );
    assert_eq!(workflow.steps[1].needs, ["first"]);
    assert!(crate::workflow::validate::validate(&workflow).is_empty());
    // What a resumed run reads back is the same workflow.
    let (reread, problems) = crate::workflow::validate::check(&workflow.file, &workflow.source);
    assert!(problems.iter().all(|p| !p.is_error()), "{problems:?}");
    assert_eq!(reread, Some(workflow));

    expect_test::expect![[r#"
        plan: 2 tasks for: do the work
        wave 1:
          first (Task first, priority 2): run: echo first
        wave 2:
          second (Append, priority 1): file.append {"content":"{{ steps.first.output.stdout }}","path":"log.txt"}
              Writes the log
              needs: first
        planning cost $0.2500 over 1 call"#]]
    .assert_eq(&plan.render());
    let json = plan.to_json();
    assert_eq!(json["tasks"][1]["needs"], json!(["first"]));
    assert_eq!(json["notes"], json!([]));
}

/// `ai.plan` returns the plan with the workflow that would run it, and runs nothing.
#[test]
fn the_plan_action_returns_plans_not_runs() {
    use crate::workflow::actions::tests::{context, run_with};
    let ws = tempfile::tempdir().unwrap();
    let reply = json!({"tasks": [{"id": "a", "name": "A", "description": "", "action": "run",
                                  "with": {"argv": ["touch", "ran"]}, "needs": [], "priority": 1}]});
    let ai = std::sync::Arc::new(Scripted::new(vec![Ok(reply.to_string())]));
    let mut ctx = context(ws.path());
    ctx.ai = Some(ai.clone());
    ctx.planner = std::sync::Arc::new(PlanAction);
    let got = run_with(&ctx, "ai.plan", json!({"prompt": "touch a file"})).ok();
    assert_eq!((got["tasks"][0]["id"].clone(), got["notes"].clone()), (json!("a"), json!([])));
    assert_eq!((got["cost_usd"].clone(), got["calls"].clone()), (json!(0.25), json!(1)));
    assert_eq!(got.get("prompt"), None);
    let definition = got["definition"].as_str().unwrap();
    assert!(definition.contains("\"name\": \"plan-run-step\""), "{definition}");
    assert!(!ws.path().join("ran").exists());
    assert_eq!(ai.asked.lock().unwrap()[0].1, Some(schema()));
    let mut without_ai = context(ws.path());
    without_ai.planner = std::sync::Arc::new(PlanAction);
    let got = run_with(&without_ai, "ai.plan", json!({"prompt": "x"})).err();
    assert!(got.starts_with("no AI provider is configured"), "{got}");
}
