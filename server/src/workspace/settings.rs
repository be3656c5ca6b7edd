//! The configuration in force: `.acas/config.toml` with the editor's settings over it.
//!
//! The file is read again when it changes on disk or when the editor's settings change; the
//! read happens off the loop and only the latest one is applied. A file that cannot be used
//! keeps the previous configuration in force and shows its error on the file; fixing it clears
//! that. A changed escalation section rebuilds the escalation engine (off the loop too); a
//! changed ignore list or size limit rescans the workspace; changed `[[checkers]]` detect the
//! checkers again.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Done, MessageLevel, Output, Workspace, escalations};
use crate::analysis::FileDiagnostic;
use crate::classify::{self, Severity};
use crate::config::{self, Config};
use crate::escalate::engine::Escalator;
use crate::text::{Position, TextRange};
use crate::watch::IgnoreRules;

impl Workspace {
    pub(super) fn settings_changed(&mut self, settings: acas_protocol::Settings) {
        if settings == self.settings {
            return;
        }
        self.settings = settings;
        self.reload_config();
    }

    /// Reads the configuration again, off the loop when it is on disk.
    pub(super) fn reload_config(&mut self) {
        self.config_generation += 1;
        let generation = self.config_generation;
        if !self.on_disk {
            self.config_loaded(generation, Config::default(), Vec::new());
            return;
        }
        let root = self.root.clone();
        self.off_loop(
            "reading the configuration",
            move || config::load_all(&root),
            move |(config, errors)| Done::Config { generation, config: Box::new(config), errors },
        );
    }

    /// Applies a configuration read, unless a later read was started meanwhile. Every mistake
    /// is a diagnostic in its file; a mistake in a `[[checkers]]` entry leaves that entry out and
    /// the rest in force, any other keeps the previous settings.
    pub(super) fn config_loaded(
        &mut self,
        generation: u64,
        config: Config,
        errors: Vec<config::ConfigError>,
    ) {
        if generation != self.config_generation {
            return;
        }
        let clear = self.config_error.is_some();
        if let Some(error) = errors.iter().find(|e| !e.checker) {
            self.config_error = Some(error.to_string());
            self.message(MessageLevel::Error, format!("{error}; the previous settings stay in force"));
            for output in config_diagnostics_all(&self.root, &errors, clear) {
                let _ = self.output.send(output);
            }
            return;
        }
        if errors.is_empty() {
            self.config_error = None;
        } else {
            self.config_error = Some(errors[0].to_string());
            self.message(MessageLevel::Error, format!("{}; the other entries are in force", listed(&errors)));
        }
        for output in config_diagnostics_all(&self.root, &errors, clear) {
            let _ = self.output.send(output);
        }
        let config = config.with_settings(&self.settings);
        if config.escalation != self.config.escalation {
            self.config.escalation = config.escalation.clone();
            self.escalator_generation += 1;
            let generation = self.escalator_generation;
            let (config, store) = (self.config.clone(), self.store.clone());
            self.off_loop(
                "building the escalation engine",
                move || escalations::build_escalator(&config, store, None),
                move |escalator| Done::Escalator { generation, escalator },
            );
        }
        if config != self.config {
            let rescan =
                config.ignore != self.config.ignore || config.max_file_size != self.config.max_file_size;
            let checkers_changed = config.checkers != self.config.checkers;
            self.config = config;
            if checkers_changed {
                self.checker_config_changed();
            }
            if rescan && self.on_disk {
                self.restart_queue();
                self.rules = Arc::new(IgnoreRules::new(&self.root, &self.config.ignore));
                self.watcher = None;
                if self.watch {
                    self.start_watcher();
                }
                self.start_walk(true);
            }
        }
    }

    /// Puts a rebuilt escalation engine in force, unless a later build was started meanwhile.
    pub(super) fn escalator_built(
        &mut self,
        generation: u64,
        escalator: Result<Arc<Escalator>, super::Refused>,
    ) {
        if generation == self.escalator_generation {
            self.escalator = escalator;
        }
    }
}

/// The diagnostics of a configuration file: its error, located, or none.
/// The diagnostics of the configuration files with mistakes, and, when `clear` (an earlier read
/// published some), of the workspace's file without any, which clears it.
pub(super) fn config_diagnostics_all(
    root: &std::path::Path,
    errors: &[config::ConfigError],
    clear: bool,
) -> Vec<Output> {
    let mut paths = Vec::new();
    if clear {
        paths.push(config::path(root));
    }
    for e in errors {
        if !paths.contains(&e.path) {
            paths.push(e.path.clone());
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let mine: Vec<&config::ConfigError> = errors.iter().filter(|e| e.path == path).collect();
            config_diagnostics(path, &mine)
        })
        .collect()
}

/// How many `[[checkers]]` entries are wrong, and the first.
pub(super) fn listed(errors: &[config::ConfigError]) -> String {
    match errors {
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more mistakes, each shown in its file)", rest.len()),
        [] => String::new(),
    }
}

pub(super) fn config_diagnostics(path: PathBuf, errors: &[&config::ConfigError]) -> Output {
    let diagnostics: Vec<FileDiagnostic> = errors
        .iter()
        .map(|e| {
            let at = Position {
                line: e.line.saturating_sub(1) as u32,
                character: e.column.saturating_sub(1) as u32,
            };
            FileDiagnostic {
                range: TextRange { start: at, end: Position { line: at.line, character: at.character + 1 } },
                severity: Severity::Error,
                category: classify::Category::Build,
                message: e.message.clone(),
                source: "acas".to_owned(),
                code: None,
                fingerprint: classify::fingerprint(&e.message, classify::Category::Build, None),
                symbol: None,
                related: Vec::new(),
                fix_id: None,
            }
        })
        .collect();
    Output::Diagnostics { path, version: None, diagnostics: diagnostics.into() }
}
