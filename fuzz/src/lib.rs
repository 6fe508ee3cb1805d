//! Entry points of the fuzz targets; see entry.rs.
#![forbid(unsafe_code)]

#[path = "entry.rs"]
mod entry;
pub use entry::*;
