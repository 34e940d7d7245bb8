//! Stage: publishing, after `plan` and `render`.
//!
//! tramontane in GitHub: the sticky plan comment on a pull request, and the job summary.
//! Validation annotations are workflow commands on stdout
//! ([`crate::render::diagnostics::github`]); they need no API call.

pub mod client;
pub mod comment;
pub mod summary;

pub use client::{GitHub, GitHubError, RepoName};
