//! One request through the gateway: authenticate the caller, read and check the body,
//! enforce the policy, forward with the gateway's own Mistral key, and pass the answer back
//! untouched (headers minus hop-by-hop ones, body frame by frame).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use jiff::Timestamp;
use serde_json::Value;

use crate::access::{Caller, Grant};
use crate::audit::AuditRecord;
use crate::enforce::{self, Admitted};
use crate::identity;
use crate::metered::{self, Accounting, Answer};
use crate::opened;
use crate::refusal::Refusal;
use crate::request::{Endpoint, InferenceRequest};
use crate::scrub::ScrubbedBody;
use crate::state::{Gateway, PolicyState};
use crate::store::{BudgetLine, Reservation};
use crate::upstream::{UpstreamError, UpstreamRequest, forwardable, strip_hop_by_hop};

/// The header naming the gateway's id for a request, also in its audit line.
pub const REQUEST_ID_HEADER: &str = "x-tramontane-request-id";
/// Largest model list read from the upstream to filter.
const MAX_MODEL_LIST_BYTES: usize = 16 * 1024 * 1024;

/// What a path is, before the caller is known.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Inference(Endpoint),
    Models,
    Model(String),
    Other,
}

impl Route {
    fn of(method: &Method, path: &str) -> Result<Route, Refusal> {
        check_path(path)?;
        let wrong_method = || Refusal::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_owned(),
        };
        if let Some(endpoint) = Endpoint::of(path) {
            return if method == Method::POST {
                Ok(Route::Inference(endpoint))
            } else {
                Err(wrong_method())
            };
        }
        if path == "/v1/models" {
            return if method == Method::GET {
                Ok(Route::Models)
            } else {
                Err(wrong_method())
            };
        }
        // The id is one path segment: anything with a further `/` is not a model card.
        if let Some(id) = path.strip_prefix("/v1/models/")
            && !id.is_empty()
            && !id.contains('/')
            && method == Method::GET
        {
            return Ok(Route::Model(id.to_owned()));
        }
        Ok(Route::Other)
    }

    /// The path and query sent upstream: built from the route the gateway checked, never
    /// the caller's raw target. Only an opened path keeps its query (file listings page with
    /// one); the inference paths and the model paths take none.
    fn upstream_target(&self, path: &str, query: Option<&str>) -> String {
        match self {
            Route::Inference(_) => path.to_owned(),
            Route::Models => "/v1/models".to_owned(),
            Route::Model(id) => format!("/v1/models/{id}"),
            Route::Other => match query {
                Some(query) => format!("{path}?{query}"),
                None => path.to_owned(),
            },
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Route::Inference(endpoint) => endpoint.as_str(),
            Route::Models | Route::Model(_) => "models",
            Route::Other => "other",
        }
    }
}

/// Refuses a path the upstream could read differently from the gateway: a dot segment
/// (`/v1/models/../files`), an empty segment, a backslash, or a percent-encoded dot, slash,
/// backslash or percent sign (`%2e%2e`, `%2f`, `%5c`, and `%25`, which a second decoding
/// turns into one of them). Checked before routing, on the path exactly as received.
fn check_path(path: &str) -> Result<(), Refusal> {
    let invalid = || Refusal::InvalidPath {
        path: path.to_owned(),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid());
    };
    if path.contains('\\') {
        return Err(invalid());
    }
    let lowered = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%25"]
        .iter()
        .any(|encoded| lowered.contains(encoded))
    {
        return Err(invalid());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    let bad = segments.iter().enumerate().any(|(index, segment)| {
        matches!(*segment, "." | "..") || (segment.is_empty() && index != last)
    });
    if bad {
        return Err(invalid());
    }
    Ok(())
}

/// Refuses a request body in a `Content-Encoding` other than identity: the gateway reads the
/// body to judge it (the model, `max_tokens`, the worst case), and a compressed one would be
/// forwarded as bytes it never read.
fn check_content_encoding(headers: &HeaderMap) -> Result<(), Refusal> {
    for value in headers.get_all(CONTENT_ENCODING) {
        let encoding = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let identity = encoding.split(',').all(|coding| {
            coding.trim().is_empty() || coding.trim().eq_ignore_ascii_case("identity")
        });
        if !identity {
            return Err(Refusal::UnsupportedContentEncoding { encoding });
        }
    }
    Ok(())
}

/// Failures of the gateway or the upstream, as opposed to refusals of the request.
fn decision_of(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::UpstreamUnreachable
        | Refusal::UpstreamTimeout
        | Refusal::NoUpstreamKey { .. }
        | Refusal::StoreUnavailable
        | Refusal::NotReady => "failed",
        _ => "refused",
    }
}

