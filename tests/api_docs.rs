//! docs/API.md must be what scripts/gen-api-docs.py makes of include/stload.h, so the reference
//! never lags the header. Regenerate with `python3 scripts/gen-api-docs.py`.

use std::path::Path;
use std::process::Command;

#[test]
fn api_docs_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/gen-api-docs.py"))
        .arg("--check")
        .output()
        .expect("run python3 scripts/gen-api-docs.py --check (is python3 installed?)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
