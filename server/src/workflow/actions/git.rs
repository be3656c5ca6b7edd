//! `git.status`, `git.diff`, `git.log`, `git.add`, `git.commit`, `git.branch` and
//! `git.checkout`, with libgit2, on the repository that contains the workspace.
//!
//! Paths in parameters and outputs are workspace-relative, like every other action's; they are
//! confined to the workspace by text (they may be pathspecs such as `src/*.rs`); a `git.add` path
//! that names a file is resolved like a file action's (no symlink on the way may lead out), and
//! `git.checkout` refuses a branch that would write or delete a file outside the workspace,
//! through such a symlink, or over `.acas/state.db*`. Outputs are
//! structured JSON. Nothing here runs the `git` program, so hooks do not run. `git.diff` makes
//! its patch from the redacted versions of each file (`escalate::redact`), since its output is
//! meant for AI steps and templates that reach a provider.

use std::path::{Path, PathBuf};

use git2::{BranchType, DiffOptions, IndexAddOption, Repository, Status, StatusOptions};
use serde_json::{Value, json};

use super::confine;
use super::schema::{Kind, Param, Spec};
use super::{ActionError, Args};

pub const STATUS: Spec = Spec {
    name: "git.status",
    summary: "The state of the work tree and index of the repository that contains the workspace.",
    params: &[],
    exclusive: &[],
    output: "`{branch, head, clean, entries: [{path, index, worktree}]}`: `branch` is `null` on a detached HEAD, `head` the commit id (`null` before the first commit); `index` and `worktree` are `new`, `modified`, `deleted`, `renamed`, `typechange`, `conflicted` or `null`. Untracked files have `worktree: \"new\"`; ignored files are left out.",
};

pub const DIFF: Spec = Spec {
    name: "git.diff",
    summary: "The unified diff of unstaged changes (work tree against index), or of staged ones (index against `HEAD`).",
    params: &[
        Param::optional("staged", Kind::Boolean, Some("false"), "Diff the index against `HEAD` instead."),
        Param::optional("paths", Kind::StringList, None, "Limit the diff to these paths or pathspecs."),
    ],
    exclusive: &[],
    output: "`{diff, files: [{path, status, additions, deletions}], additions, deletions}`: `diff` is the patch text, made from the two versions of each file with their secrets redacted (`[REDACTED:<kind>]`), so it can go to an AI step; it is for reading, not for `git apply` (run `git diff` in a `shell` step for that).",
};

pub const LOG: Spec = Spec {
    name: "git.log",
    summary: "Recent commits reachable from `HEAD`, newest first.",
    params: &[
        Param::optional("max_count", Kind::Integer, Some("20"), "At most this many commits."),
        Param::optional("path", Kind::String, None, "Only commits that changed this file."),
    ],
    exclusive: &[],
    output: "`{commits: [{id, short_id, author, email, date, summary, message}]}`; `date` is ISO 8601 in UTC.",
};

pub const ADD: Spec = Spec {
    name: "git.add",
    summary: "Stages files: new and modified ones are added, deleted ones removed from the index.",
    params: &[Param::required(
        "paths",
        Kind::StringList,
        "Paths or pathspecs (`src/*.rs`, `.` for everything). A path that names a file is refused when a symlink on the way leads out of the workspace.",
    )],
    exclusive: &[],
    output: "`{staged: [path]}`: every path staged after the action.",
};

pub const COMMIT: Spec = Spec {
    name: "git.commit",
    summary: "Commits the index on the current branch. The author and committer come from `author_name` and `author_email` when given, else from git's `user.name` and `user.email`.",
    params: &[
        Param::required("message", Kind::Text, "The commit message."),
        Param::optional("author_name", Kind::String, None, "Author and committer name."),
        Param::optional("author_email", Kind::String, None, "Author and committer e-mail."),
    ],
    exclusive: &[],
    output: "`{id, short_id, branch, summary}`.",
};

pub const BRANCH: Spec = Spec {
    name: "git.branch",
    summary: "Creates a branch (without switching to it).",
    params: &[
        Param::required("name", Kind::String, "The new branch's name."),
        Param::optional("from", Kind::String, Some("HEAD"), "A branch, tag or commit to start from."),
    ],
    exclusive: &[],
    output: "`{name, id}`: `id` is the commit the branch points to.",
};

