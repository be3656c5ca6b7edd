//! `acas check`: parse once, print classified diagnostics; with `--checkers`, also run the
//! project's checkers and merge their problems into the same report, placed, classified and
//! fingerprinted like the syntax diagnostics, with the tool as their source.
//!
//! Exit codes: 0 nothing wrong, 1 errors found, 2 the command itself failed (bad path, bad
//! configuration, unknown checker), 3 a checker asked for could not give a result (missing,
//! failed without a readable problem, timed out); the report is printed in every case but 2.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{EXIT_CHECKER, EXIT_FAILED, EXIT_FOUND, EXIT_OK, Format, output, snippets};
use crate::check::{Ran, Report, Status, check_files, merge};
use crate::checkers::ColumnUnit;
use crate::classify::Severity;
use crate::config;
use crate::watch::{self, IgnoreRules};

/// `names`: `None` runs no checker, an empty list every enabled one that checks code.
pub(super) fn run(path: &Path, format: Format, names: Option<Vec<String>>) -> i32 {
    let (target, is_dir) = match super::resolve(path) {
        Ok(resolved) => resolved,
        Err(error) => {
            output::note(&format!("acas check: {error}"));
            return EXIT_FAILED;
        }
    };
    let root = if is_dir {
        target.clone()
    } else {
        target.parent().map_or_else(|| target.clone(), Path::to_path_buf)
    };
    let (config, errors) = config::load_all(&root);
    if !errors.is_empty() {
        for error in errors {
            output::note(&format!("acas check: {error}"));
        }
        return EXIT_FAILED;
    }
    let files = if is_dir {
        let rules = std::sync::Arc::new(IgnoreRules::new(&root, &config.ignore));
        let files = Mutex::new(Vec::new());
        watch::walk(&rules, &root, &|f| files.lock().unwrap().push(f), &|_| {});
        files.into_inner().unwrap()
    } else {
        vec![target.clone()]
    };
    let selected = match names {
        None => None,
        Some(names) => {
            let names: Vec<String> = names.into_iter().filter(|n| !n.trim().is_empty()).collect();
            if let Some(why) = crate::check::untrusted(&root) {
                output::note(&format!("acas check: {why}"));
                return EXIT_FAILED;
            }
            let (_, found, errors) = crate::check::detect_for(&root);
            if !errors.is_empty() {
                for error in errors {
                    output::note(&format!("acas check: {error}"));
                }
                return EXIT_FAILED;
            }
            match crate::check::select(found, &names) {
                Ok(selected) => Some(selected),
                Err(error) => {
                    output::note(&format!("acas check: {error}"));
                    return EXIT_FAILED;
                }
            }
        }
    };
    let mut report = check_files(&root, files, config.max_file_size);
    // How each tool counts columns, to name its places as it does in the text report.
    let mut columns: HashMap<String, ColumnUnit> = HashMap::new();
    if let Some(selected) = selected {
        let (problems, ran) = super::checkers::run_all(selected);
        columns.extend(problems.iter().map(|p| (p.source.clone(), p.span.columns)));
        // Only the problems of what was asked for, never of files outside it (a link, `../x`).
        merge(&mut report, &root, &target, problems, config.max_file_size);
        report.checkers = Some(ran);
    }
    let errors = report.files.iter().flat_map(|(_, d)| d).filter(|d| d.severity == Severity::Error).count();
    let text = match format {
        Format::Text => {
            render_text(&report, &root, config.max_file_size, errors, &columns, snippets::colour_stdout())
        }
        Format::Json => serde_json::to_string_pretty(&render_json(&report)).expect("JSON values serialise"),
        Format::Sarif => {
            serde_json::to_string_pretty(&render_sarif(&report, &root)).expect("JSON values serialise")
        }
    };
    output::line(&text);
    let checker_failed = report.checkers.iter().flatten().any(|r| r.status != Status::Ok);
    if checker_failed {
        EXIT_CHECKER
    } else if errors > 0 {
        EXIT_FOUND
    } else {
        EXIT_OK
    }
}

