//! The gateway's part of the policy: who holds a gateway key, and what each workspace opens.
//!
//! A gateway key lives in git only as the SHA-256 digest of its full text, like a line of an
//! `authorized_keys` file: reviewing a pull request shows who gets access to what, and the
//! repository never holds anything that would let a reader call the gateway.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The public half of a gateway key, its name in `gateway_keys:`. Lowercase letters, digits
/// and inner hyphens, 4 to 40 characters: never `_`, which separates the parts of a key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct GatewayKeyId(String);

/// Shortest public id accepted.
pub const MIN_ID_LENGTH: usize = 4;
/// Longest public id accepted.
pub const MAX_ID_LENGTH: usize = 40;

/// Why a text is not a public id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayKeyIdError {
    #[error("a gateway key id is {MIN_ID_LENGTH} to {MAX_ID_LENGTH} characters long")]
    Length,
    #[error("a gateway key id holds only lowercase letters, digits and inner hyphens")]
    Characters,
}

impl GatewayKeyId {
    pub fn parse(text: &str) -> Result<GatewayKeyId, GatewayKeyIdError> {
        if !(MIN_ID_LENGTH..=MAX_ID_LENGTH).contains(&text.len()) {
            return Err(GatewayKeyIdError::Length);
        }
        let allowed = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-';
        let bytes = text.as_bytes();
        if !bytes.iter().all(|&byte| allowed(byte))
            || bytes.first() == Some(&b'-')
            || bytes.last() == Some(&b'-')
        {
            return Err(GatewayKeyIdError::Characters);
        }
        Ok(GatewayKeyId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GatewayKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for GatewayKeyId {
    type Err = GatewayKeyIdError;

    fn from_str(text: &str) -> Result<GatewayKeyId, GatewayKeyIdError> {
        GatewayKeyId::parse(text)
    }
}

impl<'de> Deserialize<'de> for GatewayKeyId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        GatewayKeyId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The SHA-256 digest of a full gateway key (`tmt_<id>_<secret>`), written `sha256:<hex>`.
///
/// The digest covers the public id too, so an entry copied under another id matches nothing.
/// It is not secret: its Debug and Display show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

/// The prefix naming the digest algorithm in the policy.
pub const DIGEST_PREFIX: &str = "sha256:";

/// Why a text is not a key digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyDigestError {
    #[error("a key digest starts with `sha256:`")]
    Prefix,
    #[error("a key digest is `sha256:` and 64 lowercase hexadecimal digits")]
    Hex,
}

impl KeyDigest {
    /// The digest of a full key as presented by a caller.
    pub fn of(full_key: &str) -> KeyDigest {
        KeyDigest(Sha256::digest(full_key.as_bytes()).into())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> KeyDigest {
        KeyDigest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `full_key` is the key this digest was made from. The comparison takes the same
    /// time wherever the digests differ, so timing tells a caller nothing about how close a
    /// guess came.
    pub fn matches(&self, full_key: &str) -> bool {
        let presented = KeyDigest::of(full_key);
        bool::from(self.0.ct_eq(&presented.0))
    }

    pub fn parse(text: &str) -> Result<KeyDigest, KeyDigestError> {
        let hex = text
            .strip_prefix(DIGEST_PREFIX)
            .ok_or(KeyDigestError::Prefix)?;
        if hex.len() != 64 {
            return Err(KeyDigestError::Hex);
        }
        let nibble = |byte: u8| match byte {
            b'0'..=b'9' => Ok(byte - b'0'),
            b'a'..=b'f' => Ok(byte - b'a' + 10),
            _ => Err(KeyDigestError::Hex),
        };
        let mut bytes = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            bytes[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(KeyDigest(bytes))
    }
}

impl std::fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(DIGEST_PREFIX)?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyDigest({self})")
    }
}

impl std::str::FromStr for KeyDigest {
    type Err = KeyDigestError;

    fn from_str(text: &str) -> Result<KeyDigest, KeyDigestError> {
        KeyDigest::parse(text)
    }
}

impl Serialize for KeyDigest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyDigest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        KeyDigest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Who a gateway key is for: a person, or a service that already has a platform key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Holder {
    /// An organization member, by email. The gateway forwards with the workspace's
    /// `gateway.upstream_key`.
    Member(String),
    /// A key under `workspaces.W.keys.K`, written `workspace.W.key.K`. The gateway forwards
    /// with that key's own secret, so Mistral's usage stays per key.
    ServiceKey { workspace: String, key: String },
}

impl Holder {
    /// Reads an email or a `workspace.W.key.K` address. Policy names cannot hold a dot, so the
    /// address splits one way only; anything else is taken as an email, which the checks
    /// then look up among the members.
    pub fn parse(text: &str) -> Holder {
        let parts: Vec<&str> = text.split('.').collect();
        match parts.as_slice() {
            ["workspace", workspace, "key", key]
                if !workspace.is_empty() && !key.is_empty() && !text.contains('@') =>
            {
                Holder::ServiceKey {
                    workspace: (*workspace).to_owned(),
                    key: (*key).to_owned(),
                }
            }
            _ => Holder::Member(text.to_owned()),
        }
    }

    pub fn service_key(workspace: &str, key: &str) -> Holder {
        Holder::ServiceKey {
            workspace: workspace.to_owned(),
            key: key.to_owned(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Member(email) => f.write_str(email),
            Holder::ServiceKey { workspace, key } => write!(f, "workspace.{workspace}.key.{key}"),
        }
    }
}

impl Serialize for Holder {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Holder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Holder::parse(&text))
    }
}

/// One entry of `gateway_keys:`. The expiry is required: a key for the gateway is issued for a
/// time (`tramontane gateway issue` defaults to 90 days), and an entry that says so is what a
/// reviewer approves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayKey {
    pub digest: KeyDigest,
    pub holder: Holder,
    /// The workspace whose models, limits and upstream key the caller gets.
    pub workspace: String,
    /// The day (UTC) the key stops working, as a platform key's `expires`: it is accepted
    /// up to the end of the day before.
    pub expires: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl GatewayKey {
    /// Whether the key is still accepted on `today` (UTC).
    pub fn is_valid_on(&self, today: Date) -> bool {
        today < self.expires
    }
}

/// What the gateway does when its limit store cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreFailure {
    /// Refuse requests: no limit is ever overrun.
    #[default]
    FailClosed,
    /// Let requests through, counted in each replica's own memory while the shared store
    /// fails: every limit holds per replica (N replicas may allow N times a limit), and
    /// their use is missing from the shared meters. Availability over exact limits.
    FailOpen,
}

impl StoreFailure {
    pub fn is_default(&self) -> bool {
        *self == StoreFailure::default()
    }
}

/// A path a workspace opens through the gateway: `/v1/ocr` (for `POST`), or
/// `{ path: /v1/files/*, methods: [GET, POST], unmetered: true }`. A path ending in `/*` opens
/// every path under it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OpenedPath {
    Post(String),
    With {
        path: String,
        #[serde(default = "post_only")]
        methods: Vec<OpenedMethod>,
        /// The operator's word that calls here may go unmetered under a token budget or
        /// spend guard: without it, a path the gateway cannot price is refused there.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unmetered: bool,
    },
}

