//! The policy's `audit:` section: the thresholds `tramontane audit` judges keys and budgets
//! by. Every field is optional; an absent one takes the default a platform team would pick.

use serde::{Deserialize, Serialize};

/// Days without use after which a key is reported unused.
pub const DEFAULT_UNUSED_DAYS: u32 = 30;
/// Days after creation after which a key never used is reported.
pub const DEFAULT_NEVER_USED_DAYS: u32 = 30;
/// Days after creation after which a key is reported too old, whatever its expiry.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
/// Days before expiry from which a key is reported expiring, unless the key's own
/// `rotate_before_days` says otherwise.
pub const DEFAULT_ROTATE_BEFORE_DAYS: u32 = 14;
/// Percentages of a monthly limit at which spend is reported.
pub const DEFAULT_BUDGET_THRESHOLDS: [u32; 3] = [50, 80, 95];
/// Days of the audit log read for console changes.
pub const DEFAULT_CONSOLE_CHANGE_DAYS: u32 = 30;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unused_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_used_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_before_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_thresholds: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_change_days: Option<u32>,
    /// The name or id of the admin key apply runs with, as the audit log shows its actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_admin_key: Option<String>,
}

impl AuditSettings {
    pub fn is_default(&self) -> bool {
        *self == AuditSettings::default()
    }

    pub fn unused_days(&self) -> u32 {
        self.unused_days.unwrap_or(DEFAULT_UNUSED_DAYS)
    }

    pub fn never_used_days(&self) -> u32 {
        self.never_used_days.unwrap_or(DEFAULT_NEVER_USED_DAYS)
    }

    pub fn max_age_days(&self) -> u32 {
        self.max_age_days.unwrap_or(DEFAULT_MAX_AGE_DAYS)
    }

    pub fn rotate_before_days(&self) -> u32 {
        self.rotate_before_days
            .unwrap_or(DEFAULT_ROTATE_BEFORE_DAYS)
    }

    pub fn console_change_days(&self) -> u32 {
        self.console_change_days
            .unwrap_or(DEFAULT_CONSOLE_CHANGE_DAYS)
    }

    /// The thresholds, ascending, without repeats.
    pub fn budget_thresholds(&self) -> Vec<u32> {
        let mut thresholds = self
            .budget_thresholds
            .clone()
            .unwrap_or_else(|| DEFAULT_BUDGET_THRESHOLDS.to_vec());
        thresholds.sort_unstable();
        thresholds.dedup();
        thresholds
    }
}
