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

/// A command that could not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A mistake in how the command was invoked.
    #[error("{message}")]
    Usage {
        message: String,
        help: Option<String>,
    },
    /// The organization could not be read or changed.
    #[error(transparent)]
    Provider(#[from] tramontane::provider::ProviderError),
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

impl CommandError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            // A closed pipe (`tramontane schema | head`) is the reader's choice, not a failure.
            CommandError::Output(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::SUCCESS
            }
            CommandError::Usage { .. }
            | CommandError::GitHub(_)
            | CommandError::Output(_)
            | CommandError::Provider(_)
            | CommandError::File { .. }
            | CommandError::Lock(_)
            | CommandError::Audit(_)
            | CommandError::Journal(_)
            | CommandError::Gateway(_) => ExitCode::from(1),
            CommandError::Scan(_) | CommandError::ScanOutput(_) => ExitCode::from(SCAN_FAILED),
        }
    }

    /// The error as shown on stderr, with its hint.
    pub fn report(&self) -> String {
        match self {
            CommandError::Usage {
                message,
                help: Some(help),
            } => format!("error: {message}\nhelp: {help}\n"),
            CommandError::Lock(tramontane::apply::lock::LockError::Busy { .. }) => format!(
                "error: {self}\nhelp: wait for it to finish and run apply again, or pass --lock-timeout 5m to wait\n"
            ),
            CommandError::Scan(error) => format!("error: {error}\nhelp: {}\n", error.help()),
            CommandError::Audit(_) => format!(
                "error: {self}\nhelp: the changes were made; fix the log's path or permissions so the next apply can record\n"
            ),
            CommandError::Gateway(error) => format!("error: {self}\nhelp: {}\n", error.help()),
            other => format!("error: {other}\n"),
        }
    }
}