pub const CHECKOUT: Spec = Spec {
    name: "git.checkout",
    summary: "Switches the work tree and `HEAD` to a local branch. Refuses, changing nothing, when local changes would be overwritten, or when the switch would write or delete a file outside the workspace (the workspace is a folder inside a larger repository), through a symlink that leads out of it, or over ACAS's own `.acas/state.db*`.",
    params: &[Param::required("branch", Kind::String, "The local branch.")],
    exclusive: &[],
    output: "`{branch, id}`.",
};

fn git_error(what: &str, e: &git2::Error) -> ActionError {
    ActionError::new(format!("{what}: {}", e.message()))
}

/// The repository, its work tree, and the workspace's place in it.
struct Repo {
    repo: Repository,
    /// The workspace relative to the work tree, with a trailing `/` (empty at the top).
    prefix: String,
}

fn open(workspace: &Path) -> Result<Repo, ActionError> {
    let repo = Repository::discover(workspace).map_err(|e| match e.code() {
        git2::ErrorCode::NotFound => {
            ActionError::new(format!("{} is not inside a git repository", workspace.display()))
        }
        _ => git_error("cannot open the git repository", &e),
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| ActionError::new("the repository is bare: it has no work tree"))?
        .to_path_buf();
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let below = canonical(workspace).strip_prefix(canonical(&workdir)).map(PathBuf::from).unwrap_or_default();
    let mut prefix = below.to_string_lossy().replace('\\', "/");
    if !prefix.is_empty() {
        prefix.push('/');
    }
    Ok(Repo { repo, prefix })
}

impl Repo {
    /// A workspace path or pathspec as git knows it: relative to the work tree.
    fn pathspec(&self, workspace: &Path, path: &str) -> Result<String, ActionError> {
        let parts = confine::lexical(workspace, path)?;
        let relative = confine::relative(&parts);
        Ok(match (self.prefix.as_str(), relative.as_str()) {
            ("", "") => ".".to_owned(),
            (prefix, "") => prefix.trim_end_matches('/').to_owned(),
            (prefix, relative) => format!("{prefix}{relative}"),
        })
    }

    /// Refuses switching to `branch` when it would write or delete `path` (relative to the work
    /// tree) outside the workspace, through a symlink that leads out of it, or over ACAS's own
    /// files in `.acas/`.
    fn confine_written(&self, workspace: &Path, branch: &str, path: &Path) -> Result<(), ActionError> {
        let path = path.to_string_lossy().replace('\\', "/");
        let refused = |why: String| {
            ActionError::new(format!(
                "cannot switch to `{branch}`: it changes `{path}`, {why}; switch with git outside the workflow"
            ))
        };
        let Some(shown) = path.strip_prefix(&self.prefix) else {
            return Err(refused(format!("outside the workspace ({})", workspace.display())));
        };
        let resolved = confine::resolve(workspace, shown, confine::Follow::ExceptLast)
            .map_err(|e| refused(e.message))?;
        confine::refuse_internal(&resolved).map_err(|e| refused(e.message))
    }

    /// A work-tree path as the workspace knows it.
    fn shown(&self, path: &str) -> String {
        path.strip_prefix(&self.prefix).unwrap_or(path).to_owned()
    }

    fn head_id(&self) -> Option<git2::Oid> {
        self.repo.head().ok().and_then(|h| h.target())
    }

    fn branch_name(&self) -> Option<String> {
        let head = self.repo.head().ok();
        match head {
            Some(head) if head.is_branch() => head.shorthand().ok().map(str::to_owned),
            Some(_) => None,
            // An unborn branch: HEAD names it, but it has no commit yet.
            None => self.repo.find_reference("HEAD").ok().and_then(|r| {
                r.symbolic_target().ok().flatten().map(|t| t.trim_start_matches("refs/heads/").to_owned())
            }),
        }
    }

    fn staged(&self) -> Result<Vec<String>, ActionError> {
        let mut options = StatusOptions::new();
        options.include_untracked(false);
        let statuses =
            self.repo.statuses(Some(&mut options)).map_err(|e| git_error("cannot read the status", &e))?;
        Ok(statuses
            .iter()
            .filter(|s| index_change(s.status()).is_some())
            .filter_map(|s| s.path().ok().map(|p| self.shown(p)))
            .collect())
    }
}

/// A path given to `git.add` that names a file rather than a pattern is resolved like a file
/// action's: refused when a symlink on the way leads out of the workspace.
fn confine_literal(workspace: &Path, path: &str) -> Result<(), ActionError> {
    if path.contains(['*', '?', '[']) || confine::lexical(workspace, path)?.is_empty() {
        return Ok(());
    }
    confine::resolve(workspace, path, confine::Follow::ExceptLast).map(|_| ())
}

fn index_change(status: Status) -> Option<&'static str> {
    if status.is_conflicted() {
        return Some("conflicted");
    }
    [
        (Status::INDEX_NEW, "new"),
        (Status::INDEX_MODIFIED, "modified"),
        (Status::INDEX_DELETED, "deleted"),
        (Status::INDEX_RENAMED, "renamed"),
        (Status::INDEX_TYPECHANGE, "typechange"),
    ]
    .into_iter()
    .find(|(flag, _)| status.contains(*flag))
    .map(|(_, name)| name)
}

