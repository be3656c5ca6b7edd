//! Which checkers a workspace has: the built-in ones detected from its files and what is
//! installed, with the `[[checkers]]` entries of the configuration applied over them.
//!
//! Detection walks the workspace (bounded: [`WALK_DEPTH`] levels, [`WALK_DIRECTORIES`]
//! directories, the ignore rules and the usual dependency and build directories skipped) and
//! makes checkers for every directory with a project file: `Cargo.toml`, `tsconfig.json`,
//! `package.json`, `pyproject.toml` (and the other Python configuration files), `go.mod`. A
//! program is looked up in the project first (`node_modules/.bin`, `.venv/bin`, `venv/bin` in
//! that directory or one above it inside the workspace), then on `PATH`; a few are asked for
//! their version (`cargo clippy --version`, `mypy --version`). A tool the project configures but
//! that is not installed is detected as missing, with how to install it. Nothing here runs a
//! checker.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::settings::{CheckerSettings, Entry};
use super::{Checker, ColumnUnit, Format, Kind, Matcher};
use crate::classify::Severity;
use crate::watch::IgnoreRules;

/// How deep below the workspace root detection looks for project files.
pub const WALK_DEPTH: usize = 6;
/// How many directories detection reads at most; the rest of a larger tree is not looked at.
pub const WALK_DIRECTORIES: usize = 20_000;
/// The timeout of a built-in checker that checks code (a cold `cargo check` is slow).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The timeout of a built-in checker that runs tests.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a program has to answer `--version` before it is taken as not working.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Directories detection never enters: dependencies, build output, caches.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".acas",
    "node_modules",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "dist",
    "build",
    "vendor",
];

const ESLINT_CONFIGS: &[&str] = &[
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
    "eslint.config.ts",
    "eslint.config.mts",
    "eslint.config.cts",
    ".eslintrc",
    ".eslintrc.js",
    ".eslintrc.cjs",
    ".eslintrc.json",
    ".eslintrc.yml",
    ".eslintrc.yaml",
];

/// ESLint's flat configurations: each is a project of its own, with or without a package.json
/// (ESLint finds one from the directory it runs in). The older `.eslintrc` files cascade into
/// the directories below a project, so they are read only next to a package.json or tsconfig.json.
const ESLINT_FLAT_CONFIGS: &[&str] = &[
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
    "eslint.config.ts",
    "eslint.config.mts",
    "eslint.config.cts",
];

const PYTHON_FILES: &[&str] = &[
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    "pytest.ini",
    "tox.ini",
    "pyrightconfig.json",
];

/// A checker and whether it will run, with the reason a person can read.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub checker: Checker,
    pub enabled: bool,
    /// Why it exists and why it runs or not ("Cargo.toml; `cargo` on PATH", "defined in
    /// .acas/config.toml", "turned off in .acas/config.toml").
    pub why: String,
    /// Set when the project configures the tool but its program was not found: how to install
    /// it. Running the checker then reports it missing.
    pub missing: Option<String>,
}

/// The checkers of the workspace at `root`, and the entries of the configuration that could not
/// be applied (each message names the checker and what is missing). Detection respects the
/// workspace's ignore files.
pub fn checkers(root: &Path, settings: &CheckerSettings) -> (Vec<Detected>, Vec<String>) {
    checkers_ignoring(root, settings, &[])
}

/// [`checkers`], with the configured ignore globs (`[files] ignore`) applied to the walk too.
pub fn checkers_ignoring(
    root: &Path,
    settings: &CheckerSettings,
    ignore_globs: &[String],
) -> (Vec<Detected>, Vec<String>) {
    checkers_probing(root, settings, ignore_globs, true)
}

/// [`checkers_ignoring`]; `probe: false` runs no program (`--version`) to see what works: in a
/// workspace the user has not trusted, the programs found in the project (`node_modules/.bin`,
/// `.venv/bin`) and the toolchains it selects (`rust-toolchain.toml`) are its own code. Each
/// tool is then taken as not answering.
pub fn checkers_probing(
    root: &Path,
    settings: &CheckerSettings,
    ignore_globs: &[String],
    probe: bool,
) -> (Vec<Detected>, Vec<String>) {
    let mut found = builtins(root, &IgnoreRules::new(root, ignore_globs), probe);
    let mut problems = Vec::new();
    for entry in &settings.entries {
        match found.iter_mut().find(|d| d.checker.name == entry.name) {
            Some(detected) => apply(root, detected, entry),
            None => match defined(root, entry) {
                Ok(detected) => found.push(detected),
                Err(message) => problems.push(message),
            },
        }
    }
    (found, problems)
}

