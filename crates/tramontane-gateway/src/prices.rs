//! What a request costs, in integer micro-units of the billing currency, so spend is added
//! up exactly and always rounded up: a guard never under-counts.
//!
//! Prices are per model and per million tokens; a model is priced by the dated id Mistral
//! publishes a price for, found through the model directory (the upstream's live list), so
//! an alias the upstream moves to a model without a published price has no price — and a
//! request for it under a spend guard is refused, never priced by a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::models::ModelDirectory;

const BUNDLED: &str = include_str!("../../../catalog/prices.json");
/// The table format this release reads.
pub const FORMAT_VERSION: u32 = 1;
/// A standard-tier request's share of the list price, in percent.
pub const STANDARD_PERCENT: u64 = 100;
/// What a priority-tier request is billed, in percent of the list price (Mistral's Priority
/// Tier documentation).
pub const PRIORITY_PERCENT: u64 = 175;
/// What a prompt token read from the prompt cache is billed, in percent of the input price
/// (Mistral's prompt caching documentation).
pub const CACHED_INPUT_PERCENT: u64 = 10;

/// One model's token prices, in micro-units per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPrices {
    pub input: u64,
    pub output: u64,
    /// A prompt token read from the cache; 10 % of `input` unless said otherwise.
    #[serde(default)]
    pub cached_input: Option<u64>,
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
    fn cached_input(self) -> u64 {
        self.cached_input.unwrap_or_else(|| {
            let share = (u128::from(self.input) * u128::from(CACHED_INPUT_PERCENT)).div_ceil(100);
            u64::try_from(share).unwrap_or(u64::MAX)
        })
    }

    /// The cost of `counts` at `tier_percent` of the list price, rounded up to a micro-unit.
    pub fn cost(self, counts: TokenCounts, tier_percent: u64) -> u64 {
        let cached = counts.cached.min(counts.prompt);
        let at_list = (u128::from(counts.prompt - cached) * u128::from(self.input))
            .saturating_add(u128::from(cached) * u128::from(self.cached_input()))
            .saturating_add(u128::from(counts.completion) * u128::from(self.output));
        let scaled = at_list.saturating_mul(u128::from(tier_percent));
        u64::try_from(scaled.div_ceil(100 * 1_000_000)).unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Debug, Deserialize)]
struct PriceFile {
    format_version: u32,
    taken: String,
    #[serde(default)]
    currency: Option<String>,
    models: BTreeMap<String, TokenPrices>,
    #[serde(flatten)]
    _rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct PriceTable {
    /// The day the prices were taken, as the table says.
    pub taken: String,
    pub currency: String,
    /// By dated model id.
    models: BTreeMap<String, TokenPrices>,
}

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("cannot read the price table `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the price table `{}` is not valid: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the price table `{}` has format_version {found}; this release reads {FORMAT_VERSION}", path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("the price table `{}` lists no model", path.display())]
    Empty { path: PathBuf },
}

impl PriceError {
    pub fn help(&self) -> &'static str {
        "write the table as catalog/prices.json does: {\"format_version\": 1, \"taken\": \"YYYY-MM-DD\", \"models\": {\"<model id>\": {\"input\": <micro-units per million tokens>, \"output\": <...>}}}"
    }
}

impl PriceTable {
    pub fn bundled() -> PriceTable {
        PriceTable::parse(BUNDLED, Path::new("catalog/prices.json"))
            .expect("the bundled price table is checked by a unit test")
    }

    pub fn read(path: &Path) -> Result<PriceTable, PriceError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: path.to_owned(),
            source,
        })?;
        PriceTable::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<PriceTable, PriceError> {
        let file: PriceFile = serde_json::from_str(text).map_err(|source| PriceError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        if file.format_version != FORMAT_VERSION {
            return Err(PriceError::Version {
                path: path.to_owned(),
                found: file.format_version,
            });
        }
        if file.models.is_empty() {
            return Err(PriceError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(PriceTable {
            taken: file.taken,
            currency: file.currency.unwrap_or_else(|| "USD".into()),
            models: file.models,
        })
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
    pub fn dearest(&self) -> TokenPrices {
        self.models
            .values()
            .copied()
            .reduce(dearer)
            .expect("a table lists at least one model")
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

/// Each price the dearer of two.
fn dearer(a: TokenPrices, b: TokenPrices) -> TokenPrices {
    TokenPrices {
        input: a.input.max(b.input),
        output: a.output.max(b.output),
        cached_input: match (a.cached_input, b.cached_input) {
            (None, None) => None,
            _ => Some(a.cached_input().max(b.cached_input())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: TokenPrices = TokenPrices {
        input: 100_000,
        output: 300_000,
        cached_input: None,
    };

    fn counts(prompt: u64, cached: u64, completion: u64) -> TokenCounts {
        TokenCounts {
            prompt,
            cached,
            completion,
        }
    }

    #[test]
    fn the_bundled_table_prices_models_by_alias_and_never_guesses() {
        let table = PriceTable::bundled();
        let models = ModelDirectory::bundled();
        assert!(table.price("mistral-small-latest", &models).is_some());
        assert!(table.price("mistral-embed", &models).is_some());
        assert_eq!(table.price("ft:my-model", &models), None);
        assert_eq!(
            table.unpriced(["ft:my-model", "mistral-embed", "ft:my-model"], &models),
            vec!["ft:my-model".to_owned()]
        );
        assert_eq!(table.taken.len(), 10);
    }

    #[test]
    fn costs_round_up_in_micro_units() {
        // 1 token at 0.10 per million is 0.1 micro-units: counted as 1.
        assert_eq!(SMALL.cost(counts(1, 0, 0), STANDARD_PERCENT), 1);
        assert_eq!(
            SMALL.cost(counts(1_000_000, 0, 1_000_000), STANDARD_PERCENT),
            400_000
        );
        assert_eq!(SMALL.cost(counts(0, 0, 0), STANDARD_PERCENT), 0);
        let dear = TokenPrices {
            input: u64::MAX,
            output: u64::MAX,
            cached_input: None,
        };
        assert_eq!(
            dear.cost(counts(u64::MAX, 0, u64::MAX), PRIORITY_PERCENT),
            u64::MAX
        );
    }

    #[test]
    fn tiers_and_cached_tokens_are_priced() {
        // Priority is 1.75 × list.
        assert_eq!(
            SMALL.cost(counts(1_000_000, 0, 1_000_000), PRIORITY_PERCENT),
            700_000
        );
        // A million cached prompt tokens at 10 % of 0.10.
        assert_eq!(
            SMALL.cost(counts(1_000_000, 1_000_000, 0), STANDARD_PERCENT),
            10_000
        );
        // More cached than prompt is read as all cached, never a negative count.
        assert_eq!(
            SMALL.cost(counts(10, 50, 0), STANDARD_PERCENT),
            SMALL.cost(counts(10, 10, 0), STANDARD_PERCENT)
        );
    }

    #[test]
    fn a_bad_table_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(
            &path,
            r#"{"format_version": 2, "taken": "x", "models": {}}"#,
        )
        .unwrap();
        let error = PriceTable::read(&path).unwrap_err();
        assert!(error.to_string().contains("format_version 2"), "{error}");
        std::fs::write(
            &path,
            r#"{"format_version": 1, "taken": "x", "models": {"m": {"input": 1.5, "output": 2}}}"#,
        )
        .unwrap();
        assert!(matches!(
            PriceTable::read(&path),
            Err(PriceError::Invalid { .. })
        ));
    }
}
