//! The NXP HAB4 PKI tree as hab4_pki_tree.sh lays it out: CA1 → SRK1..4 → CSF/IMG,
//! its names (`SRK1_sha256_4096_65537_v3_ca`), file names (`…_crt.pem`/`.der`), the
//! serial counter (0x12345678, in the order SRK1, CSF1_1, IMG1_1, SRK2, …) and the
//! signature scheme (sha256WithRSAEncryption or ecdsa-with-SHA256).
//!
//! Names and plans only: issuing is `pki::issue`'s, opening keys and writing files the
//! ceremony's.

use super::{Error, Profile};
use crate::keys::{Curve, HashAlg, KeyAlgorithm, PublicKey, SignScheme};

/// The first serial `openssl ca` takes from the script's `serial` file.
pub const FIRST_SERIAL: u64 = 0x1234_5678;

/// Key type of a tree, as it appears in names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA with this modulus size (the script names every RSA key `_65537`).
    Rsa(usize),
    /// EC on this curve (P-256, P-384 or P-521).
    Ec(Curve),
}

impl KeyType {
    /// The tree's key type for a `generate-key` algorithm.
    pub fn of_algorithm(alg: KeyAlgorithm) -> Self {
        match (alg.rsa_bits(), alg.curve()) {
            (Some(bits), _) => KeyType::Rsa(bits),
            (None, Some(c)) => KeyType::Ec(c),
            // Every KeyAlgorithm is RSA or EC; P-256 is a harmless placeholder.
            (None, None) => KeyType::Ec(Curve::P256),
        }
    }

    /// The tree's key type for an existing key; refuses what HAB4 cannot hold (RSA other
    /// than 1024–4096 bits in steps of 1024, other curves).
    pub fn of_key(key: &PublicKey) -> Result<Self, Error> {
        match key {
            PublicKey::Rsa { .. } => match key.bits() {
                b @ (1024 | 2048 | 3072 | 4096) => Ok(KeyType::Rsa(b)),
                b => Err(Error::Unsupported(format!(
                    "HAB4 RSA keys are 1024, 2048, 3072 or 4096 bits, not {b}"
                ))),
            },
            PublicKey::Ec { curve, .. } => match curve {
                Curve::P256 | Curve::P384 | Curve::P521 => Ok(KeyType::Ec(*curve)),
                c => Err(Error::Unsupported(format!(
                    "HAB4 EC keys are P-256, P-384 or P-521, not {}",
                    c.name()
                ))),
            },
        }
    }

    /// The middle of every name: `sha256_4096_65537`, `sha256_prime256v1`.
    pub fn name_part(self) -> String {
        match self {
            KeyType::Rsa(bits) => format!("sha256_{bits}_65537"),
            KeyType::Ec(c) => format!(
                "sha256_{}",
                match c {
                    Curve::P384 => "secp384r1",
                    Curve::P521 => "secp521r1",
                    _ => "prime256v1",
                }
            ),
        }
    }

    /// hab4_pki_tree.sh signs with `-md sha256` whatever the key.
    pub fn scheme(self) -> SignScheme {
        match self {
            KeyType::Rsa(_) => SignScheme::RsaPkcs1(HashAlg::Sha256),
            KeyType::Ec(_) => SignScheme::Ecdsa(HashAlg::Sha256),
        }
    }
}

/// One certificate of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// CA1, the self-signed root of the tree.
    Ca,
    /// SRK n (1–4), issued by CA1.
    Srk(u8),
    /// CSF key of SRK n.
    Csf(u8),
    /// IMG key of SRK n.
    Img(u8),
}

/// Names of one certificate of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertNames {
    /// The subject CN, also the natural key label.
    pub common_name: String,
    /// File stem: `SRK1_sha256_4096_65537_v3_ca_crt` (add `.pem` / `.der`).
    pub file_stem: String,
}

impl CertNames {
    /// The PEM certificate's file name (`…_crt.pem`).
    pub fn pem(&self) -> String {
        format!("{}.pem", self.file_stem)
    }
    /// The DER certificate's file name (`…_crt.der`).
    pub fn der(&self) -> String {
        format!("{}.der", self.file_stem)
    }
    /// The script's private key file stem (`…_key`), for operators who compare.
    pub fn key_stem(&self) -> String {
        format!("{}_key", self.common_name)
    }
}

fn check_index(i: u8) -> Result<(), Error> {
    if (1..=4).contains(&i) {
        Ok(())
    } else {
        Err(Error::Input {
            what: "SRK index".into(),
            msg: format!("{i} is outside 1–4"),
        })
    }
}

/// Names for `role` in a tree of `key_type`; `srk_ca` is the script's "SRKs are CA
/// certificates" answer (CSF/IMG certificates exist only when it is true).
pub fn names(role: Role, key_type: KeyType, srk_ca: bool) -> Result<CertNames, Error> {
    let kt = key_type.name_part();
    let cn = match role {
        Role::Ca => format!("CA1_{kt}_v3_ca"),
        Role::Srk(i) => {
            check_index(i)?;
            format!("SRK{i}_{kt}_{}", if srk_ca { "v3_ca" } else { "v3_usr" })
        }
        Role::Csf(i) | Role::Img(i) => {
            check_index(i)?;
            if !srk_ca {
                return Err(Error::Input {
                    what: "HAB4 tree".into(),
                    msg: "CSF and IMG certificates need CA SRKs (non-CA SRKs sign directly)".into(),
                });
            }
            let p = if matches!(role, Role::Csf(_)) {
                "CSF"
            } else {
                "IMG"
            };
            format!("{p}{i}_1_{kt}_v3_usr")
        }
    };
    Ok(CertNames {
        file_stem: format!("{cn}_crt"),
        common_name: cn,
    })
}

