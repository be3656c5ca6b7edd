//! Helpers for end-to-end tests that drive the real `acas` binary.
//!
//! [`LspClient`] speaks LSP over the binary's stdio with `Content-Length` framing. Every message
//! the server sends is kept until a test takes it, and [`LspClient::finish`] fails when any was
//! never expected, so tests account for everything the server said. Waiting is always bounded.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod fake_provider;
pub mod postgres;

/// How long a test waits for any one expected message.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the `acas` binary built for this test run.
pub fn acas_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ACAS_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/acas
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join(format!("acas{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo xtask test`, which builds it first",
        bin.display()
    );
    bin
}

/// The user cache directory of the commands tests run (a dry run keeps its symbol index there),
/// outside every test's workspace and the user's own cache.
pub fn tests_cache_home() -> PathBuf {
    std::env::temp_dir().join("acas-tests-cache")
}

/// Runs `git` in `dir` as a fixed author and committer; fails the test when git fails.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .status()
        .expect("running git");
    assert!(status.success(), "git {args:?}");
}

/// The first `python3` on PATH that can `import` the given modules (the MCP SDK and what a
/// driver needs beside it), or a failure that says how to install them.
pub fn python_with(modules: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .find(|p| {
            Command::new(p)
                .args(["-c", &format!("import {modules}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "no python3 on PATH has `{modules}` (the MCP SDK): run scripts/install-checker-tools.sh (from .ci/run) and the tests with `cargo xtask test`, which puts $ACAS_TOOLS_DIR/venv/bin on PATH"
            )
        })
}

/// Starts `acas workflow run NAME` in the workspace at `root` with no user configuration, its
/// output captured (`capture`) or dropped; the caller waits for it.
pub fn start_workflow_run(root: &Path, name: &str, capture: bool) -> Child {
    let output = || if capture { Stdio::piped() } else { Stdio::null() };
    Command::new(acas_bin())
        .args(["workflow", "run", name, "--workspace", "."])
        .current_dir(root)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("starting acas workflow run")
}

/// The policy decision records of the workspace at `root`, once `acas audit verify` has found
/// its log intact.
pub fn policy_decisions(root: &Path) -> Vec<Value> {
    let (code, stdout, stderr) = run_acas(&["audit", "verify", "--workspace", "."], root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) =
        run_acas(&["audit", "--workspace", ".", "--format", "json", "--limit", "1000"], root);
    assert_eq!(code, 0, "{stderr}");
    let all: Value = serde_json::from_str(&stdout).unwrap();
    all["records"].as_array().unwrap().iter().filter(|r| r["kind"] == "policy_decision").cloned().collect()
}

/// What `acas approve` lists in the workspace at `root` once a pending approval whose listing
/// holds `needle` is there (a run started meanwhile waits for it); fails after [`TIMEOUT`].
pub fn wait_for_approval(root: &Path, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (code, stdout, stderr) = run_acas(&["approve", "--workspace", "."], root);
        assert_eq!(code, 0, "{stderr}");
        if stdout.contains(needle) {
            return stdout;
        }
        assert!(Instant::now() < deadline, "nothing waits for approval: {stdout}");
        std::thread::yield_now();
    }
}

/// Runs `acas ARGS` to completion and returns (exit code, stdout, stderr).
pub fn run_acas(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(cwd)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"))
        .env("XDG_CACHE_HOME", tests_cache_home())
        .output()
        .expect("running acas");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Trusts the workspace at `root` to run its checkers (`acas trust`), for commands run with
/// `XDG_CONFIG_HOME` set to `config_home`.
pub fn trust(root: &Path, config_home: &Path) {
    let output = Command::new(acas_bin())
        .args(["trust", &root.to_string_lossy()])
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .expect("running acas trust");
    assert!(output.status.success(), "acas trust: {}", String::from_utf8_lossy(&output.stderr));
}

/// A user configuration directory shared by tests, holding only the trust list that
/// [`trust`] writes (outside every test's workspace, whose files it would add to).
pub fn trusting_config_home() -> PathBuf {
    std::env::temp_dir().join("acas-tests-trusting")
}

/// Runs `acas ARGS` in `cwd`, a workspace the user trusts to run its checkers, with colour off;
/// answers (exit code, stdout, stderr).
pub fn acas_trusted(args: &[&str], cwd: &Path) -> (i32, String, String) {
    trust(cwd, &trusting_config_home());
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(cwd)
        .env("ACAS_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", trusting_config_home())
        .env("XDG_CACHE_HOME", tests_cache_home())
        .output()
        .expect("running acas");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The program `tool` on PATH, or a failure that says how to install the checker tools.
pub fn need_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "`{tool}` is not on PATH: run scripts/install-checker-tools.sh (from .ci/run) and the tests with `cargo xtask test`, which puts $ACAS_TOOLS_DIR/venv/bin and $ACAS_TOOLS_DIR/node/node_modules/.bin on PATH"
        )
    })
}

