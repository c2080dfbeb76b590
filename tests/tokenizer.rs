//! The `tokenizer.*` GGUF keys stload writes for tokenizers trained at test time (BPE with a
//! ByteLevel and a Llama 3 Split pre-tokenizer, WordPiece, SentencePiece BPE and unigram) and the
//! real MiniLM checkpoint, against the `tokenizers` and `sentencepiece` libraries and the `gguf`
//! package's vocab classes (tests/python/tokenizer_fixtures.py); then hostile directories.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value as Json;
use stload::__private::tokenizer;
use stload::kv::{Array, Metadata, Value};

/// The fixtures and oracle.json, written once per test binary.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tokenizer_fixtures.py");
        let status = Command::new(common::python())
            .arg(&script)
            .arg(dir.path())
            .status()
            .expect("run python");
        assert!(status.success(), "tokenizer_fixtures.py failed");
        dir
    })
    .path()
}

fn oracle() -> &'static serde_json::Map<String, Json> {
    static ORACLE: OnceLock<serde_json::Map<String, Json>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join("oracle.json")).expect("oracle.json");
        match serde_json::from_str(&text).expect("valid JSON") {
            Json::Object(m) => m,
            _ => panic!("oracle.json is not an object"),
        }
    })
}

fn strings(md: &Metadata, key: &str) -> Vec<String> {
    match md.get(key) {
        Some(Value::Array(Array::String(v))) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn oracle_strings(j: &Json) -> Vec<String> {
    j.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Every key of one case equals the oracle's value.
fn check(case: &str) {
    let o = &oracle()[case];
    let dir = PathBuf::from(o["dir"].as_str().expect("dir"));
    let vocab_size = o["vocab_size"].as_u64();
    let mut md = Metadata::new();
    tokenizer::write_kv(&dir, vocab_size, &mut md).unwrap_or_else(|e| panic!("{case}: {e}"));

    assert_eq!(
        md.get("tokenizer.ggml.model"),
        Some(&Value::String(o["model"].as_str().unwrap().into())),
        "{case}"
    );
    assert_eq!(
        md.get("tokenizer.ggml.pre"),
        Some(&Value::String(o["pre"].as_str().unwrap().into())),
        "{case}"
    );
    let tokens = strings(&md, "tokenizer.ggml.tokens");
    let want = oracle_strings(&o["tokens"]);
    assert_eq!(tokens.len(), want.len(), "{case}: token count");
    for (i, (a, b)) in tokens.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "{case}: token {i}");
    }
    let types: Vec<i64> = o["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    match md.get("tokenizer.ggml.token_type") {
        Some(Value::Array(Array::I32(v))) => {
            let got: Vec<i64> = v.iter().map(|&t| t as i64).collect();
            for (i, (a, b)) in got.iter().zip(&types).enumerate() {
                assert_eq!(a, b, "{case}: type of token {i} {:?}", want[i]);
            }
            assert_eq!(got.len(), types.len(), "{case}: type count");
        }
        other => panic!("{case}: token_type {other:?}"),
    }
    match (&o["scores"], md.get("tokenizer.ggml.scores")) {
        (Json::Null, None) => {}
        (Json::Array(want), Some(Value::Array(Array::F32(got)))) => {
            assert_eq!(got.len(), want.len(), "{case}: score count");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                // The oracle holds the f32 scores as JSON doubles: exact after narrowing.
                assert_eq!(*g, w.as_f64().unwrap() as f32, "{case}: score {i}");
            }
        }
        (w, g) => panic!("{case}: scores {w:?} vs {g:?}"),
    }
    let merges = oracle_strings(&o["merges"]);
    if merges.is_empty() {
        assert_eq!(md.get("tokenizer.ggml.merges"), None, "{case}");
    } else {
        assert_eq!(strings(&md, "tokenizer.ggml.merges"), merges, "{case}");
    }

    let key = |kind: &str| match kind {
        "unk" => "tokenizer.ggml.unknown_token_id".to_string(),
        "sep" => "tokenizer.ggml.seperator_token_id".to_string(),
        "pad" => "tokenizer.ggml.padding_token_id".to_string(),
        k => format!("tokenizer.ggml.{k}_token_id"),
    };
    let ids = o["ids"].as_object().unwrap();
    for kind in ["bos", "eos", "unk", "sep", "pad", "mask", "eot", "eom"] {
        let want = ids
            .get(kind)
            .map(|v| Value::U32(v.as_u64().unwrap() as u32));
        assert_eq!(md.get(&key(kind)).cloned(), want, "{case}: {kind} id");
    }
    let add = o["add"].as_object().unwrap();
    for kind in ["bos", "eos", "sep"] {
        let want = add.get(kind).map(|v| Value::Bool(v.as_bool().unwrap()));
        let k = format!("tokenizer.ggml.add_{kind}_token");
        assert_eq!(md.get(&k).cloned(), want, "{case}: {k}");
    }
    let eos_ids: Vec<i32> = o["eos_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    if eos_ids.is_empty() {
        assert_eq!(md.get("tokenizer.ggml.eos_token_ids"), None, "{case}");
    } else {
        assert_eq!(
            md.get("tokenizer.ggml.eos_token_ids"),
            Some(&Value::Array(Array::I32(eos_ids))),
            "{case}"
        );
    }
    assert_eq!(
        md.get("tokenizer.chat_template").cloned(),
        o["chat_template"]
            .as_str()
            .map(|s| Value::String(s.to_string())),
        "{case}: chat template"
    );
    if let Some(n) = o.get("normalizer") {
        assert_eq!(
            md.get("tokenizer.ggml.normalizer.lowercase"),
            Some(&Value::Bool(n[0].as_bool().unwrap())),
            "{case}"
        );
        assert_eq!(
            md.get("tokenizer.ggml.normalizer.strip_accents"),
            Some(&Value::Bool(n[1].as_bool().unwrap())),
            "{case}"
        );
    }
    if let Some(n) = o.get("token_type_count") {
        assert_eq!(
            md.get("tokenizer.ggml.token_type_count").cloned(),
            n.as_u64().map(|n| Value::U32(n as u32)),
            "{case}: token_type_count"
        );
    }
    if let Some(p) = o.get("add_space_prefix") {
        assert_eq!(
            md.get("tokenizer.ggml.add_space_prefix"),
            Some(&Value::Bool(p.as_bool().unwrap())),
            "{case}"
        );
    }
}

