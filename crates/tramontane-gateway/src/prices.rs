//! What a request costs: a versioned price table per model, in integer micro-units of the
//! billing currency per million tokens, so spend is added up exactly. The table bundled is
//! `catalog/prices.json`; `--prices FILE` replaces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::models::ModelDirectory;

const BUNDLED: &str = include_str!("../../../catalog/prices.json");
/// The table format this release reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Micro-units per million prompt tokens.
    pub input: u64,
    /// Micro-units per million completion tokens.
    pub output: u64,
}

impl Price {
    /// The cost of a request in micro-units, rounded up: a guard never under-counts.
    pub fn cost(self, prompt_tokens: u64, completion_tokens: u64) -> u64 {
        let total = (u128::from(prompt_tokens) * u128::from(self.input))
            .saturating_add(u128::from(completion_tokens) * u128::from(self.output));
        u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Debug, Deserialize)]
struct PriceFile {
    format_version: u32,
    taken: String,
    #[serde(default)]
    currency: Option<String>,
    models: BTreeMap<String, Price>,
    #[serde(flatten)]
    _rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct PriceTable {
    /// The day the prices were taken, as the table says.
    pub taken: String,
    pub currency: String,
    models: BTreeMap<String, Price>,
    /// The dearest input and output prices of the table: what a model without a price is
    /// counted at, so a guard errs on the side of stopping.
    dearest: Price,
}

/// Where a request's price came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceSource {
    Table(Price),
    /// The model is not in the table: the dearest prices stand in.
    Fallback(Price),
}

impl PriceSource {
    pub fn price(self) -> Price {
        match self {
            PriceSource::Table(price) | PriceSource::Fallback(price) => price,
        }
    }
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
        let dearest = Price {
            input: file.models.values().map(|p| p.input).max().unwrap_or(0),
            output: file.models.values().map(|p| p.output).max().unwrap_or(0),
        };
        Ok(PriceTable {
            taken: file.taken,
            currency: file.currency.unwrap_or_else(|| "USD".into()),
            models: file.models,
            dearest,
        })
    }

    /// The price of `model`, found by any of its names.
    pub fn price(&self, model: &str, directory: &ModelDirectory) -> PriceSource {
        if let Some(price) = self.models.get(model) {
            return PriceSource::Table(*price);
        }
        self.models
            .iter()
            .find(|(name, _)| directory.same(name, model))
            .map_or(PriceSource::Fallback(self.dearest), |(_, price)| {
                PriceSource::Table(*price)
            })
    }

    /// The price a request is reserved at when its model is not known yet (an agent's).
    pub fn dearest(&self) -> Price {
        self.dearest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_prices_every_chat_model_of_the_catalog_by_alias() {
        let table = PriceTable::bundled();
        let models = ModelDirectory::bundled();
        assert_eq!(
            table.price("mistral-small-latest", &models),
            PriceSource::Table(Price {
                input: 150_000,
                output: 600_000
            })
        );
        assert!(matches!(
            table.price("mistral-embed", &models),
            PriceSource::Table(_)
        ));
        assert_eq!(
            table.price("ft:my-model", &models),
            PriceSource::Fallback(table.dearest())
        );
        assert_eq!(table.taken.len(), 10);
    }

    #[test]
    fn costs_round_up_in_micro_units() {
        let small = Price {
            input: 100_000,
            output: 300_000,
        };
        // 1 token at 0.10 per million is 0.1 micro-units: counted as 1.
        assert_eq!(small.cost(1, 0), 1);
        assert_eq!(small.cost(1_000_000, 1_000_000), 400_000);
        assert_eq!(small.cost(0, 0), 0);
        assert_eq!(
            Price {
                input: u64::MAX,
                output: u64::MAX
            }
            .cost(u64::MAX, u64::MAX),
            u64::MAX
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
