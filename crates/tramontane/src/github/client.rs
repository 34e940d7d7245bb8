//! The few GitHub REST calls tramontane makes: a pull request's comments, listed to the last
//! page, created, updated and deleted.
//!
//! The token lives in a [`SecretString`] and travels only in a sensitive header: no error,
//! log line or `Debug` output carries it.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// GitHub's public API, when `GITHUB_API_URL` does not say otherwise.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The largest page GitHub serves.
const PAGE_SIZE: usize = 100;
/// A bound on pages read, so a server that always answers "next" cannot keep us forever.
const MAX_PAGES: usize = 500;

/// What can go wrong talking to GitHub. Every variant names the call as `METHOD /path` and
/// says what to do; none holds the token.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error(
        "GITHUB_TOKEN is not set; in a workflow step add `env: {{ GITHUB_TOKEN: ${{{{ github.token }}}} }}`, elsewhere export a token allowed to write pull-request comments"
    )]
    MissingToken,
    #[error("GITHUB_API_URL `{url}` is not a URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "GITHUB_API_URL `{url}` uses plain http to a host that is not this machine; use https, since the token would travel in clear"
    )]
    InsecureUrl { url: String },
    #[error(
        "{call}: 401 Unauthorized: GitHub rejected GITHUB_TOKEN as wrong or expired; pass the workflow's `github.token`, or a token that has not expired"
    )]
    Unauthorized { call: String },
    #[error(
        "{call}: 403 Forbidden ({message}): the token may not write comments on this pull request; give the job `permissions: {{ pull-requests: write }}` (the token of a pull request from a fork is always read-only: skip the comment for forks)"
    )]
    Forbidden { call: String, message: String },
    #[error("{call}: GitHub's rate limit is spent ({message}); try again later")]
    RateLimited { call: String, message: String },
    #[error(
        "{call}: 404 Not Found ({message}): the repository or pull request does not exist, or the token cannot see it; check --repo and --pr"
    )]
    NotFound { call: String, message: String },
    #[error("{call}: 422 Unprocessable ({message}): GitHub refused the comment")]
    Unprocessable { call: String, message: String },
    #[error("{call}: {status} ({message})")]
    Status {
        call: String,
        status: u16,
        message: String,
    },
    #[error("{call}: GitHub failed with {status} after {attempts} attempt(s); try again later")]
    Server {
        call: String,
        status: u16,
        attempts: usize,
    },
    #[error("{call}: cannot reach GitHub: {message}; check GITHUB_API_URL and the network")]
    Transport { call: String, message: String },
    #[error("{call}: the answer is not what GitHub documents ({message})")]
    InvalidResponse { call: String, message: String },
    #[error(
        "{call}: the next page of comments is on another server (`{url}`); the token is not sent there"
    )]
    ForeignPage { call: String, url: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl GitHubError {
    /// What to do, for the line under the error; `None` where the message already says.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            GitHubError::InvalidUrl { .. } => Some("use a URL such as https://api.github.com"),
            GitHubError::Status { .. } => {
                Some("check --repo and --pr, and whether GitHub reports an incident")
            }
            GitHubError::Unprocessable { .. } => {
                Some("the comment was refused as it was sent: please report it")
            }
            GitHubError::InvalidResponse { .. } | GitHubError::ForeignPage { .. } => {
                Some("check that GITHUB_API_URL points at GitHub's REST API")
            }
            GitHubError::Client(_) => Some(
                "this machine could not set up HTTPS for the client; check its TLS configuration",
            ),
            GitHubError::MissingToken
            | GitHubError::InsecureUrl { .. }
            | GitHubError::Unauthorized { .. }
            | GitHubError::Forbidden { .. }
            | GitHubError::RateLimited { .. }
            | GitHubError::NotFound { .. }
            | GitHubError::Server { .. }
            | GitHubError::Transport { .. } => None,
        }
    }
}

