//! A plan for people (terminal, pull-request comment) and for machines (JSON).

use std::fmt::Write;

use serde_json::Value;

use super::untrusted;
use crate::plan::{Action, Change, ChangeSpec, Plan, Rotation, RotationStage};

/// The first line of every plan comment, so CI finds and updates its own comment.
pub const COMMENT_MARKER: &str = "<!-- tramontane:plan -->";

struct Paint {
    on: bool,
}

impl Paint {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn action(&self, action: Action, text: &str) -> String {
        let code = match action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Delete => "31",
            Action::Replace | Action::Rotate => "35",
            Action::Manual => "36",
        };
        self.paint(code, text)
    }
    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

pub fn json(plan: &Plan) -> String {
    // A plan is plain data: serializing it cannot fail.
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

pub fn human(plan: &Plan, color: bool) -> String {
    let paint = Paint { on: color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Planned against {} (fingerprint {}).",
        untrusted::terminal(&plan.live.org),
        untrusted::terminal(short(&plan.live.fingerprint))
    );
    for change in &plan.changes {
        out.push('\n');
        let head = format!(
            "{} {}",
            change.action.symbol(),
            untrusted::terminal(&change.address)
        );
        let _ = writeln!(
            out,
            "{}  {}",
            paint.action(change.action, &paint.bold(&head)),
            paint.dim(&format!(
                "{} · {}",
                change.action.as_str(),
                change.enforcement.as_str()
            ))
        );
        let _ = writeln!(
            out,
            "    {}",
            paint.dim(&format!("# {}", untrusted::terminal(&change.reason)))
        );
        for line in effect_lines(change) {
            let _ = writeln!(
                out,
                "    {}",
                paint.bold(&format!("» {}", untrusted::terminal(&line)))
            );
        }
        for line in attribute_lines(change) {
            let line = untrusted::terminal(&line).into_owned();
            let styled = match line.chars().next() {
                Some('+') => paint.action(Action::Create, &line),
                Some('-') => paint.action(Action::Delete, &line),
                Some('~') => paint.action(Action::Update, &line),
                _ => line,
            };
            let _ = writeln!(out, "    {styled}");
        }
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(out, "\n{}", paint.bold("Unmanaged: in the organization, not in the policy. Left alone; `prune` in `organization` deletes them."));
        for item in &plan.unmanaged {
            let _ = writeln!(
                out,
                "  ? {}  {}",
                untrusted::terminal(&item.address),
                paint.dim(&untrusted::terminal(&item.note))
            );
        }
    }
    if !plan.rotations.is_empty() {
        let _ = writeln!(out, "\n{}", paint.bold("Key rotations:"));
        for rotation in &plan.rotations {
            let _ = writeln!(
                out,
                "  {}  {}",
                untrusted::terminal(&rotation.address),
                paint.dim(&untrusted::terminal(&rotation_note(rotation)))
            );
        }
    }
    for warning in &plan.warnings {
        let _ = writeln!(
            out,
            "\n{} {}",
            paint.paint("33;1", "warning:"),
            untrusted::terminal(warning)
        );
    }
    if !plan.guards.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            paint.paint("31;1", "Apply will refuse this plan unless told otherwise:")
        );
        for guard in &plan.guards {
            let _ = writeln!(
                out,
                "  ! {}  {}",
                untrusted::terminal(&guard.message),
                paint.dim(&format!("(lift with: {})", guard.flag))
            );
        }
    }
    let _ = writeln!(out, "\n{}", runtime_line(plan));
    let _ = writeln!(out, "{}", paint.bold(&summary_line(plan)));
    out
}

/// The plan as a pull-request comment of its own (`plan --format markdown`): the marker line,
/// then [`markdown_body`].
pub fn markdown(plan: &Plan) -> String {
    format!("{COMMENT_MARKER}\n{}", markdown_body(plan))
}

