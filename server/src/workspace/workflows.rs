//! Workflow files in the workspace loop: live diagnostics for `.acas/workflows/*.yaml` and the
//! workspace's policy file `.acas/policy.yaml` (source `acas-policy`), and the hover of a
//! `cron:` value.
//!
//! An open workflow file is checked on every edit; a closed one when it changes on disk and at
//! the start, read and checked off the loop. Every problem [`crate::workflow::validate::check`] finds becomes a diagnostic with
//! source `acas-workflow`. These files are not source code: they never reach classification,
//! the store or the escalation rules.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ContentChange, Done, Output, Workspace};
use crate::analysis::FileDiagnostic;
use crate::classify::{self, Category, Severity};
use crate::text::{LineIndex, Position, PositionEncoding, TextRange};
use crate::watch::Change;
use crate::workflow::parse::{self, Pos, Problem};
use crate::workflow::validate;

/// The source of every workflow diagnostic.
pub const SOURCE: &str = "acas-workflow";
/// The source of the policy file's diagnostics.
pub const POLICY_SOURCE: &str = "acas-policy";

/// Whether `path` is checked here: a workflow file or the policy file.
fn is_checked(root: &Path, path: &Path) -> bool {
    validate::is_workflow_file(root, path) || crate::policy::is_policy_file(root, path)
}

/// The problems of a workflow file's `text`.
fn check_text(path: &Path, text: &str) -> Vec<Problem> {
    validate::check(path, text).1
}

/// A policy file's problems as diagnostics problems.
fn policy_problems(path: &Path, result: Result<(), crate::policy::PolicyError>) -> Vec<Problem> {
    match result {
        Ok(()) => Vec::new(),
        Err(error) => error
            .problems
            .iter()
            .map(|p| {
                let start = Pos { line: p.line.max(1), column: p.column.max(1) };
                let end = Pos { line: start.line, column: start.column + 1 };
                Problem::new(path, parse::Span { start, end }, parse::Severity::Error, p.message.clone())
            })
            .collect(),
    }
}

/// A check of the policy file: an open document's text at a version, or the file on disk.
pub(super) struct PolicyCheck {
    path: PathBuf,
    open: Option<(i32, String)>,
}

/// Workflow files open in the editor, and those on disk whose problems are shown.
#[derive(Default)]
pub(super) struct WorkflowFiles {
    open: HashMap<PathBuf, (i32, String)>,
    published: HashSet<PathBuf>,
    /// Whether a check of the policy file is running, and the latest one asked for meanwhile.
    policy_checking: bool,
    policy_next: Option<PolicyCheck>,
}

impl Workspace {
    /// The version of an open workflow file.
    pub(super) fn workflow_version(&self, path: &Path) -> Option<i32> {
        self.workflows.open.get(path).map(|(version, _)| *version)
    }

    /// Checks every workflow file on disk once, at the start.
    pub(super) fn check_workflow_files(&mut self) {
        for path in validate::workflow_files(&self.root) {
            self.check_workflow_on_disk(&path);
        }
        let policy = self.root.join(crate::policy::WORKSPACE_FILE);
        if policy.is_file() {
            self.check_workflow_on_disk(&policy);
        }
    }

    /// Takes an opened document if it is a workflow file.
    pub(super) fn workflow_opened(&mut self, path: &Path, version: i32, text: String) -> bool {
        if !is_checked(&self.root, path) {
            return false;
        }
        self.workflows.open.insert(path.to_path_buf(), (version, text));
        self.publish_workflow(path);
        true
    }

    /// Applies edits to an open workflow file; false when `path` is not one.
    pub(super) fn workflow_changed(&mut self, path: &Path, version: i32, changes: &[ContentChange]) -> bool {
        let encoding = self.encoding;
        let Some((open_version, text)) = self.workflows.open.get_mut(path) else { return false };
        for change in changes {
            match change.range {
                None => *text = change.text.clone(),
                Some(range) => {
                    let index = LineIndex::new(text);
                    let start = index.offset(text, range.start, encoding);
                    let end = index.offset(text, range.end, encoding).max(start);
                    text.replace_range(start..end, &change.text);
                }
            }
        }
        *open_version = version;
        self.publish_workflow(path);
        true
    }

