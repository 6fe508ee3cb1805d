//! The built-in rehearsal token (`sim:DIR`): real cryptography, file-backed, NOT SECURE.
//!
//! It behaves like a PKCS#11 token where a ceremony can notice: a user PIN and an SO PIN
//! (stored only as salted hashes) that lock after [`pin::MAX_RETRIES`] wrong attempts,
//! a login needed for every change and every private-key operation, labels and ids
//! unique per object class, and no way to read a private key back out. Unlike a real
//! token it keeps its keys in the clear in `DIR/store.json`, and says so in that file
//! and in `DIR/NOT-SECURE.txt`.
//!
//! Policy choices a ceremony engine should know:
//! - `init_token` on an initialized token needs the current SO PIN (a wrong one counts
//!   against the SO retries); it erases every object, like `C_InitToken`, and logs out.
//! - `login` while logged in checks the PIN again and switches to that user; a failed
//!   login leaves nobody logged in.
//! - `change_pin` checks the old PIN (counting retries) and leaves that user logged in.
//! - Creating, deleting and using keys and objects needs the *user* logged in.
//!   Listing without a login shows only public objects.
//! - `delete_object` returns 0 when nothing matches.
//! - An empty id means "no id": it is not checked for uniqueness.
//! - A wrap key is put by the SO (as PKCS#11 needs for CKA_TRUSTED), is visible without a
//!   login like SoftHSM's trusted wrap keys, and wraps a key pair as RFC 5649 AES key
//!   wrap with padding of its PKCS#8 DER, exactly what C_WrapKey with
//!   CKM_AES_KEY_WRAP_PAD gives on SoftHSM: a rehearsal's backup restores onto SoftHSM
//!   and back. Only keys generated exportable-under-wrap are wrapped.

mod crypto;
pub mod pin;
mod store;

use std::path::Path;

use zeroize::Zeroizing;

