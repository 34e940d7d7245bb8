//! The organization's monthly spend limit, in whole amounts as the API takes them.

use crate::model::SpendLimit;
use crate::provider::Outcome;
use crate::provider::sandbox::{OrgSpendLimit, Result, SandboxError, SandboxOrg};

impl SandboxOrg {
    pub(super) fn set_spend_limit(&mut self, limit: SpendLimit) -> Result<Outcome> {
        self.spend_limit = match limit {
            SpendLimit::Monthly(amount) => {
                if amount < 0.0 {
                    return Err(SandboxError::Unprocessable(
                        "`amount` must not be negative".into(),
                    ));
                }
                // The API takes whole amounts.
                OrgSpendLimit {
                    amount: amount.round() as i64,
                    no_monthly_limit: false,
                }
            }
            SpendLimit::Unlimited(_) => OrgSpendLimit {
                amount: 0,
                no_monthly_limit: true,
            },
        };
        Ok(Outcome::Done)
    }
}
