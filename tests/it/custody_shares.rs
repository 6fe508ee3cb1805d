//! Wrap-key shares interoperate with Yubico's tools: yubihsm-setup and yubihsm-manager
//! split their wrap keys with `rusty_secrets` 0.0.2, which is the judge here. Shares it
//! makes rebuild with Officiant, and Officiant's rebuild with it, for every T-of-N from
//! 2-of-2 to 5-of-9, and the secret is laid out as yubihsm-manager lays it out.

use officiant::custody::{payload, shamir};
use officiant::hsm::WrapKeySpec;
use officiant::secret::Secret;

fn parse(text: &str) -> shamir::Share {
    shamir::Share::parse(&Secret::from_string(text.to_string()), "share").unwrap()
}

fn text(s: &shamir::Share) -> String {
    s.to_text().expose_str().unwrap().to_string()
}

/// Subsets of T indices out of N to try: the first T, the last T, and a spread.
fn subsets(t: usize, n: usize) -> Vec<Vec<usize>> {
    let first: Vec<usize> = (0..t).collect();
    let last: Vec<usize> = (n - t..n).collect();
    let spread: Vec<usize> = (0..t).map(|k| (k * n) / t).collect();
    let mut reversed = spread.clone();
    reversed.reverse();
    vec![first, last, spread, reversed]
}

fn pairs() -> Vec<(u8, u8)> {
    let mut v = Vec::new();
    for t in 2..=5u8 {
        for n in t..=9u8 {
            v.push((t, n));
        }
    }
    v
}

fn secret_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn rusty_secrets_shares_rebuild_here() {
    for (t, n) in pairs() {
        let secret = secret_bytes(52, t ^ n);
        let theirs = rusty_secrets::generate_shares(t, n, &secret).unwrap();
        assert_eq!(theirs.len(), n as usize);
        for pick in subsets(t as usize, n as usize) {
            let shares: Vec<shamir::Share> = pick.iter().map(|&i| parse(&theirs[i])).collect();
            let back = shamir::combine(&shares).unwrap();
            assert_eq!(back.as_slice(), secret.as_slice(), "{t}-of-{n} {pick:?}");
        }
        // All of them: the extra shares agree with the first T.
        let all: Vec<shamir::Share> = theirs.iter().map(|s| parse(s)).collect();
        assert_eq!(shamir::combine(&all).unwrap().as_slice(), secret.as_slice());
    }
}

#[test]
fn our_shares_rebuild_with_rusty_secrets() {
    for (t, n) in pairs() {
        let secret = secret_bytes(52, t.wrapping_mul(n));
        let ours = shamir::split(&secret, t, n).unwrap();
        for pick in subsets(t as usize, n as usize) {
            let texts: Vec<String> = pick.iter().map(|&i| text(&ours[i])).collect();
            let back = rusty_secrets::recover_secret(texts).unwrap();
            assert_eq!(back, secret, "{t}-of-{n} {pick:?}");
        }
    }
}

#[test]
fn share_text_is_what_yubihsm_setup_accepts() {
    // yubihsm-setup refuses a share unless it matches ^\d-\d-[a-zA-Z0-9+/]{70}$ (its
    // 52-byte secret: 20 bytes of id, domains and capabilities, a 32-byte key).
    let key = Secret::new(vec![0x5a; 32]);
    let secret = payload::encode(&WrapKeySpec::new("w", 0x0011), &key);
    for s in shamir::split(&secret, 3, 5).unwrap() {
        let t = text(&s);
        let (head, data) = t.split_at(4);
        assert!(
            head.as_bytes()[0].is_ascii_digit() && &head[1..2] == "-",
            "{t}"
        );
        assert!(
            head.as_bytes()[2].is_ascii_digit() && &head[3..4] == "-",
            "{t}"
        );
        assert_eq!(data.len(), 70, "{t}");
        assert!(
            data.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
            "{t}"
        );
    }
}

#[test]
fn yubihsm_manager_payload_round_trips_both_ways() {
    // The bytes yubihsm-manager's split_wrap_key builds for wrap key 0x0010 in domain 1
    // with capabilities export-wrapped + import-wrapped (protocol byte 1: 0x10, 0x20),
    // delegated exportable-under-wrap (byte 2: 0x01) + sign-ecdsa (byte 0: 0x80), and an
    // AES-256 key; yubihsmrs writes capability byte k at position 7 - k.
    let key: Vec<u8> = (0..32u8).map(|b| b ^ 0xa5).collect();
    let mut theirs = vec![0x00, 0x10, 0x00, 0x01];
    theirs.extend([0, 0, 0, 0, 0, 0, 0x30, 0x00]);
    theirs.extend([0, 0, 0, 0, 0, 0x01, 0x00, 0x80]);
    theirs.extend(&key);
    let expected = WrapKeySpec {
        label: "backup".into(),
        id: 0x0010,
        domains: 0x0001,
        capabilities: 0x3000,
        delegated_capabilities: 0x0001_0080,
    };

    // Their shares, rebuilt and read here.
    let shares = rusty_secrets::generate_shares(2, 3, &theirs).unwrap();
    let picked = vec![parse(&shares[2]), parse(&shares[0])];
    let rebuilt = shamir::combine(&picked).unwrap();
    let (spec, k) = payload::decode(&rebuilt, "backup").unwrap();
    assert_eq!(spec, expected);
    assert_eq!(k.expose(), key.as_slice());

    // Ours, rebuilt by rusty_secrets and read as yubihsm-manager's
    // get_wrapkey_from_shares reads it.
    let ours = payload::encode(&expected, &Secret::new(key.clone()));
    let split = shamir::split(&ours, 3, 5).unwrap();
    let texts = vec![text(&split[4]), text(&split[1]), text(&split[3])];
    let data = rusty_secrets::recover_secret(texts).unwrap();
    assert_eq!(data, theirs);
    assert_eq!(u16::from(data[0]) << 8 | u16::from(data[1]), 0x0010);
    assert_eq!(&data[20..], key.as_slice());
}