use super::{
    wrap, Capabilities, DataObject, Error, KeyFlags, KeyOptions, NewObject, ObjectClass,
    ObjectInfo, Result, Selector, Token, TokenInfo, UserType, WrapFormat, WrapKeyInfo, WrapKeySpec,
};
use crate::hsm::{Label, ObjectId};
use crate::keys::{HashAlg, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;

use store::{State, Store, StoredObject};

pub use store::WARNING;

/// Open (creating on first use) the rehearsal token stored in `dir`. The token holds an
/// exclusive lock on `dir` until it is dropped.
pub fn open(dir: &Path) -> Result<Box<dyn Token>> {
    Ok(Box::new(SimToken::open(dir)?))
}

/// The built-in rehearsal token: real crypto, keys kept in the clear in a directory. Not a
/// security boundary; every face says so.
pub struct SimToken {
    store: Store,
    state: State,
    session: Option<UserType>,
}

impl SimToken {
    /// Open (creating on first use) the token in `dir`, locked for this process.
    pub fn open(dir: &Path) -> Result<Self> {
        let (store, state) = Store::open(dir)?;
        Ok(SimToken {
            store,
            state,
            session: None,
        })
    }

    fn where_(&self) -> String {
        format!("sim:{}", self.store.dir.display())
    }

    fn need_initialized(&self, op: &str) -> Result<()> {
        if self.state.initialized {
            Ok(())
        } else {
            Err(Error::NotInitialized(format!(
                "{op}: the rehearsal token {} has no PINs yet; run init-token first",
                self.where_()
            )))
        }
    }

    fn need_user(&self, op: &str) -> Result<()> {
        self.need_initialized(op)?;
        match self.session {
            Some(UserType::User) => Ok(()),
            Some(UserType::So) => Err(Error::NotLoggedIn(format!(
                "{op} needs the user logged in (the SO is logged in)"
            ))),
            None => Err(Error::NotLoggedIn(format!("{op} needs the user logged in"))),
        }
    }

    fn need_so(&self, op: &str) -> Result<()> {
        self.need_initialized(op)?;
        match self.session {
            Some(UserType::So) => Ok(()),
            _ => Err(Error::NotLoggedIn(format!(
                "{op} needs the SO logged in (as PKCS#11 tokens need for a trusted wrap key)"
            ))),
        }
    }

    fn need_anyone(&self, op: &str) -> Result<()> {
        self.need_initialized(op)?;
        match self.session {
            Some(_) => Ok(()),
            None => Err(Error::NotLoggedIn(format!(
                "{op} needs the user or the SO logged in"
            ))),
        }
    }

    fn wrap_key_object(&self, label: &str) -> Option<&StoredObject> {
        self.state
            .objects
            .iter()
            .find(|o| o.class == ObjectClass::WrapKey && o.label == label)
    }

    fn kek(&self, wrap_label: &str) -> Result<Kek> {
        let w = self
            .wrap_key_object(wrap_label)
            .ok_or_else(|| Error::NotFound {
                what: format!("wrap key labelled {wrap_label:?}"),
            })?;
        Kek::new(&w.value)
    }

    /// Apply a change to a copy of the state, persist it, then adopt it: a failed write
    /// leaves the token as it was.
    fn commit<T>(&mut self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut next = self.state.clone();
        let out = f(&mut next)?;
        self.store.save(&next)?;
        self.state = next;
        Ok(out)
    }

    /// Check a PIN, persisting the retry counter whatever the outcome.
    fn check_pin(&mut self, user: UserType, pin: &Secret) -> Result<()> {
        let mut next = self.state.clone();
        let rec = match user {
            UserType::User => next.user_pin.as_mut(),
            UserType::So => next.so_pin.as_mut(),
        }
        .ok_or_else(|| {
            Error::NotInitialized(format!("the {user} PIN of {} is not set", self.where_()))
        })?;
        if rec.locked() {
            return Err(pin::locked(user));
        }
        let before = rec.retries_left;
        let verdict = rec.check(user, pin);
        // A right PIN with no failed tries before it changes nothing worth a disk sync;
        // a wrong one always reaches the disk before the caller hears of it.
        if rec.retries_left != before {
            self.store.save(&next)?;
        }
        self.state = next;
        verdict
    }

    fn visible(&self, o: &StoredObject) -> bool {
        !o.private || self.session == Some(UserType::User)
    }

    fn key_pair(&self, label: &str) -> Option<&StoredObject> {
        self.state
            .objects
            .iter()
            .find(|o| o.class == ObjectClass::PrivateKey && o.label == label)
    }

    /// The private data object that holds the counter `label`.
    fn counter(&self, label: &str) -> Option<&StoredObject> {
        self.state
            .objects
            .iter()
            .find(|o| o.class == ObjectClass::Data && o.private && o.label == label)
    }

    fn store_key_pair(
        &mut self,
        label: &str,
        id: &[u8],
        pkcs8: Zeroizing<Vec<u8>>,
        public: &PublicKey,
        local: bool,
        exportable: bool,
    ) -> Result<()> {
        let algorithm = KeyAlgorithm::of(public);
        let spki = public.to_spki_der();
        self.commit(|s| {
            for class in [ObjectClass::PrivateKey, ObjectClass::PublicKey] {
                check_unique(s, &class, label, id)?;
            }
            s.objects.push(StoredObject {
                class: ObjectClass::PrivateKey,
                label: label.into(),
                id: id.to_vec(),
                private: true,
                local,
                algorithm,
                spki: Some(spki.clone()),
                application: None,
                exportable,
                immutable: false,
                value: pkcs8,
            });
            s.objects.push(StoredObject {
                class: ObjectClass::PublicKey,
                label: label.into(),
                id: id.to_vec(),
                private: false,
                local,
                algorithm,
                spki: Some(spki),
                application: None,
                exportable: false,
                immutable: false,
                value: Zeroizing::new(Vec::new()),
            });
            Ok(())
        })
    }
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty() {
        return Err(Error::Refused("an object label must not be empty".into()));
    }
    Ok(())
}

fn check_unique(s: &State, class: &ObjectClass, label: &str, id: &[u8]) -> Result<()> {
    let same_class = || s.objects.iter().filter(|o| &o.class == class);
    if same_class().any(|o| o.label == label) {
        return Err(Error::LabelExists {
            label: label.into(),
            class: class.clone(),
        });
    }
    if !id.is_empty() && same_class().any(|o| o.id == id) {
        return Err(Error::IdExists {
            id: hex::encode(id),
            class: class.clone(),
        });
    }
    Ok(())
}

fn info_of(o: &StoredObject) -> ObjectInfo {
    let public_key = o
        .spki
        .as_deref()
        .and_then(|d| PublicKey::from_spki_der(d).ok());
    let flags = match o.class {
        ObjectClass::PrivateKey => KeyFlags {
            sensitive: Some(true),
            always_sensitive: Some(o.local),
            extractable: Some(o.exportable),
            never_extractable: Some(o.local && !o.exportable),
            local: Some(o.local),
            private: Some(true),
        },
        ObjectClass::WrapKey => KeyFlags {
            sensitive: Some(true),
            extractable: Some(false),
            private: Some(o.private),
            ..KeyFlags::default()
        },
        ObjectClass::PublicKey => KeyFlags {
            local: Some(o.local),
            private: Some(false),
            ..KeyFlags::default()
        },
        _ => KeyFlags {
            private: Some(o.private),
            ..KeyFlags::default()
        },
    };
    ObjectInfo {
        class: o.class.clone(),
        label: o.label.clone(),
        id: o.id.clone(),
        public_key,
        flags,
    }
}

/// Every (algorithm, scheme) pair: ECDSA with any SHA-2 on EC keys; PSS and PKCS#1 v1.5
/// with any SHA-2 on RSA keys.
fn all_sign_pairs() -> Vec<(KeyAlgorithm, SignScheme)> {
    let hashes = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];
    let mut out = Vec::new();
    for alg in KeyAlgorithm::ALL {
        for h in hashes {
            if alg.is_rsa() {
                out.push((alg, SignScheme::RsaPss(h)));
                out.push((alg, SignScheme::RsaPkcs1(h)));
            } else {
                out.push((alg, SignScheme::Ecdsa(h)));
            }
        }
    }
    out
}

