//! A small built-in model with one tensor of each common dtype, for demos and smoke tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use crate::dtype::Dtype;
use crate::error::Result;
use crate::write::{write_file, TensorRef};

/// Writes `sample.safetensors` into `dir` and returns its path. Values are deterministic:
/// element `i` of every float tensor is `(i - 8) / 4`.
pub fn write_sample(dir: &Path) -> Result<PathBuf> {
    let ramp = |n: usize| (0..n).map(|i| (i as f32 - 8.0) / 4.0).collect::<Vec<f32>>();
    let f32s: Vec<u8> = ramp(16).iter().flat_map(|v| v.to_le_bytes()).collect();
    let bf16s: Vec<u8> = ramp(32)
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    let f16s: Vec<u8> = ramp(8)
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let i64s: Vec<u8> = (0..4i64)
        .flat_map(|v| (v * 1000 - 1500).to_le_bytes())
        .collect();
    let bools = [1u8, 0, 1, 1];
    let step = 42i32.to_le_bytes();
    let tensors = [
        TensorRef {
            name: "embed.weight",
            dtype: Dtype::BF16,
            shape: &[4, 8],
            data: &bf16s,
        },
        TensorRef {
            name: "norm.weight",
            dtype: Dtype::F32,
            shape: &[16],
            data: &f32s,
        },
        TensorRef {
            name: "head.bias",
            dtype: Dtype::F16,
            shape: &[2, 4],
            data: &f16s,
        },
        TensorRef {
            name: "positions",
            dtype: Dtype::I64,
            shape: &[4],
            data: &i64s,
        },
        TensorRef {
            name: "mask",
            dtype: Dtype::Bool,
            shape: &[4],
            data: &bools,
        },
        TensorRef {
            name: "step",
            dtype: Dtype::I32,
            shape: &[],
            data: &step,
        },
    ];
    let metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("source".to_string(), "stload built-in sample".to_string()),
    ]);
    let path = dir.join("sample.safetensors");
    write_file(&path, &tensors, &metadata)?;
    Ok(path)
}
