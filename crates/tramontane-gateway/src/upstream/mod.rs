//! Where admitted requests go: Mistral's inference API over a pooled keep-alive client, or
//! the built-in sandbox. Both answer with the same response type, so the proxy cannot tell
//! them apart.

pub mod http;
pub mod sandbox;

use std::time::Duration;

use ::http::{HeaderMap, HeaderName, Method, Response, header};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use secrecy::SecretString;

/// Why an upstream body could not be read to its end. A named type rather than a bare boxed
/// error: the compiler cannot infer the lifetimes of `dyn Error` through async handlers.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub Box<dyn std::error::Error + Send + Sync>);

impl BodyError {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> BodyError {
        BodyError(Box::new(error))
    }
}

/// An upstream answer's body, streamed.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BodyError>;

/// One request to send upstream. The key is the gateway's own; the caller's credential was
/// removed with the other headers that must not travel.
pub struct UpstreamRequest {
    pub method: Method,
    /// The path and query, as the caller sent them.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the upstream: {0}")]
    Unreachable(String),
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where requests go.
pub enum Upstream {
    Http(Box<http::HttpUpstream>),
    Sandbox(sandbox::SandboxUpstream),
}

impl Upstream {
    pub async fn send(
        &self,
        request: UpstreamRequest,
        timeout: Duration,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        match self {
            Upstream::Http(upstream) => upstream.send(request, timeout).await,
            Upstream::Sandbox(sandbox) => Ok(sandbox.answer(request)),
        }
    }

    /// How the upstream is shown in logs: never with a credential.
    pub fn describe(&self) -> String {
        match self {
            Upstream::Http(upstream) => upstream.base().to_owned(),
            Upstream::Sandbox(_) => "sandbox".into(),
        }
    }
}

/// Headers that belong to one connection and are never forwarded (RFC 9110 §7.6.1), plus
/// those the gateway sets itself.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The headers of a caller's request as they go upstream: no hop-by-hop header, no
/// credential of the caller's, no host or length (the client sets them for the new body),
/// and no `Accept-Encoding`: the gateway reads answers on their way back (the usage it
/// settles at, an error that may repeat the upstream key), which a compressed answer would
/// hide from it.
pub fn forwardable(mut headers: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    for name in [
        header::ACCEPT_ENCODING,
        header::AUTHORIZATION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::COOKIE,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    headers.remove("x-api-key");
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_callers_credential_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        headers.insert("x-secret-hop", "1".parse().unwrap());
        headers.insert(header::AUTHORIZATION, "Bearer tmt_a_b".parse().unwrap());
        headers.insert("x-api-key", "k".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers.insert(header::USER_AGENT, "mistralai-python".parse().unwrap());
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert(header::ACCEPT_ENCODING, "gzip, br".parse().unwrap());
        let kept = forwardable(headers);
        let mut names: Vec<&str> = kept.keys().map(|name| name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["content-type", "user-agent"]);
    }
}