/// Writes `files` (relative path, text) under `dir`, making their directories.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A `file://` URI for an absolute path.
pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_str().expect("UTF-8 test path").bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

pub struct LspClient {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    incoming: mpsc::Receiver<Value>,
    /// Messages received and not yet taken by the test.
    unexpected: VecDeque<Value>,
    next_id: i64,
    /// The server's log so far, and a signal for each line added.
    stderr: std::sync::Arc<(std::sync::Mutex<String>, std::sync::Condvar)>,
    /// Answers to server requests by method; the others get an empty success.
    answers: std::collections::HashMap<String, Value>,
    /// Methods of server requests never answered.
    unanswered: std::collections::HashSet<String>,
}

impl LspClient {
    /// Starts `acas serve` with extra environment variables.
    pub fn start(env: &[(&str, &str)]) -> LspClient {
        LspClient::spawn(Command::new(acas_bin()), env)
    }

    /// Starts `acas serve` as a user who trusts the workspace at `root` (see [`trust`]), with
    /// extra environment variables: its workflows start by themselves and its checkers run.
    pub fn start_trusting(root: &Path, env: &[(&str, &str)]) -> LspClient {
        let home = trusting_config_home();
        trust(root, &home);
        let home = home.to_string_lossy().into_owned();
        let mut env = env.to_vec();
        env.push(("XDG_CONFIG_HOME", &home));
        LspClient::start(&env)
    }

    /// Starts `acas serve` in the working directory `cwd`, with extra environment variables.
    pub fn start_in(cwd: &Path, env: &[(&str, &str)]) -> LspClient {
        let mut command = Command::new(acas_bin());
        command.current_dir(cwd);
        LspClient::spawn(command, env)
    }

