//! Keeping actions inside the workspace.
//!
//! A path given to an action is workspace-relative, or absolute inside the workspace. [`resolve`]
//! turns it into the real path to act on, refusing a `..` that climbs out, an absolute path
//! elsewhere, and a symlink, at any component, that leads outside the workspace or nowhere. `..`
//! is applied to the text of the path, never handed to the operating system, so `link/..` means
//! the workspace itself whatever `link` points to. [`lexical`] does the textual part alone, for
//! paths the file system does not resolve (git pathspecs, diagnostics).
//!
//! The check gives clear messages; the operating system enforces the confinement where the path
//! is used. [`Root`] is the workspace opened as a directory handle (`cap-std`): every file
//! action opens, creates, renames and deletes relative to it, and the kernel refuses any step
//! that leaves it at that moment (on Linux `openat2` with `RESOLVE_BENEATH`, elsewhere a walk of
//! the path one component at a time without following symlinks blindly). A directory swapped
//! for a symlink between the check and the use therefore makes the action fail, never act
//! outside. Symlinks whose target stays inside the workspace keep working.
//!
//! ACAS's own files in `.acas/` (the database `state.db` and its `-wal`, `-shm` and `-journal`
//! files) are not for workflow file actions: writing, appending to, copying over, moving and
//! deleting them, or the `.acas` directory itself, is refused, whatever path or link leads there.
//! [`refuse_internal`] checks the names for a clear message; [`Root::entry`] makes the check
//! that holds at the moment of use: it opens the directory holding the last component as a
//! handle, compares that handle's identity (device and inode) with `.acas`'s and the
//! workspace's, and the caller then acts on the name relative to that same handle, so a
//! directory swapped for a symlink in between changes nothing. Reading them is allowed.
//!
//! [`Root::entry`] also asks the kernel where the opened directory really is (Linux:
//! `/proc/self/fd`): an entry that lands in `.acas` although the path as given does not name
//! `.acas` (a link, made or swapped in at any moment, leads there) is refused, and so is
//! `.acas/policy.yaml` whatever path names it, so that no policy rule about the given path can
//! let a run change the policy, the workflows or the state. Elsewhere only the identity checks
//! above apply.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::ActionError;

/// The directory of ACAS's own files, at the workspace root.
const INTERNAL_DIR: &str = ".acas";
/// The policy file in [`INTERNAL_DIR`].
const POLICY_FILE: &str = "policy.yaml";
/// ACAS's own files in [`INTERNAL_DIR`]: its database and the files SQLite keeps beside it.
const INTERNAL_FILES: [&str; 4] = ["state.db", "state.db-wal", "state.db-shm", "state.db-journal"];

/// The workspace opened as a directory handle; every file action acts through it.
#[derive(Debug)]
pub struct Root {
    dir: Dir,
    /// The workspace's canonical path.
    real: PathBuf,
    /// Device and inode of the workspace directory.
    id: (u64, u64),
    /// Device and inode of `.acas`, when it exists.
    internal: Option<(u64, u64)>,
}

/// The last component of a path, as a name in its directory opened as a handle. Acting on
/// `name` relative to `parent` acts on what [`Root::entry`] checked, whatever happens to the
/// path meanwhile.
#[derive(Debug)]
pub struct Entry {
    pub parent: Dir,
    pub name: OsString,
}

