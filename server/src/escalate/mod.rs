//! AI escalation: deciding when to ask, asking, and bringing answers back.
//!
//! `rules` decides which diagnostics matter. The provider layer, context builder, budgets and
//! cache live beside it. Nothing here knows LSP.

pub mod context;
pub mod cost;
pub mod git;
pub mod redact;
pub mod rules;
pub mod symbols;
