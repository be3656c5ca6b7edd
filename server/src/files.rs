//! Reading workspace files for analysis, and writing ACAS's own files beneath the workspace.
//!
//! Decides which files are worth parsing: a known language, under the size limit, not binary,
//! valid UTF-8. Files that fail these checks are skipped with a reason, never an error, because
//! a workspace full of odd files is normal.
//!
//! [`create_beneath`] is how ACAS writes a file of its own under `.acas` (plans): through
//! directory handles opened beneath the workspace (`cap-std`), so that a symbolic link planted
//! at any component cannot redirect the write outside the workspace. The database has its own
//! checks in `store`.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Creates the new file `dir/name` beneath `root` and writes `bytes` to it; `dir` is a relative
/// path of plain names, whose directories are created as needed. A component of `dir` that is a
/// symbolic link is refused, and every step is taken relative to a directory handle confined to
/// `root`, so a link swapped in meanwhile cannot lead the write out of it either; an existing
/// file or link at `name` is refused, never followed or overwritten. Returns the file's path.
pub fn create_beneath(root: &Path, dir: &str, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use cap_std::fs::{Dir, OpenOptions};
    use std::io::{Error, ErrorKind, Write};
    use std::path::Component;

    let shown = root.join(dir);
    let refused = |why: String| Error::new(ErrorKind::InvalidInput, why);
    let mut current = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
    for component in Path::new(dir).components() {
        let Component::Normal(part) = component else {
            return Err(refused(format!("`{dir}` is not a plain relative path")));
        };
        match current.create_dir(part) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if current.symlink_metadata(part)?.file_type().is_symlink() {
            return Err(refused(format!(
                "{} is a symbolic link; ACAS writes its own files only into real directories: remove the link",
                root.join(dir).display()
            )));
        }
        current = current.open_dir(part)?;
    }
    let mut file = current.open_with(name, OpenOptions::new().write(true).create_new(true))?;
    file.write_all(bytes)?;
    Ok(shown.join(name))
}

/// Bytes inspected for a NUL byte to decide that a file is binary.
const BINARY_PROBE: usize = 8 * 1024;

/// Why a file was not parsed.
#[derive(Debug)]
pub enum Skip {
    TooLarge {
        size: u64,
        limit: u64,
    },
    Binary,
    NotUtf8 {
        valid_up_to: usize,
    },
    NotAFile,
    /// The path leads out of the workspace (a symbolic link, at any component, to elsewhere).
    Outside,
    /// The file disappeared before it could be read.
    Vanished,
    Unreadable(std::io::Error),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::TooLarge { size, limit } => {
                write!(f, "{size} bytes is over the {limit}-byte limit (files.max_size)")
            }
            Skip::Binary => f.write_str("binary file"),
            Skip::NotUtf8 { valid_up_to } => write!(f, "not valid UTF-8 after byte {valid_up_to}"),
            Skip::NotAFile => f.write_str("not a regular file"),
            Skip::Outside => f.write_str(
                "it leads out of the workspace (a symbolic link); ACAS reads only files inside it",
            ),
            Skip::Vanished => f.write_str("the file disappeared"),
            Skip::Unreadable(err) => write!(f, "cannot read it: {err}"),
        }
    }
}

/// Reads a source file if it is a parseable text under `max_size` bytes. For a path the user
/// named; what ACAS reads of a workspace by itself goes through [`read_beneath`].
pub fn read_source(path: &Path, max_size: u64) -> Result<String, Skip> {
    // Look before opening: opening a FIFO would block until someone writes to it.
    if !std::fs::metadata(path).map_err(io_skip)?.is_file() {
        return Err(Skip::NotAFile);
    }
    read_open(std::fs::File::open(path).map_err(io_skip)?, max_size)
}

/// Reads a file of the workspace at `root` as [`read_source`] does, confined to it by the
/// operating system: the path is opened beneath a handle on `root` (`cap-std`, `openat2` with
/// `RESOLVE_BENEATH` where the kernel has it), so a symbolic link at any component that leads
/// out of the workspace, planted before or swapped in during the read, is refused rather than
/// followed. Links that stay inside are followed. A path that is not under `root` is refused.
pub fn read_beneath(root: &Path, path: &Path, max_size: u64) -> Result<String, Skip> {
    let rel = path.strip_prefix(root).map_err(|_| Skip::Outside)?;
    if rel.as_os_str().is_empty() {
        return Err(Skip::NotAFile);
    }
    let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(io_skip)?;
    // Look before opening: opening a FIFO would block until someone writes to it.
    if !dir.metadata(rel).map_err(beneath_skip)?.is_file() {
        return Err(Skip::NotAFile);
    }
    let file = dir.open(rel).map_err(beneath_skip)?.into_std();
    read_open(file, max_size)
}

