//! Checking many ECDSA signatures made by one key (a signing batch) quickly.
//!
//! SEC 1 verification computes R = u1·G + u2·Q and compares x(R) mod n with r. The ecdsa
//! crate does two general scalar multiplications per check. Here both bases are fixed,
//! so each gets a table of j·256^i·B (8-bit windows, j = 1..255): a check is then one
//! point addition per non-zero byte of u1 and u2, several times cheaper. Building
//! Q's table costs about as much as a few dozen checks, so it pays only for batches.
//!
//! Everything here is public (the key, the digest, the signature): variable time is
//! fine. The answer must equal the ecdsa crate's `verify_prehash`; the tests below hold
//! the two together over valid, altered and malformed signatures.

use std::sync::{Arc, OnceLock};

use super::{Curve, PublicKey, SignScheme};

use elliptic_curve::group::Group;
use elliptic_curve::ops::{Invert, Reduce};
use elliptic_curve::point::AffineCoordinates;

/// Table entries per window: the multiples 1..=255 of the window's base.
const PER_WINDOW: usize = 255;

macro_rules! curve_tables {
    ($name:ident, $krate:ident, $uint:ty, $bytes:expr) => {
        /// Fixed-base tables of the generator and one public key.
        pub struct $name {
            g: Arc<Vec<$krate::ProjectivePoint>>,
            q: Vec<$krate::ProjectivePoint>,
        }

        impl $name {
            /// Tables for the SEC 1 point `sec1`; `None` if it is not a valid point.
            pub fn new(sec1: &[u8]) -> Option<Self> {
                static G: OnceLock<Arc<Vec<$krate::ProjectivePoint>>> = OnceLock::new();
                let key = $krate::PublicKey::from_sec1_bytes(sec1).ok()?;
                let g = G
                    .get_or_init(|| Arc::new(Self::table($krate::ProjectivePoint::generator())))
                    .clone();
                Some($name {
                    g,
                    q: Self::table(key.to_projective()),
                })
            }

            /// j·256^i·base for each byte position i and j = 1..=255, at i·255 + j − 1.
            /// Projective points: p256 0.13 has no batch inversion, and one inversion
            /// per entry would cost more than the full (not mixed) additions it saves.
            fn table(base: $krate::ProjectivePoint) -> Vec<$krate::ProjectivePoint> {
                let mut points = Vec::with_capacity($bytes * PER_WINDOW);
                let mut b = base;
                for _ in 0..$bytes {
                    let mut acc = b;
                    points.push(acc);
                    for _ in 1..PER_WINDOW {
                        acc += b;
                        points.push(acc);
                    }
                    b = acc + b;
                }
                points
            }

            fn add_multiple(
                table: &[$krate::ProjectivePoint],
                k: &$krate::Scalar,
                acc: &mut $krate::ProjectivePoint,
            ) {
                let repr: $krate::FieldBytes = (*k).into();
                // Big-endian bytes: the last one is position 0.
                for (i, byte) in repr.iter().rev().enumerate() {
                    if *byte != 0 {
                        *acc += &table[i * PER_WINDOW + usize::from(*byte) - 1];
                    }
                }
            }

            /// Whether `rs` (fixed-width r‖s) is a valid signature over `digest`, which
            /// must be exactly one field element long (SHA-256 for P-256, SHA-384 for
            /// P-384); anything else is refused.
            pub fn verify(&self, digest: &[u8], rs: &[u8]) -> bool {
                if digest.len() != $bytes {
                    return false;
                }
                let Ok(sig) = $krate::ecdsa::Signature::from_slice(rs) else {
                    return false;
                };
                let (r, s) = sig.split_scalars();
                let z = <$krate::Scalar as Reduce<$uint>>::reduce_bytes(
                    $krate::FieldBytes::from_slice(digest),
                );
                let w = *s.invert_vartime();
                let u1 = z * w;
                let u2 = *r * w;
                let mut acc = $krate::ProjectivePoint::identity();
                Self::add_multiple(&self.g, &u1, &mut acc);
                Self::add_multiple(&self.q, &u2, &mut acc);
                if bool::from(acc.is_identity()) {
                    return false;
                }
                let x = acc.to_affine().x();
                <$krate::Scalar as Reduce<$uint>>::reduce_bytes(&x) == *r
            }
        }
    };
}

curve_tables!(P256Tables, p256, elliptic_curve::bigint::U256, 32);
curve_tables!(P384Tables, p384, elliptic_curve::bigint::U384, 48);

/// Tables for one public key, where its curve has them.
pub enum Tables {
    /// Tables for a P-256 key.
    P256(P256Tables),
    /// Tables for a P-384 key.
    P384(P384Tables),
}

