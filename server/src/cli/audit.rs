//! `acas audit`: read, verify and prune the hash-chained audit log of a workspace.
//!
//! Exit codes: 0 done (and, for `verify`, the chain is intact); 1 `verify` found a changed,
//! removed, moved or cut-off record (named on the output); 2 the command failed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_OK, ListFormat, output};
use crate::store::audit::{AuditLog, AuditQuery, MIN_PRUNE_AGE};

#[derive(Args)]
pub(super) struct AuditArgs {
    /// The workspace (default: the current directory)
    #[arg(long, default_value = ".", global = true)]
    workspace: PathBuf,
    #[arg(long, value_enum, default_value_t = ListFormat::Text, global = true)]
    format: ListFormat,
    /// Only records newer than this (for example 30m, 2h, 7d)
    #[arg(long, value_parser = super::parse_duration)]
    since: Option<Duration>,
    /// At most this many records, the newest
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Check the hash chain and name the first record that was changed, removed or moved, then
    /// compare the log with its anchor (records cut off the end, a wiped log, forged segments)
    Verify {
        /// Check against this head (as `acas audit head` printed it) rather than the anchor file
        #[arg(long)]
        head: Option<String>,
    },
    /// Print the log's head (last record, its hash, pruned segments and their hash), to keep
    /// elsewhere and check later with `acas audit verify --head`
    Head,
    /// Remove whole segments of records older than a duration (at least a day), keeping their
    /// final hash; not from inside a workflow run
    Prune {
        /// For example 90d; 1d at least
        #[arg(long, value_parser = super::parse_duration)]
        older_than: Duration,
    },
}

/// How long a command waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn run(command: Option<AuditCommand>, args: &AuditArgs) -> i32 {
    let root = match super::resolve(&args.workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!("acas audit: {} is not a directory", args.workspace.display()));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas audit: {error}"));
            return EXIT_FAILED;
        }
    };
    match super::recorded("audit", &root) {
        Ok(true) => {}
        Ok(false) => {
            // The database gone while the anchor outside the workspace holds records: the log
            // was deleted or moved away with it, which `verify` must say.
            if let Some(AuditCommand::Verify { .. }) = command
                && let Some(code) = wiped(&root, args.format)
            {
                return code;
            }
            output::note(&format!("acas audit: nothing recorded in {} yet", root.display()));
            return match command {
                Some(AuditCommand::Verify { .. } | AuditCommand::Head) | None => {
                    if let ListFormat::Json = args.format {
                        output::line(&json!({ "records": [] }).to_string());
                    }
                    EXIT_OK
                }
                Some(AuditCommand::Prune { .. }) => EXIT_OK,
            };
        }
        Err(code) => return code,
    }
    if let Err(code) = super::refuse_read_only("audit", &root) {
        return code;
    }
    let mut log = match AuditLog::open(&root, BUSY_TIMEOUT) {
        Ok(log) => log,
        Err(error) => {
            output::note(&format!("acas audit: {error}"));
            return EXIT_FAILED;
        }
    };
    match command {
        None => list(&log, args),
        Some(AuditCommand::Verify { head }) => {
            let head = match head.as_deref().map(|h| (h, crate::store::anchor::Anchor::parse(h))) {
                None => None,
                Some((_, Some(anchor))) => Some(anchor),
                Some((given, None)) => {
                    output::note(&format!(
                        "acas audit verify: {} is not a head; give what `acas audit head` prints (SEQ:HASH:SEGMENTS:HASH)",
                        output::shown(given)
                    ));
                    return EXIT_FAILED;
                }
            };
            verify(&root, &mut log, head.as_ref(), args.format)
        }
        Some(AuditCommand::Head) => match log.head() {
            Ok(head) => {
                match args.format {
                    ListFormat::Text => output::line(&head.text()),
                    ListFormat::Json => output::line(
                        &json!({ "head": head.text(), "seq": head.seq, "hash": head.hash,
                            "pruned_segments": head.segments, "segments_hash": head.segments_hash })
                        .to_string(),
                    ),
                };
                EXIT_OK
            }
            Err(error) => {
                output::note(&format!("acas audit head: {error}"));
                EXIT_FAILED
            }
        },
        Some(AuditCommand::Prune { older_than }) => {
            // Pruning is a person's act: a run must not erase what it did.
            if let Some(enclosing) = crate::process_tree::enclosing() {
                output::note(&format!(
                    "acas audit prune: a workflow run cannot prune the audit log: this was started by {}; a \
                     person prunes it from their own terminal",
                    enclosing.describe()
                ));
                return EXIT_FAILED;
            }
            if older_than < MIN_PRUNE_AGE {
                output::note(&format!(
                    "acas audit prune: --older-than {} is below the minimum age of {}d: records younger than \
                     that are never pruned (MIN_PRUNE_AGE in server/src/store/audit.rs); give --older-than 1d \
                     or more",
                    crate::duration::human(older_than),
                    MIN_PRUNE_AGE.as_secs() / 86_400
                ));
                return EXIT_FAILED;
            }
            let now = crate::time::now_ms();
            let before = now.saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
            match log.prune(before, now) {
                Ok(segments) => {
                    match args.format {
                        ListFormat::Text => output::line(&format!("pruned {segments} segments")),
                        ListFormat::Json => output::line(&json!({ "pruned_segments": segments }).to_string()),
                    };
                    EXIT_OK
                }
                Err(error) => {
                    output::note(&format!("acas audit prune: {error}"));
                    EXIT_FAILED
                }
            }
        }
    }
}

