//! The gateway's Redis store as every command names it: `gateway serve` counts limits and
//! meters in it, `audit` reads the meters back. One set of flags, read one way, so both
//! commands reach the same keys with the same password.

use std::path::PathBuf;

use secrecy::SecretString;
use tramontane_gateway::store::redis::{RedisSettings, check_address};

use super::CommandError;

/// How to reach the Redis named by `--store`: its password and key prefix.
#[derive(Debug, clap::Args)]
pub struct RedisArgs {
    /// A file holding the Redis password (never written in --store).
    #[arg(long, value_name = "FILE")]
    pub store_password_file: Option<PathBuf>,

    /// Key prefix in Redis, so several gateway groups can share one server.
    #[arg(long, default_value = RedisSettings::DEFAULT_PREFIX)]
    pub store_prefix: String,
}

impl RedisArgs {
    /// Settings for the Redis at `url` (the value of `--store`): the address checked before
    /// anything connects, the password read, the prefix; timeouts are the command's own.
    pub fn settings(&self, url: &str) -> Result<RedisSettings, CommandError> {
        check_address(url).map_err(|error| CommandError::Usage {
            message: format!("--store: {error}"),
            help: Some(error.help().into()),
        })?;
        let mut settings = RedisSettings::new(url);
        settings.password = self.password()?;
        settings.prefix = self.store_prefix.clone();
        Ok(settings)
    }

    /// The Redis password: from `--store-password-file`, else `TRAMONTANE_STORE_PASSWORD`.
    fn password(&self) -> Result<Option<SecretString>, CommandError> {
        let text = match &self.store_password_file {
            Some(path) => std::fs::read_to_string(path).map_err(|error| CommandError::Usage {
                message: format!(
                    "cannot read the Redis password file {}: {error}",
                    path.display()
                ),
                help: Some("--store-password-file names a file holding only the password".into()),
            })?,
            None => match std::env::var("TRAMONTANE_STORE_PASSWORD") {
                Ok(text) => text,
                Err(_) => return Ok(None),
            },
        };
        let password = text.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err(CommandError::Usage {
                message: "the Redis password is empty".into(),
                help: Some(
                    "put the password in the file (or TRAMONTANE_STORE_PASSWORD), or leave both unset for a Redis without one"
                        .into(),
                ),
            });
        }
        Ok(Some(SecretString::from(password.to_owned())))
    }
}
