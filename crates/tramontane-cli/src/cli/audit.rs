//! `tramontane audit`: key and membership hygiene of the live organization, judged against
//! the policy. Exits 0 when no finding reaches `--fail-on`, 3 when one does, 1 on error.
//!
//! With `--store`, each workspace's bill is also set against what the gateway metered in its
//! store: the meters are read here, through the gateway's own store code, and handed to the
//! library as plain numbers.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::ValueEnum;

use super::org::{OrgArgs, runtime};
use super::{ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::clock::day_of;
use tramontane::hygiene::{
    self, AuditInput, Metering, PolicyLocator, Severity, UnmeteredTolerance,
};
use tramontane::model::activity::{MonthMeters, WorkspaceMeter};
use tramontane::model::{DesiredOrg, Money};
use tramontane::provider::Provider;
use tramontane::provider::activity::read_activity;
use tramontane::repository::RepositoryRoot;
use tramontane_gateway::store::redis::{RedisSettings, RedisStore};
use tramontane_gateway::store::{Meter, month_of};

#[derive(Debug, clap::Args)]
#[command(mut_arg("policies", |arg| arg.help(
    "Directory of policy files: thresholds (`audit:`), which keys are managed, and the \
     lines findings point at. Without it, keys are judged by the default thresholds and \
     none is reported as unmanaged"
)))]
pub struct Args {
    #[command(flatten)]
    pub org: OrgArgs,

    #[command(flatten)]
    pub policies: PoliciesArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Exit 3 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,

    /// tramontane's own apply audit log: changes it records are not reported as console
    /// changes. Relative to the policy repository; a missing log records none.
    #[arg(
        long,
        env = "TRAMONTANE_AUDIT_LOG",
        default_value = ".tramontane/audit.jsonl"
    )]
    pub audit_log: PathBuf,

    /// The gateway's Redis store (`redis://HOST:PORT[/DB]`, as `gateway serve --store`):
    /// set each workspace's bill this month against what the gateway metered, and report a
    /// workspace billed more (spend-unmetered).
    #[arg(long, value_name = "redis://HOST:PORT[/DB]")]
    pub store: Option<String>,

    #[command(flatten)]
    pub redis: super::store::RedisArgs,

    /// With --store: how far a workspace's bill may pass its meter, in percent of the bill
    /// (never less than 1.00 of the currency).
    #[arg(long, value_name = "PERCENT", default_value_t = UnmeteredTolerance::DEFAULT_PERCENT, value_parser = percent)]
    pub unmetered_tolerance: f64,

    #[command(flatten)]
    pub clock: super::JudgedAtArgs,
}

fn percent(text: &str) -> Result<f64, String> {
    text.trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|percent| (0.0..=100.0).contains(percent))
        .ok_or_else(|| format!("`{text}` is not a percentage from 0 to 100"))
}

/// How long the store may take to answer the audit: one read, not a request in flight.
const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The store `--store` names, checked before anything is read.
fn meter_store(args: &Args) -> Result<Option<RedisSettings>, CommandError> {
    let Some(url) = &args.store else {
        return Ok(None);
    };
    if url == "memory" {
        return Err(CommandError::Usage {
            message: "--store: an in-process store keeps its meters inside the gateway's process, out of audit's reach".into(),
            help: Some("run the gateway with a Redis store (`gateway serve --store redis://…`) and give audit the same address".into()),
        });
    }
    let mut settings = args.redis.settings(url)?;
    settings.timeout = STORE_TIMEOUT;
    Ok(Some(settings))
}

/// The meters of `now`'s month, from the store `settings` names (its client lives in the
/// runtime, so it is made here).
async fn read_meters(
    settings: &RedisSettings,
    now: jiff::Timestamp,
) -> Result<MonthMeters, CommandError> {
    let store = RedisStore::new(settings).map_err(|error| CommandError::Usage {
        message: format!("--store: {error}"),
        help: Some(error.help().into()),
    })?;
    let meters = store.read_meters(&month_of(now)).await?;
    Ok(month_meters(now, store.describe(), meters))
}

/// The meters as the library takes them: plain numbers by workspace.
fn month_meters(now: jiff::Timestamp, store: String, meters: Vec<Meter>) -> MonthMeters {
    let date = day_of(now);
    MonthMeters {
        year: date.year(),
        month: date.month(),
        store,
        workspaces: meters
            .into_iter()
            .map(|meter| {
                let meter_of = WorkspaceMeter {
                    requests: meter.total.requests,
                    prompt_tokens: meter.total.prompt_tokens,
                    completion_tokens: meter.total.completion_tokens,
                    cost: Money::from_micros(meter.total.cost_micros),
                };
                (meter.workspace, meter_of)
            })
            .collect(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One block per finding, most severe first.
    Human,
    /// The versioned report (format_version 1).
    Json,
    /// One row per finding, for a spreadsheet.
    Csv,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// Tables for a pull request or an issue.
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Low,
    Medium,
    High,
    Critical,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
        }
    }
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let now = args.clock.now();
    let today = day_of(now);
    let loaded = args.policies.load_if_present(today, color)?;
    if loaded.is_none() {
        eprintln!(
            "note: no policy directory at `{}`: default thresholds, and no key is reported as unmanaged",
            args.policies.dir.to_string_lossy()
        );
    }
    let desired: Option<&DesiredOrg> = loaded.as_ref().map(|loaded| &loaded.desired);
    let locator = loaded
        .as_ref()
        .map(|loaded| PolicyLocator::new(&loaded.sources))
        .unwrap_or_default();
    let root = RepositoryRoot::of_policies(&args.policies.dir);
    let store = meter_store(args)?;
    let (org, _label) = args.org.open(now, desired, &root)?;
    let applied = hygiene::read_applied(&root.resolve(&args.audit_log)).map_err(|error| {
        CommandError::Usage {
            message: error.to_string(),
            help: error.help().map(str::to_owned),
        }
    })?;
    let settings = desired.map(|d| d.audit.clone()).unwrap_or_default();
    let (live, activity, meters) = runtime()?.block_on(async {
        // The meters first: a store that does not answer fails the audit before the org is
        // read. The month is the one `read_activity` reads the bill of.
        let meters = match &store {
            Some(settings) => Some(read_meters(settings, now).await?),
            None => None,
        };
        let live = org.read().await?;
        let activity = read_activity(&org, &live, now, settings.console_change_days()).await?;
        Ok::<_, CommandError>((live, activity, meters))
    })?;

    let report = hygiene::audit(&AuditInput {
        live: &live,
        desired,
        locator: &locator,
        today,
        now,
        activity: Some(&activity),
        applied: &applied,
        metering: meters.as_ref().map(|meters| Metering {
            meters,
            tolerance: UnmeteredTolerance {
                percent: args.unmetered_tolerance,
            },
        }),
    });
    let stdout = std::io::stdout();
    let text = match args.format {
        Format::Human => hygiene::render::human(&report, color.enabled(stdout.is_terminal())),
        Format::Json => hygiene::render::json(&report),
        Format::Csv => hygiene::render::csv(&report),
        Format::Markdown => hygiene::render::markdown(&report),
        Format::Sarif => hygiene::sarif::render(
            &report,
            env!("CARGO_PKG_VERSION"),
            locator.first_file(),
            tramontane::repository::RepositoryRoot::of_policies(&args.policies.dir).path(),
        ),
    };
    stdout.lock().write_all(text.as_bytes())?;
    Ok(if report.at_or_above(args.fail_on.severity()) > 0 {
        ExitStatus::AuditFindings
    } else {
        ExitStatus::Success
    })
}
