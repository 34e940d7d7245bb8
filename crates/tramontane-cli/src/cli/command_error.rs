//! The one place failures become exit codes, as Terraform users expect them.

use std::process::ExitCode;

/// How a command ended when it ran to completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; nothing wrong.
    Success,
    /// The input is invalid; the command already reported why.
    Invalid,
    /// With `--detailed-exitcode`: the plan has changes.
    Changes,
    /// A safety guard refused to go on; the command already reported why.
    Refused,
    /// The person at the prompt did not confirm; nothing was done. A failure, as
    /// `terraform apply` makes it, so a script never mistakes it for an apply.
    Declined,
    /// The command ran on valid input and failed part-way (an apply whose change failed);
    /// the command already reported what was done and what was not.
    Failed,
    /// `scan` found leaked keys or secret files git would commit.
    Findings,
    /// `audit` found something at or above `--fail-on`.
    AuditFindings,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Refused => 3,
            ExitStatus::Declined => 1,
            // Terraform's code for an apply that failed, as for any error.
            ExitStatus::Failed => 1,
            ExitStatus::Findings => 1,
            // Like a safety guard's refusal: the command ran, and what it found says stop.
            ExitStatus::AuditFindings => 3,
        }
    }
}

/// The exit code of a command line clap could not parse, once clap has printed its message.
/// `--help` and `--version` are successes; every usage error is 1, never clap's 2, which
/// `plan --detailed-exitcode` reserves for "the plan has changes" — except for `scan`, where
/// 1 means findings and a usage error is 2, like any scan that could not run.
pub fn usage_exit_code(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        ExitCode::SUCCESS
    } else if invoked_subcommand().as_deref() == Some("scan") {
        ExitCode::from(SCAN_FAILED)
    } else {
        ExitCode::from(ExitStatus::Invalid.code())
    }
}

/// `scan`'s exit code when it could not run: 1 is taken by "findings", as secret scanners
/// use it, so a CI job can tell a leak from a broken scan.
const SCAN_FAILED: u8 = 2;

/// The subcommand the command line names, read leniently: this runs after a strict parse
/// failed, to decide the exit code.
fn invoked_subcommand() -> Option<String> {
    use clap::CommandFactory;
    super::Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(std::env::args_os())
        .ok()
        .and_then(|matches| matches.subcommand_name().map(str::to_owned))
}

/// A command that could not run to completion. Every variant ends, on stderr, with what to
/// do: in its message, or on a `help:` line under it ([`CommandError::help`]).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A mistake in how the command was invoked.
    #[error("{message}")]
    Usage {
        message: String,
        help: Option<String>,
    },
    /// The organization could not be opened.
    #[error(transparent)]
    Org(#[from] tramontane::org::OrgError),
    /// The organization could not be read or changed.
    #[error(transparent)]
    Provider(#[from] tramontane::provider::ProviderError),
    /// No plan could be made.
    #[error(transparent)]
    Planning(#[from] tramontane::planning::PlanningError),
    /// The policies at a git revision could not be read.
    #[error(transparent)]
    Git(#[from] tramontane::policy::git::GitError),
    /// GitHub refused or could not be reached.
    #[error(transparent)]
    GitHub(#[from] tramontane::github::GitHubError),
    /// A file named on the command line could not be read or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// Another apply against the same organization holds the lock.
    #[error(transparent)]
    Lock(#[from] tramontane::apply::lock::LockError),
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] tramontane::apply::audit::AuditError),
    /// The key journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] tramontane::apply::journal::JournalError),
    /// The gateway could not start.
    #[error(transparent)]
    Gateway(#[from] tramontane_gateway::GatewayError),
    /// The gateway's meters could not be read from its store.
    #[error(transparent)]
    Meters(#[from] tramontane_gateway::store::MeterReadError),
    /// `usage` could not read its store or gateway.
    #[error(transparent)]
    UsageRead(#[from] tramontane_gateway::ledger::UsageReadError),
    /// Output could not be written (a closed pipe, a full disk).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// `scan` could not finish: the repository, a file, the baseline or the API failed it.
    #[error(transparent)]
    Scan(#[from] tramontane::scan::ScanError),
    /// `scan` could not write its report.
    #[error("cannot write the scan's report: {0}")]
    ScanOutput(std::io::Error),
}

/// A policy file `import` could not write: a file named on the command line.
impl From<tramontane::policy::directory::WriteError> for CommandError {
    fn from(error: tramontane::policy::directory::WriteError) -> CommandError {
        CommandError::File {
            path: error.path,
            action: "write",
            source: error.source,
        }
    }
}

impl CommandError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            // A closed pipe (`tramontane schema | head`) is the reader's choice, not a failure.
            CommandError::Output(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::SUCCESS
            }
            CommandError::Usage { .. }
            | CommandError::Org(_)
            | CommandError::Provider(_)
            | CommandError::Planning(_)
            | CommandError::Git(_)
            | CommandError::GitHub(_)
            | CommandError::Output(_)
            | CommandError::File { .. }
            | CommandError::Lock(_)
            | CommandError::Audit(_)
            | CommandError::Journal(_)
            | CommandError::Gateway(_)
            | CommandError::Meters(_)
            | CommandError::UsageRead(_) => ExitCode::from(1),
            CommandError::Scan(_) | CommandError::ScanOutput(_) => ExitCode::from(SCAN_FAILED),
        }
    }

    /// What to do, for the line under the error; `None` where the message already says.
    pub fn help(&self) -> Option<&str> {
        match self {
            CommandError::Usage { help, .. } => help.as_deref(),
            CommandError::Org(error) => error.help(),
            CommandError::Provider(error) => error.help(),
            CommandError::Planning(error) => error.help(),
            CommandError::Git(error) => error.help(),
            CommandError::GitHub(error) => error.help(),
            CommandError::File { .. } => Some("check the path and its permissions"),
            CommandError::Lock(error) => error.help(),
            CommandError::Audit(error) => error.help(),
            CommandError::Scan(error) => Some(error.help()),
            CommandError::Gateway(error) => Some(error.help()),
            CommandError::Meters(error) => Some(error.help()),
            CommandError::UsageRead(error) => Some(error.help()),
            CommandError::Journal(error) => error.help(),
            CommandError::Output(_) | CommandError::ScanOutput(_) => {
                Some("check where the output goes: a full disk, or a file that cannot be written")
            }
        }
    }

    /// The error as shown on stderr, with its help line.
    pub fn report(&self) -> String {
        match self.help() {
            Some(help) => format!("error: {self}\nhelp: {help}\n"),
            None => format!("error: {self}\n"),
        }
    }
}
