//! A fake of Mistral's inference API on loopback, for the gateway's tests: chat (also
//! streamed, with `usage` in the last chunk), FIM, embeddings, agents and the model list, in
//! the spec's shapes; errors and slow or broken streams on request. It records every request
//! it receives, so a test can assert what was forwarded — and that nothing was.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

/// Prompt tokens the fake reports for every request.
pub const PROMPT_TOKENS: u64 = 11;
/// Completion tokens the fake writes when `max_tokens` does not say fewer.
pub const COMPLETION_TOKENS: u64 = 20;

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A scripted misbehaviour for the next request whose path starts with a prefix.
#[derive(Clone, Debug)]
pub enum InferenceFault {
    /// Answer with this status and a Mistral-shaped error body.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Wait this long before sending the response headers.
    Stall(Duration),
    /// Stream this many chunks, then close the connection without `usage` or `[DONE]`.
    CutStream { after_chunks: usize },
    /// Stream this many chunks, then go silent without closing.
    HangStream { after_chunks: usize },
}

/// How the fake bills when asked to bill like Mistral ([`FakeInference::bill_like_mistral`]):
/// at the worst a real tokenizer and a real account can do, so a gateway that charges at least
/// this charges at least what Mistral would.
#[derive(Clone, Debug)]
pub struct Billing {
    /// Tokens each item the upstream fetches or expands turns into (a document by URL or
    /// `data:`, an image by URL, a stored file).
    pub fetched_tokens: u64,
    /// Tokens of an agent's own instructions and tools, kept upstream.
    pub agent_prompt_tokens: u64,
    /// Completion tokens generated per choice when `max_tokens` is absent.
    pub default_completion: u64,
    /// Whether a request that does not say `standard_only` is served (and billed) on
    /// priority capacity.
    pub priority: bool,
    /// Whether answers leave `usage` out (the fake still bills).
    pub omit_usage: bool,
}

impl Default for Billing {
    fn default() -> Billing {
        Billing {
            fetched_tokens: 30_000,
            agent_prompt_tokens: 2_000,
            default_completion: 200,
            priority: false,
            omit_usage: false,
        }
    }
}

/// What the fake billed one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    pub path: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    pub priority: bool,
    /// Micro-units of USD, at Mistral's list prices for `model` (rounded up).
    pub cost_micros: u64,
}

