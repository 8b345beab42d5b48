//! Benchmark (not a test): the export content scan's throughput on a
//! generated 50 MB artifact (an indicator table with a few personal values
//! planted). Prints MB/s. `cargo run --release -p publicdata-operator --bin bench_scan [MB]`.
use std::time::Instant;

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let target = mb * 1024 * 1024;
    let mut text = String::with_capacity(target + 256);
    text.push_str("district,line,date,boardings,avg_minutes,note\n");
    let mut i: u64 = 0;
    while text.len() < target {
        i += 1;
        let note = match i % 50_000 {
            0 => "contact 13812345678",
            25_000 => "owner 11010519491231002X",
            _ => "-",
        };
        text.push_str(&format!(
            "district-{},{},2026-{:02}-{:02},{},{}.{},{}\n",
            i % 97,
            i % 431,
            i % 12 + 1,
            i % 28 + 1,
            (i * 7919) % 100_000,
            i % 60,
            i % 10,
            note
        ));
    }
    let bytes = text.as_bytes();
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..3 {
        let start = Instant::now();
        findings = publicdata_operator::scan::scan(bytes).len();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let size = bytes.len() as f64 / 1024.0 / 1024.0;
    println!(
        "scan: {size:.1} MB in {best:.3}s (best of 3) = {:.1} MB/s; {findings} findings",
        size / best
    );
}
