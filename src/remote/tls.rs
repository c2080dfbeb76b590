//! TLS for every store: rustls with its *ring* crypto provider. object_store's own TLS choice
//! (aws-lc-rs) is a large C library that dominated the first build of the command; ring gives
//! the same protocols (TLS 1.2 and 1.3, the certificates of the platform's verifier) for a
//! fraction of the build.

/// Makes ring the process's default rustls provider, unless the process already has one: a
/// host that chose its own provider (any, installed before its first remote open) keeps it.
/// reqwest, built without a provider of its own, takes this default when a store connects.
pub(crate) fn ensure_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only when another thread installed one in between: theirs is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
