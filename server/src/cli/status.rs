//! `acas status`: where the workspace's state lives and, with a shared store, whether it can be
//! reached, since when it cannot, how many changes wait in the outbox and when they were last
//! sent. `acas store sync`: sends them now.
//!
//! Both ask the shared store once (a connection, at most its timeout); the link's state and the
//! outbox are `store::fallback`'s, read from the workspace's SQLite.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::output;
use super::{EXIT_FAILED, EXIT_OK, ListFormat};
use crate::store::{Fallback, LinkState, Store, StoreOptions, Synced};

/// The workspace, its configuration's shared store, and its SQLite.
struct Opened {
    root: PathBuf,
    shared: Option<crate::store::SharedStore>,
    /// `None` without a shared store and without state yet: nothing is created to say so.
    local: Option<Store>,
}

fn open(command: &str, workspace: &Path) -> Result<Opened, String> {
    let root = match super::resolve(workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => return Err(format!("{} is not a directory", workspace.display())),
        Err(error) => return Err(error.to_string()),
    };
    let (config, error) = crate::config::load(&root);
    if let Some(error) = error {
        return Err(error.to_string());
    }
    if let Some(why) = crate::store::read_only(&root) {
        return Err(format!(
            "the state of {} is read-only ({why}); acas {command} needs to write it",
            root.display()
        ));
    }
    if config.shared_store.is_none() && !Store::recorded(&root).map_err(|e| e.to_string())? {
        return Ok(Opened { root, shared: None, local: None });
    }
    let options = StoreOptions { integrity_check: false, ..StoreOptions::default() };
    let local = Store::open_workspace(&root, options).map_err(|e| e.to_string())?;
    Ok(Opened { root, shared: config.shared_store, local: Some(local) })
}

pub(super) fn status(workspace: &Path, format: ListFormat) -> i32 {
    let opened = match open("status", workspace) {
        Ok(opened) => opened,
        Err(error) => {
            output::note(&format!("acas status: {}", output::shown_lines(&error)));
            return EXIT_FAILED;
        }
    };
    let local_path = match &opened.local {
        Some(local) => local.path().to_owned(),
        None => opened.root.join(".acas").join("state.db"),
    };
    let (Some(shared), Some(local)) = (opened.shared, opened.local) else {
        match format {
            ListFormat::Json => {
                output::line(&json!({ "engine": "sqlite", "path": local_path, "shared": null }).to_string())
            }
            ListFormat::Text => output::line(&format!(
                "store: SQLite at {}; no shared store (`[store] url`, ACAS_DATABASE_URL)",
                output::shown(&local_path.display().to_string())
            )),
        };
        return EXIT_OK;
    };
    let fallback = Fallback::new(shared.clone(), local);
    // One try, whatever the last one said: status tells what is true now.
    let online = fallback.probe();
    let state = match fallback.state() {
        Ok(state) => state,
        Err(error) => {
            output::note(&format!("acas status: {}", output::shown_lines(&error.to_string())));
            return EXIT_FAILED;
        }
    };
    let online = match online {
        Ok(online) => online,
        Err(error) => {
            output::note(&format!("acas status: {}", output::shown_lines(&error.to_string())));
            return EXIT_FAILED;
        }
    };
    match format {
        ListFormat::Json => output::line(
            &json!({
                "engine": "postgresql",
                "url": shared.url.to_string(),
                "repository": shared.identity.repository,
                "user": shared.identity.user,
                "path": local_path,
                "online": online,
                "offline_since_ms": state.offline_since_ms,
                "last_seen_ms": state.last_seen_ms,
                "last_sync_ms": state.last_sync_ms,
                "last_error": state.last_error,
                "waiting": state.waiting,
            })
            .to_string(),
        ),
        ListFormat::Text => output::line(&text(&shared, online, &state, &opened.root)),
    };
    EXIT_OK
}

fn text(shared: &crate::store::SharedStore, online: bool, state: &LinkState, root: &Path) -> String {
    let when =
        |ms: Option<i64>| ms.map_or("never".to_owned(), |ms| format!("{} UTC", crate::time::date_time(ms)));
    let mut text = format!(
        "store: PostgreSQL at {}, as {} in {}\n",
        shared.url,
        output::shown(&shared.identity.user),
        output::shown(&shared.identity.repository)
    );
    if online {
        text.push_str("online\n");
    } else {
        text.push_str(&format!(
            "offline since {}: working on this machine's share of the budgets (`[store] offline_share`)\n",
            when(state.offline_since_ms)
        ));
        if let Some(error) = &state.last_error {
            text.push_str(&format!("  {}\n", output::shown(error)));
        }
    }
    text.push_str(&format!(
        "outbox: {} change{} waiting{}\n",
        state.waiting,
        if state.waiting == 1 { "" } else { "s" },
        if state.waiting > 0 && online {
            format!(" (`acas store sync --workspace {}` sends them now)", root.display())
        } else {
            String::new()
        }
    ));
    text.push_str(&format!(
        "last seen: {}\nlast sync: {}",
        when(state.last_seen_ms),
        when(state.last_sync_ms)
    ));
    text
}

pub(super) fn sync(workspace: &Path, format: ListFormat) -> i32 {
    let fail = |message: &str| {
        output::note(&format!("acas store sync: {}", output::shown_lines(message)));
        EXIT_FAILED
    };
    let opened = match open("store sync", workspace) {
        Ok(opened) => opened,
        Err(error) => return fail(&error),
    };
    let (Some(shared), Some(local)) = (opened.shared, opened.local) else {
        return fail("this workspace has no shared store; set `[store] url` or ACAS_DATABASE_URL");
    };
    let fallback = Fallback::new(shared.clone(), local);
    let synced = fallback.sync(&mut |done: Synced| {
        output::note(&format!("sent {} changes, {} waiting", done.sent, done.waiting));
    });
    let synced = match synced {
        Ok(synced) => synced,
        Err(error) => return fail(&error.to_string()),
    };
    match format {
        ListFormat::Json => output::line(
            &json!({ "url": shared.url.to_string(), "online": synced.online, "sent": synced.sent, "refused": synced.refused, "waiting": synced.waiting })
                .to_string(),
        ),
        ListFormat::Text if synced.online => {
            output::line(&format!(
                "sent {} changes to {}; none waiting{}",
                synced.sent,
                shared.url,
                if synced.refused > 0 {
                    format!("; {} refused by the shared store and set aside (the log says why)", synced.refused)
                } else {
                    String::new()
                }
            ))
        }
        ListFormat::Text => output::line(&format!(
            "the shared store {} cannot be reached; {} changes waiting",
            shared.url, synced.waiting
        )),
    };
    if synced.online { EXIT_OK } else { EXIT_FAILED }
}
