//! The plan as a graph: merging identical tasks, finding dependency cycles and the edges that
//! break them. An edge is "task needs other"; all functions are deterministic (task order, then
//! `needs` order, ties by id).

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Note, Task};

/// `task` needs `needs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Edge {
    pub task: String,
    pub needs: String,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` needs `{}`", self.task, self.needs)
    }
}

/// A task's type and inputs, hashed: SHA-256 (first 16 hex digits) of the canonical JSON (keys
/// sorted at every level) of `{"action", "with"}`.
pub fn fingerprint(task: &Task) -> String {
    let mut text = String::new();
    canonical(&serde_json::json!({"action": task.action, "with": task.with}), &mut text);
    crate::workflow::parse::hash(text.as_bytes())[..16].to_owned()
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Merges tasks with the same fingerprint into the first of them: it takes the union of their
/// needs and the highest priority; needs on (and `steps.ID.` references to) a dropped task
/// point at the kept one. Needs are deduplicated and a task never needs itself.
pub fn dedup(tasks: Vec<Task>) -> (Vec<Task>, Vec<Note>) {
    let mut kept: Vec<Task> = Vec::new();
    let mut by_print: HashMap<String, usize> = HashMap::new();
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut notes = Vec::new();
    for task in tasks {
        let print = fingerprint(&task);
        match by_print.get(&print) {
            Some(&i) => {
                let into = &mut kept[i];
                into.needs.extend(task.needs.iter().cloned());
                into.priority = into.priority.max(task.priority);
                renamed.insert(task.id.clone(), into.id.clone());
                notes.push(Note::Merged { kept: into.id.clone(), dropped: task.id, fingerprint: print });
            }
            None => {
                by_print.insert(print, kept.len());
                kept.push(task);
            }
        }
    }
    for task in &mut kept {
        let mut seen = HashSet::new();
        let needs: Vec<String> = task
            .needs
            .iter()
            .map(|n| renamed.get(n).unwrap_or(n).clone())
            .filter(|n| *n != task.id && seen.insert(n.clone()))
            .collect();
        task.needs = needs;
        for (from, to) in &renamed {
            for value in task.with.values_mut() {
                rename_references(value, from, to);
            }
        }
    }
    (kept, notes)
}

fn rename_references(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => {
            let old = format!("steps.{from}.");
            if s.contains(&old) {
                *s = s.replace(&old, &format!("steps.{to}."));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_references(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rename_references(v, from, to)),
        _ => {}
    }
}

/// Index of each task's needs (needs that name no task are left out).
fn edges(tasks: &[Task]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = tasks.iter().enumerate().map(|(i, t)| (t.id.as_str(), i)).collect();
    tasks.iter().map(|t| t.needs.iter().filter_map(|n| index.get(n.as_str()).copied()).collect()).collect()
}

/// The cycles a depth-first search meets, one per back edge, each as task ids in "needs"
/// order (`[a, b]` is a needs b needs a). Empty exactly when the tasks form a DAG.
pub fn cycles(tasks: &[Task]) -> Vec<Vec<String>> {
    crate::workflow::dag::cycles(&edges(tasks))
        .into_iter()
        .map(|cycle| cycle.into_iter().map(|n| tasks[n].id.clone()).collect())
        .collect()
}

/// `a -> b -> a`.
pub fn describe(cycle: &[String]) -> String {
    let mut names: Vec<&str> = cycle.iter().map(String::as_str).collect();
    names.extend(cycle.first().map(String::as_str));
    names.join(" -> ")
}

/// For each cycle, its edge whose dependent task has the lowest priority (ties: the smallest
/// id); each edge once.
pub fn lowest_priority_edges(tasks: &[Task], cycles: &[Vec<String>]) -> Vec<Edge> {
    let priority: HashMap<&str, i64> = tasks.iter().map(|t| (t.id.as_str(), t.priority)).collect();
    let mut dropped: Vec<Edge> = Vec::new();
    for cycle in cycles {
        let edge = (0..cycle.len())
            .map(|k| Edge { task: cycle[k].clone(), needs: cycle[(k + 1) % cycle.len()].clone() })
            .min_by_key(|e| (priority.get(e.task.as_str()).copied().unwrap_or(0), e.task.clone()));
        if let Some(edge) = edge
            && !dropped.contains(&edge)
        {
            dropped.push(edge);
        }
    }
    dropped
}

/// The edges inside cycles (between tasks that reach each other) that go against priority
/// order: a task keeps a need only on a task of higher priority (ties: the smaller id comes
/// first). Edges between tasks that are not on a common cycle all stay.
pub fn against_priority(tasks: &[Task]) -> Vec<Edge> {
    let edges = edges(tasks);
    let reach: Vec<HashSet<usize>> = (0..tasks.len())
        .map(|start| {
            let mut seen = HashSet::new();
            let mut todo = vec![start];
            while let Some(n) = todo.pop() {
                for &to in &edges[n] {
                    if seen.insert(to) {
                        todo.push(to);
                    }
                }
            }
            seen
        })
        .collect();
    let rank = |i: usize| (Reverse(tasks[i].priority), tasks[i].id.as_str());
    let mut dropped = Vec::new();
    for (u, needs) in edges.iter().enumerate() {
        for &v in needs {
            let same_cycle = reach[u].contains(&v) && reach[v].contains(&u);
            if same_cycle && rank(v) >= rank(u) {
                dropped.push(Edge { task: tasks[u].id.clone(), needs: tasks[v].id.clone() });
            }
        }
    }
    dropped
}

/// `tasks` without the `dropped` edges.
pub fn without(tasks: &[Task], dropped: &[Edge]) -> Vec<Task> {
    tasks
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.needs.retain(|n| !dropped.iter().any(|e| e.task == t.id && e.needs == *n));
            t
        })
        .collect()
}

/// The edges of `before` that `after` no longer has, between tasks both have.
pub fn removed_edges(before: &[Task], after: &[Task]) -> Vec<Edge> {
    let now: HashMap<&str, &Task> = after.iter().map(|t| (t.id.as_str(), t)).collect();
    before
        .iter()
        .flat_map(|t| t.needs.iter().map(move |n| Edge { task: t.id.clone(), needs: n.clone() }))
        .filter(|e| {
            now.contains_key(e.needs.as_str())
                && now.get(e.task.as_str()).is_some_and(|t| !t.needs.contains(&e.needs))
        })
        .collect()
}
