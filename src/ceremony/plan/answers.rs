//! The answers file against the script: every sign-off, confirmation, acknowledgement,
//! custodian and secret the run needs is there, by someone on the roll call in the right
//! role, and nothing names a step or role the script does not have.

use std::collections::BTreeMap;

use super::custody_need;
use crate::ceremony::answers::Answers;
use crate::ceremony::people::Participant;
use crate::ceremony::script::{self, Action, Script, ScriptError};
use crate::secret::SecretSource;

/// Every secret, confirmation and sign-off the run needs must be in the answers, and the
/// answers must not name steps or roles the script does not have.
pub fn check_answers(script: &Script, answers: &Answers) -> Result<(), ScriptError> {
    let file = answers
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no answers file)".into());
    let by_id: BTreeMap<&str, usize> = script
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let roster = answers.roster(script);
    answer_sign_offs(script, answers, &by_id)
        .and_then(|()| answer_confirms(script, answers, &by_id))
        .and_then(|()| answer_custodians(script, answers, &by_id))
        .and_then(|()| {
            script.steps.iter().enumerate().try_for_each(|(i, step)| {
                step_seats(script, answers, &roster, i, step)?;
                step_custodians(answers, &roster, i, step)?;
                step_confirm_and_secrets(answers, i, step)
            })
        })
        .and_then(|()| answer_roll_call(script, &roster))
        .map_err(|(place, message)| ScriptError {
            file,
            place,
            message,
        })
}

/// A place in the answers file (`sign-off[2].role: `) and what is wrong there.
pub(super) type AnswerFault = (String, String);

