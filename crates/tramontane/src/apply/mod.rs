//! Stage: apply, the last of the pipeline (after `plan`), through a `provider`.
//!
//! Carries a plan out: each change becomes the Admin API operations that make it true, and
//! every new key's secret goes to its sink the moment it exists.
//!
//! Changes run in waves that follow the plan's dependencies: the organization, members,
//! workspaces, teams, then keys; deletes the other way round. The changes of one wave do not
//! depend on each other, so they run concurrently, up to a bound. After a failure nothing new
//! starts, what is in flight finishes, and the report says what became of every change.

pub mod audit;
mod engine;
pub mod git_ignore;
pub mod journal;
pub mod lock;
pub mod runtime_record;
mod secret;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::{DesiredOrg, LiveOrg};
use crate::plan::{Change, ChangeSpec, Plan};
use crate::provider::{Provider, ProviderError, request_id};

pub use secret::{DEFAULT_COMMAND_TIMEOUT, SecretFiles, deliver};

use self::engine::Engine;
use self::journal::{Journal, JournalError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{address}: {source}")]
    Provider {
        address: String,
        #[source]
        source: ProviderError,
    },
    #[error("{address}: {message}")]
    Plan { address: String, message: String },
    // The problem comes last: a command's stderr may follow it on lines of their own.
    #[error(
        "{address}: the new key could not be delivered, so it was deleted again and no key is left without its secret: {problem}"
    )]
    Delivery { address: String, problem: String },
    #[error(
        "{address}: the new key could not be delivered, and deleting it again failed too ({cleanup}); delete it in the console (Admin → API keys), since its secret reached nobody: {problem}"
    )]
    Orphan {
        address: String,
        problem: String,
        cleanup: String,
    },
    #[error(
        "{address}: the new key was not shown to work ({problem}), so it was deleted again and the key it was to succeed is kept; check that keys of this workspace can reach the inference API, then run apply again"
    )]
    Unverified { address: String, problem: String },
    #[error(
        "{address}: the old key's overlap is over, but its successor no longer answers ({problem}), so the old key is kept; deliver the successor's secret again or rotate the key anew (`tramontane revoke` the successor), then run apply again"
    )]
    SuccessorFailing { address: String, problem: String },
    #[error(
        "{address}: the new key was not shown to work ({problem}), and deleting it again failed too ({cleanup}); the key it was to succeed is kept; delete the new one in the console (Admin → API keys)"
    )]
    UnverifiedOrphan {
        address: String,
        problem: String,
        cleanup: String,
    },
    #[error("{address}: {source}; nothing was created")]
    JournalBefore {
        address: String,
        #[source]
        source: JournalError,
    },
    #[error(
        "{address}: the key was created and its secret delivered, but {source}; the next plan will replace the key, since nothing says it was delivered"
    )]
    JournalAfter {
        address: String,
        #[source]
        source: JournalError,
    },
}

impl ApplyError {
    /// The address of the change that failed.
    pub fn address(&self) -> &str {
        match self {
            ApplyError::Provider { address, .. }
            | ApplyError::Plan { address, .. }
            | ApplyError::Delivery { address, .. }
            | ApplyError::Orphan { address, .. }
            | ApplyError::Unverified { address, .. }
            | ApplyError::SuccessorFailing { address, .. }
            | ApplyError::UnverifiedOrphan { address, .. }
            | ApplyError::JournalBefore { address, .. }
            | ApplyError::JournalAfter { address, .. } => address,
        }
    }
}

/// How to apply.
pub struct ApplyOptions {
    /// Where relative secret-sink paths and commands are resolved.
    pub root: PathBuf,
    /// Changes in flight at once, within one wave.
    pub concurrency: usize,
    /// How long a command sink may run.
    pub sink_timeout: std::time::Duration,
    /// Where each key's creation and delivery is recorded; `None` records nothing, for
    /// callers that keep no state between runs.
    pub journal: Option<Journal>,
    /// The instant the apply judges expiries at (a rotation's successor must not have
    /// expired before its predecessor goes).
    pub now: jiff::Timestamp,
}

