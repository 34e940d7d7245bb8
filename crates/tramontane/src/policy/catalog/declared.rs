//! Models the policy declares (`models:`) joined to a catalog: new models, fine-tunes, and
//! negotiated prices for models the catalog has.

use std::collections::BTreeMap;

use super::{Catalog, Model};
use crate::model::{DeclaredModel, ModelPrices};

impl Catalog {
    /// This catalog with the models a policy declares (`DesiredOrg::models`): what `validate`
    /// checks names against and what the gateway should resolve and price with, so that both
    /// see the same models. Build it from the loaded policy's `desired.models` on top of
    /// [`Catalog::bundled`] or a live catalog.
    ///
    /// A declared id the catalog already knows adds its aliases and context length to that
    /// model, and its prices replace the catalog's unit by unit in the declared currency (a
    /// negotiated price); the other currency keeps the list prices. A new id is a new model,
    /// current, with what it declares. A declared alias that names another model is taken over
    /// by the declared one (`validate` reports it).
    pub fn with_declared(&self, declared: &BTreeMap<String, DeclaredModel>) -> Catalog {
        let mut catalog = self.clone();
        for (id, model) in declared {
            let names: Vec<String> = std::iter::once(id.clone())
                .chain(model.aliases.iter().cloned())
                .collect();
            let index = match catalog.resolve(id) {
                Some(existing) => {
                    for name in &names {
                        if catalog.by_name.insert(name.clone(), existing).is_none() {
                            catalog.names.push(name.clone());
                        }
                    }
                    catalog.names.sort();
                    existing
                }
                None => catalog.insert(
                    &names,
                    Model {
                        dated_id: Some(id.clone()),
                        ..Model::default()
                    },
                ),
            };
            let cached = catalog.cached_input_percent;
            let entry = &mut catalog.models[index.0 as usize];
            if let Some(tokens) = model.context_tokens {
                entry.context_tokens = Some(tokens);
            }
            if let Some(prices) = &model.prices {
                let slot = entry.prices_mut(prices.currency);
                let mut merged = slot.as_ref().map_or_else(
                    || prices.per_unit.clone(),
                    |list| list.overridden_by(&prices.per_unit),
                );
                // A negotiated input price moves the cached price with it, unless that is
                // declared too.
                if prices.per_unit.input_tokens.is_some()
                    && prices.per_unit.cached_input_tokens.is_none()
                {
                    merged.cached_input_tokens = None;
                }
                *slot =
                    Some(merged.with_cached_input(cached)).filter(|p: &ModelPrices| !p.is_empty());
            }
        }
        catalog
    }
}