fn read_open(mut file: std::fs::File, max_size: u64) -> Result<String, Skip> {
    let metadata = file.metadata().map_err(io_skip)?;
    if !metadata.is_file() {
        return Err(Skip::NotAFile);
    }
    if metadata.len() > max_size {
        return Err(Skip::TooLarge { size: metadata.len(), limit: max_size });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // Read at most one byte past the limit: the file may grow between stat and read.
    file.by_ref().take(max_size + 1).read_to_end(&mut bytes).map_err(io_skip)?;
    if bytes.len() as u64 > max_size {
        return Err(Skip::TooLarge { size: bytes.len() as u64, limit: max_size });
    }
    source_from_bytes(bytes)
}

/// cap-std says that a path escaped its directory with a `PermissionDenied` error of its own.
fn beneath_skip(err: std::io::Error) -> Skip {
    if err.kind() == std::io::ErrorKind::PermissionDenied
        && err.to_string().contains("outside of the filesystem")
    {
        Skip::Outside
    } else {
        io_skip(err)
    }
}

/// Checks that bytes are text: no NUL in the first 8 KiB, valid UTF-8.
pub fn source_from_bytes(bytes: Vec<u8>) -> Result<String, Skip> {
    if bytes[..bytes.len().min(BINARY_PROBE)].contains(&0) {
        return Err(Skip::Binary);
    }
    String::from_utf8(bytes).map_err(|e| Skip::NotUtf8 { valid_up_to: e.utf8_error().valid_up_to() })
}

fn io_skip(err: std::io::Error) -> Skip {
    match err.kind() {
        std::io::ErrorKind::NotFound => Skip::Vanished,
        std::io::ErrorKind::IsADirectory => Skip::NotAFile,
        _ => Skip::Unreadable(err),
    }
}

/// A workspace-relative path with `/` separators (the path itself when outside the root).
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_reasoned() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        assert_eq!(read_source(&write("ok.rs", b"fn main() {}"), 100).unwrap(), "fn main() {}");
        assert!(matches!(
            read_source(&write("big.rs", &[b'a'; 101]), 100),
            Err(Skip::TooLarge { size: 101, limit: 100 })
        ));
        assert!(matches!(read_source(&write("bin.rs", b"ab\0cd"), 100), Err(Skip::Binary)));
        assert!(matches!(
            read_source(&write("latin1.py", b"x = '\xe9'"), 100),
            Err(Skip::NotUtf8 { valid_up_to: 5 })
        ));
        assert!(matches!(read_source(&dir.path().join("gone.rs"), 100), Err(Skip::Vanished)));
        assert!(matches!(read_source(dir.path(), 100), Err(Skip::NotAFile)));
    }

    #[test]
    fn read_beneath_follows_links_inside_and_refuses_links_out() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (ws, out) = (ws.path(), outside.path());
        std::fs::write(out.join("creds.rs"), "SECRET=1").unwrap();
        std::fs::create_dir(out.join("dir")).unwrap();
        std::fs::write(out.join("dir/leak.rs"), "fn leak() {}").unwrap();
        std::fs::create_dir(ws.join("src")).unwrap();
        std::fs::write(ws.join("src/real.rs"), "fn real() {}").unwrap();
        std::os::unix::fs::symlink("real.rs", ws.join("src/inside.rs")).unwrap();
        std::os::unix::fs::symlink(out.join("creds.rs"), ws.join("src/creds.rs")).unwrap();
        std::os::unix::fs::symlink(out.join("dir"), ws.join("src/dir")).unwrap();
        std::os::unix::fs::symlink("../..", ws.join("src/up")).unwrap();
        assert_eq!(read_beneath(ws, &ws.join("src/real.rs"), 100).unwrap(), "fn real() {}");
        assert_eq!(read_beneath(ws, &ws.join("src/inside.rs"), 100).unwrap(), "fn real() {}");
        for escaping in ["src/creds.rs", "src/dir/leak.rs"] {
            let read = read_beneath(ws, &ws.join(escaping), 100);
            assert!(matches!(read, Err(Skip::Outside)), "{escaping}: {read:?}");
        }
        let through_up = ws.join("src/up").join(out.strip_prefix("/").unwrap()).join("creds.rs");
        assert!(read_beneath(ws, &through_up, 100).is_err());
        assert!(matches!(read_beneath(ws, &out.join("creds.rs"), 100), Err(Skip::Outside)));
    }

    #[test]
    fn create_beneath_never_follows_a_planted_link() {
        type Plant = fn(&Path, &Path);
        let plants: [(&str, Plant); 4] = [
            (".acas", |ws, out| std::os::unix::fs::symlink(out, ws.join(".acas")).unwrap()),
            (".acas/plans", |ws, out| {
                std::fs::create_dir(ws.join(".acas")).unwrap();
                std::os::unix::fs::symlink(out, ws.join(".acas/plans")).unwrap();
            }),
            (".acas/plans inside", |ws, _| {
                std::fs::create_dir_all(ws.join(".acas")).unwrap();
                std::fs::create_dir(ws.join("src")).unwrap();
                std::os::unix::fs::symlink("../src", ws.join(".acas/plans")).unwrap();
            }),
            (".acas/plans/p.json", |ws, out| {
                std::fs::create_dir_all(ws.join(".acas/plans")).unwrap();
                std::os::unix::fs::symlink(out.join("p.json"), ws.join(".acas/plans/p.json")).unwrap();
            }),
        ];
        for (what, plant) in plants {
            let ws = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            plant(ws.path(), outside.path());
            let result = create_beneath(ws.path(), ".acas/plans", "p.json", b"plan");
            assert!(result.is_err(), "{what}: {result:?}");
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "{what}");
            assert!(!ws.path().join("src/p.json").exists(), "{what}");
        }
        let ws = tempfile::tempdir().unwrap();
        let written = create_beneath(ws.path(), ".acas/plans", "p.json", b"plan").unwrap();
        assert_eq!(written, ws.path().join(".acas/plans/p.json"));
        assert_eq!(std::fs::read(&written).unwrap(), b"plan");
    }
}
