//! The TLS provider of every HTTPS client tramontane makes: rustls on ring.
//!
//! reqwest is built without a provider of its own (its default brings aws-lc-rs, a C library
//! that dominates a cold build), so it uses the process's default provider, and so does a
//! `rediss://` store. A program that makes a client calls this first; the library's clients
//! call it too, so an embedding program that forgets gets ring rather than a panic.

/// Makes ring the process's default rustls provider, unless one is installed already (the
/// embedding program's choice stands). Cheap and idempotent.
pub fn install_default_provider() {
    // `Err` only says a default exists already, which is what this ensures.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
