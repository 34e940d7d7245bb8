use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use jiff::civil::Date;
use serde_json::json;

use super::org::OrgArgs;
use super::plan::{Planned, make_plan, today};
use super::show::read_plan;
use super::{ColorChoice, CommandError, ExitStatus};
use crate::apply::guard::{self, GuardOptions};
use crate::apply::{ApplyOptions, apply_each};
use crate::plan::{Action, Plan};
use crate::render::plan as render;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `plan --out`; without one, tramontane plans afresh and asks.
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub org: OrgArgs,

    /// Directory of policy files.
    #[arg(long, short, default_value = "policies", env = "TRAMONTANE_POLICIES")]
    pub policies: PathBuf,

    /// Apply without asking (required when not on a terminal).
    #[arg(long)]
    pub auto_approve: bool,

    /// Allow deleting objects of this kind that a guard protects (`workspace`).
    #[arg(long, value_name = "KIND")]
    pub allow_destroy: Vec<String>,

    /// The largest share of one kind's live objects the plan may delete.
    #[arg(long, default_value_t = 0.25)]
    pub max_delete_ratio: f64,

    /// Allow an empty policy to prune a populated organization.
    #[arg(long)]
    pub allow_empty: bool,

    /// Where every change attempted is appended, one JSON line each.
    #[arg(
        long,
        default_value = ".tramontane/audit.jsonl",
        env = "TRAMONTANE_AUDIT_LOG"
    )]
    pub audit_log: PathBuf,

    /// Print nothing on stderr while reading the organization.
    #[arg(long, short)]
    pub quiet: bool,

    #[arg(long, env = "TRAMONTANE_TODAY", hide = true)]
    pub today: Option<Date>,
}

