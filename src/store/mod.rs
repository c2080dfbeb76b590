//! The only place a [`Source`] becomes bytes: zero-copy views of mapped ranges, positioned reads
//! (read mode), gathering pieces and strided views, conversion into new memory, and prefetch.
//! One [`Store`] per model holds its files and how they are read; the model above it asks for
//! tensors by source and never branches on the read mode.

mod materialize;
mod prefetch;
mod read;
#[cfg(feature = "remote")]
mod remote;
#[cfg(not(feature = "remote"))]
#[path = "remote_off.rs"]
mod remote;

use std::sync::Arc;
use std::time::Duration;

use crate::buffer::AlignedBuf;
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::file::ShardFile;
use crate::options::Options;
use crate::shape::Shape;
use crate::source::{Piece, Segment, Source};
use crate::tensor::Tensor;

/// One tensor of [`Store::materialize_each`]: its name, bytes, dimensions and stored dtype,
/// and the dtype it is wanted in (`None`: its bytes are not wanted, e.g. kept from before).
pub(crate) struct Wanted<'a> {
    /// The tensor's name, for messages.
    pub name: &'a str,
    /// Its bytes.
    pub source: &'a Source,
    /// Its dimensions.
    pub shape: &'a Shape,
    /// The stored dtype.
    pub from: Dtype,
    /// The dtype wanted.
    pub to: Option<Dtype>,
}

/// The files of one model and how their bytes are served.
#[derive(Debug)]
pub(crate) struct Store {
    files: Vec<ShardFile>,
    /// Positioned reads into memory instead of mappings.
    read_mode: bool,
    /// How often a file is re-checked before data is served from it.
    check_interval: Duration,
    /// Threads for reads, gathers and conversions.
    threads: usize,
    /// How remote files are read (parallel ranged GETs).
    remote: remote::Plan,
}

impl Store {
    /// A store over `files`, read as `options` say.
    pub fn new(files: Vec<ShardFile>, options: &Options) -> Store {
        Store {
            files,
            read_mode: options.read_mode,
            check_interval: options.check_interval,
            threads: options.effective_threads(),
            remote: remote_plan(options),
        }
    }

    /// The files, in open order.
    pub fn files(&self) -> &[ShardFile] {
        &self.files
    }

    /// Whether [`Store::view`] hands out `source` in place, without a copy.
    pub fn zero_copy(&self, source: &Source) -> bool {
        !self.read_mode
            && matches!(source, Source::Contiguous(s) if self.files[s.file].remote().is_none())
    }

    /// Tensor `name` (elements of `dtype`, dimensions `shape`) as stored in `source`: a
    /// zero-copy view of its mapping when the source is one range (read mode: a read into new
    /// memory), else its pieces gathered into new memory.
    pub fn view(&self, name: &str, source: &Source, dtype: Dtype, shape: Shape) -> Result<Tensor> {
        match source {
            Source::Contiguous(seg) => self.view_segment(name, dtype, shape, *seg),
            Source::Gathered(_) => self.materialize(name, source, &shape, dtype, dtype, false),
        }
    }

    /// New memory holding `source` (elements of `from`, dimensions `shape`) as `to`.
    /// `drop_source` lets converted source pages go from this process's resident memory.
    pub fn materialize(
        &self,
        name: &str,
        source: &Source,
        shape: &Shape,
        from: Dtype,
        to: Dtype,
        drop_source: bool,
    ) -> Result<Tensor> {
        let Some(segments) = source.segments() else {
            let native = self.gather_pieces(name, from, shape, &source.pieces())?;
            return self.convert_owned(name, &native, to);
        };
        if let Some(parts) = self.remote_parts(&segments) {
            let buf = remote::fetch_convert(parts, from, to, self.remote, name)?;
            return Ok(Tensor::owned(to, shape.clone(), Arc::new(buf)));
        }
        if self.read_mode {
            let buf = self.read_segments(name, &segments)?;
            let native = Tensor::owned(from, shape.clone(), Arc::new(buf));
            return self.convert_owned(name, &native, to);
        }
        let parts = self.mapped_parts(name, &segments)?;
        let buf = materialize::convert_parts(&parts, from, to, self.threads, drop_source, name)?;
        Ok(Tensor::owned(to, shape.clone(), Arc::new(buf)))
    }

