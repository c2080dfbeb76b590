//! The cache directory of remote models (the `cache_dir` remote setting), against real servers
//! on loopback: s3s-fs and nginx, started by tests/remote/servers.sh (by tests/remote/run.sh,
//! or here when its variables are not set). The first open downloads a complete copy of every
//! file; later opens read the copy from disk while the object's ETag and size are unchanged,
//! and download again when they changed. Every result is compared bit for bit with the same
//! files opened locally.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::remote::{io_message, noise_model, own_s3s_fs, var};
use stload::gguf::OutType;
use stload::{Dtype, Error, Model, Options};

const BUCKET: &str = "cached";

/// Options reaching the S3 server at `endpoint`, with the cache directory `cache`.
fn s3_options_at(endpoint: &str, cache: &Path) -> Options {
    let mut o = common::remote::s3_options_at(endpoint);
    o.set_remote("cache_dir", cache.to_str().unwrap()).unwrap();
    o
}

fn s3_options(cache: &Path) -> Options {
    s3_options_at(var("STLOAD_TEST_S3_ENDPOINT"), cache)
}

fn http_options(cache: &Path) -> Options {
    let mut o = Options::default();
    o.set_remote("cache_dir", cache.to_str().unwrap()).unwrap();
    o
}

/// Puts `bytes` at `key` of the test bucket through the S3 API (which gives it an ETag).
fn put(key: &str, bytes: Vec<u8>) {
    common::remote::put(BUCKET, key, bytes);
}

/// Uploads every file of `dir` under `prefix` of the test bucket and the HTTP server's root.
/// Returns the S3 and HTTP URLs of the prefix.
fn publish(dir: &Path, prefix: &str) -> (String, String) {
    common::remote::publish(BUCKET, dir, prefix)
}

/// `model.safetensors` with three tensors (about 4 MiB of BF16, F32 and F16) of bytes seeded
/// by `seed`, in a new directory; the same `seed` and another gives a file of the same size.
fn model(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let specs: [(&str, &str, &[u64]); 3] = [
        ("a", "BF16", &[1024, 1025]),
        ("b", "F32", &[257, 1023]),
        ("c", "F16", &[3, 333]),
    ];
    noise_model(&specs, seed * 10)
}

/// Asserts that `got` serves every tensor of `want`, as stored and loaded as F32, bit for bit.
fn assert_same(want: &Model, got: &Model) {
    let names: Vec<&str> = want.names().collect();
    assert!(!names.is_empty());
    assert_eq!(names, got.names().collect::<Vec<_>>());
    for name in &names {
        assert_eq!(
            want.get(name).unwrap().data(),
            got.get(name).unwrap().data(),
            "{name}"
        );
    }
    want.load(Some(Dtype::F32), |_, _, _| true).unwrap();
    got.load(Some(Dtype::F32), |_, _, _| true).unwrap();
    for name in &names {
        let a = want.get_as(name, Dtype::F32).or_else(|_| want.get(name));
        let b = got.get_as(name, Dtype::F32).or_else(|_| got.get(name));
        assert_eq!(a.unwrap().data(), b.unwrap().data(), "{name} as f32");
    }
    want.release_all();
    got.release_all();
}

/// The files of `dir`: complete copies and temporary ones (names starting with a dot); not the
/// directories of cached prefixes (`models/`).
fn files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    all.sort();
    all.into_iter()
        .partition(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
}

/// Asserts that every file `model` reads is a copy in `cache` (itself, or a link to it in the
/// directory of a cached prefix).
fn assert_served_from(model: &Model, cache: &Path) {
    let copies: Vec<u64> = files(cache)
        .0
        .iter()
        .map(|c| std::fs::metadata(c).unwrap().ino())
        .collect();
    for name in model.names() {
        let file = model.info(name).unwrap().file;
        assert!(file.starts_with(cache), "{name}: {file:?}");
        let inode = std::fs::metadata(file).unwrap().ino();
        assert!(copies.contains(&inode), "{name}: {file:?} is no copy");
    }
}

