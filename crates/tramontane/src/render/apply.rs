//! What an apply did, change by change, for people.

use std::fmt::Write;

use super::untrusted::terminal;
use crate::apply::{ApplyReport, Status};
use crate::plan::{Plan, RotationStage};

/// Every change with its result, where new secrets went, what is left to a person and
/// where rotations stand, then a summary line.
pub fn report(plan: &Plan, report: &ApplyReport) -> String {
    let mut out = String::new();
    for (change, result) in plan.changes.iter().zip(&report.changes) {
        if matches!(result.status, Status::Manual) {
            continue;
        }
        let _ = write!(
            out,
            "{} {}: {}",
            change.action.symbol(),
            terminal(&change.address),
            result.status.as_str()
        );
        if let Some(sink) = &result.delivered_to {
            let _ = write!(out, "; new secret delivered to {}", terminal(sink));
        }
        if let Some(note) = &result.note {
            let _ = write!(out, "; {}", terminal(note));
        }
        out.push('\n');
    }

    let manual: Vec<_> = plan
        .changes
        .iter()
        .filter(|change| change.action == crate::plan::Action::Manual)
        .collect();
    if !manual.is_empty() {
        let _ = writeln!(out, "\nLeft to a person, in the console:");
        for change in manual {
            let _ = writeln!(
                out,
                "  ! {}: {}",
                terminal(&change.address),
                terminal(&change.reason)
            );
        }
    }

    let succeeded = report.succeeded();
    let rotations: Vec<_> = plan
        .rotations
        .iter()
        .filter(|rotation| rotation.stage != RotationStage::Finishing)
        .collect();
    if succeeded && !rotations.is_empty() {
        let _ = writeln!(out, "\nRotations under way:");
        for rotation in rotations {
            let until = rotation
                .retire_after
                .as_deref()
                .unwrap_or("its overlap ends");
            let _ = writeln!(
                out,
                "  {}: the old key stays valid until {}; the first apply after that deletes it",
                terminal(&rotation.address),
                terminal(until)
            );
        }
    }

    let done = report.count(|s| matches!(s, Status::Done));
    let failed = report.count(|s| matches!(s, Status::Failed(_)));
    let not_attempted = report.count(|s| matches!(s, Status::NotAttempted));
    if failed == 0 && not_attempted == 0 {
        let _ = writeln!(
            out,
            "\nApply complete: {done} change{} applied.",
            if done == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            out,
            "\nApply stopped: {done} done, {failed} failed, {not_attempted} not attempted."
        );
    }
    out
}