/// The handler for every inference path. Each cross-cutting step happens here once per
/// request: the request metrics, the request id header, and the audit line and decision
/// metric — through [`metered::conclude`], now for a refusal, or when the answer's body
/// closes.
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let request_id = format!("gw-{}", uuid::Uuid::new_v4().simple());
    let mut record = AuditRecord {
        time: Timestamp::now().to_string(),
        request_id,
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        decision: "admitted",
        ..AuditRecord::default()
    };
    let route = Route::of(request.method(), request.uri().path());
    let label = route.as_ref().map_or("other", Route::label);
    let outcome = match route {
        Ok(route) => proxy(&gateway, request, &mut record, started, route).await,
        Err(refusal) => Err(refusal),
    };
    gateway
        .metrics
        .workspace_request(record.workspace.as_deref());
    let header = HeaderValue::from_str(&record.request_id).ok();
    let mut response = match outcome {
        Ok(answer) => answer.into_response(gateway.clone(), record, started),
        Err(refusal) => {
            record.decision = decision_of(&refusal);
            record.reason = refusal.reason();
            if let Refusal::LimitReached { rule, .. } = &refusal {
                record.rule = Some(rule.id.clone());
            }
            record.status = Some(refusal.status().as_u16());
            record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            metered::conclude(&gateway, record);
            refusal.into_response()
        }
    };
    gateway.metrics.request(label, response.status().as_u16());
    if let Some(value) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

async fn proxy(
    gateway: &Arc<Gateway>,
    request: Request<Body>,
    record: &mut AuditRecord,
    started: Instant,
    route: Route,
) -> Result<Answer, Refusal> {
    let policy = gateway.policy.load_full().ok_or(Refusal::NotReady)?;
    let caller = identity::authenticate(
        &policy,
        request.headers(),
        gateway.today(),
        jiff::Timestamp::now(),
        record,
    )
    .await?;
    check_content_encoding(request.headers())?;
    let target = route.upstream_target(request.uri().path(), request.uri().query());
    let mut call = Call {
        gateway,
        policy: &policy,
        caller,
        record,
        started,
        target,
    };
    match route {
        Route::Inference(endpoint) => inference(&mut call, endpoint, request).await,
        Route::Models => models(&mut call, request).await,
        Route::Model(id) => {
            enforce::check_model(call.grant(), &id, &gateway.models.load())?;
            call.record.model_asked = Some(id);
            let key = call.upstream_key()?;
            let (parts, _) = request.into_parts();
            forward(&mut call, parts, Bytes::new(), key, None).await
        }
        Route::Other => opened_path(&mut call, request).await,
    }
}

/// One authenticated request on its way through: what every step after authentication
/// reads, and the audit record it fills in.
struct Call<'a> {
    gateway: &'a Arc<Gateway>,
    policy: &'a PolicyState,
    caller: &'a Caller,
    record: &'a mut AuditRecord,
    started: Instant,
    /// The path and query forwarded: the one the gateway checked.
    target: String,
}

impl Call<'_> {
    fn grant(&self) -> &Grant {
        &self.caller.grant
    }

    /// The Mistral key the caller's workspace forwards with.
    fn upstream_key(&self) -> Result<secrecy::SecretString, Refusal> {
        upstream_key(self.gateway, self.policy, self.grant())
    }

    /// Sends `request` upstream and times the answer under `endpoint`; a failure to get one
    /// is the caller's 502 or 504.
    async fn send(
        &self,
        request: UpstreamRequest,
        endpoint: &'static str,
    ) -> Result<Response<crate::upstream::UpstreamBody>, Refusal> {
        let sent = Instant::now();
        let response = self
            .gateway
            .upstream
            .send(request, self.gateway.config.limits.upstream_timeout)
            .await
            .map_err(|error| {
                tracing::warn!(request_id = %self.record.request_id, %error, "upstream request failed");
                match error {
                    UpstreamError::Timeout(_) => Refusal::UpstreamTimeout,
                    UpstreamError::Unreachable(_) => Refusal::UpstreamUnreachable,
                }
            })?;
        self.gateway
            .metrics
            .upstream_latency(endpoint, sent.elapsed().as_secs_f64());
        Ok(response)
    }
}

fn upstream_key(
    gateway: &Gateway,
    policy: &PolicyState,
    grant: &Grant,
) -> Result<secrecy::SecretString, Refusal> {
    let address = grant
        .upstream_key
        .clone()
        .ok_or_else(|| Refusal::NoUpstreamKey {
            address: "the workspace's gateway.upstream_key".into(),
        })?;
    gateway
        .upstream_key(policy, &address)
        .ok_or(Refusal::NoUpstreamKey { address })
}

