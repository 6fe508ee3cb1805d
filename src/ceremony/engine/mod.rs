//! The ceremony as a pure state machine: `update(&mut State, Event) -> Vec<Effect>`.
//!
//! No I/O, no clock, no secrets: a face (the headless runner, the console) feeds events
//! (a sign-off typed or read from the answers file, a step's result from the runner) and
//! performs the effects it gets back. The machine walks the steps in order; before each
//! it asks for the sign-offs, the confirmation (destructive steps) and the secrets the
//! step needs, one at a time, then asks for the step to run.
//!
//! Secrets never enter the state: `Effect::NeedSecret` names one, the face puts the value
//! in its own vault and answers `Event::SecretProvided { name }`.
//!
//! People: before the first step the machine asks for the roster (`NeedRoster`: who is
//! present, in which roles); every sign-off and acknowledgement then names someone on it,
//! compared as a person (see [`super::people`]), and one person never fills two seats of
//! one step. After a step whose result a witness must check, the machine pauses for the
//! reviewer's acknowledgement (`NeedAck`) before it goes on.
//!
//! `state`: what the machine knows and the rules that read it; `messages`: what crosses
//! its edge (events, effects, records, results); `update`: the transition itself.

mod messages;
mod state;
mod update;

pub use messages::{CreatedObject, Effect, Event, OutputFile, Record, StepResult};
pub use state::{Phase, SignOff, State, StepPlan, StepState, StepStatus};
pub use update::{preview, update};

#[cfg(test)]
mod tests;
