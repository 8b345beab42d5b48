use super::*;

fn key(n: u8) -> Key {
    Key([n; 32])
}

/// A product as a prod job writes it: districts, counts, shares, times.
fn product(rows: usize) -> String {
    let districts = ["North", "Harbor", "Old Town", "University", "East, New"];
    let mut out = String::from("district_from,district_to,weekday_commuters,share,peak_hour\n");
    for i in 0..rows {
        let quoted = |d: &str| {
            if d.contains(',') {
                format!("\"{d}\"")
            } else {
                d.to_string()
            }
        };
        out.push_str(&format!(
            "{},{},{},0.{:03},0{}:{}0\n",
            quoted(districts[i % 5]),
            quoted(districts[(i / 5) % 5]),
            1000 + 37 * i,
            (i * 7919) % 997 + 1,
            7 + i % 3,
            i % 6,
        ));
    }
    out
}

/// Fields of a CSV text, as any reader sees them (quotes removed).
fn values(text: &str) -> Vec<Vec<String>> {
    parse(text, ',', true)
        .map(|t| {
            t.rows
                .into_iter()
                .map(|r| r.into_iter().map(|f| f.text).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn same_number(a: &str, b: &str) -> bool {
    a == b || canonical(a) == canonical(b)
}

/// What a leaker does: rows reversed, one column dropped, saved again by a
/// CSV writer that quotes only where it must, with CRLF line endings.
fn leak(text: &str, drop_column: usize) -> String {
    let mut rows = values(text);
    let header = rows.remove(0);
    rows.reverse();
    rows.insert(0, header);
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(j, _)| *j != drop_column)
                .map(|(_, v)| {
                    if v.contains(',') {
                        format!("\"{v}\"")
                    } else {
                        v.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .map(|l| l + "\r\n")
        .collect()
}

fn scores(file: &str, keys: &[Key]) -> Vec<Score> {
    let observed = observe(file.as_bytes());
    keys.iter().map(|k| score(&observed, k)).collect()
}

#[test]
fn marks_change_no_value_only_its_formatting() {
    let original = product(120);
    let marked = mark("index.csv", original.as_bytes(), &key(1)).unwrap();
    let text = String::from_utf8(marked.bytes).unwrap();
    assert_ne!(text, original, "a delivery carries marks");
    let (a, b) = (values(&original), values(&text));
    assert_eq!(a.len(), b.len());
    for (ra, rb) in a.iter().zip(&b) {
        assert_eq!(ra.len(), rb.len());
        for (va, vb) in ra.iter().zip(rb) {
            assert!(same_number(va, vb), "{va} became {vb}");
            if va != vb {
                assert_eq!(format!("{va}0"), *vb, "only a trailing zero is added");
            }
        }
    }
    assert!(marked.marks >= MIN_MARKS);
    // The quoted field with a comma stays quoted: it must be.
    assert!(text.contains("\"East, New\""));
}

#[test]
fn two_deliveries_of_one_product_differ_and_each_is_stable() {
    let original = product(120);
    let one = mark("index.csv", original.as_bytes(), &key(1)).unwrap();
    let again = mark("index.csv", original.as_bytes(), &key(1)).unwrap();
    let two = mark("index.csv", original.as_bytes(), &key(2)).unwrap();
    assert_eq!(one, again, "delivering again writes the same bytes");
    assert_ne!(one.bytes, two.bytes);
}

#[test]
fn an_intact_copy_is_traced_to_its_delivery_alone() {
    let original = product(120);
    let keys = [key(1), key(2), key(3)];
    let delivered = mark("index.csv", original.as_bytes(), &keys[1]).unwrap();
    let s = scores(std::str::from_utf8(&delivered.bytes).unwrap(), &keys);
    assert_eq!(s[1].agree, s[1].units);
    assert_eq!(verdict(&s), Verdict::Traced(vec![1]));
}

#[test]
fn a_copy_reordered_cut_and_saved_again_is_still_traced() {
    let original = product(120);
    let keys: Vec<Key> = (1..=20).map(key).collect();
    let delivered = mark("index.csv", original.as_bytes(), &keys[7]).unwrap();
    let text = String::from_utf8(delivered.bytes).unwrap();
    // The quoting is gone with the re-save; the zeros stay.
    let leaked = leak(&text, 1);
    assert!(!leaked.contains("\"North\""));
    assert_eq!(verdict(&scores(&leaked, &keys)), Verdict::Traced(vec![7]));
    // A third of the rows, copied out as text.
    let part: String = text
        .lines()
        .skip(40)
        .take(40)
        .map(|l| l.to_string() + "\n")
        .collect();
    assert_eq!(verdict(&scores(&part, &keys)), Verdict::Traced(vec![7]));
    // The numbers alone, pasted into prose.
    let prose: String = values(&text)
        .iter()
        .skip(1)
        .map(|r| format!("share {} of the flow; ", r[3]))
        .collect();
    assert_eq!(verdict(&scores(&prose, &keys)), Verdict::Traced(vec![7]));
}

#[test]
fn the_original_and_unrelated_files_are_traced_to_no_delivery() {
    let original = product(120);
    let keys: Vec<Key> = (1..=50).map(key).collect();
    for k in &keys[..3] {
        mark("index.csv", original.as_bytes(), k).unwrap();
    }
    // The undelivered original: its formatting is no delivery's.
    assert!(matches!(
        verdict(&scores(&original, &keys)),
        Verdict::CannotTell(_)
    ));
    // Another product with numbers of its own.
    let other: String = (0..300)
        .map(|i| format!("{i},{}.{}\n", i * 3, (i * 13) % 1000))
        .collect();
    let Verdict::CannotTell(why) = verdict(&scores(&other, &keys)) else {
        panic!("an unrelated file was traced")
    };
    assert!(why.contains("no delivery's marks stand out"), "{why}");
    // Too little left to tell.
    let Verdict::CannotTell(why) = verdict(&scores("a,b\n0.5,0.25\n", &keys)) else {
        panic!("two values were traced")
    };
    assert!(why.contains("too few"), "{why}");
}

#[test]
fn a_file_mixing_two_deliveries_names_both() {
    let original = product(200);
    let keys = [key(1), key(2), key(3)];
    let a = String::from_utf8(mark("a.csv", original.as_bytes(), &keys[0]).unwrap().bytes).unwrap();
    let b = String::from_utf8(mark("b.csv", original.as_bytes(), &keys[2]).unwrap().bytes).unwrap();
    let mixed: String = a
        .lines()
        .take(100)
        .chain(b.lines().skip(100))
        .map(|l| l.to_string() + "\n")
        .collect();
    let Verdict::Traced(found) = verdict(&scores(&mixed, &keys)) else {
        panic!("a mix of two deliveries was not traced")
    };
    let mut found = found;
    found.sort();
    assert_eq!(found, vec![0, 2]);
}

#[test]
fn what_cannot_carry_a_fingerprint_says_why() {
    assert_eq!(
        capacity("report.pdf", b"%PDF-1.7"),
        Err(Unmarkable::NotATable)
    );
    assert_eq!(
        capacity("data.csv", &[0xff, 0xfe, 0x41]),
        Err(Unmarkable::NotText)
    );
    assert_eq!(
        capacity("data.csv", b"a,b\n\"open,1\n"),
        Err(Unmarkable::Unbalanced(2))
    );
    let small = "district,commuters\nNorth,40213\nHarbor,18760\n";
    assert_eq!(capacity("index.csv", small.as_bytes()), Ok(6));
    assert_eq!(
        mark("index.csv", small.as_bytes(), &key(1)),
        Err(Unmarkable::TooFew(6))
    );
}

#[test]
fn tsv_is_marked_by_zeros_only_and_quotes_stay_literal() {
    let mut tsv = String::from("area\tshare\tnote\n");
    for i in 0..100 {
        tsv.push_str(&format!("a{i}\t0.{}\t\"as is\"\n", 100 + i * 7));
    }
    let marked = mark("index.tsv", tsv.as_bytes(), &key(4)).unwrap();
    let text = String::from_utf8(marked.bytes).unwrap();
    assert_eq!(marked.marks, 100);
    assert_eq!(
        text.matches("\"as is\"").count(),
        100,
        "no quoting is added in TSV"
    );
    assert!(!text.contains("\"a1\""));
    assert_eq!(
        verdict(&scores(&text, &[key(3), key(4)])),
        Verdict::Traced(vec![1])
    );
}

#[test]
fn identifiers_and_integers_are_never_touched() {
    let mut csv = String::from("resident,phone,count,version,share\n");
    for i in 0..80 {
        csv.push_str(&format!(
            "3101731990{i:08},138{i:08},{i},v1.{i},0.{}\n",
            500 + i
        ));
    }
    let marked = String::from_utf8(mark("x.csv", csv.as_bytes(), &key(9)).unwrap().bytes).unwrap();
    for (a, b) in values(&csv).iter().zip(values(&marked).iter()) {
        assert_eq!(a[..4], b[..4]);
    }
}

#[test]
fn the_line_ending_and_the_final_newline_are_kept() {
    let crlf = product(70).replace('\n', "\r\n");
    let marked = String::from_utf8(mark("x.csv", crlf.as_bytes(), &key(1)).unwrap().bytes).unwrap();
    assert!(marked.ends_with("\r\n"));
    assert_eq!(marked.matches("\r\n").count(), 71);
    let bare = product(70);
    let bare = bare.trim_end();
    let marked = String::from_utf8(mark("x.csv", bare.as_bytes(), &key(1)).unwrap().bytes).unwrap();
    assert!(!marked.ends_with('\n'));
}

#[test]
fn the_binomial_tail_is_right_where_it_matters() {
    // P(X >= 10 | n = 10) = 2^-10.
    assert!((ln_tail(10, 10) - (-10.0 * std::f64::consts::LN_2)).abs() < 1e-9);
    // P(X >= 9 | n = 10) = 11 / 1024.
    assert!((ln_tail(10, 9) - (11.0f64 / 1024.0).ln()).abs() < 1e-9);
    assert_eq!(ln_tail(10, 0), 0.0);
    assert!(ln_tail(10_000, 10_000).is_finite());
    assert_eq!(chance_text(ln_tail(10, 10)), "9.8e-4");
    assert_eq!(min_units(1), 20);
}

#[test]
fn a_large_copy_is_compared_on_a_bounded_sample_and_still_traced() {
    let original = product(6000);
    let keys: Vec<Key> = (1..=5).map(key).collect();
    let marked = mark("big.csv", original.as_bytes(), &keys[3]).unwrap();
    assert!(marked.marks > MAX_UNITS);
    let text = String::from_utf8(marked.bytes).unwrap();
    assert_eq!(observe(text.as_bytes()).units(), MAX_UNITS);
    assert_eq!(verdict(&scores(&text, &keys)), Verdict::Traced(vec![3]));
}

#[test]
fn numbers_in_chinese_text_count_where_they_stand_alone() {
    let observed = observe("人数，0.50；比例0.25".as_bytes());
    assert!(
        observed
            .seen
            .contains_key(&(Layer::Zeros, "0.5".to_string()))
    );
    assert!(
        !observed
            .seen
            .contains_key(&(Layer::Zeros, "0.25".to_string())),
        "a number glued to a word is part of it"
    );
}
