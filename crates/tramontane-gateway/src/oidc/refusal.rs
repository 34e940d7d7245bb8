//! Why a workload token is refused. Each refusal has a stable code (the `code` of the error
//! a caller gets, the reason metrics and audit lines show) and a message that says what to
//! do. None holds the token or any part of it: what a refusal repeats is the `kid` and `iss`
//! the caller sent, cut short, and names and numbers the gateway chose.

/// Longest piece of a caller's token header or claim a refusal repeats.
const SHOWN_BYTES: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// Not three base64url parts, not JSON, a claim of the wrong type.
    #[error("the token is not a well-formed JWT: {detail}")]
    Malformed { detail: &'static str },
    #[error("no trusted issuer has the `iss` `{issuer}`")]
    IssuerUnknown { issuer: String },
    /// No published key has the token's `kid`, or the token has none and the issuer
    /// publishes several keys.
    #[error("issuer `{issuer}` publishes no key {}", kid_shown(kid))]
    KeyUnknown { issuer: String, kid: Option<String> },
    /// `none`, an HMAC, or an algorithm other than the one the key's type allows.
    #[error(
        "the algorithm `{algorithm}` is not accepted{}",
        expected_shown(expected)
    )]
    AlgorithmRefused {
        algorithm: String,
        expected: Option<&'static str>,
    },
    #[error("the token's signature does not verify with issuer `{issuer}`'s key")]
    SignatureInvalid { issuer: String },
    #[error(
        "the token is not for this gateway: its `aud` is none of issuer `{issuer}`'s accepted audiences"
    )]
    AudienceRefused { issuer: String },
    #[error("the token has no `{claim}` claim")]
    ClaimMissing { claim: &'static str },
    #[error("the token expired at {}", when(*expired))]
    Expired { expired: i64 },
    /// `nbf` or `iat` later than now, beyond the clock skew allowed.
    #[error("the token is not valid before {}", when(*valid_from))]
    NotYetValid { valid_from: i64 },
    #[error("the token lives {lifetime} s, longer than issuer `{issuer}`'s limit of {limit} s")]
    LifetimeTooLong {
        issuer: String,
        lifetime: i64,
        limit: u64,
    },
    /// The issuer's keys could not be read and none are cached: fail closed.
    #[error("issuer `{issuer}`'s signing keys cannot be read now")]
    IssuerUnavailable { issuer: String },
}

impl TokenRefusal {
    /// The stable code: the `code` of the answer, the reason in metrics and audit lines.
    pub fn code(&self) -> &'static str {
        match self {
            TokenRefusal::Malformed { .. } => "token_malformed",
            TokenRefusal::IssuerUnknown { .. } => "token_issuer_unknown",
            TokenRefusal::KeyUnknown { .. } => "token_key_unknown",
            TokenRefusal::AlgorithmRefused { .. } => "token_algorithm_refused",
            TokenRefusal::SignatureInvalid { .. } => "token_signature_invalid",
            TokenRefusal::AudienceRefused { .. } => "token_audience_refused",
            TokenRefusal::ClaimMissing { .. } => "token_claim_missing",
            TokenRefusal::Expired { .. } => "token_expired",
            TokenRefusal::NotYetValid { .. } => "token_not_yet_valid",
            TokenRefusal::LifetimeTooLong { .. } => "token_lifetime_too_long",
            TokenRefusal::IssuerUnavailable { .. } => "token_issuer_unavailable",
        }
    }

    /// What the caller can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            TokenRefusal::Malformed { .. } | TokenRefusal::ClaimMissing { .. } => {
                "send the platform's token as it was issued (a Kubernetes projected service-account token, a GitHub Actions OIDC token), or a gateway key"
            }
            TokenRefusal::IssuerUnknown { .. } => {
                "ask the gateway's operator to trust this issuer in the policy (`issuers:`), or send a gateway key"
            }
            TokenRefusal::KeyUnknown { .. } | TokenRefusal::SignatureInvalid { .. } => {
                "send a fresh token from the issuer; if it keeps failing, the issuer's keys may not be the ones the gateway reads"
            }
            TokenRefusal::AlgorithmRefused { .. } => {
                "tokens must be signed with RS256 (RSA keys), ES256 (P-256 keys) or EdDSA (Ed25519 keys)"
            }
            TokenRefusal::AudienceRefused { .. } => {
                "request the token for one of the audiences the policy lists for this issuer"
            }
            TokenRefusal::Expired { .. } => {
                "request a new token; projected tokens are refreshed by the kubelet, read the file again"
            }
            TokenRefusal::NotYetValid { .. } => {
                "check the clocks of the issuer and the gateway, or wait until the token is valid"
            }
            TokenRefusal::LifetimeTooLong { .. } => {
                "request a shorter-lived token (e.g. `expirationSeconds` of the projected volume), or ask the operator to raise the issuer's longest lifetime"
            }
            TokenRefusal::IssuerUnavailable { .. } => "try again shortly",
        }
    }

    /// The answer's message: what happened and what to do.
    pub fn message(&self) -> String {
        let mut what = self.to_string();
        if let Some(first) = what.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        format!("{what}; {}.", self.help())
    }
}

