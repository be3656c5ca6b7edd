//! The contract between the ACAS server and its editors.
//!
//! Every custom LSP method and notification ACAS speaks is a type here (an uninhabited `enum`
//! implementing LSP's `Request` or `Notification` trait), next to the types of their params and
//! results and the settings schema. Nothing else lives in this crate: no behaviour, no I/O.
//! `protocol/README.md` documents each method; the extension's TypeScript types are generated
//! from these with ts-rs (see [`typescript`]) and a test fails when the checked-in copy drifts.

pub mod ext;
pub mod settings;
pub mod typescript;

pub use settings::Settings;
