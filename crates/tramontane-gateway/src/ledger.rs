//! What `tramontane usage` reads from a store, and the admin listener's `GET /usage` answers
//! from its own: the library names the counters of every rule in force
//! ([`tramontane::usage::probes`]), the store reads them and the month's meters, and the
//! library sets one against the other ([`tramontane::usage::report`]).

use jiff::Timestamp;
use tramontane::runtime::Runtime;
use tramontane::usage::{self, Metered, Readings, UsageReport, WorkspaceMeter};

use crate::store::{LimitStore, Meter, MeterCounts, StoreError, UsageCounter, month_of};

/// The usage report under `runtime` at `now`, read from `store` in two operations: the
/// counters of every rule, then the month's meters.
pub async fn read(
    store: &dyn LimitStore,
    runtime: &Runtime,
    now: Timestamp,
) -> Result<UsageReport, StoreError> {
    let probes = usage::probes(runtime, now);
    let counters: Vec<UsageCounter> = probes
        .iter()
        .map(|probe| UsageCounter {
            key: probe.key.clone(),
            rate: probe.rate,
        })
        .collect();
    let used = store.usage(&counters, now).await?;
    let meters = store.meters(&month_of(now)).await?;
    let readings = Readings {
        used: counters
            .into_iter()
            .zip(used)
            .map(|(counter, used)| (counter.key, used))
            .collect(),
        meters: meters.iter().map(workspace_meter).collect(),
    };
    Ok(usage::report(&probes, &readings, now))
}

fn metered(counts: &MeterCounts) -> Metered {
    Metered {
        requests: counts.requests,
        prompt_tokens: counts.prompt_tokens,
        completion_tokens: counts.completion_tokens,
        cost_micros: counts.cost_micros,
    }
}

fn workspace_meter(meter: &Meter) -> WorkspaceMeter {
    WorkspaceMeter {
        workspace: meter.workspace.clone(),
        total: metered(&meter.total),
        models: meter
            .models
            .iter()
            .map(|(model, counts)| (model.clone(), metered(counts)))
            .collect(),
        days: meter.days.clone(),
    }
}

/// Why usage could not be read: from a store, or from a gateway's admin listener.
#[derive(Debug, thiserror::Error)]
#[error("cannot read usage from {from}: {detail}")]
pub struct UsageReadError {
    /// The store's address and prefix, or the gateway's URL (never a password).
    pub from: String,
    pub detail: String,
    pub help: &'static str,
}

impl UsageReadError {
    /// A store that did not answer.
    pub fn store(from: String, error: StoreError) -> UsageReadError {
        UsageReadError {
            from,
            detail: error.0,
            help: "check that the store answers from here, and give the --store address, --store-prefix and password (--store-password-file or TRAMONTANE_STORE_PASSWORD) that `gateway serve` runs with",
        }
    }

    /// A gateway whose admin listener did not answer, or answered what this version cannot
    /// read.
    pub fn gateway(from: String, detail: String) -> UsageReadError {
        UsageReadError {
            from,
            detail,
            help: "give --gateway the admin listener's address (`gateway serve --admin-listen`, 127.0.0.1:9464 by default), of a gateway of the same version",
        }
    }

    pub fn help(&self) -> &'static str {
        self.help
    }
}
