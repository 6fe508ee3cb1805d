//! SSHSIG signatures made by the approver's ssh-agent (`SSH_AUTH_SOCK`), the same bytes
//! `ssh-keygen -Y sign -n NAMESPACE` produces: the agent signs PROTOCOL.sshsig's signed
//! data (SHA-512 of the message), and the signature is checked before it is returned.
//! The agent protocol is `ssh-agent-client-rs`'s; a key on a FIDO token (`sk-` key)
//! asks for its touch in the agent, as with ssh-keygen.

use std::path::Path;

use ssh_agent_client_rs::{Client, Identity};
use ssh_key::{HashAlg, PublicKey, SshSig};

use super::signers::fingerprint;

/// Why the ssh-agent could not make an approval or sign-off signature.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `SSH_AUTH_SOCK` is not set: no agent to ask.
    #[error("ssh-agent: no agent: SSH_AUTH_SOCK is not set (start one with eval $(ssh-agent) and ssh-add your key)")]
    NoAgent,
    /// The agent could not be reached, or refused (no such key, touch not given).
    #[error("ssh-agent at {socket}: {source}")]
    Agent {
        /// The agent's socket path.
        socket: String,
        /// The agent client's error.
        #[source]
        source: ssh_agent_client_rs::Error,
    },
    /// The agent holds no key, not the key asked for, or several and `--signer` chose
    /// none; the message says which (and lists the fingerprints).
    #[error("ssh-agent: {0}")]
    Choice(String),
    /// The agent's signature does not verify with the key it came from.
    #[error("ssh-agent: the signature from {key} does not verify; nothing written")]
    BadSignature {
        /// The agent key's fingerprint.
        key: String,
    },
    /// The SSHSIG could not be encoded or decoded.
    #[error("ssh-agent: {0}")]
    Encoding(#[from] ssh_key::Error),
}

/// The agent's socket from the environment.
pub fn socket_from_env() -> Result<std::path::PathBuf, Error> {
    std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(std::path::PathBuf::from)
        .ok_or(Error::NoAgent)
}

/// The public keys the agent at `socket` holds (certificates left out).
pub fn identities(socket: &Path) -> Result<Vec<PublicKey>, Error> {
    let agent_err = |source| Error::Agent {
        socket: socket.display().to_string(),
        source,
    };
    let mut client = Client::connect(socket).map_err(agent_err)?;
    Ok(client
        .list_all_identities()
        .map_err(agent_err)?
        .into_iter()
        .filter_map(|i| match i {
            Identity::PublicKey(k) => Some(k.into_owned()),
            Identity::Certificate(_) => None,
        })
        .collect())
}

/// Sign `message` in `namespace` with the agent at `socket`, using `which` (its public
/// key), or the agent's only key when `which` is `None`.
pub fn sign(
    socket: &Path,
    which: Option<&PublicKey>,
    namespace: &str,
    message: &[u8],
) -> Result<SshSig, Error> {
    let agent_err = |source| Error::Agent {
        socket: socket.display().to_string(),
        source,
    };
    let mut client = Client::connect(socket).map_err(agent_err)?;
    let keys: Vec<PublicKey> = client
        .list_all_identities()
        .map_err(agent_err)?
        .into_iter()
        .filter_map(|i| match i {
            Identity::PublicKey(k) => Some(k.into_owned()),
            Identity::Certificate(_) => None,
        })
        .collect();
    let key = match which {
        Some(w) => keys
            .into_iter()
            .find(|k| k.key_data() == w.key_data())
            .ok_or_else(|| {
                Error::Choice(format!(
                    "the agent does not hold key {} (ssh-add it first)",
                    fingerprint(w.key_data())
                ))
            })?,
        None => match keys.len() {
            0 => return Err(Error::Choice("the agent holds no key (ssh-add one)".into())),
            1 => keys
                .into_iter()
                .next()
                .ok_or_else(|| Error::Choice("no key".into()))?,
            n => {
                let fps: Vec<String> = keys.iter().map(|k| fingerprint(k.key_data())).collect();
                return Err(Error::Choice(format!(
                    "the agent holds {n} keys ({}): choose one with --signer KEY.pub",
                    fps.join(", ")
                )));
            }
        },
    };
    let data = SshSig::signed_data(namespace, HashAlg::Sha512, message)?;
    let raw = client.sign(&key, &data).map_err(agent_err)?;
    let sig = SshSig::new(key.key_data().clone(), namespace, HashAlg::Sha512, raw)?;
    key.verify(namespace, message, &sig)
        .map_err(|_| Error::BadSignature {
            key: fingerprint(key.key_data()),
        })?;
    Ok(sig)
}

/// The signature as `ssh-keygen -Y sign` writes it (armored, LF line ends).
pub fn armor(sig: &SshSig) -> Result<String, Error> {
    let mut s = sig.to_pem(ssh_key::LineEnding::LF)?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}
