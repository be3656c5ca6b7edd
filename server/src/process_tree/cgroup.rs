//! A control group per tree, where the system lets ACAS make one (Linux, cgroup v2).
//!
//! A process cannot leave its control group without write access to another group's
//! `cgroup.procs`, and `setsid`, double forks and a cleared environment do not move it. So where
//! ACAS may create groups below its own (root, or a user session whose group systemd delegated),
//! every tree starts in a group of its own, `acas-PID.START.N` after the tree's mark, and ending
//! the tree also kills everything in its group (`cgroup.kill`, or SIGKILL to each member where
//! the kernel is older than 5.14) and removes the group. A tree left behind when ACAS and the
//! tree's supervisor were killed together is found by its group's name at the next start, even
//! after every process in it cleared its environment and left the session.
//!
//! Where no group can be made (no cgroup v2, or no write access), nothing changes: trees are
//! ended through the supervisor, the process group and the mark. This module limits no resource
//! and enables no controller.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The prefix of every group ACAS makes; the rest of the name is the tree's mark.
const PREFIX: &str = "acas-";

/// How many directories [`orphaned_groups`] looks at, at most: a cgroup tree is small, but a
/// bound keeps a strange one from making start-up slow.
const MAX_DIRECTORIES: usize = 10_000;

/// The group of one tree: its directory, and until the child started, `cgroup.procs` opened for
/// writing, so that the child moves itself in before it runs the command (in `pre_exec`, where
/// nothing may allocate).
#[derive(Debug)]
pub(super) struct Group {
    path: PathBuf,
    procs: Option<OwnedFd>,
}

impl Group {
    /// Makes the group of the tree marked `mark` below ACAS's own group. `None` where the system
    /// does not let ACAS (see the module doc).
    pub(super) fn create(mark: &str) -> Option<Self> {
        let path = own_group()?.join(format!("{PREFIX}{mark}"));
        std::fs::create_dir(&path).ok()?;
        match open_write(&path.join("cgroup.procs")) {
            Some(procs) => Some(Self { path, procs: Some(procs) }),
            None => {
                let _ = std::fs::remove_dir(&path);
                None
            }
        }
    }

    /// The descriptor the child writes `0` to, to move itself into the group.
    pub(super) fn procs_fd(&self) -> Option<libc::c_int> {
        self.procs.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The child has started (and joined): the descriptor is not needed any more.
    pub(super) fn started(&mut self) {
        self.procs = None;
    }

    /// Kills everything in the group and removes it. Blocking; call off the async threads.
    pub(super) fn end(self) {
        let _ = end_group(&self.path);
    }
}

/// The child's half of [`Group`]: moves the calling process into the group behind `fd`.
/// Async-signal-safe. A failure leaves the process where it was, with the other ways of ending a
/// tree still in force.
pub(super) fn join(fd: libc::c_int) {
    // SAFETY: write(2) reads two bytes of a static string; the descriptor is open in the child.
    unsafe {
        libc::write(fd, b"0".as_ptr().cast(), 1);
    }
}

/// ACAS's own group directory on the cgroup v2 file system, if there is one.
fn own_group() -> Option<&'static Path> {
    static OWN: OnceLock<Option<PathBuf>> = OnceLock::new();
    OWN.get_or_init(|| {
        let mount = mount_point()?;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let relative = cgroups.lines().find_map(|line| line.strip_prefix("0::"))?;
        let path = mount.join(relative.trim_start_matches('/'));
        path.is_dir().then_some(path)
    })
    .as_deref()
}

/// Where the cgroup v2 file system is mounted, from `/proc/self/mountinfo`.
fn mount_point() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let point = before.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(point)))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open_write(path: &Path) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: open(2) with a NUL-terminated path; the descriptor is owned from here on.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The pids in a group and in the groups below it.
fn members(path: &Path) -> Vec<libc::pid_t> {
    let mut pids: Vec<libc::pid_t> = std::fs::read_to_string(path.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(members(&entry.path()));
            }
        }
    }
    pids
}

/// Kills every process in the group at `path` (and below) and removes the group. Returns how
/// many processes were in it.
pub(super) fn end_group(path: &Path) -> usize {
    let count = members(path).len();
    let killed = std::fs::write(path.join("cgroup.kill"), "1").is_ok();
    for _ in 0..50 {
        let pids = members(path);
        if pids.is_empty() {
            break;
        }
        if !killed {
            for pid in pids {
                // SAFETY: kill(2) has no memory effects; the process is in the tree's group.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        // Killed processes leave the group as they exit; give them the moment that takes.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    remove(path);
    count
}

/// Removes a group and the (empty) groups below it.
fn remove(path: &Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(path);
}

/// Every group ACAS made, anywhere on the cgroup v2 file system, whose mark `is_orphan` says
/// belongs to an owner that is gone: (its path, its mark). Groups below such a group are its own
/// and are not listed separately.
pub(super) fn orphaned_groups(is_orphan: impl Fn(&str) -> bool) -> Vec<(PathBuf, String)> {
    let Some(mount) = mount_point() else { return Vec::new() };
    let mut found = Vec::new();
    let mut pending = vec![mount];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            seen += 1;
            if seen > MAX_DIRECTORIES {
                return found;
            }
            let name = entry.file_name();
            let mark = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
            match mark {
                Some(mark) if is_orphan(mark) => found.push((entry.path(), mark.to_owned())),
                _ => pending.push(entry.path()),
            }
        }
    }
    found
}

/// Whether a process in the group at `path` is a supervisor (`argv[1]` is `supervise_arg`):
/// a supervisor that still runs ends its tree itself, with the grace time.
pub(super) fn has_supervisor(path: &Path, supervise_arg: &str) -> bool {
    members(path).into_iter().any(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.split(|b| *b == 0).nth(1) == Some(supervise_arg.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/odd\\name\04"), r"/odd\\name\04");
    }
}
