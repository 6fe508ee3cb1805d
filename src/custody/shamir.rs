//! Shamir T-of-N secret sharing over GF(256), share for share what `rusty_secrets` 0.0.2
//! makes: the crate yubihsm-setup and yubihsm-manager split their wrap keys with. A share
//! set either tool printed recovers here, and ours recover there (tests/custody_shares.rs
//! holds that crate to it).
//!
//! What that crate does, read from its source:
//! - the field is GF(2^8) reduced by x^8 + x^4 + x^3 + x^2 + 1 (0x11D). vsss-rs's `gf256`
//!   uses the AES polynomial 0x11B, so its shares would not interoperate: the arithmetic
//!   is here, constant-time (no tables indexed by secret bytes);
//! - every byte of the secret is the constant term of its own polynomial of degree T−1
//!   with random coefficients; share i (1 ≤ i ≤ N) holds the values at x = i;
//! - a share's text is `"{T}-{i}-{data}"`, data in base64 with the standard alphabet and
//!   no padding (52 secret bytes make the 70 characters yubihsm-setup's check expects).
//!
//! Beyond that crate: given more than T shares, the extra ones must lie on the same
//! polynomials, so a corrupted or foreign extra share is caught here; with exactly T
//! shares only the wrap key's check value can tell (see `crate::hsm::wrap`).

use std::fmt;

use base64ct::{Base64Unpadded, Encoding};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Errors splitting, reading or combining shares. They name a share by its index and
/// never show its data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// T and N do not satisfy 2 ≤ T ≤ N ≤ 255.
    #[error("threshold {threshold} of {shares} shares: need 2 ≤ threshold ≤ shares ≤ 255")]
    BadParameters {
        /// T asked for.
        threshold: u8,
        /// N asked for.
        shares: u8,
    },
    /// The secret to split is empty.
    #[error("nothing to split")]
    EmptySecret,
    /// A share is not `T-I-DATA` with base64 data.
    #[error("{what}: not a share (expected T-I-DATA, DATA in base64: {why})")]
    Malformed {
        /// Which share (its source, never its data).
        what: String,
        /// Why it does not parse.
        why: String,
    },
    /// Fewer shares than the threshold.
    #[error("{need} shares are needed, {have} given")]
    NotEnough {
        /// The set's threshold T.
        need: u8,
        /// Shares given.
        have: usize,
    },
    /// The shares name different thresholds: not one set.
    #[error("share {index} belongs to a {theirs}-of-N set, share {first} to a {ours}-of-N set")]
    MixedThreshold {
        /// The share that differs.
        index: u8,
        /// Its threshold.
        theirs: u8,
        /// The first share given.
        first: u8,
        /// The first share's threshold.
        ours: u8,
    },
    /// The shares carry data of different lengths: not one set.
    #[error("share {index} has {theirs} bytes, share {first} has {ours}: not from one set")]
    MixedLength {
        /// The share that differs.
        index: u8,
        /// Its data length in bytes.
        theirs: usize,
        /// The first share given.
        first: u8,
        /// The first share's data length.
        ours: usize,
    },
    /// A share's index is above the set's size N.
    #[error("share {index} is not one of {shares} shares")]
    OutOfRange {
        /// The share's index.
        index: u8,
        /// Shares in the set.
        shares: u8,
    },
    /// The same share index was given twice.
    #[error("share {0} was given twice")]
    Duplicate(u8),
    /// This share does not lie on the polynomial the others define: mistyped, corrupted, or
    /// from another set.
    #[error("share {0} does not agree with the others: mistyped, corrupted or from another set")]
    Inconsistent(u8),
}

// GF(2^8) with rusty_secrets' reduction polynomial x^8 + x^4 + x^3 + x^2 + 1.
const REDUCE: u8 = 0x1d;

/// All-ones if the low bit of `bit` is set, else zero.
fn mask(bit: u8) -> u8 {
    0u8.wrapping_sub(bit & 1)
}

/// Multiplication without branches or table lookups on the operands.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    for _ in 0..8 {
        r ^= a & mask(b);
        b >>= 1;
        a = (a << 1) ^ (REDUCE & mask(a >> 7));
    }
    r
}

/// Multiplicative inverse as a^254 (the exponent is public; 0 maps to 0).
fn inv(a: u8) -> u8 {
    let (mut r, mut base) = (1u8, a);
    for bit in 0..8 {
        if (254u8 >> bit) & 1 == 1 {
            r = mul(r, base);
        }
        base = mul(base, base);
    }
    r
}

/// One custodian's share: which set (its threshold), its index, and its data.
/// Zeroized on drop; `Debug` shows only threshold and index.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    threshold: u8,
    index: u8,
    data: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Share({}-of-N, index {}, [redacted])",
            self.threshold, self.index
        )
    }
}