impl ApplyOptions {
    pub fn new(root: PathBuf) -> ApplyOptions {
        ApplyOptions {
            root,
            concurrency: 8,
            sink_timeout: DEFAULT_COMMAND_TIMEOUT,
            journal: None,
            now: jiff::Timestamp::now(),
        }
    }
}

/// What became of one change.
#[derive(Debug)]
pub enum Status {
    Done,
    Failed(ApplyError),
    /// An earlier failure stopped the apply before this change started.
    NotAttempted,
    /// A step for a person, in the console.
    Manual,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed(_) => "failed",
            Status::NotAttempted => "not attempted",
            Status::Manual => "manual",
        }
    }
}

/// One change's result, with what the audit log keeps of it.
#[derive(Debug)]
pub struct ChangeReport {
    pub status: Status,
    /// The Admin API's ids of the requests made for this change, where it gave them.
    pub request_ids: Vec<String>,
    /// Where a new key's secret went, as plans show a sink.
    pub delivered_to: Option<String>,
    /// What a person should know beyond done or failed (a check that could only be partial).
    pub note: Option<String>,
}

/// What an apply did: one report per change of the plan, in the plan's order.
#[derive(Debug)]
pub struct ApplyReport {
    pub changes: Vec<ChangeReport>,
}

impl ApplyReport {
    pub fn failures(&self) -> impl Iterator<Item = &ApplyError> {
        self.changes
            .iter()
            .filter_map(|report| match &report.status {
                Status::Failed(error) => Some(error),
                _ => None,
            })
    }

    pub fn succeeded(&self) -> bool {
        self.failures().next().is_none()
            && !self
                .changes
                .iter()
                .any(|report| matches!(report.status, Status::NotAttempted))
    }

    pub fn count(&self, wanted: fn(&Status) -> bool) -> usize {
        self.changes.iter().filter(|r| wanted(&r.status)).count()
    }

    /// The first failure, for callers that only need to know whether it worked.
    pub fn into_result(self) -> Result<ApplyReport, ApplyError> {
        let position = self
            .changes
            .iter()
            .position(|report| matches!(report.status, Status::Failed(_)));
        match position {
            None => Ok(self),
            Some(index) => {
                let mut changes = self.changes;
                match changes.swap_remove(index).status {
                    Status::Failed(error) => Err(error),
                    _ => unreachable!("the position of a failure"),
                }
            }
        }
    }
}

/// Live ids by name, kept current as objects are created.
struct Ids {
    users: HashMap<String, String>,
    workspaces: HashMap<String, String>,
    teams: HashMap<String, String>,
}

impl Ids {
    fn new(live: &LiveOrg) -> Ids {
        Ids {
            users: live
                .members
                .iter()
                .map(|(email, m)| (email.clone(), m.id.clone()))
                .collect(),
            workspaces: live
                .workspaces
                .iter()
                .map(|(name, w)| (name.clone(), w.id.clone()))
                .collect(),
            teams: live
                .teams
                .iter()
                .map(|(name, t)| (name.clone(), t.id.clone()))
                .collect(),
        }
    }
}

