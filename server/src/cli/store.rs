//! `acas store migrate`: copies a workspace's SQLite history into the team's shared store;
//! `acas team`: who is connected to it.
//!
//! The copy itself is `store::postgres::copy`; this prints its progress on stderr (at most once
//! a second per table, and when a table is done) and its summary, naming the database by its
//! masked URL only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;

use super::output;
use super::{EXIT_FAILED, EXIT_OK, ListFormat};
use crate::store::SharedStore;
use crate::store::postgres::copy::{self, Progress};

#[derive(Subcommand)]
pub(super) enum StoreCommand {
    /// Copy the workspace's SQLite history (AI calls, cached replies, tasks and their locks)
    /// into a shared PostgreSQL store; copying again adds nothing
    Migrate {
        /// The shared store, postgres://…; default: ACAS_DATABASE_URL, else `[store] url`
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// The workspace
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Send the changes made while the shared store could not be reached (AI calls, cached
    /// replies) now; sending them twice adds nothing
    Sync {
        /// The workspace
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

pub(super) fn run(command: StoreCommand) -> i32 {
    match command {
        StoreCommand::Migrate { to, workspace, format } => migrate(to.as_deref(), &workspace, format),
        StoreCommand::Sync { workspace, format } => super::status::sync(&workspace, format),
    }
}

fn migrate(to: Option<&str>, workspace: &Path, format: ListFormat) -> i32 {
    let fail = |message: &str| {
        output::note(&format!("acas store migrate: {}", output::shown_lines(message)));
        EXIT_FAILED
    };
    let root = match super::resolve(workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => return fail(&format!("{} is not a directory", workspace.display())),
        Err(error) => return fail(&error.to_string()),
    };
    match super::recorded("store migrate", &root) {
        Ok(true) => {}
        Ok(false) => return fail(&format!("{} has no state to copy (no .acas/state.db)", root.display())),
        Err(code) => return code,
    }
    let (config, error) = crate::config::load(&root);
    if let Some(error) = error {
        return fail(&error.to_string());
    }
    let shared = match to {
        Some(url) => SharedStore::resolve(&root, Some(url), None, config.escalation.user.as_deref()),
        None => Ok(config.shared_store.clone()),
    };
    let shared = match shared {
        Ok(Some(shared)) => shared,
        Ok(None) => {
            return fail("no shared store to copy to; name it with --to postgres://USER@HOST:PORT/DATABASE");
        }
        Err(error) => return fail(&error.to_string()),
    };
    let store = match shared.connect() {
        Ok(store) => store,
        Err(error) => return fail(&error.to_string()),
    };
    output::note(&format!(
        "copying the history of {} into {} as repository {}",
        root.display(),
        shared.url,
        output::shown(&shared.identity.repository)
    ));
    let mut shown: Option<(&'static str, Instant)> = None;
    let mut progress = |p: &Progress| {
        let due = match shown {
            Some((table, at)) => table != p.table || at.elapsed() >= Duration::from_secs(1),
            None => true,
        };
        if due || p.done == p.total {
            output::note(&format!("  {}: {}/{} rows", p.table, p.done, p.total));
            shown = Some((p.table, Instant::now()));
        }
    };
    let summary = match copy::copy_workspace(&root, &store, &mut progress) {
        Ok(summary) => summary,
        Err(error) => return fail(&error.to_string()),
    };
    match format {
        ListFormat::Json => {
            output::line(
                &json!({
                    "to": shared.url.to_string(),
                    "repository": shared.identity.repository,
                    "copied": summary.copied,
                    "not_copied": summary.not_copied,
                })
                .to_string(),
            );
        }
        ListFormat::Text => {
            let mut text = String::new();
            for c in &summary.copied {
                text.push_str(&format!(
                    "{:<14} {:>7} read, {:>7} copied, {:>7} already there",
                    c.table, c.read, c.copied, c.already
                ));
                if c.skipped > 0 {
                    text.push_str(&format!(
                        ", {} skipped ({})",
                        c.skipped,
                        c.skipped_why.as_deref().unwrap_or("")
                    ));
                }
                text.push('\n');
                for failed in &c.failed {
                    text.push_str(&format!("  not copied: {failed}\n"));
                }
            }
            let left: Vec<String> = summary
                .not_copied
                .iter()
                .filter(|n| n.rows > 0)
                .map(|n| format!("{} {}", n.rows, n.what))
                .collect();
            if !left.is_empty() {
                text.push_str(&format!("not copied (they stay in this workspace): {}\n", left.join(", ")));
            }
            output::line(text.trim_end());
        }
    }
    EXIT_OK
}

/// `acas team`: the instances connected to the workspace's shared store (any repository), and
/// the tasks held in the workspace's repository.
pub(super) fn team(workspace: &Path, format: ListFormat) -> i32 {
    let fail = |message: &str| {
        output::note(&format!("acas team: {}", output::shown_lines(message)));
        EXIT_FAILED
    };
    let root = match super::resolve(workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => return fail(&format!("{} is not a directory", workspace.display())),
        Err(error) => return fail(&error.to_string()),
    };
    let (config, error) = crate::config::load(&root);
    if let Some(error) = error {
        return fail(&error.to_string());
    }
    let Some(shared) = config.shared_store else {
        return fail("this workspace has no shared store; set `[store] url` or ACAS_DATABASE_URL");
    };
    let store = match shared.connect() {
        Ok(store) => store,
        Err(error) => return fail(&error.to_string()),
    };
    let now = crate::time::now_ms();
    let (present, held) = match store.present(now).and_then(|p| Ok((p, store.held_tasks()?))) {
        Ok(found) => found,
        Err(error) => return fail(&error.to_string()),
    };
    match format {
        ListFormat::Json => {
            output::line(
                &json!({
                    "store": shared.url.to_string(),
                    "repository": shared.identity.repository,
                    "instances": present,
                    "held": held,
                })
                .to_string(),
            );
        }
        ListFormat::Text => {
            let mut text = format!("connected to {}:\n", shared.url);
            if present.is_empty() {
                text.push_str("  nobody\n");
            }
            for p in &present {
                text.push_str(&format!(
                    "  {} on {}, {} ({}), seen {}s ago\n",
                    output::shown(&p.user),
                    output::shown(&p.host),
                    output::shown(&p.repository),
                    output::shown(p.branch.as_deref().unwrap_or("no branch")),
                    (now - p.seen_ms).max(0) / 1000
                ));
            }
            text.push_str(&format!("tasks held in {}:\n", output::shown(&shared.identity.repository)));
            if held.is_empty() {
                text.push_str("  none\n");
            }
            for h in &held {
                text.push_str(&format!(
                    "  #{} {} (agent {})\n",
                    h.task,
                    output::shown(&h.title),
                    output::shown(&h.agent)
                ));
            }
            output::line(text.trim_end());
        }
    }
    EXIT_OK
}
