//! The ceremony screen's keys: which work now (the footer and help read it), and what
//! each does with the question on screen, the step list and the text fields.

use std::path::PathBuf;

use super::questions::{ask_abort, reply};
use super::{Ask, CeremonyRun, RoleChoice, RollCall};
use crate::ceremony::engine;
use crate::ceremony::people::{self, Participant};
use crate::custody::shamir::Share;
use crate::tui::app::{self, AppState, Command, Popup};
use crate::tui::keymap::{Action, Context};
use crate::tui::views::widgets::SecretEntry;
use crate::tui::worker::{Reply, Request};

/// The contexts of the ceremony screen, most specific first.
pub fn contexts(run: Option<&CeremonyRun>) -> Vec<Context> {
    match run.and_then(|r| r.asking.as_ref()) {
        Some(Ask::Roster(rc)) if rc.choosing.is_some() => vec![Context::Roles],
        Some(Ask::Roster(_) | Ask::Secret { .. }) => vec![Context::Entry, Context::Scroll],
        // A custodian's screens: nothing else to read, nothing to scroll.
        Some(Ask::Share(_)) => vec![Context::Share],
        Some(Ask::Retype { .. } | Ask::ShareEntry { .. }) => vec![Context::Entry],
        Some(Ask::SignOff { .. } | Ask::Acknowledge { .. } | Ask::Custodian { .. }) => {
            vec![Context::Picker, Context::Scroll]
        }
        _ => vec![Context::Ceremony, Context::Scroll, Context::Global],
    }
}

/// Whether a ceremony-screen key does something now.
pub fn available(run: Option<&CeremonyRun>, action: Action) -> bool {
    let Some(run) = run else {
        return !matches!(action, Action::Select | Action::Abort | Action::SaveAnswers);
    };
    let failed = run.closed.as_ref().is_some_and(|c| !c.complete);
    match action {
        Action::Select => !run.started() || failed,
        Action::Abort => run.asking.is_some() || !run.started() || run.in_progress(),
        Action::SaveAnswers => run.started(),
        _ => true,
    }
}

fn scroll(run: &mut CeremonyRun, action: Action) {
    run.scroll = match action {
        Action::PageUp => run.scroll.saturating_sub(8),
        _ => run.scroll.saturating_add(8),
    };
}

/// What the screen is asking, without borrowing it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asking {
    Nothing,
    Person,
    Roster,
    /// A share on screen.
    Share,
    Other,
}

fn asking(run: &CeremonyRun) -> Asking {
    match &run.asking {
        None => Asking::Nothing,
        Some(Ask::SignOff { .. } | Ask::Acknowledge { .. } | Ask::Custodian { .. }) => {
            Asking::Person
        }
        Some(Ask::Share(_)) => Asking::Share,
        Some(Ask::Roster(_)) => Asking::Roster,
        Some(_) => Asking::Other,
    }
}

/// Keys on the ceremony screen when no text field has the keyboard.
pub fn on_action(s: &mut AppState, action: Action) -> Vec<Command> {
    let busy = s.busy.is_some();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let now = asking(run);
    match (action, now) {
        (Action::PageUp | Action::PageDown, _) => scroll(run, action),
        // Choosing a person.
        (Action::Up | Action::Down, Asking::Person) => {
            let len = run.candidates().len();
            if let Some(
                Ask::SignOff { pick, .. }
                | Ask::Acknowledge { pick, .. }
                | Ask::Custodian { pick, .. },
            ) = run.asking.as_mut()
            {
                *pick = app::step_sel(*pick, len, action == Action::Down);
            }
        }
        (Action::Submit, Asking::Person) => return pick_person(s),
        // The custodian has copied the share: hide it (the screen is cleared) and have
        // it typed back.
        (Action::Submit, Asking::Share) => return hide_share(run),
        (Action::Abort, Asking::Person | Asking::Roster | Asking::Other | Asking::Share) => {
            ask_abort(s)
        }
        // The roles of the person being added to the roll call.
        (_, Asking::Roster) => {
            if let Some(Ask::Roster(rc)) = run.asking.as_mut() {
                roles_key(rc, action);
            }
        }
        // Nothing asked: read, start, save.
        (Action::Up | Action::Down, Asking::Nothing) => {
            let n = run.engine.steps.len();
            run.view = app::step_sel(run.view, n, action == Action::Down);
            run.follow = false;
            run.scroll = 0;
        }
        (Action::Abort, Asking::Nothing) if run.in_progress() || !run.started() => ask_abort(s),
        (Action::Select, Asking::Nothing) if !busy && !run.started() => {
            run.started = true;
            run.follow = true;
            return vec![Command::Worker(Request::StartCeremony)];
        }
        // After a failure or an abort: open the ceremony again; its journal resumes it.
        (Action::Select, Asking::Nothing)
            if !busy
                && run.closed.as_ref().is_some_and(|c| !c.complete)
                && !matches!(run.engine.phase, engine::Phase::Finished) =>
        {
            let req = Request::OpenCeremony {
                script: run.script.path.clone(),
                out: run.out.clone(),
            };
            return app::start(s, req);
        }
        (Action::Select, Asking::Nothing) => {
            run.follow = true;
            run.view = run.focus();
            run.scroll = 0;
        }
        (Action::SaveAnswers, Asking::Nothing) if run.started() => {
            return vec![Command::SaveAnswers {
                script: Box::new(run.script.clone()),
                out: run.out.clone(),
                base: PathBuf::from(format!("{}.answers.toml", run.script.ceremony.id)),
            }]
        }
        _ => {}
    }
    Vec::new()
}

