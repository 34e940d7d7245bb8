//! `--upstream sandbox`: a deterministic stand-in for Mistral's inference API, for trying the
//! gateway without an account. It answers chat (also as a stream whose last chunk carries
//! `usage`), FIM, embeddings, agents and the model list in Mistral's shapes; the same request
//! always gets the same answer. It is never chosen unless asked for.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{BodyError, UpstreamBody, UpstreamRequest};
use crate::models::ModelDirectory;

/// Pause between two stream chunks, so a stream is seen to stream.
const CHUNK_PAUSE: Duration = Duration::from_millis(15);
/// Dimensions of a sandbox embedding.
const EMBEDDING_DIMENSIONS: usize = 8;
/// Completion tokens the sandbox writes when `max_tokens` does not say.
const DEFAULT_COMPLETION: u64 = 32;

pub struct SandboxUpstream {
    models: ModelDirectory,
    chunk_pause: Duration,
}

impl Default for SandboxUpstream {
    fn default() -> SandboxUpstream {
        SandboxUpstream {
            models: ModelDirectory::bundled(),
            chunk_pause: CHUNK_PAUSE,
        }
    }
}

fn full(status: StatusCode, body: Value) -> Response<UpstreamBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: String, kind: &str) -> Response<UpstreamBody> {
    full(
        status,
        json!({"object": "error", "message": message, "type": kind, "param": null, "code": null}),
    )
}

/// Tokens of a text as the sandbox counts them: one per four bytes, rounded up.
fn tokens_of(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

fn prompt_text(request: &Value) -> String {
    let mut text = String::new();
    fn collect(value: &Value, into: &mut String) {
        match value {
            Value::String(s) => {
                into.push_str(s);
                into.push(' ');
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, into)),
            Value::Object(map) => map.values().for_each(|item| collect(item, into)),
            _ => {}
        }
    }
    for field in ["messages", "prompt", "suffix", "input"] {
        if let Some(value) = request.get(field) {
            collect(value, &mut text);
        }
    }
    text
}

/// The words of the sandbox's answer: a fixed sentence, then a deterministic tail derived
/// from the prompt, cut to `max_tokens` words.
fn answer_words(model: &str, prompt: &str, max_tokens: u64) -> (Vec<String>, &'static str) {
    let digest = Sha256::digest(prompt.as_bytes());
    let mut words: Vec<String> = format!("Sandbox answer from {model}:")
        .split(' ')
        .map(str::to_owned)
        .collect();
    for byte in digest.iter().cycle().take(64) {
        words.push(format!("w{byte:02x}"));
    }
    let want = usize::try_from(max_tokens.min(DEFAULT_COMPLETION)).unwrap_or(0);
    // The sandbox's answers are DEFAULT_COMPLETION words long: fewer is a cut.
    let finish = if max_tokens < DEFAULT_COMPLETION {
        "length"
    } else {
        "stop"
    };
    words.truncate(want);
    (words, finish)
}

fn id_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Every input judged harmless, with usage.
fn moderation(raw: &[u8], body: &Value, model: &str) -> Response<UpstreamBody> {
    let text = prompt_text(body);
    let inputs = match &body["input"] {
        Value::Array(items) => items.len().max(1),
        _ => 1,
    };
    let categories = [
        "sexual",
        "hate_and_discrimination",
        "violence_and_threats",
        "selfharm",
    ];
    let result = json!({
        "categories": categories.iter().map(|c| (c.to_string(), json!(false))).collect::<serde_json::Map<_, _>>(),
        "category_scores": categories.iter().map(|c| (c.to_string(), json!(0.0))).collect::<serde_json::Map<_, _>>(),
    });
    let prompt = tokens_of(&text);
    full(
        StatusCode::OK,
        json!({"id": id_of(raw), "model": model, "results": vec![result; inputs],
               "usage": {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}}),
    )
}

impl SandboxUpstream {
    /// A sandbox without pauses between stream chunks, for tests.
    pub fn without_pauses() -> SandboxUpstream {
        SandboxUpstream {
            chunk_pause: Duration::ZERO,
            ..SandboxUpstream::default()
        }
    }

