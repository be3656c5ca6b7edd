//! The files on disk: the initial walk, the watcher, rescans after lost events, and the disk
//! analyses whose results come back as [`Event::Analyzed`].
//!
//! Files are read and parsed on the [`DiskQueue`]'s threads, never on the loop; the loop only
//! applies their results, newest first ([`Workspace::disk_seq`]). The watcher's own thread keeps
//! the set of known files and records file events in the store; the loop queues what changed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Event, Handle, MessageLevel, Output, Progress, Workspace, now_ms, relative, shared};
use crate::analysis::{Analyzed, DiskQueue, FileDiagnostic, Outcome};
use crate::classify::Language;
use crate::config;
use crate::files;
use crate::store::{self, Record, Store};
use crate::text::PositionEncoding;
use crate::watch::{self, Change, Watcher};

/// This many changes between walks is a burst (a branch switch, a build): reconcile with a walk
/// once it settles.
const BURST: usize = 1000;
/// Quiet time after a burst before the reconciling walk.
const RECONCILE_AFTER: Duration = Duration::from_millis(500);
/// File events are written to the store in batches of this size.
const RECORD_BATCH: usize = 1000;

/// The initial scan, while it runs.
pub(super) struct ScanState {
    pub(super) started: std::time::Instant,
    pub(super) walked: Option<usize>,
    pub(super) analyzed: usize,
    pub(super) diagnostics: usize,
}