#[test]
fn bpe_with_a_byte_level_pre_tokenizer_and_pair_merges() {
    check("bpe_bytelevel");
}

#[test]
fn bpe_with_llama3_split_regex_is_llama_bpe_and_string_merges_pass_through() {
    check("bpe_llama3");
}

#[test]
fn wordpiece_gets_the_phantom_space_vocabulary() {
    check("wordpiece");
}

#[test]
fn real_minilm_tokenizer() {
    check("minilm");
}

#[test]
fn sentencepiece_bpe_with_added_tokens() {
    check("spm_bpe");
}

#[test]
fn sentencepiece_unigram_padded_to_config_vocab_size() {
    check("spm_unigram_padded");
}

/// A copy of a fixture directory, to break.
fn copy_case(case: &str) -> tempfile::TempDir {
    let src = PathBuf::from(oracle()[case]["dir"].as_str().unwrap());
    let dst = tempfile::tempdir().expect("temporary directory");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.path().join(e.file_name())).unwrap();
        }
    }
    dst
}

fn error_of(dir: &Path, vocab_size: Option<u64>) -> String {
    let mut md = Metadata::new();
    match tokenizer::write_kv(dir, vocab_size, &mut md) {
        Ok(()) => panic!("{}: accepted", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_directory_without_a_tokenizer_names_the_files_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(dir.path(), None);
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(
        err.contains("tokenizer.model") && err.contains("tokenizer.json"),
        "{err}"
    );
}

#[test]
fn a_vocab_size_below_the_token_count_is_an_error() {
    let n = oracle()["spm_bpe"]["tokens"].as_array().unwrap().len() as u64;
    let dir = PathBuf::from(oracle()["spm_bpe"]["dir"].as_str().unwrap());
    let err = error_of(&dir, Some(n - 1));
    assert!(
        err.contains("vocab_size") && err.contains("smaller"),
        "{err}"
    );
}

#[test]
fn hostile_tokenizer_files_are_errors_naming_the_file() {
    // (case, file, new contents, expected words)
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("bpe_bytelevel", "tokenizer.json", b"{\"model\": ".to_vec(), "invalid JSON"),
        ("bpe_bytelevel", "tokenizer.json", b"[1, 2]".to_vec(), "invalid JSON"),
        (
            "bpe_bytelevel",
            "tokenizer.json",
            br#"{"model":{"type":"BPE","vocab":{"a":0,"b":7},"merges":["a b"]}}"#.to_vec(),
            "out of range",
        ),
        (
            "bpe_bytelevel",
            "tokenizer.json",
            br#"{"added_tokens":[{"id":1,"content":"x"},{"id":1,"content":"y"}],"model":{"type":"BPE","vocab":{"a":0},"merges":["a a"]}}"#.to_vec(),
            "claimed",
        ),
        (
            "bpe_bytelevel",
            "tokenizer.json",
            b"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xff\":0},\"merges\":[]}}".to_vec(),
            "invalid JSON",
        ),
        (
            "bpe_bytelevel",
            "tokenizer.json",
            // The recursive normalizer model nested past serde_json's depth limit: an
            // error, not a stack overflow.
            [b"{\"normalizer\":".to_vec(), b"{\"normalizers\":[".repeat(50_000)].concat(),
            "recursion limit",
        ),
        ("wordpiece", "tokenizer_config.json", b"{\"cls_token\": 1}".to_vec(), "cls_token"),
        ("spm_bpe", "tokenizer.model", vec![0xff; 64], "not a sentencepiece model"),
        // Field 1 (pieces), a message whose field 1 (piece) holds the bytes ff fe: not UTF-8.
        (
            "spm_bpe",
            "tokenizer.model",
            vec![0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe],
            "not a sentencepiece model",
        ),
        ("spm_bpe", "added_tokens.json", b"{\"<x>\": 100000}".to_vec(), "expected"),
        ("spm_bpe", "tokenizer_config.json", b"{\"add_bos_token\": 3}".to_vec(), "add_bos_token"),
        ("spm_bpe", "tokenizer_config.json", b"{\"chat_template\": 3}".to_vec(), "chat_template"),
        ("spm_bpe", "config.json", b"{\"bos_token_id\": 99999}".to_vec(), "bos_token_id"),
        (
            "spm_bpe",
            "generation_config.json",
            b"{\"eos_token_id\": [2, -1]}".to_vec(),
            "eos_token_id",
        ),
    ];
    for (case, file, bytes, want) in cases {
        let dir = copy_case(case);
        std::fs::write(dir.path().join(file), &bytes).unwrap();
        let err = error_of(dir.path(), None);
        assert!(err.contains(file), "{file}: {err}");
        assert!(
            err.to_lowercase().contains(&want.to_lowercase()),
            "{file}: want {want:?} in {err}"
        );
    }
}

#[test]
fn a_directory_in_place_of_a_tokenizer_file_is_an_error() {
    let dir = copy_case("bpe_bytelevel");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    std::fs::create_dir(dir.path().join("tokenizer.json")).unwrap();
    let err = error_of(dir.path(), None);
    assert!(
        err.contains("tokenizer.json") && err.contains("directory"),
        "{err}"
    );
}

#[test]
fn a_tokenizer_file_past_the_size_bound_is_refused_before_reading() {
    let dir = copy_case("bpe_bytelevel");
    let f = std::fs::File::create(dir.path().join("tokenizer.json")).unwrap();
    f.set_len(tokenizer::MAX_FILE_BYTES + 1).unwrap(); // sparse: no disk used
    let err = error_of(dir.path(), None);
    assert!(
        err.contains("tokenizer.json") && err.contains("larger"),
        "{err}"
    );
}

/// stload's tokenizer keys as `[key, type, value]` triples for tokenizer_llama_cpp.py.
fn keys_json(md: &Metadata) -> Json {
    let triples: Vec<Json> = md
        .iter()
        .map(|(k, v)| {
            let (t, v) = match v {
                Value::String(s) => ("string", Json::from(s.as_str())),
                Value::U32(n) => ("u32", Json::from(*n)),
                Value::Bool(b) => ("bool", Json::from(*b)),
                Value::Array(Array::String(v)) => ("strings", Json::from(v.clone())),
                Value::Array(Array::I32(v)) => ("i32s", Json::from(v.clone())),
                Value::Array(Array::F32(v)) => ("f32s", Json::from(v.clone())),
                other => panic!("{k}: unexpected value {other:?}"),
            };
            Json::from(vec![Json::from(k), Json::from(t), v])
        })
        .collect();
    Json::from(triples)
}

/// llama.cpp, reading the keys stload wrote for `case`, tokenizes like the reference library.
fn llama_cpp_tokenizes_like_the_reference(case: &str) {
    let o = &oracle()[case];
    let dir = PathBuf::from(o["dir"].as_str().unwrap());
    let mut md = Metadata::new();
    tokenizer::write_kv(&dir, o["vocab_size"].as_u64(), &mut md).unwrap();
    let work = tempfile::tempdir().unwrap();
    let keys = work.path().join("keys.json");
    std::fs::write(&keys, keys_json(&md).to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tokenizer_llama_cpp.py");
    let out = Command::new(common::python())
        .arg(&script)
        .arg(&keys)
        .arg(&dir)
        .arg(work.path().join("vocab.gguf"))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "tokenizer_llama_cpp.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Json = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    let results = results.as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(!r["reference"].as_array().unwrap().is_empty());
        assert_eq!(r["llama_cpp"], r["reference"], "{case}: {}", r["text"]);
    }
}

#[test]
fn llama_cpp_tokenizes_minilm_like_tokenizers() {
    llama_cpp_tokenizes_like_the_reference("minilm");
}

#[test]
fn llama_cpp_tokenizes_the_llama3_style_bpe_like_tokenizers() {
    llama_cpp_tokenizes_like_the_reference("bpe_llama3");
}

#[test]
fn llama_cpp_tokenizes_the_sentencepiece_bpe_like_sentencepiece() {
    llama_cpp_tokenizes_like_the_reference("spm_bpe");
}

#[test]
fn roberta_processing_config_ids_padding_and_a_jinja_chat_template() {
    check("bpe_roberta");
}

#[test]
fn tokenizer_model_wins_over_tokenizer_json_as_in_both_converters() {
    let dir = copy_case("spm_bpe");
    let json =
        PathBuf::from(oracle()["bpe_bytelevel"]["dir"].as_str().unwrap()).join("tokenizer.json");
    std::fs::copy(json, dir.path().join("tokenizer.json")).unwrap();
    let mut md = Metadata::new();
    tokenizer::write_kv(dir.path(), None, &mut md).unwrap();
    assert_eq!(
        md.get("tokenizer.ggml.model"),
        Some(&Value::String("llama".into()))
    );
    assert_eq!(
        strings(&md, "tokenizer.ggml.tokens"),
        oracle_strings(&oracle()["spm_bpe"]["tokens"])
    );
}

#[test]
fn ids_missing_from_a_bpe_vocabulary_become_unused_pad_tokens() {
    // Take the trained vocabulary and drop one token: its id becomes a hole that llama.cpp's
    // converter fills with [PAD{id}] of type unused; every other id keeps its token.
    let dir = copy_case("bpe_bytelevel");
    let path = dir.path().join("tokenizer.json");
    let mut j: Json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let want = oracle_strings(&oracle()["bpe_bytelevel"]["tokens"]);
    let hole = 10;
    let removed = j["model"]["vocab"]
        .as_object_mut()
        .unwrap()
        .remove(&want[hole])
        .expect("token in vocab");
    assert_eq!(removed.as_u64(), Some(hole as u64));
    std::fs::write(&path, j.to_string()).unwrap();
    let mut md = Metadata::new();
    tokenizer::write_kv(dir.path(), Some(want.len() as u64), &mut md).unwrap();
    let tokens = strings(&md, "tokenizer.ggml.tokens");
    assert_eq!(tokens.len(), want.len());
    for (i, (a, b)) in tokens.iter().zip(&want).enumerate() {
        if i == hole {
            assert_eq!(*a, format!("[PAD{hole}]"));
        } else {
            assert_eq!(a, b, "token {i}");
        }
    }
    match md.get("tokenizer.ggml.token_type") {
        Some(Value::Array(Array::I32(t))) => assert_eq!(t[hole], 5),
        other => panic!("{other:?}"),
    }
}

/// A directory holding `tokenizer.json` with `json` as its text.
fn tokenizer_json_dir(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), json).unwrap();
    dir
}

