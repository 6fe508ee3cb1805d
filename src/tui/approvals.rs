//! The Approvals screen as a component: the signing requests waiting in the requests
//! directory (`officiant --requests DIR`, default `./requests`), each with its
//! description, keys, limits, expiry, what the token's policy asks and the approvals it
//! has; an approver reviews one and approves it with their key in the ssh-agent (the
//! worker signs and writes `REQ.json.NAME.sig` beside it), or takes it to the sign screen
//! with its approvals. Reading the directory, checking it against the token's policy and
//! signing are the worker's (`crate::approvals`); this component only decides what may
//! be asked.

use std::path::PathBuf;

use super::app::{self, AppState, Command, ConfirmAction, Popup, Screen};
use super::keymap::Action;
use super::worker::{Request, RequestList, WorkerMsg};
use crate::approvals::pending;

/// The Approvals screen's own state.
#[derive(Debug, Default)]
pub struct ApprovalsState {
    /// The last listing (none before the screen was first opened).
    pub list: Option<RequestList>,
    /// The request on view.
    pub sel: usize,
    /// The agent key chosen to approve with.
    pub key: usize,
    /// What the last approval wrote.
    pub last: Option<String>,
    /// Lines the request on view is scrolled.
    pub scroll: u16,
}

impl ApprovalsState {
    /// The request on view, if the listing has one.
    pub fn selected(&self) -> Option<&pending::Pending> {
        self.list.as_ref().and_then(|l| l.pending.get(self.sel))
    }

    /// The agent's keys (empty without an agent).
    pub fn keys(&self) -> &[pending::AgentKey] {
        match self.list.as_ref().map(|l| &l.agent) {
            Some(Ok(k)) => k,
            _ => &[],
        }
    }

    /// The key chosen, if any.
    pub fn chosen_key(&self) -> Option<&pending::AgentKey> {
        self.keys().get(self.key)
    }
}

/// Read the requests directory again (the worker reviews it against the token).
pub fn refresh(s: &mut AppState) -> Vec<Command> {
    if s.busy.is_some() {
        return Vec::new();
    }
    let dir = s.requests_dir.clone();
    app::start(s, Request::ListRequests { dir })
}

/// Open the screen: its listing is read each time.
pub fn open(s: &mut AppState) -> Vec<Command> {
    s.screen = Screen::Approvals;
    refresh(s)
}

/// The worker's listing of the requests directory (keeping the request on view and the
/// chosen agent key where they still exist), or its report of an approval written (the
/// listing is read again).
pub fn on_worker(s: &mut AppState, msg: WorkerMsg) -> Vec<Command> {
    match msg {
        WorkerMsg::Requests(list) => {
            let a = &mut s.approvals;
            a.sel = a.sel.min(list.pending.len().saturating_sub(1));
            let keys = match &list.agent {
                Ok(k) => k.clone(),
                Err(_) => Vec::new(),
            };
            // Keep the chosen key, else the first that is an approver's.
            let kept = a
                .chosen_key()
                .and_then(|k| keys.iter().position(|x| x.fingerprint == k.fingerprint));
            a.key = kept
                .or_else(|| keys.iter().position(|k| !k.approver.is_empty()))
                .unwrap_or(0);
            a.list = Some(*list);
            Vec::new()
        }
        WorkerMsg::Approved {
            signature,
            principal,
            ..
        } => {
            let line = format!("approved as {principal}: wrote {}", signature.display());
            s.notice = Some(line.clone());
            s.approvals.last = Some(line);
            refresh(s)
        }
        _ => Vec::new(),
    }
}

/// Keys on the Approvals screen: ↑/↓ choose the request, PgUp/PgDn scroll it, ←/→
/// choose the agent key, `r` reads the directory again, `a` asks to approve (after
/// checking it can be), `s` takes the request to the sign screen.
pub fn on_action(s: &mut AppState, action: Action) -> Vec<Command> {
    let n = s
        .approvals
        .list
        .as_ref()
        .map(|l| l.pending.len())
        .unwrap_or(0);
    let nkeys = s.approvals.keys().len();
    let a = &mut s.approvals;
    match action {
        Action::Up | Action::Down => {
            a.sel = app::step_sel(a.sel, n, action == Action::Down);
            a.scroll = 0;
        }
        Action::PageUp => a.scroll = a.scroll.saturating_sub(8),
        Action::PageDown => a.scroll = a.scroll.saturating_add(8),
        Action::Left | Action::Right if nkeys > 0 => {
            a.key = if action == Action::Right {
                (a.key + 1) % nkeys
            } else {
                (a.key + nkeys - 1) % nkeys
            };
        }
        Action::Refresh => return refresh(s),
        Action::Approve if s.busy.is_none() => ask_approve(s),
        Action::SignUnder => sign_under(s),
        _ => {}
    }
    Vec::new()
}

