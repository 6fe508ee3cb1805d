//! The runner against an in-memory fake token (what the engine asks of a backend, and
//! that it asks nothing before the plan is checked), and a wrong PIN inside a ceremony on
//! the rehearsal token.

use std::sync::{Arc, Mutex};

use officiant::ceremony::runner::{self, RunOptions};
use officiant::hsm::{
    self, BackendUri, Capabilities, Label, NewObject, ObjectClass, ObjectId, ObjectInfo, Selector,
    Token, TokenInfo, UserType,
};
use officiant::keys::{Curve, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use officiant::secret::Secret;

use crate::support::demo::{self, Demo};

/// A token that only does EC P-256 and logs every call by name.
struct Fake {
    calls: Arc<Mutex<Vec<String>>>,
    objects: Vec<ObjectInfo>,
}

impl Fake {
    fn call(&self, c: &str) {
        self.calls.lock().unwrap().push(c.to_string());
    }
}

impl Token for Fake {
    fn info(&mut self) -> hsm::Result<TokenInfo> {
        Ok(TokenInfo {
            label: "fake".into(),
            ..TokenInfo::default()
        })
    }
    fn capabilities(&mut self) -> hsm::Result<Capabilities> {
        self.call("capabilities");
        Ok(Capabilities {
            generate: vec![KeyAlgorithm::EcP256],
            import: vec![KeyAlgorithm::EcP256, KeyAlgorithm::EcP384],
            init_token: true,
            so_login: true,
            ..Capabilities::default()
        })
    }
    fn init_token(&mut self, _: &str, _: &Secret, _: &Secret) -> hsm::Result<()> {
        self.call("init_token");
        self.objects.clear();
        Ok(())
    }
    fn login(&mut self, _: UserType, _: &Secret) -> hsm::Result<()> {
        self.call("login");
        Ok(())
    }
    fn logout(&mut self) -> hsm::Result<()> {
        Ok(())
    }
    fn change_pin(&mut self, _: UserType, _: &Secret, _: &Secret) -> hsm::Result<()> {
        self.call("change_pin");
        Ok(())
    }
    fn generate_key(
        &mut self,
        _: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
    ) -> hsm::Result<PublicKey> {
        self.call("generate_key");
        let sk = p256::SecretKey::random(&mut rand_core::OsRng);
        let point = sk.public_key().to_sec1_bytes();
        let pk = PublicKey::ec(Curve::P256, &point)?;
        self.add(label, id, pk.clone());
        Ok(pk)
    }
    fn import_key(
        &mut self,
        key: &PrivateKey,
        label: &Label,
        id: &ObjectId,
    ) -> hsm::Result<PublicKey> {
        self.call("import_key");
        self.add(label, id, key.public_key().clone());
        Ok(key.public_key().clone())
    }
    fn put_object(&mut self, _: &Label, _: &ObjectId, _: &NewObject) -> hsm::Result<()> {
        Err(hsm::Error::Unsupported("objects".into()))
    }
    fn list_objects(&mut self) -> hsm::Result<Vec<ObjectInfo>> {
        Ok(self.objects.clone())
    }
    fn public_key(&mut self, label: &str) -> hsm::Result<PublicKey> {
        self.objects
            .iter()
            .find(|o| o.label == label)
            .and_then(|o| o.public_key.clone())
            .ok_or(hsm::Error::NotFound { what: label.into() })
    }
    fn sign(&mut self, _: &str, _: SignScheme, _: &[u8]) -> hsm::Result<Vec<u8>> {
        Err(hsm::Error::Unsupported("sign".into()))
    }
    fn delete_object(&mut self, _: &Selector) -> hsm::Result<usize> {
        Ok(0)
    }
}

impl Fake {
    fn add(&mut self, label: &str, id: &[u8], pk: PublicKey) {
        self.objects.push(ObjectInfo {
            class: ObjectClass::PrivateKey,
            label: label.into(),
            id: id.to_vec(),
            public_key: Some(pk),
            flags: Default::default(),
        });
    }
}

fn opts(d: &Demo) -> RunOptions {
    RunOptions {
        script: d.script.clone(),
        answers: Some(d.answers.clone()),
        backend: "sim:fake".into(),
        out: d.out.clone(),
    }
}

#[test]
fn unsupported_algorithm_is_refused_before_the_token_is_changed() {
    let d = Demo::new(false); // has RSA-3072, which the fake cannot generate
    let calls = Arc::new(Mutex::new(vec![]));
    let c = calls.clone();
    let opener = move |_: &BackendUri, _: Option<&str>| -> hsm::Result<Box<dyn Token>> {
        Ok(Box::new(Fake {
            calls: c.clone(),
            objects: vec![],
        }))
    };
    let err = runner::run_with(&opts(&d), &opener)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: step[4] (gen-rsa3072).algorithm: generating rsa-3072 keys is not supported by sim:fake",
            d.script.display()
        )
    );
    assert_eq!(*calls.lock().unwrap(), vec!["capabilities".to_string()]);
    assert!(!d.out.exists(), "nothing written for a refused plan");
}

