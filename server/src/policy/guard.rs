//! The policy files held as they were while a workflow step runs, and handed down to what the
//! step starts.
//!
//! A step's command is judged before it runs, but what it does with files cannot all be known
//! then (a link made by the script itself, `git checkout` of a branch with another policy, a
//! program that writes where its arguments say). So the policy files are also checked at the
//! moment they matter:
//! - [`Guard::take`] keeps the bytes of every policy file that applies (the workspace's, the
//!   user's, and those inherited from an enclosing run) before the command starts, and
//!   [`Guard::restore`] puts back any the command changed, removed, created or replaced with a
//!   link, once its tree has ended: the step then fails, naming the files.
//! - While a step runs, every policy this process loads first puts its files back as they were
//!   kept ([`hold`], called by `Policy::load`), so a step that started meanwhile (a parallel
//!   step, the next one of a chain) is never judged by what a running step wrote. Every step
//!   that was running then fails. The first kept version holds: a new guard is taken only after
//!   the running ones put their files back.
//! - [`Guard::pins`] gives each file's hash for the step's supervisor label
//!   ([`crate::process_tree::Label`]): an `acas` the step starts reads them from there
//!   ([`inherited`]) and judges by these files, each only with the content it had when the step
//!   started (`Policy::load`), whatever its environment or `--workspace` say.
//!
//! It does not judge anything and does not stop a change while the command runs; the file a
//! process reads during the step is checked against its pin instead.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use crate::process_tree::PinnedFile;

/// The guards of the steps running in this process.
static ACTIVE: LazyLock<Mutex<Vec<Arc<Kept>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// Puts back every policy file a running step's guard kept and that changed since; each step
/// running then is told when it ends. Nothing when no step runs.
pub fn hold() {
    let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for kept in &active {
        tell_running(&put_back_changed(&kept.files));
    }
}

/// Tells every running step what was put back: any of them may have changed it.
fn tell_running(told: &[String]) {
    if told.is_empty() {
        return;
    }
    for kept in ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        kept.told.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(told);
    }
}

/// The pinned policy files of the run whose step started this process; empty outside a run.
pub fn inherited() -> Vec<PinnedFile> {
    crate::process_tree::enclosing().and_then(|e| e.label).map(|label| label.policy).unwrap_or_default()
}

/// The policy files that apply in `root`, each with the root its patterns are written from: the
/// workspace's, the user's, and the inherited ones.
fn files(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut files = vec![(root.join(super::WORKSPACE_FILE), root.clone())];
    files.extend(super::user_path().map(|user| (user, root.clone())));
    for pin in inherited() {
        if !files.iter().any(|(path, _)| *path == pin.path) {
            files.push((pin.path, pin.root));
        }
    }
    files
}

/// One file as it was: the link its directory was and the link it was (their targets), and its
/// bytes (`None`: no file).
#[derive(Debug, Clone, PartialEq)]
struct State {
    parent: Option<PathBuf>,
    link: Option<PathBuf>,
    bytes: Option<Vec<u8>>,
}

impl State {
    fn read(path: &Path) -> State {
        State {
            parent: path.parent().and_then(|p| std::fs::read_link(p).ok()),
            link: std::fs::read_link(path).ok(),
            bytes: read_capped(path),
        }
    }
}

/// At most one byte more than a policy file may hold: a larger file is not a policy, and a
/// changed one is told from the first bytes that differ or from its length.
fn read_capped(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return Some(b"\0not a file".to_vec());
    }
    let mut bytes = Vec::new();
    file.take(super::parse::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// What a guard kept: each file with its root and state, and what was put back while it ran.
#[derive(Debug)]
struct Kept {
    files: Vec<(PathBuf, PathBuf, State)>,
    told: Mutex<Vec<String>>,
}

/// The policy files as they were before a step's command started, held while it runs.
#[derive(Debug)]
pub struct Guard {
    kept: Arc<Kept>,
}

impl Guard {
    /// Keeps every policy file that applies in `root`, once the guards of the steps already
    /// running have put theirs back.
    pub fn take(root: &Path) -> Guard {
        hold();
        let files = files(root)
            .into_iter()
            .map(|(path, root)| {
                let state = State::read(&path);
                (path, root, state)
            })
            .collect();
        let kept = Arc::new(Kept { files, told: Mutex::new(Vec::new()) });
        ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).push(kept.clone());
        Guard { kept }
    }

    /// Each file with the hash of its content as kept, for the step's supervisor label; none
    /// when there was no policy file at all (nothing to hold to, as before policies existed).
    pub fn pins(&self) -> Vec<PinnedFile> {
        use sha2::{Digest, Sha256};
        if self.kept.files.iter().all(|(_, _, state)| state.bytes.is_none() && state.link.is_none()) {
            return Vec::new();
        }
        self.kept
            .files
            .iter()
            .map(|(path, root, state)| PinnedFile {
                path: path.clone(),
                root: root.clone(),
                sha256: state
                    .bytes
                    .as_ref()
                    .map(|bytes| Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()),
            })
            .collect()
    }

    /// Puts back every kept file that is not as it was, and says what was put back while the
    /// step ran or now (or could not be): one sentence per file, none when nothing changed.
    /// Without any policy file nothing is guarded, as before policies existed: a file a step
    /// creates then stays.
    pub fn restore(self) -> Vec<String> {
        ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|k| !Arc::ptr_eq(k, &self.kept));
        let now = put_back_changed(&self.kept.files);
        tell_running(&now);
        let mut told = std::mem::take(&mut *self.kept.told.lock().unwrap_or_else(|e| e.into_inner()));
        told.extend(now);
        told
    }
}

