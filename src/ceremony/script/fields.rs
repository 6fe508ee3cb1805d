//! Typed readers of one TOML table's fields, each error naming the exact field path, and
//! `finish`, which rejects a field nobody read. They know value shapes (strings, labels,
//! hex ids, file names and references), never a step kind.

use std::path::{Path, PathBuf};

use super::FileRef;
use crate::hsm::names::{Label, LabelError, ObjectId};
use crate::hsm::UserType;
use crate::keys::KeyAlgorithm;

/// (place, message) before the file name is attached.
#[derive(Debug)]
pub(crate) struct Fail(pub String, pub String);

/// A TOML table read field by field; `finish` rejects whatever was not read.
pub(crate) struct Fields {
    table: toml::Table,
    prefix: String,
    seen: Vec<String>,
}

impl Fields {
    pub(crate) fn new(table: toml::Table, prefix: String) -> Self {
        Fields {
            table,
            prefix,
            seen: Vec::new(),
        }
    }

    pub(crate) fn fail(&self, field: &str, msg: String) -> Fail {
        Fail(format!("{}{field}: ", self.prefix), msg)
    }

    pub(super) fn seen(&mut self, field: &str) {
        self.seen.push(field.to_string());
    }

    pub(crate) fn take(&mut self, field: &str) -> Option<toml::Value> {
        self.seen(field);
        self.table.get(field).cloned()
    }

