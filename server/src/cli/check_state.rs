//! `acas check-state`: reads the whole state database of a workspace and says whether it is
//! sound. Opening the state reads only its first pages; this is the full check, on demand.

use std::path::Path;

use super::{EXIT_FAILED, EXIT_OK, output};
use crate::store::{Store, StoreOptions};

pub(super) fn run(path: &Path) -> i32 {
    let root = match super::resolve(path) {
        Ok((root, true)) => root,
        Ok((_, false)) | Err(_) => {
            output::note(&format!("acas check-state: {} is not a directory", path.display()));
            return EXIT_FAILED;
        }
    };
    match Store::check_workspace(&root, &StoreOptions::default()) {
        Ok(true) => {
            output::line(&format!("{}: the state is sound", root.join(".acas/state.db").display()));
            EXIT_OK
        }
        Ok(false) => {
            output::line(&format!("{}: no state recorded yet", root.display()));
            EXIT_OK
        }
        Err(error) => {
            output::note(&format!("acas check-state: {error}"));
            EXIT_FAILED
        }
    }
}
