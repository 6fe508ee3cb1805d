//! Wiring only: parse the command line, run it, print a one-line error on failure.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = officiant::cli::Cli::parse();
    if let Err(f) = officiant::cli::dispatch(cli) {
        eprintln!("officiant: {}", f.0);
        std::process::exit(1);
    }
}
