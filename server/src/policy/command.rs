//! Judging a command by what would run, not by how it is spelled.
//!
//! A command (an argv, or a shell script cut by [`shell`](super::shell)) becomes the list of
//! every program that would run: wrappers are unwrapped (`env`, `sudo`, `doas`, `nice`,
//! `nohup`, `timeout`, `xargs`, `busybox`, `command`, `exec`, `stdbuf`, `time`, `setsid`,
//! `su -c`) and so are shells given a script (`sh|bash|dash|zsh|ksh -c [--] SCRIPT`), to any
//! depth up to [`MAX_DEPTH`]. What cannot be known before it runs (a `$` expansion, a command
//! substitution, `eval`, `source`, a shell reading its script from standard input...) is
//! "cannot be judged": under any command rule it is not allowed, and the message says to write
//! an argv step instead.
//!
//! `deny` and `approve` patterns match flag-aware at any word: the program, then its flags in any
//! order and spelling (clusters split, long options mapped to short ones by [`LONG_TO_SHORT`]),
//! then its other words in order among the arguments. `allow` patterns match the leading words
//! exactly, the program by the executable that would run: a bare name matches only a program
//! found on `PATH` outside the workspace, and an interpreter given inline code (`python -c`,
//! `node -e`...) only when the pattern names that flag. Environment variables that change what a
//! program executes ([`RISKY_ENV`], [`RISKY_ENV_PREFIXES`]) are not allowed under a command rule
//! unless a pattern `NAME=…` allows them.
//!
//! Relative paths (a program written as a path, the file an output redirection writes) are
//! judged from the directory the command runs in: the step's working directory, then wherever
//! each `cd`, `pushd` or `chdir` of a script (and `env -C`) leads. A `cd` that may fail, or run
//! in a pipeline's subshell, leaves both directories possible and each is judged (up to
//! [`MAX_DIRS`]); a `cd` whose target is not known before the script runs (a `$` expansion, a
//! substitution, `~`, `-`, no target, a name looked up through `CDPATH`), or a command that may
//! change the directory in a way this judge does not follow (`eval`, `source`, a compound
//! command or function), leaves the directory unknown: a relative program path after it cannot
//! be judged, and a redirection to a relative path is denied.
//!
//! It does not judge what an allowed program does with its arguments, nor files it reads
//! (`sh script.sh` runs what `script.sh` says).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::shell::{self, Simple};
use super::{Category, Location, Matcher, Outcome, Rule, Section, Start};

/// How deeply wrappers and `sh -c` scripts are followed.
pub const MAX_DEPTH: usize = 8;

/// The most directories a script's later commands are judged from: each `cd` that may or may not
/// take effect doubles them at most. Past it, the directory is unknown.
pub const MAX_DIRS: usize = 16;

/// The directory a command runs in.
#[derive(Debug, Clone, PartialEq)]
enum Dirs {
    /// One of these absolute directories (`.` and `..` resolved as `cd` does); never empty.
    Known(Vec<PathBuf>),
    /// A directory that cannot be known before the script runs: why, as a phrase.
    Unknown(String),
}

/// Where the commands of a script run, as the judge follows it.
#[derive(Debug, Clone)]
struct At {
    dirs: Dirs,
    /// `CDPATH` may be set: a `cd NAME` may go to a directory found through it.
    cdpath: bool,
    /// A `cd` was followed, so `cd -` returns to a directory already counted.
    moved: bool,
}

impl At {
    fn start(root: &Path, start: &Start) -> At {
        let dir = match start.dir.as_deref() {
            Some(dir) => normal(&root.join(dir)),
            None => root.to_path_buf(),
        };
        At { dirs: Dirs::Known(vec![dir]), cdpath: start.cdpath, moved: false }
    }

    fn unknown(&mut self, why: String) {
        self.dirs = Dirs::Unknown(why);
    }

    /// The directories after a change to `target` that may or may not happen (`also`), or that
    /// happens when what follows runs at all (`env -C`).
    fn change(&mut self, target: &str, physical: bool, also: bool, open: bool) {
        if open || target.starts_with('~') || target.is_empty() {
            return self.unknown(format!(
                "`{target}` is a directory the shell would expand before it changes to it"
            ));
        }
        let searched = !target.starts_with('/') && !matches!(target.split('/').next(), Some("." | ".."));
        if searched && self.cdpath {
            return self.unknown(format!(
                "with `CDPATH` set, a change to `{target}` may go to any directory of that name"
            ));
        }
        let Dirs::Known(dirs) = &self.dirs else { return };
        let mut all = if also { dirs.clone() } else { Vec::new() };
        for dir in dirs {
            let joined = dir.join(target);
            let next = match physical.then(|| joined.canonicalize().ok()).flatten() {
                Some(real) => real,
                None => normal(&joined),
            };
            if !all.contains(&next) {
                all.push(next);
            }
        }
        self.moved = true;
        if all.len() > MAX_DIRS {
            return self
                .unknown(format!("more than {MAX_DIRS} directories its changes of directory may lead to"));
        }
        self.dirs = Dirs::Known(all);
    }

    /// Follows what `simple`, run by the shell itself, does to its directory.
    fn after(&mut self, simple: &Simple) {
        let mut words: &[String] = &simple.words;
        // `builtin cd` and `command [-p] cd` are the shell's own `cd`.
        loop {
            match words.first().map(String::as_str) {
                Some("builtin") => words = &words[1..],
                Some("command") => {
                    words = &words[1..];
                    while words.first().is_some_and(|w| w == "-p" || w == "--") {
                        words = &words[1..];
                    }
                }
                _ => break,
            }
        }
        let Some(first) = words.first() else { return };
        let changer = matches!(first.as_str(), "cd" | "pushd" | "popd" | "chdir");
        if simple.unknown.is_some() || EVALUATORS.contains(&first.as_str()) {
            if changer || !plain_program(first) {
                self.unknown(format!(
                    "`{}` may change the directory in a way this judge does not follow",
                    simple.text
                ));
            }
            return;
        }
        if !changer {
            return;
        }
        let mut physical = false;
        let mut options = true;
        let mut targets = Vec::new();
        for arg in &words[1..] {
            if options && arg == "--" {
                options = false;
            } else if options
                && arg.len() > 1
                && arg.starts_with('-')
                && !arg[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                physical |= arg.contains('P');
            } else {
                targets.push(arg.as_str());
            }
        }
        let stack =
            |t: &str| t.len() > 1 && t.starts_with(['+', '-']) && t[1..].bytes().all(|b| b.is_ascii_digit());
        match (first.as_str(), targets.first().copied()) {
            // Back to a directory on the stack, which was counted when it was left.
            ("popd", _) | ("pushd", None) => {}
            ("pushd", Some(t)) if stack(t) => {}
            (_, Some("-")) if self.moved => {}
            (_, Some("-")) => self
                .unknown("`cd -` returns to `$OLDPWD`, which is not known before the script runs".to_owned()),
            (_, None) => self.unknown("`cd` without a directory goes to `$HOME`".to_owned()),
            (_, Some(target)) => self.change(target, physical, true, simple.open),
        }
    }
}

/// `path` (absolute) with `.` and `..` resolved as written, as the shell's logical `cd` does.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `word` names a program plainly: no expansion, no keyword, nothing that runs text.
fn plain_program(word: &str) -> bool {
    !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "_.+-/".contains(c))
        && !EVALUATORS.contains(&word)
        && !shell::COMPOUND.contains(&word)
}

/// The answer for one command: outcome, deciding rule, reason.
pub type Verdict = (Outcome, Option<Location>, String);

/// Shells whose `-c` argument is a script.
const SHELLS: &[&str] = &[
    "sh", "bash", "rbash", "dash", "zsh", "ksh", "ksh93", "pdksh", "oksh", "ash", "mksh", "posh", "yash",
    "fish", "csh", "tcsh",
];

/// Programs whose arguments are a script the shell would run again.
const EVALUATORS: [&str; 5] = ["eval", "source", ".", "alias", "trap"];

/// Long options and the short ones they mean, per program (`*` for every program without an
/// entry of its own).
pub const LONG_TO_SHORT: &[(&str, &str, &str)] = &[
    ("rm", "--recursive", "-r"),
    ("rm", "-R", "-r"),
    ("rm", "--force", "-f"),
    ("rm", "--dir", "-d"),
    ("cp", "--recursive", "-r"),
    ("cp", "-R", "-r"),
    ("cp", "--force", "-f"),
    ("mv", "--force", "-f"),
    ("chmod", "--recursive", "-R"),
    ("chown", "--recursive", "-R"),
    ("chgrp", "--recursive", "-R"),
    ("git", "--force", "-f"),
    ("git", "--force-with-lease", "-f"),
    ("git", "--delete", "-d"),
    ("git", "--all", "-a"),
    ("curl", "--output", "-o"),
    ("curl", "--insecure", "-k"),
    ("curl", "--location", "-L"),
    ("curl", "--data", "-d"),
    ("curl", "--upload-file", "-T"),
    ("curl", "--request", "-X"),
    ("*", "--force", "-f"),
    ("*", "--recursive", "-r"),
];

/// Environment variables that change what a program executes.
pub const RISKY_ENV: &[&str] = &[
    "PATH",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "SHELL",
    "ZDOTDIR",
    "HOME",
    "XDG_CONFIG_HOME",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "RUSTC",
    "RUSTDOC",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "BROWSER",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "GCONV_PATH",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKEFILES",
    "GOFLAGS",
    "GOENV",
    "GOTOOLCHAIN",
    "GOROOT",
    "CC",
    "CXX",
    "CPP",
    "LD",
    "AR",
    "GEM_PATH",
    "GEM_HOME",
    "BUNDLE_GEMFILE",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
    "MAVEN_OPTS",
    "GRADLE_OPTS",
    "TCLLIBPATH",
    "R_PROFILE",
    "R_PROFILE_USER",
    "R_ENVIRON",
    "R_ENVIRON_USER",
    "R_LIBS",
    "R_LIBS_USER",
    "R_LIBS_SITE",
    // Options and configuration files that name programs to run.
    "TAR_OPTIONS",
    "RSYNC_RSH",
    "RSYNC_CONNECT_PROG",
    "CVS_RSH",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "XDG_CONFIG_DIRS",
    "GNUPGHOME",
    "KUBECONFIG",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "DOCKER_CONFIG",
    "HGRCPATH",
    "HGEDITOR",
    "SVN_EDITOR",
    "SUDO_EDITOR",
    "SYSTEMD_EDITOR",
    "SYSTEMD_PAGER",
    "FCEDIT",
    "VIMINIT",
    "EXINIT",
    "MYVIMRC",
    "VIMRUNTIME",
    "FPATH",
    "MAKE",
    "MAKESHELL",
    // Compilers and toolchains: which one runs, and what it loads.
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "JAVA_HOME",
    "MAVEN_ARGS",
    "M2_HOME",
    "SBT_OPTS",
    "ANT_OPTS",
    "ANT_HOME",
];