/// The plan in Markdown without a marker, for text that carries its own (the sticky comment
/// names its policy directory in one) or needs none (the job summary).
pub fn markdown_body(plan: &Plan) -> String {
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "### tramontane plan for {}\n",
        untrusted::markdown_code(&plan.live.org)
    );
    if s.is_destructive() {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> This plan **deletes {} and replaces {}** resource(s). Review them before merging.\n",
            s.delete, s.replace
        );
    }
    if s.manual > 0 {
        let _ = writeln!(
            out,
            "> [!NOTE]\n> {} manual step(s): the Admin API cannot make these changes; a person must, in the console.\n",
            s.manual
        );
    }
    let _ = writeln!(
        out,
        "| create | update | delete | replace | rotate | manual | unmanaged |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        s.create,
        s.update,
        s.delete,
        s.replace,
        s.rotate,
        s.manual,
        plan.unmanaged.len()
    );
    if plan.changes.is_empty() {
        let _ = writeln!(out, "{}\n", no_changes_line(plan));
    }
    let effects: Vec<String> = plan.changes.iter().flat_map(effect_lines).collect();
    if !effects.is_empty() {
        let _ = writeln!(out, "**Who gains or loses what through the gateway**\n");
        for line in &effects {
            let _ = writeln!(out, "- {}", untrusted::markdown(line));
        }
        out.push('\n');
    }
    for change in &plan.changes {
        let _ = writeln!(
            out,
            "<details><summary><code>{} {}</code> — {} · {}</summary>\n",
            change.action.symbol(),
            untrusted::html(&change.address),
            change.action.as_str(),
            change.enforcement.as_str()
        );
        let _ = writeln!(out, "{}\n", untrusted::markdown_with_code(&change.reason));
        let lines = attribute_lines(change);
        if !lines.is_empty() {
            let _ = writeln!(out, "```diff");
            for line in lines {
                // `diff` highlighting keys on the first column; `~` is neither side.
                let line = match line.strip_prefix('~') {
                    Some(rest) => format!("!{rest}"),
                    None => line,
                };
                let _ = writeln!(out, "{}", untrusted::code_line(&line));
            }
            let _ = writeln!(out, "```");
        }
        let _ = writeln!(out, "</details>\n");
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} unmanaged resource(s), left alone</summary>\n",
            plan.unmanaged.len()
        );
        for item in &plan.unmanaged {
            let _ = writeln!(
                out,
                "- {}: {}",
                untrusted::markdown_code(&item.address),
                untrusted::markdown_with_code(&item.note)
            );
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    if !plan.rotations.is_empty() {
        let _ = writeln!(out, "**Key rotations**\n");
        for rotation in &plan.rotations {
            let _ = writeln!(
                out,
                "- {}: {}",
                untrusted::markdown_code(&rotation.address),
                untrusted::markdown(&rotation_note(rotation))
            );
        }
        out.push('\n');
    }
    if !plan.guards.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **Apply will refuse this plan** unless told otherwise:"
        );
        for guard in &plan.guards {
            let _ = writeln!(
                out,
                "> - {} (lift with: `{}`)",
                untrusted::markdown_with_code(&guard.message),
                guard.flag
            );
        }
        out.push('\n');
    }
    for warning in &plan.warnings {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {}\n",
            untrusted::markdown_with_code(warning)
        );
    }
    let _ = writeln!(out, "{}\n", runtime_line(plan));
    let commit = plan
        .policy
        .commit
        .as_deref()
        .map_or("no commit".into(), |c| {
            untrusted::markdown_code(&c.chars().take(12).collect::<String>())
        });
    let dirty = if plan.policy.dirty {
        " (uncommitted changes)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<sub>{}. Policy {commit}{dirty}; live fingerprint {}; reviewed changes {}.</sub>",
        // The summary ends a sentence of its own; this line adds its period.
        summary_line(plan).trim_end_matches('.'),
        untrusted::markdown_code(short(&plan.live.fingerprint)),
        untrusted::markdown_code(short(&plan.review_digest()))
    );
    out
}

/// Where one rotation stands, in a sentence.
fn rotation_note(rotation: &Rotation) -> String {
    let at = |time: &Option<String>| time.clone().unwrap_or_else(|| "an unknown time".into());
    match rotation.stage {
        RotationStage::Starting => format!(
            "starting: this plan creates and delivers the successor; the old key (created {}) stays valid until {}",
            at(&rotation.predecessor_created),
            at(&rotation.retire_after)
        ),
        RotationStage::Overlapping => format!(
            "overlapping: the successor was created {}; the old key (created {}) stays valid until {}, and the first apply after that deletes it",
            at(&rotation.successor_created),
            at(&rotation.predecessor_created),
            at(&rotation.retire_after)
        ),
        RotationStage::Finishing => format!(
            "finishing: the overlap ended {}, so this plan deletes the old key (created {})",
            at(&rotation.retire_after),
            at(&rotation.predecessor_created)
        ),
    }
}

/// A plan with nothing to change. It says the organization matches the policy only when it
/// does: objects the policy does not name, or a warning, are not a match.
fn no_changes_line(plan: &Plan) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut left = Vec::new();
    if !plan.unmanaged.is_empty() {
        left.push(count(plan.unmanaged.len(), "unmanaged object"));
    }
    let warnings = plan.warnings.len() + plan.guards.len();
    if warnings > 0 {
        left.push(count(warnings, "warning"));
    }
    if left.is_empty() {
        "No changes. The organization matches the policy.".into()
    } else {
        format!("No changes to apply, but see {}.", left.join(" and "))
    }
}

fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    if s.total() == 0 {
        return no_changes_line(plan);
    }
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to delete, {} to replace, {} to rotate",
        s.create, s.update, s.delete, s.replace, s.rotate
    );
    if s.manual > 0 {
        let _ = write!(
            line,
            "; {} manual step{}",
            s.manual,
            if s.manual == 1 { "" } else { "s" }
        );
    }
    line.push('.');
    line
}