impl Workspace {
    pub(super) fn start_watcher(&mut self) {
        let store = self.store.clone();
        let handle = self.handle.clone();
        let root = self.root.clone();
        let known = self.known.clone();
        let found_deleted = self.found_deleted.clone();
        let records = self.records_files.clone();
        let fence = self.fence.clone();
        let consumer = move |mut batch: watch::Batch| {
            track(&known, &found_deleted, &mut batch.changes);
            if let Some(store) = &store
                && records.load(Ordering::SeqCst)
                && let Some(fence) = shared::current(&fence)
            {
                record_changes(store, &root, &batch.changes, &fence);
            }
            handle.send(Event::Files(batch));
        };
        match Watcher::start(self.rules.clone(), self.config.debounce, consumer) {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                self.watch_error = None;
            }
            Err(error) => {
                self.watch_error = Some(error.to_string());
                let text = format!(
                    "cannot watch {} for changes: {error}; restart ACAS to try again",
                    self.root.display()
                );
                self.message(MessageLevel::Warning, text);
            }
        }
    }

    /// Walks the workspace on a thread of its own, queueing every file for analysis.
    pub(super) fn start_walk(&mut self, rescan: bool) {
        if !rescan {
            self.scan = Some(ScanState {
                started: std::time::Instant::now(),
                walked: None,
                analyzed: 0,
                diagnostics: 0,
            });
            self.progress(Progress::Begin { title: "Scanning workspace".into() });
        }
        let rules = self.watcher.as_ref().map_or_else(|| self.rules.clone(), |w| w.rules());
        self.walking += 1;
        let queue = self.queue.clone();
        let handle = self.handle.clone();
        // Each directory is watched as the walk reaches it, before it is listed: a file created
        // while the walk runs is found by the listing, an event, or both.
        let watch = self.watcher.as_ref().map(|w| w.handle());
        // A rescan finds what events missed and records it, on the walk's thread: that takes a
        // look at the file system for every file that differs.
        let recorder = Recorder {
            known: self.known.clone(),
            found_deleted: self.found_deleted.clone(),
            store: self.store.clone(),
            records_files: self.records_files.clone(),
            fence: self.fence.clone(),
            root: self.root.clone(),
        };
        std::thread::Builder::new()
            .name("acas-walk".into())
            .spawn(move || {
                let files = Mutex::new(HashSet::new());
                watch::walk(
                    &rules,
                    rules.root(),
                    &|file| {
                        queue.enqueue(file.clone());
                        files.lock().unwrap().insert(file);
                    },
                    &|dir| {
                        if let Some(watch) = &watch {
                            watch.watch(&dir);
                        }
                    },
                );
                let files = files.into_inner().unwrap();
                let missed = if rescan { recorder.missed(&files) } else { Vec::new() };
                handle.send(Event::WalkDone { files, rescan, missed });
            })
            .expect("spawning the workspace walk");
    }

    /// Queues a file for analysis on the disk threads.
    pub(super) fn analyse(&mut self, path: PathBuf) {
        self.queue.enqueue(path.clone());
        self.analysing.insert(path);
    }

    pub(super) fn files_changed(&mut self, batch: watch::Batch) {
        for change in &batch.changes {
            if let Change::Renamed { from, .. } = change {
                self.analyse(from.clone());
            }
            self.analyse(change.path().to_path_buf());
        }
        self.changes_since_walk += batch.changes.len();
        self.last_change = std::time::Instant::now();
        if self.changes_since_walk >= BURST && !self.reconcile_scheduled {
            // Kernel queues drop events in a burst, not always saying so: walk once it settles.
            self.reconcile_scheduled = true;
            self.schedule_reconcile(RECONCILE_AFTER);
        }
        self.workflow_triggers_files(&batch);
        if batch.rescan {
            if let Some(watcher) = &self.watcher {
                self.rules = watcher.rules();
            }
            self.start_walk(true);
        }
        for change in &batch.changes {
            if change.path() == config::path(&self.root) {
                self.reload_config();
            }
            if self.is_run_list(change.path()) {
                self.run_list_changed(change.path());
            }
            self.symbols_changed(change);
            if let Change::Renamed { from, .. } = change {
                self.checker_saved(from, false);
            }
            self.checker_saved(change.path(), false);
        }
        self.workflow_files_changed(&batch.changes);
        if !batch.changes.is_empty() {
            let _ = self.output.send(Output::Changes(batch.changes));
        }
    }

    pub(super) fn reconcile(&mut self) {
        let quiet = self.last_change.elapsed();
        if quiet < RECONCILE_AFTER {
            self.schedule_reconcile(RECONCILE_AFTER - quiet);
        } else {
            self.reconcile_scheduled = false;
            self.changes_since_walk = 0;
            self.start_walk(true);
        }
    }

    pub(super) fn analyzed(&mut self, analyzed: Analyzed) {
        self.analysing.remove(&analyzed.path);
        self.apply_analyzed(analyzed);
        // Whatever the file was, the queue may be empty now: the scan may be over.
        self.report_scan();
    }

    fn apply_analyzed(&mut self, analyzed: Analyzed) {
        let Analyzed { path, seq, outcome } = analyzed;
        let last = self.disk_seq.entry(path.clone()).or_insert(0);
        if seq < *last {
            return;
        }
        *last = seq;
        if let Some(scan) = &mut self.scan {
            scan.analyzed += 1;
        }
        let diagnostics: Arc<[FileDiagnostic]> = match outcome {
            Outcome::Parsed { language, diagnostics, .. } => {
                self.count_parsed(&path, Some(language));
                if let Some(scan) = &mut self.scan {
                    scan.diagnostics += diagnostics.len();
                }
                diagnostics.into()
            }
            Outcome::NotSource => {
                self.count_parsed(&path, None);
                return;
            }
            Outcome::Skipped(files::Skip::Vanished | files::Skip::NotAFile) => {
                self.count_parsed(&path, None);
                Arc::from(Vec::new())
            }
            Outcome::Skipped(skip) => {
                self.count_parsed(&path, None);
                tracing::info!("skipped {}: {skip}", path.display());
                Arc::from(Vec::new())
            }
        };
        self.apply_disk(&path, diagnostics);
    }

    /// Counts `path` as a parsed file of `language`, or no longer as one.
    fn count_parsed(&mut self, path: &Path, language: Option<Language>) {
        let before = match language {
            Some(language) => self.parsed.insert(path.to_path_buf(), language),
            None => self.parsed.remove(path),
        };
        if let Some(before) = before
            && let Some(count) = self.languages.get_mut(&before)
        {
            *count -= 1;
            if *count == 0 {
                self.languages.remove(&before);
            }
        }
        if let Some(language) = language {
            *self.languages.entry(language).or_default() += 1;
        }
    }

    pub(super) fn walk_done(&mut self, files: HashSet<PathBuf>, rescan: bool, missed: Vec<Change>) {
        self.walking = self.walking.saturating_sub(1);
        if rescan {
            // Events were lost: what appeared or vanished meanwhile was found (and recorded) by
            // the walk.
            if !missed.is_empty() {
                for change in &missed {
                    if let Change::Deleted(path) = change {
                        self.analyse(path.clone());
                    }
                }
                let _ = self.output.send(Output::Changes(missed));
            }
            // Files that went out of view lose their diagnostics.
            let gone: Vec<PathBuf> =
                self.disk_published.keys().filter(|p| !files.contains(*p)).cloned().collect();
            for path in gone {
                self.apply_disk(&path, Arc::from(Vec::new()));
            }
        } else {
            if let Some(scan) = &mut self.scan {
                scan.walked = Some(files.len());
            }
            // Keep what events added while the walk ran.
            self.known.lock().unwrap_or_else(|e| e.into_inner()).extend(files);
            self.load_symbol_indexes();
        }
        self.report_scan();
    }

    fn report_scan(&mut self) {
        let Some(scan) = &self.scan else { return };
        let pending = self.queue.pending();
        match scan.walked {
            Some(total) if pending == 0 => {
                let message = format!(
                    "{} files parsed, {} syntax errors, in {:.1} s",
                    self.parsed.len(),
                    scan.diagnostics,
                    scan.started.elapsed().as_secs_f64()
                );
                self.scan = None;
                tracing::info!("scan of {total} entries done: {message}");
                release_memory();
                self.progress(Progress::End { message });
            }
            walked => {
                if scan.analyzed % 500 == 0 {
                    let percentage = walked.map(|t| (scan.analyzed * 100 / t.max(1)).min(100) as u32);
                    let message = format!("{} files", scan.analyzed);
                    self.progress(Progress::Report { message, percentage });
                }
            }
        }
    }

    fn schedule_reconcile(&self, after: Duration) {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            handle.send(Event::Reconcile);
        });
    }

    /// A new analysis pool, for a changed size limit.
    pub(super) fn restart_queue(&mut self) {
        self.queue = start_queue(
            &self.handle,
            &self.root,
            self.analysis_threads,
            self.config.max_file_size,
            self.encoding,
        );
    }
}