async fn read_body(gateway: &Gateway, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let limits = &gateway.config.limits;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Err(Refusal::BodyTooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let limited = Limited::new(body, limits.max_body_bytes);
    match tokio::time::timeout(limits.client_timeout, limited.collect()).await {
        Err(_) => Err(Refusal::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Refusal::BodyTooLarge {
                limit: limits.max_body_bytes,
            })
        }
        Ok(Err(error)) => Err(Refusal::MalformedJson {
            detail: format!("the body could not be read ({error})"),
        }),
    }
}

/// Counts the request against the grant's rates and reserves `lines`, in one store
/// operation. A store failure refuses it unless the workspace chose `store_failure:
/// fail_open`; then it is counted in the in-process fallback store instead.
async fn count(
    gateway: &Arc<Gateway>,
    grant: &Grant,
    request_id: &str,
    lines: &[BudgetLine],
) -> Result<Option<Reservation>, Refusal> {
    let now = Timestamp::now();
    let counted = match enforce::admit(
        &gateway.store,
        grant,
        request_id,
        lines,
        now,
        &gateway.leases,
    )
    .await
    {
        Ok(reservation) => {
            // Off the request's path: a task of its own checks the alert thresholds.
            gateway
                .alerts
                .admitted(gateway, &gateway.store, grant, request_id, lines);
            Ok(reservation)
        }
        Err(enforce::Admit::Refused(refusal)) => Err(refusal),
        Err(enforce::Admit::StoreFailed(error)) => {
            gateway.metrics.store_failed("admit and reserve", &error);
            fail_open_or_closed(gateway, grant)?;
            let fallback = &gateway.fallback;
            match enforce::admit(fallback, grant, request_id, lines, now, &gateway.leases).await {
                Ok(reservation) => {
                    gateway
                        .alerts
                        .admitted(gateway, &gateway.fallback, grant, request_id, lines);
                    Ok(reservation)
                }
                Err(enforce::Admit::Refused(refusal)) => Err(refusal),
                Err(enforce::Admit::StoreFailed(error)) => {
                    gateway
                        .metrics
                        .store_failed("admit and reserve in-process", &error);
                    Err(Refusal::StoreUnavailable)
                }
            }
        }
    };
    if counted.is_ok() {
        gateway.metrics.rates_counted(&grant.rules);
    }
    counted
}

/// After a store failure: refused for a `fail_closed` workspace, let through to the
/// fallback store for a `fail_open` one.
fn fail_open_or_closed(gateway: &Gateway, grant: &Grant) -> Result<(), Refusal> {
    match grant.store_failure {
        tramontane::model::StoreFailure::FailOpen => {
            gateway.metrics.store_fallback();
            Ok(())
        }
        tramontane::model::StoreFailure::FailClosed => Err(Refusal::StoreUnavailable),
    }
}

async fn inference(
    call: &mut Call<'_>,
    endpoint: Endpoint,
    request: Request<Body>,
) -> Result<Answer, Refusal> {
    let (gateway, grant) = (call.gateway, &call.caller.grant);
    let record = &mut *call.record;
    let (parts, body) = request.into_parts();
    let body = read_body(gateway, &parts.headers, body).await?;
    let asked = InferenceRequest::parse(endpoint, &body)?;
    record.model_asked = asked.model.clone();
    record.agent_id = asked.agent_id.clone();
    record.stream = asked.stream;
    let models = gateway.models.load_full();
    let forward_body = enforce::check_request(
        grant,
        &asked,
        &body,
        &models,
        gateway.config.limits.max_choices,
    )?;
    let key = call.upstream_key()?;
    let (admitted, lines) = enforce::worst_case(
        grant,
        &asked,
        forward_body,
        &models,
        &call.policy.prices,
        Timestamp::now(),
    )?;
    let reservation = count(gateway, grant, &call.record.request_id, &lines).await?;
    let Admitted {
        body, lines, worst, ..
    } = admitted;
    let accounting = Some(Accounting {
        reservation,
        lines,
        worst,
        prices: call.policy.prices.clone(),
    });
    forward(call, parts, body, key, accounting).await
}

