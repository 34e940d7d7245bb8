//! A fake OIDC issuer on loopback, for the gateway's workload-identity tests: it holds
//! signing keys of each kind the gateway accepts (RSA, P-256, Ed25519), made at run time,
//! serves `/.well-known/openid-configuration` and its JWKS, mints tokens with any claims and
//! any header (a forged `alg`, another `kid`, no signature), rotates its keys, counts what it
//! was asked for, writes its JWKS to a file for issuers whose keys are copied out of band,
//! and can go away.
//!
//! ```no_run
//! use tramontane_testkit::fake_issuer::{FakeIssuer, KeyKind};
//! let issuer = FakeIssuer::start();
//! let token = issuer.token().key(KeyKind::P256).claim("sub", "app").mint();
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

pub use crate::fake_issuer_keys::KeyKind;
use crate::fake_issuer_keys::SigningKey;

/// The audience tokens carry unless a test says otherwise.
pub const AUDIENCE: &str = "tramontane";
/// The subject tokens carry unless a test says otherwise: a Kubernetes service account.
pub const SUBJECT: &str = "system:serviceaccount:team:app";
/// How long a token lives unless a test says otherwise.
pub const LIFETIME: Duration = Duration::from_secs(600);

/// What happens to the keys a rotation replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Still published, as an issuer does while tokens signed with them are alive.
    KeepOld,
    /// Gone from the JWKS; tokens can still be minted with them, to show they are refused.
    DropOld,
}

struct IssuerState {
    issuer: String,
    /// Published in the JWKS, newest first; the first of a kind signs by default.
    published: Mutex<Vec<Arc<SigningKey>>>,
    /// Every key the issuer ever had, published or not.
    every: Mutex<Vec<Arc<SigningKey>>>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    /// Pause before a JWKS answer: lets concurrent refreshes overlap.
    jwks_delay: Mutex<Duration>,
    /// While set, the JWKS answers 500.
    jwks_failing: Mutex<bool>,
}

impl IssuerState {
    fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .published
            .lock()
            .unwrap()
            .iter()
            .map(|key| key.public_jwk())
            .collect();
        json!({ "keys": keys })
    }
}

pub struct FakeIssuer {
    /// Where it serves, `http://127.0.0.1:PORT`; also its `iss`.
    pub url: String,
    state: Arc<IssuerState>,
    /// Dropped whole to go away: every connection closes with it.
    runtime: Option<tokio::runtime::Runtime>,
}

/// How the fake starts.
pub struct FakeIssuerBuilder {
    kinds: Vec<KeyKind>,
    jwks_delay: Duration,
}

impl FakeIssuerBuilder {
    /// Holds one key of each kind given (by default one of every kind).
    pub fn keys(mut self, kinds: &[KeyKind]) -> FakeIssuerBuilder {
        self.kinds = kinds.to_vec();
        self
    }

    pub fn jwks_delay(mut self, delay: Duration) -> FakeIssuerBuilder {
        self.jwks_delay = delay;
        self
    }

    /// Serves on a free loopback port from a runtime of its own, so both synchronous tests
    /// and `#[tokio::test]`s can use it.
    pub fn start(self) -> FakeIssuer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        // Bound outside the runtime: `block_on` would panic inside an async test.
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let keys: Vec<Arc<SigningKey>> = self
            .kinds
            .iter()
            .map(|kind| Arc::new(SigningKey::generate(*kind)))
            .collect();
        let state = Arc::new(IssuerState {
            issuer: url.clone(),
            published: Mutex::new(keys.clone()),
            every: Mutex::new(keys),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            jwks_delay: Mutex::new(self.jwks_delay),
            jwks_failing: Mutex::new(false),
        });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .route("/jwks", axum::routing::get(jwks))
            .with_state(state.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let _ = axum::serve(listener, app).await;
        });
        FakeIssuer {
            url,
            state,
            runtime: Some(runtime),
        }
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Response {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks", state.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *state.jwks_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if *state.jwks_failing.lock().unwrap() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down for maintenance").into_response();
    }
    axum::Json(state.jwks()).into_response()
}

impl FakeIssuer {
    /// An issuer with one key of every kind.
    pub fn start() -> FakeIssuer {
        FakeIssuer::builder().start()
    }

    pub fn builder() -> FakeIssuerBuilder {
        FakeIssuerBuilder {
            kinds: vec![KeyKind::Rsa, KeyKind::P256, KeyKind::Ed25519],
            jwks_delay: Duration::ZERO,
        }
    }

    /// The `iss` its tokens carry, which is also where discovery starts.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    /// The JWKS as served now.
    pub fn jwks(&self) -> Value {
        self.state.jwks()
    }

    /// Writes the JWKS as served now to `path`, as an operator copies a cluster's keys.
    pub fn write_jwks(&self, path: &Path) {
        std::fs::write(path, self.jwks().to_string()).expect("the JWKS file is written");
    }

    /// The `kid` of the key that signs tokens of `kind` by default.
    pub fn kid(&self, kind: KeyKind) -> String {
        self.default_key(kind).kid.clone()
    }

