//! Positioned reads into memory, split across threads: the read mode for file systems where a
//! mapping is unsafe (files that may shrink) or slow (network and FUSE file systems).

use std::fs::File;
use std::io;

/// Reads below this size stay on the calling thread.
const MIN_PARALLEL: usize = 8 << 20;
/// Bytes per read call: large enough for network file systems to stream.
const CHUNK: usize = 4 << 20;

/// Fills `dst` from `file` at `offset`; a short read (the file shrank) is an error.
pub(crate) fn read_parallel(
    file: &File,
    offset: u64,
    dst: &mut [u8],
    threads: usize,
) -> io::Result<()> {
    if dst.len() < MIN_PARALLEL || threads <= 1 {
        return read_exact_at(file, offset, dst);
    }
    crate::parallel::try_for_each(dst.chunks_mut(CHUNK).enumerate(), threads, |(i, part)| {
        read_exact_at(file, offset + (i * CHUNK) as u64, part)
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, offset: u64, dst: &mut [u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(dst, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut offset: u64, mut dst: &mut [u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !dst.is_empty() {
        match file.seek_read(dst, offset)? {
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            n => {
                dst = &mut dst[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
