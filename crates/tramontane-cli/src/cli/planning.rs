//! The first step `plan` and `apply` share, on the command line: flags into the library's
//! request, the policies' diagnostics on stderr when they are invalid, a notice when a
//! sandbox org is created, and a spinner while the organization is read.

use std::io::{IsTerminal, Write};
use std::path::Path;

use jiff::Timestamp;
use tramontane::planning::{self, PlanRequest, Planning, Stage};
use tramontane::render::diagnostics;

use super::org::{OrgArgs, runtime, tell_created};
use super::{ColorChoice, CommandError};

/// Everything a plan was made from, kept for apply, and the runtime to apply it with.
pub struct Planned {
    pub desired: tramontane::model::DesiredOrg,
    pub org: tramontane::org::Org,
    pub live: tramontane::model::LiveOrg,
    pub plan: tramontane::plan::Plan,
    pub runtime: tokio::runtime::Runtime,
}

/// Loads the policies and reads the org into a plan. `None` when the policies are invalid:
/// their diagnostics are already on stderr.
pub fn make_plan(
    policies: &Path,
    org_args: &OrgArgs,
    now: Timestamp,
    quiet: bool,
    color: ColorChoice,
) -> Result<Option<Planned>, CommandError> {
    let runtime = runtime()?;
    let request = PlanRequest {
        policies,
        org: &org_args.config(),
        now,
    };
    let mut progress = Progress(None);
    let planning = runtime.block_on(planning::make_plan(&request, &mut |stage| match stage {
        Stage::SandboxCreated(created) => tell_created(created),
        Stage::Reading { org } => progress = Progress::start(quiet, org),
        Stage::Read => std::mem::replace(&mut progress, Progress(None)).finish(),
    }))?;
    match planning {
        Planning::Invalid(loaded) => {
            let shown = policies.to_string_lossy();
            let text = diagnostics::human(
                &loaded,
                &shown,
                color.enabled(std::io::stderr().is_terminal()),
            );
            std::io::stderr().write_all(text.as_bytes())?;
            Ok(None)
        }
        Planning::Planned(planned) => Ok(Some(Planned {
            desired: planned.desired,
            org: planned.org,
            live: planned.live,
            plan: planned.plan,
            runtime,
        })),
    }
}

/// A spinner on stderr while the organization is read, only on a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn start(quiet: bool, label: &str) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("reading {label}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Progress(Some(bar))
    }

    fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}
