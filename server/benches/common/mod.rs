//! Shared helpers of the classify benches: corpus discovery.

use std::path::{Path, PathBuf};

use acas::classify::Language;

/// Files larger than this are left out (the watcher's parse limit is of the same order).
pub const MAX_FILE: u64 = 512 * 1024;

/// Every file under `roots` whose language is `language`, sorted, without following symlinks.
pub fn files(roots: &[PathBuf], language: Language) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.iter().filter(|r| r.exists()).cloned().collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            let path = entry.path();
            if ft.is_dir() {
                if path.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                stack.push(path);
            } else if ft.is_file()
                && Language::from_path(&path) == Some(language)
                && entry.metadata().is_ok_and(|m| m.len() <= MAX_FILE && m.len() > 0)
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

/// The crate sources in the cargo registry.
pub fn cargo_registry() -> Vec<PathBuf> {
    let src = home().join(".cargo/registry/src");
    std::fs::read_dir(&src).map_or_else(|_| Vec::new(), |d| d.flatten().map(|e| e.path()).collect())
}

pub const PYTHON_STDLIB: &str = "/root/.pyenv/versions/3.11.7/lib/python3.11";
pub const NPM: &str = "/usr/lib/node_modules/npm";
/// Snapshots of public TypeScript and Go repositories (there are none in the system paths).
pub const EXTRA_CORPUS: &str = "/work/corpus";

/// Where real code of each language lives on this machine.
pub fn roots(language: Language) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = match language {
        Language::Python => vec![PYTHON_STDLIB.into()],
        Language::Rust => cargo_registry(),
        Language::JavaScript => vec![NPM.into()],
        Language::TypeScript | Language::Tsx | Language::Go | Language::Json => {
            let mut r = cargo_registry();
            r.push("/usr/lib/node_modules".into());
            r.push("/usr/share/doc".into());
            r.push(EXTRA_CORPUS.into());
            r
        }
    };
    roots.extend(extra_roots());
    roots.retain(|r| Path::new(r).exists());
    roots
}

/// More corpora for every language, from `ACAS_EVAL_ROOTS` (directories separated by `:`).
pub fn extra_roots() -> Vec<PathBuf> {
    std::env::var_os("ACAS_EVAL_ROOTS").map_or_else(Vec::new, |v| std::env::split_paths(&v).collect())
}
