//! Amounts of the billing currency, held exactly as integer micro-units: the one money type
//! of tramontane, for the platform's spend limits and the gateway's spend guards and costs.
//!
//! Budgets are added up over thousands of requests: floats would drift and compare wrongly at
//! the limit, so an amount is parsed from its decimal text straight into millionths of the
//! billing currency and never passes through binary floating point on the way.
//!
//! Two doors lead in, one per precision:
//! - [`Money::parse`] (and deserializing a [`Money`]): the gateway's amounts, exact to a
//!   millionth; more decimals are an error, never rounded away.
//! - [`Money::from_amount`] and [`Money::from_amount_in_units`]: the platform's amounts, which
//!   the Admin API and the policy's `spend_limit` write as floats and the platform keeps to the
//!   cent (the organization's limit to the whole unit). They are rounded there, once, and
//!   compared exactly ever after; [`super::Budget`] is the only reader that takes this door.

use serde::{Deserialize, Serialize};

/// Micro-units in one unit of the billing currency.
pub const MICROS_PER_UNIT: u64 = 1_000_000;
/// Micro-units in one cent, the platform's precision for spend limits.
pub const MICROS_PER_CENT: u64 = MICROS_PER_UNIT / 100;
/// Decimals an amount may have: the precision of [`Money`].
pub const MAX_DECIMALS: usize = 6;
/// Largest amount accepted, in whole units. Keeps every valid amount at 15 significant digits
/// or fewer, so that a YAML number read through `f64` is still the exact decimal written.
pub const MAX_UNITS: u64 = 1_000_000_000;

/// An amount of the billing currency, in millionths. Never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(u64);

/// Why a decimal text is not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a decimal amount")]
    NotDecimal(String),
    #[error("`{text}` has {decimals} decimals; amounts are exact to {MAX_DECIMALS} (a millionth)")]
    TooPrecise { text: String, decimals: usize },
    #[error("`{0}` is above the largest amount accepted, {MAX_UNITS}")]
    TooLarge(String),
}

impl MoneyError {
    pub fn help(&self) -> &'static str {
        match self {
            MoneyError::NotDecimal(_) => {
                "write the amount as digits with an optional decimal point, such as `25` or `12.50`"
            }
            MoneyError::TooPrecise { .. } => {
                "round the amount to at most 6 decimals, such as `0.000125`"
            }
            MoneyError::TooLarge(_) => "use an amount of at most 1000000000",
        }
    }
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_micros(micros: u64) -> Money {
        Money(micros)
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }

    /// A whole number of units.
    pub const fn units(units: u64) -> Money {
        Money(units.saturating_mul(MICROS_PER_UNIT))
    }

    /// A platform amount as policies and the Admin API write it, rounded to the cent (half
    /// away from zero). Not-a-number and negative amounts are zero; amounts beyond any budget
    /// saturate.
    pub fn from_amount(amount: f64) -> Money {
        Money(round_to(amount, 100.0).saturating_mul(MICROS_PER_CENT))
    }

    /// A platform amount rounded to whole units, for what the Admin API takes in whole units
    /// only (the organization's monthly limit).
    pub fn from_amount_in_units(amount: f64) -> Money {
        Money(round_to(amount, 1.0).saturating_mul(MICROS_PER_UNIT))
    }

    /// The amount in whole units, when it is one, as the Admin API takes it.
    pub fn whole_units(self) -> Option<i64> {
        if self.0.is_multiple_of(MICROS_PER_UNIT) {
            i64::try_from(self.0 / MICROS_PER_UNIT).ok()
        } else {
            None
        }
    }

    /// The amount as a float, for sums shown to people and JSON that has always been one.
    pub fn as_f64(self) -> f64 {
        // Exact below 2^53 micro-units (9 billion units), far beyond any budget.
        self.0 as f64 / MICROS_PER_UNIT as f64
    }

    /// Reads a plain decimal such as `12`, `12.5` or `0.000125`: digits, at most one point,
    /// at most [`MAX_DECIMALS`] decimals. No sign, exponent, separators or spaces.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let not_decimal = || MoneyError::NotDecimal(text.to_owned());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) {
            return Err(not_decimal());
        }
        let fraction = fraction.unwrap_or("");
        if !all_digits(fraction) || (text.ends_with('.')) {
            return Err(not_decimal());
        }
        if fraction.len() > MAX_DECIMALS {
            // Trailing zeros add no precision: `1.5000000` is exactly `1.5`.
            let significant = fraction.trim_end_matches('0');
            if significant.len() > MAX_DECIMALS {
                return Err(MoneyError::TooPrecise {
                    text: text.to_owned(),
                    decimals: significant.len(),
                });
            }
        }
        let whole_digits = whole.trim_start_matches('0');
        if whole_digits.len() > 10 {
            return Err(MoneyError::TooLarge(text.to_owned()));
        }
        let units: u64 = if whole_digits.is_empty() {
            0
        } else {
            whole_digits.parse().map_err(|_| not_decimal())?
        };
        let fraction = fraction.trim_end_matches('0');
        let mut micros_part: u64 = 0;
        for (i, digit) in fraction.bytes().enumerate() {
            micros_part += u64::from(digit - b'0') * 10u64.pow((MAX_DECIMALS - 1 - i) as u32);
        }
        let micros = units * MICROS_PER_UNIT + micros_part;
        if micros > MAX_UNITS * MICROS_PER_UNIT {
            return Err(MoneyError::TooLarge(text.to_owned()));
        }
        Ok(Money(micros))
    }
}

