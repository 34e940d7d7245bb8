//! Why a scan could not finish. A scan that stops short says so rather than reporting a
//! clean repository it did not fully read.

use std::path::Path;

/// A scan that could not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("`{path}` is not in a git repository")]
    NotARepository { path: String },
    #[error("`{path}` is a bare repository: it has no working tree to scan")]
    Bare { path: String },
    #[error("cannot {action}: {message}")]
    Git { action: String, message: String },
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the baseline `{path}`: {source}")]
    BaselineRead {
        path: String,
        source: std::io::Error,
    },
    #[error("the baseline `{path}` is over {max_bytes} bytes")]
    BaselineTooLarge { path: String, max_bytes: u64 },
    #[error("{path}:{line}:{column}: not a baseline: {message}")]
    BaselineInvalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot write the baseline `{path}`: {source}")]
    BaselineWrite {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot verify keys against `{url}`: {reason}")]
    VerifyUrl { url: String, reason: String },
}

impl ScanError {
    pub(crate) fn git(action: impl Into<String>, error: &git2::Error) -> ScanError {
        ScanError::Git {
            action: action.into(),
            message: error.message().to_owned(),
        }
    }

    pub(crate) fn read(path: &Path, source: std::io::Error) -> ScanError {
        ScanError::Read {
            path: path.to_string_lossy().into_owned(),
            source,
        }
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            ScanError::NotARepository { .. } => {
                "run scan inside a git work tree, or pass its path: scan reports what git has or would commit"
            }
            ScanError::Bare { .. } => {
                "pass --history to scan every ref of a bare repository, or scan a clone with a working tree"
            }
            ScanError::Git { .. } => {
                "check the repository with `git fsck`; a partial clone (`--filter`) lacks blobs the history scan must read: scan a full clone"
            }
            ScanError::Read { .. } => {
                "make the file readable to this user, or remove it; scan does not report a tree clean that it could not read"
            }
            ScanError::BaselineRead { .. } | ScanError::BaselineTooLarge { .. } => {
                "create the baseline with `tramontane scan --write-baseline FILE`"
            }
            ScanError::BaselineInvalid { .. } => {
                "a baseline is a JSON list of fingerprint strings; recreate it with `tramontane scan --write-baseline FILE`"
            }
            ScanError::BaselineWrite { .. } => "check the path exists and is writable",
            ScanError::VerifyUrl { .. } => {
                "set MISTRAL_API_URL (or --api-url) to an https URL such as https://api.mistral.ai; plain http is accepted only to loopback"
            }
        }
    }
}
