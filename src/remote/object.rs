//! One remote file as it was at open: where it is, its size and its ETag. Every later read is a
//! ranged GET that sends `If-Match` with that ETag and checks the size and ETag of the
//! response too (for servers that ignore the condition), so an object replaced since open is
//! an I/O error saying "file changed since open", never other bytes. A body shorter than the
//! range asked for is an error, never short data.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};

/// A remote file fixed at open.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    /// The URL and the endpoint, naming the object in the local cache.
    identity: String,
    url: String,
    size: u64,
    etag: Option<String>,
    /// The request timeout in effect, as the settings spell it, for messages.
    timeout: String,
    /// Runtime workers, for the blocking calls.
    threads: usize,
}

/// The chunks of a ranged GET's body, as they arrive.
pub(crate) type Body = BoxStream<'static, object_store::Result<Bytes>>;

impl Object {
    /// The object at `path` of `store`, named `url` in messages and `identity` in the cache,
    /// as the first response showed it: `size` bytes with ETag `etag`; `timeout` is the
    /// request timeout in effect, which messages about a timed-out request name.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
        identity: String,
        url: String,
        size: u64,
        etag: Option<String>,
        timeout: String,
        threads: usize,
    ) -> Object {
        Object {
            store,
            path,
            identity,
            url,
            size,
            etag,
            timeout,
            threads,
        }
    }

    /// The URL, as named in messages.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// What names the object in the local cache: its URL, and the endpoint when the settings
    /// name one.
    pub(crate) fn identity(&self) -> &str {
        &self.identity
    }

    /// The size at open.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The ETag at open, when the store sent one.
    pub(crate) fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// Starts a ranged GET of `range` (inside the object) and returns its body, after checking
    /// that the response is of the object as opened. `what` (e.g. `tensor "x"`) leads messages.
    pub(crate) async fn body(&self, range: Range<u64>, what: &str) -> Result<Body> {
        if range.end > self.size || range.start > range.end {
            return Err(self.error(
                what,
                format!(
                    "bytes {}..{} lie outside the {}-byte object",
                    range.start, range.end, self.size
                ),
            ));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: self.etag.clone(),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.path, options)
            .await
            .map_err(|e| self.failure(what, &range, e))?;
        if result.meta.size != self.size {
            return Err(self.error(
                what,
                format!(
                    "file changed since open: {} bytes then, {} now",
                    self.size, result.meta.size
                ),
            ));
        }
        if self.etag.is_some() && result.meta.e_tag != self.etag {
            return Err(self.error(what, "file changed since open: its etag differs".into()));
        }
        if result.range != range {
            return Err(self.error(
                what,
                format!(
                    "asked for bytes {}..{}, the server sent {}..{}",
                    range.start, range.end, result.range.start, result.range.end
                ),
            ));
        }
        Ok(result.into_stream())
    }

    /// Reads `range` whole into memory (for headers and small files).
    pub(crate) async fn read(&self, range: Range<u64>, what: &str) -> Result<Vec<u8>> {
        let want = range.end - range.start;
        let mut body = self.body(range.clone(), what).await?;
        let mut out = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.broken(what, &range, out.len() as u64, e))?;
            if (out.len() + chunk.len()) as u64 > want {
                return Err(self.too_long(what, &range));
            }
            out.extend_from_slice(&chunk);
        }
        if (out.len() as u64) < want {
            return Err(self.short(what, &range, out.len() as u64));
        }
        Ok(out)
    }

    /// [`Object::read`] from a blocking caller (the growing reads of a GGUF header at open).
    pub(crate) fn read_blocking(&self, range: Range<u64>, what: &str) -> Result<Vec<u8>> {
        super::block_on(self.threads, self.read(range, what))?
    }

    /// Asks the store (HEAD) whether the object is still the one opened.
    pub(crate) fn check(&self) -> Result<()> {
        let meta =
            super::block_on(self.threads, self.store.head(&self.path))?.map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    self.error("", "file changed since open: the object is gone".into())
                }
                e => self.error(
                    "",
                    format!(
                        "cannot ask for its size and etag: {}",
                        describe(&e, &self.timeout)
                    ),
                ),
            })?;
        if meta.size != self.size {
            return Err(self.error(
                "",
                format!(
                    "file changed since open: {} bytes then, {} now",
                    self.size, meta.size
                ),
            ));
        }
        if self.etag.is_some() && meta.e_tag != self.etag {
            return Err(self.error("", "file changed since open: its etag differs".into()));
        }
        Ok(())
    }

    /// An I/O error on this object: `what` (may be empty), then `message`.
    pub(crate) fn error(&self, what: &str, message: String) -> Error {
        let message = if what.is_empty() {
            message
        } else {
            format!("{what}: {message}")
        };
        Error::Io {
            path: self.url.clone(),
            message,
        }
    }

    /// The error for a body that ended after `got` of the bytes of `range`.
    pub(crate) fn short(&self, what: &str, range: &Range<u64>, got: u64) -> Error {
        self.error(
            what,
            format!(
                "the response ended after {got} of the {} bytes {}..{} (truncated body)",
                range.end - range.start,
                range.start,
                range.end
            ),
        )
    }

    /// The error for a body that broke off (after retries) after `got` of the bytes of `range`.
    pub(crate) fn broken(
        &self,
        what: &str,
        range: &Range<u64>,
        got: u64,
        e: object_store::Error,
    ) -> Error {
        self.error(
            what,
            format!(
                "the response broke off after {got} of the {} bytes {}..{} (truncated body): {}",
                range.end - range.start,
                range.start,
                range.end,
                describe(&e, &self.timeout)
            ),
        )
    }

    /// The error for a body longer than its range.
    pub(crate) fn too_long(&self, what: &str, range: &Range<u64>) -> Error {
        self.error(
            what,
            format!(
                "the response to bytes {}..{} is longer than asked for",
                range.start, range.end
            ),
        )
    }

    /// A failed request for `range` as an I/O error.
    pub(crate) fn failure(&self, what: &str, range: &Range<u64>, e: object_store::Error) -> Error {
        let message = match e {
            object_store::Error::Precondition { .. } => {
                "file changed since open: its etag differs (precondition failed)".to_string()
            }
            object_store::Error::NotFound { .. } => {
                "file changed since open: the object is gone".to_string()
            }
            e => format!(
                "cannot read bytes {}..{}: {}",
                range.start,
                range.end,
                describe(&e, &self.timeout)
            ),
        };
        self.error(what, message)
    }
}

/// The text of the store's error `e`; when a request timed out, it says so and names the
/// timeout that expired (`timeout`, the remote option `timeout`), which the HTTP client's own
/// text ("request or response body error") does not.
pub(crate) fn describe(e: &object_store::Error, timeout: &str) -> String {
    if timed_out(e) {
        format!(
            "the request timed out: no complete answer within the timeout of {timeout} (the \
             remote option \"timeout\" bounds each request, body included): {e}"
        )
    } else {
        e.to_string()
    }
}

/// Whether `e` or an error it wraps is a timeout of the HTTP client.
fn timed_out(e: &object_store::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(http) = err.downcast_ref::<object_store::client::HttpError>() {
            if http.kind() == object_store::client::HttpErrorKind::Timeout {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        next = err.source();
    }
    false
}
