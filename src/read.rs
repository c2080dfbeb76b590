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
    let queue = std::sync::Mutex::new(dst.chunks_mut(CHUNK).enumerate());
    let failure = std::sync::Mutex::new(None);
    let work = || loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
        let Some((i, part)) = next else { break };
        if let Err(e) = read_exact_at(file, offset + (i * CHUNK) as u64, part) {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            break;
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
