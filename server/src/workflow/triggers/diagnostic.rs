//! `on.diagnostic`: run a workflow when a matching diagnostic has stayed open for `persists`.
//!
//! [`DiagnosticTriggers`] is fed the complete set of open diagnostics of one file at a time
//! ([`DiagnosticTriggers::set_file`]), as classification publishes them. A diagnostic matches a
//! workflow by category, severity (both case-insensitive, absent means any) and path globs
//! (empty means any). It fires once per appearance: a diagnostic that stays open does not fire
//! again, and one that is resolved and comes back starts a new appearance. An appearance is
//! identified by (path, fingerprint), so the same mistake in two files fires for each.
//!
//! It does not read the store or know LSP: the caller converts what it has into
//! [`OpenDiagnostic`]s and arms a timer at [`DiagnosticTriggers::next_deadline`].

use std::collections::BTreeMap;

use globset::GlobSet;
use tokio::time::{Duration, Instant};

use super::{Fired, Trigger, TriggerError, TriggerErrorKind, default_inputs, glob_set};
use crate::workflow::definition::Workflow;

/// One open diagnostic, in editor terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDiagnostic {
    /// Workspace-relative, `/`-separated.
    pub path: String,
    /// As classification names it: `syntax`, `type`, `name`, ...
    pub category: String,
    /// `error`, `warning`, `information` or `hint`.
    pub severity: String,
    pub fingerprint: String,
    pub message: String,
    /// 1-based.
    pub line: u32,
}

struct Matcher {
    workflow: Workflow,
    category: Option<String>,
    severity: Option<String>,
    paths: Option<GlobSet>,
    persists: Duration,
}

impl Matcher {
    fn matches(&self, d: &OpenDiagnostic) -> bool {
        let same =
            |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have));
        same(&self.category, &d.category)
            && same(&self.severity, &d.severity)
            && self.paths.as_ref().is_none_or(|globs| globs.is_match(&d.path))
    }
}

struct Appearance {
    diagnostic: OpenDiagnostic,
    since: Instant,
    fired: bool,
}

/// The `diagnostic` triggers of a set of workflows and the matching diagnostics now open.
#[derive(Default)]
pub struct DiagnosticTriggers {
    matchers: Vec<Matcher>,
    /// (path, fingerprint, matcher index) → since when it is open.
    open: BTreeMap<(String, String, usize), Appearance>,
}

impl DiagnosticTriggers {
    /// Compiles the triggers of `workflows`; a workflow whose globs do not compile is left out
    /// and reported.
    pub fn new(workflows: &[Workflow]) -> (DiagnosticTriggers, Vec<TriggerError>) {
        let mut errors = Vec::new();
        let mut matchers = Vec::new();
        for workflow in workflows {
            let Some(trigger) = &workflow.on.diagnostic else { continue };
            let paths = match trigger.paths.is_empty() {
                true => None,
                false => match glob_set(&trigger.paths) {
                    Ok(globs) => Some(globs),
                    Err(message) => {
                        errors.push(TriggerError {
                            kind: TriggerErrorKind::Glob,
                            workflow: workflow.name.clone(),
                            message: format!("on.diagnostic: {message}"),
                        });
                        continue;
                    }
                },
            };
            matchers.push(Matcher {
                workflow: workflow.clone(),
                category: trigger.category.clone(),
                severity: trigger.severity.clone(),
                paths,
                persists: trigger.persists,
            });
        }
        (DiagnosticTriggers { matchers, open: BTreeMap::new() }, errors)
    }

