//! Models in object storage and behind HTTP, read from real servers on loopback: s3s-fs (an
//! S3-compatible server) and nginx (ranges, ETags), started by tests/remote/servers.sh (by
//! tests/remote/run.sh, or here when its variables are not set). Every remote result is
//! compared bit for bit with the same files opened locally (local conversions are checked
//! against numpy + ml_dtypes by the other tests).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use common::remote::{
    free_port, io_message, noise_model, own_s3s_fs, s3_options, s3_options_at, var, wait_for_port,
    Stopped,
};
use stload::{Dtype, Error, Model, Options};

/// The flaky switch makes nginx answer 503 to everything: tests that turn it on run alone.
fn shared() -> RwLockReadGuard<'static, ()> {
    lock().read().unwrap_or_else(|p| p.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    lock().write().unwrap_or_else(|p| p.into_inner())
}

fn lock() -> &'static RwLock<()> {
    static LOCK: RwLock<()> = RwLock::new(());
    &LOCK
}

const BUCKET: &str = "models";

/// Uploads every file of `dir` under `prefix` of the test bucket and the HTTP server's root.
/// Returns the S3 and HTTP URLs of the prefix.
fn publish(dir: &Path, prefix: &str) -> (String, String) {
    common::remote::publish(BUCKET, dir, prefix)
}

/// A directory holding only `file` of the fixtures, named `as_name`.
fn single(file: &Path, as_name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(file, dir.path().join(as_name)).unwrap();
    dir
}

/// Asserts that `remote` lists and serves exactly what `local` does: names, infos, metadata,
/// every tensor as stored and in every dtype it converts to, and `load` of every whole-model
/// target.
fn assert_same(local: &Model, remote: &Model) {
    let names: Vec<&str> = local.names().collect();
    assert_eq!(names, remote.names().collect::<Vec<_>>());
    assert!(!names.is_empty());
    let pairs: Vec<_> = local.metadata_pairs().collect();
    assert_eq!(pairs, remote.metadata_pairs().collect::<Vec<_>>());
    for name in &names {
        let (l, r) = (local.info(name).unwrap(), remote.info(name).unwrap());
        assert_eq!(
            (l.dtype, l.shape, l.nbytes, l.data_offset),
            (r.dtype, r.shape, r.nbytes, r.data_offset),
            "{name}"
        );
        assert!(r.file.to_str().unwrap().contains("://"), "{:?}", r.file);
        let (lt, rt) = (local.get(name).unwrap(), remote.get(name).unwrap());
        assert_eq!(lt.data(), rt.data(), "{name} as stored");
        assert_eq!(lt.shape(), rt.shape());
        for to in Dtype::ALL {
            match (local.get_as(name, to), remote.get_as(name, to)) {
                (Ok(a), Ok(b)) => assert_eq!(a.data(), b.data(), "{name} as {to}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{name} as {to}: local {a:?}, remote {b:?}"),
            }
        }
    }
    for target in stload::convert::WHOLE_MODEL_TARGETS {
        local.load(Some(target), |_, _, _| true).unwrap();
        remote.load(Some(target), |_, _, _| true).unwrap();
        for name in &names {
            let want = local.get_as(name, target).or_else(|_| local.get(name));
            let got = remote.get_as(name, target).or_else(|_| remote.get(name));
            assert_eq!(
                want.unwrap().data(),
                got.unwrap().data(),
                "load {target}: {name}"
            );
        }
        local.release_all();
        remote.release_all();
    }
}

#[test]
fn single_file_every_dtype_from_s3_and_http() {
    let _g = shared();
    let file = common::fixtures().join("all_dtypes.safetensors");
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let dir = single(&file, "model.safetensors");
    let (s3_url, http_url) = publish(dir.path(), "single");
    // A prefix (listed), one file by URL, and HTTP (no listing: model.safetensors).
    let by_prefix = Model::open_dir(&s3_url, &s3_options()).unwrap();
    assert_same(&local, &by_prefix);
    let by_file = format!("{s3_url}model.safetensors");
    assert_same(
        &local,
        &Model::open_files(&[&by_file], &s3_options()).unwrap(),
    );
    assert_same(
        &local,
        &Model::open_dir(&http_url, &Options::default()).unwrap(),
    );
    let http_file = format!("{http_url}model.safetensors");
    assert_same(
        &local,
        &Model::open_files(&[&http_file], &Options::default()).unwrap(),
    );
}

#[test]
fn a_model_over_https_equals_the_local_one() {
    let _g = shared();
    let file = common::fixtures().join("all_dtypes.safetensors");
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let dir = single(&file, "model.safetensors");
    publish(dir.path(), "tls");
    // A real TLS handshake (the server's certificate is self-signed, hence the option): the
    // connection takes the crypto provider the library installs when none is.
    let url = format!("{}/{}/tls/", var("STLOAD_TEST_HTTPS_URL"), BUCKET);
    let mut options = Options::default();
    options
        .set_remote("allow_invalid_certificates", "true")
        .unwrap();
    assert_same(&local, &Model::open_dir(&url, &options).unwrap());
    // Without the option the self-signed certificate is refused: TLS checks are on.
    assert!(Model::open_dir(&url, &Options::default()).is_err());
}

