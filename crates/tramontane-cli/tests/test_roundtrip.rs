//! A valid org written back as policy YAML and loaded again is the same org: the writer
//! quotes whatever needs quoting, and the loader loses nothing.

use std::collections::BTreeMap;

use jiff::civil::Date;
use proptest::prelude::*;
use tramontane::model::{
    AccessProfile, ApiKey, DesiredOrg, GatewayKey, GatewayKeyId, Holder, KeyDigest, Member, Money,
    Organization, OrganizationRole, Prune, SecretSink, SpendGuard, SpendLimit, StoreFailure, Team,
    Unlimited, Workspace, WorkspaceGateway, WorkspaceRole,
};
use tramontane::policy::{self, LoadOptions};

const MODELS: &[&str] = &[
    "mistral-small-latest",
    "mistral-large-latest",
    "codestral-latest",
    "mistral-embed",
];

/// Free text that stresses the writer's quoting: YAML indicators, numbers, booleans,
/// colons, hashes, quotes, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,.:#'\"!&*|>%@`{}\\[\\]?-]{1,24}",
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("12".to_owned()),
        Just("0x1F".to_owned()),
        Just("- item".to_owned()),
        Just("Zoë Ørsted 日本".to_owned()),
        Just("a: b # c".to_owned()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}"
}

fn spend_limit() -> impl Strategy<Value = SpendLimit> {
    prop_oneof![
        (0u32..1_000_000).prop_map(|n| SpendLimit::Monthly(f64::from(n))),
        (0.0f64..100_000.0).prop_map(SpendLimit::Monthly),
        Just(SpendLimit::Unlimited(Unlimited::Unlimited)),
    ]
}

/// Amounts of every precision the format accepts, from a millionth up.
fn spend_guard() -> impl Strategy<Value = SpendGuard> {
    let amount = || proptest::option::of((0u64..=10_000_000_000_000).prop_map(Money::from_micros));
    (amount(), amount(), amount())
        .prop_filter("a spend guard sets a window", |(hour, day, month)| {
            hour.is_some() || day.is_some() || month.is_some()
        })
        .prop_map(|(hour, day, month)| SpendGuard { hour, day, month })
}

fn model_subset() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        Just(vec!["*".to_owned()]),
        proptest::sample::subsequence(MODELS, 1..=MODELS.len())
            .prop_map(|models| models.into_iter().map(str::to_owned).collect()),
    ]
}

fn workspace_roles() -> impl Strategy<Value = Vec<WorkspaceRole>> {
    proptest::sample::subsequence(
        vec![
            WorkspaceRole::User,
            WorkspaceRole::Dev,
            WorkspaceRole::Billing,
            WorkspaceRole::ObservabilityViewer,
        ],
        1..=2,
    )
}

pub(crate) fn org() -> impl Strategy<Value = DesiredOrg> {
    let members = proptest::collection::btree_map(
        "[a-z]{1,8}(\\.[a-z]{1,8})?@(acme|example)\\.com",
        (text(), any::<bool>()),
        2..8,
    );
    let roles = proptest::collection::btree_map(
        name(),
        (
            proptest::option::of(text()),
            model_subset(),
            proptest::option::of(1u64..100_000),
            proptest::option::of(1u64..10_000_000),
            proptest::option::of(1u32..10_000),
        ),
        0..4,
    );
    (
        members,
        roles,
        spend_limit(),
        proptest::collection::vec(any::<u64>(), 8),
    )
        .prop_flat_map(|(members, roles, org_limit, seeds)| {
            let emails: Vec<String> = members.keys().cloned().collect();
            let role_names: Vec<String> = roles.keys().cloned().collect();
            let workspaces = proptest::collection::btree_map(
                name(),
                workspace(emails.clone(), seeds.clone()),
                0..4,
            );
            (
                Just(members),
                Just(roles),
                Just(org_limit),
                workspaces,
                Just(emails),
                Just(role_names),
            )
                .prop_flat_map(
                    |(members, roles, org_limit, workspaces, emails, role_names)| {
                        let workspace_names: Vec<String> = workspaces.keys().cloned().collect();
                        let teams = proptest::collection::btree_map(
                            name(),
                            team(emails.clone(), workspace_names, role_names),
                            0..3,
                        );
                        (
                            Just(members),
                            Just(roles),
                            Just(org_limit),
                            Just(workspaces),
                            teams,
                        )
                    },
                )
                .prop_map(|(members, roles, org_limit, workspaces, teams)| {
                    let mut members: BTreeMap<String, Member> = members
                        .into_iter()
                        .map(|(email, (name, admin))| {
                            let roles = if admin {
                                vec![OrganizationRole::OrganizationAdmin]
                            } else {
                                vec![OrganizationRole::Member]
                            };
                            (email, Member { name, roles })
                        })
                        .collect();
                    // min_admins must hold: make the first member an admin.
                    if let Some(first) = members.values_mut().next() {
                        first.roles = vec![OrganizationRole::OrganizationAdmin];
                    }
                    let gateway_keys = gateway_keys(&workspaces);
                    DesiredOrg {
                        organization: Organization {
                            spend_limit: Some(org_limit),
                            min_admins: Some(1),
                            prune: Prune {
                                keys: true,
                                ..Prune::default()
                            },
                        },
                        members,
                        roles: roles
                            .into_iter()
                            .map(|(name, (description, models, max_tokens, budget, rpm))| {
                                (
                                    name,
                                    AccessProfile {
                                        description,
                                        models,
                                        max_tokens_per_request: max_tokens,
                                        daily_token_budget: budget,
                                        rpm,
                                    },
                                )
                            })
                            .collect(),
                        teams,
                        workspaces,
                        gateway_keys,
                        issuers: BTreeMap::new(),
                        workloads: BTreeMap::new(),
                        models: BTreeMap::new(),
                        audit: Default::default(),
                        alerts: Default::default(),
                    }
                })
        })
}

