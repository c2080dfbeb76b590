//! The library side of `stload convert`: whole-model dtypes and cancelled exports.

use std::collections::BTreeMap;
use std::path::Path;

use stload::__private::write::{write_file, TensorRef};
use stload::{Dtype, Error, Model, Options};

/// Item 13: `Model::load` refuses a dtype whole-model conversion does not produce, instead of
/// returning OK with nothing converted; the ones it produces load.
#[test]
fn load_refuses_dtypes_it_does_not_produce() {
    let dir = tempfile::tempdir().unwrap();
    let path = stload::__private::sample::write_sample(dir.path()).unwrap();
    let model = Model::open_files(&[&path], &Options::default()).unwrap();
    for dtype in Dtype::ALL {
        let loaded = model.load(Some(dtype), |_, _, _| true);
        if stload::convert::WHOLE_MODEL_TARGETS.contains(&dtype) {
            assert!(loaded.is_ok(), "{dtype}: {loaded:?}");
            // The BF16 tensor now has the asked dtype.
            assert_eq!(model.get_as("embed.weight", dtype).unwrap().dtype(), dtype);
            continue;
        }
        match loaded {
            Err(Error::Unsupported(m)) => assert!(
                m.contains(dtype.name()) && m.contains("F32, F16, BF16, F64, F8_E4M3, F8_E5M2"),
                "{m}"
            ),
            other => panic!("{dtype}: {other:?}"),
        }
    }
}

/// Item 15, library side: a directory export cancelled by its progress callback returns
/// `Cancelled` and leaves neither temporary files nor the shards finished before the cancel.
#[test]
fn a_cancelled_directory_export_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = vec![0u8; 4096];
    for (shard, names) in [("a.safetensors", ["x", "y"]), ("b.safetensors", ["z", "w"])] {
        let tensors: Vec<TensorRef> = names
            .iter()
            .map(|&name| TensorRef {
                name,
                dtype: Dtype::BF16,
                shape: &[32, 64],
                data: &data,
            })
            .collect();
        write_file(&src.join(shard), &tensors, &BTreeMap::new()).unwrap();
    }
    std::fs::write(src.join("config.json"), "{}").unwrap();
    let model = Model::open_dir(&src, &Options::default()).unwrap();
    assert_eq!(model.files().count(), 2);
    let total: u64 = model
        .names()
        .map(|n| model.info(n).unwrap().nbytes * 2)
        .sum();
    // Stop in the second shard (the first finished) and at the last chunk of all.
    for (dst_name, stop_at) in [("out", total * 2 / 3), ("out-late", total)] {
        let dst = dir.path().join(dst_name);
        let mut seen = 0u64;
        let result =
            stload::__private::export::export(&model, &src, Some(Dtype::F32), &dst, &mut |b| {
                seen += b;
                seen < stop_at
            });
        assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
        assert!(!dst.exists(), "{dst_name}: {:?}", listing(&dst));
    }
    // An existing output directory is kept, emptied of what this export wrote.
    let dst = dir.path().join("kept");
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("mine.txt"), "x").unwrap();
    let result = stload::__private::export::export(&model, &src, None, &dst, &mut |_| false);
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    assert_eq!(listing(&dst), ["mine.txt"]);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The library's export refuses an output that is an input, as the command does (finding 14's
/// note): the source file in another spelling or through a hard link, the source directory,
/// or a directory holding one of the model's files. Nothing is written or changed.
#[test]
fn export_refuses_an_output_that_is_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = stload::__private::sample::write_sample(d).unwrap();
    let before = std::fs::read(&src).unwrap();
    std::fs::hard_link(&src, d.join("hard.safetensors")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let model = Model::open_files(&[&src], &Options::default()).unwrap();
    let name = src.file_name().unwrap();
    for dst in [
        src.clone(),
        d.join("sub/..").join(name),
        d.join("hard.safetensors"),
    ] {
        let result =
            stload::__private::export::export(&model, &src, Some(Dtype::F32), &dst, &mut |_| true);
        match result {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("is the input"), "{m}"),
            other => panic!("{}: {other:?}", dst.display()),
        }
    }
    assert_eq!(std::fs::read(&src).unwrap(), before);
    let mut names = listing(d);
    names.retain(|n| n.starts_with(".stload-"));
    assert!(names.is_empty(), "{names:?}");

    // A directory source into itself, or into a directory holding one of its files.
    std::fs::remove_file(d.join("hard.safetensors")).unwrap();
    let model = Model::open_dir(d, &Options::default()).unwrap();
    let holder = d.join("holder");
    std::fs::create_dir(&holder).unwrap();
    std::fs::hard_link(&src, holder.join("copy.safetensors")).unwrap();
    for dst in [d.to_path_buf(), holder.clone()] {
        let result = stload::__private::export::export(&model, d, None, &dst, &mut |_| true);
        assert!(
            matches!(&result, Err(Error::InvalidArgument(m)) if m.contains("the input")),
            "{}: {result:?}",
            dst.display()
        );
    }
    assert_eq!(listing(&holder), ["copy.safetensors"]);
    assert_eq!(std::fs::read(&src).unwrap(), before);
}
