//! Logging through `tracing`, with a level that can change while the server runs.
//!
//! Stdout belongs to JSON-RPC, so logs never go there. The commands other than `acas serve` log
//! to stderr at their level ([`init`]). `acas serve` ([`init_serve`]) keeps stderr for warnings
//! and errors, because editors show every stderr line as an error (`ACAS_LOG_STDERR` or
//! `--log-stderr` lowers that threshold, never below the log level); everything at the log
//! level goes to a size-capped file ([`LogFile`]: `.acas/logs/serve.log` of the workspace, or
//! `acas/serve.log` under the user's state directory without one), and, when the editor asks
//! for it (`logToClient`), to the editor as `window/logMessage` ([`to_client`]).
//!
//! The level comes from `--log-level`, then `ACAS_LOG`, then `RUST_LOG`, then the command's
//! default, and an editor can change it later through the `logLevel` setting. What is logged
//! before the server knows where its file goes is kept in memory (up to [`EARLY_BYTES`]) and
//! written first. Every line, wherever it goes, is cut to [`LINE_BYTES`] (what it logs can come
//! from a client: a URI of megabytes), and a line never makes the file pass its cap. This module
//! does not know LSP: the editor's messages are handed to a channel that the front end drains.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Where `acas serve`'s log file is, once known, and what was logged before.
static FILE: Mutex<LogFile> = Mutex::new(LogFile::Early(Vec::new()));

/// One log line for the editor: its level and its text.
pub type ClientLine = (Level, String);

/// The editor's channel, when it asked for the log (`logToClient`).
static CLIENT: Mutex<Option<tokio::sync::mpsc::Sender<ClientLine>>> = Mutex::new(None);
static TO_CLIENT: AtomicBool = AtomicBool::new(false);

/// What is kept in memory before the log file is opened (at least this, at most twice this);
/// older lines beyond it are dropped.
pub const EARLY_BYTES: usize = 256 * 1024;

/// The default size at which the log file is rotated: `serve.log` becomes `serve.log.1`
/// (replacing the previous one) and a new `serve.log` starts, so the log takes at most twice
/// this. `ACAS_LOG_MAX_BYTES` changes it.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The longest log line, in bytes: a longer one is cut there, and says how much was cut.
pub const LINE_BYTES: usize = 8 * 1024;

/// Lines queued for the editor; when it does not keep up, further lines are dropped.
const CLIENT_QUEUE: usize = 1024;

/// The level asked for: the flag, then `ACAS_LOG`, then `RUST_LOG`.
fn wanted(level: Option<&str>) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    level.map(str::to_owned).or_else(|| env("ACAS_LOG")).or_else(|| env("RUST_LOG"))
}

fn filter(level: Option<&str>, default_level: &str) -> EnvFilter {
    wanted(level)
        .as_deref()
        .and_then(|l| EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level))
}

/// Installs the global subscriber for a command other than `acas serve`: everything at the
/// level goes to stderr. Only the first call has an effect.
pub fn init(level: Option<&str>, default_level: &str) {
    let (filter, handle) = reload::Layer::new(filter(level, default_level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(Clipped(std::io::stderr))
        .with_ansi(false)
        .with_target(false);
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = RELOAD.set(handle);
    }
}

/// Installs the global subscriber of `acas serve`: warnings and errors (or `stderr_level`, else
/// `ACAS_LOG_STDERR`) to stderr, everything at the log level to the log file once
/// [`open_file`] said where, and to the editor while [`to_client`] is on. Only the first call
/// has an effect.
pub fn init_serve(level: Option<&str>, stderr_level: Option<&str>) {
    let (filter, handle) = reload::Layer::new(filter(level, "info"));
    let stderr_level = stderr_level
        .map(str::to_owned)
        .or_else(|| std::env::var("ACAS_LOG_STDERR").ok())
        .filter(|l| !l.trim().is_empty())
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::WARN);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(Clipped(std::io::stderr))
        .with_ansi(false)
        .with_target(false)
        .with_filter(stderr_level);
    let file =
        tracing_subscriber::fmt::layer().with_writer(Clipped(FileWriter)).with_ansi(false).with_target(false);
    let installed =
        tracing_subscriber::registry().with(filter).with(stderr).with(file).with(ClientLayer).try_init();
    if installed.is_ok() {
        let _ = RELOAD.set(handle);
    }
}

/// Changes the level of the running process (`error`, `warn`, `info`, `debug`, `trace`, or any
/// `tracing` filter directive).
pub fn set_level(level: &str) {
    let Some(handle) = RELOAD.get() else { return };
    match EnvFilter::try_new(level) {
        Ok(filter) => {
            if handle.reload(filter).is_ok() {
                tracing::info!("log level is now {level}");
            }
        }
        Err(error) => tracing::warn!("log level `{level}` is not valid: {error}"),
    }
}

