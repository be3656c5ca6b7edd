//! Which paths of a workspace ACAS looks at.
//!
//! The same rules serve the initial walk and live file events, so that a file hidden from one is
//! hidden from the other: `.gitignore` and `.ignore` files in every directory (a deeper file wins,
//! `.ignore` over `.gitignore`), `.git/info/exclude`, `.acas/ignore` and the configured globs at
//! the root, and always `.git/` and ACAS's own database files.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Names of the per-directory ignore files, in increasing precedence.
pub const IGNORE_FILES: [&str; 2] = [".gitignore", ".ignore"];

pub struct IgnoreRules {
    root: PathBuf,
    /// `.acas/ignore`, `.git/info/exclude` and configured globs, rooted at the workspace root.
    root_rules: Gitignore,
    extra_globs: Vec<String>,
    /// Per-directory rules, loaded on first use; `None` when the directory has no ignore file.
    dirs: Mutex<HashMap<PathBuf, Option<Arc<[Gitignore]>>>>,
}

impl IgnoreRules {
    pub fn new(root: &Path, extra_globs: &[String]) -> IgnoreRules {
        IgnoreRules {
            root: root.to_path_buf(),
            root_rules: build_root_rules(root, extra_globs),
            extra_globs: extra_globs.to_vec(),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` or any directory above it (up to the root) is ignored. For file events.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return true;
        };
        let mut current = self.root.clone();
        let components: Vec<Component<'_>> = relative.components().collect();
        for (i, component) in components.iter().enumerate() {
            current.push(component);
            let last = i + 1 == components.len();
            if self.is_ignored_entry(&current, if last { is_dir } else { true }) {
                return true;
            }
        }
        false
    }

    /// Whether this one entry is ignored, assuming its parent directories are not. For walks.
    pub fn is_ignored_entry(&self, path: &Path, is_dir: bool) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return true;
        };
        if relative.as_os_str().is_empty() {
            return false;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == ".git" {
            return true;
        }
        if relative.starts_with(".acas") && name.starts_with("state.db") {
            return true;
        }
        match self.root_rules.matched(relative, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
        // Deepest directory first: its rules override those of its parents.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if !d.starts_with(&self.root) {
                break;
            }
            if let Some(rules) = self.rules_of(d) {
                for rule in rules.iter().rev() {
                    match rule.matched(path, is_dir) {
                        Match::Ignore(_) => return true,
                        Match::Whitelist(_) => return false,
                        Match::None => {}
                    }
                }
            }
            dir = d.parent();
        }
        false
    }

    /// Forgets the cached rules of `dir`, after one of its ignore files changed.
    pub fn invalidate(&self, dir: &Path) {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
    }

    /// Rules with the root-level files re-read, after `.acas/ignore` or `.git/info/exclude` changed.
    pub fn reloaded(&self) -> IgnoreRules {
        IgnoreRules::new(&self.root, &self.extra_globs)
    }

    fn rules_of(&self, dir: &Path) -> Option<Arc<[Gitignore]>> {
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rules) = dirs.get(dir) {
            return rules.clone();
        }
        let mut rules = Vec::new();
        for name in IGNORE_FILES {
            let file = dir.join(name);
            if file.is_file() {
                let (gitignore, error) = Gitignore::new(&file);
                if let Some(error) = error {
                    tracing::info!("{}: {error}", file.display());
                }
                rules.push(gitignore);
            }
        }
        let rules: Option<Arc<[Gitignore]>> = (!rules.is_empty()).then(|| rules.into());
        dirs.insert(dir.to_path_buf(), rules.clone());
        rules
    }
}

/// Whether a changed path is a file that changes the rules.
pub fn is_rules_file(root: &Path, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    IGNORE_FILES.contains(&name)
        || path == root.join(".acas").join("ignore")
        || path == root.join(".git").join("info").join("exclude")
}

fn build_root_rules(root: &Path, extra_globs: &[String]) -> Gitignore {
    let mut builder = GitignoreBuilder::new(root);
    for file in [root.join(".acas").join("ignore"), root.join(".git").join("info").join("exclude")] {
        if file.is_file()
            && let Some(error) = builder.add(&file)
        {
            tracing::info!("{}: {error}", file.display());
        }
    }
    for glob in extra_globs {
        if let Err(error) = builder.add_line(None, glob) {
            tracing::warn!("ignore glob `{glob}` is invalid and was skipped: {error}");
        }
    }
    builder.build().unwrap_or_else(|error| {
        tracing::warn!("ignore rules could not be built, using none: {error}");
        Gitignore::empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_rules_and_root_rules() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(".gitignore", "target/\n*.log\n");
        write("sub/.gitignore", "!keep.log\ngen.rs\n");
        write("sub/.ignore", "gen.rs\n!special.rs\n");
        write(".acas/ignore", "vendor/**\n");
        let rules = IgnoreRules::new(&root, &["*.tmp".to_owned()]);
        let ignored = |rel: &str| rules.is_ignored(&root.join(rel), false);
        assert!(ignored("target/debug/main.rs"));
        assert!(ignored("a.log"));
        assert!(!ignored("sub/keep.log"));
        assert!(ignored("sub/gen.rs"));
        assert!(!ignored("sub/special.rs"));
        assert!(ignored("vendor/x/y.rs"));
        assert!(ignored("x.tmp"));
        assert!(ignored(".git/config"));
        assert!(ignored(".acas/state.db-wal"));
        assert!(!ignored(".acas/config.toml"));
        assert!(!ignored("src/main.rs"));
        assert!(rules.is_ignored(Path::new("/elsewhere/x.rs"), false));
    }
}
