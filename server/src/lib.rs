pub mod classify;
pub mod cli;
pub mod store;
pub mod text;
