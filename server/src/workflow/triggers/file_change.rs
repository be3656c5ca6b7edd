//! `on.file_change`: workspace-relative path globs, ignore globs, event kinds and a debounce.
//!
//! [`FileChangeTriggers`] is a state machine: [`FileChangeTriggers::observe`] takes changed
//! paths with the time they were seen, and [`FileChangeTriggers::due`] returns what fires once a
//! path has been quiet for its workflow's `debounce`. A burst of saves of one file therefore
//! starts one run, `debounce` after the last save. Each (workflow, path) pair is debounced on
//! its own, so two files saved together start two runs.
//!
//! The event reported is the latest one of the burst, except that a file created and then
//! modified is reported as `created`, and a file deleted and then created again as `modified`.
//!
//! [`changes`] maps a [`watch::Batch`] to the relative (path, kind) pairs this module takes. It
//! does not watch anything itself.

use std::collections::BTreeMap;
use std::path::Path;

use globset::GlobSet;
use tokio::time::{Duration, Instant};

use super::{Fired, Trigger, TriggerError, TriggerErrorKind, default_inputs, glob_set};
use crate::watch::{Batch, Change};
use crate::workflow::definition::{FileEventKind, Workflow};

/// Workspace-relative (`/`-separated) paths and what happened to them, from a watcher batch. A
/// rename is reported at its new path. Paths outside `root` are dropped.
pub fn changes(root: &Path, batch: &Batch) -> Vec<(String, FileEventKind)> {
    batch
        .changes
        .iter()
        .filter_map(|change| {
            let kind = match change {
                Change::Created(_) => FileEventKind::Created,
                Change::Modified(_) => FileEventKind::Modified,
                Change::Deleted(_) => FileEventKind::Deleted,
                Change::Renamed { .. } => FileEventKind::Renamed,
            };
            let relative = change.path().strip_prefix(root).ok()?;
            let path = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>();
            (!path.is_empty()).then(|| (path.join("/"), kind))
        })
        .collect()
}

pub fn kind_name(kind: FileEventKind) -> &'static str {
    match kind {
        FileEventKind::Created => "created",
        FileEventKind::Modified => "modified",
        FileEventKind::Deleted => "deleted",
        FileEventKind::Renamed => "renamed",
    }
}

struct Matcher {
    workflow: Workflow,
    paths: GlobSet,
    ignore: GlobSet,
    debounce: Duration,
    events: Vec<FileEventKind>,
}

impl Matcher {
    fn matches(&self, path: &str, kind: FileEventKind) -> bool {
        (self.events.is_empty() || self.events.contains(&kind))
            && self.paths.is_match(path)
            && !self.ignore.is_match(path)
    }
}

struct Pending {
    kind: FileEventKind,
    deadline: Instant,
}

/// The `file_change` triggers of a set of workflows, with the paths waiting out their debounce.
#[derive(Default)]
pub struct FileChangeTriggers {
    matchers: Vec<Matcher>,
    /// (matcher index, path) → the burst in progress.
    pending: BTreeMap<(usize, String), Pending>,
}

impl FileChangeTriggers {
    /// Compiles the triggers of `workflows`. A workflow whose globs do not compile is left out
    /// and reported; the others work.
    pub fn new(workflows: &[Workflow]) -> (FileChangeTriggers, Vec<TriggerError>) {
        let mut errors = Vec::new();
        let mut matchers = Vec::new();
        for workflow in workflows {
            let Some(trigger) = &workflow.on.file_change else { continue };
            let compiled = glob_set(&trigger.paths).and_then(|paths| Ok((paths, glob_set(&trigger.ignore)?)));
            match compiled {
                Ok((paths, ignore)) => matchers.push(Matcher {
                    workflow: workflow.clone(),
                    paths,
                    ignore,
                    debounce: trigger.debounce,
                    events: trigger.events.clone(),
                }),
                Err(message) => errors.push(TriggerError {
                    kind: TriggerErrorKind::Glob,
                    workflow: workflow.name.clone(),
                    message: format!("on.file_change: {message}"),
                }),
            }
        }
        (FileChangeTriggers { matchers, pending: BTreeMap::new() }, errors)
    }

    /// The names of the workflows that `path` and `kind` match, ignoring debounce.
    pub fn matching(&self, path: &str, kind: FileEventKind) -> Vec<&str> {
        self.matchers.iter().filter(|m| m.matches(path, kind)).map(|m| m.workflow.name.as_str()).collect()
    }

    /// Takes changes seen at `now`; each matching (workflow, path) fires once it has been quiet
    /// for the workflow's debounce.
    pub fn observe(&mut self, changes: &[(String, FileEventKind)], now: Instant) {
        for (path, kind) in changes {
            for (index, matcher) in self.matchers.iter().enumerate() {
                if !matcher.matches(path, *kind) {
                    continue;
                }
                let deadline = now + matcher.debounce;
                self.pending
                    .entry((index, path.clone()))
                    .and_modify(|pending| {
                        pending.kind = merge(pending.kind, *kind);
                        pending.deadline = deadline;
                    })
                    .or_insert(Pending { kind: *kind, deadline });
            }
        }
    }

