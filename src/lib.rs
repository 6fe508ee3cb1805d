//! Officiant: a terminal console for HSM key ceremonies. See README.md and DESIGN.md.
#![forbid(unsafe_code)]

pub mod approvals;
pub mod ceremony;
pub mod cli;
pub mod coredump;
pub mod custody;
pub mod formats;
pub mod hsm;
pub mod keys;
pub mod output;
pub mod pki;
pub mod secret;
pub mod signing;
pub mod tui;
