//! The git history of an error's lines.
//!
//! For the context sent with an escalation: who last changed each line and why (`git blame`,
//! including lines not committed yet), the recent commits that touched the file, and the file's
//! uncommitted diff; and the workspace's recent commits and uncommitted files ([`recent`]), for
//! what changed lately and by whom. Reads the repository with libgit2; never writes to it. A workspace that is
//! not a git repository simply has no history.
//!
//! The diff is not git's own: it is made from the two versions of the file (as committed, as the
//! editor has it) after each went through the caller's `clean` as a whole text, so that what
//! the caller removes from a whole file (a secret spanning lines) cannot come back in pieces
//! as diff lines or as the context git prints after a hunk's `@@`.

use std::ops::Range;
use std::path::Path;

use git2::{BlameOptions, Repository};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlameLine {
    /// Zero-based line in the current file.
    pub line: u32,
    /// Short commit id, or `None` for a line not committed yet.
    pub commit: Option<String>,
    pub author: String,
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub author: String,
    pub date: String,
    pub summary: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub blame: Vec<BlameLine>,
    pub recent: Vec<CommitInfo>,
    /// Unified diff of the file's cleaned text at HEAD against its cleaned current text, when
    /// it has uncommitted changes.
    pub diff: Option<String>,
}

/// How many commits are searched for ones touching the file.
const COMMITS_SEARCHED: usize = 1000;
/// Largest diff included, in bytes.
const MAX_DIFF: usize = 16 * 1024;

/// History of `lines` (zero-based, half-open) of the file at `relative` in the repository that
/// contains `root`. `current` is the file's text as the editor has it, so blame covers unsaved
/// and uncommitted lines. The diff compares `clean` of the committed text with `clean` of
/// `current`, each cleaned whole. `Ok(None)` when there is no repository.
pub fn history(
    root: &Path,
    relative: &str,
    current: &str,
    lines: Range<u32>,
    recent: usize,
    clean: &mut dyn FnMut(&str) -> String,
) -> Result<Option<History>, git2::Error> {
    let repo = match Repository::discover(root) {
        Ok(repo) => repo,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(workdir) = repo.workdir() else { return Ok(None) };
    // The path as git knows it: relative to the repository's work tree.
    let absolute = root.join(relative);
    let in_repo = absolute.strip_prefix(workdir).unwrap_or(Path::new(relative)).to_path_buf();
    if repo.head().is_err() {
        // No commit yet: nothing to blame, everything is new.
        return Ok(Some(History::default()));
    }
    Ok(Some(History {
        blame: blame(&repo, &in_repo, current, lines)?,
        recent: recent_commits(&repo, &in_repo, recent)?,
        diff: diff(&repo, &in_repo, current, clean)?,
    }))
}

/// A commit and the files it changed (repository-relative, at most [`FILES_PER_COMMIT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub commit: CommitInfo,
    pub files: Vec<String>,
    /// Files it changed beyond those listed.
    pub more_files: usize,
}

/// Recent commits and what is not committed yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent {
    pub commits: Vec<Change>,
    /// Files changed, added or deleted in the work tree or the index, not committed yet.
    pub uncommitted: Vec<String>,
}

/// Files listed per commit by [`recent`].
pub const FILES_PER_COMMIT: usize = 20;

/// The `limit` most recent commits of `HEAD` (by time) with the files each changed, and the
/// uncommitted files, of the repository that contains `root`; `Ok(None)` when there is none.
pub fn recent(root: &Path, limit: usize) -> Result<Option<Recent>, git2::Error> {
    let repo = match Repository::discover(root) {
        Ok(repo) => repo,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut recent = Recent::default();
    let mut options = git2::StatusOptions::new();
    options.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    for entry in repo.statuses(Some(&mut options))?.iter() {
        if let Ok(path) = entry.path() {
            recent.uncommitted.push(path.to_owned());
        }
    }
    if repo.head().is_err() {
        return Ok(Some(recent));
    }
    let mut walk = repo.revwalk()?;
    walk.push_head()?;
    walk.set_sorting(git2::Sort::TIME)?;
    for id in walk.take(limit) {
        let commit = repo.find_commit(id?)?;
        let tree = commit.tree()?;
        let parent = commit.parents().next().map(|p| p.tree()).transpose()?;
        let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), None)?;
        let mut files = Vec::new();
        let mut more_files = 0;
        for delta in diff.deltas() {
            let path = delta.new_file().path().or_else(|| delta.old_file().path());
            if let Some(path) = path {
                if files.len() < FILES_PER_COMMIT {
                    files.push(path.to_string_lossy().into_owned());
                } else {
                    more_files += 1;
                }
            }
        }
        recent.commits.push(Change {
            commit: CommitInfo {
                id: short(&commit.id()),
                author: commit.author().name().ok().unwrap_or("unknown").to_owned(),
                date: date(commit.time().seconds()),
                summary: commit.summary().ok().flatten().unwrap_or("").to_owned(),
            },
            files,
            more_files,
        });
    }
    Ok(Some(recent))
}

