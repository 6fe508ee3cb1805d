//! Where a run's inputs come from: the one thing that differs between the faces.
//!
//! The runner asks an [`Inputs`] for each sign-off, confirmation and secret the engine
//! needs, tells it what the engine refused, and reports progress to it. The headless face
//! answers from the answers file ([`AnswersFile`]); the console answers from the person at
//! the keyboard (its worker forwards each question to the screen and waits).

use super::answers::Answers;
use super::engine::State;
use super::script::Script;
use crate::secret::Secret;

/// An input given, or the run to stop (with the reason for the transcript).
#[derive(Debug)]
pub enum Answer<T> {
    Given(T),
    Abort(String),
}

/// What the runner tells a face as the run goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The engine's state changed (a face renders it).
    State(&'a State),
    /// A token operation starts; the text says what (for a progress indicator).
    Busy(&'a str),
    /// The token operation ended.
    Idle,
}

/// A face's answers to the runner's questions. Every question names the step (index into
/// `script.steps`); secrets cross only as [`Secret`].
pub trait Inputs {
    /// The `have + 1`-th of `need` people in `role` signs off step `step`: their name.
    fn sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
    ) -> Answer<String>;

    /// Go ahead with destructive step `step`.
    fn confirm(&mut self, script: &Script, step: usize) -> Answer<()>;

    /// The value of secret `name` for step `step`. `sets`: the step sets this secret (a
    /// new PIN), so a person types it twice.
    fn secret(&mut self, script: &Script, step: usize, name: &str, sets: bool) -> Answer<Secret>;

    /// The engine refused the last input (`reason`); it will be asked for again.
    fn rejected(&mut self, script: &Script, step: usize, reason: &str) -> Answer<()>;

    /// Progress, for a face to show. The default shows nothing.
    fn progress(&mut self, _script: &Script, _p: Progress<'_>) {}
}

/// The headless face: every answer from the answers file, secrets from their sources.
pub struct AnswersFile<'a> {
    pub answers: &'a Answers,
}

impl Inputs for AnswersFile<'_> {
    fn sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        have: usize,
        _need: usize,
    ) -> Answer<String> {
        let s = &script.steps[step];
        match self.answers.names_for(&s.id, role).get(have) {
            Some(name) => Answer::Given(name.to_string()),
            None => Answer::Abort(format!(
                "{}: missing sign-off by {role} in the answers file",
                s.place(step)
            )),
        }
    }

    fn confirm(&mut self, script: &Script, step: usize) -> Answer<()> {
        let s = &script.steps[step];
        if self.answers.confirms.contains(&s.id) {
            Answer::Given(())
        } else {
            Answer::Abort(format!(
                "{}: destructive step not confirmed in the answers file",
                s.place(step)
            ))
        }
    }

    fn secret(&mut self, script: &Script, step: usize, name: &str, sets: bool) -> Answer<Secret> {
        let place = script.steps[step].place(step);
        let Some(src) = self.answers.secrets.get(name) else {
            return Answer::Abort(format!(
                "{place}: no source for secret {name:?} in the answers file"
            ));
        };
        let what = format!("secret {name:?} for {place}");
        let read = if sets {
            src.read_new(&what)
        } else {
            src.read(&what)
        };
        match read {
            Ok(v) => Answer::Given(v),
            Err(e) => Answer::Abort(format!("{place}: secret {name:?}: {e}")),
        }
    }

    /// An answers file cannot be asked again: a refused answer stops the run.
    fn rejected(&mut self, script: &Script, step: usize, reason: &str) -> Answer<()> {
        Answer::Abort(format!("{}: {reason}", script.steps[step].place(step)))
    }
}