impl Share {
    /// How many shares of this set rebuild the secret.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The share's x coordinate, 1 to N: which custodian holds it.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The share as custodians copy it: `T-I-DATA` (rusty_secrets' text form).
    pub fn to_text(&self) -> Secret {
        // base64 of n bytes is at most 4⌈n/3⌉ characters: reserve so nothing reallocates
        // (a reallocation would leave an unzeroized copy behind).
        let mut out = Zeroizing::new(String::with_capacity(8 + 4 * self.data.len().div_ceil(3)));
        out.push_str(&format!("{}-{}-", self.threshold, self.index));
        let mut buf = Zeroizing::new(vec![0u8; 4 * self.data.len().div_ceil(3)]);
        // ok: the buffer is large enough for the unpadded encoding.
        let enc = Base64Unpadded::encode(&self.data, &mut buf).unwrap_or_default();
        out.push_str(enc);
        Secret::new(out.as_bytes().to_vec())
    }

    /// Read a share's text (whitespace anywhere ignored). `what` names it in errors
    /// ("share from file:/media/c1/share.txt"); the text itself is never shown.
    pub fn parse(text: &Secret, what: &str) -> Result<Share, Error> {
        let bad = |why: &str| Error::Malformed {
            what: what.to_string(),
            why: why.to_string(),
        };
        let raw = text.expose_str().ok_or_else(|| bad("not UTF-8 text"))?;
        // A share copied by hand comes in groups: spaces and line breaks are not part of
        // it (rusty_secrets' text has none).
        let mut compact = Zeroizing::new(String::with_capacity(raw.len()));
        compact.extend(raw.chars().filter(|c| !c.is_whitespace()));
        let s = compact.as_str();
        let mut parts = s.splitn(3, '-');
        let (Some(t), Some(i), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("fewer than three parts"));
        };
        let number = |p: &str, name: &str| -> Result<u8, Error> {
            match p.parse::<u8>() {
                Ok(n) if n >= 1 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(bad(&format!("{name} is not a number from 1 to 255"))),
            }
        };
        let threshold = number(t, "the threshold T")?;
        let index = number(i, "the index I")?;
        // Padding is not what rusty_secrets writes, but a copied share may carry it.
        let data = data.trim_end_matches('=');
        let decoded = Base64Unpadded::decode_vec(data)
            .map(Zeroizing::new)
            .map_err(|_| bad("DATA is not base64"))?;
        if decoded.is_empty() {
            return Err(bad("DATA is empty"));
        }
        Ok(Share {
            threshold,
            index,
            data: decoded,
        })
    }
}

/// Split `secret` into `shares` shares, any `threshold` of which rebuild it.
pub fn split(secret: &[u8], threshold: u8, shares: u8) -> Result<Vec<Share>, Error> {
    if threshold < 2 || threshold > shares {
        return Err(Error::BadParameters { threshold, shares });
    }
    if secret.is_empty() {
        return Err(Error::EmptySecret);
    }
    let mut out: Vec<Share> = (1..=shares)
        .map(|index| Share {
            threshold,
            index,
            data: Zeroizing::new(vec![0u8; secret.len()]),
        })
        .collect();
    // coefficients[0] is the secret byte, the rest random.
    let mut coefficients = Zeroizing::new(vec![0u8; threshold as usize]);
    for (pos, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        OsRng.fill_bytes(&mut coefficients[1..]);
        for share in out.iter_mut() {
            // Horner's rule at x = index.
            let mut acc = 0u8;
            for &c in coefficients.iter().rev() {
                acc = mul(acc, share.index) ^ c;
            }
            share.data[pos] = acc;
        }
    }
    Ok(out)
}

/// The Lagrange basis at `x` for the points `xs`: sum of basis[j] · y_j is the value at x.
fn basis(xs: &[u8], x: u8) -> Vec<u8> {
    xs.iter()
        .enumerate()
        .map(|(j, &xj)| {
            let (mut num, mut den) = (1u8, 1u8);
            for (m, &xm) in xs.iter().enumerate() {
                if m != j {
                    num = mul(num, x ^ xm);
                    den = mul(den, xj ^ xm);
                }
            }
            mul(num, inv(den))
        })
        .collect()
}

fn interpolate(shares: &[&Share], x: u8, len: usize) -> Zeroizing<Vec<u8>> {
    let xs: Vec<u8> = shares.iter().map(|s| s.index).collect();
    let l = basis(&xs, x);
    let mut out = Zeroizing::new(vec![0u8; len]);
    for (pos, o) in out.iter_mut().enumerate() {
        *o = shares
            .iter()
            .zip(&l)
            .fold(0u8, |acc, (s, &lj)| acc ^ mul(lj, s.data[pos]));
    }
    out
}

