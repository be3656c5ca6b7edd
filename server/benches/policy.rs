//! Policy decisions with a large deny list: 8,260 path globs in the workspace's policy file (the
//! size of a hostile file that stays under the file-size and node limits). Measures reading the
//! file (parsing and checking every glob), the first decision (which builds the list's glob set
//! once for this file content), and then decisions per second for a path that a glob denies and
//! for one that none matches (which must look at every glob). Prints a markdown table.
//!
//! Run with `cargo bench -p acas --bench policy`.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use acas::policy::{Action, Policy};

const GLOBS: usize = 8_260;
const DECISIONS: usize = 2_000;

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let globs: Vec<String> = (0..GLOBS).map(|i| format!("\"src/**/[a-z]*{{a,b,c}}{i}*.rs\"")).collect();
    let file = dir.path().join(".acas/policy.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).expect("create .acas");
    std::fs::write(&file, format!("defaults:\n  paths:\n    deny: [{}]\n", globs.join(","))).expect("write");
    let mut rows: Vec<[String; 2]> = Vec::new();

    let started = Instant::now();
    let policy = Policy::load_from(dir.path(), None);
    assert!(policy.error().is_none(), "{:?}", policy.error());
    rows.push([
        format!("read the file ({GLOBS} globs)"),
        format!("{:.2} s", started.elapsed().as_secs_f64()),
    ]);

    let write = |path: &str| Action::Write { path: path.to_owned() };
    let started = Instant::now();
    policy.decide("bench", &write("src/first.rs"));
    rows.push([
        "first decision (builds the glob set)".to_owned(),
        format!("{:.2} s", started.elapsed().as_secs_f64()),
    ]);

    for (what, path) in [("denied path", "src/mod/xa100.rs"), ("path no glob matches", "src/lib.rs")] {
        let started = Instant::now();
        for _ in 0..DECISIONS {
            policy.decide("bench", &write(path));
        }
        let per_second = DECISIONS as f64 / started.elapsed().as_secs_f64();
        rows.push([format!("decisions/s, {what}"), format!("{per_second:.0}")]);
    }
    // Loading the unchanged file again costs a look at its size and time, not a parse.
    let started = Instant::now();
    for _ in 0..DECISIONS {
        Policy::load_from(dir.path(), None);
    }
    rows.push([
        "loads/s of the unchanged file (cached)".to_owned(),
        format!("{:.0}", DECISIONS as f64 / started.elapsed().as_secs_f64()),
    ]);

    println!("| measure | result |\n|---|---|");
    for [what, result] in rows {
        println!("| {what} | {result} |");
    }
}
