//! `tramontane usage`: for every rule in force, what is used or reserved and what is left in
//! its current window, what each workspace was metered this month, and the heaviest
//! consumers. Read from the gateway's Redis store (`--store`), through the gateway's own
//! store code, or from a running gateway's admin listener (`--gateway`), which answers from
//! its own store (the only way to read an in-process one) under the policy it has in force.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use tramontane::runtime::Runtime;
use tramontane::usage::{self, UsageReport, render};
use tramontane_gateway::ledger::{self, UsageReadError};
use tramontane_gateway::store::redis::RedisStore;

use super::org::runtime;
use super::{ColorChoice, CommandError, ExitStatus, PoliciesArg};

#[derive(Debug, clap::Args)]
#[command(mut_arg("policies", |arg| arg.help(
    "Directory of policy files: the rules whose counters are read (with --store)"
)))]
pub struct Args {
    #[command(flatten)]
    pub policies: PoliciesArg,

    /// The gateway's Redis store (`redis://HOST:PORT[/DB]`, as `gateway serve --store`).
    #[arg(
        long,
        value_name = "redis://HOST:PORT[/DB]",
        required_unless_present = "gateway",
        conflicts_with = "gateway"
    )]
    pub store: Option<String>,

    #[command(flatten)]
    pub redis: super::store::RedisArgs,

    /// A running gateway's admin listener (`http://127.0.0.1:9464`): its `/usage`, read from
    /// its own store under the policy it has in force.
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// How many of the heaviest consumers to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// Read the windows this instant (RFC 3339) falls in instead of the present's.
    #[arg(long, env = "TRAMONTANE_NOW", value_name = "RFC3339")]
    pub now: Option<jiff::Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
    Html,
}

/// How long a store or gateway may take to answer: a few reads, not a request in flight.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let report = match (&args.store, &args.gateway) {
        (Some(url), _) => from_store(args, url, now, color)?,
        (None, Some(url)) => runtime()?.block_on(from_gateway(url, args.now))?,
        (None, None) => unreachable!("clap requires --store or --gateway"),
    };
    let report = report.top(args.top);
    let text = match args.format {
        Format::Table => render::table(&report),
        Format::Json => render::json(&report),
        Format::Csv => render::csv(&report),
        Format::Markdown => render::markdown(&report),
        Format::Html => render::html(&report),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|source| CommandError::File {
            path: path.clone(),
            action: "write",
            source,
        })?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitStatus::Success)
}

fn from_store(
    args: &Args,
    url: &str,
    now: jiff::Timestamp,
    color: ColorChoice,
) -> Result<UsageReport, CommandError> {
    if url == "memory" {
        return Err(CommandError::Usage {
            message: "--store: an in-process store keeps its counters inside the gateway's process".into(),
            help: Some("read it through the gateway: `usage --gateway http://ADMIN-ADDRESS` (`gateway serve --admin-listen`)".into()),
        });
    }
    let mut settings = args.redis.settings(url)?;
    settings.timeout = READ_TIMEOUT;
    let today = tramontane::clock::day_of(now);
    let Some(loaded) = args.policies.load_if_present(today, color)? else {
        return Err(CommandError::Usage {
            message: format!("no policy directory at `{}`", args.policies.dir.to_string_lossy()),
            help: Some("give --policies the directory `gateway serve` runs with: its rules are the ones read".into()),
        });
    };
    let catalog = tramontane::policy::catalog::Catalog::bundled();
    let runtime_access = Runtime::of(&loaded.desired, catalog);
    // The store's client lives in the runtime, so it is made there.
    runtime()?.block_on(async {
        let store = RedisStore::new(&settings).map_err(|error| CommandError::Usage {
            message: format!("--store: {error}"),
            help: Some(error.help().into()),
        })?;
        ledger::read(&store, &runtime_access, now)
            .await
            .map_err(|error| UsageReadError::store(store.describe(), error).into())
    })
}

async fn from_gateway(
    url: &str,
    now: Option<jiff::Timestamp>,
) -> Result<UsageReport, CommandError> {
    let base = url.trim_end_matches('/');
    let address = format!("{base}/usage");
    let fail = |detail: String| UsageReadError::gateway(base.to_owned(), detail);
    let client = reqwest::Client::builder()
        .timeout(READ_TIMEOUT)
        .build()
        .map_err(|error| fail(error.to_string()))?;
    // A timestamp is written `2026-11-26T10:15:00Z`: nothing in it needs escaping.
    let address = match now {
        Some(now) => format!("{address}?now={now}"),
        None => address,
    };
    let response = client
        .get(&address)
        .send()
        .await
        .map_err(|error| fail(error.to_string()))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|error| fail(error.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("{status}: {}", body.trim())).into());
    }
    let report: UsageReport = serde_json::from_str(&body)
        .map_err(|error| fail(format!("an answer that is not a usage report ({error})")))?;
    if report.format_version != usage::FORMAT_VERSION {
        return Err(fail(format!(
            "a report of format version {}; this tramontane reads version {}",
            report.format_version,
            usage::FORMAT_VERSION
        ))
        .into());
    }
    Ok(report)
}
