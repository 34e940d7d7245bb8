//! The changes tramontane itself made, as its apply audit log (JSON lines) records them: a
//! console-change finding is not raised for an audit-log event that one of them explains.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

/// One change apply or revoke made.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedChange {
    pub time: Timestamp,
    pub address: String,
}

#[derive(Deserialize)]
struct Line {
    time: String,
    address: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppliedLogError {
    #[error("cannot read the apply audit log {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

impl AppliedLogError {
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            AppliedLogError::Read { .. } => {
                "check the path given to --audit-log and that it is readable"
            }
            AppliedLogError::Line { .. } => {
                "the line is not one apply wrote: restore the log from version control or CI, or point --audit-log elsewhere"
            }
        })
    }
}

/// The changes in the log at `path`; none when there is no log (a fresh CI runner).
pub fn read_applied(path: &Path) -> Result<Vec<AppliedChange>, AppliedLogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AppliedLogError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut changes = Vec::new();
    for (index, text) in text.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let problem = |problem: String| AppliedLogError::Line {
            path: path.to_owned(),
            line: index + 1,
            problem,
        };
        let line: Line = serde_json::from_str(text)
            .map_err(|error| problem(format!("not an audit log entry: {error}")))?;
        let time = line
            .time
            .parse()
            .map_err(|_| problem(format!("`time` is `{}`, not an RFC 3339 time", line.time)))?;
        changes.push(AppliedChange {
            time,
            address: line.address,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_log_is_empty_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_applied(&dir.path().join("none.jsonl"))
                .unwrap()
                .is_empty()
        );
        let path = dir.path().join("audit.jsonl");
        std::fs::write(
            &path,
            "{\"time\":\"2026-06-01T10:00:00Z\",\"address\":\"workspace.dev\",\"action\":\"update\"}\nnope\n",
        )
        .unwrap();
        let error = read_applied(&path).unwrap_err().to_string();
        assert!(
            error.ends_with(":2: not an audit log entry: expected ident at line 1 column 2"),
            "{error}"
        );
    }
}
