//! Verifying a fix with the checker that reported the problem, without touching the user's
//! files: the workspace is mirrored into a scratch directory outside it, the fix is written
//! there, the checker runs there, and its problems are compared with what it reported before.
//!
//! The mirror is kept between verifications and brought up to date by size and modification
//! time, so only what changed is copied again; a copy keeps its original's modification time,
//! so that build tools reuse what they built there last time. Directories the ignore rules leave
//! out but the tools need (`node_modules`, virtual environments) are linked, not copied; Cargo
//! builds into a target directory of the mirror's own. One verification runs at a time per
//! workspace (a lock file), across processes.
//!
//! A mirror has a size limit ([`max_bytes`]): the workspace's files are not copied past it (the
//! verification fails and says so), and Cargo's builds in it are thrown away when they take the
//! mirror past it. Mirrors of workspaces that no longer exist, or unused for [`STALE_AFTER`], are
//! removed by [`remove_stale`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::run::{self, RunError};
use super::{Checker, Format, Problem};
use crate::classify::Severity;
use crate::watch::{self, IgnoreRules};

/// Directories left out by the ignore rules that tools read from where they are: linked into
/// the mirror next to the file that needs them.
const LINKED: &[&str] = &["node_modules", ".venv", "venv", ".tox"];

/// The default of [`max_bytes`]: 4 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// The environment variable that sets [`max_bytes`], in bytes.
pub const MAX_BYTES_ENV: &str = "ACAS_SCRATCH_MAX_BYTES";

/// A mirror unused this long is removed at the next start.
pub const STALE_AFTER: Duration = Duration::from_secs(14 * 24 * 3600);

/// The most bytes one workspace's mirror may hold: `ACAS_SCRATCH_MAX_BYTES`, else
/// [`DEFAULT_MAX_BYTES`].
pub fn max_bytes() -> u64 {
    std::env::var(MAX_BYTES_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_BYTES)
}

/// Where the mirrors are: `$XDG_CACHE_HOME/acas/scratch`, else `~/.cache/acas/scratch`, else
/// under the system's temporary directory.
pub fn scratch_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("acas").join("scratch")
}

/// The file in a mirror's base that names its workspace; its modification time is the
/// mirror's last use.
const OWNER_FILE: &str = "workspace";

/// Removes the mirrors in `scratch` of workspaces that no longer exist, and those unused for
/// `stale_after` (by the time of their last verification), but those a verification holds now.
/// Answers the directories removed.
pub fn remove_stale(scratch: &Path, stale_after: Duration) -> Vec<PathBuf> {
    use std::os::fd::AsRawFd;
    let Ok(entries) = std::fs::read_dir(scratch) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let base = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let owner = std::fs::read_to_string(base.join(OWNER_FILE)).ok();
        let gone = owner.as_deref().is_some_and(|root| !Path::new(root.trim_end_matches('\n')).is_dir());
        let used = [base.join(OWNER_FILE), base.join("lock"), base.clone()]
            .iter()
            .find_map(|p| std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok());
        let stale = used.is_some_and(|t| t.elapsed().is_ok_and(|age| age > stale_after));
        if !gone && !stale {
            continue;
        }
        // A mirror a verification holds is left alone.
        let lock = std::fs::OpenOptions::new().write(true).open(base.join("lock"));
        if let Ok(lock) = &lock
            // SAFETY: flock on a descriptor this function owns; released when it is closed.
            && unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1
        {
            continue;
        }
        if std::fs::remove_dir_all(&base).is_ok() {
            removed.push(base);
        }
        drop(lock);
    }
    removed
}

/// What verifying a fix showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The problem is gone and the checker reports no new error.
    Verified { checker: String, elapsed: Duration },
    /// The checker still reports the problem.
    StillReported { checker: String, problem: Problem },
    /// The problem is gone but the fix brings new errors (the first few).
    NewErrors { checker: String, problems: Vec<Problem> },
}

/// Why a fix could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot prepare the scratch copy of the workspace in {}: {message}", dir.display())]
    Mirror { dir: PathBuf, message: String },
    #[error(
        "the workspace's files come to {}, more than the scratch copy's limit of {}: set {MAX_BYTES_ENV} (bytes) to verify fixes by their checker here",
        human(*size),
        human(*limit)
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("the fix edits {}, which is not a file of the workspace", path.display())]
    Outside { path: PathBuf },
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A workspace's scratch mirror.
#[derive(Debug, Clone)]
pub struct Mirror {
    root: PathBuf,
    /// The mirror's base directory: the copy is in `tree/`, Cargo's builds in `cargo-target/`.
    base: PathBuf,
    ignore: Vec<String>,
    max_bytes: u64,
}

