//! The home screen: the token, the ceremonies found, and the token's objects (with a
//! login that lists private keys and their flags).

use super::app::{self, AppState, Command, Popup, Screen};
use super::keymap::Action;
use super::views::widgets::SecretEntry;
use super::worker::Request;
use crate::formats::words::Fingerprint;
use crate::hsm::{ObjectClass, ObjectInfo};
use crate::keys::SignScheme;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HomePane {
    #[default]
    Ceremonies,
    Objects,
}

#[derive(Debug, Default)]
pub struct HomeState {
    pub pane: HomePane,
    pub ceremony: usize,
    pub object: usize,
}

/// One object, ready to show.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub label: String,
    pub id: String,
    pub class: ObjectClass,
    pub key_type: String,
    /// Each attribute an officer checks, as the token reports it (`None`: not reported).
    pub flags: Vec<(&'static str, Option<bool>)>,
    pub fingerprint: Option<Fingerprint>,
    pub scheme: Option<SignScheme>,
    /// RSA: the key can also sign with PKCS#1 v1.5.
    pub rsa: bool,
}

impl ObjectRow {
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

/// The login PIN popup.
pub fn on_pin(s: &mut AppState, action: Action) -> Vec<Command> {
    let Some(Popup::LoginPin(entry)) = s.popup.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::Cancel | Action::Abort => s.popup = None,
        Action::DeleteChar => entry.backspace(),
        Action::Submit => {
            if let Some(pin) = entry.submit() {
                s.popup = None;
                return app::start(s, Request::Login { pin });
            }
        }
        _ => {}
    }
    Vec::new()
}