fn worktree_change(status: Status) -> Option<&'static str> {
    if status.is_conflicted() {
        return Some("conflicted");
    }
    [
        (Status::WT_NEW, "new"),
        (Status::WT_MODIFIED, "modified"),
        (Status::WT_DELETED, "deleted"),
        (Status::WT_RENAMED, "renamed"),
        (Status::WT_TYPECHANGE, "typechange"),
    ]
    .into_iter()
    .find(|(flag, _)| status.contains(*flag))
    .map(|(_, name)| name)
}

pub fn status(workspace: &Path, _args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let mut options = StatusOptions::new();
    options.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    if !repo.prefix.is_empty() {
        options.pathspec(&repo.prefix);
    }
    let statuses =
        repo.repo.statuses(Some(&mut options)).map_err(|e| git_error("cannot read the status", &e))?;
    let entries: Vec<Value> = statuses
        .iter()
        .filter_map(|s| {
            let path = s.path().ok()?;
            Some(json!({
                "path": repo.shown(path),
                "index": index_change(s.status()),
                "worktree": worktree_change(s.status()),
            }))
        })
        .collect();
    Ok(json!({
        "branch": repo.branch_name(),
        "head": repo.head_id().map(|id| id.to_string()),
        "clean": entries.is_empty(),
        "entries": entries,
    }))
}

pub fn diff(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let mut options = DiffOptions::new();
    let paths = args.strings("paths").unwrap_or_default();
    for path in &paths {
        options.pathspec(repo.pathspec(workspace, path)?);
    }
    if paths.is_empty() && !repo.prefix.is_empty() {
        options.pathspec(&repo.prefix);
    }
    let r = &repo.repo;
    let diff = if args.bool("staged").unwrap_or(false) {
        let head = match r.head() {
            Ok(head) => Some(head.peel_to_tree().map_err(|e| git_error("cannot read HEAD", &e))?),
            Err(_) => None,
        };
        r.diff_tree_to_index(head.as_ref(), None, Some(&mut options))
    } else {
        r.diff_index_to_workdir(None, Some(&mut options))
    }
    .map_err(|e| git_error("cannot compute the diff", &e))?;
    let staged = args.bool("staged").unwrap_or(false);
    let mut text = String::new();
    for delta in diff.deltas() {
        text.push_str(&redacted_patch(r, &delta, staged)?);
    }
    let mut files = Vec::new();
    let (mut all_added, mut all_deleted) = (0, 0);
    for (i, delta) in diff.deltas().enumerate() {
        let (added, deleted) = git2::Patch::from_diff(&diff, i)
            .ok()
            .flatten()
            .and_then(|p| p.line_stats().ok())
            .map_or((0, 0), |(_, a, d)| (a, d));
        all_added += added;
        all_deleted += deleted;
        let path =
            delta.new_file().path().or(delta.old_file().path()).map(|p| p.to_string_lossy().into_owned());
        files.push(json!({
            "path": path.map(|p| repo.shown(&p)),
            "status": format!("{:?}", delta.status()).to_lowercase(),
            "additions": added,
            "deletions": deleted,
        }));
    }
    Ok(json!({"diff": text, "files": files, "additions": all_added, "deletions": all_deleted}))
}

