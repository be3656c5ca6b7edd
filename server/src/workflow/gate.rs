//! What the policy is asked before a workflow step acts, and again after a person's approval.
//!
//! [`judge`] turns a rendered step into the policy actions it stands for: its command (argv or
//! shell script) and the environment variables that change what runs; or its `uses:` action, the
//! paths it changes (every path a `git.checkout` would change, from the diff of `HEAD` and the
//! branch's tree) and the host it reaches. Each is enforced in turn (recorded, refused, or
//! waited for). After an approval wait every action is judged again with the policy as it is
//! then: a path that now resolves elsewhere (a directory swapped for a link while the person
//! read the question), or a decision that changed, refuses the step. For HTTP actions it gives a
//! [`HostCheck`] that judges every redirect hop. It does not run the step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::actions::HostCheck;
use crate::policy::{Action, Outcome, Policy, Start, approvals};

/// A rendered step, as the policy sees it.
pub enum Step<'a> {
    Command { argv: &'a [String], env: &'a BTreeMap<String, String>, cwd: &'a Path },
    Action { action: &'a str, with: &'a Map<String, Value> },
}

/// The actions the policy is asked about for `step`, without those that need the repository.
fn asks(workspace: &Path, step: &Step<'_>) -> Vec<Action> {
    match step {
        Step::Command { argv, env, cwd } => {
            // Relative paths are judged from where the command starts, as it will see them.
            let dir = match cwd.strip_prefix(workspace) {
                Ok(rel) if rel.as_os_str().is_empty() => None,
                Ok(rel) => Some(rel.to_string_lossy().into_owned()),
                Err(_) => Some(cwd.to_string_lossy().into_owned()),
            };
            let inherited = std::env::var_os("CDPATH").is_some_and(|v| !v.is_empty());
            let start = Start { dir, cdpath: inherited || env.get("CDPATH").is_some_and(|v| !v.is_empty()) };
            // A working directory other than the root is judged (after the command) as a place
            // the step writes in: outside the workspace, through a link out of it, or where
            // path rules deny, it is refused.
            let directory = start.dir.clone().map(|path| Action::Directory { path });
            let mut asks = vec![match *argv {
                [sh, c, script] if sh == "sh" && c == "-c" => Action::Shell { script: script.clone(), start },
                _ => Action::Command { argv: argv.to_vec(), start },
            }];
            let risky: Vec<(String, String)> = env
                .iter()
                .filter(|(name, _)| crate::policy::risky_env(name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            if !risky.is_empty() {
                asks.push(Action::Environment { vars: risky });
            }
            asks.extend(directory);
            asks
        }
        Step::Action { action, with } => {
            let mut asks = vec![Action::WorkflowAction { kind: (*action).to_owned() }];
            let param = |name: &str| with.get(name).and_then(Value::as_str).map(str::to_owned);
            let writes: &[&str] = match *action {
                "file.write" | "file.append" | "file.delete" => &["path"],
                "file.copy" => &["to"],
                "file.move" => &["from"],
                _ => &[],
            };
            for name in writes {
                if let Some(path) = param(name) {
                    asks.push(Action::Write { path });
                }
            }
            // A move is a rename: what the source holds arrives under the new name, whether
            // or not a directory of that name exists yet.
            if *action == "file.move"
                && let (Some(from), Some(path)) = (param("from"), param("to"))
            {
                asks.push(Action::Arrive { path, from });
            }
            if matches!(*action, "http.request" | "notify.webhook")
                && let Some(url) = param("url")
            {
                // A URL that does not parse is refused by the action itself.
                if let Some(host) =
                    reqwest::Url::parse(&url).ok().and_then(|u| u.host_str().map(str::to_owned))
                {
                    asks.push(Action::Http {
                        host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
                    });
                }
            }
            asks
        }
    }
}

/// Whether `step` must run alone among the steps of its run: the policy judges paths it writes
/// (or the directory it runs in, or a program written as a path), and another step running
/// meanwhile could swap a directory on that path for a link to one the policy denies between
/// the decision and the write. Without a policy file nothing is judged, so nothing is held.
pub fn runs_alone(workspace: &Path, step: &Step<'_>) -> bool {
    if checkout_branch(step).is_some() {
        return !Policy::load(workspace).is_absent();
    }
    let asks = asks(workspace, step);
    asks.iter().any(|a| a.judges_paths(workspace)) && !Policy::load(workspace).is_absent()
}

/// The branch a `git.checkout` step switches to.
fn checkout_branch(step: &Step<'_>) -> Option<String> {
    match step {
        Step::Action { action: "git.checkout", with } => {
            with.get("branch").and_then(Value::as_str).map(str::to_owned)
        }
        _ => None,
    }
}

async fn load(workspace: &Path, branch: Option<String>) -> Result<(Policy, Vec<String>), String> {
    let root = workspace.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let policy = Policy::load(&root);
        // A branch that cannot be read fails in the action itself, with its own message.
        let changed = match (&branch, policy.is_absent()) {
            (Some(branch), false) => super::actions::checkout_changes(&root, branch).unwrap_or_default(),
            _ => Vec::new(),
        };
        (policy, changed)
    })
    .await
    .map_err(|e| format!("reading the policy failed: {e}"))
}