#[test]
fn demo_runs_on_the_fake_with_each_call_once() {
    let d = Demo::new(true);
    let calls = Arc::new(Mutex::new(vec![]));
    let c = calls.clone();
    let opener = move |_: &BackendUri, _: Option<&str>| -> hsm::Result<Box<dyn Token>> {
        Ok(Box::new(Fake {
            calls: c.clone(),
            objects: vec![],
        }))
    };
    let s = runner::run_with(&opts(&d), &opener).unwrap();
    assert_eq!(s.outputs.len(), 6);
    assert_eq!(
        *calls.lock().unwrap(),
        [
            "capabilities",
            "init_token",
            "login",
            "change_pin",
            "generate_key",
            "generate_key",
            "import_key"
        ]
    );
    officiant::ceremony::transcript::verify(&s.transcript).unwrap();
}

#[test]
fn wrong_pin_in_a_ceremony_names_the_step_and_the_retries_left() {
    let d = Demo::new(true);
    let s = std::fs::read_to_string(&d.script).unwrap();
    std::fs::write(
        &d.script,
        s.replacen("pin = \"user-initial\"", "pin = \"typo\"", 1),
    )
    .unwrap();
    let a = std::fs::read_to_string(&d.answers).unwrap();
    std::fs::write(
        &d.answers,
        a.replace("[secrets]\n", "[secrets]\ntypo = \"env:T_TYPO\"\n"),
    )
    .unwrap();
    let out = d
        .command()
        .env("T_TYPO", "canary-typo-1111")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "officiant: step[1] (login): wrong user PIN (2 retries left before the PIN locks)"
    );
    // The transcript records the failure, closes, and still verifies.
    let v = officiant::ceremony::transcript::verify(&d.out.join("transcript.jsonl")).unwrap();
    assert!(v.entries.iter().any(|e| e.kind == "step-failed"));
    for f in demo::files_under(&d.out) {
        let b = std::fs::read(&f).unwrap();
        assert!(
            !b.windows(16).any(|w| w == b"canary-typo-1111"),
            "{}",
            f.display()
        );
    }
}

#[test]
fn a_key_already_on_the_token_is_never_adopted_after_a_clean_failure() {
    // A key labelled like the script's exists before the run (no init-token step): the
    // step fails; a rerun must fail again, not adopt a key the ceremony did not make.
    let d = Demo::new(true);
    let s = std::fs::read_to_string(&d.script).unwrap();
    let pin = officiant::secret::Secret::new(b"canary-pre-4242".to_vec());
    {
        let mut t = hsm::open(&BackendUri::Sim(d.token.clone()), None).unwrap();
        t.init_token("officiant-demo", &pin, &pin).unwrap();
        t.login(UserType::User, &pin).unwrap();
        t.generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("demo-ecdsa-p256"),
            &crate::support::object_id(&[9]),
        )
        .unwrap();
    }
    let script = format!(
        "{}[[step]]\nid = \"login\"\nkind = \"login\"\npin = \"pre\"\n\n[[step]]\nid = \"gen\"\nkind = \"generate-key\"\nalgorithm = \"ec-p256\"\nlabel = \"demo-ecdsa-p256\"\nkey-id = \"01\"\n",
        &s[..s.find("[[step]]").unwrap()]
    );
    std::fs::write(&d.script, script).unwrap();
    std::fs::write(
        &d.answers,
        "[secrets]\npre = \"env:T_PRE\"\n\n[[acknowledge]]\nstep = \"gen\"\nname = \"Walt\"\n",
    )
    .unwrap();
    for attempt in 0..2 {
        let out = d
            .command()
            .env("T_PRE", "canary-pre-4242")
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "attempt {attempt} adopted a foreign key"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("step[1] (gen): an object labelled \"demo-ecdsa-p256\" already exists"),
            "{err}"
        );
    }
}