#[test]
fn sharded_model_with_index_from_s3() {
    let _g = shared();
    let dir = common::fixtures().join("sharded");
    let local = Model::open_dir(&dir, &Options::default()).unwrap();
    let (s3_url, http_url) = publish(&dir, "sharded");
    let remote = Model::open_dir(&s3_url, &s3_options()).unwrap();
    assert!(remote.files().count() > 1);
    assert_same(&local, &remote);
    assert_same(
        &local,
        &Model::open_dir(&http_url, &Options::default()).unwrap(),
    );
}

/// A safetensors file with large tensors of several dtypes (about 6 MiB), in a new directory.
fn large_model(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let specs: [(&str, &str, &[u64]); 4] = [
        ("a.bf16", "BF16", &[1031, 1029]),
        ("b.f32", "F32", &[513, 1027]),
        ("c.f16", "F16", &[7, 3, 11]),
        ("d.f8", "F8_E4M3", &[700, 1001]),
    ];
    noise_model(&specs, seed)
}

#[test]
fn small_chunks_and_few_requests_convert_exactly() {
    let _g = shared();
    let (dir, file) = large_model(1);
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let (s3_url, _) = publish(dir.path(), "large");
    let mut options = s3_options();
    options.set_remote("chunk_size", "65536").unwrap();
    options.set_remote("concurrency", "3").unwrap();
    options.set_threads(2).unwrap();
    let remote = Model::open_dir(&s3_url, &options).unwrap();
    for target in [Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64] {
        local.load(Some(target), |_, _, _| true).unwrap();
        remote.load(Some(target), |_, _, _| true).unwrap();
        for name in local.names() {
            let want = local.get_as(name, target).unwrap();
            let got = remote.get_as(name, target).unwrap();
            assert_eq!(want.data(), got.data(), "{name} as {target}");
        }
        local.release_all();
        remote.release_all();
    }
}

#[test]
fn an_object_replaced_after_open_is_an_error() {
    let _g = shared();
    let (dir, _) = large_model(2);
    let (s3_url, http_url) = publish(dir.path(), "replaced");
    let s3_model = Model::open_dir(&s3_url, &s3_options()).unwrap();
    let http_model = Model::open_dir(&http_url, &Options::default()).unwrap();
    // Same size, other bytes: only the ETag tells.
    let (other, _) = large_model(3);
    std::thread::sleep(Duration::from_millis(1100)); // nginx's ETag has whole seconds
    publish(other.path(), "replaced");
    for model in [&s3_model, &http_model] {
        let err = io_message(model.get("a.bf16"));
        assert!(err.contains("file changed since open"), "{err}");
        assert!(err.contains("replaced/model.safetensors"), "{err}");
        assert!(err.contains("tensor \"a.bf16\""), "{err}");
        let err = io_message(model.load(Some(Dtype::F32), |_, _, _| true));
        assert!(err.contains("file changed since open"), "{err}");
        assert!(model.verify().is_err());
    }
}

/// `prefetch` of a remote model fetches the named tensors into memory: after the object was
/// replaced on the server, those tensors are still served (no request is made for them),
/// bit-exact, while a tensor not prefetched is fetched and refused as changed.
#[test]
fn prefetch_keeps_the_tensors_in_memory() {
    let _g = shared();
    let (dir, _) = large_model(4);
    let (s3_url, http_url) = publish(dir.path(), "prefetched");
    let local = Model::open_dir(dir.path(), &Options::default()).unwrap();
    let s3_model = Model::open_dir(&s3_url, &s3_options()).unwrap();
    let http_model = Model::open_dir(&http_url, &Options::default()).unwrap();
    let names: Vec<String> = local.names().map(str::to_string).collect();
    let (first, rest) = names.split_first().unwrap();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let want: u64 = rest.iter().map(|n| local.info(n).unwrap().nbytes).sum();
    for model in [&s3_model, &http_model] {
        // Cancelled by its caller: an error naming prefetch, nothing kept.
        let cancelled = model.prefetch(None, |_, _| false).unwrap_err();
        assert!(
            matches!(&cancelled, Error::Cancelled(m) if m.contains("prefetch")),
            "{cancelled}"
        );
        model.release_all();
        let mut last = (0, 0);
        model
            .prefetch(Some(&rest), |done, total| {
                assert!(done >= last.0 && done <= total);
                last = (done, total);
                true
            })
            .unwrap();
        assert_eq!(last, (want, want));
    }
    let (other, _) = large_model(5);
    std::thread::sleep(Duration::from_millis(1100)); // nginx's ETag has whole seconds
    publish(other.path(), "prefetched");
    for model in [&s3_model, &http_model] {
        for name in &rest {
            let got = model.get(name).unwrap();
            assert_eq!(got.data(), local.get(name).unwrap().data(), "{name}");
        }
        let err = io_message(model.get(first));
        assert!(err.contains("file changed since open"), "{err}");
    }
}

