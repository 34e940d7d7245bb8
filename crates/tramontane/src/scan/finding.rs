//! One finding: what was found, where, since when, and how to recognise it again without
//! ever holding the secret in anything that can be printed.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::detect::Rule;

/// Characters of a secret shown in any output; the rest is cut.
pub const SHOWN_PREFIX_CHARS: usize = 4;
/// Hex characters of the SHA-256 kept as a fingerprint: 128 bits, plenty to tell findings
/// apart, and no help to anyone guessing the secret behind it.
pub const FINGERPRINT_HEX_CHARS: usize = 32;

/// Where a finding was seen first in the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRef {
    /// The full commit id.
    pub id: String,
    /// A ref whose history holds that commit, such as `refs/heads/main`.
    pub reference: String,
}

/// What `--verify` learned of a Mistral key from the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// `GET /v1/models` let the key in: it works now.
    Live,
    /// Answered 401: the key is revoked (or was never real).
    Revoked,
    /// No clear answer; why, such as `HTTP 503` or `timed out`.
    Unknown(String),
}

impl Verification {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verification::Live => "live",
            Verification::Revoked => "revoked",
            Verification::Unknown(_) => "unknown",
        }
    }
}

/// One finding. The secret itself is kept (for `--verify`) but never shown: `Debug` and
/// every renderer use [`Finding::redacted`].
#[derive(Clone)]
pub struct Finding {
    pub rule: Rule,
    /// Relative to the repository's root, `/`-separated.
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    /// The first [`SHOWN_PREFIX_CHARS`] characters of the secret and `…`; `None` for the
    /// rules about files rather than secrets.
    pub redacted: Option<String>,
    /// Stable across runs; what a baseline lists.
    pub fingerprint: String,
    /// For findings from history: the first commit (oldest first, parents before children)
    /// whose tree holds it, and a ref that reaches that commit.
    pub commit: Option<CommitRef>,
    /// Whether the finding is in the working tree as it is now.
    pub in_working_tree: bool,
    /// The message of a `sink-not-ignored` finding: the sink path, the key naming it and the
    /// `.gitignore` line that covers it.
    pub detail: Option<String>,
    pub verification: Option<Verification>,
    secret: Option<SecretString>,
}

impl Finding {
    /// A secret found at `path`, `line`, `column`.
    pub fn secret(rule: Rule, path: &str, line: u32, column: u32, secret: SecretString) -> Finding {
        let exposed = secret.expose_secret();
        Finding {
            rule,
            path: path.to_owned(),
            line,
            column,
            redacted: Some(redact(exposed)),
            fingerprint: fingerprint(rule, path, exposed),
            commit: None,
            in_working_tree: false,
            detail: None,
            verification: None,
            secret: Some(secret),
        }
    }

    /// A finding about a file rather than a secret in it. `identity` tells findings at the
    /// same path apart in the fingerprint (a sink's path, for a policy naming several).
    pub fn file(rule: Rule, path: &str, line: u32, column: u32, identity: &str) -> Finding {
        Finding {
            rule,
            path: path.to_owned(),
            line,
            column,
            redacted: None,
            fingerprint: fingerprint(rule, path, identity),
            commit: None,
            in_working_tree: false,
            detail: None,
            verification: None,
            secret: None,
        }
    }

    pub fn with_detail(mut self, detail: String) -> Finding {
        self.detail = Some(detail);
        self
    }

    /// The secret, for `--verify` only.
    pub(crate) fn secret_value(&self) -> Option<&SecretString> {
        self.secret.as_ref()
    }

    /// The message shown for the finding, in every format.
    pub fn message(&self) -> String {
        let secret = self.redacted.as_deref().unwrap_or_default();
        match (self.rule, &self.detail) {
            (Rule::MistralApiKey, _) => format!("Mistral API key `{secret}`"),
            (Rule::GatewayKey, _) => format!("gateway key `{secret}`"),
            (Rule::EnvFileTracked, _) => format!("`{}` is tracked by git", self.path),
            (Rule::EnvNotIgnored, _) => format!("`{}` is not ignored by git", self.path),
            (Rule::SinkNotIgnored, Some(detail)) => detail.clone(),
            (Rule::SinkNotIgnored, None) => Rule::SinkNotIgnored.title().to_owned(),
        }
    }
}

impl std::fmt::Debug for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finding")
            .field("rule", &self.rule)
            .field("path", &self.path)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("redacted", &self.redacted)
            .field("fingerprint", &self.fingerprint)
            .field("commit", &self.commit)
            .field("in_working_tree", &self.in_working_tree)
            .field("verification", &self.verification)
            .finish_non_exhaustive()
    }
}

/// The first [`SHOWN_PREFIX_CHARS`] characters and `…`.
pub fn redact(secret: &str) -> String {
    let shown: String = secret.chars().take(SHOWN_PREFIX_CHARS).collect();
    format!("{shown}…")
}

/// SHA-256 of the rule id, the path and the secret (NUL-separated, so no two triples run
/// together alike), hex, cut to [`FINGERPRINT_HEX_CHARS`].
pub fn fingerprint(rule: Rule, path: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule.id().as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(FINGERPRINT_HEX_CHARS);
    for byte in digest.iter().take(FINGERPRINT_HEX_CHARS / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_four_characters() {
        assert_eq!(redact("AbCdEfGh"), "AbCd…");
        assert_eq!(redact("ab"), "ab…");
    }

    #[test]
    fn fingerprints_are_stable_and_tell_rule_path_and_secret_apart() {
        let base = fingerprint(Rule::MistralApiKey, "a.env", "secret");
        assert_eq!(base.len(), FINGERPRINT_HEX_CHARS);
        assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(base, fingerprint(Rule::MistralApiKey, "a.env", "secret"));
        assert_ne!(base, fingerprint(Rule::GatewayKey, "a.env", "secret"));
        assert_ne!(base, fingerprint(Rule::MistralApiKey, "b.env", "secret"));
        assert_ne!(base, fingerprint(Rule::MistralApiKey, "a.env", "secreT"));
        // The separator keeps `ab` + `c` apart from `a` + `bc`.
        assert_ne!(
            fingerprint(Rule::MistralApiKey, "ab", "c"),
            fingerprint(Rule::MistralApiKey, "a", "bc")
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        // Built from parts so this file holds no key-shaped literal for scanners to trip on.
        let secret = &["Zq8Lw3Rt", "6Yp1Ks9D", "x4Vn7Bm2", "Hc5Fg0Jr"].concat();
        let finding = Finding::secret(
            Rule::MistralApiKey,
            "x.env",
            1,
            1,
            SecretString::from(secret.clone()),
        );
        let shown = format!("{finding:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("Zq8L…"), "{shown}");
    }
}
