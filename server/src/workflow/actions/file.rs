//! `file.read`, `file.write`, `file.append`, `file.copy`, `file.move` and `file.delete`, confined
//! to the workspace by [`confine`](super::confine): each path is checked, then used only through
//! the workspace's directory handle, so the operating system refuses it if it leaves the
//! workspace by then. ACAS's own files in `.acas/` cannot be changed.
//!
//! Only regular files are read or written: a FIFO, socket or device is refused (it is opened
//! without blocking and checked on the opened handle), so a step never hangs on one. No action
//! writes into a file that exists: `file.write`, `file.copy` and `file.append` fill a file they
//! create beside the target and rename it over the name (an append copies the old content
//! first, under an exclusive `flock` on the old file so that appends at once all keep their
//! text), so a hard link to a file outside, made or swapped in at any moment, is never written
//! through. A file with more than one hard link is refused all the same, with a message saying
//! why. A copy or an append never keeps setuid or setgid.
//!
//! Writes and appends are flushed to disk before the action returns, so a step recorded as
//! completed has its effect on disk even if the machine stops right after.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Value, json};

use super::confine::{self, Follow, Resolved, Root};
use super::schema::{Kind, Param, Spec};
use super::{ActionError, Args};

/// Largest file `file.read` returns unless `max_bytes` says otherwise.
const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

pub const READ: Spec = Spec {
    name: "file.read",
    summary: "Reads a UTF-8 text file of the workspace.",
    params: &[
        Param::required("path", Kind::String, "Workspace-relative path, or absolute inside the workspace."),
        Param::optional(
            "max_bytes",
            Kind::Integer,
            Some("1048576"),
            "Read at most this many bytes; a longer file is cut at a character boundary and `truncated` is `true`.",
        ),
    ],
    exclusive: &[],
    output: "`{content, size, path, truncated}`: the text, the file's size in bytes, the normalised workspace-relative path, and whether `content` was cut at `max_bytes`.",
};

pub const WRITE: Spec = Spec {
    name: "file.write",
    summary: "Writes a file of the workspace, replacing what it held.",
    params: &[
        Param::required("path", Kind::String, "Workspace-relative path, or absolute inside the workspace."),
        Param::required("content", Kind::Text, "The new content."),
        Param::optional("create_dirs", Kind::Boolean, Some("false"), "Create missing parent directories."),
    ],
    exclusive: &[],
    output: "`{path, bytes}`: the normalised path and the number of bytes written.",
};

pub const APPEND: Spec = Spec {
    name: "file.append",
    summary: "Appends to a file of the workspace, creating it when missing.",
    params: &[
        Param::required("path", Kind::String, "Workspace-relative path, or absolute inside the workspace."),
        Param::required("content", Kind::Text, "The text to append, as is (add `\\n` yourself)."),
    ],
    exclusive: &[],
    output: "`{path, bytes, size}`: the normalised path, the bytes appended and the file's new size.",
};

pub const COPY: Spec = Spec {
    name: "file.copy",
    summary: "Copies a file within the workspace.",
    params: &[
        Param::required("from", Kind::String, "The file to copy."),
        Param::required("to", Kind::String, "Where the copy goes; its directory must exist."),
        Param::optional("overwrite", Kind::Boolean, Some("false"), "Replace `to` when it exists."),
    ],
    exclusive: &[],
    output: "`{from, to, bytes}`.",
};

pub const MOVE: Spec = Spec {
    name: "file.move",
    summary: "Moves or renames a file or directory within the workspace. A symlink is moved itself, not what it points to.",
    params: &[
        Param::required("from", Kind::String, "The file or directory to move."),
        Param::required("to", Kind::String, "The new path; its directory must exist."),
        Param::optional(
            "overwrite",
            Kind::Boolean,
            Some("false"),
            "Replace `to` when it is an existing file.",
        ),
    ],
    exclusive: &[],
    output: "`{from, to}`.",
};

pub const DELETE: Spec = Spec {
    name: "file.delete",
    summary: "Deletes a file, a symlink (never what it points to) or, with `recursive`, a directory of the workspace.",
    params: &[
        Param::required("path", Kind::String, "Workspace-relative path, or absolute inside the workspace."),
        Param::optional(
            "missing_ok",
            Kind::Boolean,
            Some("false"),
            "Succeed when there is nothing to delete.",
        ),
        Param::optional(
            "recursive",
            Kind::Boolean,
            Some("false"),
            "Delete a directory and everything in it.",
        ),
    ],
    exclusive: &[],
    output: "`{path, deleted}`: `deleted` is `false` when the path did not exist and `missing_ok` is set.",
};

fn io_error(what: &str, path: &str, e: &std::io::Error) -> ActionError {
    ActionError::new(format!("cannot {what} `{path}`: {e}"))
}

/// `None` for a regular file, else what the file is, in words.
macro_rules! special_kind {
    ($file_type:expr, $ext:path) => {{
        let file_type = $file_type;
        #[cfg(unix)]
        use $ext;
        if file_type.is_file() {
            None
        } else if file_type.is_dir() {
            Some("a directory")
        } else if cfg!(unix) && file_type.is_fifo() {
            Some("a FIFO (named pipe)")
        } else if cfg!(unix) && file_type.is_socket() {
            Some("a socket")
        } else if cfg!(unix) && (file_type.is_block_device() || file_type.is_char_device()) {
            Some("a device")
        } else {
            Some("not a regular file")
        }
    }};
}