#[test]
fn keys_outside_the_prefix_are_refused() {
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::fixtures().join("all_dtypes.safetensors"),
        dir.path().join("model-1.safetensors"),
    )
    .unwrap();
    for (i, bad) in [
        "../single/model.safetensors",
        "/models/single/model.safetensors",
        "s3://other/model.safetensors",
        "a//b.safetensors",
    ]
    .iter()
    .enumerate()
    {
        let index = format!(r#"{{"weight_map":{{"t":"{bad}"}}}}"#);
        std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
        let (s3_url, _) = publish(dir.path(), &format!("hostile{i}"));
        let err = Model::open_dir(&s3_url, &s3_options())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a file name inside"), "{bad}: {err}");
    }
}

/// A prefix without weights (no index, no `*.safetensors`, no PyTorch checkpoint) is not
/// found, by the same rule with and without a cache directory, naming the prefix.
#[test]
fn a_prefix_without_weights_is_not_found() {
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
    let (s3_url, _) = publish(dir.path(), "no-weights");
    let cache = tempfile::tempdir().unwrap();
    let mut cached = s3_options();
    cached
        .set_remote("cache_dir", cache.path().to_str().unwrap())
        .unwrap();
    for options in [s3_options(), cached] {
        let err = Model::open_dir(&s3_url, &options).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        let message = err.to_string();
        assert!(message.contains("no-weights"), "{message}");
        assert!(message.contains("no *.safetensors"), "{message}");
    }
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn a_throttling_storm_is_retried_until_it_ends() {
    let _g = exclusive();
    let (dir, file) = large_model(4);
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let (_, _) = publish(dir.path(), "storm");
    let switch = PathBuf::from(var("STLOAD_TEST_FLAKY_SWITCH"));
    let url = format!("s3://{BUCKET}/storm/");
    let mut options = s3_options_at(var("STLOAD_TEST_S3_FLAKY_ENDPOINT"));
    options.set_remote("init_backoff_ms", "50").unwrap();
    options.set_remote("max_retries", "20").unwrap();
    let remote = Model::open_dir(&url, &options).unwrap();
    std::fs::write(&switch, b"").unwrap();
    let lifted = std::thread::spawn({
        let switch = switch.clone();
        move || {
            std::thread::sleep(Duration::from_millis(800));
            std::fs::remove_file(&switch).unwrap();
        }
    });
    let started = std::time::Instant::now();
    remote.load(Some(Dtype::F32), |_, _, _| true).unwrap();
    lifted.join().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the storm was not seen"
    );
    local.load(Some(Dtype::F32), |_, _, _| true).unwrap();
    for name in local.names() {
        let want = local.get_as(name, Dtype::F32).unwrap();
        assert_eq!(
            want.data(),
            remote.get_as(name, Dtype::F32).unwrap().data(),
            "{name}"
        );
    }
    // A storm longer than the retries allow: an error naming the URL and the tensor.
    let mut impatient = s3_options_at(var("STLOAD_TEST_S3_FLAKY_ENDPOINT"));
    impatient.set_remote("max_retries", "2").unwrap();
    impatient.set_remote("init_backoff_ms", "10").unwrap();
    let remote = Model::open_dir(&url, &impatient).unwrap();
    std::fs::write(&switch, b"").unwrap();
    let result = remote.get_as("a.bf16", Dtype::F32);
    std::fs::remove_file(&switch).unwrap();
    let err = io_message(result);
    assert!(
        err.contains("storm/model.safetensors") && err.contains("tensor \"a.bf16\""),
        "{err}"
    );
}

/// A second s3s-fs over the test servers' directory, which the test stops, and options that
/// reach it with few quick retries.
fn own_s3s() -> (Stopped, Options) {
    let (server, endpoint) = own_s3s_fs();
    let mut options = s3_options_at(&endpoint);
    options.set_remote("max_retries", "2").unwrap();
    options.set_remote("init_backoff_ms", "10").unwrap();
    options.set_remote("retry_timeout_ms", "2000").unwrap();
    (server, options)
}

/// A window (4 x concurrency x chunk size = 512 KiB) smaller than what follows the first
/// tensors of the test models, so a load cannot have fetched everything when the test stops
/// its server after the first tensors.
fn small_window(options: &mut Options) {
    options.set_remote("chunk_size", "65536").unwrap();
    options.set_remote("concurrency", "2").unwrap();
}

#[test]
fn a_server_stopped_mid_load_is_an_error_and_hands_out_nothing() {
    let _g = shared();
    let (dir, file) = large_model(5);
    publish(dir.path(), "stopped");
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let (mut server, mut options) = own_s3s();
    small_window(&mut options);
    let model = Model::open_dir(format!("s3://{BUCKET}/stopped/"), &options).unwrap();
    let mut stopped = false;
    let result = model.load(Some(Dtype::F32), |done, _, _| {
        if done == 1 {
            server.stop();
            stopped = true;
        }
        true
    });
    assert!(stopped);
    let err = io_message(result);
    assert!(err.contains("stopped/model.safetensors"), "{err}");
    assert!(err.contains("tensor \""), "{err}");
    // The tensor handed out arrived whole and is kept (the server is gone)...
    assert_eq!(
        model.get_as("a.bf16", Dtype::F32).unwrap().data(),
        local.get_as("a.bf16", Dtype::F32).unwrap().data()
    );
    // ...and nothing of the failed tensors is served: a get asks the (stopped) server again.
    assert!(model.get_as("d.f8", Dtype::F32).is_err());
}

