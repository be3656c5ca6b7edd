//! Policy files read once per content: a process-wide cache of parsed files keyed by path, size,
//! modification time and a SHA-256 of the text, and the last good version of each file.
//!
//! [`load`] reads a file only when its size or modification time changed since it was last
//! read, or when it changed so recently that a second write in the same clock tick could hide
//! (the file is then read and hashed again, and parsed again only when its text changed). A
//! file is read until two looks at its size and time before and after the read agree, so a read
//! that raced a writer is never taken for the file. A file that is empty, holds no mapping, or
//! does not parse is an error; the last good version of it stays in the cache, and a process
//! that already read one (`acas serve`, `acas mcp`, a running workflow) keeps judging by it and
//! says so, while a process that never saw a good version denies everything.
//!
//! It does not decide anything and does not watch files: callers ask it whenever they judge.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{PolicyError, PolicyErrorKind, Sections, parse};

/// How many times a file that changes while it is read is read again before giving up.
pub const MAX_READS: usize = 5;

/// A file modified less than this long ago is read and hashed again even when its size and time
/// did not change: another write in the same tick of the file system's clock would not show.
const RACY: Duration = Duration::from_secs(2);

/// What a file is known as.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
    changed: (i64, i64),
    inode: u64,
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        size: meta.len(),
        modified: meta.modified().ok(),
        changed: (meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
    }
}

struct Entry {
    stamp: Stamp,
    hash: [u8; 32],
    /// What the text gave: its sections, or why it is not a policy.
    parsed: Result<Arc<Sections>, PolicyError>,
    /// The last version that parsed, and when it was read.
    last_good: Option<(Arc<Sections>, SystemTime)>,
    /// Whether using the last good version was already logged for this text.
    warned: bool,
}

static CACHE: LazyLock<Mutex<HashMap<PathBuf, Entry>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// What loading one policy file gave.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// There is no such file.
    Absent,
    Good(Arc<Sections>),
    /// The file cannot be used now. `last_good` is the version this process read before it
    /// broke, if any, with the time it was read.
    Broken {
        error: PolicyError,
        last_good: Option<(Arc<Sections>, SystemTime)>,
    },
}

fn unreadable(path: &Path, message: String) -> PolicyError {
    PolicyError::other(PolicyErrorKind::Unreadable, path, message)
}

/// Reads the file's bytes once its size and time are the same before and after the read.
fn read_stable(path: &Path) -> Result<Option<(Stamp, Vec<u8>)>, PolicyError> {
    for _ in 0..MAX_READS {
        let before = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(unreadable(
                    path,
                    format!("cannot read it: {e}; fix its permissions or remove it"),
                ));
            }
        };
        if !before.is_file() {
            return Err(unreadable(path, "it is not a file; make it a YAML file or remove it".to_owned()));
        }
        if before.len() > parse::MAX_FILE_BYTES as u64 {
            return Err(PolicyError::other(
                PolicyErrorKind::Invalid,
                path,
                format!(
                    "it has {} bytes, more than the {} bytes a policy file may have; use globs instead of long lists",
                    before.len(),
                    parse::MAX_FILE_BYTES
                ),
            ));
        }
        // At most one byte past the limit: a file that grows meanwhile is still bounded.
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path).and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, parse::MAX_FILE_BYTES as u64 + 1),
                &mut bytes,
            )
        });
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(unreadable(
                    path,
                    format!("cannot read it: {e}; fix its permissions or remove it"),
                ));
            }
        }
        let Ok(after) = std::fs::metadata(path) else { continue };
        let (before, after) = (stamp(&before), stamp(&after));
        if before == after && bytes.len() as u64 == after.size {
            return Ok(Some((after, bytes)));
        }
    }
    Err(unreadable(
        path,
        format!(
            "it changed every time it was read ({MAX_READS} times); save it in one step (write another file and \
             rename it over this one)"
        ),
    ))
}

fn parse_bytes(path: &Path, bytes: Vec<u8>) -> Result<Arc<Sections>, PolicyError> {
    let text = String::from_utf8(bytes)
        .map_err(|_| unreadable(path, "it is not UTF-8 text; save it as UTF-8".to_owned()))?;
    parse::parse(path, &text).map(Arc::new)
}