#[cfg(unix)]
fn id_of(meta: &cap_std::fs::Metadata) -> (u64, u64) {
    use cap_std::fs::MetadataExt;
    (meta.dev(), meta.ino())
}
#[cfg(not(unix))]
fn id_of(_meta: &cap_std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

impl Root {
    pub fn open(workspace: &Path) -> Result<Self, ActionError> {
        let cannot = |e: std::io::Error| {
            ActionError::new(format!("cannot open the workspace {}: {e}", workspace.display()))
        };
        let real = std::fs::canonicalize(workspace).map_err(cannot)?;
        let dir = Dir::open_ambient_dir(&real, ambient_authority()).map_err(cannot)?;
        let id = id_of(&dir.dir_metadata().map_err(cannot)?);
        let internal = dir.symlink_metadata(INTERNAL_DIR).ok().filter(|m| m.is_dir()).map(|m| id_of(&m));
        Ok(Self { dir, real, id, internal })
    }

    /// Opens the directory holding `path`'s last component and refuses the entry when it is
    /// the workspace itself, `.acas`, or one of ACAS's own files, judged by the identity of the
    /// opened directory and of the entry (not followed). With `subtree`, a directory entry is
    /// also refused when `.acas` is somewhere inside it. Act on [`Entry::name`] relative to
    /// [`Entry::parent`] only.
    pub fn entry(&self, path: &Resolved, subtree: bool) -> Result<Entry, ActionError> {
        let shown = &path.relative;
        let cannot =
            |e: std::io::Error| ActionError::new(format!("cannot open the directory of `{shown}`: {e}"));
        let name = path
            .beneath
            .file_name()
            .ok_or_else(|| {
                ActionError::new(format!("`{shown}` is the workspace itself; name a file inside it"))
            })?
            .to_os_string();
        let parent = match path.beneath.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => self.dir.open_dir(parent),
            None => self.dir.try_clone(),
        }
        .map_err(cannot)?;
        refuse_through_link(&parent, &self.real, &name, path)?;
        let parent_id = id_of(&parent.dir_metadata().map_err(cannot)?);
        if parent_id == self.id && name == INTERNAL_DIR {
            return Err(internal_error(shown, INTERNAL_DIR));
        }
        if Some(parent_id) == self.internal
            && let Some(file) = INTERNAL_FILES.iter().find(|f| name == **f)
        {
            return Err(internal_error(shown, &format!("{INTERNAL_DIR}/{file}")));
        }
        if let Ok(meta) = parent.symlink_metadata(&name) {
            let id = id_of(&meta);
            if id == self.id {
                return Err(ActionError::new(format!(
                    "`{shown}` is the workspace itself; name a file inside it"
                )));
            }
            if let Some(internal) = self.internal_named(id) {
                return Err(internal_error(shown, &internal));
            }
            if subtree && meta.is_dir() && self.internal.is_some() {
                let dir = parent.open_dir(&name).map_err(cannot)?;
                if self.holds_internal(&dir).map_err(cannot)? {
                    return Err(ActionError::new(format!(
                        "`{shown}` is refused: it holds `{INTERNAL_DIR}`, where ACAS keeps its run history and state, and workflow file actions cannot change it"
                    )));
                }
            }
        }
        Ok(Entry { parent, name })
    }

    /// The name of ACAS's own file or directory with this identity.
    fn internal_named(&self, id: (u64, u64)) -> Option<String> {
        if Some(id) == self.internal {
            return Some(INTERNAL_DIR.to_owned());
        }
        INTERNAL_FILES.iter().find_map(|name| {
            let meta = self.dir.symlink_metadata(Path::new(INTERNAL_DIR).join(name)).ok()?;
            (id_of(&meta) == id).then(|| format!("{INTERNAL_DIR}/{name}"))
        })
    }

    /// Whether `.acas` is somewhere below `dir` (symlinks are not followed).
    fn holds_internal(&self, dir: &Dir) -> std::io::Result<bool> {
        for entry in dir.entries()? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if Some(id_of(&entry.metadata()?)) == self.internal || self.holds_internal(&entry.open_dir()?)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The handle: give it [`Resolved::beneath`] paths.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Refuses `file`, just opened, when it is one of ACAS's own files (reached through a hard
    /// link, or a link swapped in after the check).
    pub fn refuse_opened_internal(&self, file: &std::fs::File, shown: &str) -> Result<(), ActionError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let opened =
                file.metadata().map_err(|e| ActionError::new(format!("cannot write `{shown}`: {e}")))?;
            for name in INTERNAL_FILES {
                let internal = self.real.join(INTERNAL_DIR).join(name);
                if let Ok(meta) = std::fs::symlink_metadata(&internal)
                    && (meta.dev(), meta.ino()) == (opened.dev(), opened.ino())
                {
                    return Err(internal_error(shown, &format!("{INTERNAL_DIR}/{name}")));
                }
            }
        }
        #[cfg(not(unix))]
        let _ = (file, shown);
        Ok(())
    }
}