/// Where `acas serve` writes its log: `<root>/.acas/logs/serve.log` in a workspace, else
/// `acas/serve.log` under the user's state directory (`$XDG_STATE_HOME`, else
/// `~/.local/state`); `None` when there is neither.
pub fn file_place(root: Option<&Path>) -> Option<(PathBuf, &'static str)> {
    match root {
        Some(root) => Some((root.to_path_buf(), ".acas/logs")),
        None => {
            let state = std::env::var_os("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))?;
            Some((state, "acas"))
        }
    }
}

/// Opens the log file in `dir` (a relative path of plain names) beneath `base`, writes what was
/// logged so far into it, and sends the rest of the log there. The directory is created as
/// needed and holds a `.gitignore` so that the log is never committed; a link at any component
/// is refused. Returns the file's path.
pub fn open_file(base: &Path, dir: &str) -> std::io::Result<PathBuf> {
    let max_bytes = std::env::var("ACAS_LOG_MAX_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_BYTES);
    let mut opened = Opened::open(base, dir, max_bytes)?;
    let path = opened.path.clone();
    let mut file = FILE.lock().unwrap_or_else(PoisonError::into_inner);
    if let LogFile::Early(early) = &mut *file {
        opened.write(early)?;
    }
    *file = LogFile::Open(opened);
    Ok(path)
}

/// Sends the log to `sender` (the editor's `window/logMessage`), or stops with `None`.
pub fn to_client(sender: Option<tokio::sync::mpsc::Sender<ClientLine>>) {
    TO_CLIENT.store(sender.is_some(), Ordering::SeqCst);
    *CLIENT.lock().unwrap_or_else(PoisonError::into_inner) = sender;
}

/// A channel for [`to_client`], and its receiving end for the front end to drain.
pub fn client_channel() -> (tokio::sync::mpsc::Sender<ClientLine>, tokio::sync::mpsc::Receiver<ClientLine>) {
    tokio::sync::mpsc::channel(CLIENT_QUEUE)
}

/// The log file of `acas serve`: lines kept in memory until its place is known, then the file.
enum LogFile {
    Early(Vec<u8>),
    Open(Opened),
    /// The file could not be written: the log goes to stderr only.
    Failed,
}

struct Opened {
    dir: cap_std::fs::Dir,
    path: PathBuf,
    file: cap_std::fs::File,
    written: u64,
    max_bytes: u64,
}

const FILE_NAME: &str = "serve.log";
const ROTATED_NAME: &str = "serve.log.1";

impl Opened {
    fn open(base: &Path, dir: &str, max_bytes: u64) -> std::io::Result<Opened> {
        use cap_std::fs::Dir;
        use std::io::{Error, ErrorKind};
        use std::path::Component;

        std::fs::create_dir_all(base)?;
        let mut current = Dir::open_ambient_dir(base, cap_std::ambient_authority())?;
        for component in Path::new(dir).components() {
            let Component::Normal(part) = component else {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("`{dir}` is not a plain relative path"),
                ));
            };
            match current.create_dir(part) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            if current.symlink_metadata(part)?.file_type().is_symlink() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link; ACAS writes its log only into real directories: remove the link",
                        base.join(dir).display()
                    ),
                ));
            }
            current = current.open_dir(part)?;
        }
        if current.symlink_metadata(".gitignore").is_err() {
            let mut ignore = current
                .open_with(".gitignore", cap_std::fs::OpenOptions::new().write(true).create_new(true))?;
            ignore.write_all(b"# ACAS's logs are not part of the project\n*\n")?;
        }
        let file = open_log(&current)?;
        let written = file.metadata()?.len();
        Ok(Opened { dir: current, path: base.join(dir).join(FILE_NAME), file, written, max_bytes })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // A line longer than the whole file would make it pass its cap.
        let bytes = clip(bytes, self.max_bytes.try_into().unwrap_or(usize::MAX));
        let bytes = bytes.as_ref();
        if self.written > 0 && self.written + bytes.len() as u64 > self.max_bytes {
            self.dir.rename(FILE_NAME, &self.dir, ROTATED_NAME)?;
            self.file = open_log(&self.dir)?;
            self.written = 0;
        }
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Opens `serve.log` of `dir` for appending; a link there is refused.
fn open_log(dir: &cap_std::fs::Dir) -> std::io::Result<cap_std::fs::File> {
    if dir.symlink_metadata(FILE_NAME).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{FILE_NAME} is a symbolic link; ACAS writes its log only into a real file: remove the link"
            ),
        ));
    }
    dir.open_with(FILE_NAME, cap_std::fs::OpenOptions::new().append(true).create(true))
}

