//! Properties of the whole scan: a valid identifier embedded in random text,
//! in any supported encoding and container, is always found, with its kind;
//! numbers whose check fails never are.

use proptest::prelude::*;

use super::decode::tests::{gzip, parquet_of, utf16le, zip_of};
use super::*;

fn check_char(first17: &[u8]) -> u8 {
    detect::resident_id_check_char(first17).unwrap_or(b'0')
}

fn luhn_digit(body: &[u8]) -> u8 {
    (0..10u8)
        .map(|d| b'0' + d)
        .find(|d| {
            let mut s = body.to_vec();
            s.push(*d);
            luhn_valid(&s)
        })
        .unwrap_or(b'0')
}

/// (kind, digits) of a valid identifier.
fn identifier() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        proptest::collection::vec(0u8..10, 17).prop_map(|d| {
            let mut s: Vec<u8> = d.iter().map(|x| b'0' + x).collect();
            s.push(check_char(&s));
            ("ResidentId", String::from_utf8(s).unwrap_or_default())
        }),
        (3u8..10, proptest::collection::vec(0u8..10, 9)).prop_map(|(second, rest)| {
            let mut s = vec![b'1', b'0' + second];
            s.extend(rest.iter().map(|x| b'0' + x));
            ("MobilePhone", String::from_utf8(s).unwrap_or_default())
        }),
        (
            prop_oneof![
                Just(b"4".to_vec()),
                Just(b"51".to_vec()),
                Just(b"62".to_vec())
            ],
            proptest::collection::vec(0u8..10, 14)
        )
            .prop_map(|(prefix, rest)| {
                let mut s = prefix;
                s.extend(rest.iter().map(|x| b'0' + x));
                s.truncate(15);
                let check = luhn_digit(&s);
                s.push(check);
                ("BankCard", String::from_utf8(s).unwrap_or_default())
            }),
    ]
}

/// Writes the identifier the way people do: whole, or in the kind's groups.
fn written(kind: &str, digits: &str, grouped: bool, sep: char) -> String {
    if !grouped {
        return digits.to_string();
    }
    let groups: &[usize] = match kind {
        "ResidentId" => &[6, 8, 4],
        "MobilePhone" => &[3, 4, 4],
        _ => &[4, 4, 4, 4],
    };
    let mut out = Vec::new();
    let mut at = 0;
    for g in groups {
        out.push(&digits[at..at + g]);
        at += g;
    }
    out.join(&sep.to_string())
}

fn filler() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("区".to_string()),
            Just("北".to_string()),
            Just(", ".to_string()),
            Just("\n".to_string()),
            "[a-z]{1,6}".prop_map(|s| format!("{s} ")),
        ],
        0..20,
    )
    .prop_map(|v| v.concat())
}

fn encode(text: &str, encoding: u8) -> Vec<u8> {
    match encoding {
        0 => text.as_bytes().to_vec(),
        1 => utf16le(text, true),
        2 => utf16le(text, false),
        _ => encoding_rs::GB18030.encode(text).0.into_owned(),
    }
}

fn contain(text: &str, bytes: Vec<u8>, container: u8) -> (String, Vec<u8>) {
    match container {
        // A Parquet column holds UTF-8 text whatever the encoding drawn.
        4 => ("p.parquet".into(), parquet_of(&["header", text])),
        0 => ("p.csv".into(), bytes),
        1 => ("p.csv.gz".into(), gzip(&bytes)),
        2 => (
            "p.csv.zst".into(),
            zstd::encode_all(&bytes[..], 1).unwrap_or_default(),
        ),
        _ => ("p.zip".into(), zip_of(&[("in/p.csv.gz", &gzip(&bytes))])),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_valid_identifier_is_found_in_any_encoding_and_container(
        (kind, digits) in identifier(),
        grouped in any::<bool>(),
        sep in prop_oneof![Just(' '), Just('-'), Just('.')],
        full_width in any::<bool>(),
        before in filler(),
        after in filler(),
        encoding in 0u8..4,
        container in 0u8..5,
    ) {
        let mut value = written(kind, &digits, grouped, sep);
        if full_width {
            // Full-width digits, as in Chinese text.
            value = value
                .chars()
                .map(|c| c.to_digit(10).map_or(c, |d| char::from_u32(0xFF10 + d).unwrap_or(c)))
                .collect();
        }
        let text = format!("{before} {value} {after}");
        let (name, bytes) = contain(&text, encode(&text, encoding), container);
        let findings = scan_artifact(&bytes, &[], &Limits::default());
        prop_assert!(
            findings.iter().any(|f| f.kind == kind),
            "{kind} {value:?} not found in {name} (encoding {encoding}): {findings:?}"
        );
        prop_assert!(findings.iter().all(|f| f.kind == kind), "{findings:?}");
    }

    #[test]
    fn numbers_whose_check_fails_are_never_found(
        body in proptest::collection::vec(0u8..10, 17),
        wrong in 0u8..10,
        card in proptest::collection::vec(0u8..10, 15),
        before in filler(),
    ) {
        let mut id: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
        let good = check_char(&id);
        let bad = if b'0' + wrong == good { if good == b'9' { b'0' } else { b'9' } } else { b'0' + wrong };
        prop_assume!(bad != good);
        id.push(bad);
        let mut c: Vec<u8> = std::iter::once(b'4').chain(card.iter().map(|d| b'0' + d)).collect();
        let check = luhn_digit(&c[..15]);
        c[15] = if c[15] == check { b'0' + (check - b'0' + 1) % 10 } else { c[15] };
        let not_mobile = format!("1{}{}", ["0", "1", "2"][usize::from(wrong % 3)], "23456789");
        let text = format!(
            "{before} {} {} {not_mobile}0 ",
            String::from_utf8_lossy(&id),
            String::from_utf8_lossy(&c)
        );
        prop_assert_eq!(scan(text.as_bytes()), vec![]);
    }
}
