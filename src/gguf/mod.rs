//! GGUF output: the file format llama.cpp and ollama run. [`write_model`] writes a model with
//! per-tensor types ([`OutType`], [`tensor_type`], and llama.cpp's rule for the quantised
//! file types in [`tensor_types`]), Q8_0 quantisation ([`q8_0`]; the other
//! block types' kernels and the table of them are in [`quant`]) and the
//! metadata and computed tensors of a [`GgufPlan`], in one file or in shards as llama.cpp's
//! gguf-split cuts them ([`Split`]); [`read`] reads a header back, [`read_set`] every shard of
//! a split set.
//!
//! This module knows nothing of architectures or tokenizers: their keys, extra tensors and
//! value fix-ups arrive in the plan.

mod mxfp4;
pub use crate::convert::quant::{self, q8_0};
pub mod tensor_types;
mod types;
mod writer;

pub use crate::gguf_format::{
    is_shard_of, parse_size, shard_path, ShardInfo, Split, KEY_SPLIT_COUNT, KEY_SPLIT_NO,
    KEY_SPLIT_TENSORS_COUNT,
};
pub use crate::gguf_format::{parse, read, read_set, value_json, GgufFile, GgufTensorInfo};
pub use types::{tensor_type, GgmlType, OutType};
pub use writer::{
    write_model, Adjust, BlockScale, ComputedTensor, GgufPlan, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS,
    MAX_NAME_BYTES, QUANTIZATION_VERSION, VERSION,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf_format::MAX_ARRAY_DEPTH;
    use crate::kv::{Array, Value};
    use crate::write::{write_file, TensorRef};
    use crate::{Model, Options};
    use std::collections::BTreeMap;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A model of a 2-D F32 tensor, a 1-D one and an I32 one, in a fresh directory.
    fn model(dir: &std::path::Path) -> Model {
        let a: Vec<f32> = (0..64 * 3).map(|i| i as f32 * 0.25 - 7.0).collect();
        let (a, b, c) = (
            f32_bytes(&a),
            f32_bytes(&[1.5, -2.0, 3.0]),
            [1u8, 0, 0, 0, 2, 0, 0, 0],
        );
        let t = [
            TensorRef {
                name: "a.weight",
                dtype: crate::Dtype::F32,
                shape: &[3, 64],
                data: &a,
            },
            TensorRef {
                name: "b.weight",
                dtype: crate::Dtype::F32,
                shape: &[3],
                data: &b,
            },
            TensorRef {
                name: "c",
                dtype: crate::Dtype::I32,
                shape: &[2],
                data: &c,
            },
        ];
        let path = dir.join("m.safetensors");
        write_file(&path, &t, &BTreeMap::new()).unwrap();
        Model::open_files(&[path], &Options::default()).unwrap()
    }

    #[test]
    fn layout_has_reversed_dims_aligned_offsets_and_general_keys() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let out = dir.path().join("m.gguf");
        let mut plan = GgufPlan::new("llama");
        plan.metadata.set("llama.block_count", 1u32);
        plan.metadata.set(
            "tokenizer.ggml.tokens",
            Array::String(vec!["a".into(), "bc".into()]),
        );
        plan.extra.push(ComputedTensor {
            name: "rope_freqs.weight".into(),
            shape: [4].into_iter().collect(),
            values: vec![1.0, 2.0, 3.0, 4.0],
        });
        write_model(&m, &out, OutType::F16, plan, &mut |_, _| true).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let f = parse("m.gguf", &bytes).unwrap();
        assert_eq!(f.version, 3);
        let keys: Vec<&str> = f.metadata.iter().map(|(k, _)| k).collect();
        assert_eq!(keys[0], "general.architecture");
        assert_eq!(f.metadata.get("general.file_type"), Some(&Value::U32(1)));
        assert_eq!(f.metadata.get("general.alignment"), Some(&Value::U32(32)));
        assert_eq!(
            f.metadata.get("general.quantization_version"),
            Some(&Value::U32(2))
        );
        assert_eq!(f.metadata.get("llama.block_count"), Some(&Value::U32(1)));
        let names: Vec<&str> = f.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a.weight", "b.weight", "c", "rope_freqs.weight"]);
        assert_eq!(f.tensors[0].shape, [3, 64]);
        assert_eq!(f.tensors[0].ty, GgmlType::F16);
        assert_eq!(f.tensors[1].ty, GgmlType::F32);
        assert_eq!(f.tensors[2].ty, GgmlType::I32);
        assert_eq!(f.data_start % 32, 0);
        for t in &f.tensors {
            assert_eq!((t.data_offset - f.data_start) % 32, 0, "{}", t.name);
        }
        // The file stores dims innermost first: find a.weight's info and read them raw.
        let at = bytes.windows(8).position(|w| w == b"a.weight").unwrap() + 8;
        assert_eq!(&bytes[at..at + 4], &2u32.to_le_bytes());
        assert_eq!(&bytes[at + 4..at + 12], &64u64.to_le_bytes());
        assert_eq!(&bytes[at + 12..at + 20], &3u64.to_le_bytes());
        // Values: F16 of the source, F32 kept, integers copied, computed tensor appended.
        let a = &f.tensors[0];
        let first = half::f16::from_le_bytes([
            bytes[a.data_offset as usize],
            bytes[a.data_offset as usize + 1],
        ]);
        assert_eq!(first.to_f32(), -7.0);
        let c = &f.tensors[2];
        assert_eq!(
            &bytes[c.data_offset as usize..][..8],
            &[1, 0, 0, 0, 2, 0, 0, 0]
        );
        let r = &f.tensors[3];
        assert_eq!(
            &bytes[r.data_offset as usize..][..16],
            &f32_bytes(&[1.0, 2.0, 3.0, 4.0])[..]
        );
        assert_eq!(
            bytes.len() as u64,
            (r.data_offset + 16).next_multiple_of(32)
        );
    }

    #[test]
    fn adjust_skip_and_q8_0_apply() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let out = dir.path().join("q.gguf");
        fn plus_one(v: &mut [f32]) {
            v.iter_mut().for_each(|x| *x += 1.0);
        }
        let adjust = |n: &str| (n == "b.weight").then_some(plus_one as Adjust);
        let skip = |n: &str| n == "c";
        let plan = GgufPlan {
            adjust: &adjust,
            skip: &skip,
            ..GgufPlan::new("llama")
        };
        write_model(&m, &out, OutType::Q8_0, plan, &mut |_, _| true).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let f = parse("q.gguf", &bytes).unwrap();
        assert_eq!(f.metadata.get("general.file_type"), Some(&Value::U32(7)));
        assert_eq!(f.tensors.len(), 2);
        assert_eq!(f.tensors[0].ty, GgmlType::Q8_0);
        assert_eq!(f.tensors[0].nbytes, 6 * 34);
        let b = &f.tensors[1];
        assert_eq!(
            &bytes[b.data_offset as usize..][..12],
            &f32_bytes(&[2.5, -1.0, 4.0])[..]
        );
    }

    #[test]
    fn cancel_and_bad_plans_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let out = dir.path().join("x.gguf");
        let e = write_model(
            &m,
            &out,
            OutType::F32,
            GgufPlan::new("llama"),
            &mut |d, _| d == 0,
        );
        assert!(matches!(e, Err(crate::Error::Cancelled(_))), "{e:?}");
        let mut plan = GgufPlan::new("llama");
        plan.metadata.remove("general.architecture");
        let e = write_model(&m, &out, OutType::F32, plan, &mut |_, _| true).unwrap_err();
        assert!(e.to_string().contains("general.architecture"), "{e}");
        let mut plan = GgufPlan::new("llama");
        plan.extra.push(ComputedTensor {
            name: "a.weight".into(),
            shape: [1].into_iter().collect(),
            values: vec![0.0],
        });
        let e = write_model(&m, &out, OutType::F32, plan, &mut |_, _| true).unwrap_err();
        assert!(e.to_string().contains("written twice"), "{e}");
        let input = dir.path().join("m.safetensors");
        let e = write_model(&m, &input, OutType::F32, GgufPlan::new("x"), &mut |_, _| {
            true
        })
        .unwrap_err();
        assert!(e.to_string().contains("input file"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["m.safetensors"]);
    }

    fn names_in(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn split_output_marks_every_shard_and_is_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let out = dir.path().join("o.gguf");
        let one_each = Split {
            max_bytes: 0,
            max_tensors: 1,
        };
        let plan = GgufPlan {
            split: Some(one_each),
            ..GgufPlan::new("llama")
        };
        let paths = write_model(&m, &out, OutType::F16, plan, &mut |_, _| true).unwrap();
        let want: Vec<_> = (1..=3).map(|i| shard_path(&out, i, 3)).collect();
        assert_eq!(paths, want);
        assert!(!out.exists());
        let mut names = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let f = read(p).unwrap();
            assert_eq!(
                f.shard,
                Some(ShardInfo {
                    no: i as u16,
                    count: 3,
                    tensors: 3
                })
            );
            assert_eq!(f.metadata.get(KEY_SPLIT_NO), Some(&Value::U16(i as u16)));
            assert_eq!(
                f.metadata.get(KEY_SPLIT_TENSORS_COUNT),
                Some(&Value::I32(3))
            );
            // All metadata in the first shard, only the split keys in the others.
            assert_eq!(
                f.metadata.get("general.architecture").is_some(),
                i == 0,
                "{i}"
            );
            if i > 0 {
                assert_eq!(f.metadata.len(), 3);
            }
            assert_eq!(f.tensors.len(), 1);
            assert_eq!(f.tensors[0].data_offset, f.data_start);
            names.push(f.tensors[0].name.clone());
        }
        assert_eq!(names, ["a.weight", "b.weight", "c"]);

        // A cancel while the last shard is written, no limit, and a shard name that is an
        // input file: no shard left, the earlier ones included.
        for p in &paths {
            std::fs::remove_file(p).unwrap();
        }
        let plan = GgufPlan {
            split: Some(one_each),
            ..GgufPlan::new("llama")
        };
        let e = write_model(&m, &out, OutType::F16, plan, &mut |d, _| d < 400).unwrap_err();
        assert!(matches!(e, crate::Error::Cancelled(_)), "{e:?}");
        let plan = GgufPlan {
            split: Some(Split::default()),
            ..GgufPlan::new("llama")
        };
        let e = write_model(&m, &out, OutType::F16, plan, &mut |_, _| true).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        std::fs::hard_link(dir.path().join("m.safetensors"), &want[1]).unwrap();
        let plan = GgufPlan {
            split: Some(one_each),
            ..GgufPlan::new("llama")
        };
        let e = write_model(&m, &out, OutType::F16, plan, &mut |_, _| true).unwrap_err();
        assert!(
            e.to_string()
                .contains("o-00002-of-00003.gguf: is an input file"),
            "{e}"
        );
        assert_eq!(
            names_in(dir.path()),
            ["m.safetensors", "o-00002-of-00003.gguf"]
        );
    }

    /// A GGUF v3 file of no tensors and one key `k.x` of value type `ty` and raw `value`.
    fn one_key(ty: u32, value: &[u8]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(b"k.x");
        b.extend(ty.to_le_bytes());
        b.extend(value);
        b
    }

    fn array_head(elem: u32, n: u64) -> Vec<u8> {
        let mut b = elem.to_le_bytes().to_vec();
        b.extend(n.to_le_bytes());
        b
    }

    #[test]
    fn hostile_metadata_gives_errors_naming_the_key() {
        let err = |bytes: Vec<u8>| parse("h.gguf", &bytes).unwrap_err().to_string();
        let case = |bytes: Vec<u8>, rule: &str| {
            let e = err(bytes);
            assert!(
                e.contains("h.gguf") && e.contains("key \"k.x\"") && e.contains(rule),
                "{e}"
            );
        };
        case(one_key(13, &[0; 16]), "unknown value type 13");
        case(
            one_key(9, &array_head(99, 1)),
            "unknown array element type 99",
        );
        // Length times element size beyond the file, and overflowing.
        case(one_key(9, &array_head(10, 1 << 40)), "cannot fit");
        case(one_key(9, &array_head(12, u64::MAX)), "cannot fit");
        case(one_key(9, &array_head(8, u64::MAX / 4)), "cannot fit");
        case(one_key(9, &array_head(9, u64::MAX / 8)), "cannot fit");
        // An array of strings whose second string runs past the end.
        let mut v = array_head(8, 2);
        v.extend(1u64.to_le_bytes());
        v.push(b'a');
        v.extend(50u64.to_le_bytes());
        v.extend([b'b'; 30]);
        case(one_key(9, &v), "needs 50 bytes");
        let mut v = array_head(7, 3);
        v.extend([1, 0, 2]);
        case(one_key(9, &v), "boolean byte 2");
        case(one_key(4, &[1, 2]), "needs 4 bytes");
        // Nesting: MAX_ARRAY_DEPTH levels read, one more refused.
        let nest = |levels: usize| {
            let mut v = Vec::new();
            for _ in 1..levels {
                v.extend(array_head(9, 1));
            }
            v.extend(array_head(0, 2));
            v.extend([7, 8]);
            one_key(9, &v)
        };
        let f = parse("h.gguf", &nest(MAX_ARRAY_DEPTH)).unwrap();
        let mut a = match f.metadata.get("k.x") {
            Some(Value::Array(a)) => a,
            other => panic!("{other:?}"),
        };
        for _ in 1..MAX_ARRAY_DEPTH {
            a = match a {
                Array::Array(v) if v.len() == 1 => &v[0],
                other => panic!("{other:?}"),
            };
        }
        assert_eq!(a, &Array::U8(vec![7, 8]));
        case(nest(MAX_ARRAY_DEPTH + 1), "nested more than 8 deep");
        // Every truncation of a file of every array type is an error, never a panic.
        let mut m = crate::kv::Metadata::new();
        m.set("general.architecture", "x");
        m.set(
            "a",
            Array::Array(vec![
                Array::I64(vec![-1, 2]),
                Array::String(vec!["s".into()]),
            ]),
        );
        m.set("b", Array::F64(vec![0.5]));
        m.set("c", Array::U16(vec![1, 2, 3]));
        let dir = tempfile::tempdir().unwrap();
        let mm = model(dir.path());
        let out = dir.path().join("t.gguf");
        let plan = GgufPlan {
            metadata: m,
            skip: &|_| true,
            ..GgufPlan::new("x")
        };
        write_model(&mm, &out, OutType::F32, plan, &mut |_, _| true).unwrap();
        let good = std::fs::read(&out).unwrap();
        let f = parse("t.gguf", &good).unwrap();
        assert_eq!(
            f.metadata.get("c"),
            Some(&Value::Array(Array::U16(vec![1, 2, 3])))
        );
        assert_eq!(
            f.metadata.get("a"),
            Some(&Value::Array(Array::Array(vec![
                Array::I64(vec![-1, 2]),
                Array::String(vec!["s".into()])
            ])))
        );
        for n in 0..f.data_start as usize {
            if n < good.len() && parse("t.gguf", &good[..n]).is_ok() {
                // Only the padding after the header may go.
                assert!(good[n..].iter().all(|&b| b == 0), "{n}");
            }
        }
    }

    #[test]
    fn hostile_headers_give_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let out = dir.path().join("h.gguf");
        write_model(
            &m,
            &out,
            OutType::F16,
            GgufPlan::new("llama"),
            &mut |_, _| true,
        )
        .unwrap();
        let good = std::fs::read(&out).unwrap();
        // Every truncation before the last tensor's end is an error, never a panic.
        let f = parse("h.gguf", &good).unwrap();
        let end = f
            .tensors
            .iter()
            .map(|t| t.data_offset + t.nbytes)
            .max()
            .unwrap();
        for n in 0..end as usize {
            assert!(parse("h.gguf", &good[..n]).is_err(), "{n}");
        }
        // Huge counts and lengths are refused before allocating.
        let mut bad = good.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = parse("h.gguf", &bad).unwrap_err().to_string();
        assert!(e.contains("tensor count"), "{e}");
        let mut bad = good.clone();
        bad[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(parse("h.gguf", &bad).is_err());
        let mut bad = good;
        bad[..4].copy_from_slice(b"GGUX");
        assert!(parse("h.gguf", &bad)
            .unwrap_err()
            .to_string()
            .contains("magic"));
    }

    /// A GGUF v3 file of no keys and 1-D F32 tensors `(name, elements, offset)`, with `data`
    /// zero bytes after the aligned end of the header.
    fn f32_tensors(tensors: &[(&str, u64, u64)], data: usize) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend(0u64.to_le_bytes());
        for &(name, n, offset) in tensors {
            b.extend((name.len() as u64).to_le_bytes());
            b.extend(name.as_bytes());
            b.extend(1u32.to_le_bytes());
            b.extend(n.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend(offset.to_le_bytes());
        }
        b.resize(
            b.len().next_multiple_of(DEFAULT_ALIGNMENT as usize) + data,
            0,
        );
        b
    }

    /// Finding 17: tensors that share data bytes are refused, naming both (llama.cpp refuses
    /// such a file: each tensor must start where the one before it ends, padded).
    #[test]
    fn tensors_sharing_bytes_are_refused_naming_both() {
        // 8 f32 = 32 bytes, one alignment unit.
        let ok = f32_tensors(&[("a", 8, 0), ("b", 8, 32), ("c", 3, 64)], 96);
        let f = parse("t.gguf", &ok).unwrap();
        assert_eq!(f.tensors[2].data_offset, f.data_start + 64);
        let refused = |tensors: &[(&str, u64, u64)], names: &[&str]| {
            let e = parse("t.gguf", &f32_tensors(tensors, 256))
                .unwrap_err()
                .to_string();
            for n in names {
                assert!(e.contains(&format!("\"{n}\"")), "{tensors:?}: {e}");
            }
        };
        // One offset for two tensors; a tensor inside a bigger one listed before it; the third
        // tensor on the second.
        refused(&[("a", 8, 0), ("b", 8, 0)], &["a", "b"]);
        refused(&[("big", 32, 0), ("small", 8, 64)], &["big", "small"]);
        refused(&[("a", 8, 0), ("b", 8, 32), ("c", 8, 32)], &["b", "c"]);
        // Listed out of data order, and a gap: refused as llama.cpp refuses them.
        refused(&[("a", 8, 32), ("b", 8, 0)], &["a"]);
        refused(&[("a", 8, 0), ("b", 8, 64)], &["b"]);
    }

    /// A GGUF v3 file of no tensors and `n` keys `k0000000`, ... of one u8 each; `dup` repeats
    /// the first key at the end.
    fn many_keys(n: usize, dup: bool) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend((n as u64 + u64::from(dup)).to_le_bytes());
        for i in (0..n).chain(dup.then_some(0)) {
            b.extend(8u64.to_le_bytes());
            b.extend(format!("k{i:07}").as_bytes());
            b.extend(0u32.to_le_bytes());
            b.push(7);
        }
        b
    }

    /// CPU time this thread has used, in nanoseconds (unaffected by other processes).
    #[cfg(target_os = "linux")]
    fn thread_cpu_ns() -> u128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes one timespec, which lives across the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
    }

    /// Finding 7: a million keys read in linear time (the duplicate check searched the list:
    /// 300k keys took minutes), and a duplicate is still refused. The proof is the CPU time of
    /// ten times the keys, well under a hundred times (quadratic); the timeout only guards
    /// against a hang.
    #[test]
    fn a_million_keys_read_in_linear_time() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut cpu: Vec<u128> = Vec::new();
            let mut read = Vec::new();
            for n in [100_000, 1_000_000] {
                let bytes = many_keys(n, false);
                #[cfg(target_os = "linux")]
                let start = thread_cpu_ns();
                read.push(parse("k.gguf", &bytes).map(|f| f.metadata.len()));
                #[cfg(target_os = "linux")]
                cpu.push(thread_cpu_ns() - start);
            }
            let dup = parse("k.gguf", &many_keys(1_000_000, true)).map(|f| f.metadata.len());
            let _ = tx.send((read, cpu, dup));
        });
        let (read, cpu, dup) = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("reading a million keys took more than 30 s");
        assert_eq!(read[0].as_ref().unwrap(), &100_000);
        assert_eq!(read[1].as_ref().unwrap(), &1_000_000);
        if let [small, large] = cpu[..] {
            assert!(
                large < 30 * small.max(1),
                "10x the keys took {}x the CPU time ({small} ns, {large} ns)",
                large / small.max(1)
            );
        }
        let e = dup.unwrap_err().to_string();
        assert!(e.contains("\"k0000000\" appears twice"), "{e}");
    }

    /// Finding 22: a split set is read whole from any of its shards, and a set whose shards
    /// disagree or lack one is refused, naming the file.
    #[test]
    fn a_split_set_is_read_whole_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let out = dir.path().join("o.gguf");
        let plan = GgufPlan {
            split: Some(Split {
                max_bytes: 0,
                max_tensors: 1,
            }),
            ..GgufPlan::new("llama")
        };
        let paths = write_model(&m, &out, OutType::F16, plan, &mut |_, _| true).unwrap();
        for p in &paths {
            let set = read_set(p).unwrap();
            let names: Vec<&std::path::Path> = set.iter().map(|(p, _)| p.as_path()).collect();
            assert_eq!(names, paths.iter().map(|p| p.as_path()).collect::<Vec<_>>());
        }
        let kept: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
        let err = |p: &std::path::Path| read_set(p).unwrap_err().to_string();
        // The first shard's tensor again in the second (its split.no, a u16, made 1).
        let mut dup = kept[0].clone();
        let at = dup.windows(8).position(|w| w == b"split.no").unwrap() + 8 + 4;
        dup[at..at + 2].copy_from_slice(&1u16.to_le_bytes());
        std::fs::write(&paths[1], &dup).unwrap();
        let e = err(&paths[0]);
        assert!(
            e.contains("o-00002-of-00003.gguf: tensor \"a.weight\": also listed by"),
            "{e}"
        );
        std::fs::write(&paths[1], &kept[1]).unwrap();
        // The second shard's bytes under the third's name: its split.no and its tensor disagree.
        std::fs::write(&paths[2], &kept[1]).unwrap();
        let e = err(&paths[0]);
        assert!(e.contains("o-00003-of-00003.gguf"), "{e}");
        // A missing shard.
        std::fs::remove_file(&paths[2]).unwrap();
        let e = err(&paths[1]);
        assert!(e.contains("o-00003-of-00003.gguf"), "{e}");
        // A shard under another name: its set cannot be found.
        let renamed = dir.path().join("renamed.gguf");
        std::fs::write(&renamed, &kept[0]).unwrap();
        let e = err(&renamed);
        assert!(
            e.contains("renamed.gguf") && e.contains("-00001-of-00003"),
            "{e}"
        );
        // A single file is its own set.
        let single = dir.path().join("s.gguf");
        write_model(
            &m,
            &single,
            OutType::F16,
            GgufPlan::new("llama"),
            &mut |_, _| true,
        )
        .unwrap();
        assert_eq!(read_set(&single).unwrap().len(), 1);
    }
}
