//! What the run asks and tells: the worker's messages about a ceremony turned into the
//! question on screen (roll call, sign-off, confirmation, secret, acknowledgement,
//! custodian), and the answers sent back; the end of a run and its abort.

use std::path::PathBuf;

use super::{Ask, CeremonyRun, Closed, RollCall, ShownShare};
use crate::ceremony::engine;
use crate::tui::app::{self, AppState, Command, ConfirmAction, Popup, Screen, TypedConfirm};
use crate::tui::plan;
use crate::tui::views::widgets::{SecretEntry, TextInput};
use crate::tui::worker::{Question, Reply, Request, WorkerMsg};

/// Worker messages that belong to a run (they set their own progress indicator).
pub fn of_run(msg: &WorkerMsg) -> bool {
    matches!(
        msg,
        WorkerMsg::CeremonyState(_)
            | WorkerMsg::Ask(_)
            | WorkerMsg::Rejected { .. }
            | WorkerMsg::TokenInfo(_)
    )
}

/// What the worker reports of a ceremony: opened (the screen switches to it), the
/// engine's new state, a question to put on screen, a refused answer, the token busy
/// or idle, and the end of the run (a failure opens the error popup; the object list
/// is read again).
pub fn on_worker(s: &mut AppState, msg: WorkerMsg) -> Vec<Command> {
    match msg {
        WorkerMsg::CeremonyOpened(opened) => {
            let run = CeremonyRun::new(*opened);
            if run.resumed {
                s.notice = Some(format!(
                    "resuming the interrupted run in {}",
                    run.out.display()
                ));
            }
            s.run = Some(run);
            s.screen = Screen::Ceremony;
        }
        WorkerMsg::CeremonyState(st) => {
            if let Some(run) = s.run.as_mut() {
                run.engine = *st;
                run.follow_run();
            }
        }
        WorkerMsg::Ask(q) => return ask(s, q),
        WorkerMsg::TokenInfo(info) => s.token = super::app::TokenStatus::Ready(info),
        WorkerMsg::Rejected { reason, .. } => {
            if let Some(run) = s.run.as_mut() {
                run.rejected = Some(reason);
            }
        }
        WorkerMsg::CeremonyBusy(what) => match what {
            Some(w) => s.set_busy(w),
            None => s.busy = None,
        },
        WorkerMsg::CeremonyClosed {
            transcript,
            complete,
            error,
            head,
        } => return closed(s, transcript, complete, error, head),
        _ => {}
    }
    Vec::new()
}

fn closed(
    s: &mut AppState,
    transcript: PathBuf,
    complete: bool,
    error: Option<String>,
    head: Option<String>,
) -> Vec<Command> {
    s.notice = Some(format!("transcript: {}", transcript.display()));
    if s.quit_after_close {
        s.quit = true;
    }
    if let Some(run) = s.run.as_mut() {
        run.closed = Some(Closed {
            transcript,
            complete,
            head,
        });
        run.asking = None;
        run.follow_run();
        let by_operator = matches!(run.engine.phase, engine::Phase::Aborted(_));
        if let (Some(e), false) = (error, by_operator) {
            if s.popup.is_none() {
                let step = run
                    .engine
                    .steps
                    .iter()
                    .position(|st| matches!(st.status, engine::StepStatus::Failed(_)));
                let what = step
                    .map(|i| format!("Step {:?}", run.script.steps[i].id))
                    .unwrap_or_else(|| "The ceremony".into());
                let next = app::next_for(&e, step.is_some());
                s.error(&format!("{what} failed"), e, next);
            }
        }
    }
    // Keep the object browser true to the token.
    app::start(s, Request::Refresh)
}

