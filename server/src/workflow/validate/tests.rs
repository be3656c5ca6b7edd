use std::path::{Path, PathBuf};

use chrono::TimeZone;
use expect_test::expect_file;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/workflows")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| is_yaml(p)).collect();
    files.sort();
    files
}

/// One line per problem: `line:column-line:column severity: message`.
fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            format!(
                "{}:{}-{}:{} {}: {}\n",
                p.line,
                p.column,
                p.end_line,
                p.end_column,
                p.severity.as_str(),
                p.message
            )
        })
        .collect()
}

/// Every file under `fixtures/workflows/invalid/` has its expected problems beside it in
/// `<file>.expect`, and at least one of them is an error.
#[test]
fn invalid_fixtures_report_located_problems() {
    let files = yaml_files(&fixtures().join("invalid"));
    assert!(files.len() >= 15, "expected a fixture per kind of problem, found {}", files.len());
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let (_, problems) = check(&file, &source);
        assert!(problems.iter().any(Problem::is_error), "{} has no error", file.display());
        assert!(problems.iter().all(|p| p.file == file && p.line >= 1 && p.column >= 1));
        assert!(problems.iter().all(|p| !p.message.ends_with('.')), "{problems:#?}");
        let snapshot = PathBuf::from(format!("{}.expect", file.display()));
        expect_file![snapshot].assert_eq(&render(&problems));
    }
}

/// Valid fixtures have no problems at all, and load.
#[test]
fn valid_fixtures_are_clean() {
    let files = yaml_files(&fixtures().join("valid"));
    assert!(files.len() >= 3);
    for file in files {
        let workflow = load_file(&file).unwrap_or_else(|p| panic!("{}:\n{}", file.display(), render(&p)));
        let source = std::fs::read_to_string(&file).unwrap();
        assert_eq!(check(&file, &source).1, Vec::new(), "{}", file.display());
        assert_eq!(workflow.hash, parse::hash(source.as_bytes()));
        assert_eq!(workflow.source, source);
    }
}

/// The example of the documentation reads as it says.
#[test]
fn the_full_example_parses_into_the_model() {
    use crate::workflow::definition::*;
    let file = fixtures().join("valid/review_on_save.yaml");
    let w = load_file(&file).unwrap();
    assert_eq!(w.name, "review-on-save");
    let fc = w.on.file_change.as_ref().unwrap();
    assert_eq!(fc.paths, ["src/**/*.py"]);
    assert_eq!(fc.events, [FileEventKind::Created, FileEventKind::Modified]);
    assert_eq!(fc.debounce, std::time::Duration::from_millis(500));
    assert_eq!(
        w.on.schedule,
        [ScheduleTrigger { cron: "0 9 * * 1-5".into(), timezone: Some("Europe/Berlin".into()) }]
    );
    let d = w.on.diagnostic.as_ref().unwrap();
    assert_eq!((d.category.as_deref(), d.severity.as_deref()), (Some("type"), Some("error")));
    assert_eq!(d.persists, std::time::Duration::from_secs(30));
    assert_eq!(w.on.escalation, Some(EscalationTrigger { outcome: EscalationOutcome::Failed }));
    assert!(w.on.manual);
    assert_eq!(w.inputs["who"].default, Some(serde_json::json!("world")));
    assert_eq!(
        w.on.webhook,
        Some(WebhookTrigger {
            path: "/hooks/review".into(),
            secret_env: "ACAS_WEBHOOK_SECRET".into(),
            scheme: Default::default()
        })
    );
    assert_eq!(w.concurrency, Some(Concurrency { group: "review".into(), cancel_in_progress: true }));
    assert_eq!(w.max_parallel, 4);
    let ids: Vec<&str> = w.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["read", "lint", "review", "tell"]);
    let lint = &w.steps[1];
    assert_eq!(
        lint.kind,
        StepKind::Argv {
            argv: vec!["ruff".into(), "check".into(), "{{ trigger.path }}".into()],
            env: Default::default(),
            cwd: None
        }
    );
    assert_eq!(lint.timeout, Some(std::time::Duration::from_secs(60)));
    assert_eq!(
        lint.retry,
        RetryPolicy {
            attempts: 3,
            backoff: Backoff::Exponential,
            delay: std::time::Duration::from_secs(1),
            max_delay: std::time::Duration::from_secs(30)
        }
    );
    assert!(lint.continue_on_error);
    let review = &w.steps[2];
    assert_eq!(review.needs, ["read", "lint"]);
    assert_eq!(review.condition.as_deref(), Some("{{ steps.lint.outcome == 'failure' }}"));
    let StepKind::Uses { action, with } = &review.kind else { panic!("{:?}", review.kind) };
    assert_eq!(action, "ai.ask");
    assert_eq!(with["prompt"], "Review:\n{{ steps.read.output.content }}");
    assert_eq!(w.steps[3].condition.as_deref(), Some("always()"));
    assert_eq!((w.steps[0].line, w.steps[0].column), (11, 9));
}

