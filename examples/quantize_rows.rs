//! Quantises f32 values to a ggml block type with stload's kernels, for tests that compare the
//! bytes with another quantiser's.
//!
//! Usage: `quantize_rows TYPE < values.f32 > blocks` where TYPE is a ggml type name (`q4_k`)
//! and the input is little-endian f32, a whole number of the type's blocks.

use std::io::{Read, Write};
use std::process::ExitCode;

fn run() -> Result<(), String> {
    let name = std::env::args()
        .nth(1)
        .ok_or("usage: quantize_rows TYPE < values.f32 > blocks")?;
    let t = stload::gguf::quant::by_name(&name).ok_or_else(|| {
        let known: Vec<&str> = stload::gguf::quant::TYPES.iter().map(|t| t.name).collect();
        format!("unknown type {name:?}; known: {}", known.join(", "))
    })?;
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .map_err(|e| format!("stdin: {e}"))?;
    if raw.len() % 4 != 0 {
        return Err(format!(
            "stdin: {} bytes are not whole f32 values",
            raw.len()
        ));
    }
    let x: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let needed = t
        .bytes_for(x.len())
        .ok_or_else(|| format!("{}: {} values are not whole blocks", t.name, x.len()))?;
    let mut out = vec![0u8; needed];
    t.quantize(&x, &mut out).map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| format!("stdout: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quantize_rows: {e}");
            ExitCode::FAILURE
        }
    }
}
