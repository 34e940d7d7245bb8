//! Who is calling: a gateway key in `Authorization: Bearer tmt_<id>_<secret>`, checked
//! against the digest the policy holds for its public id, or a workload's OIDC token
//! (`Authorization: Bearer <JWT>`), verified against its issuer's keys and matched to exactly
//! one workload. A key that is not in the policy, whose digest does not match, or that has
//! expired gets a 401; which of the first two it was is not said. A token is refused with
//! the code of what is wrong with it, and is never repeated, logged or kept.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jiff::Timestamp;
use jiff::civil::Date;
use tramontane::gateway_key::{self, KEY_PREFIX, VerifyError};

use crate::access::{Caller, Principal};
use crate::audit::AuditRecord;
use crate::refusal::Refusal;
use crate::state::PolicyState;
use crate::workloads::Unmatched;

/// Longest Authorization header read: a gateway key is well under 100 bytes, a Kubernetes
/// or GitHub Actions token one or two kilobytes; the verifier's own bound, and the scheme.
const MAX_CREDENTIAL_BYTES: usize = crate::oidc::MAX_TOKEN_BYTES + "Bearer ".len();

/// What a request presents in its `Authorization: Bearer` header.
enum Credential<'h> {
    GatewayKey(&'h str),
    /// Three dot-separated parts: a JWT, to verify.
    Token(&'h str),
}

fn presented(headers: &HeaderMap) -> Result<Credential<'_>, Refusal> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refusal::MissingKey);
    };
    if values.next().is_some() || value.len() > MAX_CREDENTIAL_BYTES {
        return Err(Refusal::MalformedKey);
    }
    let value = value.to_str().map_err(|_| Refusal::MalformedKey)?;
    let (scheme, credential) = value.split_once(' ').ok_or(Refusal::MalformedKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::MalformedKey);
    }
    let credential = credential.trim();
    if credential.starts_with(KEY_PREFIX) {
        Ok(Credential::GatewayKey(credential))
    } else if credential.bytes().filter(|&byte| byte == b'.').count() == 2 {
        Ok(Credential::Token(credential))
    } else {
        Err(Refusal::MalformedKey)
    }
}

/// The caller a request's key or token is, with what the audit line says of them filled in
/// `record` as soon as it is known (a refused token's issuer and subject too).
pub async fn authenticate<'a>(
    policy: &'a PolicyState,
    headers: &HeaderMap,
    today: Date,
    now: Timestamp,
    record: &mut AuditRecord,
) -> Result<&'a Caller, Refusal> {
    let caller = match presented(headers)? {
        Credential::GatewayKey(key) => gateway_key_caller(policy, key, today)?,
        Credential::Token(token) => workload_caller(policy, token, now, record).await?,
    };
    match &caller.principal {
        Principal::Key { id, holder, .. } => {
            record.key_id = Some(id.to_string());
            record.holder = Some(holder.to_string());
        }
        Principal::Workload { name, issuer } => {
            record.workload = Some(name.clone());
            record.issuer = Some(issuer.clone());
        }
    }
    record.workspace = Some(caller.workspace.clone());
    Ok(caller)
}

fn gateway_key_caller<'a>(
    policy: &'a PolicyState,
    key: &str,
    today: Date,
) -> Result<&'a Caller, Refusal> {
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

async fn workload_caller<'a>(
    policy: &'a PolicyState,
    token: &str,
    now: Timestamp,
    record: &mut AuditRecord,
) -> Result<&'a Caller, Refusal> {
    let verified = policy
        .tokens
        .verify(token, now)
        .await
        .map_err(Refusal::Token)?;
    record.issuer = Some(verified.issuer.clone());
    record.subject = Some(verified.subject.clone());
    record.token_id = verified.jti.clone();
    policy
        .callers
        .workloads()
        .matching(&verified.issuer, &verified.subject, |path| {
            verified.claim(path)
        })
        .map_err(|unmatched| match unmatched {
            Unmatched::NoWorkload => Refusal::NoWorkload {
                issuer: verified.issuer.clone(),
                subject: verified.subject.clone(),
            },
            Unmatched::Several(workloads) => Refusal::AmbiguousWorkload { workloads },
        })
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
            tokens: std::sync::Arc::new(
                crate::oidc::Verifier::new(Vec::new(), Default::default()).unwrap(),
            ),
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

    fn check(table: &PolicyState, headers: &HeaderMap, day: Date) -> Result<String, Refusal> {
        let mut record = AuditRecord::default();
        let now = Timestamp::now();
        let caller = futures_executor(authenticate(table, headers, day, now, &mut record))?;
        assert_eq!(record.workspace.as_deref(), Some(caller.workspace.as_str()));
        Ok(record.key_id.unwrap_or_default())
    }

    /// Runs a future that never waits on I/O (a gateway key is checked without any).
    fn futures_executor<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_known_key_is_its_caller_until_it_expires() {
        let table = table();
        let day: Date = "2026-12-30".parse().unwrap();
        let id = check(&table, &headers(&format!("Bearer {}", key())), day).unwrap();
        assert_eq!(id, "abcd");
        assert!(check(&table, &headers(&format!("bearer  {}", key())), day).is_ok());
        let next: Date = "2026-12-31".parse().unwrap();
        assert!(matches!(
            check(&table, &headers(&format!("Bearer {}", key())), next),
            Err(Refusal::ExpiredKey { .. })
        ));
    }

    #[test]
    fn anything_else_is_refused() {
        let table = table();
        let day: Date = "2026-06-01".parse().unwrap();
        let refuse = |value: &str| check(&table, &headers(value), day).unwrap_err();
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
            refuse(&format!("Bearer {}", "x.".repeat(9000))),
            Refusal::MalformedKey
        );
        // A token where no issuer is trusted: refused as such, not as a broken key.
        assert!(matches!(
            refuse("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
            Refusal::Token(_)
        ));
        assert_eq!(
            check(&table, &HeaderMap::new(), day).unwrap_err(),
            Refusal::MissingKey
        );
    }
}
