//! `acas watch`: the whole server headless, printing what happens.

use std::path::Path;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::text::PositionEncoding;
use crate::watch::Change;
use crate::workspace::{self, Output, Progress, relative};

pub(super) fn run(path: &Path, format: ListFormat) -> i32 {
    let root = match super::resolve(path) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!("acas watch: {} is not a directory", path.display()));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas watch: {error}"));
            return EXIT_FAILED;
        }
    };
    // Recording is the point of watching: a state that cannot be used stops it here.
    if let Err(code) = super::refuse_read_only("watch", &root) {
        return code;
    }
    if let Err(error) = crate::store::Store::open_workspace(&root, crate::store::StoreOptions::default()) {
        output::note(&format!("acas watch: {error}"));
        return EXIT_FAILED;
    }
    super::runtime().block_on(async move {
        let options = workspace::Options {
            root: root.clone(),
            encoding: PositionEncoding::Utf16,
            settings: Default::default(),
            scan: true,
            watch: true,
            record: true,
            symbols: false,
            analysis_threads: 2,
            acting_for: crate::process_tree::acting_for(),
        };
        let (handle, mut outputs) = workspace::start(options);
        let interrupted = super::stop_requested();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                _ = &mut interrupted => break,
                next = outputs.recv() => match next {
                    Some(out) => if !print(&root, format, out) { break },
                    None => break,
                },
            }
        }
        handle.shutdown().await;
        EXIT_OK
    })
}

/// Prints one output; false once stdout is closed.
fn print(root: &Path, format: ListFormat, out: Output) -> bool {
    match (format, out) {
        (ListFormat::Text, Output::Diagnostics { path, diagnostics, .. }) => {
            let path = relative(root, &path);
            if diagnostics.is_empty() {
                return output::line(&format!("{path}: clean"));
            }
            let mut text = format!("{path}: {} diagnostics", diagnostics.len());
            for d in diagnostics.iter() {
                text.push_str(&format!(
                    "\n  {}:{}: {}[{}]: {}",
                    d.range.start.line + 1,
                    d.range.start.character + 1,
                    d.severity.as_str(),
                    d.category.as_str(),
                    d.message
                ));
            }
            output::line(&text)
        }
        (ListFormat::Json, Output::Diagnostics { path, diagnostics, .. }) => {
            let diagnostics: Vec<_> = diagnostics
                .iter()
                .map(|d| {
                    json!({
                        "range": {
                            "start": { "line": d.range.start.line, "character": d.range.start.character },
                            "end": { "line": d.range.end.line, "character": d.range.end.character },
                        },
                        "severity": d.severity.as_str(),
                        "category": d.category.as_str(),
                        "message": d.message,
                        "source": d.source,
                        "fingerprint": d.fingerprint,
                        "symbol": d.symbol,
                    })
                })
                .collect();
            let event =
                json!({ "event": "diagnostics", "path": relative(root, &path), "diagnostics": diagnostics });
            output::line(&event.to_string())
        }
        (format, Output::Changes(changes)) => changes.iter().all(|change| {
            let (kind, path, to) = match change {
                Change::Created(p) => ("created", p, None),
                Change::Modified(p) => ("modified", p, None),
                Change::Deleted(p) => ("deleted", p, None),
                Change::Renamed { from, to } => ("renamed", from, Some(to)),
            };
            let path = relative(root, path);
            let to = to.map(|t| relative(root, t));
            match format {
                ListFormat::Text => match to {
                    Some(to) => output::line(&format!("{kind} {path} -> {to}")),
                    None => output::line(&format!("{kind} {path}")),
                },
                ListFormat::Json => output::line(
                    &json!({ "event": "change", "kind": kind, "path": path, "to": to }).to_string(),
                ),
            }
        }),
        (_, Output::Message { text, .. }) => {
            output::note(&text);
            true
        }
        // A terminal cannot be asked here: the text says how to trust it; the answer is no.
        (_, Output::AskTrust { text, .. }) => {
            output::note(&text);
            true
        }
        (ListFormat::Text, Output::Progress(Progress::End { message })) => {
            output::line(&format!("scan: {message}; watching for changes (Ctrl-C to stop)"))
        }
        (ListFormat::Json, Output::Progress(Progress::End { message })) => {
            output::line(&json!({ "event": "scan", "message": message }).to_string())
        }
        (_, Output::Progress(_)) => true,
        (ListFormat::Text, Output::WorkflowRun(state)) => {
            let steps: Vec<String> =
                state.steps.iter().map(|s| format!("{} {}", s.id, s.status.as_str())).collect();
            let error = state.error.map(|e| format!(": {e}")).unwrap_or_default();
            output::line(&format!(
                "workflow {} run {} {}{error} [{}]",
                state.workflow,
                state.run,
                state.status.as_str(),
                steps.join(", ")
            ))
        }
        (ListFormat::Json, Output::WorkflowRun(state)) => {
            let steps: Vec<serde_json::Value> = state
                .steps
                .iter()
                .map(|s| json!({ "id": s.id, "status": s.status.as_str(), "attempts": s.attempts, "error": s.error }))
                .collect();
            let event = json!({
                "event": "workflow_run",
                "run_id": state.run,
                "workflow": state.workflow,
                "status": state.status.as_str(),
                "steps": steps,
                "error": state.error,
            });
            output::line(&event.to_string())
        }
    }
}
