//! `tramontane scan`: leaked Mistral and gateway keys in a repository — its working tree
//! and, on request, every blob of every ref — and the secret files and `.env` files git
//! would commit.
//!
//! [`detect`] knows what a key looks like; [`tree`] and [`history`] feed it files and
//! blobs; [`ignore`] asks git what it would commit; [`finding`] carries each result with
//! the secret redacted; [`baseline`] accepts known findings; [`verify`] asks the API about
//! a key; [`render`] and [`sarif`] show the report. Nothing here prints.

pub mod baseline;
pub mod detect;
mod error;
pub mod finding;
mod history;
pub mod ignore;
pub mod render;
pub mod sarif;
mod tree;
pub mod verify;

use std::collections::HashMap;
use std::path::Path;

pub use baseline::Baseline;
pub use detect::Rule;
pub use error::ScanError;
pub use finding::{CommitRef, Finding, Verification};
pub use ignore::SecretSinks;

/// Largest file or blob read, unless the caller says otherwise. Keys live in small text
/// files; larger ones are skipped and counted, so memory stays bounded.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// Paths of skipped large files kept for the report; the rest are only counted.
const LISTED_TOO_LARGE: usize = 20;

/// What to scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Also every blob of every ref, not only the working tree.
    pub history: bool,
    /// Files and blobs larger than this are skipped and counted.
    pub max_file_bytes: u64,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            history: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// What a scan read and what it skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Whether the history was scanned.
    pub history: bool,
    /// Working-tree files considered.
    pub files: u64,
    /// Distinct blobs considered in the history.
    pub blobs: u64,
    pub commits: u64,
    pub refs: u64,
    pub max_file_bytes: u64,
    /// Files and blobs over `max_file_bytes`, not read.
    pub too_large: u64,
    /// The first few of their paths (a blob's where it first appeared), each once.
    pub too_large_paths: Vec<String>,
    /// Files and blobs with a NUL byte early on, not read.
    pub binary: u64,
}

impl Coverage {
    fn too_large(&mut self, path: &str) {
        self.too_large += 1;
        if self.too_large_paths.len() < LISTED_TOO_LARGE
            && !self.too_large_paths.iter().any(|known| known == path)
        {
            self.too_large_paths.push(path.to_owned());
        }
    }
}

/// The result of a scan.
#[derive(Debug)]
pub struct ScanReport {
    /// By path, line, column and rule.
    pub findings: Vec<Finding>,
    /// Fingerprints of the findings a baseline accepted, removed from `findings`.
    pub accepted: Vec<String>,
    /// Baseline entries that matched no finding: fixed, or moved.
    pub stale_baseline_entries: usize,
    pub coverage: Coverage,
}

impl ScanReport {
    /// Removes the findings `baseline` lists, keeping their fingerprints in `accepted`.
    pub fn accept(&mut self, baseline: &Baseline) {
        let (accepted, kept): (Vec<Finding>, Vec<Finding>) = std::mem::take(&mut self.findings)
            .into_iter()
            .partition(|finding| baseline.contains(&finding.fingerprint));
        self.findings = kept;
        self.accepted
            .extend(accepted.into_iter().map(|finding| finding.fingerprint));
        self.accepted.sort_unstable();
        self.accepted.dedup();
        self.stale_baseline_entries = baseline
            .iter()
            .filter(|fingerprint| {
                self.accepted
                    .binary_search_by(|a| a.as_str().cmp(fingerprint))
                    .is_err()
            })
            .count();
    }

    /// A baseline accepting every finding of this scan, those already accepted included.
    pub fn to_baseline(&self) -> Baseline {
        let mut baseline = Baseline::of(&self.findings);
        baseline.extend(self.accepted.iter().cloned());
        baseline
    }

    pub fn count(&self, severity: detect::Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.rule.severity() == severity)
            .count()
    }
}

/// Scans the git repository holding `path`: its working tree (tracked files and untracked
/// ones git does not ignore), its `.env` files and the secret sinks of its policies, and
/// with `options.history` every blob of every ref.
pub fn scan(path: &Path, options: &ScanOptions) -> Result<ScanReport, ScanError> {
    std::fs::metadata(path).map_err(|error| ScanError::read(path, error))?;
    let repo = git2::Repository::discover(path).map_err(|_| ScanError::NotARepository {
        path: path.to_string_lossy().into_owned(),
    })?;
    let mut coverage = Coverage {
        history: options.history,
        max_file_bytes: options.max_file_bytes,
        ..Coverage::default()
    };
    let mut findings = Vec::new();
    let sinks = match repo.workdir() {
        Some(work_tree) => {
            let sinks = ignore::secret_sinks(work_tree);
            let files = tree::list(&repo, work_tree)?;
            findings.extend(tree::scan(
                &files,
                &sinks,
                options.max_file_bytes,
                &mut coverage,
            )?);
            findings.extend(ignore::env_files(&files));
            findings.extend(sinks.unignored.iter().cloned());
            sinks
        }
        None if options.history => SecretSinks::default(),
        None => {
            return Err(ScanError::Bare {
                path: path.to_string_lossy().into_owned(),
            });
        }
    };
    if options.history {
        let past = history::scan(&repo, &sinks, options.max_file_bytes, &mut coverage)?;
        merge_history(&mut findings, past);
    }
    findings.sort_by(|a, b| {
        (&a.path, a.line, a.column, a.rule).cmp(&(&b.path, b.line, b.column, b.rule))
    });
    Ok(ScanReport {
        findings,
        accepted: Vec::new(),
        stale_baseline_entries: 0,
        coverage,
    })
}

/// Adds the history's findings to the working tree's: one already in the working tree
/// gains the commit it was introduced in rather than being reported twice.
fn merge_history(current: &mut Vec<Finding>, past: Vec<Finding>) {
    let mut by_fingerprint: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, finding) in current.iter().enumerate() {
        by_fingerprint
            .entry(finding.fingerprint.clone())
            .or_default()
            .push(index);
    }
    for finding in past {
        match by_fingerprint.get(&finding.fingerprint) {
            Some(indices) => {
                for &index in indices {
                    if current[index].commit.is_none() {
                        current[index].commit.clone_from(&finding.commit);
                    }
                }
            }
            None => current.push(finding),
        }
    }
}
