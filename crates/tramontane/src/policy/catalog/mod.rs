//! Mistral's model catalog: every name a model is called by, its lifecycle, context length and
//! prices.
//!
//! Two sources build one [`Catalog`]. The bundled one comes from Mistral's published model
//! records (`catalog/mistral-models.json`, see [`records`]); a live one from a `GET /v1/models`
//! answer ([`Catalog::from_slice`]), which is how the gateway reads its upstream. Policies name
//! models by id or alias; both resolve to one [`ModelId`], so `mistral-small-latest` and the
//! dated id it points to count as the same model, and the policy and the gateway never
//! disagree on what an alias means by parsing it two ways. Models the policy declares
//! (`models:`) join either with [`Catalog::with_declared`].

mod declared;
pub mod drift;
mod live;
pub mod records;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use jiff::civil::Date;

use super::diagnostic::closest;
use crate::model::{Currency, ModelPrices};

/// One model of the catalog, whatever name it is called by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(u32);

/// A model's status as Mistral publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Generally available.
    Ga,
    /// A public preview or a Labs model: served, but not a stable commitment.
    Preview,
    Deprecated,
    Retired,
}

/// Where a model is in its life: published status and dates, and what replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub status: Status,
    /// From this day the model is deprecated: still served, to be moved off.
    pub deprecation: Option<Date>,
    /// From this day requests to the model fail.
    pub retirement: Option<Date>,
    /// The dated API id of the model that replaces it.
    pub replacement: Option<String>,
}

/// Where a model stands on a given day, judged from its [`Lifecycle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Current,
    Deprecated,
    Retired,
}

impl Lifecycle {
    /// Dates win over a status published earlier: a record still marked deprecated is
    /// retired once its retirement day has come.
    pub fn stage(&self, today: Date) -> Stage {
        let reached = |day: Option<Date>| day.is_some_and(|day| day <= today);
        if self.status == Status::Retired || reached(self.retirement) {
            Stage::Retired
        } else if self.status == Status::Deprecated
            || reached(self.deprecation)
            || self.retirement.is_some()
        {
            Stage::Deprecated
        } else {
            Stage::Current
        }
    }
}

/// What the catalog knows of one model.
#[derive(Clone, Debug, Default)]
struct Model {
    /// Its dated API id, where the source says which name that is.
    dated_id: Option<String>,
    lifecycle: Option<Lifecycle>,
    /// The longest context any source states; absent when none does.
    context_tokens: Option<u64>,
    usd: Option<ModelPrices>,
    eur: Option<ModelPrices>,
}

impl Model {
    fn prices(&self, currency: Currency) -> Option<&ModelPrices> {
        match currency {
            Currency::Usd => self.usd.as_ref(),
            Currency::Eur => self.eur.as_ref(),
        }
    }

    fn prices_mut(&mut self, currency: Currency) -> &mut Option<ModelPrices> {
        match currency {
            Currency::Usd => &mut self.usd,
            Currency::Eur => &mut self.eur,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Catalog {
    by_name: HashMap<String, ModelId>,
    /// Every name, sorted.
    names: Vec<String>,
    /// Indexed by [`ModelId`].
    models: Vec<Model>,
    /// Percent of the list price the priority tier is billed at.
    priority_percent: u64,
    /// Percent of the input price cached prompt tokens are billed at, where a model publishes
    /// no price of its own for them.
    cached_input_percent: u64,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog {
            by_name: HashMap::new(),
            names: Vec::new(),
            models: Vec::new(),
            priority_percent: records::PRIORITY_PERCENT,
            cached_input_percent: records::CACHED_INPUT_PERCENT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the model catalog is not a `GET /v1/models` response: {0}")]
pub struct CatalogError(#[from] serde_json::Error);

impl CatalogError {
    /// What to do, for the line under the error.
    pub fn help(&self) -> Option<&'static str> {
        Some("save the answer of `GET /v1/models` as it came, without editing it")
    }
}

impl Catalog {
    /// The catalog compiled into this binary, from Mistral's published model records.
    pub fn bundled() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| records::bundled().catalog())
    }

    /// The bundled catalog as `GET /v1/models` would answer it, for a stand-in upstream: one
    /// card per API id of every model not retired on the records' date.
    pub fn bundled_json() -> &'static str {
        static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        JSON.get_or_init(|| records::bundled().model_list_json())
    }

    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_slice(text.as_bytes())
    }

    /// A `GET /v1/models` answer as it came over the wire.
    pub fn from_slice(bytes: &[u8]) -> Result<Catalog, CatalogError> {
        live::read(bytes)
    }

    /// Adds a model under `names`. A name already known is taken over by the new model: the
    /// last source to name it wins, as a re-aliased name on the platform does.
    fn insert(&mut self, names: &[String], model: Model) -> ModelId {
        let id = ModelId(self.models.len() as u32);
        self.models.push(model);
        for name in names {
            if self.by_name.insert(name.clone(), id).is_none() {
                self.names.push(name.clone());
            }
        }
        self.names.sort();
        id
    }

    fn model(&self, name: &str) -> Option<&Model> {
        self.resolve(name).map(|id| &self.models[id.0 as usize])
    }

    pub fn resolve(&self, name: &str) -> Option<ModelId> {
        self.by_name.get(name).copied()
    }

    /// Whether two names are the same model: equal, or names of one model of the catalog.
    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b || matches!((self.resolve(a), self.resolve(b)), (Some(x), Some(y)) if x == y)
    }