/// Prefixes of environment variables that change what a program executes.
pub const RISKY_ENV_PREFIXES: &[&str] = &[
    "GIT_",
    "LD_",
    "DYLD_",
    "PYTHON",
    "BASH_FUNC_",
    "CARGO_",
    "RUSTC_",
    "NPM_CONFIG_",
    "LUA_PATH",
    "LUA_CPATH",
    "LUA_INIT",
    "CGO_",
    "PIP_",
    "SSH_ASKPASS",
    "PERL",
    "RUBY",
    "NODE_",
    // Version managers and their shims: which toolchain a bare `cargo`, `python` or `node` is.
    "RUSTUP_",
    "PYENV_",
    "RBENV_",
    "NODENV_",
    "GOENV_",
    "JENV_",
    "ASDF_",
    "MISE_",
    "RTX_",
    "NVM_",
    "FNM_",
    "VOLTA_",
    "SDKMAN_",
    "COREPACK_",
    // Package managers and build tools whose variables name programs, plugins or init scripts.
    "UV_",
    "POETRY_",
    "PIPX_",
    "CONDA",
    "MAMBA_",
    "YARN_",
    "PNPM_",
    "BUNDLE_",
    "GEM_",
    "GRADLE_",
    "PYTEST_",
    "CMAKE_",
    "CCACHE_",
    "TF_CLI_",
    "ERL_",
    "ELIXIR_ERL_OPTIONS",
    "DOTNET_",
    "CORECLR_",
    "COMPLUS_",
];

/// Variables under a risky prefix that only say who, how loud or how to encode.
const HARMLESS_ENV: &[&str] = &[
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "GIT_TERMINAL_PROMPT",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONIOENCODING",
    "PYTHONHASHSEED",
    "CARGO_TERM_COLOR",
    "CARGO_INCREMENTAL",
    "CARGO_TERM_VERBOSE",
    "NODE_ENV",
    "DOTNET_CLI_TELEMETRY_OPTOUT",
    "DOTNET_NOLOGO",
];

/// Whether setting `name` can change what a program executes.
pub fn risky_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if HARMLESS_ENV.contains(&upper.as_str()) {
        return false;
    }
    RISKY_ENV.contains(&upper.as_str()) || RISKY_ENV_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// What would run.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// A program with known words.
    Run(Run),
    /// Something whose words cannot be known before it runs; `shell` is the `sh -c` whose
    /// script it is in, which an allow rule naming `sh -c` allows unjudged.
    Unknown { text: String, why: String, shell: Option<Rc<Run>> },
    /// A variable set for what runs.
    Env { name: String, value: String },
    /// A file a shell redirection writes, relative to where it runs.
    Write { path: String, dirs: Dirs },
}

#[derive(Debug, Clone, PartialEq)]
struct Run {
    words: Vec<String>,
    /// More arguments come from elsewhere (`xargs`' input, a glob).
    open: bool,
    /// Whether an `allow` pattern must match it: not for a shell whose script is judged instead.
    needs_allow: bool,
    /// The flag with which an interpreter is given inline code.
    inline: Option<String>,
    /// Where it runs: a program written as a relative path is found from there.
    dirs: Dirs,
}

fn base(word: &str) -> &str {
    Path::new(word).file_name().and_then(|n| n.to_str()).unwrap_or(word)
}

fn items_of_script(script: &str, depth: usize, at: &At, out: &mut Vec<Item>) {
    let mut at = at.clone();
    // A script that names `CDPATH` may set it for its own `cd`s.
    at.cdpath |= script.contains("CDPATH");
    for simple in shell::split(script) {
        items_of_simple(&simple, depth, &at, out);
        at.after(&simple);
    }
}

fn items_of_simple(simple: &Simple, depth: usize, at: &At, out: &mut Vec<Item>) {
    for (name, value) in &simple.assigns {
        out.push(Item::Env { name: name.clone(), value: value.clone() });
    }
    for path in &simple.writes {
        out.push(Item::Write { path: path.clone(), dirs: at.dirs.clone() });
    }
    if let Some(why) = &simple.unknown {
        out.push(Item::Unknown { text: simple.text.clone(), why: why.clone(), shell: None });
        return;
    }
    if simple.words.is_empty() {
        return;
    }
    items_of_argv(&simple.words, simple.open, simple.fed, depth, at, out);
}

/// Skips the options of a wrapper: `values` take the next word (or a glued value), `--` ends
/// them. The index of the first word that is not an option.
fn skip_options(args: &[String], from: usize, values: &[&str]) -> usize {
    let mut i = from;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            return i + 1;
        }
        if !arg.starts_with('-') || arg == "-" {
            return i;
        }
        // `--user root` and `-u root` take the next word; `--user=root` and `-uroot` do not.
        let separate = if arg.starts_with("--") {
            !arg.contains('=') && values.contains(&arg.as_str())
        } else {
            values.contains(&arg.as_str())
        };
        i += if separate { 2 } else { 1 };
    }
    i
}

/// How an interpreter is given code on its command line.
struct Inline {
    /// Short options that take code: `-c CODE`, `-cCODE`, `-xc CODE`.
    code: &'static str,
    /// Short options that take a value (the rest of the word or the next word).
    value: &'static str,
    /// Long options that take code: `--eval CODE`, `--eval=CODE`.
    long_code: &'static [&'static str],
    /// Long options that take the next word as a value.
    long_value: &'static [&'static str],
    /// Whether a first word that is not an option is the code (awk's program).
    first_word: bool,
}

fn inline_spec(name: &str) -> Option<Inline> {
    let python = name.starts_with("python") || name.starts_with("pypy");
    let spec =
        |code, value, long_code, long_value| Inline { code, value, long_code, long_value, first_word: false };
    Some(if python {
        spec("c", "WXmQ", &[], &["--check-hash-based-pycs"])
    } else {
        match name {
            "node" | "nodejs" | "bun" => {
                spec("epr", "", &["--eval", "--print", "--require", "--import", "--loader"], &["--title"])
            }
            "perl" => spec("eE", "MmIxCdDi", &[], &[]),
            "ruby" => spec("erE", "IKCFx", &["--require"], &[]),
            "php" => spec("rRBEF", "cdz", &[], &[]),
            "lua" | "luajit" => spec("el", "", &[], &[]),
            "Rscript" | "osascript" | "julia" | "tclsh" | "wish" => spec("e", "", &["--eval"], &[]),
            "pwsh" | "powershell" => spec("cC", "", &["-command", "-Command", "-encodedcommand"], &[]),
            "vim" | "nvim" | "vi" | "ex" | "view" => spec("cS", "", &["--cmd"], &[]),
            "gdb" => {
                spec("", "", &["-ex", "--ex", "-eval-command", "--eval-command", "-x", "--command"], &[])
            }
            "deno" => spec("", "", &["eval"], &[]),
            "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => Inline {
                code: "e",
                value: "fvFWE",
                long_code: &["--source"],
                long_value: &["--file", "--assign", "--field-separator"],
                first_word: true,
            },
            _ => return None,
        }
    })
}

/// The inline-code flag an interpreter is given, when it is: `-` when it reads its code from
/// standard input (`fed`, or nothing after the options).
fn inline_flag(program: &str, args: &[String], fed: bool) -> Option<String> {
    let name = base(program);
    if matches!(name, "sed" | "gsed") {
        return sed_runs_commands(args).then(|| "e".to_owned());
    }
    let spec = inline_spec(name)?;
    let mut i = 0;
    let mut from_file = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "-" {
            return Some("-".to_owned());
        }
        if arg == "--" {
            break;
        }
        if arg.starts_with("--")
            || (arg.starts_with('-') && spec.long_code.iter().any(|l| !l.starts_with("--") && l == arg))
        {
            let flag = arg.split_once('=').map_or(arg.as_str(), |(n, _)| n);
            if spec.long_code.contains(&flag) {
                return Some(flag.to_owned());
            }
            from_file |= flag == "--file";
            if spec.long_value.contains(&flag) && !arg.contains('=') {
                i += 1;
            }
            continue;
        }
        if let Some(cluster) = arg.strip_prefix('-') {
            for (at, c) in cluster.char_indices() {
                if spec.code.contains(c) {
                    return Some(format!("-{c}"));
                }
                if spec.value.contains(c) {
                    from_file |= c == 'f';
                    if at + c.len_utf8() == cluster.len() {
                        i += 1;
                    }
                    break;
                }
            }
            continue;
        }
        // The script or program.
        return (spec.first_word && !from_file).then(|| "--source".to_owned());
    }
    if spec.first_word {
        return (!from_file && i < args.len()).then(|| "--source".to_owned());
    }
    if i < args.len() {
        // The script follows `--`.
        return None;
    }
    (fed || args.is_empty() || args.last().is_some_and(|a| a == "--")).then(|| "-".to_owned())
}

