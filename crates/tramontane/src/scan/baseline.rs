//! Findings already known and accepted: a JSON list of fingerprints, written by
//! `--write-baseline` and read by `--baseline`. Fingerprints hash the rule, the path and the
//! secret, so a baseline is safe to commit and a key moved to another file is new again.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use super::error::ScanError;
use super::finding::Finding;

/// Largest baseline read: far past any real one (a fingerprint is 35 bytes in the file).
pub const MAX_BASELINE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    fingerprints: BTreeSet<String>,
}

impl Baseline {
    /// The fingerprints of `findings`.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Baseline {
        Baseline {
            fingerprints: findings
                .into_iter()
                .map(|finding| finding.fingerprint.clone())
                .collect(),
        }
    }

    pub fn read(path: &Path) -> Result<Baseline, ScanError> {
        let shown = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path).map_err(|source| ScanError::BaselineRead {
            path: shown.clone(),
            source,
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_BASELINE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ScanError::BaselineRead {
                path: shown.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_BASELINE_BYTES {
            return Err(ScanError::BaselineTooLarge {
                path: shown,
                max_bytes: MAX_BASELINE_BYTES,
            });
        }
        Baseline::parse(&shown, &bytes)
    }

    /// A baseline from its JSON text; `shown` names it in errors.
    pub fn parse(shown: &str, bytes: &[u8]) -> Result<Baseline, ScanError> {
        let fingerprints: Vec<String> =
            serde_json::from_slice(bytes).map_err(|error| ScanError::BaselineInvalid {
                path: shown.to_owned(),
                line: error.line().max(1),
                column: error.column().max(1),
                message: without_position(&error.to_string()),
            })?;
        Ok(Baseline {
            fingerprints: fingerprints.into_iter().collect(),
        })
    }

    /// The JSON text: the fingerprints sorted, one a line, so a baseline diffs well.
    pub fn to_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.fingerprints).unwrap_or_else(|_| "[]".to_owned());
        text.push('\n');
        text
    }

    /// Writes the baseline through a temporary file beside it, so an interrupted write
    /// never leaves half a baseline.
    pub fn write(&self, path: &Path) -> Result<(), ScanError> {
        let shown = path.to_string_lossy().into_owned();
        let error = |source| ScanError::BaselineWrite {
            path: shown.clone(),
            source,
        };
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        std::fs::write(&temporary, self.to_json()).map_err(error)?;
        std::fs::rename(&temporary, path).map_err(|source| {
            let _ = std::fs::remove_file(&temporary);
            error(source)
        })
    }

    pub fn extend(&mut self, fingerprints: impl IntoIterator<Item = String>) {
        self.fingerprints.extend(fingerprints);
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.fingerprints.iter().map(String::as_str)
    }
}

/// serde_json's message without its trailing ` at line L column C`, which the error shows
/// in front as `path:L:C`.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::detect::Rule;

    #[test]
    fn a_baseline_round_trips_sorted() {
        let findings = [
            Finding::file(Rule::EnvFileTracked, "b/.env", 1, 1, ""),
            Finding::file(Rule::EnvFileTracked, "a/.env", 1, 1, ""),
        ];
        let baseline = Baseline::of(&findings);
        let text = baseline.to_json();
        let read = Baseline::parse("baseline.json", text.as_bytes()).unwrap();
        assert_eq!(read, baseline);
        assert!(read.contains(&findings[0].fingerprint));
        let listed: Vec<&str> = read.iter().collect();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        assert_eq!(listed, sorted);
    }

    #[test]
    fn a_malformed_baseline_is_refused_with_its_position() {
        let error = Baseline::parse("b.json", b"[\n  \"abc\",\n  42\n]").unwrap_err();
        assert_eq!(
            error.to_string(),
            "b.json:3:4: not a baseline: invalid type: integer `42`, expected a string"
        );
        let error = Baseline::parse("b.json", b"{\"a\": 1}").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("b.json:1:1: not a baseline: "),
            "{error}"
        );
    }
}
