//! The resources: `acas://problems` (the open problems, as `problems` lists them) and
//! `acas://runs/{id}` (one workflow run's state), with subscriptions: a client that subscribed
//! to one hears `notifications/resources/updated` when it changes (the problems when a file's
//! diagnostics change, a run at each change of its state).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::RoleServer;
use rmcp::model::{
    ErrorData, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::Peer;
use serde_json::json;
use tokio::sync::mpsc;

use super::tools::run_json;
use super::{Shared, internal};
use crate::workspace::Output;

pub const PROBLEMS_URI: &str = "acas://problems";
const RUNS_PREFIX: &str = "acas://runs/";
/// Problems a read of `acas://problems` lists.
const PROBLEMS_LISTED: usize = 500;

/// A connection's peer and the URIs it subscribed to.
type Subscriber = (Peer<RoleServer>, HashSet<String>);

/// Who subscribed to what, by connection.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_connection: Mutex<HashMap<u64, Subscriber>>,
}

impl Subscriptions {
    pub fn add(&self, connection: u64, peer: Peer<RoleServer>, uri: String) {
        let mut all = self.by_connection.lock().unwrap_or_else(PoisonError::into_inner);
        all.entry(connection).or_insert_with(|| (peer, HashSet::new())).1.insert(uri);
    }

    pub fn remove(&self, connection: u64, uri: &str) {
        let mut all = self.by_connection.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, uris)) = all.get_mut(&connection) {
            uris.remove(uri);
            if uris.is_empty() {
                all.remove(&connection);
            }
        }
    }

    /// Tells every subscriber of each of `uris`; a connection that is gone is forgotten.
    async fn notify(&self, uris: &BTreeSet<String>) {
        let targets: Vec<(u64, Peer<RoleServer>, Vec<String>)> = {
            let all = self.by_connection.lock().unwrap_or_else(PoisonError::into_inner);
            all.iter()
                .filter_map(|(id, (peer, subscribed))| {
                    let hit: Vec<String> = uris.iter().filter(|u| subscribed.contains(*u)).cloned().collect();
                    (!hit.is_empty()).then(|| (*id, peer.clone(), hit))
                })
                .collect()
        };
        for (id, peer, hit) in targets {
            for uri in hit {
                if peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await.is_err() {
                    self.by_connection.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                    break;
                }
            }
        }
    }
}

/// Refuses a URI that names no resource of this server.
pub(crate) fn check_uri(uri: &str) -> Result<(), ErrorData> {
    if uri == PROBLEMS_URI || run_id(uri).is_some() { Ok(()) } else { Err(unknown(uri)) }
}

fn unknown(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!("no resource `{uri}`; the resources are {PROBLEMS_URI} and {RUNS_PREFIX}{{id}}"),
        None,
    )
}

fn run_id(uri: &str) -> Option<i64> {
    uri.strip_prefix(RUNS_PREFIX)?.parse().ok()
}

/// The problems, and the recent runs.
pub(crate) async fn list(shared: &Shared) -> Vec<Resource> {
    let mut resources = vec![
        Resource::new(PROBLEMS_URI, "problems")
            .with_description("The open problems of the workspace, with their history and past fixes")
            .with_mime_type("application/json"),
    ];
    if let Some((_, runs, _)) = shared.handle.workflows(20).await {
        for run in runs {
            resources.push(
                Resource::new(
                    format!("{RUNS_PREFIX}{}", run.run),
                    format!("run {} of {}", run.run, run.workflow),
                )
                .with_mime_type("application/json"),
            );
        }
    }
    resources
}

pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{RUNS_PREFIX}{{id}}"), "workflow run")
            .with_description("One workflow run's state: status, steps, attempts, errors")
            .with_mime_type("application/json"),
    ]
}

pub(crate) async fn read(shared: &Shared, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let value = if uri == PROBLEMS_URI {
        let (_, mut rows) = shared
            .handle
            .problems(None, None)
            .await
            .ok_or_else(|| internal("reading problems failed inside ACAS; see its log"))?
            .map_err(|refused| internal(refused.message))?;
        let total = rows.len();
        rows.truncate(PROBLEMS_LISTED);
        let problems: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "fingerprint": r.fingerprint,
                    "category": r.category,
                    "severity": r.severity,
                    "message": r.message,
                    "source": r.source,
                    "occurrences": r.occurrences,
                    "first_seen_ms": r.first_seen_ms,
                    "locations": r.locations.iter().map(|(p, l, c)| json!({ "path": p, "line": l + 1, "column": c + 1 })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "total": total, "problems": problems })
    } else if let Some(id) = run_id(uri) {
        let state = shared
            .handle
            .run_state(id)
            .await
            .ok_or_else(|| internal("reading the run failed inside ACAS; see its log"))?
            .ok_or_else(|| unknown(uri))?;
        run_json(&state)
    } else {
        return Err(unknown(uri));
    };
    let mut value = value;
    super::redact_all(&mut String::new(), &mut value);
    let text = serde_json::to_string_pretty(&value).expect("JSON values serialise");
    Ok(ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type("application/json")]))
}

/// Turns the workspace's outputs into notifications for the subscribers, a burst at a time.
pub(crate) async fn pump(shared: Arc<Shared>, mut outputs: mpsc::UnboundedReceiver<Output>) {
    while let Some(first) = outputs.recv().await {
        let mut changed = BTreeSet::new();
        let mut next = Some(first);
        while let Some(output) = next {
            match output {
                Output::Diagnostics { .. } => {
                    changed.insert(PROBLEMS_URI.to_owned());
                }
                Output::WorkflowRun(state) => {
                    changed.insert(format!("{RUNS_PREFIX}{}", state.run));
                }
                _ => {}
            }
            next = outputs.try_recv().ok();
        }
        if !changed.is_empty() {
            shared.subscriptions.notify(&changed).await;
        }
    }
}
