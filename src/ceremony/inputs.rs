//! Where a run's inputs come from: the one thing that differs between the faces.
//!
//! The runner asks an [`Inputs`] for each sign-off, confirmation and secret the engine
//! needs, tells it what the engine refused, and reports progress to it. The headless face
//! answers from the answers file ([`AnswersFile`]); the console answers from the person at
//! the keyboard (its worker forwards each question to the screen and waits).
//!
//! Custody steps also cross here: a custodian is named for each share
//! ([`Inputs::custodian`]), a share is handed to them ([`Inputs::deliver_share`]: on a
//! cleared screen, or into the file the answers name) or taken from them
//! ([`Inputs::receive_share`]). Shares cross only as [`Share`] or [`Secret`].

use std::path::Path;

use super::answers::Answers;
use super::custody::CustodyTurn;
use super::engine::{State, StepResult};
use super::people::Participant;
use super::script::{Action, Script};
use crate::approvals::signoff;
use crate::custody::shamir::Share;
use crate::secret::{Secret, SecretSource};

/// An input given, or the run to stop (with the reason for the transcript).
#[derive(Debug)]
pub enum Answer<T> {
    /// The input.
    Given(T),
    /// Stop the run, for this reason.
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
    /// The token's label as it reports it.
    pub token_label: String,
    /// Its serial number as it reports it.
    pub serial: String,
    /// Objects on the token now (`None`: the token lists none without a login).
    pub objects: Option<usize>,
    /// What the step destroys, in one line.
    pub what: String,
}

/// A share to hand to one custodian.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// Their name as the roll call spells it.
    pub custodian: &'a str,
    /// The share (its text is shown once, on a cleared screen).
    pub share: &'a Share,
    /// How many shares the step hands out.
    pub of: u8,
    /// The run's out dir: no share is ever written there.
    pub out_dir: &'a Path,
    /// Handed out again: why the last copy was not accepted.
    pub retry: Option<&'a str>,
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

    /// Custody step `step` calls on a custodian in `role` for `turn` (someone not in
    /// `taken`, who has dealt with this step already): their name.
    fn custodian(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        turn: CustodyTurn,
        taken: &[String],
    ) -> Answer<String> {
        let _ = (role, turn, taken);
        Answer::Abort(format!(
            "{}: this face has no custodians",
            script.steps[step].place(step)
        ))
    }

    /// Hand `d.share` to `d.custodian`, and only to them; the proof they copied it: the
    /// share as they copied it (typed back, or read back from where it was written).
    fn deliver_share(&mut self, script: &Script, step: usize, d: &Delivery<'_>) -> Answer<Secret> {
        let _ = d;
        Answer::Abort(format!(
            "{}: this face cannot hand shares out",
            script.steps[step].place(step)
        ))
    }

    /// The share `custodian` gives for `turn` (its text). `retry`: why the last one was
    /// refused.
    fn receive_share(
        &mut self,
        script: &Script,
        step: usize,
        custodian: &str,
        turn: CustodyTurn,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        let _ = (custodian, turn, retry);
        Answer::Abort(format!(
            "{}: this face cannot take shares in",
            script.steps[step].place(step)
        ))
    }

    /// After an interruption: share `index` of `of` as an earlier attempt of step `step`
    /// handed it out, with its custodian, where the face can read it back (headless:
    /// their file); `None` where there is none or the face cannot tell.
    fn delivered_share(
        &mut self,
        script: &Script,
        step: usize,
        index: u8,
        of: u8,
    ) -> Option<(String, Result<Secret, String>)> {
        let _ = (script, step, index, of);
        None
    }
}

