use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Rules of a small policy, and what the store holds for them: the fixture every format's
/// snapshot is taken on.
pub(crate) fn fixture() -> UsageReport {
    let now = at("2026-11-26T10:15:00Z");
    let rules = [
        Rule::new(
            RuleScope::Workspace("prod".into()),
            Measure::Requests,
            Window::Minute,
            600,
        ),
        Rule::new(
            RuleScope::Member("bob@acme.example".into()),
            Measure::Tokens,
            Window::Day,
            500_000,
        ),
        Rule::new(
            RuleScope::Key("workspace.prod.key.ci".into()),
            Measure::Tokens,
            Window::Day,
            100_000,
        ),
        Rule::new(
            RuleScope::Team("data, <science>".into()),
            Measure::Spend,
            Window::Month,
            250_500_000,
        ),
        Rule::new(
            RuleScope::Workspace("prod".into()),
            Measure::Spend,
            Window::Day,
            20_000_000,
        ),
    ];
    let probes: Vec<Probe> = rules
        .into_iter()
        .map(|rule| {
            let period = Period::of(rule.window, now);
            Probe {
                key: rule.store_key(&period.name),
                rate: rule.measure == Measure::Requests,
                rule,
                period,
            }
        })
        .collect();
    let mut readings = Readings::default();
    readings
        .used
        .insert("rule:workspace:prod:requests:minute:now".into(), 42);
    readings.used.insert(
        "rule:member:bob@acme.example:tokens:day:2026-11-26".into(),
        412_000,
    );
    readings.used.insert(
        "rule:team:data, <science>:spend:month:2026-11".into(),
        31_250_000,
    );
    readings.used.insert(
        "rule:workspace:prod:spend:day:2026-11-26".into(),
        21_000_000,
    );
    let mut prod = WorkspaceMeter {
        workspace: "prod".into(),
        total: Metered {
            requests: 1200,
            prompt_tokens: 900_000,
            completion_tokens: 300_000,
            cost_micros: 61_500_000,
        },
        ..WorkspaceMeter::default()
    };
    prod.models.insert(
        "mistral-large-latest".into(),
        Metered {
            requests: 200,
            prompt_tokens: 400_000,
            completion_tokens: 100_000,
            cost_micros: 50_000_000,
        },
    );
    prod.models.insert(
        "mistral-small-latest".into(),
        Metered {
            requests: 1000,
            prompt_tokens: 500_000,
            completion_tokens: 200_000,
            cost_micros: 11_500_000,
        },
    );
    prod.days.insert("2026-11-02".into(), 12_000_000);
    prod.days.insert("2026-11-25".into(), 28_500_000);
    prod.days.insert("2026-11-26".into(), 21_000_000);
    readings.meters.push(prod);
    report(&probes, &readings, now)
}

#[test]
fn a_rule_reports_used_left_and_percent_in_its_window() {
    let report = fixture();
    let bob = report
        .rules
        .iter()
        .find(|r| r.id == "member:bob@acme.example:tokens:day")
        .unwrap();
    assert_eq!((bob.used, bob.left, bob.percent), (412_000, 88_000, 82.4));
    assert_eq!(bob.window_start, at("2026-11-26T00:00:00Z"));
    let ci = report
        .rules
        .iter()
        .find(|r| r.id.starts_with("key:"))
        .unwrap();
    assert_eq!(
        (ci.used, ci.left),
        (0, 100_000),
        "a counter never written is nothing used"
    );
    let over = report
        .rules
        .iter()
        .find(|r| r.id == "workspace:prod:spend:day")
        .unwrap();
    assert_eq!((over.left, over.percent), (0, 105.0));
    assert_eq!(report.days.len(), 26);
    assert_eq!(report.days[25].spend_micros, 21_000_000);
    assert_eq!(
        report.consumers[0].scope,
        RuleScope::Team("data, <science>".into())
    );
    assert_eq!(report.clone().top(2).consumers.len(), 2);
}

#[test]
fn windows_are_named_as_the_gateway_counts_them() {
    let now = at("2026-12-31T23:59:59Z");
    assert_eq!(Period::of(Window::Hour, now).name, "2026-12-31T23");
    assert_eq!(Period::of(Window::Day, now).end, at("2027-01-01T00:00:00Z"));
    let month = Period::of(Window::Month, now);
    assert_eq!(
        (month.name.as_str(), month.start),
        ("2026-12", at("2026-12-01T00:00:00Z"))
    );
    assert_eq!(Period::of(Window::Minute, now).name, "now");
}

#[test]
fn every_format_renders_the_fixture() {
    let report = fixture();
    insta::assert_snapshot!("usage_table", render::table(&report));
    insta::assert_snapshot!("usage_json", render::json(&report));
    insta::assert_snapshot!("usage_csv", render::csv(&report));
    insta::assert_snapshot!("usage_markdown", render::markdown(&report));
}

#[test]
fn the_json_reads_back_as_the_report() {
    let report = fixture();
    let back: UsageReport = serde_json::from_str(&render::json(&report)).unwrap();
    assert_eq!(back, report);
}

#[test]
fn html_escapes_every_policy_name_and_fetches_nothing() {
    let html = render::html(&fixture());
    assert!(!html.contains("<science>"));
    assert!(html.contains("data, &lt;science&gt;"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));
}

/// docs/usage.md shows the fixture's table as the renderer prints it.
#[test]
fn the_docs_show_the_table_as_rendered() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/usage.md");
    let docs = std::fs::read_to_string(path).unwrap();
    let shown = format!(
        "<!-- usage-table -->\n```text\n{}```",
        render::table(&fixture())
    );
    assert!(
        docs.contains(&shown),
        "docs/usage.md should show, after `<!-- usage-table -->`:\n{shown}"
    );
}

#[test]
fn a_workloads_rules_are_probed_beside_the_callers() {
    let desired: crate::model::DesiredOrg = serde_json::from_value(serde_json::json!({
        "workspaces": {"prod": {"rpm": 60}},
        "issuers": {"gh": {"issuer": "https://token.actions.githubusercontent.com",
                           "discovery": true, "audiences": ["tramontane"]}},
        "workloads": {"notes": {"issuer": "gh", "subject": "repo:acme/app:environment:prod",
                                "workspace": "prod", "daily_token_budget": 1000,
                                "spend_guard": {"day": 2}}}
    }))
    .unwrap();
    let runtime = Runtime::of(&desired, crate::policy::catalog::Catalog::bundled());
    let ids: Vec<String> = probes(&runtime, at("2026-11-26T10:15:00Z"))
        .into_iter()
        .map(|probe| probe.rule.id)
        .collect();
    assert_eq!(
        ids,
        [
            "workload:notes:spend:day",
            "workload:notes:tokens:day",
            "workspace:prod:requests:minute"
        ]
    );
}