fn list(log: &AuditLog, args: &AuditArgs) -> i32 {
    let query = AuditQuery {
        since_ms: args
            .since
            .map(|s| crate::time::now_ms() - i64::try_from(s.as_millis()).unwrap_or(i64::MAX)),
        limit: Some(args.limit),
    };
    let records = match log.records(&query) {
        Ok(records) => records,
        Err(error) => {
            output::note(&format!("acas audit: {error}"));
            return EXIT_FAILED;
        }
    };
    match args.format {
        ListFormat::Text => {
            let mut text = String::new();
            for r in &records {
                text.push_str(&format!(
                    "{:>6} {} {:<14} {:<16} {:<24} {}\n",
                    r.seq,
                    crate::time::date_time(r.at_ms),
                    output::shown(&r.kind),
                    output::shown(&r.actor),
                    output::shown(&r.subject),
                    output::shown(&r.detail)
                ));
            }
            text.push_str(&format!("{} records", records.len()));
            output::line(&text);
        }
        ListFormat::Json => {
            let records: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({
                        "seq": r.seq, "at_ms": r.at_ms, "kind": r.kind, "actor": r.actor, "subject": r.subject,
                        "detail": serde_json::from_str::<serde_json::Value>(&r.detail).unwrap_or(json!(r.detail)),
                        "prev_hash": r.prev_hash, "hash": r.hash,
                    })
                })
                .collect();
            output::line(&json!({ "records": records }).to_string());
        }
    }
    EXIT_OK
}

/// When the workspace holds no database but its anchor holds records: says the log was wiped
/// and gives [`EXIT_FOUND`].
fn wiped(root: &std::path::Path, format: ListFormat) -> Option<i32> {
    let db_path = root.join(".acas").join("state.db");
    let (path, anchor) = match crate::store::anchor::read(&db_path) {
        Ok(Some((path, Some(anchor)))) if anchor.seq > 0 || anchor.segments > 0 => (path, anchor),
        _ => return None,
    };
    let message = format!(
        "the log was wiped: the anchor ({}) holds records 1 to {}, and {} has no database: it was \
         deleted or moved away",
        path.display(),
        anchor.seq,
        root.join(".acas").display()
    );
    match format {
        ListFormat::Text => output::line(&format!("the audit log is broken: {message}")),
        ListFormat::Json => output::line(
            &json!({
                "intact": false,
                "records": 0,
                "first_break": { "seq": 1, "message": message },
                "anchor": anchor.text(),
            })
            .to_string(),
        ),
    };
    Some(EXIT_FOUND)
}

fn verify(
    root: &std::path::Path,
    log: &mut AuditLog,
    head: Option<&crate::store::anchor::Anchor>,
    format: ListFormat,
) -> i32 {
    let (result, anchor) = match log.verify(head) {
        Ok(result) => result,
        Err(error) => {
            output::note(&format!("acas audit verify: {error}"));
            return EXIT_FAILED;
        }
    };
    // Approvals marked answered that the log never recorded: written into the database.
    let unproven = match crate::policy::approvals::unproven(root) {
        Ok(unproven) => unproven,
        Err(error) => {
            output::note(&format!("acas audit verify: {error}"));
            return EXIT_FAILED;
        }
    };
    if let ListFormat::Text = format {
        for u in &unproven {
            output::line(&format!(
                "approval {} was marked {} by {} in the database, but the audit log holds no such answer: the \
                 row was written into the database directly, and it counted as pending ({})",
                u.id,
                u.state,
                crate::display::shown(u.answered_by.as_deref().unwrap_or("nobody")),
                crate::display::shown(&u.action)
            ));
        }
    }
    match format {
        ListFormat::Text => match &result.first_break {
            None => output::line(&format!(
                "the audit log is intact: {} records checked after {} pruned segments; head {} {}; {}",
                result.records,
                result.pruned_segments,
                result.head_seq,
                result.head_hash,
                match &anchor {
                    Some(anchor) => format!("matches the anchor ({anchor})"),
                    None => "no anchor to compare with (records cut off the end would not show)".to_owned(),
                }
            )),
            Some(broken) => output::line(&format!(
                "the audit log is broken at record {}: {} ({} records before it are intact)",
                broken.seq, broken.message, result.records
            )),
        },
        ListFormat::Json => output::line(
            &json!({
                "intact": result.first_break.is_none(),
                "records": result.records,
                "pruned_segments": result.pruned_segments,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
                "first_break": result.first_break,
                "anchor": anchor,
                "unproven_approvals": unproven,
            })
            .to_string(),
        ),
    };
    if result.first_break.is_some() || !unproven.is_empty() { EXIT_FOUND } else { EXIT_OK }
}
