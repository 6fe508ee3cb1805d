//! What a public key is fit for: the one place that says which RSA keys a boot ROM, a
//! certificate or a token may be given. Called wherever a key enters (fuse values,
//! imports, verification, certificate issuance), so a weak key never reaches a fuse.
//!
//! An RSA key with e = 1 "signs" anything (the signature is the padded digest itself);
//! an even e has no inverse and an even modulus is not a product of two odd primes, so
//! such a key is either forged or broken. Boot ROMs take only some sizes: a fuse value
//! for any other size bricks the device or can never be used.

use super::{Error, PublicKey};

/// Where a key is about to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// NXP HAB4 SRKs and the HAB4 certificates: RSA 1024, 2048, 3072 or 4096.
    Hab4,
    /// The Arm TF-A root-of-trust key: RSA 2048 to 4096 bits.
    TfaRotpk,
    /// Espressif Secure Boot V2: RSA-3072 only.
    Esp32,
    /// Anything else (a token, a certificate, a signature): RSA 2048 to 16384 bits.
    General,
}

impl Use {
    /// The RSA sizes this use takes, and how to say so.
    fn sizes(self) -> (&'static [std::ops::RangeInclusive<usize>], &'static str) {
        match self {
            Use::Hab4 => (
                &[1024..=1024, 2048..=2048, 3072..=3072, 4096..=4096],
                "HAB4 takes RSA 1024, 2048, 3072 or 4096 bits",
            ),
            Use::TfaRotpk => (&[2048..=4096], "TF-A takes RSA 2048 to 4096 bits"),
            Use::Esp32 => (&[3072..=3072], "ESP32 Secure Boot V2 takes RSA-3072 only"),
            Use::General => (&[2048..=16384], "RSA keys must have 2048 to 16384 bits"),
        }
    }
}

/// Refuse a key unfit for `use_`, in one line that says why. EC keys are checked where
/// they are parsed (the point must be on the curve); each format names its curves.
pub fn check(key: &PublicKey, use_: Use) -> Result<(), Error> {
    let PublicKey::Rsa { n, e } = key else {
        return Ok(());
    };
    let unfit = |m: String| Err(Error::Unfit(m));
    let e_small = e.len() == 1 && e[0] < 3;
    if e_small || e.is_empty() {
        return unfit(format!(
            "RSA public exponent {} is below 3: such a key signs anything",
            e.first().copied().unwrap_or(0)
        ));
    }
    if e.last().is_some_and(|b| b % 2 == 0) {
        return unfit(format!(
            "RSA public exponent 0x{} is even: not a usable RSA key",
            hex::encode(e)
        ));
    }
    if n.last().is_none_or(|b| b % 2 == 0) {
        return unfit("RSA modulus is even: not a product of two odd primes".into());
    }
    if e.len() > n.len() || (e.len() == n.len() && e.as_slice() >= n.as_slice()) {
        return unfit("RSA public exponent is not below the modulus".into());
    }
    let bits = key.bits();
    let (sizes, rule) = use_.sizes();
    if !sizes.iter().any(|r| r.contains(&bits)) {
        return unfit(format!("RSA-{bits} key: {rule}"));
    }
    Ok(())
}

/// How many keys and certificates a PEM text holds (parameters blocks do not count).
pub(crate) fn pem_keys_and_certs(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("-----BEGIN ") {
        let after = &rest[at + "-----BEGIN ".len()..];
        let Some(end) = after.find("-----") else {
            break;
        };
        let label = &after[..end];
        if label.ends_with("PRIVATE KEY")
            || label.ends_with("PUBLIC KEY")
            || label.contains("CERTIFICATE")
        {
            found.push(label.to_string());
        }
        rest = &after[end..];
    }
    found
}

/// Refuse a PEM text with more than one key or certificate: which one a tool takes is
/// a guess, and the one a witness checked may not be the one that is used.
pub(crate) fn one_pem_key(text: &str) -> Result<(), Error> {
    let found = pem_keys_and_certs(text);
    if found.len() > 1 {
        return Err(Error::Malformed(format!(
            "the file holds {} keys or certificates ({}); give one per file",
            found.len(),
            found.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa(bits: usize, e: &[u8]) -> PublicKey {
        let mut n = vec![0xc5u8; bits / 8];
        n[bits / 8 - 1] = 0x01;
        PublicKey::Rsa { n, e: e.to_vec() }
    }

    #[test]
    fn rsa_rules() {
        let f4 = [1, 0, 1];
        check(&rsa(2048, &f4), Use::General).unwrap();
        check(&rsa(2048, &[3]), Use::TfaRotpk).unwrap();
        check(&rsa(1024, &f4), Use::Hab4).unwrap();
        check(&rsa(3072, &f4), Use::Esp32).unwrap();
        for (k, u, needle) in [
            (rsa(2048, &[1]), Use::General, "below 3"),
            (rsa(2048, &[2]), Use::General, "below 3"),
            (rsa(2048, &[1, 0, 0]), Use::General, "even"),
            (rsa(1024, &f4), Use::TfaRotpk, "2048 to 4096"),
            (rsa(1024, &f4), Use::General, "RSA-1024"),
            (rsa(2048, &f4), Use::Esp32, "3072 only"),
            (rsa(6144, &f4), Use::Hab4, "4096"),
            (rsa(1536, &f4), Use::Hab4, "RSA-1536"),
        ] {
            let e = check(&k, u).unwrap_err().to_string();
            assert!(e.contains(needle), "{u:?}: {e}");
        }
        let mut even = rsa(2048, &f4);
        if let PublicKey::Rsa { n, .. } = &mut even {
            *n.last_mut().unwrap() = 0x02;
        }
        assert!(check(&even, Use::General)
            .unwrap_err()
            .to_string()
            .contains("modulus"));
    }

    #[test]
    fn pem_counts_keys_and_certificates_only() {
        let one = "-----BEGIN EC PARAMETERS-----\nx\n-----END EC PARAMETERS-----\n-----BEGIN EC PRIVATE KEY-----\ny\n-----END EC PRIVATE KEY-----\n";
        one_pem_key(one).unwrap();
        let two = "-----BEGIN PUBLIC KEY-----\na\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nb\n-----END CERTIFICATE-----\n";
        assert!(one_pem_key(two).unwrap_err().to_string().contains("2 keys"));
    }
}