/// The default timeout of a checker of `kind`.
pub fn default_timeout(kind: Kind) -> Duration {
    match kind {
        Kind::Check => CHECK_TIMEOUT,
        Kind::Test => TEST_TIMEOUT,
    }
}

/// A directory with project files in it.
struct Project {
    dir: PathBuf,
    /// Relative to the workspace, `/`-separated; empty at the root.
    relative: String,
    /// The names of the files in it.
    files: BTreeSet<String>,
}

impl Project {
    fn has(&self, name: &str) -> bool {
        self.files.contains(name)
    }

    fn read(&self, name: &str) -> String {
        if !self.has(name) {
            return String::new();
        }
        crate::files::read_source(&self.dir.join(name), 1 << 20).unwrap_or_default()
    }

    /// A checker's name: the tool's, with the directory after `@` below the root.
    fn name(&self, tool: &str) -> String {
        if self.relative.is_empty() { tool.to_owned() } else { format!("{tool}@{}", self.relative) }
    }

    /// `file` named for a person: `web/tsconfig.json`.
    fn file(&self, name: &str) -> String {
        if self.relative.is_empty() { name.to_owned() } else { format!("{}/{name}", self.relative) }
    }
}

/// What the walk found: the directories with project files, and those with Python tests.
struct Tree {
    projects: Vec<Project>,
    python_test_dirs: Vec<PathBuf>,
}

/// Walks the workspace breadth first, within [`WALK_DEPTH`] and [`WALK_DIRECTORIES`].
fn walk(root: &Path, rules: &IgnoreRules) -> Tree {
    let mut tree = Tree { projects: Vec::new(), python_test_dirs: Vec::new() };
    let mut queue = std::collections::VecDeque::from([(root.to_path_buf(), 0usize)]);
    let mut read = 0usize;
    while let Some((dir, depth)) = queue.pop_front() {
        read += 1;
        if read > WALK_DIRECTORIES {
            tracing::info!(
                "checker detection read {WALK_DIRECTORIES} directories and stopped; deeper projects are not detected"
            );
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files = BTreeSet::new();
        let mut subdirs = Vec::new();
        let mut python_tests = false;
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let path = entry.path();
            if kind.is_dir() {
                if depth < WALK_DEPTH
                    && !SKIPPED_DIRS.contains(&name.as_str())
                    && !rules.is_ignored_entry(&path, true)
                {
                    subdirs.push(path);
                }
            } else if kind.is_file() && !rules.is_ignored_entry(&path, false) {
                python_tests |= name.ends_with(".py")
                    && (name.starts_with("test_") || name.ends_with("_test.py") || name == "conftest.py");
                files.insert(name);
            }
        }
        subdirs.sort();
        queue.extend(subdirs.into_iter().map(|d| (d, depth + 1)));
        if python_tests {
            tree.python_test_dirs.push(dir.clone());
        }
        let project = ["Cargo.toml", "tsconfig.json", "package.json", "go.mod"]
            .iter()
            .chain(PYTHON_FILES)
            .chain(ESLINT_FLAT_CONFIGS)
            .any(|f| files.contains(*f));
        if project {
            let relative = crate::files::relative(root, &dir);
            let relative = if dir == root { String::new() } else { relative };
            tree.projects.push(Project { dir, relative, files });
        }
    }
    tree.projects.sort_by(|a, b| a.relative.cmp(&b.relative));
    tree
}

/// A program found for a checker.
struct Program {
    /// What goes in the command: the bare name when found on PATH, else the absolute path.
    argv0: String,
    /// Where it was found, for a person.
    found: String,
}

