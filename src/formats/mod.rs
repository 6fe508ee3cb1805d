//! Vendor formats: pure functions from keys, certificates and bytes to bytes. No I/O,
//! no HSM. Each is tested byte for byte against the vendor's own tool.

pub mod esp32;
pub mod hab4;
pub mod imx;
pub mod raw;
pub mod stm32;
pub mod stm32_image;
pub mod tfa;
pub mod words;
