//! PKCS#11 backend through `cryptoki` (SoftHSMv2, YubiHSM 2 via yubihsm_pkcs11, …).
//!
//! Tokens are found by label or serial each time they are needed, never by a remembered
//! slot number: SoftHSM renumbers its slots after C_InitToken. What we create carries the
//! attributes pkcs11-tool would give it, so the standard tools (pkcs11-tool, p11tool,
//! OpenSSL's pkcs11 engine, CST) use it unchanged.
//!
//! SoftHSMv2 2.6, as measured by tests/it/pkcs11_softhsm.rs: it keeps no PIN retry counter
//! (no CKF_*_PIN_LOCKED, ever); it renumbers a slot at C_InitToken and always offers one
//! spare uninitialized slot; `slots.mechanisms = -A,B` ignores its first entry; it has
//! no CKM_ECDSA_SHA*; pkcs11-tool prints P-521 keys as "528 bits" and lists objects in
//! no stable order. CKO_DATA objects carry no CKA_ID (pkcs11-tool drops it too).
//!
//! Key backup (see `crate::hsm::wrap`): a key generated exportable-under-wrap is
//! CKA_EXTRACTABLE with CKA_WRAP_WITH_TRUSTED (and still sensitive), so only a wrap key
//! with CKA_TRUSTED can export it. SoftHSM lets only the SO set CKA_TRUSTED, and an SO
//! session may create only public objects: the wrap key is therefore a public
//! (CKA_PRIVATE false), sensitive, unextractable AES key, put in an SO session. Being
//! public, it is usable without a login, so it only wraps; a restore lets it unwrap for
//! each import call and no longer (see `wrapping`). Wrapping is C_WrapKey with CKM_AES_KEY_WRAP_PAD (RFC 5649) of
//! the key's PKCS#8; the token computes and keeps the wrap key's CKA_CHECK_VALUE, and
//! refuses ours at creation if it differs.

//!
//! # Layout
//!
//! This file holds the [`Pkcs11Token`] and its `Token` impl, a table that sends each
//! operation to the module of its job: `context` (one initialized context per module
//! file), `slots` (finding the token by URI or label), `session` (the session and the
//! login state), `init` (init-token and its resume), `keygen` (generating and importing
//! key pairs), `objects` (finding, listing, storing and deleting objects), `sign`,
//! `wrapping` (wrap keys, export and import under wrap), `data` (data objects and
//! counters); `templates` and [`attrs`] encode and decode attribute values, [`mech`] maps
//! mechanisms, `errors` maps `CKR_*` codes to [`Error`].

