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
//! (CKA_PRIVATE false), sensitive, unextractable AES key that can only wrap and unwrap,
//! put in an SO session. Wrapping is C_WrapKey with CKM_AES_KEY_WRAP_PAD (RFC 5649) of
//! the key's PKCS#8; the token computes and keeps the wrap key's CKA_CHECK_VALUE, and
//! refuses ours at creation if it differs.

pub mod attrs;
pub mod mech;
pub mod uri;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass as CkClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType as CkUser};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::{Decode, Encode};
use zeroize::Zeroize;

use super::{
    Capabilities, DataObject, Error, KeyFlags, KeyOptions, NewObject, ObjectClass, ObjectInfo,
    Result, Selector, Token, TokenInfo, UserType, WrapKeyInfo, WrapKeySpec,
};
use crate::keys::{Curve, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;
use mech::MechList;
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

fn uri_err(e: UriError) -> Error {
    Error::Backend(e.to_string())
}

/// "PinIncorrect" -> "CKR_PIN_INCORRECT".
pub fn ckr_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Map a cryptoki error to ours; `what` says what we were doing ("signing with \"K\"").
fn ck(what: &str, e: CkError) -> Error {
    match e {
        CkError::Pkcs11(rv, func) => match rv {
            RvError::UserNotLoggedIn => Error::NotLoggedIn(format!(
                "{what}: log in first (C_{func:?} returned CKR_USER_NOT_LOGGED_IN)"
            )),
            RvError::TokenNotPresent | RvError::TokenNotRecognized | RvError::DeviceRemoved => {
                Error::Backend(format!(
                    "{what}: the token is gone (C_{func:?} returned {})",
                    ckr_name(rv)
                ))
            }
            _ => Error::Backend(format!("{what}: C_{func:?} returned {}", ckr_name(rv))),
        },
        other => Error::Backend(format!("{what}: {other}")),
    }
}

fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

fn pin(secret: &Secret, what: &str) -> Result<AuthPin> {
    let s = secret
        .expose_str()
        .ok_or_else(|| Error::Refused(format!("{what} is not UTF-8 text")))?;
    Ok(AuthPin::from(s))
}

fn ck_user(u: UserType) -> CkUser {
    match u {
        UserType::User => CkUser::User,
        UserType::So => CkUser::So,
    }
}

/// One token's facts as C_GetTokenInfo reports them, for matching and error messages.
struct Found {
    slot: Slot,
    label: String,
    serial: String,
    manufacturer: String,
    model: String,
    initialized: bool,
}

impl Found {
    fn describe(&self) -> String {
        if self.initialized {
            format!("{:?} (serial {})", self.label, self.serial)
        } else {
            format!("an uninitialized token in slot {}", self.slot.id())
        }
    }
}

struct Bound {
    slot: Slot,
    session: Session,
    logged_in: Option<UserType>,
    /// The private key last used to sign and its label: a batch signs with one key, and
    /// a find per signature walks the token's whole object store.
    /// (label, is RSA, handle).
    last_signing_key: Option<(String, bool, ObjectHandle)>,
}

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

/// One initialized context per module file, shared by every token opened on it: a second
/// C_Initialize would fail, and finalizing under another user would end its sessions.
static CONTEXTS: std::sync::Mutex<Vec<(String, Pkcs11, usize)>> = std::sync::Mutex::new(Vec::new());

fn contexts() -> std::sync::MutexGuard<'static, Vec<(String, Pkcs11, usize)>> {
    // A panic while holding the lock leaves the list consistent (push/remove are atomic).
    CONTEXTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn acquire(module: &std::path::Path) -> Result<Pkcs11> {
    let key = module.display().to_string();
    let mut list = contexts();
    if let Some(entry) = list.iter_mut().find(|(m, ..)| *m == key) {
        entry.2 += 1;
        return Ok(entry.1.clone());
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| Error::Backend(format!("cannot load PKCS#11 module {key}: {e}")))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck(&format!("initializing {key}"), e)),
    }
    list.push((key, ctx.clone(), 1));
    Ok(ctx)
}

fn release(module: &str) {
    let mut list = contexts();
    if let Some(i) = list.iter().position(|(m, ..)| m == module) {
        list[i].2 -= 1;
        if list[i].2 == 0 {
            let (_, ctx, _) = list.remove(i);
            let _ = ctx.finalize();
        }
    }
}

impl Pkcs11Token {
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

    /// What the URI or script asks for, as text for messages.
    fn wanted(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(l) = self.uri.token.as_ref().or(if self.uri.names_token() {
            None
        } else {
            self.token_label.as_ref()
        }) {
            parts.push(format!("labelled {l:?}"));
        }
        if let Some(s) = &self.uri.serial {
            parts.push(format!("with serial {s}"));
        }
        if let Some(m) = &self.uri.manufacturer {
            parts.push(format!("from manufacturer {m:?}"));
        }
        if let Some(m) = &self.uri.model {
            parts.push(format!("of model {m:?}"));
        }
        if let Some(id) = self.uri.slot_id {
            parts.push(format!("in slot {id}"));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    fn scan(&self) -> Result<Vec<Found>> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| ck("listing slots", e))?;
        let mut out = Vec::new();
        for slot in slots {
            let ti = self
                .ctx
                .get_token_info(slot)
                .map_err(|e| ck("reading token info", e))?;
            let mut f = Found {
                slot,
                label: ti.label().trim_end().to_string(),
                serial: ti.serial_number().trim_end().to_string(),
                manufacturer: ti.manufacturer_id().trim_end().to_string(),
                model: ti.model().trim_end().to_string(),
                initialized: ti.token_initialized(),
            };
            if !f.initialized {
                f.label.clear();
            }
            out.push(f);
        }
        Ok(out)
    }