/// Whether a `sed` script runs commands: the `e` command or the `e` flag of `s`.
fn sed_runs_commands(args: &[String]) -> bool {
    let mut scripts: Vec<&str> = Vec::new();
    let mut i = 0;
    let mut explicit = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "-e" || arg == "--expression" {
            explicit = true;
            scripts.extend(args.get(i).map(String::as_str));
            i += 1;
        } else if let Some(script) = arg.strip_prefix("--expression=") {
            explicit = true;
            scripts.push(script);
        } else if arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 1 {
            if let Some(at) = arg.find('e') {
                explicit = true;
                let rest = &arg[at + 1..];
                if rest.is_empty() {
                    scripts.extend(args.get(i).map(String::as_str));
                    i += 1;
                } else {
                    scripts.push(rest);
                }
            }
        } else if !arg.starts_with('-') && !explicit {
            scripts.push(arg);
            break;
        }
    }
    scripts.iter().any(|script| {
        script.split([';', '\n', '{', '}']).any(|command| {
            // Past the address: line numbers, `$`, `,`, `!`, `~`, and `/regex/`.
            let mut rest = command.trim_start();
            loop {
                let trimmed = rest.trim_start_matches(|c: char| c.is_ascii_digit() || "$,!~+ \t".contains(c));
                if let Some(regex) = trimmed.strip_prefix('/') {
                    rest = regex.split_once('/').map_or("", |(_, r)| r);
                } else {
                    rest = trimmed;
                    break;
                }
            }
            if rest.starts_with('e') {
                return true;
            }
            let Some(body) = rest.strip_prefix('s') else { return false };
            let Some(delimiter) = body.chars().next() else { return false };
            let parts: Vec<&str> = body[delimiter.len_utf8()..].split(delimiter).collect();
            parts.len() >= 3 && parts[2].contains('e')
        })
    })
}

