//! Prints the Secure Boot V2 image digest (SHA-256, image padded with 0xFF to 4 KiB) and
//! the padded length of a file, streamed. Used by scripts/bench_esp32_digest.sh to show
//! that memory stays flat for a 1 GiB image.
use std::process::ExitCode;

use officiant::formats::esp32;
use officiant::keys::HashAlg;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: esp32_image_digest FILE");
        return ExitCode::FAILURE;
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            return ExitCode::FAILURE;
        }
    };
    match esp32::image_digest(HashAlg::Sha256, file) {
        Ok((digest, padded)) => {
            println!("{} {padded}", hex::encode(digest));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