/// Looks `name` up in the project (`node_modules/.bin`, `.venv/bin`, `venv/bin` of `dir` and of
/// the directories above it inside `root`), then on PATH.
fn find_program(name: &str, dir: &Path, root: &Path) -> Option<Program> {
    for d in dir.ancestors().take_while(|d| d.starts_with(root)) {
        for bin in ["node_modules/.bin", ".venv/bin", "venv/bin"] {
            let candidate = d.join(bin).join(name);
            if is_executable(&candidate) {
                return Some(Program {
                    argv0: candidate.to_string_lossy().into_owned(),
                    found: format!("`{name}` in {}", crate::files::relative(root, &d.join(bin))),
                });
            }
        }
    }
    on_path(name).map(|_| Program { argv0: name.to_owned(), found: format!("`{name}` on PATH") })
}

/// The first `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program args` in `dir` and returns its stdout when it succeeds within
/// [`PROBE_TIMEOUT`]; remembers answers for the rest of one detection.
struct Probes {
    answers: HashMap<(String, Vec<String>, PathBuf), Option<String>>,
    /// Whether programs may be run at all.
    allowed: bool,
}

impl Probes {
    fn ask(&mut self, program: &str, args: &[&str], dir: &Path) -> Option<String> {
        if !self.allowed {
            return None;
        }
        let key = (program.to_owned(), args.iter().map(|a| (*a).to_owned()).collect(), dir.to_path_buf());
        self.answers.entry(key).or_insert_with(|| probe(program, args, dir)).clone()
    }
}

fn probe(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    use std::process::{Command, Stdio};
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("NO_COLOR", "1")
        .spawn()
        .ok()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(Ok(output)) if output.status.success() => {
            Some(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        Ok(_) => None,
        Err(_) => {
            // SAFETY: the child is not reaped until the thread's wait returns, so the pid is its.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            tracing::warn!(
                "`{program} {}` did not answer within {}s",
                args.join(" "),
                PROBE_TIMEOUT.as_secs()
            );
            None
        }
    }
}

/// A version `major.minor` from `--version` output such as `mypy 1.19.0 (compiled: yes)`.
fn version(text: &str) -> Option<(u32, u32)> {
    text.split_whitespace().find_map(|word| {
        let mut parts = word.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    })
}

/// Builds the detected checkers one project at a time.
struct Builder<'a> {
    root: &'a Path,
    probes: Probes,
    found: Vec<Detected>,
}

/// What a tool needs to be a checker: everything but the project.
struct Tool<'a> {
    name: &'a str,
    program: &'a str,
    args: &'a [&'a str],
    format: Format,
    kind: Kind,
    /// Why the project calls for it (`Cargo.toml`, `[tool.mypy] in pyproject.toml`).
    because: String,
    /// How to install it when it is missing.
    install: &'a str,
}