/// Asks the policy about `step` for `agent`: `Ok` with the check for redirect hops of an HTTP
/// action when it may go ahead, `Err` with the refusal to show otherwise.
pub async fn judge(
    workspace: &Path,
    agent: &str,
    session: Option<&str>,
    step: Step<'_>,
    cancel: &CancellationToken,
) -> Result<Option<HostCheck>, String> {
    let mut asks = asks(workspace, &step);
    let (policy, changed) = load(workspace, checkout_branch(&step)).await?;
    asks.extend(changed.into_iter().map(|path| Action::Write { path }));
    let mut waited = Vec::new();
    for ask in &asks {
        let before = policy.decide(agent, ask);
        approvals::enforce(workspace, &policy, agent, session, ask, cancel).await?;
        if before.outcome == Outcome::NeedsApproval {
            waited.push(before);
        }
    }
    if !waited.is_empty() {
        // What the person allowed must still be what happens.
        let (now, _) = load(workspace, None).await?;
        for ask in &asks {
            let decision = now.decide(agent, ask);
            if decision.outcome == Outcome::Deny {
                return approvals::enforce(workspace, &now, agent, session, ask, cancel).await.map(|_| None);
            }
            if let Some(asked) = waited.iter().find(|d| d.action == decision.action)
                && (asked.reason != decision.reason || asked.rule != decision.rule)
            {
                return Err(format!(
                    "{} changed while it waited for approval: it was \"{}\" and is now \"{}\"; run the step again to ask about what it does now",
                    decision.action, asked.reason, decision.reason
                ));
            }
        }
    }
    if policy.is_absent() || !matches!(step, Step::Action { action: "http.request" | "notify.webhook", .. }) {
        return Ok(None);
    }
    Ok(Some(host_check(workspace.to_path_buf(), policy, agent.to_owned(), session.map(str::to_owned))))
}

/// Judges each redirect hop's host: recorded like every decision, refused unless allowed.
fn host_check(root: PathBuf, policy: Policy, agent: String, session: Option<String>) -> HostCheck {
    Arc::new(move |host: &str| {
        let mut decision = policy.decide(&agent, &Action::Http { host: host.to_owned() });
        decision.agent = approvals::named(&decision.agent, session.as_deref());
        // The redirect policy is synchronous: the record is appended here, as for every decision.
        if let Err(e) = approvals::record(&root, &decision) {
            return Err(format!("recording the policy decision failed: {e}"));
        }
        match decision.outcome {
            Outcome::Allow => Ok(()),
            Outcome::Deny => Err(decision.refusal()),
            Outcome::NeedsApproval => Err(format!(
                "{} needs a person's approval ({}), which a redirect cannot wait for; request that URL directly",
                decision.action, decision.reason
            )),
        }
    })
}
