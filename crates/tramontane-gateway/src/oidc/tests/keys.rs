//! The key cache: read once, refreshed by an unknown `kid` at most once per interval (one
//! fetch however many ask at once), kept when the issuer goes away, and refused without when
//! there is nothing cached (fail closed). Keys also come by discovery and from a file.

use std::time::Duration;

use tramontane_testkit::fake_issuer::{FakeIssuer, KeyKind, Rotation};

use super::*;

fn quick(refresh_interval: Duration) -> KeyCacheSettings {
    KeyCacheSettings {
        refresh_interval,
        fetch_timeout: Duration::from_secs(2),
        ..KeyCacheSettings::default()
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Rsa]).start();
    let verifier = verifier_with(&issuer, quick(Duration::ZERO));
    let old = issuer.token().mint();
    verifier.verify(&old, now()).await.unwrap();
    assert_eq!((attempts(&verifier), issuer.jwks_fetches()), (1, 1));
    issuer.rotate(KeyKind::P256, Rotation::KeepOld);
    let new = issuer.token().key(KeyKind::P256).mint();
    verifier.verify(&new, now()).await.unwrap();
    verifier
        .verify(&issuer.token().key(KeyKind::P256).mint(), now())
        .await
        .unwrap();
    verifier.verify(&old, now()).await.unwrap();
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "the new kid was read once, then cached"
    );
}

#[tokio::test]
async fn a_burst_of_unknown_kids_refreshes_once_per_interval() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    // Long enough that a loaded machine finishes the first burst inside it.
    let verifier = verifier_with(&issuer, quick(Duration::from_secs(2)));
    verifier
        .verify(&issuer.token().mint(), now())
        .await
        .unwrap();
    issuer.set_jwks_delay(Duration::from_millis(200));
    let made_up: Vec<String> = (0..20)
        .map(|n| issuer.token().header("kid", format!("made-up-{n}")).mint())
        .collect();
    // After the first read, within its interval: nothing more is fetched.
    let refusals =
        futures_util::future::join_all(made_up.iter().map(|t| verifier.verify(t, now()))).await;
    assert!(
        refusals
            .iter()
            .all(|r| matches!(r, Err(TokenRefusal::KeyUnknown { .. })))
    );
    assert_eq!(issuer.jwks_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Past the interval: the burst, all at once, shares one fetch.
    let refusals =
        futures_util::future::join_all(made_up.iter().map(|t| verifier.verify(t, now()))).await;
    for refusal in refusals {
        assert_eq!(refusal.unwrap_err().code(), "token_key_unknown");
    }
    assert_eq!(issuer.jwks_fetches(), 2);
    // A real rotation inside the interval waits for the next one.
    issuer.rotate(KeyKind::Ed25519, Rotation::KeepOld);
    let rotated = issuer.token().key(KeyKind::Ed25519).mint();
    assert_eq!(
        refused(&verifier, &rotated).await.code(),
        "token_key_unknown"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    verifier.verify(&rotated, now()).await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 3);
}