impl Builder<'_> {
    /// Adds `tool` for `project`: with the program found, or as missing.
    fn add(&mut self, project: &Project, tool: Tool<'_>) {
        let program = find_program(tool.program, &project.dir, self.root);
        let (argv0, why, missing) = match program {
            Some(p) => (p.argv0, format!("{}; {}", tool.because, p.found), None),
            None => (
                tool.program.to_owned(),
                format!("{}; `{}` is not installed", tool.because, tool.program),
                Some(tool.install.to_owned()),
            ),
        };
        self.push(project, tool.name, argv0, tool.args, tool.format, tool.kind, why, missing);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        project: &Project,
        name: &str,
        argv0: String,
        args: &[&str],
        format: Format,
        kind: Kind,
        why: String,
        missing: Option<String>,
    ) {
        let why = match kind {
            Kind::Check => why,
            Kind::Test => format!("{why}; tests run on demand, not on save"),
        };
        let command = std::iter::once(argv0).chain(args.iter().map(|a| (*a).to_owned())).collect();
        self.found.push(Detected {
            checker: Checker {
                name: project.name(name),
                command,
                cwd: project.dir.clone(),
                format,
                kind,
                on_save: kind == Kind::Check,
                on_start: kind == Kind::Check,
                files: Vec::new(),
                timeout: Some(default_timeout(kind)),
            },
            enabled: true,
            why,
            missing,
        });
    }

    fn rust(&mut self, project: &Project) {
        let because = project.file("Cargo.toml");
        let Some(cargo) = find_program("cargo", &project.dir, self.root) else {
            let install = "install Rust with rustup (https://rustup.rs)";
            for (name, args, format, kind) in [
                ("cargo-check", CARGO_CHECK, Format::Cargo, Kind::Check),
                ("cargo-test", CARGO_TEST, Format::CargoTest, Kind::Test),
            ] {
                let why = format!("{because}; `cargo` is not installed");
                self.push(
                    project,
                    name,
                    "cargo".to_owned(),
                    args,
                    format,
                    kind,
                    why,
                    Some(install.to_owned()),
                );
            }
            return;
        };
        if self.probes.ask(&cargo.argv0, &["clippy", "--version"], &project.dir).is_some() {
            let why = format!("{because}; `cargo clippy` works (it also does what `cargo check` does)");
            self.push(project, "clippy", cargo.argv0.clone(), CLIPPY, Format::Cargo, Kind::Check, why, None);
        } else {
            let why = format!(
                "{because}; {}, `cargo clippy` is not installed (`rustup component add clippy`)",
                cargo.found
            );
            self.push(
                project,
                "cargo-check",
                cargo.argv0.clone(),
                CARGO_CHECK,
                Format::Cargo,
                Kind::Check,
                why,
                None,
            );
        }
        if self.probes.ask(&cargo.argv0, &["nextest", "--version"], &project.dir).is_some() {
            let why = format!("{because}; `cargo nextest` is installed");
            self.push(project, "cargo-test", cargo.argv0, NEXTEST, Format::CargoTest, Kind::Test, why, None);
        } else {
            let why = format!("{because}; {}", cargo.found);
            self.push(
                project,
                "cargo-test",
                cargo.argv0,
                CARGO_TEST,
                Format::CargoTest,
                Kind::Test,
                why,
                None,
            );
        }
    }

    fn javascript(&mut self, project: &Project) {
        if project.has("tsconfig.json") {
            // A solution-style tsconfig.json (`references` to other projects, often with
            // `"files": []`) checks nothing itself: build mode checks each referenced project.
            let references = has_references(&project.read("tsconfig.json"));
            let (args, because): (&[&str], String) = if references {
                (
                    &["-b", "--noEmit", "--pretty", "false"],
                    format!(
                        "{} (with `references`: its projects, in build mode)",
                        project.file("tsconfig.json")
                    ),
                )
            } else {
                (&["--noEmit", "--pretty", "false", "-p", "."], project.file("tsconfig.json"))
            };
            self.add(
                project,
                Tool {
                    name: "tsc",
                    program: "tsc",
                    args,
                    format: Format::Tsc,
                    kind: Kind::Check,
                    because,
                    install: "npm install --save-dev typescript",
                },
            );
        }
        let package: serde_json::Value =
            serde_json::from_str(&project.read("package.json")).unwrap_or_default();
        let eslint_config =
            ESLINT_CONFIGS.iter().find(|f| project.has(f)).map(|f| project.file(f)).or_else(|| {
                package
                    .get("eslintConfig")
                    .map(|_| format!("`eslintConfig` in {}", project.file("package.json")))
            });
        if let Some(config) = eslint_config {
            self.add(
                project,
                Tool {
                    name: "eslint",
                    program: "eslint",
                    args: &["--format", "json", "."],
                    format: Format::Eslint,
                    kind: Kind::Check,
                    because: config,
                    install: "npm install --save-dev eslint",
                },
            );
        }
        let depends = |name: &str| {
            ["devDependencies", "dependencies"]
                .iter()
                .any(|k| package.get(k).and_then(|d| d.get(name)).is_some())
        };
        let because = |tool: &str| format!("`{tool}` in {}'s dependencies", project.file("package.json"));
        if depends("jest") {
            self.add(
                project,
                Tool {
                    name: "jest",
                    program: "jest",
                    args: &["--json"],
                    format: Format::Jest,
                    kind: Kind::Test,
                    because: because("jest"),
                    install: "npm install (jest is in package.json but not in node_modules)",
                },
            );
        }
        if depends("vitest") {
            self.add(
                project,
                Tool {
                    name: "vitest",
                    program: "vitest",
                    args: &["run", "--reporter=json"],
                    format: Format::Jest,
                    kind: Kind::Test,
                    because: because("vitest"),
                    install: "npm install (vitest is in package.json but not in node_modules)",
                },
            );
        }
    }

    fn python(&mut self, project: &Project, tests: bool) {
        let pyproject = project.read("pyproject.toml");
        let setup_cfg = project.read("setup.cfg");
        let tox_ini = project.read("tox.ini");
        let section = |text: &str, header: &str| text.lines().any(|l| l.trim_start().starts_with(header));
        let configured = |files: &[&str], sections: &[(&str, &str, &str)]| -> Option<String> {
            files.iter().find(|f| project.has(f)).map(|f| project.file(f)).or_else(|| {
                sections.iter().find_map(|(file, text, header)| {
                    section(text, header).then(|| format!("`{header}]` in {}", project.file(file)))
                })
            })
        };
        let ruff_config =
            configured(&["ruff.toml", ".ruff.toml"], &[("pyproject.toml", &pyproject, "[tool.ruff")]);
        let ruff = find_program("ruff", &project.dir, self.root);
        match (ruff_config, ruff.is_some()) {
            (Some(config), _) => self.add(project, ruff_tool(config)),
            (None, true) => self.add(project, ruff_tool("a Python project and Ruff is installed".to_owned())),
            (None, false) => {}
        }
        let mypy_config = configured(
            &["mypy.ini", ".mypy.ini"],
            &[("pyproject.toml", &pyproject, "[tool.mypy"), ("setup.cfg", &setup_cfg, "[mypy")],
        );
        if let Some(config) = mypy_config {
            self.mypy(project, config);
        }
        let pyright_config =
            configured(&["pyrightconfig.json"], &[("pyproject.toml", &pyproject, "[tool.pyright")]);
        if let Some(config) = pyright_config {
            self.add(
                project,
                Tool {
                    name: "pyright",
                    program: "pyright",
                    args: &["--outputjson"],
                    format: Format::Pyright,
                    kind: Kind::Check,
                    because: config,
                    install: "npm install --save-dev pyright (or pip install pyright)",
                },
            );
        }
        let pytest_config = configured(
            &["pytest.ini"],
            &[
                ("pyproject.toml", &pyproject, "[tool.pytest"),
                ("setup.cfg", &setup_cfg, "[tool:pytest"),
                ("tox.ini", &tox_ini, "[pytest"),
            ],
        );
        let because = match (pytest_config, tests) {
            (Some(config), _) => Some(config),
            (None, true) => Some(format!(
                "test files (test_*.py) in {}",
                if project.relative.is_empty() { "the workspace" } else { &project.relative }
            )),
            (None, false) => None,
        };
        if let Some(because) = because {
            let name = project.name("pytest");
            let file: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
            let junit_xml = self.root.join(".acas").join("checkers").join(format!("{file}.xml"));
            let junit_arg = format!("--junitxml={}", junit_xml.display());
            self.add(
                project,
                Tool {
                    name: "pytest",
                    program: "pytest",
                    args: &[&junit_arg, "-q"],
                    format: Format::Pytest { junit_xml: junit_xml.clone() },
                    kind: Kind::Test,
                    because,
                    install: "pip install pytest (in the project's virtual environment)",
                },
            );
        }
    }

    fn mypy(&mut self, project: &Project, because: String) {
        // mypy checks what its configuration's `files`, `packages` or `modules` name when it is
        // given no target; `.` would override them.
        let own_targets = mypy_targets_configured(project);
        let json_args: &[&str] = if own_targets { &["--output", "json"] } else { &["--output", "json", "."] };
        let text_args: &[&str] = if own_targets {
            &["--show-column-numbers", "--no-error-summary", "--no-pretty"]
        } else {
            &["--show-column-numbers", "--no-error-summary", "--no-pretty", "."]
        };
        let because = if own_targets { format!("{because}; the files it configures") } else { because };
        let Some(program) = find_program("mypy", &project.dir, self.root) else {
            self.add(
                project,
                Tool {
                    name: "mypy",
                    program: "mypy",
                    args: json_args,
                    format: Format::Mypy,
                    kind: Kind::Check,
                    because,
                    install: "pip install mypy (in the project's virtual environment)",
                },
            );
            return;
        };
        let answer = self.probes.ask(&program.argv0, &["--version"], &project.dir);
        match answer.as_deref().and_then(version) {
            Some(v) if v >= (1, 11) => {
                let why = format!("{because}; {} (mypy {}.{}, JSON output)", program.found, v.0, v.1);
                self.push(project, "mypy", program.argv0, json_args, Format::Mypy, Kind::Check, why, None);
            }
            v => {
                let version = v.map_or("of unknown version".to_owned(), |v| format!("{}.{}", v.0, v.1));
                let why = format!(
                    "{because}; {} (mypy {version}: older than 1.11, read as text; upgrade for JSON output)",
                    program.found
                );
                self.push(
                    project,
                    "mypy",
                    program.argv0,
                    text_args,
                    mypy_text_format(),
                    Kind::Check,
                    why,
                    None,
                );
            }
        }
    }

    fn go(&mut self, project: &Project) {
        let because = project.file("go.mod");
        let install = "install Go (https://go.dev/dl, or Debian's golang-go)";
        // Two checkers: `go build` reports what does not compile, in the compiler's words, and
        // `go vet` what compiles but is suspect; vet stops at the first package that does not
        // type-check, so it alone would hide the build errors of the others.
        for (name, args, format, kind, what) in [
            ("go-build", &["build", "./..."][..], Format::Go, Kind::Check, "compile errors"),
            ("go-vet", &["vet", "./..."][..], Format::Go, Kind::Check, "suspect code the compiler accepts"),
            ("go-test", &["test", "-json", "./..."][..], Format::GoTest, Kind::Test, "failing tests"),
        ] {
            let why = format!("{because}: {what}");
            self.add(project, Tool { name, program: "go", args, format, kind, because: why, install });
        }
        // Debian and Ubuntu install it as `go-staticcheck`.
        let staticcheck = find_program("staticcheck", &project.dir, self.root)
            .or_else(|| find_program("go-staticcheck", &project.dir, self.root));
        if let Some(program) = staticcheck {
            let why = format!("{because}; {}", program.found);
            self.push(project, "staticcheck", program.argv0, &["./..."], Format::Go, Kind::Check, why, None);
        }
    }
}