    /// Back to the file on disk after an open workflow file is closed.
    pub(super) fn workflow_closed(&mut self, path: &Path) {
        if self.workflows.open.remove(path).is_some() {
            self.workflows.published.insert(path.to_path_buf());
            self.check_workflow_on_disk(path);
        }
    }

    /// Checks workflow files that changed on disk and are not open.
    pub(super) fn workflow_files_changed(&mut self, changes: &[Change]) {
        let mut paths = Vec::new();
        for change in changes {
            if let Change::Renamed { from, .. } = change {
                paths.push(from.clone());
            }
            paths.push(change.path().to_path_buf());
        }
        for path in paths {
            if is_checked(&self.root, &path) && !self.workflows.open.contains_key(&path) {
                self.check_workflow_on_disk(&path);
            }
        }
    }

    /// Checks the policy file off the loop, one check at a time, the latest asked for next.
    /// Parsing a policy compiles every glob in it, which takes seconds for thousands of them:
    /// neither the loop nor the requests after it wait for that (it is not work they see).
    fn check_policy(&mut self, check: PolicyCheck) {
        if self.workflows.policy_checking {
            self.workflows.policy_next = Some(check);
            return;
        }
        self.workflows.policy_checking = true;
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let PolicyCheck { path, open } = check;
            let work_path = path.clone();
            let work = move || match open {
                Some((version, text)) => {
                    let result = crate::policy::parse::parse(&work_path, &text).map(|_| ());
                    (Some(version), text, policy_problems(&work_path, result))
                }
                None => {
                    // Through the policy cache: the decisions of runs and agents reuse what this
                    // compiled.
                    let result = crate::policy::read_file(&work_path).map(|_| ());
                    let problems = policy_problems(&work_path, result);
                    let text = if problems.is_empty() {
                        String::new()
                    } else {
                        std::fs::read_to_string(&work_path).unwrap_or_default()
                    };
                    (None, text, problems)
                }
            };
            let event = match tokio::task::spawn_blocking(work).await {
                Ok((version, text, problems)) => Done::PolicyFile { path, version, text, problems },
                Err(_) => Done::PolicyFile { path, version: None, text: String::new(), problems: Vec::new() },
            };
            // Not numbered work: requests do not wait for it.
            handle.send(super::Event::Done(u64::MAX, event));
        });
    }

    /// Shows what a check of the policy file found, unless the document changed meanwhile, and
    /// starts the check asked for meanwhile.
    pub(super) fn policy_checked(
        &mut self,
        path: PathBuf,
        version: Option<i32>,
        text: String,
        problems: Vec<Problem>,
    ) {
        self.workflows.policy_checking = false;
        match version {
            Some(version) => {
                if self.workflows.open.get(&path).is_some_and(|(v, _)| *v == version) {
                    let diagnostics = diagnostics(&text, &problems, self.encoding, POLICY_SOURCE);
                    let _ =
                        self.output.send(Output::Diagnostics { path, version: Some(version), diagnostics });
                }
            }
            None => self.workflow_checked(path, text, problems),
        }
        if let Some(next) = self.workflows.policy_next.take() {
            self.check_policy(next);
        }
    }

    /// Reads and checks a workflow file on disk, off the loop.
    fn check_workflow_on_disk(&mut self, path: &Path) {
        if crate::policy::is_policy_file(&self.root, path) {
            self.check_policy(PolicyCheck { path: path.to_path_buf(), open: None });
            return;
        }
        let file = path.to_path_buf();
        self.off_loop(
            "checking a workflow file",
            move || {
                let problems = if !file.is_file() { Vec::new() } else { validate::check_file(&file).1 };
                let text = if problems.is_empty() {
                    String::new()
                } else {
                    std::fs::read_to_string(&file).unwrap_or_default()
                };
                (file, text, problems)
            },
            |(path, text, problems)| Done::WorkflowFile { path, text, problems },
        );
    }

    /// Shows what checking a workflow file on disk found, unless it was opened meanwhile.
    pub(super) fn workflow_checked(&mut self, path: PathBuf, text: String, problems: Vec<Problem>) {
        if self.workflows.open.contains_key(&path) {
            return;
        }
        if problems.is_empty() && !self.workflows.published.remove(&path) {
            return;
        }
        if !problems.is_empty() {
            self.workflows.published.insert(path.to_path_buf());
        }
        let source = if crate::policy::is_policy_file(&self.root, &path) { POLICY_SOURCE } else { SOURCE };
        let diagnostics = diagnostics(&text, &problems, self.encoding, source);
        let _ =
            self.output.send(Output::Diagnostics { path: path.to_path_buf(), version: None, diagnostics });
    }

    fn publish_workflow(&mut self, path: &Path) {
        let Some((version, text)) = self.workflows.open.get(path) else { return };
        if crate::policy::is_policy_file(&self.root, path) {
            let open = Some((*version, text.clone()));
            self.check_policy(PolicyCheck { path: path.to_path_buf(), open });
            return;
        }
        let problems = check_text(path, text);
        let diagnostics = diagnostics(text, &problems, self.encoding, SOURCE);
        let _ = self.output.send(Output::Diagnostics {
            path: path.to_path_buf(),
            version: Some(*version),
            diagnostics,
        });
    }

    /// The hover of a `cron:` value in a workflow file: its next runs. `Err` with the path when
    /// the file is not open: its text is read from disk off the loop ([`cron_hover`]).
    pub(super) fn workflow_hover(
        &self,
        path: &Path,
        position: Position,
    ) -> Result<Option<(TextRange, String)>, PathBuf> {
        if !validate::is_workflow_file(&self.root, path) {
            return Ok(None);
        }
        match self.workflows.open.get(path) {
            Some((_, text)) => Ok(cron_hover(text, position, self.encoding)),
            None => Err(path.to_path_buf()),
        }
    }
}