fn items_of_argv(words: &[String], open: bool, fed: bool, depth: usize, at: &At, out: &mut Vec<Item>) {
    let Some(program) = words.first() else { return };
    let text = words.join(" ");
    if depth > MAX_DEPTH {
        out.push(Item::Unknown {
            text,
            why: format!("wrappers and shells nested more than {MAX_DEPTH} deep"),
            shell: None,
        });
        return;
    }
    let name = base(program);
    let run = |needs_allow: bool| Run {
        words: words.to_vec(),
        open,
        needs_allow,
        inline: None,
        dirs: at.dirs.clone(),
    };
    if EVALUATORS.contains(&name) {
        out.push(Item::Unknown { text, why: format!("`{name}` runs text as a script"), shell: None });
        return;
    }
    if SHELLS.contains(&name) {
        let mut i = 1;
        let mut script_flag = false;
        while let Some(arg) = words.get(i) {
            if arg == "--" || arg == "-" {
                i += 1;
                break;
            }
            if arg == "--command" {
                script_flag = true;
                i += 1;
                continue;
            }
            if matches!(arg.as_str(), "--rcfile" | "--init-file") {
                i += 2;
                continue;
            }
            if arg.starts_with("--") {
                i += 1;
                continue;
            }
            if arg.starts_with('-') || arg.starts_with('+') {
                script_flag |= arg.contains('c');
                // `-o NAME` and `-O NAME` take the next word.
                i += if arg.contains(['o', 'O']) { 2 } else { 1 };
                continue;
            }
            break;
        }
        if script_flag {
            out.push(Item::Run(run(false)));
            match words.get(i) {
                Some(script) => {
                    let mut inner = Vec::new();
                    items_of_script(script, depth + 1, at, &mut inner);
                    let this = Rc::new(Run { inline: Some("-c".to_owned()), ..run(true) });
                    for item in &mut inner {
                        if let Item::Unknown { shell: shell @ None, .. } = item {
                            *shell = Some(Rc::clone(&this));
                        }
                    }
                    out.extend(inner);
                }
                None => out.push(Item::Unknown {
                    text,
                    why: "a shell `-c` without its script".to_owned(),
                    shell: None,
                }),
            }
        } else if i >= words.len() || fed {
            out.push(Item::Unknown {
                text,
                why: "a shell reading its script from standard input".to_owned(),
                shell: None,
            });
        } else {
            out.push(Item::Run(run(true)));
        }
        return;
    }
    if let Some(flag) = inline_flag(program, &words[1..], fed) {
        out.push(Item::Run(Run { inline: Some(flag), ..run(true) }));
        return;
    }
    let mut inner_open = open;
    let mut inner_at = at.clone();
    let inner: Option<usize> = match name {
        "env" => {
            let mut i = 1;
            let mut options = true;
            while let Some(arg) = words.get(i) {
                match arg.as_str() {
                    // `env -C DIR` runs the command in DIR, or not at all.
                    "-C" | "--chdir" if options => {
                        inner_at.change(words.get(i + 1).map_or("", String::as_str), false, false, open);
                        i += 2;
                    }
                    a if options && a.starts_with("--chdir=") => {
                        inner_at.change(&a["--chdir=".len()..], false, false, open);
                        i += 1;
                    }
                    // `env -` is `env -i`; after `--` come assignments, then the command.
                    "-" if options => i += 1,
                    "--" if options => {
                        options = false;
                        i += 1;
                    }
                    _ if !options && !arg.contains('=') => break,
                    // Taking a variable away changes what runs as setting it does (`HOME`).
                    "-u" | "--unset" if options => {
                        let name = words.get(i + 1).cloned().unwrap_or_default();
                        out.push(Item::Env { name, value: String::new() });
                        i += 2;
                    }
                    a if options && a.starts_with("--unset=") => {
                        out.push(Item::Env { name: a["--unset=".len()..].to_owned(), value: String::new() });
                        i += 1;
                    }
                    "-S" | "--split-string" => {
                        // The rest of the line is this string, split into words.
                        let rest: Vec<String> = words[i + 2..].to_vec();
                        out.push(Item::Run(run(true)));
                        let split = words.get(i + 1).cloned().unwrap_or_default();
                        let mut line = split;
                        for word in rest {
                            line.push(' ');
                            line.push_str(&shell_quote(&word));
                        }
                        items_of_script(&line, depth + 1, &inner_at, out);
                        return;
                    }
                    "-P" => {
                        out.push(Item::Unknown {
                            text,
                            why: "`env -P` changes where programs are found".to_owned(),
                            shell: None,
                        });
                        return;
                    }
                    a if a.starts_with("-S") || a.starts_with("--split-string=") => {
                        let split = a.trim_start_matches("--split-string=").trim_start_matches("-S");
                        out.push(Item::Run(run(true)));
                        let mut line = split.to_owned();
                        for word in &words[i + 1..] {
                            line.push(' ');
                            line.push_str(&shell_quote(word));
                        }
                        items_of_script(&line, depth + 1, &inner_at, out);
                        return;
                    }
                    a if a.starts_with('-')
                        && !a.starts_with("--")
                        && a.len() > 2
                        && a.contains(['S', 'P', 'u', 'C']) =>
                    {
                        // A cluster: `-iS…` splits the rest of the word (or the next word),
                        // `-iu NAME` and `-iC DIR` take the next word.
                        let at = a.find(['S', 'P', 'u', 'C']).unwrap_or(1);
                        let rest = &a[at + 1..];
                        match &a[at..=at] {
                            "S" => {
                                out.push(Item::Run(run(true)));
                                let mut line = if rest.is_empty() {
                                    i += 1;
                                    words.get(i).cloned().unwrap_or_default()
                                } else {
                                    rest.to_owned()
                                };
                                for word in &words[(i + 1).min(words.len())..] {
                                    line.push(' ');
                                    line.push_str(&shell_quote(word));
                                }
                                items_of_script(&line, depth + 1, &inner_at, out);
                                return;
                            }
                            "P" => {
                                out.push(Item::Unknown {
                                    text,
                                    why: "`env -P` changes where programs are found".to_owned(),
                                    shell: None,
                                });
                                return;
                            }
                            letter => {
                                if letter == "u" {
                                    let name = if rest.is_empty() {
                                        words.get(i + 1).cloned().unwrap_or_default()
                                    } else {
                                        rest.to_owned()
                                    };
                                    out.push(Item::Env { name, value: String::new() });
                                }
                                if letter == "C" {
                                    let dir = if rest.is_empty() {
                                        words.get(i + 1).map_or("", String::as_str)
                                    } else {
                                        rest
                                    };
                                    inner_at.change(dir, false, false, open);
                                }
                                i += if rest.is_empty() { 2 } else { 1 }
                            }
                        }
                    }
                    a if a.starts_with('-') && a != "-" && options => i += 1,
                    a if a.split_once('=').is_some_and(|(n, _)| !n.is_empty()) => {
                        let (n, v) = a.split_once('=').unwrap_or_default();
                        out.push(Item::Env { name: n.to_owned(), value: v.to_owned() });
                        i += 1;
                    }
                    _ => break,
                }
            }
            Some(i)
        }
        "sudo" => {
            let i = skip_options(
                words,
                1,
                &[
                    "-u",
                    "-g",
                    "-C",
                    "-D",
                    "-h",
                    "-p",
                    "-r",
                    "-t",
                    "-T",
                    "-U",
                    "--user",
                    "--group",
                    "--close-from",
                    "--chdir",
                    "--host",
                    "--prompt",
                    "--role",
                    "--type",
                    "--command-timeout",
                    "--other-user",
                ],
            );
            let mut i = i;
            while let Some((n, v)) = words.get(i).and_then(|a| a.split_once('=')) {
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                out.push(Item::Env { name: n.to_owned(), value: v.to_owned() });
                i += 1;
            }
            Some(i)
        }
        "doas" => Some(skip_options(words, 1, &["-u", "-C"])),
        "nice" => Some(skip_options(words, 1, &["-n", "--adjustment"])),
        "nohup" | "setsid" | "builtin" => Some(skip_options(words, 1, &[])),
        "command" => Some(skip_options(words, 1, &[])),
        "exec" => Some(skip_options(words, 1, &["-a"])),
        "stdbuf" => Some(skip_options(words, 1, &["-i", "-o", "-e", "--input", "--output", "--error"])),
        "time" => Some(skip_options(words, 1, &["-f", "-o", "--format", "--output"])),
        "ionice" => Some(skip_options(words, 1, &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"])),
        "timeout" => {
            let i = skip_options(words, 1, &["-s", "-k", "--signal", "--kill-after"]);
            // The duration, then the command.
            Some(i + 1)
        }
        "xargs" => {
            inner_open = true;
            let i = skip_options(
                words,
                1,
                &[
                    "-a",
                    "-d",
                    "-E",
                    "-I",
                    "-L",
                    "-n",
                    "-P",
                    "-s",
                    "--arg-file",
                    "--delimiter",
                    "--eof",
                    "--max-lines",
                    "--max-args",
                    "--max-procs",
                    "--max-chars",
                    "--replace",
                    "--process-slot-var",
                ],
            );
            if i >= words.len() {
                // `xargs` alone runs `echo` with its input.
                None
            } else {
                Some(i)
            }
        }
        "git" => {
            let mut i = 1;
            let mut inline = None;
            while let Some(arg) = words.get(i) {
                let config = if arg == "-c" || arg == "--config-env" {
                    i += 1;
                    words.get(i).map(String::as_str)
                } else {
                    arg.strip_prefix("-c").or_else(|| arg.strip_prefix("--config-env="))
                };
                if !arg.starts_with('-') {
                    break;
                }
                i += 1;
                let Some((key, value)) = config.and_then(|c| c.split_once('=')) else { continue };
                let key = key.to_ascii_lowercase();
                // An alias starting with `!` is a shell script; `core.*` names programs git runs.
                if key.starts_with("alias.") || key.starts_with("core.") || arg.starts_with("--config-env") {
                    inline = Some("-c".to_owned());
                }
                if key.starts_with("alias.")
                    && let Some(script) = value.strip_prefix('!')
                {
                    items_of_script(script, depth + 1, at, out);
                }
            }
            out.push(Item::Run(Run { inline, ..run(true) }));
            return;
        }
        "script" => {
            // `script -c CMD` runs CMD in a shell.
            let mut script = None;
            for (at, word) in words.iter().enumerate().skip(1) {
                if word == "--command"
                    || (word.starts_with('-') && !word.starts_with("--") && word.ends_with('c'))
                {
                    script = words.get(at + 1).cloned();
                } else if let Some(s) = word.strip_prefix("--command=") {
                    script = Some(s.to_owned());
                }
            }
            out.push(Item::Run(Run { inline: script.as_ref().map(|_| "-c".to_owned()), ..run(true) }));
            if let Some(script) = script {
                items_of_script(&script, depth + 1, at, out);
            }
            return;
        }
        "find" => {
            // Each `-exec`, `-execdir`, `-ok` and `-okdir` runs the words up to `;` or `+`.
            out.push(Item::Run(run(true)));
            let mut word = 1;
            while word < words.len() {
                if matches!(words[word].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let end = words[word + 1..]
                        .iter()
                        .position(|w| w == ";" || w == "+")
                        .map_or(words.len(), |e| word + 1 + e);
                    // `-execdir` runs it in each found file's directory.
                    let mut each = inner_at.clone();
                    if words[word].ends_with("dir") {
                        each.unknown(
                            "`find -execdir` runs it in the directory of each file found".to_owned(),
                        );
                    }
                    items_of_argv(&words[word + 1..end], true, fed, depth + 1, &each, out);
                    word = end;
                }
                word += 1;
            }
            return;
        }
        "busybox" => words.get(1).filter(|a| !a.starts_with('-')).map(|_| 1),
        "su" => {
            // `su [-] [USER] -c SCRIPT`: the script runs in the user's shell.
            let flag = words.iter().position(|w| w == "-c" || w == "--command");
            let glued = words.iter().find_map(|w| w.strip_prefix("--command="));
            out.push(Item::Run(run(true)));
            match (flag.and_then(|f| words.get(f + 1)), glued) {
                (Some(script), _) => items_of_script(script, depth + 1, at, out),
                (None, Some(script)) => items_of_script(script, depth + 1, at, out),
                (None, None) => {}
            }
            return;
        }
        _ => None,
    };
    out.push(Item::Run(run(true)));
    if let Some(i) = inner
        && i < words.len()
    {
        items_of_argv(&words[i..], inner_open, fed, depth + 1, &inner_at, out);
    }
}

/// `word` quoted for a shell, when it needs it.
fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// A command's arguments as flags (normalised) and other words (in order).
fn normalise(program: &str, args: &[String]) -> (BTreeSet<String>, Vec<String>) {
    let program = base(program);
    // GNU tools take any unambiguous prefix of at least two letters: `--fo` is `--force`.
    let abbreviates = |flag: &str, long: &str| flag == long || (flag.len() >= 4 && long.starts_with(flag));
    let canon = |flag: &str| -> String {
        let exact = |p: &str| LONG_TO_SHORT.iter().find(|(q, long, _)| *q == p && *long == flag);
        let prefix = |p: &str| {
            let mut found = LONG_TO_SHORT.iter().filter(|(q, long, _)| *q == p && abbreviates(flag, long));
            match (found.next(), found.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        };
        exact(program)
            .or_else(|| exact("*"))
            .or_else(|| prefix(program))
            .or_else(|| prefix("*"))
            .map_or_else(|| flag.to_owned(), |(_, _, short)| (*short).to_owned())
    };
    let mut flags = BTreeSet::new();
    let mut plain = Vec::new();
    let mut positional = false;
    for arg in args {
        if positional || arg == "-" || !arg.starts_with('-') {
            plain.push(arg.clone());
        } else if arg == "--" {
            positional = true;
        } else if let Some(long) = arg.strip_prefix("--") {
            let name = long.split_once('=').map_or(long, |(n, _)| n);
            flags.insert(canon(&format!("--{name}")));
        } else if arg.len() > 2 && arg[1..].chars().all(|c| c.is_ascii_alphanumeric()) {
            for c in arg[1..].chars() {
                flags.insert(canon(&format!("-{c}")));
            }
        } else {
            flags.insert(canon(arg));
        }
    }
    // `git push origin +main` forces like `--force`.
    if program == "git"
        && let Some(push) = plain.iter().position(|w| w == "push")
        && plain[push + 1..].iter().any(|w| w.starts_with('+'))
    {
        flags.insert("-f".to_owned());
    }
    (flags, plain)
}

/// Whether `needle` appears in order within `hay`.
fn subsequence(needle: &[String], hay: &[String]) -> bool {
    let mut hay = hay.iter();
    needle.iter().all(|n| hay.any(|h| h == n))
}

/// Where a program would be found.
#[derive(Debug, PartialEq)]
enum Found {
    /// Outside the workspace, at this real path.
    Outside(PathBuf),
    /// Inside the workspace, or relative to the step's directory.
    Inside,
    /// Nowhere on `PATH`, and no `PATH` directory is in the workspace.
    Nowhere,
}

fn executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    path.is_file()
}

/// Resolves `program` as the step will: a path as written (relative to the workspace), a bare
/// name through `PATH`.
fn locate(root: &Path, program: &str) -> Found {
    let inside = |real: PathBuf| if real.starts_with(root) { Found::Inside } else { Found::Outside(real) };
    if program.contains('/') {
        // A path is the step's (relative to the workspace); a link living in the workspace is
        // the workspace's whatever it points to.
        let written = root.join(program);
        let parent = written.parent().and_then(|p| p.canonicalize().ok());
        if !Path::new(program).is_absolute() || parent.is_some_and(|p| p.starts_with(root)) {
            return Found::Inside;
        }
        return match written.canonicalize() {
            Ok(real) => inside(real),
            Err(_) => Found::Nowhere,
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut workspace_on_path = false;
    for dir in std::env::split_paths(&path) {
        let relative = dir.as_os_str().is_empty() || dir.is_relative();
        let in_workspace = relative || dir.canonicalize().is_ok_and(|d| d.starts_with(root));
        workspace_on_path |= in_workspace;
        let candidate = dir.join(program);
        if executable(&candidate) {
            if in_workspace {
                return Found::Inside;
            }
            return match candidate.canonicalize() {
                Ok(real) => inside(real),
                Err(_) => Found::Inside,
            };
        }
    }
    if workspace_on_path { Found::Inside } else { Found::Nowhere }
}

/// The real file `program` runs from `dir`, every link followed: a path as written (relative to
/// `dir`), a bare name through `PATH` (whose relative entries are relative to `dir` too).
fn resolve(dir: &Path, program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return dir.join(program).canonicalize().ok();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|entry| dir.join(entry).join(program))
        .find(|candidate| executable(candidate))
        .and_then(|candidate| candidate.canonicalize().ok())
}

/// How many later words a glob pattern is tried at, besides the program.
const GLOB_STARTS: usize = 8;

/// Whether a `deny` or `approve` pattern matches `run` at any of its words.
///
/// The work stays linear in the words: a glob is tried at the program and at the first
/// [`GLOB_STARTS`] words that begin as the pattern does; a word pattern only at the first word
/// naming its program (a match at a later one is a match there too).
fn matches_loosely(rule: &Rule, run: &Run, dir: &Path) -> bool {
    let words = &run.words;
    match &rule.matcher {
        Matcher::Glob { folded, .. } => {
            let first = rule.pattern.split_whitespace().next().unwrap_or("");
            let literal = &first[..first.find(['*', '?', '[', '{']).unwrap_or(first.len())];
            let starts = (1..words.len())
                .filter(|&i| {
                    !literal.is_empty()
                        && (base(&words[i]).starts_with(literal) || words[i].starts_with(literal))
                })
                .take(GLOB_STARTS);
            std::iter::once(0).chain(starts).filter(|&i| i < words.len()).any(|i| {
                let line = words[i..].join(" ");
                let mut based = words[i..].to_vec();
                based[0] = base(&based[0]).to_owned();
                if folded.is_match(&line) || folded.is_match(&based.join(" ")) {
                    return true;
                }
                // Arguments still to come could complete the pattern: the program is enough.
                run.open && (first == base(&words[i]) || first == words[i])
            })
        }
        Matcher::Words(pattern) => {
            let Some((program, rest)) = pattern.split_first() else { return false };
            if program.contains('=') {
                return false;
            }
            let Some(i) = (0..words.len()).find(|&i| {
                let word = &words[i];
                word == program
                    || base(word) == program
                    || (i == 0
                        && resolve(dir, word).is_some_and(|real| {
                            base(&real.to_string_lossy()) == program || real == Path::new(program)
                        }))
            }) else {
                return false;
            };
            let (rule_flags, rule_plain) = normalise(program, rest);
            let (flags, plain) = normalise(program, &words[i + 1..]);
            // A long rule flag is matched by its abbreviations too.
            let has = |flag: &String| {
                flags.contains(flag)
                    || (flag.starts_with("--")
                        && flags
                            .iter()
                            .any(|f| f.starts_with("--") && f.len() >= 4 && flag.starts_with(f.as_str())))
            };
            run.open || (rule_flags.iter().all(has) && subsequence(&rule_plain, &plain))
        }
    }
}

/// Whether an `allow` pattern matches `run` from its first word, its program being the one the
/// pattern names.
fn matches_allow(rule: &Rule, run: &Run, root: &Path) -> bool {
    let words = &run.words;
    let Some(program) = words.first() else { return false };
    if let Some(flag) = &run.inline {
        let named = match &rule.matcher {
            Matcher::Words(pattern) => pattern.iter().any(|w| w == flag),
            Matcher::Glob { .. } => rule.pattern.split_whitespace().any(|w| w == flag),
        };
        if !named {
            return false;
        }
    }
    let found = locate(root, program);
    // The program as the pattern may name it: the word as written when it resolves outside the
    // workspace (or nowhere), its file name likewise.
    let mut names: Vec<String> = Vec::new();
    match &found {
        // A path outside the workspace is named by what it resolves to, never by the name of a
        // link; a bare name found on `PATH` also by itself.
        Found::Outside(real) => {
            if !program.contains('/') {
                names.push(program.clone());
            }
            names.push(real.to_string_lossy().into_owned());
            names.push(base(&real.to_string_lossy()).to_owned());
        }
        Found::Nowhere => names.push(program.clone()),
        Found::Inside => {}
    }
    match &rule.matcher {
        Matcher::Glob { exact, .. } => names.iter().any(|name| {
            let mut line = vec![name.clone()];
            line.extend_from_slice(&words[1..]);
            exact.is_match(&line.join(" "))
        }),
        Matcher::Words(pattern) => {
            let Some((first, rest)) = pattern.split_first() else { return false };
            if first.contains('=') || words.len() < pattern.len() {
                return false;
            }
            let program_ok = if first.contains('/') {
                let named = Path::new(first).canonicalize().ok();
                matches!(&found, Found::Outside(real) if Some(real) == named.as_ref())
                    || (found == Found::Nowhere && program == first)
            } else {
                names.iter().any(|n| n == first)
            };
            program_ok && rest.iter().zip(&words[1..]).all(|(p, w)| p == w)
        }
    }
}

/// Whether a pattern names environment variables (`NAME=…`) and matches `NAME=value`.
fn matches_env(rule: &Rule, assignment: &str) -> bool {
    match &rule.matcher {
        Matcher::Glob { exact, .. } => rule.pattern.contains('=') && exact.is_match(assignment),
        Matcher::Words(pattern) => pattern.len() == 1 && pattern[0].contains('=') && pattern[0] == assignment,
    }
}

fn lists<'a>(chain: &'a [&'a Section]) -> impl Iterator<Item = &'a super::RuleList> + 'a {
    chain.iter().filter_map(|s| s.lists.get(&Category::Commands))
}

fn any_rule(chain: &[&Section]) -> Option<Location> {
    lists(chain).find_map(|l| {
        l.deny
            .first()
            .or(l.approve.first())
            .or(l.allow.as_ref().and_then(|a| a.first()))
            .map(|r| r.at.clone())
    })
}

fn has_rules(chain: &[&Section]) -> bool {
    lists(chain).any(|l| !l.deny.is_empty() || !l.approve.is_empty() || l.allow.is_some())
}

/// What to write instead of something that cannot be judged.
const WRITE_INSTEAD: &str = "write it as an argv step with every word spelled out (`run: [\"program\", \"arg\"]`), \
                             without `$`, substitutions, escapes or `eval`";

fn judge_unknown(chain: &[&Section], text: &str, why: &str, shell: Option<&Run>, root: &Path) -> Verdict {
    if text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "approve") {
        return (
            Outcome::Deny,
            None,
            format!("a run cannot answer policy approvals, and `{text}` cannot be judged ({why})"),
        );
    }
    if !has_rules(chain) {
        return (Outcome::Allow, None, "no commands rule applies".to_owned());
    }
    let said = format!("`{text}` cannot be judged before it runs: it has {why}");
    if let Some(rule) = lists(chain).find_map(|l| l.deny.first()) {
        return (
            Outcome::Deny,
            Some(rule.at.clone()),
            format!(
                "{said}, and commands deny rules such as `{}` could match it; {WRITE_INSTEAD}",
                rule.pattern
            ),
        );
    }
    if let Some(rule) = lists(chain).find_map(|l| l.approve.first()) {
        return (
            Outcome::NeedsApproval,
            Some(rule.at.clone()),
            format!(
                "{said}, and commands approve rules such as `{}` could match it: a person must allow it",
                rule.pattern
            ),
        );
    }
    if let Some(run) = shell
        && let Some(rule) =
            lists(chain).flat_map(|l| l.allow.iter().flatten()).find(|r| matches_allow(r, run, root))
    {
        return (
            Outcome::Allow,
            Some(rule.at.clone()),
            format!(
                "{said}, and commands allow rule `{}` allows this shell's scripts unjudged",
                rule.pattern
            ),
        );
    }
    (
        Outcome::Deny,
        any_rule(chain),
        format!("{said}, so no rule of the commands allow list can allow it; {WRITE_INSTEAD}"),
    )
}

fn judge_env(chain: &[&Section], name: &str, value: &str) -> Verdict {
    if !risky_env(name) {
        return (Outcome::Allow, None, "it does not change what a program executes".to_owned());
    }
    if !has_rules(chain) {
        return (Outcome::Allow, None, "no commands rule applies".to_owned());
    }
    let assignment = format!("{name}={value}");
    for list in lists(chain) {
        if let Some(rule) = list.deny.iter().find(|r| matches_env(r, &assignment)) {
            return (
                Outcome::Deny,
                Some(rule.at.clone()),
                format!("commands deny rule `{}` matches", rule.pattern),
            );
        }
    }
    for list in lists(chain) {
        if let Some(rule) = list.approve.iter().find(|r| matches_env(r, &assignment)) {
            return (
                Outcome::NeedsApproval,
                Some(rule.at.clone()),
                format!("commands approve rule `{}` matches: a person must allow it", rule.pattern),
            );
        }
        if let Some(rule) = list.allow.iter().flatten().find(|r| matches_env(r, &assignment)) {
            return (
                Outcome::Allow,
                Some(rule.at.clone()),
                format!("commands allow rule `{}` matches", rule.pattern),
            );
        }
    }
    (
        Outcome::Deny,
        any_rule(chain),
        format!(
            "the environment variable `{name}` changes what a program executes, and no commands rule allows it; \
             remove it, or allow it with a commands allow rule `{name}=*`"
        ),
    )
}

/// Judges `run` from each directory it may run in; a program written as a relative path that
/// runs from a directory not known before the script runs cannot be judged.
fn judge_run_at(chain: &[&Section], run: &Run, root: &Path) -> Verdict {
    let program = &run.words[0];
    let relative = program.contains('/') && !Path::new(program).is_absolute();
    match &run.dirs {
        Dirs::Unknown(why) if relative => judge_unknown(
            chain,
            &run.words.join(" "),
            &format!("a program path relative to a directory not known before it runs ({why})"),
            None,
            root,
        ),
        Dirs::Unknown(_) => judge_run(chain, run, root, root),
        Dirs::Known(dirs) => {
            let mut worst: Option<Verdict> = None;
            for dir in dirs {
                let verdict = judge_run(chain, run, root, dir);
                if worst.as_ref().is_none_or(|w| verdict.0 > w.0) {
                    worst = Some(verdict);
                }
            }
            worst.unwrap_or_else(|| judge_run(chain, run, root, root))
        }
    }
}

/// Judges `run` as it would run from `dir`.
fn judge_run(chain: &[&Section], run: &Run, root: &Path, dir: &Path) -> Verdict {
    let words = &run.words;
    if let Some(i) = words.iter().position(|w| base(w) == "acas")
        && (run.open || words[i + 1..].iter().any(|w| w == "approve"))
    {
        return (
            Outcome::Deny,
            None,
            "a run cannot answer policy approvals; a person answers them".to_owned(),
        );
    }
    for list in lists(chain) {
        if let Some(rule) = list.deny.iter().find(|r| matches_loosely(r, run, dir)) {
            return (
                Outcome::Deny,
                Some(rule.at.clone()),
                format!("commands deny rule `{}` matches", rule.pattern),
            );
        }
    }
    for list in lists(chain) {
        if let Some(rule) = list.approve.iter().find(|r| matches_loosely(r, run, dir)) {
            return (
                Outcome::NeedsApproval,
                Some(rule.at.clone()),
                format!("commands approve rule `{}` matches: a person must allow it", rule.pattern),
            );
        }
        if !run.needs_allow {
            if list.allow.is_some() {
                return (Outcome::Allow, None, "the shell's script is judged command by command".to_owned());
            }
            continue;
        }
        if let Some(rule) = list.allow.iter().flatten().find(|r| matches_allow(r, run, root)) {
            return (
                Outcome::Allow,
                Some(rule.at.clone()),
                format!("commands allow rule `{}` matches", rule.pattern),
            );
        }
    }
    if run.needs_allow
        && let Some(allow) = lists(chain).find_map(|l| l.allow.as_ref())
    {
        let program = &words[0];
        let why = if let Some(flag) = &run.inline {
            format!(
                "`{} {flag}` runs inline code, which only a commands allow rule naming `{flag}` allows",
                base(program)
            )
        } else if locate(root, program) == Found::Inside {
            format!(
                "`{program}` is a program inside the workspace (or found through a `PATH` directory in it), not the one an allow rule names; name its path in a rule to allow it"
            )
        } else {
            "no rule of the commands allow list matches; add one to allow it".to_owned()
        };
        return (Outcome::Deny, allow.first().map(|r| r.at.clone()), why);
    }
    (Outcome::Allow, None, "no commands rule applies".to_owned())
}

fn worst(root: &Path, chain: &[&Section], items: &[Item]) -> Verdict {
    let mut worst: Option<Verdict> = None;
    // The links the script made so far: a later write through one is judged where it leads.
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for item in items {
        let (outcome, rule, reason) = match item {
            Item::Run(run) => {
                links.extend(links_made(run));
                let (o, r, reason) = judge_run_at(chain, run, root);
                (o, r, format!("{reason} (command `{}`)", run.words.join(" ")))
            }
            Item::Unknown { text, why, shell } => judge_unknown(chain, text, why, shell.as_deref(), root),
            Item::Write { path, dirs } => {
                let (mut o, mut r, mut reason) = judge_write(root, chain, path, dirs);
                if let Dirs::Known(known) = dirs {
                    for dir in known {
                        let full = normal(&dir.join(path));
                        for (link, target) in &links {
                            let Ok(rest) = full.strip_prefix(link) else { continue };
                            let through = target.join(rest).to_string_lossy().into_owned();
                            let verdict = super::decide_path_in(root, chain, &through, true);
                            if verdict.0 > o {
                                (o, r, reason) = (
                                    verdict.0,
                                    verdict.1,
                                    format!(
                                        "{} (through the link `{}` the script makes)",
                                        verdict.2,
                                        link.display()
                                    ),
                                );
                            }
                        }
                    }
                }
                (o, r, format!("{reason} (a shell redirection writes `{path}`)"))
            }
            Item::Env { name, value } => {
                let (o, r, reason) = judge_env(chain, name, value);
                (o, r, format!("{reason} (environment `{name}`)"))
            }
        };
        if worst.as_ref().is_none_or(|w| outcome > w.0) {
            worst = Some((outcome, rule, reason));
        }
    }
    worst.unwrap_or_else(|| {
        if lists(chain).any(|l| l.allow.is_some()) {
            (
                Outcome::Deny,
                any_rule(chain),
                "an empty command; no rule of the commands allow list matches".to_owned(),
            )
        } else {
            (Outcome::Allow, None, "no commands rule applies".to_owned())
        }
    })
}

/// A file a redirection writes, from each directory the command may run in: a relative path
/// from a directory not known before it runs could be any file, and is denied.
/// The links `run` makes, each as (link, what it leads to), absolute: `ln [-s] TARGET... [LINK]`,
/// `link TARGET LINK`, `cp -s|-l`. Nothing when its directory is not known.
fn links_made(run: &Run) -> Vec<(PathBuf, PathBuf)> {
    let Some(program) = run.words.first().map(|w| base(w)) else { return Vec::new() };
    let Dirs::Known(dirs) = &run.dirs else { return Vec::new() };
    let args = &run.words[1..];
    let linking_cp = program == "cp"
        && args.iter().any(|a| {
            matches!(a.as_str(), "--symbolic-link" | "--link")
                || (a.starts_with('-') && !a.starts_with("--") && a.contains(['s', 'l']))
        });
    if !matches!(program, "ln" | "link") && !linking_cp {
        return Vec::new();
    }
    let symbolic = program != "link"
        && args.iter().any(|a| {
            a == "--symbolic"
                || a == "--symbolic-link"
                || (a.starts_with('-') && !a.starts_with("--") && a.contains('s'))
        });
    // `ln -sr TARGET LINK` takes the target from where it runs, as a hard link does.
    let relative = args
        .iter()
        .any(|a| a == "--relative" || (a.starts_with('-') && !a.starts_with("--") && a.contains('r')));
    let mut operands = Vec::new();
    let mut into: Option<&str> = None;
    let mut options = true;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "--" if options => options = false,
            "-t" | "--target-directory" if options => {
                into = args.get(i + 1).map(String::as_str);
                i += 1;
            }
            "-S" | "--suffix" if options => i += 1,
            a if options && a.starts_with("--target-directory=") => {
                into = Some(&a["--target-directory=".len()..])
            }
            a if options && a.starts_with('-') && a.len() > 1 => {}
            a => operands.push(a),
        }
        i += 1;
    }
    let mut made = Vec::new();
    for dir in dirs {
        // Where the links go, and whether that place may itself be the link (`ln T LINK`) or is
        // only a directory the links are made in (`ln T`, `ln -t DIR T...`).
        let (targets, place, itself) = match (into, operands.split_last()) {
            (Some(into), _) => (&operands[..], dir.join(into), false),
            (None, Some((last, rest))) if !rest.is_empty() => (rest, dir.join(last), true),
            (None, _) => (&operands[..], dir.clone(), false),
        };
        for target in targets {
            let Some(name) = Path::new(target).file_name() else { continue };
            let mut links = vec![normal(&place.join(name))];
            if itself {
                links.push(normal(&place));
            }
            for link in links {
                let from = if symbolic && !relative {
                    link.parent().unwrap_or(dir).to_path_buf()
                } else {
                    dir.clone()
                };
                made.push((link, normal(&from.join(target))));
            }
        }
    }
    made
}