fn post_only() -> Vec<OpenedMethod> {
    vec![OpenedMethod::Post]
}

/// A method an opened path lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpenedMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
}

impl OpenedMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            OpenedMethod::Get => "GET",
            OpenedMethod::Post => "POST",
            OpenedMethod::Put => "PUT",
            OpenedMethod::Patch => "PATCH",
            OpenedMethod::Delete => "DELETE",
        }
    }
}

impl OpenedPath {
    pub fn path(&self) -> &str {
        match self {
            OpenedPath::Post(path) | OpenedPath::With { path, .. } => path,
        }
    }

    /// The methods it lets through: `POST` unless it names others.
    pub fn methods(&self) -> &[OpenedMethod] {
        match self {
            OpenedPath::Post(_) => &[OpenedMethod::Post],
            OpenedPath::With { methods, .. } => methods,
        }
    }

    /// Whether calls may go unmetered under a budget (`unmetered: true`).
    pub fn unmetered(&self) -> bool {
        matches!(
            self,
            OpenedPath::With {
                unmetered: true,
                ..
            }
        )
    }

    /// Whether it opens `path`: the same path, or one under a `/*` entry.
    pub fn opens(&self, path: &str) -> bool {
        let open = self.path();
        open == path
            || open
                .strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with('/') && path.starts_with(prefix))
    }
}

