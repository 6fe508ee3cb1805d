//! The custodians' desk: how the runner answers a custody step's needs
//! ([`super::custody::Custodians`]) through the face ([`Inputs`]).
//!
//! The face names each custodian; the desk seats them as the engine seats a sign-off:
//! on the roll call, in the custodian role, and once per step. A share handed out comes
//! back as the face's proof of the copy (typed again at the console, read back from the
//! custodian's file headless) and must be that share; a share given is read for its form,
//! its set (T) and its index. What the face got wrong is asked again where the face can
//! be asked again ([`Inputs::rejected`]). No share is logged, recorded or kept here.

use std::path::Path;

use super::custody::{Custodians, CustodyTurn, Halt};
use super::inputs::{Answer, Delivery, Inputs, Progress};
use super::people::{self, Participant};
use super::script::Script;
use crate::custody::shamir::Share;
use crate::secret::Secret;

/// Custody step `step`'s dealings with its custodians, for one attempt.
pub struct Desk<'a> {
    inputs: &'a mut dyn Inputs,
    script: &'a Script,
    step: usize,
    roster: &'a [Participant],
    role: String,
    out_dir: &'a Path,
    /// What the progress line says while the token works.
    busy: String,
    /// Custodians dealt with in this attempt (one share each).
    taken: Vec<String>,
}

impl<'a> Desk<'a> {
    pub fn new(
        inputs: &'a mut dyn Inputs,
        script: &'a Script,
        step: usize,
        roster: &'a [Participant],
        out_dir: &'a Path,
        busy: String,
    ) -> Self {
        let role = super::plan::custody_need(&script.steps[step].action)
            .map(|(r, _)| r.to_string())
            .unwrap_or_default();
        Desk {
            inputs,
            script,
            step,
            roster,
            role,
            out_dir,
            busy,
            taken: Vec::new(),
        }
    }

    fn place(&self) -> String {
        self.script.steps[self.step].place(self.step)
    }

    /// The face is about to ask someone: the token is not working.
    fn idle(&mut self) {
        self.inputs.progress(self.script, Progress::Idle);
    }

    /// Tell the face what it got wrong; it asks again, or the run stops.
    fn reject(&mut self, reason: &str) -> Result<(), Halt> {
        match self.inputs.rejected(self.script, self.step, reason) {
            Answer::Given(()) => Ok(()),
            Answer::Abort(r) => Err(Halt::Abort(r)),
        }
    }

    /// A custodian named by the face, as the roll call spells them; or why not.
    fn seat(&self, name: &str) -> Result<String, String> {
        let name = people::clean_name(name)?;
        let seated = if self.roster.is_empty() {
            name
        } else {
            let Some(p) = people::find(self.roster, &name) else {
                return Err(format!("{name} is not on the roll call"));
            };
            if !p.roles.iter().any(|r| r == &self.role) {
                return Err(format!(
                    "{} is on the roll call as {}, not {}",
                    p.name,
                    p.roles.join(" and "),
                    self.role
                ));
            }
            p.name.clone()
        };
        let key = people::person_key(&seated);
        if self.taken.iter().any(|t| people::person_key(t) == key) {
            return Err(format!(
                "{seated} already has a share in this step: one share per custodian"
            ));
        }
        Ok(seated)
    }

    /// The custodian for `turn`, asked until the face names one who may take it.
    fn custodian(&mut self, turn: CustodyTurn) -> Result<String, Halt> {
        loop {
            self.idle();
            let role = self.role.clone();
            let taken = self.taken.clone();
            let name = match self
                .inputs
                .custodian(self.script, self.step, &role, turn, &taken)
            {
                Answer::Given(n) => n,
                Answer::Abort(r) => return Err(Halt::Abort(r)),
            };
            match self.seat(&name) {
                Ok(n) => return Ok(n),
                Err(why) => self.reject(&why)?,
            }
        }
    }
}

/// A share as text, read for its form; `what` names it in the error.
fn read_share(text: &Secret, what: &str) -> Result<Share, String> {
    Share::parse(text, what).map_err(|e| e.to_string())
}