const CLIPPY: &[&str] = &["clippy", "--workspace", "--all-targets", "--message-format=json"];
const CARGO_CHECK: &[&str] = &["check", "--workspace", "--all-targets", "--message-format=json"];
const CARGO_TEST: &[&str] = &["test", "--workspace", "--no-fail-fast"];
const NEXTEST: &[&str] = &["nextest", "run", "--workspace", "--no-fail-fast"];

/// Whether the project's mypy configuration names what to check (`files`, `packages` or
/// `modules`), in mypy.ini, .mypy.ini, setup.cfg's `[mypy]` or pyproject.toml's `[tool.mypy]`.
fn mypy_targets_configured(project: &Project) -> bool {
    const KEYS: [&str; 3] = ["files", "packages", "modules"];
    let pyproject: toml::Table = toml::from_str(&project.read("pyproject.toml")).unwrap_or_default();
    let in_pyproject = pyproject
        .get("tool")
        .and_then(|t| t.get("mypy"))
        .and_then(|m| m.as_table())
        .is_some_and(|m| KEYS.iter().any(|k| m.contains_key(*k)));
    let in_ini = |text: &str| {
        let mut in_mypy = false;
        text.lines().map(str::trim).any(|line| {
            if line.starts_with('[') {
                in_mypy = line == "[mypy]";
                return false;
            }
            in_mypy
                && line
                    .split_once('=')
                    .is_some_and(|(key, value)| KEYS.contains(&key.trim()) && !value.trim().is_empty())
        })
    };
    in_pyproject
        || ["mypy.ini", ".mypy.ini", "setup.cfg"].iter().any(|f| project.has(f) && in_ini(&project.read(f)))
}

