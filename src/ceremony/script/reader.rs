//! Reading a script file: UTF-8 and TOML, the `[ceremony]` header, the `[roles]`, and
//! each `[[step]]`'s common fields, then dispatch by `kind` to the module of its family.
//! It settles which earlier step writes each file a step reads. It must not know the
//! fields of any one kind (those are the `*_steps` modules').

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fields::{Fail, Fields};
use super::*;

impl Action {
    /// Files the step reads, by field (for resolving against earlier outputs).
    fn file_refs_mut(&mut self) -> Vec<&mut FileRef> {
        match self {
            Action::ExportFuses(x) => match &mut x.export {
                FuseExport::Hab4 { certs, .. } | FuseExport::Ahab { certs, .. } => {
                    certs.iter_mut().collect()
                }
                FuseExport::TfaRotpk { key_file, .. } => key_file.iter_mut().collect(),
                _ => vec![],
            },
            Action::Sign(s) => {
                let mut r = vec![&mut s.input];
                if let Some(x) = s.imx.as_deref_mut() {
                    r.push(&mut x.srk_table);
                    r.extend(x.csf_cert.iter_mut());
                    r.extend(x.img_cert.iter_mut());
                }
                r
            }
            Action::IssueTbbr(t) => {
                let mut r = vec![&mut t.tb_fw, &mut t.soc_fw, &mut t.nt_fw];
                r.extend(t.tos_fw.iter_mut());
                r
            }
            Action::Verify(v) => {
                let mut r = vec![&mut v.input];
                r.extend(v.signature.iter_mut());
                r
            }
            _ => vec![],
        }
    }
}

/// Point every file a step reads at the latest earlier step that writes it.
fn resolve_refs(steps: &mut [Step]) {
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    for (i, step) in steps.iter_mut().enumerate() {
        for r in step.action.file_refs_mut() {
            r.from_step = written.get(&r.name).copied();
        }
        for (_, name) in step.action.outputs() {
            written.insert(name.to_string(), i);
        }
    }
}