    pub(crate) fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err(self.fail(
                field,
                format!("expected true or false, found {}", v.type_str()),
            )),
        }
    }

    pub(super) fn opt_u32(&mut self, field: &str) -> Result<Option<u32>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => u32::try_from(n)
                .map(Some)
                .map_err(|_| self.fail(field, "expected a 32-bit integer or \"0x…\" hex".into())),
            Some(toml::Value::String(h)) => h
                .strip_prefix("0x")
                .and_then(|d| u32::from_str_radix(d, 16).ok())
                .map(Some)
                .ok_or_else(|| self.fail(field, format!("{h:?} is not a 32-bit \"0x…\" value"))),
            Some(_) => Err(self.fail(field, "expected a 32-bit integer or \"0x…\" hex".into())),
        }
    }

    /// A label read a second time (after `opt_string` saw it was there).
    pub(super) fn relabel(&mut self, field: &str) -> Result<Label, Fail> {
        self.label(field)
    }

    /// 1 to `max` key labels.
    pub(super) fn labels(&mut self, field: &str, max: usize) -> Result<Vec<Label>, Fail> {
        let v = self.opt_string_list(field)?.unwrap_or_default();
        if v.is_empty() || v.len() > max {
            return Err(self.fail(
                field,
                format!("expected 1 to {max} key labels, got {}", v.len()),
            ));
        }
        v.iter()
            .enumerate()
            .map(|(k, s)| {
                s.parse::<Label>()
                    .map_err(|e| self.fail(&format!("{field}[{k}]"), e.to_string()))
            })
            .collect()
    }

    pub(super) fn sign_format(&mut self, field: &str) -> Result<crate::signing::Format, Fail> {
        let s = self.string(field)?;
        crate::signing::Format::parse(&s).map_err(|_| {
            self.fail(
                field,
                format!(
                    "unknown format {s:?} (expected {})",
                    crate::signing::Format::names()
                ),
            )
        })
    }

    pub(crate) fn check_plain(&self, field: &str, s: &str) -> Result<(), Fail> {
        // A relative path below the script's directory (or an out-dir file name).
        let ok = !s.is_empty()
            && !s.starts_with(['/', '.'])
            && !s.contains('\\')
            && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && !s.chars().any(|c| c.is_control());
        if ok {
            Ok(())
        } else {
            Err(self.fail(
                field,
                format!("{s:?} must be an earlier step's output or a relative path below the script's directory"),
            ))
        }
    }

    /// A file next to the script: a relative path below the script's directory that
    /// stays there once symlinks are followed (a script must not read `/etc/…` or a
    /// link out of its directory onto a token).
    pub(super) fn file_inside(&mut self, field: &str, base: &Path) -> Result<PathBuf, Fail> {
        let s = self.string(field)?;
        let plain = !s.is_empty()
            && !s.starts_with(['/', '.'])
            && !s.contains('\\')
            && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && !s.chars().any(|c| c.is_control());
        if !plain {
            return Err(self.fail(
                field,
                format!("{s:?} must be a relative path below the script's directory"),
            ));
        }
        let path = base.join(&s);
        // A file that does not exist yet is reported by `check` when it reads it.
        if let (Ok(real), Ok(dir)) = (path.canonicalize(), base.canonicalize()) {
            if !real.starts_with(&dir) {
                return Err(self.fail(
                    field,
                    format!(
                        "{s:?} leads out of the script's directory (to {}) through a symbolic link",
                        real.display()
                    ),
                ));
            }
        }
        Ok(path)
    }

    pub(super) fn check_ref(&self, field: &str, s: &str, base: &Path) -> Result<FileRef, Fail> {
        self.check_plain(field, s)?;
        Ok(FileRef {
            name: s.to_string(),
            beside_script: base.join(s),
            from_step: None,
        })
    }

    pub(super) fn file_ref(&mut self, field: &str, base: &Path) -> Result<FileRef, Fail> {
        let s = self.string(field)?;
        self.check_ref(field, &s, base)
    }

    pub(super) fn opt_file_ref(
        &mut self,
        field: &str,
        base: &Path,
    ) -> Result<Option<FileRef>, Fail> {
        match self.opt_string(field)? {
            None => Ok(None),
            Some(s) => self.check_ref(field, &s, base).map(Some),
        }
    }

    pub(crate) fn opt_string(&mut self, field: &str) -> Result<Option<String>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.fail(field, format!("expected a string, found {}", v.type_str()))),
        }
    }

    pub(super) fn missing(&self, field: &str) -> Fail {
        let place = self.prefix.trim_end_matches('.');
        let place = if place.is_empty() {
            String::new()
        } else {
            format!("{place}: ")
        };
        Fail(place, format!("missing field {field}"))
    }

    pub(crate) fn string(&mut self, field: &str) -> Result<String, Fail> {
        self.opt_string(field)?.ok_or_else(|| self.missing(field))
    }

    pub(crate) fn integer(&mut self, field: &str) -> Result<i64, Fail> {
        match self.take(field) {
            None => Err(self.missing(field)),
            Some(toml::Value::Integer(n)) => Ok(n),
            Some(v) => Err(self.fail(
                field,
                format!("expected an integer, found {}", v.type_str()),
            )),
        }
    }

    pub(crate) fn opt_string_list(&mut self, field: &str) -> Result<Option<Vec<String>>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::String(s) => Ok(s),
                    v => Err(self.fail(
                        &format!("{field}[{i}]"),
                        format!("expected a string, found {}", v.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.fail(
                field,
                format!("expected an array of strings, found {}", v.type_str()),
            )),
        }
    }

    /// A list of strings or integers (YubiHSM domains: `[1, 2]` or `["all"]`), as strings.
    pub(crate) fn opt_scalar_list(&mut self, field: &str) -> Result<Option<Vec<String>>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(vec![s])),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::String(s) => Ok(s),
                    toml::Value::Integer(n) => Ok(n.to_string()),
                    v => Err(self.fail(
                        &format!("{field}[{i}]"),
                        format!("expected a number or string, found {}", v.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.fail(field, format!("expected an array, found {}", v.type_str()))),
        }
    }

    pub(super) fn user(&mut self, field: &str) -> Result<UserType, Fail> {
        match self.opt_string(field)?.as_deref() {
            None | Some("user") => Ok(UserType::User),
            Some("so") => Ok(UserType::So),
            Some(other) => Err(self.fail(
                field,
                format!("unknown user {other:?} (expected user or so)"),
            )),
        }
    }

    pub(super) fn algorithm(&mut self, field: &str) -> Result<KeyAlgorithm, Fail> {
        let s = self.string(field)?;
        KeyAlgorithm::parse(&s).ok_or_else(|| {
            let all: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.name()).collect();
            self.fail(
                field,
                format!("unknown algorithm {s:?} (expected {})", all.join(", ")),
            )
        })
    }

    pub(super) fn label(&mut self, field: &str) -> Result<Label, Fail> {
        let s = self.string(field)?;
        s.parse()
            .map_err(|e: LabelError| self.fail(field, e.to_string()))
    }

    pub(super) fn hex_id(&mut self, field: &str) -> Result<ObjectId, Fail> {
        let s = self.string(field)?;
        s.parse().map_err(|_| {
            self.fail(
                field,
                format!("{s:?} is not an object id in hex (1 to 32 bytes, e.g. \"1001\")"),
            )
        })
    }

    pub(super) fn opt_file_name(&mut self, field: &str) -> Result<Option<String>, Fail> {
        let Some(s) = self.opt_string(field)? else {
            return Ok(None);
        };
        let plain = !s.is_empty()
            && s != "."
            && s != ".."
            && !s.starts_with('.')
            && !s.contains(['/', '\\'])
            && !s.chars().any(|c| c.is_control());
        if !plain {
            return Err(self.fail(
                field,
                format!("{s:?} must be a plain file name (it is written into the out dir)"),
            ));
        }
        Ok(Some(s))
    }

    pub(crate) fn table(&mut self, field: &str) -> Result<toml::Table, Fail> {
        self.opt_table(field)?
            .ok_or_else(|| Fail(String::new(), format!("missing [{field}] table")))
    }

    pub(crate) fn opt_table(&mut self, field: &str) -> Result<Option<toml::Table>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(v) => Err(self.fail(field, format!("expected a table, found {}", v.type_str()))),
        }
    }

    pub(crate) fn array_of_tables(&mut self, field: &str) -> Result<Vec<toml::Table>, Fail> {
        match self.take(field) {
            None => Ok(vec![]),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::Table(t) => Ok(t),
                    v => Err(self.fail(
                        &format!("{field}[{i}]"),
                        format!("expected a table, found {}", v.type_str()),
                    )),
                })
                .collect(),
            Some(v) => Err(self.fail(
                field,
                format!("expected [[{field}]] tables, found {}", v.type_str()),
            )),
        }
    }

    /// Reject any field that was not read.
    pub(crate) fn finish(&self) -> Result<(), Fail> {
        if let Some(k) = self.table.keys().find(|k| !self.seen.contains(k)) {
            return Err(self.fail(k, "unknown field".into()));
        }
        Ok(())
    }
}