/// The text of the file at `relative` as last committed (at `HEAD`) in the repository that
/// contains `root`; `Ok(None)` when there is no repository, no commit, or the file is not in it
/// or is not UTF-8.
pub fn committed(root: &Path, relative: &str) -> Result<Option<String>, git2::Error> {
    let repo = match Repository::discover(root) {
        Ok(repo) => repo,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(workdir) = repo.workdir() else { return Ok(None) };
    let absolute = root.join(relative);
    let in_repo = absolute.strip_prefix(workdir).unwrap_or(Path::new(relative)).to_path_buf();
    let Ok(head) = repo.head() else { return Ok(None) };
    let tree = head.peel_to_tree()?;
    let Ok(entry) = tree.get_path(&in_repo) else { return Ok(None) };
    let Ok(blob) = repo.find_blob(entry.id()) else { return Ok(None) };
    Ok(std::str::from_utf8(blob.content()).ok().map(str::to_owned))
}

fn blame(
    repo: &Repository,
    path: &Path,
    current: &str,
    lines: Range<u32>,
) -> Result<Vec<BlameLine>, git2::Error> {
    let committed = match repo.blame_file(path, Some(&mut BlameOptions::new())) {
        Ok(blame) => blame,
        // A file git does not track yet: every line is new.
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Ok(lines.map(uncommitted).collect());
        }
        Err(e) => return Err(e),
    };
    let blame = committed.blame_buffer(current.as_bytes())?;
    let mut out = Vec::new();
    for line in lines {
        let Some(hunk) = blame.get_line(line as usize + 1) else { break };
        let id = hunk.final_commit_id();
        if id.is_zero() {
            out.push(uncommitted(line));
            continue;
        }
        let commit = repo.find_commit(id)?;
        let signature = hunk.final_signature();
        out.push(BlameLine {
            line,
            commit: Some(short(&id)),
            author: signature.as_ref().and_then(|s| s.name().ok()).unwrap_or("unknown").to_owned(),
            date: date(commit.time().seconds()),
            summary: commit.summary().ok().flatten().unwrap_or("").to_owned(),
        });
    }
    Ok(out)
}

fn uncommitted(line: u32) -> BlameLine {
    BlameLine {
        line,
        commit: None,
        author: "you".to_owned(),
        date: String::new(),
        summary: "not committed yet".to_owned(),
    }
}

