//! Workflows that try to escape their limits, through the real `acas` binary: hostile templates
//! fail their step with the limit that stopped them (with the process's address space capped, so
//! a render that is not bounded dies instead of eating the machine), huge durations and huge
//! definitions are refused with the real limit, and templated text keeps its trailing newline.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use acas_e2e::{TIMEOUT, acas_bin, run_acas};
use serde_json::Value;

/// The address space `acas` gets in these tests: far more than any limit allows a render, far
/// less than an unbounded one takes.
const ADDRESS_SPACE_KIB: u64 = 3 * 1024 * 1024;

fn workspace(workflows: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&folder).unwrap();
    for (name, text) in workflows {
        std::fs::write(folder.join(name), text).unwrap();
    }
    dir
}

/// Runs `acas ARGS` under `ulimit -v` and waits for it, at most [`TIMEOUT`]:
/// (exit code, or `None` when a signal ended it; stdout; stderr).
fn run_capped(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""))
        .arg(acas_bin())
        .args(args)
        .current_dir(dir)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting acas");
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok((out, err)) => (child.wait().unwrap().code(), out, err),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`acas {}` did not end within {TIMEOUT:?}", args.join(" "));
        }
    }
}

/// One workflow per hostile template, each a single step that echoes the template.
const HOSTILE: &[(&str, &str, &str)] = &[
    (
        "loops-over-long-strings",
        "{% for a in 'x' * 99999 %}{% for b in 'x' * 99999 %}{{ a }}{% endfor %}{% endfor %}",
        "template_fuel",
    ),
    // Constants (`'x' * 10**9`) are refused before the run: see
    // `validation_refuses_huge_constants_without_building_them`.
    ("multiply", "{% set s = 'x' %}{{ s * 10**9 }}", "template_max_bytes"),
    (
        "multiply-below-the-engine-cap",
        "{% set s = 'x' %}{{ s * 99999999 }}{{ s * 99999999 }}",
        "template_max_bytes",
    ),
    (
        "replace-chain",
        "{{ 'xx'|replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')\
         |replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')\
         |replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')\
         |replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx') }}",
        "template_max_bytes",
    ),
    ("macro-recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nests macros"),
    (
        "range",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "template_fuel",
    ),
];

/// Templates that double a value at every turn: each would need 2^64 bytes.
const DOUBLING: &[(&str, &str, &str)] = &[
    (
        "namespace-doubling",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}\
         {{ ns.s|length }}",
        "template_max_memory",
    ),
    (
        "macro-doubling",
        "{% macro d(s, n) %}{% if n == 0 %}{{ s|length }}{% else %}{{ d(s ~ s ~ s ~ s ~ s ~ s ~ s ~ s, n - 1) }}{% endif %}\
         {% endmacro %}{{ d('x', 11) }}",
        "template_max_memory",
    ),
    (
        "list-doubling",
        "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}\
         {{ ns.l|length }}",
        "template_max_memory",
    ),
];