pub(super) fn start_queue(
    handle: &Handle,
    root: &Path,
    threads: usize,
    max_size: u64,
    encoding: PositionEncoding,
) -> DiskQueue {
    let handle = handle.clone();
    DiskQueue::start(root.to_path_buf(), threads, max_size, encoding, move |done| {
        handle.send(Event::Analyzed(done))
    })
}

/// What a rescan needs to find and record the changes that events missed.
struct Recorder {
    known: Arc<Mutex<HashSet<PathBuf>>>,
    found_deleted: Arc<Mutex<HashSet<PathBuf>>>,
    store: Option<Store>,
    records_files: Arc<std::sync::atomic::AtomicBool>,
    fence: shared::FenceCell,
    root: PathBuf,
}

impl Recorder {
    /// The files that appeared or vanished without an event, found by comparing a walk's
    /// `files` with the known files; records them when this process records file events.
    fn missed(&self, files: &HashSet<PathBuf>) -> Vec<Change> {
        // Events for files that changed while the walk ran may be in `known` already, or still
        // on their way: only what the file system confirms now is a missed change.
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let created: Vec<PathBuf> =
            files.iter().filter(|p| !known.contains(*p) && p.symlink_metadata().is_ok()).cloned().collect();
        let deleted: Vec<PathBuf> =
            known.iter().filter(|p| !files.contains(*p) && p.symlink_metadata().is_err()).cloned().collect();
        known.extend(created.iter().cloned());
        for path in &deleted {
            known.remove(path);
        }
        // Their events may still be on their way: recorded once, here.
        *self.found_deleted.lock().unwrap_or_else(|e| e.into_inner()) = deleted.iter().cloned().collect();
        drop(known);
        let mut missed: Vec<Change> = created.into_iter().map(Change::Created).collect();
        missed.extend(deleted.into_iter().map(Change::Deleted));
        if !missed.is_empty() {
            tracing::info!("rescan found {} changes that no event reported", missed.len());
            if let Some(store) = &self.store
                && self.records_files.load(Ordering::SeqCst)
                && let Some(fence) = shared::current(&self.fence)
            {
                record_changes(store, &self.root, &missed, &fence);
            }
        }
        missed
    }
}

