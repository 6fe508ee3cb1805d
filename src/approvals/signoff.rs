//! Signed sign-offs: a ceremony role marked `signed = true` signs off a step with an SSH
//! key, as an SSHSIG in namespace `officiant-signoff` (`ssh-keygen -Y sign -n
//! officiant-signoff`, or the signer's ssh-agent at the console) over one defined message:
//!
//! ```text
//! officiant-signoff v1
//! script-sha256 <hex SHA-256 of the script file>
//! step <step id>
//! head <transcript head before the step, hex>
//! ```
//!
//! (each line ends with a newline). The *transcript head before the step* is the hash of
//! the transcript entry that recorded the previous step's end: its `step-done` entry, or
//! its reviewer's `acknowledge` entry when that came later; for the first step, the
//! transcript's first entry. It does not move when a run is interrupted and resumed, so a
//! signer away from the console can sign it: the run writes the message to
//! `OUT/sign-off.STEP.HEAD8.txt` before it asks, and a headless run that finds no
//! signature file stops there, to be run again once the file is signed.
//!
//! Whose key counts: the person picked from the roll call is the principal. A signature
//! counts when the script's allowed signers file (`[ceremony] allowed-signers`) lets the
//! principal sign with its key in namespace `officiant-signoff` now, as
//! `ssh-keygen -Y verify -f FILE -I PRINCIPAL -n officiant-signoff` decides. The
//! principal is the roll-call name exactly as recorded, or else a plain principal of the
//! file (no `*`, `?` or `!`) that is the same person's name compared as people are
//! (`Walt Witness` and `walt witness`; see [`crate::ceremony::people`]). A file line can
//! carry the roll-call name beside an e-mail principal:
//! `"walt@example.com,Walt Witness" ssh-ed25519 AAAA…`.
//!
//! The transcript records each signed sign-off's principal, key fingerprint, head and
//! signature, and once per session the allowed signers file itself (`allowed-signers`
//! entry: its text and SHA-256, and which roles sign): [`check_transcript`] verifies
//! every signed sign-off from the transcript alone.

use std::path::{Path, PathBuf};

use serde_json::Value;
use ssh_key::{PublicKey, SshSig};

use super::signers::{self, AllowedSigners, Rejected};
use super::SIGNOFF_NAMESPACE;
use crate::ceremony::people::person_key;
use crate::ceremony::transcript::Entry;

/// The first line of every sign-off message.
pub const MESSAGE_VERSION: &str = "officiant-signoff v1";

/// Largest allowed signers file read for sign-offs.
const MAX_SIGNERS_FILE: u64 = 1024 * 1024;

/// The message a sign-off of step `step_id` signs.
pub fn message(script_sha256: &str, step_id: &str, head: &str) -> Vec<u8> {
    format!("{MESSAGE_VERSION}\nscript-sha256 {script_sha256}\nstep {step_id}\nhead {head}\n")
        .into_bytes()
}

/// The file the run writes the message to, in its out dir.
pub fn message_file_name(step_id: &str, head: &str) -> String {
    format!("sign-off.{step_id}.{}.txt", head.get(..8).unwrap_or(head))
}

/// The transcript head before the next step: the hash of the last `step-done` or
/// `acknowledge` entry, else of the first entry (`None`: no entry yet).
pub fn anchor(entries: &[Entry]) -> Option<String> {
    entries
        .iter()
        .rev()
        .find(|e| matches!(e.kind.as_str(), "step-done" | "acknowledge"))
        .or_else(|| entries.first())
        .map(|e| e.hash.clone())
}

/// Read and parse an allowed signers file: the parsed file and its text.
pub fn load_signers(path: &Path) -> Result<(AllowedSigners, String), String> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.len() > MAX_SIGNERS_FILE {
        return Err(format!("{shown}: larger than {MAX_SIGNERS_FILE} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let parsed = AllowedSigners::parse(&shown, &text).map_err(|e| e.to_string())?;
    if !parsed
        .entries
        .iter()
        .any(|e| e.allows_namespace(SIGNOFF_NAMESPACE))
    {
        return Err(format!(
            "{shown}: no key may sign in namespace {SIGNOFF_NAMESPACE} (a namespaces= option leaves it out)"
        ));
    }
    Ok((parsed, text))
}

/// The principals a roll-call name may sign as: the name itself, then the file's plain
/// principals that are the same person's name.
pub fn principals_for(signers: &AllowedSigners, name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let key = person_key(name);
    for e in &signers.entries {
        for p in e.principals.split(',') {
            let plain = !p.is_empty() && !p.contains(['*', '?', '!']);
            if plain && person_key(p) == key && !out.iter().any(|o| o == p) {
                out.push(p.to_string());
            }
        }
    }
    out
}

/// A sign-off signature that counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The allowed signers principal the signature counts for.
    pub principal: String,
    /// `SHA256:…` of the signing key.
    pub key: String,
}

/// Check `name`'s signature over `message` at `time`; the refusal is one line.
pub fn verify(
    signers: &AllowedSigners,
    name: &str,
    message: &[u8],
    sig: &SshSig,
    time: u64,
) -> Result<Verified, String> {
    let candidates = principals_for(signers, name);
    let known = candidates
        .iter()
        .any(|p| signers.lines_for(p).next().is_some());
    if !known {
        return Err(format!(
            "{name} has no key in the allowed signers file (a line whose principals include \"{name}\")"
        ));
    }
    match signers::verify(signers, &candidates, SIGNOFF_NAMESPACE, message, sig, time) {
        Ok(who) => Ok(Verified {
            principal: who.first().cloned().unwrap_or_default(),
            key: signers::fingerprint(sig.public_key()),
        }),
        Err(Rejected::Namespace { found }) => Err(format!(
            "{name}'s signature was made for namespace {found:?}, not {SIGNOFF_NAMESPACE} (ssh-keygen -Y sign -n {SIGNOFF_NAMESPACE})"
        )),
        Err(Rejected::BadSignature) => Err(format!(
            "{name}'s signature is not over this sign-off's message (this script, this step, this transcript head)"
        )),
        Err(Rejected::NotAllowed { key }) => Err(format!(
            "{name}'s signature is by key {key}, which the allowed signers do not let {name} sign off with"
        )),
    }
}

/// Read a transcript's entries (a run in progress: its last session need not be closed).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<Entry>(l)
                .map_err(|e| format!("{shown}: line {}: not a transcript entry ({e})", i + 1))
        })
        .collect()
}

