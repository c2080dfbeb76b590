//! MXFP4 tensors stored as Hugging Face checkpoints store them (gpt-oss): a `NAME.blocks` U8
//! tensor `[.., rows, blocks, 16]` of FP4 codes and a `NAME.scales` U8 tensor `[.., rows,
//! blocks]` of E8M0 exponents, written as one GGML MXFP4 tensor `NAME.weight` `[.., rows,
//! blocks * 32]` without dequantizing: the same codes and scales, reordered into ggml's blocks.

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Values per block.
pub(crate) const BLOCK: u64 = 32;
/// Bytes of codes per block (after the scale byte in ggml's block).
pub(crate) const CODES: usize = 16;

/// The pair's stem when `name` is the blocks tensor of one (`NAME.blocks`).
pub fn stem(name: &str) -> Option<&str> {
    name.strip_suffix(".blocks")
}

/// The scales tensor's name for a stem.
pub fn scales_name(stem: &str) -> String {
    format!("{stem}.scales")
}

/// The name of the joined tensor.
pub fn weight_name(stem: &str) -> String {
    format!("{stem}.weight")
}

/// The joined tensor's shape (outermost first) from the blocks' and scales' dtypes and shapes,
/// or an error naming both tensors.
pub fn joined_shape(
    blocks: (&str, Dtype, &[u64]),
    scales: (&str, Dtype, &[u64]),
) -> Result<Vec<u64>> {
    let (bn, bd, bs) = blocks;
    let (sn, sd, ss) = scales;
    let fits = bd == Dtype::U8
        && sd == Dtype::U8
        && bs.len() >= 2
        && bs[bs.len() - 1] == CODES as u64
        && bs[..bs.len() - 1] == *ss;
    let last = ss.last().and_then(|n| n.checked_mul(BLOCK));
    match (fits, last) {
        (true, Some(last)) => {
            let mut shape = ss.to_vec();
            *shape.last_mut().unwrap_or(&mut 0) = last;
            Ok(shape)
        }
        _ => Err(Error::InvalidArgument(format!(
            "MXFP4 tensors \"{bn}\" ({bd} {bs:?}) and \"{sn}\" ({sd} {ss:?}): expected U8 blocks \
             [.., N, 16] and U8 scales [.., N]"
        ))),
    }
}

/// Writes ggml's MXFP4 blocks into `out` (17 bytes a block) from Hugging Face's layout: in
/// `blocks` byte i of a block holds value 2i in its low nibble and 2i+1 in its high one; ggml's
/// byte j holds value j low and j+16 high, after the block's scale byte (the same E8M0 byte).
pub fn repack(blocks: &[u8], scales: &[u8], out: &mut [u8]) {
    debug_assert_eq!(blocks.len(), scales.len() * CODES);
    debug_assert_eq!(out.len(), scales.len() * (CODES + 1));
    let nibble = |b: &[u8], v: usize| (b[v / 2] >> (4 * (v % 2))) & 0x0f;
    for ((codes, &scale), dst) in blocks
        .chunks_exact(CODES)
        .zip(scales)
        .zip(out.chunks_exact_mut(CODES + 1))
    {
        dst[0] = scale;
        for j in 0..CODES {
            dst[1 + j] = nibble(codes, j) | (nibble(codes, j + CODES) << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FP4 (E2M1) values by code, as the MX specification defines them.
    const E2M1: [f32; 16] = [
        0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
    ];

    #[test]
    fn repacked_blocks_dequantize_to_the_hugging_face_values() {
        let n = 6;
        let blocks: Vec<u8> = (0..n * CODES).map(|i| (i * 37 + 11) as u8).collect();
        let scales: Vec<u8> = (0..n).map(|i| 120 + i as u8).collect();
        let mut out = vec![0u8; n * (CODES + 1)];
        repack(&blocks, &scales, &mut out);
        // Hugging Face's reading (transformers' convert_moe_packed_tensors): value 2i is the
        // low nibble of byte i, 2i+1 its high one, times 2^(scale - 127).
        let mut want = Vec::new();
        for (codes, &s) in blocks.chunks(CODES).zip(&scales) {
            for &b in codes {
                let x = 2f32.powi(i32::from(s) - 127);
                want.push(E2M1[usize::from(b & 15)] * x);
                want.push(E2M1[usize::from(b >> 4)] * x);
            }
        }
        let have = crate::convert::convert_to_new(&out, Dtype::MXFP4, Dtype::F32, 1).unwrap();
        let have: &[f32] = bytemuck::cast_slice(have.as_slice());
        assert_eq!(have, &want[..]);
    }

    #[test]
    fn shapes_must_pair_up() {
        let s = joined_shape(
            ("b", Dtype::U8, &[4, 8, 2, 16]),
            ("s", Dtype::U8, &[4, 8, 2]),
        );
        assert_eq!(s.unwrap(), vec![4, 8, 64]);
        let e = joined_shape(
            ("b", Dtype::U8, &[4, 8, 2, 16]),
            ("s", Dtype::U8, &[4, 8, 3]),
        );
        assert!(e.unwrap_err().to_string().contains("\"s\""));
        assert!(joined_shape(("b", Dtype::F32, &[2, 16]), ("s", Dtype::U8, &[2])).is_err());
    }
}
