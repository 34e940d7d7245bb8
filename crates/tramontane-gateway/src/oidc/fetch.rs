//! Reads an issuer's JWKS from where its settings say: a URL, the `jwks_uri` its discovery
//! document names, or a file. Over the same hyper client and rustls-on-ring TLS as the rest
//! of the gateway; every read is bounded in time and size, and redirects are not followed
//! (an issuer's key URL is where it says it is).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::jwks::{JwksError, Keys};
use super::settings::{IssuerSettingsError, KeyCacheSettings, KeySource, fetchable};

/// Why an issuer's keys could not be read: said in the gateway's log, never to a caller.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: &'static str },
    #[error("{url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("the discovery document at {url} {problem}")]
    Discovery { url: String, problem: &'static str },
    #[error("the discovery document names the jwks_uri {0}, which is refused: {1}")]
    JwksUri(String, IssuerSettingsError),
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the JWKS from {from}: {error}")]
    Jwks { from: String, error: JwksError },
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Fetches JWKS documents; one for every issuer of a verifier, sharing its connections.
pub(crate) struct KeyFetcher {
    client: HttpsClient,
    timeout: Duration,
    max_body_bytes: usize,
}

impl KeyFetcher {
    pub fn new(settings: &KeyCacheSettings) -> Result<KeyFetcher, IssuerSettingsError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(settings.fetch_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|error| IssuerSettingsError::Tls(error.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(KeyFetcher {
            client,
            timeout: settings.fetch_timeout,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// The keys an issuer publishes now.
    pub async fn keys(
        &self,
        name: &str,
        issuer: &str,
        source: &KeySource,
    ) -> Result<Keys, FetchError> {
        let (from, body) = match source {
            KeySource::JwksUrl(url) => (url.to_string(), self.get(url.as_str()).await?),
            KeySource::Discovery => {
                let url = self.discover(name, issuer).await?;
                let body = self.get(&url).await?;
                (url, body)
            }
            KeySource::JwksFile(path) => (path.display().to_string(), self.read(path).await?),
        };
        Keys::parse(&body).map_err(|error| FetchError::Jwks { from, error })
    }

    /// The `jwks_uri` of the issuer's discovery document, which must name the issuer itself.
    async fn discover(&self, name: &str, issuer: &str) -> Result<String, FetchError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let problem = |problem| FetchError::Discovery {
            url: url.clone(),
            problem,
        };
        let document: Value = serde_json::from_slice(&body).map_err(|_| problem("is not JSON"))?;
        // OpenID Connect Discovery 1.0 §4.3: a document for another issuer is not this one's.
        if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(problem("is for another issuer"));
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| problem("has no jwks_uri"))?;
        fetchable(name, jwks_uri)
            .map_err(|error| FetchError::JwksUri(jwks_uri.to_owned(), error))?;
        Ok(jwks_uri.to_owned())
    }

    async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let request = Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "tramontane-gateway")
            .body(Empty::new())
            .map_err(|_| FetchError::Unreachable {
                url: url.to_owned(),
                reason: "the URL cannot be requested",
            })?;
        let timeout = || FetchError::Timeout {
            url: url.to_owned(),
            seconds: self.timeout.as_secs().max(1),
        };
        let exchange =
            async {
                let response = self.client.request(request).await.map_err(|error| {
                    FetchError::Unreachable {
                        url: url.to_owned(),
                        reason: if error.is_connect() {
                            "cannot connect"
                        } else {
                            "the request failed"
                        },
                    }
                })?;
                if response.status() != StatusCode::OK {
                    return Err(FetchError::Status {
                        url: url.to_owned(),
                        status: response.status().as_u16(),
                    });
                }
                let limited = Limited::new(response.into_body(), self.max_body_bytes);
                match limited.collect().await {
                    Ok(collected) => Ok(collected.to_bytes()),
                    Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                        Err(FetchError::TooLarge {
                            url: url.to_owned(),
                            limit: self.max_body_bytes,
                        })
                    }
                    Err(_) => Err(FetchError::Unreachable {
                        url: url.to_owned(),
                        reason: "the answer was cut off",
                    }),
                }
            };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| timeout())?
    }

    async fn read(&self, path: &Path) -> Result<Bytes, FetchError> {
        let failed = |reason: String| FetchError::File {
            path: path.display().to_string(),
            reason,
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|error| failed(error.to_string()))?;
        let mut body = Vec::new();
        // One byte past the limit tells a file that is too large from one that fits exactly.
        file.take(self.max_body_bytes as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|error| failed(error.to_string()))?;
        if body.len() > self.max_body_bytes {
            return Err(failed(format!(
                "it is larger than {} bytes",
                self.max_body_bytes
            )));
        }
        Ok(Bytes::from(body))
    }
}
