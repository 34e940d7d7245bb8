//! What the gateway is told about each trusted issuer, and how it keeps their keys: checked
//! once when the verifier is built, so a request never meets a setting that cannot work.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// One issuer whose tokens the gateway accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The policy's name for it: what a [`super::VerifiedToken`] says it came from.
    pub name: String,
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    pub keys: KeySource,
    /// A token's `aud` must hold one of these.
    pub audiences: Vec<String>,
    /// The longest `exp - iat` accepted.
    pub max_lifetime: Duration,
}

/// Where an issuer's signing keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS served at this URL.
    JwksUrl(Url),
    /// The `jwks_uri` of `<issuer>/.well-known/openid-configuration` (OpenID Connect
    /// Discovery); the issuer must then be an `https://` URL.
    Discovery,
    /// A JWKS file, for clusters whose keys are copied out of band; read again on refresh.
    JwksFile(PathBuf),
}

/// How keys are fetched and kept, the same for every issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCacheSettings {
    /// At most one refresh per issuer in this long, whatever asks for it: an unknown `kid`
    /// (a rotation, or a caller making them up), stale keys, or no keys yet.
    pub refresh_interval: Duration,
    /// Keys older than this are fetched again in the background on their next use, so a
    /// key the issuer withdrew stops verifying; until a fetch succeeds the old keys serve.
    pub max_age: Duration,
    /// One fetch (discovery and JWKS each), connection to last byte.
    pub fetch_timeout: Duration,
    /// Largest discovery document or JWKS read.
    pub max_body_bytes: usize,
}

impl Default for KeyCacheSettings {
    fn default() -> KeyCacheSettings {
        KeyCacheSettings {
            refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(15 * 60),
            fetch_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why a set of issuers cannot be verified against.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssuerSettingsError {
    #[error("issuer `{name}`: `{url}` is not an http(s) URL with a host")]
    NotAUrl { name: String, url: String },
    #[error(
        "issuer `{name}`: `{url}` is plain http to a host that is not loopback; its keys could be swapped on the way"
    )]
    PlainHttp { name: String, url: String },
    /// Not repeated: what it holds is a secret.
    #[error("issuer `{name}`: its key URL holds a user name or password")]
    CredentialsInUrl { name: String },
    #[error("issuer `{name}` accepts no audience, so no token could be for this gateway")]
    NoAudience { name: String },
    #[error("issuer `{name}` has a longest token lifetime of zero")]
    NoLifetime { name: String },
    #[error("two issuers are named `{name}`")]
    DuplicateName { name: String },
    #[error("issuers `{first}` and `{second}` both have the `iss` `{issuer}`")]
    DuplicateIssuer {
        issuer: String,
        first: String,
        second: String,
    },
    #[error("cannot set up TLS for fetching issuer keys: {0}")]
    Tls(String),
}

impl IssuerSettingsError {
    pub fn help(&self) -> &'static str {
        match self {
            IssuerSettingsError::NotAUrl { .. } | IssuerSettingsError::PlainHttp { .. } => {
                "give the issuer's keys an https:// URL (plain http only to 127.0.0.1, [::1] or localhost), or copy its JWKS to a file"
            }
            IssuerSettingsError::CredentialsInUrl { .. } => {
                "a JWKS is public: give its URL without credentials (they would show in the gateway's log)"
            }
            IssuerSettingsError::NoAudience { .. } => {
                "list the audience the workloads request their tokens for, e.g. the gateway's URL"
            }
            IssuerSettingsError::NoLifetime { .. } => {
                "set the longest lifetime to what the platform issues, e.g. 1h for Kubernetes projected tokens"
            }
            IssuerSettingsError::DuplicateName { .. } => "give each issuer its own name",
            IssuerSettingsError::DuplicateIssuer { .. } => {
                "declare each issuer once: a token's `iss` must name one issuer"
            }
            IssuerSettingsError::Tls(_) => "this is a bug in the gateway's TLS setup; report it",
        }
    }
}