    /// Adds a new key of `kind` (a new `kid`), which from now on signs tokens of its kind.
    pub fn rotate(&self, kind: KeyKind, rotation: Rotation) -> String {
        let key = Arc::new(SigningKey::generate(kind));
        let kid = key.kid.clone();
        let mut published = self.state.published.lock().unwrap();
        if rotation == Rotation::DropOld {
            published.retain(|old| old.kind != kind);
        }
        published.insert(0, key.clone());
        self.state.every.lock().unwrap().push(key);
        kid
    }

    /// How many times the JWKS was asked for.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was asked for.
    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    pub fn set_jwks_delay(&self, delay: Duration) {
        *self.state.jwks_delay.lock().unwrap() = delay;
    }

    /// While `failing`, the JWKS answers 500: an issuer that is up but broken.
    pub fn set_jwks_failing(&self, failing: bool) {
        *self.state.jwks_failing.lock().unwrap() = failing;
    }

    /// Goes away: the port stops answering and every open connection is closed.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// A token signed by the newest published key (of any kind: say which with
    /// [`TokenBuilder::key`]), from this issuer, for [`AUDIENCE`] and [`SUBJECT`], issued now
    /// and living [`LIFETIME`], with a fresh `jti`.
    pub fn token(&self) -> TokenBuilder {
        let key = self.state.published.lock().unwrap()[0].clone();
        let now = jiff::Timestamp::now().as_second();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.state.issuer));
        claims.insert("sub".into(), json!(SUBJECT));
        claims.insert("aud".into(), json!(AUDIENCE));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + LIFETIME.as_secs() as i64));
        claims.insert(
            "jti".into(),
            json!(format!("jti-{}", rand::random::<u64>())),
        );
        TokenBuilder {
            every: self.state.every.lock().unwrap().clone(),
            key,
            header: Map::new(),
            claims,
            signing: Signing::Key,
        }
    }

    fn default_key(&self, kind: KeyKind) -> Arc<SigningKey> {
        self.state
            .published
            .lock()
            .unwrap()
            .iter()
            .find(|key| key.kind == kind)
            .cloned()
            .unwrap_or_else(|| panic!("the issuer publishes no {kind:?} key"))
    }
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        // Not a plain drop: dropping a runtime inside an async test panics.
        self.stop();
    }
}

/// How a minted token is signed.
enum Signing {
    /// By the chosen key, with its own algorithm (whatever the header says).
    Key,
    /// `alg: none` and an empty signature.
    Unsigned,
    /// HMAC-SHA256 keyed with the chosen key's public bytes, the classic confusion attack
    /// on a verifier that lets the header pick the algorithm.
    HmacWithPublicKey,
}

/// A token to mint: claims and header start from the issuer's defaults and can be changed
/// one by one.
pub struct TokenBuilder {
    every: Vec<Arc<SigningKey>>,
    key: Arc<SigningKey>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing: Signing,
}

impl TokenBuilder {
    /// Signed by the issuer's current key of `kind`.
    pub fn key(mut self, kind: KeyKind) -> TokenBuilder {
        self.key = self
            .every
            .iter()
            .rev()
            .find(|key| key.kind == kind)
            .cloned()
            .unwrap_or_else(|| panic!("the issuer has no {kind:?} key"));
        self
    }

    /// Signed by the key with this `kid`, published or not.
    pub fn kid_key(mut self, kid: &str) -> TokenBuilder {
        self.key = self
            .every
            .iter()
            .find(|key| key.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("the issuer never had a key `{kid}`"));
        self
    }

    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> TokenBuilder {
        self.claims.insert(name.into(), value.into());
        self
    }

    pub fn without_claim(mut self, name: &str) -> TokenBuilder {
        self.claims.remove(name);
        self
    }

    /// Issued at `issued_at`, living `lifetime`.
    pub fn issued(self, issued_at: jiff::Timestamp, lifetime: Duration) -> TokenBuilder {
        let iat = issued_at.as_second();
        self.claim("iat", iat)
            .claim("exp", iat + lifetime.as_secs() as i64)
    }

    /// Sets a header field over what the key would put there (`alg`, `kid`, `typ`).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> TokenBuilder {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Leaves a header field out (`kid`).
    pub fn without_header(mut self, name: &str) -> TokenBuilder {
        self.header.insert(name.into(), Value::Null);
        self
    }

    /// `alg: none`, no signature.
    pub fn unsigned(mut self) -> TokenBuilder {
        self.signing = Signing::Unsigned;
        self.header("alg", "none")
    }

    /// `alg: HS256`, an HMAC keyed with the signing key's public bytes.
    pub fn hmac_with_public_key(mut self) -> TokenBuilder {
        self.signing = Signing::HmacWithPublicKey;
        self.header("alg", "HS256")
    }

    pub fn mint(self) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), json!(self.key.algorithm_name()));
        header.insert("typ".into(), json!("JWT"));
        header.insert("kid".into(), json!(self.key.kid));
        for (name, value) in self.header {
            if value.is_null() {
                header.remove(&name);
            } else {
                header.insert(name, value);
            }
        }
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(self.claims).to_string())
        );
        let signature = match self.signing {
            Signing::Key => self.key.sign(message.as_bytes()),
            Signing::Unsigned => String::new(),
            Signing::HmacWithPublicKey => jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(&self.key.public_bytes).expect("an HMAC key"),
                Algorithm::HS256,
            )
            .expect("an HMAC signature"),
        };
        format!("{message}.{signature}")
    }
}
