//! What a request costs, in integer micro-units of the billing currency, so spend is added
//! up exactly and always rounded up: a guard never under-counts.
//!
//! Prices are Mistral's published list prices from the model records bundled with tramontane
//! (`catalog/mistral-models.json`, with their source and date), joined to the models the
//! policy declares (`models:`, for newer models, fine-tunes and negotiated prices). A model is
//! priced by the dated id a price is published for, found through the model directory (the
//! upstream's live list): an alias the upstream moves to a model without a price has no price,
//! and a request for it under a spend guard is refused, never priced by a guess.

use std::collections::BTreeMap;

use tramontane::model::{Currency, ModelPrices, PriceUnit};
use tramontane::policy::catalog::Catalog;

use crate::models::ModelDirectory;

/// A standard-tier request's share of the list price, in percent.
pub const STANDARD_PERCENT: u64 = 100;
/// What a priority-tier request is billed, in percent of the list price (Mistral's Priority
/// Tier documentation), as the bundled records say.
pub const PRIORITY_PERCENT: u64 = 175;

/// One model's token prices, in micro-units per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenPrices {
    pub input: u64,
    /// `None` for a model that writes nothing (embeddings): it cannot price a completion.
    pub output: Option<u64>,
    /// A prompt token read from the cache.
    pub cached_input: u64,
}

impl TokenPrices {
    /// A model's token prices, when it has an input price.
    pub fn of(prices: &ModelPrices) -> Option<TokenPrices> {
        let input = prices.get(PriceUnit::InputTokens)?.micros();
        Some(TokenPrices {
            input,
            output: prices
                .get(PriceUnit::OutputTokens)
                .map(|money| money.micros()),
            cached_input: prices
                .get(PriceUnit::CachedInputTokens)
                .map_or(input, |money| money.micros()),
        })
    }
}

/// The tokens a request is charged for, by how each is priced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Every prompt token, cached ones included.
    pub prompt: u64,
    /// Of `prompt`, those read from the prompt cache.
    pub cached: u64,
    pub completion: u64,
}

impl TokenCounts {
    pub fn total(self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

impl TokenPrices {
    /// The cost of `counts` at `tier_percent` of the list price, rounded up to a micro-unit;
    /// `None` when a completion is counted and the model has no output price.
    pub fn cost(self, counts: TokenCounts, tier_percent: u64) -> Option<u64> {
        let output = match (self.output, counts.completion) {
            (Some(output), _) => output,
            (None, 0) => 0,
            (None, _) => return None,
        };
        let cached = counts.cached.min(counts.prompt);
        let at_list = (u128::from(counts.prompt - cached) * u128::from(self.input))
            .saturating_add(u128::from(cached) * u128::from(self.cached_input))
            .saturating_add(u128::from(counts.completion) * u128::from(output));
        let scaled = at_list.saturating_mul(u128::from(tier_percent));
        Some(u64::try_from(scaled.div_ceil(100 * 1_000_000)).unwrap_or(u64::MAX))
    }
}

/// The token prices of every priced model, in one currency, by dated id.
#[derive(Clone, Debug)]
pub struct PriceTable {
    pub currency: Currency,
    models: BTreeMap<String, TokenPrices>,
}

impl PriceTable {
    /// The token prices `catalog` publishes in `currency`: the bundled records joined to the
    /// policy's declared models.
    pub fn from_catalog(catalog: &Catalog, currency: Currency) -> PriceTable {
        let models = catalog
            .priced_ids()
            .into_iter()
            .filter_map(|id| {
                let prices = TokenPrices::of(catalog.prices(id, currency)?)?;
                Some((id.to_owned(), prices))
            })
            .collect();
        PriceTable { currency, models }
    }

    /// The bundled records' prices in `currency`, with nothing declared.
    pub fn bundled(currency: Currency) -> PriceTable {
        PriceTable::from_catalog(Catalog::bundled(), currency)
    }

    /// The prices of `model`, found by any of its names: the dearest of the priced ids the
    /// directory says are that model. `None` when none is priced.
    pub fn price(&self, model: &str, directory: &ModelDirectory) -> Option<TokenPrices> {
        self.models
            .iter()
            .filter(|(id, _)| directory.same(id, model))
            .map(|(_, price)| *price)
            .reduce(dearer)
    }

    /// The dearest input and output prices of the table: what an agent's request, whose
    /// model only its answer names, is reserved at.
    pub fn dearest(&self) -> Option<TokenPrices> {
        self.models.values().copied().reduce(dearer)
    }

    /// The models of `names` the table cannot price, each model once (by the first of its
    /// names given).
    pub fn unpriced<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        directory: &ModelDirectory,
    ) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut unpriced: Vec<String> = names
            .into_iter()
            .filter(|name| match directory.group(name) {
                Some(model) => seen.insert(Ok(model)),
                None => seen.insert(Err(name.to_string())),
            })
            .filter(|name| self.price(name, directory).is_none())
            .map(str::to_owned)
            .collect();
        unpriced.sort();
        unpriced
    }
}

