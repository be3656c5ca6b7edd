//! The escalation rules at run time: which diagnostics present now, from any source, to
//! escalate or to start a workflow for, and when to look again for those that must wait.
//!
//! The rules are applied whenever the set of diagnostics changes and when a rule's wait is
//! over ([`Event::RulesTick`]). A fingerprint is acted on once per session. Deciding is
//! [`crate::escalate::rules::decide`]'s; this file gathers the facts and acts on the decision.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::external::ExternalDiagnostic;
use super::{Event, Workspace, relative};
use crate::analysis::{self, FileDiagnostic};
use crate::text::TextRange;

/// A diagnostic present now, from any source, as the rules see it.
struct Present {
    path: PathBuf,
    fingerprint: String,
    category: String,
    severity: String,
    source: String,
    range: TextRange,
    external: Option<ExternalDiagnostic>,
}

impl Present {
    fn own(path: &Path, d: &FileDiagnostic) -> Present {
        Present {
            path: path.to_path_buf(),
            fingerprint: d.fingerprint.clone(),
            category: d.category.as_str().into(),
            severity: d.severity.as_str().into(),
            source: d.source.clone(),
            range: d.range,
            external: None,
        }
    }
}

impl Workspace {
    /// Decides, by the configured rules, which present diagnostics to escalate now, and when
    /// to look again for those that must wait.
    pub(super) fn apply_rules(&mut self) {
        // Rules escalate (which needs a provider) or start workflows (which need the engine).
        if self.escalator.is_err() && !self.runs_enabled() {
            return;
        }
        let now = std::time::Instant::now();
        let mut present: Vec<Present> = Vec::new();
        for (path, open) in &self.open {
            for d in analysis::locate(open.doc.text(), &open.index, open.doc.diagnostics(), self.encoding) {
                present.push(Present::own(path, &d));
            }
        }
        for (path, diagnostics) in &self.disk_published {
            if !self.open.contains_key(path) {
                present.extend(diagnostics.iter().map(|d| Present::own(path, d)));
            }
        }
        for (path, sources) in &self.external_current {
            for entry in sources.values().flatten() {
                let d = &entry.diagnostic;
                present.push(Present {
                    path: path.clone(),
                    fingerprint: entry.fingerprint.clone(),
                    category: entry.category.clone(),
                    severity: d.severity.as_str().into(),
                    source: d.tool.clone().unwrap_or_else(|| "editor".to_owned()),
                    range: d.range,
                    external: Some(d.clone()),
                });
            }
        }
        let alive: HashSet<&String> = present.iter().map(|p| &p.fingerprint).collect();
        self.seen.retain(|fp, _| alive.contains(fp));
        for p in &present {
            if !self.seen.contains_key(&p.fingerprint) {
                // It appears (again): count it.
                let count = self.appearances.entry(p.fingerprint.clone()).or_insert(0);
                *count += 1;
                self.seen.insert(p.fingerprint.clone(), (now, *count));
            }
        }
        let rules = self.config.escalation.rules();
        let idle = self.last_edit.as_ref().map_or(Duration::MAX, |(_, _, at)| now.duration_since(*at));
        let mut next_look: Option<Duration> = None;
        let mut to_escalate = Vec::new();
        let mut to_start = Vec::new();
        for Present { path, fingerprint, category, severity, source, range, external } in present {
            if self.auto_escalated.contains(&fingerprint) {
                continue;
            }
            let rel = relative(&self.root, &path);
            let editing = self
                .last_edit
                .as_ref()
                .and_then(|(p, line, _)| (p == &path).then_some((rel.as_str(), *line)));
            let (first, occurrences) = self.seen[&fingerprint];
            let facts = crate::escalate::rules::Facts {
                category: &category,
                severity: &severity,
                source: &source,
                path: &rel,
                line: range.start.line,
                persisted: now.duration_since(first),
                occurrences,
                idle,
                editing,
            };
            match crate::escalate::rules::decide(&rules, &facts) {
                crate::escalate::rules::Decision::WaitFor(wait) => {
                    next_look = Some(next_look.map_or(wait, |n| n.min(wait)));
                }
                crate::escalate::rules::Decision::Escalate { .. } if self.escalator.is_ok() => {
                    self.auto_escalated.insert(fingerprint.clone());
                    to_escalate.push((path, range, external));
                }
                crate::escalate::rules::Decision::Workflow { name } => {
                    self.auto_escalated.insert(fingerprint.clone());
                    let trigger = crate::workflow::triggers::Trigger::Rule {
                        path: rel.clone(),
                        line: range.start.line + 1,
                        category: category.clone(),
                        severity: severity.clone(),
                        source: source.clone(),
                        fingerprint: fingerprint.clone(),
                    };
                    to_start.push((name, trigger));
                }
                _ => {}
            }
        }
        for (path, range, external) in to_escalate {
            self.escalate_by_rule(path, range, external);
        }
        for (name, trigger) in to_start {
            self.start_by_rule(name, trigger);
        }
        if let Some(wait) = next_look
            && !self.rules_tick_scheduled
        {
            self.rules_tick_scheduled = true;
            let handle = self.handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
                handle.send(Event::RulesTick);
            });
        }
    }
}