/// Rebuild the secret from at least T shares of one set. The first T rebuild it; every
/// further share must agree with them.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let first = shares
        .first()
        .ok_or(Error::NotEnough { need: 1, have: 0 })?;
    for (n, s) in shares.iter().enumerate() {
        if s.threshold != first.threshold {
            return Err(Error::MixedThreshold {
                index: s.index,
                theirs: s.threshold,
                first: first.index,
                ours: first.threshold,
            });
        }
        if s.data.len() != first.data.len() {
            return Err(Error::MixedLength {
                index: s.index,
                theirs: s.data.len(),
                first: first.index,
                ours: first.data.len(),
            });
        }
        if shares[..n].iter().any(|o| o.index == s.index) {
            return Err(Error::Duplicate(s.index));
        }
    }
    let t = first.threshold as usize;
    if shares.len() < t {
        return Err(Error::NotEnough {
            need: first.threshold,
            have: shares.len(),
        });
    }
    let (base, extra) = shares.split_at(t);
    let base: Vec<&Share> = base.iter().collect();
    let len = first.data.len();
    for s in extra {
        if interpolate(&base, s.index, len).as_slice() != s.data.as_slice() {
            return Err(Error::Inconsistent(s.index));
        }
    }
    Ok(interpolate(&base, 0, len))
}