/// The wave a change runs in; `None` for a manual step.
fn wave(change: &Change) -> Option<u8> {
    Some(match &change.spec {
        ChangeSpec::WorkspaceSpendLimit { .. } => return None,
        ChangeSpec::OrganizationSpendLimit { .. } => 0,
        ChangeSpec::MemberCreate(_) => 1,
        // Demotions wait for promotions, so the organization never passes through a
        // moment without an admin (the API refuses to demote the last one).
        ChangeSpec::MemberRoles { before, after, .. } => {
            let admin = |roles: &BTreeSet<String>| roles.contains("organization_admin");
            if admin(before) && !admin(after) { 2 } else { 1 }
        }
        ChangeSpec::MemberDelete(_) => 9,
        ChangeSpec::WorkspaceCreate(_) | ChangeSpec::WorkspaceUpdate { .. } => 3,
        ChangeSpec::WorkspaceArchive(_) => 8,
        ChangeSpec::TeamCreate(_) | ChangeSpec::TeamUpdate { .. } => 4,
        ChangeSpec::TeamDelete(_) => 7,
        ChangeSpec::KeyCreate(_) | ChangeSpec::KeyReplace { .. } | ChangeSpec::KeyRotate { .. } => {
            5
        }
        ChangeSpec::KeyDelete(_) => 6,
        // After every platform change, so a caller's limits are put in force only by an
        // apply that got that far.
        ChangeSpec::Runtime { .. }
        | ChangeSpec::GatewayKey { .. }
        | ChangeSpec::Workload { .. }
        | ChangeSpec::Alerts { .. } => 10,
    })
}

pub async fn apply<P: Provider>(
    plan: &Plan,
    desired: &DesiredOrg,
    live: &LiveOrg,
    provider: &P,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    apply_each(plan, desired, live, provider, options, &|_, _| {})
        .await
        .into_result()
}

/// Applies `plan`, calling `ended` as each change ends (from whichever change finishes
/// first), so the caller can keep an audit log as it goes.
pub async fn apply_each<P: Provider>(
    plan: &Plan,
    desired: &DesiredOrg,
    live: &LiveOrg,
    provider: &P,
    options: &ApplyOptions,
    ended: &(dyn Fn(&Change, &ChangeReport) + Sync),
) -> ApplyReport {
    let shared = Shared {
        ids: Mutex::new(Ids::new(live)),
        claimed: Mutex::new(HashSet::new()),
        files: SecretFiles::new(options.root.clone(), options.sink_timeout),
        today: options.now.to_zoned(jiff::tz::TimeZone::UTC).date(),
        journal: options.journal.as_ref(),
        stopped: AtomicBool::new(false),
        permits: tokio::sync::Semaphore::new(
            provider
                .max_concurrency()
                .map_or(options.concurrency, |most| most.min(options.concurrency))
                .max(1),
        ),
    };
    let mut reports: Vec<Option<ChangeReport>> = plan.changes.iter().map(|_| None).collect();
    let mut waves: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for (index, change) in plan.changes.iter().enumerate() {
        match wave(change) {
            Some(wave) => waves.entry(wave).or_default().push(index),
            None => {
                reports[index] = Some(ChangeReport {
                    status: Status::Manual,
                    request_ids: Vec::new(),
                    delivered_to: None,
                    note: None,
                })
            }
        }
    }
    for indices in waves.values() {
        let runs = indices
            .iter()
            .map(|&index| {
                let change = &plan.changes[index];
                let shared = &shared;
                async move {
                    let report = run_one(change, shared, provider, live, desired).await;
                    if !matches!(report.status, Status::NotAttempted) {
                        ended(change, &report);
                    }
                    (index, report)
                }
            })
            .collect();
        for (index, report) in crate::provider::mistral::join_all(runs).await {
            reports[index] = Some(report);
        }
    }
    ApplyReport {
        changes: reports
            .into_iter()
            .map(|report| {
                report.unwrap_or(ChangeReport {
                    status: Status::NotAttempted,
                    request_ids: Vec::new(),
                    delivered_to: None,
                    note: None,
                })
            })
            .collect(),
    }
}

/// What the changes of one apply share.
struct Shared<'a> {
    journal: Option<&'a Journal>,
    ids: Mutex<Ids>,
    /// Live keys already deleted or replaced by this apply, so two changes never pick one.
    claimed: Mutex<HashSet<String>>,
    files: SecretFiles,
    /// The day (UTC) expiries are judged at.
    today: jiff::civil::Date,
    /// Set by the first failure: nothing new starts after it.
    stopped: AtomicBool,
    permits: tokio::sync::Semaphore,
}

