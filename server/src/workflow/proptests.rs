//! Property tests: the workflow parser, the validator and the template renderer return a result
//! for any input, never panic, and end within their limits.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;

use super::template::{Status, TemplateLimits, Templates};
use super::validate;

/// Pieces of workflow files, glued in any order: valid and broken YAML, aliases, durations,
/// templates, cycles.
const YAML: &[&str] = &[
    "name: w\n",
    "steps:\n",
    "  - id: a\n",
    "  - id: b\n",
    "    run: [\"true\"]\n",
    "    run: { shell: \"echo {{ trigger.path }}\" }\n",
    "    uses: file.write\n",
    "    with: { path: out, content: \"{{ steps.a.output }}\" }\n",
    "    needs: [a]\n",
    "    needs: [b]\n",
    "    needs: b\n",
    "    if: \"{{ failure() }}\"\n",
    "    timeout: 1e300\n",
    "    timeout: 99999999999999999999w\n",
    "    timeout: -1s\n",
    "    retry: { attempts: 18446744073709551616, delay: 1e308 }\n",
    "    idempotent: maybe\n",
    "on:\n  schedule: { cron: \"0 9 * * *\", timezone: Mars/Olympus }\n",
    "on: { file_change: { paths: [\"[\"] } }\n",
    "x: &a [1, 2, 3]\n",
    "y: [*a, *a, *a]\n",
    "z: *nothing\n",
    "---\n",
    "{{",
    "{%",
    "}}",
    ": :",
    "- [",
    "\t",
    "\"\\u0000\"",
    "…",
];

/// Pieces of templates: loops, filters, macros, arithmetic, broken syntax.
const TEMPLATE: &[&str] = &[
    "{{ trigger.path }}",
    "{{ inputs.n * 99999999 }}",
    "{{ 'x' * 10**9 }}",
    "{% for i in range(100000) %}",
    "{% for c in 'x' * 99999 %}",
    "{% endfor %}",
    "{% if true %}",
    "{% endif %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}",
    "{{ f(0) }}",
    "{{ 'ab'|replace('a', 'aaaaaaaaaa') }}",
    "|replace('x', 'xxxxxxxxxx')",
    "|indent(99999999)",
    "|center(99999999)",
    "|join('')",
    "|tojson",
    " ~ ",
    "{{ ",
    " }}",
    "{%",
    "%}",
    "(",
    ")",
    "'x'",
    "1e308",
    "x",
    "\n",
];

fn glue(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_and_validator_answer_any_text(text in prop_oneof![glue(YAML), "\\PC{0,300}"]) {
        let (workflow, problems) = validate::check(Path::new("/w/.acas/workflows/w.yaml"), &text);
        // A workflow with errors is not given to the engine by the loader.
        if let Some(workflow) = workflow
            && !problems.iter().any(|p| p.is_error())
        {
            prop_assert!(!workflow.steps.is_empty());
        }
        for problem in &problems {
            prop_assert!(problem.line >= 1 && problem.column >= 1, "{problem:?}");
            prop_assert!(!problem.message.is_empty());
        }
    }

    #[test]
    fn the_renderer_answers_any_template_within_its_limits(source in prop_oneof![glue(TEMPLATE), "\\PC{0,200}"]) {
        let limits = TemplateLimits { fuel: 20_000, max_bytes: 64 * 1024, ..TemplateLimits::default() };
        let templates = Templates::new(limits);
        let ctx = json!({"trigger": {"path": "a b"}, "inputs": {"n": "xy"}, "steps": {}});
        if let Ok(text) = templates.render_str(&source, &ctx) {
            prop_assert!(text.len() <= limits.max_bytes);
        }
        let _ = templates.render_shell(&source, &ctx);
        let _ = templates.render_value(&json!({"v": source}), &ctx);
        let _ = templates.condition(&source, &ctx, Status::default());
        let _ = templates.references(&source, true);
    }
}

/// Constant expressions of strings, lists and small integers joined by the operators the
/// compiler folds: small enough to evaluate here whatever comes out.
fn constant() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("'ab'".to_owned()),
        Just("\"x\"".to_owned()),
        (0u32..10).prop_map(|n| n.to_string()),
        Just("[1, 'a']".to_owned()),
        Just("('q',)".to_owned()),
    ];
    atom.prop_recursive(4, 16, 2, |inner| {
        (inner.clone(), prop::sample::select(vec!["*", "~", "+", "and", "or", "=="]), inner)
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// What the constant check lets through folds to no more than the output limit: its bound is
    /// an upper bound of what the compiler builds.
    #[test]
    fn the_constant_check_bounds_what_folding_builds(expr in constant()) {
        let limits = TemplateLimits { max_bytes: 1000, ..TemplateLimits::default() };
        let templates = Templates::in_process(limits);
        let env = minijinja::Environment::new();
        let folded = env.compile_expression(&expr).and_then(|e| e.eval(()));
        let accepted = templates.references(&format!("{{{{ {expr} }}}}"), false).is_ok();
        if let Ok(value) = folded
            && accepted
        {
            prop_assert!(value.to_string().len() <= 1000, "{expr}: {} bytes", value.to_string().len());
        }
    }
}
