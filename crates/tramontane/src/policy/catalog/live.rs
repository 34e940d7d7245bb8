//! A `GET /v1/models` answer read into a [`Catalog`]: what the gateway's upstream serves.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Catalog, CatalogError, Lifecycle, Model, ModelId, Status};

#[derive(Deserialize)]
pub(super) struct ModelList {
    pub(super) data: Vec<ModelCard>,
}

#[derive(Deserialize)]
pub(super) struct ModelCard {
    pub(super) id: String,
    #[serde(default)]
    pub(super) aliases: Vec<String>,
    #[serde(default)]
    deprecation: Option<String>,
    #[serde(default)]
    deprecation_replacement_model: Option<String>,
    #[serde(default)]
    max_context_length: Option<u64>,
}

pub(super) fn read(bytes: &[u8]) -> Result<Catalog, CatalogError> {
    let list: ModelList = serde_json::from_slice(bytes)?;
    // Union the cards that name each other: every name in one alias group is one model.
    let mut parent: Vec<usize> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut intern = |name: &str, parent: &mut Vec<usize>, names: &mut Vec<String>| {
        *index.entry(name.to_owned()).or_insert_with(|| {
            parent.push(parent.len());
            names.push(name.to_owned());
            parent.len() - 1
        })
    };
    for card in &list.data {
        let id = intern(&card.id, &mut parent, &mut names);
        for alias in &card.aliases {
            let other = intern(alias, &mut parent, &mut names);
            let (a, b) = (find(&mut parent, id), find(&mut parent, other));
            parent[a.max(b)] = a.min(b);
        }
    }
    // One model per group, numbered densely in the order groups first appear.
    let mut dense: HashMap<usize, ModelId> = HashMap::new();
    let mut catalog = Catalog::default();
    for (i, name) in names.iter().enumerate() {
        let root = find(&mut parent, i);
        let next = ModelId(dense.len() as u32);
        let id = *dense.entry(root).or_insert(next);
        if id == next {
            catalog.models.push(Model::default());
        }
        catalog.by_name.insert(name.clone(), id);
    }
    for card in &list.data {
        let model = &mut catalog.models[catalog.by_name[&card.id].0 as usize];
        if let Some(tokens) = card.max_context_length {
            model.context_tokens = Some(model.context_tokens.unwrap_or(0).max(tokens));
        }
        // The API's `deprecation` is the moment the model stops being served.
        if let Some(when) = &card.deprecation
            && let Ok(day) = when.get(..10).unwrap_or(when).parse()
        {
            model.lifecycle = Some(Lifecycle {
                status: Status::Deprecated,
                deprecation: None,
                retirement: Some(day),
                replacement: card.deprecation_replacement_model.clone(),
            });
        }
    }
    catalog.names = names;
    catalog.names.sort();
    Ok(catalog)
}
