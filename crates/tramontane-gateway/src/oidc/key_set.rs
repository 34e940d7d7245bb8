//! One issuer's keys, cached. Read on first use (or when warmed); a token naming a `kid` the
//! cache lacks refreshes them, at most once per refresh interval however many ask, and
//! requests that ask at once share that one fetch. Keys past their age are refreshed in the
//! background while they keep serving. A failed refresh keeps the cached keys; with none
//! cached, the issuer's tokens are refused (fail closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use tokio::sync::Mutex;

use super::fetch::KeyFetcher;
use super::jwks::{Keys, VerificationKey};
use super::refusal::{TokenRefusal, shown};
use super::settings::{IssuerSettings, KeyCacheSettings};

/// How often an issuer's keys were read, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyFetchCounts {
    /// Reads begun: of a URL (with its discovery) or of a file.
    pub attempts: u64,
    /// Reads that brought no usable key set.
    pub failures: u64,
}

struct Snapshot {
    keys: Keys,
    read_at: Instant,
    /// Which successful read this is: tells a waiter whether someone read while it waited.
    generation: u64,
}

pub(crate) struct KeySet {
    pub settings: IssuerSettings,
    cached: ArcSwapOption<Snapshot>,
    /// When a read last began; held while one runs, so reads never overlap.
    last_attempt: Arc<Mutex<Option<Instant>>>,
    generations: AtomicU64,
    attempts: AtomicU64,
    failures: AtomicU64,
}

impl KeySet {
    pub fn new(settings: IssuerSettings) -> KeySet {
        KeySet {
            settings,
            cached: ArcSwapOption::empty(),
            last_attempt: Arc::new(Mutex::new(None)),
            generations: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub fn counts(&self) -> KeyFetchCounts {
        KeyFetchCounts {
            attempts: self.attempts.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// The key a token names, reading the issuer's keys when the cache cannot answer.
    pub async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        fetcher: &Arc<KeyFetcher>,
        cache: &KeyCacheSettings,
    ) -> Result<VerificationKey, TokenRefusal> {
        let seen = self.cached.load_full();
        if let Some(snapshot) = &seen
            && let Some(key) = snapshot.keys.find(kid)
        {
            if snapshot.read_at.elapsed() >= cache.max_age {
                self.refresh_in_background(fetcher, cache);
            }
            return Ok(key.clone());
        }
        self.refresh_unless_recent(generation(&seen), fetcher, cache)
            .await;
        match self.cached.load_full() {
            Some(snapshot) => {
                snapshot
                    .keys
                    .find(kid)
                    .cloned()
                    .ok_or_else(|| TokenRefusal::KeyUnknown {
                        issuer: self.settings.name.clone(),
                        kid: kid.map(shown),
                    })
            }
            None => Err(TokenRefusal::IssuerUnavailable {
                issuer: self.settings.name.clone(),
            }),
        }
    }

    /// Reads the keys now unless they were read (or tried) within the refresh interval, or
    /// were read since the caller looked at generation `seen`.
    pub async fn refresh_unless_recent(
        &self,
        seen: u64,
        fetcher: &KeyFetcher,
        cache: &KeyCacheSettings,
    ) {
        let mut last_attempt = self.last_attempt.lock().await;
        let read_meanwhile = generation(&self.cached.load_full()) != seen;
        let recent = last_attempt.is_some_and(|at| at.elapsed() < cache.refresh_interval);
        if read_meanwhile || recent {
            return;
        }
        *last_attempt = Some(Instant::now());
        self.read(fetcher).await;
    }

    /// Starts a refresh of stale keys unless one runs or ran within the interval; the
    /// request that noticed goes on with the keys it has.
    fn refresh_in_background(
        self: &Arc<Self>,
        fetcher: &Arc<KeyFetcher>,
        cache: &KeyCacheSettings,
    ) {
        let Ok(mut last_attempt) = self.last_attempt.clone().try_lock_owned() else {
            return;
        };
        if last_attempt.is_some_and(|at| at.elapsed() < cache.refresh_interval) {
            return;
        }
        *last_attempt = Some(Instant::now());
        let keys = self.clone();
        let fetcher = fetcher.clone();
        tokio::spawn(async move {
            keys.read(&fetcher).await;
            drop(last_attempt);
        });
    }

    async fn read(&self, fetcher: &KeyFetcher) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let settings = &self.settings;
        match fetcher
            .keys(&settings.name, &settings.issuer, &settings.keys)
            .await
        {
            Ok(keys) => {
                tracing::debug!(issuer = %settings.name, keys = keys.len(), "read the issuer's signing keys");
                let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                self.cached.store(Some(Arc::new(Snapshot {
                    keys,
                    read_at: Instant::now(),
                    generation,
                })));
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let cached = self.cached.load().as_ref().map_or(0, |s| s.keys.len());
                tracing::warn!(
                    issuer = %settings.name,
                    problem = %error,
                    cached_keys = cached,
                    help = "check the issuer's key URL or file; cached keys keep serving, and with none its tokens are refused",
                    "cannot read an issuer's signing keys"
                );
            }
        }
    }

    /// Whether any keys are cached.
    pub fn has_keys(&self) -> bool {
        self.cached.load().is_some()
    }
}

fn generation(snapshot: &Option<Arc<Snapshot>>) -> u64 {
    snapshot.as_ref().map_or(0, |snapshot| snapshot.generation)
}