/// The patch of one changed file, made from its two versions each redacted whole first (as the
/// context's uncommitted diff is), so that a secret spanning lines (a block of passwords in a
/// triple-quoted string) cannot come back as lines of the patch where nothing names it. The
/// patch is what the workflow may send to a provider; a workflow that needs git's own patch runs
/// `git diff` in a `shell` step.
fn redacted_patch(
    repo: &Repository,
    delta: &git2::DiffDelta<'_>,
    staged: bool,
) -> Result<String, ActionError> {
    let version = |file: git2::DiffFile<'_>, in_workdir: bool| -> Result<String, ActionError> {
        let Some(path) = file.path() else { return Ok(String::new()) };
        let bytes = if in_workdir {
            let full = repo.workdir().map(|w| w.join(path)).unwrap_or_else(|| path.to_path_buf());
            match std::fs::symlink_metadata(&full) {
                // A link's version is its target, as git shows it; the link is not followed.
                Ok(meta) if meta.file_type().is_symlink() => std::fs::read_link(&full)
                    .map(|t| t.to_string_lossy().into_owned().into_bytes())
                    .unwrap_or_default(),
                Ok(meta) if meta.is_file() => std::fs::read(&full).unwrap_or_default(),
                _ => Vec::new(),
            }
        } else if file.id().is_zero() {
            Vec::new()
        } else {
            repo.find_blob(file.id())
                .map_err(|e| git_error("cannot read a file's committed version", &e))?
                .content()
                .to_vec()
        };
        let shown = path.to_string_lossy();
        let env_like = crate::escalate::redact::is_env_like(&shown);
        Ok(crate::escalate::redact::redact_text_keeping_lines(&String::from_utf8_lossy(&bytes), env_like).0)
    };
    let old = version(delta.old_file(), false)?;
    let new = version(delta.new_file(), !staged)?;
    let (old_path, new_path) = (delta.old_file().path(), delta.new_file().path());
    let mut patch = git2::Patch::from_buffers(old.as_bytes(), old_path, new.as_bytes(), new_path, None)
        .map_err(|e| git_error("cannot compute the diff", &e))?;
    let buf = patch.to_buf().map_err(|e| git_error("cannot print the diff", &e))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub fn log(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let r = &repo.repo;
    let max = args.u64("max_count").unwrap_or(20) as usize;
    let path = match args.str("path") {
        Some(path) => Some(PathBuf::from(repo.pathspec(workspace, path)?)),
        None => None,
    };
    if r.head().is_err() {
        return Ok(json!({"commits": []}));
    }
    let mut walk = r.revwalk().map_err(|e| git_error("cannot walk the history", &e))?;
    walk.push_head().map_err(|e| git_error("cannot walk the history", &e))?;
    walk.set_sorting(git2::Sort::TIME).map_err(|e| git_error("cannot walk the history", &e))?;
    let mut commits = Vec::new();
    for id in walk {
        if commits.len() >= max {
            break;
        }
        let id = id.map_err(|e| git_error("cannot walk the history", &e))?;
        let commit = r.find_commit(id).map_err(|e| git_error("cannot read a commit", &e))?;
        if let Some(path) = &path {
            let entry =
                |c: &git2::Commit<'_>| c.tree().ok().and_then(|t| t.get_path(path).ok()).map(|e| e.id());
            let here = entry(&commit);
            let touched = if commit.parent_count() == 0 {
                here.is_some()
            } else {
                commit.parents().all(|p| entry(&p) != here)
            };
            if !touched {
                continue;
            }
        }
        let author = commit.author();
        let seconds = commit.time().seconds();
        commits.push(json!({
            "id": id.to_string(),
            "short_id": id.to_string()[..8].to_owned(),
            "author": author.name().unwrap_or(""),
            "email": author.email().unwrap_or(""),
            "date": format!("{}Z", crate::time::date_time(seconds * 1000).replace(' ', "T")),
            "summary": commit.summary().ok().flatten().unwrap_or(""),
            "message": commit.message().unwrap_or(""),
        }));
    }
    Ok(json!({"commits": commits}))
}

pub fn add(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let paths = args.strings("paths").unwrap_or_default();
    if paths.is_empty() {
        return Err(ActionError::new("`paths` is empty; name what to stage (`.` for everything)"));
    }
    for path in &paths {
        confine_literal(workspace, path)?;
    }
    let specs = paths.iter().map(|p| repo.pathspec(workspace, p)).collect::<Result<Vec<_>, _>>()?;
    let mut index = repo.repo.index().map_err(|e| git_error("cannot open the index", &e))?;
    index.add_all(&specs, IndexAddOption::DEFAULT, None).map_err(|e| git_error("cannot stage", &e))?;
    index.update_all(&specs, None).map_err(|e| git_error("cannot stage", &e))?;
    index.write().map_err(|e| git_error("cannot write the index", &e))?;
    Ok(json!({"staged": repo.staged()?}))
}