#[test]
fn unknown_remote_options_and_locations_are_refused() {
    let mut o = Options::default();
    let err = o
        .set_remote("aws_endpoint_typo", "x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"aws_endpoint_typo\""), "{err}");
    // A string that is not a URL stays a path.
    let err = Model::open_dir("no/such/s3:/dir", &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no/such/s3:/dir"), "{err}");
    let mixed = Model::open_files(&["s3://b/x.safetensors", "local.safetensors"], &o);
    assert!(matches!(mixed, Err(Error::InvalidArgument(_))));
}

#[test]
fn a_truncated_body_is_an_error_never_short_data() {
    let (dir, _) = large_model(6);
    let (_server, server_url) = common::remote::faulty_server(dir.path(), "short");
    let url = format!("{server_url}/model.safetensors");
    let mut options = Options::default();
    options.set_remote("max_retries", "1").unwrap();
    let model = Model::open_files(&[&url], &options).unwrap();
    assert_eq!(model.len(), 4);
    let err = io_message(model.get("a.bf16"));
    assert!(
        err.contains("truncated body") && err.contains("tensor \"a.bf16\""),
        "{err}"
    );
    assert!(err.contains(&url), "{err}");
    let err = io_message(model.load(Some(Dtype::F32), |_, _, _| true));
    assert!(err.contains("truncated body"), "{err}");
}

// Many tensors in flight at once: a whole-model load keeps `concurrency` requests busy across
// tensors, hands tensors out in order and whole, and stops cleanly on the first error.

/// Tensors of the many-tensors model, by stored dtype: every float dtype `load` converts, and
/// integers it keeps.
const MANY_DTYPES: [(&str, usize); 8] = [
    ("F64", 8),
    ("F32", 4),
    ("F16", 2),
    ("BF16", 2),
    ("F8_E4M3", 1),
    ("F8_E5M2", 1),
    ("I32", 4),
    ("U8", 1),
];

/// A safetensors file of `count` tensors of 1 to 64 KiB (`blk.NNNN.dtype`, cycling through
/// [`MANY_DTYPES`]) and, when `large`, three of a few MiB (first in name order), stored in
/// another order than their names' (about 60 MiB for 3,000 tensors), in a new directory.
fn many_tensors_model(count: usize, large: bool, seed: u64) -> (tempfile::TempDir, PathBuf) {
    many_tensors_model_strided(count, large, seed, 7919)
}

/// [`many_tensors_model`] with file position `k` holding the tensor `k * stride % count` of the
/// name order (`stride` 1: the file in name order).
fn many_tensors_model_strided(
    count: usize,
    large: bool,
    seed: u64,
    stride: usize,
) -> (tempfile::TempDir, PathBuf) {
    let mut specs: Vec<(String, &str, Vec<u64>)> = (0..count)
        .map(|i| {
            let (dtype, size) = MANY_DTYPES[i % MANY_DTYPES.len()];
            let elements = (1024u64 << (i % 7)) / size as u64;
            let name = format!("blk.{i:04}.{}", dtype.to_ascii_lowercase());
            (name, dtype, vec![elements / 16, 16])
        })
        .collect();
    if large {
        specs.push(("big.a".into(), "BF16", vec![1024, 1536]));
        specs.push(("big.b".into(), "F32", vec![512, 1031]));
        specs.push(("big.c".into(), "F8_E4M3", vec![1500, 999]));
    }
    let n = specs.len();
    // File order: a stride through the name order; the tensor at file position k is seeded by
    // seed + k.
    let in_file: Vec<(&str, &str, &[u64])> = (0..n)
        .map(|k| {
            let (name, dtype, shape) = &specs[k * stride % n];
            (name.as_str(), *dtype, shape.as_slice())
        })
        .collect();
    noise_model(&in_file, seed)
}

/// The many-tensors model (3,000 small tensors), published once under "many": its local file
/// and its S3 and HTTP URLs.
fn many() -> &'static (tempfile::TempDir, PathBuf, String, String) {
    static MANY: OnceLock<(tempfile::TempDir, PathBuf, String, String)> = OnceLock::new();
    MANY.get_or_init(|| {
        let (dir, file) = many_tensors_model(3000, true, 11);
        let (s3_url, http_url) = publish(dir.path(), "many");
        (dir, file, s3_url, http_url)
    })
}

/// Loads `model` as `target` and returns the names `progress` saw, asserting that it counted
/// every tensor once, in order.
fn load_names(model: &Model, target: Option<Dtype>) -> Vec<String> {
    let mut seen = Vec::new();
    model
        .load(target, |done, total, name| {
            assert_eq!((done, total), (seen.len() + 1, model.len()));
            seen.push(name.to_string());
            true
        })
        .unwrap();
    seen
}

/// Asserts that what `remote.load(target)` kept equals what `local.load(target)` made, tensor
/// by tensor, and that both handed tensors out in name order.
fn assert_same_load(local: &Model, remote: &Model, target: Option<Dtype>) {
    let names: Vec<String> = local.names().map(str::to_string).collect();
    assert_eq!(load_names(local, target), names);
    assert_eq!(load_names(remote, target), names, "remote load order");
    for name in &names {
        let stored = local.info(name).unwrap().dtype;
        let dtype = stload::convert::whole_model_dtype(stored, target);
        assert_eq!(
            local.get_as(name, dtype).unwrap().data(),
            remote.get_as(name, dtype).unwrap().data(),
            "load {target:?}: {name} as {dtype}"
        );
    }
    local.release_all();
    remote.release_all();
}