/// Runs each case's workflow (one step that echoes the template) under `ulimit -v` and checks
/// that its step fails, once, with an error naming the case's limit.
fn each_fails_its_step(cases: &[(&str, &str, &str)]) {
    let files: Vec<(String, String)> = cases
        .iter()
        .map(|(name, template, _)| {
            let text = format!(
                "name: {name}\nsteps:\n  - id: render\n    run: [\"echo\", {}]\n",
                serde_json::to_string(template).unwrap()
            );
            (format!("{name}.yaml"), text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let dir = workspace(&refs);
    for (name, _, limit) in cases {
        let (code, stdout, stderr) = run_capped(&["workflow", "run", name, "--format", "json"], dir.path());
        assert_eq!(code, Some(1), "{name}: the run fails, the process does not die: {stdout}{stderr}");
        let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{name}: {e}: {stdout}"));
        assert_eq!(run["status"], "failed", "{name}: {run:#}");
        let step = &run["steps"][0];
        assert_eq!(step["status"], "failed", "{name}: {run:#}");
        assert_eq!(step["attempts"], 1, "{name}: a render past a limit is not retried: {run:#}");
        let error = step["error"].as_str().unwrap_or_default();
        assert!(error.contains(limit), "{name}: the error names `{limit}`: {error}");
    }
}

#[test]
fn hostile_templates_fail_their_step_with_the_limit_that_stopped_them() {
    each_fails_its_step(HOSTILE);
}

#[test]
fn doubling_templates_fail_their_step_at_the_memory_limit() {
    each_fails_its_step(DOUBLING);
}

/// A render that runs past its step's timeout: the step ends with the timeout, and the next
/// step (which runs while `acas` still does) finds no render process left.
#[test]
fn a_render_past_its_timeout_ends_on_time_and_leaves_no_render_process() {
    let mark = format!("ACAS_RENDER_TEST={}", std::process::id());
    let slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    // Polls /proc, at most 20 s, until no render process of this test is left.
    let check = format!(
        "for _ in $(seq 200); do found=; for p in /proc/[0-9]*; do \
         if [ \"$(tr '\\0' '\\n' < $p/cmdline 2>/dev/null | sed -n 2p)\" = __acas-render ] \
         && grep -qa {mark} $p/environ 2>/dev/null; \
         then found=$p; fi; done; [ -z \"$found\" ] && exit 0; sleep 0.1; done; echo left: $found; exit 1"
    );
    let text = format!(
        "name: slow\nsteps:\n  - id: render\n    timeout: 1s\n    run: [\"echo\", {}]\n\
         \x20 - id: check\n    needs: [render]\n    if: always()\n    run: {{ shell: {} }}\n",
        serde_json::to_string(slow).unwrap(),
        serde_json::to_string(&check).unwrap()
    );
    let dir = workspace(&[("slow.yaml", &text)]);
    std::fs::write(dir.path().join(".acas/config.toml"), "[workflows]\ntemplate_fuel = 1000000000000\n")
        .unwrap();
    let (key, value) = mark.split_once('=').unwrap();
    let output = Command::new(acas_bin())
        .args(["workflow", "run", "slow", "--format", "json"])
        .current_dir(dir.path())
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.path().join(".no-user-config"))
        .env(key, value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let render = &run["steps"][0];
    assert_eq!(render["status"], "failed", "{run:#}");
    let error = render["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 1s while rendering its templates"), "{error}");
    assert_eq!(run["steps"][1]["status"], "succeeded", "a render process was left behind: {run:#}");
}

#[test]
fn templated_text_keeps_its_trailing_newline() {
    let dir = workspace(&[(
        "write.yaml",
        "name: write\nsteps:\n  - id: write\n    uses: file.write\n    with: { path: out.txt, content: \"run {{ run.id }}\\n\" }\n",
    )]);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "write", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap();
    let written = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert_eq!(written, format!("run {}\n", run["run_id"]));
}

#[test]
fn huge_durations_are_refused_with_the_longest_allowed() {
    let dir = workspace(&[(
        "slow.yaml",
        "name: slow\ntimeout: 1e300\nsteps:\n  - id: a\n    run: [\"true\"]\n    timeout: 99999999999999999999999w\n",
    )]);
    let (code, stdout, stderr) = run_acas(&["workflow", "validate"], dir.path());
    assert_eq!(code, 1, "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(!all.contains("panicked"), "{all}");
    assert_eq!(all.matches("longer than the longest duration ACAS accepts (36500d)").count(), 2, "{all}");
}

/// `steps` long chains, each step needing the one before.
fn chain(steps: usize) -> String {
    let mut text = String::from("name: big\nsteps:\n");
    for i in 0..steps {
        text.push_str(&format!("  - id: s{i}\n    run: [\"true\", \"{{{{ run.id }}}}\"]\n"));
        if i > 0 {
            text.push_str(&format!("    needs: [s{}]\n", i - 1));
        }
    }
    text
}

#[test]
fn a_definition_over_a_limit_is_refused_naming_that_limit() {
    let too_many = chain(20_001);
    let dir = workspace(&[("big.yaml", &too_many)]);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "big"], dir.path());
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("more than the 20000 a workflow may have"), "{stderr}");
    assert!(!stderr.contains("aliases"), "{stderr}");

    let too_large = format!("{}# {}\n", chain(2), "x".repeat(9 * 1024 * 1024));
    let dir = workspace(&[("big.yaml", &too_large)]);
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "big"], dir.path());
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("more than the 8388608 bytes a workflow file may have"), "{stderr}");
    assert!(!stderr.contains("no workflow named"), "{stderr}");

    let aliases = "name: big\nx: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                   z: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nw: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                   v: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nsteps:\n  - id: a\n    run: [\"true\"]\n";
    let dir = workspace(&[("big.yaml", aliases)]);
    let (code, _, stderr) = run_acas(&["workflow", "run", "big"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("aliases in this file expand to more than 100000 YAML nodes"), "{stderr}");
}