fn judge_write(root: &Path, chain: &[&Section], path: &str, dirs: &Dirs) -> Verdict {
    if Path::new(path).is_absolute() {
        return super::decide_path_in(root, chain, path, true);
    }
    match dirs {
        Dirs::Unknown(why) => (
            Outcome::Deny,
            None,
            format!(
                "`{path}` is relative to a directory not known before the script runs ({why}), so it could be any \
                 file; write to a path from the workspace root, or change directory to a path spelled out"
            ),
        ),
        Dirs::Known(dirs) => {
            let mut worst: Option<Verdict> = None;
            for dir in dirs {
                let full = dir.join(path).to_string_lossy().into_owned();
                let verdict = super::decide_path_in(root, chain, &full, true);
                if worst.as_ref().is_none_or(|w| verdict.0 > w.0) {
                    worst = Some(verdict);
                }
            }
            worst.unwrap_or_else(|| super::decide_path_in(root, chain, path, true))
        }
    }
}

/// Judges a program run with `argv` from `start`.
pub fn decide_argv(root: &Path, chain: &[&Section], argv: &[String], start: &Start) -> Verdict {
    let mut items = Vec::new();
    items_of_argv(argv, false, false, 0, &At::start(root, start), &mut items);
    worst(root, chain, &items)
}

