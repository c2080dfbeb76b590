//! What the remote-model tests (tests/remote.rs, tests/remote_cache.rs, tests/mlx_remote.rs)
//! share: the servers on loopback (s3s-fs and nginx, started by tests/remote/servers.sh, or
//! taken from the variables tests/remote/run.sh exports), uploads to them, models of noise,
//! and servers of a test's own.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use stload::{Dtype, Error, Options};

/// The servers' addresses and credentials (the variables servers.sh writes).
pub struct Servers {
    env: HashMap<String, String>,
    /// The directory servers.sh ran in, when this test binary started them.
    _dir: Option<tempfile::TempDir>,
}

/// The variables servers.sh writes: all set in the environment (tests/remote/run.sh), or else
/// servers started here, which stop when the test binary exits. Never skips: servers that
/// cannot start fail the test.
const KEYS: [&str; 10] = [
    "STLOAD_TEST_S3_ENDPOINT",
    "STLOAD_TEST_S3_FLAKY_ENDPOINT",
    "STLOAD_TEST_S3_ROOT",
    "STLOAD_TEST_HTTP_URL",
    "STLOAD_TEST_HTTP_ROOT",
    "STLOAD_TEST_HTTPS_URL",
    "STLOAD_TEST_FLAKY_SWITCH",
    "STLOAD_TEST_S3S_FS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

/// The test servers (started on first use).
pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        // These tests read remote objects: a cache directory in the caller's environment
        // would serve them from disk (every helper asks for the servers before anything is
        // opened).
        std::env::remove_var("STLOAD_CACHE_DIR");
        if KEYS.iter().all(|k| std::env::var_os(k).is_some()) {
            let env = KEYS
                .iter()
                .map(|k| (k.to_string(), std::env::var(k).unwrap()))
                .collect();
            return Servers { env, _dir: None };
        }
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/remote/servers.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .arg(std::process::id().to_string())
            .env("STLOAD_PYTHON", super::python())
            .status()
            .expect("run servers.sh");
        assert!(
            status.success(),
            "tests/remote/servers.sh could not start the servers"
        );
        let text = std::fs::read_to_string(dir.path().join("env")).unwrap();
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Servers {
            env,
            _dir: Some(dir),
        }
    })
}

/// The servers' variable `key`.
pub fn var(key: &str) -> &'static str {
    servers()
        .env
        .get(key)
        .unwrap_or_else(|| panic!("{key} not set by servers.sh"))
}

/// Options reaching the S3 server at `endpoint`, set explicitly (not from the environment).
pub fn s3_options_at(endpoint: &str) -> Options {
    let mut o = Options::default();
    o.set_remote("aws_endpoint", endpoint).unwrap();
    o.set_remote("aws_access_key_id", var("AWS_ACCESS_KEY_ID"))
        .unwrap();
    o.set_remote("aws_secret_access_key", var("AWS_SECRET_ACCESS_KEY"))
        .unwrap();
    o.set_remote("aws_region", "us-east-1").unwrap();
    o.set_remote("allow_http", "true").unwrap();
    o
}

/// Options reaching the test S3 server.
pub fn s3_options() -> Options {
    s3_options_at(var("STLOAD_TEST_S3_ENDPOINT"))
}

/// A client of the test S3 server for `bucket` (made once per bucket), for uploads: objects
/// put through the API carry their ETag, as in a real store.
fn s3(bucket: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let store = stores.entry(bucket.to_string()).or_insert_with(|| {
        std::fs::create_dir_all(Path::new(var("STLOAD_TEST_S3_ROOT")).join(bucket)).unwrap();
        // object_store's clients need a rustls provider (the one the library would install
        // on its first remote open; uploads may come first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(var("STLOAD_TEST_S3_ENDPOINT"))
                .with_bucket_name(bucket)
                .with_access_key_id(var("AWS_ACCESS_KEY_ID"))
                .with_secret_access_key(var("AWS_SECRET_ACCESS_KEY"))
                .with_region("us-east-1")
                .with_allow_http(true)
                .build()
                .unwrap(),
        )
    });
    Arc::clone(store)
}