fn runtime_line(plan: &Plan) -> String {
    let runtime = &plan.runtime;
    let mut parts = vec![
        format!("{} access profile(s)", runtime.roles.len()),
        format!("{} team role(s)", runtime.teams.len()),
        format!(
            "the model lists and request rates of {} workspace(s)",
            runtime.workspaces.len()
        ),
    ];
    let gateway_keys = runtime.effective.gateway_keys.len();
    if gateway_keys > 0 {
        parts.push(format!("{gateway_keys} gateway key(s)"));
    }
    let workloads = runtime.effective.workloads.len();
    if workloads > 0 {
        parts.push(format!("{workloads} workload(s)"));
    }
    let last = parts.pop().unwrap_or_default();
    format!(
        "Runtime: {} and {last} are enforced by the gateway, not the platform; they travel in the plan's `runtime` section.",
        parts.join(", ")
    )
}

/// Who gains or loses what through a runtime change, a sentence a line; none for others.
fn effect_lines(change: &Change) -> Vec<String> {
    change
        .access_effect()
        .map(|effect| effect.summary)
        .unwrap_or_default()
}

fn short(fingerprint: &str) -> &str {
    let end = fingerprint
        .char_indices()
        .nth(19)
        .map_or(fingerprint.len(), |(i, _)| i);
    &fingerprint[..end]
}