    /// Writes `source` (elements of `from`, dimensions `shape`) as `to` into `dst`, which must
    /// be exactly that long: memory a caller allocated (an MLX array). Mapped ranges convert
    /// straight into `dst` by all threads, with `drop_source` letting their pages go as
    /// [`Store::materialize`] does; gathered views, read mode and remote files read into new
    /// memory first.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    #[allow(clippy::too_many_arguments)] // materialize's arguments and the output
    pub fn materialize_into(
        &self,
        name: &str,
        source: &Source,
        shape: &Shape,
        from: Dtype,
        to: Dtype,
        dst: &mut [u8],
        drop_source: bool,
    ) -> Result<()> {
        let segments = source.segments();
        if let Some(parts) = segments.as_ref().and_then(|s| self.remote_parts(s)) {
            // Remote bytes arrive converted in new memory (there is no mapping to convert from).
            let buf = remote::fetch_convert(parts, from, to, self.remote, name)?;
            return convert::convert_parallel(buf.as_slice(), to, dst, to, self.threads)
                .map_err(|e| e.in_tensor(name));
        }
        let parts = match segments {
            Some(segments) if !self.read_mode => self.mapped_parts(name, &segments)?,
            _ => {
                let native = self.materialize(name, source, shape, from, from, false)?;
                return convert::convert_parallel(native.data(), from, dst, to, self.threads)
                    .map_err(|e| e.in_tensor(name));
            }
        };
        materialize::convert_parts_into(&parts, from, to, self.threads, drop_source, name, dst)
    }

    /// Runs `each(i, fetched)` for every item of `items`, in order. The items of a remote model
    /// that want bytes (`to` set) arrive fetched, as new memory in dtype `to`: the requests of
    /// later items start while earlier ones finish, at most `concurrency` in flight over the
    /// whole list and at most a window of bytes not yet handed out (see `remote.rs`); an item is
    /// handed out once every byte of it arrived, and after the first error none is. Every other
    /// item (a local file's, which a mapping serves as fast in `each`) arrives as `None`.
    pub fn materialize_each(
        &self,
        items: &[Wanted<'_>],
        mut each: impl FnMut(usize, Option<Tensor>) -> Result<()>,
    ) -> Result<()> {
        let mut list = Vec::new();
        let mut owners = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(to) = item.to else { continue };
            let parts = item.source.segments().and_then(|s| self.remote_parts(&s));
            if let Some(parts) = parts {
                list.push(remote::Fetch {
                    name: item.name,
                    parts,
                    from: item.from,
                    to,
                });
                owners.push(i);
            }
        }
        let mut next = 0;
        remote::fetch_convert_many(&list, self.remote, &mut |k, buf| {
            let i = owners[k];
            for skipped in next..i {
                each(skipped, None)?;
            }
            let tensor = Tensor::owned(list[k].to, items[i].shape.clone(), Arc::new(buf));
            next = i + 1;
            each(i, Some(tensor))
        })?;
        for rest in next..items.len() {
            each(rest, None)?;
        }
        Ok(())
    }

    /// The mapped ranges of `segments`, each file mapped and checked once.
    fn mapped_parts(&self, name: &str, segments: &[Segment]) -> Result<Vec<materialize::Part>> {
        let mut maps: Vec<(usize, Arc<memmap2::Mmap>)> = Vec::new();
        let mut parts = Vec::with_capacity(segments.len());
        for seg in segments {
            let map = match maps.iter().find(|(f, _)| *f == seg.file) {
                Some((_, m)) => Arc::clone(m),
                None => {
                    let m = self.files[seg.file].mapping()?;
                    self.files[seg.file].check(self.check_interval)?;
                    maps.push((seg.file, Arc::clone(&m)));
                    m
                }
            };
            let (offset, len) = self.checked_range(&map, *seg, name)?;
            parts.push(materialize::Part {
                map,
                range: offset..offset + len,
            });
        }
        Ok(parts)
    }

