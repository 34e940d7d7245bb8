//! What tramontane's tests share: a fake of Mistral's Admin API, of its inference API (for
//! the gateway) and of GitHub's REST API, each behaving as real servers do at their worst
//! when asked (clamped pages, 429s with and without `Retry-After`, redirects, stalls, broken
//! streams, totals that lie).

pub mod fake_api;
pub mod fake_github;
pub mod fake_inference;
