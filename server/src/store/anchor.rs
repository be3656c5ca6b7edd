//! The audit log's anchor outside the database: the head of the log (its last record's number
//! and hash, and a chained hash over the rows of pruned segments) written to a file in the
//! user's state directory, `$XDG_STATE_HOME/acas/audit/<hash of the workspace root>.head` (else
//! `~/.local/state/...`), after each committed append and each prune.
//!
//! The hash chain inside the database catches a record edited, removed or moved by someone who
//! does not recompute hashes; it cannot catch someone who rewrites the database and its head
//! row together (cutting records off the end, wiping the log, dressing a deletion up as a pruned
//! segment). The anchor can: [`check`] compares the database with it and names what differs.
//! Someone who can also rewrite the anchor file can still forge; [`Anchor::text`] is what
//! `acas audit head` prints so the head can be kept elsewhere and checked with
//! `acas audit verify --head`.
//!
//! The file only moves forward (a larger record number, or as many records and more pruned
//! segments), under a lock, so two processes writing it in the wrong order cannot set it back;
//! and only to a head whose chain contains the anchored record unchanged, with no pruned
//! segments but the anchor's and those of the prune it follows ([`extends`]): an ordinary append
//! after a rewrite, a wipe or a forged segment leaves the anchor where it was. Writing it never
//! fails the write it follows: a failure is logged.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::audit::{AuditBreak, BreakKind, GENESIS_HASH, PrunedSegment, Verification};

/// What the anchor holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The last record's number and hash.
    pub seq: i64,
    pub hash: String,
    /// How many segments were pruned, and the chained hash over their rows.
    pub segments: i64,
    pub segments_hash: String,
}

impl Anchor {
    /// `SEQ:HASH:SEGMENTS:SEGMENTS_HASH`, as the file holds it and `acas audit head` prints it.
    pub fn text(&self) -> String {
        format!("{}:{}:{}:{}", self.seq, self.hash, self.segments, self.segments_hash)
    }

    pub fn parse(text: &str) -> Option<Anchor> {
        let mut parts = text.trim().split(':');
        let anchor = Anchor {
            seq: parts.next()?.parse().ok()?,
            hash: parts.next()?.to_owned(),
            segments: parts.next()?.parse().ok()?,
            segments_hash: parts.next()?.to_owned(),
        };
        let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        (parts.next().is_none() && hex64(&anchor.hash) && hex64(&anchor.segments_hash) && anchor.seq >= 0)
            .then_some(anchor)
    }
}

/// The chained hash over pruned segments' rows: each commits to the one before and to its
/// records' numbers, last time, final hash and when it was pruned.
pub fn segments_hash(segments: &[PrunedSegment]) -> String {
    let mut chain = GENESIS_HASH.to_owned();
    for s in segments {
        let mut hasher = Sha256::new();
        hasher.update(chain.as_bytes());
        hasher.update(b"acas-audit-segment-1");
        for n in [s.segment, s.first_seq, s.last_seq, s.last_at_ms, s.pruned_ms] {
            hasher.update(n.to_be_bytes());
        }
        hasher.update(s.last_hash.as_bytes());
        chain = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    }
    chain
}

/// The anchor of the log as the database holds it now.
pub fn current(conn: &Connection) -> rusqlite::Result<Anchor> {
    let segments = super::audit::all_segments(conn)?;
    let stored: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, hash) = stored.unwrap_or_else(|| {
        segments.last().map_or_else(|| (0, GENESIS_HASH.to_owned()), |s| (s.last_seq, s.last_hash.clone()))
    });
    Ok(Anchor { seq, hash, segments: segments.len() as i64, segments_hash: segments_hash(&segments) })
}

/// Where the anchor of the database at `db_path` (`<root>/.acas/state.db`) is kept; `None` when
/// neither XDG_STATE_HOME nor HOME is set.
pub fn path(db_path: &Path) -> Option<PathBuf> {
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?).join(".local/state"),
    };
    let root = db_path.parent().and_then(Path::parent)?;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(state.join("acas").join("audit").join(format!("{name}.head")))
}