    /// The longest context the catalog states for a model, by any of its names.
    pub fn context_tokens(&self, name: &str) -> Option<u64> {
        self.model(name)?.context_tokens
    }

    /// How many models (not names) the catalog has.
    pub fn models(&self) -> usize {
        self.by_name
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// Every name of the catalog, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The names of one model, sorted.
    pub fn names_of(&self, model: ModelId) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .filter(move |name| self.by_name.get(*name) == Some(&model))
            .map(String::as_str)
    }

    /// The current name closest to a misspelt one: never one of a model deprecated or retired
    /// on `today`, which would only lead to the next warning.
    pub fn suggest(&self, wrong: &str, today: Date) -> Option<&str> {
        closest(
            wrong,
            self.names
                .iter()
                .map(String::as_str)
                .filter(|name| self.stage(name, today) == Some(Stage::Current)),
        )
    }

    /// Status and dates of the model a name stands for, when a source states them.
    pub fn lifecycle(&self, name: &str) -> Option<&Lifecycle> {
        self.model(name)?.lifecycle.as_ref()
    }

    /// Where the model a name stands for is on `today`; `None` for an unknown name. A model
    /// without a lifecycle (a live card without a deprecation, a declared model) is current.
    pub fn stage(&self, name: &str, today: Date) -> Option<Stage> {
        let model = self.model(name)?;
        Some(
            model
                .lifecycle
                .as_ref()
                .map_or(Stage::Current, |lifecycle| lifecycle.stage(today)),
        )
    }

    /// The record's dated id for a name (first API id), if the records know it.
    pub fn dated_id(&self, name: &str) -> Option<&str> {
        self.model(name)?.dated_id.as_deref()
    }

    /// Prices of the model any of whose names is `name`, in `currency`; None when the records
    /// (or the policy) publish none. Borrowed: the catalog lives as long as its user.
    pub fn prices(&self, name: &str, currency: Currency) -> Option<&ModelPrices> {
        self.model(name)?
            .prices(currency)
            .filter(|prices| !prices.is_empty())
    }

    /// Percent of the list price the priority tier is billed at (standard is 100).
    pub fn priority_percent(&self) -> u64 {
        self.priority_percent
    }

    /// The tier multipliers, for [`crate::model::TierPrices::priority`].
    pub fn tiers(&self) -> crate::model::TierPrices {
        crate::model::TierPrices {
            priority_percent: self.priority_percent,
        }
    }

    /// Every priced model's dated id, sorted (for the gateway to list what it cannot price).
    pub fn priced_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .models
            .iter()
            .filter(|model| {
                Currency::ALL.iter().any(|currency| {
                    model
                        .prices(*currency)
                        .is_some_and(|prices| !prices.is_empty())
                })
            })
            .filter_map(|model| model.dated_id.as_deref())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// How many names (ids and aliases) the catalog has.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