/// Refuses an opened file that is not a regular file.
fn refuse_special(file: &std::fs::File, what: &str, shown: &str) -> Result<std::fs::Metadata, ActionError> {
    let meta = file.metadata().map_err(|e| io_error(what, shown, &e))?;
    match special_kind!(meta.file_type(), std::os::unix::fs::FileTypeExt) {
        None => Ok(meta),
        Some(kind) => Err(ActionError::new(format!(
            "cannot {what} `{shown}`: it is {kind}; file actions work on regular files only"
        ))),
    }
}

/// Options that never block on opening a FIFO or device.
fn nonblocking() -> cap_std::fs::OpenOptions {
    let mut options = cap_std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options
}

/// Opens `path` for reading through the workspace handle, refusing anything but a regular file.
fn open_for_reading(
    root: &Root,
    path: &Resolved,
    what: &str,
) -> Result<(std::fs::File, std::fs::Metadata), ActionError> {
    // Reading ACAS's own files is allowed: no `Root::entry` check.
    let mut options = nonblocking();
    options.read(true);
    let file = root
        .dir()
        .open_with(&path.beneath, &options)
        .map_err(|e| io_error(what, &path.relative, &e))?
        .into_std();
    let meta = refuse_special(&file, what, &path.relative)?;
    Ok((file, meta))
}

/// Opens the workspace and resolves `path` in it.
fn open(workspace: &Path, path: &str, follow: Follow) -> Result<(Root, Resolved), ActionError> {
    let root = Root::open(workspace)?;
    let resolved = confine::resolve(workspace, path, follow)?;
    Ok((root, resolved))
}

/// How long `file.append` waits for another append to the same file (by ACAS or by a program
/// that takes the same lock, `flock`) to finish.
const APPEND_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Times `file.append` opens the file again because it was replaced before it could be locked
/// (by another append, or by a process racing it) before it gives up.
const APPEND_TRIES: usize = 100;

/// Numbers the temporary files of this process.
static NEXT_TEMPORARY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Creates a new file beside `entry`, for [`write_new`] and [`append_new`] to fill and rename
/// over the name. `create_new` makes sure the file did not exist: it is a file made here, which
/// no other name leads to, inside or outside the workspace.
fn create_temporary(
    entry: &confine::Entry,
    what: &str,
    shown: &str,
) -> Result<(String, std::fs::File), ActionError> {
    let temporary = format!(
        ".{}.acas-{}-{}.tmp",
        entry.name.to_string_lossy(),
        std::process::id(),
        NEXT_TEMPORARY.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let file =
        entry.parent.open_with(&temporary, &options).map_err(|e| io_error(what, shown, &e))?.into_std();
    Ok((temporary, file))
}

/// The refusal of a file with `links` hard links.
fn linked(what: &str, shown: &str, links: u64) -> ActionError {
    ActionError::new(format!(
        "cannot {what} `{shown}`: it has {links} hard links, and writing through one would change the others too, possibly outside the workspace; delete it first or write to a new file"
    ))
}

/// Refuses a regular file with other hard links, which writing through would change too.
fn refuse_linked(meta: &std::fs::Metadata, what: &str, shown: &str) -> Result<(), ActionError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.is_file() && meta.nlink() > 1 {
            return Err(linked(what, shown, meta.nlink()));
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, what, shown);
    Ok(())
}

/// Takes `file`'s exclusive `flock`, waiting up to [`APPEND_LOCK_WAIT`] while another append
/// holds it.
#[cfg(unix)]
fn lock(file: &std::fs::File, shown: &str) -> Result<(), ActionError> {
    use std::os::fd::AsRawFd;
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        // SAFETY: `file` is an open descriptor for the whole call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) && error.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(io_error("lock", shown, &error));
        }
        if started.elapsed() >= APPEND_LOCK_WAIT {
            return Err(ActionError::new(format!(
                "cannot append to `{shown}`: another process kept it locked (flock) for {} s; run the step again once it is done",
                APPEND_LOCK_WAIT.as_secs()
            )));
        }
        // Waiting for another append to end: no event tells when.
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}
#[cfg(not(unix))]
fn lock(_file: &std::fs::File, _shown: &str) -> Result<(), ActionError> {
    Ok(())
}

/// Whether `a` and `b` are the same file (device and inode).
fn same_file(a: &std::fs::Metadata, b: &cap_std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt as _;
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

/// Opens the file at `entry` to append to it, creating it empty when missing, and locks it
/// against other appends. The name is not followed (a symlink swapped in is refused), the opened
/// file must be a regular file with one link and not one of ACAS's own, and once locked the name
/// must still lead to it (another append replaces the file it locked: that one is opened again).
fn open_to_append(
    root: &Root,
    entry: &confine::Entry,
    shown: &str,
) -> Result<(std::fs::File, std::fs::Metadata), ActionError> {
    let what = "append to";
    for _ in 0..APPEND_TRIES {
        let mut options = nonblocking();
        options.read(true);
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
        }
        let file = match entry.parent.open_with(&entry.name, &options) {
            Ok(file) => file.into_std(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut create = cap_std::fs::OpenOptions::new();
                create.write(true).create_new(true);
                match entry.parent.open_with(&entry.name, &create) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io_error(what, shown, &e)),
                }
            }
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(ActionError::new(format!(
                    "cannot append to `{shown}`: it was replaced by a symbolic link while the step ran; run the step again"
                )));
            }
            Err(e) => return Err(io_error(what, shown, &e)),
        };
        refuse_special(&file, what, shown)?;
        root.refuse_opened_internal(&file, shown)?;
        refuse_linked(&file.metadata().map_err(|e| io_error(what, shown, &e))?, what, shown)?;
        lock(&file, shown)?;
        // Locked: what it holds and its permissions now are what the new file starts from.
        let meta = file.metadata().map_err(|e| io_error(what, shown, &e))?;
        refuse_linked(&meta, what, shown)?;
        match entry.parent.symlink_metadata(&entry.name) {
            Ok(named) if same_file(&meta, &named) => return Ok((file, meta)),
            // Replaced meanwhile (by another append): start again from the file there now.
            _ => continue,
        }
    }
    Err(ActionError::new(format!(
        "cannot append to `{shown}`: it was replaced {APPEND_TRIES} times while the step ran; run the step again"
    )))
}

