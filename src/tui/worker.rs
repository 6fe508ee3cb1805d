//! The worker thread owns the token. Token calls block (RSA-4096 generation takes
//! seconds), so the console sends a [`Request`] and keeps drawing; the answer comes back
//! as [`WorkerMsg`] on the console's event channel. Secrets travel inside
//! [`Secret`] and are dropped (zeroized) as soon as the call returns.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};

use crate::hsm::{self, BackendUri, ObjectInfo, Token, TokenInfo, UserType};
use crate::keys::{self, KeyAlgorithm, PublicKey, SignScheme};
use crate::secret::Secret;

use super::event::Event;

#[derive(Debug)]
pub enum Request {
    Refresh,
    Login {
        user: UserType,
        pin: Secret,
    },
    InitToken {
        label: String,
        so_pin: Secret,
        user_pin: Secret,
    },
    Generate {
        alg: KeyAlgorithm,
        label: String,
        id: Vec<u8>,
    },
    /// Log in with `pin`, hash `input`, sign with `key`, check the signature, write it.
    SignFile {
        key: String,
        scheme: SignScheme,
        pin: Secret,
        input: PathBuf,
        output: PathBuf,
    },
    /// Check a detached signature over `input` against the public key in `pubkey`.
    VerifyFile {
        pubkey: PathBuf,
        input: PathBuf,
        signature: PathBuf,
        pkcs1: bool,
    },
}

impl Request {
    /// What the progress indicator says while this runs.
    pub fn describe(&self) -> String {
        match self {
            Request::Refresh => "Reading the token".into(),
            Request::Login { user, .. } => format!("Logging in as {user}"),
            Request::InitToken { label, .. } => format!("Initializing token {label:?}"),
            Request::Generate { alg, label, .. } => format!("Generating {alg} key {label:?}"),
            Request::SignFile { input, .. } => format!("Signing {}", input.display()),
            Request::VerifyFile { input, .. } => format!("Verifying {}", input.display()),
        }
    }
}

#[derive(Debug)]
pub enum WorkerMsg {
    Snapshot {
        info: TokenInfo,
        objects: Vec<ObjectInfo>,
    },
    OpenFailed(String),
    Done(String),
    Generated {
        label: String,
        public_key: PublicKey,
    },
    Signed {
        digest: Vec<u8>,
        output: PathBuf,
        verified: bool,
    },
    Verified {
        digest: Vec<u8>,
        ok: bool,
        detail: String,
    },
    Failed {
        what: String,
        cause: String,
    },
}

/// Open `uri` on a new thread and serve requests until the sender is dropped.
pub fn spawn(uri: String, events: Sender<Event>) -> Sender<Request> {
    let (tx, rx) = channel::<Request>();
    std::thread::spawn(move || {
        let send = |m: WorkerMsg| events.send(Event::Worker(m)).is_ok();
        let mut token = match BackendUri::parse(&uri).and_then(|u| hsm::open(&u, None)) {
            Ok(t) => t,
            Err(e) => {
                send(WorkerMsg::OpenFailed(e.to_string()));
                // Still answer requests so the console never waits forever.
                for req in rx {
                    let what = req.describe();
                    if !send(WorkerMsg::Failed {
                        what,
                        cause: format!("the backend did not open: {e}"),
                    }) {
                        return;
                    }
                }
                return;
            }
        };
        if !send(snapshot(token.as_mut())) {
            return;
        }
        for req in rx {
            if !send(serve(token.as_mut(), req)) {
                return;
            }
        }
    });
    tx
}

fn snapshot(token: &mut dyn Token) -> WorkerMsg {
    let info = match token.info() {
        Ok(i) => i,
        Err(e) => return WorkerMsg::OpenFailed(e.to_string()),
    };
    // An uninitialized token, or one that needs a login to list, still shows its info.
    let objects = token.list_objects().unwrap_or_default();
    WorkerMsg::Snapshot { info, objects }
}

/// Run one request on the token.
pub fn serve(token: &mut dyn Token, req: Request) -> WorkerMsg {
    let what = req.describe();
    let failed = |cause: String| WorkerMsg::Failed {
        what: what.clone(),
        cause,
    };
    match req {
        Request::Refresh => snapshot(token),
        Request::Login { user, pin } => match token.login(user, &pin) {
            Ok(()) => WorkerMsg::Done(format!("logged in as {user}")),
            Err(e) => failed(e.to_string()),
        },
        Request::InitToken {
            label,
            so_pin,
            user_pin,
        } => match token.init_token(&label, &so_pin, &user_pin) {
            Ok(()) => WorkerMsg::Done(format!("token {label:?} initialized")),
            Err(e) => failed(e.to_string()),
        },
        Request::Generate { alg, label, id } => match token.generate_key(alg, &label, &id) {
            Ok(public_key) => WorkerMsg::Generated { label, public_key },
            Err(e) => failed(e.to_string()),
        },
        Request::SignFile {
            key,
            scheme,
            pin,
            input,
            output,
        } => match sign_file(token, &key, scheme, &pin, &input, &output) {
            Ok((digest, verified)) => WorkerMsg::Signed {
                digest,
                output,
                verified,
            },
            Err(cause) => failed(cause),
        },
        Request::VerifyFile {
            pubkey,
            input,
            signature,
            pkcs1,
        } => match verify_file(&pubkey, &input, &signature, pkcs1) {
            Ok((digest, ok, detail)) => WorkerMsg::Verified { digest, ok, detail },
            Err(cause) => failed(cause),
        },
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {}", path.display(), e.kind()))
}

fn sign_file(
    token: &mut dyn Token,
    key: &str,
    scheme: SignScheme,
    pin: &Secret,
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<(Vec<u8>, bool), String> {
    let data = read(input)?;
    let digest = scheme.hash().digest(&data);
    token
        .login(UserType::User, pin)
        .map_err(|e| e.to_string())?;
    let public = token.public_key(key).map_err(|e| e.to_string())?;
    let sig = token
        .sign(key, scheme, &digest)
        .map_err(|e| e.to_string())?;
    // Check before writing: a signature that does not verify is never saved.
    public
        .verify_digest(scheme, &digest, &sig)
        .map_err(|e| format!("the token's signature does not verify: {e}"))?;
    let out = match scheme {
        SignScheme::Ecdsa(_) => keys::ecdsa_fixed_to_der(&sig).map_err(|e| e.to_string())?,
        _ => sig,
    };
    crate::output::write_new(output, &out).map_err(|e| e.to_string())?;
    Ok((digest, true))
}

fn verify_file(
    pubkey: &std::path::Path,
    input: &std::path::Path,
    signature: &std::path::Path,
    pkcs1: bool,
) -> Result<(Vec<u8>, bool, String), String> {
    let key = keys::load_public_key(pubkey)?;
    let scheme = match (key.default_scheme(), pkcs1) {
        (SignScheme::RsaPss(h), true) => SignScheme::RsaPkcs1(h),
        (s, _) => s,
    };
    let data = read(input)?;
    let sig = read(signature)?;
    let digest = scheme.hash().digest(&data);
    Ok(match key.verify_digest(scheme, &digest, &sig) {
        Ok(()) => (digest, true, format!("good {} signature", scheme.name())),
        Err(e) => (digest, false, e.to_string()),
    })
}
