//! Signatures and algorithms: each key type verifies with its one algorithm, and nothing a
//! token's header says can choose another.

use serde_json::json;
use tramontane_testkit::fake_issuer::{FakeIssuer, KeyKind, Rotation, SUBJECT};

use super::*;

#[tokio::test]
async fn a_token_signed_by_each_key_type_verifies() {
    let issuer = FakeIssuer::start();
    let verifier = verifier(&issuer);
    for kind in [KeyKind::Rsa, KeyKind::P256, KeyKind::Ed25519] {
        let token = issuer
            .token()
            .key(kind)
            .claim("jti", "run-42")
            .claim(
                "kubernetes.io",
                json!({"namespace": "team", "serviceaccount": {"name": "app", "uid": "u-1"}}),
            )
            .claim("run_attempt", 2)
            .claim("ref/name", "main")
            .mint();
        let verified = verifier.verify(&token, now()).await.unwrap();
        assert_eq!(verified.issuer, NAME);
        assert_eq!(verified.subject, SUBJECT);
        assert_eq!(verified.jti.as_deref(), Some("run-42"));
        assert_eq!(verified.claim("kubernetes.io/namespace"), Some("team"));
        assert_eq!(
            verified.claim("kubernetes.io/serviceaccount/name"),
            Some("app")
        );
        assert_eq!(verified.claim("run_attempt"), Some("2"));
        assert_eq!(verified.claim("ref~1name"), Some("main"));
        assert_eq!(verified.claim("kubernetes.io"), None);
        assert!(verified.expires_at > now());
        let shown = format!("{verified:?}");
        assert!(!shown.contains(token.split('.').nth(2).unwrap()));
    }
    assert_eq!(attempts(&verifier), 1, "one read serves every key");
}

#[tokio::test]
async fn a_header_cannot_choose_the_algorithm() {
    let issuer = FakeIssuer::start();
    let verifier = verifier(&issuer);
    let refusal = refused(
        &verifier,
        &issuer.token().key(KeyKind::Rsa).unsigned().mint(),
    )
    .await;
    assert_eq!(refusal.code(), "token_algorithm_refused");
    assert_eq!(
        refusal,
        TokenRefusal::AlgorithmRefused {
            algorithm: "none".into(),
            expected: None
        }
    );
    for kind in [KeyKind::Rsa, KeyKind::P256, KeyKind::Ed25519] {
        let forged = issuer.token().key(kind).hmac_with_public_key().mint();
        assert!(matches!(
            refused(&verifier, &forged).await,
            TokenRefusal::AlgorithmRefused { expected: None, .. }
        ));
    }
    assert_eq!(attempts(&verifier), 0, "refused before any key was read");
    let on_ec = issuer
        .token()
        .key(KeyKind::P256)
        .header("alg", "RS256")
        .mint();
    assert_eq!(
        refused(&verifier, &on_ec).await,
        TokenRefusal::AlgorithmRefused {
            algorithm: "RS256".into(),
            expected: Some("ES256")
        }
    );
    let on_rsa = issuer
        .token()
        .key(KeyKind::Rsa)
        .header("alg", "ES256")
        .mint();
    assert_eq!(
        refused(&verifier, &on_rsa).await,
        TokenRefusal::AlgorithmRefused {
            algorithm: "ES256".into(),
            expected: Some("RS256")
        }
    );
    let on_ed = issuer
        .token()
        .key(KeyKind::Ed25519)
        .header("alg", "ES256")
        .mint();
    assert!(matches!(
        refused(&verifier, &on_ed).await,
        TokenRefusal::AlgorithmRefused {
            expected: Some("EdDSA"),
            ..
        }
    ));
    for other in ["RS512", "PS256", "ES384", "HS512", "NONE"] {
        let token = issuer.token().key(KeyKind::Rsa).header("alg", other).mint();
        assert_eq!(
            refused(&verifier, &token).await.code(),
            "token_algorithm_refused"
        );
    }
}

