//! Stand-in for the remote modules in a build without the feature `remote`: the error every
//! URL and remote setting gets, and an object type with no values, so the code that serves a
//! remote file's bytes compiles unchanged and never runs.

use crate::error::{Error, Result};

/// The error for `what` (a URL or a remote setting) in a build without remote support.
pub(crate) fn disabled(what: &str) -> Error {
    Error::Unsupported(format!(
        "{what}: this build of stload has no remote support (cargo feature \"remote\")"
    ))
}

pub(crate) mod object {
    //! A remote file, which this build cannot have.

    use super::Result;

    /// A remote file: no value of it exists in this build.
    #[derive(Debug)]
    pub(crate) enum Object {}

    impl Object {
        /// The URL, as named in messages.
        pub(crate) fn url(&self) -> &str {
            match *self {}
        }

        /// The size at open.
        pub(crate) fn size(&self) -> u64 {
            match *self {}
        }

        /// Checks that the object is still the one opened.
        pub(crate) fn check(&self) -> Result<()> {
            match *self {}
        }
    }
}
