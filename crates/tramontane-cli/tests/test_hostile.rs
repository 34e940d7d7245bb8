//! The HTTP client against servers that misbehave: pages smaller than asked, lists that never
//! end or lie about their size, bodies that never end or trickle, waits longer than the
//! command may take, redirects and refused connections. Each hostile server answers one path
//! its own way and passes every other request on to the fake Admin API, so the rest of the
//! read succeeds and the error seen is the one provoked.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use tramontane_testkit::fake_api::FakeApi;
use tramontane_testkit::{Output, TestDir, example_policies, orgs};

const KEY: &str = "test-admin-key-do-not-print";

/// A loopback server of its own runtime, serving `router`.
struct Hostile {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Hostile {
    fn start(router: Router) -> Hostile {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Hostile {
            url,
            _runtime: runtime,
        }
    }

    /// Answers `path` with `handler` and passes everything else on to `fake`.
    fn in_front_of<H, T>(fake: &FakeApi, path: &str, handler: H) -> Hostile
    where
        H: axum::handler::Handler<T, Upstream>,
        T: 'static,
    {
        Hostile::start(
            Router::new()
                .route(path, get(handler))
                .fallback(forward)
                .with_state(Upstream(Arc::new(fake.url.clone()))),
        )
    }
}

/// The fake a hostile server passes on to.
#[derive(Clone)]
struct Upstream(Arc<String>);

/// Passes a request on to the fake behind, as a reverse proxy would.
async fn forward(
    State(Upstream(upstream)): State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tramontane::tls::install_default_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let target = format!(
        "{upstream}{}",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = client.request(method, target).body(body);
    for (name, value) in &headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    headers.remove("transfer-encoding");
    headers.remove("content-length");
    let body = answer.bytes().await.unwrap_or_default();
    (status, headers, body).into_response()
}

fn demo_fake() -> FakeApi {
    FakeApi::serving(orgs::demo(), KEY)
}

/// Runs `tramontane plan --org mistral` against `url`, killed if it outlives `limit` (a
/// hang is a failure, not a stuck test run).
fn plan_against(url: &str, policies: &std::path::Path, extra: &[&str], limit: Duration) -> Output {
    TestDir::new()
        .test()
        .args(["plan", "--org", "mistral"])
        .args(extra)
        .policies(policies)
        .env("MISTRAL_ADMIN_API_KEY", KEY)
        .env("MISTRAL_API_URL", url)
        .env("TRAMONTANE_BACKOFF_MS", "5")
        .env("TRAMONTANE_RATE_LIMIT", "1000")
        .timeout(limit)
        .no_secret_in_output(KEY)
        .run()
}

#[test]
fn a_server_serving_pages_of_100_still_reads_the_whole_org() {
    let fake = FakeApi::serving(orgs::demo_past_every_page_size(), KEY);
    let env = TestDir::new();
    let imported = env.join("imported");
    env.test()
        .args(["import", "--org", "mistral", "--out", "imported"])
        .fake_api(&fake)
        .env("TRAMONTANE_RATE_LIMIT", "1000")
        .expect_code(0)
        .run();

    // The same org, now served 100 items a page whatever the page size or limit asked.
    fake.clamp_pages(Some(100));
    let run = plan_against(&fake.url, &imported, &[], Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
    let log = fake.log();
    for read in [
        "GET /v1/admin/users?page=21&page_size=100",
        "GET /v1/admin/user-groups?page=2&page_size=100",
        "GET /v1/admin/api-keys?limit=100&offset=1000",
    ] {
        assert!(log.iter().any(|line| line == read), "no `{read}`");
    }
    assert!(
        log.iter()
            .any(|line| line.starts_with("GET /v1/admin/user-groups/")
                && line.ends_with("/members?page=2&page_size=100")),
        "the team of 150 was not read past its first page"
    );

    // Pages of 10: the users list takes more pages than are asked at once.
    fake.clamp_pages(Some(10));
    let run = plan_against(&fake.url, &imported, &[], Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
    assert!(
        fake.log()
            .iter()
            .any(|line| line == "GET /v1/admin/users?page=200&page_size=10")
    );
}

static SPACES: [u8; 16 * 1024] = [b' '; 16 * 1024];

#[test]
fn a_body_that_never_ends_is_cut_at_the_cap() {
    let fake = demo_fake();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/rate-limit", || async {
        let endless =
            futures_util::stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from_static(&SPACES)));
        (
            [("content-type", "application/json")],
            Body::from_stream(endless),
        )
    });
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .contains("GET /v1/admin/rate-limit: the answer is larger than 32 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_absurd_total_is_refused_before_any_page_is_asked() {
    let fake = demo_fake();
    let asked = Arc::new(AtomicU64::new(0));
    let count = asked.clone();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/user-groups", move || {
        count.fetch_add(1, Ordering::SeqCst);
        async {
            axum::Json(json!({
                "total": 1_000_000_000_000_000_000u64,
                "items": [{"uuid": "g-1", "name": "one", "description": null}],
                "page": 1, "page_size": 1
            }))
        }
    });
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("GET /v1/admin/user-groups: the list holds 1000000000000000000 items or more, beyond the 1000000"),
        "{}",
        run.stderr
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1, "pages were asked");
}

