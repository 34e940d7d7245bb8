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

pub struct FakeInferenceState {
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
            let completion = request["max_tokens"]
                .as_u64()
                .unwrap_or(COMPLETION_TOKENS)
                .min(COMPLETION_TOKENS);
            if request["stream"].as_bool() == Some(true) {
                let pause = *state.stream_pause.lock().unwrap();
                return stream(model, completion, pause, fault);
            }
            json_response(
                StatusCode::OK,
                json!({"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": model,
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "word ".repeat(completion as usize)}}],
                       "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion,
                                 "total_tokens": PROMPT_TOKENS + completion}}),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// A stream of one chunk per completion token, the last with `usage`, then `[DONE]`.
fn stream(
    model: &str,
    completion: u64,
    pause: Duration,
    fault: Option<InferenceFault>,
) -> Response {
    let model = model.to_owned();
    let (cut, hang) = match fault {
        Some(InferenceFault::CutStream { after_chunks }) => (Some(after_chunks), None),
        Some(InferenceFault::HangStream { after_chunks }) => (None, Some(after_chunks)),
        _ => (None, None),
    };
    let total = completion.max(1) as usize;
    let events = futures_util::stream::unfold(0usize, move |sent| {
        let model = model.clone();
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
                    chunk["usage"] = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": total,
                                            "total_tokens": PROMPT_TOKENS + total as u64});
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