/// The runner's question goes on screen. A share comes on a cleared screen.
fn ask(s: &mut AppState, q: Question) -> Vec<Command> {
    let (min, max) = s.pin_rules();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let clear = matches!(q, Question::ShowShare { .. });
    run.asking = Some(match q {
        Question::Roster => Ask::Roster(RollCall::default()),
        Question::SignOff {
            step,
            role,
            have,
            need,
        } => Ask::SignOff {
            step,
            role,
            have,
            need,
            pick: 0,
        },
        Question::Acknowledge { step, role } => Ask::Acknowledge {
            step,
            role,
            pick: 0,
        },
        Question::Secret {
            step, name, retry, ..
        } => {
            let (prompt, twice, pin) = plan::secret_prompt(&run.script, step, &name);
            let (min, max) = if pin { (min, max) } else { (0, 0) };
            let mut entry = SecretEntry::new(&prompt, twice, min, max);
            // Why it is asked again, until the first key is typed.
            entry.error = retry.clone();
            Ask::Secret {
                step,
                name,
                entry,
                retry,
            }
        }
        Question::Confirm { step, danger } => Ask::Confirm { step, danger },
        Question::Custodian {
            step,
            role,
            turn,
            taken,
        } => Ask::Custodian {
            step,
            role,
            turn,
            taken,
            pick: 0,
        },
        Question::ShowShare {
            step,
            custodian,
            index,
            of,
            threshold,
            share,
            retry,
        } => {
            // Why it is shown again stands on the share's screen.
            run.rejected = retry.or(run.rejected.take());
            Ask::Share(ShownShare {
                step,
                custodian,
                index,
                of,
                threshold,
                text: share,
            })
        }
        Question::ShareEntry {
            step,
            custodian,
            turn,
            retry,
        } => {
            let mut entry = SecretEntry::new(&format!("Share of {custodian}"), false, 0, 0);
            entry.error = retry;
            Ask::ShareEntry {
                step,
                custodian,
                turn,
                entry,
            }
        }
    });
    // A question about a step shows that step, from its top.
    run.follow = true;
    run.view = run.focus();
    run.scroll = 0;
    reask(s);
    if clear {
        vec![Command::ClearScreen]
    } else {
        Vec::new()
    }
}

/// Show the typed confirmation of the destructive step being asked about (again, after
/// the operator declined to abort).
pub fn reask(s: &mut AppState) {
    let Some(run) = s.run.as_ref() else { return };
    if let Some(Ask::Confirm { step, danger }) = &run.asking {
        let word = if danger.token_label.is_empty() {
            run.script.ceremony.token.clone()
        } else {
            danger.token_label.clone()
        };
        s.popup = Some(Popup::Destroy(TypedConfirm {
            step: *step,
            danger: danger.clone(),
            word,
            input: TextInput::default(),
        }));
    }
}

/// Send the answer to the runner's question.
pub(super) fn reply(s: &mut AppState, r: Reply) -> Vec<Command> {
    if let Some(run) = s.run.as_mut() {
        run.asking = None;
        run.rejected = None;
    }
    vec![Command::Worker(Request::Reply(r))]
}

/// Stop the ceremony: answer the runner's pending question with an abort, or let go of
/// a ceremony opened and not started.
pub fn abort_run(s: &mut AppState, reason: &str) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    if run.asking.is_some() {
        return reply(s, Reply::Abort(reason.to_string()));
    }
    if !run.started {
        run.started = true;
        run.engine.phase = engine::Phase::Aborted(reason.to_string());
        return vec![Command::Worker(Request::CloseCeremony)];
    }
    Vec::new()
}

pub(super) fn ask_abort(s: &mut AppState) {
    if s.busy.is_some() {
        s.notice = Some(
            "the token is working: abort when this step has finished (it cannot be interrupted)"
                .into(),
        );
        return;
    }
    s.popup = Some(Popup::Confirm {
        question: "Abort the ceremony?".into(),
        detail: "Steps not yet run will not run. Keys already made stay on the token; the journal lets the run resume later."
            .into(),
        destructive: true,
        action: ConfirmAction::Abort,
    });
}