/// Whether a tsconfig.json's text (JSON with comments) lists project `references`.
fn has_references(text: &str) -> bool {
    static REFERENCES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#""references"\s*:\s*\[\s*(//[^\n]*\n\s*|/\*.*?\*/\s*)*\{"#)
            .expect("the pattern compiles")
    });
    REFERENCES.is_match(text)
}

fn ruff_tool(because: String) -> Tool<'static> {
    Tool {
        name: "ruff",
        program: "ruff",
        args: &["check", "--output-format", "json", "."],
        format: Format::Ruff,
        kind: Kind::Check,
        because,
        install: "pip install ruff (or `uv tool install ruff`)",
    }
}

/// mypy's text output before 1.11 (no JSON): `file:line:column: severity: message  [code]`.
fn mypy_text_format() -> Format {
    Format::Matcher(Matcher {
        pattern: regex::Regex::new(
            r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?:(?P<column>\d+):)? (?P<severity>error|warning|note): (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$",
        )
        .expect("the mypy pattern compiles"),
        source: "mypy".to_owned(),
        severity: Severity::Error,
        columns: ColumnUnit::Chars,
    })
}

/// The built-in checkers that the workspace's files and the installed tools call for.
fn builtins(root: &Path, rules: &IgnoreRules, probe: bool) -> Vec<Detected> {
    let tree = walk(root, rules);
    let mut builder =
        Builder { root, probes: Probes { answers: HashMap::new(), allowed: probe }, found: Vec::new() };
    // A Cargo workspace's members are checked by the workspace's own checkers.
    let mut cargo_workspaces: Vec<PathBuf> = Vec::new();
    for project in &tree.projects {
        if project.has("Cargo.toml") && !cargo_workspaces.iter().any(|w| project.dir.starts_with(w)) {
            if project.read("Cargo.toml").lines().any(|l| l.trim() == "[workspace]") {
                cargo_workspaces.push(project.dir.clone());
            }
            builder.rust(project);
        }
        if project.has("tsconfig.json")
            || project.has("package.json")
            || ESLINT_FLAT_CONFIGS.iter().any(|f| project.has(f))
        {
            builder.javascript(project);
        }
        if PYTHON_FILES.iter().any(|f| project.has(f)) {
            let tests = tree.python_test_dirs.iter().any(|d| d.starts_with(&project.dir));
            builder.python(project, tests);
        }
        if project.has("go.mod") {
            builder.go(project);
        }
    }
    builder.found
}