pub fn commit(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let r = &repo.repo;
    let message = args.need_text("message")?;
    if message.trim().is_empty() {
        return Err(ActionError::new("the commit message is empty"));
    }
    let configured =
        r.signature().ok().and_then(|s| Some((s.name().ok()?.to_owned(), s.email().ok()?.to_owned())));
    let (name, email) = author(configured, args.str("author_name"), args.str("author_email"))?;
    let signature =
        git2::Signature::now(&name, &email).map_err(|e| git_error("the author is not valid", &e))?;
    let mut index = r.index().map_err(|e| git_error("cannot open the index", &e))?;
    let tree_id = index.write_tree().map_err(|e| git_error("cannot write the tree", &e))?;
    let tree = r.find_tree(tree_id).map_err(|e| git_error("cannot read the tree", &e))?;
    let parent = match r.head() {
        Ok(head) => Some(head.peel_to_commit().map_err(|e| git_error("cannot read HEAD", &e))?),
        Err(_) => None,
    };
    if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
        return Err(ActionError::new("nothing to commit: stage changes with `git.add` first"));
    }
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = r
        .commit(Some("HEAD"), &signature, &signature, &message, &tree, &parents)
        .map_err(|e| git_error("cannot commit", &e))?;
    let summary = message.lines().next().unwrap_or("").to_owned();
    Ok(json!({
        "id": id.to_string(),
        "short_id": id.to_string()[..8].to_owned(),
        "branch": repo.branch_name(),
        "summary": summary,
    }))
}

/// The author: the parameters, each falling back to git's configuration.
fn author(
    configured: Option<(String, String)>,
    name: Option<&str>,
    email: Option<&str>,
) -> Result<(String, String), ActionError> {
    let (configured_name, configured_email) = configured.unzip();
    match (name.map(str::to_owned).or(configured_name), email.map(str::to_owned).or(configured_email)) {
        (Some(name), Some(email)) => Ok((name, email)),
        _ => Err(ActionError::new(
            "no commit author: set `user.name` and `user.email` in git's configuration, or give `author_name` and `author_email`",
        )),
    }
}

pub fn branch(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let r = &repo.repo;
    let name = args.need_str("name")?;
    let from = args.str("from").unwrap_or("HEAD");
    let start = r
        .revparse_single(from)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| git_error(&format!("cannot find `{from}`"), &e))?;
    if r.find_branch(name, BranchType::Local).is_ok() {
        return Err(ActionError::new(format!("the branch `{name}` already exists")));
    }
    let created =
        r.branch(name, &start, false).map_err(|e| git_error(&format!("cannot create `{name}`"), &e))?;
    let id = created.get().target().map(|id| id.to_string());
    Ok(json!({"name": name, "id": id}))
}

/// The workspace-relative paths switching to the local branch `name` would write or delete:
/// the diff of `HEAD`'s tree and the branch's, for the policy to judge before the switch.
pub fn checkout_changes(workspace: &Path, name: &str) -> Result<Vec<String>, ActionError> {
    let repo = open(workspace)?;
    let r = &repo.repo;
    let branch = r
        .find_branch(name, BranchType::Local)
        .map_err(|_| ActionError::new(format!("there is no local branch `{name}`")))?;
    let commit =
        branch.get().peel_to_commit().map_err(|e| git_error(&format!("cannot read `{name}`"), &e))?;
    let from = r.head().ok().and_then(|head| head.peel_to_tree().ok());
    let to = commit.tree().map_err(|e| git_error(&format!("cannot read `{name}`"), &e))?;
    let changes = r
        .diff_tree_to_tree(from.as_ref(), Some(&to), None)
        .map_err(|e| git_error(&format!("cannot compare `{name}` with HEAD"), &e))?;
    let mut paths = Vec::new();
    for delta in changes.deltas() {
        for path in [delta.old_file().path(), delta.new_file().path()].into_iter().flatten() {
            let path = path.to_string_lossy().replace('\\', "/");
            // Paths outside the workspace are refused by the switch itself.
            if let Some(shown) = path.strip_prefix(&repo.prefix)
                && !paths.iter().any(|p| p == shown)
            {
                paths.push(shown.to_owned());
            }
        }
    }
    Ok(paths)
}