/// Valid gateway keys for the generated workspaces: the admin's where the workspace names an
/// upstream key, and one held by the workspace's first key.
fn gateway_keys(workspaces: &BTreeMap<String, Workspace>) -> BTreeMap<GatewayKeyId, GatewayKey> {
    let mut keys = BTreeMap::new();
    for (i, (name, workspace)) in workspaces.iter().enumerate() {
        let entry = |holder: Holder, description: Option<String>| GatewayKey {
            digest: KeyDigest::of(&format!("{name}/{holder}")),
            holder,
            workspace: name.clone(),
            expires: Date::constant(2027, 1, 1),
            description,
        };
        let has_upstream = workspace
            .gateway
            .as_ref()
            .is_some_and(|gateway| gateway.upstream_key.is_some());
        if let (true, Some(admin)) = (has_upstream, &workspace.admin) {
            keys.insert(
                GatewayKeyId::parse(&format!("member-{i}")).unwrap(),
                entry(Holder::Member(admin.clone()), workspace.description.clone()),
            );
        }
        if let Some(key) = workspace.keys.keys().next() {
            keys.insert(
                GatewayKeyId::parse(&format!("service-{i}")).unwrap(),
                entry(Holder::service_key(name, key), None),
            );
        }
    }
    keys
}

fn workspace(emails: Vec<String>, seeds: Vec<u64>) -> impl Strategy<Value = Workspace> {
    let admin = proptest::sample::select(emails.clone());
    let members = proptest::collection::btree_map(
        proptest::sample::select(emails.clone()),
        workspace_roles(),
        0..3,
    );
    let keys = proptest::collection::btree_map(name(), key(emails), 0..3);
    (
        proptest::option::of(text()),
        admin,
        members,
        proptest::option::of(spend_limit()),
        proptest::option::of(100u32..1000),
        model_subset(),
        keys,
        proptest::option::of(spend_guard()),
        proptest::option::of((any::<bool>(), any::<bool>())),
    )
        .prop_map(
            move |(
                description,
                admin,
                mut members,
                spend_limit,
                rpm,
                models,
                keys,
                spend_guard,
                gateway,
            )| {
                let _ = &seeds;
                // The admin may be listed again, but then with workspace_admin.
                if let Some(roles) = members.get_mut(&admin) {
                    roles.push(WorkspaceRole::WorkspaceAdmin);
                }
                let allowed: Vec<String> = if models == ["*"] {
                    MODELS.iter().map(|m| (*m).to_owned()).collect()
                } else {
                    models.clone()
                };
                let keys = keys
                    .into_iter()
                    .map(|(name, mut key): (String, ApiKey)| {
                        key.models = key.models.map(|_| vec![allowed[0].clone()]);
                        key.rpm = match (key.rpm, rpm) {
                            (Some(key_rpm), Some(limit)) => Some(key_rpm.min(limit)),
                            (key_rpm, _) => key_rpm,
                        };
                        (name, key)
                    })
                    .collect::<BTreeMap<_, _>>();
                let gateway = gateway.map(|(with_upstream, fail_open)| WorkspaceGateway {
                    upstream_key: keys.keys().next().filter(|_| with_upstream).cloned(),
                    agents: vec!["ag_0195d3c4".to_owned()],
                    paths: vec![tramontane::model::OpenedPath::Post("/v1/ocr".to_owned())],
                    store_failure: if fail_open {
                        StoreFailure::FailOpen
                    } else {
                        StoreFailure::FailClosed
                    },
                    fetched_content_tokens: None,
                });
                Workspace {
                    description,
                    admin: Some(admin),
                    members,
                    spend_limit,
                    rpm,
                    models: Some(models),
                    keys,
                    spend_guard,
                    gateway,
                }
            },
        )
}

