pub mod classify;
pub mod cli;
pub mod text;
