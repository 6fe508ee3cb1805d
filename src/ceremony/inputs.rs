//! Where a run's inputs come from: the one thing that differs between the faces.
//!
//! The runner asks an [`Inputs`] for each sign-off, confirmation and secret the engine
//! needs, tells it what the engine refused, and reports progress to it. The headless face
//! answers from the answers file ([`AnswersFile`]); the console answers from the person at
//! the keyboard (its worker forwards each question to the screen and waits).

use super::answers::Answers;
use super::engine::{State, StepResult};
use super::people::Participant;
use super::script::Script;
use crate::approvals::signoff;
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
    /// The token as it is now (at the start, and after it was initialized).
    Token(&'a crate::hsm::TokenInfo),
}

/// What a destructive step will destroy, for the person who confirms it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Danger {
    pub token_label: String,
    pub serial: String,
    /// Objects on the token now (`None`: the token lists none without a login).
    pub objects: Option<usize>,
    /// What the step destroys, in one line.
    pub what: String,
}

/// A face's answers to the runner's questions. Every question names the step (index into
/// `script.steps`); secrets cross only as [`Secret`].
pub trait Inputs {
    /// Who is present, in which roles (once per session, before the first step).
    fn roster(&mut self, script: &Script) -> Answer<Vec<Participant>>;

    /// The `have + 1`-th of `need` people in `role` signs off step `step`: their name.
    fn sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
    ) -> Answer<String>;

    /// The `have + 1`-th of `need` people in role `role`, which signs with SSH keys,
    /// signs off step `step`: their name and their SSHSIG over `ask.message` (namespace
    /// `officiant-signoff`). The runner verifies it against the allowed signers; a
    /// refused one is reported through [`Inputs::rejected`] and asked again. A face that
    /// cannot make or read signatures stops the run.
    fn signed_sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        _have: usize,
        _need: usize,
        _ask: &signoff::Ask,
    ) -> Answer<signoff::Signed> {
        Answer::Abort(format!(
            "{}: role {role} signs off with SSH keys, which this face cannot ask for",
            script.steps[step].place(step)
        ))
    }

    /// Go ahead with destructive step `step`, which destroys what `danger` says.
    fn confirm(&mut self, script: &Script, step: usize, danger: &Danger) -> Answer<()>;

    /// The value of secret `name` for step `step`. `sets`: the step sets this secret (a
    /// new PIN), so a person types it twice. `retry`: the token refused the last value
    /// (why, with the retries left).
    fn secret(
        &mut self,
        script: &Script,
        step: usize,
        name: &str,
        sets: bool,
        retry: Option<&str>,
    ) -> Answer<Secret>;

    /// The reviewer (`role`) read step `step`'s result aloud and it matched: their name.
    fn acknowledge(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        result: &StepResult,
    ) -> Answer<String>;

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
    fn roster(&mut self, script: &Script) -> Answer<Vec<Participant>> {
        Answer::Given(self.answers.roster(script))
    }

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

    /// The signature file the answers name. One that is not there yet stops the run with
    /// the message to sign (a signer away from the console signs it; the run is then run
    /// again and resumes here).
    fn signed_sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        have: usize,
        _need: usize,
        ask: &signoff::Ask,
    ) -> Answer<signoff::Signed> {
        let s = &script.steps[step];
        let place = s.place(step);
        let Some(a) = self.answers.sign_off_for(&s.id, role, have) else {
            return Answer::Abort(format!(
                "{place}: missing sign-off by {role} in the answers file"
            ));
        };
        let Some(file) = &a.signature else {
            return Answer::Abort(format!(
                "{place}: {}'s sign-off as {role} needs signature = \"FILE\" in the answers file",
                a.name
            ));
        };
        if !file.exists() {
            return Answer::Abort(format!(
                "{place}: no signature file {} for {}'s sign-off as {role}: sign {} with ssh-keygen -Y sign -f KEY -n {} < MESSAGE > SIGFILE, then run again",
                file.display(),
                a.name,
                ask.message_file.display(),
                crate::approvals::SIGNOFF_NAMESPACE
            ));
        }
        match crate::approvals::read_signature(file) {
            Ok(signature) => Answer::Given(signoff::Signed {
                name: a.name.clone(),
                signature,
            }),
            Err(e) => Answer::Abort(format!("{place}: {e}")),
        }
    }

    fn confirm(&mut self, script: &Script, step: usize, _danger: &Danger) -> Answer<()> {
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

    fn secret(
        &mut self,
        script: &Script,
        step: usize,
        name: &str,
        sets: bool,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        let place = script.steps[step].place(step);
        // The file would give the same value again.
        if let Some(why) = retry {
            return Answer::Abort(format!("{place}: {why}"));
        }
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

    fn acknowledge(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        _result: &StepResult,
    ) -> Answer<String> {
        let s = &script.steps[step];
        match self.answers.acknowledgement(&s.id) {
            Some(name) => Answer::Given(name.to_string()),
            None => Answer::Abort(format!(
                "{}: missing acknowledgement of the result by {role} in the answers file",
                s.place(step)
            )),
        }
    }

    /// An answers file cannot be asked again: a refused answer stops the run.
    fn rejected(&mut self, script: &Script, step: usize, reason: &str) -> Answer<()> {
        Answer::Abort(format!("{}: {reason}", script.steps[step].place(step)))
    }
}
