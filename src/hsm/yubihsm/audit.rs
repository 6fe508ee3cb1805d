//! The device's own audit log and the force-audit option.
//!
//! With force-audit on, a YubiHSM 2 refuses operations once its log store is full, so
//! the ceremony reads the log into the transcript after each step and then marks the
//! entries read (Set Log Index). The MockHsm keeps no log: its report says so instead of
//! passing an empty log off as evidence.

use yubihsm::AuditOption;

use super::{device, limits, Error, Result, YubiHsm};

pub use crate::hsm::admin::{AuditEntry, AuditReport};

impl YubiHsm {
    /// Turn force-audit on or off (never `fix`: that cannot be undone).
    pub fn set_force_audit(&mut self, on: bool) -> Result<()> {
        let opt = if on {
            AuditOption::On
        } else {
            AuditOption::Off
        };
        self.client()?
            .set_force_audit_option(opt)
            .map_err(device("set force-audit option"))
    }

    /// Whether force-audit is on (`fix` counts as on).
    pub fn force_audit(&mut self) -> Result<bool> {
        let opt = self
            .client()?
            .get_force_audit_option()
            .map_err(device("get force-audit option"))?;
        Ok(opt != AuditOption::Off)
    }

    /// Read the audit log; with `acknowledge`, mark what was read so the store does not
    /// fill up (needed under force-audit).
    pub fn read_audit_log(&mut self, acknowledge: bool) -> Result<AuditReport> {
        let client = self.client()?;
        let log = client
            .get_log_entries()
            .map_err(device("get log entries"))?;
        let entries: Vec<AuditEntry> = log
            .entries
            .iter()
            .map(|e| AuditEntry {
                // The entry's wire form (the crate's log entry type cannot be named
                // here): the bytes the digests chain over.
                raw: hex::encode(
                    [
                        &e.item.to_be_bytes()[..],
                        &[e.cmd.to_u8()],
                        &e.length.to_be_bytes(),
                        &e.session_key.to_be_bytes(),
                        &e.target_key.to_be_bytes(),
                        &e.second_key.to_be_bytes(),
                        &[e.result.to_u8()],
                        &e.tick.to_be_bytes(),
                        e.digest.as_ref(),
                    ]
                    .concat(),
                ),
                item: e.item,
                command: format!("{:?}", e.cmd),
                length: e.length,
                session_key: e.session_key,
                target_key: e.target_key,
                second_key: e.second_key,
                result: format!("{:?}", e.result),
                tick: e.tick,
                digest: hex::encode(e.digest.as_ref()),
            })
            .collect();
        if acknowledge {
            if let Some(last) = entries.last() {
                client
                    .set_log_index(last.item)
                    .map_err(device("set log index"))?;
            }
        }
        Ok(AuditReport {
            unlogged_boot_events: log.unlogged_boot_events,
            unlogged_auth_events: log.unlogged_auth_events,
            entries,
            note: self.is_mock().then(limits::mock_audit_log),
        })
    }

    /// Refuse (one line) a step that needs the audit log as evidence on the mock.
    pub fn check_audit_log(&self) -> Result<()> {
        if self.is_mock() {
            Err(Error::Unsupported(limits::mock_audit_log()))
        } else {
            Ok(())
        }
    }
}
