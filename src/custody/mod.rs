//! Key custody: wrap keys split among custodians, backup under a wrap key, restore.
pub mod payload;
pub mod shamir;
