//! Project tasks: `cargo xtask test` runs every test ACAS has: the Rust tests (unit and
//! end-to-end over stdio), then the VS Code extension's unit, integration and real-VS-Code tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("test-rust") => test_rust(&args[1..]),
        Some("test-extension") => test_extension(),
        _ => {
            eprintln!("usage: cargo xtask test | test-rust [-- NEXTEST ARGS] | test-extension");
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

/// Every test: Rust first, then the extension (which drives the binary the Rust step built).
fn test(extra: &[String]) -> Result<()> {
    let rust = test_rust(extra);
    let extension = test_extension();
    match (rust, extension) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) => Err(e.context("the Rust tests failed (the extension's passed)")),
        (Ok(()), Err(e)) => Err(e.context("the extension's tests failed (the Rust tests passed)")),
        (Err(r), Err(e)) => bail!("the Rust tests failed: {r:#}\nand the extension's tests failed: {e:#}"),
    }
}

/// The seed the suite's property tests start from.
const PROPTEST_SEED: &str = "20261207";

/// Builds the `acas` binary once, then runs every Rust test with nextest (the end-to-end tests
/// drive that binary).
fn test_rust(extra: &[String]) -> Result<()> {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(&cargo).current_dir(&root).args(["build", "--locked", "-p", "acas", "--bin", "acas"]))?;
    let extra = extra.iter().skip_while(|a| *a == "--");
    let mut nextest = Command::new(&cargo);
    nextest
        .current_dir(&root)
        .args(["nextest", "run", "--locked", "--workspace", "--no-fail-fast"])
        .args(extra);
    // The property tests explore new inputs on every `cargo nextest run`; the suite as a whole
    // runs them from one seed, so that it passes or fails the same way on every machine. Set
    // PROPTEST_RNG_SEED to explore from another.
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        nextest.env("PROPTEST_RNG_SEED", PROPTEST_SEED);
    }
    nextest.env("PATH", path_with_checker_tools()?);
    run(&mut nextest)?;
    Ok(())
}

/// Where `scripts/install-checker-tools.sh` puts the real tools the checker tests drive.
fn checker_tools_dir() -> PathBuf {
    match std::env::var_os("ACAS_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
            home.join(".cache").join("acas-tools")
        }
    }
}

/// PATH with the checker tools' directories first (Ruff, mypy, pytest in the venv; tsc and
/// ESLint in the npm prefix). The tests fail, saying how to install them, when they are absent.
fn path_with_checker_tools() -> Result<std::ffi::OsString> {
    let tools = checker_tools_dir();
    let mut dirs = vec![tools.join("venv").join("bin"), tools.join("node").join("node_modules").join(".bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).context("a directory of PATH or ACAS_TOOLS_DIR contains `:`")
}

/// Installs what the extension's tests need (idempotent), then runs them against the debug
/// binary.
fn test_extension() -> Result<()> {
    let root = root();
    let extension = root.join("vscode-extension");
    let binary = root.join("target").join("debug").join("acas");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        run(Command::new(&cargo)
            .current_dir(&root)
            .args(["build", "--locked", "-p", "acas", "--bin", "acas"]))?;
    }
    run(Command::new("bash").arg(root.join("scripts").join("setup-e2e.sh")).current_dir(&root))?;
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&extension))?;
    run(Command::new("npm").arg("test").current_dir(&extension).env("ACAS_SERVER_PATH", &binary))?;
    Ok(())
}
