//! One initialized PKCS#11 context per module file, shared by every token opened on it
//! and finalized by its last user. Knows nothing of slots, sessions or objects.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::errors::ck;
use crate::hsm::{Error, Result};

/// One initialized context per module file, shared by every token opened on it: a second
/// C_Initialize would fail, and finalizing under another user would end its sessions.
pub(super) static CONTEXTS: std::sync::Mutex<Vec<(String, Pkcs11, usize)>> =
    std::sync::Mutex::new(Vec::new());

pub(super) fn contexts() -> std::sync::MutexGuard<'static, Vec<(String, Pkcs11, usize)>> {
    // A panic while holding the lock leaves the list consistent (push/remove are atomic).
    CONTEXTS.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn acquire(module: &std::path::Path) -> Result<Pkcs11> {
    let key = module.display().to_string();
    let mut list = contexts();
    if let Some(entry) = list.iter_mut().find(|(m, ..)| *m == key) {
        entry.2 += 1;
        return Ok(entry.1.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| Error::Pkcs11 {
        what: format!("cannot load PKCS#11 module {key}"),
        source: Box::new(e),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck(&format!("initializing {key}"), e)),
    }
    list.push((key, ctx.clone(), 1));
    Ok(ctx)
}

pub(super) fn release(module: &str) {
    let mut list = contexts();
    if let Some(i) = list.iter().position(|(m, ..)| m == module) {
        list[i].2 -= 1;
        if list[i].2 == 0 {
            let (_, ctx, _) = list.remove(i);
            let _ = ctx.finalize();
        }
    }
}

/// Finalize and initialize `module` again, so its slot list shows tokens other processes
/// made since (SoftHSM reads its token directory only in C_Initialize: a token another
/// run just initialized is otherwise invisible, and its label looks free). Only when the
/// caller (holding `ctx`) is the module's one user in this process, since it ends every
/// session on it; `Ok(false)` when others use it too and nothing was done.
pub(super) fn reinitialize(module: &str, ctx: &Pkcs11) -> Result<bool> {
    let list = contexts();
    if !list.iter().any(|(m, _, users)| m == module && *users == 1) {
        return Ok(false);
    }
    // The library stays loaded (`ctx` holds it); only its state starts over.
    let _ = ctx.clone().finalize();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(true),
        Err(e) => Err(ck(&format!("initializing {module} again"), e)),
    }
}