/// The anchor kept for the database at `db_path`: `Ok(None)` when there is none yet.
pub fn read(db_path: &Path) -> std::io::Result<Option<(PathBuf, Option<Anchor>)>> {
    let Some(path) = path(db_path) else { return Ok(None) };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let anchor = Anchor::parse(&text);
            Ok(Some((path, anchor)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the anchor of the log as `conn` sees it now, when it is ahead of the one kept and its
/// chain contains the kept head unchanged (see [`extends`]). Call it after a commit that
/// appended to the log. Never fails: a failure, or a log that does not extend the anchor, is
/// logged and the anchor stays where it was, for `acas audit verify` to compare with.
pub fn update(conn: &Connection, db_path: &Path) {
    update_after_prune(conn, db_path, 0);
}

/// [`update`] after a prune that removed `pruned` segments: those may be added to the anchor's,
/// no others.
pub fn update_after_prune(conn: &Connection, db_path: &Path, pruned: u64) {
    let result = (|| -> anyhow::Result<()> {
        let Some(path) = path(db_path) else { return Ok(()) };
        let dir = path.parent().expect("the anchor path has a directory");
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("lock"))?;
        // SAFETY: flock on a descriptor this function owns; released when `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // The log and its head at one moment, while the anchor cannot change.
        let tx = conn.unchecked_transaction()?;
        let anchor = current(&tx)?;
        let kept = std::fs::read_to_string(&path).ok().and_then(|t| Anchor::parse(&t));
        if let Some(kept) = &kept {
            if (kept.seq, kept.segments) >= (anchor.seq, anchor.segments) {
                return Ok(());
            }
            if let Err(why) = extends(&tx, kept, pruned)? {
                tracing::warn!(
                    "the audit log's anchor stays at record {} and is not moved to record {}: {why}; \
                     `acas audit verify` names what was changed",
                    kept.seq,
                    anchor.seq
                );
                return Ok(());
            }
        }
        drop(tx);
        let tmp = path.with_extension("head.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(anchor.text().as_bytes())?;
        file.sync_data()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(
            "writing the audit log's anchor failed: {error:#}; `acas audit verify` cannot tell a cut-off log until it is written again"
        );
    }
}

/// Whether the log as `conn` holds it now extends the anchor `kept`: the anchor's pruned
/// segments unchanged and at most `pruned` more (those the prune just made), the anchor's record
/// present (as a record or the end of a pruned segment) with the anchor's hash, and every record
/// after it chained from it up to the head. Only such a head may replace the anchor: a log
/// rewritten with recomputed hashes, wiped, or with records dressed up as pruned does not.
fn extends(conn: &Connection, kept: &Anchor, pruned: u64) -> rusqlite::Result<Result<(), String>> {
    let segments = super::audit::all_segments(conn)?;
    let anchored = usize::try_from(kept.segments).unwrap_or(usize::MAX);
    if segments.len() < anchored || segments_hash(&segments[..anchored]) != kept.segments_hash {
        return Ok(Err("the pruned segments do not match the anchor's".to_owned()));
    }
    let added = (segments.len() - anchored) as u64;
    if added > pruned {
        return Ok(Err(format!("{added} pruned segments are not in the anchor")));
    }
    if segments.iter().any(|s| s.last_seq > kept.seq) {
        return Ok(Err(format!("records after record {} were pruned", kept.seq)));
    }
    let hash: Option<String> = if kept.seq == 0 {
        Some(GENESIS_HASH.to_owned())
    } else {
        conn.prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?
            .query_row([kept.seq], |r| r.get(0))
            .optional()?
            .or_else(|| segments.iter().find(|s| s.last_seq == kept.seq).map(|s| s.last_hash.clone()))
    };
    match hash {
        None => Ok(Err(format!("record {} is no longer in the log", kept.seq))),
        Some(hash) if hash != kept.hash => {
            Ok(Err(format!("record {} does not match the anchor: the log was rewritten up to it", kept.seq)))
        }
        Some(_) => super::audit::extends(conn, kept.seq, &kept.hash),
    }
}

/// Compares the database (as [`super::audit::verify`] found it) with an anchor. `exact`: the
/// anchor is the one ACAS keeps (every prune writes it), so a pruned segment it does not hold
/// is a forgery; otherwise (a head kept elsewhere, maybe older) later segments are allowed.
pub fn check(
    conn: &Connection,
    found: &Verification,
    anchor: &Anchor,
    exact: bool,
) -> rusqlite::Result<Option<AuditBreak>> {
    let segments = super::audit::all_segments(conn)?;
    let anchored = usize::try_from(anchor.segments).unwrap_or(usize::MAX);
    let broken = |seq: i64, kind, message: String| Ok(Some(AuditBreak { seq, kind, message }));
    if segments.len() < anchored {
        return broken(
            1,
            BreakKind::Segments,
            format!(
                "{} pruned segments are in the database, the anchor holds {}: segment rows were removed",
                segments.len(),
                anchor.segments
            ),
        );
    }
    if segments_hash(&segments[..anchored]) != anchor.segments_hash {
        return broken(
            1,
            BreakKind::Segments,
            "the pruned segments do not match the anchor: a segment row was changed, or records were \
             deleted and a segment row forged for them"
                .to_owned(),
        );
    }
    if exact && let Some(extra) = segments.get(anchored) {
        return broken(
            extra.first_seq,
            BreakKind::Segments,
            format!(
                "pruned segment {} (records {} to {}) is not in the anchor: records were deleted and \
                 dressed up as pruned",
                extra.segment, extra.first_seq, extra.last_seq
            ),
        );
    }
    if found.head_seq < anchor.seq {
        if found.head_seq == 0 {
            return broken(
                1,
                BreakKind::Truncated,
                format!("the log was wiped: the anchor holds records 1 to {}, the database none", anchor.seq),
            );
        }
        return broken(
            found.head_seq + 1,
            BreakKind::Truncated,
            format!(
                "records {} to {} are missing from the end of the log (the anchor's head is record {})",
                found.head_seq + 1,
                anchor.seq,
                anchor.seq
            ),
        );
    }
    let hash_at: Option<String> = if found.head_seq == anchor.seq {
        Some(found.head_hash.clone())
    } else {
        let kept: Option<String> = conn
            .prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?
            .query_row([anchor.seq], |r| r.get(0))
            .optional()?;
        kept.or_else(|| segments.iter().find(|s| s.last_seq == anchor.seq).map(|s| s.last_hash.clone()))
    };
    match hash_at {
        _ if anchor.seq == 0 => Ok(None),
        Some(hash) if hash == anchor.hash => Ok(None),
        Some(_) => broken(
            anchor.seq,
            BreakKind::Changed,
            format!("record {} does not match the anchor: the log was rewritten up to it", anchor.seq),
        ),
        // Inside a pruned segment: nothing is left to compare, and a segment pruned since cannot
        // be told from records deleted and dressed up as pruned.
        None => {
            let inside = segments.iter().find(|s| s.first_seq <= anchor.seq && anchor.seq <= s.last_seq);
            broken(
                anchor.seq,
                BreakKind::Segments,
                format!(
                    "record {} of the anchor is not in the log{}: the log cannot be compared with it; \
                     a head taken before a prune cannot vouch for the log after it, take the head again \
                     after each prune (`acas audit head`)",
                    anchor.seq,
                    inside.map_or_else(String::new, |s| format!(
                        " (it lies in pruned segment {}, records {} to {})",
                        s.segment, s.first_seq, s.last_seq
                    ))
                ),
            )
        }
    }
}