/// A workspace's `gateway:` block: what the gateway opens for the workspace and which
/// platform key it forwards member requests with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceGateway {
    /// A key of this workspace (under `keys`) whose secret the gateway forwards requests made
    /// with members' gateway keys. Service keys forward with their own secret instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_key: Option<String>,
    /// Agent ids callers may use through `/v1/agents/completions`; none unless listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Inference paths opened beyond the ones the gateway always passes
    /// (`/v1/chat/completions`, `/v1/fim/completions`, `/v1/embeddings`,
    /// `/v1/agents/completions`, the moderation paths, `/v1/models`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<OpenedPath>,
    #[serde(default, skip_serializing_if = "StoreFailure::is_default")]
    pub store_failure: StoreFailure,
    /// Tokens each item the upstream fetches or expands (a document, an image by URL, a
    /// stored file, an agent's own prompt) is reserved at under a token budget or spend
    /// guard; without it such requests are refused there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_content_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_alphanumerics_and_inner_hyphens() {
        assert!(GatewayKeyId::parse("k7x2m9qa4b1c").is_ok());
        assert!(GatewayKeyId::parse("ci-bot").is_ok());
        assert_eq!(GatewayKeyId::parse("abc"), Err(GatewayKeyIdError::Length));
        assert_eq!(
            GatewayKeyId::parse(&"a".repeat(41)),
            Err(GatewayKeyIdError::Length)
        );
        for bad in ["ci_bot", "CiBot", "-cib", "cib-", "ci bot", "cïbot"] {
            assert!(GatewayKeyId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_round_trip_and_match_only_their_key() {
        let digest = KeyDigest::of("tmt_abcd_secret");
        let text = digest.to_string();
        assert!(text.starts_with("sha256:") && text.len() == 7 + 64);
        assert_eq!(KeyDigest::parse(&text), Ok(digest));
        assert!(digest.matches("tmt_abcd_secret"));
        assert!(!digest.matches("tmt_abcd_secreT"));
        assert!(!digest.matches(""));
        // The well-known digest of the empty string, to pin the algorithm.
        assert_eq!(
            KeyDigest::of("").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            KeyDigest::parse(&text.to_uppercase().replace("SHA256", "sha256")),
            Err(KeyDigestError::Hex)
        );
        assert_eq!(KeyDigest::parse("md5:00"), Err(KeyDigestError::Prefix));
        assert_eq!(KeyDigest::parse("sha256:abc"), Err(KeyDigestError::Hex));
    }

    #[test]
    fn holders_are_members_or_service_key_addresses() {
        assert_eq!(
            Holder::parse("ada@acme.example"),
            Holder::Member("ada@acme.example".into())
        );
        let service = Holder::parse("workspace.prod.key.ci");
        assert_eq!(service, Holder::service_key("prod", "ci"));
        assert_eq!(service.to_string(), "workspace.prod.key.ci");
        // Not the four-part shape: left to the member lookup to report.
        assert!(matches!(
            Holder::parse("workspace.prod.ci"),
            Holder::Member(_)
        ));
    }

    #[test]
    fn the_policy_shape_decodes() {
        let entry: GatewayKey = serde_json::from_value(serde_json::json!({
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "holder": "workspace.prod.key.ci",
            "workspace": "prod",
            "expires": "2027-01-31",
        }))
        .unwrap();
        assert_eq!(entry.holder, Holder::service_key("prod", "ci"));
        let gateway: WorkspaceGateway =
            serde_json::from_value(serde_json::json!({"upstream_key": "gateway"})).unwrap();
        assert_eq!(gateway.store_failure, StoreFailure::FailClosed);
        assert_eq!(
            serde_json::to_value(&gateway).unwrap(),
            serde_json::json!({"upstream_key": "gateway"})
        );
    }
}
