//! Writes the CRDs generated from the Rust types into `crds/` (or the
//! directory given).
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds"));
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in publicdata_operator::crdgen::all() {
        let path = dir.join(file);
        std::fs::write(&path, publicdata_operator::crdgen::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