/// Keys while the roles of a person on the roll call are chosen.
fn roles_key(rc: &mut RollCall, action: Action) {
    let Some(c) = rc.choosing.as_mut() else {
        return;
    };
    match action {
        Action::Up | Action::Down => {
            c.at = app::step_sel(c.at, c.roles.len(), action == Action::Down);
        }
        Action::Toggle => {
            if let Some(r) = c.roles.get_mut(c.at) {
                r.1 = !r.1;
            }
        }
        Action::Cancel => rc.choosing = None,
        Action::Submit => add_person(rc),
        _ => {}
    }
}

/// The share leaves the screen (its text is dropped, zeroized) and the terminal is
/// cleared; its custodian types it back from their copy.
fn hide_share(run: &mut CeremonyRun) -> Vec<Command> {
    let Some(Ask::Share(shown)) = run.asking.take() else {
        return Vec::new();
    };
    let prompt = format!("Share {} of {} as you copied it", shown.index, shown.of);
    run.rejected = None;
    run.asking = Some(Ask::Retype {
        step: shown.step,
        custodian: shown.custodian,
        index: shown.index,
        of: shown.of,
        entry: SecretEntry::new(&prompt, false, 0, 0),
    });
    vec![Command::ClearScreen]
}

/// The person picked answers the sign-off or acknowledgement.
fn pick_person(s: &mut AppState) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let name = {
        let people = run.candidates();
        let pick = match &run.asking {
            Some(
                Ask::SignOff { pick, .. }
                | Ask::Acknowledge { pick, .. }
                | Ask::Custodian { pick, .. },
            ) => *pick,
            _ => 0,
        };
        people.get(pick).map(|p| p.name.clone())
    };
    let Some(name) = name else {
        run.rejected = Some(
            "no one on the roll call can answer this; abort (Esc) and take the roll call again"
                .into(),
        );
        return Vec::new();
    };
    match run.asking {
        Some(Ask::Acknowledge { .. }) => reply(s, Reply::Acknowledge(name)),
        Some(Ask::Custodian { .. }) => reply(s, Reply::Custodian(name)),
        _ => reply(s, Reply::SignOff(name)),
    }
}

/// Enter on the roll call: a name opens its role choice; ticked roles add the person;
/// an empty name ends the roll call.
fn add_person(rc: &mut RollCall) {
    if let Some(c) = rc.choosing.take() {
        let roles: Vec<String> = c
            .roles
            .iter()
            .filter(|(_, on)| *on)
            .map(|(r, _)| r.clone())
            .collect();
        if roles.is_empty() {
            rc.name.error = Some(format!("{} needs at least one role", c.name));
            rc.choosing = Some(c);
            return;
        }
        rc.people.push(Participant {
            name: c.name,
            roles,
        });
    }
}

