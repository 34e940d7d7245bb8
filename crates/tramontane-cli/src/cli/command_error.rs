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
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Refused => 3,
            ExitStatus::Declined => 1,
        }
    }
}

/// The exit code of a command line clap could not parse, once clap has printed its message.
/// `--help` and `--version` are successes; every usage error is 1, never clap's 2, which
/// `plan --detailed-exitcode` reserves for "the plan has changes".
pub fn usage_exit_code(error: &clap::Error) -> ExitCode {
    if error.use_stderr() {
        ExitCode::from(ExitStatus::Invalid.code())
    } else {
        ExitCode::SUCCESS
    }
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
            CommandError::Audit(_) => format!(
                "error: {self}\nhelp: the changes were made; fix the log's path or permissions so the next apply can record\n"
            ),
            CommandError::Gateway(error) => format!("error: {self}\nhelp: {}\n", error.help()),
            other => format!("error: {other}\n"),
        }
    }
}
