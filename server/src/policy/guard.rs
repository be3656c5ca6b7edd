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
//! - [`Guard::pins`] gives each file's hash for the step's supervisor label
//!   ([`crate::process_tree::Label`]): an `acas` the step starts reads them from there
//!   ([`inherited`]) and judges by these files, each only with the content it had when the step
//!   started (`Policy::load`), whatever its environment or `--workspace` say.
//!
//! It does not judge anything and does not stop a change while the command runs; the file a
//! process reads during the step is checked against its pin instead.

use std::path::{Path, PathBuf};

use crate::process_tree::PinnedFile;

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

/// The policy files as they were before a step's command started.
#[derive(Debug, Clone)]
pub struct Guard {
    kept: Vec<(PathBuf, PathBuf, State)>,
}

impl Guard {
    /// Keeps every policy file that applies in `root`.
    pub fn take(root: &Path) -> Guard {
        Guard { kept: files(root).into_iter().map(|(path, root)| { let state = State::read(&path); (path, root, state) }).collect() }
    }

    /// Each file with the hash of its content as kept, for the step's supervisor label.
    pub fn pins(&self) -> Vec<PinnedFile> {
        use sha2::{Digest, Sha256};
        self.kept
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

    /// Puts back every kept file that is not as it was, and says what was put back (or could not
    /// be): one sentence per file, none when nothing changed.
    /// Without any policy file nothing is guarded, as before policies existed: a file a step
    /// creates then stays.
    pub fn restore(&self) -> Vec<String> {
        let mut told = Vec::new();
        if self.kept.iter().all(|(_, _, state)| state.bytes.is_none() && state.link.is_none()) {
            return told;
        }
        for (path, _, before) in &self.kept {
            if State::read(path) == *before {
                continue;
            }
            match put_back(path, before) {
                Ok(()) => {
                    tracing::warn!("a workflow step changed the policy file {}; it was put back", path.display());
                    told.push(format!("{} was changed and is put back as it was", path.display()));
                }
                Err(e) => {
                    tracing::error!("a workflow step changed the policy file {}; putting it back failed: {e}", path.display());
                    told.push(format!(
                        "{} was changed and putting it back failed ({e}): check it before the next run",
                        path.display()
                    ));
                }
            }
        }
        told
    }
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
            let temp = path.with_extension(format!("restore-{}", std::process::id()));
            std::fs::write(&temp, bytes)?;
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