    /// Lets this process's resident copy of the mapped pages of `source`'s byte ranges go (the
    /// page cache keeps them; a later read faults them back in), once their bytes were copied
    /// elsewhere. Nothing in read mode; a file whose mapping cannot be made is skipped.
    pub fn release_pages(&self, source: &Source) {
        if self.read_mode {
            return;
        }
        for piece in source.pieces().iter() {
            if let Piece::Bytes(seg) = piece {
                let Ok(map) = self.files[seg.file].mapping() else {
                    continue;
                };
                if let Some((offset, len)) = mapped_range(&map, seg.offset, seg.len) {
                    materialize::release_pages(&map, offset, len);
                }
            }
        }
    }

    /// A zero-copy view of one byte range (read mode: a read into new memory).
    fn view_segment(&self, name: &str, dtype: Dtype, shape: Shape, seg: Segment) -> Result<Tensor> {
        if let Some(parts) = self.remote_parts(std::slice::from_ref(&seg)) {
            let buf = remote::fetch_convert(parts, dtype, dtype, self.remote, name)?;
            return Ok(Tensor::owned(dtype, shape, Arc::new(buf)));
        }
        if self.read_mode {
            let buf = self.read_segments(name, std::slice::from_ref(&seg))?;
            return Ok(Tensor::owned(dtype, shape, Arc::new(buf)));
        }
        let file = &self.files[seg.file];
        let map = file.mapping()?;
        file.check(self.check_interval)?;
        let (offset, len) = self.checked_range(&map, seg, name)?;
        Ok(Tensor::mapped(dtype, shape, map, offset, len))
    }

    /// The segments as ranges of remote objects when their files are remote (a model's files
    /// are all local or all remote), else `None`.
    #[cfg(feature = "remote")]
    fn remote_parts(&self, segments: &[Segment]) -> Option<Vec<remote::Part>> {
        segments
            .iter()
            .map(|seg| {
                let object = self.files[seg.file].remote()?;
                Some(remote::Part {
                    object: Arc::clone(object),
                    range: seg.offset..seg.offset.saturating_add(seg.len),
                })
            })
            .collect()
    }

    /// `None`: no file is remote in a build without the feature `remote`.
    #[cfg(not(feature = "remote"))]
    fn remote_parts(&self, _: &[Segment]) -> Option<Vec<remote::Part>> {
        None
    }

    /// Reads `segments` (read mode) into new memory, in order.
    fn read_segments(&self, name: &str, segments: &[Segment]) -> Result<AlignedBuf> {
        let total: u64 = segments.iter().map(|s| s.len).sum();
        let len = usize::try_from(total)
            .map_err(|_| Error::OutOfMemory(format!("tensor \"{name}\" does not fit in memory")))?;
        let mut buf = AlignedBuf::new_uninit(len).map_err(|e| {
            Error::OutOfMemory(format!(
                "tensor \"{name}\": cannot allocate {len} bytes: {e}"
            ))
        })?;
        let mut at = 0usize;
        for seg in segments {
            let file = &self.files[seg.file];
            file.check(self.check_interval)?;
            if seg
                .offset
                .checked_add(seg.len)
                .is_none_or(|end| end > file.size())
            {
                return Err(Error::Io {
                    path: file.display().to_string(),
                    message: format!("tensor \"{name}\": data lies outside the file"),
                });
            }
            let n = seg.len as usize;
            self.read_at(seg.file, seg.offset, &mut buf.as_mut_slice()[at..at + n])?;
            at += n;
        }
        Ok(buf)
    }

    /// Reads `dst.len()` bytes of file `file` at `offset` with positioned reads (no mapping, so
    /// a file that shrinks gives an error instead of SIGBUS), large reads split across threads.
    fn read_at(&self, file: usize, offset: u64, dst: &mut [u8]) -> Result<()> {
        let file = &self.files[file];
        let handle = file.handle()?;
        read::read_parallel(&handle, offset, dst, self.threads)
            .map_err(|e| Error::io(file.display(), "cannot read (file changed since open?)", &e))
    }

