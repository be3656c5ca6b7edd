//! Measures whether the context of an error holds the definition the error needs, on real code.
//!
//! How cases are made: for each project (Rust crates from `~/.cargo/registry`, packages of
//! Python's standard library, TypeScript: ACAS's own VS Code extension and the packages with TypeScript sources in the
//! npm caches, or the `:`-separated directories of `ACAS_CONTEXT_TS`), every
//! file is tagged; each call in a file A whose callee name is defined in the project only in
//! other files B (and not in A) is a candidate. Every `--step`-th candidate becomes a case: the
//! call's line is broken (its last character removed), the file re-parsed, the error placed on
//! the callee, and the context built with the default budgets over the project's index (built
//! once, warm). A case is recalled when a definition of the callee from one of the B files is in
//! the context. Reported per language: cases, recall, median tokens of the rendered prompt,
//! median time to build one context with the index built (warm), and cold: the time to index
//! the case's project from nothing plus the context's.
//!
//! `--export FILE` writes every case as JSON (the project, the file, the one-based line, the
//! callee, where it is defined, and what ACAS's context gave), for comparing other context
//! builders on the same cases (`scripts/aider-repomap-bench.py`).
//!
//! `cargo bench -p acas --bench context_recall -- [--cases 60] [--step 7] [--export cases.json]`

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use acas::classify::{Document, Language};
use acas::escalate::context::{self, Budget, Problem, Site};
use acas::escalate::cost::estimate_tokens;
use acas::escalate::redact::Redactor;
use acas::escalate::symbols::{self, SymbolIndex};

fn files_under(root: &Path, language: Language, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "tests" | "test" | "benches" | "examples" | "node_modules" | "dist") {
                files_under(&path, language, out);
            }
        } else if Language::from_path(&path) == Some(language) && !name.ends_with(".d.ts") {
            out.push(path);
        }
    }
}

fn projects(language: Language) -> Vec<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    match language {
        Language::Rust => {
            let registry = std::fs::read_dir(format!("{home}/.cargo/registry/src"))
                .ok()
                .and_then(|mut d| d.next())
                .and_then(Result::ok)
                .map(|e| e.path())
                .unwrap_or_default();
            ["walkdir-2.5.0", "semver-1.0.28", "glob-0.3.4", "http-1.5.0", "url-2.5.8", "toml_edit-0.22.27"]
                .iter()
                .map(|c| registry.join(c).join("src"))
                .collect()
        }
        Language::Python => ["json", "email", "http", "logging", "concurrent", "urllib", "importlib"]
            .iter()
            .map(|p| PathBuf::from("/usr/lib/python3.11").join(p))
            .collect(),
        _ => match std::env::var("ACAS_CONTEXT_TS") {
            Ok(roots) => roots.split(':').map(PathBuf::from).collect(),
            Err(_) => vec![
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../vscode-extension/src"),
                PathBuf::from(format!(
                    "{home}/.cache/acas-tools/node/node_modules/@isaacs/nonrecursive-glob-match/src"
                )),
                PathBuf::from(format!(
                    "{home}/.npm/_npx/c463d28440264a05/node_modules/exponential-backoff/src"
                )),
            ],
        },
    }
}

struct Figures {
    cases: usize,
    recalled: usize,
    tokens: Vec<u64>,
    micros: Vec<u128>,
    /// Per case, the time to index its project from nothing and build the context: what a
    /// context costs cold.
    cold_micros: Vec<u128>,
    exported: Vec<serde_json::Value>,
}

