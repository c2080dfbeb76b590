//! Dequantises ggml blocks to f32 with stload's kernels, for tests that compare the values
//! with another dequantiser's.
//!
//! Usage: `dequantize_rows TYPE < blocks > values.f32` where TYPE is a ggml type name (`q4_k`)
//! and the input a whole number of the type's blocks; the output is little-endian f32.

use std::io::{Read, Write};
use std::process::ExitCode;

fn run() -> Result<(), String> {
    let name = std::env::args()
        .nth(1)
        .ok_or("usage: dequantize_rows TYPE < blocks > values.f32")?;
    let t = stload::convert::dequant::by_name(&name).ok_or_else(|| {
        let known: Vec<&str> = stload::convert::dequant::TYPES
            .iter()
            .map(|t| t.name())
            .collect();
        format!("unknown type {name:?}; known: {}", known.join(", "))
    })?;
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .map_err(|e| format!("stdin: {e}"))?;
    let mut out = vec![0f32; t.values_in(raw.len()).map_err(|e| e.to_string())?];
    t.dequantize(&raw, &mut out).map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| format!("stdout: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dequantize_rows: {e}");
            ExitCode::FAILURE
        }
    }
}