#[tokio::test]
async fn a_signature_by_another_key_or_over_other_claims_is_refused() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let first = issuer.kid(KeyKind::P256);
    issuer.rotate(KeyKind::P256, Rotation::KeepOld);
    let verifier = verifier(&issuer);
    // Signed by the new key, naming the old one.
    let swapped = issuer
        .token()
        .key(KeyKind::P256)
        .header("kid", first.as_str())
        .mint();
    let refusal = refused(&verifier, &swapped).await;
    assert_eq!(
        refusal,
        TokenRefusal::SignatureInvalid {
            issuer: NAME.into()
        }
    );
    assert_eq!(refusal.code(), "token_signature_invalid");
    // A good token's claims replaced by another's.
    let good = issuer.token().key(KeyKind::P256).mint();
    let other = issuer
        .token()
        .key(KeyKind::P256)
        .claim("sub", "admin")
        .mint();
    let parts: Vec<&str> = good.split('.').collect();
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert!(matches!(
        refused(&verifier, &spliced).await,
        TokenRefusal::SignatureInvalid { .. }
    ));
    assert!(verifier.verify(&good, now()).await.is_ok());
}

#[tokio::test]
async fn a_kid_is_required_unless_the_issuer_has_one_key() {
    let many = FakeIssuer::start();
    let verifier_of_many = verifier(&many);
    let token = many
        .token()
        .key(KeyKind::Ed25519)
        .without_header("kid")
        .mint();
    assert_eq!(
        refused(&verifier_of_many, &token).await,
        TokenRefusal::KeyUnknown {
            issuer: NAME.into(),
            kid: None
        }
    );
    // A made-up `kid` is repeated cut short.
    let long = many.token().header("kid", "k".repeat(5000)).mint();
    match refused(&verifier_of_many, &long).await {
        TokenRefusal::KeyUnknown { kid: Some(kid), .. } => assert!(kid.len() < 200, "{kid}"),
        other => panic!("{other:?}"),
    }
    let one = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let token = one.token().without_header("kid").mint();
    assert!(verifier(&one).verify(&token, now()).await.is_ok());
}

#[tokio::test]
async fn what_is_not_a_token_from_a_trusted_issuer_is_refused_without_a_fetch() {
    let issuer = FakeIssuer::start();
    let verifier = verifier(&issuer);
    let good = issuer.token().mint();
    let parts: Vec<&str> = good.split('.').collect();
    for garbage in [
        String::new(),
        "tmt_abcd_notatoken".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.e30.{}", parts[0], parts[2]),
        format!("{}.{}", good, "A".repeat(MAX_TOKEN_BYTES)),
    ] {
        let refusal = refused(&verifier, &garbage).await;
        assert!(
            matches!(
                refusal,
                TokenRefusal::Malformed { .. } | TokenRefusal::ClaimMissing { claim: "iss" }
            ),
            "{refusal:?}"
        );
    }
    let elsewhere = issuer
        .token()
        .claim("iss", "https://elsewhere.example")
        .mint();
    assert_eq!(
        refused(&verifier, &elsewhere).await,
        TokenRefusal::IssuerUnknown {
            issuer: "https://elsewhere.example".into()
        }
    );
    assert_eq!(attempts(&verifier), 0);
    // An unknown critical header extension: the token means something the gateway cannot
    // check.
    let critical = issuer
        .token()
        .header("crit", json!(["exp-policy"]))
        .header("exp-policy", 1)
        .mint();
    assert_eq!(
        refused(&verifier, &critical).await.code(),
        "token_malformed"
    );
}

#[tokio::test]
async fn a_refusal_is_a_mistral_shaped_answer_without_the_token() {
    let issuer = FakeIssuer::start();
    let token = issuer.token().claim("aud", "someone-else").mint();
    let refusal = refused(&verifier(&issuer), &token).await;
    let response = crate::refusal::Refusal::Token(refusal).into_response();
    assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["object"], "error");
    assert_eq!(json["type"], "authentication_error");
    assert_eq!(json["code"], "token_audience_refused");
    let text = String::from_utf8(body.to_vec()).unwrap();
    for part in token.split('.') {
        assert!(!text.contains(part));
    }
    let unavailable = crate::refusal::Refusal::Token(TokenRefusal::IssuerUnavailable {
        issuer: NAME.into(),
    });
    assert_eq!(unavailable.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.reason(), "token_issuer_unavailable");
}
