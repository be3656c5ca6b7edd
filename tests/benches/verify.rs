//! Time to verify a fix by its checker: a generated Cargo crate with one error, `cargo check` as
//! the checker, and a fix that removes the error, verified on the scratch mirror
//! ([`acas::checkers::verify::Mirror`]) — the first time (the mirror is copied and its target
//! directory built) and then again with the mirror warm, against `cargo check` of the crate
//! itself for scale.
//!
//! `cargo bench -p acas-e2e --bench verify`

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use acas::checkers::run;
use acas::checkers::verify::{Mirror, Verdict};
use acas::checkers::{Checker, Format, Kind, Problem};
use tokio_util::sync::CancellationToken;

const MODULES: usize = 40;
const WARM_ROUNDS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("crate");
    make_crate(&root);
    let checker = Checker {
        name: "cargo-check".to_owned(),
        command: ["cargo", "check", "--message-format=json"].map(str::to_owned).to_vec(),
        cwd: root.clone(),
        format: Format::Cargo,
        kind: Kind::Check,
        on_save: true,
        on_start: true,
        files: Vec::new(),
        timeout: None,
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let before = problems(&checker).await;
        let by_hand = started.elapsed();
        let target = before.iter().find(|p| p.code.as_deref() == Some("E0308")).expect("the error").clone();
        let broken = root.join("src/m0.rs");
        let fixed = std::fs::read_to_string(&broken).unwrap().replace("\"not a number\"", "7");
        let edits = vec![(broken.clone(), fixed)];
        let mirror = Mirror::at(&root, &dir.path().join("scratch"), &[]);
        let verify = || async {
            let started = Instant::now();
            let verdict = mirror.verify(&checker, &edits, &target, &before, &CancellationToken::new()).await;
            assert!(matches!(verdict, Ok(Verdict::Verified { .. })), "{verdict:?}");
            started.elapsed()
        };
        let cold = verify().await;
        let mut warm = Vec::new();
        for _ in 0..WARM_ROUNDS {
            warm.push(verify().await);
        }
        warm.sort();
        println!("# Verifying a fix with `cargo check` ({MODULES} modules)\n");
        println!("| what | ms |\n|---|---|");
        println!("| `cargo check` of the crate itself, warm | {} |", ms(by_hand));
        println!("| first verification (mirror copied, its target built) | {} |", ms(cold));
        println!("| later verifications, median of {WARM_ROUNDS} | {} |", ms(warm[warm.len() / 2]));
        println!("| later verifications, slowest | {} |", ms(warm[warm.len() - 1]));
    });
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

async fn problems(checker: &Checker) -> Vec<Problem> {
    let mut found = Vec::new();
    run::run(checker, &CancellationToken::new(), &mut |p| found.push(p)).await.expect("cargo check runs");
    found
}

fn make_crate(root: &Path) {
    acas_e2e::generated_crate(root, MODULES);
    let broken = root.join("src/m0.rs");
    let mut module = std::fs::read_to_string(&broken).unwrap();
    module.push_str("pub fn broken() -> u32 {\n    \"not a number\"\n}\n");
    std::fs::write(broken, module).unwrap();
    // A warm build of the crate itself, as a project being worked on has.
    let _ = std::process::Command::new("cargo").arg("check").current_dir(root).output();
}
