//! Time as approvals see it: seconds since 1970 in UTC. Requests and policies write
//! RFC 3339 with a `Z` (`2026-11-22T02:18:53Z`); a policy may also give an offset, which
//! is converted. Durations are `60s`, `15m`, `2h`, `7d`. Pure: no clock is read here
//! except by [`now`].

use std::fmt;

/// A time or duration that does not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Now, in seconds since 1970 (UTC).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `secs` as RFC 3339 UTC.
pub fn format(secs: u64) -> String {
    crate::ceremony::transcript::rfc3339(secs)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Seconds since 1970 of a UTC civil time, checking every field's range.
pub(crate) fn civil_to_secs(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<u64> {
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + i64::from(h * 3600 + mi * 60 + s)).ok()
}

/// Parse `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `±HH:MM`.
pub fn parse(s: &str) -> Result<u64, Error> {
    let bad = || {
        Error(format!(
            "{s:?} is not a time in RFC 3339 form, such as \"2026-11-22T02:18:53Z\""
        ))
    };
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(bad());
    }
    if b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(digits).ok_or_else(bad);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let local = civil_to_secs(i64::from(y), mo, d, h, mi, sec).ok_or_else(bad)?;
    let zone = &s[19..];
    let offset: i64 = match zone {
        "Z" => 0,
        _ => {
            let zb = zone.as_bytes();
            if zb.len() != 6 || !matches!(zb[0], b'+' | b'-') || zb[3] != b':' {
                return Err(bad());
            }
            let (oh, om) = (num(20..22)?, num(23..25)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = i64::from(oh * 3600 + om * 60);
            if zb[0] == b'+' {
                o
            } else {
                -o
            }
        }
    };
    // local is at most year 9999 in seconds, far inside i64.
    let local = i64::try_from(local).map_err(|_| bad())?;
    u64::try_from(local - offset).map_err(|_| bad())
}

/// Parse a duration: a whole number followed by `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<u64, Error> {
    let bad = || {
        Error(format!(
            "{s:?} is not a duration such as 60s, 15m, 2h or 7d"
        ))
    };
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => return Err(bad()),
    };
    let n = digits(&s[..s.len() - 1]).ok_or_else(bad)?;
    match u64::from(n).checked_mul(unit) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_the_transcript_format() {
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse(&format(secs)).unwrap(), secs);
        }
        assert_eq!(parse("2000-02-29T00:00:00Z").unwrap(), 951_782_400);
    }

    #[test]
    fn offsets_convert_to_utc() {
        let z = parse("2026-11-22T02:18:53Z").unwrap();
        assert_eq!(parse("2026-11-22T03:18:53+01:00").unwrap(), z);
        assert_eq!(parse("2026-11-21T21:18:53-05:00").unwrap(), z);
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for s in [
            "",
            "2026-11-22",
            "2026-11-22T02:18:53",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T02:18:53.5Z",
            "2026-11-22t02:18:53Z",
            "+026-11-22T02:18:53Z",
            "2026-11-22T02:18:53+1:00",
            "1969-12-31T23:59:59Z",
            "2026-11-22T02:18:53Zé",
        ] {
            assert!(parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), 60);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        for s in [
            "",
            "s",
            "0s",
            "-5s",
            "5",
            "5w",
            "1.5h",
            " 5s",
            "99999999999d",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
