//! A connection to one store, made from a URL: the `object_store` builder of its scheme,
//! configured from the environment as the store's own tools read it (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`), then from the caller's [`RemoteOptions`]. Lists prefixes, reads small files, and
//! opens files with one speculative ranged GET each, in parallel.

use std::str::FromStr;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientConfigKey, GetOptions, GetRange, ObjectStore, ObjectStoreExt, ObjectStoreScheme,
};
use url::Url;

use super::object::{describe, Object};
use super::{RemoteOptions, HEADER_PREFETCH};
use crate::error::{Error, Result};

/// object_store's request timeout when the settings name none (`ClientOptions`' default).
const DEFAULT_TIMEOUT: &str = "30s";

/// Bytes of the little-endian header length that starts a safetensors file.
const LEN_BYTES: u64 = 8;

/// One store and how to name its objects.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    store: Arc<dyn ObjectStore>,
    /// `scheme://authority` of the URL, naming objects in messages.
    origin: String,
    /// The endpoint the settings name for a bucket URL (`AWS_ENDPOINT_URL`, ...): with the
    /// URL, what identifies an object in the local cache.
    endpoint: Option<String>,
    /// The request timeout in effect, as the settings spell it, for messages.
    timeout: String,
    /// Runtime workers.
    threads: usize,
    /// Requests in flight at once.
    concurrency: usize,
    /// Whether the store is plain HTTP, which cannot list.
    http: bool,
}

/// Connects to the store of `url` and returns it with the path `url` names in it.
pub(crate) fn connect(
    url: &str,
    options: &RemoteOptions,
    threads: usize,
) -> Result<(Connection, ObjectPath)> {
    let bad = |rule: String| Error::InvalidArgument(format!("{url}: {rule}"));
    let parsed = Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        // The stores build each request's URL from the path alone: a query (a token, a
        // signature) would be dropped from every request, and a fragment taken for nothing.
        // The URL is shown without it, which may hold a secret.
        let base = url.split(['?', '#']).next().unwrap_or_default();
        return Err(Error::InvalidArgument(format!(
            "{base}: a URL with a query string or fragment (\"?...\", \"#...\") is not \
             supported, as its requests would be sent without it: give credentials as remote \
             options or in the environment instead"
        )));
    }
    let (scheme, path) = ObjectStoreScheme::parse(&parsed)
        .map_err(|e| bad(format!("not a URL of a known store: {e}")))?;
    let built = |e: object_store::Error| bad(format!("cannot configure the store: {e}"));
    let retry = options.retry();
    let origin = parsed[..url::Position::BeforePath].to_string();
    let mut http = false;
    // The server a bucket URL names only together with the settings (a plain HTTP URL names
    // its server itself).
    let mut endpoint = None;
    // The request timeout in effect (the store's setting, else object_store's default), which
    // a message about a timed-out request names.
    let mut timeout = None;
    // Each builder makes its HTTP client now, and the client takes the TLS provider then.
    super::tls::ensure_provider();
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env().with_url(url).with_retry(retry);
            for (k, v) in &options.config {
                if let Ok(key) = AmazonS3ConfigKey::from_str(&k.to_ascii_lowercase()) {
                    b = b.with_config(key, v);
                }
            }
            endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
            timeout = b.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::Timeout));
            Arc::new(b.build().map_err(built)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry);
            for (k, v) in &options.config {
                if let Ok(key) = GoogleConfigKey::from_str(&k.to_ascii_lowercase()) {
                    b = b.with_config(key, v);
                }
            }
            endpoint = b.get_config_value(&GoogleConfigKey::BaseUrl);
            timeout = b.get_config_value(&GoogleConfigKey::Client(ClientConfigKey::Timeout));
            Arc::new(b.build().map_err(built)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry);
            for (k, v) in &options.config {
                if let Ok(key) = AzureConfigKey::from_str(&k.to_ascii_lowercase()) {
                    b = b.with_config(key, v);
                }
            }
            endpoint = b.get_config_value(&AzureConfigKey::Endpoint);
            timeout = b.get_config_value(&AzureConfigKey::Client(ClientConfigKey::Timeout));
            Arc::new(b.build().map_err(built)?)
        }
        ObjectStoreScheme::Http => {
            http = true;
            // The caller wrote http:// on purpose: plain HTTP is allowed for that URL.
            let mut b = HttpBuilder::new()
                .with_url(origin.clone())
                .with_retry(retry)
                .with_config(ClientConfigKey::AllowHttp, "true");
            for (k, v) in &options.config {
                if let Ok(key) = ClientConfigKey::from_str(&k.to_ascii_lowercase()) {
                    if key == ClientConfigKey::Timeout {
                        timeout = Some(v.clone());
                    }
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.build().map_err(built)?)
        }
        other => return Err(bad(format!("{other:?} locations are not remote stores"))),
    };
    let connection = Connection {
        store,
        origin,
        endpoint: endpoint.filter(|e| !e.is_empty()),
        timeout: timeout.unwrap_or_else(|| DEFAULT_TIMEOUT.to_string()),
        threads,
        concurrency: options.concurrency,
        http,
    };
    Ok((connection, path))
}