fn run(language: Language, want: usize, step: usize) -> Figures {
    let redactor = Redactor::new(&[]).unwrap();
    let mut figures = Figures {
        cases: 0,
        recalled: 0,
        tokens: Vec::new(),
        micros: Vec::new(),
        cold_micros: Vec::new(),
        exported: Vec::new(),
    };
    let mut seen = 0usize;
    for root in projects(language) {
        let mut files = Vec::new();
        files_under(&root, language, &mut files);
        files.sort();
        let indexing = Instant::now();
        let index = SymbolIndex::build(&root, &files, 1 << 20);
        let index_micros = indexing.elapsed().as_micros();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else { continue };
            let rel = acas::files::relative(&root, file);
            let doc = Document::new(language, text.clone());
            let (here, references) = symbols::tags(language, doc.tree(), doc.text(), &rel);
            let defined_here: HashSet<&str> = here.iter().map(|d| d.name.as_str()).collect();
            for reference in &references {
                let elsewhere: HashSet<&str> = index
                    .lookup(&reference.name)
                    .iter()
                    .map(|d| d.path.as_str())
                    .filter(|p| *p != rel)
                    .collect();
                if elsewhere.is_empty() || defined_here.contains(reference.name.as_str()) {
                    continue;
                }
                seen += 1;
                if !seen.is_multiple_of(step) || figures.cases >= want {
                    continue;
                }
                // Break the line: drop its last character.
                let line_end =
                    text[reference.range.end..].find('\n').map_or(text.len(), |i| reference.range.end + i);
                if line_end <= reference.range.end {
                    continue;
                }
                let broken = format!("{}{}", &text[..line_end - 1], &text[line_end..]);
                let broken_doc = Document::new(language, broken.clone());
                let started = Instant::now();
                let site = Site {
                    root: &root,
                    path: &rel,
                    language,
                    text: &broken,
                    tree: broken_doc.tree(),
                    range: reference.range.clone(),
                };
                let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
                let built = context::build(
                    &site,
                    Problem::default(),
                    &index,
                    &redactor,
                    &read,
                    vec![],
                    Budget::default(),
                );
                let micros = started.elapsed().as_micros();
                figures.micros.push(micros);
                figures.cold_micros.push(index_micros + micros);
                let (prompt, _) = context::render(&built, &redactor);
                let tokens = estimate_tokens(&prompt);
                figures.tokens.push(tokens);
                figures.cases += 1;
                let recalled = built.definitions.iter().any(|d| {
                    elsewhere.contains(d.path.as_str())
                        && d.label.rsplit(' ').next() == Some(reference.name.as_str())
                });
                if recalled {
                    figures.recalled += 1;
                }
                let definitions: Vec<serde_json::Value> = index
                    .lookup(&reference.name)
                    .iter()
                    .filter(|d| d.path != rel)
                    .map(|d| serde_json::json!({ "path": d.path, "line": d.line + 1 }))
                    .collect();
                figures.exported.push(serde_json::json!({
                    "root": root,
                    "file": rel,
                    "line": text[..reference.range.start].matches('\n').count() + 1,
                    "callee": reference.name,
                    "definitions": definitions,
                    "acas_recalled": recalled,
                    "acas_tokens": tokens,
                }));
            }
        }
    }
    figures
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> Option<T> {
    v.sort();
    v.get(v.len() / 2).copied()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let want = value("--cases", 60);
    let step = value("--step", 7);
    let export = args.iter().position(|a| a == "--export").and_then(|i| args.get(i + 1)).cloned();
    let mut exported = serde_json::Map::new();
    println!("| language | cases | recall | median prompt tokens | median time per context, warm | cold |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for language in [Language::Rust, Language::Python, Language::TypeScript] {
        let f = run(language, want, step);
        let recall = if f.cases == 0 { 0.0 } else { f.recalled as f64 / f.cases as f64 };
        let median_tokens = median(f.tokens).unwrap_or(0);
        println!(
            "| {} | {} | {:.2} | {} | {:.1} ms | {:.1} ms |",
            language.id(),
            f.cases,
            recall,
            median_tokens,
            median(f.micros).unwrap_or(0) as f64 / 1000.0,
            median(f.cold_micros).unwrap_or(0) as f64 / 1000.0
        );
        let language_cases = serde_json::json!({
            "median_tokens": median_tokens,
            "cases": f.exported,
        });
        exported.insert(language.id().to_owned(), language_cases);
    }
    if let Some(path) = export {
        let json = serde_json::to_string_pretty(&exported).expect("cases serialise");
        std::fs::write(&path, json).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        println!("cases written to {path}");
    }
}