/// The subject Name of `role`, encoded as the script's OpenSSL writes it: CA1 comes
/// from `openssl req`, whose CST configuration yields a T61String CN; every other
/// certificate from `openssl ca`, which writes UTF8String.
pub fn subject(
    role: Role,
    key_type: KeyType,
    srk_ca: bool,
) -> Result<x509_cert::name::Name, Error> {
    let cn = names(role, key_type, srk_ca)?.common_name;
    let profile = if role == Role::Ca {
        Profile::Hab4Ca
    } else {
        Profile::Hab4Img
    };
    super::subject_for(profile, &cn)
}

/// A serial like the one `openssl req -x509` gives CA1: 20 random bytes, positive.
pub fn ca1_serial() -> Vec<u8> {
    use rand_core::RngCore;
    let mut b = vec![0u8; 20];
    rand_core::OsRng.fill_bytes(&mut b);
    b[0] = (b[0] & 0x7f) | 0x01;
    b
}

/// One entry of the issuance plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Which certificate of the tree.
    pub role: Role,
    /// Its subject CN and file names.
    pub names: CertNames,
    /// The extensions it gets.
    pub profile: Profile,
    /// `None` for CA1: `openssl req -x509` picks a random serial.
    pub serial: Option<u64>,
    /// Who issues it (`None`: self-signed).
    pub issuer: Option<Role>,
}

/// The whole tree in issuance order with serials, as hab4_pki_tree.sh makes it.
pub fn plan(num_srk: u8, key_type: KeyType, srk_ca: bool) -> Result<Vec<Planned>, Error> {
    if !(1..=4).contains(&num_srk) {
        return Err(Error::Input {
            what: "number of SRKs".into(),
            msg: format!("{num_srk} is outside 1–4"),
        });
    }
    let mut out = vec![Planned {
        role: Role::Ca,
        names: names(Role::Ca, key_type, srk_ca)?,
        profile: Profile::Hab4Ca,
        serial: None,
        issuer: None,
    }];
    let mut serial = FIRST_SERIAL;
    for i in 1..=num_srk {
        let mut push = |role: Role, profile: Profile, issuer: Role| -> Result<(), Error> {
            out.push(Planned {
                role,
                names: names(role, key_type, srk_ca)?,
                profile,
                serial: Some(serial),
                issuer: Some(issuer),
            });
            serial += 1;
            Ok(())
        };
        push(Role::Srk(i), Profile::Hab4Srk { ca: srk_ca }, Role::Ca)?;
        if srk_ca {
            push(Role::Csf(i), Profile::Hab4Csf, Role::Srk(i))?;
            push(Role::Img(i), Profile::Hab4Img, Role::Srk(i))?;
        }
    }
    Ok(out)
}

/// The script's validity: `duration` years of 365 days.
pub fn validity_days(years: u32) -> u32 {
    years.saturating_mul(365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_script() {
        let rsa = KeyType::Rsa(4096);
        assert_eq!(
            names(Role::Srk(1), rsa, true).unwrap().pem(),
            "SRK1_sha256_4096_65537_v3_ca_crt.pem"
        );
        assert_eq!(
            names(Role::Csf(1), rsa, true).unwrap().der(),
            "CSF1_1_sha256_4096_65537_v3_usr_crt.der"
        );
        assert_eq!(
            names(Role::Img(3), rsa, true).unwrap().common_name,
            "IMG3_1_sha256_4096_65537_v3_usr"
        );
        assert_eq!(
            names(Role::Ca, KeyType::Ec(Curve::P256), true)
                .unwrap()
                .common_name,
            "CA1_sha256_prime256v1_v3_ca"
        );
        assert_eq!(
            names(Role::Srk(2), KeyType::Ec(Curve::P521), false)
                .unwrap()
                .common_name,
            "SRK2_sha256_secp521r1_v3_usr"
        );
        assert!(names(Role::Srk(5), rsa, true).is_err());
        assert!(names(Role::Csf(1), rsa, false).is_err());
    }

    #[test]
    fn serials_count_in_script_order() {
        let p = plan(2, KeyType::Rsa(2048), true).unwrap();
        let order: Vec<_> = p.iter().map(|c| (c.role, c.serial)).collect();
        assert_eq!(
            order,
            vec![
                (Role::Ca, None),
                (Role::Srk(1), Some(0x12345678)),
                (Role::Csf(1), Some(0x12345679)),
                (Role::Img(1), Some(0x1234567a)),
                (Role::Srk(2), Some(0x1234567b)),
                (Role::Csf(2), Some(0x1234567c)),
                (Role::Img(2), Some(0x1234567d)),
            ]
        );
        let n = plan(3, KeyType::Rsa(2048), false).unwrap();
        assert_eq!(n.len(), 4);
        assert_eq!(n[3].serial, Some(0x1234567a));
        assert_eq!(n[3].profile, Profile::Hab4Srk { ca: false });
        assert!(plan(5, KeyType::Rsa(2048), true).is_err());
    }
}
