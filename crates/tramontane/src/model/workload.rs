//! Workload identity: the OIDC issuers whose tokens the gateway trusts (`issuers:`) and the
//! workloads a token can be (`workloads:`). Nothing here is secret: an issuer is its `iss`,
//! where its public signing keys are read, the audiences accepted and the longest lifetime
//! accepted; a workload is the exact `sub` and claims a token must carry, and the access it
//! then gets, with a service key's fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SpendGuard;

/// Longest token lifetime an issuer accepts unless it says otherwise: a Kubernetes
/// projected service-account token's default (`expirationSeconds: 3600`).
pub const DEFAULT_MAX_LIFETIME_MINUTES: u32 = 60;

/// Claims registered by RFC 7519, which the gateway checks itself: a workload matches on its
/// `subject` and its issuer's `iss`, and never on these.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// One entry of `issuers:`: an OIDC issuer whose tokens the gateway verifies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The token's `iss`, compared exactly.
    pub issuer: String,
    /// Where the issuer's JSON Web Key Set is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Read the key set's URL from `<issuer>/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discovery: bool,
    /// A key set copied out of band, for clusters whose issuer is not reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    /// Audiences (`aud`) the gateway accepts: a token must name one of them.
    pub audiences: Vec<String>,
    /// Longest `exp - iat` accepted, in minutes.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_max_lifetime() -> u32 {
    DEFAULT_MAX_LIFETIME_MINUTES
}

/// Where an issuer's signing keys come from: exactly one of the three ways.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuerKeys {
    JwksUrl(String),
    Discovery,
    JwksFile(String),
}

impl std::fmt::Display for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssuerKeys::JwksUrl(url) => write!(f, "key set {url}"),
            IssuerKeys::Discovery => f.write_str("key set by discovery"),
            IssuerKeys::JwksFile(path) => write!(f, "key set file {path}"),
        }
    }
}

impl Issuer {
    /// The one source of signing keys the entry names; `None` when it names none or several
    /// (validation reports it).
    pub fn keys(&self) -> Option<IssuerKeys> {
        match (&self.jwks_url, self.discovery, &self.jwks_file) {
            (Some(url), false, None) => Some(IssuerKeys::JwksUrl(url.clone())),
            (None, true, None) => Some(IssuerKeys::Discovery),
            (None, false, Some(path)) => Some(IssuerKeys::JwksFile(path.clone())),
            _ => None,
        }
    }
}

/// One entry of `workloads:`: who a verified token is, and what it may do. The limits are a
/// service key's: a subset of the workspace's models, its own rate, largest request, daily
/// token budget and spend guard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The name of an entry of `issuers:`.
    pub issuer: String,
    /// The token's `sub`, compared exactly.
    pub subject: String,
    /// Further claims the token must carry, each a string compared exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// The workspace whose models, limits and `gateway.upstream_key` the workload gets.
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_request: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_token_budget: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_guard: Option<SpendGuard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Workload {
    /// Whether one token could match both `self` and `other`: the same issuer and subject,
    /// and no claim both name with different values.
    pub fn overlaps(&self, other: &Workload) -> bool {
        self.issuer == other.issuer
            && self.subject == other.subject
            && self
                .claims
                .iter()
                .all(|(name, value)| other.claims.get(name).is_none_or(|theirs| theirs == value))
    }

    /// Whether a token carrying `claim` with `value` (`None`: absent or not a string) could
    /// be this workload as far as that claim goes.
    pub fn accepts_claim(&self, claim: &str, value: Option<&str>) -> bool {
        match self.claims.get(claim) {
            Some(wanted) => value == Some(wanted.as_str()),
            None => true,
        }
    }
}

/// Why keys read from `url` could not be trusted, if they could not: anything but `https://`,
/// except plain `http://` to a loopback address (an issuer beside the gateway, or a test).
pub fn untrusted_key_url(url: &str) -> Option<&'static str> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Some("it is not a URL");
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => None,
        "http" if is_loopback(&parsed) => None,
        "http" => Some("it is plain `http://` to a host that is not a loopback address"),
        _ => Some("it is not an `https://` URL"),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    url.host_str().is_some_and(crate::tls::is_loopback_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(subject: &str, claims: &[(&str, &str)]) -> Workload {
        serde_json::from_value(serde_json::json!({
            "issuer": "gh", "subject": subject, "workspace": "ci",
            "claims": claims.iter().map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }))
        .unwrap()
    }

    #[test]
    fn workloads_overlap_unless_a_claim_tells_them_apart() {
        let main = workload(
            "repo:acme/app:ref:refs/heads/main",
            &[("environment", "prod")],
        );
        let any = workload("repo:acme/app:ref:refs/heads/main", &[]);
        let staging = workload(
            "repo:acme/app:ref:refs/heads/main",
            &[("environment", "staging")],
        );
        let other = workload("repo:acme/app:ref:refs/heads/dev", &[]);
        assert!(main.overlaps(&any) && any.overlaps(&main));
        assert!(!main.overlaps(&staging));
        assert!(!main.overlaps(&other));
    }

    #[test]
    fn keys_are_read_over_https_or_from_loopback() {
        assert_eq!(
            untrusted_key_url("https://token.actions.githubusercontent.com/.well-known/jwks"),
            None
        );
        assert_eq!(untrusted_key_url("http://127.0.0.1:8080/jwks"), None);
        assert_eq!(untrusted_key_url("http://[::1]/jwks"), None);
        assert_eq!(untrusted_key_url("http://localhost/jwks"), None);
        assert!(untrusted_key_url("http://issuer.example/jwks").is_some());
        assert!(untrusted_key_url("ftp://issuer.example/jwks").is_some());
        assert!(untrusted_key_url("issuer.example").is_some());
    }

    #[test]
    fn an_issuer_names_exactly_one_key_source() {
        let issuer = |extra: serde_json::Value| -> Issuer {
            let mut value = serde_json::json!({"issuer": "https://i.example", "audiences": ["a"]});
            value
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(value).unwrap()
        };
        assert_eq!(
            issuer(serde_json::json!({"discovery": true})).keys(),
            Some(IssuerKeys::Discovery)
        );
        assert_eq!(
            issuer(serde_json::json!({"jwks_file": "k.json"})).keys(),
            Some(IssuerKeys::JwksFile("k.json".into()))
        );
        assert_eq!(issuer(serde_json::json!({})).keys(), None);
        let both = issuer(serde_json::json!({"discovery": true, "jwks_url": "https://x"}));
        assert_eq!(both.keys(), None);
        assert_eq!(both.max_lifetime_minutes, DEFAULT_MAX_LIFETIME_MINUTES);
    }
}