#[test]
fn ten_thousand_steps_validate_within_bounded_memory() {
    let dir = workspace(&[("big.yaml", &chain(10_000))]);
    let (code, stdout, stderr) = run_capped(&["workflow", "validate"], dir.path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

/// Constants the template compiler would fold into huge values (`"x" * 100000000`, `[1] * N`,
/// `~` chains) are refused by validation, with where they are, before anything is compiled.
#[test]
fn validation_refuses_huge_constants_without_building_them() {
    let constants = [
        "{{ \"x\" * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ (\"ab\" * 50000000) ~ (\"cd\" * 50000000) }}",
        "{% for i in [0] * 100000000 %}{% endfor %}",
        "{{ 'x' * 10**9 }}",
        "{{ 'x' * 99999999 }}{{ 'x' * 99999999 }}",
    ];
    let mut text = String::from("name: fold\nsteps:\n");
    for i in 0..16 {
        let template = constants[i % constants.len()];
        text.push_str(&format!(
            "  - id: s{i}\n    run: [\"echo\", \"a\", {}]\n",
            serde_json::to_string(template).unwrap()
        ));
    }
    let dir = workspace(&[("fold.yaml", &text)]);
    let (code, stdout, stderr) = run_capped(&["workflow", "validate"], dir.path());
    let all = format!("{stdout}{stderr}");
    assert_eq!(code, Some(1), "validation reports the constants: {all}");
    assert_eq!(all.matches("template_max_bytes").count(), 16, "{all}");
    assert!(all.contains("the constant at line 1, column"), "{all}");
    // A syntax error still says where it is.
    let dir = workspace(&[(
        "broken.yaml",
        "name: broken\nsteps:\n  - id: a\n    run: [\"echo\", \"{{ 1 + }}\"]\n",
    )]);
    let (code, stdout, stderr) = run_capped(&["workflow", "validate"], dir.path());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(format!("{stdout}{stderr}").contains("syntax error at line 1"), "{stdout}{stderr}");
}

/// `data.transform` and the dry run render under the configured template limits, as a step does.
#[test]
fn every_render_obeys_the_configured_template_limits() {
    let map = "{% for i in range(5000) %}{% endfor %}{{ item }}";
    let transform = format!(
        "name: transform\nsteps:\n  - id: t\n    uses: data.transform\n    with: {{ input: [1], select: \"$[*]\", map: {{ v: {} }} }}\n",
        serde_json::to_string(map).unwrap()
    );
    let long = "name: long\nsteps:\n  - id: a\n    run: [\"echo\", \"{% for i in range(300) %}xxxxxxxxxx{% endfor %}\"]\n";
    let dir = workspace(&[("transform.yaml", &transform), ("long.yaml", long)]);
    std::fs::write(
        dir.path().join(".acas/config.toml"),
        "[workflows]\ntemplate_fuel = 1000\ntemplate_max_bytes = 1024\n",
    )
    .unwrap();
    let (code, stdout, stderr) =
        run_capped(&["workflow", "run", "transform", "--format", "json"], dir.path());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let error = run["steps"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("template_fuel"), "{run:#}");

    let (_, stdout, stderr) = run_capped(&["workflow", "run", "long", "--dry-run"], dir.path());
    assert!(format!("{stdout}{stderr}").contains("template_max_bytes"), "{stdout}{stderr}");
}

/// Render processes of all runs together: never more than `max_render_processes` at once; the
/// renders that wait for one still end with their step's timeout.
#[test]
fn render_processes_are_capped_in_total_and_waiting_renders_time_out() {
    let marker = format!("ACAS_RENDER_CAP_TEST={}", std::process::id());
    let slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let mut text = String::from("name: many\nmax_parallel: 6\nsteps:\n");
    for i in 0..6 {
        text.push_str(&format!(
            "  - id: r{i}\n    timeout: 3s\n    run: [\"echo\", {}]\n",
            serde_json::to_string(slow).unwrap()
        ));
    }
    let dir = workspace(&[("many.yaml", &text)]);
    std::fs::write(
        dir.path().join(".acas/config.toml"),
        "[workflows]\ntemplate_fuel = 1000000000000\nmax_render_processes = 2\n",
    )
    .unwrap();
    let (key, value) = marker.split_once('=').unwrap();
    let mut child = Command::new(acas_bin())
        .args(["workflow", "run", "many", "--format", "json"])
        .current_dir(dir.path())
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.path().join(".no-user-config"))
        .env(key, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The render processes of this test alive now.
    let renders = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
                cmdline.split(|b| *b == 0).nth(1) == Some(b"__acas-render".as_slice())
                    && environ.split(|b| *b == 0).any(|v| v == marker.as_bytes())
            })
            .count()
    };
    let mut most = 0;
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < TIMEOUT, "the run did not end within {TIMEOUT:?}");
        most = most.max(renders());
    }
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert!(most >= 1, "no render process was seen");
    assert!(most <= 2, "{most} render processes ran at once");
    let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for step in run["steps"].as_array().unwrap() {
        let error = step["error"].as_str().unwrap_or_default();
        assert!(error.contains("timed out after 3s while rendering its templates"), "{run:#}");
    }
}

