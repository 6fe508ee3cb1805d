//! Ceremony scripts: parse strictly, validate the whole plan, then run it as a state
//! machine (`update(&mut State, Event) -> Vec<Effect>`); the effect runner is the only I/O.
//!
//! - [`script`]: the TOML schema; every error names file, step (index and id) and field.
//! - [`answers`]: the answers file (sign-offs, confirmations, secret sources).
//! - [`plan`]: validation before any token is opened (ids, roles, labels, outputs,
//!   capabilities, answers); `check_token` after opening, before the first step.
//! - [`engine`]: the pure machine the headless runner and the console both drive.
//! - [`runner`]: the effect runner (token calls, files, clock) and `execute_step`.
//! - [`transcript`]: the hash-chained evidence and its Markdown rendering.
//! - [`journal`]: what lets a killed run resume without doing a step twice.
//! - [`steps`]: the root-of-trust step kinds (issue-certificate, export-fuses, sign,
//!   verify, issue-tbbr): their plan checks and executors, and their resume rule.
//! - [`custody`]: the custody step kinds (generate-wrap-key, backup, restore), and
//!   [`custodians`]: how their shares cross the face boundary ([`inputs::Inputs`]).
//!
//! # Adding a step kind
//!
//! It is a local change in four places:
//! 1. `script/`: a variant of [`script::Action`], its struct in [`script::kinds`], its
//!    name in [`script::KINDS`], a match arm in the `parse` of its family's `*_steps.rs`
//!    module reading its fields with `Fields` (unknown fields are rejected for you), and
//!    arms in `Action::kind`, and where they apply `Action::secrets` (secret names it
//!    reads), `Action::destructive` (needs a confirmation) and `Action::outputs` (file
//!    names it writes into the out dir).
//! 2. `plan/`: an arm in `check_action` (plan/mod.rs) with its check in plan/kinds.rs
//!    (labels it creates or uses), what it asks of a backend in `planned_steps` and
//!    `check_capabilities` (plan/backend.rs), and its answers in plan/answers.rs.
//! 3. `execute.rs`: an arm in `execute_action` that does the work and returns a
//!    [`engine::StepResult`] (objects created, output files). Make it idempotent under
//!    `reconcile = true`: look for its work on the token / in the out dir and adopt it
//!    only when the journal proves it is this run's: call `execute::before_token_call`
//!    before a token call that creates objects, and write outputs with
//!    `execute::write_output(ctx, …)` (it journals name and SHA-256 first; atomic).
//! 4. A case in tests/it/ceremony_scripts.rs for each new error message, and a step in a
//!    shipped ceremony that exercises it.
//!
//! The engine needs no change unless the kind changes the login session (see
//! `engine::SessionEffect`).

pub mod answers;
pub mod custodians;
pub mod custody;
pub mod engine;
pub mod evidence;
pub mod execute;
pub mod inputs;
pub mod journal;
pub mod lock;
pub mod people;
pub mod plan;
pub mod runner;
pub mod script;
pub mod steps;
pub mod transcript;
