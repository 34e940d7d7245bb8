//! An issuer's published keys, read from a JWKS: each usable signing key with the one
//! algorithm its type allows — RSA → RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA. A key
//! the gateway cannot use (an encryption key, another curve, a symmetric key, an `alg` that
//! is not its type's, a short RSA modulus) is left out rather than failing the whole set, so
//! an issuer that also publishes such keys still works for the ones the gateway can verify.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// Longest RSA modulus accepted, in bytes (8192 bits): past it, verifying is slow work an
/// issuer's JWKS should not be able to make the gateway do.
const MAX_RSA_MODULUS_BYTES: usize = 1024;

/// One key a token may be verified with.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// The keys of one JWKS.
#[derive(Clone, Default)]
pub(crate) struct Keys {
    by_kid: HashMap<String, VerificationKey>,
    /// Keys published without a `kid`: usable only when they are the set's only key.
    without_kid: Vec<VerificationKey>,
}

/// Why a JWKS could not be read at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksError {
    #[error("it is not a JSON object with a `keys` array")]
    NotAJwks,
    #[error("it holds no key the gateway can verify with (RSA, P-256 or Ed25519 signing keys)")]
    NoUsableKey,
}

impl Keys {
    pub fn parse(body: &[u8]) -> Result<Keys, JwksError> {
        let document: Value = serde_json::from_slice(body).map_err(|_| JwksError::NotAJwks)?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError::NotAJwks);
        };
        let mut keys = Keys::default();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            let Some(usable) = usable(&jwk) else {
                continue;
            };
            match jwk.common.key_id {
                // A repeated `kid` keeps its first key: which one a token means is not known.
                Some(kid) => {
                    keys.by_kid.entry(kid).or_insert(usable);
                }
                None => keys.without_kid.push(usable),
            }
        }
        if keys.len() == 0 {
            return Err(JwksError::NoUsableKey);
        }
        Ok(keys)
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// The key a token names; a token without a `kid` may use the set's only key.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerificationKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.len() == 1 => self.by_kid.values().chain(&self.without_kid).next(),
            None => None,
        }
    }
}

/// The key and its one algorithm, when the gateway can verify with it.
fn usable(jwk: &Jwk) -> Option<VerificationKey> {
    if matches!(&jwk.common.public_key_use, Some(usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    let (algorithm, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if !(MIN_RSA_MODULUS_BYTES..=MAX_RSA_MODULUS_BYTES).contains(&significant) {
                return None;
            }
            let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
            (Algorithm::RS256, key)
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            let coordinate =
                |text: &str| URL_SAFE_NO_PAD.decode(text).ok().filter(|c| c.len() == 32);
            coordinate(&ec.x)?;
            coordinate(&ec.y)?;
            (
                Algorithm::ES256,
                DecodingKey::from_ec_components(&ec.x, &ec.y).ok()?,
            )
        }
        // The library's Ed25519 verifier slices the first 32 bytes of the key: anything
        // but exactly 32 is refused here first, or a bad JWKS could crash the gateway.
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            URL_SAFE_NO_PAD
                .decode(&okp.x)
                .ok()
                .filter(|x| x.len() == 32)?;
            (
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(&okp.x).ok()?,
            )
        }
        _ => return None,
    };
    // A key whose `alg` names another algorithm is one its issuer signs with that: the
    // gateway does not accept those tokens, so it does not keep the key.
    if let Some(declared) = jwk.common.key_algorithm
        && Algorithm::try_from(declared).ok() != Some(algorithm)
    {
        return None;
    }
    Some(VerificationKey { algorithm, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed(kid: Option<&str>, x_bytes: usize) -> Value {
        let mut key = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(vec![7u8; x_bytes])});
        if let Some(kid) = kid {
            key["kid"] = json!(kid);
        }
        key
    }

    fn parse(keys: Vec<Value>) -> Result<Keys, JwksError> {
        Keys::parse(json!({ "keys": keys }).to_string().as_bytes())
    }

    #[test]
    fn only_signing_keys_of_the_accepted_types_are_kept() {
        let short_rsa = json!({"kty": "RSA", "kid": "short", "n": URL_SAFE_NO_PAD.encode([0xc1u8; 128]), "e": "AQAB"});
        let rsa = json!({"kty": "RSA", "kid": "rsa", "n": URL_SAFE_NO_PAD.encode([0xc1u8; 256]), "e": "AQAB"});
        let keys = parse(vec![
            ed(Some("ed"), 32),
            ed(Some("short-ed"), 16),
            json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": URL_SAFE_NO_PAD.encode([1u8; 32])}),
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": URL_SAFE_NO_PAD.encode([0xc1u8; 256]), "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "rs512", "alg": "RS512", "n": URL_SAFE_NO_PAD.encode([0xc1u8; 256]), "e": "AQAB"}),
            json!({"kty": "WHAT", "kid": "odd"}),
            short_rsa,
            rsa,
        ])
        .unwrap();
        let mut kept: Vec<&str> = keys.by_kid.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["ed", "rsa"]);
        assert_eq!(keys.find(Some("ed")).unwrap().algorithm, Algorithm::EdDSA);
        assert_eq!(keys.find(Some("rsa")).unwrap().algorithm, Algorithm::RS256);
        assert!(keys.find(None).is_none(), "two keys: a kid is required");
    }

    #[test]
    fn a_token_without_kid_may_use_the_only_key() {
        let keys = parse(vec![ed(None, 32)]).unwrap();
        assert!(keys.find(None).is_some());
        assert!(keys.find(Some("other")).is_none());
        let keys = parse(vec![ed(None, 32), ed(Some("b"), 32)]).unwrap();
        assert!(keys.find(None).is_none());
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(matches!(parse(vec![]), Err(JwksError::NoUsableKey)));
        assert!(matches!(Keys::parse(b"[]"), Err(JwksError::NotAJwks)));
        assert!(matches!(Keys::parse(b"<html>"), Err(JwksError::NotAJwks)));
    }
}