fn render_text(
    report: &Report,
    root: &Path,
    max_size: u64,
    errors: usize,
    columns: &HashMap<String, ColumnUnit>,
    colour: bool,
) -> String {
    let mut out = String::new();
    for (path, diagnostics) in &report.files {
        let full = if Path::new(path).is_absolute() { PathBuf::from(path) } else { root.join(path) };
        let text = crate::files::read_source(&full, max_size).ok();
        let index = text.as_deref().map(crate::text::LineIndex::new);
        for d in diagnostics {
            let unit = columns.get(&d.source).copied();
            out.push_str(&snippets::render_in(path, text.as_deref().zip(index.as_ref()), d, unit, colour));
            out.push_str("\n\n");
        }
    }
    for ran in report.checkers.iter().flatten().filter(|r| r.status != Status::Ok) {
        let message = ran.message.as_deref().unwrap_or("no result");
        out.push_str(&snippets::checker_failure(message, colour));
        out.push_str("\n\n");
    }
    for note in report.checkers.iter().flatten().filter_map(|r| r.note.as_deref()) {
        out.push_str(&snippets::checker_note(note, colour));
        out.push_str("\n\n");
    }
    let mut categories: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for d in report.files.iter().flat_map(|(_, d)| d) {
        *categories.entry(d.category.as_str()).or_default() += 1;
    }
    if !categories.is_empty() {
        let by: Vec<String> = categories.iter().map(|(c, n)| format!("{n} {c}")).collect();
        out.push_str(&format!("by category: {}\n", by.join(", ")));
    }
    if let Some(ran) = &report.checkers {
        let each: Vec<String> = ran
            .iter()
            .map(|r| match r.status {
                Status::Ok => format!(
                    "{} ({}, {:.1}s)",
                    r.name,
                    plural(r.problems, "problem", "problems"),
                    r.elapsed.as_secs_f64()
                ),
                _ => format!("{} {}", r.name, r.status.as_str().replace('_', " ")),
            })
            .collect();
        let each = if each.is_empty() { "none enabled".to_owned() } else { each.join(", ") };
        out.push_str(&format!("checkers: {each}\n"));
    }
    let total: usize = report.files.iter().map(|(_, d)| d.len()).sum();
    out.push_str(&format!(
        "{} checked, {total} {} ({errors} {}) in {} {}",
        plural(report.files_checked, "file", "files"),
        if total == 1 { "diagnostic" } else { "diagnostics" },
        if errors == 1 { "error" } else { "errors" },
        report.files.len(),
        if report.files.len() == 1 { "file" } else { "files" },
    ));
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn position(p: crate::text::Position) -> Value {
    json!({ "line": p.line, "character": p.character })
}

fn render_json(report: &Report) -> Value {
    let diagnostics: Vec<Value> = report
        .files
        .iter()
        .flat_map(|(path, diagnostics)| {
            diagnostics.iter().map(move |d| {
                json!({
                    "path": path,
                    "range": { "start": position(d.range.start), "end": position(d.range.end) },
                    "severity": d.severity.as_str(),
                    "category": d.category.as_str(),
                    "message": d.message,
                    "source": d.source,
                    "fingerprint": d.fingerprint,
                    "symbol": d.symbol,
                })
            })
        })
        .collect();
    let mut value = json!({ "diagnostics": diagnostics, "files_checked": report.files_checked });
    if let Some(ran) = &report.checkers {
        value["checkers"] = ran.iter().map(ran_json).collect();
    }
    value
}

fn ran_json(r: &Ran) -> Value {
    json!({
        "name": r.name,
        "status": r.status.as_str(),
        "problems": r.problems,
        "exit_code": r.exit_code,
        "seconds": r.elapsed.as_secs_f64(),
        "message": r.message,
        "note": r.note,
    })
}

fn render_sarif(report: &Report, root: &Path) -> Value {
    let mut categories: Vec<&str> =
        report.files.iter().flat_map(|(_, d)| d).map(|d| d.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    let rules: Vec<Value> = categories
        .iter()
        .map(|c| json!({ "id": c, "shortDescription": { "text": format!("{c} error") } }))
        .collect();
    let results: Vec<Value> = report
        .files
        .iter()
        .flat_map(|(path, diagnostics)| {
            diagnostics.iter().map(move |d| {
                json!({
                    "ruleId": d.category.as_str(),
                    "level": match d.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                        Severity::Information | Severity::Hint => "note",
                    },
                    "message": { "text": d.message },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": { "uri": path, "uriBaseId": "SRCROOT" },
                            "region": {
                                "startLine": d.range.start.line + 1,
                                "startColumn": d.range.start.character + 1,
                                "endLine": d.range.end.line + 1,
                                "endColumn": d.range.end.character + 1,
                            }
                        },
                        "logicalLocations": d.symbol.as_ref().map(|s| vec![json!({ "fullyQualifiedName": s })]).unwrap_or_default(),
                    }],
                    "partialFingerprints": { "acasFingerprint/v1": d.fingerprint },
                    "properties": { "category": d.category.as_str(), "source": d.source },
                })
            })
        })
        .collect();
    let mut root_uri = format!("file://{}", percent_encode_path(&root.to_string_lossy()));
    if !root_uri.ends_with('/') {
        root_uri.push('/');
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "acas",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "utf16CodeUnits",
            "invocations": invocations(report),
            "originalUriBaseIds": { "SRCROOT": { "uri": root_uri } },
            "results": results,
        }]
    })
}

/// One invocation, with a notification for each checker that gave no result.
fn invocations(report: &Report) -> Value {
    let failed: Vec<Value> = report
        .checkers
        .iter()
        .flatten()
        .filter(|r| r.status != Status::Ok)
        .map(|r| {
            json!({
                "level": "error",
                "message": { "text": r.message.as_deref().unwrap_or("no result") },
                "descriptor": { "id": format!("checker-{}", r.status.as_str()) },
                "properties": { "checker": r.name },
            })
        })
        .collect();
    let notes = report.checkers.iter().flatten().filter_map(|r| {
        r.note.as_ref().map(|note| {
            json!({
                "level": "warning",
                "message": { "text": note },
                "descriptor": { "id": "checker-limit" },
                "properties": { "checker": r.name },
            })
        })
    });
    let notifications: Vec<Value> = failed.iter().cloned().chain(notes).collect();
    json!([{ "executionSuccessful": failed.is_empty(), "toolExecutionNotifications": notifications }])
}

/// Percent-encodes a path for a `file:` URI, keeping `/` and RFC 3986's unreserved characters.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
