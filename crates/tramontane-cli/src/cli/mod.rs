//! The command line: argument parsing and one file per subcommand. Each subcommand calls
//! into the library and returns an [`ExitStatus`]; [`command_error`] is the one place that
//! turns failures into exit codes.

mod apply;
mod audit;
pub mod command_error;
mod comment;
mod diff;
mod explain;
mod gateway;
mod gateway_keys;
mod import;
mod init;
mod models;
pub mod org;
pub(crate) mod plan;
mod planning;
mod policies;
mod revoke;
mod scan;
mod schema;
mod show;
mod store;
mod usage;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::civil::Date;
use tramontane::clock::Clock;

pub use policies::PoliciesArg;

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
    /// Report key and membership hygiene of the live organization, judged against the
    /// policy. Exits 0 when clean, 3 when a finding reaches --fail-on, 1 on error.
    Audit(audit::Args),
    /// Delete an API key now (a leaked one), and say which policy line would bring it back.
    Revoke(revoke::Args),
    /// For every rule in force, what is used and what is left in its window; month-to-date
    /// spend per workspace and model; the heaviest consumers. From the gateway's Redis store
    /// or a running gateway's admin listener.
    Usage(usage::Args),
    /// Mistral's models: compare the bundled catalog with what an organization is served.
    #[command(subcommand)]
    Models(models::ModelsCommand),
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

/// The moment a command counts from: hidden flags (and their variables) for tests and
/// demos, the system clock otherwise.
#[derive(Debug, Clone, clap::Args)]
pub struct ClockArgs {
    /// Count expiries, rotation windows and overlaps from this instant (RFC 3339).
    #[arg(long, env = "TRAMONTANE_NOW", hide = true)]
    pub now: Option<Timestamp>,

    /// Count from noon (UTC) of this day instead.
    #[arg(long, env = "TRAMONTANE_TODAY", hide = true)]
    pub today: Option<Date>,
}

impl ClockArgs {
    pub fn clock(&self) -> Clock {
        Clock::pinned(self.now, self.today)
    }

    pub fn now(&self) -> Timestamp {
        self.clock().now()
    }
}

/// The clock of `audit`, whose findings (expiring within days, unused for 30 days) are
/// judged at an instant: `--now` is part of its interface, to reproduce a report or see what
/// a date will bring, so it is shown in its help.
#[derive(Debug, Clone, clap::Args)]
pub struct JudgedAtArgs {
    /// Judge from this instant (RFC 3339) instead of the system clock: to reproduce a past
    /// report, or see what a coming date will bring.
    #[arg(long, env = "TRAMONTANE_NOW", value_name = "RFC3339")]
    pub now: Option<Timestamp>,

    /// Count from noon (UTC) of this day instead.
    #[arg(long, env = "TRAMONTANE_TODAY", hide = true)]
    pub today: Option<Date>,
}

impl JudgedAtArgs {
    pub fn now(&self) -> Timestamp {
        Clock::pinned(self.now, self.today).now()
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
        Command::Audit(args) => audit::run(&args, cli.color),
        Command::Revoke(args) => revoke::run(&args, cli.color),
        Command::Models(command) => models::run(&command),
        Command::Usage(args) => usage::run(&args, cli.color),
    }
}