/// `line` cut to `max` bytes (at a character's start), ending with how much was cut and its
/// newline; a line that fits is left alone.
fn clip(line: &[u8], max: usize) -> Cow<'_, [u8]> {
    if line.len() <= max {
        return Cow::Borrowed(line);
    }
    let note = |cut: usize| format!(" [{cut} bytes cut]\n");
    let mut keep = max.saturating_sub(note(line.len()).len());
    // Not inside a character: continuation bytes are 0b10xxxxxx.
    while keep > 0 && line[keep] & 0xC0 == 0x80 {
        keep -= 1;
    }
    let mut out = line[..keep].to_vec();
    out.extend_from_slice(note(line.len() - keep).as_bytes());
    out.truncate(max);
    Cow::Owned(out)
}

/// A writer whose every write (one formatted event) is cut to [`LINE_BYTES`].
struct Clipped<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Clipped<M> {
    type Writer = ClippedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ClippedWriter(self.0.make_writer())
    }
}

struct ClippedWriter<W>(W);

impl<W: Write> Write for ClippedWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&clip(bytes, LINE_BYTES))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes formatted events to [`FILE`].
struct FileWriter;

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileWriter;

    fn make_writer(&'a self) -> FileWriter {
        FileWriter
    }
}

impl Write for FileWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut file = FILE.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *file {
            LogFile::Early(early) => {
                early.extend_from_slice(bytes);
                // Cut back to the limit only at twice the limit: a flood of early lines costs
                // each line its bytes once, not the whole buffer each.
                if early.len() > 2 * EARLY_BYTES {
                    let cut = early.len() - EARLY_BYTES;
                    let cut = early[cut..].iter().position(|b| *b == b'\n').map_or(cut, |at| cut + at + 1);
                    early.drain(..cut);
                }
            }
            LogFile::Open(opened) => {
                if let Err(error) = opened.write(bytes) {
                    let path = opened.path.clone();
                    *file = LogFile::Failed;
                    drop(file);
                    // Stderr only from now on: logging this through `tracing` would come back here.
                    let _ = writeln!(
                        std::io::stderr(),
                        "ACAS stopped writing its log to {}: {error}",
                        path.display()
                    );
                }
            }
            LogFile::Failed => {}
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hands ACAS's own events to the editor's channel while [`to_client`] is on. Events of the
/// libraries are left out: sending a message logs in the LSP library, which would feed itself.
struct ClientLayer;

impl<S: Subscriber> Layer<S> for ClientLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !TO_CLIENT.load(Ordering::Relaxed) || !event.metadata().target().starts_with("acas") {
            return;
        }
        let mut text = String::new();
        event.record(&mut Message(&mut text));
        if text.len() > LINE_BYTES {
            text = String::from_utf8_lossy(&clip(text.as_bytes(), LINE_BYTES)).trim_end().to_owned();
        }
        let client = CLIENT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = client.as_ref() {
            let _ = sender.try_send((*event.metadata().level(), text));
        }
    }
}

/// The message of an event, followed by its other fields as `name=value`.
struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_at_its_cap_and_keeps_one_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = Opened::open(dir.path(), ".acas/logs", 100).unwrap();
        for i in 0..30 {
            opened.write(format!("line {i:02}\n").as_bytes()).unwrap();
        }
        let logs = dir.path().join(".acas/logs");
        let current = std::fs::read_to_string(logs.join(FILE_NAME)).unwrap();
        let older = std::fs::read_to_string(logs.join(ROTATED_NAME)).unwrap();
        assert!(current.len() <= 100 && older.len() <= 100, "{current:?} {older:?}");
        assert!(current.ends_with("line 29\n"), "{current}");
        assert!(older.ends_with(&format!("line {:02}\n", 29 - current.lines().count())), "{older}");
        assert_eq!(std::fs::read_to_string(logs.join(".gitignore")).unwrap().lines().last(), Some("*"));
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_and_the_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = Opened::open(dir.path(), ".acas/logs", 100).unwrap();
        for line in ["short\n".to_owned(), format!("WARN {}é\n", "Z".repeat(10_000)), "after\n".to_owned()] {
            opened.write(line.as_bytes()).unwrap();
        }
        let logs = dir.path().join(".acas/logs");
        for name in [FILE_NAME, ROTATED_NAME] {
            let text = std::fs::read_to_string(logs.join(name)).unwrap();
            assert!(text.len() <= 100, "{name}: {} bytes", text.len());
        }
        let cut = clip(
            format!("{}é{}\n", "a".repeat(LINE_BYTES - 30), "b".repeat(LINE_BYTES)).as_bytes(),
            LINE_BYTES,
        )
        .into_owned();
        let cut = String::from_utf8(cut).expect("cut at a character");
        assert!(cut.len() <= LINE_BYTES && cut.ends_with(" bytes cut]\n"), "{}", &cut[cut.len() - 40..]);
        assert_eq!(clip(b"fits\n", 5), Cow::Borrowed(b"fits\n"));
    }

    #[test]
    fn a_link_in_the_way_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".acas")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".acas/logs")).unwrap();
        let error = Opened::open(dir.path(), ".acas/logs", 100).err().expect("refused");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
