//! What crosses the machine's edge: the events a face feeds it, the effects it asks for,
//! the records the runner keeps, and a step's results.

use serde::{Deserialize, Serialize};

use super::SignOff;
use crate::ceremony::people::Participant;
use crate::hsm::UserType;

/// A finished step's results: recorded in the journal and the transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// Objects the step made on the token (or found made, when adopted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<CreatedObject>,
    /// Files the step wrote into the out dir.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputFile>,
    /// delete-object: how many objects were deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<usize>,
    /// The step found its work already done on the token (an interrupted earlier run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// What a step kind reports for the witnesses (certificate digests, fuse values,
    /// signed files): a JSON object, or null.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// The checked sub-steps of an operation of several device calls (a rotation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_steps: Vec<crate::hsm::admin::SubStep>,
    /// The device's own audit log, read after the step (backends that keep one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_audit: Option<crate::hsm::admin::AuditReport>,
    /// One-line facts for the witnesses ("force-audit is on").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An object a step made on the token, as the transcript records it for the witnesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedObject {
    /// Its label on the token.
    pub label: String,
    /// Object id, hex.
    pub id: String,
    /// Its class as people read it ("private key", "certificate").
    pub class: String,
    /// "EC P-256", "RSA 4096": empty for objects that are not keys.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_type: String,
    /// SHA-256 of the public key's DER SubjectPublicKeyInfo, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_sha256: Option<String>,
}

/// A file a step wrote into the out dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// File name in the out dir.
    pub path: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The file was already there from an interrupted attempt of this step and was kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

/// What a face tells the machine: an answer to an effect, or a step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin. `completed`, `interrupted` and `acknowledged` (results already read aloud
    /// and acknowledged) come from the journal of an earlier run.
    Start {
        /// Steps the journal says are done, with their results.
        completed: Vec<(usize, StepResult)>,
        /// The step an earlier run started and did not finish, if any.
        interrupted: Option<usize>,
        /// Results already read aloud and acknowledged, by step.
        acknowledged: Vec<(usize, SignOff)>,
    },
    /// The token is open (answer to `Effect::OpenToken`).
    TokenOpened,
    /// A person signed off step `step` in a role (answer to `Effect::NeedSignOff`).
    SignedOff {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The role they sign in.
        role: String,
        /// Their name as typed; the roll call decides who it is.
        name: String,
    },
    /// A destructive step was confirmed (answer to `Effect::NeedConfirm`).
    Confirmed {
        /// Index of the step in the script (0-based).
        step: usize,
    },
    /// The face now holds the value of secret `name`.
    SecretProvided {
        /// The secret's name in the script.
        name: String,
    },
    /// The token refused the value of secret `name` (a wrong PIN) before the step
    /// changed anything: ask for it again.
    SecretRefused {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The secret's name in the script.
        name: String,
        /// Why the token refused it (one line, shown when it is asked again).
        reason: String,
    },
    /// The people present, in their roles.
    Roster(Vec<Participant>),
    /// The reviewer read step `step`'s result aloud and it matched.
    Acknowledged {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The reviewing role.
        role: String,
        /// The reviewer's name as typed.
        name: String,
    },
    /// Logged in again after a resume (answer to `Effect::Relogin`).
    ReloggedIn,
    /// The runner ran step `step`.
    StepDone {
        /// Index of the step in the script (0-based).
        step: usize,
        /// What it made and wrote.
        result: StepResult,
    },
    /// The runner could not run step `step`.
    StepFailed {
        /// Index of the step in the script (0-based).
        step: usize,
        /// One line naming the step and the cause.
        error: String,
    },
    /// Someone stops the run.
    Abort {
        /// Why, in one line (recorded in the transcript).
        reason: String,
    },
}

/// What the machine asks of a face: an input, a token call, a record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open the token and record what it is; answer `Event::TokenOpened`.
    OpenToken,
    /// Who is present, and in which roles (once, before the first step).
    NeedRoster,
    /// Ask someone in `role` to sign off step `step`; answer `Event::SignedOff`.
    NeedSignOff {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The role that signs.
        role: String,
        /// Sign-offs in that role so far.
        have: usize,
        /// Sign-offs the role must give.
        need: usize,
    },
    /// Ask for the confirmation of destructive step `step`; answer `Event::Confirmed`.
    NeedConfirm {
        /// Index of the step in the script (0-based).
        step: usize,
    },
    /// Ask for the value of secret `name`; answer `Event::SecretProvided` (the value stays
    /// with the face).
    NeedSecret {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The secret's name in the script.
        name: String,
        /// Asked again: why the last value was refused (a wrong PIN).
        retry: Option<String>,
    },
    /// The reviewer (`role`) reads step `step`'s result aloud and acknowledges it.
    NeedAck {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The reviewing role.
        role: String,
    },
    /// After a resume: log in again as the session of the completed steps had it.
    Relogin {
        /// The step the session is restored for.
        step: usize,
        /// Who logs in.
        user: UserType,
        /// The name of the secret that holds the PIN (never its value).
        pin: String,
    },
    /// Execute step `step`. `reconcile`: it started in an earlier run and did not
    /// complete; look on the token and in the out dir for its work before redoing it.
    RunStep {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The step started in an earlier run and did not finish.
        reconcile: bool,
    },
    /// An input was not accepted (e.g. one person in two roles); the need is asked again.
    Rejected {
        /// Index of the step in the script (0-based).
        step: usize,
        /// Why, in one line, for the person who gave it.
        reason: String,
    },
    /// Write this to the journal, then the transcript.
    Record(Record),
    /// The run is complete.
    Finish,
    /// The run stopped.
    Fail {
        /// The failed step, if a step failed.
        step: Option<usize>,
        /// One line naming the cause.
        error: String,
    },
}

/// What the runner writes to the journal and the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A step done in an earlier run, adopted with its result.
    Resumed {
        /// Index of the step in the script (0-based).
        step: usize,
        /// Its result as the journal recorded it.
        result: StepResult,
    },
    /// The people present, in their roles (the roll call).
    Roster(Vec<Participant>),
    /// A result read aloud and acknowledged.
    Acknowledged {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The reviewing role.
        role: String,
        /// The reviewer's name as the roll call spells it.
        name: String,
    },
    /// A sign-off, accepted.
    SignedOff {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The role signed in.
        role: String,
        /// The person's name as the roll call spells it.
        name: String,
    },
    /// A destructive step confirmed.
    Confirmed {
        /// Index of the step in the script (0-based).
        step: usize,
    },
    /// A step handed to the runner (the journal's mark before it touches anything).
    StepStarted {
        /// Index of the step in the script (0-based).
        step: usize,
        /// It continues an interrupted attempt.
        reconcile: bool,
    },
    /// A step done.
    StepCompleted {
        /// Index of the step in the script (0-based).
        step: usize,
        /// What it made and wrote.
        result: StepResult,
    },
    /// A step failed (a wrong PIN among them: the attempt is evidence).
    StepFailed {
        /// Index of the step in the script (0-based).
        step: usize,
        /// One line naming the cause.
        error: String,
    },
    /// Every step done: the journal is closed as complete.
    RunComplete,
    /// The run stopped before its end.
    RunStopped {
        /// Why, in one line.
        error: String,
    },
}
