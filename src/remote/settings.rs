//! How remote models are reached and read: store configuration keys (those of `object_store`'s
//! config enums, on top of what each store reads from the environment), and stload's own
//! settings for parallel reads and retries. Every rule on a value lives in [`RemoteOptions::set`]
//! and [`RemoteOptions::validate`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;
use object_store::ClientConfigKey;

use crate::error::{Error, Result};

/// Ranged reads in flight at once per `load` or `get`, by default. On loopback S3 (s3s-fs, 2
/// cores) 8, 16 and 32 measured within noise of each other (benches/remote.py); 16 leaves room
/// for the latency of a real network, at most 16 chunks of memory in flight.
pub(crate) const DEFAULT_CONCURRENCY: usize = 16;
/// Bytes per ranged read, by default.
pub(crate) const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;
/// Smallest accepted chunk size.
pub(crate) const MIN_CHUNK_SIZE: u64 = 64 << 10;
/// The environment variable naming the cache directory when the `cache_dir` option is unset.
pub const CACHE_DIR_ENV: &str = "STLOAD_CACHE_DIR";

/// Settings for models in object storage or behind HTTP.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// Ranged reads in flight at once (at least 1).
    pub concurrency: usize,
    /// Bytes per ranged read (at least 64 KiB).
    pub chunk_size: u64,
    /// Retries of a request that failed with a 5xx status, throttling or a reset connection.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt of a request.
    pub retry_timeout: Duration,
    /// The first wait before a retry; each later wait doubles, up to 15 s.
    pub init_backoff: Duration,
    /// Store configuration, `(key, value)` in the order set: keys of `object_store`'s
    /// `AmazonS3ConfigKey`, `GoogleConfigKey`, `AzureConfigKey` or `ClientConfigKey` (such as
    /// `aws_endpoint`, `aws_access_key_id`, `aws_region`, `allow_http`, `timeout`). They apply
    /// on top of the environment, to the stores that know them.
    pub config: Vec<(String, String)>,
    /// A directory keeping complete local copies of remote files, keyed by URL, ETag and size,
    /// so a later open reads them from disk. `None`: the directory named by the environment
    /// variable `STLOAD_CACHE_DIR`, if set; an empty path: no cache, whatever the environment
    /// says.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RemoteOptions {
    fn default() -> RemoteOptions {
        RemoteOptions {
            concurrency: DEFAULT_CONCURRENCY,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            init_backoff: Duration::from_millis(100),
            config: Vec::new(),
            cache_dir: None,
        }
    }
}

/// stload's own keys, accepted by [`RemoteOptions::set`] besides the stores' keys.
pub const OWN_KEYS: &[&str] = &[
    "concurrency",
    "chunk_size",
    "max_retries",
    "retry_timeout_ms",
    "init_backoff_ms",
    "cache_dir",
];

impl RemoteOptions {
    /// Sets `key` to `value`: one of stload's own keys (`concurrency`, `chunk_size`,
    /// `max_retries`, `retry_timeout_ms`, `init_backoff_ms`: a number; `cache_dir`: a directory,
    /// empty for none), or a store configuration key of `object_store` (kept for the stores
    /// that know it). An unknown key or a bad number is refused, naming it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let number = || {
            value.trim().parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "remote option \"{key}\": \"{value}\" is not a whole number"
                ))
            })
        };
        let count = |n: u64| {
            usize::try_from(n).map_err(|_| {
                Error::InvalidArgument(format!("remote option \"{key}\": {n} is too large"))
            })
        };
        let mut next = self.clone();
        match key {
            "concurrency" => next.concurrency = count(number()?)?,
            "chunk_size" => next.chunk_size = number()?,
            "max_retries" => next.max_retries = count(number()?)?,
            "retry_timeout_ms" => next.retry_timeout = Duration::from_millis(number()?),
            "init_backoff_ms" => next.init_backoff = Duration::from_millis(number()?),
            "cache_dir" => next.cache_dir = Some(PathBuf::from(value)),
            _ => {
                check_store_key(key)?;
                next.config.retain(|(k, _)| k != key);
                next.config.push((key.to_string(), value.to_string()));
            }
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Checks every setting as [`RemoteOptions::set`] does (for options built as a literal).
    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 {
            return Err(Error::InvalidArgument(
                "remote option \"concurrency\" must be at least 1".into(),
            ));
        }
        if self.chunk_size < MIN_CHUNK_SIZE {
            return Err(Error::InvalidArgument(format!(
                "remote option \"chunk_size\" must be at least {MIN_CHUNK_SIZE} bytes, not {}",
                self.chunk_size
            )));
        }
        for (key, _) in &self.config {
            check_store_key(key)?;
        }
        Ok(())
    }

    /// The cache directory in effect: the `cache_dir` setting, else `$STLOAD_CACHE_DIR`; `None`
    /// when neither names one (an empty setting turns the cache off).
    pub(crate) fn cache_dir(&self) -> Option<PathBuf> {
        match &self.cache_dir {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => std::env::var_os(CACHE_DIR_ENV)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        }
    }

    /// The retry policy of every request.
    pub(crate) fn retry(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.init_backoff,
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// Refuses a key no store knows.
fn check_store_key(key: &str) -> Result<()> {
    let k = key.to_ascii_lowercase();
    let known = AmazonS3ConfigKey::from_str(&k).is_ok()
        || GoogleConfigKey::from_str(&k).is_ok()
        || AzureConfigKey::from_str(&k).is_ok()
        || ClientConfigKey::from_str(&k).is_ok();
    if known {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "unknown remote option \"{key}\" (not one of {} nor an S3, GCS, Azure or HTTP \
             client configuration key)",
            OWN_KEYS.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_when_set() {
        let mut o = RemoteOptions::default();
        o.set("aws_endpoint", "http://127.0.0.1:9000").unwrap();
        o.set("allow_http", "true").unwrap();
        o.set("aws_endpoint", "http://127.0.0.1:9001").unwrap();
        assert_eq!(o.config.len(), 2);
        assert_eq!(o.config[1].1, "http://127.0.0.1:9001");
        o.set("concurrency", "4").unwrap();
        assert_eq!(o.concurrency, 4);
        let err = o.set("no_such_key", "1").unwrap_err().to_string();
        assert!(err.contains("\"no_such_key\""), "{err}");
        let err = o.set("concurrency", "0").unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
        assert_eq!(
            o.concurrency, 4,
            "a refused value leaves the options as they were"
        );
        assert!(o.set("chunk_size", "x").is_err());
        assert!(o.set("chunk_size", "1024").is_err());
        o.set("cache_dir", "some/dir").unwrap();
        assert_eq!(o.cache_dir(), Some(PathBuf::from("some/dir")));
        o.set("cache_dir", "").unwrap();
        assert_eq!(
            o.cache_dir(),
            None,
            "an empty cache_dir turns the cache off"
        );
    }
}