async fn forward(
    call: &mut Call<'_>,
    parts: http::request::Parts,
    body: Bytes,
    key: secrecy::SecretString,
    accounting: Option<Accounting>,
) -> Result<Answer, Refusal> {
    let gateway = call.gateway;
    let upstream_request = UpstreamRequest {
        method: parts.method,
        path_and_query: call.target.clone(),
        headers: forwardable(parts.headers),
        body,
        key: key.clone(),
    };
    let added = call.started.elapsed();
    gateway.metrics.added_latency(added.as_secs_f64());
    call.record.added_ms = Some(added.as_secs_f64() * 1000.0);
    let endpoint = Endpoint::of(&call.record.path).map_or("models", Endpoint::as_str);
    let response = call.send(upstream_request, endpoint).await?;
    let record = &mut *call.record;
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let status = head.status;
    // An error may repeat the credential it refused: the caller never sees that key.
    let body = if status.is_success() {
        body
    } else {
        BodyExt::boxed_unsync(ScrubbedBody::new(body, key))
    };
    record.upstream_status = Some(status.as_u16());
    record.status = Some(status.as_u16());
    let upstream_ok = status.is_success();
    // An answer that is an error used nothing: its reservation goes back now.
    let accounting = accounting.filter(|_| upstream_ok);
    let stream = head
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    Ok(Answer {
        head,
        body,
        scan: upstream_ok && accounting.is_some(),
        accounting,
        stream,
        upstream_ok,
    })
}

/// `GET /v1/models`, filtered to the models the caller may use (aliases kept on each card).
async fn models(call: &mut Call<'_>, request: Request<Body>) -> Result<Answer, Refusal> {
    let key = call.upstream_key()?;
    let (gateway, grant) = (call.gateway, &call.caller.grant);
    let (parts, _) = request.into_parts();
    let timeout = gateway.config.limits.upstream_timeout;
    call.record.added_ms = Some(call.started.elapsed().as_secs_f64() * 1000.0);
    let upstream_request = UpstreamRequest {
        method: Method::GET,
        path_and_query: call.target.clone(),
        headers: forwardable(parts.headers),
        body: Bytes::new(),
        key: key.clone(),
    };
    let response = call.send(upstream_request, "models").await?;
    let record = &mut *call.record;
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let bytes =
        match tokio::time::timeout(timeout, Limited::new(body, MAX_MODEL_LIST_BYTES).collect())
            .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(_)) => return Err(Refusal::UpstreamUnreachable),
            Err(_) => return Err(Refusal::UpstreamTimeout),
        };
    record.upstream_status = Some(head.status.as_u16());
    record.status = Some(head.status.as_u16());
    let upstream_ok = head.status.is_success();
    let body = if upstream_ok {
        let directory = gateway.models.load();
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut list) => {
                if let Some(cards) = list.get_mut("data").and_then(Value::as_array_mut) {
                    cards.retain(|card| {
                        card.get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| grant.allows_model(id, &directory))
                    });
                }
                head.headers.remove(CONTENT_LENGTH);
                Bytes::from(list.to_string())
            }
            // Not a list: nothing can be filtered, so nothing is passed on.
            Err(_) => return Err(Refusal::UpstreamUnreachable),
        }
    } else {
        scrub_bytes(bytes, &key)
    };
    Ok(Answer {
        head,
        body: whole_body(body),
        accounting: None,
        scan: false,
        stream: false,
        upstream_ok,
    })
}

/// A body already read whole, as the answer type the metered body passes on.
fn whole_body(bytes: Bytes) -> crate::upstream::UpstreamBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A whole error body with the key it was sent with masked, as [`ScrubbedBody`] does for a
/// streamed one.
fn scrub_bytes(bytes: Bytes, key: &secrecy::SecretString) -> Bytes {
    use secrecy::ExposeSecret;
    let secret = key.expose_secret().as_bytes();
    if secret.is_empty() || !bytes.windows(secret.len()).any(|window| window == secret) {
        return bytes;
    }
    let mut out = bytes.to_vec();
    let mut at = 0;
    while at + secret.len() <= out.len() {
        if &out[at..at + secret.len()] == secret {
            out[at..at + secret.len()].fill(b'*');
            at += secret.len();
        } else {
            at += 1;
        }
    }
    Bytes::from(out)
}

