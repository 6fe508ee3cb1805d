//! A sign-off in a role that signs with SSH keys: the message written beside the
//! transcript, the face's name and signature, verified against the allowed signers the
//! transcript recorded; a refused one is asked again. Touches no token.

use serde_json::json;

use super::Driver;
use crate::ceremony::engine::{Event, State};
use crate::ceremony::inputs::Answer;
use crate::ceremony::people::{self};
use crate::ceremony::runner::Error;

impl Driver<'_> {
    /// A sign-off in a role that signs with SSH keys: write the message, have the face
    /// give a name and a signature, verify it against the allowed signers the transcript
    /// recorded; a refused one is asked again (or stops a face that cannot ask again).
    pub(super) fn signed_sign_off(
        &mut self,
        state: &State,
        step: usize,
        role: String,
        have: usize,
        need: usize,
    ) -> Result<Event, Error> {
        use crate::approvals::signoff;
        let id = &self.script.steps[step].id;
        let place = self.place(step);
        let entries = signoff::read_entries(self.tr.path()).map_err(Error::Run)?;
        let ctx =
            signoff::Context::of(&entries).map_err(|m| Error::Run(format!("{place}: {m}")))?;
        let message = signoff::message(&ctx.script_sha256, id, &ctx.head);
        let message_file = self.out.join(signoff::message_file_name(id, &ctx.head));
        match crate::output::write_new(&message_file, &message) {
            Ok(()) => {}
            Err(crate::output::Error::Exists(_))
                if std::fs::read(&message_file).is_ok_and(|b| b == message) => {}
            Err(e) => return Err(Error::Run(format!("{place}: {e}"))),
        }
        let ask = signoff::Ask {
            message,
            message_file,
            head: ctx.head.clone(),
            signers: ctx.signers.clone(),
        };
        loop {
            let given =
                match self
                    .inputs
                    .signed_sign_off(self.script, step, &role, have, need, &ask)
                {
                    Answer::Given(g) => g,
                    Answer::Abort(reason) => return Ok(Event::Abort { reason }),
                };
            // The roll call's spelling is the principal.
            let name = people::find(&state.roster, &given.name)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| given.name.trim().to_string());
            let checked = signoff::verify(
                &ctx.signers,
                &name,
                &ask.message,
                &given.signature,
                crate::approvals::time::now(),
            )
            .and_then(|v| {
                if ctx.signed_with(id, &v.key) {
                    Err(format!(
                        "key {} already signed off step {id}; each person signs with their own key",
                        v.key
                    ))
                } else {
                    Ok(v)
                }
            });
            match checked {
                Ok(v) => {
                    let armored = crate::approvals::agent::armor(&given.signature)
                        .map_err(|e| Error::Run(format!("{place}: {e}")))?;
                    self.signed_pending = Some((
                        step,
                        role.clone(),
                        name.clone(),
                        json!({
                            "principal": v.principal,
                            "key": v.key,
                            "namespace": crate::approvals::SIGNOFF_NAMESPACE,
                            "head": ctx.head,
                            "signature": armored,
                        }),
                    ));
                    return Ok(Event::SignedOff { step, role, name });
                }
                Err(reason) => match self.inputs.rejected(self.script, step, &reason) {
                    Answer::Given(()) => continue,
                    Answer::Abort(r) => return Ok(Event::Abort { reason: r }),
                },
            }
        }
    }
}
