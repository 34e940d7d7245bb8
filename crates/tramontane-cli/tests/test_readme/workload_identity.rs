//! What the workload-identity samples of docs/workload-identity.md run against: the
//! document's own policy lines, with the cluster's and GitHub's issuers replaced by local
//! issuers on loopback, a Kubernetes token in a file as the kubelet would write it, and a
//! stand-in for GitHub's token endpoint that answers a job's request as GitHub does.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::OnceLock;

use serde_json::json;
use tramontane_testkit::fake_issuer::FakeIssuer;
use tramontane_testkit::repo_root;

use super::Scratch;

/// Where the Kubernetes sample's token is written, in the scratch copy.
pub(super) const TOKEN_FILE: &str = "secrets/workload.token";
/// What GitHub gives a job in `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
pub(super) const REQUEST_TOKEN: &str = "github-request-token-for-the-sample";

struct Local {
    cluster: FakeIssuer,
    github: FakeIssuer,
    token_url: String,
}

/// One pair of issuers for every sample of the run; they live until the test binary ends.
fn local() -> &'static Local {
    static LOCAL: OnceLock<Local> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let cluster = FakeIssuer::start();
        let github = FakeIssuer::start();
        let token = github
            .token()
            .claim("sub", "repo:acme/app:environment:production")
            .claim("repository", "acme/app")
            .claim("environment", "production")
            .mint();
        let token_url = serve_job_tokens(token);
        Local {
            cluster,
            github,
            token_url,
        }
    })
}

pub(super) fn token_request_url() -> String {
    local().token_url.clone()
}

/// The document's two policy samples, trusting the local issuers, and the pod's token.
pub(super) fn trust_the_local_issuer(scratch: &Scratch) {
    let local = local();
    let document = std::fs::read_to_string(repo_root().join("docs/workload-identity.md")).unwrap();
    let kubernetes = sample(&document, "workload-kubernetes-policy");
    let kubernetes = replaced(
        &kubernetes,
        "    issuer: https://kubernetes.default.svc.cluster.local\n    jwks_file: cluster-jwks.json\n",
        &format!(
            "    issuer: {}\n    jwks_url: {}\n",
            local.cluster.issuer(),
            local.cluster.jwks_url()
        ),
    );
    let github = sample(&document, "workload-github-policy");
    let github = replaced(
        &github,
        "    issuer: https://token.actions.githubusercontent.com\n",
        &format!("    issuer: {}\n", local.github.issuer()),
    );
    scratch
        .env
        .write("policies/workloads-kubernetes.yaml", kubernetes);
    scratch.env.write("policies/workloads-github.yaml", github);
    let token = local
        .cluster
        .token()
        .claim("sub", "system:serviceaccount:reports:writer")
        .claim(
            "kubernetes.io",
            json!({"namespace": "reports", "serviceaccount": {"name": "writer"}}),
        )
        .mint();
    scratch.env.write(TOKEN_FILE, token);
}

/// The content of the fenced block after `<!-- sample: NAME -->`.
fn sample(document: &str, name: &str) -> String {
    let marker = format!("<!-- sample: {name} -->");
    let after = document
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no sample `{name}` in docs/workload-identity.md"))
        .1;
    let block = after.split_once("```yaml\n").unwrap().1;
    block.split_once("```").unwrap().0.to_owned()
}

/// `text` with `from` replaced: it must occur once, so an edit of the document that moves
/// it fails here rather than test another policy.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the sample should hold {from:?} exactly once"
    );
    text.replacen(from, to, 1)
}

/// A stand-in for GitHub's token endpoint: a GET with the job's request token and
/// `audience=tramontane` gets `{"value": TOKEN}`, anything else a 401.
fn serve_job_tokens(token: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
                request.push_str(&line.to_ascii_lowercase());
                line.clear();
            }
            let allowed = request.contains(&format!(
                "authorization: bearer {}",
                REQUEST_TOKEN.to_ascii_lowercase()
            )) && request.contains("audience=tramontane");
            let (status, body) = if allowed {
                ("200 OK", json!({"count": 1, "value": token}).to_string())
            } else {
                ("401 Unauthorized", "{}".to_owned())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}/token?api-version=2.0")
}
