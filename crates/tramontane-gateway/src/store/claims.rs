//! Threshold claims: which replica tells someone that a rule's window reached a share of its
//! limit. Each threshold of each rule fires once per window across every replica, so the
//! store — the one thing replicas share — decides: the first to claim
//! `alert:{rule id}:{window}:{threshold}` delivers, every later claim in the window is
//! refused, and the claim is forgotten when the window ends.

use jiff::Timestamp;

/// One counter to read and the thresholds to claim on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdCheck {
    /// The rule's id.
    pub rule: String,
    /// The rule's store key in its window (a [`super::BudgetLine`]'s `counter`).
    pub counter: String,
    /// The window's name, such as `2026-11-26`.
    pub window: String,
    pub limit: u64,
    pub window_end: Timestamp,
    /// Percentages of `limit`, ascending.
    pub thresholds: Vec<u8>,
}

impl ThresholdCheck {
    /// The claim's name, without the store's prefix.
    pub fn claim_key(&self, threshold: u8) -> String {
        format!("alert:{}:{}:{threshold}", self.rule, self.window)
    }

    /// The thresholds `held` has reached, in ascending order.
    pub fn reached(&self, held: u64) -> impl Iterator<Item = u8> + '_ {
        // In u128 so that no limit and no percentage overflows.
        let held = u128::from(held) * 100;
        let limit = u128::from(self.limit);
        self.thresholds
            .iter()
            .copied()
            .filter(move |&threshold| limit > 0 && held >= u128::from(threshold) * limit)
    }
}

/// A threshold this replica claimed: it alone tells the destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdClaimed {
    /// Which check, by index in what was asked.
    pub check: usize,
    pub threshold: u8,
    /// What the counter held when claimed: settled use and what requests in flight hold
    /// reserved.
    pub held: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(limit: u64) -> ThresholdCheck {
        ThresholdCheck {
            rule: "key:workspace.dev.key.ci:tokens:day".into(),
            counter: "rule:key:workspace.dev.key.ci:tokens:day:2026-11-26".into(),
            window: "2026-11-26".into(),
            limit,
            window_end: "2026-11-27T00:00:00Z".parse().unwrap(),
            thresholds: vec![50, 80, 95],
        }
    }

    #[test]
    fn a_threshold_is_reached_at_its_exact_share_and_not_before() {
        let check = check(1000);
        assert_eq!(check.reached(0).count(), 0);
        assert_eq!(check.reached(499).collect::<Vec<_>>(), Vec::<u8>::new());
        assert_eq!(check.reached(500).collect::<Vec<_>>(), vec![50]);
        assert_eq!(check.reached(949).collect::<Vec<_>>(), vec![50, 80]);
        assert_eq!(check.reached(950).collect::<Vec<_>>(), vec![50, 80, 95]);
        // Past the limit (a settle above its reservation cannot happen, but a lapsed lease
        // can leave more than the limit held): every threshold.
        assert_eq!(check.reached(5000).count(), 3);
        // A limit of zero refuses everything and alerts on nothing.
        assert_eq!(
            super::ThresholdCheck {
                limit: 0,
                ..check.clone()
            }
            .reached(10)
            .count(),
            0
        );
        // Huge limits do not overflow.
        assert_eq!(
            super::ThresholdCheck {
                limit: u64::MAX,
                ..check.clone()
            }
            .reached(u64::MAX / 2 + 1)
            .collect::<Vec<_>>(),
            vec![50]
        );
        assert_eq!(
            check.claim_key(80),
            "alert:key:workspace.dev.key.ci:tokens:day:2026-11-26:80"
        );
    }
}