#[test]
fn the_first_open_downloads_and_later_opens_read_the_copy() {
    let fixtures = common::fixtures();
    let single = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures.join("all_dtypes.safetensors"),
        single.path().join("model.safetensors"),
    )
    .unwrap();
    let (s3_single, _) = publish(single.path(), "single");
    let (s3_sharded, http_sharded) = publish(&fixtures.join("sharded"), "sharded");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();

    let local = Model::open_files(
        &[fixtures.join("all_dtypes.safetensors")],
        &Options::default(),
    )
    .unwrap();
    let first = Model::open_dir(&s3_single, &s3_options(cache)).unwrap();
    assert_served_from(&first, cache);
    assert_same(&local, &first);
    let (copies, partial) = files(cache);
    assert_eq!(
        (copies.len(), partial.len()),
        (1, 0),
        "{copies:?} {partial:?}"
    );
    let inode = std::fs::metadata(&copies[0]).unwrap().ino();

    // The second open finds the copy complete for the same ETag and size: it stays the file
    // it was (not written again) and serves the same bytes, zero-copy from its mapping.
    let second = Model::open_dir(&s3_single, &s3_options(cache)).unwrap();
    assert_same(&local, &second);
    assert_eq!(files(cache).0, copies);
    assert_eq!(std::fs::metadata(&copies[0]).unwrap().ino(), inode);
    let by_file = format!("{s3_single}model.safetensors");
    assert_same(
        &local,
        &Model::open_files(&[&by_file], &s3_options(cache)).unwrap(),
    );
    assert_eq!(files(cache).0, copies, "a file URL is the same object");

    // A sharded model with an index, from S3 and from HTTP (another URL: other copies).
    let local = Model::open_dir(fixtures.join("sharded"), &Options::default()).unwrap();
    let s3 = Model::open_dir(&s3_sharded, &s3_options(cache)).unwrap();
    assert!(s3.files().count() > 1);
    assert_served_from(&s3, cache);
    assert_same(&local, &s3);
    let http = Model::open_dir(&http_sharded, &http_options(cache)).unwrap();
    assert_served_from(&http, cache);
    assert_same(&local, &http);
    // Each prefix's copies: its shards and its index.
    let shards = s3.files().count();
    assert_eq!(files(cache).0.len(), 1 + 2 * (shards + 1));
    assert!(files(cache).1.is_empty());
}

/// The same bucket and key at another endpoint (a second S3 server) is another object: it gets
/// its own copy, and neither endpoint's copy is taken for a stale copy of the other's.
#[test]
fn the_same_url_at_another_endpoint_is_another_copy() {
    let (dir, file) = model(7);
    let (url, _) = publish(dir.path(), "endpoints");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();
    let local = Model::open_files(&[&file], &Options::default()).unwrap();
    let (_server, other) = own_s3s_fs();
    let first = Model::open_dir(&url, &s3_options(cache)).unwrap();
    assert_same(&local, &first);
    let (copies, _) = files(cache);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let second = Model::open_dir(&url, &s3_options_at(&other, cache)).unwrap();
    assert_served_from(&second, cache);
    assert_same(&local, &second);
    let (both, _) = files(cache);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(
        both.contains(&copies[0]),
        "the first endpoint's copy was removed"
    );
    // Each endpoint goes on reading its own copy.
    let again = Model::open_dir(&url, &s3_options(cache)).unwrap();
    assert_eq!(files(cache).0, both);
    let served = |m: &Model| m.info("a").unwrap().file.to_path_buf();
    assert_ne!(served(&again), served(&second));
}