/// `OWNER/NAME`, checked to be a GitHub repository name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl std::str::FromStr for RepoName {
    type Err = String;

    fn from_str(text: &str) -> Result<RepoName, String> {
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match text.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) => Ok(RepoName {
                owner: owner.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(format!(
                "`{text}` is not a repository: write it as OWNER/NAME, such as `acme/mistral-policies`"
            )),
        }
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// An issue comment (a pull request's conversation is an issue's).
#[derive(Clone, Debug, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: String,
    #[serde(default)]
    pub user: Option<User>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub login: String,
}

pub struct GitHub {
    http: reqwest::Client,
    /// The API root without a trailing slash.
    base: String,
    auth: HeaderValue,
    backoff: Duration,
    attempts: usize,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// A client for the API at `api_url` (https, or plain http to this machine only).
    pub fn new(
        api_url: &str,
        token: SecretString,
        backoff: Duration,
    ) -> Result<GitHub, GitHubError> {
        // Shown without the userinfo a URL may carry: a password is never echoed.
        let shown = crate::provider::mistral::transport::redact_userinfo(api_url);
        let url = url::Url::parse(api_url).map_err(|error| GitHubError::InvalidUrl {
            url: shown.clone(),
            reason: error.to_string(),
        })?;
        if !crate::provider::mistral::transport::may_carry_credentials(&url) {
            return Err(GitHubError::InsecureUrl { url: shown });
        }
        if token.expose_secret().trim().is_empty() {
            return Err(GitHubError::MissingToken);
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret().trim()))
            .map_err(|_| {
            GitHubError::Client("GITHUB_TOKEN holds characters a header cannot carry".into())
        })?;
        auth.set_sensitive(true);
        crate::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("tramontane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| GitHubError::Client(error.to_string()))?;
        Ok(GitHub {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
            auth,
            backoff,
            attempts: 3,
        })
    }

    /// Every comment of an issue or pull request, oldest first, following `Link: rel="next"`.
    pub async fn list_comments(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Vec<Comment>, GitHubError> {
        let mut url = format!(
            "{}/repos/{repo}/issues/{number}/comments?per_page={PAGE_SIZE}",
            self.base
        );
        let mut comments = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, headers): (Vec<Comment>, HeaderMap) =
                self.send(Method::GET, &url, None).await?;
            comments.extend(page);
            let Some(next) = next_page(&headers) else {
                return Ok(comments);
            };
            // The token goes only where the API itself is.
            if !next.starts_with(&format!("{}/", self.base)) {
                return Err(GitHubError::ForeignPage {
                    call: self.call(&Method::GET, &url),
                    url: next,
                });
            }
            url = next;
        }
        Ok(comments)
    }

    pub async fn create_comment(
        &self,
        repo: &RepoName,
        number: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        let url = format!("{}/repos/{repo}/issues/{number}/comments", self.base);
        let body = serde_json::json!({ "body": body });
        Ok(self.send(Method::POST, &url, Some(&body)).await?.0)
    }

    pub async fn update_comment(
        &self,
        repo: &RepoName,
        id: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        let url = format!("{}/repos/{repo}/issues/comments/{id}", self.base);
        let body = serde_json::json!({ "body": body });
        Ok(self.send(Method::PATCH, &url, Some(&body)).await?.0)
    }

    pub async fn delete_comment(&self, repo: &RepoName, id: u64) -> Result<(), GitHubError> {
        let url = format!("{}/repos/{repo}/issues/comments/{id}", self.base);
        let _: (serde_json::Value, HeaderMap) = self.send(Method::DELETE, &url, None).await?;
        Ok(())
    }

    /// `METHOD /path?query`, the way errors name a call.
    fn call(&self, method: &Method, url: &str) -> String {
        let path = url.strip_prefix(&self.base).unwrap_or(url);
        format!("{method} {path}")
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(T, HeaderMap), GitHubError> {
        let call = self.call(&method, url);
        // A create repeated after GitHub may have acted would post the comment twice.
        let repeatable = method != Method::POST;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url)
                .header(reqwest::header::AUTHORIZATION, self.auth.clone())
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
            if let Some(body) = body {
                request = request.json(body);
            }
            let retry = repeatable && attempt < self.attempts;
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) if retry && (error.is_timeout() || error.is_connect()) => {
                    tokio::time::sleep(self.backoff * attempt as u32).await;
                    continue;
                }
                Err(error) => {
                    return Err(GitHubError::Transport {
                        call,
                        message: transport_reason(&error),
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            if status.is_server_error() && retry {
                tokio::time::sleep(self.backoff * attempt as u32).await;
                continue;
            }
            let text = response
                .text()
                .await
                .map_err(|error| GitHubError::Transport {
                    call: call.clone(),
                    message: transport_reason(&error),
                })?;
            if status.is_success() {
                let text = if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
                    "null"
                } else {
                    text.as_str()
                };
                let value =
                    serde_json::from_str(text).map_err(|error| GitHubError::InvalidResponse {
                        call: call.clone(),
                        message: error.to_string(),
                    })?;
                return Ok((value, headers));
            }
            return Err(status_error(call, status, &headers, &text, attempt));
        }
    }
}

