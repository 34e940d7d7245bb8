//! The platform's spend limits: amounts of the billing currency exact to the cent, as the
//! Admin API keeps them. (The gateway's spend guards and costs are finer: [`super::Money`],
//! in millionths.)
//!
//! Policies and the Admin API speak in floating-point amounts; everything downstream of
//! them (the plan, apply, the providers' writes, effective access) speaks in [`Cents`].
//! Floats become money in exactly one place, [`Cents::from_amount`] and its whole-unit
//! sibling, so an amount is rounded once and compared exactly ever after.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{SpendLimit, Unlimited};

/// An amount in hundredths of the billing currency's unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents {
    cents: i64,
}

/// The largest amount a float turns into: far beyond any budget, and exact in an `f64`.
const MAX_CENTS: f64 = 9.0e15;

impl Cents {
    pub const ZERO: Cents = Cents { cents: 0 };

    /// A whole number of units.
    pub const fn units(units: i64) -> Cents {
        Cents {
            cents: units.saturating_mul(100),
        }
    }

    /// An amount as policies and the API write it, rounded to the cent (half away from
    /// zero). Not-a-number is zero; amounts beyond any budget saturate.
    pub fn from_amount(amount: f64) -> Cents {
        Cents {
            cents: round_to(amount, 100.0),
        }
    }

    /// An amount rounded to whole units, for what the Admin API takes in whole units only
    /// (the organization's monthly limit).
    pub fn from_amount_in_units(amount: f64) -> Cents {
        Cents {
            cents: round_to(amount, 1.0).saturating_mul(100),
        }
    }

    /// The amount in whole units, when it is one.
    pub fn whole_units(self) -> Option<i64> {
        (self.cents % 100 == 0).then_some(self.cents / 100)
    }

    /// The amount as a float, for sums shown to people and JSON that has always been one.
    pub fn as_f64(self) -> f64 {
        self.cents as f64 / 100.0
    }
}

/// The one rounding of a float into a multiple of `1 / per_unit` units, in that many parts.
fn round_to(amount: f64, per_unit: f64) -> i64 {
    if amount.is_nan() {
        return 0;
    }
    let scaled = (amount * per_unit).round();
    scaled.clamp(-MAX_CENTS, MAX_CENTS) as i64
}

impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, other: Cents) -> Cents {
        Cents {
            cents: self.cents.saturating_add(other.cents),
        }
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents::ZERO, |sum, amount| sum + amount)
    }
}

impl std::fmt::Display for Cents {
    /// `500`, `25.5`, `19.99`: whole amounts without decimals, others without trailing zeros.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let cents = self.cents.unsigned_abs();
        let (units, hundredths) = (cents / 100, cents % 100);
        match hundredths {
            0 => write!(f, "{sign}{units}"),
            h if h % 10 == 0 => write!(f, "{sign}{units}.{}", h / 10),
            h => write!(f, "{sign}{units}.{h:02}"),
        }
    }
}

impl Serialize for Cents {
    /// A whole amount as an integer (`500`, not `500.0`), any other as a decimal number.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.whole_units() {
            Some(units) => serializer.serialize_i64(units),
            None => serializer.serialize_f64(self.as_f64()),
        }
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cents, D::Error> {
        f64::deserialize(deserializer).map(Cents::from_amount)
    }
}

/// A monthly spend limit as the plan, apply and effective access use it: an exact amount,
/// or none at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Budget {
    Monthly(Cents),
    Unlimited(Unlimited),
}

impl Budget {
    pub const UNLIMITED: Budget = Budget::Unlimited(Unlimited::Unlimited);

    /// A limit as a policy or the API states it, to the cent.
    pub fn of(limit: SpendLimit) -> Budget {
        match limit {
            SpendLimit::Monthly(amount) => Budget::Monthly(Cents::from_amount(amount)),
            SpendLimit::Unlimited(_) => Budget::UNLIMITED,
        }
    }

    /// A limit the Admin API takes in whole units only: the organization's.
    pub fn of_organization(limit: SpendLimit) -> Budget {
        match limit {
            SpendLimit::Monthly(amount) => Budget::Monthly(Cents::from_amount_in_units(amount)),
            SpendLimit::Unlimited(_) => Budget::UNLIMITED,
        }
    }

    pub fn monthly(self) -> Option<Cents> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_rounded_once_to_the_cent_and_compared_exactly() {
        assert_eq!(Cents::from_amount(25.5), Cents::from_amount(25.499_999_9));
        assert_eq!(Cents::from_amount(0.1 + 0.2), Cents::from_amount(0.3));
        assert_eq!(Cents::from_amount(19.994).to_string(), "19.99");
        assert_eq!(Cents::from_amount(25.5).to_string(), "25.5");
        assert_eq!(Cents::from_amount(500.0).to_string(), "500");
        assert_eq!(Cents::from_amount(-2.5).to_string(), "-2.5");
        assert_eq!(Cents::from_amount(f64::NAN), Cents::ZERO);
        assert_eq!(
            Cents::from_amount_in_units(2499.5).whole_units(),
            Some(2500)
        );
        assert_eq!(Cents::from_amount(2499.5).whole_units(), None);
    }

    #[test]
    fn a_budget_reads_and_writes_as_plans_show_it() {
        let whole = serde_json::to_value(Budget::Monthly(Cents::units(500))).unwrap();
        assert_eq!(whole.to_string(), "500");
        let part = serde_json::to_value(Budget::Monthly(Cents::from_amount(25.5))).unwrap();
        assert_eq!(part.to_string(), "25.5");
        assert_eq!(
            serde_json::to_value(Budget::UNLIMITED).unwrap(),
            "unlimited"
        );
        let read: Budget = serde_json::from_str("25.50").unwrap();
        assert_eq!(read, Budget::Monthly(Cents::from_amount(25.5)));
        let read: Budget = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(read, Budget::UNLIMITED);
        assert_eq!(
            Budget::of_organization(SpendLimit::Monthly(1999.6)),
            Budget::Monthly(Cents::units(2000))
        );
    }
}