#[test]
fn a_token_repeated_at_two_ids_is_refused_naming_it() {
    // llama.cpp aborts loading a vocabulary in which one string has two ids (and llama.cpp's
    // converter writes such a vocabulary unchanged): each is refused, naming the token.
    let cases = [
        // An added token repeating a token of model.vocab at another id.
        (
            r#"{"added_tokens":[{"id":2,"content":"a","special":true}],
                "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#,
            "\"a\"",
        ),
        // Two added tokens with one content.
        (
            r#"{"added_tokens":[{"id":2,"content":"<x>"},{"id":3,"content":"<x>"}],
                "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#,
            "\"<x>\"",
        ),
        // A real token named like the padding at id 2 (vocab_size 3).
        (
            r#"{"model":{"type":"BPE","vocab":{"[PAD2]":0,"b":1},"merges":["[PAD2] b"]}}"#,
            "\"[PAD2]\"",
        ),
        // One key twice in model.vocab.
        (
            r#"{"model":{"type":"BPE","vocab":{"a":0,"a":1},"merges":["a a"]}}"#,
            "\"a\"",
        ),
    ];
    for (json, token) in cases {
        let dir = tokenizer_json_dir(json);
        let err = error_of(dir.path(), Some(3).filter(|_| json.contains("[PAD2]")));
        assert!(
            err.contains(token) && err.contains("twice"),
            "{json}: {err}"
        );
    }
    // An unchanged added token at its own id is no repeat.
    let dir = tokenizer_json_dir(
        r#"{"added_tokens":[{"id":1,"content":"b","special":true}],"pre_tokenizer":{"type":"ByteLevel"},
            "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#,
    );
    tokenizer::write_kv(dir.path(), None, &mut Metadata::new()).unwrap();
}