    fn matches(&self, f: &Found) -> Result<bool> {
        let label = self.uri.token.as_ref().or(if self.uri.names_token() {
            None
        } else {
            self.token_label.as_ref()
        });
        if let Some(l) = label {
            if !f.initialized || &f.label != l {
                return Ok(false);
            }
        }
        if let Some(s) = &self.uri.serial {
            if !f.initialized || &f.serial != s {
                return Ok(false);
            }
        }
        if let Some(m) = &self.uri.manufacturer {
            if &f.manufacturer != m {
                return Ok(false);
            }
        }
        if let Some(m) = &self.uri.model {
            if &f.model != m {
                return Ok(false);
            }
        }
        if let Some(id) = self.uri.slot_id {
            if f.slot.id() != id {
                return Ok(false);
            }
        }
        if self.uri.slot_description.is_some() || self.uri.slot_manufacturer.is_some() {
            let si = self
                .ctx
                .get_slot_info(f.slot)
                .map_err(|e| ck("reading slot info", e))?;
            if let Some(d) = &self.uri.slot_description {
                if si.slot_description().trim_end() != d {
                    return Ok(false);
                }
            }
            if let Some(m) = &self.uri.slot_manufacturer {
                if si.manufacturer_id().trim_end() != m {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The one initialized token the URI/script names; None when none matches (yet).
    fn find(&self) -> Result<Option<Slot>> {
        let found = self.scan()?;
        let selective = self.wanted().is_some();
        let mut hits = Vec::new();
        for f in &found {
            if f.initialized && self.matches(f)? {
                hits.push(f);
            }
        }
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0].slot)),
            // With no criteria at all, several tokens leave the choice to the operator.
            _ if !selective => Ok(None),
            _ => Err(Error::Backend(format!(
                "several PKCS#11 tokens match {} in {}: {}; add serial=… to the URI",
                self.wanted().unwrap_or_default(),
                self.module,
                hits.iter()
                    .map(|f| f.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// From now on the token is the one labelled `label` (after C_InitToken, which
    /// SoftHSM follows by moving the token to a new slot id).
    fn select_label(&mut self, label: &str) {
        self.uri.token = None;
        self.uri.serial = None;
        self.uri.slot_id = None;
        self.token_label = Some(label.to_string());
    }

    /// Log in as the SO on the bound token, set the user PIN (C_InitPIN), log out.
    fn set_user_pin(&mut self, so_pin: &Secret, user_pin: &Secret) -> Result<()> {
        self.login_inner(UserType::So, so_pin)?;
        let user = pin(user_pin, "user PIN")?;
        let res = self
            .session()?
            .init_pin(&user)
            .map_err(|e| match rv_of(&e) {
                Some(RvError::PinLenRange) => Error::Refused(format!(
                    "user PIN length is outside what the token accepts ({})",
                    ckr_name(RvError::PinLenRange)
                )),
                _ => ck("setting the user PIN (C_InitPIN)", e),
            });
        crate::output::crash_point();
        let _ = self.logout();
        res
    }

    fn missing_token(&self) -> Error {
        let found = match self.scan() {
            Ok(f) if f.is_empty() => "no tokens".to_string(),
            Ok(f) => f.iter().map(Found::describe).collect::<Vec<_>>().join(", "),
            Err(e) => e.to_string(),
        };
        let what = match self.wanted() {
            Some(w) => format!("no PKCS#11 token {w}"),
            None => "no PKCS#11 token named (give token=… in the URI)".to_string(),
        };
        Error::Backend(format!("{what} in {} (found: {found})", self.module))
    }

    fn bind(&mut self, slot: Slot) -> Result<()> {
        self.bound = None;
        let session = self
            .ctx
            .open_rw_session(slot)
            .map_err(|e| ck("opening a session", e))?;
        // Another session of this process may already be logged in (login is per token).
        let logged_in = match session.get_session_info().map(|i| i.session_state()) {
            Ok(cryptoki::session::SessionState::RwUser) => Some(UserType::User),
            Ok(cryptoki::session::SessionState::RwSecurityOfficer) => Some(UserType::So),
            _ => None,
        };
        self.bound = Some(Bound {
            slot,
            session,
            logged_in,
            last_signing_key: None,
        });
        Ok(())
    }

    fn bound(&mut self) -> Result<&mut Bound> {
        if self.bound.is_none() {
            match self.find()? {
                Some(slot) => self.bind(slot)?,
                None => return Err(self.missing_token()),
            }
        }
        // Checked just above: bound is Some here.
        self.bound
            .as_mut()
            .ok_or_else(|| Error::Backend("no session".into()))
    }

    fn session(&mut self) -> Result<&Session> {
        Ok(&self.bound()?.session)
    }

    /// A slot to ask about mechanisms: the bound token, else the one init-token would take.
    fn any_slot(&mut self) -> Result<Slot> {
        if let Some(b) = &self.bound {
            return Ok(b.slot);
        }
        if let Some(slot) = self.find()? {
            return Ok(slot);
        }
        let found = self.scan()?;
        found
            .iter()
            .find(|f| self.uri.slot_id.is_none_or(|id| f.slot.id() == id))
            .map(|f| f.slot)
            .ok_or_else(|| self.missing_token())
    }

    fn read_mechanisms(&self, slot: Slot) -> Result<MechList> {
        let types = self
            .ctx
            .get_mechanism_list(slot)
            .map_err(|e| ck("listing mechanisms", e))?;
        let mut list = Vec::new();
        for t in types {
            if let Ok(info) = self.ctx.get_mechanism_info(slot, t) {
                list.push((t, info));
            }
        }
        Ok(MechList(list))
    }

    /// Signing mechanisms this token has only in hash-and-sign form (which the `Token`
    /// trait, signing digests, cannot use).
    pub fn hash_and_sign_only(&mut self) -> Result<Vec<(SignScheme, MechanismType)>> {
        Ok(self.mechanisms()?.hash_and_sign_only())
    }

    fn require_mechanism(&mut self, m: MechanismType, purpose: &str) -> Result<()> {
        if self.mechanisms()?.has(m) {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "the token has no mechanism {m} ({purpose})"
            )))
        }
    }

    fn login_inner(&mut self, user: UserType, pin_s: &Secret) -> Result<()> {
        let p = pin(pin_s, &format!("{user} PIN"))?;
        let b = self.bound()?;
        if b.logged_in == Some(user) {
            return Ok(());
        }
        if b.logged_in.is_some() {
            let _ = b.session.logout();
            b.logged_in = None;
        }
        let slot = b.slot;
        match b.session.login(ck_user(user), Some(&p)) {
            Ok(()) => {}
            Err(e) if rv_of(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
            Err(e) => return Err(self.pin_error(user, slot, e)),
        }
        if let Some(b) = self.bound.as_mut() {
            b.logged_in = Some(user);
        }
        Ok(())
    }

    /// Wrong or locked PIN, with what the token flags say about retries.
    fn pin_error(&self, user: UserType, slot: Slot, e: CkError) -> Error {
        let ti = self.ctx.get_token_info(slot).ok();
        let (low, last, locked) = match (&ti, user) {
            (Some(t), UserType::User) => (
                t.user_pin_count_low(),
                t.user_pin_final_try(),
                t.user_pin_locked(),
            ),
            (Some(t), UserType::So) => (
                t.so_pin_count_low(),
                t.so_pin_final_try(),
                t.so_pin_locked(),
            ),
            (None, _) => (false, false, false),
        };
        login_error(user, rv_of(&e), low, last, locked)
            .unwrap_or_else(|| ck(&format!("logging in as {user}"), e))
    }

    fn label_attr(label: &str) -> Attribute {
        Attribute::Label(label.as_bytes().to_vec())
    }

    fn find_objects(
        &mut self,
        class: CkClass,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<ObjectHandle>> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = label {
            t.push(Self::label_attr(l));
        }
        if let Some(i) = id {
            t.push(Attribute::Id(i.to_vec()));
        }
        self.session()?
            .find_objects(&t)
            .map_err(|e| ck("searching objects", e))
    }

    /// Refuse a label or id already used by an object of the same class.
    fn check_free(&mut self, classes: &[CkClass], label: &str, id: &[u8]) -> Result<()> {
        for &c in classes {
            if !self.find_objects(c, Some(label), None)?.is_empty() {
                return Err(Error::LabelExists {
                    label: label.to_string(),
                    class: our_class(c),
                });
            }
            if !id.is_empty() && !self.find_objects(c, None, Some(id))?.is_empty() {
                return Err(Error::IdExists {
                    id: hex::encode(id),
                    class: our_class(c),
                });
            }
        }
        Ok(())
    }

    fn one(&mut self, class: CkClass, label: &str) -> Result<Option<ObjectHandle>> {
        let hits = self.find_objects(class, Some(label), None)?;
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0])),
            n => Err(Error::Refused(format!(
                "{n} {} objects are labelled {label:?}; Officiant needs labels to be unique",
                our_class(class)
            ))),
        }
    }

