//! Who is calling: the gateway key in `Authorization: Bearer tmt_<id>_<secret>`, checked
//! against the digest the policy holds for its public id. A key that is not in the policy,
//! whose digest does not match, or that has expired gets a 401; which of the first two it
//! was is not said.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jiff::civil::Date;

use crate::access::{Caller, CallerTable};
use crate::refusal::Refusal;

/// Every gateway key starts with this.
pub const KEY_PREFIX: &str = "tmt_";
/// Longest Authorization header read: a real key is well under it.
const MAX_CREDENTIAL_BYTES: usize = 512;

/// The full key and its public id, read from the request.
fn presented(headers: &HeaderMap) -> Result<(&str, &str), Refusal> {
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
    let key = key.trim();
    let rest = key.strip_prefix(KEY_PREFIX).ok_or(Refusal::MalformedKey)?;
    // A public id never holds `_`, so the first one ends it.
    let (id, secret) = rest.split_once('_').ok_or(Refusal::MalformedKey)?;
    if id.is_empty() || secret.is_empty() {
        return Err(Refusal::MalformedKey);
    }
    Ok((key, id))
}

/// The caller a request's key belongs to.
pub fn authenticate<'a>(
    callers: &'a CallerTable,
    headers: &HeaderMap,
    today: Date,
) -> Result<&'a Caller, Refusal> {
    let (key, id) = presented(headers)?;
    let caller = callers.get(id).ok_or(Refusal::UnknownKey)?;
    if !caller.digest.matches(key) {
        return Err(Refusal::UnknownKey);
    }
    if today > caller.expires {
        return Err(Refusal::ExpiredKey {
            expired: caller.expires.to_string(),
        });
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tramontane::model::{DesiredOrg, KeyDigest};

    const KEY: &str = "tmt_abcd_s3cr3t";

    fn table() -> CallerTable {
        let org: DesiredOrg = serde_json::from_value(serde_json::json!({
            "workspaces": {"w": {}},
            "gateway_keys": {"abcd": {"digest": KeyDigest::of(KEY).to_string(),
                                      "holder": "a@acme.example", "workspace": "w",
                                      "expires": "2026-12-31"}}
        }))
        .unwrap();
        CallerTable::of(&org)
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_known_key_is_its_caller_until_it_expires() {
        let table = table();
        let day: Date = "2026-12-31".parse().unwrap();
        let caller = authenticate(&table, &headers(&format!("Bearer {KEY}")), day).unwrap();
        assert_eq!(caller.id.as_str(), "abcd");
        assert!(authenticate(&table, &headers(&format!("bearer  {KEY}")), day).is_ok());
        let next: Date = "2027-01-01".parse().unwrap();
        assert!(matches!(
            authenticate(&table, &headers(&format!("Bearer {KEY}")), next),
            Err(Refusal::ExpiredKey { .. })
        ));
    }

    #[test]
    fn anything_else_is_refused() {
        let table = table();
        let day: Date = "2026-06-01".parse().unwrap();
        let refuse = |value: &str| authenticate(&table, &headers(value), day).unwrap_err();
        assert_eq!(refuse("Bearer tmt_abcd_wrong"), Refusal::UnknownKey);
        assert_eq!(refuse("Bearer tmt_zzzz_s3cr3t"), Refusal::UnknownKey);
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
