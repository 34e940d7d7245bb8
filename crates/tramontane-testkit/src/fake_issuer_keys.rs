//! The fake issuer's signing keys, made at run time so no private key sits in the source for
//! a secret scanner to report: P-256 and Ed25519 by ring, RSA by the `rsa` crate (ring only
//! signs with RSA keys, it does not make them). A 2048-bit RSA key takes a moment to find,
//! so the process makes its first few once and hands them out in turn: two RSA keys of one
//! test process may be the same key under two `kid`s. A test that needs a signature by one
//! key to fail under another's `kid` uses P-256 or Ed25519 keys, which are all new.

use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// The kinds of signing key an issuer may publish, each with the one algorithm the gateway
/// accepts for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RS256.
    Rsa,
    /// ES256.
    P256,
    /// EdDSA.
    Ed25519,
}

pub(crate) struct SigningKey {
    pub kid: String,
    pub kind: KeyKind,
    /// PKCS#1 DER for RSA, PKCS#8 DER for the others: what `jsonwebtoken` signs with.
    private_der: Vec<u8>,
    /// The modulus (RSA), the uncompressed point (P-256) or the public key (Ed25519).
    pub public_bytes: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    pub fn generate(kind: KeyKind) -> SigningKey {
        let kid = format!("{}-{:016x}", kind.label(), rand::random::<u64>());
        let random = ring::rand::SystemRandom::new();
        match kind {
            KeyKind::P256 => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
                    .expect("a P-256 key");
                let pair = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8.as_ref(),
                    &random,
                )
                .expect("a P-256 key pair");
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                                 "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                                 "y": URL_SAFE_NO_PAD.encode(&point[33..])});
                SigningKey {
                    kid,
                    kind,
                    private_der: pkcs8.as_ref().to_vec(),
                    public_bytes: point,
                    jwk,
                }
            }
            KeyKind::Ed25519 => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).expect("an Ed25519 key");
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("an Ed25519 pair");
                let public = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                                 "x": URL_SAFE_NO_PAD.encode(&public)});
                SigningKey {
                    kid,
                    kind,
                    private_der: pkcs8.as_ref().to_vec(),
                    public_bytes: public,
                    jwk,
                }
            }
            KeyKind::Rsa => {
                let key = next_rsa_key();
                let modulus = key.n_bytes().to_vec();
                let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                                 "n": URL_SAFE_NO_PAD.encode(&modulus),
                                 "e": URL_SAFE_NO_PAD.encode(key.e_bytes())});
                SigningKey {
                    kid,
                    kind,
                    private_der: key
                        .to_pkcs1_der()
                        .expect("a PKCS#1 document")
                        .as_bytes()
                        .to_vec(),
                    public_bytes: modulus,
                    jwk,
                }
            }
        }
    }

    pub fn public_jwk(&self) -> Value {
        self.jwk.clone()
    }

    pub fn algorithm_name(&self) -> &'static str {
        match self.kind {
            KeyKind::Rsa => "RS256",
            KeyKind::P256 => "ES256",
            KeyKind::Ed25519 => "EdDSA",
        }
    }

    /// The base64url signature of `message` with the key's own algorithm.
    pub fn sign(&self, message: &[u8]) -> String {
        let (key, algorithm) = match self.kind {
            KeyKind::Rsa => (
                EncodingKey::from_rsa_der(&self.private_der),
                Algorithm::RS256,
            ),
            KeyKind::P256 => (
                EncodingKey::from_ec_der(&self.private_der),
                Algorithm::ES256,
            ),
            KeyKind::Ed25519 => (
                EncodingKey::from_ed_der(&self.private_der),
                Algorithm::EdDSA,
            ),
        };
        jsonwebtoken::crypto::sign(message, &key, algorithm).expect("a signature")
    }
}

impl KeyKind {
    fn label(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::P256 => "p256",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

/// RSA keys found so far in this process, and how many were handed out.
static RSA_KEYS: OnceLock<Mutex<(Vec<rsa::PrivateKey>, usize)>> = OnceLock::new();

/// Keys are handed out in turn from a small pool, so a test that rotates RSA keys gets a new
/// one and a test binary finds at most this many.
const RSA_POOL: usize = 3;

fn next_rsa_key() -> rsa::PrivateKey {
    let pool = RSA_KEYS.get_or_init(|| Mutex::new((Vec::new(), 0)));
    let mut pool = pool.lock().unwrap();
    let index = pool.1 % RSA_POOL;
    pool.1 += 1;
    if pool.0.len() <= index {
        let key = rsa::PrivateKey::new(&mut SystemRng, 2048).expect("an RSA key");
        pool.0.push(key);
    }
    pool.0[index].clone()
}

/// ring's system generator as the `rand_core` one the `rsa` crate asks for.
struct SystemRng;

impl rsa::rand_core::TryRng for SystemRng {
    // The system generator does not fail on a test machine; if it did, the test should stop.
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0; 4];
        let Ok(()) = self.try_fill_bytes(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0; 8];
        let Ok(()) = self.try_fill_bytes(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), Self::Error> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), destination)
            .expect("the system's random generator");
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for SystemRng {}
