//! Status and spend: summaries of the workspace for status displays.
//!
//! The loop gives what it holds (counts, health, the store handle, the budgets); the size of
//! the store and the spend recorded in it are read off the loop, by the [`Handle`] methods
//! that answer these requests.

use std::path::PathBuf;

use super::{Handle, Request, Workspace};
use crate::escalate::cost::Budget;
use crate::store::Store;

/// A summary of the workspace, for status displays.
#[derive(Debug, Clone)]
pub struct Status {
    pub root: PathBuf,
    pub files: usize,
    pub languages: Vec<(String, usize)>,
    pub open_documents: usize,
    pub files_with_errors: usize,
    pub store_path: Option<PathBuf>,
    pub store_bytes: u64,
    pub watching: bool,
    pub scanning: bool,
    /// Health of each part: (name, state, detail).
    pub subsystems: Vec<(&'static str, &'static str, Option<String>)>,
}

/// What was spent on AI requests, against the configured budgets.
#[derive(Debug, Clone)]
pub struct Spend {
    pub today_micros: u64,
    pub month_micros: u64,
    pub budget: Budget,
    /// Provider names, in chain order.
    pub providers: Vec<String>,
}

impl Handle {
    /// The workspace's status; `None` once the loop has stopped.
    pub async fn status(&self) -> Option<Status> {
        let (mut status, store) = self.request(Request::Status).await?;
        if let Some(store) = store {
            status.store_bytes = tokio::task::spawn_blocking(move || store.size_bytes()).await.unwrap_or(0);
        }
        Some(status)
    }

    /// Today's and this month's spend, the budgets and the providers; `None` once the loop has
    /// stopped. With a shared store, the spend is the team's (every call recorded there, which
    /// the workspace budgets count); when it cannot be reached, this workspace's copy of its own
    /// calls (said in the log).
    pub async fn spend(&self) -> Option<Spend> {
        let (store, budget, providers, shared) = self.request(Request::Spend).await?;
        let (today_micros, month_micros) = tokio::task::spawn_blocking(move || {
            let (day, month) = crate::escalate::engine::period_starts(super::now_ms());
            if let Some(shared) = shared {
                use crate::store::Ledger;
                let team = shared
                    .connect()
                    .and_then(|pg| Ok((pg.spend_since(day, None)?, pg.spend_since(month, None)?)));
                match team {
                    Ok(spend) => return spend,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the team's spend; showing this workspace's")
                    }
                }
            }
            match store {
                Some(store) => {
                    (store.spend_since(day, None).unwrap_or(0), store.spend_since(month, None).unwrap_or(0))
                }
                None => (0, 0),
            }
        })
        .await
        .ok()?;
        Some(Spend { today_micros, month_micros, budget, providers })
    }
}

impl Workspace {
    /// The status as the loop holds it; the store's size is left to read off the loop.
    pub(super) fn status(&self) -> (Status, Option<Store>) {
        let mut languages: Vec<(String, usize)> =
            self.languages.iter().map(|(l, n)| (l.id().to_owned(), *n)).collect();
        languages.sort();
        let mut status = Status {
            root: self.root.clone(),
            files: self.parsed.len(),
            languages,
            open_documents: self.open.len(),
            files_with_errors: self.disk_published.len(),
            store_path: self.store.as_ref().map(|s| s.path().to_path_buf()),
            store_bytes: 0,
            watching: self.watcher.is_some(),
            scanning: self.scan.is_some(),
            subsystems: vec![
                health("store", self.store.is_some(), self.store_error.clone()),
                health("watcher", self.watcher.is_some(), self.watch_error.clone()),
                (
                    "config",
                    if self.config_error.is_some() { "degraded" } else { "ok" },
                    self.config_error.clone(),
                ),
                match &self.scan {
                    Some(scan) => ("scan", "busy", Some(format!("{} files analysed", scan.analyzed))),
                    None => ("scan", "ok", None),
                },
                self.checker_status(),
            ],
        };
        status.subsystems.extend(self.symbols_status());
        (status, self.store.clone())
    }

    /// The store, the configured budgets and provider names, and the shared store, for spend
    /// reports.
    pub(super) fn spend_setup(
        &self,
    ) -> (Option<Store>, Budget, Vec<String>, Option<crate::store::SharedStore>) {
        let providers = match &self.escalator {
            Ok(e) => e.provider_names(),
            Err(_) => Vec::new(),
        };
        (
            self.store.clone(),
            self.config.escalation.budget.clone(),
            providers,
            self.config.shared_store.clone(),
        )
    }
}

fn health(
    name: &'static str,
    running: bool,
    error: Option<String>,
) -> (&'static str, &'static str, Option<String>) {
    match (running, error) {
        (true, _) => (name, "ok", None),
        (false, Some(error)) => (name, "failed", Some(error)),
        (false, None) => (name, "off", None),
    }
}
