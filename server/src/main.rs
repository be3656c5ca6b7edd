fn main() {
    std::process::exit(acas::cli::main());
}
