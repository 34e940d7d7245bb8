//! The platform's spend limits: a monthly amount or none, as the plan, apply and effective
//! access use them.
//!
//! Policies and the Admin API speak in floating-point amounts; everything downstream of
//! them (the plan, apply, the providers' writes, effective access) speaks in [`Money`],
//! the same exact micro-units the gateway counts in. Floats become money in exactly one
//! place, [`Budget::of`] and [`Budget::of_organization`] (and reading a plan), which round to
//! the platform's precision through [`Money::from_amount`], so an amount is rounded once and
//! compared exactly ever after.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Money, SpendLimit, Unlimited};

/// A monthly spend limit as the plan, apply and effective access use it: an exact amount,
/// or none at all.
///
/// Written as a JSON number (an integer when whole) or `"unlimited"`; read back to the cent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Budget {
    Monthly(Money),
    Unlimited(Unlimited),
}

impl Budget {
    pub const UNLIMITED: Budget = Budget::Unlimited(Unlimited::Unlimited);

    /// A limit as a policy or the API states it, to the cent.
    pub fn of(limit: SpendLimit) -> Budget {
        match limit {
            SpendLimit::Monthly(amount) => Budget::Monthly(Money::from_amount(amount)),
            SpendLimit::Unlimited(_) => Budget::UNLIMITED,
        }
    }

    /// A limit the Admin API takes in whole units only: the organization's.
    pub fn of_organization(limit: SpendLimit) -> Budget {
        match limit {
            SpendLimit::Monthly(amount) => Budget::Monthly(Money::from_amount_in_units(amount)),
            SpendLimit::Unlimited(_) => Budget::UNLIMITED,
        }
    }

    pub fn monthly(self) -> Option<Money> {
        match self {
            Budget::Monthly(amount) => Some(amount),
            Budget::Unlimited(_) => None,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Monthly(amount) => amount.fmt(f),
            Budget::Unlimited(_) => f.write_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Budget {
    /// A plan or record states the amount as a float, like the Admin API: it is rounded to
    /// the cent here, not read as an exact gateway amount.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Named as the type it reads, so that a value of neither shape is reported as "did
        // not match any variant of untagged enum Budget", as ever.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Budget {
            Monthly(f64),
            Unlimited(Unlimited),
        }
        Ok(match Budget::deserialize(deserializer)? {
            Budget::Monthly(amount) => Self::Monthly(Money::from_amount(amount)),
            Budget::Unlimited(unlimited) => Self::Unlimited(unlimited),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_reads_and_writes_as_plans_show_it() {
        let whole = serde_json::to_value(Budget::Monthly(Money::units(500))).unwrap();
        assert_eq!(whole.to_string(), "500");
        let part = serde_json::to_value(Budget::Monthly(Money::from_amount(25.5))).unwrap();
        assert_eq!(part.to_string(), "25.5");
        let cents = serde_json::to_value(Budget::Monthly(Money::from_amount(19.99))).unwrap();
        assert_eq!(cents.to_string(), "19.99");
        assert_eq!(
            serde_json::to_value(Budget::UNLIMITED).unwrap(),
            "unlimited"
        );
        let read: Budget = serde_json::from_str("25.50").unwrap();
        assert_eq!(read, Budget::Monthly(Money::from_amount(25.5)));
        let read: Budget = serde_json::from_str("25.499999").unwrap();
        assert_eq!(
            read,
            Budget::Monthly(Money::from_amount(25.5)),
            "to the cent"
        );
        let read: Budget = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(read, Budget::UNLIMITED);
        assert!(serde_json::from_str::<Budget>("\"monthly\"").is_err());
        assert_eq!(
            Budget::of_organization(SpendLimit::Monthly(1999.6)),
            Budget::Monthly(Money::units(2000))
        );
        assert_eq!(
            Budget::of(SpendLimit::Monthly(19.994)),
            Budget::Monthly(Money::from_amount(19.99))
        );
    }
}