/// Judges a shell script run from `start`, every command of it.
pub fn decide_script(root: &Path, chain: &[&Section], script: &str, start: &Start) -> Verdict {
    let mut items = Vec::new();
    let at = At::start(root, start);
    items_of_script(script, 0, &at, &mut items);
    // A `shell:` script runs as `sh -c SCRIPT`: a rule allowing `sh -c` allows it unjudged.
    let this = Rc::new(Run {
        words: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        open: false,
        needs_allow: true,
        inline: Some("-c".to_owned()),
        dirs: at.dirs.clone(),
    });
    for item in &mut items {
        if let Item::Unknown { shell: shell @ None, .. } = item {
            *shell = Some(Rc::clone(&this));
        }
    }
    worst(root, chain, &items)
}

/// Whether judging `items` went through paths that a change made while the command waits to run
/// could redirect: a file an output redirection writes, or a program written as a path.
fn judges_paths(items: &[Item]) -> bool {
    items.iter().any(|item| match item {
        Item::Write { .. } => true,
        Item::Run(run) => run.words.first().is_some_and(|program| program.contains('/')),
        _ => false,
    })
}

/// [`judges_paths`] of an argv run from `start`.
pub fn argv_judges_paths(root: &Path, argv: &[String], start: &Start) -> bool {
    let mut items = Vec::new();
    items_of_argv(argv, false, false, 0, &At::start(root, start), &mut items);
    judges_paths(&items)
}

/// [`judges_paths`] of a shell script run from `start`.
pub fn script_judges_paths(root: &Path, script: &str, start: &Start) -> bool {
    let mut items = Vec::new();
    items_of_script(script, 0, &At::start(root, start), &mut items);
    judges_paths(&items)
}

/// Judges the environment a command runs with.
pub fn decide_env(root: &Path, chain: &[&Section], vars: &[(String, String)]) -> Verdict {
    let items: Vec<Item> =
        vars.iter().map(|(name, value)| Item::Env { name: name.clone(), value: value.clone() }).collect();
    if items.is_empty() {
        return (Outcome::Allow, None, "no environment variable is set".to_owned());
    }
    worst(root, chain, &items)
}

#[cfg(test)]
mod tests {
    use super::super::{Action, Outcome, Policy, Start, WORKSPACE_FILE};
    use super::{base, resolve};
    use std::path::Path;

    fn policy(root: &Path, yaml: &str) -> Policy {
        let file = root.join(WORKSPACE_FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, yaml).unwrap();
        Policy::load_from(root, None)
    }

    fn argv(words: &[&str]) -> Action {
        Action::Command { argv: words.iter().map(|s| s.to_string()).collect(), start: Default::default() }
    }

    fn sh(script: &str) -> Action {
        Action::Shell { script: script.to_owned(), start: Default::default() }
    }

    const DENY: &str = "defaults:\n  commands:\n    deny: [\"rm -rf\", \"curl\", \"git push --force\"]\n";

