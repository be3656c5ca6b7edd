//! `acas check`: parse once, print classified diagnostics.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_OK, Format, output};
use crate::analysis::{self, FileDiagnostic, Outcome};
use crate::classify::Severity;
use crate::config;
use crate::text::PositionEncoding;
use crate::watch::{self, IgnoreRules};
use crate::workspace::relative;

struct Report {
    files_checked: usize,
    /// Workspace-relative path and its diagnostics, sorted by path.
    files: Vec<(String, Vec<FileDiagnostic>)>,
}

pub(super) fn run(path: &Path, format: Format) -> i32 {
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
    let (config, error) = config::load(&root);
    if let Some(error) = error {
        output::note(&format!("acas check: {error}"));
        return EXIT_FAILED;
    }
    let files = if is_dir {
        let rules = std::sync::Arc::new(IgnoreRules::new(&root, &config.ignore));
        let files = Mutex::new(Vec::new());
        watch::walk(&rules, &root, &|f| files.lock().unwrap().push(f), &|_| {});
        files.into_inner().unwrap()
    } else {
        vec![target]
    };
    let report = check_files(&root, files, config.max_file_size);
    let errors = report.files.iter().flat_map(|(_, d)| d).filter(|d| d.severity == Severity::Error).count();
    let text = match format {
        Format::Text => render_text(&report, errors),
        Format::Json => serde_json::to_string_pretty(&render_json(&report)).expect("JSON values serialise"),
        Format::Sarif => {
            serde_json::to_string_pretty(&render_sarif(&report, &root)).expect("JSON values serialise")
        }
    };
    output::line(&text);
    if errors > 0 { EXIT_FOUND } else { EXIT_OK }
}

fn check_files(root: &Path, files: Vec<PathBuf>, max_size: u64) -> Report {
    let next = AtomicUsize::new(0);
    let checked = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    match analysis::analyze_file(path, max_size, PositionEncoding::Utf16) {
                        Outcome::Parsed { diagnostics, .. } => {
                            checked.fetch_add(1, Ordering::Relaxed);
                            if !diagnostics.is_empty() {
                                found.lock().unwrap().push((relative(root, path), diagnostics));
                            }
                        }
                        Outcome::NotSource => {}
                        Outcome::Skipped(skip) => {
                            tracing::info!("skipped {}: {skip}", path.display())
                        }
                    }
                }
            });
        }
    });
    let mut files = found.into_inner().unwrap();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Report { files_checked: checked.into_inner(), files }
}

fn render_text(report: &Report, errors: usize) -> String {
    let mut out = String::new();
    for (path, diagnostics) in &report.files {
        for d in diagnostics {
            let symbol = d.symbol.as_deref().map(|s| format!(" (in {s})")).unwrap_or_default();
            out.push_str(&format!(
                "{path}:{}:{}: {}[{}]: {}{symbol}\n",
                d.range.start.line + 1,
                d.range.start.character + 1,
                d.severity.as_str(),
                d.category.as_str(),
                d.message,
            ));
        }
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
    json!({ "diagnostics": diagnostics, "files_checked": report.files_checked })
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
            "originalUriBaseIds": { "SRCROOT": { "uri": root_uri } },
            "results": results,
        }]
    })
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