#[test]
fn many_small_tensors_load_exactly_from_s3_and_http() {
    let _g = shared();
    let (_, file, s3_url, http_url) = many();
    let local = Model::open_files(&[file], &Options::default()).unwrap();
    assert_eq!(local.len(), 3003);
    let s3 = Model::open_dir(s3_url, &s3_options()).unwrap();
    assert_same_load(&local, &s3, None);
    for target in stload::convert::WHOLE_MODEL_TARGETS {
        assert_same_load(&local, &s3, Some(target));
    }
    let http = Model::open_dir(http_url, &Options::default()).unwrap();
    assert_same_load(&local, &http, Some(Dtype::F32));
    assert_same_load(&local, &http, None);
}

#[test]
fn many_small_tensors_with_small_chunks_and_few_requests() {
    let _g = shared();
    // Stride 1: the file in name order, so runs of small tensors share requests (elements of
    // one tensor split between frames, tensors of several dtypes converted from one body).
    for (stride, name) in [(7919, "many400"), (1, "many400-ordered")] {
        let (dir, file) = many_tensors_model_strided(400, true, 13, stride);
        let (s3_url, _) = publish(dir.path(), name);
        let local = Model::open_files(&[file], &Options::default()).unwrap();
        for (concurrency, threads) in [("1", 1), ("3", 2)] {
            let mut options = s3_options();
            options.set_remote("chunk_size", "65536").unwrap();
            options.set_remote("concurrency", concurrency).unwrap();
            options.set_threads(threads).unwrap();
            let remote = Model::open_dir(&s3_url, &options).unwrap();
            for target in [Dtype::F32, Dtype::BF16] {
                assert_same_load(&local, &remote, Some(target));
            }
        }
    }
}

/// Slices of remote tensors equal the local slices: along axis 0 (one range) and along axis 1
/// (a range per row, the rows' gaps read and dropped inside shared requests), as stored and
/// converted, with requests small enough that a slice takes several.
#[test]
fn slices_of_remote_tensors_equal_local_slices() {
    let _g = shared();
    let (dir, file) = many_tensors_model(8, true, 14);
    let (s3_url, _) = publish(dir.path(), "slices");
    let local = Model::open_files(&[file], &Options::default()).unwrap();
    let mut options = s3_options();
    options.set_remote("chunk_size", "65536").unwrap();
    let remote = Model::open_dir(&s3_url, &options).unwrap();
    for name in ["big.a", "big.b", "big.c"] {
        let shape = local.info(name).unwrap().shape.to_vec();
        for (axis, start, stop) in [
            (0, 3, shape[0] - 5),
            (1, 100, 700),
            (1, 0, 1),
            (1, 998, 999),
        ] {
            for dtype in [None, Some(Dtype::F32)] {
                let want = local.get_slice(name, axis, start, stop, dtype).unwrap();
                let got = remote.get_slice(name, axis, start, stop, dtype).unwrap();
                assert_eq!(
                    (want.shape(), want.dtype()),
                    (got.shape(), got.dtype()),
                    "{name} axis {axis}"
                );
                assert!(
                    want.data() == got.data(),
                    "{name} axis {axis} [{start}, {stop}) as {dtype:?}"
                );
            }
        }
    }
}

/// The first `kept` tensors of `remote` are kept by its F32 load (served while its server is
/// stopped) and equal the local ones; the others are not: asking for them fails (checked for
/// the first ones after `kept` and a sample of the rest, each asking the stopped server).
fn assert_kept_exactly(local: &Model, remote: &Model, kept: usize) {
    for (i, name) in local.names().enumerate() {
        let stored = local.info(name).unwrap().dtype;
        let dtype = stload::convert::whole_model_dtype(stored, Some(Dtype::F32));
        if i < kept {
            let want = local.get_as(name, dtype).unwrap();
            assert_eq!(
                want.data(),
                remote.get_as(name, dtype).unwrap().data(),
                "{name}"
            );
        } else if i < kept + 8 || i % 97 == 0 {
            let got = remote.get_as(name, dtype);
            assert!(got.is_err(), "{name} was kept past the failure");
        }
    }
}

#[test]
fn many_small_tensors_server_stopped_mid_load_hands_out_nothing_more() {
    let _g = shared();
    let (_, file, _, _) = many();
    let local = Model::open_files(&[file], &Options::default()).unwrap();
    let (mut server, mut options) = own_s3s();
    small_window(&mut options);
    options.set_remote("max_retries", "0").unwrap();
    let remote = Model::open_dir(format!("s3://{BUCKET}/many/"), &options).unwrap();
    let mut handed = 0;
    let result = remote.load(Some(Dtype::F32), |done, _, _| {
        handed = done;
        if done == 50 {
            server.stop();
        }
        true
    });
    let err = io_message(result);
    assert!(err.contains("many/model.safetensors"), "{err}");
    assert!(err.contains("tensor \""), "{err}");
    assert!((50..remote.len()).contains(&handed), "{handed} handed out");
    assert_kept_exactly(&local, &remote, handed);
}

