//! What can go wrong talking to the Admin API, each naming the call and what to do.

/// Every variant names the call as `METHOD /path?query` (never a header, never the key).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{call}: 401 Unauthorized: the key in MISTRAL_ADMIN_API_KEY is wrong, expired, or not an admin key; use an admin-scoped key of the organization (see docs/admin-key.md)"
    )]
    Unauthorized { call: String },
    #[error(
        "{call}: 403 Forbidden: the admin key may not do this; check that it belongs to an organization admin on an Enterprise plan"
    )]
    Forbidden { call: String },
    #[error(
        "{call}: 404 Not Found: {detail}; the object may have been deleted since it was read, so plan again"
    )]
    NotFound { call: String, detail: String },
    #[error("{call}: 422 Unprocessable: {}; this is a bug in tramontane or a change in the API, please report it", details.join("; "))]
    Unprocessable { call: String, details: Vec<String> },
    #[error("{call}: {status}: {detail}")]
    Status {
        call: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{call}: 429 Too Many Requests after {attempts} attempts, the pace already lowered after each; set a --rate-limit below what the server allows, or try again later"
    )]
    RateLimited { call: String, attempts: usize },
    #[error("{call}: the server failed with {status} after {attempts} attempt(s); try again later")]
    Server {
        call: String,
        status: u16,
        attempts: usize,
    },
    #[error(
        "{call}: no answer within the timeout after {attempts} attempt(s); raise --timeout or try again later"
    )]
    Timeout { call: String, attempts: usize },
    /// `cause` is what went wrong in a few words (connection refused, DNS lookup, TLS);
    /// `detail` the error chain it was read from.
    #[error(
        "{call}: cannot reach the Admin API: {cause} ({detail}); check MISTRAL_API_URL and the network"
    )]
    Transport {
        call: String,
        cause: String,
        detail: String,
    },
    #[error(
        "{call}: the server redirected ({status}) to {location}; tramontane does not follow redirects with the admin key: set MISTRAL_API_URL to the final URL if you trust it"
    )]
    Redirected {
        call: String,
        status: u16,
        location: String,
    },
    #[error(
        "{call}: the answer is larger than {limit_mib} MiB, far more than the Admin API sends; check that MISTRAL_API_URL points at the Admin API"
    )]
    BodyTooLarge { call: String, limit_mib: usize },
    #[error("{call}: {problem}: the list changed while it was read: re-run")]
    ListChanged { call: String, problem: String },
    /// The server's answers contradict how its time windows were read, the same way on
    /// every run: a re-run cannot help, so the message says what the server did instead.
    #[error("{call}: {problem}")]
    AuditLogWindow { call: String, problem: String },
    #[error(
        "{call}: the list holds {count} items or more, beyond the {max} tramontane reads from one list; check that MISTRAL_API_URL points at the Admin API"
    )]
    ListTooLong {
        call: String,
        count: u64,
        max: usize,
    },
    #[error(
        "{call}: the command's deadline of {deadline} passed before it finished; raise --deadline (TRAMONTANE_DEADLINE) or try again when the API answers faster"
    )]
    DeadlineExceeded { call: String, deadline: String },
    #[error(
        "{call}: the server asked to wait {asked} before trying again (429 Retry-After), more than the {left} left before the command's deadline; try again later or raise --deadline"
    )]
    WaitBeyondDeadline {
        call: String,
        asked: String,
        left: String,
    },
    #[error("{call}: the answer is not what the API documents ({message}); body starts: {body}")]
    InvalidResponse {
        call: String,
        message: String,
        body: String,
    },
    /// `url` is shown without its userinfo: a password in the URL is never echoed.
    #[error(
        "`{url}` uses plain http to a host that is not this machine; use https, since the admin key would travel in clear"
    )]
    InsecureUrl { url: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl ApiError {
    /// What to do, for the line under the error; `None` where the message already ends
    /// with it, as most of these do (they reach the audit log and apply's report too).
    pub fn help(&self) -> Option<&'static str> {
        match self {
            ApiError::Status { .. } => Some(
                "the Admin API refused the call; if the organization changed since it was read, plan again",
            ),
            ApiError::InvalidResponse { .. } => Some(
                "check that MISTRAL_API_URL points at the Admin API, not at a proxy or gateway answering in its place",
            ),
            ApiError::AuditLogWindow { .. } => Some(
                "re-running will not help: the server filters `after`/`before` differently from how tramontane pages (microseconds, bounds exclusive or inclusive); please report it with the call above",
            ),
            ApiError::Client(_) => Some(
                "this machine could not set up HTTPS for the client; check its TLS configuration",
            ),
            ApiError::Unauthorized { .. }
            | ApiError::Forbidden { .. }
            | ApiError::NotFound { .. }
            | ApiError::Unprocessable { .. }
            | ApiError::RateLimited { .. }
            | ApiError::Server { .. }
            | ApiError::Timeout { .. }
            | ApiError::Transport { .. }
            | ApiError::Redirected { .. }
            | ApiError::BodyTooLarge { .. }
            | ApiError::ListChanged { .. }
            | ApiError::ListTooLong { .. }
            | ApiError::DeadlineExceeded { .. }
            | ApiError::WaitBeyondDeadline { .. }
            | ApiError::InsecureUrl { .. } => None,
        }
    }

    /// Whether the call may have been carried out although no answer said so: a 5xx, a
    /// timeout, a broken connection or an unreadable success. A create that ends so must be
    /// looked for before it is sent again.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            ApiError::Server { .. }
                | ApiError::Timeout { .. }
                | ApiError::Transport { .. }
                | ApiError::InvalidResponse { .. }
                | ApiError::BodyTooLarge { .. }
        )
    }
}

