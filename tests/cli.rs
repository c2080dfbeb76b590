//! The `stload` command: inspect, verify and convert, checked with Python's safetensors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fixtures, python};

fn stload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(args)
        .output()
        .expect("run stload")
}

/// `stload ARGS` run in `dir` with the user's cache directory inside it.
fn stload_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .expect("run stload")
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A copy of the sharded fixture (two shards and index.json) in `dir`, with the files a Hugging
/// Face directory has besides the weights.
fn hugging_face_dir(dir: &Path) -> PathBuf {
    let src = dir.join("model");
    std::fs::create_dir(&src).unwrap();
    for entry in std::fs::read_dir(fixtures().join("sharded")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), src.join(entry.file_name())).unwrap();
    }
    for (name, text) in [
        (
            "config.json",
            r#"{"architectures":["LlamaForCausalLM"],"hidden_size":16}"#,
        ),
        ("generation_config.json", r#"{"do_sample":true}"#),
        (
            "tokenizer.json",
            r#"{"model":{"type":"BPE","vocab":{"a":0}}}"#,
        ),
        ("tokenizer_config.json", r#"{"bos_token":"<s>"}"#),
        ("special_tokens_map.json", r#"{"eos_token":"</s>"}"#),
        ("README.md", "# a model\n"),
        ("pytorch_model.bin", "not copied: weights in another format"),
        ("pytorch_model.bin.index.json", "{}"),
        (".gitattributes", "*.safetensors filter=lfs"),
    ] {
        std::fs::write(src.join(name), text).unwrap();
    }
    std::fs::write(src.join("tokenizer.model"), [0u8, 1, 2, 255]).unwrap();
    src
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check_with_python(group: &str, dtype: &str, files: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_converted.py");
    let out = Command::new(python())
        .arg(script)
        .arg(fixtures().join("expected.json"))
        .args([group, dtype])
        .args(files)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn inspect_without_a_path_shows_the_builtin_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = stload_in(dir.path(), &["inspect"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("embed.weight") && shown.contains("BF16") && shown.contains("[4, 8]"),
        "{shown}"
    );
    let json = stload_in(dir.path(), &["inspect", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["tensors"].as_array().unwrap().len(), 6);
    assert_eq!(v["metadata"]["format"], "pt");
    let first = &v["tensors"][0];
    for key in ["name", "dtype", "shape", "nbytes", "file", "data_offset"] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn verify_accepts_good_files_and_refuses_bad_ones() {
    let good = fixtures().join("all_dtypes.safetensors");
    let out = stload(&["verify", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let bad = common::raw_file(
        dir.path(),
        "bad.safetensors",
        r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let out = stload(&["verify", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out);
    assert!(
        shown.contains("bad.safetensors") && shown.contains("\"w\"") && shown.contains("needs 12"),
        "{shown}"
    );
}

#[test]
fn convert_a_file_to_each_float_dtype() {
    let src = fixtures().join("all_dtypes.safetensors");
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["F32", "F16", "BF16"] {
        let out_path = dir.path().join(format!("{dtype}.safetensors"));
        let out = stload(&[
            "convert",
            src.to_str().unwrap(),
            "--dtype",
            dtype,
            "--out",
            out_path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        check_with_python("all_dtypes:all_dtypes.safetensors", dtype, &[&out_path]);
    }
}

#[test]
fn convert_a_sharded_directory_keeps_shards_and_index() {
    let src = fixtures().join("sharded");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out");
    let out = stload(&[
        "convert",
        src.to_str().unwrap(),
        "--dtype",
        "f32",
        "--out",
        dst.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let shards = [
        dst.join("model-00001-of-00002.safetensors"),
        dst.join("model-00002-of-00002.safetensors"),
    ];
    check_with_python("sharded", "F32", &[&shards[0], &shards[1]]);
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dst.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        index["weight_map"]["lm_head.weight"],
        "model-00002-of-00002.safetensors"
    );
    assert_eq!(index["metadata"]["total_size"], 5 * 16 * 4 + 8 * 4);
    // The output reopens as a directory through its index.
    assert!(stload(&["verify", dst.to_str().unwrap()]).status.success());
}

#[test]
fn convert_refuses_unknown_dtypes() {
    let src = fixtures().join("all_dtypes.safetensors");
    let out = stload(&[
        "convert",
        src.to_str().unwrap(),
        "--dtype",
        "f12",
        "--out",
        "/dev/null/x",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown dtype \"f12\""));
}

#[test]
fn tokenizer_pre_is_a_gguf_flag_and_takes_llama_cpp_names_only() {
    let src = fixtures().join("all_dtypes.safetensors");
    let work = tempfile::tempdir().unwrap();
    let run = |out: &str, name: &str| {
        let out = work.path().join(out);
        let o = stload(&[
            "convert",
            src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--tokenizer-pre",
            name,
        ]);
        assert!(!o.status.success() && !out.exists(), "{}", text(&o));
        text(&o)
    };
    assert!(run("x.safetensors", "qwen2").contains("--tokenizer-pre applies to GGUF output"));
    let err = run("x.gguf", "Qwen 2");
    assert!(
        err.contains("\"Qwen 2\" is not a llama.cpp type name"),
        "{err}"
    );
}

/// Every dtype the header format knows, by the name a user would type.
const ALL_DTYPE_NAMES: [&str; 22] = [
    "bool",
    "u8",
    "i8",
    "i16",
    "u16",
    "i32",
    "u32",
    "i64",
    "u64",
    "f16",
    "bf16",
    "f32",
    "f64",
    "c64",
    "f8_e4m3",
    "f8_e5m2",
    "f8_e8m0",
    "f8_e4m3fnuz",
    "f8_e5m2fnuz",
    "f4",
    "f6_e2m3",
    "f6_e3m2",
];

/// Item 13: a dtype whole-model conversion does not produce is refused (exit 1, the accepted
/// dtypes listed, nothing written); the ones it does produce are accepted.
#[test]
fn convert_refuses_dtypes_whole_model_conversion_does_not_produce() {
    let src = fixtures().join("all_dtypes.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let accepted = ["f32", "f16", "bf16", "f64", "f8_e4m3", "f8_e5m2"];
    for name in ALL_DTYPE_NAMES {
        let dst = dir.path().join(format!("{name}.safetensors"));
        let out = stload(&[
            "convert",
            src.to_str().unwrap(),
            "--dtype",
            name,
            "--out",
            dst.to_str().unwrap(),
        ]);
        if accepted.contains(&name) {
            assert!(out.status.success(), "{name}: {}", text(&out));
            // Every float of the output has the asked dtype; the rest kept theirs.
            let v: serde_json::Value = serde_json::from_slice(
                &stload(&["inspect", "--json", dst.to_str().unwrap()]).stdout,
            )
            .unwrap();
            let upper = name.to_uppercase();
            assert!(
                v["tensors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["dtype"] == upper.as_str()),
                "{name}: {v}"
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let shown = text(&out);
        assert!(
            shown.contains("cannot be converted to")
                && shown.contains("F32, F16, BF16, F64, F8_E4M3, F8_E5M2"),
            "{name}: {shown}"
        );
        assert!(!dst.exists(), "{name}: an output was written");
    }
}

/// Item 14: the source cannot be overwritten through another spelling of its path, a symbolic
/// link, a hard link or its directory; an existing output needs --force.
#[test]
fn convert_refuses_to_overwrite_its_input_by_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(
        fixtures().join("all_dtypes.safetensors"),
        d.join("src.safetensors"),
    )
    .unwrap();
    let before = std::fs::read(d.join("src.safetensors")).unwrap();
    std::os::unix::fs::symlink("src.safetensors", d.join("link.safetensors")).unwrap();
    std::fs::hard_link(d.join("src.safetensors"), d.join("hard.safetensors")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    for out in [
        "./src.safetensors",
        "sub/../src.safetensors",
        "link.safetensors",
        "hard.safetensors",
    ] {
        for force in [false, true] {
            let mut args = vec!["convert", "src.safetensors", "--dtype", "f16", "--out", out];
            if force {
                args.push("--force");
            }
            let o = stload_in(d, &args);
            assert_eq!(o.status.code(), Some(1), "{out}: {}", text(&o));
            assert!(text(&o).contains("is the input"), "{out}: {}", text(&o));
        }
    }
    assert_eq!(std::fs::read(d.join("src.safetensors")).unwrap(), before);

    // A directory source: its own directory, by another name, or a directory holding one of
    // its shards (hard-linked) is refused.
    let model = hugging_face_dir(d);
    std::os::unix::fs::symlink("model", d.join("model-link")).unwrap();
    std::fs::create_dir(d.join("holder")).unwrap();
    std::fs::hard_link(
        model.join("model-00001-of-00002.safetensors"),
        d.join("holder/model-00001-of-00002.safetensors"),
    )
    .unwrap();
    for out in ["./model", "model-link", "holder"] {
        let o = stload_in(d, &["convert", "model", "--out", out, "--force"]);
        assert_eq!(o.status.code(), Some(1), "{out}: {}", text(&o));
        assert!(text(&o).contains("is the input"), "{out}: {}", text(&o));
    }

    // An existing output file, or a non-empty directory, needs --force.
    std::fs::write(d.join("old.safetensors"), b"old").unwrap();
    let o = stload_in(
        d,
        &["convert", "src.safetensors", "--out", "old.safetensors"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pass --force"), "{}", text(&o));
    assert_eq!(std::fs::read(d.join("old.safetensors")).unwrap(), b"old");
    let o = stload_in(
        d,
        &[
            "convert",
            "src.safetensors",
            "--out",
            "old.safetensors",
            "--force",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(stload_in(d, &["verify", "old.safetensors"])
        .status
        .success());
    std::fs::write(d.join("sub/x"), b"x").unwrap();
    let o = stload_in(d, &["convert", "model", "--out", "sub"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pass --force"), "{}", text(&o));
    assert!(
        stload_in(d, &["convert", "model", "--out", "sub", "--force"])
            .status
            .success()
    );
}

/// Writes a model of `tensors` F32 tensors of `rows` × 1024 as a sparse file (zeros that take
/// no disk space), big enough that converting it takes a while.
fn big_sparse_model(path: &Path, tensors: usize, rows: u64) {
    let bytes = rows * 1024 * 4;
    let mut header = serde_json::Map::new();
    for i in 0..tensors as u64 {
        header.insert(
            format!("layer.{i}.weight"),
            serde_json::json!({"dtype": "F32", "shape": [rows, 1024],
                               "data_offsets": [i * bytes, (i + 1) * bytes]}),
        );
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut head = (json.len() as u64).to_le_bytes().to_vec();
    head.extend_from_slice(&json);
    std::fs::write(path, &head).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(head.len() as u64 + tensors as u64 * bytes)
        .unwrap();
}

/// Item 15: SIGINT and SIGTERM during a real convert stop it with status 130 and leave no
/// temporary file and no output behind.
#[test]
fn interrupting_convert_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.safetensors");
    // 512 MiB of F32 becoming 1 GiB of F64: seconds of work, so the signal lands mid-way.
    big_sparse_model(&src, 64, 2048);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dst = out_dir.join("big-f64.safetensors");
        let mut child = Command::new(env!("CARGO_BIN_EXE_stload"))
            .args(["convert", src.to_str().unwrap(), "--dtype", "f64", "--out"])
            .arg(&dst)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the temporary file exists and has grown past its header.
        let started = std::time::Instant::now();
        let growing = loop {
            let tmp = std::fs::read_dir(&out_dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .find(|e| e.file_name().to_string_lossy().ends_with(".tmp"));
            if tmp.is_some_and(|e| e.metadata().is_ok_and(|m| m.len() > 1 << 20)) {
                break true;
            }
            if started.elapsed().as_secs() > 60 || child.try_wait().unwrap().is_some() {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert!(growing, "no temporary file seen while converting");
        // SAFETY: sends a signal to the child this test started and has not yet waited for.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "signal {signal}: {}",
            text(&out)
        );
        assert!(text(&out).contains("cancelled"), "{}", text(&out));
        assert_eq!(listing(&out_dir), Vec::<String>::new(), "signal {signal}");
    }
}

/// One SIGTERM ends the command even where no write loop checks for it: here the open of a
/// remote file whose server accepts the connection and never answers (object_store would wait
/// for its timeout, then retry for minutes).
#[test]
fn one_signal_ends_a_convert_waiting_on_a_silent_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args([
            "convert",
            &format!("http://127.0.0.1:{port}/m.safetensors"),
            "--out",
        ])
        .arg(dir.path().join("out.safetensors"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The connection arrives: the command is waiting on the server, past its signal setup.
    let (_held, _) = listener.accept().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: sends a signal to the child this test started and has not yet waited for.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        // A hang guard, not a speed bound: the command waits 3 s for a cleanup, then exits.
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{status:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// Item 16: outputs (shards, index.json, copied files) get mode 0666 & ~umask.
#[test]
fn outputs_are_created_with_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let src = hugging_face_dir(dir.path());
    let dst = dir.path().join("out");
    for (umask, mode) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let _ = std::fs::remove_dir_all(&dst);
        let script = format!("umask {umask} && exec \"$0\" \"$@\"");
        let out = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_stload"), "convert"])
            .arg(&src)
            .args(["--dtype", "f32", "--out"])
            .arg(&dst)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        for name in listing(&dst) {
            let m = std::fs::metadata(dst.join(&name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(m, mode, "umask {umask}: {name} has mode {m:o}");
        }
    }
}

/// Item 17: a converted Hugging Face directory keeps config.json, the tokenizer files and the
/// other non-weight files (same bytes), rewrites the index and copies no other weights.
#[test]
fn convert_a_directory_copies_config_and_tokenizer_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = hugging_face_dir(dir.path());
    let dst = dir.path().join("out");
    let out = stload(&[
        "convert",
        src.to_str().unwrap(),
        "--dtype",
        "bf16",
        "--out",
        dst.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        listing(&dst),
        [
            "README.md",
            "config.json",
            "generation_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer.model",
            "tokenizer_config.json",
        ]
    );
    for name in [
        "README.md",
        "config.json",
        "generation_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
    ] {
        assert_eq!(
            std::fs::read(dst.join(name)).unwrap(),
            std::fs::read(src.join(name)).unwrap(),
            "{name}"
        );
    }
    check_with_python(
        "sharded",
        "BF16",
        &[
            &dst.join("model-00001-of-00002.safetensors"),
            &dst.join("model-00002-of-00002.safetensors"),
        ],
    );
}

/// Item 18: control characters in tensor names and metadata are escaped in the table, so a
/// hostile file cannot send terminal escapes or fake lines; JSON keeps them exact.
#[test]
fn inspect_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::raw_file(
        dir.path(),
        "evil.safetensors",
        r#"{"__metadata__":{"k\u001b]0;title\u0007":"v\nfake line\u202e"},"a\u001b[31mred\nb":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
        &[7],
    );
    let out = stload(&["inspect", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\u{202e}'),
        "{shown:?}"
    );
    assert!(shown.contains(r"a\u{1b}[31mred\nb"), "{shown}");
    assert!(shown.contains(r"v\nfake line\u{202e}"), "{shown}");
    assert!(
        !shown
            .lines()
            .any(|l| l.starts_with("b ") || l.starts_with("fake")),
        "{shown}"
    );
    let json = stload(&["inspect", "--json", path.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["tensors"][0]["name"], "a\u{1b}[31mred\nb");
}

/// Item 19: a file of another format is named as not a safetensors file, with its first
/// bytes and what they look like, instead of an absurd header length.
#[test]
fn a_file_of_another_format_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    // (A GGUF file is verified as GGUF: see below.)
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "zip.safetensors",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest",
            "zip archive",
        ),
        (
            "lfs.safetensors",
            b"version https://git-lfs.github.com/spec/v1\n",
            "Git LFS",
        ),
        ("notes.safetensors", b"hello, this is a text file\n", "text"),
    ];
    for (name, bytes, what) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = stload(&["verify", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let shown = text(&out);
        assert!(
            shown.contains(&format!(
                "{name}: not a safetensors file: it starts with bytes"
            )) && shown.contains(what)
                && !shown.contains("header length"),
            "{shown}"
        );
    }
    // A GGUF file (by its magic, whatever its name) is verified as GGUF: this one is cut
    // short, and the error says where.
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00").unwrap();
    let out = stload(&["verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out);
    assert!(
        shown.contains("model.safetensors: tensor count at byte 8 needs 8 bytes"),
        "{shown}"
    );
}

/// Item 20: `stload sample DIR` writes the sample; `inspect` with no path says where it wrote
/// it, and the file is still there afterwards.
#[test]
fn the_sample_is_written_where_the_user_can_find_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = stload_in(dir.path(), &["sample", "new/dir"]);
    assert!(out.status.success(), "{}", text(&out));
    let written = dir.path().join("new/dir/sample.safetensors");
    assert!(
        text(&out).contains("new/dir/sample.safetensors"),
        "{}",
        text(&out)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&stload(&["inspect", "--json", written.to_str().unwrap()]).stdout)
            .unwrap();
    assert_eq!(v["tensors"].as_array().unwrap().len(), 6);

    let out = stload_in(dir.path(), &["inspect"]);
    assert!(out.status.success(), "{}", text(&out));
    let kept = dir.path().join("cache/stload/sample.safetensors");
    assert!(
        text(&out).contains(kept.to_str().unwrap()),
        "{}",
        text(&out)
    );
    assert!(kept.is_file());
    let json = stload_in(dir.path(), &["inspect", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(Path::new(v["tensors"][0]["file"].as_str().unwrap()).is_file());
    assert!(String::from_utf8_lossy(&json.stderr).contains("built-in sample"));
}

/// The README's command-line block, between "## Command line" and the next heading.
fn readme_synopsis() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("## Command line")
        .expect("a command-line section");
    let block = &readme[start..];
    let open = block.find("```\n").unwrap() + 4;
    let close = open + block[open..].find("```").unwrap();
    block[open..close].to_string()
}

/// Item 21: the README synopsis names every subcommand, and for `convert` every option, with
/// brackets exactly around the optional ones (as `--help` says); `inspect --help` names the
/// PyTorch files it reads.
#[test]
fn readme_synopsis_agrees_with_the_help() {
    let synopsis = readme_synopsis();
    let help = String::from_utf8(stload(&["--help"]).stdout).unwrap();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .take_while(|w| !w.ends_with(':'))
        .filter(|&w| w != "help")
        .collect();
    assert!(commands.len() >= 4, "{help}");
    for command in &commands {
        assert!(
            synopsis.contains(&format!("stload {command}")),
            "README synopsis lacks `stload {command}`:\n{synopsis}"
        );
    }
    let help = String::from_utf8(stload(&["convert", "--help"]).stdout).unwrap();
    let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap();
    let line = synopsis
        .lines()
        .find(|l| l.starts_with("stload convert"))
        .unwrap();
    for flag in help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&f| f != "help")
    {
        let flag = format!("--{flag}");
        let required = usage.contains(&flag);
        assert!(
            if required {
                line.contains(&format!(" {flag}"))
            } else {
                line.contains(&format!("[{flag}"))
            },
            "README `{line}`: {flag} should be {}",
            if required { "required" } else { "in brackets" }
        );
    }
    let help = String::from_utf8(stload(&["inspect", "--help"]).stdout).unwrap();
    assert!(help.contains(".bin") && help.contains(".pth"), "{help}");
}

/// Finding 24: the top-level help names GGUF; a convert says what it wrote: without `.gguf`
/// and `--format`, a safetensors file (not a GGUF), with its tensor count and exact size, and
/// how to get GGUF instead.
#[test]
fn convert_says_what_it_wrote_and_help_names_gguf() {
    let help = String::from_utf8(stload(&["--help"]).stdout).unwrap();
    assert!(help.contains("GGUF"), "{help}");
    let help = String::from_utf8(stload(&["convert", "--help"]).stdout).unwrap();
    assert!(help.contains(".gguf") && help.contains("GGUF"), "{help}");

    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("all_dtypes.safetensors");
    let tensors = stload::Model::open_files(&[&src], &stload::Options::default())
        .unwrap()
        .len();
    for (out, format, note) in [
        ("model.bin", None, true),
        ("model.out", Some("safetensors"), false),
    ] {
        let path = dir.path().join(out);
        let mut args = vec![
            "convert",
            src.to_str().unwrap(),
            "--out",
            path.to_str().unwrap(),
        ];
        if let Some(f) = format {
            args.extend(["--format", f]);
        }
        let o = stload(&args);
        assert!(o.status.success(), "{}", text(&o));
        let bytes = std::fs::read(&path).unwrap();
        assert_ne!(&bytes[..4], b"GGUF");
        stload::Model::open_files(&[&path], &stload::Options::default()).unwrap();
        let printed = String::from_utf8(o.stdout).unwrap();
        let summary = printed.lines().last().unwrap();
        assert!(
            summary.starts_with(&format!(
                "safetensors: {tensors} tensors, dtypes as stored, "
            )) && summary.contains(&format!("({} bytes) in 1 file", bytes.len())),
            "{printed}"
        );
        assert_eq!(summary.contains("--format gguf"), note, "{printed}");
    }
}
