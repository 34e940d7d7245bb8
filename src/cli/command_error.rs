//! The one place failures become exit codes, as Terraform users expect them.

use std::process::ExitCode;

/// How a command ended when it ran to completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; nothing wrong.
    Success,
    /// The input is invalid; the command already reported why.
    Invalid,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
        }
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
            CommandError::Usage { .. } | CommandError::Output(_) => ExitCode::from(1),
        }
    }

    /// The error as shown on stderr, with its hint.
    pub fn report(&self) -> String {
        match self {
            CommandError::Usage {
                message,
                help: Some(help),
            } => format!("error: {message}\nhelp: {help}\n"),
            other => format!("error: {other}\n"),
        }
    }
}
