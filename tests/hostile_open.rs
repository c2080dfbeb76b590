//! Issue 16's hostile cases at open and get: special files, oversized JSON, absurd thread
//! counts, zero-size slices of huge tensors, wrapping config.json arithmetic, ambiguous or
//! numerous mixtral experts, tensor-count limits across shards, and the shape invariant
//! (`product(shape) × dtype size == nbytes`) over every transform.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stload::{Error, Model, Options};
use stload::{SplitRule, StackRule};

/// Writes a safetensors file of zero-filled tensors `(name, dtype, shape)`.
fn st(dir: &Path, file: &str, tensors: &[(&str, &str, &[u64])]) -> PathBuf {
    let mut fields = Vec::new();
    let mut at = 0u64;
    for (name, dtype, shape) in tensors {
        let size = match *dtype {
            "F32" => 4,
            "BF16" | "F16" => 2,
            _ => 1,
        };
        let n = shape.iter().product::<u64>() * size;
        fields.push(format!(
            r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{at},{}]}}"#,
            at + n
        ));
        at += n;
    }
    let header = format!("{{{}}}", fields.join(","));
    common::raw_file(dir, file, &header, &vec![0u8; at as usize])
}

fn with_arch(arch: &str) -> Options {
    {
        let mut o = Options::default();
        o.arch = Some(arch.into());
        o
    }
}

/// Every listed tensor satisfies the shape invariant, checked here independently.
fn assert_invariant(model: &Model, ctx: &str) {
    for info in model.infos() {
        let elements = info
            .shape
            .iter()
            .try_fold(1u64, |a, &n| a.checked_mul(n))
            .unwrap_or_else(|| panic!("{ctx}: {} shape overflows", info.name));
        let bits = elements.checked_mul(u64::from(info.dtype.bits()));
        assert_eq!(
            bits,
            info.nbytes.checked_mul(8),
            "{ctx}: {} {:?} {} is {} bytes",
            info.name,
            info.shape,
            info.dtype,
            info.nbytes
        );
    }
}

#[test]
fn fifos_are_refused_without_blocking() {
    // Item 2: a FIFO as a file, as a shard named by index.json, or as config.json.
    let dir = tempfile::tempdir().unwrap();
    for name in ["pipe.safetensors", "pytorch_model.bin"] {
        let path = dir.path().join(name);
        common::mkfifo(&path);
        let shown = path.clone();
        let err = common::within(name, move || {
            Model::open_files(&[shown], &Options::default()).unwrap_err()
        });
        let text = err.to_string();
        assert!(
            text.contains(name) && text.contains("not a regular file"),
            "{text}"
        );
    }
    let indexed = tempfile::tempdir().unwrap();
    common::mkfifo(&indexed.path().join("model-1.safetensors"));
    std::fs::write(
        indexed.path().join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"model-1.safetensors"}}"#,
    )
    .unwrap();
    let p = indexed.path().to_path_buf();
    let text = common::within("indexed", move || {
        Model::open_dir(p, &Options::default())
            .unwrap_err()
            .to_string()
    });
    assert!(
        text.contains("model-1.safetensors") && text.contains("not a regular file"),
        "{text}"
    );
    let arch = tempfile::tempdir().unwrap();
    st(
        arch.path(),
        "model.safetensors",
        &[("lm_head.weight", "F32", &[2, 2])],
    );
    common::mkfifo(&arch.path().join("config.json"));
    let p = arch.path().to_path_buf();
    let text = common::within("config", move || {
        Model::open_dir(p, &with_arch("llama"))
            .unwrap_err()
            .to_string()
    });
    assert!(
        text.contains("config.json") && text.contains("not a regular file"),
        "{text}"
    );
}

