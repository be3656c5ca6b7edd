//! The Linux namespaces a process runs in (user, PID, mount), as the kernel names them
//! (`user:[4026531837]`), read from `/proc/self/ns`.
//!
//! Walking `/proc` up the parent chain ([`super::enclosing`]) finds the supervisor of a step's
//! process only while that process sees the same PID namespace and the same `/proc`. A process
//! that made namespaces of its own (`unshare -Urpf --mount-proc`, a container) sees neither, and
//! cannot go back: entering its parent's namespaces needs privileges in them that an
//! unprivileged process does not have. Comparing namespaces with those of the ACAS that made a
//! request therefore tells such a process apart, wherever it hides in `/proc`; a process in the
//! machine's first namespaces ([`Namespaces::are_initial`]) is above every other, so it is never
//! one that a process below the requester made. It does not hold
//! against a process that runs as root (which can enter any namespace) nor on systems without
//! `/proc/self/ns` (then nothing is compared).

use serde::{Deserialize, Serialize};

/// The namespaces compared: those that decide what `/proc` and the parent chain show, and who a
/// process is.
const KINDS: [&str; 3] = ["user", "pid", "mnt"];

/// The user, PID and mount namespaces of a process, as `user:[N] pid:[N] mnt:[N]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Namespaces(String);

impl Namespaces {
    /// This process's namespaces; `None` where `/proc/self/ns` cannot be read.
    pub fn own() -> Option<Namespaces> {
        let mut names = Vec::with_capacity(KINDS.len());
        for kind in KINDS {
            let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
            names.push(link.to_string_lossy().into_owned());
        }
        Some(Namespaces(names.join(" ")))
    }

    /// Whether these are the machine's first user and PID namespaces (the kernel gives them
    /// fixed numbers, `PROC_USER_INIT_INO` and `PROC_PID_INIT_INO`): no process below one that
    /// made namespaces of its own gets back to them without privileges.
    pub fn are_initial(&self) -> bool {
        let mut parts = self.0.split(' ');
        parts.next() == Some("user:[4026531837]") && parts.next() == Some("pid:[4026531836]")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Namespaces {
    fn from(text: String) -> Namespaces {
        Namespaces(text)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn own_names_the_three_namespaces_the_same_way_each_time() {
        let own = Namespaces::own().expect("/proc/self/ns is readable on Linux");
        let parts: Vec<&str> = own.as_str().split(' ').collect();
        assert_eq!(parts.len(), 3, "{own:?}");
        for (part, kind) in parts.iter().zip(KINDS) {
            assert!(part.starts_with(&format!("{kind}:[")) && part.ends_with(']'), "{own:?}");
        }
        assert_eq!(Namespaces::own(), Some(own));
        assert!(Namespaces::from("user:[4026531837] pid:[4026531836] mnt:[1]".to_owned()).are_initial());
        assert!(!Namespaces::from("user:[4026532174] pid:[4026531836] mnt:[1]".to_owned()).are_initial());
    }
}