impl Drop for Guard {
    /// A step given up midway (its task dropped) still puts the files back and stops holding them.
    fn drop(&mut self) {
        ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|k| !Arc::ptr_eq(k, &self.kept));
        tell_running(&put_back_changed(&self.kept.files));
    }
}

/// Puts back each of `files` that is not as kept; one sentence per file put back (or not).
fn put_back_changed(files: &[(PathBuf, PathBuf, State)]) -> Vec<String> {
    let mut told = Vec::new();
    if files.iter().all(|(_, _, state)| state.bytes.is_none() && state.link.is_none()) {
        return told;
    }
    for (path, _, before) in files {
        if State::read(path) == *before {
            continue;
        }
        match put_back(path, before) {
            Ok(()) => {
                tracing::warn!("a workflow step changed the policy file {}; it was put back", path.display());
                told.push(format!("{} was changed and is put back as it was", path.display()));
            }
            Err(e) => {
                tracing::error!(
                    "a workflow step changed the policy file {}; putting it back failed: {e}",
                    path.display()
                );
                told.push(format!(
                    "{} was changed and putting it back failed ({e}): check it before the next run",
                    path.display()
                ));
            }
        }
    }
    told
}

fn put_back(path: &Path, before: &State) -> std::io::Result<()> {
    // The directory the file is in may have been swapped for a link or a file: as it was again
    // first, so that what is written lands where the policy is read from.
    if let Some(parent) = path.parent()
        && std::fs::read_link(parent).ok() != before.parent
    {
        match std::fs::symlink_metadata(parent) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => std::fs::remove_file(parent)?,
            Err(_) => {}
        }
        match &before.parent {
            Some(target) => std::os::unix::fs::symlink(target, parent)?,
            None => std::fs::create_dir_all(parent)?,
        }
    }
    if let Some(parent) = path.parent()
        && before.parent.is_none()
        && (before.bytes.is_some() || before.link.is_some())
    {
        match std::fs::symlink_metadata(parent) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(parent)?;
                std::fs::create_dir_all(parent)?;
            }
            Err(_) => std::fs::create_dir_all(parent)?,
        }
    }
    let now = std::fs::symlink_metadata(path);
    if let Ok(meta) = &now {
        let same_link = before.link.is_some() && std::fs::read_link(path).ok() == before.link;
        if meta.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else if !same_link {
            std::fs::remove_file(path)?;
        }
    }
    if let Some(target) = &before.link
        && std::fs::read_link(path).ok().as_ref() != Some(target)
    {
        std::os::unix::fs::symlink(target, path)?;
    }
    match &before.bytes {
        Some(bytes) if before.link.is_none() => {
            // Written beside it and renamed over it: a reader never sees half a policy.
            // A new file, never one that is there: a link planted under that name is not followed.
            let temp = path.with_extension(format!("restore-{}", std::process::id()));
            let _ = std::fs::remove_file(&temp);
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
            std::io::Write::write_all(&mut file, bytes)?;
            std::fs::rename(&temp, path)
        }
        // A link is followed to the file it names, which is written in place.
        Some(bytes) => {
            if read_capped(path).as_ref() != Some(bytes) {
                std::fs::write(path, bytes)?;
            }
            Ok(())
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Outcome, Policy};

    #[test]
    fn a_policy_loaded_while_a_step_runs_is_the_one_kept_and_the_step_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let file = root.join(crate::policy::WORKSPACE_FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let strict = "defaults:\n  commands:\n    deny: [\"curl\"]\n";
        std::fs::write(&file, strict).unwrap();
        let guard = Guard::take(&root);
        // What a running step does: the policy replaced by a link to an open one.
        std::fs::write(root.join("open.yaml"), "agents: {}\n").unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(root.join("open.yaml"), &file).unwrap();
        let run =
            Action::Command { argv: vec!["curl".to_owned(), "x".to_owned()], start: Default::default() };
        assert_eq!(Policy::load(&root).decide("cli", &run).outcome, Outcome::Deny);
        assert!(std::fs::symlink_metadata(&file).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), strict);
        let told = guard.restore();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("is put back as it was"), "{told:?}");
        // Once the step ended, the file is a person's to change again.
        std::fs::write(&file, "agents: {}\n").unwrap();
        assert_eq!(Policy::load(&root).decide("cli", &run).outcome, Outcome::Allow);
    }
}
