//! The content scan of an export: personal data that must not
//! leave. The artifact is first decoded into what a person would read in it
//! ([`decode`]: encodings, compression, archives, spreadsheets), each text
//! normalized (Unicode compatibility forms, so full-width digits count), then
//! searched ([`detect`]) for resident ID numbers, mobile numbers, bank card
//! numbers and e-mail addresses, and for known sensitive values of the
//! catalog. A part that cannot be read is a finding of its own (`Unreadable`):
//! the scan fails closed. A finding says what kind and where, never the value.

pub mod decode;
pub mod detect;
#[cfg(test)]
mod proptests;
pub mod worker;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

pub use decode::{Content, Limits, Part};
pub use detect::{luhn_valid, resident_id_valid};

/// What was found, and where. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `ResidentId`, `MobilePhone`, `BankCard`, `Email`,
    /// `SensitiveField:<dataset>.<field>`, `Unreadable`, or `Untraceable`
    /// (the product cannot carry its delivery's fingerprint).
    pub kind: String,
    /// Where: `line L, column C` (1-based, in characters of the decoded
    /// text), prefixed with the part's position inside the artifact when it
    /// has parts (`entry 2 > gzip: line 2, column 7`); for `Unreadable`, the
    /// part and why, in the scanner's words. Never a name or byte read from
    /// the artifact: a location is written where every member reads it.
    pub location: String,
}

/// The kind of a part the scanner cannot read.
pub const UNREADABLE: &str = "Unreadable";

/// Known sensitive values to look for: (finding kind, values).
pub type Sensitive = [(String, Vec<String>)];

/// Unicode compatibility forms to their plain forms (NFKC), so that
/// full-width digits and separators count. ASCII text is returned as it is.
pub fn normalize(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfkc().collect())
    }
}

/// Line and column (1-based, in characters) of each offset, in one pass;
/// `offsets` must be sorted.
fn locations(text: &[u8], offsets: &[usize]) -> Vec<String> {
    let mut out = Vec::with_capacity(offsets.len());
    let (mut line, mut line_start, mut at) = (1, 0, 0);
    for &offset in offsets {
        for (k, b) in text[at..offset].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = at + k + 1;
            }
        }
        at = offset;
        let column = String::from_utf8_lossy(&text[line_start..offset])
            .chars()
            .count()
            + 1;
        out.push(format!("line {line}, column {column}"));
    }
    out
}

/// Scans one decoded text: personal data, and the known sensitive values.
fn scan_text(text: &str, sensitive: &Sensitive) -> Vec<Finding> {
    let normalized = normalize(text);
    let bytes = normalized.as_bytes();
    let mut hits: Vec<(usize, String)> = detect::find(bytes)
        .into_iter()
        .map(|h| (h.offset, h.kind.as_str().to_string()))
        .collect();
    let patterns: Vec<(&str, &str)> = sensitive
        .iter()
        .flat_map(|(kind, values)| {
            values
                .iter()
                .filter(|v| v.chars().count() >= 4)
                .map(move |v| (kind.as_str(), v.as_str()))
        })
        .collect();
    if !patterns.is_empty()
        && let Ok(ac) =
            aho_corasick::AhoCorasick::new(patterns.iter().map(|(_, v)| normalize(v).into_owned()))
    {
        for m in ac.find_iter(bytes) {
            hits.push((m.start(), patterns[m.pattern().as_usize()].0.to_string()));
        }
    }
    hits.sort();
    let offsets: Vec<usize> = hits.iter().map(|(o, _)| *o).collect();
    hits.into_iter()
        .zip(locations(bytes, &offsets))
        .map(|((_, kind), location)| Finding { kind, location })
        .collect()
}

/// Scans text that is already decoded (UTF-8): personal data only.
pub fn scan(text: &[u8]) -> Vec<Finding> {
    scan_text(&String::from_utf8_lossy(text), &[])
}

/// Finds known sensitive values (e.g. the raw values of catalog fields marked
/// Sensitive) in decoded text; `kind` names the field. Values shorter than 4
/// characters are ignored (too common to mean anything).
pub fn scan_values(text: &[u8], kind: &str, values: &[String]) -> Vec<Finding> {
    let sensitive = [(kind.to_string(), values.to_vec())];
    scan_text(&String::from_utf8_lossy(text), &sensitive)
        .into_iter()
        .filter(|f| f.kind == kind)
        .collect()
}