#[test]
fn a_load_cancelled_by_its_caller_hands_out_nothing_more() {
    let _g = shared();
    let (_, file, _, _) = many();
    let local = Model::open_files(&[file], &Options::default()).unwrap();
    let (mut server, mut options) = own_s3s();
    options.set_remote("max_retries", "0").unwrap();
    let remote = Model::open_dir(format!("s3://{BUCKET}/many/"), &options).unwrap();
    let mut calls = 0;
    let result = remote.load(Some(Dtype::F32), |done, _, _| {
        calls += 1;
        done < 40
    });
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    assert_eq!(calls, 40);
    server.stop();
    assert_kept_exactly(&local, &remote, 40);
}

/// What tests/remote/barrier_server.py counted: data requests, and the most open at once.
fn barrier_stats(port: u16) -> (u64, u64) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let (requests, peak) = body.trim().split_once(' ').unwrap();
    (requests.parse().unwrap(), peak.parse().unwrap())
}

/// The requests of many small tensors are in flight together, `concurrency` of them and no
/// more, each byte fetched once: the server holds the first data requests until `concurrency`
/// of them are open at once (a load that fetched tensor after tensor would never get there,
/// and would fail when the server gives up), and counts the requests and the most open at
/// once. Tensors next to each other in the file and in name order share a request up to
/// `chunk_size`; others (a file in another order) take one each.
#[test]
fn requests_of_many_tensors_are_in_flight_together() {
    const CHUNK: u64 = 65536;
    // Small tensors only (none over a chunk). Stride 7919: no two tensors next to each other
    // in name order are next to each other in the file.
    for stride in [7919, 1] {
        let (dir, _) = many_tensors_model_strided(64, false, 12, stride);
        for (concurrency, threads) in [(4usize, 2usize), (3, 1), (5, 8)] {
            let port = free_port();
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/remote/barrier_server.py");
            let _server = Stopped(
                Command::new(common::python())
                    .arg(&script)
                    .arg(dir.path())
                    .arg(port.to_string())
                    .arg(concurrency.to_string())
                    .spawn()
                    .unwrap(),
            );
            wait_for_port(port, "barrier_server.py");
            let url = format!("http://127.0.0.1:{port}/model.safetensors");
            let mut options = Options::default();
            options.set_remote("max_retries", "0").unwrap();
            options
                .set_remote("concurrency", &concurrency.to_string())
                .unwrap();
            options
                .set_remote("chunk_size", &CHUNK.to_string())
                .unwrap();
            options.set_threads(threads).unwrap();
            let model = Model::open_files(&[&url], &options).unwrap();
            model.load(Some(Dtype::F32), |_, _, _| true).unwrap();
            // The requests a load needs: a tensor joins the request before it when it starts
            // where that one ends and the two fit in a chunk.
            let infos: Vec<_> = model.infos().collect();
            assert!(infos.iter().all(|t| t.nbytes <= CHUNK));
            let mut requests = 0u64;
            let mut open: Option<(u64, u64)> = None; // (start, end) of the last request
            for t in &infos {
                match open {
                    Some((start, end))
                        if t.data_offset == end && t.data_offset + t.nbytes - start <= CHUNK =>
                    {
                        open = Some((start, t.data_offset + t.nbytes));
                    }
                    _ => {
                        requests += 1;
                        open = Some((t.data_offset, t.data_offset + t.nbytes));
                    }
                }
            }
            if stride == 1 {
                assert!(requests * 2 < infos.len() as u64, "{requests} requests");
            } else {
                assert_eq!(requests, infos.len() as u64);
            }
            assert_eq!(
                barrier_stats(port),
                (requests, concurrency as u64),
                "requests, and the most open at once, with concurrency {concurrency}, stride {stride}"
            );
        }
    }
}

