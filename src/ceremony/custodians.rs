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
    /// The desk of custody step `step` for one attempt: its custodians are people of the
    /// step's custodian role on `roster`; shares are shown and asked for through `inputs`
    /// (with `out_dir`, where no share file may be written); `busy` is the progress line
    /// while the token works.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceremony::script;
    use crate::custody::shamir;
    use std::collections::VecDeque;

    const S: &str = r#"
[ceremony]
id = "t"
title = "T"
version = 1
token = "tok"
[roles]
custodian = 1
witness = 1
[[step]]
id = "wrap"
kind = "generate-wrap-key"
label = "w"
key-id = "0200"
threshold = 2
shares = 3
custodian-role = "custodian"
"#;

    /// A face that answers from a script of replies and records what it was told.
    #[derive(Default)]
    struct Scripted {
        names: VecDeque<&'static str>,
        copies: VecDeque<String>,
        shares: VecDeque<String>,
        rejected: Vec<String>,
    }

    impl Inputs for Scripted {
        fn roster(&mut self, _: &Script) -> Answer<Vec<Participant>> {
            Answer::Abort("unused".into())
        }
        fn sign_off(
            &mut self,
            _: &Script,
            _: usize,
            _: &str,
            _: usize,
            _: usize,
        ) -> Answer<String> {
            Answer::Abort("unused".into())
        }
        fn confirm(
            &mut self,
            _: &Script,
            _: usize,
            _: &super::super::inputs::Danger,
        ) -> Answer<()> {
            Answer::Abort("unused".into())
        }
        fn secret(
            &mut self,
            _: &Script,
            _: usize,
            _: &str,
            _: bool,
            _: Option<&str>,
        ) -> Answer<Secret> {
            Answer::Abort("unused".into())
        }
        fn acknowledge(
            &mut self,
            _: &Script,
            _: usize,
            _: &str,
            _: &crate::ceremony::engine::StepResult,
        ) -> Answer<String> {
            Answer::Abort("unused".into())
        }
        fn rejected(&mut self, _: &Script, _: usize, reason: &str) -> Answer<()> {
            self.rejected.push(reason.to_string());
            Answer::Given(())
        }
        fn custodian(
            &mut self,
            _: &Script,
            _: usize,
            _: &str,
            _: CustodyTurn,
            _: &[String],
        ) -> Answer<String> {
            match self.names.pop_front() {
                Some(n) => Answer::Given(n.to_string()),
                None => Answer::Abort("no one left".into()),
            }
        }
        fn deliver_share(&mut self, _: &Script, _: usize, d: &Delivery<'_>) -> Answer<Secret> {
            match self.copies.pop_front() {
                // "=": the share as shown.
                Some(c) if c == "=" => Answer::Given(d.share.to_text()),
                Some(c) => Answer::Given(Secret::from_string(c)),
                None => Answer::Abort("no copy".into()),
            }
        }
        fn receive_share(
            &mut self,
            _: &Script,
            _: usize,
            _: &str,
            _: CustodyTurn,
            _: Option<&str>,
        ) -> Answer<Secret> {
            match self.shares.pop_front() {
                Some(s) => Answer::Given(Secret::from_string(s)),
                None => Answer::Abort("no share".into()),
            }
        }
    }

    fn roster() -> Vec<Participant> {
        let p = |n: &str, r: &str| Participant {
            name: n.into(),
            roles: vec![r.into()],
        };
        vec![
            p("Carol", "custodian"),
            p("Dave", "custodian"),
            p("Erin", "custodian"),
            p("Walt", "witness"),
        ]
    }

    fn text(s: &Share) -> String {
        s.to_text().expose_str().unwrap().to_string()
    }

    #[test]
    fn a_custodian_is_seated_once_and_a_wrong_copy_is_shown_again() {
        let script = script::parse("t.toml", Path::new("."), S.as_bytes()).unwrap();
        let roster = roster();
        let shares = shamir::split(&[7u8; 52], 2, 3).unwrap();
        let mut face = Scripted {
            // Not on the roll call; a witness; then Carol (spelt otherwise); for share 2
            // Carol again, then Dave.
            names: ["Mallory", "Walt", " carol", "Carol", "Dave"].into(),
            copies: [text(&shares[1]), "2-1-!!!!".into(), "=".into(), "=".into()]
                .into_iter()
                .collect(),
            ..Scripted::default()
        };
        let mut desk = Desk::new(
            &mut face,
            &script,
            0,
            &roster,
            Path::new("/nonexistent-out"),
            "busy".into(),
        );
        assert_eq!(desk.hand_out(&shares[0], 3).unwrap(), "Carol");
        assert_eq!(desk.hand_out(&shares[1], 3).unwrap(), "Dave");
        drop(desk);
        let r = &face.rejected;
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(r[0].contains("Mallory is not on the roll call"), "{r:?}");
        assert!(
            r[1].contains("Walt is on the roll call as witness, not custodian"),
            "{r:?}"
        );
        assert!(r[2].contains("differs from the share shown"), "{r:?}");
        assert!(r[3].contains("not a share"), "{r:?}");
        assert!(r[4].contains("Carol already has a share"), "{r:?}");
        // What the face was told names no share.
        for s in &shares {
            let t = text(s);
            assert!(!r.iter().any(|m| m.contains(&t[4..])), "{r:?}");
        }
    }

    #[test]
    fn shares_given_must_be_of_the_set_and_each_counts_once() {
        let script = script::parse("t.toml", Path::new("."), S.as_bytes()).unwrap();
        let roster = roster();
        let set = shamir::split(&[9u8; 52], 2, 3).unwrap();
        let other = shamir::split(&[9u8; 52], 3, 3).unwrap();
        let mut face = Scripted {
            names: ["Erin", "Dave"].into(),
            shares: [
                "garbage".to_string(),
                text(&other[0]),
                text(&set[2]),
                text(&set[2]),
                text(&set[0]),
            ]
            .into(),
            ..Scripted::default()
        };
        let mut desk = Desk::new(
            &mut face,
            &script,
            0,
            &roster,
            Path::new("/nonexistent-out"),
            "busy".into(),
        );
        let got = desk.collect(2, 2, &[]).unwrap();
        drop(desk);
        let who: Vec<(String, u8)> = got.iter().map(|(n, s)| (n.clone(), s.index())).collect();
        assert_eq!(who, [("Erin".to_string(), 3), ("Dave".to_string(), 1)]);
        let r = &face.rejected;
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].contains("not a share"), "{r:?}");
        assert!(r[1].contains("3-of-N set; this step takes 2"), "{r:?}");
        assert!(r[2].contains("which Erin gave already"), "{r:?}");
        // A face that stops stops the step as an abort (it resumes), not a failure.
        let mut quiet = Scripted::default();
        let mut desk = Desk::new(
            &mut quiet,
            &script,
            0,
            &roster,
            Path::new("/nonexistent-out"),
            "busy".into(),
        );
        assert!(matches!(desk.collect(2, 2, &[]), Err(Halt::Abort(_))));
    }
}
