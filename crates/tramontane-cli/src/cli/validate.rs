use std::io::{IsTerminal, Write};

use clap::ValueEnum;

use super::{ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::policy::{self, LoadOptions};
use tramontane::render::diagnostics;

#[derive(Debug, clap::Args)]
#[command(mut_arg("policies", |arg| arg.help(
    "Directory of policy files; every *.yaml and *.yml under it is read"
)))]
pub struct Args {
    #[command(flatten)]
    pub policies: PoliciesArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    #[command(flatten)]
    pub clock: super::ClockArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// rustc-style frames with the offending source lines.
    Human,
    /// A JSON array of {file, line, column, code, severity, message, help}.
    Json,
    /// GitHub Actions workflow commands, shown as annotations on the pull request.
    Github,
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let today = args.clock.clock().today();
    let loaded = policy::load(&args.policies.dir, &LoadOptions::new(today));
    let shown = args.policies.dir.to_string_lossy();
    let stdout = std::io::stdout();
    let text = match args.format {
        Format::Human => diagnostics::human(&loaded, &shown, color.enabled(stdout.is_terminal())),
        Format::Json => diagnostics::json(&loaded),
        Format::Github => diagnostics::github(&loaded),
    };
    stdout.lock().write_all(text.as_bytes())?;
    Ok(if loaded.is_valid() {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}
