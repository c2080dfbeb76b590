//! 8-bit sources (BOOL, U8, I8 and the FP8 types): each of the 256 bytes is converted once by
//! the reference kernel, and conversion becomes a table lookup.

use std::sync::OnceLock;

use super::scalar;
use crate::Dtype;

/// One table: output bits for each input byte (low bytes used for narrower targets).
pub(crate) type Table = [u64; 256];

const SOURCES: [Dtype; 8] = [
    Dtype::Bool,
    Dtype::U8,
    Dtype::I8,
    Dtype::F8E4M3,
    Dtype::F8E5M2,
    Dtype::F8E8M0,
    Dtype::F8E4M3Fnuz,
    Dtype::F8E5M2Fnuz,
];
const TARGETS: [Dtype; 4] = [Dtype::F32, Dtype::F64, Dtype::F16, Dtype::BF16];

static TABLES: [OnceLock<Table>; SOURCES.len() * TARGETS.len()] =
    [const { OnceLock::new() }; SOURCES.len() * TARGETS.len()];

/// The table for an 8-bit source and a float target, built on first use.
pub(crate) fn table(from: Dtype, to: Dtype) -> Option<&'static Table> {
    let s = SOURCES.iter().position(|&d| d == from)?;
    let t = TARGETS.iter().position(|&d| d == to)?;
    let reference = scalar::kernel(from, to)?;
    let size = to.byte_size()?;
    Some(TABLES[s * TARGETS.len() + t].get_or_init(|| {
        let mut table = [0u64; 256];
        for (b, entry) in table.iter_mut().enumerate() {
            let mut out = [0u8; 8];
            reference(&[b as u8], &mut out[..size]);
            *entry = u64::from_le_bytes(out);
        }
        table
    }))
}

/// Looks up every byte of `src`, writing `N` bytes per element into `dst`.
pub(crate) fn lookup<const N: usize>(table: &Table, src: &[u8], dst: &mut [u8]) {
    for (&b, o) in src.iter().zip(dst.chunks_exact_mut(N)) {
        o.copy_from_slice(&table[usize::from(b)].to_le_bytes()[..N]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_exist_for_every_8_bit_source_and_float_target() {
        for from in SOURCES {
            for to in TARGETS {
                assert!(table(from, to).is_some(), "{from} -> {to}");
            }
        }
        assert!(table(Dtype::F16, Dtype::F32).is_none());
        assert!(table(Dtype::U8, Dtype::I8).is_none());
    }

    #[test]
    fn lookup_matches_reference() {
        let src: Vec<u8> = (0..=255).collect();
        for from in SOURCES {
            for to in TARGETS {
                let (Some(t), Some(k), Some(size)) =
                    (table(from, to), scalar::kernel(from, to), to.byte_size())
                else {
                    panic!("missing {from} -> {to}");
                };
                let mut a = vec![0u8; 256 * size];
                let mut b = a.clone();
                k(&src, &mut a);
                match size {
                    2 => lookup::<2>(t, &src, &mut b),
                    4 => lookup::<4>(t, &src, &mut b),
                    _ => lookup::<8>(t, &src, &mut b),
                }
                assert_eq!(a, b, "{from} -> {to}");
            }
        }
    }
}