// On several threads, as the gateway runs: the requests really do arrive together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_arriving_together_share_the_first_fetch() {
    let issuer = FakeIssuer::builder()
        .keys(&[KeyKind::P256])
        .jwks_delay(Duration::from_millis(300))
        .start();
    // No interval: only the sharing keeps the waiting requests from fetching again.
    let verifier = std::sync::Arc::new(verifier_with(&issuer, quick(Duration::ZERO)));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let verifier = verifier.clone();
            let token = issuer.token().mint();
            tokio::spawn(async move { verifier.verify(&token, now()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn stale_keys_are_read_again_without_holding_requests_up() {
    let mut issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let cache = KeyCacheSettings {
        max_age: Duration::ZERO,
        fetch_timeout: Duration::from_secs(3),
        ..quick(Duration::ZERO)
    };
    let verifier = verifier_with(&issuer, cache);
    let token = issuer.token().mint();
    verifier.verify(&token, now()).await.unwrap();
    // A JWKS that now answers slowly: the stale keys serve while it is read.
    issuer.set_jwks_delay(Duration::from_secs(2));
    let started = std::time::Instant::now();
    verifier.verify(&token, now()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    eventually(|| issuer.jwks_fetches() == 2).await;
    // Gone: the background read fails, the cached keys still serve.
    issuer.stop();
    eventually(|| verifier.fetch_counts(NAME).unwrap().attempts == 2).await;
    verifier.verify(&token, now()).await.unwrap();
    eventually(|| verifier.fetch_counts(NAME).unwrap().failures >= 1).await;
    verifier.verify(&token, now()).await.unwrap();
}

#[tokio::test]
async fn a_withdrawn_key_stops_verifying_once_the_keys_are_read_again() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let cache = KeyCacheSettings {
        max_age: Duration::ZERO,
        ..quick(Duration::ZERO)
    };
    let verifier = verifier_with(&issuer, cache);
    let old = issuer.token().mint();
    verifier.verify(&old, now()).await.unwrap();
    issuer.rotate(KeyKind::P256, Rotation::DropOld);
    // Still cached: it serves, and its age starts a read in the background.
    verifier.verify(&old, now()).await.unwrap();
    eventually(|| issuer.jwks_fetches() >= 2).await;
    eventually(|| verifier.fetch_counts(NAME).unwrap().attempts >= 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(refused(&verifier, &old).await.code(), "token_key_unknown");
    verifier
        .verify(&issuer.token().mint(), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_issuer_that_goes_away_leaves_its_cached_keys_serving() {
    let mut issuer = FakeIssuer::start();
    let verifier = verifier_with(&issuer, quick(Duration::ZERO));
    let token = issuer.token().key(KeyKind::Rsa).mint();
    verifier.verify(&token, now()).await.unwrap();
    let later = issuer.token().key(KeyKind::Ed25519).mint();
    let unknown = issuer.token().header("kid", "after-it-left").mint();
    issuer.stop();
    verifier.verify(&token, now()).await.unwrap();
    verifier.verify(&later, now()).await.unwrap();
    // The refresh an unknown kid asks for fails; the cache answers that the key is unknown.
    assert_eq!(
        refused(&verifier, &unknown).await.code(),
        "token_key_unknown"
    );
    let counts = verifier.fetch_counts(NAME).unwrap();
    assert_eq!((counts.attempts, counts.failures), (2, 1));
    verifier.verify(&token, now()).await.unwrap();
}

#[tokio::test]
async fn an_issuer_unreachable_with_nothing_cached_is_refused() {
    let mut issuer = FakeIssuer::start();
    let token = issuer.token().mint();
    let verifier = verifier_with(&issuer, quick(Duration::from_secs(30)));
    issuer.stop();
    let refusal = refused(&verifier, &token).await;
    assert_eq!(
        refusal,
        TokenRefusal::IssuerUnavailable {
            issuer: NAME.into()
        }
    );
    assert_eq!(refusal.code(), "token_issuer_unavailable");
    // Within the interval it is not asked again.
    assert_eq!(
        refused(&verifier, &token).await.code(),
        "token_issuer_unavailable"
    );
    assert_eq!(
        verifier.fetch_counts(NAME),
        Some(KeyFetchCounts {
            attempts: 1,
            failures: 1
        })
    );
    assert_eq!(verifier.warm().await, vec![NAME.to_owned()]);
}

#[tokio::test]
async fn a_broken_slow_or_huge_jwks_is_no_key_set() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let token = issuer.token().mint();
    issuer.set_jwks_failing(true);
    let failing = verifier_with(&issuer, quick(Duration::ZERO));
    assert_eq!(
        refused(&failing, &token).await.code(),
        "token_issuer_unavailable"
    );
    issuer.set_jwks_failing(false);
    failing.verify(&token, now()).await.unwrap();
    let small = KeyCacheSettings {
        max_body_bytes: 40,
        ..quick(Duration::ZERO)
    };
    assert_eq!(
        refused(&verifier_with(&issuer, small), &token).await.code(),
        "token_issuer_unavailable"
    );
    issuer.set_jwks_delay(Duration::from_secs(3));
    let impatient = KeyCacheSettings {
        fetch_timeout: Duration::from_millis(300),
        ..quick(Duration::ZERO)
    };
    let started = std::time::Instant::now();
    assert_eq!(
        refused(&verifier_with(&issuer, impatient), &token)
            .await
            .code(),
        "token_issuer_unavailable"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn keys_are_found_by_discovery() {
    let issuer = FakeIssuer::start();
    let verifier = Verifier::new(
        vec![settings(&issuer, KeySource::Discovery)],
        KeyCacheSettings::default(),
    )
    .unwrap();
    assert!(verifier.warm().await.is_empty());
    verifier
        .verify(&issuer.token().mint(), now())
        .await
        .unwrap();
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));
    // A discovery document must be the issuer's own: here it names the issuer without the
    // trailing slash this setting has.
    let mut slashed = settings(&issuer, KeySource::Discovery);
    slashed.issuer = format!("{}/", issuer.issuer());
    let verifier = Verifier::new(vec![slashed.clone()], KeyCacheSettings::default()).unwrap();
    let token = issuer.token().claim("iss", slashed.issuer.as_str()).mint();
    assert_eq!(
        refused(&verifier, &token).await.code(),
        "token_issuer_unavailable"
    );
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "no JWKS read for a document of another issuer"
    );
}

#[tokio::test]
async fn keys_copied_to_a_file_are_read_again_on_refresh() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::P256]).start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    issuer.write_jwks(&path);
    let verifier = Verifier::new(
        vec![settings(&issuer, KeySource::JwksFile(path.clone()))],
        quick(Duration::ZERO),
    )
    .unwrap();
    verifier
        .verify(&issuer.token().mint(), now())
        .await
        .unwrap();
    issuer.rotate(KeyKind::P256, Rotation::KeepOld);
    let rotated = issuer.token().mint();
    assert_eq!(
        refused(&verifier, &rotated).await.code(),
        "token_key_unknown"
    );
    issuer.write_jwks(&path);
    verifier.verify(&rotated, now()).await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 0);
    assert_eq!(attempts(&verifier), 3);
    let missing = Verifier::new(
        vec![settings(
            &issuer,
            KeySource::JwksFile(dir.path().join("absent.json")),
        )],
        quick(Duration::ZERO),
    )
    .unwrap();
    assert_eq!(
        refused(&missing, &rotated).await.code(),
        "token_issuer_unavailable"
    );
}

#[tokio::test]
async fn a_reloaded_policy_keeps_the_keys_of_unchanged_issuers() {
    let issuer = FakeIssuer::builder().keys(&[KeyKind::Ed25519]).start();
    let first = verifier(&issuer);
    first.verify(&issuer.token().mint(), now()).await.unwrap();
    let mut narrower = settings(&issuer, jwks_url(&issuer));
    narrower.audiences = vec!["another-gateway".into()];
    let second = first.reconfigured(vec![narrower]).unwrap();
    assert_eq!(
        refused(&second, &issuer.token().mint()).await.code(),
        "token_audience_refused"
    );
    assert_eq!(issuer.jwks_fetches(), 1, "the cached keys were kept");
    let by_discovery = second
        .reconfigured(vec![settings(&issuer, KeySource::Discovery)])
        .unwrap();
    by_discovery
        .verify(&issuer.token().mint(), now())
        .await
        .unwrap();
    assert_eq!(issuer.jwks_fetches(), 2, "a new key source is read anew");
    assert!(matches!(
        second.reconfigured(vec![settings(&issuer, KeySource::Discovery); 2]),
        Err(IssuerSettingsError::DuplicateName { .. })
    ));
}