    fn wrap_handle(&mut self, wrap_label: &str) -> Result<ObjectHandle> {
        self.one(CkClass::SECRET_KEY, wrap_label)?
            .ok_or_else(|| Error::NotFound {
                what: format!("wrap key labelled {wrap_label:?}"),
            })
    }

    /// The public material of a key or certificate object. CKA_VALUE is read only from
    /// certificates: on a private key it would be the secret itself.
    fn public_attrs(&mut self, h: ObjectHandle, class: CkClass) -> Result<Vec<Attribute>> {
        let mut want = vec![
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ];
        if class == CkClass::CERTIFICATE {
            want.push(AttributeType::Value);
        }
        let mut attrs = self
            .session()?
            .get_attributes(h, &want)
            .map_err(|e| ck("reading a public key", e))?;
        attrs.push(Attribute::Class(class));
        Ok(attrs)
    }

    fn read_public(&mut self, h: ObjectHandle, class: CkClass) -> Result<PublicKey> {
        let attrs = self.public_attrs(h, class)?;
        public_from_attrs(&attrs)
    }

    /// The private key labelled `label`, checked to be of the kind `scheme` needs.
    /// A handle from the cache is trusted without a lookup: a stale one makes the
    /// signing call fail (and [`Self::with_signing_key`] looks again), and a handle that
    /// came to name another key yields a signature the caller's check with the key's
    /// public half refuses.
    fn signing_key(&mut self, label: &str, scheme: SignScheme) -> Result<(ObjectHandle, bool)> {
        let cached = self
            .bound()?
            .last_signing_key
            .as_ref()
            .filter(|(l, is_rsa, _)| l == label && *is_rsa == scheme.is_rsa())
            .map(|(_, _, h)| *h);
        if let Some(h) = cached {
            return Ok((h, true));
        }
        let h = self
            .one(CkClass::PRIVATE_KEY, label)?
            .ok_or_else(|| Error::NotFound {
                what: format!("private key labelled {label:?}"),
            })?;
        let kt = self
            .session()?
            .get_attributes(h, &[AttributeType::KeyType])
            .map_err(|e| ck(&format!("reading key {label:?}"), e))?;
        let is_rsa = kt
            .iter()
            .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::RSA));
        if is_rsa != scheme.is_rsa() {
            return Err(Error::Refused(format!(
                "key {label:?} is {}, it cannot sign {}",
                if is_rsa { "an RSA key" } else { "an EC key" },
                scheme.name()
            )));
        }
        self.bound()?.last_signing_key = Some((label.to_string(), is_rsa, h));
        Ok((h, false))
    }

    /// Run `op` with the private key labelled `label`; when a cached handle fails, forget
    /// it and try once more with a fresh lookup.
    fn with_signing_key<T>(
        &mut self,
        label: &str,
        scheme: SignScheme,
        mut op: impl FnMut(&mut Self, ObjectHandle) -> Result<T>,
    ) -> Result<T> {
        let (h, cached) = self.signing_key(label, scheme)?;
        match op(self, h) {
            Err(_) if cached => {
                self.forget_signing_key();
                let (h, _) = self.signing_key(label, scheme)?;
                op(self, h)
            }
            r => r,
        }
    }

    /// The private data objects labelled `label` with their counter values.
    fn counters(&mut self, label: &str) -> Result<Vec<(ObjectHandle, u64)>> {
        let handles = self
            .session()?
            .find_objects(&[
                Attribute::Class(CkClass::DATA),
                Attribute::Private(true),
                Self::label_attr(label),
            ])
            .map_err(|e| ck(&format!("searching counter {label:?}"), e))?;
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let attrs = self
                .session()?
                .get_attributes(h, &[AttributeType::Value])
                .map_err(|e| ck(&format!("reading counter {label:?}"), e))?;
            let bytes = match attrs.first() {
                Some(Attribute::Value(v)) => v.as_slice(),
                _ => &[],
            };
            out.push((h, super::counter_value(label, bytes)?));
        }
        Ok(out)
    }

    fn forget_signing_key(&mut self) {
        if let Some(b) = self.bound.as_mut() {
            b.last_signing_key = None;
        }
    }

    /// The signing mechanisms of the token, read once per bound token.
    fn mechanisms(&mut self) -> Result<std::sync::Arc<MechList>> {
        let slot = self.any_slot()?;
        if let Some((s, m)) = &self.mech_cache {
            if *s == slot {
                return Ok(m.clone());
            }
        }
        let m = std::sync::Arc::new(self.read_mechanisms(slot)?);
        self.mech_cache = Some((slot, m.clone()));
        Ok(m)
    }
}

/// CKR_PIN_INCORRECT / CKR_PIN_LOCKED with the token's flags, as our error.
pub fn login_error(
    user: UserType,
    rv: Option<RvError>,
    count_low: bool,
    final_try: bool,
    locked: bool,
) -> Option<Error> {
    let hint = match user {
        UserType::User => "the SO must set a new user PIN (C_InitPIN) before anyone logs in",
        UserType::So => "only re-initializing the token (which destroys its keys) clears it",
    };
    match rv? {
        RvError::PinLocked => Some(Error::PinLocked {
            user,
            hint: hint.into(),
        }),
        RvError::PinIncorrect if locked => Some(Error::WrongPin {
            user,
            retries_left: Some(0),
        }),
        RvError::PinIncorrect => Some(Error::WrongPin {
            user,
            retries_left: if final_try {
                Some(1)
            } else {
                let _ = count_low; // the count itself is not reported by PKCS#11
                None
            },
        }),
        RvError::PinLenRange | RvError::PinInvalid => Some(Error::WrongPin {
            user,
            retries_left: None,
        }),
        _ => None,
    }
}

fn our_class(c: CkClass) -> ObjectClass {
    if c == CkClass::PRIVATE_KEY {
        ObjectClass::PrivateKey
    } else if c == CkClass::PUBLIC_KEY {
        ObjectClass::PublicKey
    } else if c == CkClass::CERTIFICATE {
        ObjectClass::Certificate
    } else if c == CkClass::DATA {
        ObjectClass::Data
    } else {
        ObjectClass::Other(c.to_string())
    }
}

