//! A loopback stand-in for Mistral's inference API that is cheap enough not to be what is
//! measured: precomputed bodies, no JSON parsing, one counter. It runs as a process of its
//! own (this bench binary started again with [`ROLE_VARIABLE`] set), so its CPU time is
//! neither the gateway's nor the load generator's and is read apart from both; one thread,
//! so it takes at most one core from them. Chat completions answer
//! with a fixed completion and `usage`; `"stream":true` answers with a fixed SSE stream whose
//! first chunk is sent at once and the rest after short pauses, so the first byte is
//! distinguishable from the whole stream. `/v1/models` answers the model list the gateway
//! reads at start. `GET /bench/answered` answers how many chat completions it has served,
//! so each row can show that a proxy's answers came from the mock and not from an error
//! path or a cache of its own.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::role::RoleProcess;
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

/// The mock's role ([`crate::role`]).
pub const ROLE: &str = "mock";

/// Chat completions answered so far, streamed or not.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

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

/// Whether a request body holds `"stream": true`, compact as the bench sends it or spaced
/// as a proxy may pass it on; a scan rather than a parse keeps the mock cheap.
fn asks_for_stream(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"stream\"";
    body.windows(KEY.len())
        .enumerate()
        .filter(|(_, window)| *window == KEY)
        .any(|(at, _)| {
            let rest = body[at + KEY.len()..].trim_ascii_start();
            rest.strip_prefix(b":")
                .is_some_and(|value| value.trim_ascii_start().starts_with(b"true"))
        })
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
        "/bench/answered" => Response::builder()
            .header("content-type", "text/plain")
            .body(
                Full::new(Bytes::from(ANSWERED.load(Ordering::Relaxed).to_string())).boxed_unsync(),
            )
            .expect("a response"),
        "/v1/chat/completions" => {
            ANSWERED.fetch_add(1, Ordering::Relaxed);
            if asks_for_stream(&body) {
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

/// The mock's role: serves on a free loopback port from one thread, writes the address on
/// stdout, and exits when stdin closes, so a bench that dies takes its mock with it.
pub fn serve() {
    let listener = crate::role::listen();
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
}

/// The mock process, stopped when dropped.
pub struct Mock {
    process: RoleProcess,
    pub address: SocketAddr,
}

impl Mock {
    /// Starts this bench binary again as the mock and waits for its address.
    pub fn start() -> Mock {
        let process = RoleProcess::start(ROLE, &[]);
        Mock {
            address: process.address,
            process,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Chat completions the mock has answered so far.
    pub fn answered(&self) -> u64 {
        let ask = || -> std::io::Result<u64> {
            let mut stream = std::net::TcpStream::connect(self.address)?;
            stream.write_all(
                b"GET /bench/answered HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
            )?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            answer
                .rsplit("\r\n\r\n")
                .next()
                .and_then(|body| body.trim().parse().ok())
                .ok_or_else(|| std::io::Error::other("no count in the answer"))
        };
        ask().expect("the mock's count")
    }
}
