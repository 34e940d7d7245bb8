//! The organization's own settings: its monthly spend limit.

use super::Planner;
use crate::model::Budget;
use crate::plan::ChangeSpec;
use crate::plan::change::SpendLimitSide;

impl Planner<'_> {
    pub(super) fn organization(&mut self) {
        let Some(desired) = self.input.desired.organization.spend_limit else {
            return;
        };
        // The API takes the organization's budget in whole units: this is where it is
        // rounded, once.
        let desired = Budget::of_organization(desired);
        let live = self.input.live.spend_limit.map(Budget::of);
        let before = SpendLimitSide { spend_limit: live };
        let after = SpendLimitSide {
            spend_limit: Some(desired),
        };
        let spec = ChangeSpec::OrganizationSpendLimit {
            before: live,
            after: desired,
        };
        self.update("organization".into(), &before, &after, spec);
    }
}
