//! A token's parts before and after its signature is checked. Before, only what picks the
//! issuer and key is read (`iss`, `alg`, `kid`); after, the claims are judged against the
//! issuer's settings and the time, and what a workload is matched on is kept — never the
//! token itself.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::refusal::{TokenRefusal, shown};
use super::settings::IssuerSettings;

/// Longest token read: a Kubernetes or GitHub Actions token is 1–2 KiB, an RS256 token
/// with a 4096-bit key and many claims still well under this.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How far the issuer's clock and the gateway's may disagree.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Deepest object nesting whose string claims are kept.
const MAX_CLAIM_DEPTH: usize = 4;

/// What a token says about itself before anything is verified: only used to choose the
/// issuer and key that then verify it.
pub(crate) struct Unverified {
    pub algorithm: String,
    pub kid: Option<String>,
    pub issuer: String,
}

impl Unverified {
    pub fn read(token: &str) -> Result<Unverified, TokenRefusal> {
        let malformed = |detail| TokenRefusal::Malformed { detail };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(malformed("it is longer than 16 KiB"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("it is not three parts separated by dots"));
        };
        let header = json_object(header).ok_or(malformed("its header is not base64url JSON"))?;
        let claims = json_object(payload).ok_or(malformed("its claims are not base64url JSON"))?;
        let algorithm = match header.get("alg") {
            Some(Value::String(algorithm)) => shown(algorithm),
            _ => return Err(malformed("its header has no `alg`")),
        };
        let kid = match header.get("kid") {
            None => None,
            // Kept whole to look the key up; a refusal shows it cut short.
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(malformed("its `kid` is not a string")),
        };
        let issuer = match claims.get("iss") {
            Some(Value::String(issuer)) => issuer.clone(),
            Some(_) => return Err(malformed("its `iss` is not a string")),
            None => return Err(TokenRefusal::ClaimMissing { claim: "iss" }),
        };
        Ok(Unverified {
            algorithm,
            kid,
            issuer,
        })
    }
}

fn json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A token whose signature, issuer, audience and times were checked. It holds what a
/// workload is matched on, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The policy's name for the issuer.
    pub issuer: String,
    pub subject: String,
    /// The token's id, when it has one: safe to log and audit, unlike the token.
    pub jti: Option<String>,
    pub issued_at: jiff::Timestamp,
    pub expires_at: jiff::Timestamp,
    /// Every claim with a string, number or boolean value, by its path (see [`Self::claim`]).
    claims: BTreeMap<String, String>,
}

impl VerifiedToken {
    /// A claim's value for exact matching, by its path: top-level claims by their name
    /// (`sub`, `repository`), a nested claim by the names leading to it joined with `/`
    /// (`kubernetes.io/namespace`, `kubernetes.io/serviceaccount/name`). A `/` or `~`
    /// inside a name is written `~1` or `~0`, as in a JSON Pointer. Strings are their text,
    /// numbers and booleans their JSON text; arrays, objects and nulls have no value.
    pub fn claim(&self, path: &str) -> Option<&str> {
        self.claims.get(path).map(String::as_str)
    }

    /// Every claim [`Self::claim`] can read, by path.
    pub fn claims(&self) -> &BTreeMap<String, String> {
        &self.claims
    }
}

/// Judges verified claims against the issuer's settings at `now`.
pub(crate) fn judge(
    claims: &Map<String, Value>,
    settings: &IssuerSettings,
    now: jiff::Timestamp,
) -> Result<VerifiedToken, TokenRefusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
        return Err(TokenRefusal::IssuerUnknown {
            issuer: claims
                .get("iss")
                .and_then(Value::as_str)
                .map(shown)
                .unwrap_or_default(),
        });
    }
    let for_us = |audience: &Value| {
        audience
            .as_str()
            .is_some_and(|audience| settings.audiences.iter().any(|ours| ours == audience))
    };
    let audience_accepted = match claims.get("aud") {
        Some(Value::Array(audiences)) => audiences.iter().any(for_us),
        Some(audience) => for_us(audience),
        None => false,
    };
    if !audience_accepted {
        return Err(TokenRefusal::AudienceRefused {
            issuer: settings.name.clone(),
        });
    }
    let now = now.as_second();
    let skew = CLOCK_SKEW.as_secs() as i64;
    let expires = time(claims, "exp")?.ok_or(TokenRefusal::ClaimMissing { claim: "exp" })?;
    let issued = time(claims, "iat")?.ok_or(TokenRefusal::ClaimMissing { claim: "iat" })?;
    if now >= expires.saturating_add(skew) {
        return Err(TokenRefusal::Expired { expired: expires });
    }
    let not_before = time(claims, "nbf")?;
    for valid_from in [Some(issued), not_before].into_iter().flatten() {
        if valid_from > now.saturating_add(skew) {
            return Err(TokenRefusal::NotYetValid { valid_from });
        }
    }
    let lifetime = expires.saturating_sub(issued);
    if lifetime < 0 {
        return Err(TokenRefusal::Malformed {
            detail: "it expires before it was issued",
        });
    }
    if lifetime as u64 > settings.max_lifetime.as_secs() {
        return Err(TokenRefusal::LifetimeTooLong {
            issuer: settings.name.clone(),
            lifetime,
            limit: settings.max_lifetime.as_secs(),
        });
    }
    let subject = match claims.get("sub") {
        Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
        Some(Value::String(_)) | None => return Err(TokenRefusal::ClaimMissing { claim: "sub" }),
        Some(_) => {
            return Err(TokenRefusal::Malformed {
                detail: "its `sub` is not a string",
            });
        }
    };
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(jti)) => Some(jti.clone()),
        Some(_) => {
            return Err(TokenRefusal::Malformed {
                detail: "its `jti` is not a string",
            });
        }
    };
    let mut flat = BTreeMap::new();
    flatten(claims, "", 0, &mut flat);
    Ok(VerifiedToken {
        issuer: settings.name.clone(),
        subject,
        jti,
        issued_at: timestamp(issued)?,
        expires_at: timestamp(expires)?,
        claims: flat,
    })
}

/// A NumericDate claim in whole seconds; a fraction is dropped, as issuers write integers.
fn time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenRefusal> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let seconds = value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64));
    match seconds {
        Some(seconds) => Ok(Some(seconds)),
        None => Err(TokenRefusal::Malformed {
            detail: "a time claim (`exp`, `iat`, `nbf`) is not a number",
        }),
    }
}

fn timestamp(seconds: i64) -> Result<jiff::Timestamp, TokenRefusal> {
    jiff::Timestamp::from_second(seconds).map_err(|_| TokenRefusal::Malformed {
        detail: "a time claim is out of range",
    })
}

fn flatten(
    claims: &Map<String, Value>,
    prefix: &str,
    depth: usize,
    into: &mut BTreeMap<String, String>,
) {
    for (name, value) in claims {
        let escaped = name.replace('~', "~0").replace('/', "~1");
        let path = if prefix.is_empty() {
            escaped
        } else {
            format!("{prefix}/{escaped}")
        };
        match value {
            Value::String(text) => {
                into.insert(path, text.clone());
            }
            Value::Number(number) => {
                into.insert(path, number.to_string());
            }
            Value::Bool(flag) => {
                into.insert(path, flag.to_string());
            }
            Value::Object(inner) if depth + 1 < MAX_CLAIM_DEPTH => {
                flatten(inner, &path, depth + 1, into)
            }
            Value::Object(_) | Value::Array(_) | Value::Null => {}
        }
    }
}