#[test]
fn a_directory_loads_valid_workflows_and_reports_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(WORKFLOWS_DIR);
    std::fs::create_dir_all(&workflows).unwrap();
    let ok = "name: same\nsteps:\n  - id: a\n    run: [\"true\"]\n";
    std::fs::write(workflows.join("a.yaml"), ok).unwrap();
    std::fs::write(workflows.join("b.yml"), ok).unwrap();
    std::fs::write(workflows.join("c.yaml"), "name: broken\nsteps: 3\n").unwrap();
    std::fs::write(workflows.join("notes.txt"), "not a workflow").unwrap();
    let (loaded, problems) = load_dir(dir.path());
    assert_eq!(
        loaded.iter().map(|w| w.file.file_name().unwrap().to_str().unwrap()).collect::<Vec<_>>(),
        ["a.yaml"]
    );
    let rendered: Vec<String> = problems
        .iter()
        .map(|p| {
            format!("{}:{}:{} {}", p.file.file_name().unwrap().to_str().unwrap(), p.line, p.column, p.message)
        })
        .collect();
    assert_eq!(
        rendered,
        [
            "b.yml:1:7 workflow name `same` is already used by a.yaml; rename one of them",
            "c.yaml:2:8 `steps` must be a list of steps, not `3`",
        ]
    );
    assert!(is_workflow_file(dir.path(), &workflows.join("a.yaml")));
    assert!(!is_workflow_file(dir.path(), &workflows.join("notes.txt")));
    assert!(!is_workflow_file(dir.path(), &dir.path().join("a.yaml")));
    assert_eq!(load_dir(&dir.path().join("nowhere")), (Vec::new(), Vec::new()));
}

#[test]
fn next_runs_follow_the_time_zone() {
    let after = Utc.with_ymd_and_hms(2025, 3, 28, 12, 0, 0).unwrap(); // a Friday
    let runs = next_runs("0 9 * * 1-5", Some("Europe/Berlin"), after, 3).unwrap();
    let shown: Vec<String> = runs.iter().map(|r| r.to_rfc3339()).collect();
    // Summer time starts on Sunday 30 March 2025.
    assert_eq!(
        shown,
        ["2025-03-31T09:00:00+02:00", "2025-04-01T09:00:00+02:00", "2025-04-02T09:00:00+02:00"]
    );
    let utc = next_runs("*/30 * * * * *", None, after, 2).unwrap();
    assert_eq!(
        utc.iter().map(|r| r.to_rfc3339()).collect::<Vec<_>>(),
        ["2025-03-28T12:00:30+00:00", "2025-03-28T12:01:00+00:00"]
    );
    assert!(next_runs("0 9 * *", None, after, 1).unwrap_err().message.contains("has 4 fields"));
    assert!(
        next_runs("0 9 * * *", Some("Mars/Olympus"), after, 1)
            .unwrap_err()
            .message
            .contains("unknown time zone")
    );
}