/// A path the workspace opens, for the methods its entry names: the caller's rates apply,
/// the model and agent the body names are checked (JSON or a multipart form; a body that is
/// neither is refused), and where a token budget or spend guard applies the call is reserved
/// at its unit price (OCR pages, speech characters) or, for a path the gateway cannot price,
/// refused unless the entry says `unmetered: true`.
async fn opened_path(call: &mut Call<'_>, request: Request<Body>) -> Result<Answer, Refusal> {
    let (gateway, grant) = (call.gateway, &call.caller.grant);
    let path = request.uri().path().to_owned();
    let entry = opened::entry(&grant.paths, request.method(), &path)?;
    let (parts, body) = request.into_parts();
    let body = read_body(gateway, &parts.headers, body).await?;
    let fields = opened::read(&parts.headers, &body).await?;
    call.record.model_asked = fields.model.clone();
    call.record.agent_id = fields.agent_id.clone();
    if let Some(model) = &fields.model {
        enforce::check_model(grant, model, &gateway.models.load())?;
    }
    if let Some(agent) = &fields.agent_id {
        enforce::check_agent(grant, agent)?;
    }
    let budgeted = grant.budgeted();
    let key = call.upstream_key()?;
    let accounting = match opened::UnitPath::of(&path) {
        Some(kind) if budgeted => {
            let cost = opened::unit_cost(kind, &fields, &call.policy.catalog, gateway.currency)?;
            let worst = enforce::Worst {
                tokens: crate::prices::TokenCounts::default(),
                cost,
                prices: None,
                tier_percent: crate::prices::STANDARD_PERCENT,
            };
            let (lines, kinds) = enforce::budget_lines(grant, 0, cost, Timestamp::now());
            let reservation = count(gateway, grant, &call.record.request_id, &lines).await?;
            Some(Accounting {
                reservation,
                lines: kinds,
                worst,
                prices: call.policy.prices.clone(),
            })
        }
        None if budgeted && !entry.unmetered() => {
            return Err(Refusal::UnmeteredPath { path });
        }
        _ => {
            count(gateway, grant, &call.record.request_id, &[]).await?;
            None
        }
    };
    forward(call, parts, body, key, accounting).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(
            Route::of(&Method::POST, "/v1/chat/completions"),
            Ok(Route::Inference(Endpoint::Chat))
        );
        assert!(matches!(
            Route::of(&Method::GET, "/v1/chat/completions"),
            Err(Refusal::MethodNotAllowed { .. })
        ));
        assert_eq!(Route::of(&Method::GET, "/v1/models"), Ok(Route::Models));
        assert_eq!(
            Route::of(&Method::GET, "/v1/models/mistral-embed"),
            Ok(Route::Model("mistral-embed".into()))
        );
        assert_eq!(Route::of(&Method::POST, "/v1/files"), Ok(Route::Other));
        // A model id is one segment.
        assert_eq!(
            Route::of(&Method::GET, "/v1/models/x/files"),
            Ok(Route::Other)
        );
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused_before_routing() {
        for path in [
            "/v1/models/../files",
            "/v1/models/%2e%2e/batch/jobs",
            "/v1/models/%2E%2E/batch/jobs",
            "/v1/models/x/../../files/file-abc/content",
            "/v1/models/./x",
            "/v1/models/a%2fb",
            "/v1/models/a%5Cb",
            "/v1/models/a\\..\\files",
            "/v1/models/%252e%252e/files",
            "/v1//files",
            "v1/models",
        ] {
            assert!(
                matches!(
                    Route::of(&Method::GET, path),
                    Err(Refusal::InvalidPath { .. })
                ),
                "{path}"
            );
        }
        assert!(check_path("/v1/models/ft:open-mistral-7b:abc%3A1").is_ok());
        assert!(check_path("/v1/classifiers/").is_ok());
    }

    #[test]
    fn the_upstream_target_is_built_from_the_route() {
        let model = Route::Model("mistral-embed".into());
        assert_eq!(
            model.upstream_target("/v1/models/mistral-embed", Some("x=../../files")),
            "/v1/models/mistral-embed"
        );
        assert_eq!(
            Route::Inference(Endpoint::Chat).upstream_target("/v1/chat/completions", Some("a=b")),
            "/v1/chat/completions"
        );
        assert_eq!(
            Route::Models.upstream_target("/v1/models", Some("a=b")),
            "/v1/models"
        );
        assert_eq!(
            Route::Other.upstream_target("/v1/files", Some("page=2")),
            "/v1/files?page=2"
        );
    }

    #[test]
    fn only_identity_bodies_are_read() {
        let mut headers = HeaderMap::new();
        assert!(check_content_encoding(&headers).is_ok());
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        assert!(check_content_encoding(&headers).is_ok());
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(matches!(
            check_content_encoding(&headers),
            Err(Refusal::UnsupportedContentEncoding { .. })
        ));
    }

    #[test]
    fn a_whole_error_body_loses_the_key() {
        let key = secrecy::SecretString::from("sk-secret-1".to_owned());
        let out = scrub_bytes(Bytes::from_static(b"bad key sk-secret-1!"), &key);
        assert_eq!(&out[..], b"bad key ***********!");
    }
}
