//! Officiant's integration tests, in one crate: one binary to link instead of one per
//! file, so the test build is short and small.
//!
//! Each `mod` below was once its own `tests/NAME.rs` and keeps that name: `cargo test
//! --features mock-hsm --test it sign_raw::` runs one of them, `-- --exact
//! sign_raw::openssl_accepts_every_raw_signature` one test. The shared helpers live once,
//! in `support` (`support::oracle` finds the vendor tools that judge the results).
//!
//! To add a test module: put it in `tests/it/NAME.rs`, add `mod NAME;` below (in order),
//! and reach the helpers with `use crate::support;` (or `use crate::support::sign::…`).
//! Everything here runs in one process, on parallel threads: pass environment variables
//! and working directories to child commands (`Command::env`, `Command::current_dir`),
//! never to the process; in-process SoftHSM goes through `support::SOFTHSM_IN_PROCESS`.
//!
//! The whole suite with its judges installed: `bash scripts/test.sh`.

// Tests may unwrap, expect and panic: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Fixtures build images and keys from small literals and loop counters; the cast lints
// guard input handling in src/, where every cast is checked or proven.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod support;

mod approvals_ceremony;
mod approvals_cli;
mod approvals_console;
mod approvals_gate;
mod approvals_overhead;
mod approvals_signers;
mod ceremonies_softhsm;
mod ceremony_adopt;
mod ceremony_concurrency;
mod ceremony_demo;
mod ceremony_engine;
mod ceremony_fuses_roots;
mod ceremony_pki_hab4;
mod ceremony_pki_resume;
mod ceremony_pki_scripts;
mod ceremony_resume;
mod ceremony_resume_softhsm;
mod ceremony_retry;
mod ceremony_scripts;
mod ceremony_sign_steps;
mod ceremony_signoffs;
mod cli_auth_key;
mod cli_core_dump;
mod cli_prompt;
mod cli_tbbr;
mod cli_token;
mod custody_ceremonies;
mod custody_console;
mod custody_resume;
mod custody_shares;
mod custody_softhsm;
#[cfg(feature = "mock-hsm")]
mod custody_yubihsm;
mod esp32_sbv2;
mod evidence;
mod file_modes;
mod fuses_cli;
mod fuses_hab4;
mod fuses_keys;
mod hostile_scripts;
mod imx_ahab_fuses;
mod imx_ahab_sign;
mod imx_ceremonies;
mod imx_hab4;
mod keys_private;
mod parsers_never_panic;
mod pkcs11_ceremonies;
mod pkcs11_softhsm;
mod pki_generic;
mod pki_hab4;
mod pki_softhsm;
mod secret_echo;
mod sign_bench_setup;
mod sign_cli;
mod sign_esp32;
mod sign_raw;
mod sign_stm32;
mod sim_import;
mod sim_lock;
mod sim_sign;
mod sim_token;
mod tbbr_chain;
mod token_data_storage;
mod tui_e2e;
mod weak_keys;
#[cfg(feature = "mock-hsm")]
mod yubihsm_ceremony;
#[cfg(feature = "mock-hsm")]
mod yubihsm_native;
