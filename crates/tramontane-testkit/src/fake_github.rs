//! A fake GitHub REST API on loopback: a pull request's issue comments, listed in pages with
//! `Link` headers, created, updated and deleted, with GitHub's body limit, its bearer-token
//! check and a switch that makes the token read-only.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The login comments written with the fake's token are attributed to.
pub const BOT: &str = "github-actions[bot]";
/// GitHub's limit on a comment body, in characters.
pub const BODY_LIMIT: usize = 65_536;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    pub pr: u64,
    pub author: String,
    pub body: String,
}

pub struct GitHubState {
    pub token: String,
    pub url: Mutex<String>,
    pub comments: Mutex<Vec<FakeComment>>,
    pub next_id: Mutex<u64>,
    /// Largest page served, whatever `per_page` asks, so tests page with few comments.
    pub page_size: AtomicUsize,
    /// When set, writes answer 403 as they do for a read-only token.
    pub read_only: AtomicBool,
    pub log: Mutex<Vec<String>>,
    /// Statuses the next requests of a method answer with, one each, before any work is done.
    pub failures: Mutex<Vec<(Method, u16)>>,
}

pub struct FakeGitHub {
    pub url: String,
    pub state: Arc<GitHubState>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeGitHub {
    pub fn start(token: &str) -> FakeGitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let state = Arc::new(GitHubState {
            token: token.to_owned(),
            url: Mutex::new(String::new()),
            comments: Mutex::new(Vec::new()),
            next_id: Mutex::new(1000),
            page_size: AtomicUsize::new(100),
            read_only: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        *state.url.lock().unwrap() = url.clone();
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub {
            url,
            state,
            _runtime: runtime,
        }
    }

    /// A comment someone wrote on the pull request.
    pub fn add_comment(&self, pr: u64, author: &str, body: &str) -> u64 {
        let id = next_id(&self.state);
        self.state.comments.lock().unwrap().push(FakeComment {
            id,
            pr,
            author: author.to_owned(),
            body: body.to_owned(),
        });
        id
    }

    pub fn comments(&self, pr: u64) -> Vec<FakeComment> {
        let comments = self.state.comments.lock().unwrap();
        comments.iter().filter(|c| c.pr == pr).cloned().collect()
    }

    pub fn set_page_size(&self, size: usize) {
        self.state.page_size.store(size, Ordering::SeqCst);
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.state.read_only.store(read_only, Ordering::SeqCst);
    }

    /// The next `method` request answers `status` (a 502 from a proxy, say) without doing
    /// anything.
    pub fn fail_next(&self, method: Method, status: u16) {
        self.state.failures.lock().unwrap().push((method, status));
    }

    /// Every request as `METHOD /path?query`.
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }
}

fn next_id(state: &GitHubState) -> u64 {
    let mut next = state.next_id.lock().unwrap();
    *next += 1;
    *next
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "message": text,
            "documentation_url": "https://docs.github.com/rest"
        })),
    )
        .into_response()
}

fn render(state: &GitHubState, comment: &FakeComment) -> Value {
    json!({
        "id": comment.id,
        "body": comment.body,
        "user": { "login": comment.author, "type": "Bot" },
        "html_url": format!("https://github.test/acme/policies/pull/{}#issuecomment-{}", comment.pr, comment.id),
        "url": format!("{}/repos/acme/policies/issues/comments/{}", state.url.lock().unwrap(), comment.id),
    })
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn handle(
    State(state): State<Arc<GitHubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shown = match uri.query() {
        Some(q) => format!("{method} {}?{q}", uri.path()),
        None => format!("{method} {}", uri.path()),
    };
    state.log.lock().unwrap().push(shown);
    let failure = {
        let mut failures = state.failures.lock().unwrap();
        let at = failures.iter().position(|(m, _)| *m == method);
        at.map(|at| failures.remove(at).1)
    };
    if let Some(status) = failure {
        return (
            StatusCode::from_u16(status).unwrap(),
            "<html><body>Bad gateway</body></html>",
        )
            .into_response();
    }

    let expected = format!("Bearer {}", state.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    if headers.get("user-agent").is_none() {
        return message(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }

    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let writes = method != Method::GET;
    if writes && state.read_only.load(Ordering::SeqCst) {
        return message(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
    }
    let body_text = || -> Result<String, Box<Response>> {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|_| Box::new(message(StatusCode::BAD_REQUEST, "Problems parsing JSON")))?;
        let text = value["body"]
            .as_str()
            .ok_or_else(|| Box::new(message(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request")))?
            .to_owned();
        if text.chars().count() > BODY_LIMIT {
            return Err(Box::new(
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "IssueComment", "code": "custom", "field": "body",
                                    "message": "body is too long (maximum is 65536 characters)"}]
                    })),
                )
                    .into_response(),
            ));
        }
        Ok(text)
    };

    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["repos", _, _, "issues", number, "comments"]) => {
            let Ok(pr) = number.parse::<u64>() else {
                return message(StatusCode::NOT_FOUND, "Not Found");
            };
            let q = query(&uri);
            let asked: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
            let per_page = asked.min(state.page_size.load(Ordering::SeqCst)).max(1);
            let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let all: Vec<FakeComment> = {
                let comments = state.comments.lock().unwrap();
                comments.iter().filter(|c| c.pr == pr).cloned().collect()
            };
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| render(&state, c))
                .collect();
            let mut response = axum::Json(Value::Array(items)).into_response();
            if page * per_page < all.len() {
                let next = format!(
                    "<{}{}?per_page={asked}&page={}>; rel=\"next\"",
                    state.url.lock().unwrap(),
                    uri.path(),
                    page + 1
                );
                response
                    .headers_mut()
                    .insert("link", HeaderValue::from_str(&next).unwrap());
            }
            response
        }
        (Method::POST, ["repos", _, _, "issues", number, "comments"]) => {
            let Ok(pr) = number.parse::<u64>() else {
                return message(StatusCode::NOT_FOUND, "Not Found");
            };
            let text = match body_text() {
                Ok(text) => text,
                Err(response) => return *response,
            };
            let comment = FakeComment {
                id: next_id(&state),
                pr,
                author: BOT.to_owned(),
                body: text,
            };
            let rendered = render(&state, &comment);
            state.comments.lock().unwrap().push(comment);
            (StatusCode::CREATED, axum::Json(rendered)).into_response()
        }
        (Method::PATCH, ["repos", _, _, "issues", "comments", id]) => {
            let text = match body_text() {
                Ok(text) => text,
                Err(response) => return *response,
            };
            let mut comments = state.comments.lock().unwrap();
            let Some(comment) = comments.iter_mut().find(|c| id.parse() == Ok(c.id)) else {
                return message(StatusCode::NOT_FOUND, "Not Found");
            };
            if comment.author != BOT {
                return message(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by integration",
                );
            }
            comment.body = text;
            let rendered = render(&state, comment);
            axum::Json(rendered).into_response()
        }
        (Method::DELETE, ["repos", _, _, "issues", "comments", id]) => {
            let mut comments = state.comments.lock().unwrap();
            let Some(at) = comments.iter().position(|c| id.parse() == Ok(c.id)) else {
                return message(StatusCode::NOT_FOUND, "Not Found");
            };
            comments.remove(at);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}