/// Keeps the set of known files current, reports a modification of a file never seen as its
/// creation (its creation event was lost), and drops the deletion of a file that a rescan found
/// deleted already (and recorded).
fn track(
    known: &Mutex<HashSet<PathBuf>>,
    found_deleted: &Mutex<HashSet<PathBuf>>,
    changes: &mut Vec<Change>,
) {
    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
    let mut found_deleted = found_deleted.lock().unwrap_or_else(|e| e.into_inner());
    changes.retain_mut(|change| {
        match change {
            Change::Created(p) => {
                found_deleted.remove(p);
                known.insert(p.clone());
            }
            Change::Modified(p) => {
                found_deleted.remove(p);
                if known.insert(p.clone()) {
                    *change = Change::Created(p.clone());
                }
            }
            Change::Deleted(p) => {
                if found_deleted.remove(p) {
                    return false;
                }
                known.remove(p);
            }
            Change::Renamed { from, to } => {
                found_deleted.remove(to);
                known.remove(from);
                known.insert(to.clone());
            }
        }
        true
    });
}

fn record_changes(store: &Store, root: &Path, changes: &[Change], fence: &store::Fence) {
    let at_ms = now_ms();
    for chunk in changes.chunks(RECORD_BATCH) {
        let records = chunk
            .iter()
            .map(|change| {
                let (kind, path, to_path) = match change {
                    Change::Created(p) => (store::FileEventKind::Created, p, None),
                    Change::Modified(p) => (store::FileEventKind::Modified, p, None),
                    Change::Deleted(p) => (store::FileEventKind::Deleted, p, None),
                    Change::Renamed { from, to } => (store::FileEventKind::Renamed, from, Some(to)),
                };
                let size = std::fs::symlink_metadata(change.path()).ok().map(|m| m.len());
                let event = store::FileEvent {
                    at_ms,
                    kind,
                    path: relative(root, path),
                    to_path: to_path.map(|p| relative(root, p)),
                    size: if matches!(kind, store::FileEventKind::Deleted) { None } else { size },
                    language: Language::from_path(change.path()).map(|l| l.id().to_owned()),
                };
                Record::FencedFile { fence: fence.clone(), event }
            })
            .collect();
        store.record(records);
    }
}

/// Hands memory freed after a burst of allocations (the scan) back to the system.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap structures; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a burst the kernel drops events and a rescan records the deletions it finds; the
    /// deletion events still on their way are then not recorded a second time.
    #[test]
    fn a_deletion_a_rescan_recorded_is_not_recorded_again_by_its_late_event() {
        let (gone, other, back) =
            (PathBuf::from("/w/gone"), PathBuf::from("/w/other"), PathBuf::from("/w/back"));
        let known = Mutex::new(HashSet::from([other.clone()]));
        let found_deleted = Mutex::new(HashSet::from([gone.clone(), back.clone()]));
        let mut changes = vec![
            Change::Deleted(gone.clone()),
            Change::Deleted(other.clone()),
            Change::Created(back.clone()),
            Change::Deleted(back.clone()),
            Change::Deleted(gone.clone()),
        ];
        track(&known, &found_deleted, &mut changes);
        assert_eq!(
            changes,
            [
                Change::Deleted(other),
                Change::Created(back.clone()),
                Change::Deleted(back),
                Change::Deleted(gone)
            ],
            "the first late deletion of `gone` is dropped; `back` came back, so its deletion is new"
        );
        assert!(found_deleted.lock().unwrap().is_empty());
    }
}