    pub fn answer(&self, request: UpstreamRequest) -> Response<UpstreamBody> {
        let path = request
            .path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        match (&request.method, path.as_str()) {
            (&Method::GET, "/v1/models") => full(
                StatusCode::OK,
                serde_json::from_str(ModelDirectory::bundled_json()).unwrap_or(Value::Null),
            ),
            (&Method::GET, path) if path.starts_with("/v1/models/") => {
                let id = &path["/v1/models/".len()..];
                let list: Value =
                    serde_json::from_str(ModelDirectory::bundled_json()).unwrap_or(Value::Null);
                let card = list["data"]
                    .as_array()
                    .and_then(|cards| cards.iter().find(|card| card["id"] == id).cloned());
                match card {
                    Some(card) => full(StatusCode::OK, card),
                    None => error(
                        StatusCode::NOT_FOUND,
                        format!("Model not found: {id}"),
                        "invalid_model",
                    ),
                }
            }
            (
                &Method::POST,
                "/v1/chat/completions"
                | "/v1/fim/completions"
                | "/v1/agents/completions"
                | "/v1/embeddings"
                | "/v1/moderations"
                | "/v1/chat/moderations",
            ) => {
                let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid JSON body".into(),
                        "invalid_request_error",
                    );
                };
                let model = if path == "/v1/agents/completions" {
                    "mistral-medium-2508".to_owned()
                } else {
                    match body["model"].as_str() {
                        Some(model) if self.models.group(model).is_some() => model.to_owned(),
                        Some(model) => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                format!("Invalid model: {model}"),
                                "invalid_model",
                            );
                        }
                        None => {
                            return error(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "Field required: model".into(),
                                "invalid_request_error",
                            );
                        }
                    }
                };
                if path == "/v1/embeddings" {
                    return self.embeddings(&request.body, &body, &model);
                }
                if path.ends_with("/moderations") {
                    return moderation(&request.body, &body, &model);
                }
                self.completion(&request.body, &body, &model)
            }
            (_, path) => error(
                StatusCode::NOT_FOUND,
                format!("Not found: {path}"),
                "not_found",
            ),
        }
    }

    fn embeddings(&self, raw: &[u8], body: &Value, model: &str) -> Response<UpstreamBody> {
        let inputs: Vec<String> = match &body["input"] {
            Value::String(text) => vec![text.clone()],
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => Vec::new(),
        };
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let digest = Sha256::digest(text.as_bytes());
                let vector: Vec<f64> = digest[..EMBEDDING_DIMENSIONS]
                    .iter()
                    .map(|&b| f64::from(b) / 255.0 - 0.5)
                    .collect();
                json!({"object": "embedding", "embedding": vector, "index": index})
            })
            .collect();
        let prompt: u64 = inputs.iter().map(|text| tokens_of(text)).sum();
        full(
            StatusCode::OK,
            json!({
                "id": id_of(raw), "object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}
            }),
        )
    }

    fn completion(&self, raw: &[u8], body: &Value, model: &str) -> Response<UpstreamBody> {
        let prompt = prompt_text(body);
        let max_tokens = body["max_tokens"].as_u64().unwrap_or(DEFAULT_COMPLETION);
        let (words, finish) = answer_words(model, &prompt, max_tokens);
        let usage = json!({
            "prompt_tokens": tokens_of(&prompt),
            "completion_tokens": words.len(),
            "total_tokens": tokens_of(&prompt) + words.len() as u64,
        });
        let id = id_of(raw);
        let created = 1_764_633_600u64;
        if body["stream"].as_bool() != Some(true) {
            return full(
                StatusCode::OK,
                json!({
                    "id": id, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": words.join(" ")}}],
                    "usage": usage,
                }),
            );
        }
        let count = words.len();
        let mut events: Vec<String> = words
            .into_iter()
            .enumerate()
            .map(|(i, word)| {
                let content = if i == 0 { word } else { format!(" {word}") };
                let mut chunk = json!({
                    "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                                 "finish_reason": null}],
                });
                if i + 1 == count {
                    chunk["choices"][0]["finish_reason"] = json!(finish);
                    chunk["usage"] = usage.clone();
                }
                format!("data: {chunk}\n\n")
            })
            .collect();
        if count == 0 {
            let chunk = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": finish}],
                "usage": usage,
            });
            events.push(format!("data: {chunk}\n\n"));
        }
        events.push("data: [DONE]\n\n".into());
        let pause = self.chunk_pause;
        let stream = futures_util::stream::iter(events).then(move |event| async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            Ok::<_, BodyError>(Frame::data(Bytes::from(event)))
        });
        let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn post(path: &str, body: Value) -> UpstreamRequest {
        UpstreamRequest {
            method: Method::POST,
            path_and_query: path.into(),
            headers: Default::default(),
            body: Bytes::from(body.to_string()),
            key: SecretString::from("sandbox"),
        }
    }

    async fn text(response: Response<UpstreamBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn answers_are_deterministic_and_bounded_by_max_tokens() {
        let sandbox = SandboxUpstream::without_pauses();
        let ask = json!({"model": "mistral-small-latest", "max_tokens": 5,
                         "messages": [{"role": "user", "content": "hello"}]});
        let first = text(sandbox.answer(post("/v1/chat/completions", ask.clone()))).await;
        let second = text(sandbox.answer(post("/v1/chat/completions", ask))).await;
        assert_eq!(first, second);
        let answer: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(answer["usage"]["completion_tokens"], 5);
        assert_eq!(answer["choices"][0]["finish_reason"], "length");
    }

    #[tokio::test]
    async fn a_stream_ends_with_usage_then_done() {
        let sandbox = SandboxUpstream::without_pauses();
        let ask = json!({"model": "codestral-latest", "stream": true, "max_tokens": 3,
                         "messages": [{"role": "user", "content": "hi"}]});
        let response = sandbox.answer(post("/v1/chat/completions", ask));
        assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
        let body = text(response).await;
        let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 4);
        assert_eq!(events[3], "data: [DONE]");
        let last: Value = serde_json::from_str(&events[2]["data: ".len()..]).unwrap();
        assert_eq!(last["usage"]["completion_tokens"], 3);
    }

    #[tokio::test]
    async fn unknown_models_and_paths_are_errors_in_mistrals_shape() {
        let sandbox = SandboxUpstream::without_pauses();
        let response = sandbox.answer(post(
            "/v1/chat/completions",
            json!({"model": "gpt-4", "messages": []}),
        ));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = sandbox.answer(post("/v1/files", json!({})));
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = sandbox.answer(post(
            "/v1/embeddings",
            json!({"model": "mistral-embed", "input": ["a", "b"]}),
        ));
        let answer: Value = serde_json::from_str(&text(response).await).unwrap();
        assert_eq!(answer["data"].as_array().unwrap().len(), 2);
        let response = sandbox.answer(post(
            "/v1/moderations",
            json!({"model": "mistral-moderation-2603", "input": ["a", "b"]}),
        ));
        let answer: Value = serde_json::from_str(&text(response).await).unwrap();
        assert_eq!(answer["results"].as_array().unwrap().len(), 2);
        assert_eq!(answer["results"][0]["categories"]["selfharm"], false);
    }
}