pub mod attrs;
mod context;
mod data;
mod errors;
mod init;
mod keygen;
pub mod mech;
mod objects;
mod session;
mod sign;
mod slots;
mod templates;
pub mod uri;
mod wrapping;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use super::{
    Capabilities, DataObject, Error, KeyOptions, NewObject, ObjectInfo, Result, Selector, Token,
    TokenInfo, UserType, WrapKeyInfo, WrapKeySpec,
};
use crate::hsm::{Label, ObjectId};
use crate::keys::{KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;
use context::{acquire, release};
use errors::uri_err;
pub use errors::{ckr_name, describe, login_error};
use mech::MechList;
use session::Bound;
pub use uri::{Pkcs11Uri, UriError};

/// Open the PKCS#11 token `uri_rest` (the text after `pkcs11:`) names. Where the URI names
/// no token, `token_label` (from the ceremony script) selects it. A token that does not
/// exist yet (before init-token) is looked up again on first use.
pub fn open(uri_rest: &str, token_label: Option<&str>) -> Result<Box<dyn Token>> {
    Ok(Box::new(Pkcs11Token::open(uri_rest, token_label)?))
}

/// Every token the URI's module shows, for an operator to choose one.
pub fn tokens(uri_rest: &str) -> Result<Vec<super::TokenSummary>> {
    let t = Pkcs11Token::open(uri_rest, None)?;
    Ok(t.scan()?
        .into_iter()
        .map(|f| super::TokenSummary {
            label: f.label,
            serial: f.serial,
            model: f.model,
            initialized: f.initialized,
        })
        .collect())
}

/// The user PIN a URI carries in `pin-source` (or `pin-value`, tests only), if any.
pub fn uri_pin(uri_rest: &str) -> Result<Option<Secret>> {
    let uri = Pkcs11Uri::parse(uri_rest).map_err(uri_err)?;
    uri.pin().map_err(|e| Error::Refused(e.to_string()))
}

/// A PKCS#11 token opened through its module: the token the URI (or the script's label)
/// names, looked up again whenever it is needed.
pub struct Pkcs11Token {
    uri: Pkcs11Uri,
    shown: String,
    module: String,
    token_label: Option<String>,
    ctx: Pkcs11,
    bound: Option<Bound>,
    mech_cache: Option<(Slot, std::sync::Arc<MechList>)>,
}

impl Drop for Pkcs11Token {
    fn drop(&mut self) {
        // Sessions first, then (for the last user of the module) C_Finalize, so the next
        // C_Initialize starts clean and re-reads the module's configuration.
        self.bound = None;
        release(&self.module);
    }
}

impl Pkcs11Token {
    /// Open the token `uri_rest` (the text after `pkcs11:`) names, or the one labelled
    /// `token_label` where the URI names none; binds it now if it exists, and logs in when
    /// the URI carries the PIN.
    pub fn open(uri_rest: &str, token_label: Option<&str>) -> Result<Self> {
        let uri = Pkcs11Uri::parse(uri_rest).map_err(uri_err)?;
        let shown = format!("pkcs11:{}", super::uri::redact(uri_rest));
        let module = uri.module().map_err(uri_err)?;
        if !module.is_file() {
            return Err(Error::Backend(format!(
                "PKCS#11 module {} does not exist",
                module.display()
            )));
        }
        let ctx = acquire(&module)?;
        // From here on, dropping `t` releases the context.
        let mut t = Pkcs11Token {
            uri,
            shown,
            module: module.display().to_string(),
            token_label: token_label.map(str::to_string),
            ctx,
            bound: None,
            mech_cache: None,
        };
        // Bind now if the token exists; a token still to be initialized is looked up later.
        if let Some(slot) = t.find()? {
            t.bind(slot)?;
            // RFC 7512: a URI that carries the PIN logs the user in.
            let pin = t
                .uri
                .pin()
                .map_err(|e| Error::Refused(format!("PKCS#11 URI pin-source: {e}")))?;
            if let Some(pin) = pin {
                t.login_inner(UserType::User, &pin)?;
            }
        }
        Ok(t)
    }

    /// Signing mechanisms this token has only in hash-and-sign form (which the `Token`
    /// trait, signing digests, cannot use).
    pub fn hash_and_sign_only(&mut self) -> Result<Vec<(SignScheme, MechanismType)>> {
        Ok(self.mechanisms()?.hash_and_sign_only())
    }
}

// Each operation is an inherent method in the module of its job (see the layout above).
impl Token for Pkcs11Token {
    fn info(&mut self) -> Result<TokenInfo> {
        self.token_info()
    }

    fn capabilities(&mut self) -> Result<Capabilities> {
        Ok(self.mechanisms()?.capabilities())
    }

    fn init_token(&mut self, label: &str, so_pin: &Secret, user_pin: &Secret) -> Result<()> {
        self.init(label, so_pin, user_pin)
    }

    fn resume_init_token(
        &mut self,
        label: &str,
        so_pin: &Secret,
        user_pin: &Secret,
    ) -> Result<Option<String>> {
        self.resume_init(label, so_pin, user_pin)
    }

    fn login(&mut self, user: UserType, pin: &Secret) -> Result<()> {
        self.login_inner(user, pin)
    }

    fn logout(&mut self) -> Result<()> {
        self.end_login()
    }

    fn change_pin(&mut self, user: UserType, old: &Secret, new: &Secret) -> Result<()> {
        self.set_pin(user, old, new)
    }

    fn generate_key(
        &mut self,
        alg: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
    ) -> Result<PublicKey> {
        self.generate_key_with(alg, label, id, &KeyOptions::default())
    }

    fn generate_key_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
        opts: &KeyOptions,
    ) -> Result<PublicKey> {
        self.generate_pair(alg, label, id, opts)
    }

    fn import_key(&mut self, key: &PrivateKey, label: &Label, id: &ObjectId) -> Result<PublicKey> {
        self.import_pair(key, label, id)
    }

    fn put_object(&mut self, label: &Label, id: &ObjectId, object: &NewObject) -> Result<()> {
        self.store_object(label, id, object)
    }

    fn list_objects(&mut self) -> Result<Vec<ObjectInfo>> {
        self.objects()
    }

    fn read_certificate(&mut self, label: &str) -> Result<Option<Vec<u8>>> {
        self.certificate(label)
    }

    fn public_key(&mut self, label: &str) -> Result<PublicKey> {
        self.public_key_of(label)
    }

    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>> {
        self.sign_digest(label, scheme, digest)
    }

    fn sign_message(&mut self, label: &str, scheme: SignScheme, message: &[u8]) -> Result<Vec<u8>> {
        self.sign_streamed(label, scheme, message)
    }

    fn put_wrap_key(&mut self, spec: &WrapKeySpec, key: &Secret) -> Result<WrapKeySpec> {
        self.put_wrap(spec, key)
    }

    fn wrap_key(&mut self, label: &str) -> Result<Option<WrapKeyInfo>> {
        self.wrap_info(label)
    }

    fn delete_wrap_key(&mut self, label: &str) -> Result<bool> {
        self.delete_wrap(label)
    }

    fn seal_wrap_key(&mut self, label: &str) -> Result<()> {
        let wrap = self.wrap_handle(label)?;
        self.set_unwrap(wrap, label, false)
    }

    fn export_wrapped(&mut self, wrap_label: &str, label: &str) -> Result<Vec<u8>> {
        self.export_under_wrap(wrap_label, label)
    }

    fn import_wrapped(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: &[u8],
        public: &PublicKey,
    ) -> Result<()> {
        self.import_under_wrap(wrap_label, blob, label, id, public)
    }

    fn read_data(&mut self, prefix: &str) -> Result<Vec<DataObject>> {
        self.data_objects(prefix)
    }

    fn put_data(&mut self, label: &str, value: &[u8], immutable: bool) -> Result<()> {
        self.store_data(label, value, immutable)
    }

    fn read_counter(&mut self, label: &str) -> Result<Option<u64>> {
        self.counter(label)
    }

    fn write_counter(&mut self, label: &str, expected: u64, value: u64) -> Result<()> {
        self.move_counter(label, expected, value)
    }

    fn delete_object(&mut self, sel: &Selector) -> Result<usize> {
        self.delete_selected(sel)
    }
}