    #[test]
    fn a_write_through_a_link_the_script_makes_is_judged_where_the_link_leads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let p = policy(&root, "defaults:\n  commands:\n    allow: [\"ln\", \"cp\", \"echo\", \"cd\"]\n");
        for script in [
            "ln -s .git g; echo 'fsmonitor = x' >> g/config",
            "ln -sf .git ./g && echo x >> ./g/hooks/pre-commit",
            "ln -s ../.git sub/g; echo x >> sub/g/config",
            "ln -s -r .git sub/g; echo x >> sub/g/config",
            "cd sub && ln -s ../.git && echo x >> .git/config",
            "ln -t sub -s ../.git; echo x >> sub/.git/config",
            "ln .git/config c; echo x >> c",
            "cp -s .git/config c; echo x >> c",
            "ln -s .acas q; echo 'agents: {}' > q/policy.yaml",
        ] {
            let decision = p.decide("cli", &sh(script));
            assert_eq!(decision.outcome, Outcome::Deny, "{script}: {decision:?}");
        }
        // Writes that do not go through the link are judged as they are.
        let decision = p.decide("cli", &sh("ln -s src s; echo x > s/out; echo y > gx"));
        assert_eq!(decision.outcome, Outcome::Allow, "{decision:?}");
    }

    #[test]
    fn wrappers_and_shells_are_unwrapped() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), DENY);
        for action in [
            argv(&["env", "sh", "-c", "curl --version"]),
            argv(&["env", "-i", "FOO=1", "curl", "x"]),
            argv(&["sudo", "-u", "root", "sh", "-c", "curl x"]),
            argv(&["nice", "-n", "5", "curl", "x"]),
            argv(&["busybox", "sh", "-c", "curl x"]),
            argv(&["timeout", "-s", "KILL", "5", "curl", "x"]),
            argv(&["bash", "-c", "--", "curl --version"]),
            argv(&["bash", "-ec", "curl --version"]),
            argv(&["stdbuf", "-o", "L", "nohup", "command", "exec", "curl", "x"]),
            argv(&["env", "-S", "curl x"]),
            argv(&["su", "-", "root", "-c", "curl x"]),
            sh("time nice curl x"),
            sh("echo curl x | xargs sh -c 'curl x'"),
        ] {
            let d = p.decide("x", &action);
            assert_eq!(d.outcome, Outcome::Deny, "{action:?}: {d:?}");
        }
        assert_eq!(p.decide("x", &argv(&["env", "sh", "-c", "echo hi"])).outcome, Outcome::Allow);
    }

    #[test]
    fn what_the_shell_would_change_cannot_be_judged() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), DENY);
        for script in [
            "X=cur; ${X}l --version",
            "$'\\x63url' x",
            "curl${IFS}--version",
            "${X:-curl} --version",
            "cu\\\nrl x",
            "/usr/bin/cur? x",
            "RM=rm; $RM -rf dir",
            "eval curl x",
            ". ./script",
            "echo curl x | sh",
            "sh <<EOF\ncurl x\nEOF\n",
        ] {
            let d = p.decide("x", &sh(script));
            assert_eq!(d.outcome, Outcome::Deny, "{script}: {d:?}");
        }
        let d = p.decide("x", &sh("X=cur; ${X}l --version"));
        assert!(d.reason.contains("cannot be judged") && d.reason.contains("argv step"), "{}", d.reason);
        // Without a commands rule nothing is judged; with approve rules only, a person decides.
        let open = policy(dir.path(), "defaults:\n  paths:\n    deny: [\"x\"]\n");
        assert_eq!(open.decide("x", &sh("echo $HOME")).outcome, Outcome::Allow);
        let ask = policy(dir.path(), "defaults:\n  approve:\n    commands: [\"git push\"]\n");
        assert_eq!(ask.decide("x", &sh("echo $HOME")).outcome, Outcome::NeedsApproval);
        // A run cannot answer approvals, however it spells `acas`.
        assert_eq!(open.decide("x", &sh("a=acas; $a approve 1")).outcome, Outcome::Deny);
        assert_eq!(open.decide("x", &sh("echo approve 1 | xargs acas")).outcome, Outcome::Deny);
    }

    #[test]
    fn flags_match_in_any_order_and_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), DENY);
        for words in [
            &["rm", "-fr", "x"][..],
            &["rm", "-r", "-f", "x"],
            &["rm", "-R", "--force", "x"],
            &["rm", "--recursive", "--force", "x"],
            &["/bin/rm", "-f", "-R", "x"],
            &["git", "push", "origin", "main", "--force"],
            &["git", "-C", ".", "push", "--force"],
            &["git", "push", "-f"],
            &["git", "push", "origin", "+main"],
            &["git", "push", "--force-with-lease"],
        ] {
            assert_eq!(p.decide("x", &argv(words)).outcome, Outcome::Deny, "{words:?}");
        }
        for words in
            [&["rm", "-f", "x"][..], &["rm", "x"], &["git", "push", "origin", "main"], &["git", "status"]]
        {
            assert_eq!(p.decide("x", &argv(words)).outcome, Outcome::Allow, "{words:?}");
        }
        // Arguments that come from elsewhere could complete the pattern.
        assert_eq!(p.decide("x", &sh("rm *")).outcome, Outcome::Deny);
        assert_eq!(p.decide("x", &sh("find . | xargs rm")).outcome, Outcome::Deny);
    }

    #[test]
    fn glob_patterns_match_every_command_that_runs() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), "defaults:\n  commands:\n    deny: [\"rm -rf *\", \"curl*\"]\n");
        for script in
            ["sudo rm -rf /x", "xargs rm -rf /x", "env curl x", "nice curl x", "true && /usr/bin/curl x"]
        {
            assert_eq!(p.decide("x", &sh(script)).outcome, Outcome::Deny, "{script}");
        }
        assert_eq!(p.decide("x", &sh("ls -la")).outcome, Outcome::Allow);
    }

    #[test]
    fn allow_rules_name_the_program_that_runs() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(
            dir.path(),
            "defaults:\n  commands:\n    allow: [\"sh\", \"python3\", \"node -e\", \"GIT_AUTHOR_NAME=*\", \"true\"]\n",
        );
        let fake = dir.path().join("sh");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(p.decide("x", &argv(&["sh", "script.sh"])).outcome, Outcome::Allow);
        let d = p.decide("x", &argv(&["./sh", "script.sh"]));
        assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
        assert!(d.reason.contains("inside the workspace"), "{}", d.reason);
        let inside = fake.display().to_string();
        assert_eq!(p.decide("x", &argv(&[&inside, "script.sh"])).outcome, Outcome::Deny);
        // Inline code needs a rule that names the flag.
        assert_eq!(p.decide("x", &argv(&["python3", "script.py"])).outcome, Outcome::Allow);
        let d = p.decide("x", &argv(&["python3", "-c", "import os"]));
        assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
        assert!(d.reason.contains("inline code"), "{}", d.reason);
        assert_eq!(p.decide("x", &argv(&["node", "-e", "1"])).outcome, Outcome::Allow);
        // A shell whose script cannot be judged is refused; one whose script is allowed is not.
        assert_eq!(p.decide("x", &argv(&["sh", "-c", "true"])).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &argv(&["sh", "-c", "$X"])).outcome, Outcome::Deny);
        let named = policy(dir.path(), "defaults:\n  commands:\n    allow: [\"sh -c\"]\n");
        assert_eq!(named.decide("x", &argv(&["sh", "-c", "$X"])).outcome, Outcome::Allow);
        assert_eq!(named.decide("x", &argv(&["sh", "-c", "eval x"])).outcome, Outcome::Allow);
        assert_eq!(named.decide("x", &sh("echo $HOME")).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &sh("echo $HOME")).outcome, Outcome::Deny);
    }

    #[test]
    fn variables_that_change_what_runs_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(
            dir.path(),
            "defaults:\n  commands:\n    allow: [\"git status\", \"GIT_AUTHOR_*=*\", \"PYTHONPATH=src\"]\n    deny: [\"touch\"]\n",
        );
        let env = |vars: &[(&str, &str)]| Action::Environment {
            vars: vars.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        };
        let d = p.decide("x", &env(&[("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0", "core.fsmonitor")]));
        assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
        assert!(d.reason.contains("GIT_CONFIG_COUNT") && !d.action.contains("core.fsmonitor"), "{d:?}");
        for vars in [
            &[("LD_PRELOAD", "/x.so")][..],
            &[("PATH", "/tmp")],
            &[("BASH_ENV", "x")],
            &[("PYTHONPATH", "/tmp")],
        ] {
            assert_eq!(p.decide("x", &env(vars)).outcome, Outcome::Deny, "{vars:?}");
        }
        assert_eq!(p.decide("x", &env(&[("PYTHONPATH", "src")])).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &env(&[("RUST_LOG", "debug")])).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &sh("GIT_DIR=/tmp/x git status")).outcome, Outcome::Deny);
        assert_eq!(p.decide("x", &sh("export PATH=/tmp; git status")).outcome, Outcome::Deny);
        assert_eq!(
            p.decide("x", &argv(&["env", "LD_PRELOAD=/x.so", "git", "status"])).outcome,
            Outcome::Deny
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_judged_by_the_program_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let perl = resolve(&root, "perl").expect("perl on PATH");
        let curl = resolve(&root, "curl").or_else(|| resolve(&root, "sh")).unwrap();
        std::fs::create_dir(root.join("tools")).unwrap();
        std::os::unix::fs::symlink(&perl, root.join("tools/git")).unwrap();
        std::os::unix::fs::symlink(&curl, root.join("tools/fetch")).unwrap();
        let p = policy(&root, "defaults:\n  commands:\n    allow: [\"git status\", \"echo\"]\n");
        let link = root.join("tools/git").display().to_string();
        assert_eq!(p.decide("x", &argv(&[&link, "status"])).outcome, Outcome::Deny);
        assert_eq!(p.decide("x", &argv(&["tools/git", "status"])).outcome, Outcome::Deny);
        // Outside the workspace, a link is named by what it runs.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&perl, outside.path().join("git")).unwrap();
        let outside_link = outside.path().join("git").display().to_string();
        assert_eq!(p.decide("x", &argv(&[&outside_link, "status"])).outcome, Outcome::Deny);
        let denied = format!("defaults:\n  commands:\n    deny: [\"{}\"]\n", base(&curl.to_string_lossy()));
        let p = policy(&root, &denied);
        assert_eq!(p.decide("x", &argv(&["tools/fetch", "--version"])).outcome, Outcome::Deny);
        assert_eq!(p.decide("x", &sh("./tools/fetch --version")).outcome, Outcome::Deny);
    }

    #[test]
    fn inline_code_in_every_spelling_needs_a_rule_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(
            dir.path(),
            "defaults:\n  commands:\n    allow: [\"cat\", \"echo\", \"python3\", \"node\", \"perl\", \"env\", \"awk\", \"sed -n\", \"git status\"]\n",
        );
        for words in [
            &["python3", "-W", "ignore", "-c", "import os"][..],
            &["python3", "-cimport os"],
            &["python3", "-"],
            &["python3"],
            &["perl", "-eprint 1"],
            &["perl", "-wle", "print 1"],
            &["node", "--eval=1"],
            &["node", "-r", "fs", "x.js"],
            &["env", "-iStouch PWNED"],
            &["env", "-i", "-S", "touch PWNED"],
            &["awk", "BEGIN{system(\"touch PWNED\")}"],
            &["sed", "-n", "1e touch PWNED", "x"],
            &["sed", "-n", "s/x/touch PWNED/ep", "x"],
            &["git", "-c", "alias.x=!touch PWNED", "x"],
            &["git", "-c", "core.pager=touch PWNED", "status"],
        ] {
            let d = p.decide("x", &argv(words));
            assert_eq!(d.outcome, Outcome::Deny, "{words:?}: {d:?}");
        }
        assert_eq!(p.decide("x", &sh("python3 - <<EOF\nimport os\nEOF")).outcome, Outcome::Deny);
        for words in [
            &["python3", "-W", "ignore", "script.py"][..],
            &["python3", "-m", "pytest"],
            &["perl", "-w", "script.pl"],
            &["awk", "-f", "prog.awk", "x"],
            &["sed", "-n", "s/e/f/p", "x"],
            &["git", "status"],
        ] {
            let d = p.decide("x", &argv(words));
            assert_eq!(d.outcome, Outcome::Allow, "{words:?}: {d:?}");
        }
    }

    #[test]
    fn programs_run_by_other_programs_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), DENY);
        for words in [
            &["rbash", "-c", "curl x"][..],
            &["script", "-qc", "curl x", "/dev/null"],
            &["git", "-c", "alias.x=!curl x", "x"],
            &["find", ".", "-exec", "curl", "{}", ";"],
            &["busybox", "sh", "-c", "curl x"],
            &["env", "-iS", "curl x"],
        ] {
            let d = p.decide("x", &argv(words));
            assert_eq!(d.outcome, Outcome::Deny, "{words:?}: {d:?}");
        }
    }

    #[test]
    fn variables_that_select_a_program_or_load_code_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(
            dir.path(),
            "defaults:\n  commands:\n    allow: [\"go test\", \"make test\", \"env\", \"bash\"]\n",
        );
        let env = |n: &str, v: &str| Action::Environment { vars: vec![(n.to_owned(), v.to_owned())] };
        for name in [
            "GOFLAGS",
            "MAKEFILES",
            "CC",
            "CXX",
            "LUA_CPATH",
            "LUA_INIT_5_4",
            "GEM_PATH",
            "CGO_LDFLAGS",
            "PHPRC",
            "PIP_INDEX_URL",
        ] {
            assert_eq!(p.decide("x", &env(name, "x")).outcome, Outcome::Deny, "{name}");
        }
        let deny = policy(dir.path(), DENY);
        for words in [
            &["env", "-", "BASH_ENV=./evil.sh", "bash", "-c", "true"][..],
            &["env", "-u", "X", "--", "BASH_ENV=x", "bash", "-c", "true"],
        ] {
            let d = deny.decide("x", &argv(words));
            assert_eq!(d.outcome, Outcome::Deny, "{words:?}: {d:?}");
        }
    }

    #[test]
    fn long_options_match_by_their_abbreviations() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), DENY);
        for words in [
            &["rm", "--rec", "--for", "victim"][..],
            &["rm", "-r", "--forc", "x"],
            &["git", "push", "--forc"],
            &["git", "push", "--for", "origin", "main"],
        ] {
            let d = p.decide("x", &argv(words));
            assert_eq!(d.outcome, Outcome::Deny, "{words:?}: {d:?}");
        }
        assert_eq!(p.decide("x", &argv(&["rm", "--rec", "x"])).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &argv(&["git", "push", "--fo"])).outcome, Outcome::Deny);
    }

    #[cfg(unix)]
    #[test]
    fn a_relative_program_is_found_from_where_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let curl = resolve(&root, "curl").or_else(|| resolve(&root, "sh")).unwrap();
        std::fs::create_dir_all(root.join("sub/tools")).unwrap();
        std::os::unix::fs::symlink(&curl, root.join("sub/tools/fetch")).unwrap();
        let denied = format!("defaults:\n  commands:\n    deny: [\"{}\"]\n", base(&curl.to_string_lossy()));
        let p = policy(&root, &denied);
        let from = |dir: &str| Start { dir: Some(dir.to_owned()), cdpath: false };
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let run_in = |w: &[&str], dir: &str| Action::Command { argv: words(w), start: from(dir) };
        let sh_in = |script: &str, dir: &str| Action::Shell { script: script.to_owned(), start: from(dir) };
        assert_eq!(p.decide("x", &run_in(&["tools/fetch", "x"], "sub")).outcome, Outcome::Deny);
        assert_eq!(p.decide("x", &run_in(&["./tools/fetch", "x"], "sub/")).outcome, Outcome::Deny);
        assert_eq!(p.decide("x", &argv(&["tools/fetch", "x"])).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &sh_in("./tools/fetch x", "sub")).outcome, Outcome::Deny);
        for script in [
            "cd sub && ./tools/fetch x",
            "cd sub; tools/fetch x",
            "cd -P sub/tools/.. && tools/fetch x",
            "pushd sub; popd; tools/fetch x",
            "builtin cd sub; tools/fetch x",
            "cd /; cd \"$OLDPWD\"/sub; tools/fetch x",
            "env -C sub tools/fetch x",
            "env --chdir=sub ./tools/fetch x",
            "sh -c 'cd sub && tools/fetch x'",
            "find . -execdir ./tools/fetch ';'",
        ] {
            let d = p.decide("x", &sh(script));
            assert_eq!(d.outcome, Outcome::Deny, "{script}: {d:?}");
        }
        assert_eq!(p.decide("x", &sh("cd other && ./tools/fetch x")).outcome, Outcome::Allow);
        assert_eq!(p.decide("x", &sh("./sub/tools/fetch x")).outcome, Outcome::Deny);
        // Without a commands rule a program is not judged, wherever it runs.
        let open = policy(&root, "defaults:\n  paths:\n    deny: [\"secrets/\"]\n");
        assert_eq!(open.decide("x", &sh("cd $D && ./tools/fetch x")).outcome, Outcome::Allow);
    }

    #[test]
    fn a_redirection_is_judged_where_the_shell_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("build")).unwrap();
        let p = policy(&root, "defaults:\n  paths:\n    deny: [\"secrets/\"]\n");
        for script in [
            "cd secrets && echo x > key",
            "cd .acas && echo x > policy.yaml",
            "cd build/../.acas; echo x > workflows/w.yaml",
            "cd .. && echo x > outside",
            "cd $D && echo x > out",
            "cd \"$(pwd)\" && echo x > out",
            "cd ~ && echo x > out",
            "cd - && echo x > out",
            "cd && echo x > out",
            "cd s* && echo x > out",
            "eval cd x; echo x > out",
            ". ./env.sh; echo x > out",
            "f() { cd /; }; f; echo x > etc/passwd",
            "if true; then cd /; fi; echo x > out",
            "CDPATH=/ cd etc && echo x > passwd",
            "cd a; cd b; cd c; cd d; cd e; echo x > out",
        ] {
            let d = p.decide("x", &sh(script));
            assert_eq!(d.outcome, Outcome::Deny, "{script}: {d:?}");
        }
        let d = p.decide("x", &sh("cd secrets && echo x > key"));
        assert!(d.reason.contains("secrets/key"), "{}", d.reason);
        let d = p.decide("x", &sh("cd $D && echo x > out"));
        assert!(d.reason.contains("not known before the script runs"), "{}", d.reason);
        for script in [
            "cd build && echo x > out",
            "cd build | true; echo x > out",
            "cd ./build && echo x > out",
            "cd build; cd -; echo x > out",
            "echo $HOME; echo x > out",
            "echo x > /dev/null; cd build && echo x > out 2>&1",
        ] {
            let d = p.decide("x", &sh(script));
            assert_eq!(d.outcome, Outcome::Allow, "{script}: {d:?}");
        }
        // The step's directory and `CDPATH` in its environment.
        let start = |dir: Option<&str>, cdpath: bool| Start { dir: dir.map(str::to_owned), cdpath };
        let at =
            |script: &str, start: Start| p.decide("x", &Action::Shell { script: script.to_owned(), start });
        assert_eq!(at("echo x > out", start(Some("build"), false)).outcome, Outcome::Allow);
        assert_eq!(at("echo x > policy.yaml", start(Some(".acas"), false)).outcome, Outcome::Deny);
        assert_eq!(at("echo x > key", start(Some("secrets"), false)).outcome, Outcome::Deny);
        assert_eq!(at("cd etc && echo x > passwd", start(None, true)).outcome, Outcome::Deny);
        assert_eq!(at("cd etc && echo x > passwd", start(None, false)).outcome, Outcome::Allow);
        assert_eq!(at("cd ./build && echo x > out", start(None, true)).outcome, Outcome::Allow);
        let d = at("echo x > out", start(Some("build"), false));
        assert!(d.action.ends_with(" in build"), "{}", d.action);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// However `rm -rf` is spelled, ordered or wrapped, `deny: ["rm -rf"]` denies it; without
        /// the recursive flag it does not.
        #[test]
        fn any_spelling_of_rm_rf_is_denied(
            recursive in proptest::sample::select(vec!["-r", "-R", "--recursive"]),
            force in proptest::sample::select(vec!["-f", "--force"]),
            cluster in proptest::bool::ANY,
            force_first in proptest::bool::ANY,
            wrapper in proptest::sample::select(vec!["", "sudo ", "env A=1 ", "nice -n 5 ", "sh -c -- ", "timeout 5 "]),
            extra in proptest::sample::select(vec!["", "-v ", "--one-file-system "]),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = policy(dir.path(), DENY);
            let flags = if cluster && recursive.len() == 2 {
                if force_first { format!("-f{}", &recursive[1..]) } else { format!("{recursive}f") }
            } else if force_first {
                format!("{force} {extra}{recursive}")
            } else {
                format!("{recursive} {extra}{force}")
            };
            let command = format!("rm {flags} target");
            let script = if wrapper.starts_with("sh") { format!("{wrapper}'{command}'") } else { format!("{wrapper}{command}") };
            let d = p.decide("x", &sh(&script));
            proptest::prop_assert_eq!(d.outcome, Outcome::Deny, "{}: {:?}", script, d);
            let safe = format!("{wrapper}rm {extra}{force} target");
            let safe = if wrapper.starts_with("sh") { format!("{wrapper}'rm {extra}{force} target'") } else { safe };
            let d = p.decide("x", &sh(&safe));
            proptest::prop_assert_eq!(d.outcome, Outcome::Allow, "{}: {:?}", safe, d);
        }
    }
}
