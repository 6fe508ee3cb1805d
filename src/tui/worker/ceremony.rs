//! A ceremony on the worker: opened and checked on the console's token, then run to its
//! end in the one runner, each question the runner asks forwarded to the screen
//! ([`ConsoleInputs`]) and answered by its [`Reply`].

use std::sync::mpsc::Receiver;

use super::{Opened, Question, Reply, Request, WorkerMsg};
use crate::approvals::signoff;
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine::{self, StepResult};
use crate::ceremony::inputs::{Answer, Danger, Delivery, Inputs, Progress};
use crate::ceremony::people::Participant;
use crate::ceremony::runner::{self, Session};
use crate::ceremony::script::Script;
use crate::hsm::Token;
use crate::secret::Secret;

/// Run the ceremony to its end in the one runner; the screen answers its questions.
pub(super) fn run_ceremony(
    sess: Session,
    token: &mut dyn Token,
    uri: &str,
    rx: &Receiver<Request>,
    send: &dyn Fn(WorkerMsg) -> bool,
    agent: Option<&std::path::Path>,
) -> WorkerMsg {
    let out = sess.out.clone();
    let mut inputs = ConsoleInputs { rx, send, agent };
    let res = sess.run(
        token,
        uri,
        serde_json::json!({"face": "console"}),
        &mut inputs,
    );
    match res {
        Ok(summary) => WorkerMsg::CeremonyClosed {
            transcript: out.join(runner::TRANSCRIPT_MD),
            complete: true,
            error: None,
            head: Some(summary.head),
        },
        Err(e) => WorkerMsg::CeremonyClosed {
            transcript: out.join(runner::TRANSCRIPT),
            complete: false,
            error: Some(e.to_string()),
            head: None,
        },
    }
}

/// The console's answers: each question goes to the screen; the worker waits for the
/// reply (other requests meanwhile are refused: the token is in the run's hands).
struct ConsoleInputs<'a> {
    rx: &'a Receiver<Request>,
    send: &'a dyn Fn(WorkerMsg) -> bool,
    /// The ssh-agent signed sign-offs are made with.
    agent: Option<&'a std::path::Path>,
}

impl ConsoleInputs<'_> {
    fn ask(&mut self, q: Question) -> Reply {
        if !(self.send)(WorkerMsg::Ask(q)) {
            return Reply::Abort("the console closed".into());
        }
        loop {
            match self.rx.recv() {
                Ok(Request::Reply(r)) => return r,
                Ok(other) => {
                    let what = other.describe();
                    if !(self.send)(WorkerMsg::Failed {
                        what,
                        cause: "a ceremony is running; finish or abort it first".into(),
                    }) {
                        return Reply::Abort("the console closed".into());
                    }
                }
                Err(_) => return Reply::Abort("the console closed".into()),
            }
        }
    }
}

fn unexpected<T>(r: Reply) -> Answer<T> {
    match r {
        Reply::Abort(reason) => Answer::Abort(reason),
        other => Answer::Abort(format!("the console answered out of turn ({other:?})")),
    }
}