impl Custodians for Desk<'_> {
    fn hand_out(&mut self, share: &Share, of: u8) -> Result<String, Halt> {
        let name = self.custodian(CustodyTurn::Receive {
            index: share.index(),
            of,
        })?;
        let mut retry: Option<String> = None;
        loop {
            self.idle();
            let d = Delivery {
                custodian: &name,
                share,
                of,
                out_dir: self.out_dir,
                retry: retry.as_deref(),
            };
            let proof = match self.inputs.deliver_share(self.script, self.step, &d) {
                Answer::Given(p) => p,
                Answer::Abort(r) => return Err(Halt::Abort(r)),
            };
            let what = format!("the copy of share {} by {name}", share.index());
            let why = match read_share(&proof, &what) {
                Ok(copy) if copy == *share => None,
                Ok(_) => Some(format!(
                    "{what} differs from the share shown: copy it again, then type it back"
                )),
                Err(e) => Some(format!("{e}: copy it again, then type it back")),
            };
            match why {
                None => break,
                Some(why) => {
                    self.reject(&why)?;
                    retry = Some(why);
                }
            }
        }
        self.taken.push(name.clone());
        Ok(name)
    }

    fn recall(
        &mut self,
        index: u8,
        of: u8,
        threshold: u8,
    ) -> Result<Option<(String, Share)>, Halt> {
        let Some((name, text)) = self
            .inputs
            .delivered_share(self.script, self.step, index, of)
        else {
            return Ok(None);
        };
        let place = self.place();
        let name = self
            .seat(&name)
            .map_err(|e| Halt::Abort(format!("{place}: custodian of share {index}: {e}")))?;
        let what = format!("the share {name} holds from an interrupted attempt");
        let text = text.map_err(|e| Halt::Abort(format!("{place}: {what}: {e}")))?;
        let share = read_share(&text, &what).map_err(|e| {
            Halt::Abort(format!(
                "{place}: {e}; it is not a share this step wrote: move it away and run again"
            ))
        })?;
        if share.index() != index || share.threshold() != threshold {
            return Err(Halt::Abort(format!(
                "{place}: {what} is share {} of a {}-of-N set, not share {index} of this \
                 step's {threshold}-of-{of}: move it away and run again",
                share.index(),
                share.threshold()
            )));
        }
        self.taken.push(name.clone());
        Ok(Some((name, share)))
    }

    fn collect(
        &mut self,
        need: usize,
        threshold: u8,
        skip: &[(String, Share)],
    ) -> Result<Vec<(String, Share)>, Halt> {
        for (name, _) in skip {
            if !self.taken.contains(name) {
                self.taken.push(name.clone());
            }
        }
        let mut got: Vec<(String, Share)> = Vec::new();
        while got.len() < need {
            let turn = CustodyTurn::Give {
                have: got.len(),
                need,
            };
            let name = self.custodian(turn)?;
            let mut retry: Option<String> = None;
            let share = loop {
                self.idle();
                let text = match self.inputs.receive_share(
                    self.script,
                    self.step,
                    &name,
                    turn,
                    retry.as_deref(),
                ) {
                    Answer::Given(t) => t,
                    Answer::Abort(r) => return Err(Halt::Abort(r)),
                };
                let what = format!("the share of {name}");
                let why = match read_share(&text, &what) {
                    Err(e) => e,
                    Ok(s) if s.threshold() != threshold => format!(
                        "{what} is of a {}-of-N set; this step takes {threshold} shares of a {threshold}-of-N set",
                        s.threshold()
                    ),
                    Ok(s) => {
                        let twice = got
                            .iter()
                            .chain(skip)
                            .find(|(_, o)| o.index() == s.index());
                        match twice {
                            Some((other, _)) => format!(
                                "{what} is share {}, which {other} gave already: each share counts once",
                                s.index()
                            ),
                            None => break s,
                        }
                    }
                };
                self.reject(&why)?;
                retry = Some(why);
            };
            self.taken.push(name.clone());
            got.push((name, share));
        }
        let busy = self.busy.clone();
        self.inputs.progress(self.script, Progress::Busy(&busy));
        Ok(got)
    }

    fn busy(&mut self, what: &str) {
        self.inputs.progress(self.script, Progress::Busy(what));
    }
}