/// Sets the modification time of `path` (nginx's ETag is its mtime and size).
fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn a_copy_is_served_while_the_etag_holds_and_replaced_when_it_changes() {
    let (one, one_file) = model(1);
    let (_two, two_file) = model(2);
    let want_one = Model::open_files(&[&one_file], &Options::default()).unwrap();
    let want_two = Model::open_files(&[&two_file], &Options::default()).unwrap();
    let (s3_url, http_url) = publish(one.path(), "replaced");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();

    // HTTP: nginx's ETag is the file's mtime and size. Other bytes of the same size under the
    // old mtime keep the ETag: the copy on disk is served, proving no data is fetched.
    let served = Path::new(var("STLOAD_TEST_HTTP_ROOT"))
        .join(BUCKET)
        .join("replaced/model.safetensors");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    set_mtime(&served, mtime);
    assert_same(
        &want_one,
        &Model::open_dir(&http_url, &http_options(cache)).unwrap(),
    );
    std::fs::copy(&two_file, &served).unwrap();
    set_mtime(&served, mtime);
    let from_disk = Model::open_dir(&http_url, &http_options(cache)).unwrap();
    assert_same(&want_one, &from_disk);
    // Without the cache the same URL serves the new bytes: the server did change.
    let fresh = Model::open_dir(&http_url, &Options::default()).unwrap();
    assert_same(&want_two, &fresh);
    // A new mtime is a new ETag: a miss, downloaded again; the stale copy is removed, and so
    // is a temporary file of the URL left by a process that died an hour ago, not one in use.
    set_mtime(&served, mtime + Duration::from_secs(10));
    let (before, _) = files(cache);
    let copy = before[0].file_name().unwrap().to_str().unwrap().to_string();
    let url_hash = copy.split('-').next().unwrap();
    let dead = cache.join(format!(".{url_hash}-0.dead.part"));
    let live = cache.join(format!(".{url_hash}-0.live.part"));
    std::fs::write(&dead, b"x").unwrap();
    std::fs::write(&live, b"x").unwrap();
    set_mtime(&dead, SystemTime::now() - Duration::from_secs(7200));
    let replaced = Model::open_dir(&http_url, &http_options(cache)).unwrap();
    assert_same(&want_two, &replaced);
    let (after, partial) = files(cache);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "the stale copy is gone");
    assert_eq!(partial, vec![live.clone()]);
    std::fs::remove_file(&live).unwrap();
    // The model opened from the old copy keeps its mapping after the copy was removed, and
    // says its file changed instead of serving other bytes.
    assert!(from_disk.verify().is_err());

    // S3: an object put again with other bytes has another ETag.
    let first = Model::open_dir(&s3_url, &s3_options(cache)).unwrap();
    assert_same(&want_one, &first);
    put(
        "replaced/model.safetensors",
        std::fs::read(&two_file).unwrap(),
    );
    let second = Model::open_dir(&s3_url, &s3_options(cache)).unwrap();
    assert_same(&want_two, &second);
    let (copies, _) = files(cache);
    assert_eq!(copies.len(), 2, "one copy per URL: {copies:?}");
}

