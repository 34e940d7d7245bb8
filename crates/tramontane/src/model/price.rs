//! What a model costs: its published prices per unit, in one currency, as exact [`Money`].
//!
//! Mistral publishes each price per a denominator (a million tokens, a thousand pages, a
//! minute of audio), so a [`ModelPrices`] holds the price of one denominator and
//! [`ModelPrices::cost`] scales it to a count, rounding up: a spend guard must never count a
//! request as cheaper than its bill.

use serde::{Deserialize, Serialize};

use super::Money;

/// The currencies Mistral publishes prices in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "EUR")]
    Eur,
}

impl Currency {
    pub const ALL: [Currency; 2] = [Currency::Usd, Currency::Eur];

    pub fn as_str(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a currency Mistral prices in")]
pub struct CurrencyError(String);

impl CurrencyError {
    pub fn help(&self) -> &'static str {
        "use `USD` or `EUR`"
    }
}

impl std::str::FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(text: &str) -> Result<Currency, CurrencyError> {
        Currency::ALL
            .into_iter()
            .find(|currency| currency.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| CurrencyError(text.to_owned()))
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a price is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PriceUnit {
    InputTokens,
    OutputTokens,
    /// Prompt tokens served from Mistral's prompt cache.
    CachedInputTokens,
    Pages,
    AnnotatedPages,
    AudioMinutes,
    InputCharacters,
    OutputCharacters,
}

impl PriceUnit {
    pub const ALL: [PriceUnit; 8] = [
        PriceUnit::InputTokens,
        PriceUnit::OutputTokens,
        PriceUnit::CachedInputTokens,
        PriceUnit::Pages,
        PriceUnit::AnnotatedPages,
        PriceUnit::AudioMinutes,
        PriceUnit::InputCharacters,
        PriceUnit::OutputCharacters,
    ];

    /// The unit's name in [`ModelPrices`] and in the policy's `prices`.
    pub const fn key(self) -> &'static str {
        match self {
            PriceUnit::InputTokens => "input_tokens",
            PriceUnit::OutputTokens => "output_tokens",
            PriceUnit::CachedInputTokens => "cached_input_tokens",
            PriceUnit::Pages => "pages",
            PriceUnit::AnnotatedPages => "annotated_pages",
            PriceUnit::AudioMinutes => "audio_minutes",
            PriceUnit::InputCharacters => "input_characters",
            PriceUnit::OutputCharacters => "output_characters",
        }
    }

    /// How many units one published price is for: per million tokens or characters, per
    /// thousand pages, per minute of audio.
    pub const fn per(self) -> u64 {
        match self {
            PriceUnit::InputTokens
            | PriceUnit::OutputTokens
            | PriceUnit::CachedInputTokens
            | PriceUnit::InputCharacters
            | PriceUnit::OutputCharacters => 1_000_000,
            PriceUnit::Pages | PriceUnit::AnnotatedPages => 1_000,
            PriceUnit::AudioMinutes => 1,
        }
    }
}

/// A model's published prices in one currency, each in micro-units (`Money`) per the unit's
/// denominator (tokens and characters: per million; pages: per thousand; audio: per minute).
/// `None` = not published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrices {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Money>,
    /// Published, or 10 % of the input price when only that is (rounded up): see
    /// [`ModelPrices::with_cached_input`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotated_pages: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_minutes: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_characters: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_characters: Option<Money>,
}

/// Tier multipliers, as percents (standard 100, priority 175).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierPrices {
    pub priority_percent: u64,
}

impl TierPrices {
    /// The standard tier is the list price.
    pub const STANDARD_PERCENT: u64 = 100;

    /// A standard-tier amount at the priority tier, rounded up to a micro-unit.
    pub fn priority(&self, standard: Money) -> Money {
        percent_of(standard, self.priority_percent)
    }
}

impl ModelPrices {
    /// The price of one denominator of `unit`, when published.
    pub fn get(&self, unit: PriceUnit) -> Option<Money> {
        *self.slot(unit)
    }

    /// Sets the price of one denominator of `unit`.
    pub fn set(&mut self, unit: PriceUnit, price: Money) {
        *self.slot_mut(unit) = Some(price);
    }

    /// Whether no price at all is published.
    pub fn is_empty(&self) -> bool {
        *self == ModelPrices::default()
    }

    /// Cost of `count` units, rounded UP to a micro-unit (a guard never under-counts); u64
    /// saturating. None when that unit has no price.
    pub fn cost(&self, unit: PriceUnit, count: u64) -> Option<Money> {
        let price = u128::from(self.get(unit)?.micros());
        let per = u128::from(unit.per());
        let micros = (price * u128::from(count)).div_ceil(per);
        Some(Money::from_micros(
            u64::try_from(micros).unwrap_or(u64::MAX),
        ))
    }

    /// These prices with a cached-input price where none is published: `percent` of the input
    /// price, rounded up. Mistral bills cached prompt tokens at a share of the input price.
    pub fn with_cached_input(mut self, percent: u64) -> ModelPrices {
        if self.cached_input_tokens.is_none()
            && let Some(input) = self.input_tokens
        {
            self.cached_input_tokens = Some(percent_of(input, percent));
        }
        self
    }

    /// `overrides`' prices where it has one, these elsewhere.
    pub fn overridden_by(&self, overrides: &ModelPrices) -> ModelPrices {
        let mut merged = self.clone();
        for unit in PriceUnit::ALL {
            if let Some(price) = overrides.get(unit) {
                merged.set(unit, price);
            }
        }
        merged
    }

