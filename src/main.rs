//! Wiring only: parse the command line, run it, print a one-line error on failure.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    // Before anything can hold a secret: no core dump may ever carry one.
    if let Err(e) = officiant::coredump::forbid() {
        eprintln!("officiant: cannot keep secrets out of core dumps: {e}");
        std::process::exit(1);
    }
    let cli = officiant::cli::Cli::parse();
    if let Err(f) = officiant::cli::dispatch(cli) {
        eprintln!("officiant: {}", f.0);
        std::process::exit(1);
    }
}