fn listed_key(id: usize) -> serde_json::Value {
    json!({"key_id": format!("k-{id}"), "key": null, "name": format!("key-{id}"), "hidden_key": "****",
           "created_at": "2026-01-01T00:00:00Z", "expiration_date": null, "workspace_id": null,
           "workspace_name": null, "created_by": null, "last_used": null})
}

#[test]
fn the_same_page_served_forever_ends_the_read() {
    let fake = demo_fake();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/api-keys", || async {
        // `offset` ignored: the first 100 keys, every time.
        axum::Json(json!({"keys": (0..100).map(listed_key).collect::<Vec<_>>()}))
    });
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "GET /v1/admin/api-keys: `k-0` was listed twice: the list changed while it was read: re-run"
        ),
        "{}",
        run.stderr
    );
}

/// The offset a key-list request asks, 0 when absent.
fn offset_of(uri: &Uri) -> usize {
    uri.query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("offset="))
        .and_then(|offset| offset.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_key_page_that_shrinks_and_grows_again_is_an_error() {
    let fake = demo_fake();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/api-keys", |uri: Uri| async move {
        // Pages of 10, except the third, which holds 5: the list seems to end at 25, yet
        // the page at 30 is full. Keys 25 to 29 were never served.
        let offset = offset_of(&uri);
        let served = match offset {
            20 => 20..25,
            _ if offset < 60 => offset..offset + 10,
            _ => 0..0,
        };
        axum::Json(json!({"keys": served.map(listed_key).collect::<Vec<_>>()}))
    });
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "GET /v1/admin/api-keys: the page at offset 30 holds 10 items past the end at 25: a page shrank and grew again"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_list_shorter_than_its_total_is_an_error() {
    let fake = demo_fake();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/user-groups", |uri: Uri| async move {
        // 150 groups said, 130 served: 20 were deleted between the two pages.
        let page = if uri.query().unwrap_or("").contains("page=2") {
            2
        } else {
            1
        };
        let ids = if page == 1 { 0..100 } else { 100..130 };
        let items: Vec<_> = ids
            .map(
                |i| json!({"uuid": format!("g-{i}"), "name": format!("g{i}"), "description": null}),
            )
            .collect();
        axum::Json(json!({"total": 150, "items": items, "page": page, "page_size": 100}))
    });
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.is_empty(), "a plan was made from half a list");
    assert!(
        run.stderr.contains("GET /v1/admin/user-groups: 130 items were read where the list's total is 150: the list changed while it was read: re-run"),
        "{}",
        run.stderr
    );
}

/// A byte every half second, forever: each read succeeds, the answer never ends.
fn trickle() -> Body {
    Body::from_stream(futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), ()))
    }))
}

#[test]
fn a_trickling_answer_meets_the_timeout_and_the_deadline() {
    let fake = demo_fake();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/roles", || async {
        ([("content-type", "application/json")], trickle())
    });
    let started = Instant::now();
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &["--deadline", "3s"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("GET /v1/admin/roles: the command's deadline of 3s passed"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &["--timeout", "1"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("GET /v1/admin/roles: no answer within the timeout"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_retry_after_beyond_the_deadline_fails_at_once() {
    let fake = demo_fake();
    let hostile = Hostile::in_front_of(&fake, "/v1/admin/spend-limit", || async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "3600")],
            axum::Json(json!({"detail": "slow down"})),
        )
    });
    let started = Instant::now();
    let run = plan_against(
        &hostile.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("GET /v1/admin/spend-limit: the server asked to wait 1h before trying again (429 Retry-After), more than the"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--deadline"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_redirect_is_not_followed_with_the_admin_key() {
    // Where the redirect points: the real fake, which would answer the key it was sent.
    let elsewhere = demo_fake();
    let port = elsewhere.url.rsplit(':').next().unwrap().to_owned();
    let redirecting = Hostile::start(Router::new().fallback(move |uri: Uri| async move {
        let location = format!("http://someone:hunter2@127.0.0.1:{port}{uri}");
        (StatusCode::TEMPORARY_REDIRECT, [("location", location)]).into_response()
    }));
    let run = plan_against(
        &redirecting.url,
        &example_policies(),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(elsewhere.requests(), 0, "the redirect was followed");
    let shown = format!("{}/v1/admin/", elsewhere.url);
    assert!(
        run.stderr.contains("the server redirected (307) to `") && run.stderr.contains(&shown),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("set MISTRAL_API_URL to the final URL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn a_failed_connection_names_its_cause_and_never_shows_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://admin:hunter2@127.0.0.1:{port}");
    let run = plan_against(&url, &example_policies(), &[], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cannot reach the Admin API: connection refused ("),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);

    // https to a server that speaks plain http.
    let fake = demo_fake();
    let url = fake.url.replace("http://", "https://admin:hunter2@");
    let run = plan_against(&url, &example_policies(), &[], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cannot reach the Admin API: TLS handshake failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);

    for url in [
        "http://admin:hunter2@api.example.com",
        "http://admin:hunter2@exa mple.com",
    ] {
        let run = plan_against(url, &example_policies(), &[], Duration::from_secs(60));
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(
            run.stderr.contains("plain http") || run.stderr.contains("is not a URL"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("hunter2"), "{url}: {}", run.stderr);
    }
}