impl Token for SimToken {
    fn info(&mut self) -> Result<TokenInfo> {
        Ok(TokenInfo {
            backend: self.where_(),
            label: self.state.label.clone(),
            serial: self.state.serial.clone(),
            manufacturer: "Officiant".into(),
            model: "rehearsal token (NOT SECURE)".into(),
            initialized: self.state.initialized,
            rehearsal: true,
            min_pin_len: pin::MIN_PIN_LEN,
            max_pin_len: pin::MAX_PIN_LEN,
        })
    }

    fn capabilities(&mut self) -> Result<Capabilities> {
        Ok(Capabilities {
            generate: KeyAlgorithm::ALL.to_vec(),
            import: KeyAlgorithm::ALL.to_vec(),
            sign: all_sign_pairs(),
            init_token: true,
            so_login: true,
            certificates: true,
            data_objects: true,
            wrap: Some(WrapFormat::Pkcs8AesKwp),
            wrap_key_needs_so: true,
            immutable_data: true,
            counters: true,
            ..Capabilities::default()
        })
    }

    fn init_token(&mut self, label: &str, so_pin: &Secret, user_pin: &Secret) -> Result<()> {
        if label.is_empty() || label.len() > 32 {
            return Err(Error::Refused(format!(
                "token label {label:?} must be 1 to 32 bytes (the PKCS#11 limit)"
            )));
        }
        pin::check_new(UserType::So, so_pin)?;
        pin::check_new(UserType::User, user_pin)?;
        if self.state.initialized {
            self.check_pin(UserType::So, so_pin)?;
        }
        self.session = None;
        self.commit(|s| {
            s.initialized = true;
            s.label = label.into();
            s.so_pin = Some(pin::PinRecord::new(so_pin));
            s.user_pin = Some(pin::PinRecord::new(user_pin));
            // Like SoftHSM's C_InitToken: every object goes, even those that cannot be
            // destroyed one by one (a policy goes with the keys it was about).
            s.objects.clear();
            Ok(())
        })
    }

