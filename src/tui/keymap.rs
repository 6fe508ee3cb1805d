//! The one keymap table. Key handling, the footer hints and the help overlay are all
//! generated from [`KEYMAP`], so what the screen promises is what the keys do.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies. Lookups try the most specific context first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Everywhere unless a text field or popup has the keyboard.
    Global,
    /// The home screen (Tab, Enter, r, L).
    Home,
    /// The ceremony screen with nothing asked of the people at the keyboard.
    Ceremony,
    /// A person is chosen from the roll call (sign-off, acknowledgement, custodian).
    Picker,
    /// A share on screen for its custodian alone.
    Share,
    /// The roles of the person being added to the roll call.
    Roles,
    /// A long text on screen scrolls (the ceremony's step text and results).
    Scroll,
    /// The sign screen with no field being edited.
    Sign,
    /// The Approvals screen: signing requests to review and approve.
    Approvals,
    /// A text field has the keyboard: printable keys are text, only these are actions.
    Entry,
    /// A path field (Entry plus completion).
    Path,
    /// A yes/no confirmation.
    Confirm,
    /// The error popup or the help overlay.
    Dismiss,
}

impl Context {
    /// The group's heading in the help overlay.
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Home => "Home",
            Context::Ceremony => "Ceremony",
            Context::Picker => "Choosing a person",
            Context::Share => "A custodian's share on screen",
            Context::Roles => "Roll call: roles",
            Context::Scroll => "Reading",
            Context::Sign => "Sign and verify",
            Context::Approvals => "Approvals",
            Context::Entry => "Typing in a field",
            Context::Path => "Typing a path",
            Context::Confirm => "Confirmation",
            Context::Dismiss => "Messages",
        }
    }
}

/// What a key does. The screen that has the keyboard decides what an action means
/// there (`Up` moves in whichever list is shown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Leave the console (`q`, Ctrl-C); asks first while a ceremony runs.
    Quit,
    /// Open the help overlay (`?`).
    Help,
    /// Move up a list or to the previous field (↑, `k`).
    Up,
    /// Move down a list or to the next field (↓, `j`).
    Down,
    /// Scroll long text up eight lines.
    PageUp,
    /// Scroll long text down eight lines.
    PageDown,
    /// Toggle a choice (a role in the roll call).
    Toggle,
    /// The previous choice (key, format, agent key: ←, `h`).
    Left,
    /// The next choice (→, `l`).
    Right,
    /// Enter outside text fields: open the ceremony (home); start, resume or follow the
    /// run (ceremony).
    Select,
    /// Back to the home screen (Esc).
    Back,
    /// The home screen's other pane (Tab).
    FocusNext,
    /// Switch to the home screen (`1`).
    GoHome,
    /// Switch to the ceremony screen (`2`), once a ceremony is open.
    GoCeremony,
    /// Switch to the sign screen (`3`).
    GoSign,
    /// Switch to the Approvals screen (`4`); its requests are read again.
    GoApprovals,
    /// Approve the request on view with the chosen ssh-agent key.
    Approve,
    /// Take the request on view and its approvals to the sign screen.
    SignUnder,
    /// Read the token's objects (home) or the requests directory (Approvals) again.
    Refresh,
    /// Log in to list the token's private objects.
    Login,
    /// Stop the ceremony (asks first) or close a popup without answering it.
    Abort,
    /// Write the run's answers file (`w`), for replaying it headless.
    SaveAnswers,
    /// Start editing the focused field of the sign screen.
    EditField,
    /// Sign with the chosen key (`g`; asks the user PIN).
    DoSign,
    /// Verify the input (`v`).
    DoVerify,
    /// Enter in a field, picker or popup: accept what is there.
    Submit,
    /// Esc in a field: clear it, stop editing it, or close its PIN popup.
    Cancel,
    /// Tab in a path field: complete from the file system.
    Complete,
    /// Backspace in a field.
    DeleteChar,
    /// `y` in a confirmation.
    Yes,
    /// `n` or Esc in a confirmation.
    No,
    /// Close the error popup or the help overlay.
    Dismiss,
}

/// A key as the table spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The key without Ctrl or Alt.
    Code(KeyCode),
    /// The letter with Ctrl.
    Ctrl(char),
}

impl Key {
    fn matches(self, ev: &KeyEvent) -> bool {
        match self {
            Key::Ctrl(c) => {
                ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char(c)
            }
            Key::Code(code) => {
                !ev.modifiers.contains(KeyModifiers::CONTROL)
                    && !ev.modifiers.contains(KeyModifiers::ALT)
                    && ev.code == code
            }
        }
    }
}

/// One row of [`KEYMAP`]: in `context`, any of `keys` does `action`.
pub struct Binding {
    /// Where the binding applies.
    pub context: Context,
    /// The keys that do it (all shown in the help overlay under `shown`).
    pub keys: &'static [Key],
    /// How the keys are shown ("↑/k").
    pub shown: &'static str,
    /// What the keys do.
    pub action: Action,
    /// What the key does, in a few words.
    pub hint: &'static str,
    /// Shown in the footer (everything is shown in the help overlay).
    pub footer: bool,
}

