//! A personalised PageRank over the workspace's reference graph, to break ties in the context.
//!
//! Files are nodes; a file that uses a name points at every other file that defines it, with a
//! weight of 1 shared between those files (a name defined in more than [`COMMON_NAME_FILES`]
//! files, or starting with `_`, weighs a tenth: it says little about which file is meant). The
//! names used near the error weigh [`ERROR_NAME_WEIGHT`] times more on the edges of the error's
//! file. The walk restarts at the error's file, so a file ranks high when the error's file leads
//! to it, directly or through the files it uses; files it cannot reach rank 0.
//!
//! The work is bounded: the graph is built by following references out of the error's file, at
//! most [`MAX_FILES`] files and [`MAX_LOOKUPS`] name lookups, and the walk runs at most
//! [`ITERATIONS`] rounds. It does not order definitions by itself: the context's error-first
//! ranking comes first, this only orders what that ranking leaves equal.

use std::collections::{HashMap, HashSet, VecDeque};

use super::symbols::SymbolIndex;

/// Files in the graph at most, nearest the error's file first.
pub const MAX_FILES: usize = 2_000;
/// Names looked up in the index while building the graph, at most.
pub const MAX_LOOKUPS: usize = 50_000;
/// Rounds of the walk at most (it stops earlier once the ranks settle).
pub const ITERATIONS: usize = 30;
/// How often the walk follows an edge rather than restarting at the error's file.
const DAMPING: f64 = 0.85;
/// A name defined in more files than this weighs a tenth.
pub const COMMON_NAME_FILES: usize = 5;
/// How much more a name used near the error weighs on the error's file's edges.
pub const ERROR_NAME_WEIGHT: f64 = 10.0;

/// The rank of every file the error's file `seed` leads to, summing to 1 (less what leaks out
/// through the bounds); `near` are the names used near the error.
pub fn rank_files(index: &SymbolIndex, seed: &str, near: &HashSet<&str>) -> HashMap<String, f64> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut paths: Vec<String> = Vec::new();
    let mut edges: Vec<HashMap<usize, f64>> = Vec::new();
    let mut queue = VecDeque::new();
    ids.insert(seed.to_owned(), 0);
    paths.push(seed.to_owned());
    edges.push(HashMap::new());
    queue.push_back(0usize);
    let mut lookups = 0usize;
    'build: while let Some(from) = queue.pop_front() {
        let path = paths[from].clone();
        for name in index.uses(&path) {
            if lookups >= MAX_LOOKUPS {
                break 'build;
            }
            lookups += 1;
            let mut definers: Vec<&str> =
                index.lookup(name).iter().map(|d| d.path.as_str()).filter(|p| *p != path).collect();
            definers.sort_unstable();
            definers.dedup();
            if definers.is_empty() {
                continue;
            }
            let mut weight =
                if definers.len() > COMMON_NAME_FILES || name.starts_with('_') { 0.1 } else { 1.0 };
            if from == 0 && near.contains(name.as_str()) {
                weight *= ERROR_NAME_WEIGHT;
            }
            let share = weight / definers.len() as f64;
            for definer in definers {
                let to = match ids.get(definer) {
                    Some(&to) => to,
                    None if paths.len() < MAX_FILES => {
                        let to = paths.len();
                        ids.insert(definer.to_owned(), to);
                        paths.push(definer.to_owned());
                        edges.push(HashMap::new());
                        queue.push_back(to);
                        to
                    }
                    None => continue,
                };
                *edges[from].entry(to).or_default() += share;
            }
        }
    }
    let edges: Vec<Vec<(usize, f64)>> = edges.into_iter().map(|e| e.into_iter().collect()).collect();
    let totals: Vec<f64> = edges.iter().map(|e| e.iter().map(|(_, w)| w).sum()).collect();
    let mut rank = vec![0.0; paths.len()];
    rank[0] = 1.0;
    for _ in 0..ITERATIONS {
        let mut next = vec![0.0; paths.len()];
        // Restarts, and the rank of files with no way out, go back to the error's file.
        let mut restart = 1.0 - DAMPING;
        for (from, out) in edges.iter().enumerate() {
            if totals[from] <= 0.0 {
                restart += DAMPING * rank[from];
                continue;
            }
            for &(to, weight) in out {
                next[to] += DAMPING * rank[from] * weight / totals[from];
            }
        }
        next[0] += restart;
        let change: f64 = next.iter().zip(&rank).map(|(a, b)| (a - b).abs()).sum();
        rank = next;
        if change < 1e-9 {
            break;
        }
    }
    paths.into_iter().zip(rank).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalate::symbols::Definition;

    fn index(files: &[(&str, &[&str], &[&str])]) -> SymbolIndex {
        let mut index = SymbolIndex::default();
        for (path, defines, uses) in files {
            let definitions = defines
                .iter()
                .map(|name| Definition {
                    name: (*name).to_owned(),
                    kind: "function".to_owned(),
                    path: (*path).to_owned(),
                    range: 0..1,
                    line: 0,
                    declaration: false,
                })
                .collect();
            index.update(path, definitions);
            index.set_uses(path, uses.iter().map(|u| (*u).to_owned()).collect());
        }
        index
    }

    #[test]
    fn files_the_error_leads_to_rank_above_those_it_does_not() {
        // main uses parse (defined in a and in b) and config; only b also defines what a's
        // neighbour uses, and c is reached through b.
        let index = index(&[
            ("main.rs", &["main"], &["parse", "load"]),
            ("a.rs", &["parse"], &[]),
            ("b.rs", &["parse", "load"], &["helper"]),
            ("c.rs", &["helper"], &[]),
            ("island.rs", &["parse_other"], &["parse"]),
        ]);
        let rank = rank_files(&index, "main.rs", &HashSet::new());
        let r = |p: &str| rank.get(p).copied().unwrap_or(0.0);
        assert!(r("b.rs") > r("a.rs"), "{rank:?}");
        assert!(r("c.rs") > 0.0, "{rank:?}");
        assert_eq!(r("island.rs"), 0.0, "{rank:?}");
        let total: f64 = rank.values().sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn a_name_near_the_error_pulls_its_file_up() {
        let index = index(&[
            ("main.rs", &["main"], &["parse", "load"]),
            ("a.rs", &["parse"], &[]),
            ("b.rs", &["load"], &[]),
        ]);
        let plain = rank_files(&index, "main.rs", &HashSet::new());
        assert!((plain["a.rs"] - plain["b.rs"]).abs() < 1e-9, "{plain:?}");
        let near = rank_files(&index, "main.rs", &HashSet::from(["load"]));
        assert!(near["b.rs"] > near["a.rs"], "{near:?}");
    }

    #[test]
    fn the_graph_stays_within_its_bounds() {
        // A chain longer than the graph may hold.
        let names: Vec<String> = (0..MAX_FILES + 10).map(|i| format!("f{i}")).collect();
        let paths: Vec<String> = (0..MAX_FILES + 10).map(|i| format!("m{i}.rs")).collect();
        let mut index = SymbolIndex::default();
        for i in 0..names.len() {
            let definition = Definition {
                name: names[i].clone(),
                kind: "function".to_owned(),
                path: paths[i].clone(),
                range: 0..1,
                line: 0,
                declaration: false,
            };
            index.update(&paths[i], vec![definition]);
            index.set_uses(&paths[i], names.get(i + 1).cloned().into_iter().collect());
        }
        let rank = rank_files(&index, "m0.rs", &HashSet::new());
        assert_eq!(rank.len(), MAX_FILES);
        assert!(rank["m1.rs"] > rank["m2.rs"], "nearer ranks higher");
    }
}