/// Where an opened directory really is, from the kernel; `None` where it cannot say.
#[cfg(target_os = "linux")]
fn real_location(dir: &Dir) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()
}
#[cfg(not(target_os = "linux"))]
fn real_location(_dir: &Dir) -> Option<PathBuf> {
    None
}

/// Refuses acting on `name` in `parent` when the directory, as opened now, is `.acas` or beneath
/// it but the path as given is not: a link (made or swapped in at any moment before) leads
/// there, into the policy, the workflows or the state, which no rule about the given path
/// covers. The policy file itself is refused whatever path names it.
fn refuse_through_link(
    parent: &Dir,
    root: &Path,
    name: &OsString,
    path: &Resolved,
) -> Result<(), ActionError> {
    let Some(real) = real_location(parent) else { return Ok(()) };
    let Ok(below) = real.strip_prefix(root) else { return Ok(()) };
    let location = below.join(name);
    let internal = Path::new(INTERNAL_DIR);
    if location == internal.join(POLICY_FILE) {
        return Err(ActionError::new(format!(
            "`{}` is refused: it is `{INTERNAL_DIR}/{POLICY_FILE}`, the policy, which a person changes and a run never does",
            path.relative
        )));
    }
    if location.starts_with(internal) && !Path::new(&path.relative).starts_with(internal) {
        return Err(ActionError::new(format!(
            "`{}` is refused: it leads through a link to `{}`, inside `{INTERNAL_DIR}` where ACAS keeps its policy, workflows and state; name `{INTERNAL_DIR}` paths as they are, never through a link",
            path.relative,
            location.display()
        )));
    }
    Ok(())
}

fn internal_error(shown: &str, internal: &str) -> ActionError {
    let via = if shown == internal { String::new() } else { format!(" (it is `{internal}`)") };
    ActionError::new(format!(
        "`{shown}` is refused{via}: ACAS keeps its run history and state there, and workflow file actions cannot change it; use a path outside `{INTERNAL_DIR}/state.db*`"
    ))
}

/// Refuses a path that is one of ACAS's own files in `.acas/`, or the `.acas` directory itself,
/// for an action that would change it.
pub fn refuse_internal(path: &Resolved) -> Result<(), ActionError> {
    let parts: Vec<_> = path.beneath.components().collect();
    let internal = match parts.as_slice() {
        [Component::Normal(dir)] if *dir == INTERNAL_DIR => Some(INTERNAL_DIR.to_owned()),
        [Component::Normal(dir), Component::Normal(name)]
            if *dir == INTERNAL_DIR && name.to_str().is_some_and(|n| INTERNAL_FILES.contains(&n)) =>
        {
            Some(format!("{INTERNAL_DIR}/{}", name.to_string_lossy()))
        }
        _ => None,
    };
    match internal {
        Some(internal) => Err(internal_error(&path.relative, &internal)),
        None => Ok(()),
    }
}

/// Whether the last component of a path is followed when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Reading or writing goes through a symlink to what it points to.
    All,
    /// Deleting or moving a symlink acts on the symlink itself.
    ExceptLast,
}

/// A path inside the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The path to act on, with the symlinks it goes through resolved.
    pub real: PathBuf,
    /// The path as given, normalised, relative to the workspace, with `/` separators.
    pub relative: String,
    /// `real` relative to the workspace: the path to give [`Root::dir`].
    pub beneath: PathBuf,
}