const fn c(ch: char) -> Key {
    Key::Code(KeyCode::Char(ch))
}

const fn b(
    context: Context,
    keys: &'static [Key],
    shown: &'static str,
    action: Action,
    hint: &'static str,
    footer: bool,
) -> Binding {
    Binding {
        context,
        keys,
        shown,
        action,
        hint,
        footer,
    }
}

use Action as A;
use Context as X;

/// Every binding, grouped by context. Within a context the first binding of a key wins
/// (a test checks none is shadowed); the footer shows a context's `footer` rows in
/// this order.
pub const KEYMAP: &[Binding] = &[
    // Text fields: printable keys are text; these are the only actions.
    b(
        X::Entry,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        "accept",
        true,
    ),
    b(
        X::Entry,
        &[Key::Code(KeyCode::Esc)],
        "Esc",
        A::Cancel,
        "cancel",
        true,
    ),
    b(
        X::Path,
        &[Key::Code(KeyCode::Tab)],
        "Tab",
        A::Complete,
        "complete",
        true,
    ),
    b(
        X::Entry,
        &[Key::Code(KeyCode::Backspace)],
        "Bksp",
        A::DeleteChar,
        "delete",
        false,
    ),
    b(
        X::Entry,
        &[Key::Ctrl('c')],
        "Ctrl-C",
        A::Abort,
        "abort",
        false,
    ),
    // Confirmations.
    b(X::Confirm, &[c('y'), c('Y')], "y", A::Yes, "yes", true),
    b(
        X::Confirm,
        &[c('n'), c('N'), Key::Code(KeyCode::Esc)],
        "n/Esc",
        A::No,
        "no",
        true,
    ),
    // Error popup and help overlay.
    b(
        X::Dismiss,
        &[
            Key::Code(KeyCode::Enter),
            Key::Code(KeyCode::Esc),
            c('?'),
            c('q'),
        ],
        "Enter/Esc",
        A::Dismiss,
        "close",
        true,
    ),
    // Home.
    b(
        X::Home,
        &[Key::Code(KeyCode::Tab)],
        "Tab",
        A::FocusNext,
        "pane",
        true,
    ),
    b(
        X::Home,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::Select,
        "open",
        true,
    ),
    b(X::Home, &[c('r')], "r", A::Refresh, "refresh", true),
    b(
        X::Home,
        &[c('L')],
        "L",
        A::Login,
        "log in (list private keys)",
        true,
    ),
    // Choosing a person for a sign-off or an acknowledgement.
    b(
        X::Picker,
        &[Key::Code(KeyCode::Up), c('k')],
        "↑/↓",
        A::Up,
        "choose",
        true,
    ),
    b(
        X::Picker,
        &[Key::Code(KeyCode::Down), c('j')],
        "↓/j",
        A::Down,
        "next",
        false,
    ),
    b(
        X::Picker,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        "accept",
        true,
    ),
    b(
        X::Picker,
        &[Key::Code(KeyCode::Esc), Key::Ctrl('c')],
        "Esc",
        A::Abort,
        "abort",
        true,
    ),
    // A share on screen: its custodian copies it, then hides it.
    b(
        X::Share,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        "copied: hide it",
        true,
    ),
    b(
        X::Share,
        &[Key::Code(KeyCode::Esc), Key::Ctrl('c')],
        "Esc",
        A::Abort,
        "abort",
        true,
    ),
    // The roles of a person on the roll call.
    b(
        X::Roles,
        &[Key::Code(KeyCode::Up), c('k')],
        "↑/↓",
        A::Up,
        "move",
        true,
    ),
    b(
        X::Roles,
        &[Key::Code(KeyCode::Down), c('j')],
        "↓/j",
        A::Down,
        "down",
        false,
    ),
    b(X::Roles, &[c(' ')], "Space", A::Toggle, "role on/off", true),
    b(
        X::Roles,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        "add person",
        true,
    ),
    b(
        X::Roles,
        &[Key::Code(KeyCode::Esc)],
        "Esc",
        A::Cancel,
        "cancel",
        true,
    ),
    // Long text.
    b(
        X::Scroll,
        &[Key::Code(KeyCode::PageUp)],
        "PgUp/PgDn",
        A::PageUp,
        "scroll",
        true,
    ),
    b(
        X::Scroll,
        &[Key::Code(KeyCode::PageDown)],
        "PgDn",
        A::PageDown,
        "scroll down",
        false,
    ),
    // Ceremony.
    b(
        X::Ceremony,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::Select,
        "proceed",
        true,
    ),
    b(
        X::Ceremony,
        &[c('a'), Key::Ctrl('c')],
        "a",
        A::Abort,
        "abort",
        true,
    ),
    b(
        X::Ceremony,
        &[c('w')],
        "w",
        A::SaveAnswers,
        "save answers",
        true,
    ),
    // Sign and verify.
    b(
        X::Sign,
        &[Key::Code(KeyCode::Enter)],
        "Enter",
        A::EditField,
        "edit",
        true,
    ),
    b(
        X::Sign,
        &[Key::Code(KeyCode::Left), c('h')],
        "←/h",
        A::Left,
        "previous",
        false,
    ),
    b(
        X::Sign,
        &[Key::Code(KeyCode::Right), c('l')],
        "→/l",
        A::Right,
        "choose",
        true,
    ),
    b(X::Sign, &[c('g')], "g", A::DoSign, "sign", true),
    b(X::Sign, &[c('v')], "v", A::DoVerify, "verify", true),
    // Approvals.
    b(
        X::Approvals,
        &[Key::Code(KeyCode::Left), c('h')],
        "←/h",
        A::Left,
        "previous key",
        false,
    ),
    b(
        X::Approvals,
        &[Key::Code(KeyCode::Right), c('l')],
        "→/l",
        A::Right,
        "key",
        true,
    ),
    b(X::Approvals, &[c('a')], "a", A::Approve, "approve", true),
    b(X::Approvals, &[c('s')], "s", A::SignUnder, "sign", true),
    b(X::Approvals, &[c('r')], "r", A::Refresh, "refresh", false),
    // Everywhere.
    b(
        X::Global,
        &[Key::Code(KeyCode::Up), c('k')],
        "↑/↓",
        A::Up,
        "move",
        true,
    ),
    b(
        X::Global,
        &[Key::Code(KeyCode::Down), c('j')],
        "↓/j",
        A::Down,
        "down",
        false,
    ),
    b(X::Global, &[c('1')], "1", A::GoHome, "home", false),
    b(X::Global, &[c('2')], "2", A::GoCeremony, "ceremony", false),
    b(X::Global, &[c('3')], "3", A::GoSign, "sign/verify", false),
    b(
        X::Global,
        &[c('4')],
        "4",
        A::GoApprovals,
        "approvals",
        false,
    ),
    b(
        X::Global,
        &[Key::Code(KeyCode::Esc)],
        "Esc",
        A::Back,
        "back",
        false,
    ),
    b(X::Global, &[c('?')], "?", A::Help, "help", true),
    b(
        X::Global,
        &[c('q'), Key::Ctrl('c')],
        "q",
        A::Quit,
        "quit",
        true,
    ),
];