    /// Replaces the open diagnostics of `path` with `diagnostics` (all of that file's, possibly
    /// none), seen at `now`, and returns what is due at `now`.
    pub fn set_file(&mut self, path: &str, diagnostics: &[OpenDiagnostic], now: Instant) -> Vec<Fired> {
        let mut current: BTreeMap<(String, String, usize), &OpenDiagnostic> = BTreeMap::new();
        for diagnostic in diagnostics {
            for (index, matcher) in self.matchers.iter().enumerate() {
                if matcher.matches(diagnostic) {
                    current
                        .entry((path.to_owned(), diagnostic.fingerprint.clone(), index))
                        .or_insert(diagnostic);
                }
            }
        }
        let gone: Vec<_> = self
            .open
            .range((path.to_owned(), String::new(), 0)..)
            .take_while(|((p, _, _), _)| p == path)
            .filter(|(key, _)| !current.contains_key(*key))
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            self.open.remove(&key);
        }
        for (key, diagnostic) in current {
            match self.open.get_mut(&key) {
                // Still open: keep its start, refresh its line and message.
                Some(appearance) => appearance.diagnostic = diagnostic.clone(),
                None => {
                    self.open
                        .insert(key, Appearance { diagnostic: diagnostic.clone(), since: now, fired: false });
                }
            }
        }
        self.due(now)
    }

    /// The earliest time [`DiagnosticTriggers::due`] has something to return.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .iter()
            .filter(|(_, a)| !a.fired)
            .map(|((_, _, index), a)| a.since + self.matchers[*index].persists)
            .min()
    }

    /// The appearances that have persisted long enough by `now` and have not fired yet.
    pub fn due(&mut self, now: Instant) -> Vec<Fired> {
        let mut fired = Vec::new();
        for ((_, _, index), appearance) in &mut self.open {
            let matcher = &self.matchers[*index];
            if appearance.fired || appearance.since + matcher.persists > now {
                continue;
            }
            appearance.fired = true;
            let d = &appearance.diagnostic;
            fired.push(Fired {
                workflow: matcher.workflow.name.clone(),
                trigger: Trigger::Diagnostic {
                    path: d.path.clone(),
                    line: d.line,
                    category: d.category.clone(),
                    severity: d.severity.clone(),
                    fingerprint: d.fingerprint.clone(),
                    message: d.message.clone(),
                },
                inputs: default_inputs(&matcher.workflow),
                inbox: None,
            });
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::{DiagnosticTrigger, Triggers};
    use crate::workflow::triggers::testing::workflow;
    use serde_json::json;

    fn on(category: Option<&str>, severity: Option<&str>, paths: &[&str], persists_s: u64) -> Triggers {
        Triggers {
            diagnostic: Some(DiagnosticTrigger {
                category: category.map(str::to_owned),
                severity: severity.map(str::to_owned),
                paths: paths.iter().map(|p| p.to_string()).collect(),
                persists: Duration::from_secs(persists_s),
            }),
            ..Triggers::default()
        }
    }

    /// `path category severity fingerprint` per line.
    fn diagnostics(text: &str) -> Vec<OpenDiagnostic> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                let f: Vec<&str> = line.split_whitespace().collect();
                OpenDiagnostic {
                    path: f[0].into(),
                    category: f[1].into(),
                    severity: f[2].into(),
                    fingerprint: f[3].into(),
                    message: format!("problem {}", f[3]),
                    line: i as u32 + 1,
                }
            })
            .collect()
    }

    fn names(fired: &[Fired]) -> Vec<String> {
        fired
            .iter()
            .map(|f| format!("{} {}", f.workflow, f.trigger.to_value()["fingerprint"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn fires_after_persisting_once_per_appearance() {
        let (mut triggers, errors) = DiagnosticTriggers::new(&[
            workflow("types", on(Some("type"), Some("error"), &["src/**"], 30)),
            workflow("any", on(None, None, &[], 0)),
        ]);
        assert!(errors.is_empty());
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let set = diagnostics("src/a.py type error F1\nsrc/a.py syntax error F2\nsrc/a.py type warning F3");

        // `any` has no persistence: it fires for all three at once.
        assert_eq!(names(&triggers.set_file("src/a.py", &set, at(0))), ["any F1", "any F2", "any F3"]);
        assert_eq!(triggers.next_deadline(), Some(at(30)));
        assert_eq!(names(&triggers.set_file("src/a.py", &set, at(10))), Vec::<String>::new());
        assert_eq!(names(&triggers.due(at(29))), Vec::<String>::new());
        let fired = triggers.due(at(30));
        assert_eq!(names(&fired), ["types F1"]);
        assert_eq!(
            fired[0].trigger.to_value(),
            json!({"kind": "diagnostic", "path": "src/a.py", "line": 1, "category": "type", "severity": "error",
                   "fingerprint": "F1", "message": "problem F1"})
        );
        // Still open: nothing more.
        assert_eq!(names(&triggers.set_file("src/a.py", &set, at(100))), Vec::<String>::new());
        assert_eq!(triggers.next_deadline(), None);

        // F1 resolved, then back: a new appearance, which must persist again.
        triggers.set_file("src/a.py", &set[1..], at(110));
        assert_eq!(names(&triggers.set_file("src/a.py", &set, at(120))), ["any F1"]);
        assert_eq!(names(&triggers.due(at(149))), Vec::<String>::new());
        assert_eq!(names(&triggers.due(at(150))), ["types F1"]);
    }

    #[test]
    fn a_diagnostic_resolved_before_it_persists_never_fires() {
        let (mut triggers, _) = DiagnosticTriggers::new(&[workflow("w", on(Some("TYPE"), None, &[], 30))]);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        triggers.set_file("lib/b.py", &diagnostics("lib/b.py type error F1"), at(0));
        triggers.set_file("lib/c.py", &diagnostics("lib/c.py type error F1"), at(5));
        triggers.set_file("lib/b.py", &[], at(20));
        assert_eq!(names(&triggers.due(at(40))), ["w F1"]);
        assert!(triggers.due(at(40)).is_empty());
    }

    #[test]
    fn path_globs_filter_and_bad_globs_are_reported() {
        let (mut triggers, errors) = DiagnosticTriggers::new(&[
            workflow("src-only", on(None, None, &["src/*.py"], 0)),
            workflow("broken", on(None, None, &["{a"], 0)),
        ]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].workflow, "broken");
        let now = Instant::now();
        assert_eq!(triggers.set_file("test/a.py", &diagnostics("test/a.py type error F1"), now), vec![]);
        assert_eq!(
            names(&triggers.set_file("src/a.py", &diagnostics("src/a.py type error F2"), now)),
            ["src-only F2"]
        );
    }
}