fn refuse(message: String, help: &str) -> CommandError {
    CommandError::Usage {
        message,
        help: Some(help.into()),
    }
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let today = today(args.today);
    let saved = match &args.plan {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    let Some(Planned {
        desired,
        org,
        live,
        plan: fresh,
        runtime,
    }) = make_plan(&args.policies, &args.org, today, args.quiet, color)?
    else {
        return Ok(ExitStatus::Invalid);
    };
    let replan = format!("tramontane plan --org {} --out plan.json", fresh.live.org);
    let plan: Plan = match saved {
        Some(saved) => {
            if saved.live.org != fresh.live.org {
                return Err(refuse(
                    format!(
                        "the plan was made against `{}`, not `{}`",
                        saved.live.org, fresh.live.org
                    ),
                    "apply a plan to the organization it was made against",
                ));
            }
            if saved.live.fingerprint != fresh.live.fingerprint {
                return Err(refuse(
                    "stale plan: the organization changed since the plan was made".into(),
                    &format!("make a new plan and review it: `{replan}`"),
                ));
            }
            if saved.policy.digest != fresh.policy.digest
                || (saved.policy.commit.is_some() && saved.policy.commit != fresh.policy.commit)
            {
                return Err(refuse(
                    "stale plan: the policies changed since the plan was made".into(),
                    &format!("make a new plan and review it: `{replan}`"),
                ));
            }
            if saved.changes != fresh.changes {
                return Err(refuse(
                    "the plan file does not match what these policies and this organization give; it was edited, or made on another day".into(),
                    &format!("make a new plan: `{replan}`"),
                ));
            }
            saved
        }
        None => {
            let stdout = std::io::stdout();
            stdout
                .lock()
                .write_all(render::human(&fresh, color.enabled(stdout.is_terminal())).as_bytes())?;
            if fresh.summary.applicable() > 0 && !args.auto_approve {
                if !std::io::stdin().is_terminal() {
                    return Err(refuse(
                        "not on a terminal, so nothing can be confirmed".into(),
                        "review the plan, then pass --auto-approve (or apply a saved plan with --auto-approve)",
                    ));
                }
                print!(
                    "\nApply these changes to {}? Only `yes` is accepted: ",
                    fresh.live.org
                );
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != "yes" {
                    println!("Nothing applied.");
                    return Ok(ExitStatus::Success);
                }
            }
            fresh
        }
    };
    if args.plan.is_some()
        && !args.auto_approve
        && plan.summary.applicable() > 0
        && !std::io::stdin().is_terminal()
    {
        return Err(refuse(
            "not on a terminal, so nothing can be confirmed".into(),
            "pass --auto-approve to apply the saved plan",
        ));
    }

    let options = GuardOptions {
        allow_workspace_destroy: args.allow_destroy.iter().any(|kind| kind == "workspace"),
        max_delete_ratio: args.max_delete_ratio,
        allow_empty: args.allow_empty,
    };
    let tripped = guard::check(&plan, &desired, &live, &options);
    if !tripped.is_empty() {
        let mut stderr = std::io::stderr().lock();
        for guard in &tripped {
            writeln!(
                stderr,
                "error: refused: {}\nhelp: if this is intended, pass {}",
                guard.message, guard.flag
            )?;
        }
        writeln!(stderr, "Nothing applied.")?;
        return Ok(ExitStatus::Refused);
    }
    if plan.summary.applicable() == 0 {
        println!("Nothing to apply.");
        return Ok(ExitStatus::Success);
    }

    let actor = std::env::var("GITHUB_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let mut audit = Audit::open(&args.audit_log)?;
    let root = std::env::current_dir()?;
    let result = runtime.block_on(apply_each(&plan, &desired, &live, &org, &ApplyOptions { root }, |change, outcome| {
        audit.record(json!({
            "time": jiff::Timestamp::now().to_string(),
            "actor": actor,
            "org": plan.live.org,
            "commit": plan.policy.commit,
            "address": change.address,
            "action": change.action.as_str(),
            "result": match outcome { Ok(()) => "done".to_owned(), Err(error) => format!("failed: {error}") },
        }));
    }));
    audit.finish()?;
    let attempted: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Manual)
        .map(|c| c.address.as_str())
        .collect();
    match result {
        Ok(report) => {
            for change in plan.changes.iter().filter(|c| c.action != Action::Manual) {
                println!("{} {}: done", change.action.symbol(), change.address);
            }
            for change in plan
                .changes
                .iter()
                .filter(|c| matches!(c.action, Action::Create | Action::Replace | Action::Rotate))
            {
                if let Some(secret) = change
                    .after
                    .as_ref()
                    .and_then(|a| a.get("secret"))
                    .and_then(|s| s.as_str())
                {
                    println!("  secret of {} delivered to {secret}", change.address);
                }
            }
            println!(
                "\nApply complete: {} change(s) applied.",
                report.applied.len()
            );
            if !report.skipped_manual.is_empty() {
                println!("Left to a person, in the console:");
                for change in plan.changes.iter().filter(|c| c.action == Action::Manual) {
                    println!("  ! {}: {}", change.address, change.reason);
                }
            }
            Ok(ExitStatus::Success)
        }
        Err(error) => {
            let done = attempted
                .iter()
                .position(|address| *address == error.address())
                .unwrap_or(0);
            let mut stderr = std::io::stderr().lock();
            for (i, address) in attempted.iter().enumerate() {
                let state = if i < done {
                    "done"
                } else if i == done {
                    "failed"
                } else {
                    "not attempted"
                };
                writeln!(stderr, "{address}: {state}")?;
            }
            writeln!(
                stderr,
                "error: {error}\nhelp: fix the cause and run apply again; it carries on from where the organization now is"
            )?;
            Ok(ExitStatus::Invalid)
        }
    }
}

/// The append-only audit log: one JSON line per change attempted.
struct Audit {
    path: PathBuf,
    lines: Vec<String>,
}

impl Audit {
    fn open(path: &std::path::Path) -> Result<Audit, CommandError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CommandError::File {
                path: parent.to_owned(),
                action: "create",
                source,
            })?;
        }
        Ok(Audit {
            path: path.to_owned(),
            lines: Vec::new(),
        })
    }

    fn record(&mut self, entry: serde_json::Value) {
        self.lines.push(entry.to_string());
        // Written as each change ends, so a crash keeps what was done.
        let _ = self.flush();
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        for line in self.lines.drain(..) {
            writeln!(file, "{line}")?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), CommandError> {
        let path = self.path.clone();
        self.flush().map_err(|source| CommandError::File {
            path,
            action: "append to",
            source,
        })
    }
}
