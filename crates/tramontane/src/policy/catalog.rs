//! Mistral's model catalog, bundled as `GET /v1/models` returns it.
//!
//! Policies name models by id or alias; both resolve to one model so that
//! `mistral-small-latest` and the dated id it points to count as the same model. The
//! gateway reads the upstream's live answer into the same [`Catalog`], so the policy and the
//! gateway never disagree on what an alias means by parsing it two ways.

use std::collections::HashMap;

use serde::Deserialize;

use super::diagnostic::closest;

const BUNDLED: &str = include_str!("../../../../catalog/models.json");

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelCard>,
}

#[derive(Deserialize)]
struct ModelCard {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    deprecation: Option<String>,
    #[serde(default)]
    deprecation_replacement_model: Option<String>,
    #[serde(default)]
    max_context_length: Option<u64>,
}

/// One model of the catalog, whatever name it is called by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(u32);

#[derive(Clone, Debug)]
pub struct Deprecation {
    pub date: String,
    pub replacement: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    by_name: HashMap<String, ModelId>,
    names: Vec<String>,
    deprecations: HashMap<String, Deprecation>,
    /// The longest context any card of a model states; absent when none does.
    context_tokens: HashMap<ModelId, u64>,
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
    /// The catalog compiled into this binary.
    pub fn bundled() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_json(BUNDLED).expect("the bundled catalog is checked by a unit test")
        })
    }

    /// The bundled catalog's text, for a stand-in upstream that answers `GET /v1/models`.
    pub fn bundled_json() -> &'static str {
        BUNDLED
    }

    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_slice(text.as_bytes())
    }

    /// A `GET /v1/models` answer as it came over the wire.
    pub fn from_slice(bytes: &[u8]) -> Result<Catalog, CatalogError> {
        let list: ModelList = serde_json::from_slice(bytes)?;
        // Union the cards that name each other: every name in one alias group is one model.
        let mut parent: Vec<usize> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut names = Vec::new();
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
        let mut deprecations = HashMap::new();
        for card in &list.data {
            let id = intern(&card.id, &mut parent, &mut names);
            for alias in &card.aliases {
                let other = intern(alias, &mut parent, &mut names);
                let (a, b) = (find(&mut parent, id), find(&mut parent, other));
                parent[a.max(b)] = a.min(b);
            }
            if let Some(date) = &card.deprecation {
                deprecations.insert(
                    card.id.clone(),
                    Deprecation {
                        date: date.get(..10).unwrap_or(date).to_owned(),
                        replacement: card.deprecation_replacement_model.clone(),
                    },
                );
            }
        }
        let by_name: HashMap<String, ModelId> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), ModelId(find(&mut parent, i) as u32)))
            .collect();
        let mut context_tokens: HashMap<ModelId, u64> = HashMap::new();
        for card in &list.data {
            if let (Some(tokens), Some(&model)) = (card.max_context_length, by_name.get(&card.id)) {
                let longest = context_tokens.entry(model).or_default();
                *longest = (*longest).max(tokens);
            }
        }
        names.sort();
        Ok(Catalog {
            by_name,
            names,
            deprecations,
            context_tokens,
        })
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
        self.context_tokens.get(&self.resolve(name)?).copied()
    }

    /// How many models (not names) the catalog has.
    pub fn models(&self) -> usize {
        self.by_name
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// The known name closest to a misspelt one.
    pub fn suggest(&self, wrong: &str) -> Option<&str> {
        closest(wrong, self.names.iter().map(String::as_str))
    }

    /// Every name of the catalog, ids and aliases, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn deprecation(&self, name: &str) -> Option<&Deprecation> {
        self.deprecations.get(name)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalog_loads_and_resolves_aliases() {
        let catalog = Catalog::from_json(BUNDLED).unwrap();
        for name in [
            "mistral-small-latest",
            "mistral-large-latest",
            "codestral-latest",
            "mistral-embed",
        ] {
            assert!(catalog.resolve(name).is_some(), "{name} missing");
        }
        assert_ne!(
            catalog.resolve("mistral-small-latest"),
            catalog.resolve("mistral-large-latest")
        );
        assert_eq!(
            catalog.suggest("mistral-smal-latest"),
            Some("mistral-small-latest")
        );
    }

    #[test]
    fn aliases_are_one_model() {
        let catalog = Catalog::from_json(
            r#"{"object": "list", "data": [
                {"id": "small-2506", "aliases": ["small-latest"]},
                {"id": "small-latest", "aliases": ["small-2506"]},
                {"id": "large-2411", "aliases": [], "deprecation": "2026-01-01T00:00:00Z"}]}"#,
        )
        .unwrap();
        assert_eq!(
            catalog.resolve("small-2506"),
            catalog.resolve("small-latest")
        );
        assert_ne!(catalog.resolve("small-2506"), catalog.resolve("large-2411"));
        assert_eq!(
            catalog.deprecation("large-2411").unwrap().date,
            "2026-01-01"
        );
        assert_eq!(catalog.resolve("unknown"), None);
    }
}