    /// `native` converted to `dtype` in new memory (itself when the dtype already matches).
    fn convert_owned(&self, name: &str, native: &Tensor, dtype: Dtype) -> Result<Tensor> {
        if native.dtype() == dtype {
            return Ok(native.clone());
        }
        let buf = convert::convert_to_new(native.data(), native.dtype(), dtype, self.threads)
            .map_err(|e| e.in_tensor(name))?;
        let shape = Shape::from_slice(native.shape());
        Ok(Tensor::owned(dtype, shape, Arc::new(buf)))
    }

    /// New memory holding `pieces` (byte ranges and strided views) in the stored dtype.
    fn gather_pieces(
        &self,
        name: &str,
        dtype: Dtype,
        shape: &Shape,
        pieces: &[Piece],
    ) -> Result<Tensor> {
        let total = pieces
            .iter()
            .try_fold(0u64, |acc, p| acc.checked_add(p.len()));
        let len = total.and_then(|t| usize::try_from(t).ok()).ok_or_else(|| {
            Error::OutOfMemory(format!("tensor \"{name}\" does not fit in memory"))
        })?;
        let mut buf = AlignedBuf::new_uninit(len).map_err(|e| {
            Error::OutOfMemory(format!(
                "tensor \"{name}\": cannot allocate {len} bytes: {e}"
            ))
        })?;
        let mut at = 0usize;
        for piece in pieces {
            // Each piece's length fits: their sum does.
            let n = piece.len() as usize;
            let out = &mut buf.as_mut_slice()[at..at + n];
            match piece {
                Piece::Bytes(seg) => {
                    let bytes = Shape::from_slice(&[seg.len]);
                    let part = self.view_segment(name, Dtype::U8, bytes, *seg)?;
                    out.copy_from_slice(part.data());
                }
                Piece::View { file, view } => self.gather_view(*file, view, out)?,
            }
            at += n;
        }
        Ok(Tensor::owned(dtype, shape.clone(), Arc::new(buf)))
    }

    /// Copies the strided view `view` of `file` densely into `out` (`view.nbytes()` long).
    fn gather_view(
        &self,
        file: usize,
        view: &crate::torch::TorchTensor,
        out: &mut [u8],
    ) -> Result<()> {
        let shown = || self.files[file].display().to_string();
        self.files[file].check(self.check_interval)?;
        if self.read_mode {
            // Only the storage record is read; the view is then relative to it.
            let len = usize::try_from(view.storage_len).map_err(|_| {
                Error::OutOfMemory(format!(
                    "{}: storage of \"{}\" too large",
                    shown(),
                    view.name
                ))
            })?;
            let mut storage = vec![0u8; len];
            self.read_at(file, view.storage_start, &mut storage)?;
            let mut relative = view.clone();
            relative.data_offset = relative.data_offset.saturating_sub(view.storage_start);
            relative.storage_start = 0;
            crate::torch::gather_strided(&storage, &relative, out)
        } else {
            let map = self.files[file].mapping()?;
            crate::torch::gather_strided(&map, view, out)
        }
        .map_err(|e| Error::Format(format!("{}: {e}", shown())))
    }