impl Bill {
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Mistral's list prices in USD for a model the fake serves, from Mistral's published model
/// records (the bundled catalog): per million input, cached input and output tokens.
fn list_price(model: &str) -> (u64, u64, u64) {
    use tramontane::model::{Currency, PriceUnit};
    let prices = tramontane::policy::catalog::Catalog::bundled()
        .prices(model, Currency::Usd)
        .unwrap_or_else(|| panic!("the records have no price for {model}"));
    let per_million = |unit| prices.get(unit).map_or(0, |money| money.micros());
    (
        per_million(PriceUnit::InputTokens),
        per_million(PriceUnit::CachedInputTokens),
        per_million(PriceUnit::OutputTokens),
    )
}

/// The most tokens one image is billed as (64 rows of 64 patches, a break per row, an end).
const IMAGE_TOKENS: u64 = 64 * 65 + 1;

/// What a tokenizer makes of a request at worst: every byte of text a token, every message
/// a few control tokens, every image at its largest, and what the upstream fetches.
fn billed_prompt(value: &Value, billing: &Billing) -> u64 {
    match value {
        Value::String(text) => text.len() as u64,
        Value::Array(items) => items
            .iter()
            .map(|item| 3 + billed_prompt(item, billing))
            .sum(),
        Value::Object(map) => match map.get("type").and_then(Value::as_str) {
            Some("image_url") => {
                let url = map["image_url"]
                    .as_str()
                    .or_else(|| map["image_url"]["url"].as_str())
                    .unwrap_or_default();
                if url.starts_with("data:image/") {
                    IMAGE_TOKENS
                } else {
                    billing.fetched_tokens
                }
            }
            Some("document_url" | "file") => billing.fetched_tokens,
            _ => map
                .values()
                .map(|value| billed_prompt(value, billing))
                .sum(),
        },
        Value::Number(_) | Value::Bool(_) | Value::Null => 0,
    }
}

fn bill(path: &str, model: &str, request: &Value, billing: &Billing, completion: u64) -> Bill {
    let mut prompt = 0;
    for field in [
        "messages",
        "prompt",
        "suffix",
        "input",
        "inputs",
        "tools",
        "response_format",
        "prediction",
    ] {
        if let Some(value) = request.get(field) {
            prompt += billed_prompt(value, billing);
        }
    }
    if path == "/v1/agents/completions" {
        prompt += billing.agent_prompt_tokens;
    }
    let cached = if request
        .get("prompt_cache_key")
        .is_some_and(Value::is_string)
    {
        prompt / 2
    } else {
        0
    };
    let priority = billing.priority && request["service_tier"].as_str() != Some("standard_only");
    let (input, cached_input, output) = list_price(model);
    let at_list = u128::from(prompt - cached) * u128::from(input)
        + u128::from(cached) * u128::from(cached_input)
        + u128::from(completion) * u128::from(output);
    let percent = if priority { 175 } else { 100 };
    Bill {
        path: path.to_owned(),
        model: model.to_owned(),
        prompt_tokens: prompt,
        cached_tokens: cached,
        completion_tokens: completion,
        priority,
        cost_micros: (at_list * percent).div_ceil(100 * 1_000_000) as u64,
    }
}

fn usage_of(bill: &Bill) -> Value {
    json!({"prompt_tokens": bill.prompt_tokens, "completion_tokens": bill.completion_tokens,
           "total_tokens": bill.tokens(),
           "prompt_tokens_details": {"cached_tokens": bill.cached_tokens},
           "service_tier": if bill.priority { "priority" } else { "standard" }})
}

pub struct FakeInferenceState {
    billing: Mutex<Option<Billing>>,
    bills: Mutex<Vec<Bill>>,
    received: Mutex<Vec<Received>>,
    faults: Mutex<VecDeque<(String, InferenceFault)>>,
    /// Pause between two stream chunks.
    stream_pause: Mutex<Duration>,
    /// Pause before every answer.
    delay: Mutex<Duration>,
    /// While `true`, every inference request (not the model list) waits here after it is
    /// recorded: a test holds what was admitted upstream until it has seen every other
    /// answer.
    gate_closed: tokio::sync::watch::Sender<bool>,
}

impl Default for FakeInferenceState {
    fn default() -> FakeInferenceState {
        FakeInferenceState {
            billing: Mutex::default(),
            bills: Mutex::default(),
            received: Mutex::default(),
            faults: Mutex::default(),
            stream_pause: Mutex::default(),
            delay: Mutex::default(),
            gate_closed: tokio::sync::watch::Sender::new(false),
        }
    }
}

pub struct FakeInference {
    pub url: String,
    pub state: Arc<FakeInferenceState>,
    _runtime: tokio::runtime::Runtime,
}

fn models() -> Value {
    let card = |id: &str, aliases: &[&str], context: u64, fim: bool| {
        json!({"id": id, "object": "model", "created": 1_764_633_600u64, "owned_by": "mistralai",
               "capabilities": {"completion_chat": true, "completion_fim": fim, "function_calling": true,
                                "fine_tuning": false, "vision": false, "classification": false},
               "max_context_length": context, "aliases": aliases, "type": "base"})
    };
    json!({"object": "list", "data": [
        card("mistral-small-2506", &["mistral-small-latest"], 131_072, false),
        card("mistral-small-latest", &["mistral-small-2506"], 131_072, false),
        card("mistral-large-2512", &["mistral-large-latest"], 262_144, false),
        card("mistral-large-latest", &["mistral-large-2512"], 262_144, false),
        card("codestral-2508", &["codestral-latest"], 256_000, true),
        card("codestral-latest", &["codestral-2508"], 256_000, true),
        card("mistral-embed", &["mistral-embed-2312"], 8192, false),
    ]})
}

fn resolve(model: &str) -> Option<&'static str> {
    match model {
        "mistral-small-latest" | "mistral-small-2506" => Some("mistral-small-2506"),
        "mistral-large-latest" | "mistral-large-2512" => Some("mistral-large-2512"),
        "codestral-latest" | "codestral-2508" => Some("codestral-2508"),
        "mistral-embed" | "mistral-embed-2312" => Some("mistral-embed-2312"),
        _ => None,
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream-marker", "fake-inference")
        .body(Body::from(body.to_string()))
        .expect("a response")
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({"object": "error", "message": message, "type": "invalid_request_error", "param": null, "code": "1000"}),
    )
}