#[test]
fn padding_and_hole_fillers_never_share_a_name() {
    // A hole at id 1 and two tokens of padding to vocab_size 5: ollama's names from 0 gave the
    // padding "[PAD0]", "[PAD1]", the second a repeat of the hole's "[PAD1]". Fillers are now
    // named by id, as llama.cpp's converter names them.
    let dir = tokenizer_json_dir(
        r#"{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0,"b":2},"merges":["a b"]}}"#,
    );
    let mut md = Metadata::new();
    tokenizer::write_kv(dir.path(), Some(5), &mut md).unwrap();
    let tokens = strings(&md, "tokenizer.ggml.tokens");
    assert_eq!(tokens, ["a", "[PAD1]", "b", "[PAD3]", "[PAD4]"]);
    let unique: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(unique.len(), tokens.len());
}

/// The peak resident memory of `stload convert` of `dir` (bytes), and whether it succeeded.
/// Python runs it and reports its children's peak: a child forked from this test process would
/// count the test's own memory (a child's peak includes what it shared at the fork).
fn convert_peak_rss(dir: &Path) -> (u64, bool) {
    let script = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
        assert r.returncode >= 0, 'stload ended by signal %d' % -r.returncode\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n";
    let out = Command::new(common::python())
        .args(["-c", script, env!("CARGO_BIN_EXE_stload"), "convert"])
        .arg(dir)
        .arg("--out")
        .arg(dir.join("out.gguf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words = text.split_whitespace();
    let kib: u64 = words.next().unwrap().parse().unwrap();
    // Linux reports kibibytes, macOS bytes.
    let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
    (kib * scale, words.next() == Some("0"))
}

/// A protobuf length-delimited field.
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(tag << 3) | 2];
    let mut n = bytes.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

#[test]
fn tokenizer_files_cost_a_small_multiple_of_their_size_in_memory() {
    // Each case is a crafted file of tens of MB beside a llama checkpoint of 10 tokens; the
    // conversion fails (the file's tokens are not the embedding's 10 rows, or the file is
    // refused), but first reads the file. Peak memory above a plain conversion's must stay a
    // small multiple of the file's size: it was 17 to 30 times.
    let model = common::arch::fixtures().join("llama");
    let copy = || {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ] {
            std::fs::copy(model.join(f), dir.path().join(f)).unwrap();
        }
        dir
    };
    let base = copy();
    let (baseline, ok) = convert_peak_rss(base.path());
    assert!(ok, "the plain conversion fails");

    let name = |i: usize| format!("{i:x}");
    let n = 3_000_000;
    type Make = Box<dyn Fn() -> Vec<u8>>;
    let cases: Vec<(&str, &str, Make)> = vec![
        // SentencePiece: empty pieces (counted, refused before any is decoded), then many
        // short distinct ones.
        (
            "empty pieces",
            "tokenizer.model",
            Box::new(|| field(1, &[]).repeat(1 << 24 | 1)),
        ),
        (
            "short pieces",
            "tokenizer.model",
            Box::new(move || {
                (0..n)
                    .flat_map(|i| field(1, &field(1, name(i).as_bytes())))
                    .collect()
            }),
        ),
        // tokenizer.json: many merges (and 11 tokens, one more than the checkpoint's), then
        // many distinct tokens.
        (
            "merges",
            "tokenizer.json",
            Box::new(move || {
                let eleven: Vec<String> = (0..11).map(|i| format!("\"{}\":{i}", name(i))).collect();
                format!(
                    r#"{{"model":{{"type":"BPE","vocab":{{{}}},"merges":[{}"a b"]}}}}"#,
                    eleven.join(","),
                    "\"a b\",".repeat(4 * n)
                )
                .into_bytes()
            }),
        ),
        (
            "vocabulary",
            "tokenizer.json",
            Box::new(move || {
                let vocab: Vec<String> = (0..n).map(|i| format!("\"{}\":{i}", name(i))).collect();
                format!(
                    r#"{{"model":{{"type":"BPE","vocab":{{{}}},"merges":["0 1"]}}}}"#,
                    vocab.join(",")
                )
                .into_bytes()
            }),
        ),
        // generation_config.json: a long eos list.
        (
            "eos list",
            "generation_config.json",
            Box::new(move || {
                format!(r#"{{"eos_token_id":[{}0]}}"#, "0,".repeat(8 * n)).into_bytes()
            }),
        ),
    ];

    for (what, file, make) in cases {
        let dir = copy();
        let size = {
            let bytes = make();
            std::fs::write(dir.path().join(file), &bytes).unwrap();
            bytes.len() as u64
        };
        let (peak, ok) = convert_peak_rss(dir.path());
        assert!(!ok, "{what}: converted");
        let extra = peak.saturating_sub(baseline);
        eprintln!(
            "{what}: {size} bytes, {extra} bytes above a plain conversion ({:.1}x)",
            extra as f64 / size as f64
        );
        assert!(
            extra <= 12 * size,
            "{what}: {size} bytes of {file} took {extra} bytes of memory"
        );
    }
}

#[test]
fn every_tokenizer_side_file_is_regular_bounded_and_never_blocks() {
    // Finding 3: each file the tokenizer reads, as a FIFO (opened blocking: a hang), a link to
    // /dev/zero (read up to the bound) or a sparse file past its bound, is refused at once,
    // naming the file: a FIFO and a device as not regular files, a large file by its size.
    use stload::Error;
    let cases = [
        ("bpe_bytelevel", "tokenizer.json"),
        ("bpe_bytelevel", "tokenizer_config.json"),
        ("bpe_bytelevel", "generation_config.json"),
        ("bpe_roberta", "chat_template.jinja"),
        ("bpe_roberta", "config.json"),
        ("spm_bpe", "tokenizer.model"),
        ("spm_bpe", "added_tokens.json"),
        ("spm_bpe", "special_tokens_map.json"),
    ];
    let max_json = stload::Options::default().max_json_size;
    for (case, file) in cases {
        let big = if file.starts_with("tokenizer.") {
            tokenizer::MAX_FILE_BYTES + 1
        } else {
            max_json + 1
        };
        for kind in common::HOSTILE_KINDS {
            let dir = copy_case(case);
            common::plant_hostile(&dir.path().join(file), kind, big);
            let p = dir.path().to_path_buf();
            let err = common::within(&format!("{file} as {kind}"), move || {
                tokenizer::write_kv(&p, None, &mut Metadata::new()).unwrap_err()
            });
            assert!(
                common::refused_as_hostile(&err, kind) && err.to_string().contains(file),
                "{case} {file} as {kind}: {err}"
            );
        }
    }
    // The JSON files' bound is the model's max_json_size.
    let dir = copy_case("bpe_bytelevel");
    let err = tokenizer::write_kv_limited(dir.path(), None, 64, &mut Metadata::new()).unwrap_err();
    assert!(
        matches!(err, Error::Limit(_)) && err.to_string().contains("_config.json"),
        "{err}"
    );
}

/// A BPE tokenizer.json whose pre-tokenizer is `pre` (JSON), with `<|end|>`, `<|eot_id|>` and
/// `<|tool|>` added as special tokens at ids 2, 3 and 4.
fn bpe_with_pre(pre: &str) -> tempfile::TempDir {
    tokenizer_json_dir(&format!(
        r#"{{"added_tokens":[{{"id":2,"content":"<|end|>","special":true}},{{"id":3,"content":"<|eot_id|>","special":true}},{{"id":4,"content":"<|tool|>","special":true}}],
            "pre_tokenizer":{pre},"model":{{"type":"BPE","vocab":{{"a":0,"b":1}},"merges":["a b"]}}}}"#
    ))
}