/// Each `[[sign-off]]` names a step that asks its role, with a signature exactly when
/// the role signs with SSH keys.
pub(super) fn answer_sign_offs(
    script: &Script,
    answers: &Answers,
    by_id: &BTreeMap<&str, usize>,
) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    for (k, s) in answers.sign_offs.iter().enumerate() {
        let Some(&i) = by_id.get(s.step.as_str()) else {
            return Err(aerr(
                format!("sign-off[{k}].step: "),
                format!("no step {:?} in {}", s.step, script.path.display()),
            ));
        };
        if !script.steps[i].sign_off.contains(&s.role) {
            return Err(aerr(
                format!("sign-off[{k}].role: "),
                format!(
                    "{} does not ask role {:?} to sign off",
                    script.steps[i].place(i),
                    s.role
                ),
            ));
        }
        match (&s.signature, script.is_signed(&s.role)) {
            (None, true) => {
                return Err(aerr(
                    format!("sign-off[{k}]: "),
                    format!(
                        "role {:?} signs with SSH keys: add signature = \"FILE\" (ssh-keygen -Y sign -n {} over the sign-off message the run writes)",
                        s.role,
                        crate::approvals::SIGNOFF_NAMESPACE
                    ),
                ))
            }
            (Some(_), false) => {
                return Err(aerr(
                    format!("sign-off[{k}].signature: "),
                    format!("role {:?} does not sign with SSH keys; leave signature out", s.role),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Each `[[confirm]]` names a destructive step; each `[[acknowledge]]` a step.
pub(super) fn answer_confirms(
    script: &Script,
    answers: &Answers,
    by_id: &BTreeMap<&str, usize>,
) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    for c in &answers.confirms {
        match by_id.get(c.as_str()) {
            None => {
                return Err(aerr(
                    "confirm: ".into(),
                    format!("no step {c:?} in {}", script.path.display()),
                ))
            }
            Some(&i) if !script.steps[i].action.destructive() => {
                return Err(aerr(
                    "confirm: ".into(),
                    format!("{} needs no confirmation", script.steps[i].place(i)),
                ))
            }
            Some(_) => {}
        }
    }
    for step in answers.acknowledgements.keys() {
        if !by_id.contains_key(step.as_str()) {
            return Err(aerr(
                "acknowledge: ".into(),
                format!("no step {step:?} in {}", script.path.display()),
            ));
        }
    }
    Ok(())
}

/// Each `[[custodian]]` names a custody step, with a share file where it hands shares
/// out and a share source where it takes them in.
pub(super) fn answer_custodians(
    script: &Script,
    answers: &Answers,
    by_id: &BTreeMap<&str, usize>,
) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    for (k, c) in answers.custodians.iter().enumerate() {
        let place = |f: &str| format!("custodian[{k}].{f}: ");
        let Some(&i) = by_id.get(c.step.as_str()) else {
            return Err(aerr(
                place("step"),
                format!("no step {:?} in {}", c.step, script.path.display()),
            ));
        };
        let st = &script.steps[i];
        match &st.action {
            Action::GenerateWrapKey(_) => {
                if c.share.is_some() {
                    return Err(aerr(
                        place("share"),
                        format!("{} hands shares out: give share-file (where this custodian's share is written)", st.place(i)),
                    ));
                }
                if c.share_file.is_none() {
                    return Err(aerr(
                        place("share-file"),
                        format!(
                            "missing: {} writes this custodian's share there (their medium)",
                            st.place(i)
                        ),
                    ));
                }
            }
            Action::Restore(_) => {
                if c.share_file.is_some() {
                    return Err(aerr(
                        place("share-file"),
                        format!("{} takes shares in: give share (a source: file:PATH, env:NAME or prompt)", st.place(i)),
                    ));
                }
                if c.share.is_none() {
                    return Err(aerr(
                        place("share"),
                        format!("missing: where {} reads this custodian's share from (file:PATH, env:NAME or prompt)", st.place(i)),
                    ));
                }
            }
            _ => {
                return Err(aerr(
                    place("step"),
                    format!(
                        "{} is not a custody step (generate-wrap-key or restore)",
                        st.place(i)
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// Step `i`'s seats: each sign-off by one person on the roll call in that role, the
/// review acknowledged by someone in the reviewing role, and as many sign-offs per role
/// as the script asks.
pub(super) fn step_seats(
    script: &Script,
    answers: &Answers,
    roster: &[Participant],
    i: usize,
    step: &script::Step,
) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    let place = step.place(i);
    // One person, one seat per step, however the name is spelt; and on the roll call
    // in the role they sign in.
    let mut seated: BTreeMap<String, &str> = BTreeMap::new();
    for s in answers.sign_offs.iter().filter(|s| s.step == step.id) {
        let key = crate::ceremony::people::person_key(&s.name);
        if let Some(role) = seated.insert(key, &s.role) {
            return Err(aerr(
                format!("{place}: "),
                format!(
                    "{:?} signs off as {} and as {role}: one person cannot sign one step twice",
                    s.name, s.role
                ),
            ));
        }
        match crate::ceremony::people::find(roster, &s.name) {
            Some(p) if p.roles.contains(&s.role) => {}
            _ => {
                return Err(aerr(
                    format!("{place}: "),
                    format!("{:?} is not on the roll call as {}", s.name, s.role),
                ))
            }
        }
    }
    if let Some(role) = &step.review {
        match answers.acknowledgement(&step.id) {
            None => {
                return Err(aerr(
                    format!("{place}: "),
                    format!(
                        "missing acknowledgement of the result by {role} (add [[acknowledge]] step = {:?}, name = \"…\")",
                        step.id
                    ),
                ))
            }
            Some(name) => match crate::ceremony::people::find(roster, name) {
                Some(p) if p.roles.contains(role) => {}
                _ => {
                    return Err(aerr(
                        format!("{place}: "),
                        format!("{name:?} acknowledges the result but is not on the roll call as {role}"),
                    ))
                }
            },
        }
    }
    for role in &step.sign_off {
        let need = script.roles.get(role).copied().unwrap_or(1) as usize;
        let have = answers.names_for(&step.id, role).len();
        if have < need {
            return Err(aerr(
                format!("{place}: "),
                format!(
                    "missing sign-off by {role} ({have} of {need}; add [[sign-off]] step = {:?}, role = {role:?}, name = \"…\")",
                    step.id
                ),
            ));
        }
    }
    Ok(())
}

/// A custody step's custodians: as many as it needs, each on the roll call in the
/// custodian role, once, with a share file of their own.
pub(super) fn step_custodians(
    answers: &Answers,
    roster: &[Participant],
    i: usize,
    step: &script::Step,
) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    let place = step.place(i);
    if let Some((role, n)) = custody_need(&step.action) {
        let given = answers.custodians_for(&step.id);
        if given.len() != n {
            let what = if matches!(step.action, Action::GenerateWrapKey(_)) {
                format!("hands out {n} shares, one per custodian")
            } else {
                format!("takes {n} shares (its threshold), one per custodian")
            };
            return Err(aerr(
                format!("{place}: "),
                format!(
                    "{what}; the answers name {} (add [[custodian]] step = {:?}, name = \"…\", {})",
                    given.len(),
                    step.id,
                    if matches!(step.action, Action::GenerateWrapKey(_)) {
                        "share-file = \"…\""
                    } else {
                        "share = \"file:…\""
                    }
                ),
            ));
        }
        for (k, c) in given.iter().enumerate() {
            match crate::ceremony::people::find(roster, &c.name) {
                Some(p) if p.roles.iter().any(|r| r == role) => {}
                _ => {
                    return Err(aerr(
                        format!("{place}: "),
                        format!("custodian {:?} is not on the roll call as {role}", c.name),
                    ))
                }
            }
            let key = crate::ceremony::people::person_key(&c.name);
            if given[..k]
                .iter()
                .any(|o| crate::ceremony::people::person_key(&o.name) == key)
            {
                return Err(aerr(
                    format!("{place}: "),
                    format!(
                        "{:?} is named twice as a custodian: one share per person",
                        c.name
                    ),
                ));
            }
            if c.share_file.is_some() && given[..k].iter().any(|o| o.share_file == c.share_file) {
                return Err(aerr(
                    format!("{place}: "),
                    format!(
                        "custodians {:?} and another would share the file {}",
                        c.name,
                        c.share_file
                            .as_deref()
                            .unwrap_or(std::path::Path::new(""))
                            .display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A destructive step is confirmed; every secret the step reads has a source that is
/// there now.
pub(super) fn step_confirm_and_secrets(
    answers: &Answers,
    i: usize,
    step: &script::Step,
) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    let place = step.place(i);
    if step.action.destructive() && !answers.confirms.contains(&step.id) {
        return Err(aerr(
            format!("{place}: "),
            format!(
                "missing confirmation for destructive step {} (add [[confirm]] step = {:?})",
                step.action.kind(),
                step.id
            ),
        ));
    }
    for (field, name) in step.action.secrets() {
        let missing = match answers.secrets.get(name) {
            None => Some(format!(
                "no source for secret {name:?} (add it under [secrets])"
            )),
            Some(SecretSource::Env(var)) if std::env::var_os(var).is_none() => Some(format!(
                "secret {name:?} comes from env:{var}, which is not set"
            )),
            Some(SecretSource::File(p)) if !p.is_file() => Some(format!(
                "secret {name:?} comes from file:{}, which does not exist",
                p.display()
            )),
            Some(_) => None,
        };
        if let Some(m) = missing {
            return Err(aerr(format!("{place}.{field}: "), m));
        }
    }
    Ok(())
}

/// The roll call the answers give (or imply) fits the script.
pub(super) fn answer_roll_call(script: &Script, roster: &[Participant]) -> Result<(), AnswerFault> {
    let aerr = |place: String, message: String| (place, message);
    // The roll call the answers give (or imply) must fit the script, like one typed at
    // the console.
    if !script.roles.is_empty() {
        let needs: Vec<Vec<(String, usize)>> = script
            .steps
            .iter()
            .map(|s| {
                s.sign_off
                    .iter()
                    .map(|r| {
                        (
                            r.clone(),
                            script.roles.get(r).copied().unwrap_or(1) as usize,
                        )
                    })
                    .collect()
            })
            .collect();
        crate::ceremony::people::check_roster(roster, &script.roles, &needs)
            .map_err(|m| aerr("participant: ".into(), m))?;
        for s in &script.steps {
            if let Some((role, n)) = custody_need(&s.action) {
                crate::ceremony::people::check_custodians(roster, &s.id, role, n)
                    .map_err(|m| aerr("participant: ".into(), m))?;
            }
        }
    }
    Ok(())
}
