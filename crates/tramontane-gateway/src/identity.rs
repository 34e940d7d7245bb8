//! Who is calling: the gateway key in `Authorization: Bearer tmt_<id>_<secret>`, checked
//! against the digest the policy holds for its public id. A key that is not in the policy,
//! whose digest does not match, or that has expired gets a 401; which of the first two it
//! was is not said.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jiff::civil::Date;
use tramontane::gateway_key::{self, VerifyError};

use crate::access::Caller;
use crate::refusal::Refusal;
use crate::state::PolicyState;

/// Longest Authorization header read: a real key is well under it.
const MAX_CREDENTIAL_BYTES: usize = 512;

/// The key presented in the request's `Authorization: Bearer` header.
fn presented(headers: &HeaderMap) -> Result<&str, Refusal> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refusal::MissingKey);
    };
    if values.next().is_some() || value.len() > MAX_CREDENTIAL_BYTES {
        return Err(Refusal::MalformedKey);
    }
    let value = value.to_str().map_err(|_| Refusal::MalformedKey)?;
    let (scheme, key) = value.split_once(' ').ok_or(Refusal::MalformedKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::MalformedKey);
    }
    Ok(key.trim())
}

/// The caller a request's key belongs to.
pub fn authenticate<'a>(
    policy: &'a PolicyState,
    headers: &HeaderMap,
    today: Date,
) -> Result<&'a Caller, Refusal> {
    let key = presented(headers)?;
    let (id, _) = gateway_key::verify(&policy.desired.gateway_keys, key, today).map_err(
        |error| match error {
            VerifyError::Format(_) => Refusal::MalformedKey,
            VerifyError::UnknownId(_) | VerifyError::Mismatch(_) => Refusal::UnknownKey,
            VerifyError::Expired { expires, .. } => Refusal::ExpiredKey {
                expired: expires.to_string(),
            },
        },
    )?;
    // An entry whose workspace the policy lacks grants nothing.
    policy.callers.get(id.as_str()).ok_or(Refusal::UnknownKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::CallerTable;
    use crate::upstream_keys::UpstreamKeys;
    use tramontane::model::{DesiredOrg, KeyDigest};

    /// Built at run time so the source holds no whole gateway key for `tramontane scan`
    /// to report.
    fn key() -> String {
        format!("tmt_abcd_{}", "0123456789abcdefghijABCDEFGHIJ0123456789xyz")
    }

    fn table() -> PolicyState {
        let org: DesiredOrg = serde_json::from_value(serde_json::json!({
            "workspaces": {"w": {}},
            "gateway_keys": {"abcd": {"digest": KeyDigest::of(&key()).to_string(),
                                      "holder": "a@acme.example", "workspace": "w",
                                      "expires": "2026-12-31"}}
        }))
        .unwrap();
        PolicyState {
            callers: CallerTable::of(&org),
            desired: org,
            upstream_keys: UpstreamKeys::default(),
            expired: Vec::new(),
            prices: std::sync::Arc::new(crate::prices::PriceTable::bundled(
                tramontane::model::Currency::Usd,
            )),
            catalog: std::sync::Arc::new(tramontane::policy::catalog::Catalog::bundled().clone()),
            alerts: Default::default(),
            alert_problems: Vec::new(),
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_known_key_is_its_caller_until_it_expires() {
        let table = table();
        let day: Date = "2026-12-30".parse().unwrap();
        let caller = authenticate(&table, &headers(&format!("Bearer {}", key())), day).unwrap();
        assert_eq!(caller.id.as_str(), "abcd");
        assert!(authenticate(&table, &headers(&format!("bearer  {}", key())), day).is_ok());
        let next: Date = "2026-12-31".parse().unwrap();
        assert!(matches!(
            authenticate(&table, &headers(&format!("Bearer {}", key())), next),
            Err(Refusal::ExpiredKey { .. })
        ));
    }

    #[test]
    fn anything_else_is_refused() {
        let table = table();
        let day: Date = "2026-06-01".parse().unwrap();
        let refuse = |value: &str| authenticate(&table, &headers(value), day).unwrap_err();
        let wrong = key().replace("xyz", "xyZ");
        assert_eq!(refuse(&format!("Bearer {wrong}")), Refusal::UnknownKey);
        let other = key().replace("abcd", "zzzz");
        assert_eq!(refuse(&format!("Bearer {other}")), Refusal::UnknownKey);
        assert_eq!(refuse("Bearer tmt_abcd_short"), Refusal::MalformedKey);
        assert_eq!(refuse("Bearer sk-mistral-key"), Refusal::MalformedKey);
        assert_eq!(refuse("Basic dXNlcg=="), Refusal::MalformedKey);
        assert_eq!(refuse("Bearer tmt_abcd"), Refusal::MalformedKey);
        assert_eq!(refuse("Bearer tmt__x"), Refusal::MalformedKey);
        assert_eq!(
            refuse(&format!("Bearer tmt_abcd_{}", "x".repeat(600))),
            Refusal::MalformedKey
        );
        assert_eq!(
            authenticate(&table, &HeaderMap::new(), day).unwrap_err(),
            Refusal::MissingKey
        );
    }
}