    /// The earliest time [`FileChangeTriggers::due`] has something to return.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Removes and returns the bursts that ended by `now`, in (workflow, path) order.
    pub fn due(&mut self, now: Instant) -> Vec<Fired> {
        let ended: Vec<(usize, String)> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(key, _)| key.clone()).collect();
        ended
            .into_iter()
            .filter_map(|key| {
                let pending = self.pending.remove(&key)?;
                let workflow = &self.matchers[key.0].workflow;
                Some(Fired {
                    workflow: workflow.name.clone(),
                    trigger: Trigger::FileChange {
                        path: key.1.clone(),
                        event: kind_name(pending.kind).to_owned(),
                    },
                    inputs: default_inputs(workflow),
                    inbox: None,
                })
            })
            .collect()
    }
}

/// The kind that describes `earlier` followed by `later`.
fn merge(earlier: FileEventKind, later: FileEventKind) -> FileEventKind {
    use FileEventKind::*;
    match (earlier, later) {
        (Created, Modified) => Created,
        (Deleted, Created) => Modified,
        (_, later) => later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::{FileChangeTrigger, Triggers};
    use crate::workflow::triggers::testing::workflow;
    use FileEventKind::*;
    use serde_json::json;

    fn on(paths: &[&str], ignore: &[&str], events: &[FileEventKind], debounce_ms: u64) -> Triggers {
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        Triggers {
            file_change: Some(FileChangeTrigger {
                paths: strings(paths),
                ignore: strings(ignore),
                events: events.to_vec(),
                debounce: Duration::from_millis(debounce_ms),
            }),
            ..Triggers::default()
        }
    }

    /// Whether a trigger matches each (path, kind).
    fn check(on: Triggers, cases: &[(&str, FileEventKind, bool)]) {
        let (triggers, errors) = FileChangeTriggers::new(&[workflow("w", on)]);
        assert_eq!(errors, vec![]);
        for (path, kind, expected) in cases {
            assert_eq!(!triggers.matching(path, *kind).is_empty(), *expected, "{path} {kind:?}");
        }
    }

    #[test]
    fn globs_ignore_and_event_kinds() {
        check(
            on(&["src/**/*.py"], &["src/gen/**"], &[Created, Modified], 0),
            &[
                ("src/a.py", Modified, true),
                ("src/deep/er/b.py", Created, true),
                ("src/a.py", Deleted, false),
                ("src/gen/x.py", Modified, false),
                ("test/a.py", Modified, false),
                ("src/a.pyc", Modified, false),
            ],
        );
        check(on(&["*.md"], &[], &[], 0), &[("README.md", Deleted, true), ("docs/a.md", Modified, false)]);
        check(on(&["./docs/*.md"], &[], &[], 0), &[("docs/a.md", Renamed, true)]);
    }

    #[test]
    fn a_bad_glob_leaves_the_workflow_out() {
        let (triggers, errors) = FileChangeTriggers::new(&[
            workflow("bad", on(&["src/[a.py"], &[], &[], 0)),
            workflow("good", on(&["**"], &[], &[], 0)),
        ]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].kind, TriggerErrorKind::Glob);
        let message = errors[0].to_string();
        assert!(message.starts_with("workflow `bad`: on.file_change: invalid glob `src/[a.py`"), "{message}");
        assert_eq!(triggers.matching("x", Created), vec!["good"]);
    }

    #[test]
    fn a_burst_of_saves_fires_once_after_the_quiet_period() {
        let (mut triggers, _) = FileChangeTriggers::new(&[workflow("w", on(&["src/**"], &[], &[], 500))]);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let change = |path: &str, kind| vec![(path.to_owned(), kind)];
        triggers.observe(&change("src/a.py", Modified), at(0));
        triggers.observe(&change("src/b.py", Created), at(100));
        triggers.observe(&change("src/a.py", Modified), at(300));
        triggers.observe(&change("src/b.py", Modified), at(400));
        triggers.observe(&change("src/a.py", Modified), at(600));
        triggers.observe(&change("elsewhere/c.py", Modified), at(600));
        assert_eq!(triggers.next_deadline(), Some(at(900)));
        assert_eq!(triggers.due(at(899)), vec![]);

        let fired = triggers.due(at(1000));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].workflow, "w");
        assert_eq!(
            fired[0].trigger.to_value(),
            json!({"kind": "file_change", "path": "src/b.py", "event": "created"})
        );
        assert_eq!(triggers.next_deadline(), Some(at(1100)));

        let fired = triggers.due(at(1100));
        assert_eq!(fired.len(), 1);
        assert_eq!(
            fired[0].trigger.to_value(),
            json!({"kind": "file_change", "path": "src/a.py", "event": "modified"})
        );
        assert_eq!(triggers.due(at(5000)), vec![]);
        assert_eq!(triggers.next_deadline(), None);
    }

    #[test]
    fn batches_map_to_relative_paths() {
        let root = Path::new("/ws");
        let batch = Batch {
            changes: vec![
                Change::Created("/ws/src/a.py".into()),
                Change::Modified("/ws/b.txt".into()),
                Change::Deleted("/ws/c".into()),
                Change::Renamed { from: "/ws/d".into(), to: "/ws/sub/e".into() },
                Change::Modified("/elsewhere/f".into()),
            ],
            rescan: false,
        };
        let expected = [("src/a.py", Created), ("b.txt", Modified), ("c", Deleted), ("sub/e", Renamed)];
        assert_eq!(changes(root, &batch), expected.map(|(p, k)| (p.to_owned(), k)).to_vec());
    }

    #[test]
    fn kinds_merge_within_a_burst() {
        assert_eq!(merge(Created, Modified), Created);
        assert_eq!(merge(Deleted, Created), Modified);
        assert_eq!(merge(Modified, Deleted), Deleted);
        assert_eq!(merge(Modified, Modified), Modified);
    }
}
