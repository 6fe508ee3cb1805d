//! The answers file: what a person would type at the console, for a headless run.
//!
//! ```toml
//! [secrets]                       # logical secret name → source
//! so = "file:rehearsal-secrets/so.pin"   # relative to this file's directory
//! user = "env:USER_PIN"
//!
//! [[confirm]]                     # destructive steps (init-token, delete-object)
//! step = "init"
//!
//! [[sign-off]]
//! step = "gen-p256"
//! role = "witness"
//! name = "Alice Example"
//! ```
//!
//! Parsed as strictly as a script. Whether every needed answer is present is checked by
//! `plan::check_answers` before any token is opened.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::script::{parse_toml, Fail, Fields, ScriptError};
use crate::secret::SecretSource;

#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub path: Option<PathBuf>,
    pub sha256: Option<[u8; 32]>,
    pub secrets: BTreeMap<String, SecretSource>,
    pub confirms: BTreeSet<String>,
    pub sign_offs: Vec<SignOffAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffAnswer {
    pub step: String,
    pub role: String,
    pub name: String,
}

impl Answers {
    /// Names signing `step` in `role`, in file order.
    pub fn names_for(&self, step: &str, role: &str) -> Vec<&str> {
        self.sign_offs
            .iter()
            .filter(|s| s.step == step && s.role == role)
            .map(|s| s.name.as_str())
            .collect()
    }
}

pub fn load(path: &Path) -> Result<Answers, ScriptError> {
    let (file, base, bytes) = super::script::read_source(path)?;
    let mut a = parse(&file, &base, &bytes)?;
    a.path = Some(path.to_path_buf());
    Ok(a)
}

pub fn parse(file: &str, base: &Path, bytes: &[u8]) -> Result<Answers, ScriptError> {
    let err = |f: Fail| ScriptError {
        file: file.into(),
        place: f.0,
        message: f.1,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| err(Fail(String::new(), "not UTF-8".into())))?;
    let table = parse_toml(file, text)?;
    let mut top = Fields::new(table, String::new());
    let secrets_t = top.opt_table("secrets").map_err(err)?;
    let confirms_t = top.array_of_tables("confirm").map_err(err)?;
    let signs_t = top.array_of_tables("sign-off").map_err(err)?;
    top.finish().map_err(err)?;

    let mut a = Answers {
        sha256: Some(crate::output::sha256(bytes)),
        ..Answers::default()
    };
    for (name, v) in secrets_t.unwrap_or_default() {
        let place = format!("secrets.{name}: ");
        let s = v.as_str().ok_or_else(|| {
            err(Fail(
                place.clone(),
                "expected a source string (env:NAME, file:PATH or prompt)".into(),
            ))
        })?;
        let src = SecretSource::parse(s).map_err(|e| err(Fail(place.clone(), e.to_string())))?;
        let src = match src {
            SecretSource::File(p) if p.is_relative() => SecretSource::File(base.join(p)),
            other => other,
        };
        a.secrets.insert(name, src);
    }
    for (i, t) in confirms_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("confirm[{i}]."));
        let step = f.string("step").map_err(err)?;
        f.finish().map_err(err)?;
        a.confirms.insert(step);
    }
    for (i, t) in signs_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("sign-off[{i}]."));
        let s = SignOffAnswer {
            step: f.string("step").map_err(err)?,
            role: f.string("role").map_err(err)?,
            name: f.string("name").map_err(err)?,
        };
        f.finish().map_err(err)?;
        if s.name.trim().is_empty() || s.name.chars().any(|c| c.is_control()) {
            return Err(err(f.fail("name", "must be a person's name".into())));
        }
        if a.sign_offs.contains(&s) {
            return Err(err(f.fail(
                "name",
                format!(
                    "{:?} already signs off step {:?} as {}",
                    s.name, s.step, s.role
                ),
            )));
        }
        a.sign_offs.push(s);
    }
    Ok(a)
}