/// Checks a set of issuers on their own and against each other.
pub(crate) fn check(issuers: &[IssuerSettings]) -> Result<(), IssuerSettingsError> {
    let mut names = BTreeSet::new();
    for (index, settings) in issuers.iter().enumerate() {
        let name = &settings.name;
        if !names.insert(name) {
            return Err(IssuerSettingsError::DuplicateName { name: name.clone() });
        }
        if let Some(other) = issuers[..index]
            .iter()
            .find(|other| other.issuer == settings.issuer)
        {
            return Err(IssuerSettingsError::DuplicateIssuer {
                issuer: settings.issuer.clone(),
                first: other.name.clone(),
                second: name.clone(),
            });
        }
        if settings
            .audiences
            .iter()
            .all(|audience| audience.is_empty())
        {
            return Err(IssuerSettingsError::NoAudience { name: name.clone() });
        }
        if settings.max_lifetime.is_zero() {
            return Err(IssuerSettingsError::NoLifetime { name: name.clone() });
        }
        match &settings.keys {
            KeySource::JwksUrl(url) => fetchable(name, url.as_str())?,
            KeySource::Discovery => fetchable(name, &settings.issuer)?,
            KeySource::JwksFile(_) => {}
        }
    }
    Ok(())
}

/// Whether keys may be fetched from `url`: https, or plain http to this machine.
pub(crate) fn fetchable(name: &str, url: &str) -> Result<(), IssuerSettingsError> {
    let not_a_url = || IssuerSettingsError::NotAUrl {
        name: name.to_owned(),
        url: url.to_owned(),
    };
    let parsed = Url::parse(url).map_err(|_| not_a_url())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(IssuerSettingsError::CredentialsInUrl {
            name: name.to_owned(),
        });
    }
    let host = parsed.host_str().ok_or_else(not_a_url)?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if tramontane::tls::is_loopback_host(host) => Ok(()),
        "http" => Err(IssuerSettingsError::PlainHttp {
            name: name.to_owned(),
            url: url.to_owned(),
        }),
        _ => Err(not_a_url()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(name: &str, iss: &str, keys: KeySource) -> IssuerSettings {
        IssuerSettings {
            name: name.into(),
            issuer: iss.into(),
            keys,
            audiences: vec!["tramontane".into()],
            max_lifetime: Duration::from_secs(3600),
        }
    }

    #[test]
    fn keys_travel_over_https_or_stay_on_this_machine() {
        let url = |text: &str| KeySource::JwksUrl(Url::parse(text).unwrap());
        let ok = |keys| check(&[issuer("k8s", "https://k8s.example", keys)]);
        assert!(ok(url("https://k8s.example/openid/v1/jwks")).is_ok());
        assert!(ok(url("http://127.0.0.1:8080/jwks")).is_ok());
        assert!(ok(url("http://[::1]:8080/jwks")).is_ok());
        assert!(ok(url("http://localhost/jwks")).is_ok());
        assert!(ok(KeySource::JwksFile("keys.json".into())).is_ok());
        assert!(matches!(
            ok(url("http://k8s.example/jwks")),
            Err(IssuerSettingsError::PlainHttp { .. })
        ));
        let with_password = ok(url("https://user:hunter2@k8s.example/jwks")).unwrap_err();
        assert!(matches!(
            with_password,
            IssuerSettingsError::CredentialsInUrl { .. }
        ));
        assert!(!with_password.to_string().contains("hunter2"));
        assert!(matches!(
            ok(url("file:///etc/jwks.json")),
            Err(IssuerSettingsError::NotAUrl { .. })
        ));
        let discovered = |iss: &str| check(&[issuer("gh", iss, KeySource::Discovery)]);
        assert!(discovered("https://token.actions.githubusercontent.com").is_ok());
        assert!(matches!(
            discovered("http://token.actions.githubusercontent.com"),
            Err(IssuerSettingsError::PlainHttp { .. })
        ));
        assert!(matches!(
            discovered("kubernetes/serviceaccount"),
            Err(IssuerSettingsError::NotAUrl { .. })
        ));
    }

    #[test]
    fn issuers_are_distinct_and_can_accept_a_token() {
        let file = || KeySource::JwksFile("keys.json".into());
        let a = issuer("a", "https://a.example", file());
        let error = check(&[a.clone(), issuer("b", "https://a.example", file())]).unwrap_err();
        assert!(matches!(error, IssuerSettingsError::DuplicateIssuer { .. }));
        assert!(error.to_string().contains("`a` and `b`"));
        let error = check(&[a.clone(), issuer("a", "https://b.example", file())]).unwrap_err();
        assert!(matches!(error, IssuerSettingsError::DuplicateName { .. }));
        let deaf = IssuerSettings {
            audiences: vec![],
            ..a.clone()
        };
        assert!(matches!(
            check(&[deaf]),
            Err(IssuerSettingsError::NoAudience { .. })
        ));
        let instant = IssuerSettings {
            max_lifetime: Duration::ZERO,
            ..a
        };
        assert!(matches!(
            check(&[instant]),
            Err(IssuerSettingsError::NoLifetime { .. })
        ));
    }
}