#[test]
fn json_beside_the_weights_is_bounded() {
    // Item 3: config.json as a link to /dev/zero, and an index.json past the limit (sparse).
    let arch = tempfile::tempdir().unwrap();
    st(
        arch.path(),
        "model.safetensors",
        &[("lm_head.weight", "F32", &[2, 2])],
    );
    std::os::unix::fs::symlink("/dev/zero", arch.path().join("config.json")).unwrap();
    let p = arch.path().to_path_buf();
    let text = common::within("dev zero", move || {
        Model::open_dir(p, &with_arch("llama"))
            .unwrap_err()
            .to_string()
    });
    assert!(
        text.contains("config.json") && text.contains("not a regular file"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    st(dir.path(), "model-1.safetensors", &[("a", "F32", &[1])]);
    let index = dir.path().join("model.safetensors.index.json");
    let file = std::fs::File::create(&index).unwrap();
    file.set_len(Options::default().max_json_size + 1).unwrap();
    let err = Model::open_dir(dir.path(), &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    assert!(
        err.to_string().contains("model.safetensors.index.json"),
        "{err}"
    );
    // Raised, the same file is read and refused for what it is (zeros, not JSON).
    let raised = {
        let mut o = Options::default();
        o.max_json_size = 2 * Options::default().max_json_size;
        o
    };
    let err = Model::open_dir(dir.path(), &raised).unwrap_err();
    assert!(matches!(err, Error::Format(_)), "{err}");

    let big = tempfile::tempdir().unwrap();
    st(
        big.path(),
        "model.safetensors",
        &[("lm_head.weight", "F32", &[2, 2])],
    );
    let config = format!(
        r#"{{"num_attention_heads": 1, "pad": "{}"}}"#,
        "x".repeat(4096)
    );
    std::fs::write(big.path().join("config.json"), config).unwrap();
    let small = {
        let mut o = with_arch("llama");
        o.max_json_size = 1024;
        o
    };
    let err = Model::open_dir(big.path(), &small).unwrap_err();
    assert!(
        matches!(err, Error::Limit(_)) && err.to_string().contains("config.json"),
        "{err}"
    );
}

#[test]
fn absurd_thread_counts_are_refused_or_clamped() {
    // Item 8: 2^62 threads divided by zero inside; SIZE_MAX made get hang.
    let dir = tempfile::tempdir().unwrap();
    let path = st(dir.path(), "m.safetensors", &[("a", "BF16", &[1 << 20])]);
    for threads in [1usize << 62, usize::MAX] {
        let options = {
            let mut o = Options::default();
            o.threads = threads;
            o
        };
        let p = path.clone();
        let n = common::within("threads", move || {
            let model = Model::open_files(&[p], &options).unwrap();
            model.get_as("a", stload::Dtype::F32).unwrap().data().len()
        });
        assert_eq!(n, 4 << 20);
    }
    use stload::ffi::options::{
        stload_options_free, stload_options_new, stload_options_set_threads,
    };
    let opts = stload_options_new();
    for (threads, ok) in [
        (0usize, true),
        (64, true),
        (1 << 62, false),
        (usize::MAX, false),
    ] {
        let mut err = std::ptr::null_mut();
        // SAFETY: `opts` is a live handle from stload_options_new, `err` a local.
        let status = unsafe { stload_options_set_threads(opts, threads, &mut err) };
        assert_eq!(
            status == stload::ffi::stload_status::STLOAD_OK,
            ok,
            "{threads}"
        );
        // SAFETY: NULL or the error object just stored, freed once.
        unsafe { stload::ffi::error::stload_error_free(err) };
    }
    // SAFETY: the handle from stload_options_new, freed once and not used after.
    unsafe { stload_options_free(opts) };
}

#[test]
fn zero_size_slices_of_a_huge_outer_dimension_are_immediate() {
    // Item 1: shape [2^40, 0] sliced on axis 1 looped over 2^40 rows.
    let dir = tempfile::tempdir().unwrap();
    let huge = 1u64 << 40;
    let path = st(dir.path(), "m.safetensors", &[("z", "F32", &[huge, 0])]);
    let model = Model::open_files(&[path], &Options::default()).unwrap();
    let started = Instant::now();
    let t = model.get_slice("z", 1, 0, 0, None).unwrap();
    assert_eq!(t.shape(), [huge, 0]);
    let t = model
        .get_slice("z", 0, 1, huge, Some(stload::Dtype::BF16))
        .unwrap();
    assert_eq!(t.shape(), [huge - 1, 0]);
    assert!(t.data().is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn config_arithmetic_that_wraps_is_an_error_not_a_panic() {
    // Item 10: heads × head_dim and 2 × heads wrapped (then `rows % 0` panicked), and phi3's
    // q + 2 kv wrapped into a wrong split.
    let llama = tempfile::tempdir().unwrap();
    st(
        llama.path(),
        "model.safetensors",
        &[("model.layers.0.self_attn.q_proj.weight", "F32", &[0, 4])],
    );
    std::fs::write(
        llama.path().join("config.json"),
        r#"{"num_attention_heads": 9223372036854775808, "head_dim": 2}"#,
    )
    .unwrap();
    let err = Model::open_dir(llama.path(), &with_arch("llama")).unwrap_err();
    assert!(
        err.to_string().contains("config.json") && err.to_string().contains("2^64"),
        "{err}"
    );
    let phi3 = tempfile::tempdir().unwrap();
    st(
        phi3.path(),
        "model.safetensors",
        &[("model.layers.0.self_attn.qkv_proj.weight", "F32", &[8, 1])],
    );
    std::fs::write(
        phi3.path().join("config.json"),
        r#"{"num_attention_heads": 4611686018427387904, "num_key_value_heads": 1, "head_dim": 4}"#,
    )
    .unwrap();
    let err = Model::open_dir(phi3.path(), &with_arch("phi3")).unwrap_err();
    assert!(
        err.to_string().contains("config.json") && err.to_string().contains("rows"),
        "{err}"
    );
}

#[test]
fn split_rows_that_wrap_are_refused() {
    // Item 10: rows adding up to the tensor's rows mod 2^64 gave [2^62, 1] parts of 0 bytes.
    let dir = tempfile::tempdir().unwrap();
    let path = st(dir.path(), "m.safetensors", &[("t", "F32", &[4, 1])]);
    let q = 1u64 << 62;
    let options = {
        let mut o = Options::default();
        o.splits = vec![SplitRule {
            name: "t".into(),
            parts: vec![
                ("a".into(), q),
                ("b".into(), q),
                ("c".into(), q),
                ("d".into(), q + 4),
            ],
        }];
        o
    };
    let err = Model::open_files(&[path], &options).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("\"t\""),
        "{err}"
    );
}

#[test]
fn metadata_with_nul_bytes_is_refused() {
    // Item 11: __metadata__ keys and values were cut at a NUL when read through C.
    let dir = tempfile::tempdir().unwrap();
    for (i, meta) in [r#"{"k\u0000x":"v"}"#, r#"{"k":"v\u0000w"}"#]
        .iter()
        .enumerate()
    {
        let header = format!(
            r#"{{"__metadata__":{meta},"a":{{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}}}"#
        );
        let path = common::raw_file(dir.path(), &format!("m{i}.safetensors"), &header, &[0]);
        let err = Model::open_files(&[path], &Options::default()).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}

/// A mixtral checkpoint of `experts` experts (one projection, [1] F32 each) and its config.
fn mixtral(experts: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = experts
        .iter()
        .map(|e| format!("model.layers.0.block_sparse_moe.experts.{e}.w1.weight"))
        .collect();
    let tensors: Vec<(&str, &str, &[u64])> = names
        .iter()
        .map(|n| (n.as_str(), "F32", [1u64].as_slice()))
        .collect();
    st(dir.path(), "model.safetensors", &tensors);
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"num_attention_heads": 1, "head_dim": 2}"#,
    )
    .unwrap();
    dir
}

#[test]
fn ambiguous_expert_indices_are_refused() {
    // Item 12: "0" and "00" both resolved as expert 0.
    for experts in [vec!["0", "00", "1"], vec!["0", "+1"], vec!["00"]] {
        let dir = mixtral(&experts);
        let err = Model::open_dir(dir.path(), &with_arch("mixtral")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("config.json") && text.contains("plain decimal"),
            "{experts:?}: {text}"
        );
    }
    let dir = mixtral(&["1", "0", "2"]);
    let model = Model::open_dir(dir.path(), &with_arch("mixtral")).unwrap();
    let info = model.info("blk.0.ffn_gate_exps.weight").unwrap();
    assert_eq!(info.shape, [3, 1]);
}

#[test]
fn many_experts_stack_in_linear_time() {
    // Item 6: stacking searched the whole tensor list per expert (100k experts: 19 s).
    let names: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let dir = mixtral(&refs);
    let started = Instant::now();
    let model = Model::open_dir(dir.path(), &with_arch("mixtral")).unwrap();
    let took = started.elapsed();
    assert_eq!(model.len(), 1);
    assert_eq!(
        model.info("blk.0.ffn_gate_exps.weight").unwrap().shape,
        [100_000, 1]
    );
    assert!(took < Duration::from_secs(5), "open took {took:?}");
}

#[test]
fn max_tensors_stops_at_the_first_header_over_the_limit() {
    // Item 7: the limit was checked after every shard was parsed. With one thread the files
    // are parsed in order: the third is garbage, and the limit must stop the open before it.
    let dir = tempfile::tempdir().unwrap();
    let many: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    let mut paths = Vec::new();
    for s in 0..2 {
        let names: Vec<String> = many.iter().map(|n| format!("s{s}.{n}")).collect();
        let tensors: Vec<(&str, &str, &[u64])> = names
            .iter()
            .map(|n| (n.as_str(), "U8", [1u64].as_slice()))
            .collect();
        paths.push(st(dir.path(), &format!("m{s}.safetensors"), &tensors));
    }
    let garbage = dir.path().join("m2.safetensors");
    std::fs::write(&garbage, [0xffu8; 64]).unwrap();
    paths.push(garbage);
    let options = {
        let mut o = Options::default();
        o.max_tensors = 1500;
        o.threads = 1;
        o
    };
    let err = Model::open_files(&paths, &options).unwrap_err();
    assert!(
        matches!(err, Error::Limit(_)) && err.to_string().contains("m1.safetensors"),
        "{err}"
    );
}

#[test]
fn every_transform_keeps_the_shape_invariant() {
    // Shapes handed out after renames, repacks, splits, stacks and expert stacking, on
    // safetensors and PyTorch sources.
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_arch_fixtures.py");
    let ok = std::process::Command::new(common::python())
        .arg(script)
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "make_arch_fixtures.py failed");
    for arch in ["llama", "phi3", "mixtral"] {
        let model = Model::open_dir(dir.path().join(arch), &with_arch(arch)).unwrap();
        assert!(!model.is_empty());
        assert_invariant(&model, arch);
    }
    let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/views.pt");
    let options = {
        let mut o = Options::default();
        o.stacks = vec![StackRule {
            names: vec!["transposed".into(), "transposed2".into()],
            into: "pair".into(),
        }];
        o.splits = vec![SplitRule {
            name: "pair".into(),
            parts: vec![("first".into(), 1), ("second".into(), 1)],
        }];
        o.rename = stload::Replacer::from_flat(&["tied", "transposed2"]).unwrap();
        o
    };
    // "tied" is [4, 6] and "transposed" [6, 4]: the stack is refused, naming both.
    let err = Model::open_files(std::slice::from_ref(&views), &options).unwrap_err();
    assert!(err.to_string().contains("transposed2"), "{err}");
    let options = {
        let mut o = options;
        o.stacks = vec![StackRule {
            names: vec!["base".into(), "transposed2".into(), "rows".into()],
            into: "mix".into(),
        }];
        o
    };
    let err = Model::open_files(std::slice::from_ref(&views), &options).unwrap_err();
    assert!(err.to_string().contains("mix"), "{err}");
    let options = {
        let mut o = options;
        o.stacks = vec![StackRule {
            names: vec!["base".into(), "transposed2".into()],
            into: "pair".into(),
        }];
        o
    };
    let model = Model::open_files(&[views], &options).unwrap();
    assert_invariant(&model, "views.pt");
    assert_eq!(model.info("second").unwrap().shape, [1, 4, 6]);
}

#[test]
fn prefetch_after_truncation_is_an_error_not_sigbus() {
    // Item 9: the mapping exists (a get made it), the file is truncated, then prefetch.
    let dir = tempfile::tempdir().unwrap();
    let path = st(dir.path(), "m.safetensors", &[("a", "U8", &[4 << 20])]);
    let options = {
        let mut o = Options::default();
        o.check_interval = Duration::from_secs(3600);
        o
    };
    let model = Model::open_files(std::slice::from_ref(&path), &options).unwrap();
    drop(model.get("a").unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let err = model.prefetch(None, |_, _| true).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("changed since open"),
        "{err}"
    );
}

/// How `stload convert DIR --out DIR/out.gguf` ended: its exit code (`None`: killed by a
/// signal), whether it ended by itself within 20 s, and its stderr. Run under a 4 GiB address
/// space limit, so reading a hostile file whole fails fast instead of filling the machine. A
/// process still running after 20 s gets one SIGTERM, then SIGKILL 5 s later.
fn convert_to_gguf(dir: &Path) -> (Option<i32>, bool, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let out = dir.join("out.gguf");
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -v 4194304 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_stload"))
        .arg("convert")
        .arg(dir)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut by_itself = true;
    let mut signalled = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let waited = started.elapsed();
        if waited > Duration::from_secs(20) && signalled.is_none() {
            by_itself = false;
            // SAFETY: a signal to the child this test started and has not yet waited for.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            signalled = Some(waited);
        }
        if signalled.is_some_and(|at| waited > at + Duration::from_secs(5)) {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("{}: still running 5 s after one SIGTERM", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!out.exists(), "{}: an output was written", dir.display());
    (status.code(), by_itself, stderr)
}

#[test]
fn gguf_convert_refuses_a_hostile_config_json_at_once() {
    // Finding 1: `--arch auto` (the default for GGUF output) detects the architecture from
    // config.json; a FIFO blocked it forever, /dev/zero and a large sparse file were read
    // whole. Each must be refused promptly, by an ordinary error exit naming the file.
    type Plant = fn(&Path);
    let plants: [(&str, Plant); 3] = [
        ("fifo", |p| common::mkfifo(p)),
        ("/dev/zero", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap();
        }),
        ("sparse 64 GiB", |p| {
            let file = std::fs::File::create(p).unwrap();
            file.set_len(64 << 30).unwrap(); // sparse: no disk used
        }),
    ];
    for (what, plant) in plants {
        let dir = tempfile::tempdir().unwrap();
        st(
            dir.path(),
            "model.safetensors",
            &[("lm_head.weight", "F32", &[2, 2])],
        );
        plant(&dir.path().join("config.json"));
        let started = Instant::now();
        let (code, by_itself, stderr) = convert_to_gguf(dir.path());
        assert!(by_itself, "{what}: did not end by itself ({code:?})");
        assert!(
            matches!(code, Some(c) if c != 0 && c != 130),
            "{what}: exit {code:?} (none: killed by a signal): {stderr}"
        );
        assert!(stderr.contains("config.json"), "{what}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
    }
}
