//! The policy directory as commands take it: the `--policies` flag, and loading what is there
//! with its diagnostics shown.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use tramontane::policy::{self, LoadOptions, LoadedPolicy};
use tramontane::render::diagnostics;

use super::{ColorChoice, CommandError};

/// The directory of policy files, declared once for every command that reads it. A command
/// whose use of it needs saying overrides the help line with
/// `#[command(mut_arg("policies", |arg| arg.help(...)))]`; name, short, default and
/// environment variable stay the same everywhere.
#[derive(Debug, Clone, clap::Args)]
pub struct PoliciesArg {
    /// Directory of policy files.
    #[arg(
        id = "policies",
        long = "policies",
        short = 'p',
        value_name = "POLICIES",
        default_value = "policies",
        env = "TRAMONTANE_POLICIES"
    )]
    pub dir: PathBuf,
}

impl PoliciesArg {
    /// The policy when its directory exists, for commands that also work without one
    /// (`audit`, `revoke`) or say themselves why they need it (`usage`). An invalid policy
    /// is an error, its diagnostics shown first: a command acting on half a policy would
    /// misjudge what it finds.
    pub fn load_if_present(
        &self,
        today: jiff::civil::Date,
        color: ColorChoice,
    ) -> Result<Option<LoadedPolicy>, CommandError> {
        let policies = &self.dir;
        if !policies.exists() {
            return Ok(None);
        }
        let loaded = policy::load(policies, &LoadOptions::new(today));
        if !loaded.is_valid() {
            let text = diagnostics::human(
                &loaded,
                &policies.to_string_lossy(),
                color.enabled(std::io::stderr().is_terminal()),
            );
            std::io::stderr().write_all(text.as_bytes())?;
            return Err(CommandError::Usage {
                message: format!(
                    "the policies under `{}` are invalid",
                    policies.to_string_lossy()
                ),
                help: Some("fix the errors above (`tramontane validate`), then run again".into()),
            });
        }
        Ok(Some(loaded))
    }
}