    fn login(&mut self, user: UserType, pin: &Secret) -> Result<()> {
        self.need_initialized("login")?;
        self.session = None;
        self.check_pin(user, pin)?;
        self.session = Some(user);
        Ok(())
    }

    fn logout(&mut self) -> Result<()> {
        self.session = None;
        Ok(())
    }

    fn change_pin(&mut self, user: UserType, old: &Secret, new: &Secret) -> Result<()> {
        self.need_initialized("change-pin")?;
        pin::check_new(user, new)?;
        self.check_pin(user, old)?;
        self.commit(|s| {
            let rec = Some(pin::PinRecord::new(new));
            match user {
                UserType::User => s.user_pin = rec,
                UserType::So => s.so_pin = rec,
            }
            Ok(())
        })?;
        self.session = Some(user);
        Ok(())
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
        self.need_user("generate-key")?;
        // Refuse before spending seconds on an RSA key that could not be stored.
        for class in [ObjectClass::PrivateKey, ObjectClass::PublicKey] {
            check_unique(&self.state, &class, label, id)?;
        }
        let (pkcs8, public) = crypto::generate(alg)?;
        self.store_key_pair(label, id, pkcs8, &public, true, opts.exportable_under_wrap)?;
        Ok(public)
    }

    fn import_key(&mut self, key: &PrivateKey, label: &Label, id: &ObjectId) -> Result<PublicKey> {
        self.need_user("import-key")?;
        let (pkcs8, public) = crypto::import(key)?;
        self.store_key_pair(label, id, pkcs8, &public, false, false)?;
        Ok(public)
    }

    fn put_object(&mut self, label: &Label, id: &ObjectId, object: &NewObject) -> Result<()> {
        self.need_user("write-object")?;
        let stored = match object {
            NewObject::Certificate(der) => {
                let public = PublicKey::from_certificate_der(der)?;
                StoredObject {
                    class: ObjectClass::Certificate,
                    label: label.to_string(),
                    id: id.to_vec(),
                    private: false,
                    local: false,
                    algorithm: KeyAlgorithm::of(&public),
                    spki: Some(public.to_spki_der()),
                    application: None,
                    exportable: false,
                    immutable: false,
                    value: Zeroizing::new(der.clone()),
                }
            }
            NewObject::Data { application, value } => StoredObject {
                class: ObjectClass::Data,
                label: label.to_string(),
                id: id.to_vec(),
                private: false,
                local: false,
                algorithm: None,
                spki: None,
                application: Some(application.clone()),
                exportable: false,
                immutable: false,
                value: Zeroizing::new(value.clone()),
            },
        };
        self.commit(|s| {
            check_unique(s, &stored.class, label, id)?;
            s.objects.push(stored);
            Ok(())
        })
    }