/// What the runner needs to ask for a signed sign-off, read from the run's transcript:
/// what was recorded is what counts.
#[derive(Clone, Debug)]
pub struct Context {
    /// SHA-256 of the script file, hex, as recorded when the session opened.
    pub script_sha256: String,
    /// The allowed signers file recorded for this session.
    pub signers: AllowedSigners,
    /// The transcript head the next sign-off message names, hex.
    pub head: String,
    /// Keys that signed sign-offs in this session, by step id.
    pub signed: Vec<(String, String)>,
}

impl Context {
    /// From the entries of a run in progress.
    pub fn of(entries: &[Entry]) -> Result<Context, String> {
        let start = entries
            .iter()
            .rposition(|e| e.kind == "open")
            .ok_or_else(|| "the transcript has no open entry for this session".to_string())?;
        let session = &entries[start..];
        let script_sha256 = str_of(&session[0].data, "script_sha256");
        let Some(recorded) = session.iter().find(|e| e.kind == "allowed-signers") else {
            return Err("the transcript records no allowed signers for this session".to_string());
        };
        let signers = AllowedSigners::parse("allowed signers", &str_of(&recorded.data, "text"))
            .map_err(|e| e.to_string())?;
        let head = anchor(entries).unwrap_or_default();
        let signed = session
            .iter()
            .filter(|e| e.kind == "sign-off" && e.data.get("key").is_some())
            .map(|e| (str_of(&e.data, "id"), str_of(&e.data, "key")))
            .collect();
        Ok(Context {
            script_sha256,
            signers,
            head,
            signed,
        })
    }

    /// Whether `key` already signed a sign-off of step `step_id` in this session.
    pub fn signed_with(&self, step_id: &str, key: &str) -> bool {
        self.signed.iter().any(|(s, k)| s == step_id && k == key)
    }
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// What a face is given to sign off a step with an SSH key.
#[derive(Clone, Debug)]
pub struct Ask {
    /// The exact bytes to sign (see the module doc).
    pub message: Vec<u8>,
    /// Where the run wrote the message (for ssh-keygen -Y sign).
    pub message_file: PathBuf,
    /// The transcript head the message names.
    pub head: String,
    /// Who may sign: the session's allowed signers.
    pub signers: AllowedSigners,
}

/// A person's name and their sign-off signature.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The roll-call name the signature is for.
    pub name: String,
    /// Their SSHSIG over the message, namespace `officiant-signoff`.
    pub signature: SshSig,
}

/// Sign `message` for roll-call name `name` with the key in the ssh-agent at `socket`
/// that the allowed signers let them sign off with now.
pub fn sign_with_agent(
    socket: &Path,
    signers: &AllowedSigners,
    name: &str,
    message: &[u8],
    now: u64,
) -> Result<SshSig, String> {
    let keys = super::agent::identities(socket).map_err(|e| e.to_string())?;
    let principals = principals_for(signers, name);
    let key: Option<&PublicKey> = keys.iter().find(|k| {
        principals
            .iter()
            .any(|p| signers.allows(p, k.key_data(), SIGNOFF_NAMESPACE, now))
    });
    let Some(key) = key else {
        return Err(format!(
            "ssh-agent: none of its {} key(s) may sign off for {name} (the allowed signers name their keys; ssh-add {name}'s key)",
            keys.len()
        ));
    };
    super::agent::sign(socket, Some(key), SIGNOFF_NAMESPACE, message).map_err(|e| e.to_string())
}

/// What [`check_transcript`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Signed sign-offs verified: (step id, name, principal).
    pub verified: Vec<(String, String, String)>,
}

