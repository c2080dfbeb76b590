//! Shared helpers of the integration tests: the Python oracle and the fixtures it writes.

#![allow(dead_code)]

pub mod arch;
// The loopback S3 and HTTP servers: object_store is there only with the feature remote.
#[cfg(feature = "remote")]
pub mod remote;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Runs the Python interpreter of [`python`] with `args` and returns its standard output;
/// panics with its output when it fails.
pub fn run_python<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new(python()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "python {:?}: {}{}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Python interpreter with numpy, safetensors and ml_dtypes: `$STLOAD_PYTHON`, else the
/// repository's `.venv`. Panics with the fix when neither works: these tests never skip.
pub fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidate = std::env::var_os("STLOAD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import numpy, safetensors, ml_dtypes"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} lacks numpy/safetensors/ml_dtypes: run scripts/python-env.sh",
        candidate.display()
    );
    candidate
}

/// A directory of fixtures written once per test binary by tests/python/make_fixtures.py.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_fixtures.py");
        let status = Command::new(python())
            .arg(&script)
            .arg(dir.path())
            .status()
            .expect("run python");
        assert!(status.success(), "make_fixtures.py failed");
        dir
    })
    .path()
}

/// One expected tensor from expected.json.
pub struct Expected {
    pub name: String,
    pub file: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub bytes: Vec<u8>,
    /// What numpy/ml_dtypes `astype` gives, by target dtype name (F32, F16, BF16, F64).
    pub converted: Vec<(String, Vec<u8>)>,
}

/// The tensors of one fixture group ("all_dtypes" or "sharded").
pub fn expected(group: &str) -> Vec<Expected> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let map = json[group].as_object().expect("group exists");
    map.iter()
        .map(|(name, v)| Expected {
            name: name.clone(),
            file: v["file"].as_str().unwrap().to_string(),
            dtype: v["dtype"].as_str().unwrap().to_string(),
            shape: v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect(),
            bytes: hex(v["hex"].as_str().unwrap()),
            converted: v["as"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, h)| (k.clone(), hex(h.as_str().unwrap())))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Decodes a hex string (the oracles write bytes as hex).
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Writes a safetensors file from a raw header string and data bytes.
pub fn raw_file(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

/// Runs `f` on another thread and fails the test if it does not return within 20 s: a FIFO
/// opened for reading blocks until a writer comes, so a reader that opens one blocking hangs.
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: blocked for 20 s"))
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The hostile stand-ins for a file beside the weights, in the order the tests try them: a FIFO
/// first (a reader that opens it blocking hangs there, before reading `/dev/zero` without
/// end), a link to `/dev/zero`, and a sparse file past the reader's bound.
pub const HOSTILE_KINDS: [&str; 3] = ["fifo", "/dev/zero", "sparse"];

/// Replaces the file at `path` by a hostile stand-in of `kind` ([`HOSTILE_KINDS`]); a sparse
/// one is `big` bytes.
pub fn plant_hostile(path: &Path, kind: &str, big: u64) {
    std::fs::remove_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match kind {
        "fifo" => mkfifo(path),
        "/dev/zero" => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        _ => std::fs::File::create(path).unwrap().set_len(big).unwrap(),
    }
}

/// Whether `err` is how a reader refuses a hostile file of `kind`: by its size (a limit) when
/// it is large, as not a regular file (an i/o error) otherwise.
pub fn refused_as_hostile(err: &stload::Error, kind: &str) -> bool {
    if kind == "sparse" {
        matches!(err, stload::Error::Limit(_))
    } else {
        matches!(err, stload::Error::Io { .. })
    }
}