    fn list_objects(&mut self) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .state
            .objects
            .iter()
            .filter(|o| self.visible(o))
            .map(info_of)
            .collect())
    }

    fn read_certificate(&mut self, label: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .state
            .objects
            .iter()
            .find(|o| o.class == ObjectClass::Certificate && o.label == label && self.visible(o))
            .map(|o| o.value.to_vec()))
    }

    fn public_key(&mut self, label: &str) -> Result<PublicKey> {
        let o = self
            .state
            .objects
            .iter()
            .find(|o| o.class == ObjectClass::PublicKey && o.label == label)
            .ok_or_else(|| Error::NotFound {
                what: format!("public key labelled {label:?}"),
            })?;
        let spki = o.spki.as_deref().unwrap_or_default();
        Ok(PublicKey::from_spki_der(spki)?)
    }

    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>> {
        self.need_user("sign")?;
        let o = self.key_pair(label).ok_or_else(|| Error::NotFound {
            what: format!("private key labelled {label:?}"),
        })?;
        crypto::sign(&o.value, scheme, digest)
    }

    fn put_wrap_key(&mut self, spec: &WrapKeySpec, key: &Secret) -> Result<WrapKeySpec> {
        self.need_so("put-wrap-key")?;
        check_label(&spec.label)?;
        wrap::check_value(key.expose())?;
        let id = spec.id.to_be_bytes();
        let stored = StoredObject {
            class: ObjectClass::WrapKey,
            label: spec.label.clone(),
            id: id.to_vec(),
            // Like SoftHSM's: an object the SO may create is a public one.
            private: false,
            local: false,
            algorithm: None,
            spki: None,
            application: None,
            exportable: false,
            immutable: false,
            value: Zeroizing::new(key.expose().to_vec()),
        };
        self.commit(|s| {
            check_unique(s, &ObjectClass::WrapKey, &spec.label, &id)?;
            s.objects.push(stored);
            Ok(())
        })?;
        Ok(WrapKeySpec::new(&spec.label, spec.id))
    }

    fn wrap_key(&mut self, label: &str) -> Result<Option<WrapKeyInfo>> {
        let Some(o) = self.wrap_key_object(label) else {
            return Ok(None);
        };
        let id = match o.id.as_slice() {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        Ok(Some(WrapKeyInfo {
            spec: WrapKeySpec::new(label, id),
            check_value: Some(wrap::check_value(&o.value)?),
        }))
    }

    fn delete_wrap_key(&mut self, label: &str) -> Result<bool> {
        self.need_anyone("delete-wrap-key")?;
        let n = self.delete_matching(label, &ObjectClass::WrapKey)?;
        Ok(n > 0)
    }

    fn export_wrapped(&mut self, wrap_label: &str, label: &str) -> Result<Vec<u8>> {
        self.need_user("export-wrapped")?;
        let o = self.key_pair(label).ok_or_else(|| Error::NotFound {
            what: format!("private key labelled {label:?}"),
        })?;
        if !o.exportable {
            return Err(Error::Refused(format!(
                "key {label:?} was not generated exportable-under-wrap: it can never leave the token"
            )));
        }
        self.kek(wrap_label)?.wrap(&o.value)
    }

    fn import_wrapped(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: &[u8],
        public: &PublicKey,
    ) -> Result<()> {
        self.need_user("import-wrapped")?;
        check_label(label)?;
        for class in [ObjectClass::PrivateKey, ObjectClass::PublicKey] {
            check_unique(&self.state, &class, label, id)?;
        }
        let pkcs8 = self.kek(wrap_label)?.unwrap(blob, wrap_label)?;
        let key = PrivateKey::from_bytes(&pkcs8, None)?;
        let (pkcs8, found) = crypto::import(&key)?;
        if &found != public {
            return Err(Error::Refused(format!(
                "the key unwrapped for {label:?} is not the one the backup recorded"
            )));
        }
        self.store_key_pair(label, id, pkcs8, &found, false, true)
    }

    fn read_data(&mut self, prefix: &str) -> Result<Vec<DataObject>> {
        Ok(self
            .state
            .objects
            .iter()
            .filter(|o| o.class == ObjectClass::Data && !o.private && o.label.starts_with(prefix))
            .map(|o| DataObject {
                label: o.label.clone(),
                value: o.value.to_vec(),
                immutable: o.immutable,
            })
            .collect())
    }

    fn put_data(&mut self, label: &str, value: &[u8], immutable: bool) -> Result<()> {
        // Public objects: the SO may write them too, as on a PKCS#11 token.
        self.need_initialized("write a data object")?;
        if self.session.is_none() {
            return Err(Error::NotLoggedIn(
                "writing a data object needs the SO or the user logged in".into(),
            ));
        }
        check_label(label)?;
        let stored = StoredObject {
            class: ObjectClass::Data,
            label: label.into(),
            id: Vec::new(),
            private: false,
            local: false,
            algorithm: None,
            spki: None,
            application: Some("officiant".into()),
            exportable: false,
            immutable,
            value: Zeroizing::new(value.to_vec()),
        };
        self.commit(|s| {
            check_unique(s, &ObjectClass::Data, label, &[])?;
            s.objects.push(stored);
            Ok(())
        })
    }

    fn read_counter(&mut self, label: &str) -> Result<Option<u64>> {
        self.need_user("read a counter")?;
        match self.counter(label) {
            Some(o) => super::counter_value(label, &o.value).map(Some),
            None => Ok(None),
        }
    }

    fn write_counter(&mut self, label: &str, expected: u64, value: u64) -> Result<()> {
        self.need_user("write a counter")?;
        check_label(label)?;
        // The store is locked for this process: nobody writes between check and commit.
        let now = self.read_counter(label)?;
        super::check_counter_step(label, now, expected, value)?;
        self.commit(|s| {
            let found = s
                .objects
                .iter_mut()
                .find(|o| o.class == ObjectClass::Data && o.private && o.label == label);
            match found {
                Some(o) => o.value = Zeroizing::new(value.to_be_bytes().to_vec()),
                None => {
                    check_unique(s, &ObjectClass::Data, label, &[])?;
                    s.objects.push(StoredObject {
                        class: ObjectClass::Data,
                        label: label.into(),
                        id: Vec::new(),
                        private: true,
                        local: false,
                        algorithm: None,
                        spki: None,
                        application: Some("officiant counter".into()),
                        exportable: false,
                        immutable: false,
                        value: Zeroizing::new(value.to_be_bytes().to_vec()),
                    });
                }
            }
            Ok(())
        })
    }

    fn delete_object(&mut self, sel: &Selector) -> Result<usize> {
        self.need_user("delete-object")?;
        self.delete_object_unchecked(sel)
    }
}

