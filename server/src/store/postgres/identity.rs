//! Who writes to the shared store: the repository, named by its normalised remote URL so that
//! clones on different machines agree, and the user.
//!
//! [`normalise_remote`] turns the forms git accepts for one repository (`https://`, `ssh://`,
//! `git@host:path`, with or without credentials, port, `.git` or a trailing slash, in any case)
//! into `host/path`. Credentials in a remote URL are dropped, never stored.

use std::path::Path;

/// `host/path` of a git remote URL, lower-cased, without scheme, credentials, port, `.git` or
/// trailing slashes. A local path stays a path (trimmed the same way).
pub fn normalise_remote(url: &str) -> String {
    let url = url.trim();
    let (rest, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest, false),
        // `git@host:path` (scp-like), which has a `:` before any `/`.
        None => match (url.find(':'), url.find('/')) {
            (Some(colon), slash) if slash.is_none_or(|s| colon < s) => (url, true),
            _ => (url, false),
        },
    };
    let (authority, path) = if scp {
        let (authority, path) = rest.split_once(':').unwrap_or((rest, ""));
        (authority, path)
    } else {
        match rest.find('/') {
            Some(i) if url.contains("://") => (&rest[..i], &rest[i + 1..]),
            _ => ("", rest),
        }
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_matches('/');
    let joined = if host.is_empty() { path.to_owned() } else { format!("{host}/{path}") };
    joined.to_lowercase()
}

/// The identity of the repository at `root`: its `origin` remote (else its first remote),
/// normalised; without one, `local:` and the root's path, which no other clone shares.
pub fn repository(root: &Path) -> String {
    let remote = git2::Repository::discover(root).ok().and_then(|repo| {
        let url = |name: &str| -> Option<String> {
            let remote = repo.find_remote(name).ok()?;
            remote.url().ok().map(str::to_owned)
        };
        if let Some(origin) = url("origin") {
            return Some(origin);
        }
        let names = repo.remotes().ok()?;
        let first: Option<String> = names.iter().flatten().flatten().next().map(str::to_owned);
        first.and_then(|name: String| url(&name))
    });
    match remote {
        Some(url) => normalise_remote(&url),
        None => format!("local:{}", root.canonicalize().unwrap_or_else(|_| root.to_owned()).display()),
    }
}

/// The user: `configured` when given, else git's `user.email` for `root`, else `$USER`.
pub fn user(configured: Option<&str>, root: &Path) -> String {
    if let Some(name) = configured.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let from_git = git2::Repository::discover(root)
        .ok()
        .and_then(|repo| repo.config().ok())
        .or_else(|| git2::Config::open_default().ok())
        .and_then(|config| config.get_string("user.email").ok())
        .filter(|e| !e.trim().is_empty());
    from_git.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".to_owned())
}

/// This machine's name (`gethostname`), or `unknown-host`.
pub fn host() -> String {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    if !ok {
        return "unknown-host".to_owned();
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// The branch checked out in the repository at `root`; `None` when detached or not a repository.
pub fn branch(root: &Path) -> Option<String> {
    let repo = git2::Repository::discover(root).ok()?;
    let head = repo.head().ok().filter(|h| h.is_branch())?;
    head.shorthand().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_of_one_remote_name_one_repository() {
        for url in [
            "https://github.com/Acme/App.git",
            "https://ana:tok3n@github.com/acme/app",
            "http://github.com:443/acme/app/",
            "ssh://git@github.com:22/acme/app.git",
            "git@github.com:acme/app.git",
            "git@github.com:acme/app",
            "git://github.com/acme/app.git/",
        ] {
            assert_eq!(normalise_remote(url), "github.com/acme/app", "{url}");
        }
        assert_eq!(normalise_remote("git@gitlab.example:group/sub/app.git"), "gitlab.example/group/sub/app");
        assert_eq!(normalise_remote("/srv/git/app.git"), "srv/git/app");
        assert!(!normalise_remote("https://ana:tok3n@github.com/acme/app").contains("tok3n"));
    }
}