#[test]
fn an_interrupted_download_leaves_no_copy_and_the_next_open_downloads_again() {
    // A server that cuts every body after the first bytes of the file short.
    let (dir, file) = model(3);
    let want = Model::open_files(&[&file], &Options::default()).unwrap();
    let (_short, server_url) = common::remote::faulty_server(dir.path(), "short");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();
    let url = format!("{server_url}/model.safetensors");
    let mut options = http_options(cache);
    options.set_remote("max_retries", "1").unwrap();
    options.set_remote("chunk_size", "65536").unwrap();
    for _ in 0..2 {
        let err = io_message(Model::open_files(&[&url], &options));
        assert!(err.contains("truncated body"), "{err}");
        assert!(err.contains(&url), "{err}");
        assert!(err.contains(cache.to_str().unwrap()), "{err}");
        assert_eq!(files(cache), (vec![], vec![]), "nothing is left behind");
    }

    // An S3 server stopped while the copy is written (seen by its temporary file).
    publish(dir.path(), "interrupted");
    let (mut server, endpoint) = own_s3s_fs();
    let url = format!("s3://{BUCKET}/interrupted/");
    let mut options = s3_options_at(&endpoint, cache);
    options.set_remote("max_retries", "1").unwrap();
    options.set_remote("init_backoff_ms", "10").unwrap();
    options.set_remote("retry_timeout_ms", "1000").unwrap();
    options.set_remote("chunk_size", "65536").unwrap();
    options.set_remote("concurrency", "1").unwrap();
    let watcher = std::thread::spawn({
        let cache = cache.to_path_buf();
        move || {
            for _ in 0..20_000 {
                if !files(&cache).1.is_empty() {
                    server.stop();
                    return true;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            false
        }
    });
    let result = Model::open_dir(&url, &options);
    assert!(watcher.join().unwrap(), "no download was seen");
    let err = io_message(result);
    assert!(err.contains("interrupted/model.safetensors"), "{err}");
    assert!(err.contains(cache.to_str().unwrap()), "{err}");
    assert_eq!(files(cache), (vec![], vec![]), "nothing is left behind");
    // The same URL through the running server: downloaded again, whole.
    let again = Model::open_dir(&url, &s3_options(cache)).unwrap();
    assert_served_from(&again, cache);
    assert_same(&want, &again);
}

#[test]
fn an_empty_cache_dir_turns_the_cache_off_and_a_bad_one_is_an_error() {
    let (dir, file) = model(4);
    let want = Model::open_files(&[&file], &Options::default()).unwrap();
    let (s3_url, _) = publish(dir.path(), "off");
    let cache = tempfile::tempdir().unwrap();
    let mut options = s3_options(cache.path());
    options.set_remote("cache_dir", "").unwrap();
    let remote = Model::open_dir(&s3_url, &options).unwrap();
    assert_same(&want, &remote);
    assert!(remote
        .info("a")
        .unwrap()
        .file
        .to_str()
        .unwrap()
        .contains("://"));
    assert_eq!(files(cache.path()), (vec![], vec![]));
    // A cache directory that cannot be made is an error naming it.
    let blocked = cache.path().join("file");
    std::fs::write(&blocked, b"").unwrap();
    let err = io_message(Model::open_dir(&s3_url, &s3_options(&blocked.join("sub"))));
    assert!(err.contains("cache directory"), "{err}");
    assert!(err.contains(blocked.to_str().unwrap()), "{err}");
}

#[test]
fn two_opens_filling_one_cache_at_once_both_succeed_with_one_copy() {
    let (dir, file) = model(5);
    let want = Model::open_files(&[&file], &Options::default()).unwrap();
    let (s3_url, _) = publish(dir.path(), "race");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();
    // Each download writes its own temporary file; the first moved into place stays, the
    // other is dropped, and both models read the same complete copy.
    let models: Vec<Model> = std::thread::scope(|s| {
        let opens: Vec<_> = (0..2)
            .map(|_| {
                let mut options = s3_options(cache);
                options.set_remote("chunk_size", "65536").unwrap();
                let url = s3_url.clone();
                s.spawn(move || Model::open_dir(&url, &options).unwrap())
            })
            .collect();
        opens.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for model in &models {
        assert_served_from(model, cache);
        assert_same(&want, model);
        assert!(model.verify().is_ok());
    }
    let (copies, partial) = files(cache);
    assert_eq!(
        (copies.len(), partial.len()),
        (1, 0),
        "{copies:?} {partial:?}"
    );
}

/// A cached prefix opens as the local directory it is then: `config.json` and the tokenizer
/// files come along, so an architecture and GGUF export work (the GGUF is byte-identical to
/// the local model's), and so do PyTorch checkpoints, from S3 and HTTP. Without a cache the
/// same opens are refused, naming the cache directory as the way.
#[test]
fn a_cached_prefix_opens_as_a_local_directory_with_architecture_gguf_and_pytorch() {
    let llama = common::arch::fixtures().join("llama");
    // The prefix's last part names the model in GGUF (general.name), as the directory does.
    let (s3, http) = publish(&llama, "arch/llama");
    let local = Model::open_dir(&llama, &common::arch::options("llama", true)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let want = work.path().join("local.gguf");
    local
        .write_gguf(&want, OutType::F16, &mut |_, _| true)
        .unwrap();
    let with_arch = |mut o: Options| {
        o.arch = Some("llama".into());
        o.gguf_layout = true;
        o
    };
    type Opener = fn(&Path) -> Options;
    let openers: [(&str, Opener); 2] = [(&s3, s3_options), (&http, http_options)];
    for (url, opts) in openers {
        let cache = tempfile::tempdir().unwrap();
        let remote = Model::open_dir(url, &with_arch(opts(cache.path()))).unwrap();
        assert_served_from(&remote, cache.path());
        assert!(
            remote.config_dir().join("tokenizer.json").is_file(),
            "{url}"
        );
        assert_same(&local, &remote);
        let got = work.path().join("remote.gguf");
        remote
            .write_gguf(&got, OutType::F16, &mut |_, _| true)
            .unwrap();
        assert!(
            std::fs::read(&want).unwrap() == std::fs::read(&got).unwrap(),
            "{url}"
        );

        let mut uncached = with_arch(opts(cache.path()));
        uncached.set_remote("cache_dir", "").unwrap();
        let err = Model::open_dir(url, &uncached).expect_err("refused");
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("cache_dir"), "{err}");
    }

    // The index's names are checked before anything is copied or linked: none leaves the
    // prefix, into the cache directory or out of it.
    let index = br#"{"weight_map":{"a":"../llama/model.safetensors"}}"#;
    put("arch/hostile/model.safetensors.index.json", index.to_vec());
    let cache = tempfile::tempdir().unwrap();
    let err = Model::open_dir(
        format!("s3://{BUCKET}/arch/hostile/"),
        &s3_options(cache.path()),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("../llama"), "{err}");
    assert!(files(cache.path()).0.is_empty());

    let torch = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/sharded");
    let (s3, _) = publish(&torch, "torch/sharded");
    let local = Model::open_dir(&torch, &Options::default()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let remote = Model::open_dir(&s3, &s3_options(cache.path())).unwrap();
    assert!(remote.files().count() > 1);
    assert_served_from(&remote, cache.path());
    assert_same(&local, &remote);
    let mut uncached = s3_options(cache.path());
    uncached.set_remote("cache_dir", "").unwrap();
    let err = Model::open_dir(&s3, &uncached).expect_err("refused");
    assert!(err.to_string().contains("cache_dir"), "{err}");
}

/// The one complete copy in `cache` whose name ends with `-LABEL`.
fn copy_named(cache: &Path, label: &str) -> PathBuf {
    let (copies, _) = files(cache);
    let found: Vec<&PathBuf> = copies
        .iter()
        .filter(|c| c.to_str().unwrap().ends_with(&format!("-{label}")))
        .collect();
    assert_eq!(found.len(), 1, "{label}: {copies:?}");
    found[0].clone()
}

/// Damages the copy at `copy` (given the file `other` of other bytes of the same size).
type Damage = fn(&Path, &Path);

/// Opens the file model of `seed` by URL with a cache, damages its copy with each of `damages`
/// in turn, and asserts that the next two opens serve the object's own bytes from a regular
/// file of its size, the only file of the cache. Returns the prefix's URL, the cache, the
/// model as opened locally, the directories of its file and of the other bytes, and the file
/// of the other bytes.
fn damage_and_reopen(
    seed: u64,
    prefix: &str,
    damages: &[(&str, Damage)],
) -> (
    String,
    tempfile::TempDir,
    Model,
    [tempfile::TempDir; 2],
    PathBuf,
) {
    let (dir, file) = model(seed);
    let (other_dir, other_file) = model(seed + 1);
    let want = Model::open_files(&[&file], &Options::default()).unwrap();
    let (s3_url, _) = publish(dir.path(), prefix);
    let by_file = format!("{s3_url}model.safetensors");
    let cache = tempfile::tempdir().unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    Model::open_files(&[&by_file], &s3_options(cache.path())).unwrap();
    let copy = copy_named(cache.path(), "model.safetensors");
    for (what, damage) in damages {
        damage(&copy, &other_file);
        for _ in 0..2 {
            let got = Model::open_files(&[&by_file], &s3_options(cache.path()))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_same(&want, &got);
            let meta = std::fs::symlink_metadata(&copy).unwrap();
            assert!(meta.file_type().is_file(), "{what}");
            assert_eq!(meta.len(), size, "{what}");
            assert_eq!(files(cache.path()).0, vec![copy.clone()], "{what}");
            assert!(files(cache.path()).1.is_empty(), "{what}");
        }
    }
    (s3_url, cache, want, [dir, other_dir], other_file)
}

/// A damaged copy under a copy's name (truncated, a directory) is replaced by a download:
/// every later open serves the object's bytes (it downloaded again and failed "File exists",
/// for good).
#[test]
fn a_damaged_copy_is_replaced_by_a_download() {
    let damages: [(&str, Damage); 2] = [
        ("truncated", |copy, _| {
            std::fs::File::options()
                .write(true)
                .open(copy)
                .unwrap()
                .set_len(1000)
                .unwrap();
        }),
        ("a directory", |copy, _| {
            std::fs::remove_file(copy).unwrap();
            std::fs::create_dir_all(copy.join("x")).unwrap();
        }),
    ];
    damage_and_reopen(8, "damaged", &damages);
}

/// A link planted in the cache, under a copy's name (to other bytes of the same size) or in
/// a cached prefix's directory of links, is never followed and served: the copy is downloaded
/// again, the directory built again.
#[test]
fn a_link_planted_in_the_cache_is_never_served() {
    let damages: [(&str, Damage); 1] =
        [("a link to other bytes of the same size", |copy, other| {
            std::fs::remove_file(copy).unwrap();
            std::os::unix::fs::symlink(other, copy).unwrap();
        })];
    let (s3_url, cache, want, _other, other_file) = damage_and_reopen(20, "linked", &damages);
    let cache = cache.path();
    let first = Model::open_dir(&s3_url, &s3_options(cache)).unwrap();
    let linked = first.info("a").unwrap().file.to_path_buf();
    drop(first);
    std::fs::remove_file(&linked).unwrap();
    std::os::unix::fs::symlink(&other_file, &linked).unwrap();
    let again = Model::open_dir(&s3_url, &s3_options(cache)).unwrap();
    assert_served_from(&again, cache);
    assert_same(&want, &again);
    let served = again.info("a").unwrap().file;
    assert!(std::fs::symlink_metadata(served)
        .unwrap()
        .file_type()
        .is_file());
}

/// A shard index naming a file beside the weights (`config.json`) as a shard is refused, and
/// the cached copy of that file keeps its bytes (it was linked twice under one name and
/// truncated to 0 bytes, by a copy written through the first link).
#[test]
fn an_index_naming_a_side_file_as_a_shard_is_refused_and_no_copy_is_written_through() {
    let (dir, _) = model(10);
    let config = br#"{"architectures":["LlamaForCausalLM"],"hidden_size":8}"#.to_vec();
    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    let index = r#"{"weight_map":{"a":"model.safetensors","b":"model.safetensors","c":"model.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let (s3_url, http_url) = publish(dir.path(), "twice");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();
    Model::open_dir(&s3_url, &s3_options(cache)).unwrap();
    let config_copy = copy_named(cache, "config.json");
    assert_eq!(std::fs::read(&config_copy).unwrap(), config);

    let hostile = r#"{"weight_map":{"a":"model.safetensors","x":"config.json"}}"#;
    put(
        "twice/model.safetensors.index.json",
        hostile.as_bytes().to_vec(),
    );
    let http_index = Path::new(var("STLOAD_TEST_HTTP_ROOT"))
        .join(BUCKET)
        .join("twice");
    std::fs::write(http_index.join("model.safetensors.index.json"), hostile).unwrap();
    for (url, options) in [
        (&s3_url, s3_options(cache)),
        (&http_url, http_options(cache)),
    ] {
        let err = Model::open_dir(url, &options).expect_err("refused");
        assert!(matches!(err, Error::Format(_)), "{url}: {err}");
        assert!(err.to_string().contains("config.json"), "{err}");
        assert_eq!(std::fs::read(&config_copy).unwrap(), config, "{url}");
    }
}

/// With a cache, a file's header is fetched and checked before the file is downloaded, as
/// without one: a hostile object whose header the local rules refuse leaves nothing in the
/// cache (it was downloaded whole, and kept, before its header was read).
#[test]
fn a_file_whose_header_is_refused_is_not_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    // A header length of 100 bytes of no JSON, then 4 MiB.
    let mut bytes = 100u64.to_le_bytes().to_vec();
    bytes.extend(b"{".repeat(100));
    bytes.extend(vec![0u8; 4 << 20]);
    std::fs::write(dir.path().join("model.safetensors"), &bytes).unwrap();
    std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
    let (s3_url, http_url) = publish(dir.path(), "hostile-header");
    let uncached = {
        let mut o = s3_options(Path::new(""));
        o.set_remote("cache_dir", "").unwrap();
        Model::open_dir(&s3_url, &o).expect_err("refused without a cache")
    };
    for (url, options) in [
        (s3_url.clone(), s3_options as fn(&Path) -> Options),
        (format!("{s3_url}model.safetensors"), s3_options),
        (http_url.clone(), http_options),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let result = if url.ends_with(".safetensors") {
            Model::open_files(&[&url], &options(cache.path()))
        } else {
            Model::open_dir(&url, &options(cache.path()))
        };
        let err = result.expect_err("refused");
        assert_eq!(
            std::mem::discriminant(&err),
            std::mem::discriminant(&uncached),
            "{url}: {err} (without a cache: {uncached})"
        );
        assert_eq!(files(cache.path()), (vec![], vec![]), "{url}: nothing kept");
        assert!(!cache.path().join("models").exists(), "{url}");
    }
}

/// A cached remote prefix exported to GGUF is byte-identical to the same directory exported
/// locally: every file of the one list of side files comes along, the sentence-transformers
/// `modules.json` and the pooling directory it names, `chat_template.jinja` and
/// `added_tokens.json` too (without them the pooling type and the chat template differed).
#[test]
fn a_cached_prefix_exports_the_same_gguf_as_the_local_directory() {
    let model_dir = tempfile::tempdir().unwrap();
    let bert = common::arch::fixtures().join("bert");
    let dir = model_dir.path().join("bert");
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    for name in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(bert.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("chat_template.jinja"),
        "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    )
    .unwrap();
    std::fs::write(dir.join("added_tokens.json"), "{}").unwrap();
    let work = tempfile::tempdir().unwrap();
    let want = work.path().join("local.gguf");
    Model::open_dir(&dir, &Options::default())
        .unwrap()
        .write_gguf(&want, OutType::F16, &mut |_, _| true)
        .unwrap();
    let (s3, http) = common::remote::publish_tree(BUCKET, &dir, "side/bert");
    type Opener = fn(&Path) -> Options;
    let openers: [(&str, Opener); 2] = [(&s3, s3_options), (&http, http_options)];
    for (url, options) in openers {
        let cache = tempfile::tempdir().unwrap();
        let remote = Model::open_dir(url, &options(cache.path())).unwrap();
        let got = work.path().join("remote.gguf");
        remote
            .write_gguf(&got, OutType::F16, &mut |_, _| true)
            .unwrap();
        assert!(
            std::fs::read(&want).unwrap() == std::fs::read(&got).unwrap(),
            "{url}: the GGUF differs from the local directory's"
        );
        for side in [
            "modules.json",
            "1_Pooling/config.json",
            "chat_template.jinja",
        ] {
            assert!(remote.config_dir().join(side).is_file(), "{url}: {side}");
        }
    }
}

/// A GGUF split set (Q8_0) opens through the cache as the local set does, by its prefix and
/// by one shard's URL (its other shards found by name beside that URL, not beside the copy,
/// which is named by hashes): every tensor is then read from a copy. A GGUF whose header is
/// refused (here cut short) is refused as without a cache, and nothing is kept.
#[test]
fn gguf_split_sets_open_through_the_cache_and_a_refused_header_is_not_downloaded() {
    let llama = common::arch::fixtures().join("llama");
    let dir = tempfile::tempdir().unwrap();
    let split = stload::gguf::Split {
        max_bytes: 0,
        max_tensors: 5,
    };
    let shards = Model::open_dir(&llama, &Options::default())
        .unwrap()
        .write_gguf_split(
            dir.path().join("m.gguf"),
            OutType::Q8_0,
            split,
            &mut |_, _| true,
        )
        .unwrap();
    assert!(shards.len() >= 3, "{shards:?}");
    let local = Model::open_files(&[&shards[0]], &Options::default()).unwrap();
    let (s3_url, http_url) = publish(dir.path(), "gguf-split");
    let first = shards[0].file_name().unwrap().to_str().unwrap();
    type Opener = fn(&Path) -> Options;
    let opens: [(String, Opener, bool); 3] = [
        (s3_url.clone(), s3_options, true),
        (format!("{s3_url}{first}"), s3_options, false),
        (format!("{http_url}{first}"), http_options, false),
    ];
    for (url, options, prefix) in opens {
        let cache = tempfile::tempdir().unwrap();
        let remote = if prefix {
            Model::open_dir(&url, &options(cache.path()))
        } else {
            Model::open_files(&[&url], &options(cache.path()))
        }
        .unwrap();
        assert_eq!(remote.files().count(), shards.len(), "{url}");
        assert_served_from(&remote, cache.path());
        assert_same(&local, &remote);
    }

    let cut = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&shards[0]).unwrap();
    std::fs::write(cut.path().join("model.gguf"), &bytes[..300]).unwrap();
    let (s3_url, _) = publish(cut.path(), "gguf-cut");
    let url = format!("{s3_url}model.gguf");
    for target in [s3_url.clone(), url.clone()] {
        let cache = tempfile::tempdir().unwrap();
        let options = s3_options(cache.path());
        let result = if target == url {
            Model::open_files(&[&target], &options)
        } else {
            Model::open_dir(&target, &options)
        };
        let err = result.expect_err("refused");
        assert!(matches!(err, Error::Format(_)), "{target}: {err:?}");
        assert!(err.to_string().contains(&url), "{target}: {err}");
        assert_eq!(
            files(cache.path()),
            (vec![], vec![]),
            "{target}: nothing kept"
        );
    }
}
