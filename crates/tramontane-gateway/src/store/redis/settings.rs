//! Where the Redis store connects, checked before anything connects: the address (never
//! carrying a password, which would show in the process list), the password kept apart and
//! out of every debug form, the key prefix, the timeout and the lease.

use std::time::Duration;

use redis::IntoConnectionInfo;
use secrecy::SecretString;

/// How the gateway reaches its Redis.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://HOST:PORT[/DB]` or `rediss://…`, without a password.
    pub url: String,
    pub password: Option<SecretString>,
    /// Prepended to every key, so several gateway groups can share one Redis.
    pub prefix: String,
    /// The longest a store operation may take before it counts as a store failure.
    pub timeout: Duration,
    /// How long a reservation lives without being renewed.
    pub lease: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("lease", &self.lease)
            .finish()
    }
}

impl RedisSettings {
    pub const DEFAULT_PREFIX: &str = "tramontane:";
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

    pub fn new(url: impl Into<String>) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            password: None,
            prefix: RedisSettings::DEFAULT_PREFIX.into(),
            timeout: RedisSettings::DEFAULT_TIMEOUT,
            lease: RedisSettings::DEFAULT_LEASE,
        }
    }
}

/// Why a Redis address cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisAddressError {
    #[error("`{shown}` is not a Redis address ({detail})")]
    Invalid { shown: String, detail: String },
    #[error("the Redis address carries a password")]
    PasswordInUrl,
}

impl RedisAddressError {
    pub fn help(&self) -> &'static str {
        match self {
            RedisAddressError::Invalid { .. } => {
                "write it as redis://HOST:PORT[/DB], or rediss://HOST:PORT[/DB] for TLS"
            }
            RedisAddressError::PasswordInUrl => {
                "a password in a command line shows in the process list and in logs: put it in a file named by --store-password-file, or in TRAMONTANE_STORE_PASSWORD"
            }
        }
    }
}

/// Checks an address before anything connects: its scheme, host and database, and that no
/// password is written into it.
pub fn check_address(url: &str) -> Result<(), RedisAddressError> {
    let shown = url.split('@').next_back().unwrap_or(url);
    let parsed = url::Url::parse(url).map_err(|error| RedisAddressError::Invalid {
        shown: shown.to_owned(),
        detail: error.to_string(),
    })?;
    if parsed.password().is_some() {
        return Err(RedisAddressError::PasswordInUrl);
    }
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(RedisAddressError::Invalid {
            shown: shown.to_owned(),
            detail: format!("the scheme is `{}`", parsed.scheme()),
        });
    }
    url.into_connection_info()
        .map_err(|error| RedisAddressError::Invalid {
            shown: shown.to_owned(),
            detail: error.to_string(),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::RedisStore;

    #[test]
    fn addresses_are_checked_before_anything_connects() {
        for good in [
            "redis://127.0.0.1:6379",
            "redis://redis.internal:6379/2",
            "rediss://redis.internal:6380/0",
            "redis://user@redis.internal:6379",
        ] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        let Err(RedisAddressError::Invalid { shown, detail }) = check_address("http://host:6379")
        else {
            panic!("an http address was taken for Redis");
        };
        assert_eq!(shown, "http://host:6379");
        assert!(detail.contains("`http`"), "{detail}");
        assert!(matches!(
            check_address("not an address"),
            Err(RedisAddressError::Invalid { .. })
        ));
    }

    #[test]
    fn a_password_in_the_address_is_refused_and_never_shown() {
        for url in [
            "redis://:hunter2@redis.internal:6379",
            "rediss://admin:hunter2@redis.internal:6380/1",
        ] {
            let error = check_address(url).unwrap_err();
            assert!(matches!(error, RedisAddressError::PasswordInUrl));
            let shown = format!("{error} {}", error.help());
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("--store-password-file"), "{shown}");
            assert!(RedisStore::new(&RedisSettings::new(url)).is_err());
        }
        // A malformed address with a password in it does not echo the password either.
        let error = check_address("redis://:hunter2@host:notaport").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn the_settings_debug_form_hides_the_password() {
        let mut settings = RedisSettings::new("redis://127.0.0.1:6379");
        settings.password = Some(SecretString::from("hunter2".to_owned()));
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let config = crate::config::StoreChoice::Redis(settings);
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