fn key(emails: Vec<String>) -> impl Strategy<Value = ApiKey> {
    let expiry = prop_oneof![
        (30u32..365, proptest::option::of(1u32..30)).prop_map(|(days, rotate)| (
            None,
            Some(days),
            rotate
        )),
        (0i32..2000, proptest::option::of(1u32..30)).prop_map(|(offset, rotate)| {
            let date = Date::constant(2030, 1, 1)
                .checked_add(jiff::Span::new().days(i64::from(offset)))
                .unwrap();
            (Some(date), None, rotate)
        }),
    ];
    let secret = prop_oneof![
        "[a-z]{1,8}/[a-z-]{1,10}\\.key".prop_map(SecretSink::File),
        proptest::collection::vec("[a-z=/-]{1,10}", 1..4).prop_map(SecretSink::Command),
    ];
    (
        proptest::sample::select(emails),
        expiry,
        proptest::option::of(Just(())),
        proptest::option::of(1u32..100),
        secret,
        proptest::option::of((1u64..100_000, 1u64..10_000_000)),
        proptest::option::of(spend_guard()),
    )
        .prop_map(
            |(owner, (expires, expires_after_days, rotate), models, rpm, secret, tokens, guard)| {
                ApiKey {
                    owner,
                    expires,
                    expires_after_days,
                    rotate_before_days: rotate,
                    rotation_overlap_hours: None,
                    models: models.map(|()| Vec::new()),
                    rpm,
                    max_tokens_per_request: tokens.map(|(max, _)| max),
                    daily_token_budget: tokens.map(|(_, budget)| budget),
                    spend_guard: guard,
                    secret,
                }
            },
        )
}

fn team(
    emails: Vec<String>,
    workspaces: Vec<String>,
    roles: Vec<String>,
) -> impl Strategy<Value = Team> {
    let assignments = if workspaces.is_empty() {
        Just(BTreeMap::new()).boxed()
    } else {
        proptest::collection::btree_map(
            proptest::sample::select(workspaces),
            workspace_roles(),
            0..3,
        )
        .boxed()
    };
    let role = if roles.is_empty() {
        Just(None).boxed()
    } else {
        proptest::option::of(proptest::sample::select(roles)).boxed()
    };
    (
        proptest::option::of(text()),
        proptest::sample::subsequence(emails.clone(), 0..=emails.len()),
        assignments,
        proptest::option::of(Just(OrganizationRole::Member)),
        role,
        proptest::option::of(spend_guard()),
    )
        .prop_map(
            |(description, members, workspaces, organization_role, role, spend_guard)| Team {
                description,
                members,
                workspaces,
                organization_role,
                role,
                spend_guard,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn written_policy_loads_back_the_same(desired in org()) {
        let dir = tempfile::tempdir().unwrap();
        let yaml = policy::write::to_yaml(&desired);
        std::fs::write(dir.path().join("org.yaml"), &yaml).unwrap();
        let loaded = policy::load(dir.path(), &LoadOptions::new(Date::constant(2026, 6, 1)));
        let errors: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity() == tramontane::policy::diagnostic::Severity::Error)
            .map(|d| format!("{}: {} at {:?}", d.code, d.message, d.span.map(|s| s.start)))
            .collect();
        prop_assert!(errors.is_empty(), "{}\n---\n{}", errors.join("\n"), yaml);
        prop_assert_eq!(loaded.desired, desired, "\n{}", yaml);
    }
}
