//! Watching a workspace: the initial walk and live file-system changes.
//!
//! [`walk`] lists the files of a workspace under the ignore rules, in parallel. [`Watcher`]
//! turns notify's debounced events into [`Change`]s under the same rules and hands them, in
//! batches, to one consumer. It watches each non-ignored directory on its own, so that `target/`
//! or `node_modules/` cost no watches and no events, and it walks a new directory as soon as it
//! appears so that files created inside it before the watch was in place are not missed. When
//! the kernel's event queue overflows it asks for a rescan rather than losing changes silently.
//!
//! This module reads no file contents and knows nothing of parsing, storage or editors.

mod ignore_rules;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};

pub use ignore_rules::{IgnoreRules, is_rules_file};

/// One change of one path, after debouncing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(PathBuf),
    Modified(PathBuf),
    Deleted(PathBuf),
    Renamed { from: PathBuf, to: PathBuf },
}

impl Change {
    /// The path whose contents are now current (the target of a rename).
    pub fn path(&self) -> &Path {
        match self {
            Change::Created(p) | Change::Modified(p) | Change::Deleted(p) => p,
            Change::Renamed { to, .. } => to,
        }
    }
}

/// What the watcher hands to its consumer.
#[derive(Debug, Default)]
pub struct Batch {
    pub changes: Vec<Change>,
    /// Events were lost (the kernel queue overflowed): the consumer should rescan everything.
    pub rescan: bool,
}

/// Walks the workspace and calls `on_file` for every file that is not ignored, and `on_dir`
/// for every directory, from two threads. Symlinks are not followed, so loops cannot occur.
pub fn walk(
    rules: &Arc<IgnoreRules>,
    start: &Path,
    on_file: &(dyn Fn(PathBuf) + Sync),
    on_dir: &(dyn Fn(PathBuf) + Sync),
) {
    let filter_rules = rules.clone();
    let walker = ignore::WalkBuilder::new(start)
        .standard_filters(false)
        .follow_links(false)
        .threads(2)
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !filter_rules.is_ignored_entry(entry.path(), is_dir)
        })
        .build_parallel();
    walker.run(|| {
        Box::new(|entry| {
            match entry {
                Ok(entry) => match entry.file_type() {
                    Some(t) if t.is_dir() => on_dir(entry.into_path()),
                    Some(t) if t.is_file() => on_file(entry.into_path()),
                    _ => {}
                },
                Err(error) => tracing::info!("walk: {error}"),
            }
            ignore::WalkState::Continue
        })
    });
}

/// A live watch of one workspace. Dropping it stops watching.
type SharedDebouncer = Arc<Mutex<Debouncer<notify::RecommendedWatcher, NoCache>>>;

pub struct Watcher {
    debouncer: Option<SharedDebouncer>,
    rules: Arc<RwLock<Arc<IgnoreRules>>>,
    pump: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `rules.root()`. Every batch of changes goes to `consumer`, on a thread of
    /// the watcher's own; the consumer may block (for back-pressure) without losing events.
    pub fn start(
        rules: Arc<IgnoreRules>,
        debounce: Duration,
        consumer: impl FnMut(Batch) + Send + 'static,
    ) -> notify::Result<Watcher> {
        let (tx, rx) = crossbeam_channel::unbounded::<DebounceEventResult>();
        let debouncer = new_debouncer_opt::<_, notify::RecommendedWatcher, NoCache>(
            debounce,
            None,
            move |result: DebounceEventResult| {
                let _ = tx.send(result);
            },
            NoCache,
            notify::Config::default(),
        )?;
        let debouncer = Arc::new(Mutex::new(debouncer));
        let rules = Arc::new(RwLock::new(rules));
        let watcher_root = rules.read().unwrap().root().to_path_buf();
        watch_dir(&debouncer, &watcher_root)?;
        let pump = Pump { debouncer: Arc::downgrade(&debouncer), rules: rules.clone(), consumer };
        let pump = std::thread::Builder::new()
            .name("acas-watch".into())
            .spawn(move || pump.run(rx))
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(Watcher { debouncer: Some(debouncer), rules, pump: Some(pump) })
    }

    /// A handle that adds watches from another thread (a walk's), for as long as the watcher
    /// lives.
    pub fn handle(&self) -> WatchHandle {
        WatchHandle(self.debouncer.as_ref().map_or_else(std::sync::Weak::new, Arc::downgrade))
    }

    /// The rules in force (they change when an ignore file changes).
    pub fn rules(&self) -> Arc<IgnoreRules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // The pump holds only a weak reference: dropping the debouncer here closes the event
        // channel, which ends the pump.
        if let Some(debouncer) = self.debouncer.take() {
            drop(debouncer);
        }
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
    }
}

/// Adds watches to a live [`Watcher`] from any thread; does nothing once it is dropped.
#[derive(Clone)]
pub struct WatchHandle(std::sync::Weak<Mutex<Debouncer<notify::RecommendedWatcher, NoCache>>>);

impl WatchHandle {
    /// Watches `dir` (not what is below it). A walk calls this as it reaches each directory,
    /// before the directory is listed, so that a file created in it meanwhile is seen by the
    /// listing, an event, or both; never by neither.
    pub fn watch(&self, dir: &Path) {
        let Some(debouncer) = self.0.upgrade() else { return };
        if let Err(error) = watch_dir(&debouncer, dir) {
            tracing::info!("cannot watch {}: {error}", dir.display());
        }
    }
}