#[test]
fn an_unmappable_pre_tokenizer_is_refused_naming_its_regex_unless_a_type_is_given() {
    let regex = r#"\\p{L}+|\\p{N}{1,2}"#;
    let dir = bpe_with_pre(&format!(
        r#"{{"type":"Sequence","pretokenizers":[{{"type":"Split","pattern":{{"Regex":"{regex}"}},"behavior":"Isolated","invert":false}},{{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}}]}}"#
    ));
    let err = error_of(dir.path(), None);
    assert!(
        err.contains(r#"Split "\\p{L}+|\\p{N}{1,2}", then ByteLevel"#)
            && err.contains("tokenizer.json")
            && err.contains("--tokenizer-pre"),
        "{err}"
    );
    // The type given is written as it is, whatever the definition.
    let max_json = stload::Options::default().max_json_size;
    let v = tokenizer::Vocabulary::read_with(dir.path(), None, max_json, Some("qwen2")).unwrap();
    assert_eq!(v.pre, "qwen2");
    // A name of another form is refused before anything is read.
    let err = tokenizer::Vocabulary::read_with(dir.path(), None, max_json, Some("Qwen 2"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"Qwen 2\"") && err.contains("type name"),
        "{err}"
    );
    let mut options = stload::Options::default();
    assert!(options.set_tokenizer_pre(Some("")).is_err());
    options.set_tokenizer_pre(Some("llama-bpe")).unwrap();
    assert_eq!(options.tokenizer_pre.as_deref(), Some("llama-bpe"));
    // A mappable one is found from its definition; others are described.
    let gpt2 = bpe_with_pre(r#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#);
    assert_eq!(
        tokenizer::Vocabulary::read(gpt2.path(), None).unwrap().pre,
        "gpt-2"
    );
    for (pre, named) in [
        (r#"{"type":"Whitespace"}"#, "\"Whitespace\" pre-tokenizer"),
        (
            r#"{"type":"ByteLevel","add_prefix_space":true}"#,
            "add_prefix_space",
        ),
        (r#"null"#, "no pre_tokenizer"),
    ] {
        let err = error_of(bpe_with_pre(pre).path(), None);
        assert!(err.contains(named), "{pre}: {err}");
    }
}

#[test]
fn generation_config_eos_ids_llama_cpp_would_not_stop_on_become_eot_and_eom() {
    let gpt2 = r#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#;
    let keys = |gen: &str| {
        let dir = bpe_with_pre(gpt2);
        std::fs::write(dir.path().join("generation_config.json"), gen).unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"eos_token":"<|end|>"}"#,
        )
        .unwrap();
        let mut md = Metadata::new();
        tokenizer::write_kv(dir.path(), None, &mut md).unwrap();
        let id = |k: &str| match md.get(&format!("tokenizer.ggml.{k}_token_id")) {
            Some(Value::U32(v)) => Some(*v),
            None => None,
            other => panic!("{k}: {other:?}"),
        };
        (
            id("eos"),
            id("eot"),
            id("eom"),
            md.get("tokenizer.ggml.eos_token_ids").cloned(),
        )
    };
    // <|eot_id|> (3) ends generation in llama.cpp by its text; <|tool|> (4) does not: it becomes
    // the eot id. The eos stays tokenizer_config's, as llama.cpp's converter writes it.
    let (eos, eot, eom, list) = keys(r#"{"eos_token_id":[2,3,4]}"#);
    assert_eq!((eos, eot, eom), (Some(2), Some(4), None));
    assert_eq!(list, Some(Value::Array(Array::I32(vec![2, 3, 4]))));
    // Two such ids: eot and eom; a single id that is the eos adds nothing.
    let (_, eot, eom, _) = keys(r#"{"eos_token_id":[4,0,2,1]}"#);
    assert_eq!((eot, eom), (Some(4), Some(0)));
    let (eos, eot, eom, list) = keys(r#"{"eos_token_id":2}"#);
    assert_eq!((eos, eot, eom, list), (Some(2), None, None, None));
}

#[test]
fn gpt_oss_end_of_generation_list_is_written_whole_and_adds_no_eot() {
    // gpt-oss's generation_config.json lists <|return|>, <|endoftext|> and <|call|>; llama.cpp
    // ends generation on each by its text, so none becomes an eot or eom id (checked by hand
    // in llama.cpp: llama_vocab_is_eog holds for all three).
    let dir = tokenizer_json_dir(
        r#"{"added_tokens":[{"id":2,"content":"<|return|>","special":true},{"id":3,"content":"<|endoftext|>","special":true},{"id":4,"content":"<|call|>","special":true}],
            "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#,
    );
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"bos_token_id":0,"eos_token_id":[2,3,4],"pad_token_id":3}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"eos_token":"<|return|>"}"#,
    )
    .unwrap();
    let mut md = Metadata::new();
    tokenizer::write_kv(dir.path(), None, &mut md).unwrap();
    assert_eq!(md.get("tokenizer.ggml.eos_token_id"), Some(&Value::U32(2)));
    assert_eq!(md.get("tokenizer.ggml.eot_token_id"), None);
    assert_eq!(md.get("tokenizer.ggml.eom_token_id"), None);
    assert_eq!(
        md.get("tokenizer.ggml.eos_token_ids"),
        Some(&Value::Array(Array::I32(vec![2, 3, 4])))
    );
}

#[test]
fn added_tokens_only_tokenizer_json_lists_are_kept_beside_a_tokenizer_model() {
    // transformers 5 saves a SentencePiece model's added tokens only in tokenizer.json: they
    // were [PAD] fillers, and the eos named by content pointed at the spm eos instead.
    let dir = copy_case("spm_bpe");
    std::fs::remove_file(dir.path().join("added_tokens.json")).unwrap();
    let o = &oracle()["spm_bpe"];
    let want = oracle_strings(&o["tokens"]);
    let n = want.len() - 2;
    assert_eq!(&want[n..], ["<|im_start|>", "<|im_end|>"]);
    std::fs::write(
        dir.path().join("tokenizer.json"),
        format!(
            r#"{{"added_tokens":[{{"id":{n},"content":"<|im_start|>","special":true}},{{"id":{},"content":"<|im_end|>","special":true}}],
                "model":{{"type":"Unigram","vocab":[]}}}}"#,
            n + 1
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"vocab_size":{}}}"#, n + 4),
    )
    .unwrap();
    let mut md = Metadata::new();
    tokenizer::write_kv(dir.path(), Some(n as u64 + 4), &mut md).unwrap();
    let tokens = strings(&md, "tokenizer.ggml.tokens");
    assert_eq!(&tokens[..n + 2], &want[..]);
    assert_eq!(
        &tokens[n + 2..],
        [format!("[PAD{}]", n + 2), format!("[PAD{}]", n + 3)]
    );
    match md.get("tokenizer.ggml.token_type") {
        Some(Value::Array(Array::I32(t))) => assert_eq!(&t[n..n + 2], [3, 3]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        md.get("tokenizer.ggml.eos_token_id"),
        Some(&Value::U32(n as u32 + 1))
    );
}
