//! Benchmark (not a test) of deliveries' fingerprints: marking a generated
//! table, and tracing a leaked copy (rows reversed, a column dropped, saved
//! again) against many deliveries; with the evidence each trace had.
//! `cargo run --release -p publicdata-operator --bin bench_fingerprint [MB] [DELIVERIES]`
//! (default 50 MB, 1,000 deliveries).

use std::time::Instant;

use publicdata_operator::fingerprint::{Key, Verdict, mark, observe, score, verdict};

/// A table of `target` bytes: district flows by day, with counts, shares
/// and peak hours; every share a distinct decimal.
fn product(target: usize) -> String {
    let districts = [
        "North",
        "Harbor",
        "Old Town",
        "University",
        "Airport",
        "Riverside",
    ];
    let mut text = String::with_capacity(target + 256);
    text.push_str("date,district_from,district_to,commuters,share,peak_hour\n");
    let mut i: u64 = 0;
    while text.len() < target {
        i += 1;
        text.push_str(&format!(
            "2026-{:02}-{:02},{},{},{},0.{:07},0{}:{}0\n",
            i % 12 + 1,
            i % 28 + 1,
            districts[(i % 6) as usize],
            districts[(i / 6 % 6) as usize],
            (i * 7919) % 100_000,
            (i * 104_729) % 9_999_991 + 1,
            7 + i % 3,
            i % 6,
        ));
    }
    text
}

/// What a leaker does: rows reversed, the third column dropped, saved again
/// with quoting only where needed.
fn leak(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    std::iter::once(header)
        .chain(lines)
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            let kept: Vec<&str> = fields
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != 2)
                .map(|(_, f)| f.trim_matches('"'))
                .collect();
            kept.join(",") + "\r\n"
        })
        .collect()
}

fn key(n: u32) -> Key {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&n.to_le_bytes());
    Key(k)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let deliveries: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let table = product(mb * 1024 * 1024);
    let keys: Vec<Key> = (0..deliveries).map(key).collect();
    let size = table.len() as f64 / 1024.0 / 1024.0;
    println!("deliveries' fingerprints, {mb} MB table, one core:");

    let start = Instant::now();
    let marked = match mark("flows.csv", table.as_bytes(), &keys[7]) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("the table cannot be marked: {e}");
            std::process::exit(1);
        }
    };
    let took = start.elapsed().as_secs_f64();
    println!(
        "  mark                      {:8.1} MB/s ({took:.2} s), {} distinct values carry a mark, {:+.1}% bytes",
        size / took,
        marked.marks,
        (marked.bytes.len() as f64 / table.len() as f64 - 1.0) * 100.0
    );

    let copy = leak(&String::from_utf8_lossy(&marked.bytes));
    for (what, file) in [
        ("trace the leaked copy", copy.as_str()),
        ("trace the undelivered table", table.as_str()),
    ] {
        let start = Instant::now();
        let observed = observe(file.as_bytes());
        let read = start.elapsed().as_secs_f64();
        let scores: Vec<_> = keys.iter().map(|k| score(&observed, k)).collect();
        let found = verdict(&scores);
        let took = start.elapsed().as_secs_f64();
        let answer = match &found {
            Verdict::Traced(d) => format!(
                "traced to delivery {:?}: {} of {} values agree",
                d, scores[d[0]].agree, scores[d[0]].units
            ),
            Verdict::CannotTell(why) => format!("not traced ({why})"),
        };
        println!(
            "  {what:<27} {took:6.2} s against {deliveries} deliveries (reading {read:.2} s); {answer}"
        );
    }
}
