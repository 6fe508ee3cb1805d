//! How hashes are shown to people who compare them aloud: hex in groups of four bytes,
//! and the PGP word list (even/odd words), as IANA's DNSSEC root ceremonies print them.
//! Pure: bytes in, text out (the word list is compiled in from `assets/pgp-words.txt`).

const LIST: &str = include_str!("../../assets/pgp-words.txt");

/// The (even, odd) words for byte `b`.
fn words(b: u8) -> (&'static str, &'static str) {
    // The list file has one "XX even odd" line per byte value, in order; a unit test
    // checks all 256 lines, so the fallback is unreachable.
    let line = LIST
        .lines()
        .filter(|l| !l.starts_with('#'))
        .nth(b as usize)
        .unwrap_or("?? ? ?");
    let mut it = line.split_whitespace().skip(1);
    (it.next().unwrap_or("?"), it.next().unwrap_or("?"))
}

/// PGP words: the even list for bytes at even positions, the odd list for odd positions.
pub fn pgp_words(bytes: &[u8]) -> String {
    bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let (even, odd) = words(b);
            if i % 2 == 0 {
                even
            } else {
                odd
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The byte whose even (`odd == false`) or odd word is `word`, ignoring case.
fn byte_of(word: &str, odd: bool) -> Option<u8> {
    (0..=255u8).find(|&b| {
        let (even, o) = words(b);
        (if odd { o } else { even }).eq_ignore_ascii_case(word)
    })
}

/// A fingerprint as a person reads it back from paper: hex (any case, in groups or
/// not) or PGP words as [`pgp_words`] prints them (any case). A word from the wrong
/// list says where a word was skipped or repeated.
pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.split_whitespace().collect();
    if compact.is_empty() {
        return Err("empty: give hex or PGP words".into());
    }
    if compact.chars().all(|c| c.is_ascii_hexdigit()) {
        return hex::decode(&compact).map_err(|_| "hex with an odd number of digits".into());
    }
    let mut out = Vec::new();
    for (i, w) in text.split_whitespace().enumerate() {
        let odd = i % 2 == 1;
        match byte_of(w, odd) {
            Some(b) => out.push(b),
            None if byte_of(w, !odd).is_some() => {
                return Err(format!(
                "word {} {w:?} belongs at an {} position: a word is missing or repeated before it",
                i + 1,
                if odd { "even" } else { "odd" }
            ))
            }
            None => return Err(format!("word {} {w:?} is not a PGP word", i + 1)),
        }
    }
    Ok(out)
}

/// Upper-case hex in groups of four bytes: `E58294F2 E9A22748 …`.
pub fn hex_groups(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(hex::encode_upper)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Both renderings, for witnesses: hex groups on one line, words on the next.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fingerprint {
    /// The bytes as plain lower-case hex, no spaces (what `sha256sum` prints).
    pub hex: String,
    /// Upper-case hex in groups of four bytes, as [`hex_groups`] prints it.
    pub groups: String,
    /// The PGP words, as [`pgp_words`] prints them.
    pub words: String,
}

impl Fingerprint {
    /// All three renderings of `bytes` (usually a SHA-256).
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint {
            hex: hex::encode(bytes),
            groups: hex_groups(bytes),
            words: pgp_words(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_complete_and_ordered() {
        let lines: Vec<&str> = LIST.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), 256);
        for (i, l) in lines.iter().enumerate() {
            assert!(l.starts_with(&format!("{i:02X} ")), "line {i}: {l}");
            assert_eq!(l.split_whitespace().count(), 3, "line {i}: {l}");
        }
    }

    #[test]
    fn parse_reads_back_both_renderings() {
        let b: Vec<u8> = (0..=255u8).collect();
        let f = Fingerprint::of(&b);
        assert_eq!(parse(&f.words).unwrap(), b);
        assert_eq!(parse(&f.words.to_uppercase()).unwrap(), b);
        assert_eq!(parse(&f.groups).unwrap(), b);
        assert_eq!(parse(&f.hex).unwrap(), b);
        let skipped: Vec<&str> = f.words.split_whitespace().skip(1).collect();
        assert!(parse(&skipped.join(" "))
            .unwrap_err()
            .contains("missing or repeated"));
        assert!(parse("topmost nonsense").unwrap_err().contains("word 2"));
    }

    #[test]
    fn published_example() {
        // The worked example that accompanies the PGP word list.
        let b = hex::decode("E58294F2E9A227486E8B061B31CC528FD7FA3F19").unwrap();
        assert_eq!(
            pgp_words(&b),
            "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish \
             Medusa afflict bravado chatter revolver Dupont midsummer stopwatch whimsical \
             cowbell bottomless"
        );
        assert_eq!(hex_groups(&b[..6]), "E58294F2 E9A2");
        // A second vector exercising the end of both lists.
        assert_eq!(
            pgp_words(&[0xFE, 0xED, 0xFA, 0xCE, 0xBE, 0xEF]),
            "woodlark unify wallet sardonic skydive unravel"
        );
    }
}