/// An `if:` and `data.transform`'s `map` render under their step's timeout, and the workflow's
/// `env` under the run's timeout:
/// each fails naming the timeout it hit, long before the render process's own CPU limit. (The
/// concurrency group may only substitute values, so it cannot be slow.)
#[test]
fn conditions_env_and_transform_render_under_their_timeouts() {
    let slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let slow = serde_json::to_string(slow).unwrap();
    let condition = format!(
        "name: condition\nsteps:\n  - id: gated\n    timeout: 1s\n    if: {slow}\n    run: [\"true\"]\n"
    );
    let env =
        format!("name: env\ntimeout: 1s\nenv:\n  SLOW: {slow}\nsteps:\n  - id: a\n    run: [\"true\"]\n");
    let transform = format!(
        "name: transform\nsteps:\n  - id: t\n    timeout: 1s\n    uses: data.transform\n    with: {{ input: [1], map: {{ v: {slow} }} }}\n"
    );
    let dir =
        workspace(&[("condition.yaml", &condition), ("env.yaml", &env), ("transform.yaml", &transform)]);
    std::fs::write(dir.path().join(".acas/config.toml"), "[workflows]\ntemplate_fuel = 1000000000000\n")
        .unwrap();

    let (code, stdout, stderr) =
        run_capped(&["workflow", "run", "condition", "--format", "json"], dir.path());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let error = run["steps"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 1s while rendering its templates"), "{run:#}");

    let (code, stdout, stderr) = run_capped(&["workflow", "run", "env", "--format", "json"], dir.path());
    assert_ne!(code, Some(0), "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("timed out after 1s (its `timeout`) while rendering the workflow's env"), "{all}");

    // `data.transform` renders `map` itself, under the same timeout.
    let (code, stdout, stderr) =
        run_capped(&["workflow", "run", "transform", "--format", "json"], dir.path());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let error = run["steps"][0]["error"].as_str().unwrap_or_default();
    assert_eq!(error, "timed out after 1s", "{run:#}");
}