/// The shares of index 1 to `shares` of `secret`, keeping the `known` ones: shares that
/// custodians already hold (an interrupted hand-out). With fewer than T known shares the
/// rest of each polynomial is drawn at random, which is a fresh T-of-N split whose shares
/// at the known indices happen to be the known ones: any T−1 shares of a split are
/// uniformly random whatever the secret, so keeping them costs nothing. With T or more
/// known shares the secret is theirs: they must rebuild `secret`, and the others are
/// computed from them.
pub fn complete(
    secret: &[u8],
    known: &[Share],
    threshold: u8,
    shares: u8,
) -> Result<Vec<Share>, Error> {
    if threshold < 2 || threshold > shares {
        return Err(Error::BadParameters { threshold, shares });
    }
    if secret.is_empty() {
        return Err(Error::EmptySecret);
    }
    for (n, s) in known.iter().enumerate() {
        if s.threshold != threshold {
            return Err(Error::MixedThreshold {
                index: s.index,
                theirs: s.threshold,
                first: 0,
                ours: threshold,
            });
        }
        if s.data.len() != secret.len() {
            return Err(Error::MixedLength {
                index: s.index,
                theirs: s.data.len(),
                first: 0,
                ours: secret.len(),
            });
        }
        if s.index > shares {
            return Err(Error::OutOfRange {
                index: s.index,
                shares,
            });
        }
        if known[..n].iter().any(|o| o.index == s.index) {
            return Err(Error::Duplicate(s.index));
        }
    }
    let len = secret.len();
    let secret_point = Share {
        threshold,
        index: 0,
        data: Zeroizing::new(secret.to_vec()),
    };
    // T points fix the polynomials: the secret at 0, the known shares, and random values
    // at the first free indices.
    let mut points: Vec<Share> = Vec::with_capacity(threshold as usize);
    if known.len() >= threshold as usize {
        let rebuilt = combine(known)?;
        if rebuilt.as_slice() != secret {
            return Err(Error::Inconsistent(known[0].index));
        }
        points.extend(known[..threshold as usize].iter().cloned());
    } else {
        points.push(secret_point);
        points.extend(known.iter().cloned());
        let mut free = (1..=shares).filter(|i| !known.iter().any(|s| s.index == *i));
        while points.len() < threshold as usize {
            let Some(index) = free.next() else {
                return Err(Error::BadParameters { threshold, shares });
            };
            let mut data = Zeroizing::new(vec![0u8; len]);
            OsRng.fill_bytes(&mut data);
            points.push(Share {
                threshold,
                index,
                data,
            });
        }
    }
    let refs: Vec<&Share> = points.iter().collect();
    Ok((1..=shares)
        .map(|index| match known.iter().find(|s| s.index == index) {
            Some(s) => s.clone(),
            None => Share {
                threshold,
                index,
                data: interpolate(&refs, index, len),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_axioms() {
        for a in 0..=255u8 {
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            }
            for b in [2u8, 3, 0x53, 0xca, 0xff] {
                assert_eq!(mul(a, b), mul(b, a));
            }
        }
        // 2 generates the multiplicative group under 0x11D (it has order 255).
        let mut x = 1u8;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..255 {
            assert!(seen.insert(x));
            x = mul(x, 2);
        }
        assert_eq!(x, 1);
        // x^8 = x^4 + x^3 + x^2 + 1
        assert_eq!(mul(0x80, 2), 0x1d);
    }

    #[test]
    fn any_t_of_n_rebuild() {
        let secret: Vec<u8> = (0..52u8).collect();
        for (t, n) in [(2u8, 2u8), (2, 3), (3, 5), (5, 9)] {
            let shares = split(&secret, t, n).unwrap();
            assert_eq!(shares.len(), n as usize);
            // Every window of t consecutive shares (cyclically), in both orders.
            for start in 0..n as usize {
                let mut pick: Vec<Share> = (0..t as usize)
                    .map(|k| shares[(start + k) % n as usize].clone())
                    .collect();
                assert_eq!(combine(&pick).unwrap().as_slice(), secret.as_slice());
                pick.reverse();
                assert_eq!(combine(&pick).unwrap().as_slice(), secret.as_slice());
            }
            // All n at once: the extra ones agree.
            assert_eq!(combine(&shares).unwrap().as_slice(), secret.as_slice());
            let short = &shares[..t as usize - 1];
            assert!(matches!(combine(short), Err(Error::NotEnough { .. })));
        }
    }

    #[test]
    fn text_round_trip_and_redaction() {
        let shares = split(&[7u8; 52], 3, 5).unwrap();
        let text = shares[1].to_text();
        let s = text.expose_str().unwrap();
        assert!(s.starts_with("3-2-"));
        assert_eq!(s.len(), 4 + 70, "{s}");
        assert_eq!(Share::parse(&text, "share").unwrap(), shares[1]);
        let padded = Secret::from_string(format!("  {s}==\n"));
        assert_eq!(Share::parse(&padded, "share").unwrap(), shares[1]);
        // Copied by hand in groups, over lines.
        let grouped: String = s
            .chars()
            .collect::<Vec<_>>()
            .chunks(5)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" \n ");
        let grouped = Secret::from_string(grouped);
        assert_eq!(Share::parse(&grouped, "share").unwrap(), shares[1]);
        let dbg = format!("{:?}", shares[1]);
        assert_eq!(dbg, "Share(3-of-N, index 2, [redacted])");
        for bad in [
            "",
            "3-2",
            "0-1-AAAA",
            "3-x-AAAA",
            "3-2-!!!!",
            "3-2-",
            "+3-2-AAAA",
        ] {
            let e = Share::parse(&Secret::from_string(bad.into()), "share in test").unwrap_err();
            assert!(
                e.to_string().starts_with("share in test: not a share"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_partial_hand_out_is_completed_into_a_fresh_split() {
        let old = split(&[9u8; 40], 3, 5).unwrap();
        let secret = [4u8; 40];
        // Fewer than T known: a new secret, the known shares kept as they are.
        for k in 0..3 {
            let known: Vec<Share> = old[..k].to_vec();
            let all = complete(&secret, &known, 3, 5).unwrap();
            assert_eq!(all.len(), 5);
            assert_eq!(&all[..k], &known[..]);
            for pick in [[0usize, 1, 2], [2, 3, 4], [0, 2, 4], [4, 1, 3]] {
                let set: Vec<Share> = pick.iter().map(|&i| all[i].clone()).collect();
                assert_eq!(
                    combine(&set).unwrap().as_slice(),
                    &secret[..],
                    "{k} {pick:?}"
                );
            }
            assert_eq!(combine(&all).unwrap().as_slice(), &secret[..]);
        }
        // T known: they decide the secret; the missing shares are theirs.
        let all = complete(&[9u8; 40], &old[1..4], 3, 5).unwrap();
        assert_eq!(all, old);
        assert!(matches!(
            complete(&secret, &old[1..4], 3, 5),
            Err(Error::Inconsistent(_))
        ));
        let other = split(&[9u8; 40], 2, 5).unwrap();
        assert!(complete(&secret, &other[..1], 3, 5).is_err());
    }

    #[test]
    fn wrong_extra_and_mixed_shares_are_caught() {
        let a = split(&[1u8; 20], 2, 4).unwrap();
        let b = split(&[2u8; 20], 2, 4).unwrap();
        let mut corrupt = a[2].clone();
        corrupt.data[5] ^= 0x40;
        let e = combine(&[a[0].clone(), a[1].clone(), corrupt]).unwrap_err();
        assert!(matches!(e, Error::Inconsistent(3)), "{e}");
        let e = combine(&[a[0].clone(), a[1].clone(), b[3].clone()]).unwrap_err();
        assert!(matches!(e, Error::Inconsistent(4)), "{e}");
        let e = combine(&[a[0].clone(), a[0].clone()]).unwrap_err();
        assert!(matches!(e, Error::Duplicate(1)), "{e}");
        let c = split(&[1u8; 20], 3, 4).unwrap();
        let e = combine(&[a[0].clone(), c[1].clone()]).unwrap_err();
        assert!(matches!(e, Error::MixedThreshold { .. }), "{e}");
        assert!(matches!(
            split(&[1], 1, 3),
            Err(Error::BadParameters { .. })
        ));
        assert!(matches!(
            split(&[1], 4, 3),
            Err(Error::BadParameters { .. })
        ));
    }
}