impl Mirror {
    /// The mirror of the workspace at `root`, under the user's cache directory
    /// (`$XDG_CACHE_HOME/acas/scratch/<hash of the root>`, else `~/.cache/...`, else the
    /// system's temporary directory), with the extra ignore globs of the configuration.
    pub fn for_workspace(root: &Path, ignore: &[String]) -> Mirror {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
        let name: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Mirror::at(root, &scratch_dir().join(name), ignore)
    }

    /// The mirror of `root` in `base`, limited to [`max_bytes`].
    pub fn at(root: &Path, base: &Path, ignore: &[String]) -> Mirror {
        Mirror {
            root: root.to_path_buf(),
            base: base.to_path_buf(),
            ignore: ignore.to_vec(),
            max_bytes: max_bytes(),
        }
    }

    /// The same mirror, limited to `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Mirror {
        self.max_bytes = max_bytes;
        self
    }

    fn tree(&self) -> PathBuf {
        self.base.join("tree")
    }

    /// Verifies a fix: `edits` are the new contents of files of the workspace; `target` is the
    /// problem the fix is for and `before` everything the checker reported on the workspace as
    /// it is (the target among them).
    pub async fn verify(
        &self,
        checker: &Checker,
        edits: &[(PathBuf, String)],
        target: &Problem,
        before: &[Problem],
        cancel: &CancellationToken,
    ) -> Result<Verdict, VerifyError> {
        let started = Instant::now();
        for (path, _) in edits {
            if !path.starts_with(&self.root) || !path.is_file() {
                return Err(VerifyError::Outside { path: path.clone() });
            }
        }
        let mirror = self.clone();
        let edits_owned = edits.to_vec();
        let lock = tokio::task::spawn_blocking(move || -> Result<std::fs::File, VerifyError> {
            let lock = mirror.lock()?;
            mirror.mark_used();
            mirror.sync()?;
            mirror.write_edits(&edits_owned)?;
            Ok(lock)
        })
        .await
        .map_err(|e| VerifyError::Mirror { dir: self.base.clone(), message: e.to_string() })??;

        let scratch_checker = self.relocate(checker);
        let after = Arc::new(Mutex::new(Vec::new()));
        let result = {
            let after = after.clone();
            let mut on_problem = move |p: Problem| after.lock().unwrap_or_else(|e| e.into_inner()).push(p);
            run::run(&scratch_checker, cancel, &mut on_problem).await
        };
        // The edited files go back to the workspace's text, marked newer than anything built
        // from the fix so that the next run rebuilds them.
        let mirror = self.clone();
        let edited: Vec<PathBuf> = edits.iter().map(|(p, _)| p.clone()).collect();
        let _ = tokio::task::spawn_blocking(move || {
            mirror.restore(&edited);
            mirror.trim_builds();
            drop(lock);
        })
        .await;
        let outcome = result;
        let after: Vec<Problem> = std::mem::take(&mut *after.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|p| self.back(p))
            .collect();
        match outcome {
            Ok(_) => {}
            // A run that failed without readable problems and a clean run look alike to a
            // judge only when the checker printed nothing: that is not a verification.
            Err(error) => return Err(error.into()),
        }
        Ok(judge(&checker.name, &self.root, target, before, &after, started.elapsed()))
    }

    /// Takes the mirror's lock, waiting for another verification of this workspace to end.
    fn lock(&self) -> Result<std::fs::File, VerifyError> {
        use std::os::fd::AsRawFd;
        let error =
            |e: std::io::Error| VerifyError::Mirror { dir: self.base.clone(), message: e.to_string() };
        std::fs::create_dir_all(&self.base).map_err(error)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.base.join("lock"))
            .map_err(error)?;
        // SAFETY: flock on a descriptor this function owns; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == -1 {
            return Err(error(std::io::Error::last_os_error()));
        }
        Ok(file)
    }

    /// Notes which workspace the mirror is of, and that it is used now.
    fn mark_used(&self) {
        let _ = std::fs::write(self.base.join(OWNER_FILE), self.root.as_os_str().as_encoded_bytes());
    }

    /// Throws Cargo's builds in the mirror away when they take it past its limit (the next
    /// verification builds again).
    fn trim_builds(&self) {
        let builds = self.base.join("cargo-target");
        if !builds.is_dir() {
            return;
        }
        let total = size_of(&self.tree()).saturating_add(size_of(&builds));
        if total > self.max_bytes {
            tracing::info!(
                "the scratch copy in {} holds {}, over its limit of {} ({MAX_BYTES_ENV}): removing its Cargo builds",
                self.base.display(),
                human(total),
                human(self.max_bytes)
            );
            let _ = std::fs::remove_dir_all(&builds);
        }
    }

    /// Brings the mirror up to date with the workspace.
    fn sync(&self) -> Result<(), VerifyError> {
        let error =
            |e: std::io::Error| VerifyError::Mirror { dir: self.base.clone(), message: e.to_string() };
        let tree = self.tree();
        std::fs::create_dir_all(&tree).map_err(error)?;
        let rules = Arc::new(IgnoreRules::new(&self.root, &self.ignore));
        let files = Mutex::new(Vec::new());
        let dirs = Mutex::new(Vec::new());
        watch::walk(&rules, &self.root, &|f| files.lock().unwrap_or_else(|e| e.into_inner()).push(f), &|d| {
            dirs.lock().unwrap_or_else(|e| e.into_inner()).push(d)
        });
        let files = files.into_inner().unwrap_or_else(|e| e.into_inner());
        let dirs = dirs.into_inner().unwrap_or_else(|e| e.into_inner());
        let size = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum::<u64>();
        if size > self.max_bytes {
            return Err(VerifyError::TooLarge { size, limit: self.max_bytes });
        }
        let mut wanted: HashSet<PathBuf> = HashSet::new();
        for file in &files {
            let Ok(relative) = file.strip_prefix(&self.root) else { continue };
            let copy = tree.join(relative);
            wanted.insert(copy.clone());
            copy_if_changed(file, &copy).map_err(error)?;
        }
        for dir in dirs.iter().chain(std::iter::once(&self.root)) {
            let Ok(relative) = dir.strip_prefix(&self.root) else { continue };
            for name in LINKED {
                let original = dir.join(name);
                if original.is_dir() {
                    let link = tree.join(relative).join(name);
                    wanted.insert(link.clone());
                    if std::fs::read_link(&link).ok().as_deref() != Some(original.as_path()) {
                        let _ = std::fs::remove_file(&link);
                        if let Some(parent) = link.parent() {
                            std::fs::create_dir_all(parent).map_err(error)?;
                        }
                        std::os::unix::fs::symlink(&original, &link).map_err(error)?;
                    }
                }
            }
        }
        remove_unwanted(&tree, &wanted);
        Ok(())
    }

    fn write_edits(&self, edits: &[(PathBuf, String)]) -> Result<(), VerifyError> {
        for (path, text) in edits {
            let copy = self.in_tree(path);
            std::fs::write(&copy, text).map_err(|e| VerifyError::Mirror {
                dir: self.base.clone(),
                message: format!("{}: {e}", copy.display()),
            })?;
        }
        Ok(())
    }

    fn restore(&self, edited: &[PathBuf]) {
        for path in edited {
            let copy = self.in_tree(path);
            if std::fs::copy(path, &copy).is_err() {
                let _ = std::fs::remove_file(&copy);
            }
        }
    }

    /// `path` of the workspace, in the mirror.
    fn in_tree(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(relative) => self.tree().join(relative),
            Err(_) => path.to_path_buf(),
        }
    }

    /// The checker, run in the mirror: its directory and the workspace's paths in its command
    /// point into the mirror; Cargo builds into the mirror's own target directory.
    fn relocate(&self, checker: &Checker) -> Checker {
        let root = self.root.to_string_lossy().into_owned();
        let tree = self.tree().to_string_lossy().into_owned();
        let mut scratch = checker.clone();
        scratch.cwd = self.in_tree(&checker.cwd);
        scratch.command = checker.command.iter().map(|a| a.replace(&root, &tree)).collect();
        if let Format::Pytest { junit_xml } = &mut scratch.format {
            *junit_xml = self.in_tree(junit_xml);
        }
        if let Format::Crash { root } = &mut scratch.format {
            *root = self.tree();
        }
        if checker.command.first().is_some_and(|p| p == "cargo" || p.ends_with("/cargo")) {
            let target = self.base.join("cargo-target").to_string_lossy().into_owned();
            scratch.command.insert(1, format!("--config=build.target-dir={target:?}"));
        }
        scratch
    }

    /// A problem found in the mirror, with its paths in the workspace.
    fn back(&self, mut problem: Problem) -> Problem {
        let tree = self.tree();
        let fix = |path: &mut PathBuf| {
            if let Ok(relative) = path.strip_prefix(&tree) {
                *path = self.root.join(relative);
            }
        };
        fix(&mut problem.span.path);
        problem.related.iter_mut().for_each(|r| fix(&mut r.span.path));
        problem.fixes.iter_mut().flat_map(|f| f.edits.iter_mut()).for_each(|e| fix(&mut e.span.path));
        problem
    }
}

