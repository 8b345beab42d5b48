//! Benchmark (not a test) of the export scan: throughput on a generated data
//! product, as plain text and through each decoder, and the false-positive
//! figure: the same product made without any personal data must give zero
//! findings. `cargo run --release -p publicdata-operator --bin bench_scan [MB]`.

use std::io::Write;
use std::time::Instant;

use publicdata_operator::scan::{Limits, resident_id_valid, scan_artifact};

/// A product of `target` bytes: an indicator table with dates, 13-digit
/// millisecond timestamps, amounts, versions and 18-digit order numbers
/// whose check character is wrong. With `plant`, a resident ID and a mobile
/// number every 50,000 rows.
fn product(target: usize, plant: bool) -> String {
    let mut text = String::with_capacity(target + 256);
    text.push_str("district,line,date,ts_ms,boardings,avg_minutes,order,version,note\n");
    let mut i: u64 = 0;
    while text.len() < target {
        i += 1;
        let mut order = format!("{:018}", 110_105_000_000_000_000u64 + i * 7_919);
        if resident_id_valid(order.as_bytes()) {
            order.replace_range(17.., if order.ends_with('0') { "1" } else { "0" });
        }
        let note = match (plant, i % 50_000) {
            (true, 0) => "contact 138 1234 5678",
            (true, 25_000) => "owner 11010519491231002X",
            _ => "-",
        };
        text.push_str(&format!(
            "district-{},{},2026-{:02}-{:02},{},{},{}.{},ORD-{order},v1.{}.{},{note}\n",
            i % 97,
            i % 431,
            i % 12 + 1,
            i % 28 + 1,
            1_732_700_000_000u64 + i * 1_000,
            (i * 7919) % 100_000,
            i % 60,
            i % 10,
            i % 20,
            i % 7,
        ));
    }
    text
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let _ = w.start_file(name, zip::write::SimpleFileOptions::default());
    let _ = w.write_all(data);
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// Best of three: (MB/s of the input, findings).
fn measure(input: &[u8], text_len: usize) -> (f64, f64, usize) {
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..3 {
        let start = Instant::now();
        findings = scan_artifact(input, &[], &Limits::default()).len();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let mb = |n: usize| n as f64 / 1024.0 / 1024.0;
    (mb(input.len()) / best, mb(text_len) / best, findings)
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let text = product(mb * 1024 * 1024, true);
    let bytes = text.as_bytes();
    let utf16: Vec<u8> = std::iter::once([0xffu8, 0xfe])
        .chain(text.encode_utf16().map(u16::to_le_bytes))
        .flatten()
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain text (ASCII)", bytes.to_vec()),
        ("UTF-16LE text", utf16),
        ("gzip", gzip(bytes)),
        ("zstd", zstd::encode_all(bytes, 3).unwrap_or_default()),
        ("zip (deflate)", zip_of("p.csv", bytes)),
    ];
    println!("export scan, {mb} MB product, best of 3, one core:");
    for (what, input) in &cases {
        let (input_rate, text_rate, findings) = measure(input, bytes.len());
        println!(
            "  {what:<20} {input_rate:8.1} MB/s of input, {text_rate:8.1} MB/s of text; {findings} findings"
        );
    }
    let clean = product(mb * 1024 * 1024, false);
    let (_, rate, false_positives) = measure(clean.as_bytes(), clean.len());
    println!(
        "false positives: {false_positives} findings in a {mb} MB product without personal data \
         (dates, ms timestamps, amounts, versions, 18-digit order numbers) at {rate:.1} MB/s"
    );
}
