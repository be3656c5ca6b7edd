//! Reading workspace files for analysis.
//!
//! Decides which files are worth parsing: a known language, under the size limit, not binary,
//! valid UTF-8. Files that fail these checks are skipped with a reason, never an error, because
//! a workspace full of odd files is normal.

use std::fmt;
use std::io::Read;
use std::path::Path;

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
            Skip::Vanished => f.write_str("the file disappeared"),
            Skip::Unreadable(err) => write!(f, "cannot read it: {err}"),
        }
    }
}

/// Reads a source file if it is a parseable text under `max_size` bytes.
pub fn read_source(path: &Path, max_size: u64) -> Result<String, Skip> {
    // Look before opening: opening a FIFO would block until someone writes to it.
    if !std::fs::metadata(path).map_err(io_skip)?.is_file() {
        return Err(Skip::NotAFile);
    }
    let mut file = std::fs::File::open(path).map_err(io_skip)?;
    let metadata = file.metadata().map_err(io_skip)?;
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
}