/// Applies an entry over a detected checker.
fn apply(root: &Path, detected: &mut Detected, entry: &Entry) {
    let checker = &mut detected.checker;
    if let Some(cwd) = &entry.cwd {
        checker.cwd = root.join(cwd);
    }
    if let Some(command) = &entry.command {
        checker.command = command.clone();
        detected.missing = program_missing(&checker.command, &checker.cwd);
        if detected.missing.is_some() {
            detected.why = format!("{}; its configured program was not found", detected.why);
        }
    }
    if let Some(format) = &entry.format {
        checker.format = format.clone();
    }
    if let Some(kind) = entry.kind {
        checker.kind = kind;
    }
    if let Some(on_save) = entry.on_save {
        checker.on_save = on_save;
    }
    if let Some(on_start) = entry.on_start {
        checker.on_start = on_start;
    }
    if let Some(files) = &entry.files {
        checker.files = files.clone();
    }
    if entry.timeout.is_some() {
        checker.timeout = entry.timeout;
    }
    match entry.enabled {
        Some(false) => {
            detected.enabled = false;
            detected.why = format!("{}; turned off in .acas/config.toml", detected.why);
        }
        Some(true) if !detected.enabled => {
            detected.enabled = true;
            detected.why = format!("{}; turned on in .acas/config.toml", detected.why);
        }
        _ => detected.why = format!("{}; changed in .acas/config.toml", detected.why),
    }
}

/// A checker the configuration defines from nothing.
fn defined(root: &Path, entry: &Entry) -> Result<Detected, String> {
    let (Some(command), Some(format)) = (&entry.command, &entry.format) else {
        return Err(format!(
            "checker `{}` in .acas/config.toml is not a detected checker, so it needs a `command` and a `format` (or a `pattern`); `acas checkers` lists the detected ones",
            entry.name
        ));
    };
    let kind = entry.kind.unwrap_or(Kind::Check);
    let checker = Checker {
        name: entry.name.clone(),
        command: command.clone(),
        cwd: root.join(entry.cwd.as_deref().unwrap_or("")),
        format: format.clone(),
        kind,
        on_save: entry.on_save.unwrap_or(kind == Kind::Check),
        on_start: entry.on_start.unwrap_or(kind == Kind::Check),
        files: entry.files.clone().unwrap_or_default(),
        timeout: entry.timeout.or(Some(default_timeout(kind))),
    };
    let enabled = entry.enabled.unwrap_or(true);
    let missing = program_missing(&checker.command, &checker.cwd);
    let why = match (enabled, &missing) {
        (false, _) => "defined and turned off in .acas/config.toml".to_owned(),
        (true, None) => "defined in .acas/config.toml".to_owned(),
        (true, Some(_)) => format!(
            "defined in .acas/config.toml; `{}` was not found",
            checker.command.first().map_or("", String::as_str)
        ),
    };
    Ok(Detected { checker, enabled, why, missing })
}

