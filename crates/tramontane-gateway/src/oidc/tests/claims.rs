//! Claims: `aud` one of the accepted, `exp` required and not past, `nbf` and `iat` not in the
//! future, with at most a minute of skew each way, and a lifetime within the issuer's limit.

use std::time::Duration;

use jiff::ToSpan;
use serde_json::json;
use tramontane_testkit::fake_issuer::{FakeIssuer, KeyKind};

use super::*;

fn minutes(count: i64) -> jiff::Span {
    count.minutes()
}

#[tokio::test]
async fn an_expired_token_is_refused_after_the_skew() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let verifier = verifier(&issuer);
    let at = now();
    let expired = issuer
        .token()
        .issued(at - minutes(40), Duration::from_secs(30 * 60))
        .mint();
    let refusal = refused(&verifier, &expired).await;
    assert_eq!(refusal.code(), "token_expired");
    assert_eq!(
        refusal,
        TokenRefusal::Expired {
            expired: (at - minutes(10)).as_second()
        }
    );
    // Expired 30 s ago: within the skew.
    let recent = issuer
        .token()
        .issued(at - 630.seconds(), Duration::from_secs(600))
        .mint();
    assert!(verifier.verify(&recent, at).await.is_ok());
    assert!(matches!(
        verifier.verify(&recent, at + 31.seconds()).await,
        Err(TokenRefusal::Expired { .. })
    ));
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused_beyond_the_skew() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let verifier = verifier(&issuer);
    let at = now();
    let later = issuer
        .token()
        .claim("nbf", (at + minutes(2)).as_second())
        .mint();
    assert_eq!(
        refused(&verifier, &later).await,
        TokenRefusal::NotYetValid {
            valid_from: (at + minutes(2)).as_second()
        }
    );
    let soon = issuer
        .token()
        .claim("nbf", (at + 30.seconds()).as_second())
        .mint();
    assert!(verifier.verify(&soon, at).await.is_ok());
    let issued_later = issuer
        .token()
        .issued(at + minutes(2), Duration::from_secs(600))
        .mint();
    assert_eq!(
        refused(&verifier, &issued_later).await.code(),
        "token_not_yet_valid"
    );
    let issued_soon = issuer
        .token()
        .issued(at + 30.seconds(), Duration::from_secs(600))
        .mint();
    assert!(verifier.verify(&issued_soon, at).await.is_ok());
}

#[tokio::test]
async fn a_lifetime_above_the_issuers_limit_is_refused() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let verifier = verifier(&issuer);
    let long = issuer
        .token()
        .issued(now(), Duration::from_secs(3601))
        .mint();
    assert_eq!(
        refused(&verifier, &long).await,
        TokenRefusal::LifetimeTooLong {
            issuer: NAME.into(),
            lifetime: 3601,
            limit: 3600
        }
    );
    let longest = issuer
        .token()
        .issued(now(), Duration::from_secs(3600))
        .mint();
    assert!(verifier.verify(&longest, now()).await.is_ok());
    let backwards = issuer
        .token()
        .claim("exp", (now() + minutes(5)).as_second())
        .claim("iat", (now() + minutes(6)).as_second())
        .mint();
    assert_eq!(
        refused(&verifier, &backwards).await.code(),
        "token_not_yet_valid"
    );
}

#[tokio::test]
async fn the_audience_must_be_one_the_issuer_accepts() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let verifier = verifier(&issuer);
    let elsewhere = issuer.token().claim("aud", "https://other.example").mint();
    let refusal = refused(&verifier, &elsewhere).await;
    assert_eq!(
        refusal,
        TokenRefusal::AudienceRefused {
            issuer: NAME.into()
        }
    );
    assert_eq!(refusal.code(), "token_audience_refused");
    let among = issuer
        .token()
        .claim("aud", json!(["sts.amazonaws.com", AUDIENCE]))
        .mint();
    assert!(verifier.verify(&among, now()).await.is_ok());
    let second = issuer.token().claim("aud", "another-gateway").mint();
    assert!(verifier.verify(&second, now()).await.is_ok());
    for aud in [
        json!(["sts.amazonaws.com"]),
        json!([]),
        json!(null),
        json!(7),
    ] {
        let token = issuer.token().claim("aud", aud).mint();
        assert_eq!(
            refused(&verifier, &token).await.code(),
            "token_audience_refused"
        );
    }
    let without = issuer.token().without_claim("aud").mint();
    assert_eq!(
        refused(&verifier, &without).await.code(),
        "token_audience_refused"
    );
}

#[tokio::test]
async fn exp_iat_and_sub_are_required_and_typed() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let verifier = verifier(&issuer);
    for claim in ["exp", "iat", "sub"] {
        let token = issuer.token().without_claim(claim).mint();
        let refusal = refused(&verifier, &token).await;
        assert_eq!(refusal, TokenRefusal::ClaimMissing { claim });
        assert_eq!(refusal.code(), "token_claim_missing");
    }
    let text_exp = issuer.token().claim("exp", "tomorrow").mint();
    assert_eq!(
        refused(&verifier, &text_exp).await.code(),
        "token_malformed"
    );
    let number_sub = issuer.token().claim("sub", 12).mint();
    assert_eq!(
        refused(&verifier, &number_sub).await.code(),
        "token_malformed"
    );
    let iss_array = issuer.token().claim("iss", json!([issuer.issuer()])).mint();
    assert_eq!(
        refused(&verifier, &iss_array).await.code(),
        "token_malformed"
    );
}

#[tokio::test]
async fn a_token_carrying_another_issuers_iss_does_not_verify_with_its_own_keys() {
    let ours = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let theirs = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let both = Verifier::new(
        vec![settings(&ours, jwks_url(&ours)), {
            let mut other = settings(&theirs, jwks_url(&theirs));
            other.name = "other".into();
            other
        }],
        KeyCacheSettings::default(),
    )
    .unwrap();
    let mine = ours.token().mint();
    assert_eq!(both.verify(&mine, now()).await.unwrap().issuer, NAME);
    let theirs_token = theirs.token().mint();
    assert_eq!(
        both.verify(&theirs_token, now()).await.unwrap().issuer,
        "other"
    );
    // Their key, our `iss`: our keys have no such `kid`.
    let posing = theirs.token().claim("iss", ours.issuer()).mint();
    assert!(matches!(
        refused(&both, &posing).await,
        TokenRefusal::KeyUnknown { ref issuer, kid: Some(_) } if issuer == NAME
    ));
    // Their key under our key's `kid`: the signature does not verify.
    let borrowed = theirs
        .token()
        .claim("iss", ours.issuer())
        .header("kid", ours.kid(KeyKind::P256))
        .mint();
    assert_eq!(
        refused(&both, &borrowed).await.code(),
        "token_signature_invalid"
    );
}