impl FakeInference {
    /// Serves on a free loopback port from a runtime of its own, so tests that run the
    /// binary synchronously can use it.
    pub fn start() -> FakeInference {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let state = Arc::new(FakeInferenceState::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeInference {
            url: format!("http://{address}"),
            state,
            _runtime: runtime,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Requests received on paths other than the model list (which the gateway reads on its
    /// own).
    pub fn inference_requests(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|request| !request.path.starts_with("/v1/models"))
            .collect()
    }

    /// From now on, bill every inference request as Mistral would at worst ([`Billing`]),
    /// and generate every completion token asked for, whoever reads it.
    pub fn bill_like_mistral(&self, billing: Billing) {
        *self.state.billing.lock().unwrap() = Some(billing);
    }

    /// What the fake billed, one entry per request, in the order they arrived.
    pub fn bills(&self) -> Vec<Bill> {
        self.state.bills.lock().unwrap().clone()
    }

    pub fn fail_next(&self, path: &str, fault: InferenceFault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .push_back((path.to_owned(), fault));
    }

    pub fn set_stream_pause(&self, pause: Duration) {
        *self.state.stream_pause.lock().unwrap() = pause;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Holds every inference request from now on, once recorded, until
    /// [`open_gate`](Self::open_gate): what was forwarded can be counted before any of it is
    /// answered. The model list is still served.
    pub fn close_gate(&self) {
        self.state.gate_closed.send_replace(true);
    }

    /// Lets the held requests, and every later one, through.
    pub fn open_gate(&self) {
        self.state.gate_closed.send_replace(false);
    }
}

fn take_fault(state: &FakeInferenceState, path: &str) -> Option<InferenceFault> {
    let mut faults = state.faults.lock().unwrap();
    let index = faults
        .iter()
        .position(|(prefix, _)| path.starts_with(prefix.as_str()))?;
    faults.remove(index).map(|(_, fault)| fault)
}

async fn handle(
    State(state): State<Arc<FakeInferenceState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    state.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or(path.clone(), |pq| pq.as_str().to_owned()),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    if !path.starts_with("/v1/models") {
        let mut gate = state.gate_closed.subscribe();
        // The sender lives in the state, so waiting cannot fail for want of one.
        let _ = gate.wait_for(|closed| !closed).await;
    }
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let fault = take_fault(&state, &path);
    match &fault {
        Some(InferenceFault::Status {
            status,
            retry_after,
        }) => {
            let mut response = error(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "scripted failure",
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            return response;
        }
        Some(InferenceFault::Stall(pause)) => tokio::time::sleep(*pause).await,
        _ => {}
    }
    if !headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
    {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    match (method, path.as_str()) {
        (Method::GET, "/v1/models") => json_response(StatusCode::OK, models()),
        (Method::GET, model) if model.starts_with("/v1/models/") => {
            let id = &model["/v1/models/".len()..];
            let list = models();
            match list["data"]
                .as_array()
                .and_then(|cards| cards.iter().find(|card| card["id"] == id))
            {
                Some(card) => json_response(StatusCode::OK, card.clone()),
                None => error(StatusCode::NOT_FOUND, "Model not found"),
            }
        }
        (Method::POST, "/v1/embeddings") => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid JSON");
            };
            let Some(model) = request["model"].as_str().and_then(resolve) else {
                return error(StatusCode::BAD_REQUEST, "Invalid model");
            };
            json_response(
                StatusCode::OK,
                json!({"id": "emb-1", "object": "list", "model": model,
                       "data": [{"object": "embedding", "embedding": [0.1, -0.2, 0.3], "index": 0}],
                       "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 0, "total_tokens": PROMPT_TOKENS}}),
            )
        }
        (
            Method::POST,
            "/v1/chat/completions" | "/v1/fim/completions" | "/v1/agents/completions",
        ) => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid JSON");
            };
            let model = if path == "/v1/agents/completions" {
                "mistral-large-2512"
            } else {
                match request["model"].as_str().and_then(resolve) {
                    Some(model) => model,
                    None => return error(StatusCode::BAD_REQUEST, "Invalid model"),
                }
            };
            let billing = state.billing.lock().unwrap().clone();
            let Some(billing) = billing else {
                let completion = request["max_tokens"]
                    .as_u64()
                    .unwrap_or(COMPLETION_TOKENS)
                    .min(COMPLETION_TOKENS);
                if request["stream"].as_bool() == Some(true) {
                    let pause = *state.stream_pause.lock().unwrap();
                    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion.max(1),
                                       "total_tokens": PROMPT_TOKENS + completion.max(1)});
                    return stream(model, completion, Some(usage), pause, fault);
                }
                return json_response(
                    StatusCode::OK,
                    json!({"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": model,
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "word ".repeat(completion as usize)}}],
                           "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion,
                                     "total_tokens": PROMPT_TOKENS + completion}}),
                );
            };
            // Everything asked for is generated and billed, whether or not it is read.
            let choices = request["n"].as_u64().unwrap_or(1);
            let completion = request["max_tokens"]
                .as_u64()
                .unwrap_or(billing.default_completion)
                .saturating_mul(choices);
            let bill = bill(&path, model, &request, &billing, completion);
            state.bills.lock().unwrap().push(bill.clone());
            let usage = (!billing.omit_usage).then(|| usage_of(&bill));
            if request["stream"].as_bool() == Some(true) {
                let pause = *state.stream_pause.lock().unwrap();
                return stream(model, completion, usage, pause, fault);
            }
            let mut answer = json!({"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": model,
                   "choices": [{"index": 0, "finish_reason": "length",
                                "message": {"role": "assistant", "content": "w ".repeat(completion.min(10_000) as usize)}}]});
            if let Some(usage) = usage {
                answer["usage"] = usage;
            }
            json_response(StatusCode::OK, answer)
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// A stream of up to 50 chunks carrying the completion's tokens, the last with `usage` when
/// there is one, then `[DONE]`.
fn stream(
    model: &str,
    completion: u64,
    usage: Option<Value>,
    pause: Duration,
    fault: Option<InferenceFault>,
) -> Response {
    let model = model.to_owned();
    let (cut, hang) = match fault {
        Some(InferenceFault::CutStream { after_chunks }) => (Some(after_chunks), None),
        Some(InferenceFault::HangStream { after_chunks }) => (None, Some(after_chunks)),
        _ => (None, None),
    };
    let total = completion.clamp(1, 50) as usize;
    let events = futures_util::stream::unfold(0usize, move |sent| {
        let model = model.clone();
        let usage = usage.clone();
        async move {
            if cut == Some(sent) {
                return Some((Err(std::io::Error::other("cut")), usize::MAX));
            }
            if hang == Some(sent) {
                std::future::pending::<()>().await;
            }
            if sent == usize::MAX || sent > total {
                return None;
            }
            if sent > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let event = if sent == total {
                "data: [DONE]\n\n".to_owned()
            } else {
                let mut chunk = json!({"id": "cmpl-s", "object": "chat.completion.chunk", "created": 1,
                    "model": model, "choices": [{"index": 0, "delta": {"content": format!("t{sent} ")}, "finish_reason": null}]});
                if sent + 1 == total {
                    chunk["choices"][0]["finish_reason"] = json!("stop");
                    if let Some(usage) = &usage {
                        chunk["usage"] = usage.clone();
                    }
                }
                format!("data: {chunk}\n\n")
            };
            Some((Ok::<_, std::io::Error>(Bytes::from(event)), sent + 1))
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("x-upstream-marker", "fake-inference")
        .body(Body::from_stream(events))
        .expect("a response")
}
