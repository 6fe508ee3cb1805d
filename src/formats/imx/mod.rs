//! NXP i.MX secure boot beyond the HAB4 SRK table (`formats::hab4`): HAB4 image
//! signing (IVT, boot data, CSF, CMS signatures) and AHAB (SRK tables, fuses,
//! containers). Pure: bytes, public keys, certificates and a `keys::Signer` in, bytes
//! out. Judged by spsdk's `nxpimage`/`nxpcrypto`, srktool and `openssl cms`.

pub mod ahab;
pub mod ahab_srk;
pub mod cms;
pub mod csf;
pub mod hab4_image;
pub mod ivt;