/// Scans an artifact as a reviewer would read it: decoded into its parts,
/// each text part normalized and searched; every part that cannot be read is
/// an `Unreadable` finding. The verdict of the export review.
pub fn scan_artifact(bytes: &[u8], sensitive: &Sensitive, limits: &Limits) -> Vec<Finding> {
    let at = |part: &str, what: String| {
        if part.is_empty() {
            what
        } else {
            format!("{part}: {what}")
        }
    };
    let mut out = Vec::new();
    for part in decode::parts(bytes, limits) {
        match part.content {
            Content::Text(text) => {
                for f in scan_text(&text, sensitive) {
                    out.push(Finding {
                        kind: f.kind,
                        location: at(&part.at, f.location),
                    });
                }
            }
            Content::Unreadable(why) => out.push(Finding {
                kind: UNREADABLE.into(),
                location: at(&part.at, why),
            }),
        }
    }
    out
}

/// The kind of a product that cannot carry its delivery's fingerprint.
pub const UNTRACEABLE: &str = "Untraceable";

/// What the review of a product found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Personal data, unreadable parts, and `Untraceable` when the product
    /// cannot carry its fingerprint.
    pub findings: Vec<Finding>,
    /// How many distinct values will carry the fingerprint, when it can.
    pub marks: Option<usize>,
}

/// The whole review of a product before it may leave: the content scan, and
/// whether it can carry a fingerprint that traces a leaked copy to its
/// delivery ([`crate::fingerprint`]). Either kind of finding needs the
/// bureau's recorded override.
pub fn review(name: &str, bytes: &[u8], sensitive: &Sensitive, limits: &Limits) -> Review {
    let mut findings = scan_artifact(bytes, sensitive, limits);
    let marks = match crate::fingerprint::traceable(name, bytes) {
        Ok(marks) => Some(marks),
        Err(why) => {
            findings.push(Finding {
                kind: UNTRACEABLE.into(),
                location: why.to_string(),
            });
            None
        }
    };
    Review { findings, marks }
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
    fn full_width_digits_and_ideographic_spaces_count_after_normalization() {
        assert_eq!(normalize("１３８　１２３４　５６７８"), "138 1234 5678");
        assert_eq!(
            scan("电话：１３８１２３４５６７８。".as_bytes())[0].kind,
            "MobilePhone"
        );
        assert_eq!(
            scan("身份证 １１０１０５１９４９１２３１００２Ｘ".as_bytes())[0].kind,
            "ResidentId"
        );
        // The negative twin: a full-width order number with a wrong check character.
        assert!(scan("订单 １１０１０５１９４９１２３１００２１".as_bytes()).is_empty());
        // ASCII is not copied.
        assert!(matches!(normalize("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_verdict_of_an_artifact_names_the_part_and_fails_closed() {
        let csv = "区,电话\n北,+86 138 1234 5678\n";
        let gz = decode::tests::gzip(&decode::tests::utf16le(csv, true));
        let f = scan_artifact(&gz, &[], &Limits::default());
        assert_eq!(
            f,
            [Finding {
                kind: "MobilePhone".into(),
                location: "gzip: line 2, column 3".into()
            }]
        );
        let f = scan_artifact(&[0, 159, 146, 150, 0, 1, 2], &[], &Limits::default());
        assert_eq!(f[0].kind, UNREADABLE);
        assert!(f[0].location.starts_with("binary data"), "{f:?}");
        // Catalog values after the same decoding and normalization.
        let values = [(
            "SensitiveField:r.name".to_string(),
            vec!["ZHANG-7731".to_string()],
        )];
        let gz = decode::tests::gzip("a,b\nx,ＺＨＡＮＧ－７７３１\n".as_bytes());
        let f = scan_artifact(&gz, &values, &Limits::default());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, "SensitiveField:r.name");
    }

    /// A prod job can name a zip's entries, and a workbook's sheets, after
    /// rows; the review states where a finding is by position only.
    #[test]
    fn entry_and_sheet_names_never_reach_a_location() {
        let row = "zhang-san-13812345678";
        let sheet = decode::tests::xlsx_of(&[&["a", ID]]);
        let zip = decode::tests::zip_of(&[
            (&format!("{row}.csv"), format!("x,{ID}\n").as_bytes()),
            (&format!("{row}/{row}.xlsx"), &sheet),
            (&format!("{row}.bin"), &[0, 159, 146, 150, 0, 1]),
            (&format!("{row}.gz"), &[0x1f, 0x8b, 0x08, 0x00, 0x01]),
        ]);
        let f = scan_artifact(&zip, &[], &Limits::default());
        let locations: Vec<&str> = f.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "entry 1: line 1, column 3",
                "entry 2 > sheet 1: line 1, column 3",
                "entry 3: binary data in no known format or text encoding",
                "entry 4: a damaged gzip stream",
            ]
        );
        let json = serde_json::to_string(&f).unwrap();
        assert!(
            !json.contains("zhang") && !json.contains("1381234"),
            "{json}"
        );
    }

    #[test]
    fn indicator_tables_are_clean() {
        let report = b"district,commuters,avg_minutes\nNorth,40213,37.5\nSouth,18877,29.1\n";
        assert!(scan(report).is_empty());
    }
}