/// Parse script bytes. `file` names it in errors; `base` resolves relative paths.
pub fn parse(file: &str, base: &Path, bytes: &[u8]) -> Result<Script, ScriptError> {
    let sha256 = crate::output::sha256(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| ScriptError {
        file: file.into(),
        place: String::new(),
        message: format!("not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    let table = parse_toml(file, text)?;
    let (ceremony, roles, steps, signoffs) = parse_table(table, base).map_err(|m| ScriptError {
        file: file.into(),
        place: m.0,
        message: m.1,
    })?;
    Ok(Script {
        path: PathBuf::from(file),
        sha256,
        ceremony,
        roles,
        steps,
        signoffs,
    })
}

/// The parts of a script: header, roles, steps and signed roles.
type Parts = (
    Header,
    BTreeMap<String, u32>,
    Vec<Step>,
    Option<SignedRoles>,
);

fn parse_table(table: toml::Table, base: &Path) -> Result<Parts, Fail> {
    let mut top = Fields::new(table, String::new());
    let ceremony_table = top.table("ceremony")?;
    let roles_table = top.opt_table("roles")?;
    let steps_raw = top.array_of_tables("step")?;
    top.finish()?;

    let (mut header, allowed_signers) =
        parse_header(&mut Fields::new(ceremony_table, "ceremony.".into()))?;
    let (roles, signoffs) = parse_roles(roles_table, allowed_signers, base)?;
    match &header.reviewer {
        Some(r) if !roles.contains_key(r) => {
            return Err(Fail(
                "ceremony.reviewer: ".into(),
                format!("{r:?} is not one of the script's [roles]"),
            ))
        }
        Some(_) => {}
        None if roles.contains_key("witness") => header.reviewer = Some("witness".into()),
        None => {}
    }
    if steps_raw.is_empty() {
        return Err(Fail(String::new(), "the script has no [[step]]".into()));
    }
    let mut steps = Vec::with_capacity(steps_raw.len());
    for (i, t) in steps_raw.into_iter().enumerate() {
        let mut step = parse_step(i, t, base)?;
        step.review = match step.review.take() {
            // `review = "role"`: that role, which must exist.
            Some(r) if r != DEFAULT_REVIEW => {
                if !roles.contains_key(&r) {
                    return Err(Fail(
                        format!("step[{i}] ({}).review: ", step.id),
                        format!("{r:?} is not one of the script's [roles]"),
                    ));
                }
                Some(r)
            }
            Some(_) if step.action.reviewable() => header.reviewer.clone(),
            _ => None,
        };
        steps.push(step);
    }
    resolve_refs(&mut steps);
    Ok((header, roles, steps, signoffs))
}

/// The `[ceremony]` table, and its `allowed-signers` file as written.
fn parse_header(c: &mut Fields) -> Result<(Header, Option<String>), Fail> {
    let h = Header {
        id: c.string("id")?,
        title: c.string("title")?,
        purpose: c.opt_string("purpose")?,
        version: c.integer("version")?,
        token: c.label("token")?.into(),
        reviewer: c.opt_string("reviewer")?,
        evidence_key: match c.opt_string("evidence-key")? {
            Some(_) => Some(c.label("evidence-key")?),
            None => None,
        },
    };
    let signers = c.opt_string("allowed-signers")?;
    if let Some(f) = &signers {
        c.check_plain("allowed-signers", f)?;
    }
    check_ceremony_id(&h.id).map_err(|m| c.fail("id", m))?;
    c.finish()?;
    Ok((h, signers))
}

/// The `[roles]` table, and which roles sign off with SSH keys (they need
/// `allowed-signers`, and `allowed-signers` needs one of them).
fn parse_roles(
    roles_table: Option<toml::Table>,
    allowed_signers: Option<String>,
    base: &Path,
) -> Result<(BTreeMap<String, u32>, Option<SignedRoles>), Fail> {
    let mut roles = BTreeMap::new();
    let mut signed_roles = std::collections::BTreeSet::new();
    if let Some(t) = roles_table {
        for (name, v) in t {
            let (n, signed) = parse_role(&name, v)?;
            if signed {
                signed_roles.insert(name.clone());
            }
            roles.insert(name, n);
        }
    }
    let signoffs = match (allowed_signers, signed_roles.is_empty()) {
        (Some(f), false) => Some(SignedRoles {
            allowed_signers: base.join(f),
            roles: signed_roles,
        }),
        (None, true) => None,
        (None, false) => {
            let r: Vec<&str> = signed_roles.iter().map(String::as_str).collect();
            return Err(Fail(
                "ceremony: ".into(),
                format!(
                    "missing field allowed-signers: role {} signs with SSH keys; name the OpenSSH allowed_signers file that holds them",
                    r.join(", ")
                ),
            ));
        }
        (Some(_), true) => {
            return Err(Fail(
                "ceremony.allowed-signers: ".into(),
                "no role signs with an SSH key: mark one [roles.NAME] signed = true, or leave allowed-signers out".into(),
            ))
        }
    };
    Ok((roles, signoffs))
}

/// One `[roles]` entry: `witness = 2`, or `[roles.witness] count = 2, signed = true`.
fn parse_role(name: &str, v: toml::Value) -> Result<(u32, bool), Fail> {
    let count = |n: i64, place: String| match u32::try_from(n) {
        Ok(n @ 1..=16) => Ok(n),
        _ => Err(Fail(
            place,
            "expected how many people sign off in this role (1 to 16)".into(),
        )),
    };
    match v {
        toml::Value::Integer(n) => Ok((count(n, format!("roles.{name}: "))?, false)),
        toml::Value::Table(t) => {
            let mut f = Fields::new(t, format!("roles.{name}."));
            let n = match f.take("count") {
                None => 1,
                Some(toml::Value::Integer(n)) => count(n, format!("roles.{name}.count: "))?,
                Some(_) => {
                    return Err(f.fail(
                        "count",
                        "expected how many people sign off in this role (1 to 16)".into(),
                    ))
                }
            };
            let signed = f.opt_bool("signed")?.unwrap_or(false);
            f.finish()?;
            Ok((n, signed))
        }
        _ => Err(Fail(
            format!("roles.{name}: "),
            "expected how many people sign off in this role (1 to 16), or a table with count and signed".into(),
        )),
    }
}

/// Parse TOML into a table; syntax errors carry `LINE:COL`.
pub fn parse_toml(file: &str, text: &str) -> Result<toml::Table, ScriptError> {
    text.parse::<toml::Table>().map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ScriptError {
            file: format!("{file}:{line}:{col}"),
            place: String::new(),
            message: format!("malformed TOML: {}", e.message().trim()),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

/// The placeholder a step's `review` holds until the script's roles are known.
const DEFAULT_REVIEW: &str = "\u{0}default";

fn parse_step(i: usize, t: toml::Table, base: &Path) -> Result<Step, Fail> {
    // The id first, so every later error can name the step.
    let id = match t.get("id") {
        Some(toml::Value::String(s)) if valid_id(s) => s.clone(),
        Some(toml::Value::String(s)) => {
            return Err(Fail(
                format!("step[{i}].id: "),
                format!("{s:?} is not a valid step id (letters, digits, '-', '_', '.')"),
            ))
        }
        Some(_) => return Err(Fail(format!("step[{i}].id: "), "expected a string".into())),
        None => return Err(Fail(format!("step[{i}]: "), "missing field id".into())),
    };
    let mut f = Fields::new(t, format!("step[{i}] ({id})."));
    f.seen("id");
    let kind = f.string("kind")?;
    let title = f.opt_string("title")?;
    let description = f.opt_string("description")?;
    let sign_off = f.opt_string_list("sign-off")?.unwrap_or_default();
    // Resolved against the roles once the whole script is read.
    let review = match f.take("review") {
        None | Some(toml::Value::Boolean(true)) => Some(DEFAULT_REVIEW.to_string()),
        Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::String(r)) if r != DEFAULT_REVIEW => Some(r),
        Some(v) => {
            return Err(f.fail(
                "review",
                format!(
                    "expected false, true or a role name, found {}",
                    v.type_str()
                ),
            ))
        }
    };
    let at = At {
        index: i,
        id: &id,
        base,
    };
    let action = parse_action(&mut f, &kind, &at)?;
    f.finish()?;
    Ok(Step {
        id,
        title,
        description,
        sign_off,
        review,
        action,
    })
}

/// A ceremony id names the console's out directory (`OUT/<id>`): one plain directory
/// name, nothing that climbs out or hides.
fn check_ceremony_id(id: &str) -> Result<(), String> {
    let bad = id.is_empty()
        || id == "."
        || id == ".."
        || id.len() > 128
        || id.contains(['/', '\\'])
        || id
            .chars()
            .any(|c| c.is_control() || crate::hsm::names::deceptive(c));
    if bad {
        return Err(format!(
            "{id:?} must be one plain directory name (not empty, no '/', '\\', \"..\", control, bidi or zero-width characters, at most 128 bytes)"
        ));
    }
    Ok(())
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where a step is: its index and id (for step-level errors) and the directory its
/// relative paths resolve against.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub index: usize,
    pub id: &'a str,
    pub base: &'a Path,
}

/// The step's action, read by the module of its kind's family.
type Family = fn(&mut Fields, &str, &At<'_>) -> Result<Option<Action>, Fail>;

fn parse_action(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Action, Fail> {
    match kind {
        "instruction" => {
            return Ok(Action::Instruction(Instruction {
                text: f.string("text")?,
            }))
        }
        "co-sign" => {
            return Ok(Action::CoSign(CoSign {
                text: f.opt_string("text")?,
            }))
        }
        _ => {}
    }
    let families: [Family; 6] = [
        super::token_steps::parse,
        super::pki_steps::parse,
        super::fuse_steps::parse,
        super::sign_steps::parse,
        super::admin_steps::parse,
        super::custody_steps::parse,
    ];
    for family in families {
        if let Some(action) = family(f, kind, at)? {
            return Ok(action);
        }
    }
    Err(f.fail(
        "kind",
        format!(
            "unknown step kind {kind:?} (expected one of {})",
            KINDS.join(", ")
        ),
    ))
}
