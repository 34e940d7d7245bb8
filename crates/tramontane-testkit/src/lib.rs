//! What tramontane's tests share: a fake of Mistral's Admin API, of its inference API (for
//! the gateway) and of GitHub's REST API, each behaving as real servers do at their worst
//! when asked (clamped pages, 429s with and without `Retry-After`, redirects, stalls, broken
//! streams, totals that lie), the organizations the tests start from, and the [`Test`] builder every integration test runs the binary through.

pub mod fake_api;
pub mod fake_github;
pub mod fake_inference;
pub mod fake_issuer;
mod fake_issuer_keys;
pub mod gateway;
pub mod gateway_client;
pub mod orgs;
pub mod output;
mod process;
pub mod redis_server;
pub mod test;
pub mod test_dir;

pub use output::Output;
pub use process::binary;
pub use test::{TODAY, Test};
pub use test_dir::{TestDir, copy_dir, example_policies, repo_root};
