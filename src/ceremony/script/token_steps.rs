//! The step kinds that set up a token and its objects: init-token, login, change-pin,
//! generate-key, import-key, write-object, delete-object, export-public-key. Parsing only;
//! plan checks and execution are in `plan.rs` and `execute.rs`.

use super::fields::{Fail, Fields};
use super::reader::At;
use super::*;
use crate::hsm::ObjectClass;

/// The action of a token step, or `None` when `kind` is not one of this family.
pub(super) fn parse(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Option<Action>, Fail> {
    let At { index: i, id, base } = *at;
    Ok(Some(match kind {
        "init-token" => Action::InitToken(InitToken {
            so_pin: f.string("so-pin")?,
            user_pin: f.string("user-pin")?,
        }),
        "login" => Action::Login(Login {
            user: f.user("user")?,
            pin: f.string("pin")?,
        }),
        "change-pin" => Action::ChangePin(ChangePin {
            user: f.user("user")?,
            old_pin: f.string("old-pin")?,
            new_pin: f.string("new-pin")?,
        }),
        "generate-key" => Action::GenerateKey(GenerateKey {
            algorithm: f.algorithm("algorithm")?,
            label: f.label("label")?,
            key_id: f.hex_id("key-id")?,
            exportable_under_wrap: f.opt_bool("exportable-under-wrap")?.unwrap_or(false),
        }),
        "import-key" => Action::ImportKey(ImportKey {
            label: f.label("label")?,
            key_id: f.hex_id("key-id")?,
            key_file: f.file_inside("key-file", base)?,
            passphrase: f.opt_string("passphrase")?,
        }),
        "write-object" => Action::WriteObject(WriteObject {
            label: f.label("label")?,
            object_id: f.hex_id("object-id")?,
            object_type: f.string("type")?.parse().map_err(|e: ObjectTypeError| {
                f.fail(
                    "type",
                    format!("unknown object type {:?} (expected cert or data)", e.0),
                )
            })?,
            file: f.file_inside("file", base)?,
            application: f.opt_string("application")?,
        }),
        "delete-object" => Action::DeleteObject(DeleteObject {
            label: f.label("label")?,
            class: f
                .opt_string("type")?
                .as_deref()
                .map(str::parse::<ObjectClass>)
                .transpose()
                .map_err(|e| {
                    f.fail(
                        "type",
                        format!(
                            "unknown object type {:?} (expected private, public, cert or data)",
                            e.0
                        ),
                    )
                })?,
        }),
        "export-public-key" => {
            let s = ExportPublicKey {
                key: f.label("key")?,
                pem: f.opt_file_name("pem")?,
                der: f.opt_file_name("der")?,
            };
            if s.pem.is_none() && s.der.is_none() {
                return Err(Fail(
                    format!("step[{i}] ({id}): "),
                    "export-public-key needs pem = \"FILE\" or der = \"FILE\" (or both)".into(),
                ));
            }
            Action::ExportPublicKey(s)
        }
        _ => return Ok(None),
    }))
}
