//! MLX arrays of a remote model, from s3:// and http:// on the loopback test servers (s3s-fs
//! and nginx, see tests/common/remote.rs): `get_mlx` and `load_mlx` give, bit for bit, the
//! arrays of the same file opened locally, as stored, converted (BF16, F16 and FP8 stored,
//! F32 wanted: the bytes are fetched and converted, there is no mapping to convert from) and
//! unconverted (F32 and integers). The local arrays are checked against `mx.load` by
//! tests/mlx.rs. Run by tests/c/run_mlx.sh; never skipped: without the servers' variables the
//! test starts them, and fails when it cannot.

#![cfg(all(feature = "mlx", feature = "remote"))]

mod common;

use common::remote::{noise_model, publish, s3_options};
use stload::mlx::{has_dtype, MlxArray};
use stload::{Dtype, Model, Options};

const BUCKET: &str = "mlx";

/// The bytes of an evaluated array.
fn bytes(a: &MlxArray) -> &[u8] {
    a.bytes().expect("evaluated contiguous array")
}

/// Asserts that `got` and `want` are the same array: dtype, shape and bytes.
fn assert_same_array(want: &MlxArray, got: &MlxArray, what: &str) {
    assert_eq!(want.dtype(), got.dtype(), "{what}");
    assert_eq!(want.shape(), got.shape(), "{what}");
    assert!(bytes(want) == bytes(got), "{what}: other bytes");
}

/// Asserts that `get_mlx` of `remote` gives the arrays of `local` for every tensor, as stored
/// and as each float dtype MLX has, fresh and then from the cache; the two refuse the same
/// requests.
fn assert_same_gets(local: &Model, remote: &Model, url: &str) {
    let mut converted = 0;
    for _pass in 0..2 {
        for info in local.infos() {
            for to in [None, Some(Dtype::F32), Some(Dtype::BF16), Some(Dtype::F16)] {
                let what = format!("{url}: {} as {to:?}", info.name);
                match (local.get_mlx(info.name, to), remote.get_mlx(info.name, to)) {
                    (Ok(want), Ok(got)) => {
                        assert_same_array(&want, &got, &what);
                        if to.is_some_and(|d| d != info.dtype) {
                            converted += 1;
                        }
                    }
                    (Err(_), Err(_)) => {}
                    (want, got) => panic!("{what}: local {want:?}, remote {got:?}"),
                }
            }
        }
    }
    assert!(converted > 0, "{url}: nothing was converted");
}

/// Asserts that `load_mlx(target)` of `remote` keeps the arrays `load_mlx(target)` of `local`
/// keeps, one per tensor, in the dtype the whole-model rule picks.
fn assert_same_load(local: &Model, remote: &Model, target: Option<Dtype>, url: &str) {
    for model in [local, remote] {
        model.release_all();
        model.load_mlx(target, |_, _, _| true).expect("load_mlx");
        assert_eq!(model.mlx_cached(), model.len(), "{url}: {target:?}");
    }
    for info in local.infos() {
        let dtype = match stload::convert::whole_model_dtype(info.dtype, target) {
            to if has_dtype(to) => to,
            _ => info.dtype,
        };
        let want = local.get_mlx(info.name, Some(dtype)).expect("local");
        let got = remote.get_mlx(info.name, Some(dtype)).expect("remote");
        let what = format!("{url}: load_mlx {target:?}: {} as {dtype}", info.name);
        assert_same_array(&want, &got, &what);
    }
    assert_eq!(
        remote.mlx_cached(),
        remote.len(),
        "{url}: served from the cache"
    );
    local.release_all();
    remote.release_all();
}

#[test]
fn remote_arrays_equal_local_ones_converted_and_not() {
    // Noise: every bit pattern, NaNs included, in each dtype.
    let specs: [(&str, &str, &[u64]); 6] = [
        ("a.bf16", "BF16", &[300, 257]),
        ("b.f32", "F32", &[129, 65]),
        ("c.f16", "F16", &[7, 3, 11]),
        ("d.f8", "F8_E4M3", &[333, 3]),
        ("e.i32", "I32", &[1000]),
        ("f.u8", "U8", &[17]),
    ];
    let (dir, file) = noise_model(&specs, 31);
    let (s3_url, http_url) = publish(BUCKET, dir.path(), "converted");
    let local = Model::open_files(&[&file], &Options::default()).expect("local");
    // Small chunks on S3: a.bf16 arrives in three ranged GETs.
    let mut s3 = s3_options();
    s3.set_remote("chunk_size", "65536").unwrap();
    for (url, options) in [(&s3_url, s3), (&http_url, Options::default())] {
        let remote = Model::open_dir(url, &options).expect("remote");
        assert_eq!(remote.len(), specs.len());
        for info in remote.infos() {
            let file = info.file.to_str().unwrap();
            assert!(file.contains("://"), "{file} is not read remotely");
        }
        assert_same_gets(&local, &remote, url);
        local.release_all();
        remote.release_all();
        for target in [Some(Dtype::F32), Some(Dtype::BF16), None] {
            assert_same_load(&local, &remote, target, url);
        }
    }
}