fn ck_class(c: &ObjectClass) -> Option<CkClass> {
    match c {
        ObjectClass::PrivateKey => Some(CkClass::PRIVATE_KEY),
        ObjectClass::PublicKey => Some(CkClass::PUBLIC_KEY),
        ObjectClass::Certificate | ObjectClass::Opaque => Some(CkClass::CERTIFICATE),
        ObjectClass::Data => Some(CkClass::DATA),
        ObjectClass::WrapKey => Some(CkClass::SECRET_KEY),
        _ => None,
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the SEC1 point; some tokens give it bare.
fn unwrap_ec_point(curve: Curve, v: &[u8]) -> Result<Vec<u8>> {
    let raw_len = 1 + 2 * curve.field_bytes();
    if v.len() == raw_len && v[0] == 0x04 {
        return Ok(v.to_vec());
    }
    der::asn1::OctetString::from_der(v)
        .map(|o| o.as_bytes().to_vec())
        .map_err(|e| Error::Backend(format!("CKA_EC_POINT is not a DER OCTET STRING: {e}")))
}

fn curve_from_params(params: &[u8]) -> Result<Curve> {
    let oid = const_oid::ObjectIdentifier::from_der(params)
        .map_err(|_| Error::Unsupported("CKA_EC_PARAMS is not a named curve OID".into()))?;
    Curve::from_oid(&oid).ok_or_else(|| Error::Unsupported(format!("EC curve {oid}")))
}

fn public_from_attrs(attrs: &[Attribute]) -> Result<PublicKey> {
    let mut params = None;
    let mut point = None;
    let mut n = None;
    let mut e = None;
    let mut value = None;
    let mut class = None;
    for a in attrs {
        match a {
            Attribute::EcParams(v) => params = Some(v.as_slice()),
            Attribute::EcPoint(v) => point = Some(v.as_slice()),
            Attribute::Modulus(v) => n = Some(v.as_slice()),
            Attribute::PublicExponent(v) => e = Some(v.as_slice()),
            Attribute::Value(v) => value = Some(v.as_slice()),
            Attribute::Class(c) => class = Some(*c),
            _ => {}
        }
    }
    if class == Some(CkClass::CERTIFICATE) {
        let der = value.ok_or_else(|| Error::Backend("certificate without CKA_VALUE".into()))?;
        return Ok(PublicKey::from_certificate_der(der)?);
    }
    if let (Some(n), Some(e)) = (n, e) {
        return Ok(PublicKey::rsa(n, e)?);
    }
    if let (Some(params), Some(point)) = (params, point) {
        let curve = curve_from_params(params)?;
        return Ok(PublicKey::ec(curve, &unwrap_ec_point(curve, point)?)?);
    }
    Err(Error::NotFound {
        what: "public key material (CKA_EC_POINT or CKA_MODULUS)".into(),
    })
}

fn ec_params(curve: Curve) -> Result<Vec<u8>> {
    curve
        .oid()
        .to_der()
        .map_err(|e| Error::Backend(format!("encoding curve OID: {e}")))
}

fn ec_point_der(point: &[u8]) -> Result<Vec<u8>> {
    der::asn1::OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .map_err(|e| Error::Backend(format!("encoding CKA_EC_POINT: {e}")))
}

/// Attributes both halves of every key pair we make or import get.
fn public_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

fn private_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    private_template_with(label, id, false)
}

/// A private key exportable under wrap is extractable, but only under a trusted wrap key
/// (and stays sensitive: never in the clear).
fn private_template_with(label: &str, id: &[u8], exportable: bool) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Extractable(exportable),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    if exportable {
        t.push(Attribute::WrapWithTrusted(true));
    }
    t
}

/// The public half of `key`, as a CKO_PUBLIC_KEY template.
fn public_key_template(label: &str, id: &[u8], key: &PublicKey) -> Result<Vec<Attribute>> {
    let mut t = public_template(label, id);
    t.push(Attribute::Class(CkClass::PUBLIC_KEY));
    match key {
        PublicKey::Ec { curve, point } => {
            t.push(Attribute::KeyType(KeyType::EC));
            t.push(Attribute::EcParams(ec_params(*curve)?));
            t.push(Attribute::EcPoint(ec_point_der(point)?));
        }
        PublicKey::Rsa { n, e } => {
            t.push(Attribute::KeyType(KeyType::RSA));
            t.push(Attribute::Modulus(n.clone()));
            t.push(Attribute::PublicExponent(e.clone()));
        }
    }
    Ok(t)
}