/// A caller's text cut short on a character boundary.
pub(crate) fn shown(text: &str) -> String {
    crate::audit::bounded(text, SHOWN_BYTES).into_owned()
}

fn kid_shown(kid: &Option<String>) -> String {
    match kid {
        Some(kid) => format!("with the `kid` `{kid}`"),
        None => "that a token without a `kid` could name".to_owned(),
    }
}

/// A NumericDate as a time a person reads, or as the number when it is out of range.
fn when(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(
        |_| format!("{seconds} (Unix seconds)"),
        |time| time.to_string(),
    )
}

fn expected_shown(expected: &Option<&'static str>) -> String {
    match expected {
        Some(algorithm) => format!(" for this key, which signs with `{algorithm}` only"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_code_and_says_what_to_do() {
        let refusals = [
            TokenRefusal::Malformed { detail: "x" },
            TokenRefusal::IssuerUnknown { issuer: "i".into() },
            TokenRefusal::KeyUnknown {
                issuer: "i".into(),
                kid: None,
            },
            TokenRefusal::AlgorithmRefused {
                algorithm: "none".into(),
                expected: None,
            },
            TokenRefusal::SignatureInvalid { issuer: "i".into() },
            TokenRefusal::AudienceRefused { issuer: "i".into() },
            TokenRefusal::ClaimMissing { claim: "exp" },
            TokenRefusal::Expired { expired: 1 },
            TokenRefusal::NotYetValid { valid_from: 1 },
            TokenRefusal::LifetimeTooLong {
                issuer: "i".into(),
                lifetime: 2,
                limit: 1,
            },
            TokenRefusal::IssuerUnavailable { issuer: "i".into() },
        ];
        let codes: std::collections::BTreeSet<_> = refusals.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), refusals.len());
        for refusal in &refusals {
            assert!(refusal.code().starts_with("token_"));
            let message = refusal.message();
            assert!(message.starts_with(char::is_uppercase), "{message}");
            assert!(message.ends_with('.'), "{message}");
        }
        assert_eq!(
            TokenRefusal::Expired {
                expired: 1_796_000_000
            }
            .to_string(),
            "the token expired at 2026-11-30T00:53:20Z"
        );
        assert_eq!(
            TokenRefusal::AlgorithmRefused {
                algorithm: "HS256".into(),
                expected: Some("RS256")
            }
            .message(),
            "The algorithm `HS256` is not accepted for this key, which signs with `RS256` only; tokens must be signed with RS256 (RSA keys), ES256 (P-256 keys) or EdDSA (Ed25519 keys)."
        );
    }
}
