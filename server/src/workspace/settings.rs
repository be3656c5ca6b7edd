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
            self.config_loaded(generation, Config::default(), None);
            return;
        }
        let root = self.root.clone();
        self.off_loop(
            "reading the configuration",
            move || config::load(&root),
            move |(config, error)| Done::Config { generation, config: Box::new(config), error },
        );
    }

    /// Applies a configuration read, unless a later read was started meanwhile.
    pub(super) fn config_loaded(
        &mut self,
        generation: u64,
        config: Config,
        error: Option<config::ConfigError>,
    ) {
        if generation != self.config_generation {
            return;
        }
        if let Some(error) = error {
            self.config_error = Some(error.to_string());
            self.message(MessageLevel::Error, format!("{error}; the previous settings stay in force"));
            let _ = self.output.send(config_diagnostics(error.path.clone(), Some(&error)));
            return;
        }
        if self.config_error.take().is_some() {
            // Fixed: clear the diagnostic in the configuration file.
            let _ = self.output.send(config_diagnostics(config::path(&self.root), None));
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
pub(super) fn config_diagnostics(path: PathBuf, error: Option<&config::ConfigError>) -> Output {
    let diagnostics: Vec<FileDiagnostic> = error
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
        .into_iter()
        .collect();
    Output::Diagnostics { path, version: None, diagnostics: diagnostics.into() }
}