/// Appends `content` to `path` without writing into the file that is there: a new file beside
/// it gets the old file's bytes, then `content`, then is renamed over the name. Bytes therefore
/// go only into a file made here, never into a file that exists, which a hard link made while the
/// action runs could share with a file outside the workspace: nothing outside changes, whatever
/// links are made, removed or swapped meanwhile. The new file keeps the old one's permissions
/// (without setuid and setgid) and, where this process may set them, its owner and group. Appends
/// to one file are serialised with `flock` on it, so concurrent ones are all kept. Returns the
/// file's new size.
fn append_new(root: &Root, path: &Resolved, content: &[u8]) -> Result<u64, ActionError> {
    let what = "append to";
    confine::refuse_internal(path)?;
    let shown = &path.relative;
    let entry = root.entry(path, false)?;
    // Held until the new file has replaced it: the lock goes with the old file's last descriptor.
    let (mut old, meta) = open_to_append(root, &entry, shown)?;
    let (temporary, mut file) = create_temporary(&entry, what, shown)?;
    let written = (|| {
        std::io::copy(&mut old, &mut file)?;
        file.write_all(content)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            // Another user's file stays theirs where this process may say so (as root); else it
            // becomes this user's, with the same permissions.
            if std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).is_err() {
                let _ = std::os::unix::fs::fchown(&file, None, Some(meta.gid()));
            }
            file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o1777))?;
        }
        file.sync_data()?;
        let size = file.metadata()?.len();
        entry.parent.rename(&temporary, &entry.parent, &entry.name)?;
        Ok(size)
    })();
    drop(old);
    written.map_err(|e: std::io::Error| {
        let _ = entry.parent.remove_file(&temporary);
        io_error(what, shown, &e)
    })
}

/// Writes `path` as a new file: `fill` writes into a file created new beside it, which is then
/// renamed over the name. The data thus goes into an inode made here, never into one that
/// already exists, which a hard link made during the action could share with a file outside the
/// workspace. The new file takes `permissions`, else those of the file it replaces, else the
/// defaults. One of ACAS's own files, a special file and a file with other hard links are refused
/// (for a clear message: writing into a new file is what keeps the others unchanged).
fn write_new(
    root: &Root,
    path: &Resolved,
    what: &str,
    permissions: Option<std::fs::Permissions>,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ActionError> {
    confine::refuse_internal(path)?;
    let shown = &path.relative;
    let entry = root.entry(path, false)?;
    let mut keep = permissions;
    if let Ok(meta) = entry.parent.symlink_metadata(&entry.name) {
        if let Some(kind) = special_kind!(meta.file_type(), cap_std::fs::FileTypeExt) {
            return Err(ActionError::new(format!(
                "cannot {what} `{shown}`: it is {kind}; file actions work on regular files only"
            )));
        }
        if meta.is_dir() {
            return Err(ActionError::new(format!("cannot {what} `{shown}`: it is a directory")));
        }
        #[cfg(unix)]
        {
            use cap_std::fs::MetadataExt;
            if meta.is_file() && meta.nlink() > 1 {
                return Err(linked(what, shown, meta.nlink()));
            }
        }
        #[cfg(unix)]
        if keep.is_none() && meta.is_file() {
            use cap_std::fs::MetadataExt;
            use std::os::unix::fs::PermissionsExt;
            keep = Some(std::fs::Permissions::from_mode(meta.mode() & 0o7777));
        }
    }
    let (temporary, mut file) = create_temporary(&entry, what, shown)?;
    let written = fill(&mut file)
        .and_then(|()| keep.map_or(Ok(()), |p| file.set_permissions(p)))
        .and_then(|()| file.sync_data())
        .and_then(|()| entry.parent.rename(&temporary, &entry.parent, &entry.name));
    if let Err(e) = written {
        let _ = entry.parent.remove_file(&temporary);
        return Err(io_error(what, shown, &e));
    }
    Ok(())
}

pub fn read(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let (root, path) = open(workspace, args.need_str("path")?, Follow::All)?;
    let max = args.u64("max_bytes").unwrap_or(DEFAULT_MAX_BYTES);
    let shown = &path.relative;
    let (file, meta) = open_for_reading(&root, &path, "read")?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).map_err(|e| io_error("read", shown, &e))?;
    let truncated = meta.len() > bytes.len() as u64;
    let content = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let error = e.utf8_error();
            // A cut in the middle of a character is not an encoding problem.
            if truncated && error.error_len().is_none() {
                let mut bytes = e.into_bytes();
                bytes.truncate(error.valid_up_to());
                String::from_utf8(bytes).expect("valid up to here")
            } else {
                return Err(ActionError::new(format!(
                    "cannot read `{shown}`: it is not UTF-8 text (invalid byte at offset {})",
                    error.valid_up_to()
                )));
            }
        }
    };
    Ok(json!({"content": content, "size": meta.len(), "path": shown, "truncated": truncated}))
}