/// What stands in for the body of an answer that carries a key's secret.
pub const WITHHELD: &str = "(withheld: this answer carries a key's secret)";

impl ApiError {
    /// The same error with nothing of the answer's body left in it, for calls whose answer
    /// carries a secret: a malformed answer may still hold the plaintext, and an error ends
    /// up on stderr and in the audit log. The parser's message is cut before its first
    /// quoted value, since it may quote the body.
    pub fn withholding_body(self) -> ApiError {
        match self {
            ApiError::InvalidResponse { call, message, .. } => {
                let cut = message
                    .find(['`', '"', '\'', ':'])
                    .map_or(message.as_str(), |at| &message[..at]);
                ApiError::InvalidResponse {
                    call,
                    message: cut.trim().to_owned(),
                    body: WITHHELD.to_owned(),
                }
            }
            other => other,
        }
    }
}

/// The `detail` of a FastAPI error body, as readable lines: `body.field: message`.
pub fn details(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return vec![excerpt(body)];
    };
    match value.get("detail") {
        Some(serde_json::Value::String(text)) => vec![text.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                let location: Vec<String> = item
                    .get("loc")
                    .and_then(|loc| loc.as_array())
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let message = item
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .unwrap_or("invalid");
                if location.is_empty() {
                    message.to_owned()
                } else {
                    format!("{}: {message}", location.join("."))
                }
            })
            .collect(),
        _ => vec![excerpt(body)],
    }
}

/// The start of a body, for an error message: enough to recognise an HTML page or a cut.
pub fn excerpt(body: &str) -> String {
    let cut: String = body.chars().take(200).collect();
    let cut = cut.replace(['\n', '\r'], " ");
    if body.chars().count() > 200 {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastapi_details_read_as_field_and_message() {
        let body = r#"{"detail": [{"loc": ["body", "workspace_uuid"], "msg": "Field required", "type": "missing"}]}"#;
        assert_eq!(details(body), vec!["body.workspace_uuid: Field required"]);
        assert_eq!(details(r#"{"detail": "Not Found"}"#), vec!["Not Found"]);
        assert_eq!(details("<html>oops</html>"), vec!["<html>oops</html>"]);
    }

    #[test]
    fn a_secret_bearing_answer_leaves_nothing_of_its_body_in_the_error() {
        let body = r#"{"key_id": 7, "key": "sk-live-0123456789abcdef"}"#;
        let parsed = serde_json::from_str::<super::super::api::ApiKeyOut>(body).unwrap_err();
        let error = ApiError::InvalidResponse {
            call: "POST /v1/admin/api-keys".into(),
            message: parsed.to_string(),
            body: excerpt(body),
        };
        assert!(
            error.to_string().contains("sk-live"),
            "the test proves nothing"
        );
        let shown = error.withholding_body().to_string();
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("POST /v1/admin/api-keys"), "{shown}");
        assert!(shown.contains(WITHHELD), "{shown}");
    }
}
