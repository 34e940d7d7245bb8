//! `tramontane models diff`: the bundled catalog against a live `GET /v1/models` list.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use super::org::{OrgArgs, runtime};
use super::{CommandError, ExitStatus};
use tramontane::clock::day_of;
use tramontane::policy::catalog::{Catalog, drift, records};
use tramontane::render::models::{self, Compared};
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Compare the bundled model catalog with a live model list: models new since the bundled
    /// records, retired ones still served, current ones not served, and aliases that point
    /// elsewhere. Exits 0, or 2 with --detailed-exitcode when anything differs.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub org: OrgArgs,

    /// A saved `GET /v1/models` answer to compare with, instead of asking an organization
    /// (wins over --org).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Exit 2 when the live list differs from the bundled records, 0 when it does not.
    #[arg(long)]
    pub detailed_exitcode: bool,

    #[command(flatten)]
    pub clock: super::ClockArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn run(command: &ModelsCommand) -> Result<ExitStatus, CommandError> {
    match command {
        ModelsCommand::Diff(args) => diff(args),
    }
}

fn diff(args: &DiffArgs) -> Result<ExitStatus, CommandError> {
    let now = args.clock.now();
    let (bytes, label) = match &args.from {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| CommandError::File {
                path: path.clone(),
                action: "read",
                source,
            })?;
            (bytes, path.to_string_lossy().replace('\\', "/"))
        }
        None if args.org.org.is_some() => {
            let (org, label) = args.org.open(now, None, &RepositoryRoot::current())?;
            let bytes = runtime()?.block_on(org.model_list())?;
            (bytes, label)
        }
        None => {
            return Err(CommandError::Usage {
                message: "no model list to compare with".into(),
                help: Some(
                    "pass --org mistral (or sandbox:PATH) to ask an organization, or --from FILE with a saved `GET /v1/models` answer"
                        .into(),
                ),
            });
        }
    };
    let live = Catalog::from_slice(&bytes).map_err(|error| CommandError::Usage {
        message: format!("`{label}`: {error}"),
        help: error.help().map(str::to_owned),
    })?;
    let today = day_of(now);
    let drift = drift::compare(Catalog::bundled(), &live, today);
    let compared = Compared {
        records: &records::bundled().source,
        live: &label,
        today,
    };
    let text = match args.format {
        Format::Human => models::human(&drift, &compared),
        Format::Json => models::json(&drift, &compared),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if args.detailed_exitcode && !drift.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