impl SimToken {
    fn delete_matching(&mut self, label: &str, class: &ObjectClass) -> Result<usize> {
        self.delete_object_unchecked(&Selector {
            label: label.to_string(),
            class: Some(class.clone()),
        })
    }

    fn delete_object_unchecked(&mut self, sel: &Selector) -> Result<usize> {
        let hit = |o: &StoredObject| {
            o.label == sel.label && sel.class.as_ref().is_none_or(|c| c == &o.class)
        };
        let n = self.state.objects.iter().filter(|o| hit(o)).count();
        if n == 0 {
            return Ok(0);
        }
        if let Some(o) = self.state.objects.iter().find(|o| hit(o) && o.immutable) {
            return Err(Error::Refused(format!(
                "the {} object {:?} cannot be destroyed (CKA_DESTROYABLE false)",
                o.class, o.label
            )));
        }
        self.commit(|s| {
            s.objects.retain(|o| !hit(o));
            Ok(n)
        })
    }
}

/// RFC 5649 AES key wrap with padding under a wrap key of 16, 24 or 32 bytes.
enum Kek {
    Aes128(aes_kw::KekAes128),
    Aes192(aes_kw::KekAes192),
    Aes256(aes_kw::KekAes256),
}

impl Kek {
    fn new(key: &[u8]) -> Result<Kek> {
        let bad = || Error::Backend("rehearsal token: stored wrap key has a bad length".into());
        Ok(match key.len() {
            16 => Kek::Aes128(aes_kw::KekAes128::try_from(key).map_err(|_| bad())?),
            24 => Kek::Aes192(aes_kw::KekAes192::try_from(key).map_err(|_| bad())?),
            32 => Kek::Aes256(aes_kw::KekAes256::try_from(key).map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }

    fn wrap(&self, data: &[u8]) -> Result<Vec<u8>> {
        let r = match self {
            Kek::Aes128(k) => k.wrap_with_padding_vec(data),
            Kek::Aes192(k) => k.wrap_with_padding_vec(data),
            Kek::Aes256(k) => k.wrap_with_padding_vec(data),
        };
        r.map_err(Error::SimKeyWrap)
    }

    fn unwrap(&self, blob: &[u8], wrap_label: &str) -> Result<Zeroizing<Vec<u8>>> {
        let r = match self {
            Kek::Aes128(k) => k.unwrap_with_padding_vec(blob),
            Kek::Aes192(k) => k.unwrap_with_padding_vec(blob),
            Kek::Aes256(k) => k.unwrap_with_padding_vec(blob),
        };
        r.map(Zeroizing::new).map_err(|_| {
            Error::Refused(format!(
                "the wrapped key does not unwrap under wrap key {wrap_label:?}                  (another wrap key, or a damaged file)"
            ))
        })
    }
}
