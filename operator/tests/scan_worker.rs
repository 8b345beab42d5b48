//! The export scan's worker, as the operator runs it: a child process of the
//! operator's own binary, its heap capped by the kernel. Bytes a tenant chose
//! end as a finding, never as memory the operator loses.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use publicdata_operator::scan::worker::Worker;

fn operator() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_publicdata-operator"))
}

/// `len` zero bytes, gzipped (a thousandfold and more).
fn gzip_of_zeros(len: usize) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..len / block.len() {
        gz.write_all(&block)?;
    }
    gz.finish()
}

#[tokio::test]
async fn a_product_is_reviewed_in_a_child_process_as_in_the_operator() {
    let worker = Worker::new(operator(), 128 << 20, Duration::from_secs(60));
    let review = worker
        .review(
            "people.csv",
            b"name,id\nwang,11010519491231002X\n",
            &[("SensitiveField:registry.name".into(), vec!["wang".into()])],
        )
        .await;
    let kinds: Vec<&str> = review.findings.iter().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"ResidentId"), "{review:?}");
    assert!(
        kinds.contains(&"SensitiveField:registry.name"),
        "{review:?}"
    );
}

#[tokio::test]
async fn a_compression_bomb_is_unreadable_and_says_why() {
    let bomb = gzip_of_zeros(64 << 20).unwrap();
    assert!(bomb.len() < 100 << 10, "{} bytes", bomb.len());
    let worker = Worker::new(operator(), 128 << 20, Duration::from_secs(60));
    let review = worker.review("export.csv.gz", &bomb, &[]).await;
    assert_eq!(review.findings.len(), 2, "{review:?}");
    assert_eq!(review.findings[0].kind, "Unreadable");
    assert!(
        review.findings[0]
            .location
            .contains("expands more than 200 times its compressed size"),
        "{review:?}"
    );
    assert_eq!(review.findings[1].kind, "Untraceable");
}

#[tokio::test]
async fn a_scan_past_its_memory_budget_is_stopped_by_the_kernel_not_the_operator() {
    // 48 MiB of text and a 16 MiB heap: the worker cannot even hold it.
    let text = "a,b\n".repeat(12 << 20);
    let worker = Worker::new(operator(), 16 << 20, Duration::from_secs(60));
    let review = worker.review("big.csv", text.as_bytes(), &[]).await;
    assert_eq!(review.findings.len(), 1, "{review:?}");
    assert_eq!(review.findings[0].kind, "Unreadable");
    assert!(
        review.findings[0]
            .location
            .contains("needs more than the scan's memory budget of 16 MiB"),
        "{review:?}"
    );
    // This process is untouched: the same worker reviews the next product.
    let next = worker.review("small.csv", b"a,b\n1,2\n", &[]).await;
    assert!(
        next.findings.iter().all(|f| f.kind == "Untraceable"),
        "{next:?}"
    );
}

#[tokio::test]
async fn a_worker_that_cannot_start_fails_closed() {
    let worker = Worker::new(
        PathBuf::from("/nonexistent/publicdata-operator"),
        128 << 20,
        Duration::from_secs(5),
    );
    let review = worker.review("p.csv", b"a,b\n1,2\n", &[]).await;
    assert_eq!(review.findings.len(), 1, "{review:?}");
    assert_eq!(review.findings[0].kind, "Unreadable");
    assert!(
        review.findings[0].location.contains("could not be started"),
        "{review:?}"
    );
}
