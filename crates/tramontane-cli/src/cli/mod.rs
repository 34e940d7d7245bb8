//! The command line: argument parsing and one file per subcommand. Each subcommand calls
//! into the library and returns an [`ExitStatus`]; [`command_error`] is the one place that
//! turns failures into exit codes.

mod apply;
pub mod command_error;
mod comment;
mod diff;
mod explain;
mod gateway;
mod gateway_keys;
mod import;
mod init;
pub mod org;
pub(crate) mod plan;
mod scan;
mod schema;
mod show;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};

pub use command_error::{CommandError, ExitStatus};

#[derive(Debug, Parser)]
#[command(
    name = "tramontane",
    version,
    about = "GitOps for Mistral AI organizations: validate, plan and apply org policy kept as YAML",
    propagate_version = true
)]
pub struct Cli {
    /// When to color output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the policy files against the schema and the rules between them.
    Validate(validate::Args),
    /// Print the JSON Schema of policy files (draft 2020-12), for editors and other tools.
    Schema(schema::Args),
    /// Explain an error code, or list them all.
    Explain(explain::Args),
    /// Read the live organization and show what applying the policies would change.
    Plan(plan::Args),
    /// Apply a saved plan, or plan afresh and apply after confirmation.
    Apply(apply::Args),
    /// Show a plan saved with `plan --out`, in any format.
    Show(show::Args),
    /// Start a policy repository: starter policies, .gitignore, editor schema and README.
    Init(init::Args),
    /// Write the live organization as policy files, to start a policy repository from.
    Import(import::Args),
    /// Post a saved plan as the pull request's sticky comment, updated in place on every push.
    Comment(comment::Args),
    /// Compare the effective access of the policies at two git revisions, offline.
    Diff(diff::Args),
    /// Find leaked Mistral and gateway keys, and secret or .env files git would commit.
    /// Exits 0 when clean, 1 on findings, 2 when the scan could not run.
    Scan(scan::Args),
    /// The runtime gateway: serve it, and issue and revoke the keys callers present to it.
    #[command(subcommand)]
    Gateway(gateway_keys::GatewayCommand),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colors on a terminal, unless `NO_COLOR` (https://no-color.org) or a dumb terminal
    /// says otherwise.
    pub fn enabled(self, stream_is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stream_is_terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                    && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
            }
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitStatus, CommandError> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, cli.color),
        Command::Schema(args) => schema::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Plan(args) => plan::run(&args, cli.color),
        Command::Show(args) => show::run(&args, cli.color),
        Command::Apply(args) => apply::run(&args, cli.color),
        Command::Init(args) => init::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Comment(args) => comment::run(&args),
        Command::Diff(args) => diff::run(&args, cli.color),
        Command::Scan(args) => scan::run(&args, cli.color),
        Command::Gateway(command) => gateway_keys::run(&command, cli.color),
    }
}