/// The headless face: every answer from the answers file, secrets from their sources.
pub struct AnswersFile<'a> {
    /// The parsed answers file.
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

    fn custodian(
        &mut self,
        script: &Script,
        step: usize,
        _role: &str,
        turn: CustodyTurn,
        taken: &[String],
    ) -> Answer<String> {
        let s = &script.steps[step];
        let entries = self.answers.custodians_for(&s.id);
        let found = match turn {
            CustodyTurn::Receive { index, .. } => usize::from(index)
                .checked_sub(1)
                .and_then(|i| entries.get(i)),
            CustodyTurn::Give { .. } => entries.iter().find(|c| {
                let k = super::people::person_key(&c.name);
                !taken.iter().any(|t| super::people::person_key(t) == k)
            }),
        };
        match found {
            Some(c) => Answer::Given(c.name.clone()),
            None => Answer::Abort(format!(
                "{}: no further [[custodian]] for this step in the answers file",
                s.place(step)
            )),
        }
    }

    /// Into the custodian's file (mode 0600, never over a file, never in the out dir),
    /// then read back as the proof.
    fn deliver_share(&mut self, script: &Script, step: usize, d: &Delivery<'_>) -> Answer<Secret> {
        let place = script.steps[step].place(step);
        if let Some(why) = d.retry {
            return Answer::Abort(format!("{place}: {why}"));
        }
        let Some(path) = self.share_file(script, step, d.share.index()) else {
            return Answer::Abort(format!(
                "{place}: no share-file for share {} in the answers file",
                d.share.index()
            ));
        };
        let what = format!("share {} of {} for {}", d.share.index(), d.of, d.custodian);
        if let Err(e) = check_share_path(&path, d.out_dir) {
            return Answer::Abort(format!("{place}: {what}: {e}"));
        }
        if let Err(e) = crate::custody::wrap_key::write_share_file(&path, d.share) {
            return Answer::Abort(format!(
                "{place}: {what}: {e}{}",
                if path.symlink_metadata().is_ok() {
                    " (a share is never written over a file: if it is a share of a key \
                     that was never stored, remove it and run again)"
                } else {
                    ""
                }
            ));
        }
        match SecretSource::File(path).read(&what) {
            Ok(v) => Answer::Given(v),
            Err(e) => Answer::Abort(format!("{place}: {what}: reading it back: {e}")),
        }
    }

    fn receive_share(
        &mut self,
        script: &Script,
        step: usize,
        custodian: &str,
        _turn: CustodyTurn,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        let s = &script.steps[step];
        let place = s.place(step);
        // The file would give the same share again.
        if let Some(why) = retry {
            return Answer::Abort(format!("{place}: {why}"));
        }
        let key = super::people::person_key(custodian);
        let entry = self
            .answers
            .custodians_for(&s.id)
            .into_iter()
            .find(|c| super::people::person_key(&c.name) == key);
        let src = match entry {
            Some(c) => match (&c.share, &c.share_file) {
                (Some(src), _) => src.clone(),
                // A generate-wrap-key step proving a wrap key from an interrupted run.
                (None, Some(p)) => SecretSource::File(p.clone()),
                (None, None) => {
                    return Answer::Abort(format!(
                        "{place}: no share source for custodian {custodian} in the answers file"
                    ))
                }
            },
            None => {
                return Answer::Abort(format!(
                    "{place}: {custodian} is not a [[custodian]] of this step in the answers file"
                ))
            }
        };
        match src.read(&format!("the share of {custodian} for {place}")) {
            Ok(v) => Answer::Given(v),
            Err(e) => Answer::Abort(format!("{place}: the share of {custodian}: {e}")),
        }
    }

    fn delivered_share(
        &mut self,
        script: &Script,
        step: usize,
        index: u8,
        _of: u8,
    ) -> Option<(String, Result<Secret, String>)> {
        let s = &script.steps[step];
        let c = self
            .answers
            .custodians_for(&s.id)
            .get(usize::from(index).checked_sub(1)?)
            .copied()?;
        let path = c.share_file.clone()?;
        path.symlink_metadata().ok()?;
        let read = SecretSource::File(path)
            .read(&format!("share {index} of {}", c.name))
            .map_err(|e| e.to_string());
        Some((c.name.clone(), read))
    }
}

impl AnswersFile<'_> {
    /// Where share `index` of generate-wrap-key step `step` is written.
    fn share_file(&self, script: &Script, step: usize, index: u8) -> Option<std::path::PathBuf> {
        let s = &script.steps[step];
        if !matches!(s.action, Action::GenerateWrapKey(_)) {
            return None;
        }
        self.answers
            .custodians_for(&s.id)
            .get(usize::from(index).checked_sub(1)?)
            .and_then(|c| c.share_file.clone())
    }
}

/// A share file must go where its custodian takes it away: into a directory that exists
/// (their medium, mounted), and never into the run's out dir.
fn check_share_path(path: &Path, out_dir: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = parent.canonicalize().map_err(|e| {
        format!(
            "{}: the directory does not exist ({}): is the custodian's medium mounted?",
            parent.display(),
            e.kind()
        )
    })?;
    if let Ok(out) = out_dir.canonicalize() {
        if dir.starts_with(&out) {
            return Err(format!(
                "{} is inside the run's out dir {}: a share never goes with the ceremony's records",
                path.display(),
                out_dir.display()
            ));
        }
    }
    Ok(())
}
