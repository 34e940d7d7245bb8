//! The organization's monthly spend limit, in whole amounts as the API takes them.

use crate::provider::sandbox::{OrgSpendLimit, Result, SandboxError, SandboxOrg};
use crate::provider::{OrganizationLimit, Outcome};

impl SandboxOrg {
    pub(super) fn set_spend_limit(&mut self, limit: OrganizationLimit) -> Result<Outcome> {
        self.spend_limit = match limit {
            OrganizationLimit::Monthly { units } => {
                if units < 0 {
                    return Err(SandboxError::Unprocessable(
                        "`amount` must not be negative".into(),
                    ));
                }
                OrgSpendLimit {
                    amount: units,
                    no_monthly_limit: false,
                }
            }
            OrganizationLimit::Unlimited => OrgSpendLimit {
                amount: 0,
                no_monthly_limit: true,
            },
        };
        Ok(Outcome::Done)
    }
}
