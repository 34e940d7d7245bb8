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

/// Whether plain HTTP to `host` stays on this machine: `localhost` or a loopback address
/// (`127.0.0.0/8`, `::1`, bracketed or not). Anywhere else, what is sent (a key, a token, a
/// key set) must go over HTTPS.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_loopback() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "[::2]",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