/// Loads the policy file at `path`: from the cache when it has not changed.
pub fn load(path: &Path) -> Loaded {
    let last_good = |cache: &HashMap<PathBuf, Entry>| cache.get(path).and_then(|e| e.last_good.clone());
    // A file unchanged since it was read, and not changed so recently that a second write could
    // hide in the same tick, is not read again.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
    {
        let now = stamp(&meta);
        let settled = now
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= RACY);
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if settled
            && let Some(entry) = cache.get_mut(path)
            && entry.stamp == now
        {
            return loaded(path, entry);
        }
    }
    let read = read_stable(path);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let (stamp, bytes) = match read {
        Ok(Some(read)) => read,
        Ok(None) => {
            // A removed file takes its last good version with it.
            cache.remove(path);
            return Loaded::Absent;
        }
        Err(error) => return Loaded::Broken { error, last_good: last_good(&cache) },
    };
    let hash: [u8; 32] = Sha256::digest(&bytes).into();
    if let Some(entry) = cache.get_mut(path)
        && entry.hash == hash
    {
        entry.stamp = stamp;
        return loaded(path, entry);
    }
    // Parsing a large file compiles many globs: not under the lock, so other files still load.
    drop(cache);
    let parsed = parse_bytes(path, bytes);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let previous = last_good(&cache);
    let last_good = match &parsed {
        Ok(sections) => Some((sections.clone(), SystemTime::now())),
        Err(_) => previous,
    };
    let mut entry = Entry { stamp, hash, parsed, last_good, warned: false };
    let answer = loaded(path, &mut entry);
    cache.insert(path.to_path_buf(), entry);
    answer
}

fn loaded(path: &Path, entry: &mut Entry) -> Loaded {
    match &entry.parsed {
        Ok(sections) => Loaded::Good(sections.clone()),
        Err(error) => {
            if !entry.warned && entry.last_good.is_some() {
                tracing::warn!(
                    "the policy file {} cannot be used ({error}); its last good version stays in force until it \
                     is fixed",
                    path.display()
                );
                entry.warned = true;
            }
            Loaded::Broken { error: error.clone(), last_good: entry.last_good.clone() }
        }
    }
}

/// Loads the policy file at `path` only if its content is still what `sha256` (hex) says (`None`:
/// there was no file): the file a run was judged by when it started the process that asks. A
/// file that changed since denies everything, with a message that says so; the text is hashed
/// from the same bytes that are parsed, so a swap between the two is not possible.
pub fn load_pinned(path: &Path, sha256: Option<&str>) -> Loaded {
    let changed = |now: &str| Loaded::Broken {
        error: PolicyError::other(
            PolicyErrorKind::Unreadable,
            path,
            format!(
                "it {now} since the workflow step that started this process began, and a process a step \
                     starts is judged by the policy its run was judged by: everything is denied; let the run end \
                     and start it again once the file is as it should be"
            ),
        ),
        last_good: None,
    };
    let read = match read_stable(path) {
        Ok(read) => read,
        Err(error) => return Loaded::Broken { error, last_good: None },
    };
    let (stamp, bytes) = match (read, sha256) {
        (None, None) => return Loaded::Absent,
        (None, Some(_)) => return changed("was removed"),
        (Some(_), None) => return changed("was created"),
        (Some(read), Some(_)) => read,
    };
    let hash: [u8; 32] = Sha256::digest(&bytes).into();
    if sha256 != Some(hex(&hash).as_str()) {
        return changed("changed");
    }
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = cache.get_mut(path)
        && entry.hash == hash
    {
        entry.stamp = stamp;
        return match &entry.parsed {
            Ok(sections) => Loaded::Good(sections.clone()),
            Err(error) => Loaded::Broken { error: error.clone(), last_good: None },
        };
    }
    drop(cache);
    match parse_bytes(path, bytes) {
        Ok(sections) => Loaded::Good(sections),
        Err(error) => Loaded::Broken { error, last_good: None },
    }
}

/// The SHA-256 of a file's content as [`load_pinned`] compares it; `None` when there is no file,
/// and an error when it cannot be read.
pub fn content_hash(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(hex(&Sha256::digest(&bytes)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
