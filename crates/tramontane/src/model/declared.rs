//! Models the policy declares itself (`models:`): models newer than the bundled data,
//! fine-tunes, and negotiated prices for models the data already has.

use serde::{Deserialize, Serialize};

use super::price::{Currency, ModelPrices};

/// One entry of the policy's `models` section, keyed by the model's API id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredModel {
    /// Other names the model answers to, as `GET /v1/models` lists aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
    /// Prices in one currency; for a model the bundled data knows, they replace its list
    /// prices unit by unit in that currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<DeclaredPrices>,
}

/// A declared model's prices: per million tokens or characters, per thousand pages, per
/// minute of audio, as [`ModelPrices`] counts them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredPrices {
    pub currency: Currency,
    // Not `deny_unknown_fields`: serde cannot combine it with `flatten`. The schema pass has
    // refused unknown properties before this is read.
    #[serde(flatten)]
    pub per_unit: ModelPrices,
}
