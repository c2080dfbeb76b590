//! Stand-in for `remote.rs` in a build without the feature `remote`: a URL given to open is
//! refused as unsupported, naming it (never read as a local path).

use super::Model;
use crate::error::Result;
use crate::options::Options;

impl Model {
    /// Refuses the URL prefix `url`.
    pub(super) fn open_remote_dir(url: &str, _: &Options) -> Result<Model> {
        Err(crate::remote::disabled(url))
    }

    /// Refuses to fetch the side files under the URL prefix `url`.
    pub(super) fn fetch_side_files(url: &str, _: &Options) -> Result<crate::side_files::SideFiles> {
        Err(crate::remote::disabled(url))
    }

    /// Refuses the URLs `urls` (the first one is named).
    pub(super) fn open_remote_files(
        urls: &[&str],
        _: usize,
        _: &Options,
        _: Option<std::sync::Arc<crate::side_files::SideFiles>>,
    ) -> Result<Model> {
        Err(crate::remote::disabled(
            urls.first().copied().unwrap_or("remote files"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, Model, Options};

    /// What a build without remote support answers: every entry point refuses a URL or a
    /// remote setting as unsupported, naming it and the missing feature, and never opens a
    /// local path of the same text.
    #[test]
    fn remote_disabled() {
        let unsupported = |e: Error, what: &str| match e {
            Error::Unsupported(m) => assert!(
                m.contains(what) && m.contains("no remote support") && m.contains("\"remote\""),
                "{m}"
            ),
            other => panic!("{what}: want Unsupported, got {other:?}"),
        };
        let options = Options::default();
        for url in [
            "s3://bucket/model/",
            "gs://b/p",
            "az://c/p/",
            "https://host/m/",
        ] {
            unsupported(Model::open_dir(url, &options).unwrap_err(), url);
        }
        let files = ["http://host/m/model.safetensors", "s3://b/m/x.safetensors"];
        unsupported(
            Model::open_files(&files, &options).unwrap_err(),
            "http://host/m/model.safetensors",
        );
        let mut options = Options::default();
        unsupported(
            options.set_remote("concurrency", "4").unwrap_err(),
            "remote option \"concurrency\"",
        );
        unsupported(
            options.set_remote("aws_endpoint", "http://x").unwrap_err(),
            "remote option \"aws_endpoint\"",
        );
    }
}