/// The hover of a `cron:` value at `position` of a workflow file's `text`: its next runs.
pub(super) fn cron_hover(
    text: &str,
    position: Position,
    encoding: PositionEncoding,
) -> Option<(TextRange, String)> {
    let index = LineIndex::new(text);
    let offset = index.offset(text, position, encoding);
    let line_start = index.line_range(position.line).map_or(offset, |r| r.start);
    let column = text.get(line_start..offset).map_or(0, |s| s.chars().count()) as u32 + 1;
    let at = Pos { line: position.line + 1, column };
    let (span, markdown) = validate::cron_hover(text, at, chrono::Utc::now())?;
    let range = TextRange {
        start: position_of(text, &index, span.start, encoding),
        end: position_of(text, &index, span.end, encoding),
    };
    Some((range, markdown))
}

fn diagnostics(
    text: &str,
    problems: &[Problem],
    encoding: PositionEncoding,
    source: &str,
) -> Arc<[FileDiagnostic]> {
    let index = LineIndex::new(text);
    problems
        .iter()
        .map(|p| {
            let start = position_of(text, &index, Pos { line: p.line, column: p.column }, encoding);
            let end = position_of(text, &index, Pos { line: p.end_line, column: p.end_column }, encoding);
            let end = if end <= start {
                Position { line: start.line, character: start.character + 1 }
            } else {
                end
            };
            FileDiagnostic {
                range: TextRange { start, end },
                severity: match p.severity {
                    parse::Severity::Error => Severity::Error,
                    parse::Severity::Warning => Severity::Warning,
                },
                category: Category::Build,
                message: p.message.clone(),
                source: source.to_owned(),
                code: None,
                fingerprint: classify::fingerprint(&p.message, Category::Build, None),
                symbol: None,
                related: Vec::new(),
                fix_id: None,
            }
        })
        .collect()
}

/// A 1-based line and character column as an editor position.
fn position_of(text: &str, index: &LineIndex, at: Pos, encoding: PositionEncoding) -> Position {
    let Some(range) = index.line_range(at.line.saturating_sub(1)) else {
        return index.position(text, text.len(), encoding);
    };
    let line = text[range.clone()].trim_end_matches(['\n', '\r']);
    let byte = line.char_indices().nth(at.column.saturating_sub(1) as usize).map_or(line.len(), |(b, _)| b);
    index.position(text, range.start + byte, encoding)
}
