//! The gateway's own answers, in Mistral's error shape
//! (`{"object":"error","message","type","param","code"}`), so an SDK shows them as it shows
//! Mistral's. Every refusal also has a short `reason`, the label metrics and audit lines use.

use std::time::Duration;

use axum::body::Body;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;
use tramontane::runtime::{Measure, Rule};

/// A request the gateway answers itself: refused before anything goes upstream, or failed
/// on the way there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    MissingKey,
    MalformedKey,
    UnknownKey,
    ExpiredKey {
        expired: String,
    },
    /// A workload's token that does not verify: its own code says why.
    Token(crate::oidc::TokenRefusal),
    /// A verified token that no workload of the policy is.
    NoWorkload {
        issuer: String,
        subject: String,
    },
    /// A verified token several workloads could be: none is picked.
    AmbiguousWorkload {
        workloads: Vec<String>,
    },
    PathNotFound {
        path: String,
    },
    MethodNotAllowed {
        method: String,
        path: String,
    },
    /// A path with a dot segment, an empty segment or an encoded separator: the upstream
    /// might resolve it to another path than the one the gateway checked.
    InvalidPath {
        path: String,
    },
    /// A request body in a `Content-Encoding` other than identity: the gateway could not
    /// read what it checks, and would forward bytes it never judged.
    UnsupportedContentEncoding {
        encoding: String,
    },
    BodyTooLarge {
        limit: usize,
    },
    BodyTimeout,
    MalformedJson {
        detail: String,
    },
    MissingField {
        field: &'static str,
    },
    InvalidField {
        field: &'static str,
        detail: String,
    },
    DuplicateField {
        field: String,
    },
    ModelNotAllowed {
        model: String,
        allowed: Vec<String>,
    },
    AgentNotAllowed {
        agent: String,
    },
    MaxTokensExceeded {
        asked: u64,
        limit: u64,
    },
    TooManyChoices {
        asked: u64,
        limit: u64,
    },
    /// A counted limit has no room for the request: named by its rule.
    LimitReached {
        rule: Rule,
        retry_after: Duration,
    },
    /// A spend guard applies and the model has no price: the gateway never guesses one.
    PriceUnknown {
        model: String,
    },
    /// A token budget or spend guard applies and the request holds content the upstream
    /// fetches or expands, which the workspace gives no bound for.
    FetchedContentUnbounded {
        items: u64,
    },
    /// An opened path's body is neither JSON nor a form the gateway can read, so the model
    /// and agent it names cannot be checked.
    UnreadableBody {
        detail: String,
    },
    /// A budget applies and the request does not bound what it costs.
    CostUnbounded {
        why: &'static str,
    },
    /// A budget applies and the opened path is one the gateway cannot price.
    UnmeteredPath {
        path: String,
    },
    NoUpstreamKey {
        address: String,
    },
    StoreUnavailable,
    UpstreamUnreachable,
    UpstreamTimeout,
    NotReady,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingKey
            | Refusal::MalformedKey
            | Refusal::UnknownKey
            | Refusal::ExpiredKey { .. } => StatusCode::UNAUTHORIZED,
            // The issuer's keys cannot be read: the token may be good, so try again later.
            Refusal::Token(crate::oidc::TokenRefusal::IssuerUnavailable { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Refusal::Token(_) => StatusCode::UNAUTHORIZED,
            Refusal::NoWorkload { .. } | Refusal::AmbiguousWorkload { .. } => StatusCode::FORBIDDEN,
            Refusal::PathNotFound { .. } => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::InvalidPath { .. } => StatusCode::BAD_REQUEST,
            Refusal::UnsupportedContentEncoding { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::MalformedJson { .. }
            | Refusal::MissingField { .. }
            | Refusal::InvalidField { .. }
            | Refusal::DuplicateField { .. }
            | Refusal::MaxTokensExceeded { .. }
            | Refusal::TooManyChoices { .. } => StatusCode::BAD_REQUEST,
            Refusal::ModelNotAllowed { .. }
            | Refusal::AgentNotAllowed { .. }
            | Refusal::PriceUnknown { .. }
            | Refusal::FetchedContentUnbounded { .. }
            | Refusal::CostUnbounded { .. }
            | Refusal::UnmeteredPath { .. } => StatusCode::FORBIDDEN,
            Refusal::UnreadableBody { .. } => StatusCode::BAD_REQUEST,
            Refusal::LimitReached { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::NoUpstreamKey { .. } | Refusal::StoreUnavailable | Refusal::NotReady => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Refusal::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            Refusal::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The decision's reason as metrics and audit lines name it.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingKey => "missing_key",
            Refusal::MalformedKey => "malformed_key",
            Refusal::UnknownKey => "unknown_key",
            Refusal::ExpiredKey { .. } => "expired_key",
            Refusal::Token(refusal) => refusal.code(),
            Refusal::NoWorkload { .. } => "token_no_workload",
            Refusal::AmbiguousWorkload { .. } => "token_ambiguous_workload",
            Refusal::PathNotFound { .. } => "path_not_found",
            Refusal::MethodNotAllowed { .. } => "method_not_allowed",
            Refusal::InvalidPath { .. } => "invalid_path",
            Refusal::UnsupportedContentEncoding { .. } => "unsupported_content_encoding",
            Refusal::BodyTooLarge { .. } => "body_too_large",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::MalformedJson { .. } => "malformed_json",
            Refusal::MissingField { .. } => "missing_field",
            Refusal::InvalidField { .. } => "invalid_field",
            Refusal::DuplicateField { .. } => "duplicate_field",
            Refusal::ModelNotAllowed { .. } => "model_not_allowed",
            Refusal::AgentNotAllowed { .. } => "agent_not_allowed",
            Refusal::MaxTokensExceeded { .. } => "max_tokens_exceeded",
            Refusal::TooManyChoices { .. } => "too_many_choices",
            Refusal::LimitReached { rule, .. } => match rule.measure {
                Measure::Requests => "rate_limited",
                Measure::Tokens => "token_budget_exhausted",
                Measure::Spend => "spend_guard_reached",
            },
            Refusal::PriceUnknown { .. } => "price_unknown",
            Refusal::FetchedContentUnbounded { .. } => "fetched_content_unbounded",
            Refusal::UnreadableBody { .. } => "unreadable_body",
            Refusal::CostUnbounded { .. } => "cost_unbounded",
            Refusal::UnmeteredPath { .. } => "unmetered_path",
            Refusal::NoUpstreamKey { .. } => "no_upstream_key",
            Refusal::StoreUnavailable => "store_unavailable",
            Refusal::UpstreamUnreachable => "upstream_unreachable",
            Refusal::UpstreamTimeout => "upstream_timeout",
            Refusal::NotReady => "not_ready",
        }
    }

    fn error_type(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            StatusCode::NOT_FOUND => "not_found_error",
            status if status.is_server_error() => "gateway_error",
            _ => "invalid_request_error",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Refusal::MissingField { field } | Refusal::InvalidField { field, .. } => Some(field),
            Refusal::DuplicateField { field } => Some(field),
            Refusal::ModelNotAllowed { .. } | Refusal::PriceUnknown { .. } => Some("model"),
            Refusal::FetchedContentUnbounded { .. } => Some("messages"),
            Refusal::AgentNotAllowed { .. } => Some("agent_id"),
            Refusal::MaxTokensExceeded { .. } => Some("max_tokens"),
            Refusal::TooManyChoices { .. } => Some("n"),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refusal::LimitReached { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::MissingKey => "No gateway key: send `Authorization: Bearer tmt_...` with the key you were issued (`tramontane gateway issue`).".into(),
            Refusal::MalformedKey => "The Authorization header does not hold a gateway key of the form `tmt_<id>_<secret>` nor a workload's token (a JWT); a Mistral key is not accepted here.".into(),
            Refusal::Token(refusal) => refusal.message(),
            Refusal::NoWorkload { issuer, subject } => format!("The token of issuer `{}` for `{}` verifies, but no workload of the policy is this token: its operator can declare one under `workloads:` with this issuer and subject (and the claims that tell it apart).", shown(issuer), shown(subject)),
            Refusal::AmbiguousWorkload { workloads } => format!("The token could be any of the workloads {}, so the gateway picks none: its operator must tell them apart by a claim.", workloads.join(", ")),
            Refusal::UnknownKey => "This gateway key is unknown or was revoked; ask for a new one.".into(),
            Refusal::ExpiredKey { expired } => format!("This gateway key expired on {expired}; ask for a new one."),
            Refusal::InvalidPath { path } => format!("`{}` holds a dot segment, an empty segment or an encoded separator (`%2e`, `%2f`, `%5c`, `%25` or a backslash); the gateway forwards only plain paths.", shown(path)),
            Refusal::UnsupportedContentEncoding { encoding } => format!("The request body is sent with `Content-Encoding: {}`; the gateway reads only uncompressed bodies: send it without a content encoding.", shown(encoding)),
            Refusal::PathNotFound { path } => format!("`{}` is not served by this gateway; it passes /v1/chat/completions, /v1/fim/completions, /v1/embeddings, /v1/agents/completions, /v1/moderations, /v1/chat/moderations and /v1/models, and paths the policy opens.", shown(path)),
            Refusal::MethodNotAllowed { method, path } => format!("`{} {}` is not allowed.", shown(method), shown(path)),
            Refusal::BodyTooLarge { limit } => format!("The request body is larger than the gateway's limit of {limit} bytes."),
            Refusal::BodyTimeout => "The request body did not arrive in time.".into(),
            Refusal::MalformedJson { detail } => format!("The request body is not a JSON object: {detail}."),
            Refusal::MissingField { field } => format!("The request has no `{field}`."),
            Refusal::InvalidField { field, detail } => format!("`{field}` {detail}."),
            Refusal::DuplicateField { field } => format!("`{field}` appears more than once in the request body."),
            Refusal::ModelNotAllowed { model, allowed } => {
                if allowed.is_empty() {
                    format!("Model `{model}` is not allowed for this key, which may use no model.")
                } else {
                    format!("Model `{model}` is not allowed for this key; allowed: {}.", allowed.join(", "))
                }
            }
            Refusal::AgentNotAllowed { agent } => format!("Agent `{agent}` is not allowed for this key's workspace."),
            Refusal::MaxTokensExceeded { asked, limit } => format!("`max_tokens` {asked} is above this key's limit of {limit} tokens per request."),
            Refusal::TooManyChoices { asked, limit } => format!("`n` {asked} is above the gateway's limit of {limit} completions per request."),
            Refusal::LimitReached { rule, retry_after } => format!("Limit reached: {rule} (rule `{}`); it has room again in {}s.", rule.id, seconds(*retry_after)),
            Refusal::PriceUnknown { model } => format!("Model `{model}` has no known price, and a spend guard applies to this key: the gateway does not guess prices. Its operator can declare the model's prices in the policy (`models:`)."),
            Refusal::FetchedContentUnbounded { items } => format!("The request holds {items} item(s) the upstream fetches or expands (a document, an image by URL, a stored file, an agent's own prompt) whose tokens the gateway cannot see, and a token budget or spend guard applies: send the content inline, or ask the operator to set the workspace's `gateway.fetched_content_tokens`."),
            Refusal::UnreadableBody { detail } => format!("The request body is neither a JSON object nor a multipart form the gateway can read ({detail}), so the model and agent it names cannot be checked."),
            Refusal::CostUnbounded { why } => format!("A token budget or spend guard applies to this key, and the request's cost has no bound: {why}."),
            Refusal::UnmeteredPath { path } => format!("`{path}` is not metered by the gateway, and a token budget or spend guard applies to this key; its operator can mark the path `unmetered: true` in the workspace's `gateway.paths` to let it through anyway."),
            Refusal::NoUpstreamKey { address } => format!("The gateway holds no upstream key for `{address}`; its operator must provide it."),
            Refusal::StoreUnavailable => "The gateway's limit store is unavailable; try again shortly.".into(),
            Refusal::UpstreamUnreachable => "The gateway could not reach the upstream API.".into(),
            Refusal::UpstreamTimeout => "The upstream API did not answer in time.".into(),
            Refusal::NotReady => "The gateway has not loaded a policy yet.".into(),
        }
    }

    /// The refusal as an HTTP response in Mistral's error shape.
    pub fn into_response(self) -> Response<Body> {
        let body = json!({
            "object": "error",
            "message": self.message(),
            "type": self.error_type(),
            "param": self.param(),
            "code": self.reason(),
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(after) = self.retry_after() {
            response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from_str(&seconds(after).to_string())
                    .unwrap_or(HeaderValue::from_static("1")),
            );
        }
        if matches!(self.status(), StatusCode::UNAUTHORIZED) {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Longest piece of a caller's request an answer repeats.
const SHOWN_BYTES: usize = 200;

/// A caller's text as an answer repeats it: at most [`SHOWN_BYTES`], cut on a character
/// boundary with a marker, so a huge path is not sent back whole.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    crate::audit::bounded(text, SHOWN_BYTES)
}

/// Whole seconds, rounded up and at least one: `Retry-After: 0` invites a tight loop.
pub fn seconds(duration: Duration) -> u64 {
    let whole = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_is_mistral_shaped_with_retry_after() {
        let refusal = Refusal::LimitReached {
            rule: Rule::new(
                tramontane::runtime::RuleScope::Key("workspace.w.key.ab12".into()),
                Measure::Requests,
                tramontane::runtime::Window::Minute,
                30,
            ),
            retry_after: Duration::from_millis(1500),
        };
        let response = refusal.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["object"], "error");
        assert_eq!(json["type"], "rate_limit_error");
        assert_eq!(json["code"], "rate_limited");
        assert!(json["param"].is_null());
        assert!(json["message"].as_str().unwrap().contains("30 requests"));
    }

    #[test]
    fn amounts_and_waits_are_shown_plainly() {
        assert_eq!(seconds(Duration::ZERO), 1);
        assert_eq!(seconds(Duration::from_secs(60)), 60);
    }
}