/// Puts `bytes` at `key` of the test bucket `bucket`, on one runtime shared by every upload:
/// the store's client keeps pooled connections whose tasks live on the runtime that made them,
/// so a runtime per upload, dropped after it, left the next upload a dead connection
/// ("runtime dropped the dispatch task").
pub fn put(bucket: &str, key: &str, bytes: Vec<u8>) {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    let store = s3(bucket);
    runtime
        .block_on(store.put(&ObjectPath::from(key), PutPayload::from(bytes)))
        .unwrap();
}

/// Uploads every file of `dir` (not recursive) under `prefix` of the test bucket `bucket`,
/// and copies them under `bucket/prefix` of the HTTP server's root. Returns the S3 and HTTP
/// URLs of the prefix.
pub fn publish(bucket: &str, dir: &Path, prefix: &str) -> (String, String) {
    let www = Path::new(var("STLOAD_TEST_HTTP_ROOT"))
        .join(bucket)
        .join(prefix);
    std::fs::create_dir_all(&www).unwrap();
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            put(
                bucket,
                &format!("{prefix}/{name}"),
                std::fs::read(&path).unwrap(),
            );
            std::fs::copy(&path, www.join(&name)).unwrap();
            // nginx's workers run as another user.
            std::fs::set_permissions(www.join(&name), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
    }
    (
        format!("s3://{bucket}/{prefix}/"),
        format!("{}/{bucket}/{prefix}/", var("STLOAD_TEST_HTTP_URL")),
    )
}

/// Like [`publish`], with the files of `dir`'s subdirectories too, under their relative
/// names (`1_Pooling/config.json`).
pub fn publish_tree(bucket: &str, dir: &Path, prefix: &str) -> (String, String) {
    let urls = publish(bucket, dir, prefix);
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            publish_tree(bucket, &path, &format!("{prefix}/{name}"));
        }
    }
    urls
}

/// Deterministic bytes (xorshift), different for each `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `model.safetensors` in a new directory, with the tensors `specs` (name, dtype as the
/// header names it, shape) in that order, the `i`-th of them [`noise`] seeded by `seed + i`.
pub fn noise_model(specs: &[(&str, &str, &[u64])], seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (i, (name, dtype, shape)) in specs.iter().enumerate() {
        let size = Dtype::from_name(dtype).unwrap().byte_size().unwrap();
        let start = data.len();
        data.extend(noise(
            shape.iter().product::<u64>() as usize * size,
            seed + i as u64,
        ));
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{start},{}]}}"#,
            data.len()
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let path = super::raw_file(dir.path(), "model.safetensors", &header, &data);
    (dir, path)
}

/// A server process, stopped (killed and waited for) by `stop` or when dropped.
pub struct Stopped(pub std::process::Child);

impl Stopped {
    /// Kills the server and waits for it.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 5 s) until `port` accepts connections; fails naming `what` otherwise.
pub fn wait_for_port(port: u16, what: &str) {
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "{what} did not start on port {port}");
}

/// A second s3s-fs over the test servers' directory, which the test may stop, and its
/// endpoint.
pub fn own_s3s_fs() -> (Stopped, String) {
    let port = free_port();
    let server = Stopped(
        Command::new(var("STLOAD_TEST_S3S_FS"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", var("AWS_ACCESS_KEY_ID")])
            .args(["--secret-key", var("AWS_SECRET_ACCESS_KEY")])
            .arg(var("STLOAD_TEST_S3_ROOT"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "a second s3s-fs");
    (server, format!("http://127.0.0.1:{port}"))
}

/// The message of the I/O error the test expects.
pub fn io_message<T: std::fmt::Debug>(result: stload::Result<T>) -> String {
    match result {
        Err(e @ Error::Io { .. }) => e.to_string(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Starts `tests/remote/faulty_server.py` over the files of `dir` on a free port, failing every
/// tensor range by `mode` (`short`: half the bytes, then the connection closes; `drip`: a byte
/// every 50 ms). Returns the server (stopped when dropped) and the URL of `dir`.
pub fn faulty_server(dir: &Path, mode: &str) -> (Stopped, String) {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/remote/faulty_server.py");
    let server = Stopped(
        Command::new(super::python())
            .arg(&script)
            .arg(dir)
            .arg(port.to_string())
            .args([mode, "0.05"])
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "faulty_server.py");
    (server, format!("http://127.0.0.1:{port}"))
}