fn recent_commits(repo: &Repository, path: &Path, limit: usize) -> Result<Vec<CommitInfo>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push_head()?;
    walk.set_sorting(git2::Sort::TIME)?;
    let mut out = Vec::new();
    for id in walk.take(COMMITS_SEARCHED) {
        let commit = repo.find_commit(id?)?;
        let entry = |c: &git2::Commit<'_>| c.tree().ok().and_then(|t| t.get_path(path).ok()).map(|e| e.id());
        let here = entry(&commit);
        let touched = if commit.parent_count() == 0 {
            here.is_some()
        } else {
            commit.parents().all(|p| entry(&p) != here)
        };
        if touched {
            out.push(CommitInfo {
                id: short(&commit.id()),
                author: commit.author().name().ok().unwrap_or("unknown").to_owned(),
                date: date(commit.time().seconds()),
                summary: commit.summary().ok().flatten().unwrap_or("").to_owned(),
            });
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// The unified diff of `clean` of the file's text at `HEAD` (empty for a file git does not
/// track yet) against `clean` of `current`; `None` when the two are the same or git ignores the
/// file. Cut at a line end to [`MAX_DIFF`] bytes.
fn diff(
    repo: &Repository,
    path: &Path,
    current: &str,
    clean: &mut dyn FnMut(&str) -> String,
) -> Result<Option<String>, git2::Error> {
    let head = repo.head()?.peel_to_tree()?;
    let committed = match head.get_path(path) {
        Ok(entry) => match repo.find_blob(entry.id()) {
            Ok(blob) => String::from_utf8_lossy(blob.content()).into_owned(),
            // A submodule or a directory: not a file to compare.
            Err(_) => return Ok(None),
        },
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            if repo.is_path_ignored(path)? {
                return Ok(None);
            }
            String::new()
        }
        Err(e) => return Err(e),
    };
    if committed == current {
        return Ok(None);
    }
    let (old, new) = (clean(&committed), clean(current));
    let mut patch = git2::Patch::from_buffers(old.as_bytes(), Some(path), new.as_bytes(), Some(path), None)?;
    let buf = patch.to_buf()?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if text.len() > MAX_DIFF {
        let mut end = MAX_DIFF;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(text[..end].rfind('\n').map_or(0, |i| i + 1));
    }
    Ok((!text.is_empty()).then_some(text))
}

fn short(id: &git2::Oid) -> String {
    id.to_string()[..8].to_owned()
}

fn date(seconds: i64) -> String {
    crate::time::date(seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, path: &str, text: &str, author: &str, when: i64, summary: &str) {
        let root = repo.workdir().unwrap();
        std::fs::write(root.join(path), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(path)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::new(
            author,
            &format!("{}@example.com", author.to_lowercase()),
            &git2::Time::new(when, 0),
        )
        .unwrap();
        let parents: Vec<git2::Commit<'_>> =
            repo.head().ok().and_then(|h| h.peel_to_commit().ok()).into_iter().collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(Some("HEAD"), &signature, &signature, summary, &tree, &parents).unwrap();
    }

    #[test]
    fn blame_recent_commits_and_the_uncommitted_diff() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        commit(&repo, "lib.rs", "fn a() {}\nfn b() {}\n", "Ada", 1_700_000_000, "Add a and b");
        commit(&repo, "other.rs", "fn o() {}\n", "Bob", 1_700_100_000, "Add other");
        commit(&repo, "lib.rs", "fn a() {}\nfn b() { 1 }\n", "Grace", 1_700_200_000, "Make b return one");
        // Uncommitted: a third line, in the editor and on disk.
        let current = "fn a() {}\nfn b() { 1 }\nfn c() {\n";
        std::fs::write(dir.path().join("lib.rs"), current).unwrap();

        let history = history(dir.path(), "lib.rs", current, 0..3, 5, &mut str::to_owned).unwrap().unwrap();
        let who: Vec<(u32, &str, &str)> =
            history.blame.iter().map(|b| (b.line, b.author.as_str(), b.summary.as_str())).collect();
        assert_eq!(
            who,
            [(0, "Ada", "Add a and b"), (1, "Grace", "Make b return one"), (2, "you", "not committed yet")]
        );
        assert_eq!(history.blame[0].date, "2023-11-14");
        let summaries: Vec<&str> = history.recent.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["Make b return one", "Add a and b"]);
        let diff = history.diff.unwrap();
        assert!(diff.contains("+fn c() {"), "{diff}");
        assert!(!diff.contains("other.rs"), "{diff}");
    }

    #[test]
    fn no_repository_or_no_commit_means_no_history() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(history(dir.path(), "x.rs", "", 0..1, 5, &mut str::to_owned).unwrap(), None);
        Repository::init(dir.path()).unwrap();
        assert_eq!(
            history(dir.path(), "x.rs", "", 0..1, 5, &mut str::to_owned).unwrap(),
            Some(History::default())
        );
    }

    /// The diff is made of the cleaned versions: what `clean` takes from a whole file (here a
    /// block of lines) shows in no diff line and in no hunk header, even where the change sits
    /// right after it.
    #[test]
    fn the_diff_compares_cleaned_versions() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let block = "KEYS = \"\"\"\nkept line\nold line\n\"\"\"\n";
        commit(
            &repo,
            "app.py",
            &format!("{block}\ndef main():\n    return 1\n"),
            "Ada",
            1_700_000_000,
            "init",
        );
        let current = format!("{}\ndef main():\n    return (\n", block.replace("old line", "new line"));
        // Takes the block whole, keeping its lines.
        let mut clean = |text: &str| {
            let end = text.find("\"\"\"\n\n").unwrap();
            let inner = &text["KEYS = \"\"\"".len()..end];
            format!("KEYS = \"\"\"{}{}", inner.lines().map(|_| "gone\n").collect::<String>(), &text[end..])
        };
        let diff =
            history(dir.path(), "app.py", &current, 5..6, 5, &mut clean).unwrap().unwrap().diff.unwrap();
        for secret in ["kept line", "old line", "new line"] {
            assert!(!diff.contains(secret), "{diff}");
        }
        assert!(diff.contains("-    return 1\n+    return (\n"), "{diff}");
        // A file git does not track is all new; one it ignores has no diff.
        std::fs::write(dir.path().join("new.py"), "x = 1\n").unwrap();
        let diff =
            history(dir.path(), "new.py", "x = 1\n", 0..1, 5, &mut str::to_owned).unwrap().unwrap().diff;
        assert!(diff.is_some_and(|d| d.contains("+x = 1")));
        std::fs::write(dir.path().join(".gitignore"), "ignored.py\n").unwrap();
        let diff =
            history(dir.path(), "ignored.py", "x = 1\n", 0..1, 5, &mut str::to_owned).unwrap().unwrap().diff;
        assert_eq!(diff, None);
    }
}
