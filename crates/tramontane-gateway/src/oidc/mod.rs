//! Workload identity: a platform's OIDC token (a Kubernetes projected service-account token,
//! a GitHub Actions token) in `Authorization: Bearer`, beside gateway keys. The policy names
//! the issuers it trusts ([`IssuerSettings`]); the [`Verifier`] checks a token's signature
//! with its issuer's published keys and its claims against the issuer's settings, and gives
//! back what a workload is matched on ([`VerifiedToken`]) or why not ([`TokenRefusal`]).
//!
//! ```ignore
//! let verifier = Verifier::new(issuers, KeyCacheSettings::default())?;
//! let token = verifier.verify(bearer, jiff::Timestamp::now()).await?;
//! let namespace = token.claim("kubernetes.io/namespace");
//! ```

mod fetch;
mod jwks;
mod key_set;
mod refusal;
mod settings;
mod token;
mod verify;

pub use key_set::KeyFetchCounts;
pub use refusal::TokenRefusal;
pub use settings::{IssuerSettings, IssuerSettingsError, KeyCacheSettings, KeySource};
pub use token::{CLOCK_SKEW, MAX_TOKEN_BYTES, VerifiedToken};
pub use verify::Verifier;

#[cfg(test)]
mod tests;