#[test]
fn hover_on_a_cron_value_shows_the_next_three_runs() {
    let after = Utc.with_ymd_and_hms(2025, 1, 6, 10, 0, 0).unwrap(); // a Monday
    let source = "name: x\non:\n  schedule:\n    - cron: \"0 9 * * 1-5\"\n      timezone: America/New_York\n    - cron: \"@daily\"\nsteps:\n  - id: a\n    run: [\"true\"]\n";
    let (span, text) = cron_hover(source, Pos { line: 4, column: 16 }, after).unwrap();
    assert_eq!(span, Span { start: Pos { line: 4, column: 13 }, end: Pos { line: 4, column: 26 } });
    expect_test::expect![[r#"
        **Schedule** `0 9 * * 1-5`: next runs (America/New_York)

        - Mon 2025-01-06 09:00:00 EST (2025-01-06 14:00:00 UTC)
        - Tue 2025-01-07 09:00:00 EST (2025-01-07 14:00:00 UTC)
        - Wed 2025-01-08 09:00:00 EST (2025-01-08 14:00:00 UTC)"#]]
    .assert_eq(&text);
    let (_, daily) = cron_hover(source, Pos { line: 6, column: 15 }, after).unwrap();
    assert!(daily.contains("- Tue 2025-01-07 00:00:00 UTC"), "{daily}");
    assert_eq!(cron_hover(source, Pos { line: 5, column: 20 }, after), None);
    assert_eq!(cron_hover(source, Pos { line: 1, column: 7 }, after), None);
}

/// A workflow built in code (as a generated plan is) is checked with its steps' positions.
#[test]
fn workflows_without_source_are_validated_too() {
    let file = fixtures().join("valid/review_on_save.yaml");
    let mut w = load_file(&file).unwrap();
    w.source.clear();
    w.steps[2].needs = vec!["read".into(), "nope".into()];
    let problems = validate(&w);
    let (line, column) = (w.steps[2].line, w.steps[2].column);
    let rendered: Vec<String> =
        problems.iter().map(|p| format!("{}:{} {}", p.line, p.column, p.message)).collect();
    assert_eq!(
        rendered,
        [
            format!("{line}:{column} step `review` needs `nope`, which is not a step of this workflow"),
            format!(
                "{line}:{column} step `review` reads `steps.lint` but does not depend on it; add `lint` to its `needs`"
            ),
        ]
    );
}

/// Every prefix of every fixture (what an editor sees while the file is typed) is checked
/// without a panic, and every problem is located inside the text.
#[test]
fn every_prefix_of_every_fixture_is_checked_without_panic() {
    let mut files = yaml_files(&fixtures().join("valid"));
    files.extend(yaml_files(&fixtures().join("invalid")));
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let lines = source.lines().count() as u32 + 1;
        for (end, _) in source.char_indices() {
            let prefix = &source[..end];
            let (_, problems) = check(&file, prefix);
            for p in &problems {
                assert!(
                    p.line >= 1 && p.line <= lines && p.column >= 1,
                    "{}: {p:?} in {prefix:?}",
                    file.display()
                );
            }
            if prefix.ends_with('\n') {
                let _ = cron_hover(prefix, Pos { line: 4, column: 10 }, Utc::now());
            }
        }
    }
}

/// `runs_on` on the workflow applies to every step without its own; labels are sorted once.
#[test]
fn runs_on_labels_parse_per_workflow_and_step() {
    let w = load_file(&fixtures().join("valid/runs_on.yaml")).unwrap();
    assert_eq!(w.runs_on, ["linux"]);
    assert_eq!(w.labels_of(&w.steps[0]), ["linux"]);
    assert_eq!(w.labels_of(&w.steps[1]), ["gpu", "linux"]);
    assert_eq!(w.steps[0].runs_on, None);
}
