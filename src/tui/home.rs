//! The home screen: the token, the ceremonies found, and the token's objects (with a
//! login that lists private keys and their flags). It shows the worker's last snapshot;
//! refreshing, logging in and opening a ceremony are requests to the worker.

use super::app::{self, AppState, Command, Popup, Screen};
use super::keymap::Action;
use super::views::widgets::SecretEntry;
use super::worker::Request;
use crate::formats::words::Fingerprint;
use crate::hsm::{ObjectClass, ObjectInfo};
use crate::keys::SignScheme;

/// The home screen's list that ↑/↓ move in (Tab switches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HomePane {
    /// The ceremony scripts; Enter opens the one selected.
    #[default]
    Ceremonies,
    /// The token's objects; the details pane shows the one selected.
    Objects,
}

/// The home screen's own state (what it shows is [`AppState`]'s).
#[derive(Debug, Default)]
pub struct HomeState {
    /// The pane with the keyboard.
    pub pane: HomePane,
    /// Selected ceremony (index into [`AppState::ceremonies`]).
    pub ceremony: usize,
    /// Selected object (index into [`AppState::objects`]).
    pub object: usize,
}

/// One object, ready to show.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    /// The object's label on the token.
    pub label: String,
    /// The object id in lower-case hex.
    pub id: String,
    /// Private key, public key, certificate, data, …
    pub class: ObjectClass,
    /// Algorithm and size as the object list shows it (`RSA 4096`, `EC P-256`), or empty.
    pub key_type: String,
    /// Each attribute an officer checks, as the token reports it (`None`: not reported).
    pub flags: Vec<(&'static str, Option<bool>)>,
    /// SHA-256 of the public key (hex groups and PGP words), when the token shows it.
    pub fingerprint: Option<Fingerprint>,
    /// How the key signs by default; `None`: not a key the sign screen can use.
    pub scheme: Option<SignScheme>,
    /// RSA: the key can also sign with PKCS#1 v1.5.
    pub rsa: bool,
}

impl ObjectRow {
    /// The row for one object of a token snapshot. Key flags are listed for private
    /// keys (and objects whose token reports `local`); other objects have none.
    pub fn of(o: &ObjectInfo) -> Self {
        let f = &o.flags;
        let flags = if matches!(o.class, ObjectClass::PrivateKey) || f.local.is_some() {
            vec![
                ("sensitive", f.sensitive),
                ("always sensitive", f.always_sensitive),
                ("extractable", f.extractable),
                ("never extractable", f.never_extractable),
                ("generated on the token (local)", f.local),
                ("private", f.private),
            ]
        } else {
            Vec::new()
        };
        ObjectRow {
            label: o.label.clone(),
            id: hex::encode(&o.id),
            class: o.class.clone(),
            key_type: o.key_type(),
            flags,
            fingerprint: o
                .public_key
                .as_ref()
                .map(|k| Fingerprint::of(&k.fingerprint())),
            scheme: o.public_key.as_ref().map(|k| k.default_scheme()),
            rsa: o
                .public_key
                .as_ref()
                .is_some_and(|k| k.default_scheme().is_rsa()),
        }
    }
}

/// Keys on the home screen: Tab switches pane, ↑/↓ move, `r` reads the token again,
/// `L` asks the user PIN to list private objects, Enter opens the selected ceremony
/// (the worker loads it; the ceremony screen opens when it reports). Token keys wait
/// while an operation is under way.
pub fn on_action(s: &mut AppState, action: Action) -> Vec<Command> {
    match action {
        Action::FocusNext => {
            s.home.pane = match s.home.pane {
                HomePane::Ceremonies => HomePane::Objects,
                HomePane::Objects => HomePane::Ceremonies,
            };
        }
        Action::Up | Action::Down => {
            let (sel, len) = match s.home.pane {
                HomePane::Ceremonies => (&mut s.home.ceremony, s.ceremonies.len()),
                HomePane::Objects => (&mut s.home.object, s.objects.len()),
            };
            *sel = app::step_sel(*sel, len, action == Action::Down);
        }
        Action::Refresh if s.busy.is_none() => return app::start(s, Request::Refresh),
        Action::Login if s.busy.is_none() => {
            let (min, max) = s.pin_rules();
            s.popup = Some(Popup::LoginPin(SecretEntry::new(
                "User PIN to list private objects",
                false,
                min,
                max,
            )));
        }
        Action::Select if s.home.pane == HomePane::Ceremonies && s.busy.is_none() => {
            return open_ceremony(s)
        }
        _ => {}
    }
    Vec::new()
}

fn open_ceremony(s: &mut AppState) -> Vec<Command> {
    if s.run.as_ref().is_some_and(|r| r.in_progress()) {
        s.screen = Screen::Ceremony;
        return Vec::new();
    }
    match s.ceremonies.get(s.home.ceremony) {
        Some(c) if c.error.is_some() => {
            let cause = c.error.clone().unwrap_or_default();
            s.error(
                "The ceremony script is not valid",
                cause,
                "Fix the field it names (`officiant check SCRIPT`), then restart the console.",
            );
            Vec::new()
        }
        Some(c) => {
            let req = Request::OpenCeremony {
                script: c.path.clone(),
                out: s.out_root.join(&c.id),
            };
            app::start(s, req)
        }
        None => {
            s.notice = Some("no ceremonies found (officiant --ceremonies DIR)".into());
            Vec::new()
        }
    }
}