async fn run_one<P: Provider>(
    change: &Change,
    shared: &Shared<'_>,
    provider: &P,
    live: &LiveOrg,
    desired: &DesiredOrg,
) -> ChangeReport {
    let not_attempted = || ChangeReport {
        status: Status::NotAttempted,
        request_ids: Vec::new(),
        delivered_to: None,
        note: None,
    };
    let Ok(_permit) = shared.permits.acquire().await else {
        return not_attempted();
    };
    if shared.stopped.load(Ordering::SeqCst) {
        return not_attempted();
    }
    let engine = Engine {
        change,
        shared,
        provider,
        live,
        desired,
        note: std::sync::Mutex::new(None),
    };
    let (result, request_ids) = request_id::gather(engine.run()).await;
    let note = engine
        .note
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match result {
        Ok(delivered_to) => ChangeReport {
            status: Status::Done,
            request_ids,
            delivered_to,
            note,
        },
        Err(error) => {
            shared.stopped.store(true, Ordering::SeqCst);
            ChangeReport {
                status: Status::Failed(error),
                request_ids,
                delivered_to: None,
                note: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::plan::{MemberSpec, NewTeam, TeamWorkspaces};
    use crate::provider::{Operation, Outcome};

    /// Succeeds at everything but creating the member `fail@x.example`, after a pause, and
    /// counts how many operations run at once.
    struct Flaky {
        running: AtomicUsize,
        most: AtomicUsize,
        performed: Mutex<Vec<String>>,
    }

    impl Provider for Flaky {
        async fn read(&self) -> Result<LiveOrg, ProviderError> {
            Ok(LiveOrg::default())
        }

        async fn verify_key(&self, _: &secrecy::SecretString) -> Result<(), ProviderError> {
            unreachable!("no key is created")
        }

        async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let Operation::CreateUser { email, .. } = operation else {
                return Ok(Outcome::Done);
            };
            self.performed.lock().unwrap().push(email.clone());
            if email == "fail@x.example" {
                return Err(ProviderError::Unexpected {
                    call: "POST /v1/admin/users".into(),
                    problem: "refused".into(),
                });
            }
            Ok(Outcome::Created(email))
        }
    }

    /// [`Flaky`] behind a provider that takes one write at a time, as the sandbox does.
    struct OneAtATime(Flaky);

    impl Provider for OneAtATime {
        async fn read(&self) -> Result<LiveOrg, ProviderError> {
            self.0.read().await
        }

        async fn verify_key(&self, secret: &secrecy::SecretString) -> Result<(), ProviderError> {
            self.0.verify_key(secret).await
        }

        async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
            self.0.perform(operation).await
        }

        fn max_concurrency(&self) -> Option<usize> {
            Some(1)
        }
    }

    fn member(email: &str) -> Change {
        let spec = ChangeSpec::MemberCreate(MemberSpec {
            email: email.into(),
            name: "Some One".into(),
            roles: ["member".to_owned()].into(),
        });
        Change::new(format!("member.{email}"), "", spec)
    }

    /// Refuses every operation: a change that reaches the organization fails.
    struct Untouchable;

    impl Provider for Untouchable {
        async fn read(&self) -> Result<LiveOrg, ProviderError> {
            Ok(LiveOrg::default())
        }

        async fn verify_key(&self, _: &secrecy::SecretString) -> Result<(), ProviderError> {
            unreachable!("no key is created")
        }

        async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
            Err(ProviderError::Unexpected {
                call: format!("{operation:?}"),
                problem: "no call was expected".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_runtime_change_makes_no_platform_call_and_runs_last() {
        let limits = crate::runtime::Limits {
            models: crate::runtime::Models::Every,
            rpm: Some(30),
            workspace_rpm: None,
            max_tokens_per_request: None,
            daily_token_budget: None,
            spend_limit: None,
            spend_guards: Vec::new(),
        };
        let caller = crate::runtime::Caller::Key {
            workspace: "dev".into(),
            key: "ci".into(),
        };
        let runtime = Change::new(
            caller.address(),
            "",
            ChangeSpec::Runtime {
                caller,
                before: None,
                after: Some(limits),
            },
        );
        assert_eq!(wave(&runtime), Some(10));
        assert!(wave(&member("a@x.example")) < wave(&runtime));
        let plan = Plan::of_changes("test", vec![runtime]);
        let report = apply(
            &plan,
            &DesiredOrg::default(),
            &LiveOrg::default(),
            &Untouchable,
            &ApplyOptions::new(std::env::temp_dir()),
        )
        .await
        .unwrap();
        assert!(report.succeeded());
    }

    #[tokio::test]
    async fn a_failure_lets_running_changes_finish_and_starts_nothing_new() {
        let mut changes: Vec<Change> = (0..6).map(|i| member(&format!("m{i}@x.example"))).collect();
        changes.insert(1, member("fail@x.example"));
        let team = ChangeSpec::TeamCreate(NewTeam {
            name: "later".into(),
            description: String::new(),
            members: BTreeSet::new(),
            workspaces: TeamWorkspaces::new(),
            organization_role: None,
        });
        changes.push(Change::new("team.later", "", team));
        let plan = Plan::of_changes("test", changes);
        let provider = Flaky {
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            performed: Mutex::new(Vec::new()),
        };
        let options = ApplyOptions {
            concurrency: 3,
            ..ApplyOptions::new(std::env::temp_dir())
        };
        let ended = Mutex::new(Vec::new());
        let report = apply_each(
            &plan,
            &DesiredOrg::default(),
            &LiveOrg::default(),
            &provider,
            &options,
            &|change, report| {
                ended
                    .lock()
                    .unwrap()
                    .push((change.address.clone(), report.status.as_str()))
            },
        )
        .await;
        let statuses: Vec<&str> = report.changes.iter().map(|r| r.status.as_str()).collect();
        // The first three start together; the failure stops the rest of the wave and every
        // later wave, while the two beside it finish.
        assert_eq!(
            statuses,
            [
                "done",
                "failed",
                "done",
                "not attempted",
                "not attempted",
                "not attempted",
                "not attempted",
                "not attempted"
            ]
        );
        assert_eq!(provider.most.load(Ordering::SeqCst), 3);
        assert_eq!(provider.performed.lock().unwrap().len(), 3);
        assert_eq!(
            ended.lock().unwrap().len(),
            3,
            "not-attempted changes are not logged"
        );
        assert!(!report.succeeded());
        assert!(
            report
                .into_result()
                .unwrap_err()
                .to_string()
                .contains("member.fail@x.example")
        );
    }

    #[tokio::test]
    async fn a_provider_that_takes_one_write_at_a_time_gets_them_in_plan_order() {
        let changes: Vec<Change> = (0..5).map(|i| member(&format!("m{i}@x.example"))).collect();
        let plan = Plan::of_changes("test", changes);
        let provider = OneAtATime(Flaky {
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            performed: Mutex::new(Vec::new()),
        });
        let options = ApplyOptions {
            concurrency: 8,
            ..ApplyOptions::new(std::env::temp_dir())
        };
        let report = apply(
            &plan,
            &DesiredOrg::default(),
            &LiveOrg::default(),
            &provider,
            &options,
        )
        .await
        .unwrap();
        assert!(report.succeeded());
        assert_eq!(provider.0.most.load(Ordering::SeqCst), 1);
        let expected: Vec<String> = (0..5).map(|i| format!("m{i}@x.example")).collect();
        assert_eq!(*provider.0.performed.lock().unwrap(), expected);
    }
}
