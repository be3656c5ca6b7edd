//! Measures syntax diagnostics on valid code: every file of whole corpora, with the language's
//! own parser as the judge of what is valid.
//!
//! For each language, every file of its corpora (see [`corpora`]; `--root DIR` adds more) is
//! given to the judge; files it rejects are counted and skipped, and the ones it accepts are
//! checked with ACAS. Any ACAS diagnostic on an accepted file is a false positive, listed with
//! its first diagnostic. Judges: `syn::parse_file` for Rust, `compile()` of the Python that owns
//! the tree, V8 through `node` (as a script, then as a module) for JavaScript, `gofmt -e` for Go,
//! `serde_json` for JSON, and TypeScript's parser for TypeScript and TSX when
//! `ACAS_EVAL_TYPESCRIPT` names an installed `typescript` package.
//!
//! `cargo bench -p acas --bench syntax_eval_fp -- [--lang rust,python] [--root DIR]...`

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;
mod judges;

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use acas::classify::{Language, check};
use judges::{Helper, JS_HELPER, PY_HELPER, TS_HELPER};

struct Options {
    langs: Vec<Language>,
    roots: Vec<PathBuf>,
}

fn options() -> Options {
    let mut o = Options { langs: Language::ALL.to_vec(), roots: Vec::new() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--lang" => {
                o.langs = value
                    .split(',')
                    .filter_map(|s| {
                        Language::ALL
                            .into_iter()
                            .find(|l| l.id() == s || format!("{l:?}").eq_ignore_ascii_case(s))
                    })
                    .collect();
            }
            "--root" => o.roots.push(PathBuf::from(value)),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// The Python that owns each standard library and site-packages tree on this machine.
fn python_trees() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/usr/lib").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(version) = name.strip_prefix("python3.") {
            let python = PathBuf::from(format!("/usr/bin/python3.{version}"));
            if python.exists() {
                out.push((entry.path(), python));
            }
        }
    }
    if Path::new("/usr/lib/python3/dist-packages").exists() {
        out.push(("/usr/lib/python3/dist-packages".into(), "/usr/bin/python3".into()));
    }
    let pyenv = Path::new(common::PYTHON_STDLIB);
    if let Some(python) = pyenv.parent().and_then(Path::parent).map(|p| p.join("bin/python3"))
        && python.exists()
    {
        out.push((pyenv.to_path_buf(), python));
    }
    out
}

/// The Go standard library (Debian's `golang-src`), if installed.
fn go_roots() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/usr/share").into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("go-") && entry.path().join("src").exists() {
            out.push(entry.path().join("src"));
        }
    }
    out
}

/// Every corpus of `language`, each with the command of its judge where the judge is a process.
fn corpora(language: Language, extra: &[PathBuf]) -> Vec<(PathBuf, Option<PathBuf>)> {
    let mut out: Vec<(PathBuf, Option<PathBuf>)> = match language {
        Language::Python => python_trees().into_iter().map(|(root, py)| (root, Some(py))).collect(),
        Language::Rust => common::cargo_registry().into_iter().map(|r| (r, None)).collect(),
        Language::JavaScript => vec![("/usr/lib/node_modules".into(), None)],
        Language::Go => go_roots().into_iter().map(|r| (r, None)).collect(),
        _ => common::roots(language).into_iter().map(|r| (r, None)).collect(),
    };
    let python = python_trees().last().map(|(_, py)| py.clone());
    for root in extra {
        out.push((root.clone(), (language == Language::Python).then(|| python.clone()).flatten()));
    }
    out.retain(|(r, _)| r.exists());
    out
}

/// A judge that runs in a helper process: sends a text, reads `ok` or `err`.
/// The judge of one corpus.
enum Judge {
    Syn,
    SerdeJson,
    Gofmt,
    Process(Helper),
}