/// The action for `ev` in `contexts` (most specific first). The first context that has
/// the key wins; `Global` is consulted only if it is listed.
pub fn action_for(contexts: &[Context], ev: &KeyEvent) -> Option<Action> {
    contexts.iter().find_map(|ctx| {
        KEYMAP
            .iter()
            .filter(|bnd| bnd.context == *ctx)
            .find(|bnd| bnd.keys.iter().any(|k| k.matches(ev)))
            .map(|bnd| bnd.action)
    })
}

/// Footer hints for `contexts`, in table order, without repeating an action.
pub fn footer_hints(contexts: &[Context]) -> Vec<&'static Binding> {
    let mut seen: Vec<Action> = Vec::new();
    let mut out = Vec::new();
    for ctx in contexts {
        for bnd in KEYMAP.iter().filter(|b| b.context == *ctx && b.footer) {
            if !seen.contains(&bnd.action) {
                seen.push(bnd.action);
                out.push(bnd);
            }
        }
    }
    out
}

/// Every binding of a context, for the help overlay.
pub fn bindings(ctx: Context) -> impl Iterator<Item = &'static Binding> {
    KEYMAP.iter().filter(move |b| b.context == ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn vim_keys_and_arrows_do_the_same() {
        let ctx = [Context::Home, Context::Global];
        assert_eq!(action_for(&ctx, &key(KeyCode::Up)), Some(Action::Up));
        assert_eq!(action_for(&ctx, &key(KeyCode::Char('k'))), Some(Action::Up));
        assert_eq!(action_for(&ctx, &key(KeyCode::Down)), Some(Action::Down));
        assert_eq!(
            action_for(&ctx, &key(KeyCode::Char('j'))),
            Some(Action::Down)
        );
    }

    #[test]
    fn text_fields_swallow_letters() {
        // In a field, `q` is text, never quit.
        assert_eq!(
            action_for(&[Context::Entry], &key(KeyCode::Char('q'))),
            None
        );
        assert_eq!(
            action_for(&[Context::Entry], &key(KeyCode::Enter)),
            Some(Action::Submit)
        );
    }

    #[test]
    fn every_footer_hint_is_a_working_key() {
        for bnd in KEYMAP {
            for k in bnd.keys {
                let ev = match *k {
                    Key::Code(code) => KeyEvent::new(code, KeyModifiers::NONE),
                    Key::Ctrl(ch) => KeyEvent::new(KeyCode::Char(ch), KeyModifiers::CONTROL),
                };
                assert_eq!(
                    action_for(&[bnd.context], &ev),
                    Some(bnd.action),
                    "{} in {:?} is shadowed",
                    bnd.shown,
                    bnd.context
                );
            }
        }
    }
}