    fn spawn(mut command: Command, env: &[(&str, &str)]) -> LspClient {
        command
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("ACAS_LOG", "info")
            // Tests read the whole log on stderr, not only its warnings and errors.
            .env("ACAS_LOG_STDERR", "info")
            .env("XDG_CONFIG_HOME", std::env::temp_dir().join("acas-tests-no-user-config"))
            // A server without a workspace folder logs under the user's state directory.
            .env("XDG_STATE_HOME", std::env::temp_dir().join("acas-tests-state"));
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting acas serve");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || read_messages(stdout, tx));
        let log = std::sync::Arc::new((std::sync::Mutex::new(String::new()), std::sync::Condvar::new()));
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log_writer.0.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
                log_writer.1.notify_all();
            }
        });
        LspClient {
            stdin: child.stdin.take(),
            child: Some(child),
            incoming,
            unexpected: VecDeque::new(),
            next_id: 1,
            stderr: log,
            answers: std::collections::HashMap::new(),
            unanswered: std::collections::HashSet::new(),
        }
    }

    /// Kills the server (SIGKILL) and waits for it: it gets no chance to say goodbye.
    pub fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's log so far.
    pub fn stderr(&self) -> String {
        self.stderr.0.lock().unwrap().clone()
    }

    /// Waits until the server's log contains `text`, and returns the log.
    pub fn expect_log(&self, text: &str) -> String {
        let (log, added) = &*self.stderr;
        let (log, _) =
            added.wait_timeout_while(log.lock().unwrap(), TIMEOUT, |log| !log.contains(text)).unwrap();
        assert!(log.contains(text), "timed out waiting for `{text}` in the server log:\n{log}");
        log.clone()
    }

    /// Sends raw bytes, framing and all.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).and_then(|_| stdin.flush()).expect("writing to acas");
    }

    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).unwrap();
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        self.send_raw(&frame);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its id without waiting.
    pub fn request_async(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Sends a request and waits for its response (result or error object).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.request_async(method, params);
        self.expect(&format!("response to {method}"), |m| {
            m.get("id") == Some(&json!(id)) && m.get("method").is_none()
        })
    }

    /// Initializes with the given client capabilities and workspace root.
    pub fn initialize(&mut self, root: Option<&Path>, capabilities: Value) -> Value {
        let folders = root.map(|r| json!([{ "uri": file_uri(r), "name": "ws" }]));
        let response = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root.map(file_uri),
                "workspaceFolders": folders,
                "capabilities": capabilities,
            }),
        );
        self.notify("initialized", json!({}));
        response
    }

    /// Waits for the first message matching `predicate`, keeping the others for later.
    pub fn expect(&mut self, what: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.unexpected.iter().position(&predicate) {
            return self.unexpected.remove(i).unwrap();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(message) => {
                    self.answer_server_request(&message);
                    if predicate(&message) {
                        return message;
                    }
                    self.unexpected.push_back(message);
                }
                Err(_) => panic!(
                    "timed out waiting for {what}; other messages: {:#?}\nserver log:\n{}",
                    self.unexpected,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for diagnostics published for `uri` that satisfy `predicate`; earlier
    /// publications for the same URI are taken as superseded.
    pub fn expect_diagnostics(&mut self, uri: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        let is_for_uri =
            |m: &Value| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri;
        let found =
            self.expect(&format!("diagnostics for {uri}"), |m| is_for_uri(m) && predicate(&m["params"]));
        self.unexpected.retain(|m| !is_for_uri(m));
        found["params"].clone()
    }

    /// The end of the escalation whose handle `response` (the answer of `acas.escalate`) holds:
    /// the params of its `acas/escalationDone`.
    pub fn escalation_done(&mut self, response: &Value) -> Value {
        let id =
            response["result"]["escalationId"].as_u64().unwrap_or_else(|| panic!("a handle in {response:#}"));
        self.expect("the end of the escalation", |m| {
            m["method"] == "acas/escalationDone" && m["params"]["escalationId"] == id
        })["params"]
            .clone()
    }

    /// Takes every message matching `predicate` received so far.
    pub fn take_all(&mut self, predicate: impl Fn(&Value) -> bool) -> Vec<Value> {
        while let Ok(message) = self.incoming.try_recv() {
            self.answer_server_request(&message);
            self.unexpected.push_back(message);
        }
        let (taken, kept) = self.unexpected.drain(..).partition(|m| predicate(m));
        self.unexpected = kept;
        taken.into()
    }

    /// From now on, answers server requests of `method` (`window/showMessageRequest`, ...) with
    /// `result`.
    pub fn answer(&mut self, method: &str, result: Value) {
        self.answers.insert(method.to_owned(), result);
    }

    /// From now on, answers the server's question whether the workspace may run its checkers
    /// with "Trust and run", as a user who trusts it.
    pub fn trust_checkers(&mut self) {
        self.answer("window/showMessageRequest", json!({ "title": "Trust and run" }));
    }

    /// From now on, leaves server requests of `method` unanswered, as a client that announced a
    /// capability and never honours it.
    pub fn never_answer(&mut self, method: &str) {
        self.unanswered.insert(method.to_owned());
    }

    /// Server-to-client requests get the answer set with [`LspClient::answer`], else an empty
    /// success (as a client acknowledges progress tokens).
    /// A server that has exited is not answered: the request stays among the messages received.
    fn answer_server_request(&mut self, message: &Value) {
        if self.child.is_some()
            && message.get("id").is_some()
            && let Some(method) = message.get("method").and_then(Value::as_str)
            && !self.unanswered.contains(method)
        {
            let id = message["id"].clone();
            let result = self.answers.get(method).cloned().unwrap_or(Value::Null);
            self.send(&json!({ "jsonrpc": "2.0", "id": id, "result": result }));
        }
    }

    /// Shuts down cleanly and returns the exit code.
    pub fn shutdown(&mut self) -> i32 {
        let response = self.request("shutdown", Value::Null);
        assert_eq!(response["result"], Value::Null, "{response}");
        self.notify("exit", Value::Null);
        self.wait()
    }

    /// Closes stdin (a client that disappears) and returns the exit code.
    pub fn close_stdin(&mut self) -> i32 {
        self.stdin = None;
        self.wait()
    }

    fn wait(&mut self) -> i32 {
        let mut child = self.child.take().expect("acas is running");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait().map(|s| s.code().unwrap_or(-1));
            let _ = tx.send(status);
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(status) => status.expect("waiting for acas"),
            Err(_) => panic!("acas did not exit; log:\n{}", self.stderr()),
        }
    }

    /// Fails if the server sent anything the test did not expect, apart from messages that
    /// `allowed` accepts (progress and log messages, typically).
    pub fn finish(mut self, allowed: impl Fn(&Value) -> bool) {
        let leftovers = self.take_all(|m| !allowed(m));
        assert!(leftovers.is_empty(), "unexpected messages from acas: {leftovers:#?}");
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Progress notifications and the requests that create their tokens.
pub fn is_progress(message: &Value) -> bool {
    matches!(message["method"].as_str(), Some("$/progress" | "window/workDoneProgress/create"))
}

fn read_messages(stdout: impl Read, tx: mpsc::Sender<Value>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = value.parse::<usize>().ok();
            }
        }
        let Some(length) = length else { return };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let message: Value = serde_json::from_slice(&body).expect("acas sent invalid JSON");
        if tx.send(message).is_err() {
            return;
        }
    }
}

/// Writes a Cargo crate at `root` for the benches: `modules` modules (`src/m0.rs` …) of 60 small
/// functions each, no dependencies.
pub fn generated_crate(root: &Path, modules: usize) {
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"bench\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    let mut lib = String::new();
    for m in 0..modules {
        lib.push_str(&format!("pub mod m{m};\n"));
        let mut module = String::new();
        for f in 0..60 {
            module.push_str(&format!(
                "pub fn f{f}(values: &[u64]) -> u64 {{\n    values.iter().map(|v| v.wrapping_mul({f}) ^ {m}).fold(0, |a, b| a.wrapping_add(b))\n}}\n\n"
            ));
        }
        std::fs::write(root.join(format!("src/m{m}.rs")), module).unwrap();
    }
    std::fs::write(root.join("src/lib.rs"), lib).unwrap();
}