/// Each price the dearer of two; an output price where either has one (a model without one
/// writes nothing, so it cannot be the model that wrote a completion).
fn dearer(a: TokenPrices, b: TokenPrices) -> TokenPrices {
    TokenPrices {
        input: a.input.max(b.input),
        output: a.output.max(b.output),
        cached_input: a.cached_input.max(b.cached_input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: TokenPrices = TokenPrices {
        input: 100_000,
        output: Some(300_000),
        cached_input: 10_000,
    };

    fn counts(prompt: u64, cached: u64, completion: u64) -> TokenCounts {
        TokenCounts {
            prompt,
            cached,
            completion,
        }
    }

    #[test]
    fn the_bundled_records_price_current_models_by_alias_and_never_guess() {
        let table = PriceTable::bundled(Currency::Usd);
        let models = ModelDirectory::bundled();
        // Mistral Medium 3.5: 1.50 in, 7.50 out per million (USD).
        assert_eq!(
            table.price("mistral-medium-latest", &models),
            Some(TokenPrices {
                input: 1_500_000,
                output: Some(7_500_000),
                cached_input: 150_000,
            })
        );
        let small = table.price("mistral-small-latest", &models).unwrap();
        assert_eq!((small.input, small.output), (150_000, Some(600_000)));
        let embed = table.price("mistral-embed", &models).unwrap();
        assert_eq!(embed.output, None);
        assert_eq!(table.price("ft:my-model", &models), None);
        assert_eq!(
            table.unpriced(["ft:my-model", "mistral-embed", "ft:my-model"], &models),
            vec!["ft:my-model".to_owned()]
        );
        let euros = PriceTable::bundled(Currency::Eur);
        let medium = euros.price("mistral-medium-latest", &models).unwrap();
        assert_eq!((medium.input, medium.output), (1_250_000, Some(6_400_000)));
    }

    #[test]
    fn costs_round_up_in_micro_units() {
        // 1 token at 0.10 per million is 0.1 micro-units: counted as 1.
        assert_eq!(SMALL.cost(counts(1, 0, 0), STANDARD_PERCENT), Some(1));
        assert_eq!(
            SMALL.cost(counts(1_000_000, 0, 1_000_000), STANDARD_PERCENT),
            Some(400_000)
        );
        assert_eq!(SMALL.cost(counts(0, 0, 0), STANDARD_PERCENT), Some(0));
        let dear = TokenPrices {
            input: u64::MAX,
            output: Some(u64::MAX),
            cached_input: u64::MAX,
        };
        assert_eq!(
            dear.cost(counts(u64::MAX, 0, u64::MAX), PRIORITY_PERCENT),
            Some(u64::MAX)
        );
        let embed = TokenPrices {
            output: None,
            ..SMALL
        };
        assert_eq!(embed.cost(counts(10, 0, 0), STANDARD_PERCENT), Some(1));
        assert_eq!(embed.cost(counts(10, 0, 1), STANDARD_PERCENT), None);
    }

    #[test]
    fn tiers_and_cached_tokens_are_priced() {
        // Priority is 1.75 × list.
        assert_eq!(
            SMALL.cost(counts(1_000_000, 0, 1_000_000), PRIORITY_PERCENT),
            Some(700_000)
        );
        // A million cached prompt tokens at 10 % of 0.10.
        assert_eq!(
            SMALL.cost(counts(1_000_000, 1_000_000, 0), STANDARD_PERCENT),
            Some(10_000)
        );
        // More cached than prompt is read as all cached, never a negative count.
        assert_eq!(
            SMALL.cost(counts(10, 50, 0), STANDARD_PERCENT),
            SMALL.cost(counts(10, 10, 0), STANDARD_PERCENT)
        );
    }

    #[test]
    fn the_dearest_prices_can_price_an_agents_completion() {
        let dearest = PriceTable::bundled(Currency::Usd).dearest().unwrap();
        let medium = PriceTable::bundled(Currency::Usd)
            .price("mistral-medium-latest", &ModelDirectory::bundled())
            .unwrap();
        assert!(dearest.output >= medium.output && dearest.output.is_some());
        assert!(dearest.input >= medium.input);
    }

    #[test]
    fn the_priority_percent_is_the_records_one() {
        assert_eq!(Catalog::bundled().priority_percent(), PRIORITY_PERCENT);
    }
}