impl Judge {
    fn for_corpus(language: Language, python: Option<&Path>) -> Option<Judge> {
        Some(match language {
            Language::Rust => Judge::Syn,
            Language::Json => Judge::SerdeJson,
            Language::Go => Judge::Gofmt,
            Language::Python => {
                Judge::Process(Helper::start(python?, "acas_fp_helper.py", PY_HELPER, &["python"])?)
            }
            Language::JavaScript => Judge::Process(Helper::start(
                Path::new("node"),
                "acas_fp_helper.js",
                JS_HELPER,
                &["--experimental-vm-modules", "--no-warnings"],
            )?),
            Language::TypeScript | Language::Tsx => {
                std::env::var_os("ACAS_EVAL_TYPESCRIPT")?;
                let kind = if language == Language::Tsx { "tsx" } else { "ts" };
                Judge::Process(Helper::start(Path::new("node"), "acas_fp_helper_ts.js", TS_HELPER, &[kind])?)
            }
        })
    }

    fn name(language: Language) -> &'static str {
        match language {
            Language::Rust => "syn::parse_file",
            Language::Json => "serde_json",
            Language::Go => "gofmt -e",
            Language::Python => "compile()",
            Language::JavaScript => "V8 (node vm, script or module)",
            Language::TypeScript | Language::Tsx => "typescript createSourceFile",
        }
    }

    fn valid(&mut self, path: &Path, text: &str) -> Option<bool> {
        match self {
            Judge::Syn => {
                let text = text.to_string();
                // syn's parser recurses; a deeply nested file must not take the bench down.
                let parsed = std::thread::Builder::new()
                    .stack_size(256 << 20)
                    .spawn(move || syn::parse_file(&text).is_ok())
                    .ok()?
                    .join();
                Some(parsed.unwrap_or(false))
            }
            Judge::SerdeJson => Some(serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()),
            Judge::Gofmt => {
                let status = Command::new("gofmt")
                    .arg("-e")
                    .arg("-l")
                    .arg(path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .ok()?;
                Some(status.success())
            }
            Judge::Process(helper) => helper.check(text).map(|rejected| rejected.is_none()),
        }
    }
}

#[derive(Default)]
struct Tally {
    files: usize,
    unreadable: usize,
    invalid: usize,
    valid: usize,
    flagged: Vec<(PathBuf, String)>,
    diagnostics: usize,
}

fn main() {
    let o = options();
    let mut results: BTreeMap<&'static str, (Language, Tally, f64)> = BTreeMap::new();
    for &language in &o.langs {
        let started = Instant::now();
        let mut tally = Tally::default();
        let corpora = corpora(language, &o.roots);
        if corpora.is_empty() {
            eprintln!("{}: no corpus on this machine", language.id());
            continue;
        }
        for (root, python) in &corpora {
            let Some(mut judge) = Judge::for_corpus(language, python.as_deref()) else {
                eprintln!("{}: no judge for {}, skipped", language.id(), root.display());
                continue;
            };
            for path in common::files(std::slice::from_ref(root), language) {
                tally.files += 1;
                let Ok(text) = std::fs::read_to_string(&path) else {
                    tally.unreadable += 1;
                    continue;
                };
                match judge.valid(&path, &text) {
                    Some(true) => {}
                    _ => {
                        tally.invalid += 1;
                        continue;
                    }
                }
                tally.valid += 1;
                let diagnostics = check(language, &text);
                if let Some(d) = diagnostics.first() {
                    let line = text[..d.range.start].matches('\n').count() + 1;
                    tally.diagnostics += diagnostics.len();
                    tally.flagged.push((path.clone(), format!("{line}: {}", d.message)));
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        eprintln!("{}: {} files, {secs:.1}s", language.id(), tally.files);
        results.insert(language.id(), (language, tally, secs));
    }
    println!();
    println!(
        "| language | judge | files | not UTF-8 | judge rejects | valid | valid files with an ACAS diagnostic | diagnostics | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (id, (language, t, secs)) in &results {
        println!(
            "| {id} | {} | {} | {} | {} | {} | {} | {} | {secs:.0} |",
            Judge::name(*language),
            t.files,
            t.unreadable,
            t.invalid,
            t.valid,
            t.flagged.len(),
            t.diagnostics
        );
    }
    for (id, (_, t, _)) in &results {
        for (path, first) in &t.flagged {
            println!("FP {id} {}:{first}", path.display());
        }
    }
}