impl Tables {
    /// Tables for `key` if it is a P-256 or P-384 key; `None` for anything else.
    pub fn for_key(key: &PublicKey) -> Option<Self> {
        match key {
            PublicKey::Ec {
                curve: Curve::P256,
                point,
            } => P256Tables::new(point).map(Tables::P256),
            PublicKey::Ec {
                curve: Curve::P384,
                point,
            } => P384Tables::new(point).map(Tables::P384),
            _ => None,
        }
    }

    /// The check of an ECDSA signature (fixed r‖s) whose digest is one field element
    /// long; `None` when the tables do not apply and the general check must answer.
    pub fn verify(&self, scheme: SignScheme, digest: &[u8], rs: &[u8]) -> Option<bool> {
        let SignScheme::Ecdsa(_) = scheme else {
            return None;
        };
        match self {
            Tables::P256(t) if digest.len() == 32 => Some(t.verify(digest, rs)),
            Tables::P384(t) if digest.len() == 48 => Some(t.verify(digest, rs)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};

    /// A small deterministic generator (no rand in the dependency set for tests).
    struct Lcg(u64);
    impl Lcg {
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n)
                .map(|_| {
                    self.0 = self
                        .0
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (self.0 >> 56) as u8
                })
                .collect()
        }
    }

    macro_rules! differential {
        ($test:ident, $krate:ident, $tables:ident, $bytes:expr, $keys:expr) => {
            #[test]
            fn $test() {
                let mut rng = Lcg(0x5eed ^ $bytes);
                let mut agreed_valid = 0;
                for k in 0..$keys {
                    let sk = $krate::ecdsa::SigningKey::from_slice(&rng.bytes($bytes)).unwrap();
                    let vk = $krate::ecdsa::VerifyingKey::from(&sk);
                    let sec1 = vk.to_encoded_point(k % 2 == 0);
                    let t = $tables::new(sec1.as_bytes()).unwrap();
                    let other = $krate::ecdsa::SigningKey::from_slice(&rng.bytes($bytes)).unwrap();
                    for i in 0..60 {
                        let digest = rng.bytes($bytes);
                        let sig: $krate::ecdsa::Signature = if i % 7 == 3 {
                            other.sign_prehash(&digest).unwrap()
                        } else {
                            sk.sign_prehash(&digest).unwrap()
                        };
                        let mut cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
                            (digest.clone(), sig.to_bytes().to_vec()),
                            // (r, n − s) is valid too: both must say so.
                            (digest.clone(), {
                                let (r, s) = sig.split_scalars();
                                $krate::ecdsa::Signature::from_scalars(*r, -*s)
                                    .unwrap()
                                    .to_bytes()
                                    .to_vec()
                            }),
                        ];
                        let mut d = digest.clone();
                        d[i % $bytes] ^= 1 << (i % 8);
                        cases.push((d, sig.to_bytes().to_vec()));
                        let mut b = sig.to_bytes().to_vec();
                        b[(i * 5) % (2 * $bytes)] ^= 0x80 >> (i % 8);
                        cases.push((digest.clone(), b));
                        cases.push((digest.clone(), rng.bytes(2 * $bytes)));
                        let mut r_only = sig.to_bytes().to_vec();
                        r_only[$bytes..].fill(0);
                        cases.push((digest.clone(), r_only));
                        cases.push((digest.clone(), vec![0xff; 2 * $bytes]));
                        cases.push((digest.clone(), sig.to_bytes()[..$bytes].to_vec()));
                        for (d, rs) in cases {
                            let want = $krate::ecdsa::Signature::from_slice(&rs)
                                .map(|s| vk.verify_prehash(&d, &s).is_ok())
                                .unwrap_or(false);
                            assert_eq!(t.verify(&d, &rs), want, "key {k} case {i}");
                            agreed_valid += usize::from(want);
                        }
                    }
                }
                // Most signatures by the right key over the right digest are valid.
                assert!(agreed_valid > 90 * $keys, "only {agreed_valid} valid cases");
            }
        };
    }

    differential!(
        p256_tables_agree_with_the_ecdsa_crate,
        p256,
        P256Tables,
        32,
        4
    );
    // Tables are built at opt-level 0 in tests: fewer P-384 keys keep this quick.
    differential!(
        p384_tables_agree_with_the_ecdsa_crate,
        p384,
        P384Tables,
        48,
        2
    );

    #[test]
    fn digest_of_another_length_and_bad_points_are_refused() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let vk = p256::ecdsa::VerifyingKey::from(&sk);
        let t = P256Tables::new(vk.to_encoded_point(false).as_bytes()).unwrap();
        let digest = [9u8; 32];
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
        assert!(t.verify(&digest, &sig.to_bytes()));
        assert!(!t.verify(&digest[..31], &sig.to_bytes()));
        let mut off_curve = vk.to_encoded_point(false).as_bytes().to_vec();
        off_curve[40] ^= 1;
        assert!(P256Tables::new(&off_curve).is_none());
    }
}
