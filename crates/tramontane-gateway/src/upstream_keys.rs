//! The Mistral keys the gateway forwards with: one file per policy key address
//! (`workspace.prod.key.support-bot`) in the `--upstream-keys` directory, the way a
//! Kubernetes secret mounted as a volume lays them out. They are read again on every policy
//! reload, so a rotated key is picked up without a restart. A caller never supplies one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// A key file larger than this is not a key.
const MAX_KEY_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamKeysError {
    #[error("cannot read the upstream key directory `{}`: {source}", dir.display())]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the upstream key file `{}`: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the upstream key file `{}` {problem}", path.display())]
    Invalid {
        path: PathBuf,
        problem: &'static str,
    },
}

impl UpstreamKeysError {
    pub fn help(&self) -> &'static str {
        "put one file per key address (such as `workspace.prod.key.support-bot`) holding that Mistral key in the --upstream-keys directory"
    }
}

/// The upstream keys by policy key address, and the key files that could not be read: a
/// bad file disables only the address it names (its callers get `503 no_upstream_key`), so
/// it never holds back the rest of a reload.
#[derive(Clone, Default)]
pub struct UpstreamKeys {
    keys: BTreeMap<String, SecretString>,
    /// Each unreadable or malformed key file: its address and why.
    problems: BTreeMap<String, String>,
}

impl std::fmt::Debug for UpstreamKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamKeys")
            .field("addresses", &self.keys.keys().collect::<Vec<_>>())
            .field("problems", &self.problems)
            .finish()
    }
}

impl UpstreamKeys {
    /// Reads every key file of `dir`. Hidden entries (a mounted secret's `..data` links) are
    /// skipped. Only a directory that cannot be listed is an error; a file that cannot be
    /// read or holds no key is set aside in [`problems`](UpstreamKeys::problems).
    pub fn read_dir(dir: &Path) -> Result<UpstreamKeys, UpstreamKeysError> {
        let entries = std::fs::read_dir(dir).map_err(|source| UpstreamKeysError::Directory {
            dir: dir.to_owned(),
            source,
        })?;
        let mut read = UpstreamKeys::default();
        for entry in entries {
            let entry = entry.map_err(|source| UpstreamKeysError::Directory {
                dir: dir.to_owned(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match read_key(&entry.path()) {
                Ok(Some(key)) => {
                    read.keys.insert(name, key);
                }
                Ok(None) => {}
                Err(problem) => {
                    read.problems.insert(name, problem.to_string());
                }
            }
        }
        Ok(read)
    }

    /// The key files set aside, by address, with why.
    pub fn problems(&self) -> impl Iterator<Item = (&str, &str)> {
        self.problems
            .iter()
            .map(|(address, problem)| (address.as_str(), problem.as_str()))
    }

    /// Says in the log which key files were set aside and what that disables.
    pub fn warn_problems(&self) {
        for (address, problem) in self.problems() {
            tracing::error!(
                address,
                problem,
                help = "fix or remove the file; requests that forward with this address get 503 no_upstream_key until then, and every other key works",
                "an upstream key file is unusable"
            );
        }
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> UpstreamKeys {
        UpstreamKeys {
            keys: pairs
                .into_iter()
                .map(|(address, key)| (address, SecretString::from(key)))
                .collect(),
            problems: BTreeMap::new(),
        }
    }

    /// Whether `other` holds the same keys and the same problems.
    pub fn same_as(&self, other: &UpstreamKeys) -> bool {
        self.problems == other.problems
            && self.keys.len() == other.keys.len()
            && self.keys.iter().all(|(address, key)| {
                other
                    .keys
                    .get(address)
                    .is_some_and(|theirs| theirs.expose_secret() == key.expose_secret())
            })
    }

    pub fn get(&self, address: &str) -> Option<&SecretString> {
        self.keys.get(address)
    }

    /// Any one key: the model list is read with it.
    pub fn any(&self) -> Option<&SecretString> {
        self.keys.values().next()
    }

    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether any held key occurs in `text`: a guard for tests and for what is logged.
    pub fn leaks_into(&self, text: &str) -> bool {
        self.keys
            .values()
            .any(|key| text.contains(key.expose_secret()))
    }
}

/// One key file: its key, `None` for what is not a file, or why it holds no usable key.
fn read_key(path: &Path) -> Result<Option<SecretString>, UpstreamKeysError> {
    // Follows links on purpose: mounted secrets are links into a timestamped dir.
    let metadata = std::fs::metadata(path).map_err(|source| UpstreamKeysError::File {
        path: path.to_owned(),
        source,
    })?;
    if !metadata.is_file() {
        return Ok(None);
    }
    let invalid = |problem| UpstreamKeysError::Invalid {
        path: path.to_owned(),
        problem,
    };
    if metadata.len() > MAX_KEY_BYTES {
        return Err(invalid("is larger than a key can be"));
    }
    let text = std::fs::read_to_string(path).map_err(|source| UpstreamKeysError::File {
        path: path.to_owned(),
        source,
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(invalid("is empty"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "holds more than one word; a key is one line without spaces",
        ));
    }
    Ok(Some(SecretString::from(key.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_key_per_address_and_never_shows_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("workspace.prod.key.bot"), "sk-one\n").unwrap();
        std::fs::write(dir.path().join("..data"), "ignored").unwrap();
        let keys = UpstreamKeys::read_dir(dir.path()).unwrap();
        assert_eq!(
            keys.get("workspace.prod.key.bot").unwrap().expose_secret(),
            "sk-one"
        );
        assert_eq!(keys.addresses().count(), 1);
        assert!(!format!("{keys:?}").contains("sk-one"));
        assert!(keys.leaks_into("a log line with sk-one in it"));
    }

    #[test]
    fn an_empty_or_spaced_key_file_disables_only_its_own_address() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("workspace.a.key.b"), "  \n").unwrap();
        std::fs::write(dir.path().join("workspace.a.key.c"), "one two").unwrap();
        std::fs::write(dir.path().join("workspace.a.key.d"), "sk-good").unwrap();
        let keys = UpstreamKeys::read_dir(dir.path()).unwrap();
        assert!(keys.get("workspace.a.key.b").is_none());
        assert!(keys.get("workspace.a.key.c").is_none());
        assert_eq!(
            keys.get("workspace.a.key.d").unwrap().expose_secret(),
            "sk-good"
        );
        let problems: Vec<(&str, &str)> = keys.problems().collect();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, "workspace.a.key.b");
        assert!(
            problems[0].1.contains("workspace.a.key.b` is empty"),
            "{}",
            problems[0].1
        );
        assert!(
            problems[1].1.contains("more than one word"),
            "{}",
            problems[1].1
        );
        // A directory that cannot be listed is still an error.
        assert!(UpstreamKeys::read_dir(&dir.path().join("missing")).is_err());
    }
}
