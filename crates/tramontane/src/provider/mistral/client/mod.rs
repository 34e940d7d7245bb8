//! HTTP to the Admin API: authentication, pages read to the end, a pace that adapts to the
//! server's limit ([`super::pacing`]), and retries that are safe.
//!
//! Retries are hand-rolled rather than left to a retry crate because one 429 must pause
//! every request until its `Retry-After` has passed, not only the one that got it
//! ([`send`]). The calls themselves are grouped by resource kind: [`members`],
//! [`workspaces`], [`teams`], [`keys`] and [`limits`]; [`pages`] reads a list to its end.

mod audit_logs;
mod keys;
mod limits;
mod members;
mod models;
mod pages;
mod send;
mod teams;
mod usage;
mod workspaces;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::error::ApiError;
use super::pacing::Pacer;
use super::transport::{DEFAULT_DEADLINE, Deadline, human, may_carry_credentials, redact_url};

pub use send::parse_retry_after;

/// Page sizes: the largest each list accepts. The spec caps user groups and a group's
/// workspace assignments at 100 and sets no cap elsewhere, where 1,000 keeps pages fast.
pub const USERS_PAGE_SIZE: usize = 1000;
pub const WORKSPACES_PAGE_SIZE: usize = 1000;
pub const GROUPS_PAGE_SIZE: usize = 100;
pub const GROUP_MEMBERS_PAGE_SIZE: usize = 1000;
pub const GROUP_WORKSPACES_PAGE_SIZE: usize = 100;
pub const API_KEYS_PAGE_SIZE: usize = 1000;

/// How the admin key is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `x-api-key: KEY`, as Mistral's admin guides do.
    ApiKeyHeader,
    /// `Authorization: Bearer KEY`, as the OpenAPI spec says.
    Bearer,
}

pub struct ClientConfig {
    pub base_url: url::Url,
    pub key: SecretString,
    pub auth: AuthScheme,
    /// Most requests in flight; the pacer starts here and narrows on 429s.
    pub concurrency: usize,
    /// A ceiling on requests per second, whatever the server allows; none by default.
    pub max_requests_per_second: Option<NonZeroU32>,
    pub timeout: Duration,
    pub max_retries: usize,
    pub backoff_base: Duration,
    /// The most time one command spends on the Admin API (see [`Deadline`]).
    pub deadline: Duration,
    /// Told of each retry before its wait, so a caller on a terminal can show progress; the
    /// client itself prints nothing.
    pub on_retry: Option<RetryObserver>,
}

/// Receives a [`RetryNotice`] before each retry's wait.
pub type RetryObserver = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// A call that failed and is about to be sent again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNotice {
    /// The call, as errors name it: `GET /v1/admin/users`.
    pub call: String,
    /// What went wrong, in words: `connection refused`, `503 Service Unavailable`.
    pub cause: String,
    pub wait: Duration,
    /// Which retry this is, from 1, and the most there will be.
    pub retry: usize,
    pub max_retries: usize,
}

impl std::fmt::Display for RetryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}; retrying in {} (retry {} of {})",
            self.call,
            self.cause,
            human(self.wait),
            self.retry,
            self.max_retries
        )
    }
}

/// By hand, so the URL shows without the password it may carry.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &redact_url(&self.base_url))
            .field("auth", &self.auth)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(base_url: url::Url, key: SecretString) -> ClientConfig {
        ClientConfig {
            base_url,
            key,
            auth: AuthScheme::ApiKeyHeader,
            concurrency: 8,
            max_requests_per_second: None,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            deadline: DEFAULT_DEADLINE,
            on_retry: None,
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: (HeaderName, HeaderValue),
    pacer: Pacer,
    requests: AtomicU64,
    max_retries: usize,
    backoff_base: Duration,
    timeout: Duration,
    deadline: Deadline,
    on_retry: Option<RetryObserver>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base =
            url::Url::parse(&self.base).map_or_else(|_| String::new(), |url| redact_url(&url));
        f.debug_struct("Client")
            .field("base", &base)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        if !may_carry_credentials(&config.base_url) {
            return Err(ApiError::InsecureUrl {
                url: redact_url(&config.base_url),
            });
        }
        let (name, value) = match config.auth {
            AuthScheme::ApiKeyHeader => (
                HeaderName::from_static("x-api-key"),
                config.key.expose_secret().to_owned(),
            ),
            AuthScheme::Bearer => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", config.key.expose_secret()),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ApiError::Client("the admin key holds characters a header cannot carry".into())
        })?;
        value.set_sensitive(true);
        crate::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A redirect would carry the admin key wherever it points (reqwest drops only
            // the standard credential headers, not `x-api-key`): none is followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tramontane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ApiError::Client(error.to_string()))?;
        Ok(Client {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_owned(),
            auth: (name, value),
            pacer: Pacer::new(config.concurrency, config.max_requests_per_second),
            requests: AtomicU64::new(0),
            max_retries: config.max_retries,
            backoff_base: config.backoff_base,
            timeout: config.timeout,
            deadline: Deadline::new(config.deadline),
            on_retry: config.on_retry,
        })
    }

    /// HTTP attempts so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests that may be in flight now, as the pacer has learnt from the server.
    pub fn window(&self) -> usize {
        self.pacer.window()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's configuration for `url`, with an admin key the tests look for in output.
    pub(super) fn config(url: &str) -> ClientConfig {
        ClientConfig::new(
            url::Url::parse(url).unwrap(),
            SecretString::from("sk-admin-very-secret"),
        )
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = config("https://api.mistral.ai");
        assert!(!format!("{config:?}").contains("very-secret"));
        let client = Client::new(config).unwrap();
        assert!(!format!("{client:?}").contains("very-secret"));
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let config_with_password = config("http://admin:hunter2@api.example.com");
        assert!(!format!("{config_with_password:?}").contains("hunter2"));
        let refused = Client::new(config_with_password).unwrap_err().to_string();
        assert!(refused.contains("`http://api.example.com/`"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
        let client = Client::new(config("http://admin:hunter2@127.0.0.1:1")).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(matches!(
            Client::new(config("http://api.example.com")),
            Err(ApiError::InsecureUrl { .. })
        ));
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(Client::new(config(url)).is_ok(), "{url}");
        }
    }

    #[test]
    fn paths_are_appended_to_the_base() {
        let client = Client::new(config("https://gw.example/prefix/")).unwrap();
        assert_eq!(
            client.url("/v1/admin/users"),
            "https://gw.example/prefix/v1/admin/users"
        );
        let client = Client::new(config("http://127.0.0.1:1234")).unwrap();
        assert_eq!(
            client.url("/v1/admin/users"),
            "http://127.0.0.1:1234/v1/admin/users"
        );
    }
}
