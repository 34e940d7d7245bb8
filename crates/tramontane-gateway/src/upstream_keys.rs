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

/// The upstream keys by policy key address.
#[derive(Clone, Default)]
pub struct UpstreamKeys {
    keys: BTreeMap<String, SecretString>,
}

impl std::fmt::Debug for UpstreamKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamKeys")
            .field("addresses", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl UpstreamKeys {
    /// Reads every key file of `dir`. Hidden entries (a mounted secret's `..data` links) are
    /// skipped.
    pub fn read_dir(dir: &Path) -> Result<UpstreamKeys, UpstreamKeysError> {
        let entries = std::fs::read_dir(dir).map_err(|source| UpstreamKeysError::Directory {
            dir: dir.to_owned(),
            source,
        })?;
        let mut keys = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|source| UpstreamKeysError::Directory {
                dir: dir.to_owned(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follows links on purpose: mounted secrets are links into a timestamped dir.
            let metadata = std::fs::metadata(&path).map_err(|source| UpstreamKeysError::File {
                path: path.clone(),
                source,
            })?;
            if !metadata.is_file() {
                continue;
            }
            if metadata.len() > MAX_KEY_BYTES {
                return Err(UpstreamKeysError::Invalid {
                    path,
                    problem: "is larger than a key can be",
                });
            }
            let text =
                std::fs::read_to_string(&path).map_err(|source| UpstreamKeysError::File {
                    path: path.clone(),
                    source,
                })?;
            let key = text.trim();
            if key.is_empty() {
                return Err(UpstreamKeysError::Invalid {
                    path,
                    problem: "is empty",
                });
            }
            if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(UpstreamKeysError::Invalid {
                    path,
                    problem: "holds more than one word; a key is one line without spaces",
                });
            }
            keys.insert(name, SecretString::from(key.to_owned()));
        }
        Ok(UpstreamKeys { keys })
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> UpstreamKeys {
        UpstreamKeys {
            keys: pairs
                .into_iter()
                .map(|(address, key)| (address, SecretString::from(key)))
                .collect(),
        }
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
    fn an_empty_or_spaced_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("workspace.a.key.b"), "  \n").unwrap();
        let error = UpstreamKeys::read_dir(dir.path()).unwrap_err();
        assert!(error.to_string().contains("is empty"), "{error}");
        std::fs::write(dir.path().join("workspace.a.key.b"), "one two").unwrap();
        let error = UpstreamKeys::read_dir(dir.path()).unwrap_err();
        assert!(error.to_string().contains("more than one word"), "{error}");
    }
}