/// Why the request on view cannot be approved with the chosen key now, if it cannot.
fn cannot_approve(s: &AppState) -> Option<(String, String)> {
    let a = &s.approvals;
    let Some(p) = a.selected() else {
        return Some((
            "No request".into(),
            format!(
                "put request files (officiant request create -o {}/NAME.json) there, then press r",
                s.requests_dir.display()
            ),
        ));
    };
    let r = match &p.request {
        Ok(r) => r,
        Err(e) => return Some(("Not a signing request".into(), e.clone())),
    };
    if p.expired {
        return Some((
            "The request has expired".into(),
            format!("request {} expired at {}", r.id, r.not_after),
        ));
    }
    if let Some(why) = &p.unusable {
        return Some(("The request cannot be used".into(), why.clone()));
    }
    match a.list.as_ref().map(|l| &l.agent) {
        Some(Err(e)) => return Some(("No ssh-agent".into(), e.clone())),
        Some(Ok(k)) if k.is_empty() => {
            return Some((
                "No key in the ssh-agent".into(),
                "the agent holds no key: ssh-add yours, then press r".into(),
            ))
        }
        _ => {}
    }
    match a.chosen_key() {
        Some(k) if k.approver.is_empty() => Some((
            "Not an approver's key".into(),
            format!(
                "the token's policy names no approver with key {}; choose another with ←/→",
                k.fingerprint
            ),
        )),
        Some(_) => None,
        None => Some(("No key chosen".into(), "choose your key with ←/→".into())),
    }
}

fn ask_approve(s: &mut AppState) {
    if let Some((title, cause)) = cannot_approve(s) {
        s.error(
            &title,
            cause,
            "Nothing was signed. Review the request and the key, then press a again.",
        );
        return;
    }
    let (Some(p), Some(k)) = (s.approvals.selected(), s.approvals.chosen_key()) else {
        return;
    };
    let Ok(r) = &p.request else { return };
    let who = k.approver.join(", ");
    let keys: Vec<String> = r
        .keys
        .iter()
        .map(|k| format!("{} ×{}", k.label, k.max_uses))
        .collect();
    s.popup = Some(Popup::Confirm {
        question: format!("Approve request {} as {who}?", &r.id[..8.min(r.id.len())]),
        detail: format!(
            "Keys {}, until {}. Your key {} signs the file.",
            keys.join(", "),
            r.not_after,
            k.fingerprint
        ),
        destructive: false,
        action: ConfirmAction::Approve,
    });
}

/// The approver said yes: the worker signs with the chosen agent key.
pub fn approve_confirmed(s: &mut AppState) -> Vec<Command> {
    if cannot_approve(s).is_some() {
        return Vec::new();
    }
    let (Some(p), Some(k)) = (s.approvals.selected(), s.approvals.chosen_key()) else {
        return Vec::new();
    };
    let req = Request::ApproveRequest {
        path: p.path.clone(),
        key: k.openssh.clone(),
        principal: k.approver.first().cloned().unwrap_or_default(),
    };
    app::start(s, req)
}

/// Take the request on view, with its approvals that count, to the sign screen.
fn sign_under(s: &mut AppState) {
    let Some(p) = s.approvals.selected() else {
        return;
    };
    let Ok(r) = &p.request else {
        s.notice = Some("not a signing request: nothing to sign under".into());
        return;
    };
    let path = p.path.display().to_string();
    let approvals: Vec<String> = p
        .valid_approvals()
        .iter()
        .map(|a| a.display().to_string())
        .collect();
    let first_key = r.keys.first().map(|k| k.label.clone());
    let id = r.id.clone();
    s.sign.request.input.value = path;
    s.sign.approvals.input.value = approvals.join(" ");
    s.sign.result = None;
    if let Some(label) = first_key {
        let at = super::sign::signing_keys(s)
            .iter()
            .position(|k| k.label == label);
        if let Some(i) = at {
            s.sign.key = i;
            super::sign::keys_changed(s);
        }
    }
    s.screen = Screen::Sign;
    s.notice = Some(format!(
        "signing under request {id} with {} approval(s)",
        approvals.len()
    ));
}

/// The requests directory the console reads.
pub fn default_dir() -> PathBuf {
    PathBuf::from("requests")
}