/// The components of `path` below the workspace root, `..` applied textually. Empty for the
/// workspace itself.
pub fn lexical(workspace: &Path, path: &str) -> Result<Vec<OsString>, ActionError> {
    if path.is_empty() {
        return Err(ActionError::new("the path is empty; give a path inside the workspace"));
    }
    let given = Path::new(path);
    let below = if given.is_absolute() {
        let canonical = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
        given.strip_prefix(workspace).or_else(|_| given.strip_prefix(&canonical)).map_err(|_| {
            ActionError::new(format!(
                "`{path}` is outside the workspace ({}); give a path inside it",
                workspace.display()
            ))
        })?
    } else {
        given
    };
    let mut parts = Vec::new();
    for component in below.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(ActionError::new(format!(
                        "`{path}` climbs out of the workspace with `..`; give a path inside it"
                    )));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ActionError::new(format!("`{path}` is outside the workspace")));
            }
        }
    }
    Ok(parts)
}

/// `parts` joined with `/`.
pub fn relative(parts: &[OsString]) -> String {
    parts.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Resolves `path` to a file or directory inside the workspace (never the workspace itself),
/// following symlinks as `follow` says and refusing any that leaves the workspace.
pub fn resolve(workspace: &Path, path: &str, follow: Follow) -> Result<Resolved, ActionError> {
    let parts = lexical(workspace, path)?;
    if parts.is_empty() {
        return Err(ActionError::new(format!("`{path}` is the workspace itself; name a file inside it")));
    }
    let root = std::fs::canonicalize(workspace)
        .map_err(|e| ActionError::new(format!("cannot open the workspace {}: {e}", workspace.display())))?;
    let mut real = root.clone();
    for (i, part) in parts.iter().enumerate() {
        let next = real.join(part);
        let shown = relative(&parts[..=i]);
        match std::fs::symlink_metadata(&next) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Nothing more exists below: the rest is plain names inside `real`.
                real = parts[i..].iter().fold(real, |p, part| p.join(part));
                break;
            }
            Err(e) => return Err(ActionError::new(format!("cannot read `{shown}`: {e}"))),
            Ok(meta) if meta.file_type().is_symlink() => {
                if i + 1 == parts.len() && follow == Follow::ExceptLast {
                    real = next;
                    break;
                }
                let target = std::fs::canonicalize(&next).map_err(|_| {
                    ActionError::new(format!(
                        "`{path}` is refused: `{shown}` is a symlink to something that does not exist"
                    ))
                })?;
                if !target.starts_with(&root) {
                    return Err(ActionError::new(format!(
                        "`{path}` is refused: `{shown}` is a symlink that leads outside the workspace (to {})",
                        target.display()
                    )));
                }
                real = target;
            }
            Ok(_) => real = next,
        }
    }
    if real == root {
        return Err(ActionError::new(format!("`{path}` is the workspace itself; name a file inside it")));
    }
    let beneath = real.strip_prefix(&root).map(Path::to_path_buf).unwrap_or_default();
    Ok(Resolved { real, relative: relative(&parts), beneath })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A workspace with `src/a.txt`, a directory `outside/` beside it holding `secret.txt`, and
    /// symlinks: `in_link` → `src`, `out_dir` → `outside`, `out_file` → `outside/secret.txt`,
    /// `src/up` → `..` (the workspace), `dangling` → `nowhere`.
    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(ws.join("src/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("outside/secret.txt"), "s").unwrap();
        symlink(ws.join("src"), ws.join("in_link")).unwrap();
        symlink(dir.path().join("outside"), ws.join("out_dir")).unwrap();
        symlink(dir.path().join("outside/secret.txt"), ws.join("out_file")).unwrap();
        symlink("..", ws.join("src/up")).unwrap();
        symlink("nowhere", ws.join("dangling")).unwrap();
        (dir, ws)
    }

    /// `Ok(relative)` or the error message, for each path.
    fn check(cases: &[(&str, Follow, Result<&str, &str>)]) {
        let (_dir, ws) = fixture();
        for (path, follow, expected) in cases {
            let path = path.replace("$WS", &ws.display().to_string());
            let got = resolve(&ws, &path, *follow);
            match (expected, &got) {
                (Ok(relative), Ok(resolved)) => {
                    assert_eq!(&resolved.relative, relative, "{path}");
                    let root = std::fs::canonicalize(&ws).unwrap();
                    assert!(resolved.real.starts_with(&root), "{path}: {resolved:?}");
                }
                (Err(message), Err(e)) => assert!(e.message.contains(message), "{path}: {}", e.message),
                _ => panic!("{path}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn paths_inside_the_workspace_resolve() {
        use Follow::*;
        check(&[
            ("src/a.txt", All, Ok("src/a.txt")),
            ("./src/../src/a.txt", All, Ok("src/a.txt")),
            ("$WS/src/a.txt", All, Ok("src/a.txt")),
            ("src/new/deeper.txt", All, Ok("src/new/deeper.txt")),
            ("in_link/a.txt", All, Ok("in_link/a.txt")),
            ("src/up/src/a.txt", All, Ok("src/up/src/a.txt")),
            // `..` after a symlink leaving the workspace is textual: this is `src/a.txt`.
            ("out_dir/../src/a.txt", All, Ok("src/a.txt")),
            // Deleting or moving a symlink acts on the link, which is inside.
            ("out_file", ExceptLast, Ok("out_file")),
            ("dangling", ExceptLast, Ok("dangling")),
        ]);
    }

    #[test]
    fn escapes_are_refused() {
        use Follow::*;
        check(&[
            ("../outside/secret.txt", All, Err("climbs out of the workspace with `..`")),
            ("src/../../outside/secret.txt", All, Err("climbs out of the workspace")),
            ("/etc/passwd", All, Err("`/etc/passwd` is outside the workspace")),
            ("$WS/../outside/secret.txt", All, Err("climbs out of the workspace")),
            ("out_file", All, Err("`out_file` is a symlink that leads outside the workspace")),
            ("out_dir/secret.txt", All, Err("`out_dir` is a symlink that leads outside the workspace")),
            ("out_dir/new.txt", All, Err("`out_dir` is a symlink that leads outside")),
            ("out_dir/secret.txt", ExceptLast, Err("`out_dir` is a symlink that leads outside")),
            ("dangling", All, Err("`dangling` is a symlink to something that does not exist")),
            ("", All, Err("the path is empty")),
            (".", All, Err("is the workspace itself")),
            ("src/up", All, Err("is the workspace itself")),
        ]);
    }

    /// A directory swapped for a link into `.acas` after the path was checked: the entry, opened
    /// at the moment of use, is refused.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_link_into_acas_swapped_in_after_the_check_is_refused_at_use() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join(".acas/workflows")).unwrap();
        std::fs::create_dir_all(ws.join("src/gated")).unwrap();
        std::fs::write(ws.join(".acas/policy.yaml"), "defaults: {}\n").unwrap();
        let root = Root::open(&ws).unwrap();
        let checked = resolve(&ws, "src/gated/policy.yaml", Follow::All).unwrap();
        assert!(root.entry(&checked, false).is_ok());
        std::fs::remove_dir(ws.join("src/gated")).unwrap();
        symlink("../.acas", ws.join("src/gated")).unwrap();
        let error = root.entry(&checked, false).unwrap_err();
        assert!(error.message.contains("policy"), "{}", error.message);
        let into_workflows = resolve(&ws, "src/gated/workflows/x.yaml", Follow::All).unwrap();
        let error = root.entry(&into_workflows, false).unwrap_err();
        assert!(error.message.contains("through a link"), "{}", error.message);
        // Named as it is, `.acas/workflows` is the policy's to judge, not refused here.
        let named = resolve(&ws, ".acas/workflows/x.yaml", Follow::All).unwrap();
        assert!(root.entry(&named, false).is_ok());
    }
}