/// Whether `path` is a directory itself, not a symbolic link to one: a link to a directory is
/// never walked or watched, so that a link planted while ACAS runs cannot bring files from
/// outside the workspace into it (the initial walk does not follow links either).
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn watch_dir(
    debouncer: &Mutex<Debouncer<notify::RecommendedWatcher, NoCache>>,
    dir: &Path,
) -> notify::Result<()> {
    debouncer.lock().unwrap_or_else(|e| e.into_inner()).watch(dir, RecursiveMode::NonRecursive)
}

struct Pump<F> {
    debouncer: std::sync::Weak<Mutex<Debouncer<notify::RecommendedWatcher, NoCache>>>,
    rules: Arc<RwLock<Arc<IgnoreRules>>>,
    consumer: F,
}

impl<F: FnMut(Batch)> Pump<F> {
    fn run(mut self, rx: crossbeam_channel::Receiver<DebounceEventResult>) {
        while let Ok(result) = rx.recv() {
            let mut batch = Batch::default();
            match result {
                Ok(events) => {
                    for event in events {
                        if event.need_rescan() {
                            batch.rescan = true;
                        }
                        self.convert(&event.event, &mut batch);
                    }
                }
                Err(errors) => {
                    for error in errors {
                        tracing::warn!("file watcher: {error}");
                        if matches!(error.kind, notify::ErrorKind::MaxFilesWatch) {
                            batch.rescan = true;
                        }
                    }
                }
            }
            if batch.rescan {
                tracing::info!("file events were lost (the kernel's queue overflowed); rescanning");
                self.rewatch_all();
            }
            if !batch.changes.is_empty() || batch.rescan {
                (self.consumer)(batch);
            }
        }
    }

    fn rules(&self) -> Arc<IgnoreRules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn convert(&mut self, event: &notify::Event, batch: &mut Batch) {
        let kind = event.kind;
        let paths = &event.paths;
        match kind {
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Other => {}
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if paths.len() == 2 => {
                let (from, to) = (paths[0].clone(), paths[1].clone());
                let rules = self.rules();
                let from_ignored = rules.is_ignored(&from, false);
                if is_real_dir(&to) {
                    if !from_ignored {
                        batch.changes.push(Change::Deleted(from));
                    }
                    self.new_dir(&to, batch);
                    return;
                }
                match (from_ignored, rules.is_ignored(&to, false)) {
                    (false, false) => batch.changes.push(Change::Renamed { from, to }),
                    (true, false) => batch.changes.push(Change::Created(to)),
                    (false, true) => batch.changes.push(Change::Deleted(from)),
                    (true, true) => {}
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                for path in paths {
                    self.push(Change::Deleted(path.clone()), batch);
                }
            }
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) => {
                for path in paths {
                    if is_real_dir(path) {
                        self.new_dir(path, batch);
                    } else {
                        self.push(Change::Created(path.clone()), batch);
                    }
                }
            }
            EventKind::Modify(_) | EventKind::Any => {
                for path in paths {
                    if !is_real_dir(path) {
                        self.push(Change::Modified(path.clone()), batch);
                    }
                }
            }
        }
    }

    fn push(&mut self, change: Change, batch: &mut Batch) {
        let rules = self.rules();
        if is_rules_file(rules.root(), change.path()) {
            self.reload_rules(change.path(), batch);
        }
        let rules = self.rules();
        if !rules.is_ignored(change.path(), false) {
            batch.changes.push(change);
        }
    }

    /// An ignore file changed: reload the rules and rescan, since files may have come into or
    /// gone out of view.
    fn reload_rules(&mut self, changed: &Path, batch: &mut Batch) {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        let name = changed.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match changed.parent() {
            Some(dir) if ignore_rules::IGNORE_FILES.contains(&name) => rules.invalidate(dir),
            _ => *rules = Arc::new(rules.reloaded()),
        }
        batch.rescan = true;
    }

    /// A directory appeared: watch it and everything below, and report its files as created.
    /// Each directory is watched before it is listed, so a file created in between is seen by
    /// the listing, an event, or both; never by neither.
    fn new_dir(&mut self, dir: &Path, batch: &mut Batch) {
        let rules = self.rules();
        if rules.is_ignored(dir, true) {
            return;
        }
        let Some(debouncer) = self.debouncer.upgrade() else { return };
        let files = Mutex::new(Vec::new());
        let watch = |d: PathBuf| {
            if let Err(error) = watch_dir(&debouncer, &d) {
                tracing::info!("cannot watch {}: {error}", d.display());
            }
        };
        walk(&rules, dir, &|f| files.lock().unwrap().push(f), &watch);
        batch.changes.extend(files.into_inner().unwrap().into_iter().map(Change::Created));
    }

    fn rewatch_all(&mut self) {
        let rules = self.rules();
        let dirs = Mutex::new(Vec::new());
        walk(&rules, rules.root(), &|_| {}, &|d| dirs.lock().unwrap().push(d));
        self.watch_dirs(dirs.into_inner().unwrap());
    }

    fn watch_dirs(&self, dirs: Vec<PathBuf>) {
        let Some(debouncer) = self.debouncer.upgrade() else {
            return;
        };
        for dir in dirs {
            if let Err(error) = watch_dir(&debouncer, &dir) {
                tracing::info!("cannot watch {}: {error}", dir.display());
            }
        }
    }
}