/// `bytes` as a person reads it: `3 GiB`, `12 MiB`, `16 KiB`, `100 bytes`.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The bytes of the files under `dir`, links not followed.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

/// Copies `from` to `to` unless `to` has its size and modification time, and gives the copy the
/// original's modification time.
fn copy_if_changed(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(from)?;
    if let Ok(copy) = std::fs::symlink_metadata(to)
        && copy.is_file()
        && copy.len() == meta.len()
        && copy.modified().ok() == meta.modified().ok()
    {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to)?;
    if let Ok(modified) = meta.modified() {
        std::fs::File::options().write(true).open(to)?.set_modified(modified)?;
    }
    Ok(())
}

/// Removes what the mirror holds that the workspace no longer has (links are removed, never
/// followed).
fn remove_unwanted(tree: &Path, wanted: &HashSet<PathBuf>) {
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if !wanted.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// What a problem is, whatever its line: the fix may move it.
fn key(root: &Path, p: &Problem) -> (PathBuf, String, Option<String>, String) {
    let path = p.span.path.strip_prefix(root).unwrap_or(&p.span.path).to_path_buf();
    let message = crate::classify::external::fingerprint_message(&p.message);
    (path, p.source.clone(), p.code.clone(), message)
}

/// Compares the checker's problems before and after the fix.
fn judge(
    checker: &str,
    root: &Path,
    target: &Problem,
    before: &[Problem],
    after: &[Problem],
    elapsed: Duration,
) -> Verdict {
    let count = |problems: &[Problem]| {
        let mut counts: HashMap<_, usize> = HashMap::new();
        for p in problems.iter().filter(|p| p.severity == Severity::Error) {
            *counts.entry(key(root, p)).or_default() += 1;
        }
        counts
    };
    let (was, is) = (count(before), count(after));
    let target_key = key(root, target);
    let before_target = was.get(&target_key).copied().unwrap_or(0).max(1);
    if is.get(&target_key).copied().unwrap_or(0) >= before_target {
        let problem =
            after.iter().find(|p| key(root, p) == target_key).cloned().unwrap_or_else(|| target.clone());
        return Verdict::StillReported { checker: checker.to_owned(), problem };
    }
    let new: Vec<Problem> = after
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .filter(|p| {
            let k = key(root, p);
            is.get(&k).copied().unwrap_or(0) > was.get(&k).copied().unwrap_or(0)
        })
        .take(5)
        .cloned()
        .collect();
    if new.is_empty() {
        Verdict::Verified { checker: checker.to_owned(), elapsed }
    } else {
        Verdict::NewErrors { checker: checker.to_owned(), problems: new }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::{ColumnUnit, Kind, Matcher};

    /// A checker that reports every line holding `BAD` in the workspace's `.txt` files.
    fn grep_checker(root: &Path) -> Checker {
        Checker {
            name: "badwords".to_owned(),
            command: vec![
                "sh".to_owned(),
                "-c".to_owned(),
                r"grep -rHn --include='*.txt' BAD . | sed -E 's/^\.\/([^:]+):([0-9]+):.*/\1:\2:1: the word BAD/'; true"
                    .to_owned(),
            ],
            cwd: root.to_path_buf(),
            format: Format::Matcher(Matcher {
                pattern: regex::Regex::new(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$").unwrap(),
                source: "badwords".to_owned(),
                severity: Severity::Error,
                columns: ColumnUnit::Bytes,
            }),
            kind: Kind::Check,
            on_save: true,
            on_start: false,
            files: Vec::new(),
            timeout: None,
        }
    }

    async fn problems(checker: &Checker) -> Vec<Problem> {
        let mut found = Vec::new();
        run::run(checker, &CancellationToken::new(), &mut |p| found.push(p)).await.unwrap();
        found
    }

    struct Setup {
        _dir: tempfile::TempDir,
        root: PathBuf,
        mirror: Mirror,
        checker: Checker,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("node_modules/lib")).unwrap();
        std::fs::write(root.join("docs/a.txt"), "fine\nBAD here\n").unwrap();
        std::fs::write(root.join("b.txt"), "all good\n").unwrap();
        let mirror = Mirror::at(&root, &dir.path().join("scratch"), &[]);
        let checker = grep_checker(&root);
        Setup { _dir: dir, root, mirror, checker }
    }

    #[tokio::test]
    async fn a_fix_that_removes_the_problem_is_verified_and_the_workspace_is_untouched() {
        let s = setup();
        let before = problems(&s.checker).await;
        assert_eq!(before.len(), 1);
        let a = s.root.join("docs/a.txt");
        let modified = std::fs::metadata(&a).unwrap().modified().unwrap();
        let fix = vec![(a.clone(), "fine\nGOOD here\n".to_owned())];
        let verdict =
            s.mirror.verify(&s.checker, &fix, &before[0], &before, &CancellationToken::new()).await.unwrap();
        assert!(matches!(verdict, Verdict::Verified { .. }), "{verdict:?}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "fine\nBAD here\n");
        assert_eq!(std::fs::metadata(&a).unwrap().modified().unwrap(), modified);
        // Tools find the ignored directories they need through links.
        let link = s.mirror.tree().join("node_modules");
        assert_eq!(std::fs::read_link(link).unwrap(), s.root.join("node_modules"));
    }

    #[tokio::test]
    async fn a_fix_that_leaves_the_problem_or_moves_it_is_not_verified() {
        let s = setup();
        let before = problems(&s.checker).await;
        let a = s.root.join("docs/a.txt");
        let still = vec![(a.clone(), "BAD moved up\nfine\n".to_owned())];
        let verdict = s
            .mirror
            .verify(&s.checker, &still, &before[0], &before, &CancellationToken::new())
            .await
            .unwrap();
        let Verdict::StillReported { problem, .. } = verdict else { panic!("{verdict:?}") };
        assert_eq!((problem.span.path.clone(), problem.span.start.line), (a.clone(), 1));

        let elsewhere =
            vec![(a.clone(), "fine\n".to_owned()), (s.root.join("b.txt"), "BAD now\n".to_owned())];
        let verdict = s
            .mirror
            .verify(&s.checker, &elsewhere, &before[0], &before, &CancellationToken::new())
            .await
            .unwrap();
        let Verdict::NewErrors { problems, .. } = verdict else { panic!("{verdict:?}") };
        assert_eq!(problems[0].span.path, s.root.join("b.txt"));
    }

    #[tokio::test]
    async fn the_mirror_follows_the_workspace_between_verifications() {
        let s = setup();
        let before = problems(&s.checker).await;
        let fix = vec![(s.root.join("docs/a.txt"), "fine\n".to_owned())];
        s.mirror.verify(&s.checker, &fix, &before[0], &before, &CancellationToken::new()).await.unwrap();
        // A file deleted from the workspace leaves the mirror; a new one appears there.
        std::fs::remove_file(s.root.join("b.txt")).unwrap();
        std::fs::write(s.root.join("c.txt"), "BAD too\n").unwrap();
        let before = problems(&s.checker).await;
        assert_eq!(before.len(), 2);
        let target = before.iter().find(|p| p.span.path.ends_with("c.txt")).unwrap().clone();
        let fix = vec![(s.root.join("c.txt"), "ok\n".to_owned())];
        let verdict =
            s.mirror.verify(&s.checker, &fix, &target, &before, &CancellationToken::new()).await.unwrap();
        assert!(matches!(verdict, Verdict::Verified { .. }), "{verdict:?}");
        assert!(!s.mirror.tree().join("b.txt").exists());
    }

    #[tokio::test]
    async fn a_fix_outside_the_workspace_is_refused() {
        let s = setup();
        let before = problems(&s.checker).await;
        let fix = vec![(PathBuf::from("/etc/hostname"), "x".to_owned())];
        let error = s
            .mirror
            .verify(&s.checker, &fix, &before[0], &before, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::Outside { .. }), "{error:?}");
    }
}
