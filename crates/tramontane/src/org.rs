//! Which organization a command reads and changes, named without its credentials.

use std::path::{Path, PathBuf};

use crate::repository::RepositoryRoot;

/// Where the demo org lives, relative to the policy repository's root.
pub const DEMO_PATH: &str = ".tramontane/sandbox/demo.json";

/// What names an organization for the apply lock: the API's address, or the sandbox's
/// file. Never the admin key.
pub fn lock_identity(choice: &str, api_url: &str, root: &RepositoryRoot) -> Option<String> {
    if choice == "mistral" {
        return Some(format!(
            "mistral {}",
            crate::apply::lock::api_identity(api_url)
        ));
    }
    let path = choice.strip_prefix("sandbox:")?;
    let path = if path == "demo" {
        root.resolve(Path::new(DEMO_PATH))
    } else {
        PathBuf::from(path)
    };
    let absolute = std::path::absolute(&path).unwrap_or(path);
    Some(format!("sandbox {}", absolute.display()))
}
