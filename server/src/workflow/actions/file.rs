//! `file.read`, `file.write`, `file.append`, `file.copy`, `file.move` and `file.delete`, confined
//! to the workspace by [`confine`](super::confine).
//!
//! Writes and appends are flushed to disk before the action returns, so a step recorded as
//! completed has its effect on disk even if the machine stops right after.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Value, json};

use super::confine::{self, Follow};
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

pub fn read(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let path = confine::resolve(workspace, args.need_str("path")?, Follow::All)?;
    let max = args.u64("max_bytes").unwrap_or(DEFAULT_MAX_BYTES);
    let shown = &path.relative;
    let file = std::fs::File::open(&path.real).map_err(|e| io_error("read", shown, &e))?;
    let meta = file.metadata().map_err(|e| io_error("read", shown, &e))?;
    if meta.is_dir() {
        return Err(ActionError::new(format!("cannot read `{shown}`: it is a directory")));
    }
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
    let path = confine::resolve(workspace, args.need_str("path")?, Follow::All)?;
    let content = args.need_text("content")?;
    let shown = &path.relative;
    if args.bool("create_dirs").unwrap_or(false)
        && let Some(parent) = path.real.parent()
    {
        std::fs::create_dir_all(parent).map_err(|e| io_error("create the directory of", shown, &e))?;
    }
    let mut file = std::fs::File::create(&path.real).map_err(|e| io_error("write", shown, &e))?;
    file.write_all(content.as_bytes()).map_err(|e| io_error("write", shown, &e))?;
    file.sync_data().map_err(|e| io_error("write", shown, &e))?;
    Ok(json!({"path": shown, "bytes": content.len()}))
}

pub fn append(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let path = confine::resolve(workspace, args.need_str("path")?, Follow::All)?;
    let content = args.need_text("content")?;
    let shown = &path.relative;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path.real)
        .map_err(|e| io_error("append to", shown, &e))?;
    file.write_all(content.as_bytes()).map_err(|e| io_error("append to", shown, &e))?;
    file.sync_data().map_err(|e| io_error("append to", shown, &e))?;
    let size = file.metadata().map_err(|e| io_error("append to", shown, &e))?.len();
    Ok(json!({"path": shown, "bytes": content.len(), "size": size}))
}

pub fn copy(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let from = confine::resolve(workspace, args.need_str("from")?, Follow::All)?;
    let to = confine::resolve(workspace, args.need_str("to")?, Follow::All)?;
    if std::fs::metadata(&from.real).is_ok_and(|m| m.is_dir()) {
        return Err(ActionError::new(format!("cannot copy `{}`: it is a directory", from.relative)));
    }
    refuse_existing(&to, args.bool("overwrite").unwrap_or(false))?;
    let bytes = std::fs::copy(&from.real, &to.real).map_err(|e| {
        ActionError::new(format!("cannot copy `{}` to `{}`: {e}", from.relative, to.relative))
    })?;
    std::fs::File::open(&to.real)
        .and_then(|f| f.sync_data())
        .map_err(|e| io_error("write", &to.relative, &e))?;
    Ok(json!({"from": from.relative, "to": to.relative, "bytes": bytes}))
}

pub fn rename(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let from = confine::resolve(workspace, args.need_str("from")?, Follow::ExceptLast)?;
    let to = confine::resolve(workspace, args.need_str("to")?, Follow::ExceptLast)?;
    if std::fs::symlink_metadata(&from.real).is_err() {
        return Err(ActionError::new(format!("cannot move `{}`: it does not exist", from.relative)));
    }
    refuse_existing(&to, args.bool("overwrite").unwrap_or(false))?;
    std::fs::rename(&from.real, &to.real).map_err(|e| {
        ActionError::new(format!("cannot move `{}` to `{}`: {e}", from.relative, to.relative))
    })?;
    Ok(json!({"from": from.relative, "to": to.relative}))
}

fn refuse_existing(to: &confine::Resolved, overwrite: bool) -> Result<(), ActionError> {
    match std::fs::symlink_metadata(&to.real) {
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
    let path = confine::resolve(workspace, args.need_str("path")?, Follow::ExceptLast)?;
    let shown = &path.relative;
    let meta = match std::fs::symlink_metadata(&path.real) {
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
        if !args.bool("recursive").unwrap_or(false) {
            return Err(ActionError::new(format!(
                "cannot delete `{shown}`: it is a directory (set `recursive: true` to delete it and everything in it)"
            )));
        }
        // Does not follow symlinks inside the directory.
        std::fs::remove_dir_all(&path.real).map_err(|e| io_error("delete", shown, &e))?;
    } else {
        std::fs::remove_file(&path.real).map_err(|e| io_error("delete", shown, &e))?;
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
                .contains("cannot write `x/y.txt`")
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
