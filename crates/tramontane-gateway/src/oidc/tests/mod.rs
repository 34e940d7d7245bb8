//! The verifier against a fake issuer on loopback that signs tokens and serves its keys.

mod claims;
mod keys;
mod signatures;

use std::time::Duration;

use tramontane_testkit::fake_issuer::{AUDIENCE, FakeIssuer};
use url::Url;

use super::*;

/// The name every test's issuer has in the policy.
const NAME: &str = "cluster";

fn settings(issuer: &FakeIssuer, keys: KeySource) -> IssuerSettings {
    IssuerSettings {
        name: NAME.into(),
        issuer: issuer.issuer().into(),
        keys,
        audiences: vec!["another-gateway".into(), AUDIENCE.into()],
        max_lifetime: Duration::from_secs(3600),
    }
}

fn jwks_url(issuer: &FakeIssuer) -> KeySource {
    KeySource::JwksUrl(Url::parse(&issuer.jwks_url()).unwrap())
}

fn verifier(issuer: &FakeIssuer) -> Verifier {
    verifier_with(issuer, KeyCacheSettings::default())
}

fn verifier_with(issuer: &FakeIssuer, cache: KeyCacheSettings) -> Verifier {
    Verifier::new(vec![settings(issuer, jwks_url(issuer))], cache).unwrap()
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn attempts(verifier: &Verifier) -> u64 {
    verifier.fetch_counts(NAME).unwrap().attempts
}

/// Verifies a token that must be refused, and checks that no part of it shows in the
/// refusal's text, its debug form or the HTTP answer's message.
async fn refused(verifier: &Verifier, token: &str) -> TokenRefusal {
    let refusal = verifier.verify(token, now()).await.unwrap_err();
    assert_token_absent(&refusal, token);
    refusal
}

fn assert_token_absent(refusal: &TokenRefusal, token: &str) {
    let texts = [
        refusal.to_string(),
        format!("{refusal:?}"),
        refusal.message(),
        format!("{:?}", crate::refusal::Refusal::Token(refusal.clone())),
    ];
    for text in texts {
        // Every part long enough to mean something: a header, claims or a signature.
        for part in token.split('.').filter(|part| part.len() >= 8) {
            assert!(!text.contains(part), "{text} repeats a part of the token");
        }
    }
}

/// Waits until `condition` holds, for at most five seconds.
async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..100 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the condition never held");
}