/// How to make the program of `command` (run in `cwd`) found, when it is found nowhere: a bare
/// name not on PATH, or a path (relative to `cwd`) that is not an executable file. Nothing is
/// run to find out.
fn program_missing(command: &[String], cwd: &Path) -> Option<String> {
    let program = command.first()?;
    if program.contains('/') {
        let path = cwd.join(program);
        return (!is_executable(&path)).then(|| {
            format!(
                "make `{program}` an executable file in {}, or fix `command` in .acas/config.toml",
                cwd.display()
            )
        });
    }
    on_path(program)
        .is_none()
        .then(|| format!("put `{program}` on PATH, or give its path in `command` in .acas/config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::settings::EntryConfig;

    fn settings(toml_text: &str) -> CheckerSettings {
        #[derive(serde::Deserialize)]
        struct File {
            checkers: Vec<EntryConfig>,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        CheckerSettings { entries: file.checkers.iter().map(|e| e.check().unwrap()).collect() }
    }

    #[test]
    fn a_defined_checker_runs_from_the_workspace_and_one_without_a_command_is_reported() {
        let root = Path::new("/ws");
        let (found, problems) = checkers(
            root,
            &settings(
                r#"
                [[checkers]]
                name = "lint"
                command = ["./lint.sh", "--all"]
                format = "go"
                cwd = "tools"

                [[checkers]]
                name = "mystery"
                enabled = true
                "#,
            ),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].checker.cwd, root.join("tools"));
        assert!(found[0].enabled && found[0].checker.on_save);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("checker `mystery`") && problems[0].contains("needs a `command`"),
            "{problems:?}"
        );
    }

    #[test]
    fn versions_are_read_from_version_lines() {
        assert_eq!(version("mypy 1.19.0 (compiled: yes)"), Some((1, 19)));
        assert_eq!(version("mypy 0.991"), Some((0, 991)));
        assert_eq!(version("mypy (unknown)"), None);
    }

    #[test]
    fn old_mypy_text_is_read_by_its_pattern() {
        let Format::Matcher(m) = mypy_text_format() else { panic!("a matcher") };
        let c = m
            .pattern
            .captures("pkg/a.py:3:9: error: Incompatible types in assignment  [assignment]")
            .unwrap();
        let groups: Vec<&str> =
            ["file", "line", "column", "severity", "message", "code"].iter().map(|g| &c[*g]).collect();
        assert_eq!(groups, ["pkg/a.py", "3", "9", "error", "Incompatible types in assignment", "assignment"]);
        let c = m.pattern.captures("a.py:1: note: See https://mypy.rtfd.io").unwrap();
        assert!(c.name("column").is_none() && c.name("code").is_none());
    }

    #[test]
    fn a_cargo_workspace_is_one_checker_and_a_go_module_below_it_another() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/a\"]\n"),
            ("crates/a/Cargo.toml", "[package]\nname = \"a\"\n"),
            ("tools/gen/go.mod", "module gen\n"),
            ("node_modules/x/go.mod", "module x\n"),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), text).unwrap();
        }
        let (found, _) = checkers(root, &CheckerSettings::default());
        let names: Vec<&str> = found.iter().map(|d| d.checker.name.as_str()).collect();
        assert!(!names.iter().any(|n| n.contains("crates/a") || n.contains("node_modules")), "{names:?}");
        assert!(names.contains(&"go-build@tools/gen"), "{names:?}");
        assert!(names.iter().any(|n| *n == "clippy" || *n == "cargo-check"), "{names:?}");
        let go = found.iter().find(|d| d.checker.name == "go-build@tools/gen").unwrap();
        assert_eq!(go.checker.cwd, root.join("tools/gen"));
        assert_eq!(go.checker.timeout, Some(CHECK_TIMEOUT));
    }
}
