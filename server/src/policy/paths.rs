//! What a path stands for when it is judged: a directory is judged as everything beneath it, so
//! moving, copying or deleting `secrets` meets a `secrets/**` rule as `secrets/key` would.
//!
//! [`beneath`] lists, for a directory, a name standing for any new file in it ([`ANY_FILE`]) and
//! the paths of what it holds now, without following symbolic links, up to [`MAX_BENEATH`]
//! entries; [`held`] the same relative to the directory, for what a move or a copy brings to
//! where it goes. It does not judge anything itself.

use std::path::Path;

/// How many entries beneath a directory are judged; a larger directory is refused.
pub const MAX_BENEATH: usize = 10_000;

/// The name that stands for any file a directory may hold.
pub const ANY_FILE: &str = "any-file";

/// The workspace-relative paths that `rel` (at `path`) stands for beyond itself: nothing for a
/// file, a link or a path that does not exist; for a directory, a file in it and everything it
/// holds. `Err(count)` when it holds more than [`MAX_BENEATH`] entries.
pub fn beneath(path: &Path, rel: &str) -> Result<Vec<String>, usize> {
    Ok(held(path)?.into_iter().map(|sub| format!("{rel}/{sub}")).collect())
}

/// What [`beneath`] lists, relative to `path` itself (`any-file`, `deep/key.pem`): what a move
/// or a copy of `path` brings to where it goes.
pub fn held(path: &Path) -> Result<Vec<String>, usize> {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Ok(Vec::new());
    }
    let mut out = vec![ANY_FILE.to_owned()];
    let mut stack = vec![(path.to_path_buf(), String::new())];
    while let Some((dir, shown)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if shown.is_empty() { name } else { format!("{shown}/{name}") };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), child.clone()));
            }
            out.push(child);
            if out.len() > MAX_BENEATH {
                return Err(out.len());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("secrets/deep")).unwrap();
        std::fs::write(dir.path().join("secrets/deep/key.pem"), "k").unwrap();
        std::fs::write(dir.path().join("file"), "f").unwrap();
        let mut all = beneath(&dir.path().join("secrets"), "secrets").unwrap();
        all.sort();
        assert_eq!(all, ["secrets/any-file", "secrets/deep", "secrets/deep/key.pem"]);
        assert!(beneath(&dir.path().join("file"), "file").unwrap().is_empty());
        assert!(beneath(&dir.path().join("missing"), "missing").unwrap().is_empty());
    }
}