/// Keys while a text field of the ceremony screen has the keyboard (the roll call's name,
/// a secret).
pub fn on_entry(s: &mut AppState, action: Action) -> Vec<Command> {
    let roles: Vec<String> = s
        .run
        .as_ref()
        .map(|r| r.script.roles.keys().cloned().collect())
        .unwrap_or_default();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    match (action, run.asking.as_mut()) {
        (Action::PageUp | Action::PageDown, _) => scroll(run, action),
        (Action::Abort, _) => ask_abort(s),
        (Action::Cancel, Some(Ask::Roster(rc))) => rc.name.value.clear(),
        (Action::DeleteChar, Some(Ask::Roster(rc))) => {
            // On an empty name, Backspace takes the last person off the roll call.
            if rc.name.value.is_empty() {
                rc.people.pop();
            } else {
                rc.name.backspace();
            }
        }
        (Action::Submit, Some(Ask::Roster(rc))) => {
            if rc.name.value.trim().is_empty() {
                let roster = std::mem::take(&mut rc.people);
                return reply(s, Reply::Roster(roster));
            }
            match people::clean_name(&rc.name.value) {
                Err(e) => rc.name.error = Some(e),
                Ok(name) => {
                    if let Some(p) = people::find(&rc.people, &name) {
                        rc.name.error =
                            Some(format!("{name} is {} already on the roll call", p.name));
                        return Vec::new();
                    }
                    rc.name.value.clear();
                    rc.choosing = Some(RoleChoice {
                        name,
                        roles: roles.into_iter().map(|r| (r, false)).collect(),
                        at: 0,
                    });
                }
            }
        }
        (Action::Cancel, Some(Ask::Secret { entry, .. })) => {
            *entry = SecretEntry::new(&entry.prompt.clone(), entry.twice, entry.min, entry.max);
        }
        (Action::DeleteChar, Some(Ask::Secret { entry, .. })) => entry.backspace(),
        (Action::Submit, Some(Ask::Secret { entry, .. })) => {
            if let Some(value) = entry.submit() {
                // The value goes to the runner's vault; the engine only learns the name.
                return reply(s, Reply::Secret(value));
            }
        }
        (Action::Cancel, Some(Ask::Retype { entry, .. } | Ask::ShareEntry { entry, .. })) => {
            *entry = SecretEntry::new(&entry.prompt.clone(), false, 0, 0);
        }
        (Action::DeleteChar, Some(Ask::Retype { entry, .. } | Ask::ShareEntry { entry, .. })) => {
            entry.backspace()
        }
        // The runner compares the copy with the share (and shows it again if it differs).
        (Action::Submit, Some(Ask::Retype { entry, .. })) => {
            if let Some(copy) = entry.submit() {
                return reply(s, Reply::ShareCopy(copy));
            }
        }
        // The form is checked here; the set and the index by the runner.
        (
            Action::Submit,
            Some(Ask::ShareEntry {
                entry, custodian, ..
            }),
        ) => {
            if let Some(text) = entry.submit() {
                match Share::parse(&text, &format!("the share of {custodian}")) {
                    Ok(_) => return reply(s, Reply::Share(text)),
                    Err(e) => entry.error = Some(e.to_string()),
                }
            }
        }
        _ => {}
    }
    Vec::new()
}

/// A printable key while a ceremony text field has the keyboard (the roll call's name,
/// a secret, a share).
pub fn type_char(s: &mut AppState, c: char) {
    match s.run.as_mut().and_then(|r| r.asking.as_mut()) {
        Some(Ask::Roster(rc)) => rc.name.push(c),
        Some(
            Ask::Secret { entry, .. } | Ask::Retype { entry, .. } | Ask::ShareEntry { entry, .. },
        ) => entry.push(c),
        _ => {}
    }
}

/// The typed confirmation of a destructive step.
pub fn on_destroy(s: &mut AppState, action: Action) -> Vec<Command> {
    let Some(Popup::Destroy(d)) = s.popup.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::DeleteChar => d.input.backspace(),
        Action::Submit if d.input.value.trim() == d.word => {
            s.popup = None;
            return reply(s, Reply::Confirm);
        }
        Action::Submit => {
            d.input.error = Some(format!(
                "type {:?} exactly to confirm; Esc if it should not run",
                d.word
            ))
        }
        // Declining is a different question with different keys: abort, y/n.
        Action::Cancel | Action::Abort => ask_abort(s),
        _ => {}
    }
    Vec::new()
}