pub fn write(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let (root, path) = open(workspace, args.need_str("path")?, Follow::All)?;
    let content = args.need_text("content")?;
    let shown = &path.relative;
    if args.bool("create_dirs").unwrap_or(false)
        && let Some(parent) = path.beneath.parent().filter(|p| !p.as_os_str().is_empty())
    {
        root.dir().create_dir_all(parent).map_err(|e| io_error("create the directory of", shown, &e))?;
    }
    write_new(&root, &path, "write", None, |file| file.write_all(content.as_bytes()))?;
    Ok(json!({"path": shown, "bytes": content.len()}))
}

pub fn append(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let (root, path) = open(workspace, args.need_str("path")?, Follow::All)?;
    let content = args.need_text("content")?;
    let shown = &path.relative;
    let size = append_new(&root, &path, content.as_bytes())?;
    Ok(json!({"path": shown, "bytes": content.len(), "size": size}))
}

pub fn copy(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let (root, from) = open(workspace, args.need_str("from")?, Follow::All)?;
    let to = confine::resolve(workspace, args.need_str("to")?, Follow::All)?;
    let (mut source, meta) = open_for_reading(&root, &from, "copy")?;
    refuse_existing(&root.entry(&to, false)?, &to, args.bool("overwrite").unwrap_or(false))?;
    let mut permissions = meta.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A copy made by a workflow never runs as the original's owner or group.
        permissions.set_mode(permissions.mode() & !0o6000);
    }
    let mut bytes = 0;
    write_new(&root, &to, "write", Some(permissions), |target| {
        bytes = std::io::copy(&mut source, target)?;
        Ok(())
    })?;
    Ok(json!({"from": from.relative, "to": to.relative, "bytes": bytes}))
}

pub fn rename(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let (root, from) = open(workspace, args.need_str("from")?, Follow::ExceptLast)?;
    let to = confine::resolve(workspace, args.need_str("to")?, Follow::ExceptLast)?;
    confine::refuse_internal(&from)?;
    confine::refuse_internal(&to)?;
    let source = root.entry(&from, true)?;
    let target = root.entry(&to, false)?;
    if source.parent.symlink_metadata(&source.name).is_err() {
        return Err(ActionError::new(format!("cannot move `{}`: it does not exist", from.relative)));
    }
    refuse_existing(&target, &to, args.bool("overwrite").unwrap_or(false))?;
    source.parent.rename(&source.name, &target.parent, &target.name).map_err(|e| {
        ActionError::new(format!("cannot move `{}` to `{}`: {e}", from.relative, to.relative))
    })?;
    Ok(json!({"from": from.relative, "to": to.relative}))
}

fn refuse_existing(target: &confine::Entry, to: &Resolved, overwrite: bool) -> Result<(), ActionError> {
    match target.parent.symlink_metadata(&target.name) {
        Ok(meta) if meta.is_dir() => Err(ActionError::new(format!(
            "`{}` is a directory; give the full path of the new file",
            to.relative
        ))),
        Ok(_) if !overwrite => {
            Err(ActionError::new(format!("`{}` exists; set `overwrite: true` to replace it", to.relative)))
        }
        _ => Ok(()),
    }
}

pub fn delete(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let (root, path) = open(workspace, args.need_str("path")?, Follow::ExceptLast)?;
    let shown = &path.relative;
    confine::refuse_internal(&path)?;
    let recursive = args.bool("recursive").unwrap_or(false);
    let entry = root.entry(&path, recursive)?;
    let meta = match entry.parent.symlink_metadata(&entry.name) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.bool("missing_ok").unwrap_or(false) => {
            return Ok(json!({"path": shown, "deleted": false}));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ActionError::new(format!(
                "cannot delete `{shown}`: it does not exist (set `missing_ok: true` to allow that)"
            )));
        }
        Err(e) => return Err(io_error("delete", shown, &e)),
    };
    if meta.is_dir() {
        if !recursive {
            return Err(ActionError::new(format!(
                "cannot delete `{shown}`: it is a directory (set `recursive: true` to delete it and everything in it)"
            )));
        }
        // Does not follow symlinks inside the directory.
        entry.parent.remove_dir_all(&entry.name).map_err(|e| io_error("delete", shown, &e))?;
    } else {
        entry.parent.remove_file(&entry.name).map_err(|e| io_error("delete", shown, &e))?;
    }
    Ok(json!({"path": shown, "deleted": true}))
}

#[cfg(all(test, unix))]
mod tests {
    use super::super::tests::{Outcome, run_in};
    use serde_json::json;
    use std::os::unix::fs::symlink;

    #[test]
    fn reading_and_writing_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        symlink(dir.path().join("secret.txt"), ws.join("leak")).unwrap();
        symlink(dir.path(), ws.join("parent")).unwrap();
        let run = |action: &str, with: serde_json::Value| run_in(&ws, action, with);

