//! Writes the CRDs generated from the Rust types into `crds/` and the
//! chart's `crds/` (or into the one directory given), and the tenants'
//! ClusterRoles into the chart.
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs: Vec<PathBuf> = match std::env::args().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let path = repo.join(publicdata_operator::crdgen::TENANT_ROLES);
            std::fs::write(&path, publicdata_operator::crdgen::tenant_roles_yaml()?)?;
            println!("wrote {}", path.display());
            publicdata_operator::crdgen::DIRS
                .iter()
                .map(|d| repo.join(d))
                .collect()
        }
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir)?;
        for (file, crd) in publicdata_operator::crdgen::all() {
            let path = dir.join(file);
            std::fs::write(&path, publicdata_operator::crdgen::to_yaml(&crd)?)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
