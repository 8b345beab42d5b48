//! Finding personal data in decoded, normalized text: resident ID numbers
//! (check character verified), mobile numbers (prefix checked, with or
//! without a country code), bank card numbers (issuer range and Luhn), e-mail
//! addresses. Digits may be grouped by spaces, hyphens or dots, in the groups
//! people write each kind in; every candidate is still validated, so ordinary
//! numbers (dates, amounts, timestamps, versions) are not flagged.
//!
//! One pass over the bytes with a table of the bytes that can start a
//! finding; everything else is skipped.

/// What kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    ResidentId,
    MobilePhone,
    BankCard,
    Email,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentId => "ResidentId",
            Self::MobilePhone => "MobilePhone",
            Self::BankCard => "BankCard",
            Self::Email => "Email",
        }
    }
}

/// A hit: its kind and the byte offset where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    pub offset: usize,
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The check character (GB 11643) of the first 17 digits of a resident ID
/// number, or `None` if they are not 17 digits.
pub fn resident_id_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

/// Whether 18 characters are a resident ID number with a valid check character.
pub fn resident_id_valid(s: &[u8]) -> bool {
    s.len() == 18 && resident_id_check_char(&s[..17]) == Some(s[17].to_ascii_uppercase())
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

/// A mainland mobile number: 11 digits, `1[3-9]…`.
fn mobile_valid(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1])
}

/// A payment card: 13 to 19 digits, an issuer range cards use (Amex, Visa,
/// Mastercard, UnionPay, Discover, JCB, Diners: first digit 2-6), Luhn-valid.
/// (A millisecond timestamp starts with 1 and is never one.)
fn card_valid(d: &[u8]) -> bool {
    (13..=19).contains(&d.len()) && (b'2'..=b'6').contains(&d[0]) && luhn_valid(d)
}

/// The group lengths people write each kind in (a single group is always
/// allowed). Anything else split by separators is not that kind.
fn grouped_as(kind: Kind, groups: &[usize]) -> bool {
    if groups.len() == 1 {
        return true;
    }
    match kind {
        Kind::ResidentId => matches!(groups, [6, 8, 4] | [6, 4, 4, 4] | [3, 3, 4, 4, 4]),
        Kind::MobilePhone => matches!(groups, [3, 4, 4] | [3, 8] | [7, 4]),
        // Groups of four, the last one shorter; or 6 + the rest (some UnionPay prints).
        Kind::BankCard => {
            let (last, head) = groups.split_last().unwrap_or((&0, &[]));
            (head.iter().all(|g| *g == 4) && (1..=4).contains(last))
                || matches!(groups, [6, 13] | [4, 6, 5] | [4, 6, 4])
        }
        Kind::Email => false,
    }
}

const SEPARATORS: &[u8] = b" -.";

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A run of digit groups: the digits (an `X` may end them), the group
/// lengths. On the stack: the scan meets a run at every number of a table.
struct Run {
    digits: [u8; 21],
    len: usize,
    groups: [usize; 8],
    ngroups: usize,
}

impl Run {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
    fn groups(&self) -> &[usize] {
        &self.groups[..self.ngroups]
    }
}

/// The run of digit groups at `start`, and where it ends. Groups are split by
/// one separator (the same one throughout); an `X` may end the digits (a
/// resident ID). Stops past 19 digits or 8 groups.
fn digit_run(text: &[u8], start: usize) -> (Run, usize) {
    let n = text.len();
    let mut run = Run {
        digits: [0; 21],
        len: 0,
        groups: [0; 8],
        ngroups: 0,
    };
    let mut sep: Option<u8> = None;
    let mut i = start;
    loop {
        let g = i;
        while i < n && text[i].is_ascii_digit() && run.len < 20 {
            run.digits[run.len] = text[i];
            run.len += 1;
            i += 1;
        }
        run.groups[run.ngroups] = i - g;
        run.ngroups += 1;
        // A trailing X of a resident ID.
        if run.len == 17 && i < n && (text[i] == b'X' || text[i] == b'x') {
            run.digits[run.len] = b'X';
            run.len += 1;
            run.groups[run.ngroups - 1] += 1;
            i += 1;
            break;
        }
        // Another group after one separator?
        if i + 1 < n
            && run.ngroups < 8
            && run.len < 19
            && SEPARATORS.contains(&text[i])
            && sep.is_none_or(|s| s == text[i])
            && text[i + 1].is_ascii_digit()
        {
            sep = Some(text[i]);
            i += 1;
            continue;
        }
        break;
    }
    (run, i)
}

/// The kind of a bounded digit run, if any. A country prefix (`86`, `0086`,
/// after a `+` or not) in front of a mobile number makes it a mobile number.
fn classify(digits: &[u8], groups: &[usize], plus: bool) -> Option<Kind> {
    if digits.len() == 18 && resident_id_valid(digits) && grouped_as(Kind::ResidentId, groups) {
        return Some(Kind::ResidentId);
    }
    if mobile_valid(digits) && grouped_as(Kind::MobilePhone, groups) {
        return Some(Kind::MobilePhone);
    }
    for prefix in [&b"86"[..], b"0086"] {
        if let Some(rest) = digits.strip_prefix(prefix)
            && mobile_valid(rest)
        {
            // The prefix is its own group, or glued to the number.
            let rest_groups: Vec<usize> = match groups.split_first() {
                Some((first, tail)) if *first == prefix.len() => tail.to_vec(),
                Some((first, tail)) if *first > prefix.len() => {
                    std::iter::once(first - prefix.len())
                        .chain(tail.iter().copied())
                        .collect()
                }
                _ => continue,
            };
            if grouped_as(Kind::MobilePhone, &rest_groups) {
                return Some(Kind::MobilePhone);
            }
        }
    }
    if !plus
        && digits.iter().all(u8::is_ascii_digit)
        && card_valid(digits)
        && grouped_as(Kind::BankCard, groups)
    {
        return Some(Kind::BankCard);
    }
    None
}

