//! A real PostgreSQL cluster for tests: started in a temp directory on a free port of
//! 127.0.0.1, trusted local connections for the user `acas`, stopped when dropped (also when the
//! test panics, since dropping runs while unwinding).
//!
//! `initdb` runs once per machine and PostgreSQL version: its result is kept in the temp
//! directory as a template, which each cluster copies (a copy takes a fraction of what `initdb`
//! takes). Each test asks the cluster for a database of its own ([`PgCluster::database`]), so
//! tests sharing a cluster do not see each other's rows.
//!
//! The binaries are looked up under `/usr/lib/postgresql/*/bin` (Debian's layout, newest
//! version first), then on `PATH`. PostgreSQL refuses to run as root: as root, the server runs
//! as the `postgres` user that Debian's package creates. Waiting is bounded: `pg_ctl -w -t`
//! returns once the server accepts connections, or fails after the timeout.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How long `pg_ctl` waits for the server to accept connections, in seconds.
const START_TIMEOUT_SECS: u32 = 60;
/// The superuser the cluster is made with; connections from 127.0.0.1 are trusted.
pub const USER: &str = "acas";

/// A running PostgreSQL cluster, stopped and removed on drop.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<String>,
}

impl PgCluster {
    /// Starts a cluster, panicking with what to install when PostgreSQL is missing.
    pub fn start() -> PgCluster {
        let bin = pg_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed: no initdb under /usr/lib/postgresql/*/bin nor on \
                 PATH; install Debian's `postgresql` package (`.ci/run` does)"
            )
        });
        let run_as = is_root().then(|| "postgres".to_owned());
        let template = template(&bin, run_as.as_deref());
        let dir = tempfile::Builder::new().prefix("acas-pg-").tempdir().expect("temp dir for PostgreSQL");
        let data = dir.path().join("data");
        run(Command::new("cp").arg("-a").arg(&template).arg(&data), "copy the cluster template");
        if let Some(user) = &run_as {
            chown(dir.path(), user);
        }
        // A free port can be taken by someone else between the probe and the start: try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let output = pg_start(&bin, dir.path(), port, run_as.as_deref());
            if output.status.success() {
                return PgCluster { bin, dir, port, run_as };
            }
            last = format!(
                "{}{}\nserver log:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database of its own, as a `postgres://` URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let output = command(&self.bin, "createdb", None)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, &name])
            .output()
            .expect("running createdb");
        assert!(output.status.success(), "createdb {name}: {}", String::from_utf8_lossy(&output.stderr));
        self.url(&name)
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }

    /// Runs `sql` with `psql` on database `name`, returning its unaligned output.
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let output = command(&self.bin, "psql", None)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-d", name])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("running psql");
        assert!(output.status.success(), "psql: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server now, waiting until it is down (`pg_ctl stop -m fast`).
    pub fn stop(&self) {
        let _ = command(&self.bin, "pg_ctl", self.run_as.as_deref())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "-t", &START_TIMEOUT_SECS.to_string(), "stop"])
            .output();
    }
}

impl PgCluster {
    /// Starts the server again after [`PgCluster::stop`], on the same port with the same data.
    pub fn start_again(&self) {
        let output = pg_start(&self.bin, self.dir.path(), self.port, self.run_as.as_deref());
        assert!(
            output.status.success(),
            "PostgreSQL did not start again: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `pg_ctl start` of the cluster in `dir` on `port`, waiting until it accepts connections.
fn pg_start(bin: &Path, dir: &Path, port: u16, run_as: Option<&str>) -> Output {
    let options = format!(
        "-k {} -h 127.0.0.1 -p {port} -F -c max_connections=200 -c shared_buffers=16MB",
        dir.display()
    );
    command(bin, "pg_ctl", run_as)
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-o", &options, "-w", "-t", &START_TIMEOUT_SECS.to_string(), "start"])
        .output()
        .expect("running pg_ctl start")
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = command(&self.bin, "pg_ctl", self.run_as.as_deref())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "-t", &START_TIMEOUT_SECS.to_string(), "stop"])
            .output();
    }
}

/// Runs `sql` with `psql` on the database at `url` (one of a test cluster's), returning its
/// unaligned output.
pub fn psql_url(url: &str, sql: &str) -> String {
    let bin = pg_bin().expect("PostgreSQL's binaries");
    let output = command(&bin, "psql", None)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .expect("running psql");
    assert!(output.status.success(), "psql: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The directory of the newest PostgreSQL's binaries.
pub fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file())
}

/// The cluster made by `initdb` once for this machine, user and version, kept in the temp
/// directory. Made beside its final place and renamed into it, so that a half-made template is
/// never used, and two test processes making it at once both end with a whole one.
fn template(bin: &Path, run_as: Option<&str>) -> PathBuf {
    let version = bin.parent().and_then(|p| p.file_name()).map_or("pg".into(), |v| v.to_string_lossy());
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let base = std::env::temp_dir().join(format!("acas-pg-template-{version}-{uid}"));
    let data = base.join("data");
    if data.join("PG_VERSION").is_file() {
        return data;
    }
    std::fs::create_dir_all(&base).expect("template directory");
    let making = tempfile::Builder::new().prefix("making-").tempdir_in(&base).expect("temp dir for initdb");
    if let Some(user) = run_as {
        chown(&base, user);
        chown(making.path(), user);
    }
    let target = making.path().join("data");
    let output = command(bin, "initdb", run_as)
        .args(["-A", "trust", "-U", USER, "-N", "-E", "UTF8", "--locale=C", "-D"])
        .arg(&target)
        .output()
        .expect("running initdb");
    assert!(
        output.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Someone else's rename may have won; theirs is as good as ours.
    if std::fs::rename(&target, &data).is_err() {
        assert!(
            data.join("PG_VERSION").is_file(),
            "could not put the cluster template in {}",
            data.display()
        );
    }
    data
}

/// `bin/name`, run as `user` (through `runuser`) when given.
fn command(bin: &Path, name: &str, user: Option<&str>) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(bin.join(name));
            command
        }
        None => Command::new(bin.join(name)),
    }
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("could not {what}: {e}"));
    assert!(output.status.success(), "could not {what}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn chown(path: &Path, user: &str) {
    run(Command::new("chown").arg("-R").arg(format!("{user}:")).arg(path), "give the cluster to its user");
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