/// The one rounding of a platform float into a multiple of `1 / per_unit` units, in that many
/// parts.
fn round_to(amount: f64, per_unit: f64) -> u64 {
    if amount.is_nan() || amount <= 0.0 {
        return 0;
    }
    // Saturates at `u64::MAX`, which `Money` then saturates again in micro-units.
    (amount * per_unit).round() as u64
}

impl std::ops::Add for Money {
    type Output = Money;
    /// Saturating: a sum of budgets beyond `u64` micro-units is beyond any budget.
    fn add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |sum, amount| sum + amount)
    }
}

impl std::str::FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Money, MoneyError> {
        Money::parse(text)
    }
}

impl std::fmt::Display for Money {
    /// The shortest exact decimal: `25`, `12.5`, `0.000125`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = self.0 / MICROS_PER_UNIT;
        let fraction = self.0 % MICROS_PER_UNIT;
        if fraction == 0 {
            return write!(f, "{units}");
        }
        let digits = format!("{fraction:06}");
        write!(f, "{units}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Money {
    // A JSON number, as the policy writes it. Every valid amount has at most 15 significant
    // digits, which an f64 carries exactly from decimal and back.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(MICROS_PER_UNIT) {
            serializer.serialize_u64(self.0 / MICROS_PER_UNIT)
        } else {
            let shown = self.to_string();
            serializer.serialize_f64(shown.parse().map_err(serde::ser::Error::custom)?)
        }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Money;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative currency amount with at most 6 decimals")
            }

            fn visit_u64<E: serde::de::Error>(self, units: u64) -> Result<Money, E> {
                Money::parse(&units.to_string()).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, units: i64) -> Result<Money, E> {
                u64::try_from(units)
                    .map_err(|_| E::custom("an amount cannot be negative"))
                    .and_then(|units| self.visit_u64(units))
            }

            // A YAML number arrives as f64. Rust prints an f64 as the shortest decimal that
            // reads back as the same f64, which for amounts within MAX_UNITS and 6 decimals is
            // the decimal that was written. A longer literal cannot be told apart from its
            // rounding here: the policy loader checks the source text for that.
            fn visit_f64<E: serde::de::Error>(self, amount: f64) -> Result<Money, E> {
                if !amount.is_finite() || amount < 0.0 {
                    return Err(E::custom("an amount must be a non-negative number"));
                }
                let text = format!("{amount}");
                match Money::parse(&text) {
                    Err(MoneyError::TooPrecise { .. }) => {
                        // Kept so the rest of the entity still loads; the source-text check
                        // reports it with its position.
                        let micros = (amount * MICROS_PER_UNIT as f64).round();
                        Ok(Money(micros as u64))
                    }
                    other => other.map_err(E::custom),
                }
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Money, E> {
                Money::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Most a key, team or workspace may spend through the gateway per hour, day and calendar
/// month (UTC). Each window is optional; the schema requires at least one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendGuard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<Money>,
}

impl SpendGuard {
    /// The windows that are set, by their policy name.
    pub fn windows(&self) -> impl Iterator<Item = (&'static str, Money)> {
        [
            ("hour", self.hour),
            ("day", self.day),
            ("month", self.month),
        ]
        .into_iter()
        .filter_map(|(name, amount)| amount.map(|amount| (name, amount)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(Money::parse("25").unwrap().micros(), 25_000_000);
        assert_eq!(Money::parse("12.5").unwrap().micros(), 12_500_000);
        assert_eq!(Money::parse("0.000125").unwrap().micros(), 125);
        assert_eq!(Money::parse("0.1").unwrap().micros(), 100_000);
        assert_eq!(Money::parse("1.5000000").unwrap().micros(), 1_500_000);
        assert_eq!(Money::parse("007").unwrap().micros(), 7_000_000);
        assert_eq!(
            Money::parse("1000000000").unwrap().micros(),
            MAX_UNITS * MICROS_PER_UNIT
        );
    }

    #[test]
    fn anything_but_a_plain_decimal_is_refused() {
        for text in [
            "", ".5", "5.", "-1", "+1", "1e3", "1,5", " 1", "1 ", "1.2.3", "ten",
        ] {
            assert!(
                matches!(Money::parse(text), Err(MoneyError::NotDecimal(_))),
                "{text:?}"
            );
        }
        assert_eq!(
            Money::parse("0.0000001"),
            Err(MoneyError::TooPrecise {
                text: "0.0000001".into(),
                decimals: 7
            })
        );
        assert!(matches!(
            Money::parse("1000000000.000001"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Money::parse("99999999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn yaml_numbers_decode_to_the_decimal_written() {
        let guard: SpendGuard =
            serde_json::from_value(serde_json::json!({"hour": 0.1, "day": 2, "month": 1234.56}))
                .unwrap();
        assert_eq!(guard.hour, Some(Money::from_micros(100_000)));
        assert_eq!(guard.day, Some(Money::from_micros(2_000_000)));
        assert_eq!(guard.month, Some(Money::from_micros(1_234_560_000)));
        assert_eq!(
            serde_json::to_value(guard).unwrap(),
            serde_json::json!({"hour": 0.1, "day": 2, "month": 1234.56})
        );
        assert!(serde_json::from_value::<Money>(serde_json::json!(-1)).is_err());
    }

    #[test]
    fn platform_floats_are_rounded_once_to_the_cent_and_compared_exactly() {
        assert_eq!(Money::from_amount(25.5), Money::from_amount(25.499_999_9));
        assert_eq!(Money::from_amount(0.1 + 0.2), Money::from_amount(0.3));
        assert_eq!(Money::from_amount(19.994).to_string(), "19.99");
        assert_eq!(Money::from_amount(19.995).to_string(), "20");
        assert_eq!(Money::from_amount(25.5).to_string(), "25.5");
        assert_eq!(Money::from_amount(500.0), Money::units(500));
        assert_eq!(Money::from_amount(f64::NAN), Money::ZERO);
        assert_eq!(Money::from_amount(-2.5), Money::ZERO);
        assert_eq!(Money::from_amount(f64::INFINITY).micros(), u64::MAX);
        assert_eq!(
            Money::from_amount_in_units(2499.5).whole_units(),
            Some(2500)
        );
        assert_eq!(Money::from_amount(2499.5).whole_units(), None);
        assert_eq!(Money::from_amount(19.99).as_f64(), 19.99);
        let sum: Money = [Money::from_amount(0.1), Money::from_amount(0.2)]
            .into_iter()
            .sum();
        assert_eq!(sum, Money::from_amount(0.3));
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(micros in 0..=MAX_UNITS * MICROS_PER_UNIT) {
            let money = Money::from_micros(micros);
            prop_assert_eq!(Money::parse(&money.to_string()), Ok(money));
            // And through the f64 a YAML number becomes.
            let through_float: Money =
                serde_json::from_value(serde_json::to_value(money).unwrap()).unwrap();
            prop_assert_eq!(through_float, money);
        }
    }
}
