//! A loopback stand-in for Mistral's inference API that is cheap enough not to be what is
//! measured: precomputed bodies, no JSON parsing, nothing recorded. Chat completions answer
//! with a fixed completion and `usage`; `"stream":true` answers with a fixed SSE stream whose
//! first chunk is sent at once and the rest after short pauses, so the first byte is
//! distinguishable from the whole stream. `/v1/models` answers the model list the gateway
//! reads at start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Chunks in a streamed answer; the last carries `usage`, then `[DONE]` follows.
const STREAM_CHUNKS: usize = 5;
/// Pause before every chunk after the first.
pub const STREAM_PAUSE: Duration = Duration::from_millis(1);

type Body = UnsyncBoxBody<Bytes, Infallible>;

const MODELS: &str = r#"{"object":"list","data":[{"id":"mistral-small-2506","object":"model","created":1764633600,"owned_by":"mistralai","capabilities":{"completion_chat":true,"completion_fim":false,"function_calling":true,"fine_tuning":false,"vision":false,"classification":false},"max_context_length":131072,"aliases":["mistral-small-latest"],"type":"base"},{"id":"mistral-small-latest","object":"model","created":1764633600,"owned_by":"mistralai","capabilities":{"completion_chat":true,"completion_fim":false,"function_calling":true,"fine_tuning":false,"vision":false,"classification":false},"max_context_length":131072,"aliases":["mistral-small-2506"],"type":"base"}]}"#;

const COMPLETION: &str = r#"{"id":"cmpl-bench","object":"chat.completion","created":1,"model":"mistral-small-2506","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Hello! How can I help you today?"}}],"usage":{"prompt_tokens":11,"completion_tokens":9,"total_tokens":20}}"#;

fn chunk(index: usize) -> Bytes {
    let last = index + 1 == STREAM_CHUNKS;
    let finish = if last { r#""stop""# } else { "null" };
    let usage = if last {
        format!(
            r#","usage":{{"prompt_tokens":11,"completion_tokens":{STREAM_CHUNKS},"total_tokens":{}}}"#,
            11 + STREAM_CHUNKS
        )
    } else {
        String::new()
    };
    Bytes::from(format!(
        "data: {{\"id\":\"cmpl-s\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mistral-small-2506\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{index} \"}},\"finish_reason\":{finish}}}]{usage}}}\n\n"
    ))
}

fn full(status: StatusCode, content_type: &str, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync())
        .expect("a response")
}

fn stream() -> Response<Body> {
    let frames = futures_util::stream::unfold(0usize, |sent| async move {
        if sent > STREAM_CHUNKS {
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(STREAM_PAUSE).await;
        }
        let data = if sent == STREAM_CHUNKS {
            Bytes::from_static(b"data: [DONE]\n\n")
        } else {
            chunk(sent)
        };
        Some((Ok::<_, Infallible>(Frame::data(data)), sent + 1))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed_unsync(StreamBody::new(frames)))
        .expect("a response")
}

async fn answer(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    Ok(match path.as_str() {
        "/v1/models" => full(StatusCode::OK, "application/json", MODELS),
        "/v1/chat/completions" => {
            // The bench's own request bodies, so a substring is enough to tell them apart.
            let streamed = body.windows(13).any(|w| w == b"\"stream\":true");
            if streamed {
                stream()
            } else {
                full(StatusCode::OK, "application/json", COMPLETION)
            }
        }
        _ => full(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"object":"error","message":"Not Found","type":"invalid_request_error","param":null,"code":"1000"}"#,
        ),
    })
}

/// Serves on a free loopback port from one thread of its own, for the life of the process.
pub fn start() -> SocketAddr {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking socket");
    let address = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        });
    });
    address
}