impl Connection {
    /// The URL of `path`, as named in messages.
    pub(crate) fn url(&self, path: &ObjectPath) -> String {
        format!("{}/{}", self.origin, path)
    }

    /// What names `url` (of this store) in the local cache: the URL, and the endpoint when the
    /// settings name one, so the same bucket and key at two servers are two objects.
    pub(crate) fn identity(&self, url: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{url} at {endpoint}"),
            None => url.to_string(),
        }
    }

    /// Whether the store can list a prefix (plain HTTP cannot).
    pub(crate) fn can_list(&self) -> bool {
        !self.http
    }

    /// The path of `url` in this store when `url` is on it (same scheme and authority).
    pub(crate) fn path_of(&self, url: &str) -> Option<ObjectPath> {
        let parsed = Url::parse(url).ok()?;
        if parsed[..url::Position::BeforePath] != self.origin {
            return None;
        }
        ObjectStoreScheme::parse(&parsed).ok().map(|(_, p)| p)
    }

    /// `path` joined with the relative `name` (`a/b.safetensors`), refusing a name that would
    /// leave `path`: empty parts, `.`, `..`, a scheme, a backslash.
    pub(crate) fn join(&self, path: &ObjectPath, name: &str) -> Result<ObjectPath> {
        let refused = || {
            Error::Format(format!(
                "{}: \"{name}\" is not a file name inside the model's prefix: refused",
                self.url(path)
            ))
        };
        if name.contains("://") || name.contains('\\') {
            return Err(refused());
        }
        let mut out = path.clone();
        for part in name.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(refused());
            }
            out = out.clone().join(part);
        }
        Ok(out)
    }

    /// The names of the files directly under `prefix` (none for a plain HTTP server, which
    /// cannot list).
    pub(crate) fn list(&self, prefix: &ObjectPath) -> Result<Vec<String>> {
        if self.http {
            return Ok(Vec::new());
        }
        let store = Arc::clone(&self.store);
        let listing = super::block_on(self.threads, async move {
            store.list_with_delimiter(Some(prefix)).await
        })?
        .map_err(|e| Error::Io {
            path: self.url(prefix),
            message: format!("cannot list the prefix: {}", describe(&e, &self.timeout)),
        })?;
        Ok(listing
            .objects
            .iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect())
    }

    /// The whole small file `path` (JSON beside the weights), `None` when it does not exist;
    /// more than `limit` bytes is refused.
    pub(crate) fn read_small(&self, path: &ObjectPath, limit: u64) -> Result<Option<Vec<u8>>> {
        let url = self.url(path);
        let store = Arc::clone(&self.store);
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..limit.saturating_add(1))),
            ..GetOptions::default()
        };
        let got = super::block_on(self.threads, async move {
            let result = store.get_opts(path, options).await?;
            let size = result.meta.size;
            result.bytes().await.map(|b| (size, b))
        })?;
        let (size, bytes) = match got {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => {
                return Err(Error::Io {
                    path: url,
                    message: format!("cannot read: {}", describe(&e, &self.timeout)),
                })
            }
        };
        if size > limit || bytes.len() as u64 > limit {
            return Err(Error::Limit(format!(
                "{url}: {size} bytes, over the limit of {limit} bytes for JSON files beside the \
                 weights (raise max_json_size to accept it)"
            )));
        }
        if (bytes.len() as u64) < size {
            return Err(Error::Io {
                path: url,
                message: format!(
                    "the response ended after {} of {size} bytes (truncated body)",
                    bytes.len()
                ),
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Opens every file of `paths` with one ranged GET of its first [`HEADER_PREFETCH`] bytes
    /// (a second only when a header of at most `max_header` bytes is longer), in parallel.
    /// Returns each file's object and its first bytes, covering the whole header when it fits
    /// the limit and the file: the caller parses and checks it.
    pub(crate) fn open_files(
        &self,
        paths: &[ObjectPath],
        max_header: u64,
    ) -> Result<Vec<(Object, Vec<u8>)>> {
        // Futures made first, then polled a few at a time, in order.
        let opens: Vec<_> = paths.iter().map(|p| self.open_one(p, max_header)).collect();
        let opened = super::block_on(self.threads, async {
            futures::stream::iter(opens)
                .buffered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await
        })?;
        opened
    }

    /// Asks every object of `paths` for its size and ETag, one HEAD each, in parallel (for the
    /// cache, which needs no bytes to tell whether its copy is current).
    pub(crate) fn head_files(&self, paths: &[ObjectPath]) -> Result<Vec<Object>> {
        self.head_existing(paths)?
            .into_iter()
            .zip(paths)
            .map(|(object, path)| {
                object.ok_or_else(|| Error::Io {
                    path: self.url(path),
                    message: "cannot open: not found".to_string(),
                })
            })
            .collect()
    }

    /// Like [`Connection::head_files`], with `None` for the objects that do not exist (the
    /// optional files beside the weights, which a plain HTTP server cannot list).
    pub(crate) fn head_existing(&self, paths: &[ObjectPath]) -> Result<Vec<Option<Object>>> {
        let heads: Vec<_> = paths.iter().map(|p| self.head_one(p)).collect();
        super::block_on(self.threads, async {
            futures::stream::iter(heads)
                .buffered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await
        })?
    }

    /// The object at `path` as it is now, `None` when it does not exist.
    async fn head_one(&self, path: &ObjectPath) -> Result<Option<Object>> {
        let url = self.url(path);
        let meta = match self.store.head(path).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => {
                return Err(Error::Io {
                    path: url,
                    message: format!("cannot open: {}", describe(&e, &self.timeout)),
                })
            }
        };
        Ok(Some(Object::new(
            Arc::clone(&self.store),
            path.clone(),
            self.identity(&url),
            url,
            meta.size,
            meta.e_tag,
            self.timeout.clone(),
            self.threads,
        )))
    }

    async fn open_one(&self, path: &ObjectPath, max_header: u64) -> Result<(Object, Vec<u8>)> {
        let url = self.url(path);
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..HEADER_PREFETCH)),
            ..GetOptions::default()
        };
        let failed = |e: object_store::Error| Error::Io {
            path: url.clone(),
            message: match e {
                object_store::Error::NotFound { .. } => "cannot open: not found".to_string(),
                e => format!("cannot open: {}", describe(&e, &self.timeout)),
            },
        };
        let result = self.store.get_opts(path, options).await.map_err(failed)?;
        let object = Object::new(
            Arc::clone(&self.store),
            path.clone(),
            self.identity(&url),
            url.clone(),
            result.meta.size,
            result.meta.e_tag.clone(),
            self.timeout.clone(),
            self.threads,
        );
        let want = result.range.end - result.range.start;
        let first = result
            .bytes()
            .await
            .map_err(|e| object.broken("header", &(0..want), 0, e))?;
        if first.len() as u64 != want {
            return Err(object.short("header", &(0..want), first.len() as u64));
        }
        let bytes = rest_of_header(&object, first.to_vec(), max_header).await?;
        Ok((object, bytes))
    }

    /// The first bytes of every object of `objects` as [`Connection::open_files`] fetches
    /// them (its first [`HEADER_PREFETCH`] bytes, and the rest of a safetensors header of at
    /// most `max_header` bytes), read with the objects' `If-Match`, in parallel: what the
    /// cache checks before it downloads a file whole.
    pub(crate) fn read_headers(
        &self,
        objects: &[&Object],
        max_header: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let reads: Vec<_> = objects
            .iter()
            .map(|object| async move {
                let first = object
                    .read(0..HEADER_PREFETCH.min(object.size()), "header")
                    .await?;
                rest_of_header(object, first, max_header).await
            })
            .collect();
        super::block_on(self.threads, async {
            futures::stream::iter(reads)
                .buffered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await
        })?
    }
}

/// `bytes` (the first bytes of `object`) with the rest of the safetensors header they start
/// fetched, when its length is at most `max_header` and inside the object (past the limit or
/// the file, the caller refuses the header with the local rules). A GGUF file's first bytes
/// are no length: they are left as they are, for its reader to fetch more as it parses.
async fn rest_of_header(object: &Object, mut bytes: Vec<u8>, max_header: u64) -> Result<Vec<u8>> {
    if bytes.starts_with(&crate::gguf_format::MAGIC) {
        return Ok(bytes);
    }
    if let Some(len) = bytes.get(..LEN_BYTES as usize) {
        let mut n = [0u8; LEN_BYTES as usize];
        n.copy_from_slice(len);
        let end = LEN_BYTES.saturating_add(u64::from_le_bytes(n));
        let fetched = bytes.len() as u64;
        if end > fetched && end - LEN_BYTES <= max_header && end <= object.size() {
            let rest = object.read(fetched..end, "header").await?;
            bytes.extend_from_slice(&rest);
        }
    }
    Ok(bytes)
}
