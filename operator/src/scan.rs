//! The content scan of an export: personal data that must not leave.
//! Finds Chinese resident ID numbers (check character verified), mobile
//! phone numbers, bank card numbers (Luhn-checked) and e-mail addresses.
//! A finding says what kind and where (line and column), never the value.

use serde::{Deserialize, Serialize};

/// What was found, and where. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `ResidentId`, `MobilePhone`, `BankCard` or `Email`.
    pub kind: String,
    /// `line L, column C` (1-based, in characters of the artifact's text).
    pub location: String,
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Whether 18 characters are a resident ID number with a valid check character.
pub fn resident_id_valid(s: &[u8]) -> bool {
    if s.len() != 18 || !s[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = s[..17]
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let expected = ID_CHECK[(sum % 11) as usize];
    s[17].to_ascii_uppercase() == expected
}

/// Luhn check of a digit string.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

fn location(text: &[u8], offset: usize) -> String {
    let before = &text[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&text[line_start..offset])
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}")
}

fn is_email_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Scans an artifact's text.
pub fn scan(text: &[u8]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let n = text.len();
    let mut i = 0;
    while i < n {
        let b = text[i];
        // A run of digits (with a possible trailing X for an ID), bounded by non-digits.
        if b.is_ascii_digit() && (i == 0 || !text[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < n && text[j].is_ascii_digit() {
                j += 1;
            }
            let mut run = &text[i..j];
            let mut end = j;
            if run.len() == 17 && j < n && (text[j] == b'X' || text[j] == b'x') {
                end = j + 1;
                run = &text[i..end];
            }
            let bounded = end == n || !text[end].is_ascii_alphanumeric();
            if bounded {
                let kind = if run.len() == 18 && resident_id_valid(run) {
                    Some("ResidentId")
                } else if run.len() == 11 && run[0] == b'1' && (b'3'..=b'9').contains(&run[1]) {
                    Some("MobilePhone")
                } else if (13..=19).contains(&run.len())
                    && run.iter().all(u8::is_ascii_digit)
                    && luhn_valid(run)
                {
                    Some("BankCard")
                } else {
                    None
                };
                if let Some(kind) = kind {
                    findings.push(Finding {
                        kind: kind.into(),
                        location: location(text, i),
                    });
                }
            }
            i = end.max(i + 1);
            continue;
        }
        if b == b'@' && i > 0 && is_email_char(text[i - 1]) {
            let mut start = i;
            while start > 0 && is_email_char(text[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < n && (text[end].is_ascii_alphanumeric() || matches!(text[end], b'.' | b'-'))
            {
                end += 1;
            }
            let domain = &text[i + 1..end];
            let dot = domain.iter().rposition(|&c| c == b'.');
            if dot.is_some_and(|d| d > 0 && domain.len() - d > 2) {
                findings.push(Finding {
                    kind: "Email".into(),
                    location: location(text, start),
                });
                i = end;
                continue;
            }
        }
        i += 1;
    }
    findings
}

/// Finds known sensitive values (e.g. the raw values of catalog fields marked
/// Sensitive) appearing verbatim in the text; `kind` names the field. Values
/// shorter than 4 characters are ignored (too common to mean anything).
pub fn scan_values(text: &[u8], kind: &str, values: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for value in values.iter().filter(|v| v.len() >= 4) {
        let needle = value.as_bytes();
        let mut from = 0;
        while let Some(pos) = text[from..].windows(needle.len()).position(|w| w == needle) {
            out.push(Finding {
                kind: kind.into(),
                location: location(text, from + pos),
            });
            from += pos + needle.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-known test ID number (GB 11643 example).
    const ID: &str = "11010519491231002X";

    #[test]
    fn resident_ids_need_a_valid_check_character() {
        assert!(resident_id_valid(ID.as_bytes()));
        assert!(!resident_id_valid(b"110105194912310021"));
        assert!(!resident_id_valid(b"11010519491231002"));
    }

    #[test]
    fn findings_give_kind_and_location_never_the_value() {
        let text = format!("district,count\nA,3\nowner {ID} phone 13812345678\n");
        let f = scan(text.as_bytes());
        assert_eq!(
            f,
            [
                Finding {
                    kind: "ResidentId".into(),
                    location: "line 3, column 7".into()
                },
                Finding {
                    kind: "MobilePhone".into(),
                    location: "line 3, column 32".into()
                },
            ]
        );
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains(ID) && !json.contains("13812345678"));
    }

    #[test]
    fn an_invalid_18_digit_number_is_not_a_finding() {
        assert!(scan(b"ref 110105194912310021 ok").is_empty());
    }

    #[test]
    fn bank_cards_are_luhn_checked_and_emails_found() {
        assert_eq!(scan(b"card 4111111111111111")[0].kind, "BankCard");
        assert!(scan(b"card 4111111111111112").is_empty());
        assert_eq!(scan(b"mail li.ming@example.com now")[0].kind, "Email");
        assert!(scan(b"ratio 3@4 and a@b").is_empty());
    }

    #[test]
    fn known_sensitive_values_are_found_by_field_not_by_value() {
        let f = scan_values(
            b"a,b\nx,LR-7731-ZHANG\n",
            "SensitiveField:enterprise-registry.legal_representative_id",
            &["LR-7731-ZHANG".into(), "ab".into()],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].location, "line 2, column 3");
        assert!(!serde_json::to_string(&f).unwrap().contains("LR-7731"));
    }

    #[test]
    fn indicator_tables_are_clean() {
        let report = b"district,commuters,avg_minutes\nNorth,40213,37.5\nSouth,18877,29.1\n";
        assert!(scan(report).is_empty());
    }
}