/// One line per attribute (per entry, for maps and lists), marked `+`, `-` or `~`.
fn attribute_lines(change: &Change) -> Vec<String> {
    let mut lines = Vec::new();
    for attribute in change.changed_attributes() {
        let name = attribute.name.as_str();
        // A gateway key's digest fingerprint is shown only as whether it changed.
        if matches!(change.spec, ChangeSpec::GatewayKey { .. }) && name == "fingerprint" {
            if change.action == Action::Update && attribute.before != attribute.after {
                lines.push("~ secret: re-issued (a new digest)".to_owned());
            }
            continue;
        }
        match (attribute.before.as_ref(), attribute.after.as_ref()) {
            (Some(Value::Object(old)), Some(Value::Object(new)))
                if change.action == Action::Update =>
            {
                lines.push(format!("~ {name}:"));
                for (key, value) in new {
                    match old.get(key) {
                        None => lines.push(format!("+     {key}: {}", show(value))),
                        Some(previous) if previous != value => {
                            lines.push(format!("~     {key}: {} → {}", show(previous), show(value)))
                        }
                        Some(_) => {}
                    }
                }
                for (key, value) in old {
                    if !new.contains_key(key) {
                        lines.push(format!("-     {key}: {}", show(value)));
                    }
                }
            }
            (Some(Value::Array(old)), Some(Value::Array(new)))
                if change.action == Action::Update =>
            {
                lines.push(format!("~ {name}:"));
                for value in new.iter().filter(|v| !old.contains(v)) {
                    lines.push(format!("+     {}", show(value)));
                }
                for value in old.iter().filter(|v| !new.contains(v)) {
                    lines.push(format!("-     {}", show(value)));
                }
            }
            (Some(Value::String(old)), Some(Value::String(new)))
                if old.contains('\n') || new.contains('\n') =>
            {
                lines.push(format!("~ {name}:"));
                let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str());
                for op in diff.iter_all_changes() {
                    let sign = match op.tag() {
                        similar::ChangeTag::Delete => '-',
                        similar::ChangeTag::Insert => '+',
                        similar::ChangeTag::Equal => ' ',
                    };
                    lines.push(format!("{sign}     {}", op.value().trim_end_matches('\n')));
                }
            }
            (Some(old), Some(new)) if old != new => {
                lines.push(format!("~ {name}: {} → {}", show(old), show(new)))
            }
            (Some(old), Some(_)) => lines.push(format!("  {name}: {}", show(old))),
            (None, Some(new)) => lines.push(format!("+ {name}: {}", show(new))),
            (Some(old), None) => lines.push(format!("- {name}: {}", show(old))),
            (None, None) => {}
        }
    }
    lines
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ChangeSpec;
    use crate::plan::{Kind, Unmanaged};

    fn member(email: &str) -> Unmanaged {
        Unmanaged {
            address: format!("member.{email}"),
            kind: Kind::Member,
            note: "not in the policy".into(),
        }
    }

    #[test]
    fn no_changes_says_the_org_matches_only_when_it_does() {
        let mut plan = Plan::of_changes("sandbox:demo", Vec::new());
        let matches = "No changes. The organization matches the policy.";
        assert!(human(&plan, false).ends_with(&format!("{matches}\n")));
        assert!(markdown(&plan).contains(matches));

        plan.unmanaged = vec![member("a@x.example"), member("b@x.example")];
        plan.warnings = vec!["`prune` is off for members".into()];
        for text in [human(&plan, false), markdown(&plan)] {
            assert!(!text.contains("matches the policy"), "{text}");
            assert!(
                text.contains("No changes to apply, but see 2 unmanaged objects and 1 warning."),
                "{text}"
            );
        }

        plan.warnings.clear();
        plan.unmanaged.truncate(1);
        assert!(
            human(&plan, false).ends_with("No changes to apply, but see 1 unmanaged object.\n")
        );
    }

    fn gateway_key_plan() -> Plan {
        use crate::model::Holder;
        use crate::runtime::{GatewayKeyAccess, Limits, Models};
        let key = |holder: &str, fingerprint: &str, models: &[&str]| GatewayKeyAccess {
            holder: Holder::parse(holder),
            workspace: "prod".into(),
            expires: jiff::civil::date(2027, 12, 31),
            fingerprint: fingerprint.into(),
            limits: Some(Limits {
                models: Models::Only(models.iter().map(|m| m.to_string()).collect()),
                rpm: Some(30),
                workspace_rpm: None,
                max_tokens_per_request: None,
                daily_token_budget: None,
                spend_limit: None,
                spend_guards: Vec::new(),
            }),
        };
        let change = Change::new(
            "runtime.gateway_key.ab12cd34",
            "the policy changes what this gateway key lets its holder do",
            ChangeSpec::GatewayKey {
                id: "ab12cd34".into(),
                before: Some(key(
                    "ops@acme.example",
                    "0011223344556677",
                    &["large", "small"],
                )),
                after: Some(key("ops@acme.example", "8899aabbccddeeff", &["small"])),
            },
        );
        Plan::of_changes("sandbox:demo", vec![change])
    }

    #[test]
    fn a_gateway_key_change_for_people_and_for_review() {
        let plan = gateway_key_plan();
        let human = human(&plan, false);
        assert!(!human.contains("8899aabb"), "{human}");
        insta::assert_snapshot!(human, @r#"
        Planned against sandbox:demo (fingerprint ).

        ~ runtime.gateway_key.ab12cd34  update · runtime
            # the policy changes what this gateway key lets its holder do
            » gateway key tmt_ab12cd34_… (holder ops@acme.example) re-issued: the key it had stops working, the new one works
            » gateway key tmt_ab12cd34_… (holder ops@acme.example) loses large in workspace prod
            ~ secret: re-issued (a new digest)
            ~ limits:
            ~     models: ["large", "small"] → ["small"]

        Runtime: 0 access profile(s), 0 team role(s) and the model lists and request rates of 0 workspace(s) are enforced by the gateway, not the platform; they travel in the plan's `runtime` section.
        Plan: 0 to create, 1 to update, 0 to delete, 0 to replace, 0 to rotate.
        "#);
        let markdown = markdown(&plan);
        assert!(!markdown.contains("8899aabb"), "{markdown}");
        insta::assert_snapshot!(markdown, @r#"
        <!-- tramontane:plan -->
        ### tramontane plan for `sandbox:demo`

        | create | update | delete | replace | rotate | manual | unmanaged |
        |---:|---:|---:|---:|---:|---:|---:|
        | 0 | 1 | 0 | 0 | 0 | 0 | 0 |

        **Who gains or loses what through the gateway**

        - gateway key tmt\_ab12cd34\_… (holder ops@acme.example) re-issued: the key it had stops working, the new one works
        - gateway key tmt\_ab12cd34\_… (holder ops@acme.example) loses large in workspace prod

        <details><summary><code>~ runtime.gateway_key.ab12cd34</code> — update · runtime</summary>

        the policy changes what this gateway key lets its holder do

        ```diff
        ! secret: re-issued (a new digest)
        ! limits:
        !     models: ["large", "small"] → ["small"]
        ```
        </details>

        Runtime: 0 access profile(s), 0 team role(s) and the model lists and request rates of 0 workspace(s) are enforced by the gateway, not the platform; they travel in the plan's `runtime` section.

        <sub>Plan: 0 to create, 1 to update, 0 to delete, 0 to replace, 0 to rotate. Policy no commit; live fingerprint <code></code>; reviewed changes `sha256:b50be91494dc`.</sub>
        "#);
    }

    #[test]
    fn mentions_in_policy_text_do_not_notify_in_the_comment() {
        let mut plan = Plan::of_changes("sandbox:demo", Vec::new());
        plan.unmanaged = vec![Unmanaged {
            address: "team.ops".into(),
            kind: Kind::Team,
            note: "cc @acme/platform *now*".into(),
        }];
        let markdown = markdown(&plan);
        assert!(
            markdown.contains("cc @\u{200D}acme/platform \\*now\\*"),
            "{markdown}"
        );
    }
}