        assert_eq!(
            run("file.write", json!({"path": "notes/a.txt", "content": "one\n", "create_dirs": true})),
            Outcome::Ok(json!({"path": "notes/a.txt", "bytes": 4}))
        );
        assert_eq!(
            run("file.append", json!({"path": "notes/a.txt", "content": 2})),
            Outcome::Ok(json!({"path": "notes/a.txt", "bytes": 1, "size": 5}))
        );
        assert_eq!(
            run("file.read", json!({"path": "notes/a.txt"})),
            Outcome::Ok(json!({"content": "one\n2", "size": 5, "path": "notes/a.txt", "truncated": false}))
        );
        assert_eq!(
            run("file.read", json!({"path": "notes/a.txt", "max_bytes": 2})),
            Outcome::Ok(json!({"content": "on", "size": 5, "path": "notes/a.txt", "truncated": true}))
        );
        assert!(
            run("file.write", json!({"path": "x/y.txt", "content": ""}))
                .err()
                .contains("cannot open the directory of `x/y.txt`")
        );

        // Every refusal leaves the outside file as it was.
        for (action, with, message) in [
            ("file.read", json!({"path": "leak"}), "`leak` is a symlink that leads outside the workspace"),
            ("file.write", json!({"path": "leak", "content": "x"}), "`leak` is a symlink that leads outside"),
            (
                "file.append",
                json!({"path": "leak", "content": "x"}),
                "`leak` is a symlink that leads outside",
            ),
            ("file.write", json!({"path": "parent/secret.txt", "content": "x"}), "`parent` is a symlink"),
            ("file.write", json!({"path": "../secret.txt", "content": "x"}), "climbs out of the workspace"),
            ("file.read", json!({"path": dir.path().join("secret.txt")}), "is outside the workspace"),
            (
                "file.copy",
                json!({"from": "leak", "to": "copy.txt"}),
                "`leak` is a symlink that leads outside",
            ),
            (
                "file.copy",
                json!({"from": "notes/a.txt", "to": "leak", "overwrite": true}),
                "`leak` is a symlink",
            ),
            ("file.move", json!({"from": "notes/a.txt", "to": "parent/moved.txt"}), "`parent` is a symlink"),
            ("file.delete", json!({"path": "parent/secret.txt"}), "`parent` is a symlink"),
        ] {
            let got = run(action, with.clone()).err();
            assert!(got.contains(message), "{action} {with}: {got}");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("secret.txt")).unwrap(), "secret");
        assert!(!dir.path().join("moved.txt").exists());

        // Deleting the symlink removes the link, not its target.
        assert_eq!(
            run("file.delete", json!({"path": "leak"})),
            Outcome::Ok(json!({"path": "leak", "deleted": true}))
        );
        assert!(!ws.join("leak").exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("secret.txt")).unwrap(), "secret");
    }

    #[test]
    fn copy_move_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join("d/e")).unwrap();
        std::fs::write(ws.join("a.txt"), "alpha").unwrap();
        std::fs::write(ws.join("b.txt"), "beta").unwrap();
        let run = |action: &str, with: serde_json::Value| run_in(ws, action, with);

        assert_eq!(
            run("file.copy", json!({"from": "a.txt", "to": "c.txt"})),
            Outcome::Ok(json!({"from": "a.txt", "to": "c.txt", "bytes": 5}))
        );
        assert!(
            run("file.copy", json!({"from": "a.txt", "to": "b.txt"}))
                .err()
                .contains("`b.txt` exists; set `overwrite: true`")
        );
        assert!(run("file.copy", json!({"from": "d", "to": "x"})).err().contains("`d`: it is a directory"));
        assert_eq!(
            run("file.copy", json!({"from": "a.txt", "to": "b.txt", "overwrite": true})),
            Outcome::Ok(json!({"from": "a.txt", "to": "b.txt", "bytes": 5}))
        );
        assert_eq!(std::fs::read_to_string(ws.join("b.txt")).unwrap(), "alpha");
        assert_eq!(
            run("file.move", json!({"from": "c.txt", "to": "d/c.txt"})),
            Outcome::Ok(json!({"from": "c.txt", "to": "d/c.txt"}))
        );
        assert!(!ws.join("c.txt").exists());
        assert!(
            run("file.move", json!({"from": "gone.txt", "to": "x.txt"}))
                .err()
                .contains("`gone.txt`: it does not exist")
        );
        assert!(run("file.move", json!({"from": "a.txt", "to": "b.txt"})).err().contains("exists"));

        assert!(
            run("file.delete", json!({"path": "gone.txt"}))
                .err()
                .contains("does not exist (set `missing_ok: true`")
        );
        assert_eq!(
            run("file.delete", json!({"path": "gone.txt", "missing_ok": true})),
            Outcome::Ok(json!({"path": "gone.txt", "deleted": false}))
        );
        assert!(run("file.delete", json!({"path": "d"})).err().contains("set `recursive: true`"));
        assert_eq!(
            run("file.delete", json!({"path": "d", "recursive": true})),
            Outcome::Ok(json!({"path": "d", "deleted": true}))
        );
        assert!(!ws.join("d").exists());
        assert!(run("file.delete", json!({"path": "."})).err().contains("is the workspace itself"));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod confinement_tests {
    use super::super::tests::{Outcome, run_in};
    use serde_json::json;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Swaps the two paths atomically (`renameat2` with `RENAME_EXCHANGE`).
    pub(super) fn exchange(a: &Path, b: &Path) {
        let a = CString::new(a.as_os_str().as_bytes()).unwrap();
        let b = CString::new(b.as_os_str().as_bytes()).unwrap();
        // SAFETY: both are valid NUL-terminated paths that live across the call.
        unsafe {
            libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE);
        }
    }

    /// Another process swaps a directory of the workspace for a symlink to a directory outside,
    /// back and forth, while a workflow writes and appends into that directory: whatever the
    /// timing, nothing is ever written outside.
    #[test]
    fn swapping_a_directory_for_a_symlink_never_lets_a_write_out() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(ws.join("d")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("swap")).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = Arc::clone(&stop);
            let (d, swap) = (ws.join("d"), ws.join("swap"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    exchange(&d, &swap);
                }
            })
        };
        let mut written = 0;
        for i in 0..3000 {
            let (action, file) = if i % 2 == 0 { ("file.write", "w.txt") } else { ("file.append", "a.txt") };
            if let Outcome::Ok(_) = run_in(&ws, action, json!({"path": format!("d/{file}"), "content": "x"}))
            {
                written += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        let escaped: Vec<_> = std::fs::read_dir(&outside).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(
            escaped.is_empty(),
            "written outside the workspace: {escaped:?} ({written} writes succeeded)"
        );
        assert!(written > 0, "no write succeeded while the directory was in place");
    }

    /// Symlinks that stay inside the workspace, absolute or relative, at any component, work for
    /// every file action.
    #[test]
    fn symlinks_that_stay_inside_work() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::write(ws.join("src/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink(ws.join("src"), ws.join("abs")).unwrap();
        std::os::unix::fs::symlink("src", ws.join("rel")).unwrap();
        std::os::unix::fs::symlink("src/a.txt", ws.join("file-link")).unwrap();
        let run = |action: &str, with: serde_json::Value| run_in(ws, action, with);

        for (action, with) in [
            ("file.write", json!({"path": "abs/new/b.txt", "content": "b", "create_dirs": true})),
            ("file.append", json!({"path": "rel/new/b.txt", "content": "c"})),
            ("file.append", json!({"path": "file-link", "content": "!"})),
            ("file.read", json!({"path": "abs/a.txt"})),
            ("file.copy", json!({"from": "rel/a.txt", "to": "abs/copy.txt"})),
            ("file.move", json!({"from": "abs/copy.txt", "to": "rel/moved.txt"})),
            ("file.delete", json!({"path": "rel/moved.txt"})),
        ] {
            assert!(matches!(run(action, with.clone()), Outcome::Ok(_)), "{action} {with}");
        }
        assert_eq!(std::fs::read_to_string(ws.join("src/new/b.txt")).unwrap(), "bc");
        assert_eq!(std::fs::read_to_string(ws.join("src/a.txt")).unwrap(), "a!");
        assert!(!ws.join("src/copy.txt").exists() && !ws.join("src/moved.txt").exists());
    }

    /// ACAS's database and the files beside it cannot be written, appended to, copied over,
    /// moved or deleted by file actions, whatever path or link leads there; they stay as they
    /// were.
    #[test]
    fn acas_internal_files_cannot_be_changed() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join(".acas/workflows")).unwrap();
        std::fs::write(ws.join(".acas/state.db"), "history").unwrap();
        std::fs::write(ws.join(".acas/state.db-wal"), "wal").unwrap();
        std::fs::write(ws.join("notes.txt"), "notes").unwrap();
        std::os::unix::fs::symlink(".acas/state.db", ws.join("db-link")).unwrap();
        std::os::unix::fs::symlink(".acas", ws.join("acas-link")).unwrap();
        std::fs::hard_link(ws.join(".acas/state.db"), ws.join("db-hard")).unwrap();
        let run = |action: &str, with: serde_json::Value| run_in(ws, action, with);

        for (action, with, named) in [
            ("file.write", json!({"path": ".acas/state.db", "content": "x"}), "`.acas/state.db` is refused"),
            (
                "file.write",
                json!({"path": "./.acas/x/../state.db-shm", "content": "x"}),
                "`.acas/state.db-shm` is refused",
            ),
            (
                "file.append",
                json!({"path": ".acas/state.db-wal", "content": "x"}),
                "`.acas/state.db-wal` is refused",
            ),
            ("file.write", json!({"path": "db-link", "content": "x"}), "(it is `.acas/state.db`)"),
            (
                "file.append",
                json!({"path": "acas-link/state.db", "content": "x"}),
                "(it is `.acas/state.db`)",
            ),
            ("file.write", json!({"path": "db-hard", "content": "x"}), "(it is `.acas/state.db`)"),
            (
                "file.copy",
                json!({"from": "notes.txt", "to": ".acas/state.db", "overwrite": true}),
                "`.acas/state.db` is refused",
            ),
            (
                "file.move",
                json!({"from": ".acas/state.db", "to": "stolen.db"}),
                "`.acas/state.db` is refused",
            ),
            (
                "file.move",
                json!({"from": "notes.txt", "to": ".acas/state.db-wal", "overwrite": true}),
                "`.acas/state.db-wal` is refused",
            ),
            ("file.move", json!({"from": ".acas", "to": "elsewhere"}), "`.acas` is refused"),
            ("file.delete", json!({"path": ".acas/state.db"}), "`.acas/state.db` is refused"),
            ("file.delete", json!({"path": ".acas", "recursive": true}), "`.acas` is refused"),
        ] {
            let got = run(action, with.clone()).err();
            assert!(got.contains(named), "{action} {with}: {got}");
            assert!(got.contains("workflow file actions cannot change it"), "{action} {with}: {got}");
        }
        assert_eq!(std::fs::read_to_string(ws.join(".acas/state.db")).unwrap(), "history");
        assert_eq!(std::fs::read_to_string(ws.join(".acas/state.db-wal")).unwrap(), "wal");
        assert!(!ws.join(".acas/state.db-shm").exists());
        assert!(ws.join("notes.txt").exists());

        // The rest of `.acas` is the user's, and reading the database is harmless.
        assert!(matches!(
            run("file.write", json!({"path": ".acas/workflows/new.yaml", "content": "name: new\n"})),
            Outcome::Ok(_)
        ));
        assert!(matches!(run("file.read", json!({"path": ".acas/state.db"})), Outcome::Ok(_)));
        // Deleting the link removes the link only.
        assert!(matches!(run("file.delete", json!({"path": "db-link"})), Outcome::Ok(_)));
        assert_eq!(std::fs::read_to_string(ws.join(".acas/state.db")).unwrap(), "history");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod hostile_tests {
    use super::super::tests::{Outcome, run_in};
    use super::confinement_tests::exchange;
    use serde_json::json;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Another process swaps a directory `d` (holding decoys named like ACAS's files) for a
    /// symlink that stays inside the workspace, to `.acas` or to the workspace itself, while a
    /// workflow moves onto and deletes `d/state.db` and `d/.acas`: whatever the timing, the
    /// database and `.acas` stay.
    #[test]
    fn swapping_a_directory_for_a_link_to_acas_never_reaches_the_database() {
        for target in [".acas", "."] {
            let dir = tempfile::tempdir().unwrap();
            let ws = dir.path();
            std::fs::create_dir_all(ws.join(".acas")).unwrap();
            std::fs::create_dir_all(ws.join("d/.acas")).unwrap();
            std::fs::write(ws.join(".acas/state.db"), "history").unwrap();
            std::fs::write(ws.join("d/state.db"), "decoy").unwrap();
            std::os::unix::fs::symlink(target, ws.join("x")).unwrap();
            let real =
                cap_std::fs::Dir::open_ambient_dir(ws.join("d"), cap_std::ambient_authority()).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let swapper = {
                let stop = Arc::clone(&stop);
                let (d, x) = (ws.join("d"), ws.join("x"));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        exchange(&d, &x);
                    }
                })
            };
            for i in 0..1500 {
                let (action, with) = match i % 4 {
                    0 => {
                        let _ = std::fs::write(ws.join("junk"), "JUNK");
                        ("file.move", json!({"from": "junk", "to": "d/state.db", "overwrite": true}))
                    }
                    1 => ("file.delete", json!({"path": "d/state.db", "missing_ok": true})),
                    2 => ("file.delete", json!({"path": "d/.acas", "recursive": true, "missing_ok": true})),
                    _ => ("file.move", json!({"from": "d/.acas", "to": "moved"})),
                };
                let _ = run_in(ws, action, with);
                // Keep the decoys in the real directory, wherever it is now.
                let _ = real.write("state.db", "decoy");
                let _ = real.create_dir(".acas");
                if !ws.join(".acas").is_dir()
                    || std::fs::read(ws.join(".acas/state.db")).ok().as_deref() != Some(b"history")
                {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            swapper.join().unwrap();
            assert_eq!(
                std::fs::read_to_string(ws.join(".acas/state.db")).ok().as_deref(),
                Some("history"),
                "link to {target}: the database was replaced or deleted"
            );
            assert!(!ws.join("moved/state.db").exists(), "link to {target}: `.acas` was moved");
        }
    }

    /// A hard link in the workspace to a file outside is not written through.
    #[test]
    fn hard_links_are_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        std::fs::hard_link(dir.path().join("outside.txt"), ws.join("link")).unwrap();
        for (action, with) in [
            ("file.write", json!({"path": "link", "content": "x"})),
            ("file.append", json!({"path": "link", "content": "x"})),
            ("file.copy", json!({"from": "a.txt", "to": "link", "overwrite": true})),
        ] {
            let got = run_in(&ws, action, with.clone()).err();
            assert!(got.contains("`link`: it has 2 hard links"), "{action} {with}: {got}");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("outside.txt")).unwrap(), "outside");
        // Reading through it is harmless.
        assert!(matches!(run_in(&ws, "file.read", json!({"path": "link"})), Outcome::Ok(_)));
    }

    /// Another process keeps planting a hard link to a file outside at the target's name and
    /// removing it again, while workflows write and copy onto that name: the file outside is never
    /// changed, whatever the timing, because they write into a new file and rename it.
    #[test]
    fn a_hard_link_planted_during_a_write_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "outside").unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let planter = {
            let (stop, outside, link) = (stop.clone(), outside.clone(), ws.join("t.txt"));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&link);
                    let _ = std::fs::hard_link(&outside, &link);
                    let _ = std::fs::remove_file(&link);
                }
            })
        };
        for n in 0..300 {
            let (action, with) = if n % 2 == 0 {
                ("file.write", json!({"path": "t.txt", "content": "x"}))
            } else {
                ("file.copy", json!({"from": "a.txt", "to": "t.txt", "overwrite": true}))
            };
            let _ = run_in(&ws, action, with);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        planter.join().unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside");
        let left: Vec<_> = std::fs::read_dir(&ws)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    /// Other processes keep making and removing a hard link to a file outside at the name a
    /// workflow appends to, and keep swapping that name with another file of the workspace, while
    /// the workflow appends to it many times: whatever the timing, not one byte reaches the file
    /// outside.
    #[test]
    fn hard_links_and_name_swaps_racing_appends_never_let_a_byte_out() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "outside").unwrap();
        let outside_ino = std::fs::metadata(&outside).unwrap().ino();
        std::fs::write(ws.join("b.txt"), "b").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let linker = {
            let (stop, outside, a, b) = (stop.clone(), outside.clone(), ws.join("a.txt"), ws.join("b.txt"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::hard_link(&outside, &a);
                    let _ = std::fs::remove_file(&a);
                    let _ = std::fs::hard_link(&outside, &a);
                    // A link a swap moved to the other name goes too, so that the file outside
                    // has no second name for long.
                    if std::fs::symlink_metadata(&b).is_ok_and(|m| m.ino() == outside_ino) {
                        let _ = std::fs::remove_file(&b);
                    }
                }
            })
        };
        let swapper = {
            let (stop, a, b) = (stop.clone(), ws.join("a.txt"), ws.join("b.txt"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    exchange(&a, &b);
                    exchange(&a, &b);
                }
            })
        };
        let mut appended = 0;
        for _ in 0..4000 {
            if let Outcome::Ok(_) = run_in(&ws, "file.append", json!({"path": "a.txt", "content": "X"})) {
                appended += 1;
            }
            if std::fs::read(&outside).unwrap() != b"outside" {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        linker.join().unwrap();
        swapper.join().unwrap();
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "outside",
            "an append wrote into the file outside the workspace ({appended} appends succeeded)"
        );
        assert!(appended > 0, "no append succeeded");
        let left: Vec<_> = std::fs::read_dir(&ws)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    /// Appends running at once on one file, from several steps, all end up in it.
    #[test]
    fn concurrent_appends_to_one_file_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_path_buf();
        let appenders: Vec<_> = (0..6)
            .map(|n| {
                let ws = ws.clone();
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let line = format!("{n}-{i}\n");
                        let got = run_in(&ws, "file.append", json!({"path": "log.txt", "content": line}));
                        assert!(matches!(got, Outcome::Ok(_)), "{got:?}");
                    }
                })
            })
            .collect();
        for appender in appenders {
            appender.join().unwrap();
        }
        let text = std::fs::read_to_string(ws.join("log.txt")).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        let mut expected: Vec<String> =
            (0..6).flat_map(|n| (0..40).map(move |i| format!("{n}-{i}"))).collect();
        expected.sort_unstable();
        assert_eq!(lines, expected);
    }

    /// The file an append leaves has the permissions of the one it replaced, without setuid and
    /// setgid, and the same owner and group where ACAS may set them (as root here).
    #[test]
    fn an_append_keeps_the_permissions_and_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let file = ws.join("log.txt");
        std::fs::write(&file, "one\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o6640)).unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            std::os::unix::fs::chown(&file, Some(4321), Some(4322)).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o6640)).unwrap();
        }
        let before = std::fs::metadata(&file).unwrap();
        assert_eq!(
            run_in(ws, "file.append", json!({"path": "log.txt", "content": "two\n"})),
            Outcome::Ok(json!({"path": "log.txt", "bytes": 4, "size": 8}))
        );
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one\ntwo\n");
        assert_eq!(after.mode() & 0o7777, 0o640);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        if root {
            assert_eq!((after.uid(), after.gid()), (4321, 4322));
        }
    }

    /// A FIFO is refused at once by every action that would open it, instead of blocking.
    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        let fifo = CString::new(ws.join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let (done, finished) = std::sync::mpsc::channel();
        let ws_owned = ws.to_path_buf();
        std::thread::spawn(move || {
            for (action, with) in [
                ("file.read", json!({"path": "fifo"})),
                ("file.write", json!({"path": "fifo", "content": "x"})),
                ("file.append", json!({"path": "fifo", "content": "x"})),
                ("file.copy", json!({"from": "fifo", "to": "b.txt"})),
                ("file.copy", json!({"from": "a.txt", "to": "fifo", "overwrite": true})),
            ] {
                let _ = done.send((action, with.clone(), run_in(&ws_owned, action, with)));
            }
        });
        for _ in 0..5 {
            let (action, with, got) = finished
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("a file action blocked on a FIFO");
            assert!(
                got.err().contains("it is a FIFO (named pipe); file actions work on regular files only"),
                "{action} {with}"
            );
        }
    }

    /// A copy of a setuid or setgid file keeps its other permissions, not those bits.
    #[test]
    fn copies_drop_setuid_and_setgid() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(ws.join("tool"), std::fs::Permissions::from_mode(0o6755)).unwrap();
        let mode = std::fs::metadata(ws.join("tool")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode & 0o6000, 0o6000, "the file system keeps setuid and setgid here");
        assert!(matches!(run_in(ws, "file.copy", json!({"from": "tool", "to": "copy"})), Outcome::Ok(_)));
        assert_eq!(std::fs::metadata(ws.join("copy")).unwrap().permissions().mode() & 0o7777, 0o755);
    }
}