/// Bytes that can start a finding: digits, `+` (a country code), `@`.
const fn starts() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = true;
        b += 1;
    }
    t[b'+' as usize] = true;
    t[b'@' as usize] = true;
    t
}
static STARTS: [bool; 256] = starts();

fn is_email_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Every hit in `text` (ASCII-normalized: see `normalize`), in order.
pub fn find(text: &[u8]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let n = text.len();
    let mut i = 0;
    while i < n {
        // Skip what cannot start a finding.
        while i < n && !STARTS[text[i] as usize] {
            i += 1;
        }
        if i >= n {
            break;
        }
        let b = text[i];
        if b == b'@' {
            if let Some((start, end)) = email_at(text, i) {
                hits.push(Hit {
                    kind: Kind::Email,
                    offset: start,
                });
                i = end;
            } else {
                i += 1;
            }
            continue;
        }
        let plus = b == b'+';
        let start = if plus { i + 1 } else { i };
        let bounded_before = i == 0 || !is_word(text[i - 1]);
        if start >= n || !text[start].is_ascii_digit() || !bounded_before {
            // Inside a word or a longer number: skip the rest of it.
            i += 1;
            while i < n && is_word(text[i]) {
                i += 1;
            }
            continue;
        }
        // `+86 138…`: the country code is its own group.
        let (run, end) = digit_run(text, start);
        let bounded_after = end == n || !is_word(text[end]);
        if bounded_after && let Some(kind) = classify(run.digits(), run.groups(), plus) {
            hits.push(Hit { kind, offset: i });
        }
        i = end.max(i + 1);
        while i < n && is_word(text[i]) {
            i += 1;
        }
    }
    hits
}

/// An e-mail address around the `@` at `at`: (start, end).
fn email_at(text: &[u8], at: usize) -> Option<(usize, usize)> {
    if at == 0 || !is_email_char(text[at - 1]) {
        return None;
    }
    let mut start = at;
    while start > 0 && is_email_char(text[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < text.len()
        && (text[end].is_ascii_alphanumeric() || matches!(text[end], b'.' | b'-'))
    {
        end += 1;
    }
    let domain = &text[at + 1..end];
    let dot = domain.iter().rposition(|&c| c == b'.')?;
    (dot > 0 && domain.len() - dot > 2).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        find(text.as_bytes())
            .iter()
            .map(|h| h.kind.as_str())
            .collect()
    }

    #[test]
    fn resident_ids_plain_grouped_and_their_look_alikes() {
        assert_eq!(kinds("id 11010519491231002X."), ["ResidentId"]);
        assert_eq!(kinds("id 110105 19491231 002X"), ["ResidentId"]);
        assert_eq!(kinds("id 110105-1949-1231-002x"), ["ResidentId"]);
        // An order number of the same length with a wrong check character.
        assert!(kinds("order 110105194912310021").is_empty());
        assert!(kinds("order 110105 19491231 0021").is_empty());
        // Part of a longer number or a word.
        assert!(kinds("x11010519491231002X").is_empty());
        assert!(kinds("911010519491231002X7").is_empty());
    }

    #[test]
    fn mobiles_as_people_write_them_and_their_look_alikes() {
        for text in [
            "tel 13812345678",
            "tel 138-1234-5678",
            "tel 138 1234 5678",
            "tel 138.1234.5678",
            "tel +86 138 1234 5678",
            "tel +86-138-1234-5678",
            "tel +8613812345678",
            "tel 0086 13812345678",
            "tel 86-138-1234-5678",
            "tel 8613812345678",
        ] {
            assert_eq!(kinds(text), ["MobilePhone"], "{text}");
        }
        // Not a mobile prefix, wrong length, a mixed grouping, a version string.
        assert!(kinds("n 12812345678").is_empty());
        assert!(kinds("n 1381234567").is_empty());
        assert!(kinds("n 13-81234-5678").is_empty());
        assert!(kinds("v 13.8.12345678").is_empty());
        assert!(kinds("version 1.38.1234").is_empty());
    }

    #[test]
    fn cards_by_issuer_range_and_luhn_and_their_look_alikes() {
        assert_eq!(kinds("card 4111111111111111"), ["BankCard"]);
        assert_eq!(kinds("card 4111 1111 1111 1111"), ["BankCard"]);
        assert_eq!(kinds("card 6222-0212-3456-7890-128"), ["BankCard"]);
        assert!(kinds("card 4111111111111112").is_empty());
        // A 13-digit millisecond timestamp, Luhn-valid or not.
        assert!(kinds("t 1732700000007").is_empty());
        assert!(kinds("t 1732700000000").is_empty());
        // Amounts, dates, decimals.
        assert!(kinds("2026-05-01 12:30, 40213.75, 37.5").is_empty());
    }

    #[test]
    fn emails_are_found_and_ratios_are_not() {
        assert_eq!(kinds("mail li.ming@example.com now"), ["Email"]);
        assert!(kinds("ratio 3@4 and a@b").is_empty());
    }

    #[test]
    fn hits_give_their_offsets_in_order() {
        let text = b"a 13812345678 b 11010519491231002X";
        let hits = find(text);
        assert_eq!(
            hits,
            [
                Hit {
                    kind: Kind::MobilePhone,
                    offset: 2
                },
                Hit {
                    kind: Kind::ResidentId,
                    offset: 16
                }
            ]
        );
    }
}