fn transport_reason(error: &reqwest::Error) -> String {
    use std::error::Error;
    // reqwest's own text names the URL, which is fine; the innermost cause says why.
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    if error.is_timeout() {
        "no answer within 30 s".into()
    } else {
        reason
    }
}

fn status_error(
    call: String,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    attempts: usize,
) -> GitHubError {
    let message = github_message(body);
    let remaining = headers
        .get("x-ratelimit-remaining")
        .and_then(|value| value.to_str().ok());
    match status.as_u16() {
        401 => GitHubError::Unauthorized { call },
        403 | 429 if remaining == Some("0") || message.to_lowercase().contains("rate limit") => {
            GitHubError::RateLimited { call, message }
        }
        403 => GitHubError::Forbidden { call, message },
        404 => GitHubError::NotFound { call, message },
        422 => GitHubError::Unprocessable { call, message },
        code if status.is_server_error() => GitHubError::Server {
            call,
            status: code,
            attempts,
        },
        code => GitHubError::Status {
            call,
            status: code,
            message,
        },
    }
}

/// GitHub's `message` (and any `errors[].message`), or the start of a body that is not JSON.
fn github_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        let cut: String = body.chars().take(200).collect();
        return cut.replace(['\n', '\r'], " ");
    };
    let mut parts: Vec<String> = value
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(errors) = value.get("errors").and_then(|e| e.as_array()) {
        parts.extend(errors.iter().filter_map(|error| {
            error
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .or_else(|| error.as_str().map(str::to_owned))
        }));
    }
    if parts.is_empty() {
        "no message".into()
    } else {
        parts.join("; ")
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_page(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| matches!(param.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_the_next_page() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/repositories/1/issues/5/comments?page=3>; rel=\"next\", <https://api.github.com/repositories/1/issues/5/comments?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("https://api.github.com/repositories/1/issues/5/comments?page=3")
        );
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://api.github.com/x?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_page(&headers), None);
    }

    #[test]
    fn repository_names_are_owner_slash_name() {
        let repo: RepoName = "acme/mistral-policies".parse().unwrap();
        assert_eq!(repo.to_string(), "acme/mistral-policies");
        for bad in ["acme", "acme/", "/x", "a/b/c", "a/..", "a b/c"] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        let token = || SecretString::from("t0ken");
        let backoff = Duration::from_millis(1);
        assert!(GitHub::new("http://127.0.0.1:9/", token(), backoff).is_ok());
        assert!(GitHub::new("http://localhost:9", token(), backoff).is_ok());
        assert!(matches!(
            GitHub::new("http://github.example", token(), backoff),
            Err(GitHubError::InsecureUrl { .. })
        ));
        assert!(matches!(
            GitHub::new("https://api.github.com", SecretString::from(" "), backoff),
            Err(GitHubError::MissingToken)
        ));
        for url in [
            "http://me:hunter2@github.example",
            "http://me:hunter2@git hub",
        ] {
            let Err(error) = GitHub::new(url, token(), backoff) else {
                panic!("{url} accepted");
            };
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn errors_quote_github_messages() {
        assert_eq!(
            github_message(
                r#"{"message": "Validation Failed", "errors": [{"message": "Body is too long"}]}"#
            ),
            "Validation Failed; Body is too long"
        );
        assert_eq!(
            github_message("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }
}