    fn slot(&self, unit: PriceUnit) -> &Option<Money> {
        match unit {
            PriceUnit::InputTokens => &self.input_tokens,
            PriceUnit::OutputTokens => &self.output_tokens,
            PriceUnit::CachedInputTokens => &self.cached_input_tokens,
            PriceUnit::Pages => &self.pages,
            PriceUnit::AnnotatedPages => &self.annotated_pages,
            PriceUnit::AudioMinutes => &self.audio_minutes,
            PriceUnit::InputCharacters => &self.input_characters,
            PriceUnit::OutputCharacters => &self.output_characters,
        }
    }

    fn slot_mut(&mut self, unit: PriceUnit) -> &mut Option<Money> {
        match unit {
            PriceUnit::InputTokens => &mut self.input_tokens,
            PriceUnit::OutputTokens => &mut self.output_tokens,
            PriceUnit::CachedInputTokens => &mut self.cached_input_tokens,
            PriceUnit::Pages => &mut self.pages,
            PriceUnit::AnnotatedPages => &mut self.annotated_pages,
            PriceUnit::AudioMinutes => &mut self.audio_minutes,
            PriceUnit::InputCharacters => &mut self.input_characters,
            PriceUnit::OutputCharacters => &mut self.output_characters,
        }
    }
}

/// `percent` % of an amount, rounded up to a micro-unit, saturating.
fn percent_of(amount: Money, percent: u64) -> Money {
    let micros = (u128::from(amount.micros()) * u128::from(percent)).div_ceil(100);
    Money::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    #[test]
    fn cost_scales_to_the_denominator_and_rounds_up() {
        let prices = ModelPrices {
            input_tokens: Some(money("0.15")),
            pages: Some(money("4")),
            audio_minutes: Some(money("0.003")),
            ..ModelPrices::default()
        };
        // 0.15 per million: one token costs 0.00000015, which rounds up to a micro-unit.
        assert_eq!(
            prices.cost(PriceUnit::InputTokens, 1),
            Some(Money::from_micros(1))
        );
        assert_eq!(
            prices.cost(PriceUnit::InputTokens, 1_000_000),
            Some(money("0.15"))
        );
        assert_eq!(
            prices.cost(PriceUnit::InputTokens, 1_000_001),
            Some(Money::from_micros(150_001))
        );
        assert_eq!(prices.cost(PriceUnit::Pages, 3), Some(money("0.012")));
        assert_eq!(
            prices.cost(PriceUnit::AudioMinutes, 2),
            Some(money("0.006"))
        );
        assert_eq!(prices.cost(PriceUnit::InputTokens, 0), Some(Money::ZERO));
        assert_eq!(prices.cost(PriceUnit::OutputTokens, 10), None);
        assert_eq!(
            prices.cost(PriceUnit::AudioMinutes, u64::MAX),
            Some(Money::from_micros(u64::MAX))
        );
    }

    #[test]
    fn cached_input_defaults_to_a_tenth_of_input_rounded_up() {
        let prices = ModelPrices {
            input_tokens: Some(Money::from_micros(150_001)),
            ..ModelPrices::default()
        }
        .with_cached_input(10);
        assert_eq!(prices.cached_input_tokens, Some(Money::from_micros(15_001)));
        let published = ModelPrices {
            input_tokens: Some(money("1.4")),
            cached_input_tokens: Some(money("0.14")),
            ..ModelPrices::default()
        };
        assert_eq!(published.clone().with_cached_input(50), published);
        assert_eq!(
            ModelPrices::default().with_cached_input(10),
            ModelPrices::default()
        );
    }

    #[test]
    fn priority_is_a_percent_of_standard_rounded_up() {
        let tiers = TierPrices {
            priority_percent: 175,
        };
        assert_eq!(tiers.priority(money("7.5")), money("13.125"));
        assert_eq!(tiers.priority(Money::from_micros(1)), Money::from_micros(2));
    }

    #[test]
    fn currencies_parse_and_print() {
        assert_eq!("USD".parse::<Currency>(), Ok(Currency::Usd));
        assert_eq!("eur".parse::<Currency>(), Ok(Currency::Eur));
        assert!("GBP".parse::<Currency>().is_err());
        assert_eq!(Currency::Eur.to_string(), "EUR");
    }

    #[test]
    fn unit_keys_are_the_field_names() {
        let prices = ModelPrices {
            pages: Some(money("1")),
            ..ModelPrices::default()
        };
        let json = serde_json::to_value(&prices).unwrap();
        assert_eq!(json[PriceUnit::Pages.key()], 1);
        for unit in PriceUnit::ALL {
            let mut one = ModelPrices::default();
            one.set(unit, money("2"));
            let json = serde_json::to_value(&one).unwrap();
            assert_eq!(json.as_object().unwrap().keys().next().unwrap(), unit.key());
        }
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let list = ModelPrices {
            input_tokens: Some(money("1")),
            output_tokens: Some(money("2")),
            ..ModelPrices::default()
        };
        let negotiated = ModelPrices {
            output_tokens: Some(money("1.5")),
            ..ModelPrices::default()
        };
        let merged = list.overridden_by(&negotiated);
        assert_eq!(merged.input_tokens, Some(money("1")));
        assert_eq!(merged.output_tokens, Some(money("1.5")));
    }
}