/// Overwrite every secret value in a template (C_CreateObject has copied it).
fn zeroize_template(t: &mut [Attribute]) {
    for a in t {
        match a {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}

fn flags_from(attrs: &[Attribute]) -> KeyFlags {
    let mut f = KeyFlags::default();
    for a in attrs {
        match a {
            Attribute::Sensitive(b) => f.sensitive = Some(*b),
            Attribute::AlwaysSensitive(b) => f.always_sensitive = Some(*b),
            Attribute::Extractable(b) => f.extractable = Some(*b),
            Attribute::NeverExtractable(b) => f.never_extractable = Some(*b),
            Attribute::Local(b) => f.local = Some(*b),
            Attribute::Private(b) => f.private = Some(*b),
            _ => {}
        }
    }
    f
}

impl Token for Pkcs11Token {
    fn info(&mut self) -> Result<TokenInfo> {
        let slot = self.any_slot()?;
        let ti = self
            .ctx
            .get_token_info(slot)
            .map_err(|e| ck("reading token info", e))?;
        let initialized = ti.token_initialized();
        Ok(TokenInfo {
            backend: self.shown.clone(),
            label: if initialized {
                ti.label().trim_end().to_string()
            } else {
                String::new()
            },
            serial: ti.serial_number().trim_end().to_string(),
            manufacturer: ti.manufacturer_id().trim_end().to_string(),
            model: ti.model().trim_end().to_string(),
            initialized,
            rehearsal: false,
            min_pin_len: ti.min_pin_length(),
            max_pin_len: ti.max_pin_length(),
        })
    }

    fn capabilities(&mut self) -> Result<Capabilities> {
        Ok(self.mechanisms()?.capabilities())
    }

    fn init_token(&mut self, label: &str, so_pin: &Secret, user_pin: &Secret) -> Result<()> {
        if label.is_empty() || label.len() > 32 {
            return Err(Error::Refused(format!(
                "token label {label:?} must be 1 to 32 bytes"
            )));
        }
        let found = self.scan()?;
        if let Some(other) = found.iter().find(|f| f.initialized && f.label == label) {
            if self.uri.slot_id != Some(other.slot.id()) {
                return Err(Error::Refused(format!(
                    "a token labelled {label:?} already exists (serial {}); labels must be unique",
                    other.serial
                )));
            }
        }
        let target =
            match self.uri.slot_id {
                Some(id) => found.iter().find(|f| f.slot.id() == id).ok_or_else(|| {
                    Error::Backend(format!(
                        "no token in slot {id} of {} (found: {})",
                        self.module,
                        found
                            .iter()
                            .map(Found::describe)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
                None => found.iter().find(|f| !f.initialized).ok_or_else(|| {
                    Error::Refused(format!(
                    "no uninitialized token in {} (found: {}); give slot-id=N to re-initialize one",
                    self.module,
                    found.iter().map(Found::describe).collect::<Vec<_>>().join(", ")
                ))
                })?,
            };
        let slot = target.slot;
        // C_InitToken needs every session on the token closed.
        self.bound = None;
        let so = pin(so_pin, "SO PIN")?;
        if let Err(e) = self.ctx.init_token(slot, &so, label) {
            return Err(match rv_of(&e) {
                Some(RvError::PinIncorrect | RvError::PinLocked) => {
                    self.pin_error(UserType::So, slot, e)
                }
                Some(RvError::PinLenRange) => Error::Refused(format!(
                    "SO PIN length is outside what the token accepts ({})",
                    ckr_name(RvError::PinLenRange)
                )),
                _ => ck(&format!("initializing token {label:?}"), e),
            });
        }
        // A kill from here on leaves a token with the label: see `resume_init_token`.
        crate::output::crash_point();
        // SoftHSM moves the token to a new slot id: find it again by its new label.
        self.select_label(label);
        let slot = self.find()?.ok_or_else(|| self.missing_token())?;
        self.bind(slot)?;
        self.set_user_pin(so_pin, user_pin)
    }

    fn resume_init_token(
        &mut self,
        label: &str,
        so_pin: &Secret,
        user_pin: &Secret,
    ) -> Result<Option<String>> {
        // A URI that names the slot re-initializes whatever is there, as confirmed.
        if self.uri.slot_id.is_some() {
            return Ok(None);
        }
        let found = self.scan()?;
        let hits: Vec<&Found> = found
            .iter()
            .filter(|f| f.initialized && f.label == label)
            .collect();
        let (slot, serial) = match hits.as_slice() {
            [] => return Ok(None),
            [one] => (one.slot, one.serial.clone()),
            _ => {
                return Err(Error::Refused(format!(
                    "{} tokens are labelled {label:?}; labels must be unique",
                    hits.len()
                )))
            }
        };
        let foreign = |why: String| {
            Error::Refused(format!(
                "a token labelled {label:?} already exists (serial {serial}) and {why}: it is not what an interrupted init-token of this run left; labels must be unique"
            ))
        };
        let user_pin_set = self
            .ctx
            .get_token_info(slot)
            .map_err(|e| ck("reading token info", e))?
            .user_pin_initialized();
        self.bind(slot)?;
        match self.login_inner(UserType::So, so_pin) {
            Ok(()) => {}
            Err(Error::WrongPin { .. } | Error::PinLocked { .. }) => {
                self.bound = None;
                return Err(foreign("the script's SO PIN does not open it".into()));
            }
            Err(e) => return Err(e),
        }
        let mut objects = self.list_objects()?.len();
        if user_pin_set {
            // Private objects show only to the user: log in as the user to count them.
            let _ = self.logout();
            match self.login_inner(UserType::User, user_pin) {
                Ok(()) => objects = objects.max(self.list_objects()?.len()),
                Err(Error::WrongPin { .. } | Error::PinLocked { .. }) => {
                    self.bound = None;
                    return Err(foreign(
                        "its user PIN is set and is not the script's initial user PIN".into(),
                    ));
                }
                Err(e) => return Err(e),
            }
            let _ = self.logout();
        }
        if objects > 0 {
            let _ = self.logout();
            self.bound = None;
            return Err(foreign(format!("it holds {objects} objects")));
        }
        self.select_label(label);
        self.set_user_pin(so_pin, user_pin)?;
        Ok(Some(format!(
            "token {label:?} (serial {serial}) was initialized by the interrupted run: its SO PIN opens it and it holds no objects; its user PIN is set again"
        )))
    }

    fn login(&mut self, user: UserType, pin: &Secret) -> Result<()> {
        self.login_inner(user, pin)
    }

    fn logout(&mut self) -> Result<()> {
        if let Some(b) = self.bound.as_mut() {
            if b.logged_in.take().is_some() {
                match b.session.logout() {
                    Ok(()) => {}
                    Err(e) if rv_of(&e) == Some(RvError::UserNotLoggedIn) => {}
                    Err(e) => return Err(ck("logging out", e)),
                }
            }
        }
        Ok(())
    }

    fn change_pin(&mut self, user: UserType, old: &Secret, new: &Secret) -> Result<()> {
        self.login_inner(user, old)?;
        let (o, n) = (pin(old, "old PIN")?, pin(new, "new PIN")?);
        let b = self.bound()?;
        let slot = b.slot;
        match b.session.set_pin(&o, &n) {
            Ok(()) => Ok(()),
            Err(e) => Err(match rv_of(&e) {
                Some(RvError::PinLenRange) => Error::Refused(format!(
                    "new {user} PIN length is outside what the token accepts ({})",
                    ckr_name(RvError::PinLenRange)
                )),
                Some(RvError::PinInvalid) => Error::Refused(format!(
                    "new {user} PIN has characters the token refuses (CKR_PIN_INVALID)"
                )),
                Some(RvError::PinIncorrect | RvError::PinLocked) => self.pin_error(user, slot, e),
                _ => ck(&format!("changing the {user} PIN"), e),
            }),
        }
    }

    fn generate_key(&mut self, alg: KeyAlgorithm, label: &str, id: &[u8]) -> Result<PublicKey> {
        self.generate_key_with(alg, label, id, &KeyOptions::default())
    }

    fn generate_key_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &str,
        id: &[u8],
        opts: &KeyOptions,
    ) -> Result<PublicKey> {
        let (mechanism, mtype) = if alg.is_rsa() {
            (
                Mechanism::RsaPkcsKeyPairGen,
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            )
        } else {
            (Mechanism::EccKeyPairGen, MechanismType::ECC_KEY_PAIR_GEN)
        };
        self.require_mechanism(mtype, &format!("generating {alg}"))?;
        self.check_free(&[CkClass::PRIVATE_KEY, CkClass::PUBLIC_KEY], label, id)?;
        let mut public = public_template(label, id);
        if let Some(curve) = alg.curve() {
            public.push(Attribute::EcParams(ec_params(curve)?));
        }
        if let Some(bits) = alg.rsa_bits() {
            public.push(Attribute::ModulusBits((bits as u64).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
        }
        let private = private_template_with(label, id, opts.exportable_under_wrap);
        let (pub_h, _priv_h) = self
            .session()?
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| ck(&format!("generating {alg} key {label:?}"), e))?;
        self.read_public(pub_h, CkClass::PUBLIC_KEY)
    }

    fn import_key(&mut self, key: &PrivateKey, label: &str, id: &[u8]) -> Result<PublicKey> {
        self.check_free(&[CkClass::PRIVATE_KEY, CkClass::PUBLIC_KEY], label, id)?;
        let mut private = private_template(label, id);
        let mut public = public_template(label, id);
        private.push(Attribute::Class(CkClass::PRIVATE_KEY));
        public.push(Attribute::Class(CkClass::PUBLIC_KEY));
        match key {
            PrivateKey::Ec {
                curve,
                d,
                public: pk,
            } => {
                let params = ec_params(*curve)?;
                let point = match pk {
                    PublicKey::Ec { point, .. } => point.clone(),
                    PublicKey::Rsa { .. } => {
                        return Err(Error::Backend("EC key with an RSA public half".into()))
                    }
                };
                private.push(Attribute::KeyType(KeyType::EC));
                private.push(Attribute::EcParams(params.clone()));
                private.push(Attribute::Value(d.to_vec()));
                public.push(Attribute::KeyType(KeyType::EC));
                public.push(Attribute::EcParams(params));
                public.push(Attribute::EcPoint(ec_point_der(&point)?));
            }
            PrivateKey::Rsa { key: k, .. } => {
                private.push(Attribute::KeyType(KeyType::RSA));
                private.extend([
                    Attribute::Modulus(k.n.clone()),
                    Attribute::PublicExponent(k.e.clone()),
                    Attribute::PrivateExponent(k.d.to_vec()),
                    Attribute::Prime1(k.p.to_vec()),
                    Attribute::Prime2(k.q.to_vec()),
                    Attribute::Exponent1(k.dp.to_vec()),
                    Attribute::Exponent2(k.dq.to_vec()),
                    Attribute::Coefficient(k.qinv.to_vec()),
                ]);
                public.push(Attribute::KeyType(KeyType::RSA));
                public.push(Attribute::Modulus(k.n.clone()));
                public.push(Attribute::PublicExponent(k.e.clone()));
            }
        }
        let created = self.session().and_then(|s| {
            s.create_object(&private)
                .map_err(|e| ck(&format!("importing private key {label:?}"), e))
        });
        zeroize_template(&mut private);
        let priv_h = created?;
        let pub_h = match self.session()?.create_object(&public) {
            Ok(h) => h,
            Err(e) => {
                // Leave no half-imported key behind.
                let _ = self.session()?.destroy_object(priv_h);
                return Err(ck(&format!("importing public key {label:?}"), e));
            }
        };
        self.read_public(pub_h, CkClass::PUBLIC_KEY)
    }

    fn put_object(&mut self, label: &str, id: &[u8], object: &NewObject) -> Result<()> {
        let mut t = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        match object {
            NewObject::Certificate(der) => {
                self.check_free(&[CkClass::CERTIFICATE], label, id)?;
                let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
                    Error::Refused(format!("certificate for {label:?} is not DER X.509: {e}"))
                })?;
                let enc = |r: der::Result<Vec<u8>>| {
                    r.map_err(|e| Error::Backend(format!("re-encoding certificate fields: {e}")))
                };
                let tbs = &cert.tbs_certificate;
                t.extend([
                    Attribute::Class(CkClass::CERTIFICATE),
                    Attribute::CertificateType(CertificateType::X_509),
                    Attribute::Id(id.to_vec()),
                    Attribute::Subject(enc(tbs.subject.to_der())?),
                    Attribute::Issuer(enc(tbs.issuer.to_der())?),
                    Attribute::SerialNumber(enc(tbs.serial_number.to_der())?),
                    Attribute::Value(der.clone()),
                ]);
            }
            NewObject::Data { application, value } => {
                // CKO_DATA has no CKA_ID; the label names it.
                self.check_free(&[CkClass::DATA], label, &[])?;
                t.extend([
                    Attribute::Class(CkClass::DATA),
                    Attribute::Application(application.as_bytes().to_vec()),
                    Attribute::Value(value.clone()),
                ]);
            }
        }
        self.session()?
            .create_object(&t)
            .map(|_| ())
            .map_err(|e| ck(&format!("writing object {label:?}"), e))
    }

    fn list_objects(&mut self) -> Result<Vec<ObjectInfo>> {
        let handles = self
            .session()?
            .find_objects(&[])
            .map_err(|e| ck("listing objects", e))?;
        let want = [
            AttributeType::Class,
            AttributeType::Label,
            AttributeType::Id,
            AttributeType::KeyType,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Local,
            AttributeType::Private,
            AttributeType::Wrap,
        ];
        let mut raw = Vec::new();
        for h in handles {
            let attrs = self
                .session()?
                .get_attributes(h, &want)
                .map_err(|e| ck("reading object attributes", e))?;
            let mut class = None;
            let mut label = String::new();
            let mut id = Vec::new();
            for a in &attrs {
                match a {
                    Attribute::Class(c) => class = Some(*c),
                    Attribute::Label(l) => label = attrs::label(l),
                    Attribute::Id(i) => id = i.clone(),
                    _ => {}
                }
            }
            let class = class.unwrap_or(CkClass::DATA);
            let public_key = if class == CkClass::PUBLIC_KEY
                || class == CkClass::CERTIFICATE
                || class == CkClass::PRIVATE_KEY
            {
                let p = self.public_attrs(h, class)?;
                public_from_attrs(&p).ok()
            } else {
                None
            };
            let flags = if class == CkClass::PRIVATE_KEY || class == CkClass::SECRET_KEY {
                flags_from(&attrs)
            } else {
                KeyFlags {
                    private: flags_from(&attrs).private,
                    local: flags_from(&attrs).local,
                    ..Default::default()
                }
            };
            let wraps = attrs.iter().any(|a| matches!(a, Attribute::Wrap(true)));
            raw.push(ObjectInfo {
                class: if class == CkClass::SECRET_KEY && wraps {
                    ObjectClass::WrapKey
                } else {
                    our_class(class)
                },
                label,
                id,
                public_key,
                flags,
            });
        }
        // An EC private key shows no point: take it from its public half or certificate.
        let snapshot: Vec<(ObjectClass, String, Vec<u8>, Option<PublicKey>)> = raw
            .iter()
            .map(|o| {
                (
                    o.class.clone(),
                    o.label.clone(),
                    o.id.clone(),
                    o.public_key.clone(),
                )
            })
            .collect();
        for o in raw.iter_mut().filter(|o| o.public_key.is_none()) {
            if o.class != ObjectClass::PrivateKey {
                continue;
            }
            o.public_key = snapshot
                .iter()
                .filter(|(c, ..)| *c == ObjectClass::PublicKey || *c == ObjectClass::Certificate)
                .find(|(_, l, i, _)| *i == o.id && (!o.id.is_empty() || *l == o.label))
                .and_then(|(.., k)| k.clone());
        }
        Ok(raw)
    }

    fn read_certificate(&mut self, label: &str) -> Result<Option<Vec<u8>>> {
        let Some(h) = self.one(CkClass::CERTIFICATE, label)? else {
            return Ok(None);
        };
        let attrs = self
            .session()?
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| ck(&format!("reading certificate {label:?}"), e))?;
        Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        }))
    }

    fn public_key(&mut self, label: &str) -> Result<PublicKey> {
        for class in [CkClass::PUBLIC_KEY, CkClass::CERTIFICATE] {
            if let Some(h) = self.one(class, label)? {
                return self.read_public(h, class);
            }
        }
        if let Some(h) = self.one(CkClass::PRIVATE_KEY, label)? {
            if let Ok(k) = self.read_public(h, CkClass::PRIVATE_KEY) {
                return Ok(k);
            }
        }
        Err(Error::NotFound {
            what: format!("public key or certificate labelled {label:?}"),
        })
    }

    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>> {
        if digest.len() != scheme.hash().len() {
            return Err(Error::Refused(format!(
                "digest for {} has {} bytes, expected {}",
                scheme.name(),
                digest.len(),
                scheme.hash().len()
            )));
        }
        let mechs = self.mechanisms()?;
        let raw = mech::raw_mechanism(scheme);
        if !mechs.has(raw) {
            let hs = mech::hash_and_sign_mechanism(scheme);
            return Err(Error::Unsupported(if mechs.has(hs) {
                format!(
                    "{} needs mechanism {raw} to sign a digest; the token has only {hs}, \
                     which hashes the whole message itself",
                    scheme.name()
                )
            } else {
                format!("the token has no mechanism {raw} ({})", scheme.name())
            }));
        }
        let mut input = Vec::with_capacity(digest.len() + 19);
        if let SignScheme::RsaPkcs1(hash) = scheme {
            input.extend_from_slice(&hash.digest_info_prefix());
        }
        input.extend_from_slice(digest);
        let m = mech::sign_mechanism(scheme);
        self.with_signing_key(label, scheme, |t, h| {
            t.session()?
                .sign(&m, h, &input)
                .map_err(|e| match rv_of(&e) {
                    Some(RvError::MechanismInvalid | RvError::MechanismParamInvalid) => {
                        Error::Unsupported(format!(
                            "the token refused mechanism {raw} for key {label:?} ({})",
                            ckr_name(rv_of(&e).unwrap_or(RvError::MechanismInvalid))
                        ))
                    }
                    _ => ck(&format!("signing with {label:?}"), e),
                })
        })
    }

    fn sign_message(&mut self, label: &str, scheme: SignScheme, message: &[u8]) -> Result<Vec<u8>> {
        let mechs = self.mechanisms()?;
        let hs = mech::hash_and_sign_mechanism(scheme);
        // Prefer hashing here: the message never crosses a slow link to the token.
        if mechs.has(mech::raw_mechanism(scheme)) || !mechs.has(hs) {
            return self.sign(label, scheme, &scheme.hash().digest(message));
        }
        let m = mech::hash_and_sign(scheme);
        let what = format!("signing with {label:?} ({hs})");
        self.with_signing_key(label, scheme, |t, h| {
            let s = t.session()?;
            s.sign_init(&m, h).map_err(|e| ck(&what, e))?;
            for chunk in message.chunks(64 * 1024) {
                s.sign_update(chunk).map_err(|e| ck(&what, e))?;
            }
            s.sign_final().map_err(|e| ck(&what, e))
        })
    }

    fn put_wrap_key(&mut self, spec: &WrapKeySpec, key: &Secret) -> Result<WrapKeySpec> {
        if self.bound()?.logged_in != Some(UserType::So) {
            return Err(Error::NotLoggedIn(
                "putting a wrap key needs the SO logged in: only the SO may mark it trusted \
                 (CKA_TRUSTED), which exportable keys require of their wrap key"
                    .into(),
            ));
        }
        self.require_mechanism(MechanismType::AES_KEY_WRAP_PAD, "wrapping keys for backup")?;
        let kcv = super::wrap::check_value(key.expose())?;
        let id = spec.id.to_be_bytes();
        self.check_free(&[CkClass::SECRET_KEY], &spec.label, &id)?;
        let mut t = vec![
            Attribute::Class(CkClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            // An SO session creates only public objects (SoftHSM); the key stays
            // sensitive and unextractable, so "public" shows only that it exists.
            Attribute::Private(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Trusted(true),
            Attribute::Label(spec.label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Value(key.expose().to_vec()),
            // The token checks it against the key (SoftHSM refuses a wrong one).
            Attribute::CheckValue(kcv.to_vec()),
        ];
        let created = self.session().and_then(|s| {
            s.create_object(&t)
                .map_err(|e| ck(&format!("putting wrap key {:?}", spec.label), e))
        });
        zeroize_template(&mut t);
        created?;
        Ok(WrapKeySpec::new(&spec.label, spec.id))
    }

    fn wrap_key(&mut self, label: &str) -> Result<Option<WrapKeyInfo>> {
        let Some(h) = self.one(CkClass::SECRET_KEY, label)? else {
            return Ok(None);
        };
        let attrs = self
            .session()?
            .get_attributes(h, &[AttributeType::Id, AttributeType::CheckValue])
            .map_err(|e| ck(&format!("reading wrap key {label:?}"), e))?;
        let mut spec = WrapKeySpec::new(label, 0);
        let mut check_value = None;
        for a in attrs {
            match a {
                Attribute::Id(i) if i.len() == 2 => spec.id = u16::from_be_bytes([i[0], i[1]]),
                Attribute::CheckValue(v) if v.len() == super::wrap::CHECK_VALUE_LEN => {
                    let mut kcv = [0u8; super::wrap::CHECK_VALUE_LEN];
                    kcv.copy_from_slice(&v);
                    check_value = Some(kcv);
                }
                _ => {}
            }
        }
        Ok(Some(WrapKeyInfo { spec, check_value }))
    }

    fn delete_wrap_key(&mut self, label: &str) -> Result<bool> {
        let hits = self.find_objects(CkClass::SECRET_KEY, Some(label), None)?;
        for &h in &hits {
            self.session()?
                .destroy_object(h)
                .map_err(|e| ck(&format!("deleting wrap key {label:?}"), e))?;
        }
        Ok(!hits.is_empty())
    }

    fn export_wrapped(&mut self, wrap_label: &str, label: &str) -> Result<Vec<u8>> {
        let key = self
            .one(CkClass::PRIVATE_KEY, label)?
            .ok_or_else(|| Error::NotFound {
                what: format!("private key labelled {label:?}"),
            })?;
        let extractable = self
            .session()?
            .get_attributes(key, &[AttributeType::Extractable])
            .map_err(|e| ck(&format!("reading key {label:?}"), e))?
            .iter()
            .any(|a| matches!(a, Attribute::Extractable(true)));
        if !extractable {
            return Err(Error::Refused(format!(
                "key {label:?} was not generated exportable-under-wrap (CKA_EXTRACTABLE is \
                 false): it can never leave the token"
            )));
        }
        let wrap = self.wrap_handle(wrap_label)?;
        self.session()?
            .wrap_key(&Mechanism::AesKeyWrapPad, wrap, key)
            .map_err(|e| match rv_of(&e) {
                Some(RvError::KeyNotWrappable | RvError::WrappingKeyTypeInconsistent) => {
                    Error::Refused(format!(
                        "the token will not wrap {label:?} under {wrap_label:?} ({}): a key \
                         marked CKA_WRAP_WITH_TRUSTED needs a wrap key with CKA_TRUSTED",
                        ckr_name(rv_of(&e).unwrap_or(RvError::KeyNotWrappable))
                    ))
                }
                _ => ck(&format!("wrapping {label:?} under {wrap_label:?}"), e),
            })
    }

    fn import_wrapped(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: &[u8],
        public: &PublicKey,
    ) -> Result<()> {
        let wrap = self.wrap_handle(wrap_label)?;
        self.check_free(&[CkClass::PRIVATE_KEY], label, id)?;
        // The public half first: an interrupted import leaves at most a public key,
        // which the next attempt takes over if it is this key's.
        let mut created_public = None;
        match self.one(CkClass::PUBLIC_KEY, label)? {
            Some(h) if self.read_public(h, CkClass::PUBLIC_KEY)? == *public => {}
            Some(_) => {
                return Err(Error::LabelExists {
                    label: label.to_string(),
                    class: ObjectClass::PublicKey,
                })
            }
            None => {
                self.check_free(&[CkClass::PUBLIC_KEY], label, id)?;
                let t = public_key_template(label, id, public)?;
                let h = self
                    .session()?
                    .create_object(&t)
                    .map_err(|e| ck(&format!("storing the public half of {label:?}"), e))?;
                created_public = Some(h);
            }
        }
        let mut t = private_template_with(label, id, true);
        t.push(Attribute::Class(CkClass::PRIVATE_KEY));
        t.push(Attribute::KeyType(match public {
            PublicKey::Ec { .. } => KeyType::EC,
            PublicKey::Rsa { .. } => KeyType::RSA,
        }));
        let unwrapped = self.session().and_then(|s| {
            s.unwrap_key(&Mechanism::AesKeyWrapPad, wrap, blob, &t)
                .map_err(|e| match rv_of(&e) {
                    Some(
                        RvError::WrappedKeyInvalid
                        | RvError::EncryptedDataInvalid
                        | RvError::WrappedKeyLenRange,
                    ) => Error::Refused(format!(
                        "the wrapped key for {label:?} does not unwrap under wrap key \
                         {wrap_label:?} (another wrap key, or a damaged file)"
                    )),
                    _ => ck(&format!("unwrapping {label:?}"), e),
                })
        });
        if let Err(e) = unwrapped {
            if let Some(h) = created_public {
                let _ = self.session()?.destroy_object(h);
            }
            return Err(e);
        }
        Ok(())
    }

    fn read_data(&mut self, prefix: &str) -> Result<Vec<DataObject>> {
        let handles = self
            .session()?
            .find_objects(&[Attribute::Class(CkClass::DATA), Attribute::Private(false)])
            .map_err(|e| ck("searching data objects", e))?;
        let mut out = Vec::new();
        for h in handles {
            let label = match self
                .session()?
                .get_attributes(h, &[AttributeType::Label])
                .map_err(|e| ck("reading a data object's label", e))?
                .first()
            {
                Some(Attribute::Label(l)) => String::from_utf8_lossy(l).into_owned(),
                _ => continue,
            };
            if !label.starts_with(prefix) {
                continue;
            }
            // A token that does not know CKA_DESTROYABLE leaves it out: destroyable.
            let attrs = self
                .session()?
                .get_attributes(
                    h,
                    &[
                        AttributeType::Value,
                        AttributeType::Modifiable,
                        AttributeType::Destroyable,
                    ],
                )
                .map_err(|e| ck(&format!("reading data object {label:?}"), e))?;
            let (mut value, mut modifiable, mut destroyable) = (Vec::new(), true, true);
            for a in attrs {
                match a {
                    Attribute::Value(v) => value = v,
                    Attribute::Modifiable(b) => modifiable = b,
                    Attribute::Destroyable(b) => destroyable = b,
                    _ => {}
                }
            }
            out.push(DataObject {
                label,
                value,
                immutable: !modifiable && !destroyable,
            });
        }
        Ok(out)
    }

    fn put_data(&mut self, label: &str, value: &[u8], immutable: bool) -> Result<()> {
        self.check_free(&[CkClass::DATA], label, &[])?;
        let mut t = vec![
            Attribute::Class(CkClass::DATA),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(b"officiant".to_vec()),
            Attribute::Value(value.to_vec()),
        ];
        if immutable {
            t.extend([Attribute::Modifiable(false), Attribute::Destroyable(false)]);
        }
        self.session()?
            .create_object(&t)
            .map(|_| ())
            .map_err(|e| ck(&format!("writing data object {label:?}"), e))
    }

    fn read_counter(&mut self, label: &str) -> Result<Option<u64>> {
        let mut max = None;
        for (_, v) in self.counters(label)? {
            max = max.max(Some(v));
        }
        Ok(max)
    }

    fn write_counter(&mut self, label: &str, expected: u64, value: u64) -> Result<()> {
        let found = self.counters(label)?;
        let now = found.iter().map(|(_, v)| *v).max();
        super::check_counter_step(label, now, expected, value)?;
        // SoftHSM keeps a data object's CKA_VALUE read-only after creation: write the
        // new value as a new object, then destroy the old ones. A crash between the two
        // leaves both, and a read takes the larger.
        let what = format!("writing counter {label:?}");
        let t = [
            Attribute::Class(CkClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(b"officiant counter".to_vec()),
            Attribute::Value(value.to_be_bytes().to_vec()),
        ];
        let new = self
            .session()?
            .create_object(&t)
            .map_err(|e| ck(&what, e))?;
        let raced = || {
            Error::Refused(format!(
                "counter {label:?} was written by another session at the same time; this write does not count"
            ))
        };
        for (h, _) in found.into_iter().filter(|(h, _)| *h != new) {
            match self.session()?.destroy_object(h) {
                Ok(()) => {}
                // Destroyed by a concurrent writer since our read.
                Err(e) if rv_of(&e) == Some(RvError::ObjectHandleInvalid) => return Err(raced()),
                Err(e) => return Err(ck(&what, e)),
            }
        }
        // Anyone else's new object now means two writers counted from the same value:
        // refuse (a use lost), never both.
        if self.counters(label)?.iter().any(|(h, _)| *h != new) {
            return Err(raced());
        }
        Ok(())
    }

    fn delete_object(&mut self, sel: &Selector) -> Result<usize> {
        self.forget_signing_key();
        let classes: Vec<CkClass> = match &sel.class {
            Some(c) => vec![ck_class(c)
                .ok_or_else(|| Error::Unsupported(format!("PKCS#11 has no {c} objects")))?],
            None => vec![
                CkClass::PRIVATE_KEY,
                CkClass::PUBLIC_KEY,
                CkClass::CERTIFICATE,
                CkClass::DATA,
            ],
        };
        let mut n = 0;
        for c in classes {
            for h in self.find_objects(c, Some(&sel.label), None)? {
                self.session()?
                    .destroy_object(h)
                    .map_err(|e| ck(&format!("deleting {:?}", sel.label), e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(RvError::MechanismInvalid), "CKR_MECHANISM_INVALID");
    }

    #[test]
    fn login_errors_map_with_flags() {
        let e = login_error(UserType::User, Some(RvError::PinLocked), false, false, true).unwrap();
        assert_eq!(
            e.to_string(),
            "user PIN is locked (too many wrong attempts); the SO must set a new user PIN \
             (C_InitPIN) before anyone logs in"
        );
        let e = login_error(
            UserType::User,
            Some(RvError::PinIncorrect),
            true,
            true,
            false,
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "wrong user PIN (1 retry left before the PIN locks)"
        );
        let e = login_error(
            UserType::So,
            Some(RvError::PinIncorrect),
            false,
            false,
            true,
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "wrong SO PIN (no retries left: the PIN is now locked)"
        );
        let e = login_error(
            UserType::So,
            Some(RvError::PinIncorrect),
            false,
            false,
            false,
        )
        .unwrap();
        assert_eq!(e.to_string(), "wrong SO PIN");
        assert!(login_error(
            UserType::User,
            Some(RvError::GeneralError),
            false,
            false,
            false
        )
        .is_none());
    }

    #[test]
    fn ec_point_accepts_der_and_bare() {
        let mut bare = vec![4u8];
        bare.extend([7u8; 64]);
        let der = ec_point_der(&bare).unwrap();
        assert_eq!(der[..2], [0x04, 0x41]);
        assert_eq!(unwrap_ec_point(Curve::P256, &der).unwrap(), bare);
        assert_eq!(unwrap_ec_point(Curve::P256, &bare).unwrap(), bare);
    }
}
