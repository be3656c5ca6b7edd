//! `acas mcp`: serves the workspace to AI agents over the Model Context Protocol (stdio, or
//! streamable HTTP on 127.0.0.1 behind a bearer token), and `--print-token`.

use std::path::Path;

use super::{EXIT_FAILED, EXIT_OK, output};
use crate::mcp::Transport;

pub(super) struct Args<'a> {
    pub path: &'a Path,
    pub http: bool,
    pub port: u16,
    pub print_token: bool,
}

pub(super) fn run(args: Args<'_>) -> i32 {
    if args.print_token {
        return match crate::mcp::token() {
            Ok(token) => {
                output::line(&token);
                EXIT_OK
            }
            Err(error) => {
                output::note(&format!("acas mcp: {error:#}"));
                EXIT_FAILED
            }
        };
    }
    let root = match super::resolve(args.path) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!(
                "acas mcp: {} is not a directory; give the workspace",
                args.path.display()
            ));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas mcp: {error}"));
            return EXIT_FAILED;
        }
    };
    // The server records what agents do and reads what the workspace recorded: it needs the
    // state it can write, as `acas serve` does.
    if let Err(code) = super::refuse_read_only("mcp", &root) {
        return code;
    }
    if let Err(error) = crate::store::Store::open_workspace(&root, crate::store::StoreOptions::default()) {
        output::note(&format!("acas mcp: {error}"));
        return EXIT_FAILED;
    }
    super::end_orphans();
    let transport = if args.http { Transport::Http { port: args.port } } else { Transport::Stdio };
    let runtime = super::runtime();
    let result = runtime.block_on(crate::mcp::serve(root, transport, |address, token| {
        output::note(&format!(
            "acas mcp: serving http://{address}{} (bearer token in {})",
            crate::mcp::ENDPOINT,
            token.display()
        ));
    }));
    // A read of stdin may still be pending on a blocking thread: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => EXIT_OK,
        Err(error) => {
            output::note(&format!("acas mcp: {error:#}"));
            EXIT_FAILED
        }
    }
}