/// A URL with a query string (`?token=...`) or a fragment is refused, naming the URL without
/// its query (which may hold a secret): it was opened with the query dropped from every
/// request, and a file URL with a query was taken for a prefix.
#[test]
fn a_url_with_a_query_string_is_refused_never_fetched_without_it() {
    let _g = shared();
    let file = common::fixtures().join("all_dtypes.safetensors");
    let dir = single(&file, "model.safetensors");
    let (s3_url, http_url) = publish(dir.path(), "query");
    for (base, options) in [(&s3_url, s3_options()), (&http_url, Options::default())] {
        let url = format!("{base}model.safetensors");
        // Without the query, the file opens: the refusal is the query's alone.
        Model::open_files(&[&url], &options).unwrap();
        for (with, prefix) in [
            (format!("{url}?token=secret123"), false),
            (format!("{url}#secret123"), false),
            (format!("{base}?token=secret123"), true),
        ] {
            let result = if prefix {
                Model::open_dir(&with, &options)
            } else {
                Model::open_files(&[&with], &options)
            };
            let err = result.expect_err(&with);
            assert!(matches!(err, Error::InvalidArgument(_)), "{with}: {err}");
            let text = err.to_string();
            assert!(text.contains(base.as_str()), "{text}");
            assert!(!text.contains("secret123"), "{text}");
        }
    }
    // The CLI takes a file URL with a query for the file it names, and refuses it.
    let run = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args([
            "inspect",
            &format!("{http_url}model.safetensors?token=secret123"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("query string") && !stderr.contains("secret123"),
        "{stderr}"
    );
}

/// Without a cache directory, GGUF export of a URL fetches `config.json` and the tokenizer
/// files from the prefix (small bounded reads) and writes the file the local export writes,
/// byte for byte, by the API and the CLI; it never reads a local path spelled like the URL
/// (`./http:/HOST/...`, planted here with a config that would fail the export).
#[test]
fn gguf_export_of_an_uncached_url_equals_the_local_export() {
    let _g = shared();
    let llama = common::arch::fixtures().join("llama");
    let (s3_url, http_url) = publish(&llama, "spelled/llama");
    let work = tempfile::tempdir().unwrap();
    // A broken model planted at the local path the URL spells, relative to the directory the
    // command runs in.
    let planted = work
        .path()
        .join(http_url.replacen("://", ":/", 1).trim_end_matches('/'));
    std::fs::create_dir_all(&planted).unwrap();
    for item in std::fs::read_dir(&llama).unwrap() {
        let path = item.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, planted.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        planted.join("config.json"),
        r#"{"architectures": ["Nonsense"]}"#,
    )
    .unwrap();

    let export = |model: &Model, name: &str| {
        let out = work.path().join(name);
        model
            .write_gguf(&out, stload::gguf::OutType::F16, &mut |_, _| true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::read(&out).unwrap()
    };
    let local = export(
        &Model::open_dir(&llama, &Options::default()).unwrap(),
        "local.gguf",
    );
    let http = Model::open_dir(&http_url, &Options::default()).unwrap();
    assert!(export(&http, "http.gguf") == local, "{http_url}");
    let s3 = Model::open_dir(&s3_url, &s3_options()).unwrap();
    assert!(export(&s3, "s3.gguf") == local, "{s3_url}");

    let run = Command::new(env!("CARGO_BIN_EXE_stload"))
        .current_dir(work.path())
        .env_remove("STLOAD_CACHE_DIR")
        .args(["convert", &http_url, "--out", "cli.gguf"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(std::fs::read(work.path().join("cli.gguf")).unwrap() == local);

    // A side file past max_json_size is refused by its size, naming its URL.
    let mut small = Options::default();
    small.max_json_size = 16;
    let model = Model::open_dir(&http_url, &small).unwrap();
    let out = work.path().join("small.gguf");
    let err = model
        .write_gguf(&out, stload::gguf::OutType::F16, &mut |_, _| true)
        .expect_err("refused");
    assert!(
        matches!(err, Error::Limit(_)) && err.to_string().contains("config.json"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A server that drips bytes fails the read when the request timeout expires, with a message
/// naming the URL, the tensor and that timeout (it said only "request or response body
/// error", after minutes).
#[test]
fn a_dripping_server_times_out_naming_the_url_the_tensor_and_the_timeout() {
    let _g = shared();
    let (dir, _) = large_model(12);
    let (_server, server_url) = common::remote::faulty_server(dir.path(), "drip");
    let url = format!("{server_url}/model.safetensors");
    let mut options = Options::default();
    options.set_remote("timeout", "2s").unwrap();
    options.set_remote("max_retries", "0").unwrap();
    let model = Model::open_files(&[&url], &options).unwrap();
    let started = std::time::Instant::now();
    let err = io_message(model.get("a.bf16"));
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("tensor \"a.bf16\""), "{err}");
    assert!(err.contains("timed out") && err.contains("2s"), "{err}");
}

/// `model.gguf` of the llama fixture as stload writes it in `outtype`, alone in a new directory.
fn llama_gguf(outtype: stload::gguf::OutType) -> tempfile::TempDir {
    let llama = common::arch::fixtures().join("llama");
    let model = Model::open_dir(&llama, &Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model
        .write_gguf(dir.path().join("model.gguf"), outtype, &mut |_, _| true)
        .unwrap();
    dir
}

/// GGUF files stload wrote (Q8_0 blocks and F16) open from S3 and HTTP, by file URL and by
/// prefix, as the local file does: the same tensors, keys, blocks as stored, values in every
/// dtype and whole-model loads.
#[test]
fn gguf_files_stload_wrote_open_from_s3_and_http_as_the_local_file() {
    let _g = shared();
    for outtype in [stload::gguf::OutType::Q8_0, stload::gguf::OutType::F16] {
        let dir = llama_gguf(outtype);
        let file = dir.path().join("model.gguf");
        let local = Model::open_files(&[&file], &Options::default()).unwrap();
        if outtype == stload::gguf::OutType::Q8_0 {
            assert!(local
                .names()
                .any(|n| local.info(n).unwrap().dtype == Dtype::Q8_0));
        }
        let (s3_url, http_url) = publish(dir.path(), &format!("gguf/{outtype:?}"));
        let by_file = format!("{s3_url}model.gguf");
        assert_same(
            &local,
            &Model::open_files(&[&by_file], &s3_options()).unwrap(),
        );
        assert_same(&local, &Model::open_dir(&s3_url, &s3_options()).unwrap());
        let http_file = format!("{http_url}model.gguf");
        let remote = Model::open_files(&[&http_file], &Options::default()).unwrap();
        assert_same(&local, &remote);
        // Typed keys as the local file has them.
        for (key, _) in local.metadata_pairs() {
            assert_eq!(local.gguf_value(key), remote.gguf_value(key), "{key}");
        }
    }
}

/// A split set opens whole from any one shard's URL (its other shards found by name beside
/// it) and from its prefix; a set with a shard missing is refused naming that shard's URL.
#[test]
fn a_gguf_split_set_opens_from_any_shard_url_and_a_missing_shard_is_named() {
    let _g = shared();
    let llama = common::arch::fixtures().join("llama");
    let model = Model::open_dir(&llama, &Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let split = stload::gguf::Split {
        max_bytes: 0,
        max_tensors: 4,
    };
    let shards = model
        .write_gguf_split(
            dir.path().join("m.gguf"),
            stload::gguf::OutType::Q8_0,
            split,
            &mut |_, _| true,
        )
        .unwrap();
    assert!(shards.len() >= 3, "{shards:?}");
    let (s3_url, http_url) = publish(dir.path(), "gguf/split");
    let name = |i: usize| shards[i].file_name().unwrap().to_str().unwrap().to_string();
    let last = shards.len() - 1;
    // Keys come from the shard given first (split.no differs), as for local files.
    for (i, url, options) in [
        (last, format!("{s3_url}{}", name(last)), s3_options()),
        (1, format!("{http_url}{}", name(1)), Options::default()),
    ] {
        let local = Model::open_files(&[&shards[i]], &Options::default()).unwrap();
        let remote = Model::open_files(&[&url], &options).unwrap();
        assert_eq!(remote.files().count(), shards.len());
        assert_same(&local, &remote);
    }
    let local = Model::open_files(&[&shards[0]], &Options::default()).unwrap();
    assert_same(&local, &Model::open_dir(&s3_url, &s3_options()).unwrap());

    // The second shard left out of another prefix.
    let partial = tempfile::tempdir().unwrap();
    for (i, shard) in shards.iter().enumerate().filter(|&(i, _)| i != 1) {
        std::fs::copy(shard, partial.path().join(name(i))).unwrap();
    }
    let (s3_url, _) = publish(partial.path(), "gguf/split-partial");
    let err = io_message(Model::open_files(
        &[&format!("{s3_url}{}", name(0))],
        &s3_options(),
    ));
    assert!(err.contains(&format!("{s3_url}{}", name(1))), "{err}");
    assert!(err.contains("not found"), "{err}");
}

/// A GGUF header longer than the first ranged read (a 3 MiB key here, past the 1 MiB read at
/// open) is read on in growing pieces; every block type the `gguf` package writes then serves
/// the local file's blocks and values. With `max_header_size` under the header's length it is
/// refused naming the URL and the limit, however long the server would go on.
#[test]
fn a_gguf_header_past_the_first_read_is_read_on_up_to_the_limit() {
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf/gguf_input_fixture.py");
    common::run_python(&[
        script.as_os_str(),
        dir.path().as_os_str(),
        "--pad".as_ref(),
        "3145728".as_ref(),
    ]);
    let only = single(&dir.path().join("model.gguf"), "model.gguf");
    let file = only.path().join("model.gguf");
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let (s3_url, http_url) = publish(only.path(), "gguf/padded");
    assert_same(&local, &Model::open_dir(&s3_url, &s3_options()).unwrap());
    let http_file = format!("{http_url}model.gguf");
    assert_same(
        &local,
        &Model::open_files(&[&http_file], &Options::default()).unwrap(),
    );

    let mut options = s3_options();
    options.set_max_header_size(2 << 20).unwrap();
    let url = format!("{s3_url}model.gguf");
    let err = Model::open_files(&[&url], &options).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains("test.padding") && text.contains("max_header_size"),
        "{text}"
    );
}

/// A truncated GGUF is refused at open naming its URL: cut inside its header, or inside its
/// data (a tensor past the end).
#[test]
fn a_truncated_remote_gguf_is_refused_naming_the_url() {
    let _g = shared();
    let dir = llama_gguf(stload::gguf::OutType::Q8_0);
    let bytes = std::fs::read(dir.path().join("model.gguf")).unwrap();
    for (label, len, rule) in [
        ("in-header", 200, "bytes left of the file"),
        ("in-data", bytes.len() - 100, "past the end of the file"),
    ] {
        let cut = tempfile::tempdir().unwrap();
        std::fs::write(cut.path().join("model.gguf"), &bytes[..len]).unwrap();
        let (s3_url, http_url) = publish(cut.path(), &format!("gguf/cut-{label}"));
        for (url, options) in [
            (format!("{s3_url}model.gguf"), s3_options()),
            (format!("{http_url}model.gguf"), Options::default()),
        ] {
            let err = Model::open_files(&[&url], &options).unwrap_err();
            assert!(matches!(err, Error::Format(_)), "{label}: {err:?}");
            let text = err.to_string();
            assert!(
                text.contains(&url) && text.contains(rule),
                "{label}: {text}"
            );
        }
    }
}
