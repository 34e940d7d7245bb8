//! The verifier: from a bearer token to a [`VerifiedToken`] or a [`TokenRefusal`].
//!
//! In order: the token's unverified `iss` picks the issuer (an unknown one is refused before
//! any fetch); its header `alg` must be one the gateway ever accepts (never `none` or an
//! HMAC); its `kid` picks the key, reading the issuer's keys if needed; the header `alg`
//! must be the one the key's type allows (a forged `alg` is refused, not obeyed); then the
//! signature, and last the claims (`iss`, `aud`, `exp`, `nbf`, `iat`, lifetime, `sub`).

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::fetch::KeyFetcher;
use super::key_set::{KeyFetchCounts, KeySet};
use super::refusal::{TokenRefusal, shown};
use super::settings::{IssuerSettings, IssuerSettingsError, KeyCacheSettings, check};
use super::token::{Unverified, VerifiedToken, judge};

struct Issuer {
    settings: IssuerSettings,
    keys: Arc<KeySet>,
}

/// Verifies workload tokens against every trusted issuer, holding each one's key cache.
/// It keeps no token: what it is given is read and dropped.
pub struct Verifier {
    /// By exact `iss`.
    issuers: HashMap<String, Issuer>,
    fetcher: Arc<KeyFetcher>,
    cache: KeyCacheSettings,
}

impl Verifier {
    /// A verifier for these issuers; keys are read on first use, or by [`Verifier::warm`].
    pub fn new(
        issuers: Vec<IssuerSettings>,
        cache: KeyCacheSettings,
    ) -> Result<Verifier, IssuerSettingsError> {
        check(&issuers)?;
        let fetcher = Arc::new(KeyFetcher::new(&cache)?);
        Ok(Verifier::assemble(issuers, fetcher, cache, |_| None))
    }

    /// A verifier for a reloaded policy's issuers that keeps the cached keys of every issuer
    /// whose name, `iss` and key source did not change.
    pub fn reconfigured(
        &self,
        issuers: Vec<IssuerSettings>,
    ) -> Result<Verifier, IssuerSettingsError> {
        check(&issuers)?;
        Ok(Verifier::assemble(
            issuers,
            self.fetcher.clone(),
            self.cache.clone(),
            |settings| {
                let old = self.issuers.get(&settings.issuer)?;
                let same = old.settings.name == settings.name && old.settings.keys == settings.keys;
                same.then(|| old.keys.clone())
            },
        ))
    }

    fn assemble(
        issuers: Vec<IssuerSettings>,
        fetcher: Arc<KeyFetcher>,
        cache: KeyCacheSettings,
        kept: impl Fn(&IssuerSettings) -> Option<Arc<KeySet>>,
    ) -> Verifier {
        let issuers = issuers
            .into_iter()
            .map(|settings| {
                let keys =
                    kept(&settings).unwrap_or_else(|| Arc::new(KeySet::new(settings.clone())));
                (settings.issuer.clone(), Issuer { settings, keys })
            })
            .collect();
        Verifier {
            issuers,
            fetcher,
            cache,
        }
    }

    /// Reads every issuer's keys that are not cached yet (within the refresh interval), and
    /// names the issuers still without keys: their tokens are refused until a read works.
    pub async fn warm(&self) -> Vec<String> {
        let mut without = Vec::new();
        for issuer in self.issuers.values() {
            if !issuer.keys.has_keys() {
                issuer
                    .keys
                    .refresh_unless_recent(0, &self.fetcher, &self.cache)
                    .await;
            }
            if !issuer.keys.has_keys() {
                without.push(issuer.settings.name.clone());
            }
        }
        without.sort();
        without
    }

    /// The issuers trusted, in no particular order: to say at start what is trusted.
    pub fn issuers(&self) -> impl Iterator<Item = &IssuerSettings> {
        self.issuers.values().map(|issuer| &issuer.settings)
    }

    /// How often the issuer named `name` had its keys read.
    pub fn fetch_counts(&self, name: &str) -> Option<KeyFetchCounts> {
        self.issuers
            .values()
            .find(|issuer| issuer.settings.name == name)
            .map(|issuer| issuer.keys.counts())
    }

    /// Verifies `token` (the text after `Bearer `) at `now`.
    pub async fn verify(
        &self,
        token: &str,
        now: jiff::Timestamp,
    ) -> Result<VerifiedToken, TokenRefusal> {
        let unverified = Unverified::read(token)?;
        let Some(issuer) = self.issuers.get(&unverified.issuer) else {
            return Err(TokenRefusal::IssuerUnknown {
                issuer: shown(&unverified.issuer),
            });
        };
        // Refused before any key is looked up, so a made-up token cannot make the gateway
        // fetch: only the three algorithms of the key types the gateway reads pass.
        let Some(asked) = accepted_algorithm(&unverified.algorithm) else {
            return Err(TokenRefusal::AlgorithmRefused {
                algorithm: unverified.algorithm,
                expected: None,
            });
        };
        let key = issuer
            .keys
            .key(unverified.kid.as_deref(), &self.fetcher, &self.cache)
            .await?;
        if key.algorithm != asked {
            return Err(TokenRefusal::AlgorithmRefused {
                algorithm: unverified.algorithm,
                expected: Some(algorithm_name(key.algorithm)),
            });
        }
        let mut validation = Validation::new(key.algorithm);
        // The claims are judged below against `now` with the gateway's own refusals; the
        // library checks the header and the signature only.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenRefusal::SignatureInvalid {
                    issuer: issuer.settings.name.clone(),
                },
                _ => TokenRefusal::Malformed {
                    detail: "its header, claims or signature cannot be decoded",
                },
            })?
            .claims;
        judge(&claims, &issuer.settings, now)
    }
}

/// The algorithms of the key types the gateway reads: RSA, P-256 and Ed25519.
fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    }
}
