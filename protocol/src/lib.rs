//! The contract between the ACAS server and its editors.
//!
//! Every custom LSP method and notification ACAS speaks is a type here, next to the settings
//! schema. Nothing else lives in this crate: no behaviour, no I/O. `protocol/README.md`
//! documents each method.

pub mod settings;

pub use settings::Settings;
