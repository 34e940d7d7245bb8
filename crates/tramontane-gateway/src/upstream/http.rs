//! Mistral's inference API over HTTPS: one pooled client for the process, keep-alive,
//! HTTP/2 where the server offers it (ALPN), TCP_NODELAY so stream chunks leave at once.
//!
//! Built on hyper-util's client rather than reqwest: the proxy needs the upstream body as a
//! plain `http_body::Body` to pass through frame by frame, and the response headers exactly
//! as sent (reqwest would decompress and normalise), with nothing between the two.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::ExposeSecret;

use super::{BodyError, UpstreamBody, UpstreamError, UpstreamRequest};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamUrlError {
    #[error("`{0}` is not a URL the gateway can forward to")]
    Invalid(String),
    #[error(
        "`{0}` is plain http to a host that is not loopback; the upstream key would travel in clear"
    )]
    PlainHttp(String),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

impl UpstreamUrlError {
    pub fn help(&self) -> &'static str {
        "use --upstream https://api.mistral.ai (plain http only to 127.0.0.1 or localhost), or --upstream sandbox to try the gateway without an account"
    }
}

pub struct HttpUpstream {
    base: String,
    /// One connection pool per serving thread ([`crate::workers`]), so a request's upstream
    /// connection is driven by the thread that serves it, and the first for every other
    /// thread (the model list read at start): a connection made there is driven there, and
    /// a worker sharing its pool would wake that thread for every request.
    clients: Box<[Client<HttpsConnector<HttpConnector>, Full<Bytes>>]>,
}

impl HttpUpstream {
    pub fn new(
        base: &str,
        connect_timeout: Duration,
        workers: usize,
    ) -> Result<HttpUpstream, UpstreamUrlError> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| UpstreamUrlError::Invalid(base.clone()))?;
        let host = uri
            .host()
            .ok_or_else(|| UpstreamUrlError::Invalid(base.clone()))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if tramontane::tls::is_loopback_host(host) => {}
            Some("http") => return Err(UpstreamUrlError::PlainHttp(base)),
            _ => return Err(UpstreamUrlError::Invalid(base)),
        }
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(UpstreamUrlError::Invalid(base));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|error| UpstreamUrlError::Tls(error.to_string()))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let clients = (0..=workers)
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(64)
                    .build(connector.clone())
            })
            .collect();
        Ok(HttpUpstream { base, clients })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn send(
        &self,
        request: UpstreamRequest,
        timeout: Duration,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let uri = format!("{}{}", self.base, request.path_and_query);
        let mut builder = Request::builder().method(request.method).uri(uri);
        if let Some(headers) = builder.headers_mut() {
            *headers = request.headers;
            let mut bearer =
                HeaderValue::from_str(&format!("Bearer {}", request.key.expose_secret())).map_err(
                    |_| UpstreamError::Unreachable("the upstream key is not a valid header".into()),
                )?;
            // Kept out of any debug output of the request.
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
            headers.insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
        }
        let outgoing = builder
            .body(Full::new(request.body))
            .map_err(|error| UpstreamError::Unreachable(error.to_string()))?;
        let client = crate::workers::current()
            .and_then(|worker| self.clients.get(worker + 1))
            .unwrap_or(&self.clients[0]);
        let response = tokio::time::timeout(timeout, client.request(outgoing))
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
            .map_err(|error| UpstreamError::Unreachable(describe(&error)))?;
        Ok(response.map(|body| body.map_err(BodyError::new).boxed_unsync()))
    }
}

/// The error chain in a few words, never with a header.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_only() {
        let timeout = Duration::from_secs(1);
        assert!(HttpUpstream::new("https://api.mistral.ai", timeout, 1).is_ok());
        assert!(HttpUpstream::new("https://api.mistral.ai/", timeout, 1).is_ok());
        assert!(HttpUpstream::new("http://127.0.0.1:9000", timeout, 1).is_ok());
        assert!(HttpUpstream::new("http://[::1]:9000", timeout, 1).is_ok());
        assert!(matches!(
            HttpUpstream::new("http://api.mistral.ai", timeout, 1),
            Err(UpstreamUrlError::PlainHttp(_))
        ));
        assert!(matches!(
            HttpUpstream::new("ftp://x", timeout, 1),
            Err(UpstreamUrlError::Invalid(_))
        ));
        assert!(matches!(
            HttpUpstream::new("https://api.mistral.ai/v1", timeout, 1),
            Err(UpstreamUrlError::Invalid(_))
        ));
    }
}