    /// Checks, without reading or copying data, that every file is still the one opened and
    /// that every byte `sources` name (each with its tensor's name) lies inside its file: the
    /// ranges of byte pieces, and the whole storage record of strided views.
    pub fn verify<'a>(&self, sources: impl Iterator<Item = (&'a str, &'a Source)>) -> Result<()> {
        for file in &self.files {
            file.check(Duration::ZERO)?;
        }
        for (name, source) in sources {
            for piece in source.pieces().iter() {
                let (file, start, len) = match piece {
                    Piece::Bytes(seg) => (seg.file, seg.offset, seg.len),
                    Piece::View { file, view } => (*file, view.storage_start, view.storage_len),
                };
                let file = &self.files[file];
                if start.checked_add(len).is_none_or(|end| end > file.size()) {
                    return Err(Error::Io {
                        path: file.display().to_string(),
                        message: format!("tensor \"{name}\": data lies outside the file"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Brings the bytes of `sources` (each with its tensor's name) of local files into memory
    /// ahead of use: the kernel is asked to read ahead and the pages are touched by all
    /// threads. In read mode the data is read once with parallel positioned reads, which fills
    /// the page cache. (Remote files have no page cache: the model fetches their tensors.)
    /// `progress(done, total)` counts bytes; returning false stops with [`Error::Cancelled`].
    pub fn prefetch(
        &self,
        sources: &[(&str, &Source)],
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let mut ranges = Vec::new();
        let mut owners = Vec::new();
        let mut guards: Vec<(usize, Arc<crate::identity::Guard>)> = Vec::new();
        for &(name, source) in sources {
            let segments: Vec<Segment> = source
                .pieces()
                .iter()
                .map(|p| match p {
                    Piece::Bytes(seg) => *seg,
                    Piece::View { file, view } => Segment {
                        file: *file,
                        offset: view.storage_start,
                        len: view.storage_len,
                    },
                })
                .collect();
            for seg in segments {
                if self.read_mode {
                    self.read_segments(name, &[seg])?;
                    continue;
                }
                let guard = match guards.iter().find(|(f, _)| *f == seg.file) {
                    Some((_, g)) => Arc::clone(g),
                    None => {
                        // The file is checked before anything of it is touched.
                        let g = Arc::new(self.files[seg.file].guard()?);
                        guards.push((seg.file, Arc::clone(&g)));
                        g
                    }
                };
                let map = self.files[seg.file].mapping()?;
                let (offset, len) = self.checked_range(&map, seg, name)?;
                ranges.push((map, offset..offset + len, guard));
                owners.push(seg.file);
            }
        }
        match prefetch::touch(&ranges, self.threads, progress) {
            prefetch::Outcome::Done => Ok(()),
            prefetch::Outcome::Cancelled => Err(Error::Cancelled("prefetch cancelled".into())),
            prefetch::Outcome::Changed(k) => Err(Error::Io {
                path: self.files[owners[k]].display().to_string(),
                message: "file changed since open: prefetch stopped".into(),
            }),
        }
    }

    /// Starts touching every file's data pages on a background thread (the `prefetch` option;
    /// nothing in read mode, where there is no mapping to fill).
    pub fn prefetch_in_background(&self) -> Result<()> {
        if self.read_mode {
            return Ok(());
        }
        let mut ranges = Vec::new();
        for f in self.files.iter().filter(|f| f.remote().is_none()) {
            let guard = Arc::new(f.guard()?);
            let map = f.mapping()?;
            let start = (f.data_start() as usize).min(map.len());
            let end = map.len();
            ranges.push((map, start..end, guard));
        }
        prefetch::spawn_background(ranges, self.threads);
        Ok(())
    }

    /// Drops every file's mapping and read handle; they are made again on next use.
    pub fn release(&self) {
        for f in &self.files {
            f.release();
        }
    }

    /// The segment as a `usize` range inside `map`, or an I/O error naming file and tensor.
    fn checked_range(
        &self,
        map: &memmap2::Mmap,
        seg: Segment,
        name: &str,
    ) -> Result<(usize, usize)> {
        mapped_range(map, seg.offset, seg.len).ok_or_else(|| Error::Io {
            path: self.files[seg.file].display().to_string(),
            message: format!("tensor \"{name}\": data lies outside the mapped file"),
        })
    }
}

/// `[offset, offset + len)` as `usize`s when it lies inside `map`.
fn mapped_range(map: &memmap2::Mmap, offset: u64, len: u64) -> Option<(usize, usize)> {
    let offset = usize::try_from(offset).ok()?;
    let len = usize::try_from(len).ok()?;
    (offset.checked_add(len)? <= map.len()).then_some((offset, len))
}

/// How remote files are read, as `options` say.
#[cfg(feature = "remote")]
fn remote_plan(options: &Options) -> remote::Plan {
    remote::Plan {
        threads: options.effective_threads(),
        concurrency: options.remote.concurrency,
        chunk_size: options.remote.chunk_size,
    }
}

/// Nothing to plan: no file is remote in a build without the feature `remote`.
#[cfg(not(feature = "remote"))]
fn remote_plan(_: &Options) -> remote::Plan {
    remote::Plan
}