impl Inputs for ConsoleInputs<'_> {
    fn roster(&mut self, _script: &Script) -> Answer<Vec<Participant>> {
        match self.ask(Question::Roster) {
            Reply::Roster(r) => Answer::Given(r),
            other => unexpected(other),
        }
    }

    fn acknowledge(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        _result: &StepResult,
    ) -> Answer<String> {
        match self.ask(Question::Acknowledge {
            step,
            role: role.to_string(),
        }) {
            Reply::Acknowledge(name) => Answer::Given(name),
            other => unexpected(other),
        }
    }

    fn sign_off(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
    ) -> Answer<String> {
        match self.ask(Question::SignOff {
            step,
            role: role.to_string(),
            have,
            need,
        }) {
            Reply::SignOff(name) => Answer::Given(name),
            other => unexpected(other),
        }
    }

    /// The person is picked from the roll call, as for any sign-off; then their key in
    /// the ssh-agent signs (the one the allowed signers let them sign off with). A person
    /// with no such key is told so and asked again.
    fn signed_sign_off(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
        ask: &signoff::Ask,
    ) -> Answer<signoff::Signed> {
        loop {
            let name = match self.ask(Question::SignOff {
                step,
                role: role.to_string(),
                have,
                need,
            }) {
                Reply::SignOff(name) => name,
                other => return unexpected(other),
            };
            let signed = match self.agent {
                None => Err(crate::approvals::agent::Error::NoAgent.to_string()),
                Some(socket) => {
                    (self.send)(WorkerMsg::CeremonyBusy(Some(format!(
                        "{name} signs off with their ssh-agent key (touch it if it blinks)"
                    ))));
                    let r = signoff::sign_with_agent(
                        socket,
                        &ask.signers,
                        &name,
                        &ask.message,
                        crate::approvals::time::now(),
                    );
                    (self.send)(WorkerMsg::CeremonyBusy(None));
                    r
                }
            };
            match signed {
                Ok(signature) => return Answer::Given(signoff::Signed { name, signature }),
                Err(reason) => {
                    if !(self.send)(WorkerMsg::Rejected { step, reason }) {
                        return Answer::Abort("the console closed".into());
                    }
                }
            }
        }
    }

    fn confirm(&mut self, _script: &Script, step: usize, danger: &Danger) -> Answer<()> {
        match self.ask(Question::Confirm {
            step,
            danger: danger.clone(),
        }) {
            Reply::Confirm => Answer::Given(()),
            other => unexpected(other),
        }
    }

    fn secret(
        &mut self,
        _script: &Script,
        step: usize,
        name: &str,
        sets: bool,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        match self.ask(Question::Secret {
            step,
            name: name.to_string(),
            sets,
            retry: retry.map(str::to_string),
        }) {
            Reply::Secret(v) => Answer::Given(v),
            other => unexpected(other),
        }
    }

    fn rejected(&mut self, _script: &Script, step: usize, reason: &str) -> Answer<()> {
        (self.send)(WorkerMsg::Rejected {
            step,
            reason: reason.to_string(),
        });
        Answer::Given(())
    }

    fn custodian(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        turn: CustodyTurn,
        taken: &[String],
    ) -> Answer<String> {
        match self.ask(Question::Custodian {
            step,
            role: role.to_string(),
            turn,
            taken: taken.to_vec(),
        }) {
            Reply::Custodian(name) => Answer::Given(name),
            other => unexpected(other),
        }
    }

    fn deliver_share(&mut self, _script: &Script, step: usize, d: &Delivery<'_>) -> Answer<Secret> {
        match self.ask(Question::ShowShare {
            step,
            custodian: d.custodian.to_string(),
            index: d.share.index(),
            of: d.of,
            threshold: d.share.threshold(),
            share: d.share.to_text(),
            retry: d.retry.map(str::to_string),
        }) {
            Reply::ShareCopy(copy) => Answer::Given(copy),
            other => unexpected(other),
        }
    }

    fn receive_share(
        &mut self,
        _script: &Script,
        step: usize,
        custodian: &str,
        turn: CustodyTurn,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        match self.ask(Question::ShareEntry {
            step,
            custodian: custodian.to_string(),
            turn,
            retry: retry.map(str::to_string),
        }) {
            Reply::Share(s) => Answer::Given(s),
            other => unexpected(other),
        }
    }

    fn progress(&mut self, _script: &Script, p: Progress<'_>) {
        let m = match p {
            Progress::State(st) => WorkerMsg::CeremonyState(Box::new(st.clone())),
            Progress::Busy(what) => WorkerMsg::CeremonyBusy(Some(what.to_string())),
            Progress::Idle => WorkerMsg::CeremonyBusy(None),
            Progress::Token(info) => WorkerMsg::TokenInfo(info.clone()),
        };
        (self.send)(m);
    }
}

/// What `officiant run` does before its first step, on the token the console holds:
/// parse and check the script, check it against the token, lock the out dir and read
/// its journal to resume.
pub(super) fn open_ceremony(
    token: &mut dyn Token,
    uri: &str,
    path: &std::path::Path,
    out: &std::path::Path,
) -> Result<(Session, Opened), String> {
    let (script, plan, _) = runner::prepare(path, None).map_err(|e| e.to_string())?;
    runner::check_against(&script, &plan, token, uri).map_err(|e| e.to_string())?;
    let sess = Session::open(script, out).map_err(|e| e.to_string())?;
    if sess.is_complete() {
        return Err(format!(
            "this ceremony already ran to completion in {} (see its transcript.md)",
            out.display()
        ));
    }
    let (completed, interrupted) = sess.resume_point();
    let opened = Opened {
        script: sess.script.clone(),
        out: out.to_path_buf(),
        completed,
        interrupted,
        resumed: sess.resumed(),
        state: engine::preview(&sess.script, sess.start_event()),
    };
    Ok((sess, opened))
}
