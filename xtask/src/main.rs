//! Project tasks: `cargo xtask test` runs every test ACAS has.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test [-- NEXTEST ARGS]");
            std::process::exit(2);
        }
    };
    if let Err(error) = result {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(command: &mut Command) -> Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command.status().with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Builds the `acas` binary once, then runs every Rust test with nextest (the end-to-end tests
/// drive that binary).
fn test(extra: &[String]) -> Result<()> {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(&cargo).current_dir(&root).args(["build", "--locked", "-p", "acas", "--bin", "acas"]))?;
    let extra = extra.iter().skip_while(|a| *a == "--");
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["nextest", "run", "--locked", "--workspace", "--no-fail-fast"])
        .args(extra))?;
    Ok(())
}