pub fn checkout(workspace: &Path, args: &Args<'_>) -> Result<Value, ActionError> {
    let repo = open(workspace)?;
    let r = &repo.repo;
    let name = args.need_str("branch")?;
    let branch = r.find_branch(name, BranchType::Local).map_err(|_| {
        ActionError::new(format!("there is no local branch `{name}`; create it with `git.branch` first"))
    })?;
    let reference = branch.get();
    let refname =
        reference.name().map_err(|_| ActionError::new(format!("`{name}` is not a valid branch name")))?;
    let commit = reference.peel_to_commit().map_err(|e| git_error(&format!("cannot read `{name}`"), &e))?;
    // Every file the switch writes or deletes must be one a file action could change: inside
    // the workspace, not through a symlink that leads out of it, not ACAS's own state.
    let from = r.head().ok().and_then(|head| head.peel_to_tree().ok());
    let to = commit.tree().map_err(|e| git_error(&format!("cannot read `{name}`"), &e))?;
    let changes = r
        .diff_tree_to_tree(from.as_ref(), Some(&to), None)
        .map_err(|e| git_error(&format!("cannot compare `{name}` with HEAD"), &e))?;
    for delta in changes.deltas() {
        for path in [delta.old_file().path(), delta.new_file().path()].into_iter().flatten() {
            repo.confine_written(workspace, name, path)?;
        }
    }
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.safe();
    r.checkout_tree(commit.as_object(), Some(&mut checkout)).map_err(|e| {
        git_error(&format!("cannot switch to `{name}` (commit or stash local changes first)"), &e)
    })?;
    r.set_head(refname).map_err(|e| git_error(&format!("cannot switch to `{name}`"), &e))?;
    Ok(json!({"branch": name, "id": commit.id().to_string()}))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Outcome, run_in};
    use serde_json::json;
    use std::path::Path;

    /// A repository with one commit of `a.txt`, whose configuration names an author.
    fn repository(dir: &Path) -> git2::Repository {
        let repo = git2::Repository::init(dir).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", "Ada Lovelace").unwrap();
        config.set_str("user.email", "ada@example.com").unwrap();
        std::fs::write(dir.join("a.txt"), "one\n").unwrap();
        repo
    }

    #[test]
    fn status_add_commit_log_and_diff() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let _repo = repository(ws);
        let run = |action: &str, with: serde_json::Value| run_in(ws, action, with);

        let status = run("git.status", json!({})).ok();
        assert_eq!(status["head"], json!(null));
        assert_eq!(status["clean"], false);
        assert_eq!(status["entries"], json!([{"path": "a.txt", "index": null, "worktree": "new"}]));
        assert!(matches!(status["branch"].as_str(), Some("master" | "main")), "{status}");

        assert_eq!(run("git.add", json!({"paths": ["."]})), Outcome::Ok(json!({"staged": ["a.txt"]})));
        let first = run("git.commit", json!({"message": "Add a\n\nWith a body."})).ok();
        assert_eq!(first["summary"], "Add a");
        assert!(run("git.commit", json!({"message": "again"})).err().contains("nothing to commit"));
        assert_eq!(run("git.status", json!({})).ok()["clean"], true);

        std::fs::write(ws.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(ws.join("b.txt"), "bee\n").unwrap();
        let diff = run("git.diff", json!({})).ok();
        assert_eq!(
            diff["files"],
            json!([{"path": "a.txt", "status": "modified", "additions": 1, "deletions": 0}])
        );
        assert!(diff["diff"].as_str().unwrap().contains("+two\n"), "{diff}");
        assert_eq!(run("git.diff", json!({"staged": true})).ok()["files"], json!([]));

        run("git.add", json!({"paths": ["a.txt", "b.txt"]})).ok();
        let staged = run("git.diff", json!({"staged": true, "paths": ["b.txt"]})).ok();
        assert_eq!(
            staged["files"],
            json!([{"path": "b.txt", "status": "added", "additions": 1, "deletions": 0}])
        );
        let second = run(
            "git.commit",
            json!({"message": "Add b", "author_name": "Grace Hopper", "author_email": "grace@example.com"}),
        )
        .ok();

        std::fs::remove_file(ws.join("b.txt")).unwrap();
        assert_eq!(run("git.add", json!({"paths": ["b.txt"]})), Outcome::Ok(json!({"staged": ["b.txt"]})));

        let log = run("git.log", json!({})).ok();
        let commits = log["commits"].as_array().unwrap();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0]["id"], second["id"]);
        assert_eq!(commits[0]["author"], "Grace Hopper");
        assert_eq!(commits[1]["author"], "Ada Lovelace");
        assert_eq!(commits[1]["message"], "Add a\n\nWith a body.");
        assert!(commits[1]["date"].as_str().unwrap().ends_with('Z'));
        let only_b = run("git.log", json!({"path": "b.txt"})).ok();
        assert_eq!(only_b["commits"].as_array().unwrap().len(), 1);
        assert_eq!(run("git.log", json!({"max_count": 1})).ok()["commits"].as_array().unwrap().len(), 1);
        assert!(run("git.add", json!({"paths": ["../x"]})).err().contains("climbs out of the workspace"));
    }

    #[test]
    fn branch_and_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let _repo = repository(ws);
        let run = |action: &str, with: serde_json::Value| run_in(ws, action, with);
        run("git.add", json!({"paths": ["a.txt"]})).ok();
        let first = run("git.commit", json!({"message": "one"})).ok();

        assert_eq!(
            run("git.branch", json!({"name": "feature"})),
            Outcome::Ok(json!({"name": "feature", "id": first["id"]}))
        );
        assert!(run("git.branch", json!({"name": "feature"})).err().contains("already exists"));
        assert!(run("git.branch", json!({"name": "x", "from": "nope"})).err().contains("cannot find `nope`"));
        assert_eq!(
            run("git.checkout", json!({"branch": "feature"})),
            Outcome::Ok(json!({"branch": "feature", "id": first["id"]}))
        );
        assert_eq!(run("git.status", json!({})).ok()["branch"], "feature");

        std::fs::write(ws.join("a.txt"), "two\n").unwrap();
        run("git.add", json!({"paths": ["a.txt"]})).ok();
        let second = run("git.commit", json!({"message": "two"})).ok();
        assert_eq!(second["branch"], "feature");
        let main = run("git.branch", json!({"name": "back", "from": first["id"]})).ok();
        assert_eq!(main["id"], first["id"]);

        // A local change that the switch would overwrite: refused, nothing changed.
        std::fs::write(ws.join("a.txt"), "dirty\n").unwrap();
        assert!(run("git.checkout", json!({"branch": "back"})).err().contains("cannot switch to `back`"));
        assert_eq!(std::fs::read_to_string(ws.join("a.txt")).unwrap(), "dirty\n");
        assert_eq!(run("git.status", json!({})).ok()["branch"], "feature");

        std::fs::write(ws.join("a.txt"), "two\n").unwrap();
        run("git.checkout", json!({"branch": "back"})).ok();
        assert_eq!(std::fs::read_to_string(ws.join("a.txt")).unwrap(), "one\n");
        assert!(run("git.checkout", json!({"branch": "nope"})).err().contains("no local branch `nope`"));
    }

    #[test]
    fn without_a_repository_or_an_author() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("plain");
        std::fs::create_dir_all(&ws).unwrap();
        assert!(run_in(&ws, "git.status", json!({})).err().contains("is not inside a git repository"));
        git2::Repository::init(&ws).unwrap();
        std::fs::write(ws.join("a.txt"), "x").unwrap();
        run_in(&ws, "git.add", json!({"paths": ["a.txt"]})).ok();
        // The machine's global configuration may or may not name an author, so the repository
        // is committed to with an explicit one, and the fallback is checked on its own below.
        let done =
            run_in(&ws, "git.commit", json!({"message": "m", "author_name": "A", "author_email": "a@x"}))
                .ok();
        assert_eq!(done["summary"], "m");
        assert_eq!(
            git2::Repository::open(&ws)
                .unwrap()
                .head()
                .unwrap()
                .peel_to_commit()
                .unwrap()
                .author()
                .name()
                .ok(),
            Some("A")
        );
    }

    #[test]
    fn the_author_falls_back_to_the_configuration() {
        let configured = Some(("Ada".to_owned(), "ada@example.com".to_owned()));
        let pair = |n: &str, e: &str| (n.to_owned(), e.to_owned());
        assert_eq!(super::author(configured.clone(), None, None).unwrap(), pair("Ada", "ada@example.com"));
        assert_eq!(super::author(configured, Some("Grace"), None).unwrap(), pair("Grace", "ada@example.com"));
        assert_eq!(super::author(None, Some("G"), Some("g@x")).unwrap(), pair("G", "g@x"));
        let e = super::author(None, Some("G"), None).unwrap_err();
        assert!(e.message.starts_with("no commit author: set `user.name`"), "{e}");
    }

    /// Commits on a new branch `name`, from `HEAD`, a tree that also holds `files` (paths
    /// relative to the work tree) with the given contents, without touching the work tree.
    fn branch_with(repo: &git2::Repository, name: &str, files: &[(&str, &str)]) {
        let head = repo.head().unwrap().peel_to_commit().unwrap();
        let mut index = git2::Index::new().unwrap();
        index.read_tree(&head.tree().unwrap()).unwrap();
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).unwrap();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100644,
                uid: 0,
                gid: 0,
                file_size: content.len() as u32,
                id: blob,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).unwrap();
        }
        let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
        let sig = git2::Signature::now("Mallory", "m@example.com").unwrap();
        let commit = repo.commit(None, &sig, &sig, "evil", &tree, &[&head]).unwrap();
        repo.branch(name, &repo.find_commit(commit).unwrap(), false).unwrap();
    }

    #[test]
    fn checkout_cannot_write_outside_the_workspace_or_over_the_state_database() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("repo");
        let ws = top.join("ws");
        std::fs::create_dir_all(ws.join(".acas")).unwrap();
        let repo = repository(&top);
        std::fs::write(top.join(".gitignore"), ".acas/\n").unwrap();
        std::fs::write(ws.join("b.txt"), "b\n").unwrap();
        std::fs::write(ws.join(".acas/state.db"), "live\n").unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("link")).unwrap();
        let run = |action: &str, with: serde_json::Value| run_in(&ws, action, with);
        run("git.add", json!({"paths": ["b.txt"]})).ok();
        run("git.commit", json!({"message": "one"})).ok();

        // A branch that overwrites the live database (ignored, so libgit2 overwrites it).
        branch_with(&repo, "db", &[("ws/.acas/state.db", "gone\n")]);
        let error = run("git.checkout", json!({"branch": "db"})).err();
        assert!(error.contains("cannot switch to `db`: it changes `ws/.acas/state.db`"), "{error}");
        assert_eq!(std::fs::read_to_string(ws.join(".acas/state.db")).unwrap(), "live\n");

        // A branch that changes a file above the workspace, in the same repository.
        branch_with(&repo, "above", &[("a.txt", "changed\n")]);
        let error = run("git.checkout", json!({"branch": "above"})).err();
        assert!(error.contains("it changes `a.txt`, outside the workspace"), "{error}");
        assert_eq!(std::fs::read_to_string(top.join("a.txt")).unwrap(), "one\n");

        // A branch that writes through a symlinked directory of the work tree.
        branch_with(&repo, "through", &[("ws/link/evil.txt", "evil\n")]);
        let error = run("git.checkout", json!({"branch": "through"})).err();
        assert!(error.contains("it changes `ws/link/evil.txt`"), "{error}");
        assert!(!outside.join("evil.txt").exists());

        assert_eq!(run("git.status", json!({})).ok()["branch"], repo.head().unwrap().shorthand().unwrap());
    }

    #[test]
    fn add_refuses_paths_that_leave_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let _repo = repository(&ws);
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s\n").unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("link")).unwrap();
        let run = |action: &str, with: serde_json::Value| run_in(&ws, action, with);

        let error = run("git.add", json!({"paths": ["link/secret"]})).err();
        assert!(error.contains("link"), "{error}");
        let error = run("git.add", json!({"paths": [outside.join("secret").to_str().unwrap()]})).err();
        assert!(error.contains("outside the workspace"), "{error}");
        assert!(run("git.add", json!({"paths": ["a.txt/../../x"]})).err().contains("climbs out"));
        assert_eq!(run("git.add", json!({"paths": ["a.txt"]})).ok()["staged"], json!(["a.txt"]));
    }
}