/// Verify every signed sign-off of a transcript against the allowed signers its session
/// recorded, and that no sign-off of a signed role lacks its signature. The error names
/// the entry (1-based line) and the step.
pub fn check_transcript(entries: &[Entry]) -> Result<Checked, String> {
    let mut out = Checked::default();
    let mut script_sha = String::new();
    let mut signers: Option<(AllowedSigners, Vec<String>)> = None;
    for (i, e) in entries.iter().enumerate() {
        let line = i + 1;
        match e.kind.as_str() {
            "open" => {
                script_sha = str_of(&e.data, "script_sha256");
                signers = None;
            }
            "allowed-signers" => {
                let text = str_of(&e.data, "text");
                let sha = hex::encode(crate::output::sha256(text.as_bytes()));
                if sha != str_of(&e.data, "sha256") {
                    return Err(format!(
                        "line {line}: the recorded allowed signers do not match their SHA-256"
                    ));
                }
                let parsed = AllowedSigners::parse("recorded allowed signers", &text)
                    .map_err(|m| format!("line {line}: {m}"))?;
                let roles = e
                    .data
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                signers = Some((parsed, roles));
            }
            "sign-off" => {
                let d = &e.data;
                let (id, name, role) = (str_of(d, "id"), str_of(d, "name"), str_of(d, "role"));
                let at = format!("line {line}: sign-off of step {id:?} by {name:?}");
                let signed_role = signers
                    .as_ref()
                    .is_some_and(|(_, roles)| roles.contains(&role));
                let Some(armored) = d.get("signature").and_then(Value::as_str) else {
                    if signed_role {
                        return Err(format!(
                            "{at}: role {role} signs with SSH keys, and this sign-off has no signature"
                        ));
                    }
                    continue;
                };
                let Some((file, _)) = &signers else {
                    return Err(format!(
                        "{at}: signed, but its session records no allowed signers"
                    ));
                };
                let head = str_of(d, "head");
                if anchor(&entries[..i]).as_deref() != Some(head.as_str()) {
                    return Err(format!(
                        "{at}: signs transcript head {head}, which is not the head before the step"
                    ));
                }
                let sig = SshSig::from_pem(armored)
                    .map_err(|err| format!("{at}: the signature does not parse: {err}"))?;
                let time = super::time::parse(&e.time)
                    .map_err(|err| format!("{at}: time {}: {err}", e.time))?;
                let msg = message(&script_sha, &id, &head);
                let principal = str_of(d, "principal");
                let v = verify(file, &name, &msg, &sig, time).map_err(|m| format!("{at}: {m}"))?;
                if v.principal != principal || v.key != str_of(d, "key") {
                    return Err(format!(
                        "{at}: verifies as principal {:?} with key {}, but records {principal:?} with key {}",
                        v.principal,
                        v.key,
                        str_of(d, "key")
                    ));
                }
                out.verified.push((id, name, principal));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1";

    #[test]
    fn the_message_is_four_lines() {
        let m = message(&"ab".repeat(32), "set-policy", &"cd".repeat(32));
        let text = String::from_utf8(m).unwrap();
        assert_eq!(
            text,
            format!(
                "officiant-signoff v1\nscript-sha256 {}\nstep set-policy\nhead {}\n",
                "ab".repeat(32),
                "cd".repeat(32)
            )
        );
        assert_eq!(
            message_file_name("set-policy", &"cd".repeat(32)),
            "sign-off.set-policy.cdcdcdcd.txt"
        );
    }

    #[test]
    fn a_roll_call_name_maps_to_the_same_persons_plain_principal() {
        let file = format!(
            "\"walt@example.com,Walt Witness\" {ED}\n\"wanda *\" {ED}\n\"!walt witness\" {ED}\n"
        );
        let s = AllowedSigners::parse("f", &file).unwrap();
        assert_eq!(
            principals_for(&s, "walt  witness"),
            vec!["walt  witness".to_string(), "Walt Witness".to_string()]
        );
        // Patterns and negations are never a person's name.
        assert_eq!(principals_for(&s, "wanda x"), vec!["wanda x".to_string()]);
    }

    fn entry(kind: &str, hash: &str) -> Entry {
        Entry {
            seq: 0,
            time: String::new(),
            prev: String::new(),
            kind: kind.into(),
            data: Value::Null,
            hash: hash.into(),
        }
    }

    #[test]
    fn the_head_before_a_step_does_not_move_with_new_sessions() {
        let mut e = vec![entry("open", "o1"), entry("roster", "r1")];
        assert_eq!(anchor(&e).as_deref(), Some("o1"));
        e.push(entry("sign-off", "s1"));
        e.push(entry("step-start", "x"));
        e.push(entry("step-done", "d1"));
        assert_eq!(anchor(&e).as_deref(), Some("d1"));
        e.push(entry("acknowledge", "a1"));
        for k in [
            "close",
            "open",
            "resumed",
            "roster",
            "sign-off",
            "step-failed",
        ] {
            e.push(entry(k, "later"));
        }
        assert_eq!(anchor(&e).as_deref(), Some("a1"));
        assert_eq!(anchor(&[]), None);
    }
}
