fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = acas::process_tree::supervise(&args) {
        std::process::exit(code);
    }
    if let Some(code) = acas::workflow::template::render_process::serve(&args) {
        std::process::exit(code);
    }
    // The kernel's link to this very binary: it still works when the file was replaced.
    acas::process_tree::use_supervisor("/proc/self/exe".into());
    std::process::exit(acas::cli::main());
}
