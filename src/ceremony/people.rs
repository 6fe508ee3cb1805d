//! The people of a ceremony: names as people are, and the roll call.
//!
//! A sign-off counts a person, not a spelling: `Walt`, `walt`, `Walt ` and `Wal\u{200b}t`
//! are one person. Names are compared after Unicode NFKC, with invisible format
//! characters removed, whitespace collapsed and trimmed, and case folded. The roster of
//! a session (who is present, in which roles) is taken once before the first step; every
//! later sign-off and acknowledgement names someone on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::hsm::names::invisible;

/// One person present, and the roles they may sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Their name as they gave it, trimmed.
    pub name: String,
    /// The roles they may sign in.
    pub roles: Vec<String>,
}

/// The key two names are compared by: NFKC, invisible characters removed, whitespace
/// collapsed and trimmed, lower case.
pub fn person_key(name: &str) -> String {
    let visible: String = name.nfkc().filter(|c| !invisible(*c)).collect();
    visible
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// One person's name as typed, trimmed; refused when empty or with control characters.
pub fn clean_name(name: &str) -> Result<String, String> {
    let t = name.trim();
    if person_key(t).is_empty() {
        return Err("a person's name cannot be empty".into());
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(format!("the name {t:?} has a control character"));
    }
    Ok(t.to_string())
}

/// Why a roster does not fit the script.
pub fn check_roster(
    roster: &[Participant],
    roles: &BTreeMap<String, u32>,
    steps: &[Vec<(String, usize)>],
) -> Result<(), String> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for p in roster {
        let name = clean_name(&p.name)?;
        if let Some(other) = seen.insert(person_key(&name), &p.name) {
            return Err(format!(
                "{:?} and {other:?} are one person; list each person once, with all their roles",
                p.name
            ));
        }
        if p.roles.is_empty() {
            return Err(format!("{name} has no role"));
        }
        for r in &p.roles {
            if !roles.contains_key(r) {
                let known: Vec<&str> = roles.keys().map(String::as_str).collect();
                return Err(format!(
                    "{name}: the script has no role {r:?} (roles: {})",
                    known.join(", ")
                ));
            }
        }
    }
    for (i, need) in steps.iter().enumerate() {
        if !fills(roster, need) {
            let want: Vec<String> = need.iter().map(|(r, n)| format!("{n} {r}")).collect();
            return Err(format!(
                "step {} needs {} distinct people; the roll call cannot fill that",
                i + 1,
                want.join(" and ")
            ));
        }
    }
    Ok(())
}

/// Custody step `step` calls on `n` distinct custodians in `role`: the roll call must
/// have them.
pub fn check_custodians(
    roster: &[Participant],
    step: &str,
    role: &str,
    n: usize,
) -> Result<(), String> {
    let have = roster
        .iter()
        .filter(|p| p.roles.iter().any(|r| r == role))
        .count();
    if have < n {
        return Err(format!(
            "step {step} calls on {n} custodians ({role}), one per share; the roll call has {have}"
        ));
    }
    Ok(())
}

/// Whether distinct people of `roster` can fill every seat of `need` (role, count): a
/// bipartite matching of seats to people.
fn fills(roster: &[Participant], need: &[(String, usize)]) -> bool {
    let seats: Vec<&str> = need
        .iter()
        .flat_map(|(r, n)| std::iter::repeat_n(r.as_str(), *n))
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; roster.len()];
    fn augment(
        seat: usize,
        seats: &[&str],
        roster: &[Participant],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for (p, person) in roster.iter().enumerate() {
            if seen[p] || !person.roles.iter().any(|r| r == seats[seat]) {
                continue;
            }
            seen[p] = true;
            let free = match owner[p] {
                None => true,
                Some(other) => augment(other, seats, roster, owner, seen),
            };
            if free {
                owner[p] = Some(seat);
                return true;
            }
        }
        false
    }
    (0..seats.len()).all(|s| {
        let mut seen = vec![false; roster.len()];
        augment(s, &seats, roster, &mut owner, &mut seen)
    })
}

/// The roster entry a typed name means, if any.
pub fn find<'a>(roster: &'a [Participant], name: &str) -> Option<&'a Participant> {
    let k = person_key(name);
    roster.iter().find(|p| person_key(&p.name) == k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, roles: &[&str]) -> Participant {
        Participant {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn four_spellings_are_one_person() {
        let k = person_key("Walt");
        for s in [
            "walt",
            "Walt ",
            "Wal\u{200b}t",
            " WALT",
            "Ｗａｌｔ",
            "Walt\u{202e}",
        ] {
            assert_eq!(person_key(s), k, "{s:?}");
        }
        assert_ne!(person_key("Walter"), k);
        assert_eq!(person_key("Ada  Lovelace"), person_key("ada lovelace"));
    }

    #[test]
    fn a_roster_lists_each_person_once_and_fills_each_step() {
        let roles: BTreeMap<String, u32> =
            [("admin".to_string(), 1), ("witness".to_string(), 2)].into();
        let steps = vec![vec![("admin".to_string(), 1), ("witness".to_string(), 2)]];
        let ok = vec![
            p("Ada", &["admin", "witness"]),
            p("Walt", &["witness"]),
            p("Wanda", &["witness"]),
        ];
        check_roster(&ok, &roles, &steps).unwrap();
        // Ada cannot be admin and witness on one step: two witnesses left are needed.
        let short = vec![p("Ada", &["admin", "witness"]), p("Walt", &["witness"])];
        assert!(check_roster(&short, &roles, &steps).is_err());
        let twice = vec![p("Walt", &["admin"]), p("walt ", &["witness"])];
        let e = check_roster(&twice, &roles, &steps).unwrap_err();
        assert!(e.contains("one person"), "{e}");
        let e = check_roster(&[p("X", &["auditor"])], &roles, &[]).unwrap_err();
        assert!(e.contains("no role \"auditor\""), "{e}");
        assert!(clean_name("  ").is_err());
        assert!(clean_name("Ada\u{7}").is_err());
    }
}
