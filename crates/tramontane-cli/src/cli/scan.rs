//! `tramontane scan`: leaked keys and secret files git would commit. Unlike the other
//! commands, its exit codes are a secret scanner's: 0 clean, 1 findings, 2 the scan failed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use tramontane::scan::verify::{DEFAULT_API_URL, Verifier};
use tramontane::scan::{self, Baseline, ScanOptions, render, sarif};

use super::{ColorChoice, CommandError, ExitStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The git repository to scan (any directory inside it).
    #[arg(default_value = ".", value_name = "REPO")]
    pub repo: PathBuf,

    /// Also scan every blob of every ref (branches, tags, remotes, stash), merge commits
    /// included, not only the working tree.
    #[arg(long)]
    pub history: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Accept the findings whose fingerprints this JSON list holds.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write every finding's fingerprint to FILE, accepting them all: the run then exits 0.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Ask the Mistral API whether each Mistral key found works (`GET /v1/models` with it).
    /// Sends the keys found to MISTRAL_API_URL; never done without this flag.
    #[arg(long)]
    pub verify: bool,

    /// The inference API's root, for --verify.
    #[arg(long, env = "MISTRAL_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,

    /// Seconds before one --verify request is given up (the key is then `unknown`).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub verify_timeout: u64,

    /// Files and blobs larger than this are skipped, and counted in the report.
    #[arg(long, default_value_t = scan::DEFAULT_MAX_FILE_BYTES, value_name = "BYTES")]
    pub max_file_size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// rustc-style frames, then a summary.
    Human,
    /// One JSON document: findings, summary, what was scanned and skipped.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    // Read before scanning: a missing baseline should not cost a history walk.
    let baseline = args.baseline.as_deref().map(Baseline::read).transpose()?;
    let options = ScanOptions {
        history: args.history,
        max_file_bytes: args.max_file_size,
    };
    let mut report = scan::scan(&args.repo, &options)?;
    if let Some(baseline) = &baseline {
        report.accept(baseline);
    }
    if args.verify {
        let verifier = Verifier::new(
            &args.api_url,
            Duration::from_secs(args.verify_timeout.max(1)),
        )?;
        verifier.verify_all_blocking(&mut report.findings)?;
    }
    if let Some(path) = &args.write_baseline {
        let baseline = report.to_baseline();
        baseline.write(path)?;
        eprintln!(
            "wrote {} fingerprint{} to {}: those findings are accepted from now on",
            baseline.len(),
            if baseline.len() == 1 { "" } else { "s" },
            path.display()
        );
    }

    let stdout = std::io::stdout();
    let text = match args.format {
        Format::Human => render::human(&report, color.enabled(stdout.is_terminal())),
        Format::Json => render::json(&report),
        Format::Sarif => sarif::render(&report, env!("CARGO_PKG_VERSION")),
    };
    let status = if report.findings.is_empty() || args.write_baseline.is_some() {
        ExitStatus::Success
    } else {
        ExitStatus::Findings
    };
    match stdout.lock().write_all(text.as_bytes()) {
        // The reader stopped reading (`scan | head`); the result stands all the same.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(status),
        Err(error) => Err(CommandError::ScanOutput(error)),
        Ok(()) => Ok(status),
    }
}
